"""Issue 11: resources stay flat. A live replica (real `litestream replicate`, file://) takes
~5 transactions a second while one long-lived reader follows it and queries it; the reader's
open file descriptors, threads and RSS must not grow after warm-up, with and without
`cache_dir`.

CI runs a short soak (LTXVFS_SOAK_SECONDS, default 30 s per case); scripts/soak.sh runs the
1-hour version and prints the figures recorded in RELIABILITY.md."""
from __future__ import annotations

import os
import sqlite3
import time

import pytest

import harness as H
from test_faults import Session

SOAK_S = float(os.environ.get("LTXVFS_SOAK_SECONDS", "30"))
WARMUP_S = min(10.0, SOAK_S / 3)
# Long soaks also print a sample every SAMPLE_S, so RELIABILITY.md can show the curve.
SAMPLE_S = max(60.0, SOAK_S / 12)


def _usage(pid: int) -> dict:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines() if ":" in l)
    return {"fds": fds, "threads": int(status["Threads"].strip()),
            "rss_kb": int(status["VmRSS"].split()[0])}


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache-dir", "cache-dir"])
def test_live_replica_resources_stay_flat(ext_path, tmp_path, cached):
    db = H.make_wal_db(tmp_path / "live.db", schema="CREATE TABLE log(n INTEGER PRIMARY KEY, pad TEXT);")
    rep = tmp_path / "replica"
    url = H.file_url(rep)
    with H.replicate(db, url) as r:
        w = sqlite3.connect(db, isolation_level=None)
        w.execute("INSERT INTO log(pad) VALUES (randomblob(64))")
        r.wait_synced()
        params = {"poll_interval": "100ms"}
        if cached:
            params["cache_dir"] = str(tmp_path / "cache")
        s = Session(ext_path, H.vfs_uri(url, **params), {})
        samples = []
        n = 1
        try:
            start = time.monotonic()
            next_write = start
            base = None
            next_sample = start + SAMPLE_S
            while time.monotonic() - start < SOAK_S:
                now = time.monotonic()
                if now >= next_write:
                    n += 1
                    w.execute("INSERT INTO log(pad) VALUES (randomblob(64))")
                    next_write += 0.2
                a = s.ask_raw("SELECT count(*), max(n) FROM log")
                assert "rows" in a, a
                count, top = a["rows"][0]
                assert count == top, f"inconsistent snapshot {a}"
                if base is None and now - start >= WARMUP_S:
                    base = _usage(s.p.pid)
                if SOAK_S > SAMPLE_S and now >= next_sample:
                    print(f"\nsoak sample t={now - start:.0f}s cache_dir={cached} txns={n} {_usage(s.p.pid)}", flush=True)
                    next_sample += SAMPLE_S
                time.sleep(0.05)
            end = _usage(s.p.pid)
            # It followed the primary (to within a few seconds).
            assert top >= n - 50, f"reader at {top}, primary at {n}"
            samples = [base, end]
        finally:
            s.close()
            w.close()
    base, end = samples
    print(f"\nsoak {SOAK_S:.0f}s cache_dir={cached}: {n} txns; after warm-up {base}, end {end}")
    assert end["fds"] <= base["fds"] + 4, f"fds grew: {base} -> {end}"
    assert end["threads"] <= base["threads"] + 2, f"threads grew: {base} -> {end}"
    assert end["rss_kb"] <= base["rss_kb"] + 20 * 1024, f"RSS grew: {base} -> {end}"
