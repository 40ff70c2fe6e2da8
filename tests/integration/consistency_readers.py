"""Readers for the consistency-under-change test (issue 4).

Run: python3 consistency_readers.py EXT URI SECONDS THREADS. Each thread owns a connection and
loops over read transactions; in each it checks the invariants the writer maintains
(checksum = f(counter), log rows = counter) and that litestream_txid() never goes backwards on
its connection. Prints one JSON summary; exits 1 on any violation or error.
"""
import json
import sys
import threading
import time

import apsw

ext, uri, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
loader = apsw.Connection(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)

results = []
lock = threading.Lock()


def reader(idx: int) -> None:
    con = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    stats = {"thread": idx, "txns": 0, "violations": [], "errors": [], "first_n": None, "last_n": None,
             "txid_steps": 0}
    last_txid = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            con.execute("BEGIN")
            n = con.execute("SELECT n FROM counter WHERE id = 1").fetchall()[0][0]
            v = con.execute("SELECT v FROM checksum WHERE id = 1").fetchall()[0][0]
            rows = con.execute("SELECT count(*), coalesce(max(n), 0) FROM log").fetchall()[0]
            txid = con.execute("SELECT litestream_txid()").fetchall()[0][0]
            con.execute("COMMIT")
        except apsw.Error as e:
            stats["errors"].append(str(e))
            try:
                con.execute("ROLLBACK")
            except apsw.Error:
                pass
            if len(stats["errors"]) > 5:
                break
            continue
        stats["txns"] += 1
        if v != n * 31 + 7:
            stats["violations"].append({"txid": txid, "what": f"checksum {v} != f({n})"})
        if rows[0] != n or rows[1] != n:
            stats["violations"].append({"txid": txid, "what": f"log has {rows[0]} rows (max {rows[1]}) at counter {n}"})
        if txid < last_txid:
            stats["violations"].append({"txid": txid, "what": f"txid went back from {last_txid}"})
        if txid != last_txid:
            stats["txid_steps"] += 1
        last_txid = txid
        stats["first_n"] = n if stats["first_n"] is None else stats["first_n"]
        stats["last_n"] = n
    with lock:
        results.append(stats)


ts = [threading.Thread(target=reader, args=(i,)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
bad = any(r["violations"] or r["errors"] for r in results)
print(json.dumps(results))
sys.exit(1 if bad else 0)
