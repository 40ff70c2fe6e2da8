"""ltxvfs, the Rust `litestream` SQLite VFS, packaged like Litestream's own `litestream_vfs`:
``loadable_path()`` and ``load(conn)`` work the same way (a drop-in for the Go build)."""

import os
import sys

__version__ = "@VERSION@"

_EXT_MAP = {
    "linux": "litestream-vfs.so",
    "darwin": "litestream-vfs.dylib",
}


def loadable_path():
    """Return the filesystem path to the loadable VFS extension."""
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    filename = _EXT_MAP.get(platform)
    if filename is None:
        raise OSError(f"Unsupported platform: {sys.platform}")
    path = os.path.join(os.path.dirname(__file__), filename)
    if not os.path.exists(path):
        raise FileNotFoundError(f"VFS extension not found at {path}")
    return path


def load(conn):
    """Load the extension into a sqlite3 (or apsw) connection. SQLite derives the entry point
    sqlite3_litestreamvfs_init from the file name, so no ``entrypoint=`` (Python 3.12+) is
    needed. Raises AttributeError where the interpreter was built without extension loading
    (common with pyenv builds): use a Python linked with a system SQLite, or apsw."""
    path = loadable_path()
    if not hasattr(conn, "enable_load_extension"):
        raise AttributeError(
            "this Python's sqlite3 cannot load extensions (built without "
            "--enable-loadable-sqlite-extensions, common with pyenv); use your OS's python3 or apsw")
    conn.enable_load_extension(True)
    try:
        conn.load_extension(os.path.splitext(path)[0])
    finally:
        conn.enable_load_extension(False)
