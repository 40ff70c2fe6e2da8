"""Write mode (issue 9; shared/spec/VFS.md §9, TESTS.md §E) through the real extension, against
file:// and SeaweedFS, checked with the real ``litestream restore`` and the Go extension.

Bounded: every process has a timeout, every loop a count; the file runs in about two minutes.
"""
from __future__ import annotations

import datetime
import json
import os
import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

import harness as H
import write_support as W

pytestmark = pytest.mark.go_differs("write mode of our own (crash-safe buffer, conflicts in SQL)")


def wuri(url, name="w.db", **params):
    params.setdefault("write_enabled", "true")
    return H.vfs_uri(url, name=name, **params)


def plain_rows(db: Path, sql: str):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def plain_dump(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


@pytest.fixture(params=["file", "s3"])
def replica(request, tmp_path, s3_prefix):
    """(url, env, s3 or None) of an empty replica."""
    if request.param == "file":
        return H.file_url(tmp_path / "replica"), {}, None
    s3 = request.getfixturevalue("seaweedfs")
    return s3.url(s3_prefix), s3.creds_env(), s3


# ------------------------------------------------------------------------- Go suite scenarios
def test_write_sync_restore_and_the_go_extension_reads_it(ext_path, go_ext_path, replica, tmp_path):
    """WriteAndSync, WriteAndRestore, LargeTransaction, Truncate, SchemaChanges, BlobData,
    rollbacks: a workload whose every synced TXID restores (real litestream) to the writer's
    state, integrity ok; the Go extension and a fresh ltxvfs reader read the final state."""
    url, env, s3 = replica
    uri = wuri(url, sync_interval="1h", buffer_path=tmp_path / "buf")
    rng = random.Random(9)
    steps: list = ["PRAGMA page_size=8192",
                   "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)",
                   "INSERT INTO users VALUES(1, 'Alice')"]
    checkpoints = []

    def checkpoint():
        steps.append({"q": "PRAGMA litestream_sync"})
        checkpoints.append(len(steps) - 1)
        steps.append({"q": "SELECT group_concat(id || ':' || name, ',') FROM "
                           "(SELECT * FROM users ORDER BY id)"})
        steps.append({"q": "PRAGMA integrity_check"})

    checkpoint()
    steps += ["BEGIN",
              "WITH RECURSIVE c(x) AS (SELECT 2 UNION ALL SELECT x+1 FROM c WHERE x<1001) "
              "INSERT INTO users SELECT x, 'User' || x || ' with some extra data to take up space' "
              "|| printf('%0900d', x) FROM c",
              "COMMIT"]
    checkpoint()
    for _ in range(20):
        i = rng.randint(2, 1001)
        steps.append(rng.choice([f"UPDATE users SET name='upd{i}' WHERE id={i}",
                                 f"DELETE FROM users WHERE id={i}",
                                 f"INSERT OR REPLACE INTO users VALUES({i + 5000}, 'new{i}')"]))
    steps += ["BEGIN", "DELETE FROM users", "ROLLBACK"]
    checkpoint()
    steps += ["DELETE FROM users WHERE id > 50", "VACUUM",
              "ALTER TABLE users ADD COLUMN quantity INTEGER DEFAULT 0",
              "CREATE TABLE blobs(b BLOB)",
              "INSERT INTO blobs VALUES(randomblob(100000))",
              "DROP TABLE blobs"]
    checkpoint()
    res = W.ok(W.run_steps(ext_path, uri, steps, env, timeout=120))
    synced = [(int(res[i]["rows"][0][0], 16), res[i + 1]["rows"][0][0]) for i in checkpoints]
    assert [t for t, _ in synced] == [1, 2, 3, 4], synced
    assert all(res[i + 2]["rows"] == [["ok"]] for i in checkpoints)
    assert W.l0_txids(url, s3) == [1, 2, 3, 4]
    for txid, state in synced:
        out = W.restore(url, tmp_path / f"r{txid}.db", txid, env)
        assert plain_rows(out, "PRAGMA integrity_check") == [("ok",)]
        assert plain_rows(out, "PRAGMA page_size") == [(8192,)]
        got = plain_rows(out, "SELECT group_concat(id || ':' || name, ',') FROM "
                              "(SELECT * FROM users ORDER BY id)")[0][0]
        assert got == state, f"TXID {txid}"
    final = plain_dump(tmp_path / "r4.db")
    # a fresh ltxvfs reader (read-only), and the Go extension
    ours = H.cli_ok(ext_path, H.vfs_uri(url), [".dump"], env)
    go = H.cli_ok(go_ext_path, H.vfs_uri(url), [".dump"], env)
    assert ours == go
    assert "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, quantity INTEGER DEFAULT 0)" in go
    assert plain_rows(tmp_path / "r4.db", "SELECT count(*) FROM users")[0][0] == \
        int(H.cli_ok(go_ext_path, H.vfs_uri(url), ["SELECT count(*) FROM users;"], env))
    assert final.count("INSERT INTO") == ours.count("INSERT INTO")


def test_read_your_writes_rollback_and_empty_transactions(ext_path, tmp_path):
    """ReadYourWrites, WriteBufferDuplicatePages, Rollback*, CommitAfterRollbackWorks,
    EmptyTransaction: before any sync; no upload for an empty transaction."""
    url = H.file_url(tmp_path / "replica")
    uri = wuri(url, sync_interval="1h", buffer_path=tmp_path / "buf")
    res = W.ok(W.run_steps(ext_path, uri, [
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO users VALUES(1, 'Alice')",
        "INSERT INTO users VALUES(2, 'Bob')",
        {"q": "SELECT name FROM users WHERE id=2"},
        "UPDATE users SET name='Robert' WHERE id=2",
        "UPDATE users SET name='Bobby' WHERE id=2",
        {"q": "SELECT name FROM users WHERE id=2"},
        "PRAGMA cache_size=5",
        "BEGIN",
        "WITH RECURSIVE c(x) AS (SELECT 3 UNION ALL SELECT x+1 FROM c WHERE x<1002) "
        "INSERT INTO users SELECT x, printf('%0920d', x) FROM c",
        {"q": "SELECT count(*) FROM users"},
        "ROLLBACK",
        {"q": "SELECT count(*), group_concat(name) FROM users"},
        "BEGIN", "UPDATE users SET name = 'MODIFIED_' || name", "ROLLBACK",
        "BEGIN", "DELETE FROM users", "ROLLBACK",
        {"q": "SELECT group_concat(name) FROM users"},
        "BEGIN", "COMMIT",
        {"q": "PRAGMA litestream_sync"},
        "BEGIN", "COMMIT",
        {"q": "PRAGMA litestream_sync"},
        {"q": "PRAGMA journal_mode"},
        {"q": "PRAGMA integrity_check"},
    ]))
    rows = [r["rows"] for r in res]
    assert rows[3] == [["Bob"]] and rows[6] == [["Bobby"]]
    assert rows[10] == [[1002]]
    assert rows[12] == [[2, "Alice,Bobby"]]
    assert rows[19] == [["Alice,Bobby"]]
    assert rows[22] == [["0000000000000001"]] and rows[25] == [["0000000000000001"]]
    assert rows[26] == [["delete"]] and rows[27] == [["ok"]]
    assert W.l0_txids(url) == [1]
    fresh = H.cli_ok(ext_path, H.vfs_uri(url), ["SELECT group_concat(name) FROM users;"])
    assert fresh.strip() == "Alice,Bobby"


def test_own_writes_survive_cache_eviction(ext_path, tmp_path):
    """VFS.md §9.5 (Go defect): with a one-page cache the writer reads its synced update, not the
    old page, and the poller never re-applies or shrinks below what it wrote."""
    url = H.file_url(tmp_path / "replica")
    uri = wuri(url, sync_interval="100ms", buffer_path=tmp_path / "buf", cache_size=4096,
               poll_interval="50ms")
    res = W.ok(W.run_steps(ext_path, uri, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<300) "
        "INSERT INTO t SELECT x, 'row-' || x FROM c",
        {"q": "PRAGMA litestream_sync"},
        "UPDATE t SET name='CHANGED' WHERE id=1",
        {"sleep": 0.5},
        {"q": "SELECT name FROM t WHERE id=1"},
        {"q": "SELECT count(*) FROM t"},
        {"q": "PRAGMA litestream_txid"},
        {"q": "PRAGMA integrity_check"},
    ]))
    assert res[5]["rows"] == [["CHANGED"]]
    assert res[6]["rows"] == [[300]]
    assert res[7]["rows"] == [["0000000000000002"]]
    assert res[8]["rows"] == [["ok"]]


