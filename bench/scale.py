#!/usr/bin/env python3
"""Scale benchmark (issue 12 item 5): how the cost of a replica grows, ltxvfs vs the Go
extension, measured in the same run.

    python3 bench/scale.py [--sizes-mb 10,500,2000] [--l0 10,250,2000] [--threads 1,8,32]
                           [--ours PATH] [--md BENCHMARKS.md]

(`bash scripts/bench.sh --scale` builds the extension and runs this.)

All replicas are written by the real `litestream replicate` into SeaweedFS (bench/run.py's
helpers) and read directly, with no delay proxy: this measures the reader's own cost.

  * size: databases of about 10 MB, 500 MB and 2 GB (table t of bench/large.py). For each, a
    fresh process opens the replica and runs one point lookup; the time, and the growth of the
    process's RSS from after the extension is loaded to after the lookup, divided by the page
    count (the index of where each page lives is what grows with the database).
  * L0 files: one database, then --l0 max separate transactions each synced on its own (one
    L0 file each, compaction 24 h apart); replicas with the first 10, 250 and 2,000 of those
    files are copies of the snapshot plus that many L0 objects. Open + first lookup time.
  * threads: 1, 8 and 32 reader threads, each with its own connection to the 500 MB replica
    (the middle size), warm point lookups over 500 ids (--thread-keys) for --thread-seconds; ops/s in total.
    Python's sqlite3 releases the GIL while SQLite runs a statement; the machine's core count
    is printed beside the figures because it caps the speed-up.
Every figure is the median of --repeat fresh processes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import large as L  # noqa: E402  (build_db)
import run as R  # noqa: E402  (SeaweedFS, litestream, replace_md_section)

MD_BEGIN = "<!-- bench:scale:begin -->"
MD_END = "<!-- bench:scale:end -->"
MIB = 1024 * 1024
ROW_BYTES = 370  # table t of bench/large.py: ~370 bytes of file per row (with the index)

CHILD = r"""
import json, sqlite3, sys, threading, time, random
spec = json.loads(sys.argv[1])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
if sys.version_info >= (3, 12):
    loader.load_extension(spec["ext"], entrypoint="sqlite3_litestreamvfs_init")
else:
    loader.load_extension(spec["ext"])
out = {"rss_loaded_kb": rss()}
t0 = time.perf_counter()
con = sqlite3.connect(spec["uri"], uri=True, isolation_level=None, check_same_thread=False)
row = con.execute("SELECT id, length(payload) FROM t WHERE id = ?", (spec["key"],)).fetchone()
out["open_lookup_s"] = time.perf_counter() - t0
out["rss_open_kb"] = rss()
out["pages"] = con.execute("PRAGMA page_count").fetchone()[0]
out["row"] = list(row) if row else None
n = spec.get("threads")
if n:
    keys = spec["keys"]
    stop = time.perf_counter() + spec["seconds"]
    counts = [0] * n
    def worker(i, c):
        sql = "SELECT name, length(payload) FROM t WHERE id = ?"
        for k in keys:                      # warm this connection's cache
            c.execute(sql, (k,)).fetchone()
        barrier.wait()
        r = random.Random(i)
        done = 0
        end = time.perf_counter() + spec["seconds"]
        while time.perf_counter() < end:
            c.execute(sql, (keys[r.randrange(len(keys))],)).fetchone()
            done += 1
        counts[i] = done
    conns = [con] + [sqlite3.connect(spec["uri"], uri=True, isolation_level=None,
                                     check_same_thread=False) for _ in range(n - 1)]
    barrier = threading.Barrier(n + 1)
    ts = [threading.Thread(target=worker, args=(i, conns[i])) for i in range(n)]
    for t in ts:
        t.start()
    barrier.wait()
    t1 = time.perf_counter()
    for t in ts:
        t.join()
    out["ops_per_s"] = sum(counts) / (time.perf_counter() - t1)
