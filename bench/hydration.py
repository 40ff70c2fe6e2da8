#!/usr/bin/env python3
"""Hydration benchmark: time to a complete local file, and queries on it.

    python3 bench/hydration.py [--rows 50000] [--delay-ms 10] [--md BENCHMARKS.md]

(`LTXVFS_EXT` picks the extension, default $CARGO_TARGET_DIR/release.) All on 127.0.0.1:
SeaweedFS; the real `litestream replicate` writes a database of --rows rows (~1 KB each, ~50 MB at
the default) and is stopped once synced; bench/proxy.py (a separate process) adds --delay-ms to
every request. Behind that one proxy, in the same run, each in a fresh process:
  * `litestream restore` (0.5.17) of the replica;
  * ltxvfs: open with hydration_enabled, until `PRAGMA litestream_hydration_state` = complete;
  * the Go extension: open with hydration_enabled, until its progress PRAGMA says 100;
then queries on the hydrated ltxvfs connection against plain SQLite on the restored copy: 2 000
warm point lookups, a range aggregate over 10 % of the rows, a full scan. Peak RSS = VmHWM of the
process at completion. The restored and hydrated files are compared by sha256.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness as H  # noqa: E402
import hydration_support as S  # noqa: E402

MD_BEGIN = "<!-- bench:hydration:begin -->"
MD_END = "<!-- bench:hydration:end -->"


def log(msg):
    print(f"[hydration-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def start_proxy(upstream_port: int, delay_ms: float):
    p = subprocess.Popen([sys.executable, str(ROOT / "bench" / "proxy.py"), "--upstream",
                          f"127.0.0.1:{upstream_port}", "--delay-ms", str(delay_ms)],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    line = p.stdout.readline().decode()
    m = re.match(r"PORT (\d+)", line)
    assert m, line
    return p, int(m.group(1))


def timed(s: S.Session, sql: str, n: int = 5) -> float:
    s.rows(sql)  # warm
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s.rows(sql)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--delay-ms", type=float, default=10.0)
    ap.add_argument("--md", default="")
    a = ap.parse_args()
    ext = H.default_ext_path()
    go_ext = H.go_ext_path()
    work = Path(tempfile.mkdtemp(prefix="hydbench-"))
    srv = H.start_seaweedfs(work / "weed")
    proxy = None
    try:
        db = work / "p.db"
        H.make_wal_db(db, schema="CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB, n INTEGER);")
        con = sqlite3.connect(db, isolation_level=None)
        con.execute("BEGIN")
        con.executemany("INSERT INTO t(v, n) VALUES (randomblob(900), ?)", [(i,) for i in range(a.rows)])
        con.execute("COMMIT")
        con.close()
        prefix = H.new_prefix("bench")
        with H.replicate(db, srv.url(prefix), s3=srv) as rep:
            txid = rep.wait_synced(timeout=180)
        proxy, port = start_proxy(srv.port, a.delay_ms)
        url = f"s3://{srv.bucket}/{prefix}?endpoint=http://127.0.0.1:{port}&forcePathStyle=true&region=us-east-1"
        creds = srv.creds_env()
        res = {"rows": a.rows, "delay_ms": a.delay_ms, "txid": txid}

        log("litestream restore")
        out = work / "restored.db"
        t0 = time.perf_counter()
        rc, o, e, _ = H.run([H.find_tool("litestream"), "restore", "-o", str(out), url],
                            env=H.base_env(go=True, extra=creds), timeout=600)
        res["restore_s"] = time.perf_counter() - t0
        assert rc == 0, (o + e).decode()[-2000:]
        res["db_bytes"] = out.stat().st_size
        res["restore_sha"] = S.sha256_file(out)

        def hydrate(ext_path, path, done, env):
            t0 = time.perf_counter()
            s = S.Session(ext_path, H.vfs_uri(url, hydration_enabled="true", hydration_path=str(path)),
                          env={**creds, "LITESTREAM_REPLICA_URL": url, "LITESTREAM_LOG_FILE": str(path) + ".log",
                               **env}, ready_timeout=300)
            S.wait_for(lambda: done(s), 600, "hydration", tick=0.01)
            return s, time.perf_counter() - t0, s.peak_rss_kib()

        # What a fresh host process (Python, apsw, loading the extension) costs before any open:
        # the same for ltxvfs and Go, and not part of `litestream restore`.
        starts = []
        for _ in range(3):
            t0 = time.perf_counter()
            S.Session(ext, ":memory:").close()
            starts.append(time.perf_counter() - t0)
        res["host_start_s"] = statistics.median(starts)
        log("ltxvfs hydration")
        ours_path = work / "ours.db"
        s, res["ours_s"], res["ours_rss_kib"] = hydrate(ext, ours_path, lambda s: s.state() == "complete", {})
        res["ours_sha"] = S.sha256_file(ours_path)
        log("queries")
        n = a.rows
        queries = {
            "point": f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
                     f"SELECT sum(t.n) FROM c JOIN t ON t.id = (c.x * 7919) % {n} + 1",
            "range": f"SELECT sum(length(v)), sum(n) FROM t WHERE id BETWEEN {n // 3} AND {n // 3 + n // 10}",
            "scan": "SELECT count(*), sum(length(v)) FROM t",
        }
        plain = S.Session(ext, f"file:{out}?mode=ro")
        try:
            for k, q in queries.items():
                assert s.rows(q) == plain.rows(q), k
                res[f"q_{k}_ours_s"] = timed(s, q)
                res[f"q_{k}_plain_s"] = timed(plain, q)
        finally:
            plain.close()
            s.close()

        log("Go hydration")
        go_path = work / "go.db"

        def go_done(s):
            try:
                return float(s.one("PRAGMA litestream_hydration_progress")) >= 100.0
            except (AssertionError, ValueError):
                return False
        g, res["go_s"], res["go_rss_kib"] = hydrate(go_ext, go_path, go_done, {"AWS_CA_BUNDLE": None})
        g.close()
        res["go_sha"] = S.sha256_file(go_path) if go_path.exists() else None
        print(json.dumps(res, indent=2))
        if a.md:
            write_md(Path(a.md), res)
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {work}", file=sys.stderr)
            work = Path("/nonexistent")
        if proxy is not None:
            H.kill_group(proxy, grace=2)
        H.kill_group(srv.proc, grace=5)
        shutil.rmtree(work, ignore_errors=True)


def render(r: dict) -> str:
    mb = r["db_bytes"] / 1e6
    hs = r["host_start_s"]
    ms = lambda x: f"{x * 1000:.1f} ms"  # noqa: E731
    lines = [
        MD_BEGIN,
        f"Database {mb:.1f} MB ({r['rows']} rows), SeaweedFS behind bench/proxy.py with {r['delay_ms']:.0f} ms per "
        f"request, one run (`python3 bench/hydration.py --md BENCHMARKS.md`).",
        "",
        "| time to a complete local file | seconds (whole process) | net of the host start | vs `litestream restore` (net) | sha256 = restore |",
        "|---|---|---|---|---|",
        f"| `litestream restore` | {r['restore_s']:.2f} | {r['restore_s']:.2f} | 1.00 | — |",
        f"| ltxvfs hydration | {r['ours_s']:.2f} | {r['ours_s'] - hs:.2f} | {(r['ours_s'] - hs) / r['restore_s']:.2f} | "
        f"{'yes' if r['ours_sha'] == r['restore_sha'] else 'NO'} |",
        f"| Go extension hydration | {r['go_s']:.2f} | {r['go_s'] - hs:.2f} | {(r['go_s'] - hs) / r['restore_s']:.2f} | "
        f"{'yes' if r['go_sha'] == r['restore_sha'] else 'no'} |",
        "",
        f"Host start = a fresh `python3` + apsw + loading the extension, no open ({hs:.2f} s, median of 3); "
        "the hydration times run from spawning that process to the complete file (ltxvfs: "
        "`litestream_hydration_state` = `complete`; Go: progress 100).",
        "",
        f"Peak RSS at completion: ltxvfs {r['ours_rss_kib'] / 1024:.1f} MiB, Go {r['go_rss_kib'] / 1024:.1f} MiB "
        "(whole process: Python, apsw, SQLite and the extension).",
        "",
        "| query on the hydrated file | ltxvfs | plain SQLite (restored copy) | ratio |",
        "|---|---|---|---|",
    ]
    for k, label in (("point", "2 000 warm point lookups"), ("range", "range aggregate, 10 % of rows"),
                     ("scan", "full scan")):
        o, p = r[f"q_{k}_ours_s"], r[f"q_{k}_plain_s"]
        lines.append(f"| {label} | {ms(o)} | {ms(p)} | {o / p:.2f} |")
    lines.append(MD_END)
    return "\n".join(lines)


def write_md(path: Path, r: dict):
    text = path.read_text() if path.exists() else ""
    table = render(r)
    if MD_BEGIN in text and MD_END in text:
        pre, rest = text.split(MD_BEGIN, 1)
        post = rest.split(MD_END, 1)[1]
        text = pre + table + post
    else:
        text = text.rstrip() + "\n\n## Hydration\n\n" + table + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