def test_periodic_sync_and_sync_after_commit_only(ext_path, tmp_path):
    """PeriodicSync, SyncDuringTransaction, ManualSyncOnly (negative interval: sync at close)."""
    url = H.file_url(tmp_path / "replica")
    W.ok(W.run_steps(ext_path, wuri(url, sync_interval="100ms", buffer_path=tmp_path / "b1"), [
        "CREATE TABLE t(x)", {"sleep": 0.5},
        {"q": "PRAGMA litestream_txid"},
        "BEGIN", "INSERT INTO t VALUES(1)", {"sleep": 0.4},
        {"q": "PRAGMA litestream_txid"},
        "COMMIT", {"sleep": 0.5},
        {"q": "PRAGMA litestream_txid"},
    ]))
    assert W.l0_txids(url) == [1, 2]
    res = W.ok(W.run_steps(ext_path, wuri(url, sync_interval="-1s", buffer_path=tmp_path / "b2"), [
        "INSERT INTO t VALUES(2)", {"sleep": 0.4}, {"q": "SELECT count(*) FROM t"}]))
    assert res[2]["rows"] == [[2]]
    assert W.l0_txids(url) == [1, 2, 3], "synced at close"


def test_new_database_honours_page_size_and_time_travel_is_read_only(ext_path, tmp_path):
    url = H.file_url(tmp_path / "replica")
    uri = wuri(url, sync_interval="1h", buffer_path=tmp_path / "buf")
    res = W.run_steps(ext_path, uri, [
        {"q": "SELECT litestream_txid(), litestream_time()"},
        "PRAGMA page_size=16384",
        "CREATE TABLE t(x)", "INSERT INTO t VALUES(1)",
        {"q": "PRAGMA litestream_sync"},
        {"sleep": 0.05},
        "INSERT INTO t VALUES(2)",
        {"q": "PRAGMA litestream_sync"},
        {"q": "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-0.02 seconds')"},
    ])
    assert res[0]["rows"] == [["0000000000000000", "latest"]]
    assert res[4]["rows"] == [["0000000000000001"]] and res[7]["rows"] == [["0000000000000002"]]
    out = W.restore(url, tmp_path / "r.db")
    assert plain_rows(out, "PRAGMA page_size") == [(16384,)]
    assert plain_rows(out, "SELECT count(*) FROM t") == [(2,)]
    # writes are refused while litestream_time is set, allowed again at latest
    t1 = json.loads(H.cli_ok(ext_path, H.vfs_uri(url), [".mode json",
                             "SELECT litestream_txid() AS t;"]))[0]["t"]
    assert t1 == "0000000000000002"
    r = W.run_steps(ext_path, uri, [
        "PRAGMA litestream_time = '2000-01-01T00:00:00Z'",
        {"q": "SELECT count(*) FROM t"},
        "PRAGMA litestream_time = 'latest'",
        "INSERT INTO t VALUES(3)",
        {"q": "SELECT count(*) FROM t"},
    ])
    assert "transaction not available" in r[0].get("error", "")
    assert r[4]["rows"] == [[3]]
    files = sorted((tmp_path / "replica" / "ltx" / "0").glob("*.ltx"))
    first = datetime.datetime.fromtimestamp(files[0].stat().st_mtime + 0.001, datetime.timezone.utc)
    when = first.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    r = W.run_steps(ext_path, uri, [
        f"PRAGMA litestream_time = '{when}'",
        {"q": "SELECT count(*) FROM t"},
        "INSERT INTO t VALUES(4)",
    ])
    assert "error" not in r[0], r
    assert "readonly" in r[2].get("error", ""), r


