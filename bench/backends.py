#!/usr/bin/env python3
"""Per-backend read benchmark (issue 8): open, cold point lookup and cold full scan, requests and
time, ltxvfs vs the Go extension on the same server, for every backend whose real server runs here.

    python3 bench/backends.py [--rows 50000] [--repeat 5] [--delay-ms 0] [--only file,s3,...]
                              [--ours PATH] [--go PATH] [--md BENCHMARKS.md] [--json PATH]

(`bash scripts/bench.sh --backends` builds the extension and runs this.)

One primary database is built once: bench/run.py's table t (integer key, indexed name) with
--rows rows and a ~60-byte payload (50 000 rows: ~5.5 MB, ~1 400 pages of 4 KiB). Then, for
each backend in BACKENDS, one at a time:
  * its real server starts on loopback: tests/integration/backend_servers.py's servers (azurite,
    fake-gcs-server, rclone WebDAV, OpenSSH sshd), SeaweedFS for s3, a directory for file;
  * a fresh copy of the primary is replicated into it by the real `litestream replicate`
    (backend_servers.replicate), which is stopped once the replica has synced and its startup
    snapshot is the whole restore plan (`litestream restore -dry-run`), so the replica is static
    and its plan is the same one L9 file on every backend;
  * on an HTTP store, readers go through bench/proxy.py (litestream writes directly), which counts
    the requests; sftp and file are not HTTP and have no proxy: time only;
  * --repeat rounds; in each, ltxvfs and the Go extension each run two fresh bench/child.py
    processes: a cold point lookup (the open, timed on its own, then one rowid lookup, the same
    random id for both) and a cold full scan (open, then the timed scan).
Reported: the median of the rounds per step. Every answer is checked against the primary.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402  (bench/run.py: proxy, child runs, restore plan, formatting)
import backend_servers as B  # noqa: E402  (tests/integration, on the path through run.py)
import harness as H  # noqa: E402

MD_BEGIN = "<!-- bench:backends:begin -->"
MD_END = "<!-- bench:backends:end -->"
URI = "file:bench.db?vfs=litestream"  # the replica URL comes from LITESTREAM_REPLICA_URL


class FileReplica(B.Server):
    """A file:// replica: a directory, no server process."""
    name = "file"
    go_skip = None

    def start(self):
        self.root = self.dir / "replica"
        return self

    url = property(lambda self: H.file_url(self.root))
    go_env = property(lambda self: {})
    litestream = property(lambda self: {"url": self.url})

    def l0_max_txids(self) -> list[int]:
        return H.replica_l0_max_txids(self.url)


class SeaweedS3(B.Server):
    """SeaweedFS's S3 API (tests/integration/harness.py's `weed mini`)."""
    name = "s3"
    go_skip = None

    def start(self):
        self.s3 = H.start_seaweedfs(self.dir)
        self.port, self.proc = self.s3.port, self.s3.proc
        return self

    url = property(lambda self: self.s3.url(self.prefix))
    env = property(lambda self: self.s3.creds_env())
    go_env = property(lambda self: self.s3.creds_env())
    litestream = property(lambda self: H._yaml_replica(self.url, self.s3))

    def l0_max_txids(self) -> list[int]:
        return H.replica_l0_max_txids(self.url, self.s3)


@dataclass(frozen=True)
class Backend:
    key: str
    server: type            # a backend_servers.Server: start(), stop(), url, env, go_env, ...
    proxy: bool             # HTTP: readers go through the counting proxy
    keep_host: bool = False  # the proxy forwards the client's Host (S3's SigV4 signs it)


BACKENDS = [
    Backend("file", FileReplica, proxy=False),
    Backend("s3", SeaweedS3, proxy=True, keep_host=True),
    Backend("gs", B.FakeGcs, proxy=True),
    Backend("abs", B.Azurite, proxy=True),
    Backend("webdav", B.RcloneWebdav, proxy=True),
    Backend("sftp", B.Sshd, proxy=False),
] + ([Backend("nats", B.SERVERS["nats"], proxy=False)] if "nats" in B.SERVERS else [])

STEPS = [("open", "point", "open"), ("point", "point", "query"), ("scan", "scan", "query")]
STEP_TITLE = {"open": "open", "point": "cold point lookup", "scan": "cold full scan"}


