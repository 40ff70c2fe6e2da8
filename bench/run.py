#!/usr/bin/env python3
"""Read benchmark: ltxvfs vs. Litestream's Go `litestream-vfs` vs. plain SQLite.

    python3 bench/run.py [--delay-ms 10] [--quick] [--md BENCHMARKS.md] [--json out.json]

(`bash scripts/bench.sh` builds the extension and runs this.)

Setup, all on 127.0.0.1 and all stopped at exit (also on failure):
  * SeaweedFS (`weed mini`) as the S3 store, bucket `bkt`, credentials K/S;
  * the real `litestream replicate` (0.5.17) writes two replicas straight into SeaweedFS and is
    stopped once they have synced, so they are static while they are read:
      - `main`: a WAL database, table t(id INTEGER PRIMARY KEY, name TEXT indexed, payload
        ~300 B) with --rows rows (default 80 000, ~28 MB), then a few scattered update
        transactions, each its own L0 file;
      - `l0`: a small database with ≥ 200 separate transactions, each synced on its own, and
        compaction/snapshots configured 24 h apart so that the plan is ≥ 200 L0 files;
  * a local copy of `main` restored with the real `litestream restore` (the plain SQLite limit);
  * bench/proxy.py in front of SeaweedFS: every client request (ltxvfs and Go) goes through it,
    waits --delay-ms, and is counted (requests, response bytes, and a per-request log).

Every measurement is a fresh `/usr/bin/python3 bench/child.py` process that loads one
extension, opens the replica through the proxy and runs one scenario; requests and bytes are
those the proxy saw between the phase's start and end (the child reads the proxy's sequence
number around its timed part).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Process and port helpers shared with the integration tests.
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from harness import find_tool, free_ports, kill_group  # noqa: E402
BENCH = ROOT / "bench"
SYSTEM_PYTHON = "/usr/bin/python3"
ACCESS_KEY, SECRET_KEY, BUCKET = "K", "S", "bkt"
MIB = 1024 * 1024
MD_BEGIN = "<!-- bench:results:begin -->"
MD_END = "<!-- bench:results:end -->"

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu litestream "
         "sqlite replica page index cache snapshot level compaction object storage range request "
         "latency bandwidth").split()


def log(msg: str):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- processes
PROCS: list[subprocess.Popen] = []


def spawn(argv, *, log_path=None, env=None, cwd=None, stdout=None) -> subprocess.Popen:
    out = stdout
    if log_path is not None:
        out = open(log_path, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT if log_path is not None else None,
                         env=env, cwd=cwd, start_new_session=True)
    PROCS.append(p)
    return p


def run(argv, *, env=None, cwd=None, timeout=120.0):
    """(rc, stdout, stderr, seconds); the process group is killed on timeout."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return -999, out, err + f"\n[bench] killed after {timeout:.0f} s timeout".encode(), \
            time.monotonic() - t0
    finally:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return p.returncode, out, err, time.monotonic() - t0


def base_env(extra: dict | None = None, go: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LITESTREAM_") and not (k.startswith("AWS_") and k != "AWS_CA_BUNDLE")}
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    if go:  # the Go S3 client refuses to start with AWS_CA_BUNDLE set
        env.pop("AWS_CA_BUNDLE", None)
    return env


def tail(b: bytes | str, n: int = 3000) -> str:
    s = b.decode("utf-8", "replace") if isinstance(b, bytes) else b
    return s if len(s) <= n else "…" + s[-n:]


# ------------------------------------------------------------------------------- S3 + proxy
def s3_client(endpoint: str):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}, connect_timeout=3,
                                      read_timeout=10, retries={"max_attempts": 2}))


def start_seaweedfs(work: Path, timeout: float = 90.0) -> tuple[str, int]:
    weed = find_tool("weed")
    data = work / "weed"
    data.mkdir(parents=True, exist_ok=True)
    (s3, dav, master, master_g, vol, vol_g, filer, filer_g, s3_g, admin, admin_g) = free_ports(11)
    argv = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={s3}", f"-webdav.port={dav}", f"-master.port={master}",
            f"-master.port.grpc={master_g}", f"-volume.port={vol}",
            f"-volume.port.grpc={vol_g}", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
            f"-s3.port.grpc={s3_g}", f"-admin.port={admin}", f"-admin.port.grpc={admin_g}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", f"-bucket={BUCKET}"]
    logf = work / "weed.log"
    proc = spawn(argv, log_path=logf, cwd=work,
                 env=base_env({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}))
    endpoint = f"http://127.0.0.1:{s3}"
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited ({proc.returncode}):\n{tail(logf.read_bytes())}")
        try:
            s3_client(endpoint).list_objects_v2(Bucket=BUCKET, MaxKeys=1)
            return endpoint, s3
        except Exception as e:  # noqa: BLE001 - not ready yet
            last = e
        if time.monotonic() > deadline:
            raise RuntimeError(f"SeaweedFS not ready after {timeout:.0f} s: {last!r}")
        time.sleep(0.3)


