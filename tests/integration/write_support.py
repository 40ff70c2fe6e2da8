"""Helpers for the write-mode tests: Python writer processes (Debian python3 + system libsqlite3,
which loads extensions), restore through the real ``litestream``, replica listings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import harness as H

# argv: ext, uri, then a JSON list of steps. A step is one SQL statement, or {"q": sql} whose
# rows are printed; "c" names the connection (default "a"), "sleep" waits that many seconds. Prints one JSON line
# per step: {"i": n, "rows": [...]} or {"i": n, "error": "..."}. Continues after errors.
RUNNER = r"""
import json, sqlite3, sys
ext, uri, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
l = sqlite3.connect(":memory:"); l.enable_load_extension(True); l.load_extension(ext)
cons = {}
def con(name):
    if name not in cons:
        cons[name] = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=0,
                                     check_same_thread=False)
    return cons[name]
for i, s in enumerate(steps):
    if isinstance(s, str):
        s = {"sql": s}
    c = con(s.get("c", "a"))
    try:
        if "sleep" in s:
            import time; time.sleep(s["sleep"])
            print(json.dumps({"i": i, "rows": []}), flush=True)
        elif "sql" in s:
            c.execute(s["sql"])
            print(json.dumps({"i": i, "rows": []}), flush=True)
        else:
            print(json.dumps({"i": i, "rows": [list(r) for r in c.execute(s["q"]).fetchall()]}),
                  flush=True)
    except Exception as e:
        print(json.dumps({"i": i, "error": f"{type(e).__name__}: {e}"}), flush=True)
for c in cons.values():
    c.close()
"""

# argv: ext, uri, first id. Commits forever; each transaction inserts (i, i) and (i+10^7, i)
# and prints i once COMMIT has returned.
CRASH_WRITER = r"""
import sqlite3, sys
ext, uri, i = sys.argv[1], sys.argv[2], int(sys.argv[3])
l = sqlite3.connect(":memory:"); l.enable_load_extension(True); l.load_extension(ext)
con = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5)
con.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, twin INTEGER, pad TEXT)")
print("ready", flush=True)
while True:
    con.execute("BEGIN")
    con.execute("INSERT INTO t VALUES(?, ?, ?)", (i, i, "p" * (i % 700)))
    con.execute("INSERT INTO t VALUES(?, ?, ?)", (i + 10_000_000, i, "q" * (i % 3000)))
    con.execute("COMMIT")
    print(i, flush=True)
    i += 1
"""

PYTHON = "/usr/bin/python3"


def run_steps(ext, uri, steps, env=None, timeout=60) -> list[dict]:
    rc, out, err, _ = H.run([PYTHON, "-c", RUNNER, str(ext), uri, json.dumps(steps)],
                            env=H.base_env(go=H.is_go_ext(ext), extra=env), timeout=timeout)
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert rc == 0 and len(lines) == len(steps), \
        f"rc={rc}\nout={out.decode()[-3000:]}\nerr={err.decode()[-3000:]}"
    return lines


def ok(results: list[dict]) -> list[dict]:
    bad = [r for r in results if "error" in r]
    assert not bad, bad
    return results


def restore(url: str, out: Path, txid: int | None = None, env=None) -> Path:
    argv = [H.find_tool("litestream"), "restore", "-o", str(out)]
    if txid is not None:
        argv += ["-txid", f"{txid:016x}"]
    rc, o, e, _ = H.run(argv + [url], env=H.base_env(go=True, extra=env), timeout=120)
    assert rc == 0, f"litestream restore failed: {e.decode()[-2000:]}"
    return out


def l0_txids(url: str, s3=None) -> list[int]:
    return H.replica_l0_max_txids(url, s3)


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def start_proxy(upstream_endpoint: str, delay_ms: int) -> tuple[subprocess.Popen, str]:
    """bench/proxy.py in front of SeaweedFS; returns (process, endpoint URL)."""
    u = urllib.parse.urlsplit(upstream_endpoint)
    proxy = Path(__file__).resolve().parents[2] / "bench" / "proxy.py"
    p = subprocess.Popen([sys.executable, str(proxy), "--upstream", u.netloc, "--port", "0",
                          "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    line = p.stdout.readline().decode().split()
    assert line and line[0] == "PORT", line
    return p, f"http://127.0.0.1:{line[1]}"


def spawn_writer(ext, uri, first: int, env=None) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-c", CRASH_WRITER, str(ext), uri, str(first)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=H.base_env(extra=env), start_new_session=True)


def kill9(p: subprocess.Popen) -> list[int]:
    """SIGKILL the writer; return the ids whose COMMIT had returned (printed)."""
    os.killpg(p.pid, 9)
    out, _ = p.communicate(timeout=10)
    return [int(x) for x in out.decode().split() if x.isdigit()]


class FaultProxy:
    """bench/proxy.py's forwarding handler in this process, with faults injected into PUTs: each
    PUT takes the next entry of `faults` — "500" (answered 500, not forwarded), "reset"
    (forwarded, so the object lands, then the connection is closed without an answer), "stall"
    (forwarded after `stall_s` seconds) or None (forwarded)."""

    def __init__(self, upstream_endpoint: str, faults: list, stall_s: float = 12.0):
        import importlib.util
        import threading
        spec = importlib.util.spec_from_file_location(
            "bench_proxy", Path(__file__).resolve().parents[2] / "bench" / "proxy.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        base = mod.make_handler(urllib.parse.urlsplit(upstream_endpoint).netloc, 0.0, mod.Counters())
        self.faults = list(faults)
        self.puts = []
        outer = self

        class Handler(base):
            def do_PUT(self):
                fault = outer.faults.pop(0) if outer.faults else None
                outer.puts.append((self.path, fault))
                if fault == "500":
                    n = int(self.headers.get("Content-Length") or 0)
                    if n:
                        self.rfile.read(n)
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "stall":
                    time.sleep(stall_s)
                if fault == "reset":
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n) if n else None
                    self._forward(body)
                    self.close_connection = True
                    import socket
                    self.request.shutdown(socket.SHUT_RDWR)
                    return
                self._proxy()

        self.server = mod.ProxyServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