# ------------------------------------------------------------------------------- setup
def build_primary(path: Path, rows: int) -> dict:
    rng = random.Random(8)
    con = R.new_db(path)
    for start in range(1, rows + 1, 10000):
        ids = range(start, min(start + 10000, rows + 1))
        con.execute("BEGIN")
        con.executemany("INSERT INTO t(id, name, payload) VALUES (?, ?, ?)",
                        [(i, R.name_of(i), R.payload(rng, 60)) for i in ids])
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    fp = R.db_fingerprint(con)
    con.close()
    return {"rows": rows, "bytes": path.stat().st_size, "fingerprint": fp}


def expected_row(primary: Path, rowid: int) -> list:
    con = sqlite3.connect(primary)
    try:
        return list(con.execute("SELECT id, name, length(payload) FROM t WHERE id = ?",
                                (rowid,)).fetchone())
    finally:
        con.close()


def replicate_static(primary: Path, srv, work: Path) -> dict:
    """Replicate a copy of `primary` into `srv` with the real litestream; stop it once the
    restore plan is the startup snapshot alone."""
    d = Path(tempfile.mkdtemp(prefix=f"db-{srv.name}-", dir=work))
    db = d / "primary.db"
    shutil.copy(primary, db)
    cfg = d / "plan.yml"
    cfg.write_text(json.dumps({"dbs": [{"path": str(db), "replica": srv.litestream}]}))
    with B.replicate(db, srv) as rep:
        txid = rep.wait_synced(timeout=120)
        deadline = time.monotonic() + 30
        while True:
            plan = R.restore_plan(cfg, db, rep.env)
            if [f[0] for f in plan] == [9] and plan[0][2] == txid:
                break
            if time.monotonic() > deadline:
                R.log(f"{srv.name}: no single-snapshot plan after 30 s, reading {plan}")
                break
            time.sleep(0.3)
    return {"txid": txid, "plan": R.plan_text(plan)}


def reader_setup(srv, proxy) -> dict:
    """{impl key: (replica URL, env)} for ltxvfs and, where it can reach the server, Go; with a
    proxy, every address of the server is replaced by the proxy's."""
    def via(s: str) -> str:
        return s.replace(f"127.0.0.1:{srv.port}", f"127.0.0.1:{proxy.port}") if proxy else s
    out = {"ours": (via(srv.url), {k: via(v) for k, v in srv.env.items()})}
    if srv.go_env is not None:
        out["go"] = (via(getattr(srv, "go_url", srv.url)),
                     {k: via(v) for k, v in srv.go_env.items()})
    return out


# ------------------------------------------------------------------------------- one backend
def bench_backend(b: Backend, a, impls: dict, primary: Path, info: dict, work: Path) -> dict:
    srv = b.server(work, H.new_prefix("bench")).start()
    proxy = None
    out = {"http": b.proxy, "runs": {}}
    try:
        out.update(replicate_static(primary, srv, work))
        R.log(f"{b.key}: replica at TXID {out['txid']}, plan {out['plan']}")
        if b.proxy:
            proxy = R.Proxy(srv.port, a.delay_ms, work, rewrite_host=not b.keep_host)
        readers = reader_setup(srv, proxy)
        if "go" not in readers:
            out["go_skip"] = srv.go_skip
        rng = random.Random(f"point-{b.key}")
        for r in range(a.repeat):
            rowid = rng.randrange(1, info["rows"] + 1)
            want = {"point": [expected_row(primary, rowid)], "scan": info["fingerprint"]}
            for key, (url, env) in readers.items():
                for sc in ("point", "scan"):
                    params = {"keys": [rowid]} if sc == "point" else {}
                    res = R.run_child(impls[key], sc, URI, url, proxy, params,
                                      300 if sc == "scan" else 120, store_env=env)
                    if res.get("ok") and res.get("result") != want[sc]:
                        res["ok"] = False
                        res["error"] = f"wrong answer {str(res.get('result'))[:200]} != {want[sc]}"
                    if res.get("ok") and proxy and not res["phases"]["open"].get("requests"):
                        res["ok"] = False
                        res["error"] = "no request reached the counting proxy"
                    out["runs"].setdefault(f"{key}:{sc}", []).append(res)
                    ph = res.get("phases", {}).get("query", {})
                    R.log(f"{b.key} [{r + 1}/{a.repeat}] {impls[key].label} {sc}: "
                          + (f"{ph.get('wall_s', 0) * 1000:.1f} ms, {ph.get('requests', '–')} req"
                             if res.get("ok") else "ERROR " + res.get("error", "?")))
    finally:
        if proxy is not None:
            R.kill_group(proxy.proc)
        srv.stop()
    return out


