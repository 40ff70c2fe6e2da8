"""Helpers and fixtures for the WebAssembly component tests (test_component.py).

Under test: the component ``target/wasm32-wasip2/component/ltxvfs.wasm`` (``$LTXVFS_COMPONENT``;
``bash scripts/build-component.sh``) run by the wasmtime host ``target/release/ltxvfs-host``
(``$LTXVFS_HOST``; ``cargo build --release -p ltxvfs-host``). The reference is the native
extension (``target/release/liblitestream_vfs.so``), driven by Debian's python3 sqlite3 module,
whose typed values are compared with the host's JSON rows.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import harness as H


def _target_dir() -> Path:
    t = Path(os.environ.get("CARGO_TARGET_DIR") or H.REPO_ROOT / "target")
    return t if t.is_absolute() else H.REPO_ROOT / t


def component_path() -> Path:
    env = os.environ.get("LTXVFS_COMPONENT")
    return Path(env).resolve() if env else _target_dir() / "wasm32-wasip2" / "component" / "ltxvfs.wasm"


def host_path() -> Path:
    env = os.environ.get("LTXVFS_HOST")
    return Path(env).resolve() if env else _target_dir() / "release" / "ltxvfs-host"


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def component(tmp_path_factory):
    """(host binary, component, compiled-cache dir): every host run of the session shares one
    .cwasm cache, so only the first run compiles."""
    comp, host = component_path(), host_path()
    if not comp.is_file():
        pytest.fail(f"component not built: {comp} (bash scripts/build-component.sh)")
    if not host.is_file():
        pytest.fail(f"host not built: {host} (cargo build --release -p ltxvfs-host)")
    cache = tmp_path_factory.mktemp("cwasm")
    return Host(host, comp, cache)


# --------------------------------------------------------------------------------- the host
class HostError(AssertionError):
    pass


class Host:
    def __init__(self, binary: Path, component: Path, cache: Path):
        self.binary, self.component, self.cache = binary, component, cache

    def argv(self, sub: str, replica: str, *extra: str) -> list[str]:
        return [str(self.binary), sub, "--replica", replica, "--component", str(self.component),
                "--compiled-cache", str(self.cache), *extra]

    def query(self, replica: str, sql: str, params=(), *, env=None, args=(), time_=None,
              timeout=H.CLI_TIMEOUT):
        """`ltxvfs-host query`: returns (returncode, stdout JSON or None, stderr text)."""
        argv = self.argv("query", replica, *args)
        for p in params:
            argv += ["--param", json.dumps(encode_value(p))]
        if time_ is not None:
            argv += ["--time", time_]
        argv.append(sql)
        rc, out, err, _ = H.run(argv, env=H.base_env(extra=env), timeout=timeout)
        text = out.decode()
        return rc, (json.loads(text) if rc == 0 and text.strip() else None), err.decode("utf-8", "replace")

    def query_ok(self, replica: str, sql: str, params=(), **kw) -> dict:
        rc, res, err = self.query(replica, sql, params, **kw)
        if rc != 0:
            raise HostError(f"host query failed rc={rc}: {sql}\n{err[-3000:]}")
        return res

    @contextlib.contextmanager
    def serve(self, replica: str, *args: str, env=None, ready_timeout=60.0):
        """`ltxvfs-host serve` on a free loopback port; yields a Server. Stopped by process
        group at exit."""
        port = H.free_ports(1)[0]
        log = Path(tempfile.mkstemp(prefix="ltxvfs-serve-", suffix=".log")[1])
        argv = self.argv("serve", replica, "--listen", f"127.0.0.1:{port}", *args)
        with open(log, "wb") as lf:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                    env=H.base_env(extra=env), start_new_session=True)
        srv = Server(f"http://127.0.0.1:{port}", proc, log)
        try:
            deadline = time.monotonic() + ready_timeout
            while "serving" not in log.read_text(errors="replace"):
                if proc.poll() is not None:
                    raise HostError(f"serve exited {proc.returncode}:\n{srv.log_text()}")
                if time.monotonic() > deadline:
                    raise HostError(f"serve not ready after {ready_timeout}s:\n{srv.log_text()}")
                time.sleep(0.05)
            yield srv
        finally:
            H.kill_group(proc, grace=5)
            with contextlib.suppress(OSError):
                log.unlink()


class Server:
    def __init__(self, base: str, proc, log: Path):
        self.base, self.proc, self.log = base, proc, log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def request(self, method: str, path: str, body=None, timeout=60.0):
        """(status, JSON body, headers)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null"), dict(r.headers)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw), dict(e.headers)
            except ValueError:
                return e.code, {"raw": raw.decode(errors="replace")}, dict(e.headers)

    def query(self, sql: str, params=(), **extra):
        body = {"sql": sql, "params": [encode_value(p) for p in params], **extra}
        return self.request("POST", "/query", body)

    def query_ok(self, sql: str, params=(), **extra) -> dict:
        status, res, _ = self.query(sql, params, **extra)
        assert status == 200, f"{status}: {res}\nserver log:\n{self.log_text()}"
        return res

    def status(self) -> dict:
        st, res, _ = self.request("GET", "/status")
        assert st == 200, f"{st}: {res}"
        return res

    def stats(self) -> dict:
        st, res, _ = self.request("GET", "/host/stats")
        assert st == 200, f"{st}: {res}"
        return res