def test_writer_slot_busy_reserved_and_pooled_connections(ext_path, tmp_path):
    """LockStateMachine through SQLite: while one connection holds RESERVED another gets
    SQLITE_BUSY; a committed row is visible to the other at its next read transaction, before
    and after the upload; pooled writes raise no false conflict (NoConflictWhenRemoteUnchanged,
    ReadWhileWriting)."""
    url = H.file_url(tmp_path / "replica")
    uri = wuri(url, sync_interval="100ms", buffer_path=tmp_path / "buf")
    steps = ["CREATE TABLE t(id INTEGER PRIMARY KEY, c TEXT)",
             {"sql": "BEGIN IMMEDIATE", "c": "a"},
             {"sql": "BEGIN IMMEDIATE", "c": "b"},
             {"sql": "INSERT INTO t VALUES(1, 'a')", "c": "a"},
             {"q": "SELECT count(*) FROM t", "c": "b"},
             {"sql": "COMMIT", "c": "a"},
             {"q": "SELECT count(*) FROM t", "c": "b"},
             {"sql": "BEGIN EXCLUSIVE", "c": "b"},
             {"sql": "INSERT INTO t VALUES(2, 'b')", "c": "b"},
             {"sql": "COMMIT", "c": "b"}]
    for i in range(3, 40):
        steps.append({"sql": f"INSERT INTO t VALUES({i}, 'x')", "c": "ab"[i % 2]})
        steps.append({"q": "SELECT count(*) FROM t", "c": "ab"[(i + 1) % 2]})
        if i % 10 == 0:
            steps.append({"sleep": 0.15})
    steps.append({"q": "PRAGMA litestream_sync", "c": "b"})
    res = W.run_steps(ext_path, uri, steps)
    assert "locked" in res[2].get("error", ""), res[2]
    assert res[4]["rows"] == [[0]] and res[6]["rows"] == [[1]]
    errors = [r for r in res[7:] if "error" in r]
    assert not errors, errors
    counts = [r["rows"][0][0] for s, r in zip(steps, res) if isinstance(s, dict) and "q" in s][2:-1]
    assert counts == sorted(counts) and counts[-1] == 39
    out = W.restore(url, tmp_path / "r.db")
    assert plain_rows(out, "SELECT count(*) FROM t") == [(39,)]


