#!/usr/bin/env python3
"""Large-replica benchmark (issue 12): a ≥ 450 MB database, ltxvfs vs the Go extension vs
restoring first, all in one run behind the same 10 ms proxy.

    python3 bench/large.py [--rows 1300000] [--delay-ms 10] [--ours PATH] [--md BENCHMARKS.md]

(`bash scripts/bench.sh --large` builds the extension and runs this.)

Builds the database itself (table t as in bench/run.py, ~300-byte hex payloads, index on name),
replicates it with the real `litestream replicate` into SeaweedFS, adds three scattered update
transactions (each its own L0 file), stops litestream, and puts bench/proxy.py (fixed delay per
request) in front of the store. Then, each in a fresh process:

  * cold full scan, ltxvfs (default 10 MiB cache);
  * restore-first: the real `litestream restore` through the same proxy, then a local scan
    with plain SQLite (what a user does instead of scanning in place);
  * capped cold scan (`id <= --scan-cap`), ltxvfs and Go: Go makes one GET per page, so its
    full scan would take hours; the capped rate is reported instead;
  * random cold rowid lookups: a warm-up pass, then --lookups distinct random ids, ltxvfs and
    Go (requests per lookup after the warm-up, and wall time);
  * open + first point lookup, ltxvfs and Go (median of 3).
With --md the section between the large-replica markers of that file is rewritten.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402  (bench/run.py: SeaweedFS, litestream, proxy, children)

MD_BEGIN = "<!-- bench:large:begin -->"
MD_END = "<!-- bench:large:end -->"
MIB = 1024 * 1024


def build_db(path: Path, rows: int):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.executescript("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                      "payload TEXT NOT NULL);")
    step = 200_000
    for lo in range(1, rows + 1, step):
        hi = min(rows, lo + step - 1)
        con.execute("BEGIN")
        con.execute(
            "WITH RECURSIVE c(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
            "INSERT INTO t(id, name, payload) SELECT i, 'n' || lower(hex(randomblob(8))), "
            "lower(hex(randomblob(150))) FROM c", (lo, hi))
        con.execute("COMMIT")
    con.execute("CREATE INDEX t_name ON t(name)")
    con.close()
    con = sqlite3.connect(path, isolation_level=None)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    return con


def restore_config(ls: R.Litestream, endpoint: str, work: Path) -> Path:
    cfg = json.loads(ls.cfg.read_text())
    cfg["dbs"][0]["replica"]["endpoint"] = endpoint
    cfg.pop("socket", None)
    p = work / "restore-through-proxy.yml"
    p.write_text(json.dumps(cfg, indent=2))
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_300_000)
    ap.add_argument("--delay-ms", type=float, default=10.0)
    ap.add_argument("--lookups", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=100, help="warm-up lookups before the measured ones")
    ap.add_argument("--scan-cap", type=int, default=20_000, help="rows of the capped scan (Go)")
    ap.add_argument("--ours", default=str(R.ROOT / "target/release/liblitestream_vfs.so"))
    ap.add_argument("--go")
    ap.add_argument("--skip-go", action="store_true")
    ap.add_argument("--before", help="an earlier build of ltxvfs: its full scan and open + first "
                    "lookup are measured too, in the same run")
    ap.add_argument("--md")
    ap.add_argument("--json", default=str(R.ROOT / "bench/out/large.json"))
    a = ap.parse_args()
    go_ext = a.go
    if not go_ext:
        import litestream_vfs
        go_ext = litestream_vfs.loadable_path()
    ours = R.Impl("ours", "ltxvfs", str(Path(a.ours).resolve()))
    go = R.Impl("go", "Go VFS", str(go_ext))
    plain = R.Impl("plain", "plain SQLite", None)
    impls = [ours] if a.skip_go else [ours, go]
    before = R.Impl("before", "ltxvfs (before)", str(Path(a.before).resolve())) if a.before else None
    work = Path(tempfile.mkdtemp(prefix="ltxvfs-large-"))
    t_start = time.monotonic()
    res: dict = {"config": vars(a), "runs": {}}
    try:
        endpoint, s3port = R.start_seaweedfs(work)
        db = work / "large.db"
        t0 = time.monotonic()
        con = build_db(db, a.rows)
        R.log(f"built {db.stat().st_size / MIB:.0f} MiB in {time.monotonic() - t0:.0f} s")
        ls = R.Litestream(db, endpoint, "large", work)
        ls.start()
        rng = random.Random(7)
        try:
            ls.wait_synced(timeout=600)
            # The startup snapshot (L9) is what the reader merges the L0 files onto.
            deadline = time.monotonic() + 600
            while 9 not in R.list_levels(endpoint, "large") and time.monotonic() < deadline:
                time.sleep(0.5)
            for _ in range(3):
                con.execute("BEGIN")
                con.executemany("UPDATE t SET payload = lower(hex(randomblob(150))) WHERE id = ?",
                                [(k,) for k in rng.sample(range(1, a.rows + 1), 300)])
                con.execute("COMMIT")
                ls.wait_synced(timeout=300)
            fp = list(con.execute("SELECT count(*), sum(length(payload)), max(name) FROM t").fetchone())
            con.close()
            txid = ls.wait_synced(timeout=300)
        finally:
            ls.stop()
        levels = R.list_levels(endpoint, "large")
        plan = ls.plan()
        size = db.stat().st_size
        res["replica"] = {"rows": a.rows, "db_bytes": size, "txid": txid, "plan": R.plan_text(plan),
                          "levels": {f"L{k}": {"files": len(v), "bytes": sum(x[2] for x in v)}
                                     for k, v in sorted(levels.items())}}
        R.log(f"replica: {res['replica']}")
        proxy = R.Proxy(s3port, a.delay_ms, work)
        url = R.replica_url(proxy.url, "large")
        uri = "file:bench.db?vfs=litestream"

        def child(impl, scenario, params, timeout=900):
            r = R.run_child(impl, scenario, uri if impl.ext else f"file:{local}", url if impl.ext else None,
                            proxy if impl.ext else None, params, timeout)
            if not r.get("ok"):
                raise RuntimeError(f"{impl.label} {scenario}: {r.get('error')}\n{r.get('stderr', '')[-1500:]}")
            return r

        # Restore-first: litestream restore through the proxy, then a local scan.
        local = work / "restored.db"
        cfg = restore_config(ls, proxy.url, work)
        seq0 = proxy.stats()["seq"]
        rc, o, e, restore_s = R.run([ls.bin, "restore", "-config", str(cfg), "-o", str(local), str(db)],
                                    env=R.base_env(go=True), timeout=1200)
        if rc != 0:
            raise RuntimeError(f"litestream restore failed: {R.tail(o + e)}")
        restore_req = R.phase_profile(proxy.log_since(seq0), seq0, proxy.stats()["seq"])
        local_scan = child(plain, "scan", {})
        if local_scan["result"] != fp:
            raise RuntimeError(f"restored copy differs: {local_scan['result']} vs {fp}")
        res["restore"] = {"wall_s": restore_s, "requests": restore_req["requests"],
                          "bytes": restore_req["bytes"],
                          "local_scan_s": local_scan["phases"]["query"]["wall_s"]}
        R.log(f"restore-first: {restore_s:.2f} s ({restore_req['requests']} req) + local scan "
              f"{res['restore']['local_scan_s']:.2f} s")

        scan = child(ours, "scan", {})
        if scan["result"] != fp:
            raise RuntimeError(f"ltxvfs scan result {scan['result']} != {fp}")
        res["runs"]["scan"] = {"ours": scan}
        if before:
            b = child(before, "scan", {})
            res["runs"]["scan"]["before"] = b
            R.log(f"ltxvfs (before) cold full scan: {b['phases']['query']['wall_s']:.2f} s, "
                  f"{b['phases']['query']['requests']} req")
        R.log(f"ltxvfs cold full scan: {scan['phases']['query']['wall_s']:.2f} s, "
              f"{scan['phases']['query']['requests']} req, peak RSS {scan['rss_hwm_kb'] / 1024:.0f} MiB")

        warm = rng.sample(range(1, a.rows + 1), a.warm)
        warm_set = set(warm)
        keys = [k for k in rng.sample(range(1, a.rows + 1), a.lookups + a.warm) if k not in warm_set][:a.lookups]
        for key, scenario, params, reps in [
            ("scan_cap", "scan", {"max_id": a.scan_cap}, 1),
            ("random", "random", {"warm": warm, "keys": keys}, 1),
            ("point", "point", None, 3),
        ]:
            entry = res["runs"].setdefault(key, {})
            for rep in range(reps):
                p = params if params is not None else {"keys": [rng.randrange(1, a.rows + 1)]}
                for impl in impls + ([before] if before and key == "point" else []):
                    r = child(impl, scenario, p, timeout=3600)
                    entry.setdefault(impl.key, []).append(r)
                    q = r["phases"]["query"]
                    R.log(f"{key} {impl.label}: {q['wall_s']:.2f} s, {q['requests']} req")
            if key != "point" and not a.skip_go:
                a_res = [x["result"] for x in entry["ours"]]
                g_res = [x["result"] for x in entry["go"]]
                if a_res != g_res:
                    raise RuntimeError(f"{key}: ltxvfs and Go disagree")
        res["elapsed_s"] = time.monotonic() - t_start
        table = render(res, a)
        print(table)
        if a.md:
            R.replace_md_section(Path(a.md), MD_BEGIN, MD_END, table, "Large replica (issue 12)")
    finally:
        for p in reversed(R.PROCS):
            R.kill_group(p)
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
        shutil.rmtree(work, ignore_errors=True)
    R.log(f"done in {time.monotonic() - t_start:.0f} s")


def med(runs: list, f):
    v = sorted(f(r) for r in runs)
    return v[len(v) // 2]


def render(res: dict, a) -> str:
    rep = res["replica"]
    rs = res["restore"]
    scan = res["runs"]["scan"]["ours"]["phases"]["query"]
    first = rs["wall_s"] + rs["local_scan_s"]
    runs = res["runs"]
    go = not a.skip_go
    lines = [
        MD_BEGIN,
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `bash scripts/bench.sh --large` "
        f"(`python3 bench/large.py`; {rep['rows']:,} rows, database {rep['db_bytes'] / MIB:.0f} MiB "
        f"({rep['db_bytes'] // 4096:,} pages of 4 KiB), TXID {rep['txid']}, plan {rep['plan']}; "
        f"SeaweedFS behind bench/proxy.py with {a.delay_ms:g} ms per request; default 10 MiB cache; "
        f"{res['elapsed_s']:.0f} s in all). One run, every figure from it.",
        "",
        "| work | ltxvfs | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    ratio = scan["wall_s"] / first
    lines.append(
        f"| cold full scan vs restore-first | {scan['wall_s']:.2f} s, {scan['requests']} req, "
        f"{scan['bytes'] / MIB:.0f} MiB | `litestream restore` {rs['wall_s']:.2f} s ({rs['requests']} req) "
        f"+ local scan {rs['local_scan_s']:.2f} s = {first:.2f} s | {ratio:.2f}× | ≤ 1.0× (aim 0.5×) | "
        f"{'✓' if ratio <= 1.0 else '✗'}{' (aim met)' if ratio <= 0.5 else ''} |")
    if go:
        o = runs["scan_cap"]["ours"][0]["phases"]["query"]
        g = runs["scan_cap"]["go"][0]["phases"]["query"]
        lines.append(
            f"| capped cold scan (`id <= {a.scan_cap:,}`) | {o['wall_s']:.2f} s, {o['requests']} req | "
            f"Go {g['wall_s']:.2f} s, {g['requests']} req | {o['wall_s'] / g['wall_s']:.3f}× | "
            f"(Go: one GET per page; its full scan would take ~{g['wall_s'] * rep['rows'] / a.scan_cap / 60:.0f} min) | – |")
        o = runs["random"]["ours"][0]["phases"]
        g = runs["random"]["go"][0]["phases"]
        n = a.lookups
        orq, grq = o["query"]["requests"] / n, g["query"]["requests"] / n
        wr = o["query"]["wall_s"] / g["query"]["wall_s"]
        lines.append(
            f"| {n:,} random cold rowid lookups (after {a.warm} warm-up), requests per lookup | {orq:.3f} | "
            f"Go {grq:.3f} | {orq / grq:.2f}× | ≤ 1.05 per lookup | {'✓' if orq <= 1.05 else '✗'} |")
        lines.append(
            f"| same, wall time | {o['query']['wall_s']:.2f} s | Go {g['query']['wall_s']:.2f} s | {wr:.2f}× | "
            f"≤ 0.6× Go | {'✓' if wr <= 0.6 else '✗'} |")
        lines.append(
            f"| warm-up pass ({a.warm} lookups) | {o['warmup']['wall_s']:.2f} s, {o['warmup']['requests']} req | "
            f"Go {g['warmup']['wall_s']:.2f} s, {g['warmup']['requests']} req | "
            f"{o['warmup']['wall_s'] / g['warmup']['wall_s']:.2f}× | – | – |")

        def op(r):
            return r["phases"]["open"]["wall_s"] + r["phases"]["query"]["wall_s"]

        def oq(r):
            return r["phases"]["open"]["requests"] + r["phases"]["query"]["requests"]
        ow, gw = med(runs["point"]["ours"], op), med(runs["point"]["go"], op)
        lines.append(
            f"| open + first point lookup (median of 3) | {ow * 1000:.0f} ms, "
            f"{med(runs['point']['ours'], oq)} req | Go {gw * 1000:.0f} ms, {med(runs['point']['go'], oq)} req | "
            f"{ow / gw:.2f}× | not slower than before | see below |")
    if "before" in runs["scan"]:
        b = runs["scan"]["before"]["phases"]["query"]
        lines.append(
            f"| cold full scan, the build before pipelining | {b['wall_s']:.2f} s, {b['requests']} req | "
            f"restore-first {first:.2f} s | {b['wall_s'] / first:.2f}× | (same run) | – |")
    if "before" in runs.get("point", {}):
        def op2(r):
            return r["phases"]["open"]["wall_s"] + r["phases"]["query"]["wall_s"]
        bw, nw = med(runs["point"]["before"], op2), med(runs["point"]["ours"], op2)
        lines.append(
            f"| open + first point lookup, this build vs the build before (median of 3) | {nw * 1000:.0f} ms | "
            f"before {bw * 1000:.0f} ms | {nw / bw:.2f}× | ≤ 1.0× (within noise) | {'✓' if nw <= bw * 1.1 else '✗'} |")
    lines += ["", f"Peak RSS of the ltxvfs full scan (whole Python process): "
              f"{res['runs']['scan']['ours']['rss_hwm_kb'] / 1024:.0f} MiB; peak request concurrency "
              f"{scan['peak_concurrency']}, GET sizes {scan['get_sizes']}.", MD_END]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
