#!/usr/bin/env python3
"""Write-mode benchmark: ltxvfs against the Go extension 0.5.17, same machine, same run.

    python3 bench/write.py [--s3]      (LTXVFS_EXT or $CARGO_TARGET_DIR/release/…)

Workloads, each in a fresh process on a fresh replica (file://, and with --s3 a SeaweedFS bucket
behind bench/proxy.py with 10 ms per request):
  * 1,000 single-row INSERT transactions (autocommit), commits per second — ours fsyncs its
    buffer at every COMMIT, Go does not;
  * one transaction inserting 100,000 rows, seconds;
  * sync latency: ours `PRAGMA litestream_sync` after one INSERT (median of 20); Go has no such
    PRAGMA, so its figure is the close (its final sync) after one INSERT.
Bytes uploaded = the sizes of the level-0 files after the workload (and the close).
Prints a JSON object and a Markdown table.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness as H  # noqa: E402

CHILD = r"""
import json, sqlite3, sys, time
ext, uri, workload = sys.argv[1], sys.argv[2], sys.argv[3]
l = sqlite3.connect(":memory:"); l.enable_load_extension(True); l.load_extension(ext)
con = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
out = {}
if workload == "single":
    t0 = time.perf_counter()
    for i in range(1000):
        con.execute("INSERT INTO t(v) VALUES (?)", ("row %d" % i,))
    out["seconds"] = time.perf_counter() - t0
elif workload == "bulk":
    t0 = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("INSERT INTO t(v) VALUES (?)", (("row %d %s" % (i, "x" * 40),) for i in range(100000)))
    con.execute("COMMIT")
    out["seconds"] = time.perf_counter() - t0
elif workload == "sync":
    lat = []
    for i in range(20):
        con.execute("INSERT INTO t(v) VALUES ('s')")
        t0 = time.perf_counter()
        con.execute("PRAGMA litestream_sync").fetchall()
        lat.append(time.perf_counter() - t0)
    out["latencies"] = lat
elif workload == "close":
    con.execute("INSERT INTO t(v) VALUES ('s')")
t0 = time.perf_counter()
con.close()
out["close_seconds"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def l0_bytes(url: str, s3=None) -> int:
    u = urllib.parse.urlsplit(url)
    if u.scheme == "file":
        return sum(p.stat().st_size for p in Path(u.path, "ltx", "0").glob("*.ltx"))
    c = s3.client()
    prefix = u.path.strip("/") + "/0000/"
    return sum(o["Size"] for o in c.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", []))


def run_one(ext: Path, url: str, workload: str, work: Path, env: dict, s3=None) -> dict:
    params = {"write_enabled": "true", "sync_interval": "1s", "buffer_path": str(work / "buf")}
    uri = H.vfs_uri(url, name="bench.db", **params)
    go = H.is_go_ext(ext)
    rc, out, err, elapsed = H.run(["/usr/bin/python3", "-c", CHILD, str(ext), uri, workload],
                                  env=H.base_env(go=go, extra=env), timeout=600)
    if rc != 0:
        raise SystemExit(f"{ext.name} {workload} failed: {err.decode()[-2000:]}")
    res = json.loads(out.decode().strip().splitlines()[-1])
    res["uploaded_bytes"] = l0_bytes(url, s3)
    return res


def main():
    use_s3 = "--s3" in sys.argv
    ours, go = H.default_ext_path(), H.go_ext_path()
    results = {}
    with tempfile.TemporaryDirectory(prefix="ltxvfs-wbench-") as tmp:
        tmp = Path(tmp)
        targets = [("file", None)]
        srv = proxy = None
        if use_s3:
            srv = H.start_seaweedfs(tmp / "s3")
            from write_support import start_proxy
            proxy, endpoint = start_proxy(srv.endpoint, delay_ms=10)
            targets.append(("s3+10ms", endpoint))
        try:
            for target, endpoint in targets:
                for name, ext in (("ltxvfs", ours), ("go", go)):
                    for workload in ("single", "bulk", "sync" if name == "ltxvfs" else "close"):
                        work = tmp / f"{target}-{name}-{workload}"
                        work.mkdir()
                        if endpoint is None:
                            url, env = H.file_url(work / "replica"), {}
                            (work / "replica").mkdir()
                        else:
                            url = srv.url(H.new_prefix(f"{name}-{workload}")).replace(srv.endpoint, endpoint)
                            env = srv.creds_env()
                        results[(target, name, workload)] = run_one(ext, url, workload, work, env, srv)
        finally:
            if proxy:
                H.kill_group(proxy)
            if srv:
                H.kill_group(srv.proc, grace=10)
    print(json.dumps({"|".join(k): v for k, v in results.items()}, indent=1))
    print()
    print("| store | workload | ltxvfs | Go 0.5.17 | ratio (ltxvfs / Go) |")
    print("|---|---|---|---|---|")
    for target in sorted({k[0] for k in results}):
        o, g = results[(target, "ltxvfs", "single")], results[(target, "go", "single")]
        print(f"| {target} | 1,000 single-row INSERT txns, commits/s | {1000 / o['seconds']:.0f} | "
              f"{1000 / g['seconds']:.0f} | {g['seconds'] / o['seconds']:.2f}x |")
        print(f"| {target} | same, bytes uploaded (incl. close) | {o['uploaded_bytes']} | "
              f"{g['uploaded_bytes']} | {o['uploaded_bytes'] / max(g['uploaded_bytes'], 1):.2f}x |")
        o, g = results[(target, "ltxvfs", "bulk")], results[(target, "go", "bulk")]
        print(f"| {target} | 100k-row INSERT in one txn, s (commit; close) | {o['seconds']:.2f}; "
              f"{o['close_seconds']:.2f} | {g['seconds']:.2f}; {g['close_seconds']:.2f} | "
              f"{g['seconds'] / o['seconds']:.2f}x faster |")
        print(f"| {target} | same, bytes uploaded | {o['uploaded_bytes']} | {g['uploaded_bytes']} | "
              f"{o['uploaded_bytes'] / max(g['uploaded_bytes'], 1):.2f}x |")
        o, g = results[(target, "ltxvfs", "sync")], results[(target, "go", "close")]
        print(f"| {target} | sync latency, ms (ours: PRAGMA litestream_sync median; Go: close) | "
              f"{statistics.median(o['latencies']) * 1000:.1f} | {g['close_seconds'] * 1000:.1f} | — |")


if __name__ == "__main__":
    main()
