"""Issue 11: a password planted in every URL form never appears in debug-level logs, in errors
or in PRAGMA output (src/redact.rs is applied to log lines, error messages, Debug output and
PRAGMA results)."""
from __future__ import annotations

import json

import pytest

import harness as H
from component_support import component  # noqa: F401 (fixture)

PW = "Pl4ntedPW9x"


def _forms(dead_port: int, seaweedfs) -> list[tuple[str, str]]:
    ep = f"http://user:{PW}@127.0.0.1:{dead_port}"
    live = seaweedfs.endpoint.replace("http://", f"http://user:{PW}@")
    return [
        ("s3 endpoint userinfo, unreachable", f"s3://bkt/db?endpoint={ep}&forcePathStyle=true&region=us-east-1"),
        ("s3 endpoint userinfo, reachable", f"s3://{seaweedfs.bucket}/none?endpoint={live}&forcePathStyle=true"
                                            f"&region=us-east-1"),
        ("s3 secret query", f"s3://bkt/db?endpoint=http://127.0.0.1:{dead_port}&forcePathStyle=true"
                            f"&secret-access-key={PW}&region=us-east-1"),
        ("sftp", f"sftp://me:{PW}@127.0.0.1:{dead_port}/db"),
        ("webdav", f"webdav://me:{PW}@127.0.0.1:{dead_port}/db"),
        ("abs account key", f"abs://acct@container/db?account-key={PW}&endpoint=http://127.0.0.1:{dead_port}"),
        ("gs token", f"gs://bucket/db?token={PW}&endpoint=http://127.0.0.1:{dead_port}"),
    ]


@pytest.mark.parametrize("via", ["uri", "env"])
def test_planted_password_never_leaves(ext_path, seaweedfs, tmp_path, via):
    dead = H.free_ports(1)[0]
    log = tmp_path / "vfs.log"
    for name, url in _forms(dead, seaweedfs):
        env = {"LITESTREAM_LOG_LEVEL": "debug", "LITESTREAM_LOG_FILE": str(log), **seaweedfs.creds_env()}
        if via == "env":
            env["LITESTREAM_REPLICA_URL"] = url
            uri = H.vfs_uri(None, max_wait="2s", open_timeout="1s")
        else:
            uri = H.vfs_uri(url, max_wait="2s", open_timeout="1s")
        r = H.sqlite_cli(ext_path, uri, ["PRAGMA litestream_txid;", "PRAGMA litestream_verify;",
                                         "PRAGMA litestream_lag;", "SELECT count(*) FROM sqlite_master;"],
                         env, timeout=40)
        # The sqlite3 shell's own `unable to open database "<the URI it was given>"` quotes
        # the caller's input back: not ours to redact, so it is left out.
        shell = "\n".join(l for l in r.stderr.splitlines() if not l.startswith('Error: unable to open database "file:'))
        text = r.stdout + shell + (log.read_text() if log.exists() else "")
        assert r.returncode >= 0, f"{name}: crash {r.returncode}"
        assert text.strip(), f"{name}: nothing was said at all"
        assert PW not in text, f"{name} ({via}): the password leaked:\n" + \
            "\n".join(l for l in text.splitlines() if PW in l)[:3000]


def test_host_serve_never_shows_the_password(component, seaweedfs):  # noqa: F811
    """`ltxvfs-host serve` with a password in its replica URL: not in its log (the startup line
    names the replica), nor in an error answer."""
    url = (f"s3://bkt/none?endpoint=http://127.0.0.1:{seaweedfs.port}&access-key-id=K"
           f"&secret-access-key={PW}&region=us-east-1&forcePathStyle=true")
    with component.serve(url, "--request-timeout-ms", "3000") as srv:
        st, res = srv.query("SELECT 1")[:2]
        text = srv.log_text() + json.dumps(res)
    assert "serving s3://bkt/none" in text, text
    assert PW not in text, text
