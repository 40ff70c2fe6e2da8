#!/usr/bin/env python3
"""Idle-poll benchmark (issue 12): what one open, idle connection sends to the store in a window.

    python3 bench/idle_poll.py [--seconds 30] [--ours PATH] [--go PATH] [--md BENCHMARKS.md]

Starts SeaweedFS, replicates a small database with the real `litestream replicate`, and opens one
connection per implementation (ltxvfs and the Go extension, default poll interval 1 s), each in
its own child process (Debian's /usr/bin/python3) behind its own counting proxy (bench/proxy.py,
no delay), both at the same time. After a first query it stays idle for `--seconds`; the
requests each proxy saw in that window are counted by kind (list, head, get). With `--md`, the
section between the idle-poll markers of that file is rewritten.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402  (bench/run.py: SeaweedFS, litestream, proxy, environments)

MD_BEGIN = "<!-- bench:idle-poll:begin -->"
MD_END = "<!-- bench:idle-poll:end -->"

CHILD = r"""
import sqlite3, sys, time
ext, seconds = sys.argv[1], float(sys.argv[2])
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
con = sqlite3.connect("file:bench.db?vfs=litestream", uri=True)
n = con.execute("SELECT count(*) FROM t").fetchone()[0]
print("ready", n, flush=True)
time.sleep(seconds)
print("done", con.execute("SELECT count(*) FROM t").fetchone()[0], flush=True)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--ours", default=str(R.ROOT / "target/release/liblitestream_vfs.so"))
    ap.add_argument("--go")
    ap.add_argument("--md")
    a = ap.parse_args()
    go_ext = a.go
    if not go_ext:
        import litestream_vfs
        go_ext = litestream_vfs.loadable_path()
    impls = [R.Impl("ours", "ltxvfs", str(Path(a.ours).resolve())), R.Impl("go", "Go VFS", str(go_ext))]
    work = Path(tempfile.mkdtemp(prefix="ltxvfs-idle-"))
    out: dict = {}
    try:
        endpoint, s3port = R.start_seaweedfs(work)
        db = work / "idle.db"
        con = R.new_db(db)
        R.fill(con, 2000, random.Random(3))
        con.close()
        ls = R.Litestream(db, endpoint, "idle", work)
        ls.start()
        ls.wait_synced(timeout=120)
        ls.wait_startup_compaction()
        children = {}
        for impl in impls:
            proxy = R.Proxy(s3port, 0.0, work)
            env = R.child_env(impl, R.replica_url(proxy.url, "idle"), work)
            p = subprocess.Popen([R.SYSTEM_PYTHON, "-c", CHILD, impl.ext, str(a.seconds)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            R.PROCS.append(p)
            children[impl.key] = (impl, proxy, p)
        for key, (impl, proxy, p) in children.items():
            line = p.stdout.readline().decode()
            if not line.startswith("ready"):
                raise RuntimeError(f"{impl.label}: {line!r} {p.stderr.read().decode()[-2000:]}")
            children[key] = (impl, proxy, p, proxy.stats())
        for key, (impl, proxy, p, before) in children.items():
            line = p.stdout.readline().decode()
            after = proxy.stats()
            if not line.startswith("done"):
                raise RuntimeError(f"{impl.label}: {line!r} {p.stderr.read().decode()[-2000:]}")
            kinds = {k: after["by_kind"].get(k, {}).get("requests", 0)
                     - before["by_kind"].get(k, {}).get("requests", 0) for k in ("list", "head", "get")}
            kinds["all"] = after["requests"] - before["requests"]
            out[key] = kinds
            R.log(f"{impl.label}: {kinds}")
        ls.stop()
    finally:
        for p in reversed(R.PROCS):
            R.kill_group(p)
        shutil.rmtree(work, ignore_errors=True)
    o, g = out["ours"], out["go"]
    ratio = lambda x, y: f"{x / y:.2f}×" if y else "n/a"  # noqa: E731
    table = "\n".join([
        MD_BEGIN,
        f"One idle open connection for {a.seconds:.0f} s (poll interval 1 s, both at the same time, "
        f"each behind its own counting proxy; `python3 bench/idle_poll.py`, run "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}):",
        "",
        "| requests in the window | ltxvfs | Go VFS | ltxvfs / Go |",
        "|---|---|---|---|",
        *[f"| {k} | {o[k]} | {g[k]} | {ratio(o[k], g[k])} |" for k in ("all", "list", "head", "get")],
        "",
        f"Per poll interval: ltxvfs {o['all'] / a.seconds:.2f} requests, {o['list'] / a.seconds:.2f} LISTs; "
        f"Go {g['all'] / a.seconds:.2f} requests, {g['list'] / a.seconds:.2f} LISTs.",
        MD_END,
    ])
    print(table)
    print(json.dumps(out))
    if a.md:
        R.replace_md_section(Path(a.md), MD_BEGIN, MD_END, table, "Idle polling (issue 12)")


if __name__ == "__main__":
    main()