def test_concurrent_reader_process_sees_the_writes(ext_path, tmp_path):
    """ConcurrentReaders / WriteReadVFSOnly: a read-only process sees the writer's rows."""
    url = H.file_url(tmp_path / "replica")
    W.ok(W.run_steps(ext_path, wuri(url, sync_interval="100ms", buffer_path=tmp_path / "b"),
                     ["CREATE TABLE t(x)", "INSERT INTO t VALUES(1)", {"sleep": 0.3}]))
    p = W.spawn_writer(ext_path, wuri(url, sync_interval="100ms", buffer_path=tmp_path / "b"), 100)
    try:
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(1.0)
        out = H.cli_ok(ext_path, H.vfs_uri(url, poll_interval="100ms"), [
            "SELECT count(*) > 0 FROM t;"])
        assert out.strip() == "1"
    finally:
        W.kill9(p)


def test_write_mode_off_refuses_writes(ext_path, tmp_path):
    url = H.file_url(tmp_path / "replica")
    W.ok(W.run_steps(ext_path, wuri(url, buffer_path=tmp_path / "b"), ["CREATE TABLE t(x)"]))
    res = W.run_steps(ext_path, H.vfs_uri(url), [
        {"q": "PRAGMA litestream_write_enabled"},
        "INSERT INTO t VALUES(1)",
        {"q": "PRAGMA litestream_write_enabled = 1"},
        "INSERT INTO t VALUES(2)",
        {"q": "PRAGMA litestream_write_enabled = 0"},
        "INSERT INTO t VALUES(3)",
        {"q": "PRAGMA litestream_write_enabled = maybe"},
    ], {"TMPDIR": str(tmp_path)})
    assert res[0]["rows"] == [["0"]]
    assert "readonly" in res[1]["error"]
    assert res[2]["rows"] == [["1"]] and "error" not in res[3]
    assert res[4]["rows"] == [["0"]], "disable syncs first"
    assert "readonly" in res[5]["error"]
    assert "error" in res[6]
    assert H.cli_ok(ext_path, H.vfs_uri(url), ["SELECT group_concat(x) FROM t;"]).strip() == "2"
    # mode=ro cannot enable writes
    r = W.run_steps(ext_path, H.vfs_uri(url, mode="ro"), [{"q": "PRAGMA litestream_write_enabled=1"}])
    assert "error" in r[0]


