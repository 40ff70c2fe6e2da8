"""The WebAssembly component and its wasmtime host (issue 5).

Same answers as the native extension: the component (run by ``ltxvfs-host query`` in a fresh
instance, and by ``ltxvfs-host serve`` from pooled instances through the component's own
``wasi:http/incoming-handler``) must return exactly the typed rows the native extension returns
for the same queries on the same replica: file:// vectors (a preopened directory), http:// (a
static server with ranges), and a live s3:// replica that the real ``litestream`` writes to
SeaweedFS, including after the primary changes (polling inside the component).

The sandbox holds: a replica whose server is not on the allow-list is refused (and the server
receives nothing); an unbounded ``WITH RECURSIVE`` is stopped by the deadline; an instance that
exceeds its memory limit fails cleanly while the host keeps serving.
"""
from __future__ import annotations

import json
import shutil
import threading
import time

import pytest

import harness as H
from component_support import component, decode_rows, native_queries, static_server  # noqa: F401
from test_interop import SCHEMA, write_workload

VECTOR_QUERIES = [
    {"sql": "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"},
    {"sql": "SELECT count(*), sum(val), total(length(pad)), min(name), max(name) FROM t"},
    {"sql": "SELECT * FROM t ORDER BY id"},
    {"sql": "SELECT id, name, val FROM t WHERE name = ?", "params": ["row-78"]},
    {"sql": "SELECT * FROM t WHERE id IN (?, ?, ?) ORDER BY id", "params": [1, 150, 2003]},
    {"sql": "SELECT k, typeof(v), v FROM kv ORDER BY k"},
    {"sql": "SELECT 1, 2.5, -0.1, 'text', x'00ff10', NULL, 9223372036854775807, ?, ?, ?",
     "params": [b"\x00\x01binary", 3.25, "it's"]},
    {"sql": "PRAGMA page_size"},
]
LIVE_QUERIES = [
    {"sql": "SELECT count(*), sum(qty), sum(length(payload)) FROM items"},
    {"sql": "SELECT id, name, qty, payload FROM items ORDER BY id"},
    {"sql": "SELECT id, qty FROM items WHERE name = ?", "params": ["item-000123"]},
    {"sql": "SELECT k, typeof(v), v FROM kv ORDER BY k"},
    {"sql": "SELECT name FROM items WHERE name >= ? ORDER BY name DESC LIMIT 25",
     "params": ["item-0015"]},
]


def assert_same(host_res: dict, native_res: dict, what: str):
    assert "error" not in native_res, f"{what}: native failed: {native_res}"
    assert host_res["columns"] == native_res["columns"], what
    got, want = decode_rows(host_res), decode_rows(native_res)
    assert len(got) == len(want), f"{what}: {len(got)} rows vs native {len(want)}"
    assert got == want, f"{what}: rows differ (first: {got[:3]!r} vs {want[:3]!r})"
    assert host_res["txid"] == native_res["txid"], what


def via_query(host, replica, q, env=None, args=()):
    return host.query_ok(replica, q["sql"], q.get("params", ()), env=env, args=args,
                         time_=q.get("time"))


# ------------------------------------------------------------------------------ same answers
@pytest.mark.parametrize("name", ["ps512", "ps4096", "ps65536"])
def test_file_vector_same_as_native(component, ext_path, vector, name):
    """file:// through a preopened directory: `query` (fresh instance per query) and `serve`."""
    v = vector(name)
    native = native_queries(ext_path, v.url, VECTOR_QUERIES)
    for q, want in zip(VECTOR_QUERIES, native):
        assert_same(via_query(component, v.url, q), want, f"query {q['sql']}")
    with component.serve(v.url) as srv:
        for q, want in zip(VECTOR_QUERIES, native):
            assert_same(srv.query_ok(q["sql"], q.get("params", ())), want, f"serve {q['sql']}")
        st = srv.status()
        assert st["txid"] == v.max_txid
        assert srv.stats()["instances_started"] == 1, "requests must reuse the pooled instance"