# --------------------------------------------------------------------------------- values
def encode_value(v):
    """A Python value as the JSON API's parameter/row form."""
    if isinstance(v, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(v)).decode()}
    return v


def decode_value(v):
    if isinstance(v, dict) and set(v) == {"base64"}:
        return base64.b64decode(v["base64"])
    if isinstance(v, dict) and set(v) == {"real"}:
        return float(v["real"])
    return v


def decode_rows(res: dict) -> list[tuple]:
    return [tuple(decode_value(v) for v in row) for row in res["rows"]]


# --------------------------------------------------------------------------------- the native side
# Debian's python3 + its sqlite3 module with the native extension loaded. argv: ext, uri, JSON of
# [{"sql", "params", "time"}]. Prints one JSON list: per query {"columns", "rows"} with typed
# values (bytes as {"base64"}), or {"error"}; then the txid.
NATIVE_SCRIPT = r"""
import base64, json, sqlite3, sys
ext, uri, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
con = sqlite3.connect(uri, uri=True)
def enc(v):
    if isinstance(v, bytes):
        return {"base64": base64.b64encode(v).decode()}
    return v
def dec(v):
    if isinstance(v, dict) and "base64" in v:
        return base64.b64decode(v["base64"])
    return v
out = []
for q in queries:
    try:
        # litestream_set_time(): Python's sqlite3 cannot run `PRAGMA litestream_time = ...`
        # (the extension's PRAGMA answers a NULL column name, which CPython reports as
        # MemoryError).
        if q.get("time"):
            con.execute("SELECT litestream_set_time(?)", (q["time"],)).fetchall()
        cur = con.execute(q["sql"], [dec(p) for p in q.get("params", [])])
        cols = [d[0] for d in cur.description] if cur.description else []
        rows = [[enc(v) for v in r] for r in cur.fetchall()]
        out.append({"columns": cols, "rows": rows,
                    "txid": con.execute("PRAGMA litestream_txid").fetchone()[0]})
        if q.get("time"):
            con.execute("SELECT litestream_set_time('latest')").fetchall()
    except sqlite3.Error as e:
        out.append({"error": str(e)})
print(json.dumps(out))
"""


def native_queries(ext, replica_url: str, queries: list[dict], env=None) -> list[dict]:
    uri = H.vfs_uri(replica_url)
    cwd = tempfile.mkdtemp(prefix="ltxvfs-native-")
    try:
        rc, out, err, _ = H.run([H.SYSTEM_PYTHON, "-c", NATIVE_SCRIPT, str(ext), uri,
                                 json.dumps([dict(q, params=[encode_value(p) for p in q.get("params", [])])
                                             for q in queries])],
                                env=H.base_env(extra=dict(env or {}, TMPDIR=cwd)), cwd=cwd)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    assert rc == 0, f"native run failed: {err.decode(errors='replace')[-3000:]}"
    return json.loads(out.decode().strip().splitlines()[-1])


# --------------------------------------------------------------------------------- servers
class RangeHandler(SimpleHTTPRequestHandler):
    """python's static file server (directory listings included) plus `Range: bytes=a-b` /
    `bytes=a-` support, which Python 3.11's SimpleHTTPRequestHandler lacks."""

    def log_message(self, *a):
        pass

    def send_head(self):
        self.server.requests.append((self.command, self.path, self.headers.get("Range")))
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not rng or os.path.isdir(path):
            return super().send_head()
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(path))))
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        n = getattr(self, "_remaining", None)
        if n is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(n))


@contextlib.contextmanager
def static_server(root: Path):
    """A loopback static file server for `root` (listings + ranges); yields (base URL, server)
    where ``server.requests`` lists (method, path, range) of every request."""
    def handler(*a, **kw):
        return RangeHandler(*a, directory=str(root), **kw)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.requests = []
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(timeout=5)
