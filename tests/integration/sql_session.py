"""A long-lived SQLite connection in a child process, driven line by line.

Run: python3 sql_session.py EXT URI. Each stdin line is a JSON object {"sql": "..."}; each
answer is one stdout line {"rows": [[...], ...]} or {"error": "...", "code": N}. The extension
is loaded into apsw's SQLite (the pyenv python's stdlib sqlite3 cannot load extensions), and the
child keeps a crash away from pytest.
"""
import json
import sys

import apsw

ext, uri = sys.argv[1], sys.argv[2]
loader = apsw.Connection(":memory:")
loader.enable_load_extension(True)
loader.load_extension(ext)
con = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    try:
        rows = [list(r) for r in con.execute(req["sql"])]
        print(json.dumps({"rows": rows}, default=repr), flush=True)
    except apsw.Error as e:
        print(json.dumps({"error": str(e), "code": getattr(e, "result", -1)}), flush=True)