def summarize(entry: dict) -> dict:
    """{impl: {step: {"wall", "req", "bytes"} or {"error"}}} from the runs: medians."""
    out: dict = {}
    for impl in ("ours", "go"):
        for step, sc, phase in STEPS:
            runs = entry["runs"].get(f"{impl}:{sc}")
            if not runs:
                continue
            bad = [r for r in runs if not r.get("ok")]
            if bad:
                out.setdefault(impl, {})[step] = {"error": bad[0].get("error", "?"),
                                                  "failed": len(bad), "of": len(runs)}
                continue
            phs = [r["phases"][phase] for r in runs]
            m = {"wall": statistics.median(p["wall_s"] for p in phs)}
            if step == "open":  # from the connect in a fresh process: load_extension() too
                m["load_open"] = statistics.median(
                    r["load_ms"] / 1000 + r["phases"]["open"]["wall_s"] for r in runs)
            if entry["http"]:
                m["req"] = statistics.median(p["requests"] for p in phs)
                m["bytes"] = statistics.median(p["bytes"] for p in phs)
                m["lists"] = statistics.median(p["by_kind"].get("list", {}).get("requests", 0)
                                               for p in phs)
            out.setdefault(impl, {})[step] = m
    return out


# ------------------------------------------------------------------------------- report
def fmt_n(x) -> str:
    return "–" if x is None else (f"{x:g}" if isinstance(x, float) else str(x))


