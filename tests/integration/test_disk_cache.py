"""Issue 3: the optional on-disk cache (URI `cache_dir`, env `LITESTREAM_CACHE_DIR`) survives
restarts and is keyed by replica, file and offset.

The proof that reads come from disk: after a first process filled the cache, every LTX file
of the replica is overwritten with garbage of the same size (same name, same mtime, so the
listing is unchanged). A second process with the cache still returns the right data; without
the cache it reports corruption. A file deleted from the replica invalidates its entries."""
from __future__ import annotations

import os

import harness as H


def _scramble(replica):
    for f in replica.rglob("*.ltx"):
        st = f.stat()
        f.write_bytes(os.urandom(st.st_size))
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_cache_survives_restart_and_serves_reads(ext_path, vector, tmp_path):
    v = vector("ps4096")
    cache = tmp_path / "cache"
    want = v.latest["dump_sha256"]
    assert H.dump_sha256(ext_path, v.uri(cache_dir=str(cache))) == want
    assert any(cache.rglob("*.data")), "the first run stored extents"
    _scramble(v.replica)
    assert H.dump_sha256(ext_path, v.uri(cache_dir=str(cache))) == want, "served from disk"
    r = H.sqlite_cli(ext_path, v.uri(), [".dump"])
    assert "invalid LTX file" in r.stderr and "database disk image is malformed" in r.stderr, r.stderr[-2000:]


def test_cache_dir_from_environment(ext_path, vector, tmp_path):
    v = vector("ps512")
    cache = tmp_path / "envcache"
    env = {"LITESTREAM_CACHE_DIR": str(cache)}
    assert H.dump_sha256(ext_path, v.uri(), env=env) == v.latest["dump_sha256"]
    assert any(cache.rglob("*.data"))


def test_deleted_file_invalidates_its_entries(ext_path, vector, tmp_path):
    v = vector("ps512")
    cache = tmp_path / "cache"
    assert H.dump_sha256(ext_path, v.uri(cache_dir=str(cache))) == v.latest["dump_sha256"]
    snapshot = "0000000000000001-0000000000000008.ltx"
    assert any(p.name.endswith(snapshot + ".data") for p in cache.rglob("*.data"))
    v.ltx(9, snapshot).unlink()
    # The plan now runs through the other files; the snapshot's cached bytes are dropped.
    assert H.dump_sha256(ext_path, v.uri(cache_dir=str(cache))) == v.latest["dump_sha256"]
    assert not any(p.name.endswith(snapshot + ".data") for p in cache.rglob("*.data"))
