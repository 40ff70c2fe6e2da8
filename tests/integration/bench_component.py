"""Benchmark of the WebAssembly component against the native extension (issue 5).

    python3 tests/integration/bench_component.py [--rows N] [--repeat N] [--delay-ms D]

Needs the release extension, the component and the host (bash scripts/build-component.sh
--host), litestream and SeaweedFS (bash scripts/setup.sh). Everything runs on loopback:
  1. a WAL primary with N rows is replicated by the real `litestream` to SeaweedFS;
  2. the read benchmark's counting proxy (bench/proxy.py; Host header kept, so SigV4 holds;
     optional per-request delay) sits in front of SeaweedFS and both readers reach the replica
     through it, so their S3 requests are counted alike;
  3. warm point query: native (one apsw connection, repeated) vs the component's typed `query`
     export on one warm instance (`ltxvfs-host warm`), and through `ltxvfs-host serve` (one
     warm pooled instance, HTTP POST /query, repeated, HTTP included) — medians;
  4. cold start of an instance from the cached .cwasm (`ltxvfs-host startup`);
  5. a cold full scan: S3 requests and bytes, native vs component (same read planner).
Prints one JSON object and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402
import component_support as C  # noqa: E402

POINT = "SELECT id, name, qty FROM items WHERE id = ?"
SCAN = "SELECT count(*), sum(length(payload)), sum(qty) FROM items"


class CountingProxy:
    """bench/proxy.py (the read benchmark's counting reverse proxy, TCP_NODELAY, optional fixed
    per-request delay) in this process, in front of `upstream_port`."""

    def __init__(self, upstream_port: int, delay_ms: float):
        import importlib.util
        spec = importlib.util.spec_from_file_location("bench_proxy", H.REPO_ROOT / "bench" / "proxy.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        self.counters = mod.Counters()
        class Server(ThreadingHTTPServer):
            # The listen backlog is fixed at construction: the component opens one connection
            # per request and bursts up to 16 at once (a backlog of 5 drops SYNs: +1 s each).
            request_queue_size = 128
            daemon_threads = True

        self.httpd = Server(
            ("127.0.0.1", 0), mod.make_handler(f"127.0.0.1:{upstream_port}", delay_ms / 1000.0, self.counters))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self):
        self.counters.reset()

    def snapshot(self):
        s = self.counters.snapshot()
        return {"requests": s["requests"], "bytes": s["bytes"],
                "by_kind": {k: v["requests"] for k, v in s.get("by_kind", {}).items()}}


NATIVE_BENCH = r"""
import json, sys, time, apsw
ext, uri, mode, n, ids = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
loader = apsw.Connection(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
t0 = time.perf_counter()
con = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI, vfs="litestream")
if mode == "scan":
    t = time.perf_counter(); r = list(con.cursor().execute(%r)); el = time.perf_counter() - t0
    print(json.dumps({"rows": r, "s": el})); sys.exit(0)