print(json.dumps(out))
"""


def child(impl: R.Impl, url: str, extra: dict, work: Path) -> dict:
    spec = {"ext": impl.ext, "uri": "file:scale.db?vfs=litestream", "key": 1, **extra}
    env = R.child_env(impl, url, work)
    p = subprocess.run([R.SYSTEM_PYTHON, "-c", CHILD, json.dumps(spec)], env=env, cwd=work,
                       capture_output=True, timeout=1800)
    lines = p.stdout.decode().strip().splitlines()
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{impl.label} child failed ({p.returncode}): {R.tail(p.stderr)}")
    return json.loads(lines[-1])


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2]


def replicate(db: Path, endpoint: str, prefix: str, work: Path) -> R.Litestream:
    ls = R.Litestream(db, endpoint, prefix, work)
    ls.start()
    ls.wait_synced(timeout=1800)
    ls.wait_startup_compaction(timeout=5)
    return ls


def copy_subset(endpoint: str, src: str, dst: str, l0_keep: int) -> int:
    """A replica `dst` with src's compacted levels and its first `l0_keep` L0 files after them."""
    s3 = R.s3_client(endpoint)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=R.BUCKET, Prefix=src + "/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    l0 = sorted(k for k in keys if k.split("/")[-2] == "0000")
    rest = [k for k in keys if k.split("/")[-2] != "0000"]
    top = max(int(k.rsplit("/", 1)[1].split("-")[1][:16], 16) for k in rest)
    after = [k for k in l0 if int(k.rsplit("/", 1)[1][:16], 16) > top][:l0_keep]
    for k in rest + after:
        s3.copy_object(Bucket=R.BUCKET, Key=dst + k[len(src):],
                       CopySource={"Bucket": R.BUCKET, "Key": k})
    return len(after)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes-mb", default="10,500,2000")
    ap.add_argument("--l0", default="10,250,2000")
    ap.add_argument("--threads", default="1,8,32")
    ap.add_argument("--thread-seconds", type=float, default=3.0)
    ap.add_argument("--thread-keys", type=int, default=500,
                    help="ids the threads look up: few enough that their pages fit the cache")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ours", default=str(R.ROOT / "target/release/liblitestream_vfs.so"))
    ap.add_argument("--go")
    ap.add_argument("--md")
    ap.add_argument("--json", default=str(R.ROOT / "bench/out/scale.json"))
    a = ap.parse_args()
    go_ext = a.go
    if not go_ext:
        import litestream_vfs
        go_ext = litestream_vfs.loadable_path()
    impls = [R.Impl("ours", "ltxvfs", str(Path(a.ours).resolve())), R.Impl("go", "Go VFS", go_ext)]
    sizes = [int(x) for x in a.sizes_mb.split(",")]
    l0s = [int(x) for x in a.l0.split(",")]
    threads = [int(x) for x in a.threads.split(",")]
    work = Path(tempfile.mkdtemp(prefix="ltxvfs-scale-"))
    res: dict = {"config": vars(a), "cores": os.cpu_count(), "size": {}, "l0": {}, "threads": {}}
    t_start = time.monotonic()
    try:
        endpoint, _ = R.start_seaweedfs(work)

        def measure(prefix: str, extra: dict | None = None, repeat: int | None = None) -> dict:
            url = R.replica_url(endpoint, prefix)
            out = {}
            for impl in impls:
                runs = [child(impl, url, extra or {}, work)
                        for _ in range(repeat or a.repeat)]
                out[impl.key] = runs
            return out

        mid = sizes[len(sizes) // 2]
        for mb in sizes:
            db = work / f"size{mb}.db"
            t0 = time.monotonic()
            con = L.build_db(db, max(1000, mb * MIB // ROW_BYTES))
            R.log(f"size {mb} MB: built {db.stat().st_size / MIB:.0f} MiB in {time.monotonic() - t0:.0f} s")
            ls = replicate(db, endpoint, f"size{mb}", work)
            con.close()
            ls.stop()
            R.log(f"size {mb} MB: replicated after {time.monotonic() - t0:.0f} s")
            m = measure(f"size{mb}")
            res["size"][mb] = {"bytes": db.stat().st_size, "runs": m}
            if mb == mid:
                keys = random.Random(3).sample(range(1, max(1000, mb * MIB // ROW_BYTES)), a.thread_keys)
                for n in threads:
                    res["threads"][n] = measure(f"size{mb}", {"threads": n, "keys": keys,
                                                              "seconds": a.thread_seconds})
                    R.log(f"threads {n}: " + ", ".join(
                        f"{k} {median([r['ops_per_s'] for r in v]):.0f} ops/s"
                        for k, v in res["threads"][n].items()))
            if mb != sizes[0]:
                db.unlink()
            R.log(f"size {mb} MB: " + ", ".join(
                f"{k} {median([r['open_lookup_s'] for r in v]):.3f} s" for k, v in m.items()))

        # L0 files: one database, max(l0s) transactions each its own L0 file.
        db = work / "l0.db"
        con = L.build_db(db, 20_000)
        ls = replicate(db, endpoint, "l0all", work)
        rng = random.Random(5)
        t0 = time.monotonic()
        for _ in range(max(l0s)):
            con.execute("UPDATE t SET payload = lower(hex(randomblob(150))) WHERE id = ?",
                        (rng.randrange(1, 20_000),))
            ls.wait_synced()
        con.close()
        ls.stop()
        R.log(f"l0: {max(l0s)} transactions synced in {time.monotonic() - t0:.0f} s")
        for n in l0s:
            got = copy_subset(endpoint, "l0all", f"l0-{n}", n)
            m = measure(f"l0-{n}")
            res["l0"][n] = {"files": got, "runs": m}
            R.log(f"l0 {n} ({got} files): " + ", ".join(
                f"{k} {median([r['open_lookup_s'] for r in v]):.3f} s" for k, v in m.items()))
    finally:
        for p in reversed(R.PROCS):
            R.kill_group(p)
        shutil.rmtree(work, ignore_errors=True)
    res["elapsed_s"] = time.monotonic() - t_start
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    block = render(res)
    print(block)
    if a.md:
        R.replace_md_section(Path(a.md), MD_BEGIN, MD_END, f"{MD_BEGIN}\n{block}\n{MD_END}",
                             heading="Scale (issue 12)")


def render(res: dict) -> str:
    def med(runs, key):
        return median([r[key] for r in runs])

    def ratio(o, g):
        return f"{o / g:.2f}×" if g else "—"

    lines = [f"`bash scripts/bench.sh --scale` ({res['cores']} cores; SeaweedFS on loopback, no "
             f"delay proxy; medians of {res['config']['repeat']} fresh processes; "
             f"{res['elapsed_s'] / 60:.0f} min in all).", "",
             "| database | pages | open + lookup, ltxvfs | Go | ratio | RSS growth, ltxvfs | Go | "
             "per page above the smallest, ltxvfs | Go |",
             "|---|---|---|---|---|---|---|---|---|"]

    def growth(runs):
        return med([{"d": r["rss_open_kb"] - r["rss_loaded_kb"]} for r in runs], "d") * 1024

    first = None
    for mb, e in res["size"].items():
        o, g = e["runs"]["ours"], e["runs"]["go"]
        pages = o[0]["pages"]
        cur = (pages, growth(o), growth(g))
        first = first or cur
        dp = pages - first[0]
        per = (f"{(cur[1] - first[1]) / dp:.1f} B | {(cur[2] - first[2]) / dp:.1f} B" if dp > 0
               else "— | —")
        lines.append(f"| {e['bytes'] / MIB:.0f} MiB | {pages:,} | {med(o, 'open_lookup_s') * 1000:.0f} ms "
                     f"| {med(g, 'open_lookup_s') * 1000:.0f} ms | {ratio(med(o, 'open_lookup_s'), med(g, 'open_lookup_s'))} "
                     f"| {cur[1] / MIB:.1f} MiB | {cur[2] / MIB:.1f} MiB | {per} |")
    lines += ["", "RSS growth is measured from after loading the extension to after the first "
              "lookup (fixed costs such as runtime threads and the lookup's cached pages "
              "included). The index memory per page is its slope: the growth above the smallest "
              "database divided by the extra pages.", "",
              "| L0 files in the plan | open + lookup, ltxvfs | Go | ratio |", "|---|---|---|---|"]
    for n, e in res["l0"].items():
        o, g = e["runs"]["ours"], e["runs"]["go"]
        lines.append(f"| {e['files']:,} | {med(o, 'open_lookup_s') * 1000:.0f} ms | "
                     f"{med(g, 'open_lookup_s') * 1000:.0f} ms | {ratio(med(o, 'open_lookup_s'), med(g, 'open_lookup_s'))} |")
    lines += ["", "| reader threads | warm point lookups, ltxvfs | Go | ratio | ltxvfs vs 1 thread |",
              "|---|---|---|---|---|"]
    one = None
    for n, e in res["threads"].items():
        o, g = med(e["ours"], "ops_per_s"), med(e["go"], "ops_per_s")
        one = one or o
        lines.append(f"| {n} | {o:,.0f} ops/s | {g:,.0f} ops/s | {ratio(o, g)} | {o / one:.2f}× |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
