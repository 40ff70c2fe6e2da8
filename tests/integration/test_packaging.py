"""Issue 13: getting the extension (dist/ layout, release tarball, version) and errors the
application can act on (the cause of a failed open reaches it, not only the log)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile

import pytest

import harness as H

pytestmark = pytest.mark.go_differs("ltxvfs packaging and error surface")

LOADER = """
import sqlite3, sys
ext, uri = sys.argv[1], sys.argv[2]
loader = sqlite3.connect(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
try:
    sqlite3.connect(uri, uri=True).execute("SELECT 1").fetchone()
    print("OPENED")
except sqlite3.OperationalError as e:
    print("ERROR", e)
print("CAUSE", loader.execute("SELECT litestream_last_error()").fetchone()[0])
"""


@pytest.fixture(scope="module")
def dist_dir():
    """`bash scripts/dist.sh` (the documented command) in the repository."""
    rc, out, err, _ = H.run(["bash", "scripts/dist.sh"], cwd=H.REPO_ROOT, env=H.base_env(), timeout=900)
    assert rc == 0, err.decode()[-3000:]
    return H.REPO_ROOT / "dist"


def test_docs_load_command_runs_verbatim(dist_dir, vector):
    v = vector("ps512")
    r = H.sqlite_cli(None, None, [".load ./dist/litestream-vfs sqlite3_litestreamvfs_init",
                                  "SELECT litestream_version();",
                                  f".open '{v.uri()}'", "SELECT count(*) FROM t;",
                                  "PRAGMA litestream_version;"], cwd=H.REPO_ROOT)
    assert r.returncode == 0, r.stderr
    version = crate_version()
    assert r.stdout.split() == [version, "305", version]


def crate_version() -> str:
    for line in (H.REPO_ROOT / "ext" / "Cargo.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split('"')[1]
    raise AssertionError("no version in ext/Cargo.toml")


def test_release_tarball_and_checksum(dist_dir):
    tars = sorted(dist_dir.glob(f"litestream-vfs-{crate_version()}-*-*.tar.gz"))
    assert tars, list(dist_dir.iterdir())
    tar = tars[-1]
    want = (dist_dir / (tar.name + ".sha256")).read_text().split()
    assert want == [hashlib.sha256(tar.read_bytes()).hexdigest(), tar.name]
    with tarfile.open(tar) as t:
        names = t.getnames()
    stem = tar.name[: -len(".tar.gz")]
    assert f"{stem}/litestream-vfs.so" in names and f"{stem}/README.md" in names, names


def open_cause(ext, uri, env=None) -> tuple[str, str]:
    rc, out, err, elapsed = H.run([H.SYSTEM_PYTHON, "-c", LOADER, str(ext), uri],
                                  env=H.base_env(extra=env), timeout=40)
    assert rc == 0, err.decode()
    lines = out.decode().splitlines()
    return lines[0], lines[1], elapsed


def test_missing_directory_fails_fast_with_its_reason(ext_path, tmp_path):
    missing = tmp_path / "no-such-dir"
    first, cause, elapsed = open_cause(ext_path, H.vfs_uri(H.file_url(missing)))
    assert first.startswith("ERROR unable to open database file"), first
    assert cause == f"CAUSE litestream: cannot open x.db: replica directory does not exist: {missing} " \
                    f"(from {H.file_url(missing)})", cause
    assert elapsed < 10


def test_no_url_names_what_to_set(ext_path):
    first, cause, _ = open_cause(ext_path, H.vfs_uri(None))
    assert first.startswith("ERROR"), first
    assert "set LITESTREAM_REPLICA_URL, pass replica_url in the database URI, or configure this " \
           "database name (litestream_configure)" in cause, cause
    assert "SetVFSConfig" not in cause


def test_last_error_clears_after_a_good_open(ext_path, vector):
    v = vector("ps512")
    first, cause, _ = open_cause(ext_path, v.uri())
    assert (first, cause) == ("OPENED", "CAUSE None")


@pytest.mark.s3
def test_missing_bucket_and_wrong_credentials_reach_the_application(ext_path, seaweedfs, vector, s3_prefix):
    v = vector("ps512")
    seaweedfs.upload_replica(v.replica, s3_prefix)
    url = seaweedfs.url(s3_prefix).replace(f"s3://{seaweedfs.bucket}/", "s3://no-such-bucket-x/")
    _, cause, _ = open_cause(ext_path, H.vfs_uri(url), seaweedfs.creds_env())
    assert "NoSuchBucket" in cause or "does not exist" in cause, cause
    bad = {"AWS_ACCESS_KEY_ID": "WRONGKEY", "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
    _, cause, _ = open_cause(ext_path, H.vfs_uri(seaweedfs.url(s3_prefix)), bad)
    assert "InvalidAccessKeyId" in cause or "SignatureDoesNotMatch" in cause, cause
    assert "wrong-secret" not in cause


def test_sqlite_log_carries_the_cause(ext_path, tmp_path):
    """apsw installs SQLITE_CONFIG_LOG: the cause arrives there too."""
    script = (
        "import apsw, sys\n"
        "msgs = []\n"
        "apsw.config(apsw.SQLITE_CONFIG_LOG, lambda code, msg: msgs.append(msg))\n"
        "c = apsw.Connection(':memory:'); c.enable_load_extension(True); c.load_extension(sys.argv[1])\n"
        "try:\n"
        "    apsw.Connection(sys.argv[2], flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)\n"
        "except apsw.CantOpenError:\n"
        "    pass\n"
        "print([m for m in msgs if 'litestream' in m])\n")
    missing = tmp_path / "gone"
    rc, out, err, _ = H.run([os.environ.get("PYTHON", "python3"), "-c", script, str(ext_path),
                             H.vfs_uri(H.file_url(missing))], env=H.base_env(), timeout=40)
    assert rc == 0, err.decode()
    assert "replica directory does not exist" in out.decode(), out.decode()


def test_http_client_logs_stay_at_warn(ext_path, seaweedfs, vector, s3_prefix):
    v = vector("ps512")
    seaweedfs.upload_replica(v.replica, s3_prefix)
    env = dict(seaweedfs.creds_env(), LITESTREAM_LOG_LEVEL="debug")
    r = H.sqlite_cli(ext_path, H.vfs_uri(seaweedfs.url(s3_prefix)), ["SELECT count(*) FROM t;"], env)
    assert r.returncode == 0 and r.stdout.strip() == "305", r.stderr
    lines = [l for l in r.stderr.splitlines() if " DEBUG " in l]
    assert lines, r.stderr
    noisy = [l for l in lines if any(w in l for w in ("hyper", "reqwest", "rustls", "h2::", "connection"))]
    assert len(noisy) <= len(lines) // 4, "\n".join(noisy[:20])


def test_package_versions_follow_the_crate():
    """`npm install <checkout>/npm` uses npm/package.json as is: its version is the crate's."""
    import json
    npm = json.loads((H.REPO_ROOT / "npm" / "package.json").read_text())
    assert npm["version"] == crate_version()
