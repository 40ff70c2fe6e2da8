"""Issue 11: the host's pooled instances isolate requests (src/wasi/isolation.rs): each request
starts at the latest state, ATTACH / TEMP objects / load_extension are refused by an
authorizer, and results are capped with a clear error."""
from __future__ import annotations

from component_support import component  # noqa: F401 (fixture)


def test_requests_are_isolated_and_results_capped(component, vector):  # noqa: F811
    v = vector("ps4096")
    count = [[v.latest["t_count"]]]
    with component.serve(v.url, "--pool", "1") as srv:
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == count
        # A time set inside one request's SQL does not leak into the next request.
        first = srv.query_ok("PRAGMA litestream_txid")["rows"]
        srv.query("PRAGMA litestream_time = '1970-01-02T00:00:00Z'")
        assert srv.query_ok("PRAGMA litestream_txid")["rows"] == first
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == count
        for sql in ("ATTACH '/etc/passwd' AS p", "CREATE TEMP TABLE x(a)", "CREATE TEMP VIEW w AS SELECT 1",
                    "SELECT load_extension('/tmp/x.so')"):
            st, res, _ = srv.query(sql)
            msg = res["error"]["message"]
            # load_extension is not even compiled into the component's SQLite.
            ok = "not authorized" in msg or (sql.startswith("SELECT load_") and "no such function" in msg)
            assert st == 400 and ok, (sql, st, res)
        st, res, _ = srv.query("SELECT name FROM temp.sqlite_master")
        assert st == 200 and res["rows"] == [], res
        st, res, _ = srv.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000) "
                               "SELECT x FROM c")
        assert st == 400 and "result too large: more than 100000 rows" in res["error"]["message"], res
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == count
