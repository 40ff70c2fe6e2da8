"""Issue 10: hydration. The real `litestream replicate` writes a live database into SeaweedFS or
file://; the extension hydrates it into a local file, which must be byte-identical to
`litestream restore -txid` of the same TXID, keep read isolation while polls update it, survive
restarts and kill -9, report faults in PRAGMA litestream_hydration_state, and stay within a
bounded memory. The Go extension breaks isolation and shares one path per process (VFS.md §11,
defect 7); these tests are for ltxvfs only.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

import harness as H
import hydration_support as S

pytestmark = pytest.mark.go_differs("hydration state PRAGMA, isolation and persistence are ltxvfs's", strict=False)


def make_db(path: Path, rows: int, blob: int = 900) -> Path:
    H.make_wal_db(path, schema="CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, n INTEGER);"
                               "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER);")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("BEGIN")
    con.executemany("INSERT INTO t(v, n) VALUES (randomblob(?), ?)", [(blob, i) for i in range(rows)])
    con.executemany("INSERT INTO acct(bal) VALUES (?)", [(100,)] * 10)
    con.execute("COMMIT")
    con.close()
    return path


def write(path: Path, sql: str, args=()):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute(sql, args)
    con.close()


def hyd_uri(url: str, hpath: Path, **kw) -> str:
    return H.vfs_uri(url, hydration_enabled="true", hydration_path=str(hpath), poll_interval="100ms", **kw)


@pytest.fixture
def s3_env(seaweedfs):
    return seaweedfs.creds_env()


# ----------------------------------------------------------------------------- equal to restore
@pytest.mark.parametrize("backend", ["file", "s3"])
def test_hydrated_file_equals_restore_and_follows_updates(ext_path, tmp_path, backend, request):
    env, proxy = {}, None
    if backend == "s3":
        s3 = request.getfixturevalue("seaweedfs")
        env = s3.creds_env()
        prefix = H.new_prefix("hyd")
        url = s3.url(prefix)
        proxy = S.FaultProxy(s3.port)
        request.addfinalizer(proxy.close)
        vfs_url = proxy.url(s3, prefix)
    else:
        s3 = None
        url = vfs_url = H.file_url(tmp_path / "replica")
    db = make_db(tmp_path / "p.db", rows=3000)
    hpath = tmp_path / "h" / "hydrated.db"
    with H.replicate(db, url, s3=s3) as rep:
        txid = rep.wait_synced()
        s = S.Session(ext_path, hyd_uri(vfs_url, hpath, cache_size=str(256 << 10)), env=env)
        try:
            S.wait_hydrated(s, hpath, txid)
            assert s.one("PRAGMA litestream_hydration_progress") == "100.0"
            assert s.one("PRAGMA litestream_hydration_file") == str(hpath)
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, url, txid, env)
            assert s.one("SELECT count(*) FROM t") == 3000
            if proxy is not None:
                # Complete: reads come from the local file (no GET); time travel reads the
                # replica; LATEST comes back to the file (Go does not, VFS.md §10.3).
                def gets(sql):
                    before = proxy.stats()["by_kind"].get("get", {}).get("requests", 0)
                    s.rows(sql)
                    return proxy.stats()["by_kind"].get("get", {}).get("requests", 0) - before
                # (A poll may fetch the index of a new L1 compaction meanwhile: at most a couple.)
                scan = "SELECT sum(length(v)) FROM t"
                assert gets(scan) <= 2
                s.rows("PRAGMA litestream_time = 'in 2 days'")
                assert gets(scan) >= 5
                s.rows("PRAGMA litestream_time = LATEST")
                assert gets(scan) <= 2
            # Updates after completion: equal to a new restore at the new TXID.
            write(db, "UPDATE t SET n = n + 1 WHERE id % 7 = 0")
            write(db, "INSERT INTO t(v, n) SELECT randomblob(900), -1 FROM t WHERE id <= 500")
            txid2 = rep.wait_synced()
            S.wait_hydrated(s, hpath, txid2)
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, url, txid2, env)
            assert s.one("SELECT count(*) FROM t") == 3500
            assert s.one("PRAGMA integrity_check") == "ok"
        finally:
            s.close()


def test_pragmas_when_off(ext_path, vector):
    v = vector("ps4096")
    out = H.cli_ok(ext_path, v.uri(), ["PRAGMA litestream_hydration_progress;", "PRAGMA litestream_hydration_file;",
                                       "PRAGMA litestream_hydration_state;"])
    assert out.split("\n")[:3] == ["0", "", "off"]


def test_env_variables_enable_hydration(ext_path, vector, tmp_path):
    v = vector("ps4096")
    hpath = tmp_path / "env.db"
    out = H.cli_ok(ext_path, v.uri(), ["PRAGMA litestream_hydration_file;", ".system sleep 1",
                                       "PRAGMA litestream_hydration_state;"],
                   env={"LITESTREAM_HYDRATION_ENABLED": "true", "LITESTREAM_HYDRATION_PATH": str(hpath)})
    assert out.split() == [str(hpath), "complete"]
    # ps4096 state 8 (VFS.md §11): the same bytes as litestream restore, 02 02 at 18/19.
    assert S.sha256_file(hpath) == "3beabe08fb45df4f4be0898893708a1ed7fcf35e96020ca8db7e2cdfe15887c0"
    assert hpath.read_bytes()[18:20] == b"\x02\x02"


# ----------------------------------------------------------------------------- isolation
def test_read_transaction_keeps_its_txid_while_the_file_moves_on(ext_path, tmp_path):
    url = H.file_url(tmp_path / "replica")
    db = make_db(tmp_path / "p.db", rows=200)
    hpath = tmp_path / "iso.db"
    with H.replicate(db, url) as rep:
        txid = rep.wait_synced()
        s = S.Session(ext_path, hyd_uri(url, hpath))
        stop = threading.Event()

        def transfers():
            con = sqlite3.connect(db, isolation_level=None, timeout=10)
            i = 0
            while not stop.is_set():
                a, b = i % 10 + 1, (i * 3 + 1) % 10 + 1
                con.execute("BEGIN IMMEDIATE")
                con.execute("UPDATE acct SET bal = bal - 1 WHERE id = ?", (a,))
                con.execute("UPDATE acct SET bal = bal + 1 WHERE id = ?", (b,))
                con.execute("INSERT INTO t(v, n) VALUES (randomblob(900), ?)", (i,))
                con.execute("COMMIT")
                i += 1
                time.sleep(0.02)
            con.close()

        w = threading.Thread(target=transfers, daemon=True)
        try:
            S.wait_hydrated(s, hpath, txid)
            w.start()
            s.rows("BEGIN")
            pinned = s.rows("SELECT litestream_txid(), (SELECT count(*) FROM t), "
                            "(SELECT group_concat(bal) FROM acct), (SELECT sum(bal) FROM acct)")
            assert pinned[0][3] == 1000
            moved = 0
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                assert s.rows("SELECT litestream_txid(), (SELECT count(*) FROM t), "
                              "(SELECT group_concat(bal) FROM acct), (SELECT sum(bal) FROM acct)") == pinned
                m = S.meta_txid(hpath)
                if m is not None and m > int(pinned[0][0], 16):
                    moved += 1
                time.sleep(0.1)
            assert moved >= 10, "the hydration file should have been updated while the transaction was open"
            s.rows("COMMIT")
            stop.set()
            w.join(10)
            last = rep.wait_synced()
            S.wait_hydrated(s, hpath, last)
            after = s.rows("SELECT (SELECT count(*) FROM t), (SELECT sum(bal) FROM acct)")
            assert after[0][0] > pinned[0][1] and after[0][1] == 1000
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, url, last)
        finally:
            stop.set()
            s.close()


# ----------------------------------------------------------------------------- restart, regression
def test_restart_catches_up_without_a_restore_and_regression_restores(ext_path, tmp_path, seaweedfs):
    env = seaweedfs.creds_env()
    prefix = H.new_prefix("hydr")
    proxy = S.FaultProxy(seaweedfs.port)
    url = proxy.url(seaweedfs, prefix)
    direct = seaweedfs.url(prefix)
    db = make_db(tmp_path / "p.db", rows=4000)
    hpath = tmp_path / "r.db"
    try:
        with H.replicate(db, direct, s3=seaweedfs) as rep:
            txid = rep.wait_synced()
            s = S.Session(ext_path, hyd_uri(url, hpath), env=env)
            S.wait_hydrated(s, hpath, txid)
            full_bytes = proxy.stats()["bytes"]
            s.close()
            size = hpath.stat().st_size
            assert full_bytes >= size * 0.5, (full_bytes, size)
            write(db, "UPDATE t SET n = -n WHERE id = 17")
            txid2 = rep.wait_synced()
            proxy.reset()
            s = S.Session(ext_path, hyd_uri(url, hpath), env=env)
            try:
                S.wait_hydrated(s, hpath, txid2)
                # "0.0": resumed from the persistent file without a restore (VFS.md §10.2).
                assert s.one("PRAGMA litestream_hydration_progress") == "0.0"
                assert s.one("SELECT n FROM t WHERE id = 17") == -16
            finally:
                s.close()
            st = proxy.stats()
            assert st["bytes"] < size / 4, f"catch-up fetched {st['bytes']} bytes of a {size}-byte database"
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, direct, txid2, env)
        # TXID regression: the same file, a replica whose TXID is lower than the file's.
        db_b = make_db(tmp_path / "b.db", rows=50)
        url_b = seaweedfs.url(H.new_prefix("hydb"))
        with H.replicate(db_b, url_b, s3=seaweedfs) as rep_b:
            txid_b = rep_b.wait_synced()
            assert txid_b < txid2
            s = S.Session(ext_path, hyd_uri(url_b, hpath), env=env)
            try:
                S.wait_hydrated(s, hpath, txid_b)
                assert s.one("SELECT count(*) FROM t") == 50
            finally:
                s.close()
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, url_b, txid_b, env)
    finally:
        proxy.close()


def test_a_torn_file_is_restored(ext_path, vector, tmp_path):
    v = vector("ps4096")
    hpath = tmp_path / "torn.db"
    uri = v.uri(hydration_enabled="true", hydration_path=str(hpath))
    H.cli_ok(ext_path, uri, [".system sleep 1"])
    good = S.sha256_file(hpath)
    data = bytearray(hpath.read_bytes())
    data[5000] ^= 0xFF
    hpath.write_bytes(bytes(data))
    out = H.cli_ok(ext_path, uri, ["PRAGMA litestream_hydration_progress;", ".system sleep 1",
                                   "PRAGMA litestream_hydration_state;", "PRAGMA litestream_hydration_progress;"])
    assert out.split()[1:] == ["complete", "100.0"]
    assert S.sha256_file(hpath) == good


# ----------------------------------------------------------------------------- kill -9
def test_kill9_during_restore_and_during_update(ext_path, tmp_path, seaweedfs):
    env = seaweedfs.creds_env()
    prefix = H.new_prefix("hydk")
    proxy = S.FaultProxy(seaweedfs.port, delay_ms=40)
    url = proxy.url(seaweedfs, prefix)
    direct = seaweedfs.url(prefix)
    db = make_db(tmp_path / "p.db", rows=12000)
    hpath = tmp_path / "k.db"
    small = {"cache_size": str(1 << 20)}
    try:
        with H.replicate(db, direct, s3=seaweedfs) as rep:
            txid = rep.wait_synced()
            s = S.Session(ext_path, hyd_uri(url, hpath, **small), env=env)
            S.wait_for(lambda: 0 < float(s.one("PRAGMA litestream_hydration_progress")) < 100, 30, "mid-restore", 0.01)
            s.kill9()
            s = S.Session(ext_path, hyd_uri(url, hpath, **small), env=env)
            S.wait_hydrated(s, hpath, txid)
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, direct, txid, env)
            # An update touching every page of t, killed while the file is being updated.
            write(db, "UPDATE t SET n = n + 1")
            txid2 = rep.wait_synced()
            meta = Path(str(hpath) + ".meta")
            S.wait_for(lambda: "state=dirty" in meta.read_text(), 30, "update under way", 0.005)
            s.kill9()
            s = S.Session(ext_path, hyd_uri(url, hpath, **small), env=env)
            try:
                S.wait_hydrated(s, hpath, txid2)
                assert s.one("SELECT sum(n) FROM t") == sum(range(12000)) + 12000
            finally:
                s.close()
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, direct, txid2, env)
    finally:
        proxy.close()


# ----------------------------------------------------------------------------- faults
def test_faults_are_retried_reported_and_reads_keep_working(ext_path, tmp_path, seaweedfs):
    env = seaweedfs.creds_env()
    prefix = H.new_prefix("hydf")
    # With a 256 KiB cache, hydration asks for 128 KiB ranges and page reads for at most 64 KiB
    # (read-ahead is a quarter of the cache): the proxy faults only the former.
    proxy = S.FaultProxy(seaweedfs.port, big=100_000)
    url = proxy.url(seaweedfs, prefix)
    direct = seaweedfs.url(prefix)
    db = make_db(tmp_path / "p.db", rows=4000)
    uri_opts = {"cache_size": str(256 << 10)}
    try:
        with H.replicate(db, direct, s3=seaweedfs) as rep:
            txid = rep.wait_synced()
            # A few failed requests: retried, the file completes.
            proxy.fail_count = 3
            hpath = tmp_path / "f1.db"
            s = S.Session(ext_path, hyd_uri(url, hpath, **uri_opts), env=env)
            try:
                S.wait_hydrated(s, hpath, txid)
            finally:
                s.close()
            assert proxy.failed == 3
            assert S.sha256_file(hpath) == S.restore_sha256(tmp_path, direct, txid, env)
            # Every hydration request refused: the state says so, reads use the replica.
            proxy.fail_status, proxy.fail_count = 403, -1
            hpath = tmp_path / "f2.db"
            s = S.Session(ext_path, hyd_uri(url, hpath, **uri_opts), env=env)
            try:
                st = S.wait_for(lambda: (x := s.state()).startswith("failed") and x, 30, "failed state")
                assert "403" in st or "denied" in st.lower() or "forbidden" in st.lower(), st
                assert s.one("SELECT count(*) FROM t") == 4000
                assert s.one("SELECT n FROM t WHERE id = 3999") == 3998
                proxy.fail_count = 0
                S.wait_hydrated(s, hpath, txid, timeout=60)
            finally:
                s.close()
    finally:
        proxy.close()


# ----------------------------------------------------------------------------- per replica, lock
def test_two_replicas_two_files_and_a_second_process_is_refused(ext_path, vector, tmp_path):
    a, b = vector("ps4096"), vector("ps512")
    pa, pb = tmp_path / "a.db", tmp_path / "b.db"
    sa = S.Session(ext_path, a.uri(hydration_enabled="true", hydration_path=str(pa)))
    sb = S.Session(ext_path, b.uri(hydration_enabled="true", hydration_path=str(pb)))
    log = tmp_path / "second.log"
    try:
        S.wait_hydrated(sa, pa, int(a.max_txid, 16))
        S.wait_hydrated(sb, pb, int(b.max_txid, 16))
        assert S.sha256_file(pa) != S.sha256_file(pb)
        r = H.sqlite_cli(ext_path, a.uri(hydration_enabled="true", hydration_path=str(pa)),
                         ["SELECT count(*) FROM t;"], env={"LITESTREAM_LOG_FILE": str(log)})
        assert r.returncode != 0
        assert "in use by another" in log.read_text()
    finally:
        sa.close()
        sb.close()
    # In one process, closing the last connection and opening again at once waits for the
    # stopping task to release the file instead of finding it locked.
    uri = a.uri(hydration_enabled="true", hydration_path=str(pa))
    out = H.cli_ok(ext_path, uri, [f".open '{uri}'", f".open '{uri}'", ".system sleep 0.5",
                                   "PRAGMA litestream_hydration_state;", "SELECT count(*) FROM t;"])
    assert out.split()[0] == "complete", out
    # Two replicas in one process (one connection, ATTACH): two files, two tasks.
    pb.unlink()
    Path(str(pb) + ".meta").unlink()
    uri_b = b.uri(hydration_enabled="true", hydration_path=str(pb))
    out = H.cli_ok(ext_path, uri, [f"ATTACH '{uri_b}' AS b;", ".system sleep 1",
                                   "PRAGMA main.litestream_hydration_file;", "PRAGMA b.litestream_hydration_file;",
                                   "PRAGMA b.litestream_hydration_state;"])
    assert out.split() == [str(pa), str(pb), "complete"], out
    assert S.meta_txid(pb) == int(b.max_txid, 16) and S.meta_txid(pa) == int(a.max_txid, 16)


# ----------------------------------------------------------------------------- memory
def test_memory_stays_bounded_on_a_database_many_times_the_cache(ext_path, tmp_path):
    url = H.file_url(tmp_path / "replica")
    db = make_db(tmp_path / "p.db", rows=24000)  # ~24 MiB, 24× the 1 MiB cache
    cache = 1 << 20
    with H.replicate(db, url) as rep:
        txid = rep.wait_synced()
        plain = S.Session(ext_path, H.vfs_uri(url, cache_size=str(cache)))
        try:
            plain.rows("SELECT count(*) FROM t WHERE id < 100")
            base = plain.peak_rss_kib()
        finally:
            plain.close()
        hpath = tmp_path / "m.db"
        s = S.Session(ext_path, hyd_uri(url, hpath, cache_size=str(cache)))
        try:
            S.wait_hydrated(s, hpath, txid)
            s.rows("SELECT count(*) FROM t WHERE id < 100")
            peak = s.peak_rss_kib()
        finally:
            s.close()
        size_kib = hpath.stat().st_size // 1024
        assert size_kib >= 10 * cache // 1024
        # Cache + index + one fetch round (2 MiB at this cache size) + decode buffers: 16 MiB margin.
        assert peak - base < 16 * 1024, f"peak RSS {peak} KiB vs {base} KiB without hydration (db {size_kib} KiB)"
