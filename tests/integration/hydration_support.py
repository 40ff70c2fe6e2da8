"""Helpers for tests/integration/test_hydration.py: a long-lived connection in a child process
(with its pid, for kill -9 and peak RSS), a faulting/counting S3 proxy built on bench/proxy.py,
`litestream restore -txid` hashes, and waits on the hydration state."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness as H

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(H.REPO_ROOT / "bench"))
import proxy as P  # noqa: E402  (bench/proxy.py: the counting, delaying proxy)


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def restore_sha256(tmp: Path, url: str, txid: int, env: dict | None = None) -> str:
    out = tmp / f"restore-{txid:016x}-{time.monotonic_ns()}.db"
    rc, o, e, _ = H.run([H.find_tool("litestream"), "restore", "-txid", f"{txid:016x}", "-o", str(out), url],
                        env=H.base_env(go=True, extra=env), timeout=120)
    assert rc == 0, (o + e).decode()[-2000:]
    return sha256_file(out)


def meta_txid(path) -> int | None:
    try:
        text = Path(str(path) + ".meta").read_text()
    except FileNotFoundError:
        return None
    first = text.split("\n", 1)[0].strip()
    return int(first) if first.isdigit() and "state=clean" in text else None


class Session:
    """One apsw connection in a child (tests/integration/sql_session.py), queried line by line."""

    def __init__(self, ext, uri, env=None, ready_timeout=60):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sql_session.py"), str(ext), uri],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=H.base_env(go=H.is_go_ext(ext), extra=env), start_new_session=True)
        first = self._line(timeout=ready_timeout)
        assert first.get("ready"), first

    def _line(self, timeout=60) -> dict:
        out: list[bytes] = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not out or not out[0]:
            H.kill_group(self.proc)
            raise AssertionError("session gave no answer; stderr:\n" + self.proc.stderr.read().decode()[-3000:])
        return json.loads(out[0])

    def query(self, sql: str) -> dict:
        self.proc.stdin.write((json.dumps({"sql": sql}) + "\n").encode())
        self.proc.stdin.flush()
        return self._line()

    def rows(self, sql: str) -> list:
        r = self.query(sql)
        assert "rows" in r, r
        return r["rows"]

    def one(self, sql: str):
        return self.rows(sql)[0][0]

    def state(self) -> str:
        return self.one("PRAGMA litestream_hydration_state")

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def kill9(self):
        H.kill_group(self.proc, grace=0, sig=9)

    def close(self):
        H.kill_group(self.proc, grace=2)


def wait_for(check, timeout: float, what: str, tick: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(tick)
    raise AssertionError(f"{what}: not reached in {timeout}s (last: {last!r})")


def wait_hydrated(s: Session, path, txid: int, timeout: float = 60.0):
    """Until the session's replica is at `txid` and the file is complete and clean at it."""
    def ok():
        st = s.state()
        cur = int(s.one("SELECT litestream_txid()"), 16)
        return (st == "complete" and cur == txid and meta_txid(path) == txid) or None
    wait_for(ok, timeout, f"hydrated at {txid}", tick=0.1)


class FaultProxy:
    """bench/proxy.py's counting, delaying proxy in this process, plus faults: ranged GETs of
    at least `big` bytes (hydration's requests; page reads are smaller) answer `fail_status`
    while `fail_count` is non-zero (-1: always)."""

    def __init__(self, upstream_port: int, delay_ms: float = 0.0, big: int = 200_000):
        self.counters = P.Counters()
        self.fail_count = 0
        self.fail_status = 503
        self.failed = 0
        self.big = big
        base = P.make_handler(f"127.0.0.1:{upstream_port}", delay_ms / 1000.0, self.counters)
        outer = self

        class Handler(base):
            def _maybe_fail(self) -> bool:
                rng = self.headers.get("Range") or ""
                if self.command != "GET" or not rng.startswith("bytes="):
                    return False
                try:
                    a, b = rng[6:].split("-")
                    size = int(b) - int(a) + 1
                except ValueError:
                    return False
                with outer.counters.lock:
                    if size < outer.big or outer.fail_count == 0:
                        return False
                    if outer.fail_count > 0:
                        outer.fail_count -= 1
                    outer.failed += 1
                body = b"<Error><Code>InjectedFault</Code><Message>injected</Message></Error>"
                self.send_response(outer.fail_status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return True

            def _proxy(self):
                if not self._maybe_fail():
                    base._proxy(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _proxy

        self.server = P.ProxyServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, s3: H.S3Server, prefix: str) -> str:
        return f"s3://{s3.bucket}/{prefix}?endpoint=http://127.0.0.1:{self.port}&forcePathStyle=true&region=us-east-1"

    def stats(self) -> dict:
        return self.counters.snapshot()

    def reset(self):
        self.counters.reset()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