def render(results: dict) -> str:
    lines = ["| backend | step | ltxvfs | Go VFS | time ltxvfs/Go | ltxvfs req | Go req "
             "| req ltxvfs/Go | bytes ltxvfs / Go |", "|" + "---|" * 9]
    notes = []
    for key, e in results["backends"].items():
        if "error" in e:
            notes.append(f"* **{key}**: not measured: `{e['error'][:300]}`")
            continue
        s = e["summary"]
        o, g = s.get("ours", {}), s.get("go", {})
        for step, _sc, _ph in STEPS:
            os_, gs = o.get(step, {}), g.get(step, {})
            ok_o, ok_g = os_ and "error" not in os_, gs and "error" not in gs
            cells = [key, STEP_TITLE[step],
                     R.fmt_time(os_["wall"]) if ok_o else ("ERROR" if os_ else "–"),
                     R.fmt_time(gs["wall"]) if ok_g else ("ERROR" if gs else "–"),
                     R.ratio(os_["wall"], gs["wall"]) if ok_o and ok_g else "–"]
            if e["http"]:
                cells += [fmt_n(os_.get("req")) if ok_o else "–",
                          fmt_n(gs.get("req")) if ok_g else "–",
                          R.ratio(os_["req"], gs["req"]) if ok_o and ok_g else "–",
                          (f"{R.fmt_bytes(os_['bytes']) if ok_o else '–'} / "
                           f"{R.fmt_bytes(gs['bytes']) if ok_g else '–'}")]
            else:
                cells += ["(time only)", "", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
            for who, m in (("ltxvfs", os_), ("Go VFS", gs)):
                if m and "error" in m:
                    notes.append(f"* **{key}**, {STEP_TITLE[step]}, {who}: {m['failed']} of "
                                 f"{m['of']} runs failed: `{m['error'][:300]}`")
        if e.get("go_skip"):
            notes.append(f"* **{key}**: no Go figures: {e['go_skip']}.")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def render_load_open(results: dict) -> str:
    """load_extension() + open per backend: what a fresh process pays before its first query
    (the Go extension starts its runtime, and on sftp connects, inside load_extension())."""
    lines = ["| backend | ltxvfs | Go VFS | ltxvfs/Go |", "|---|---|---|---|"]
    for key, e in results["backends"].items():
        o = e.get("summary", {}).get("ours", {}).get("open", {})
        g = e.get("summary", {}).get("go", {}).get("open", {})
        ow, gw = o.get("load_open"), g.get("load_open")
        lines.append(f"| {key} | {R.fmt_time(ow)} | {R.fmt_time(gw)} | {R.ratio(ow, gw)} |")
    return "\n".join(lines)


def write_md(path: Path, table: str, results: dict):
    c, m, p = results["config"], results["machine"], results["primary"]
    per = {k: f"TXID {e['txid']}, plan {e['plan']}" for k, e in results["backends"].items()
           if "plan" in e}
    plans = (f"on every backend {next(iter(per.values()))}" if len(set(per.values())) == 1
             else "; ".join(f"{k}: {v}" for k, v in per.items()))
    untimed = [k for k, e in results["backends"].items() if not e.get("http")]
    block = "\n".join([
        MD_BEGIN,
        f"Run of {m['date']}: `{c['command']}` ({results['elapsed_s']:.0f} s in all).",
        "",
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, Linux {m['kernel']}; "
        f"Python {m['python']} with SQLite {m['sqlite']}; litestream {m['litestream']}; "
        f"ltxvfs at {m['commit']}; Go extension `litestream-vfs` 0.5.17 (PyPI).",
        f"* Replica: {p['rows']} rows, database {R.fmt_bytes(p['bytes'])} "
        f"({p['bytes'] // 4096} pages of 4 KiB), replicated into each server by "
        f"`litestream replicate`, stopped once the plan was its startup snapshot: {plans}.",
        f"* Medians of {c['repeat']} rounds, each a fresh process per implementation and step. "
        "The open is `connect()` + `SELECT count(*) FROM sqlite_schema`, from the point-lookup "
        "runs; the lookup and the scan are timed after their own open. Requests and response "
        "bytes are those bench/proxy.py counted in the timed part "
        f"({c['delay_ms']:g} ms added per request; the proxy's own forwarding, a Python "
        "process on loopback, is in every request of both)."
        + (f" {', '.join(untimed)}: not HTTP, no proxy, time only." if untimed else ""),
        "",
        table,
        "",
        "From the start of `load_extension()` to the end of the open (the same runs; Go starts "
        "its runtime inside `load_extension()`, and there it also opens its SFTP session, so its "
        "sftp open above does not include the SSH handshake):",
        "",
        render_load_open(results),
        MD_END,
    ])
    R.replace_md_section(path, MD_BEGIN, MD_END, block, "Per backend (issue 8)")


# ------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="per-request delay of the proxy (HTTP stores only; default 0)")
    ap.add_argument("--only", help="comma-separated backend keys: "
                    + ",".join(b.key for b in BACKENDS))
    ap.add_argument("--ours", default=str(R.ROOT / "target/release/liblitestream_vfs.so"))
    ap.add_argument("--go", help="Go extension (default: PyPI litestream_vfs.loadable_path())")
    ap.add_argument("--md", help="write the per-backend section of this Markdown file")
    ap.add_argument("--json", help="write all raw results to this file")
    a = ap.parse_args()
    go_ext = a.go
    if not go_ext:
        import litestream_vfs
        go_ext = litestream_vfs.loadable_path()
    impls = {"ours": R.Impl("ours", "ltxvfs", str(Path(a.ours).resolve())),
             "go": R.Impl("go", "Go VFS", str(go_ext))}
    for i in impls.values():
        if not Path(i.ext).is_file():
            sys.exit(f"{i.label} extension not found: {i.ext}")
    only = set(a.only.split(",")) if a.only else None
    unknown = (only or set()) - {b.key for b in BACKENDS}
    if unknown:
        sys.exit(f"unknown backend(s): {', '.join(sorted(unknown))}")
    command = os.environ.get("BENCH_COMMAND") or " ".join(["python3 bench/backends.py"]
                                                            + sys.argv[1:])
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ltxvfs-backends-"))
    results: dict = {"config": {"rows": a.rows, "repeat": a.repeat, "delay_ms": a.delay_ms,
                                "command": command, "ours": impls["ours"].ext,
                                "go": impls["go"].ext}, "backends": {}}
    try:
        primary = work / "primary.db"
        results["primary"] = build_primary(primary, a.rows)
        R.log(f"primary: {a.rows} rows, {results['primary']['bytes'] / R.MIB:.1f} MiB")
        for b in BACKENDS:
            if only and b.key not in only:
                continue
            try:
                e = bench_backend(b, a, impls, primary, results["primary"], work)
                e["summary"] = summarize(e)
            except Exception as ex:  # noqa: BLE001 - one backend's failure is reported, not fatal
                R.log(f"{b.key}: FAILED {ex!r}")
                e = {"http": b.proxy, "error": f"{type(ex).__name__}: {ex}"}
            results["backends"][b.key] = e
        results["elapsed_s"] = time.monotonic() - t0
        results["machine"] = R.machine_notes(impls["ours"].ext, impls["go"].ext)
        table = render(results)
        print("\n" + table + "\n\n" + render_load_open(results))
        if a.md:
            write_md(Path(a.md), table, results)
            R.log(f"wrote {a.md}")
    finally:
        for p in reversed(R.PROCS):
            R.kill_group(p)
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=1, default=str))
        shutil.rmtree(work, ignore_errors=True)
    R.log(f"done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