def test_time_travel_same_as_native(component, ext_path, vector):
    v = vector("ps4096")
    states = [s for s in v.expected["states"].values() if s.get("time_travel_target")][:4]
    assert states
    qs = [{"sql": "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
           "time": s["time_travel_target"]} for s in states]
    native = native_queries(ext_path, v.url, qs)
    for q, want, st in zip(qs, native, states):
        got = via_query(component, v.url, q)
        assert_same(got, want, f"time {q['time']}")
        assert [r[0] for r in got["rows"]] == sorted(st["tables"])
    with component.serve(v.url) as srv:
        for q, want in zip(qs, native):
            assert_same(srv.query_ok(q["sql"], time=q["time"]), want, f"serve time {q['time']}")
        # back to the latest state after a time-travel request
        assert srv.query_ok("SELECT 1")["txid"] == v.max_txid


def test_http_static_replica_same_as_native(component, ext_path, vector):
    """http:// replica: a static server (directory listings + ranges), same rows as file://."""
    v = vector("ps4096")
    native = native_queries(ext_path, v.url, VECTOR_QUERIES)
    with static_server(v.root) as (base, httpd):
        url = f"{base}/replica"
        for q, want in zip(VECTOR_QUERIES[:4], native[:4]):
            assert_same(via_query(component, url, q), want, f"http {q['sql']}")
        ranged = [r for r in httpd.requests if r[0] == "GET" and r[2]]
        assert ranged, "reads must be ranged GETs"


@pytest.fixture(scope="module")
def live_s3(request, tmp_path_factory):
    s3 = request.getfixturevalue("seaweedfs")
    work = tmp_path_factory.mktemp("component-live")
    db = H.make_wal_db(work / "primary.db", schema=SCHEMA)
    url = s3.url(H.new_prefix("wasm"))
    with H.replicate(db, url, s3=s3) as rep:
        write_workload(db, rep, seed=11, first_id=1, batches=3, per_batch=500)
        rep.wait_synced()
        yield db, url, rep, s3


@pytest.mark.s3
def test_s3_live_same_as_native_and_follows_primary(component, ext_path, live_s3):
    """The real litestream replicates to SeaweedFS; the component signs SigV4 itself. `query` and
    `serve` give the native rows; after the primary changes, the warm instance of `serve` polls
    and gives the new native rows."""
    db, url, rep, s3 = live_s3
    env = s3.creds_env()
    native = native_queries(ext_path, url, LIVE_QUERIES, env)
    for q, want in zip(LIVE_QUERIES, native):
        assert_same(via_query(component, url, q, env=env), want, f"query {q['sql']}")
    with component.serve(url, "--poll-interval-ms", "200", env=env) as srv:
        for q, want in zip(LIVE_QUERIES, native):
            assert_same(srv.query_ok(q["sql"], q.get("params", ())), want, f"serve {q['sql']}")
        before = srv.status()["txid"]
        write_workload(db, None, seed=12, first_id=50_000, batches=2, per_batch=300)
        txid = rep.wait_synced()
        want_txid = f"{txid:016x}"
        assert want_txid > before
        deadline = time.monotonic() + 30
        while srv.query_ok("SELECT count(*) FROM items")["txid"] != want_txid:
            assert time.monotonic() < deadline, f"serve did not reach {want_txid}\n{srv.log_text()}"
            time.sleep(0.2)
        native2 = native_queries(ext_path, url, LIVE_QUERIES, env)
        for q, want in zip(LIVE_QUERIES, native2):
            assert_same(srv.query_ok(q["sql"], q.get("params", ())), want, f"after change {q['sql']}")
        assert srv.stats()["instances_started"] == 1