# ------------------------------------------------------------------------- crash safety
TORN = "SELECT count(*) FROM (SELECT twin FROM t GROUP BY twin HAVING count(*) <> 2)"


def test_kill9_keeps_every_returned_commit(ext_path, replica, tmp_path):
    """kill -9 at random points (inside a transaction, right after COMMIT, during uploads held
    at a delaying proxy on S3): every transaction whose COMMIT returned is in the replica after a
    restart and a sync; no torn transaction (each inserts a pair)."""
    direct, env, s3 = replica
    url, proxy = direct, None
    if s3 is not None:
        proxy, endpoint = W.start_proxy(s3.endpoint, delay_ms=150)
        url = direct.replace(s3.endpoint, endpoint)
    rng = random.Random(20)

    def uri_for(u=url):
        return wuri(u, sync_interval=rng.choice(["50ms", "300ms", "1h"]), buffer_path=tmp_path / "buf")

    committed: list[int] = []
    kills = 22 if s3 is None else 8
    try:
        first = 1
        for _ in range(kills):
            p = W.spawn_writer(ext_path, uri_for(), first, env)
            line = p.stdout.readline().strip()
            assert line == b"ready", (line, p.stderr.read()[-2000:] if p.poll() is not None else "")
            time.sleep(rng.uniform(0.02, 0.6) if s3 is None else rng.uniform(0.2, 1.5))
            got = W.kill9(p)
            committed += got
            first = (got[-1] if got else first) + 1000
        if proxy:
            H.kill_group(proxy)
            proxy = None
        res = W.ok(W.run_steps(ext_path, uri_for(direct), [
            {"q": "PRAGMA litestream_sync"},
            {"q": "SELECT count(*) FROM t WHERE id < 10000000"},
            {"q": TORN},
            {"q": "PRAGMA integrity_check"},
        ], env, timeout=120))
    finally:
        if proxy:
            H.kill_group(proxy)
    assert len(committed) > kills, "the writers committed something"
    assert int(res[0]["rows"][0][0], 16) > 1, "some uploads finished before a kill"
    assert res[2]["rows"] == [[0]], "a torn transaction"
    assert res[3]["rows"] == [["ok"]]
    out = W.restore(direct, tmp_path / "r.db", env=env)
    ids = {r[0] for r in plain_rows(out, "SELECT id FROM t WHERE id < 10000000")}
    missing = set(committed) - ids
    assert not missing, f"{len(missing)} committed transactions lost, e.g. {sorted(missing)[:5]}"
    assert plain_rows(out, TORN) == [(0,)]
    assert plain_rows(out, "PRAGMA integrity_check") == [("ok",)]