class Proxy:
    def __init__(self, upstream_port: int, delay_ms: float, work: Path, rewrite_host: bool = False):
        """`rewrite_host`: send the upstream's own address as ``Host`` instead of the client's
        (bench/proxy.py --upstream-host); never for S3, whose SigV4 signs the client's."""
        self.logf = work / "proxy.log"
        upstream = f"127.0.0.1:{upstream_port}"
        self.proc = spawn([sys.executable, str(BENCH / "proxy.py"), "--upstream", upstream,
                           "--delay-ms", str(delay_ms)]
                          + (["--upstream-host", upstream] if rewrite_host else []),
                          stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            raise RuntimeError(f"proxy did not start: {line!r}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=60) as r:
            return json.loads(r.read())

    def stats(self) -> dict:
        return self._get("/__bench/stats")

    def log_since(self, seq: int) -> list:
        return self._get(f"/__bench/log?since={seq}")

    def reset(self):
        req = urllib.request.Request(self.url + "/__bench/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()


def replica_url(endpoint: str, prefix: str) -> str:
    return f"s3://{BUCKET}/{prefix}?endpoint={endpoint}&region=us-east-1&forcePathStyle=true"


def list_levels(endpoint: str, prefix: str) -> dict[int, list[tuple[int, int, int]]]:
    """{level: [(min, max, size)]} of the replica under `prefix` (S3 layout <prefix>/<LLLL>/)."""
    c = s3_client(endpoint)
    out: dict[int, list] = {}
    token = None
    while True:
        kw = {"Bucket": BUCKET, "Prefix": prefix + "/"}
        if token:
            kw["ContinuationToken"] = token
        r = c.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            m = re.fullmatch(re.escape(prefix) + r"/([0-9a-f]{4})/([0-9a-f]{16})-([0-9a-f]{16})\.ltx",
                             o["Key"])
            if m:
                out.setdefault(int(m.group(1), 16), []).append(
                    (int(m.group(2), 16), int(m.group(3), 16), o["Size"]))
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
    for v in out.values():
        v.sort()
    return out


# ------------------------------------------------------------------------------- litestream
class Litestream:
    """`litestream replicate` for one database into SeaweedFS (direct, not through the proxy)."""

    def __init__(self, db: Path, endpoint: str, prefix: str, work: Path):
        self.db, self.endpoint, self.prefix = db, endpoint, prefix
        self.bin = find_tool("litestream")
        self.dir = Path(tempfile.mkdtemp(prefix="lsb-"))  # short: unix socket path limit
        self.sock = str(self.dir / "ctl.sock")
        self.cfg = work / f"litestream-{prefix}.yml"
        self.logf = work / f"litestream-{prefix}.log"
        cfg = {
            # Compaction and snapshots 24 h apart: the replica keeps one L0 file per sync, so
            # the plans are deterministic (main: L0 snapshot + a few L0 files; l0: ≥ 200 L0).
            "levels": [{"interval": "24h"}],
            "snapshot": {"interval": "24h", "retention": "72h"},
            "l0-retention": "24h",
            "socket": {"enabled": True, "path": self.sock},
            "dbs": [{"path": str(db), "monitor-interval": "100ms",
                     "checkpoint-interval": "1h", "min-checkpoint-page-count": 1000000,
                     "replica": {"type": "s3", "bucket": BUCKET, "path": prefix,
                                 "endpoint": endpoint, "region": "us-east-1",
                                 "force-path-style": True, "access-key-id": ACCESS_KEY,
                                 "secret-access-key": SECRET_KEY, "sync-interval": "100ms"}}],
        }
        self.cfg.write_text(json.dumps(cfg, indent=2))  # JSON is YAML
        self.env = base_env(go=True)
        self.proc = None

    def start(self):
        self.proc = spawn([self.bin, "replicate", "-config", str(self.cfg)],
                          log_path=self.logf, env=self.env, cwd=self.db.parent)

    def stop(self):
        if self.proc is not None:
            kill_group(self.proc, grace=20)
        shutil.rmtree(self.dir, ignore_errors=True)

    def l0_max_txids(self) -> set[int]:
        return {mx for (_mn, mx, _sz) in list_levels(self.endpoint, self.prefix).get(0, [])}

    def wait_synced(self, timeout: float = 90.0) -> int:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"litestream exited ({self.proc.returncode}):\n"
                                   + tail(self.logf.read_bytes()))
            rc, out, err, _ = run([self.bin, "sync", "-wait", "-json", "-timeout", "20",
                                   "-socket", self.sock, str(self.db)], env=self.env, timeout=30)
            if rc == 0:
                try:
                    j = json.loads(out)
                    txid = int(j["txid"])
                    if (txid > 0 and int(j.get("replica_txid", 0)) == txid
                            and txid in self.l0_max_txids()):
                        return txid
                    last = f"sync answered {j}"
                except (ValueError, KeyError) as e:
                    last = f"{e!r}: {out!r}"
            else:
                last = f"sync rc={rc}: {tail(out + err)}"
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {self.prefix} not synced after {timeout:.0f} s: "
                                   f"{last}\n{tail(self.logf.read_bytes())}")
            time.sleep(0.1)

    def wait_startup_compaction(self, timeout: float = 30.0):
        """`replicate` compacts L1 and snapshots L9 once, about a second after it starts (then
        every 24 h with our config). Wait for that, so the following transactions stay L0."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lv = list_levels(self.endpoint, self.prefix)
            if 1 in lv and 9 in lv:
                return
            time.sleep(0.2)
        log(f"{self.prefix}: no startup compaction seen after {timeout:.0f} s (continuing)")

    def restore(self, out: Path) -> str:
        rc, o, e, _ = run([self.bin, "restore", "-config", str(self.cfg), "-o", str(out),
                           str(self.db)], env=self.env, timeout=300)
        if rc != 0:
            raise RuntimeError(f"litestream restore failed ({rc}): {tail(o + e)}")
        return tail(o + e, 500)

    def plan(self) -> list[tuple[int, int, int, int]]:
        return restore_plan(self.cfg, self.db, self.env)


def restore_plan(cfg: Path, db: Path, env: dict) -> list[tuple[int, int, int, int]]:
    """The restore plan of `litestream restore -dry-run` for `db` in the config `cfg`:
    [(level, min, max, size)]."""
    dummy = db.parent / f"plan-{db.stem}.db"
    rc, o, e, _ = run([find_tool("litestream"), "restore", "-config", str(cfg), "-dry-run", "-o",
                       str(dummy), str(db)], env=env, timeout=120)
    text = (o + e).decode("utf-8", "replace")
    out = [(int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4)))
           for m in re.finditer(r"^\s*(\d+)\s+([0-9a-f]{16})-([0-9a-f]{16})\.ltx\s+\S+\s+\S+"
                                r"\s+(\d+)", text, re.M)]
    if rc != 0 or not out:
        raise RuntimeError(f"litestream restore -dry-run failed ({rc}): {tail(text)}")
    return out


# ------------------------------------------------------------------------------- databases
def name_of(i: int) -> str:
    return "n" + hashlib.sha1(str(i).encode()).hexdigest()[:15]


def payload(rng: random.Random, n: int = 300) -> str:
    out = []
    size = 0
    while size < n:
        w = rng.choice(WORDS) if rng.random() < 0.8 else f"{rng.getrandbits(48):012x}"
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n]


def new_db(path: Path):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=4096")
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.executescript("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                      "payload TEXT NOT NULL); CREATE INDEX t_name ON t(name);")
    return con


def fill(con, rows: int, rng: random.Random, start: int = 1, batch: int = 10000):
    i = start
    end = start + rows
    while i < end:
        n = min(batch, end - i)
        con.execute("BEGIN")
        con.executemany("INSERT INTO t(id, name, payload) VALUES (?, ?, ?)",
                        [(k, name_of(k), payload(rng)) for k in range(i, i + n)])
        con.execute("COMMIT")
        i += n


def db_fingerprint(path_or_con) -> list:
    con = sqlite3.connect(path_or_con) if isinstance(path_or_con, (str, Path)) else path_or_con
    return list(con.execute("SELECT count(*), sum(length(payload)), max(name) FROM t").fetchone())


def build_main(work: Path, endpoint: str, rows: int, updates: int) -> dict:
    db = work / "main.db"
    rng = random.Random(1)
    con = new_db(db)
    fill(con, rows, rng)
    ls = Litestream(db, endpoint, "main", work)
    ls.start()
    try:
        ls.wait_synced(timeout=180)
        ls.wait_startup_compaction()
        # A few scattered updates (and appends), each its own transaction and L0 file: a
        # replica "snapshot + recent changes", so a reader merges several files.
        for u in range(updates):
            con.execute("BEGIN")
            ids = rng.sample(range(1, rows + 1), 300)
            con.executemany("UPDATE t SET payload = ? WHERE id = ?",
                            [(payload(rng), k) for k in ids])
            con.executemany("INSERT INTO t(id, name, payload) VALUES (?, ?, ?)",
                            [(k, name_of(k), payload(rng))
                             for k in range(rows + 1 + u * 100, rows + 1 + (u + 1) * 100)])
            con.execute("COMMIT")
            ls.wait_synced()
        fp = db_fingerprint(con)
        con.close()
        txid = ls.wait_synced()
    finally:
        ls.stop()
    levels = list_levels(endpoint, "main")
    return {"db": db, "ls": ls, "txid": txid, "fingerprint": fp, "levels": levels,
            "plan": ls.plan(),
            "rows": rows + updates * 100, "size": db.stat().st_size}


def build_l0(work: Path, endpoint: str, txns: int) -> dict:
    db = work / "l0.db"
    rng = random.Random(2)
    con = new_db(db)
    fill(con, 2000, rng)
    ls = Litestream(db, endpoint, "l0", work)
    ls.start()
    try:
        ls.wait_synced(timeout=120)
        ls.wait_startup_compaction()
        for k in range(txns):
            con.execute("UPDATE t SET payload = ? WHERE id = ?",
                        (payload(rng), rng.randrange(1, 2001)))
            ls.wait_synced()
        con.close()
        txid = ls.wait_synced()
    finally:
        ls.stop()
    levels = list_levels(endpoint, "l0")
    plan = ls.plan()
    return {"db": db, "ls": ls, "txid": txid, "levels": levels, "plan": plan}


def plan_text(plan: list) -> str:
    """`L9:1-1 (4.8 MiB) → L0:2 (1.0 MiB) → …` (long runs of L0 files abbreviated)."""
    def one(f):
        lv, mn, mx, size = f
        r = f"{mn}" if mn == mx else f"{mn}-{mx}"
        return f"L{lv}:{r} ({fmt_bytes(size)})"
    parts = [one(f) for f in plan]
    if len(parts) > 8:
        parts = parts[:4] + [f"… {len(parts) - 6} more …"] + parts[-2:]
    return " → ".join(parts)


# ------------------------------------------------------------------------------- scenarios
class Impl:
    def __init__(self, key: str, label: str, ext: str | None):
        self.key, self.label, self.ext = key, label, ext


def child_env(impl: Impl, url: str | None, tmp: Path, store_env: dict | None = None) -> dict:
    """`store_env`: the store's own variables (credentials, emulator host) for other backends
    than this file's SeaweedFS (bench/backends.py)."""
    if impl.ext is None:
        return base_env()
    extra = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
             **(store_env or {})}
    if url:
        extra["LITESTREAM_REPLICA_URL"] = url
    if impl.key == "go":
        extra["LITESTREAM_LOG_FILE"] = str(tmp / "go-vfs.log")
        return base_env(extra, go=True)
    return base_env(extra)