# ------------------------------------------------------------------------------ the sandbox
@pytest.mark.s3
def test_replica_not_on_allow_list_is_refused(component, vector, seaweedfs, s3_prefix):
    """The host derives the allow-list from --replica; a request naming another server is refused
    by the host's send_request hook and that server receives nothing."""
    v = vector("ps512")
    seaweedfs.upload_replica(v.replica, s3_prefix)
    env = seaweedfs.creds_env()
    good = seaweedfs.url(s3_prefix)
    # `query`: the replica's own server is reachable...
    assert component.query_ok(good, "PRAGMA litestream_txid", env=env)["rows"] == [[v.max_txid]]
    # ...but not when the host allows only another one.
    rc, _, err = component.query(good, "SELECT 1", env=env, args=["--allow-host", "127.0.0.1:9"])
    assert rc == 1, err
    assert "denied by the host" in err and "allow-list" in err, err
    with static_server(v.root) as (base, other), component.serve(good, env=env) as srv:
        st, res, _ = srv.query("SELECT count(*) FROM t", replica=f"{base}/replica")
        assert st == 502, res
        assert "denied by the host" in res["error"]["message"], res
        assert other.requests == [], "the refused server must not be contacted"
        assert srv.stats()["outgoing_denied"] >= 1
        # the allowed replica still answers on the same server
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == [[v.latest["t_count"]]]