def test_unusable_buffer_fails_the_open_with_its_name(ext_path, tmp_path):
    """ExistingBufferDiscarded / WriteBufferCorrupted, on purpose unlike Go: a foreign or corrupt
    buffer is named and never applied, and the write-enabled open fails."""
    url = H.file_url(tmp_path / "replica")
    W.ok(W.run_steps(ext_path, wuri(url, buffer_path=tmp_path / "good"),
                     ["CREATE TABLE t(x)", "INSERT INTO t VALUES(1)"]))
    for content in (b"stale data", b"INVALID DATA" * 10):
        buf = tmp_path / "bad"
        buf.write_bytes(content)
        log = tmp_path / "log.txt"
        r = H.sqlite_cli(ext_path, wuri(url, buffer_path=buf), ["SELECT count(*) FROM t;"],
                         {"LITESTREAM_LOG_FILE": str(log)})
        assert r.returncode != 0
        assert f"write buffer {buf} cannot be used" in log.read_text()
        assert buf.read_bytes() == content, "never touched"


# ------------------------------------------------------------------------- conflicts
def test_conflict_between_two_processes_reaches_sql(ext_path, replica, tmp_path):
    """Two writers on one replica: exactly one upload per TXID wins; the loser's PRAGMA
    litestream_sync and next write fail naming both TXIDs and the buffer; nothing is dropped
    until asked (export with VACUUM INTO, then discard and follow the remote)."""
    url, env, s3 = replica
    W.ok(W.run_steps(ext_path, wuri(url, buffer_path=tmp_path / "a"),
                     ["CREATE TABLE t(who TEXT)", "INSERT INTO t VALUES('base')"], env))
    b_uri = wuri(url, sync_interval="-1s", buffer_path=tmp_path / "b2")
    a_uri = wuri(url, sync_interval="-1s", buffer_path=tmp_path / "a")
    export = tmp_path / "export.db"
    steps_b = [
        "INSERT INTO t VALUES('b-local')",
        {"sleep": 1.5},                                      # A uploads meanwhile
        {"q": "PRAGMA litestream_sync"},
        "INSERT INTO t VALUES('b-after')",
        {"q": "PRAGMA litestream_conflict"},
        {"q": "SELECT litestream_last_error()"},
        {"q": "SELECT group_concat(who) FROM t"},
        f"VACUUM INTO 'file:{export}?vfs=unix'",
        {"q": "PRAGMA litestream_discard_local = 1"},
        {"q": "SELECT group_concat(who) FROM t"},
        "INSERT INTO t VALUES('b-again')",
        {"q": "PRAGMA litestream_sync"},
    ]
    pb = subprocess.Popen([W.PYTHON, "-c", W.RUNNER, str(ext_path), b_uri, json.dumps(steps_b)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=H.base_env(extra=env), start_new_session=True)
    time.sleep(0.5)
    W.ok(W.run_steps(ext_path, a_uri, ["INSERT INTO t VALUES('a')", {"q": "PRAGMA litestream_sync"}],
                     env))
    out, err = pb.communicate(timeout=60)
    rb = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert len(rb) == len(steps_b), err.decode()[-3000:]
    msg = rb[2].get("error", "")
    assert "0000000000000001" in msg and "0000000000000002" in msg and str(tmp_path / "b2") in msg, rb
    assert "readonly" in rb[3].get("error", ""), rb[3]
    assert "0000000000000002" in rb[4]["rows"][0][0]
    # The refused write's cause, which SQLite cannot carry, reaches SQL.
    last = rb[5]["rows"][0][0] or ""
    assert "0000000000000001" in last and "0000000000000002" in last and str(tmp_path / "b2") in last, rb[5]
    assert "b-local" in rb[6]["rows"][0][0] and ",a" not in rb[6]["rows"][0][0]
    assert "error" not in rb[7], rb[7]
    assert "b-local" in plain_rows(export, "SELECT group_concat(who) FROM t")[0][0]
    assert rb[8]["rows"] == [["0000000000000002"]]
    assert rb[9]["rows"] == [["base,a"]]
    assert "error" not in rb[10] and rb[11]["rows"] == [["0000000000000003"]]
    assert W.l0_txids(url, s3) == [1, 2, 3]


def test_upload_faults_are_reported_then_recovered_without_duplicates(ext_path, seaweedfs, s3_prefix,
                                                                      tmp_path):
    """Faults during upload (5xx, a reset after the object landed, a stall): each sync reports
    its error, the commits stay, and the next sync succeeds with no TXID duplicated or lost (a
    landed upload whose answer was lost is recognised as ours)."""
    proxy = W.FaultProxy(seaweedfs.endpoint, ["500", "reset", "stall", None])
    url = seaweedfs.url(s3_prefix).replace(seaweedfs.endpoint, proxy.endpoint)
    try:
        res = W.run_steps(ext_path, wuri(url, sync_interval="-1s", buffer_path=tmp_path / "buf"), [
            "CREATE TABLE t(x)", "INSERT INTO t VALUES(1)",
            {"q": "PRAGMA litestream_sync"},                  # 500
            {"q": "PRAGMA litestream_sync"},                  # lands, answer lost
            {"q": "PRAGMA litestream_sync"},                  # recognised as ours: TXID 1 (no PUT)
            "INSERT INTO t VALUES(2)",
            {"q": "PRAGMA litestream_sync"},                  # stalls past the request timeout
            {"q": "SELECT count(*) FROM t"},
            {"q": "PRAGMA litestream_sync"},
        ], seaweedfs.creds_env(), timeout=90)
    finally:
        proxy.close()
    assert "error" in res[2] and "error" in res[3], res
    assert res[4]["rows"] == [["0000000000000001"]], res[4]
    assert "error" in res[6], res[6]
    assert res[7]["rows"] == [[2]]
    assert res[8]["rows"] == [["0000000000000002"]], res
    direct = seaweedfs.url(s3_prefix)
    assert W.l0_txids(direct, seaweedfs) == [1, 2]
    out = W.restore(direct, tmp_path / "r.db", env=seaweedfs.creds_env())
    assert plain_rows(out, "SELECT group_concat(x) FROM t") == [("1,2",)]


def test_writing_on_a_replica_litestream_made(ext_path, go_ext_path, tmp_path):
    """setupInitialDB of the Go suite: the real litestream replicates a primary, stops; ltxvfs
    then writes on its replica (WriteAndSync_FileBackend, InvalidPageSize); litestream restore
    and the Go extension read the result."""
    url = H.file_url(tmp_path / "replica")
    db = H.make_wal_db(tmp_path / "primary.db", schema="CREATE TABLE users(id INTEGER PRIMARY KEY, "
                                                       "name TEXT); INSERT INTO users VALUES(1, 'Alice');")
    with H.replicate(db, url) as rep:
        rep.wait_synced()
    before = W.l0_txids(url)
    res = W.ok(W.run_steps(ext_path, wuri(url, sync_interval="1h", buffer_path=tmp_path / "buf"), [
        {"q": "SELECT name FROM users"},
        "INSERT INTO users VALUES(2, 'Bob')",
        {"q": "PRAGMA litestream_sync"},
        "UPDATE users SET name = 'Robert' WHERE id = 2",
    ]))
    assert res[0]["rows"] == [["Alice"]]
    assert int(res[2]["rows"][0][0], 16) == max(before) + 1
    assert W.l0_txids(url) == before + [max(before) + 1, max(before) + 2]
    out = W.restore(url, tmp_path / "r.db")
    assert plain_rows(out, "SELECT group_concat(name) FROM users") == [("Alice,Robert",)]
    assert plain_rows(out, "PRAGMA integrity_check") == [("ok",)]
    go = H.cli_ok(go_ext_path, H.vfs_uri(url), ["SELECT group_concat(name) FROM users;"])
    assert go.strip() == "Alice,Robert"


def test_hydration_and_restore_of_a_replica_ltxvfs_wrote(ext_path, tmp_path):
    """A replica written by ltxvfs (grown, overwritten, shrunk by VACUUM) hydrates to completion
    (the hydration checksum comparison is satisfied) and equals litestream's restore. Uploads
    keep NoChecksum with post-apply 0 (VFS.md §9.4): litestream 0.5.17's restore refuses a real
    post-apply checksum ("validate trailer: post-apply checksum not allowed")."""
    import hydration_support as S
    url = H.file_url(tmp_path / "replica")
    uri = wuri(url, sync_interval="-1s", buffer_path=tmp_path / "buf")
    steps = [["CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)",
              "INSERT INTO t(v) SELECT randomblob(700) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400) SELECT x FROM c)"],
             ["UPDATE t SET v = randomblob(300) WHERE id % 3 = 0"],
             ["DELETE FROM t WHERE id > 100", "VACUUM"],
             ["INSERT INTO t(v) SELECT randomblob(500) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) SELECT x FROM c)"]]
    for i, step in enumerate(steps):
        W.ok(W.run_steps(ext_path, uri, step))
        last = W.l0_txids(url)[-1]
        assert last == i + 1
        hpath = tmp_path / f"h{i}" / "hydrated.db"
        s = S.Session(ext_path, H.vfs_uri(url, hydration_enabled="true", hydration_path=str(hpath),
                                          poll_interval="100ms"))
        try:
            S.wait_hydrated(s, hpath, last, timeout=30)
            assert s.one("PRAGMA litestream_hydration_state") == "complete"
            assert s.one("PRAGMA integrity_check") == "ok"
        finally:
            s.close()
        out = W.restore(url, tmp_path / f"r{i}.db")
        assert S.sha256_file(hpath) == S.sha256_file(out)



_WRITE_AND_HYDRATE = """
import apsw, hashlib, sys, time
ext, uri, hpath = sys.argv[1:4]
loader = apsw.Connection(':memory:'); loader.enable_load_extension(True); loader.load_extension(ext)
con = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI)
steps = ["CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)",
         "INSERT INTO t(v) SELECT randomblob(600) FROM (WITH RECURSIVE c(x) AS "
         "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x FROM c)",
         "UPDATE t SET v = randomblob(100) WHERE id % 2 = 0"]
for sql in steps:
    con.execute(sql)
    txid = con.execute("PRAGMA litestream_sync").fetchone()[0]
    deadline = time.monotonic() + 30
    while True:
        state = con.execute("PRAGMA litestream_hydration_state").fetchone()[0]
        meta = open(hpath + ".meta").read().split()[0] if state == "complete" else ""
        if state == "complete" and meta and int(meta) == int(txid, 16):
            break
        assert time.monotonic() < deadline, (state, meta, txid)
        time.sleep(0.05)
    print(txid, hashlib.sha256(open(hpath, "rb").read()).hexdigest(), flush=True)
"""


def test_writer_and_hydration_in_one_connection(ext_path, tmp_path):
    """Issue 10 item 6: the writer's synced pages reach the hydrated file of the same replica
    object, which then equals litestream's restore of what was uploaded, at every sync."""
    import hydration_support as S
    url = H.file_url(tmp_path / "replica")
    hpath = tmp_path / "h" / "hydrated.db"
    uri = wuri(url, sync_interval="-1s", buffer_path=tmp_path / "buf", hydration_enabled="true",
               hydration_path=str(hpath), poll_interval="100ms")
    rc, out, err, _ = H.run([os.environ.get("PYTHON", "python3"), "-c", _WRITE_AND_HYDRATE, str(ext_path),
                             uri, str(hpath)], env=H.base_env(), timeout=120)
    assert rc == 0, err.decode()[-3000:]
    lines = [l.split() for l in out.decode().splitlines()]
    assert [int(t, 16) for t, _ in lines] == [1, 2, 3] and W.l0_txids(url)[-1] == 3
    for txid, sha in lines:
        restored = W.restore(url, tmp_path / f"r{txid}.db", txid=int(txid, 16))
        assert sha == S.sha256_file(restored), f"TXID {txid}"
