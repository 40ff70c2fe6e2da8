"""Issue 13: the client recipes of the README, each driving the real client against a replica the
real Litestream wrote (file://), and the packages (wheel in a fresh venv, npm package in an
empty project, better-sqlite3@12).

Clients come from ``bash scripts/setup.sh``: a venv of Debian's python (its sqlite3 can load
extensions) with datasette, sqlite-utils and pandas, and a Node project with better-sqlite3@12,
both under ``$LTXVFS_CLIENTS_DIR`` (default ``~/.cache/ltxvfs-clients``)."""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

import harness as H

pytestmark = pytest.mark.go_differs("ltxvfs packages, per-name configuration and routing")

CLIENTS = Path(os.environ.get("LTXVFS_CLIENTS_DIR") or Path.home() / ".cache" / "ltxvfs-clients")
VPY = CLIENTS / "venv" / "bin" / "python"
NODE_MODULES = CLIENTS / "node" / "node_modules"
ROWS = 200


def need(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(f"{what} missing at {path}: run bash scripts/setup.sh")


class Live:
    def __init__(self, db: Path, url: str, rep):
        self.db, self.url, self.rep = db, url, rep

    def count(self) -> int:
        return int(H.plain_query(self.db, "SELECT count(*) FROM t;").strip())


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A primary in WAL mode replicated by the real `litestream replicate` to a file:// replica."""
    work = tmp_path_factory.mktemp("clients")
    db = H.make_wal_db(work / "primary.db", schema="CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")
    url = H.file_url(work / "replica")
    with H.replicate(db, url) as rep:
        import sqlite3
        con = sqlite3.connect(db, isolation_level=None)
        con.executemany("INSERT INTO t(v) VALUES (?)", [(f"row {i}",) for i in range(ROWS)])
        con.close()
        rep.wait_synced()
        yield Live(db, url, rep)


def routed_env(live: Live, **extra) -> dict:
    """"Make default" + per-name configuration: only replica.db is the replica."""
    env = {"LITESTREAM_VFS_DEFAULT": "true",
           "LITESTREAM_VFS_CONFIG": f"replica.db?replica_url={live.url}&poll_interval=200ms"}
    env.update(extra)
    return env


def run_ok(argv, env=None, cwd=None, timeout=90, input=None) -> str:
    rc, out, err, _ = H.run(argv, env=H.base_env(extra=env), cwd=cwd, timeout=timeout, input=input)
    assert rc == 0, f"rc={rc}\nstdout: {out.decode()[-2000:]}\nstderr: {err.decode()[-3000:]}"
    return out.decode()


# --------------------------------------------------------------------------------- sqlite3 CLI
def test_sqlite3_cli_dump_backup_vacuum_into_and_a_local_file(ext_path, live, tmp_path):
    r = H.sqlite_cli(ext_path, None, [
        ".open replica.db", ".output replica.sql", ".dump", ".output stdout",
        ".backup backup.db", "VACUUM INTO 'vacuumed.db';",
        ".open local.db", "CREATE TABLE a(x); INSERT INTO a VALUES (42); SELECT x FROM a;",
    ], routed_env(live), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["42"]
    replica_dump = (tmp_path / "replica.sql").read_text()
    assert replica_dump == H.plain_dump(live.db)
    for f in ("backup.db", "vacuumed.db"):
        assert H.plain_dump(tmp_path / f) == replica_dump, f
    assert H.plain_query(tmp_path / "local.db", "SELECT x FROM a;").strip() == "42"
    assert not (tmp_path / "replica.db").exists(), "the replica name must not become a local file"


def test_sqlite3_cli_configure_from_sql(ext_path, live, tmp_path):
    r = H.sqlite_cli(ext_path, None, [
        f"SELECT litestream_configure('replica.db', 'replica_url', '{live.url}');",
        "SELECT litestream_configure('replica.db', 'colour', 'red');",
    ], cwd=tmp_path)
    assert "unknown config key: colour" in r.stderr
    r = H.sqlite_cli(ext_path, None, [
        f"SELECT litestream_configure('replica.db', 'replica_url', '{live.url}');",
        ".open 'file:replica.db?vfs=litestream'", "SELECT count(*) FROM t;",
    ], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == str(ROWS)


# --------------------------------------------------------------------------------- Python
PY_SNIPPET = """
import sqlite3
import litestream_vfs

conn = sqlite3.connect(":memory:")
litestream_vfs.load(conn)

conn = sqlite3.connect("file:my.db?vfs=litestream", uri=True)
print(conn.execute("SELECT count(*) FROM t").fetchone()[0])
"""


def test_wheel_in_a_fresh_venv_runs_the_docs_snippet(live, tmp_path):
    out = run_ok(["bash", "scripts/build-python-wheel.sh"], cwd=H.REPO_ROOT, timeout=900)
    wheel = Path(H.REPO_ROOT, out.strip().splitlines()[-1])
    assert wheel.name.startswith("litestream_vfs_rs-") and "-py3-none-" in wheel.name, wheel
    venv = tmp_path / "venv"
    run_ok([H.SYSTEM_PYTHON, "-m", "venv", str(venv)])
    run_ok([str(venv / "bin" / "pip"), "install", "--no-index", "--quiet", str(wheel)])
    got = run_ok([str(venv / "bin" / "python"), "-c", PY_SNIPPET],
                 env={"LITESTREAM_REPLICA_URL": live.url}, cwd=tmp_path)
    assert got.strip() == str(ROWS)


def test_pip_install_of_the_checkout_is_one_command(live, tmp_path):
    """`pip install ./python`: the in-tree build backend runs cargo and installs the wheel."""
    venv = tmp_path / "venv"
    run_ok([H.SYSTEM_PYTHON, "-m", "venv", str(venv)])
    run_ok([str(venv / "bin" / "pip"), "install", "--no-index", "--quiet", str(H.REPO_ROOT / "python")],
           timeout=900)
    got = run_ok([str(venv / "bin" / "python"), "-c", PY_SNIPPET],
                 env={"LITESTREAM_REPLICA_URL": live.url}, cwd=tmp_path)
    assert got.strip() == str(ROWS)


def test_python_sqlite3_routed_default_and_local_file(ext_path, live, tmp_path):
    script = (
        "import sqlite3, sys\n"
        "l = sqlite3.connect(':memory:'); l.enable_load_extension(True); l.load_extension(sys.argv[1])\n"
        "r = sqlite3.connect('replica.db')\n"
        "print(r.execute('SELECT count(*) FROM t').fetchone()[0])\n"
        "p = sqlite3.connect('local.db'); p.execute('CREATE TABLE a(x)'); p.execute('INSERT INTO a VALUES (7)');"
        " p.commit(); print(p.execute('SELECT x FROM a').fetchone()[0])\n")
    got = run_ok([H.SYSTEM_PYTHON, "-c", script, str(ext_path)], env=routed_env(live), cwd=tmp_path)
    assert got.split() == [str(ROWS), "7"]
    assert H.plain_query(tmp_path / "local.db", "SELECT x FROM a;").strip() == "7"


def test_apsw(ext_path, live, tmp_path):
    script = (
        "import apsw, sys\n"
        "l = apsw.Connection(':memory:'); l.enable_load_extension(True); l.load_extension(sys.argv[1])\n"
        "c = apsw.Connection('replica.db', vfs='litestream', flags=apsw.SQLITE_OPEN_READONLY)\n"
        "print(c.execute('SELECT count(*), litestream_txid() FROM t').fetchone()[0])\n")
    got = run_ok([os.environ.get("PYTHON", "python3"), "-c", script, str(ext_path)],
                 env={"LITESTREAM_VFS_CONFIG": f"replica.db?replica_url={live.url}"}, cwd=tmp_path)
    assert got.strip() == str(ROWS)


def test_sqlite_utils_query(ext_path, live, tmp_path):
    need(VPY, "the clients venv")
    script = (
        "import sqlite3, sys, sqlite_utils\n"
        "l = sqlite3.connect(':memory:'); l.enable_load_extension(True); l.load_extension(sys.argv[1])\n"
        "db = sqlite_utils.Database('replica.db')\n"
        "print(list(db.query('SELECT count(*) AS n FROM t'))[0]['n'], db['t'].count)\n")
    got = run_ok([str(VPY), "-c", script, str(ext_path)], env=routed_env(live), cwd=tmp_path)
    assert got.split() == [str(ROWS), str(ROWS)]


def test_sqlite_utils_cli_with_the_wheel_plugin(live, tmp_path):
    """The sqlite-utils CLI opens the file before it could load an extension; the wheel's
    `sqlite_utils` entry point loads it when the CLI imports its plugins."""
    need(VPY, "the clients venv")
    run_ok(["bash", "scripts/build-python-wheel.sh"], cwd=H.REPO_ROOT, timeout=900)
    wheel = sorted(Path(H.REPO_ROOT, "dist").glob("litestream_vfs_rs-*.whl"))[-1]
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)  # the wheel's files, entry points included, on PYTHONPATH
    (tmp_path / "replica.db").touch()  # sqlite-utils checks that the file exists; never read
    got = run_ok([str(VPY), "-m", "sqlite_utils", "query", "replica.db", "SELECT count(*) AS n FROM t"],
                 env=routed_env(live, PYTHONPATH=str(site)), cwd=tmp_path)
    assert json.loads(got) == [{"n": ROWS}]


def test_pandas_read_sql(ext_path, live, tmp_path):
    need(VPY, "the clients venv")
    script = (
        "import sqlite3, sys, pandas\n"
        "l = sqlite3.connect(':memory:'); l.enable_load_extension(True); l.load_extension(sys.argv[1])\n"
        "con = sqlite3.connect(f'file:replica.db?vfs=litestream&replica_url={sys.argv[2]}', uri=True)\n"
        "df = pandas.read_sql('SELECT * FROM t ORDER BY id', con)\n"
        "print(len(df), df.iloc[0]['v'])\n")
    got = run_ok([str(VPY), "-c", script, str(ext_path), live.url], cwd=tmp_path)
    assert got.split() == [str(ROWS), "row", "0"]


# --------------------------------------------------------------------------------- Node
NODE_SCRIPT = """
const Database = require('better-sqlite3');
const vfs = require('litestream-vfs-rs');
vfs.load(new Database(':memory:'));
const db = new Database('replica.db', { readonly: true });
const r = db.prepare('SELECT count(*) AS n, litestream_txid() AS txid FROM t').get();
const local = new Database('local.db');
local.exec('CREATE TABLE a(x)'); local.prepare('INSERT INTO a VALUES (?)').run(5);
console.log(JSON.stringify({ n: r.n, txid: r.txid, local: local.prepare('SELECT x FROM a').get().x,
                             path: vfs.getLoadablePath() }));
"""


def test_npm_package_in_an_empty_project_with_better_sqlite3(live, tmp_path):
    need(NODE_MODULES / "better-sqlite3", "better-sqlite3@12")
    out = run_ok(["bash", "scripts/build-npm-package.sh"], cwd=H.REPO_ROOT, timeout=900)
    tgz = Path(H.REPO_ROOT, out.strip().splitlines()[-1])
    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true}')
    run_ok(["npm", "install", "--offline", "--no-audit", "--no-fund", "--silent", str(tgz)], cwd=project)
    (project / "main.js").write_text(NODE_SCRIPT)
    got = json.loads(run_ok(["node", "main.js"], cwd=project,
                            env=routed_env(live, NODE_PATH=str(NODE_MODULES))))
    assert got["n"] == ROWS and got["local"] == 5 and len(got["txid"]) == 16
    assert got["path"].startswith(str(project / "node_modules" / "litestream-vfs-rs"))


def test_npm_install_of_the_checkout_is_one_command(live, tmp_path):
    """`npm install <checkout>/npm`: its install script builds the extension with cargo."""
    need(NODE_MODULES / "better-sqlite3", "better-sqlite3@12")
    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true}')
    run_ok(["npm", "install", "--offline", "--no-audit", "--no-fund", "--silent", str(H.REPO_ROOT / "npm")],
           cwd=project, timeout=900)
    (project / "main.js").write_text(NODE_SCRIPT)
    got = json.loads(run_ok(["node", "main.js"], cwd=project,
                            env=routed_env(live, NODE_PATH=str(NODE_MODULES))))
    assert got["n"] == ROWS and got["local"] == 5 and len(got["txid"]) == 16


