"""Issue 12: cheap polling and `PRAGMA litestream_wait`, through the real extension, with the
real litestream replicating into SeaweedFS behind the counting proxy (bench/proxy.py).

  * an idle connection probes the next L0 name (HEAD) and LISTs only every 20 polls;
  * `litestream_wait` reaches a TXID at once (no tick: the poll interval here is 1 h), and a TXID
    that never arrives fails at the timeout with a clear error.
"""
from __future__ import annotations

import sqlite3
import time

import pytest

import harness as H
import hydration_support as S


def _db(path):
    H.make_wal_db(path, schema="CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                               "INSERT INTO t(v) VALUES ('a');")
    return path


def _insert(path, v):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("INSERT INTO t(v) VALUES (?)", (v,))
    con.close()


@pytest.fixture
def live(seaweedfs, tmp_path, request):
    if H.is_go_ext(request.getfixturevalue("ext_path")):
        pytest.skip("ltxvfs-only behaviour (Go has neither probes nor litestream_wait)")
    prefix = H.new_prefix("poll")
    proxy = S.FaultProxy(seaweedfs.port)
    request.addfinalizer(proxy.close)
    db = _db(tmp_path / "p.db")
    with H.replicate(db, seaweedfs.url(prefix), s3=seaweedfs) as rep:
        yield db, rep, proxy.url(seaweedfs, prefix), proxy, seaweedfs.creds_env()


def test_idle_connection_probes_and_rarely_lists(ext_path, live):
    db, rep, url, proxy, env = live
    rep.wait_synced()
    s = S.Session(ext_path, H.vfs_uri(url, poll_interval="100ms"), env=env)
    try:
        assert s.one("SELECT count(*) FROM t") == 1
        time.sleep(0.5)
        proxy.reset()
        time.sleep(4.0)  # about 40 polls
        kinds = proxy.stats()["by_kind"]
        heads = kinds.get("head", {}).get("requests", 0)
        lists = kinds.get("list", {}).get("requests", 0)
        assert 25 <= heads <= 45, kinds
        assert lists <= 6, kinds  # two listings (L0 + L1) every 20 polls
        # New L0 files are still followed on the next poll.
        _insert(db, "b")
        txid = rep.wait_synced()
        deadline = time.monotonic() + 10
        while s.one("SELECT litestream_txid()") != f"{txid:016x}":
            assert time.monotonic() < deadline, "txid not followed"
            time.sleep(0.05)
        assert s.one("SELECT count(*) FROM t") == 2
    finally:
        s.close()


def test_litestream_wait_reaches_a_txid_at_once_or_times_out(ext_path, live):
    db, rep, url, proxy, env = live
    rep.wait_synced()
    s = S.Session(ext_path, H.vfs_uri(url, poll_interval="1h"), env=env)
    try:
        assert s.one("SELECT count(*) FROM t") == 1
        _insert(db, "b")
        txid = rep.wait_synced()
        assert s.one("SELECT count(*) FROM t") == 1, "no poll for an hour"
        assert s.one(f"PRAGMA litestream_wait = '{txid:016x},10s'") == f"{txid:016x}"
        assert s.one("SELECT count(*) FROM t") == 2
        t0 = time.monotonic()
        r = s.query(f"PRAGMA litestream_wait = '{txid + 1000:x},1s'")
        took = time.monotonic() - t0
        assert "error" in r, r
        assert f"TXID {txid + 1000:016x} not reached within 1s" in r["error"], r
        assert 0.9 <= took <= 5, took
        r = s.query("PRAGMA litestream_wait = 'soon'")
        assert "invalid value for litestream_wait" in r.get("error", ""), r
    finally:
        s.close()


def test_min_level_reads_only_compacted_levels(ext_path, vector, tmp_path):
    if H.is_go_ext(ext_path):
        pytest.skip("the Go extension has no min_level (ncruces' driver has)")
    v = vector("ps512")
    # Keep TXIDs 6..8 only in L0: the compacted levels stop at TXID 5.
    held = tmp_path / "held.ltx"
    v.ltx(1, "0000000000000006-0000000000000008.ltx").rename(held)
    v.ltx(2, "0000000000000006-0000000000000008.ltx").unlink()
    v.ltx(9, "0000000000000001-0000000000000008.ltx").unlink()
    assert H.cli_ok(ext_path, v.uri(), ["SELECT litestream_txid();"]).split() == ["0000000000000008"]
    s = S.Session(ext_path, v.uri(min_level="1", poll_interval="50ms"))
    try:
        assert s.one("SELECT litestream_txid()") == "0000000000000005"
        assert s.one("PRAGMA integrity_check") == "ok"
        held.rename(v.ltx(1, "0000000000000006-0000000000000008.ltx"))
        assert s.one("PRAGMA litestream_wait = '8,10s'") == "0000000000000008"
        assert s.one("PRAGMA integrity_check") == "ok"
    finally:
        s.close()
    r = H.sqlite_cli(ext_path, v.uri(min_level="10"), ["SELECT 1;"])
    assert "invalid min_level" in (r.stdout + r.stderr), r