@pytest.mark.s3
def test_s3_credentials_are_signed_and_checked(component, vector, seaweedfs, s3_prefix):
    """SigV4 by the component: a wrong secret is rejected by SeaweedFS and the error carries the
    server's reason; of the host's environment only the named variables reach the instance."""
    v = vector("ps512")
    seaweedfs.upload_replica(v.replica, s3_prefix)
    url = seaweedfs.url(s3_prefix)
    rc, _, err = component.query(url, "SELECT 1", env={"AWS_ACCESS_KEY_ID": seaweedfs.access_key,
                                                       "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert rc == 1, err
    e = json.loads(err.strip().splitlines()[-1])["error"]
    assert e["code"] == 14 and "SignatureDoesNotMatch" in e["message"], e
    # The host's own environment does not reach the instance: only the variables it names.
    rc, _, err = component.query(url, "SELECT 1", env=dict(seaweedfs.creds_env(), LTXVFS_LOG="debug"))
    assert rc == 0 and "ltxvfs DEBUG" not in err, err
    rc, _, err = component.query(url, "SELECT 1", env=seaweedfs.creds_env(), args=["--log", "debug"])
    assert rc == 0 and "ltxvfs DEBUG" in err, err
    # The credential variables it names do reach it.
    got = component.query_ok(url, "SELECT count(*) FROM t", env=seaweedfs.creds_env())
    assert got["rows"] == [[v.latest["t_count"]]]


def test_unbounded_recursion_is_stopped_by_the_deadline(component, vector):
    v = vector("ps512")
    with component.serve(v.url, "--deadline-ms", "1500") as srv:
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == [[v.latest["t_count"]]]
        t0 = time.monotonic()
        st, res, _ = srv.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                               "SELECT count(*) FROM c")
        elapsed = time.monotonic() - t0
        assert st == 503, res
        assert "deadline of 1500 ms" in res["error"]["message"], res
        assert elapsed < 15, elapsed
        # the host goes on with a fresh instance
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == [[v.latest["t_count"]]]
        stats = srv.stats()
        assert stats["instances_dropped"] == 1 and stats["instances_started"] == 2, stats
    rc, _, err = component.query(v.url, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                 "FROM c) SELECT count(*) FROM c", args=["--deadline-ms", "1000"])
    assert rc == 2 and "deadline of 1000 ms" in err, err


MEMORY_HOG = ("SELECT length(group_concat(zeroblob(1000000))) FROM "
              "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 400) "
              "SELECT x FROM c)")


def test_memory_limit_fails_cleanly_while_others_are_served(component, vector):
    v = vector("ps4096")
    with component.serve(v.url, "--memory-limit-mib", "64", "--pool", "2") as srv:
        count = [[v.latest["t_count"]]]
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == count
        results = {}

        def hog():
            results["hog"] = srv.query(MEMORY_HOG)

        def normal():
            results["normal"] = [srv.query("SELECT count(*) FROM t") for _ in range(5)]

        threads = [threading.Thread(target=hog), threading.Thread(target=normal)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        st, res, _ = results["hog"]
        assert st == 503, res
        assert "memory limit of 64 MiB" in res["error"]["message"], res
        for st, res, _ in results["normal"]:
            assert st == 200 and res["rows"] == count, res
        assert srv.query_ok("SELECT count(*) FROM t")["rows"] == count
        assert srv.stats()["instances_dropped"] == 1


def test_sql_errors_carry_sqlites_message(component, vector):
    v = vector("ps512")
    rc, _, err = component.query(v.url, "SELECT * FROM no_such_table")
    assert rc == 1
    e = json.loads(err.strip().splitlines()[-1])["error"]
    assert e == {"code": 1, "message": "no such table: no_such_table"}, e
    with component.serve(v.url) as srv:
        st, res, _ = srv.query("SELECT * FROM no_such_table")
        assert st == 400 and res["error"]["message"] == "no such table: no_such_table", res
        st, res, _ = srv.query("DELETE FROM t")
        assert st == 400 and "readonly" in res["error"]["message"], res
        st, res, _ = srv.request("GET", "/nope")
        assert st == 404, res


def test_compiled_component_is_cached(component, vector, tmp_path):
    """The first run compiles and writes a .cwasm; later runs load it."""
    v = vector("ps512")
    shutil.copy(component.component, tmp_path / "ltxvfs.wasm")
    argv = [str(component.binary), "startup", "--replica", v.url, "--component",
            str(tmp_path / "ltxvfs.wasm"), "--iterations", "20"]
    first = json.loads(H.run(argv, env=H.base_env())[1])
    assert first["compiled_cache_hit"] is False
    assert list(tmp_path.glob("ltxvfs-*.cwasm"))
    second = json.loads(H.run(argv, env=H.base_env())[1])
    assert second["compiled_cache_hit"] is True
    assert second["engine_and_component_ms"] < first["engine_and_component_ms"]
    assert second["instantiate_median_ms"] < 50, second


# ------------------------------------------------------------------------------ wasmtime serve
def test_wasmtime_serve_runs_the_component_unchanged(component, vector, tmp_path):
    """The incoming-handler export under the wasmtime CLI, when it is installed (the host's
    `serve` above covers the same export otherwise)."""
    wasmtime = shutil.which("wasmtime")
    if not wasmtime:
        pytest.skip("wasmtime CLI not installed (cargo install wasmtime-cli --version 48.0.8 --locked "
                    "--no-default-features --features serve,run,cranelift,cache,parallel-compilation,"
                    "component-model-async); ltxvfs-host serve covers the incoming handler")
    v = vector("ps512")
    port = H.free_ports(1)[0]
    log = tmp_path / "wasmtime.log"
    argv = [wasmtime, "serve", "-S", "cli", "-O", "pooling-allocator=n", "--addr", f"127.0.0.1:{port}",
            f"--dir={v.replica}::{v.replica}", "--env", f"LITESTREAM_REPLICA_URL={v.url}",
            str(component.component)]
    import subprocess
    import urllib.request
    with open(log, "wb") as lf:
        proc = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT, env=H.base_env(),
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/query", method="POST",
                    data=json.dumps({"sql": "SELECT count(*) FROM t"}).encode())
                with urllib.request.urlopen(req, timeout=30) as r:
                    res = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert res["rows"] == [[v.latest["t_count"]]] and res["txid"] == v.max_txid
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as r:
            assert json.loads(r.read())["txid"] == v.max_txid
    finally:
        H.kill_group(proc)


def test_sql_functions_same_as_native(component, ext_path, vector):
    """The component registers the extension's SQL functions (issue 13)."""
    v = vector("ps4096")
    q = {"sql": "SELECT litestream_txid(), litestream_lag() >= 0, litestream_time() = (SELECT "
                "litestream_time()), litestream_version()"}
    native = native_queries(ext_path, v.url, [q])[0]
    got = via_query(component, v.url, q)
    assert_same(got, native, "functions")
    assert got["rows"][0][0] == v.max_txid
    rc, _, err = component.query(v.url, "SELECT litestream_set_time(NULL)")
    assert rc == 1 and "timestamp required" in err, err