# --------------------------------------------------------------------------------- Datasette
def test_datasette_serves_a_live_replica_and_follows_a_new_row(live, tmp_path):
    need(VPY, "the clients venv")
    run_ok(["bash", "scripts/build-python-wheel.sh"], cwd=H.REPO_ROOT, timeout=900)
    wheel = sorted(Path(H.REPO_ROOT, "dist").glob("litestream_vfs_rs-*.whl"))[-1]
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)  # the wheel's files, entry point included, on PYTHONPATH
    (tmp_path / "replica.db").touch()  # `datasette serve` wants the file to exist; never read
    port = H.free_ports(1)[0]
    env = H.base_env(extra=routed_env(live, PYTHONPATH=str(site)))
    import subprocess
    proc = subprocess.Popen([str(VPY), "-m", "datasette", "serve", "replica.db", "-h", "127.0.0.1",
                             "-p", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def count() -> int | None:
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/replica.json?sql=select+count(*)+as+n+from+t&_shape=array",
                    timeout=5) as resp:
                return json.load(resp)[0]["n"]
        except Exception:  # noqa: BLE001 - not up yet
            return None

    def wait_for(want: int, timeout: float) -> int | None:
        deadline, got = time.monotonic() + timeout, None
        while time.monotonic() < deadline and proc.poll() is None:
            got = count()
            if got == want:
                return got
            time.sleep(0.3)
        return got

    try:
        assert wait_for(ROWS, 40) == ROWS, proc.stdout.read1(8000).decode() if proc.poll() is not None else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.status == 200
        import sqlite3
        con = sqlite3.connect(live.db, isolation_level=None)
        con.execute("INSERT INTO t(v) VALUES ('new row')")
        con.close()
        live.rep.wait_synced()
        assert wait_for(ROWS + 1, 20) == ROWS + 1
        assert (tmp_path / "replica.db").stat().st_size == 0
    finally:
        H.kill_group(proc)
