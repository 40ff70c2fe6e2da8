"""Issue 4: a live replica. Polling with one consistent TXID per read transaction, time travel
to every retained TXID, integrity across shrinking VACUUMs, and following L1 compactions from a
plan that started without L1 — all through the real extension, on replicas written by the real
litestream (live, or the pre-built vectors).

Known Go differences (xfail when LTXVFS_EXT is the Go extension):
  * integrity_check after a shrinking VACUUM fails in Go (VFS.md §4, defect 1);
  * Go freezes when an L1 file overlaps its position (VFS.md §8.3, defect 2).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import harness as H

HERE = Path(__file__).resolve().parent
SOAK_SECONDS = float(os.environ.get("LTXVFS_SOAK_SECONDS", "60"))
VECTORS = ["ps512", "ps4096", "ps65536", "shrink-autovacuum"]
GO_SHRINK = pytest.mark.go_differs("Go sizes the file from the highest indexed page (VFS.md §4)")
GO_L1_FREEZE = pytest.mark.go_differs("Go freezes on an L1 file overlapping its position (VFS.md §8.3)")


class Session:
    """A long-lived connection in a child process (tests/integration/sql_session.py)."""

    def __init__(self, ext, uri, env=None):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sql_session.py"), str(ext), uri],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=H.base_env(go=H.is_go_ext(ext), extra=env), start_new_session=True)
        first = self._line(timeout=60)
        assert first.get("ready"), first

    def _line(self, timeout=30) -> dict:
        out: list[bytes] = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not out or not out[0]:
            H.kill_group(self.proc)
            raise AssertionError("session gave no answer; stderr:\n" + self.proc.stderr.read().decode()[-3000:])
        return json.loads(out[0])

    def query(self, sql: str) -> dict:
        self.proc.stdin.write((json.dumps({"sql": sql}) + "\n").encode())
        self.proc.stdin.flush()
        return self._line()

    def rows(self, sql: str) -> list:
        r = self.query(sql)
        assert "rows" in r, r
        return r["rows"]

    def close(self):
        H.kill_group(self.proc, grace=2)


def eventually(check, timeout: float, what: str, tick: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(tick)
    raise AssertionError(f"{what}: not reached in {timeout}s (last: {last!r})")


# ------------------------------------------------------------------------------ time travel
@pytest.mark.parametrize("name", VECTORS)
def test_time_travel_reaches_every_txid(ext_path, vector, name):
    """For each TXID N, travelling to N's L0 timestamp + 1 ms yields exactly state N (dump hash,
    litestream_txid() = N, a clean integrity_check even across the shrinking VACUUMs);
    `'latest'` brings the newest state back."""
    v = vector(name)
    for n, st in sorted(v.expected["states"].items(), key=lambda kv: int(kv[0])):
        target = st["time_travel_target"]
        dump = v.root / f"dump-{n}.sql"
        out = H.cli_ok(ext_path, v.uri(), [
            f"PRAGMA litestream_time = '{target}';",
            f".output '{dump}'", ".dump", ".output stdout",
            "SELECT litestream_txid(), litestream_time();",
            "PRAGMA integrity_check;",
        ])
        got = H.sha256_text(dump.read_text(encoding="utf-8", errors="surrogateescape"))
        assert got == st["dump_sha256"], f"{name} state {n}: dump differs"
        lines = out.splitlines()
        assert lines[0] == target, f"{name} state {n}: the PRAGMA set answers with the new time: {lines}"
        assert lines[1] == f"{st['txid']}|{target}", f"{name} state {n}: {lines}"
        assert lines[2] == "ok", f"{name} state {n}: integrity_check {lines[2:]}"
    out = H.cli_ok(ext_path, v.uri(), [
        f"SELECT litestream_set_time('{v.expected['states']['1']['time_travel_target']}');",
        "SELECT litestream_txid();",
        "SELECT litestream_set_time('LATEST');",
        "SELECT litestream_txid();",
    ])
    assert [x for x in out.splitlines() if x] == ["0000000000000001", v.max_txid]


@pytest.mark.parametrize("name", ["ps512", pytest.param("shrink-autovacuum", marks=GO_SHRINK)])
def test_page_count_follows_commit_across_vacuum(ext_path, vector, name):
    """Across a VACUUM that shrinks the database, page_count is the state's own page count at
    every TXID and integrity_check says ok (the Go VFS keeps the pre-shrink size)."""
    v = vector(name)
    for n, st in v.expected["states"].items():
        out = H.cli_ok(ext_path, v.uri(), [
            f"PRAGMA litestream_time = '{st['time_travel_target']}';",
            "PRAGMA page_count;", "PRAGMA integrity_check;"])
        assert out.split() == [st["time_travel_target"], str(st["page_count"]), "ok"], f"{name} state {n}"


def test_time_travel_errors_keep_the_view_and_carry_the_message(ext_path, vector):
    v = vector("ps512")
    before = v.expected["time_travel_before_first_file"]["target"]
    r = H.sqlite_cli(ext_path, v.uri(), [
        "SELECT litestream_txid();",
        f"SELECT litestream_set_time('{before}');"])
    assert r.returncode != 0
    assert "cannot calc restore plan: transaction not available" in r.stderr
    r = H.sqlite_cli(ext_path, v.uri(), ["PRAGMA litestream_time = 'garbage in';"])
    assert "invalid timestamp (expected RFC3339 or relative time like '5 minutes ago'): garbage in" in r.stderr
    # An error in the middle of a session leaves the previous view untouched.
    s = Session(ext_path, v.uri())
    try:
        assert s.rows("SELECT litestream_set_time('2026-11-22T05:54:22.957Z')") == [[None]]
        assert s.rows("SELECT litestream_txid()") == [["0000000000000004"]]
        r = s.query("SELECT litestream_set_time('yesterday at noonish')")
        assert "invalid timestamp" in r.get("error", ""), r
        r = s.query(f"SELECT litestream_set_time('{before}')")
        assert "transaction not available" in r.get("error", ""), r
        assert s.rows("SELECT litestream_txid(), count(*) FROM t") == [["0000000000000004", 1500]]
        assert s.rows("SELECT litestream_time()") == [["2026-11-22T05:54:22.957Z"]]
    finally:
        s.close()


# ------------------------------------------------------------------------------ polling
@GO_L1_FREEZE
def test_follows_l1_compactions_from_a_plan_without_l1(ext_path, tmp_path):
    """A plan that starts with L0 files only, then L1 compactions arrive (the first one
    overlapping the position) and L0 is pruned: the connection keeps following."""
    src = H.copy_vector("ps512", tmp_path / "src")
    rep = tmp_path / "replica"
    (rep / "ltx" / "0").mkdir(parents=True)
    (rep / "ltx" / "1").mkdir(parents=True)
    l0 = sorted((src.replica / "ltx" / "0").glob("*.ltx"))
    for f in l0[:5]:
        shutil.copy2(f, rep / "ltx" / "0" / f.name)
    s = Session(ext_path, H.vfs_uri(H.file_url(rep), poll_interval="50ms"))
    try:
        assert s.rows("SELECT litestream_txid(), count(*) FROM t") == [["0000000000000005", 300]]
        for name in ["0000000000000001-0000000000000001.ltx", "0000000000000002-0000000000000002.ltx",
                     "0000000000000003-0000000000000005.ltx"]:
            shutil.copy2(src.replica / "ltx" / "1" / name, rep / "ltx" / "1" / name)
        # Retention prunes L0; the next compaction arrives without its L0 files.
        for f in (rep / "ltx" / "0").glob("*.ltx"):
            f.unlink()
        shutil.copy2(src.replica / "ltx" / "1" / "0000000000000006-0000000000000008.ltx",
                     rep / "ltx" / "1" / "0000000000000006-0000000000000008.ltx")
        eventually(lambda: s.rows("SELECT litestream_txid()") == [["0000000000000008"]], 10,
                   "txid 8 through L1")
        assert s.rows("SELECT count(*) FROM kv") == [[3]]
        assert s.rows("PRAGMA integrity_check") == [["ok"]]
        lag = s.rows("SELECT litestream_lag()")[0][0]
        assert 0 <= lag <= 2, lag
    finally:
        s.close()


def test_read_transaction_keeps_its_txid_while_polling(ext_path, tmp_path):
    """The connection holding a read transaction keeps its view; the next one sees the change."""
    src = H.copy_vector("ps512", tmp_path / "src")
    rep = tmp_path / "replica"
    (rep / "ltx" / "0").mkdir(parents=True)
    l0 = sorted((src.replica / "ltx" / "0").glob("*.ltx"))
    for f in l0[:7]:
        shutil.copy2(f, rep / "ltx" / "0" / f.name)
    s = Session(ext_path, H.vfs_uri(H.file_url(rep), poll_interval="50ms"))
    try:
        s.rows("BEGIN")
        assert s.rows("SELECT count(*) FROM t") == [[305]]
        shutil.copy2(l0[7], rep / "ltx" / "0" / l0[7].name)
        time.sleep(0.5)
        assert s.rows("SELECT count(*) FROM sqlite_master WHERE name = 'kv'") == [[0]]
        s.rows("COMMIT")
        eventually(lambda: s.rows("SELECT count(*) FROM sqlite_master WHERE name = 'kv'") == [[1]], 10,
                   "kv table visible after the transaction")
        assert s.rows("SELECT litestream_txid()") == [["0000000000000008"]]
    finally:
        s.close()


def _restored_invariants(tmp_path, url, txid_hex) -> dict:
    out = tmp_path / f"restore-{txid_hex}.db"
    rc, o, e, _ = H.run([H.find_tool("litestream"), "restore", "-txid", txid_hex, "-o", str(out), url],
                        env=H.base_env(go=True))
    if rc != 0:
        return {"restore failed": (o + e).decode()[-300:], "broken": False}
    row = H.plain_query(out, "SELECT (SELECT n FROM counter), (SELECT v FROM checksum), count(*), max(n) FROM log;")
    n, v, rows, top = (int(x or 0) for x in row.strip().split("|"))
    return {"restored": row.strip(), "broken": v != n * 31 + 7 or rows != n or top != n}


def test_consistency_under_change(ext_path, tmp_path):
    """The real litestream replicates a database taking steady writes; each write bumps a
    counter row, a checksum row and a log table together in one transaction. Readers on several
    threads check the invariants in every read transaction and that the TXID never goes back."""
    db = H.make_wal_db(tmp_path / "primary.db", schema="""
        CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
        CREATE TABLE checksum(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
        CREATE TABLE log(n INTEGER PRIMARY KEY, payload BLOB);
        INSERT INTO counter VALUES (1, 0);
        INSERT INTO checksum VALUES (1, 7);
    """)
    replica = tmp_path / "replica"
    url = H.file_url(replica)
    stop = threading.Event()
    written = [0]

    def writer():
        import sqlite3
        con = sqlite3.connect(db, isolation_level=None, timeout=10)
        con.execute("PRAGMA busy_timeout=10000")
        # Litestream's guidance for high write loads (litestream.io/tips): leave checkpoints to
        # Litestream, because an application checkpoint can race it while it switches locks.
        # With SQLite's autocheckpoint on, full-suite runs saw a torn state at one TXID for every
        # reader alike, and `litestream restore -txid` of the replica gave the same torn state:
        # Litestream had dropped rows. The attribution below tells such a case apart from ours.
        con.execute("PRAGMA wal_autocheckpoint=0")
        while not stop.is_set():
            con.execute("BEGIN IMMEDIATE")
            n = con.execute("SELECT n FROM counter WHERE id = 1").fetchone()[0] + 1
            con.execute("UPDATE counter SET n = ? WHERE id = 1", (n,))
            con.execute("UPDATE checksum SET v = ? WHERE id = 1", (n * 31 + 7,))
            con.execute("INSERT INTO log VALUES (?, randomblob(300 + (? % 900)))", (n, n))
            con.execute("COMMIT")
            written[0] = n
            time.sleep(0.02)
        con.close()

    with H.replicate(db, url) as rep:
        rep.wait_synced()
        w = threading.Thread(target=writer)
        w.start()
        try:
            r = H.run([sys.executable, str(HERE / "consistency_readers.py"), str(ext_path),
                       H.vfs_uri(url, poll_interval="100ms"), str(SOAK_SECONDS), "4"],
                      env=H.base_env(), timeout=SOAK_SECONDS + 120)
        finally:
            stop.set()
            w.join()
    rc, out, err, _ = r
    stats = json.loads(out.decode() or "[]")
    if rc != 0:
        # Attribute a violation: does the real `litestream restore` of that TXID break the same
        # invariant? Then the VFS presented exactly what Litestream wrote.
        violations = [v for s in stats for v in s["violations"]]
        errors = [e for s in stats for e in s["errors"]]
        # The first few distinct TXIDs are enough (a restore takes seconds each).
        first = sorted({v["txid"] for v in violations})[:3]
        verdicts = {t: _restored_invariants(tmp_path, url, t) for t in first}
        detail = f"violations: {violations[:4]}\nrestore says: {verdicts}\nerrors: {errors[:4]}\n{err.decode()[-1500:]}"
        if violations and not errors and all(r.get("broken") for r in verdicts.values()):
            pytest.xfail(f"litestream's own files are inconsistent at the same TXID(s): {detail}")
        raise AssertionError(f"readers failed\n{detail}")
    assert len(stats) == 4
    for s in stats:
        assert s["txns"] > 50, s
        assert s["last_n"] > s["first_n"], f"reader never saw the primary move: {s}"
        assert s["txid_steps"] > 5, s
    assert written[0] > 100