def phase_profile(entries: list, seq0: int, seq1: int) -> dict:
    """Requests whose arrival is in (seq0, seq1]: count, bytes, by kind, time with ≥ 1 request
    in flight (the network-bound part of the wall time), peak concurrency, serial rounds."""
    es = [e for e in entries if seq0 < e["seq"] <= seq1]
    by_kind: dict[str, list[int]] = {}
    for e in es:
        k = by_kind.setdefault(e["kind"], [0, 0])
        k[0] += 1
        k[1] += e["bytes"]
    iv = sorted((e["t0"], e["t1"]) for e in es)
    busy = 0.0
    rounds = 0
    cur_s = cur_e = None
    for s, t in iv:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
            cur_s, cur_e = s, t
            rounds += 1
        else:
            cur_e = max(cur_e, t)
    if cur_e is not None:
        busy += cur_e - cur_s
    events = sorted([(s, 1) for s, _ in iv] + [(t, -1) for _, t in iv])
    conc = peak = 0
    for _, d in events:
        conc += d
        peak = max(peak, conc)
    by_file: dict[str, list[int]] = {}
    for e in es:
        if e["kind"] == "get":
            f = by_file.setdefault(e["key"], [0, 0])
            f[0] += 1
            f[1] += e["bytes"]
    return {"requests": len(es), "bytes": sum(e["bytes"] for e in es),
            "by_kind": {k: {"requests": v[0], "bytes": v[1]} for k, v in sorted(by_kind.items())},
            "net_busy_s": busy, "rounds": rounds, "peak_concurrency": peak,
            "get_sizes": summarize_sizes([e["bytes"] for e in es if e["kind"] == "get"]),
            "sample": [f"{e['method']} {e['key']} {e['range'] or ''} -> {e['status']} "
                       f"{e['bytes']}B" for e in es[:12]],
            "by_file": {k: {"requests": v[0], "bytes": v[1]} for k, v in sorted(by_file.items())}}


