"""Issue 2: the environment the Go extension reads, and how the extension behaves as a guest in
somebody else's process (logs never on stdout, repeated loads, other databases untouched)."""
from __future__ import annotations

import harness as H


def test_vfs_default_serves_plain_file_names(ext_path, vector):
    """LITESTREAM_VFS_DEFAULT=true registers `litestream` as the default VFS, for clients that
    cannot pass a URI (better-sqlite3): a plain `.open name` reads the replica."""
    v = vector("ps512")
    env = {"LITESTREAM_VFS_DEFAULT": "true", "LITESTREAM_REPLICA_URL": v.url}
    r = H.sqlite_cli(ext_path, None, [".open prod.db", "SELECT count(*) FROM t;", "PRAGMA litestream_txid;"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["305", v.max_txid]


def test_log_file_and_level(ext_path, vector, tmp_path):
    v = vector("ps512")
    log = tmp_path / "vfs.log"
    env = {"LITESTREAM_LOG_FILE": str(log), "LITESTREAM_LOG_LEVEL": "debug"}
    r = H.sqlite_cli(ext_path, v.uri(), ["SELECT count(*) FROM t;"], env)
    assert r.returncode == 0 and r.stdout.strip() == "305", r.stderr
    text = log.read_text()
    assert "opening replica" in text, text
    assert "opening replica" not in r.stderr
    # Errors go to the log file too, with their reason.
    r = H.sqlite_cli(ext_path, H.vfs_uri("ftp://nowhere/x"), ["SELECT 1;"], env)
    assert 'unsupported replica URL scheme: "ftp"' in log.read_text()


def test_logs_never_reach_stdout(ext_path, vector):
    v = vector("ps512")
    env = {"LITESTREAM_LOG_LEVEL": "DEBUG"}
    r = H.sqlite_cli(ext_path, v.uri(), ["SELECT count(*) FROM t;"], env)
    assert r.stdout.strip() == "305", r.stdout
    assert "opening replica" in r.stderr


def test_info_level_is_quiet_on_success(ext_path, vector):
    v = vector("ps512")
    r = H.sqlite_cli(ext_path, v.uri(), ["SELECT count(*) FROM t;"])
    assert r.returncode == 0 and r.stdout.strip() == "305"
    assert "DEBUG" not in r.stderr


def test_loading_twice_and_connections_sharing_a_replica(ext_path, vector):
    v = vector("ps4096")
    r = H.sqlite_cli(ext_path, v.uri(), [
        f".load '{ext_path}'",
        f".open '{v.uri()}'",
        "SELECT count(*) > 0, litestream_txid() FROM t;",
        ".open /tmp/ltxvfs-plain-second.db",
        "CREATE TABLE IF NOT EXISTS p(x); SELECT 'plain ok';",
    ])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"1|{v.max_txid}", "plain", "ok"]


def test_pragma_errors_carry_their_message(ext_path, vector):
    """Go turns every PRAGMA error into `SQL logic error`; ours keep the reason."""
    v = vector("ps512")
    for sql, msg in [
        ("PRAGMA litestream_txid = 123;", "litestream_txid is read-only"),
        ("PRAGMA litestream_time = 'soon-ish';", "invalid timestamp (expected RFC3339"),
        ("PRAGMA litestream_write_enabled = maybe;", "invalid value for litestream_write_enabled: maybe"),
        ("SELECT litestream_set_time(NULL);", "timestamp required"),
    ]:
        r = H.sqlite_cli(ext_path, v.uri(), [sql])
        assert r.returncode != 0 and msg in r.stderr, (sql, r.stderr)


def test_percent_in_values_survives_pragmas(ext_path, vector):
    """sqlite-plugin hands PRAGMA text to sqlite3_mprintf as a format: a `%` must come back as is."""
    v = vector("ps512")
    r = H.sqlite_cli(ext_path, v.uri(), ["PRAGMA litestream_time = '100%';"])
    assert "invalid timestamp (expected RFC3339 or relative time like '5 minutes ago'): 100%" in r.stderr, r.stderr


def test_python_sqlite3_can_set_the_time_with_a_pragma(ext_path, vector):
    """A PRAGMA set answers with the new value: a NULL column name makes Python's sqlite3
    raise MemoryError."""
    v = vector("ps512")
    target = v.expected["states"]["4"]["time_travel_target"]
    script = (
        "import sqlite3, sys\n"
        "l = sqlite3.connect(':memory:'); l.enable_load_extension(True); l.load_extension(sys.argv[1])\n"
        "c = sqlite3.connect(sys.argv[2], uri=True)\n"
        f"print(c.execute(\"PRAGMA litestream_time = '{target}'\").fetchall())\n"
        "print(c.execute('SELECT litestream_txid(), count(*) FROM t').fetchall())\n"
        "print(c.execute(\"PRAGMA litestream_time = 'latest'\").fetchall())\n"
    )
    rc, out, err, _ = H.run(["/usr/bin/python3", "-c", script, str(ext_path), v.uri()], env=H.base_env())
    assert rc == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0] == f"[('{target}',)]"
    assert lines[1] == "[('0000000000000004', 1500)]"
    assert lines[2].startswith("[('2026-11-22T"), lines[2]
