"""One benchmark scenario in a fresh process. Run by bench/run.py under Debian's /usr/bin/python3
(its sqlite3 module can load extensions; the pyenv python's cannot).

    /usr/bin/python3 bench/child.py '<json spec>'

spec: {"scenario": str, "ext": path or null (null: plain SQLite on a local file),
       "uri": database URI, "proxy": "http://127.0.0.1:port" or null, "params": {...}}

Prints one JSON object on the last line of stdout:
  {"ok": bool, "error": str?, "phases": {name: {"wall_s", "seq0", "seq1"}}, "result": any,
   "per_op_us": float?, "ops": int?, "rss_hwm_kb": int, "rss_after_load_kb": int, ...}
seq0/seq1 are the proxy's request sequence numbers at the start/end of the phase (the parent
turns them into request and byte counts from the proxy's log).
"""
import json
import socket
import sqlite3
import sys
import time
import traceback

ENTRY = "sqlite3_litestreamvfs_init"


def proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def http_get(base, path):
    """A minimal HTTP/1.0 GET (urllib would add ~8 MB of imports to the RSS being measured)."""
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"proxy side channel: {head[:100]!r}")
    return body


class Run:
    def __init__(self, spec):
        self.spec = spec
        self.proxy = spec.get("proxy")
        self.out = {"ok": False, "phases": {}}
        self.params = spec.get("params") or {}

    def seq(self):
        if not self.proxy:
            return 0
        return json.loads(http_get(self.proxy, "/__bench/stats"))["seq"]

    def phase(self, name, fn):
        s0 = self.seq()
        t0 = time.perf_counter()
        try:
            res = fn()
        finally:
            t1 = time.perf_counter()
            self.out["phases"][name] = {"wall_s": t1 - t0, "seq0": s0, "seq1": self.seq()}
        return res

    def load(self):
        ext = self.spec.get("ext")
        if not ext:
            return
        loader = sqlite3.connect(":memory:")
        loader.enable_load_extension(True)
        t0 = time.perf_counter()
        loader.load_extension(ext, entrypoint=ENTRY) if sys.version_info >= (3, 12) \
            else loader.load_extension(ext)
        self.out["load_ms"] = (time.perf_counter() - t0) * 1000
        loader.enable_load_extension(False)
        self.loader = loader  # keep it open: the VFS stays registered either way

    def open(self):
        def go():
            con = sqlite3.connect(self.spec["uri"], uri=True, isolation_level=None,
                                  check_same_thread=False)
            con.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            return con
        return self.phase("open", go)

    def main(self):
        sc = self.spec["scenario"]
        p = self.params
        self.out["rss_before_load_kb"] = proc_status_kb("VmRSS")
        self.load()
        self.out["rss_after_load_kb"] = proc_status_kb("VmRSS")
        if sc == "load":
            self.out["result"] = "loaded"
            return
        con = self.open()
        if sc == "open":
            self.out["result"] = con.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
            return
        if sc in ("point", "index"):
            sql = ("SELECT id, name, length(payload) FROM t WHERE id = ?" if sc == "point"
                   else "SELECT id, name, length(payload) FROM t WHERE name = ?")
            keys = p["keys"]
            self.out["result"] = self.phase(
                "query", lambda: [list(con.execute(sql, (k,)).fetchone() or []) for k in keys])
            return
        if sc in ("scan", "scan_rss"):
            sql = "SELECT count(*), sum(length(payload)), max(name) FROM t"
            if p.get("max_id"):  # a capped scan (the Go VFS makes one GET per page)
                sql += f" WHERE id <= {int(p['max_id'])}"
            self.out["result"] = self.phase("query", lambda: list(con.execute(sql).fetchone()))
            return
        if sc == "random":
            # Distinct random rowid lookups, each its own read transaction: a warm-up pass
            # (the interior pages get cached), then the measured ones, all on cold leaves.
            sql = "SELECT id, name, length(payload) FROM t WHERE id = ?"

            def lookups(keys):
                return [list(con.execute(sql, (k,)).fetchone() or []) for k in keys]
            self.phase("warmup", lambda: lookups(p["warm"]))
            self.out["result"] = self.phase("query", lambda: lookups(p["keys"]))
            return
        if sc in ("warm_point", "warm_range"):
            if sc == "warm_point":
                sql = "SELECT name, length(payload) FROM t WHERE id = ?"
                args = [(k,) for k in p["keys"]]
            else:
                sql = "SELECT count(*), sum(length(payload)) FROM t WHERE id BETWEEN ? AND ?"
                args = [tuple(r) for r in p["ranges"]]

            def one(a):
                return con.execute(sql, a).fetchone()

            def warm():
                return [list(one(a)) for a in args]
            res = self.phase("warmup", warm)
            for _ in range(p.get("extra_warm_passes", 1)):
                warm()
            n = p["ops"]
            m = len(args)

            def measure():
                for i in range(n):
                    one(args[i % m])
            self.phase("query", measure)
            self.out["ops"] = n
            self.out["per_op_us"] = self.out["phases"]["query"]["wall_s"] / n * 1e6
            self.out["result"] = res
            return
        raise ValueError(f"unknown scenario {sc}")


def main():
    spec = json.loads(sys.argv[1])
    r = Run(spec)
    try:
        r.main()
        r.out["ok"] = True
    except Exception as e:  # noqa: BLE001 - reported to the parent
        r.out["error"] = f"{type(e).__name__}: {e}"
        r.out["traceback"] = traceback.format_exc()
    r.out["rss_hwm_kb"] = proc_status_kb("VmHWM")
    sys.stdout.flush()
    print("\n" + json.dumps(r.out), flush=True)


if __name__ == "__main__":
    main()