list(con.cursor().execute(%r, (ids[0],)))  # warm up: open, plan, cache
times = []
for i in range(n):
    t = time.perf_counter()
    list(con.cursor().execute(%r, (ids[i %% len(ids)],)))
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"median_ms": times[len(times) // 2] * 1e3, "p90_ms": times[int(len(times) * 0.9)] * 1e3}))
""" % (SCAN, POINT, POINT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="per-request latency of the proxy")
    args = ap.parse_args()
    ext = H.default_ext_path()
    host = C.Host(C.host_path(), C.component_path(), Path(tempfile.mkdtemp(prefix="cwasm-")))
    work = Path(tempfile.mkdtemp(prefix="bench-component-"))
    srv = H.start_seaweedfs(work / "weed")
    try:
        proxy = CountingProxy(srv.port, args.delay_ms)
        db = H.make_wal_db(work / "primary.db", schema=
                           "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, payload BLOB);")
        prefix = H.new_prefix("bench")
        direct_url = srv.url(prefix)
        url = direct_url.replace(srv.endpoint, f"http://127.0.0.1:{proxy.port}")
        import sqlite3
        import random
        rnd = random.Random(5)
        with H.replicate(db, direct_url, s3=srv) as rep:
            con = sqlite3.connect(db, isolation_level=None)
            con.execute("BEGIN")
            for i in range(1, args.rows + 1):
                con.execute("INSERT INTO items VALUES (?,?,?,?)",
                            (i, f"item-{i:07d}", rnd.randint(0, 1000), rnd.randbytes(200)))
            con.execute("COMMIT")
            con.close()
            rep.wait_synced()
        env = srv.creds_env()
        ids = [rnd.randint(1, args.rows) for _ in range(64)]
        uri = H.vfs_uri(url)
        out = {"rows": args.rows}

        # warm point query, native
        rc, o, e, _ = H.run([sys.executable, "-c", NATIVE_BENCH, str(ext), uri, "warm",
                             str(args.repeat), json.dumps(ids)], env=H.base_env(extra=env), timeout=300)
        assert rc == 0, e.decode()
        out["native_warm"] = json.loads(o)

        # warm point query through serve (one pooled instance, HTTP included)
        with host.serve(url, "--pool", "1", env=env) as s:
            s.query_ok(POINT, [ids[0]])
            times = []
            for i in range(args.repeat):
                t = time.perf_counter()
                s.query_ok(POINT, [ids[i % len(ids)]])
                times.append(time.perf_counter() - t)
            times.sort()
            status_t = []
            for _ in range(50):
                t = time.perf_counter()
                s.request("GET", "/host/stats")
                status_t.append(time.perf_counter() - t)
            status_t.sort()
            out["serve_warm"] = {"median_ms": times[len(times) // 2] * 1e3,
                                 "p90_ms": times[int(len(times) * 0.9)] * 1e3,
                                 "http_only_median_ms": status_t[len(status_t) // 2] * 1e3}

        # warm point query through the typed export (one instance, no HTTP)
        argv = [str(host.binary), "warm", "--replica", url, "--component", str(host.component),
                "--compiled-cache", str(host.cache), "--iterations", str(args.repeat * 5)]
        rc, o, e, _ = H.run(argv + ["--param", str(ids[0]), POINT], env=H.base_env(extra=env), timeout=300)
        assert rc == 0, e.decode()
        out["component_warm_typed"] = json.loads(o)

        # cold start from .cwasm (the serve run above compiled and cached it)
        rc, o, e, _ = H.run([str(host.binary), "startup", "--replica", url, "--component",
                             str(host.component), "--compiled-cache", str(host.cache),
                             "--iterations", "100"], env=H.base_env(extra=env), timeout=300)
        assert rc == 0, e.decode()
        out["startup"] = json.loads(o)

        # cold full scan: requests through the proxy
        proxy.reset()
        rc, o, e, _ = H.run([sys.executable, "-c", NATIVE_BENCH, str(ext), uri, "scan", "1", "[]"],
                            env=H.base_env(extra=env), timeout=300)
        assert rc == 0, e.decode()
        native_scan = json.loads(o)
        out["native_scan"] = dict(proxy.snapshot(), s=native_scan["s"])
        with host.serve(url, "--pool", "1", env=env) as s:
            proxy.reset()
            t = time.perf_counter()
            res = s.query_ok(SCAN)
            el = time.perf_counter() - t
        assert res["rows"] == native_scan["rows"], (res["rows"], native_scan["rows"])
        out["component_scan"] = dict(proxy.snapshot(), s=el)
    finally:
        H.kill_group(srv.proc, grace=10)
    print(json.dumps(out, indent=2))
    nw, sw, st = out["native_warm"], out["serve_warm"], out["startup"]
    print(f"""
| measurement | native extension | component |
|---|---|---|
| warm point query, median | {nw['median_ms']:.4f} ms (apsw, in process) | {out['component_warm_typed']['median_ms']:.4f} ms (typed `query` export, one warm instance) |
| warm point query through `serve`, median | – | {sw['median_ms']:.3f} ms per HTTP request (a bare HTTP round trip to the host: {sw['http_only_median_ms']:.3f} ms) |
| instance start from .cwasm, median | – | {st['instantiate_median_ms']:.3f} ms (engine + .cwasm load {st['engine_and_component_ms']:.1f} ms) |
| cold scan of {args.rows} rows (open + scan): time | {out['native_scan']['s'] * 1e3:.0f} ms | {out['component_scan']['s'] * 1e3:.0f} ms (instance start + open + scan via `serve`) |
| cold scan: S3 requests | {out['native_scan']['requests']} {out['native_scan']['by_kind']} | {out['component_scan']['requests']} {out['component_scan']['by_kind']} |
| cold scan: bytes fetched | {out['native_scan']['bytes']} | {out['component_scan']['bytes']} |
""")


if __name__ == "__main__":
    main()