def summarize_sizes(sizes: list[int]) -> dict:
    if not sizes:
        return {}
    s = sorted(sizes)
    return {"n": len(s), "min": s[0], "median": s[len(s) // 2], "max": s[-1]}


def run_child(impl: Impl, scenario: str, uri: str, url: str | None, proxy: Proxy | None,
              params: dict, timeout: float, store_env: dict | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-child-"))
    try:
        spec = {"scenario": scenario, "ext": impl.ext, "uri": uri,
                "proxy": proxy.url if (proxy and impl.ext) else None, "params": params}
        seq_before = proxy.stats()["seq"] if proxy else 0
        rc, out, err, secs = run([SYSTEM_PYTHON, str(BENCH / "child.py"), json.dumps(spec)],
                                 env=child_env(impl, url, tmp, store_env), cwd=tmp,
                                 timeout=timeout)
        golog = tmp / "go-vfs.log"
        gotext = golog.read_text(errors="replace") if golog.exists() else ""
        res = None
        for line in reversed(out.decode("utf-8", "replace").splitlines()):
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    res = json.loads(line)
                    break
        if res is None:
            last = " ".join(err.decode("utf-8", "replace").strip().splitlines()[-3:])[-300:]
            res = {"ok": False, "error": f"child exited {rc} without a result; stderr: {last}",
                   "phases": {}}
        res["returncode"] = rc
        res["process_s"] = secs
        res["stderr"] = tail(err, 4000)
        if gotext:
            res["go_log"] = tail(gotext, 4000)
        if not res.get("ok"):
            res["stdout"] = tail(out, 2000)
        if proxy and impl.ext:
            time.sleep(0.05)  # let in-flight responses finish being logged
            entries = proxy.log_since(seq_before)
            seq_after = proxy.stats()["seq"]
            res["process_requests"] = phase_profile(entries, seq_before, seq_after)
            for name, ph in res.get("phases", {}).items():
                ph.update(phase_profile(entries, ph["seq0"], ph["seq1"]))
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def median_run(runs: list[dict], phase: str | None, metric: str = "wall_s") -> dict:
    """The run with the median value of the metric (errors first: an error wins)."""
    bad = [r for r in runs if not r.get("ok")]
    if bad:
        return bad[0]
    def val(r):
        return r["phases"][phase][metric] if phase else r[metric]
    s = sorted(runs, key=val)
    return s[len(s) // 2]


# ------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description="ltxvfs read benchmark")
    ap.add_argument("--delay-ms", type=float, default=10.0, help="per-request delay (10)")
    ap.add_argument("--quick", action="store_true", help="small database (~7 MB), fewer repeats")
    ap.add_argument("--rows", type=int, help="rows of the main table (default 80000, quick 20000)")
    ap.add_argument("--l0-txns", type=int, default=210, help="transactions of the L0 replica")
    ap.add_argument("--repeat", type=int, help="fresh-process repeats of the short cold scenarios "
                    "(median reported; default 3, quick 2)")
    ap.add_argument("--ours", default=str(ROOT / "target/release/liblitestream_vfs.so"))
    ap.add_argument("--go", help="Go extension (default: PyPI litestream_vfs.loadable_path())")
    ap.add_argument("--only", help="comma-separated scenario keys to run")
    ap.add_argument("--impls", default="ours,go,plain",
                    help="comma-separated subset of ours,go,plain to run (default all)")
    ap.add_argument("--md", help="write the results section of this Markdown file")
    ap.add_argument("--json", help="write all raw results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit("bench: hung up"))

    rows = a.rows or (20000 if a.quick else 80000)
    repeat = a.repeat or (2 if a.quick else 3)
    go_ext = a.go
    if not go_ext:
        import litestream_vfs
        go_ext = litestream_vfs.loadable_path()
    ours = Impl("ours", "ltxvfs", str(Path(a.ours).resolve()))
    go = Impl("go", "Go VFS", str(go_ext))
    plain = Impl("plain", "plain SQLite", None)
    for i in (ours, go):
        if not Path(i.ext).is_file():
            sys.exit(f"{i.label} extension not found: {i.ext}")
    only = set(a.only.split(",")) if a.only else None
    argv_str = os.environ.get("BENCH_COMMAND") or " ".join(["python3 bench/run.py"] + sys.argv[1:])

    work = Path(tempfile.mkdtemp(prefix="ltxvfs-bench-"))
    t_start = time.monotonic()
    results: dict = {"config": {"delay_ms": a.delay_ms, "rows": rows, "repeat": repeat,
                                "quick": a.quick, "ours": ours.ext, "go": go.ext,
                                "command": argv_str}, "scenarios": {}}
    try:
        log(f"work dir {work}")
        endpoint, s3port = start_seaweedfs(work)
        log(f"SeaweedFS ready at {endpoint}")
        main_r = build_main(work, endpoint, rows, updates=5)
        log(f"main replica: {main_r['rows']} rows, db {main_r['size'] / MIB:.1f} MiB, "
            f"txid {main_r['txid']}, levels "
            + ", ".join(f"L{k}: {len(v)} files {sum(x[2] for x in v) / MIB:.1f} MiB"
                        for k, v in sorted(main_r["levels"].items())))
        local = work / "local.db"
        main_r["ls"].restore(local)
        fp_local = db_fingerprint(local)
        if fp_local != main_r["fingerprint"]:
            raise RuntimeError(f"restored copy differs: {fp_local} vs {main_r['fingerprint']}")
        need_l0 = only is None or "open_l0" in only
        l0_r = build_l0(work, endpoint, a.l0_txns) if need_l0 else None
        if l0_r:
            n_l0_plan = sum(1 for f in l0_r["plan"] if f[0] == 0)
            if n_l0_plan < 200 and a.l0_txns >= 200:
                raise RuntimeError(f"l0 replica: only {n_l0_plan} L0 files in the plan")
            log(f"l0 replica: txid {l0_r['txid']}, levels "
                + ", ".join(f"L{k}: {len(v)}" for k, v in sorted(l0_r["levels"].items()))
                + f", L0 files in the restore plan: {n_l0_plan}")
            l0_r["plan_l0_files"] = n_l0_plan
        proxy = Proxy(s3port, a.delay_ms, work)
        log(f"proxy at {proxy.url} (delay {a.delay_ms} ms)")
        purl = {"main": replica_url(proxy.url, "main"), "l0": replica_url(proxy.url, "l0")}

        page_count = main_r["size"] // 4096
        results["replicas"] = {
            "main": {"rows": main_r["rows"], "db_bytes": main_r["size"], "txid": main_r["txid"],
                     "levels": {f"L{k}": {"files": len(v), "bytes": sum(x[2] for x in v)}
                                for k, v in sorted(main_r["levels"].items())},
                     "plan": plan_text(main_r["plan"]),
                     "files": {f"main/{lv:04x}/{mn:016x}-{mx:016x}.ltx": size
                               for lv, fs in main_r["levels"].items() for mn, mx, size in fs}},
        }
        if l0_r:
            results["replicas"]["l0"] = {
                "txid": l0_r["txid"], "plan_l0_files": l0_r["plan_l0_files"],
                "plan": plan_text(l0_r["plan"]),
                "levels": {f"L{k}": {"files": len(v), "bytes": sum(x[2] for x in v)}
                           for k, v in sorted(l0_r["levels"].items())}}

        rng = random.Random(42)
        nrows = main_r["rows"]
        vfs_uri = "file:bench.db?vfs=litestream"
        local_uri = f"file:{local}"
        # 10x-cache scan: cache = db / 12 rounded down to 256 KiB (2 MiB for the default size)
        rss_cache = max(256 * 1024, (main_r["size"] // 12) // (256 * 1024) * (256 * 1024))
        rss_cache = min(rss_cache, 2 * MIB)
        warm_keys = rng.sample(range(1, nrows + 1), 256)
        warm_ranges = [(s, s + 99) for s in rng.sample(range(1, nrows - 100), 20)]
        scen = [
            # key, title, child scenario, replica, repeats, phase, params
            ("load", "load extension", "load", None, 5, None, {}),
            ("open", "open", "open", "main", repeat, "open", {}),
            ("point", "cold point lookup (rowid)", "point", "main", repeat, "query", "point"),
            ("index", "cold lookup via index", "index", "main", repeat, "query", "index"),
            ("scan", "cold full scan", "scan", "main", 1, "query", {}),
            ("warm_point", "warm point lookup", "warm_point", "main", 1, "query",
             {"keys": warm_keys, "ops": 20000}),
            ("warm_range", "warm range aggregate (100 rows)", "warm_range", "main", 1, "query",
             {"ranges": warm_ranges, "ops": 2000}),
            ("open_l0", f"open, {l0_r['plan_l0_files'] if l0_r else '?'} L0 files", "open", "l0",
             repeat, "open", {}),
            ("scan_rss", f"full scan, cache_size {rss_cache // 1024} KiB "
             f"({main_r['size'] / rss_cache:.0f}x)", "scan_rss", "main", 1, "query",
             {"cache_size": rss_cache}),
        ]
        for key, title, sc, rep, reps, phase, params in scen:
            if only and key not in only:
                continue
            if rep == "l0" and not l0_r:
                continue
            entry = {"title": title, "phase": phase, "runs": {}}
            results["scenarios"][key] = entry
            impls = [i for i in [ours, go] + ([plain] if sc not in ("load",) and rep == "main"
                                              else []) if i.key in a.impls.split(",")]
            for r in range(reps):
                if params == "point":
                    p = {"keys": [rng.randrange(1, nrows + 1)]}
                elif params == "index":
                    p = {"keys": [name_of(rng.randrange(1, rows + 1))]}
                else:
                    p = dict(params)
                for impl in impls:
                    if impl.ext is None:
                        uri = local_uri
                    else:
                        uri = vfs_uri + (f"&cache_size={p['cache_size']}" if "cache_size" in p
                                         else "")
                    timeout = 300 if sc in ("scan", "scan_rss") else 120
                    res = run_child(impl, sc, uri, purl.get(rep) if rep else None,
                                    proxy if impl.ext else None, p, timeout)
                    entry["runs"].setdefault(impl.key, []).append(res)
                    brief = ("ERROR " + res.get("error", "?")) if not res.get("ok") else (
                        f"{res['load_ms']:.1f} ms" if sc == "load" else
                        f"{res['per_op_us']:.1f} us/op" if "per_op_us" in res else
                        f"{res['phases'][phase]['wall_s'] * 1000:.1f} ms, "
                        f"{res['phases'][phase].get('requests', 0)} req")
                    log(f"{key} [{r + 1}/{reps}] {impl.label}: {brief}")
            # results must agree
            ok_res = {k: [x.get("result") for x in v if x.get("ok")]
                      for k, v in entry["runs"].items()}
            if sc not in ("load", "open") and "plain" in ok_res and ok_res["plain"]:
                for k in ("ours", "go"):
                    for got, want in zip(ok_res.get(k, []), ok_res["plain"]):
                        if got != want:
                            entry.setdefault("mismatch", []).append(
                                f"{k}: {str(got)[:200]} != plain {str(want)[:200]}")
        results["meta"] = {"page_count": page_count, "rss_cache": rss_cache,
                           "elapsed_s": time.monotonic() - t_start}
        results["machine"] = machine_notes(ours.ext, go.ext)
        table = render(results)
        print("\n" + table)
        if a.md:
            write_md(Path(a.md), table, results)
            log(f"wrote {a.md}")
    finally:
        for p in reversed(PROCS):
            kill_group(p)
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=1, default=str))
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    log(f"done in {time.monotonic() - t_start:.0f} s")


# ------------------------------------------------------------------------------- report
def machine_notes(ours_ext: str, go_ext: str) -> dict:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    rc, out, _, _ = run([SYSTEM_PYTHON, "-c", "import sqlite3,sys; print(sqlite3.sqlite_version, "
                         "sys.version.split()[0])"])
    sq, pyv = out.decode().split() if rc == 0 else ("?", "?")
    rc, lsv, _, _ = run([find_tool("litestream"), "version"])
    rc, weedv, _, _ = run([find_tool("weed"), "version"])
    rc, commit, _, _ = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    rc2, dirty, _, _ = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "ext"])
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "python": pyv, "sqlite": sq, "litestream": lsv.decode().strip(),
            "weed": weedv.decode().strip().splitlines()[0] if weedv else "?",
            "commit": commit.decode().strip() + (" (+ uncommitted changes in src/ext)"
                                                 if dirty.strip() else ""),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def fmt_time(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    if n < 1024:
        return f"{n} B"
    if n < MIB:
        return f"{n / 1024:.0f} KiB"
    return f"{n / MIB:.1f} MiB"


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


def pick(entry: dict, impl: str, phase: str | None, key: str):
    runs = entry["runs"].get(impl)
    if not runs:
        return None
    if key == "load":
        bad = [r for r in runs if not r.get("ok")]
        if bad:
            return bad[0]
        return sorted(runs, key=lambda r: r["load_ms"])[len(runs) // 2]
    if key.startswith("warm"):
        return median_run(runs, None, "per_op_us") if all(r.get("ok") for r in runs) else \
            [r for r in runs if not r.get("ok")][0]
    return median_run(runs, phase)


def metrics(r: dict | None, key: str, phase: str | None) -> dict:
    """wall (s), requests, bytes, rss (kB) of one chosen run; None fields where n/a."""
    if r is None:
        return {}
    if not r.get("ok"):
        return {"error": r.get("error", "?")}
    if key == "load":
        return {"wall": r["load_ms"] / 1000, "req": 0, "bytes": 0, "rss": r.get("rss_hwm_kb")}
    ph = r["phases"][phase]
    wall = r["per_op_us"] / 1e6 if "per_op_us" in r else ph["wall_s"]
    return {"wall": wall, "req": ph.get("requests"), "bytes": ph.get("bytes"),
            "rss": r.get("rss_hwm_kb"), "rss_load": r.get("rss_after_load_kb"),
            "rss_base": r.get("rss_before_load_kb"), "phase": ph}


def judge(key: str, o: dict, g: dict, p: dict, results: dict) -> tuple[str, str]:
    """(target text, verdict text)."""
    if not o:
        return target_text(key, results), "–"
    if "error" in o:
        return target_text(key, results), "✗ ltxvfs failed"
    if key in ("open", "point", "index", "scan", "open_l0", "warm_point"):
        if not g or "error" in g:
            return target_text(key, results), "? (no Go result)"
    W = o.get("wall")
    gw = g.get("wall")
    if key == "load":
        ok = W < 0.020
        return target_text(key, results), ("✓" if ok else f"✗ {W * 1000:.1f} ms ({W / 0.020:.1f}×)")
    if key in ("open", "point", "index"):
        req_ok = o["req"] <= g["req"]
        wall_ok = W <= 0.7 * gw
        parts = []
        if not req_ok:
            parts.append(f"req {o['req']} > {g['req']}")
        if not wall_ok:
            parts.append(f"wall {W / gw:.2f}× > 0.7×")
        return target_text(key, results), "✓" if not parts else "✗ " + "; ".join(parts)
    if key == "scan":
        req_ok = o["req"] * 20 <= g["req"]
        wall_ok = W * 10 <= gw
        parts = []
        if not req_ok:
            parts.append(f"req 1/{g['req'] / max(o['req'], 1):.1f} (need 1/20)")
        if not wall_ok:
            parts.append(f"wall 1/{gw / W:.1f} (need 1/10)")
        return target_text(key, results), "✓" if not parts else "✗ " + "; ".join(parts)
    if key == "warm_point":
        pw = p.get("wall")
        parts = []
        if pw and W > 1.3 * pw:
            parts.append(f"{W / pw:.2f}× plain (need ≤ 1.3×)")
        if gw and W * 2 > gw:
            parts.append(f"{gw / W:.2f}× faster than Go (need ≥ 2×)")
        return target_text(key, results), "✓" if not parts else "✗ " + "; ".join(parts)
    if key == "open_l0":
        ok = W <= 0.3 * gw
        return target_text(key, results), "✓" if ok else f"✗ {W / gw:.2f}× Go (need ≤ 0.3×)"
    if key == "scan_rss":
        # The target bounds what the VFS adds to its host: peak RSS minus the process's RSS
        # before the extension was loaded (the Python interpreter alone is ~10 MiB). The whole
        # process's peak is shown too.
        limit_kb = target_rss_kb(results)
        rss, base = o.get("rss"), o.get("rss_base")
        if rss is None or base is None:
            return target_text(key, results), "? (no RSS)"
        own = rss - base
        verdict = (f"{'✓' if own <= limit_kb else '✗'} extension adds {own / 1024:.1f} MiB "
                   f"(whole process {rss / 1024:.1f} MiB {'≤' if rss <= limit_kb else '>'} "
                   f"{limit_kb / 1024:.1f})")
        return target_text(key, results), verdict
    return target_text(key, results), "(no target)"


def target_rss_kb(results: dict) -> float:
    m = results["meta"]
    index_est = m["page_count"] * 64  # a generous 64 B per page-index entry
    return (m["rss_cache"] + index_est + 20 * MIB) / 1024


def target_text(key: str, results: dict) -> str:
    return {
        "load": "< 20 ms",
        "open": "req ≤ Go, wall ≤ 0.7× Go",
        "point": "req ≤ Go, wall ≤ 0.7× Go",
        "index": "req ≤ Go, wall ≤ 0.7× Go",
        "scan": "req ≤ Go/20, wall ≤ Go/10",
        "warm_point": "≤ 1.3× plain, ≤ 0.5× Go",
        "warm_range": "–",
        "open_l0": "wall ≤ 0.3× Go",
        "scan_rss": (f"RSS added by the extension ≤ {target_rss_kb(results) / 1024:.1f} MiB "
                     f"(cache + index + 20 MiB)") if "meta" in results else "",
    }.get(key, "")


def render(results: dict) -> str:
    hdr = ["scenario", "ltxvfs", "Go VFS", "plain", "ltxvfs/Go", "ltxvfs req", "Go req",
           "req ratio", "ltxvfs bytes", "Go bytes", "peak RSS ltxvfs / Go", "target", "met?"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    notes = []
    for key, e in results["scenarios"].items():
        ph = e["phase"]
        o = metrics(pick(e, "ours", ph, key), key, ph)
        g = metrics(pick(e, "go", ph, key), key, ph)
        p = metrics(pick(e, "plain", ph, key), key, ph)
        unit = "/op" if key.startswith("warm") else ""

        def cell_w(m):
            if not m:
                return "–"
            if "error" in m:
                return "ERROR"
            return fmt_time(m["wall"]) + unit

        def cell(m, f):
            if not m or "error" in m:
                return "–"
            return str(m[f]) if f == "req" else fmt_bytes(m[f])
        tgt, verdict = judge(key, o, g, p, results)
        rss = (f"{o['rss'] / 1024:.1f} / {g['rss'] / 1024:.1f} MiB"
               if o.get("rss") and g.get("rss") else "–")
        lines.append("| " + " | ".join([
            e["title"], cell_w(o), cell_w(g), cell_w(p),
            ratio(o.get("wall"), g.get("wall")) if "error" not in o and "error" not in g else "–",
            cell(o, "req"), cell(g, "req"),
            ratio(o.get("req"), g.get("req")) if o.get("req") is not None and g.get("req") else "–",
            cell(o, "bytes"), cell(g, "bytes"), rss, tgt, verdict]) + " |")
        for which, m in (("ltxvfs", o), ("Go VFS", g), ("plain", p)):
            if "error" in m:
                notes.append(f"* {e['title']} — {which} failed: `{m['error'][:300]}`")
        for mm in e.get("mismatch", []):
            notes.append(f"* {e['title']} — result mismatch: {mm}")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def profile_lines(results: dict) -> list[str]:
    """Where the wall time went, per scenario and implementation, from the proxy's log."""
    out = ["| scenario | impl | wall | time with a request in flight | serial rounds | "
           "peak concurrency | requests by kind | GET sizes (min/median/max) |",
           "|---|---|---|---|---|---|---|---|"]
    for key, e in results["scenarios"].items():
        if key == "load":
            continue
        for impl, label in (("ours", "ltxvfs"), ("go", "Go VFS")):
            r = pick(e, impl, e["phase"], key)
            if not r or not r.get("ok"):
                continue
            ph = r["phases"][e["phase"]]
            if key.startswith("warm"):
                ph = r["phases"]["warmup"]
                wall = ph["wall_s"]
                name = e["title"] + " (warm-up pass)"
            else:
                wall = ph["wall_s"]
                name = e["title"]
            kinds = ", ".join(f"{k} {v['requests']}" for k, v in ph.get("by_kind", {}).items())
            gs = ph.get("get_sizes") or {}
            sizes = (f"{fmt_bytes(gs['min'])} / {fmt_bytes(gs['median'])} / {fmt_bytes(gs['max'])}"
                     if gs else "–")
            out.append(f"| {name} | {label} | {fmt_time(wall)} | {fmt_time(ph.get('net_busy_s'))} "
                       f"| {ph.get('rounds')} | {ph.get('peak_concurrency')} | {kinds or '–'} "
                       f"| {sizes} |")
    return out


def open_plus_query_note(results: dict) -> str:
    """Cold lookups counted from the connect (open + query) in the same runs."""
    bits = []
    for key in ("point", "index"):
        e = results["scenarios"].get(key)
        if not e:
            continue
        vals = {}
        for impl in ("ours", "go"):
            runs = [r for r in e["runs"].get(impl, []) if r.get("ok")]
            if not runs:
                continue
            tot = sorted((r["phases"]["open"]["wall_s"] + r["phases"]["query"]["wall_s"],
                          r["phases"]["open"].get("requests", 0)
                          + r["phases"]["query"].get("requests", 0)) for r in runs)
            vals[impl] = tot[len(tot) // 2]
        if "ours" in vals and "go" in vals:
            (ow, orq), (gw, grq) = vals["ours"], vals["go"]
            bits.append(f"{e['title']}: ltxvfs {fmt_time(ow)} / {orq} req, Go {fmt_time(gw)} / "
                        f"{grq} req ({ow / gw:.2f}×)")
    return ("* Cold lookups counted from the connect (open + query, same runs): "
            + "; ".join(bits) + ".") if bits else ""


def plain_rss_note(results: dict) -> str:
    e = results["scenarios"].get("scan_rss")
    if not e:
        return ""
    p = pick(e, "plain", "query", "scan_rss")
    o = pick(e, "ours", "query", "scan_rss")
    g = pick(e, "go", "query", "scan_rss")
    bits = []
    if p and p.get("ok"):
        bits.append(f"the same scan with plain SQLite (no extension) peaks at "
                    f"{p['rss_hwm_kb'] / 1024:.1f} MiB (Python + SQLite)")
    for lab, r in (("ltxvfs", o), ("Go VFS", g)):
        if r and r.get("ok") and r.get("rss_after_load_kb"):
            bits.append(f"{lab}: {r['rss_after_load_kb'] / 1024:.1f} MiB after loading, peak "
                        f"{r['rss_hwm_kb'] / 1024:.1f} MiB")
    return ("* Peak RSS (VmHWM of the whole Python process) in the cache-size scan: "
            + "; ".join(bits) + ".") if bits else ""


def per_file_lines(results: dict) -> list[str]:
    """For the scans: GETs and bytes per LTX file, against the file's size."""
    sizes = results.get("replicas", {}).get("main", {}).get("files", {})
    out = []
    for key in ("scan", "scan_rss"):
        e = results["scenarios"].get(key)
        if not e:
            continue
        for impl, label in (("ours", "ltxvfs"), ("go", "Go VFS")):
            r = pick(e, impl, "query", key)
            if not r or not r.get("ok"):
                continue
            bf = r["phases"]["query"].get("by_file", {})
            parts = []
            for k, v in bf.items():
                m = re.search(r"/([0-9a-f]{4})/([0-9a-f]{16})-([0-9a-f]{16})\.ltx$", k)
                name = (f"L{int(m.group(1), 16)}:{int(m.group(2), 16)}"
                        + (f"-{int(m.group(3), 16)}" if m.group(2) != m.group(3) else "")) if m else k
                sz = sizes.get(k)
                parts.append(f"{name} {v['requests']} GETs, {fmt_bytes(v['bytes'])}"
                             + (f" ({v['bytes'] / sz:.1f}× its {fmt_bytes(sz)})" if sz else ""))
            out.append(f"* {e['title']}, {label}: " + "; ".join(parts))
    return out


def write_md(path: Path, table: str, results: dict):
    c = results["config"]
    m = results["machine"]
    reps = results.get("replicas", {})
    main = reps.get("main", {})
    l0 = reps.get("l0", {})

    def lv(d):
        return ", ".join(f"{k}: {v['files']} file(s), {fmt_bytes(v['bytes'])}"
                         for k, v in d.get("levels", {}).items())
    body = [
        MD_BEGIN,
        "",
        f"Run of {m['date']}: `{c['command']}` (delay {c['delay_ms']:g} ms per request, "
        f"{results['meta']['elapsed_s']:.0f} s in all).",
        "",
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, Linux {m['kernel']}; "
        f"Python {m['python']} with SQLite {m['sqlite']} (`/usr/bin/python3`); litestream "
        f"{m['litestream']}; SeaweedFS {m['weed']}; ltxvfs at {m['commit']}.",
        f"* `main` replica: {main.get('rows')} rows, database {fmt_bytes(main.get('db_bytes'))} "
        f"({results['meta']['page_count']} pages of 4 KiB), TXID {main.get('txid')}; {lv(main)}; "
        f"restore plan {main.get('plan')}.",
        (f"* `l0` replica: TXID {l0.get('txid')}, {l0.get('plan_l0_files')} L0 files in "
         f"`litestream restore -dry-run`'s plan ({l0.get('plan')}); {lv(l0)}.") if l0 else None,
        plain_rss_note(results) or "-",
        open_plus_query_note(results) or "-",
        "* Wall times: median of the fresh-process repeats for load/open/cold lookups, one run "
        "for the scans; warm rows are per operation. Requests and bytes are those of the timed "
        "part as the proxy counted them.",
        "",
        table,
        "",
        "Where the time went (from the proxy's per-request log of the same runs):",
        "",
        *profile_lines(results),
        "",
        "Requests and bytes per LTX file in the scans:",
        "",
        *per_file_lines(results),
        "",
        MD_END,
    ]
    gen = "\n".join(x for x in body if x is not None and x != "-")
    replace_md_section(path, MD_BEGIN, MD_END, gen)


def replace_md_section(path: Path, begin: str, end: str, block: str, heading: str = ""):
    """Put `block` (which starts with `begin` and ends with `end`) in place of the section
    between those markers in the Markdown file at `path`; append it (under `## heading`, if
    given) when the file has no such section yet."""
    text = Path(path).read_text() if Path(path).exists() else "# Benchmarks"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        text = pre + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + (f"## {heading}\n\n" if heading else "") + block + "\n"
    Path(path).write_text(text)


if __name__ == "__main__":
    main()
