"""Datasette plugin (registered by the wheel's `datasette` entry point): loads the extension
when Datasette imports its plugins, before it opens any database, so a replica name configured
with LITESTREAM_VFS_DEFAULT=true and LITESTREAM_VFS_CONFIG is read through the VFS while every
other file (Datasette's own internal database included) stays an ordinary SQLite file."""
import sqlite3

from . import load

_loader = sqlite3.connect(":memory:", check_same_thread=False)
load(_loader)  # the VFS stays registered for the process; keep the loader open as well

try:
    from datasette import hookimpl

    @hookimpl
    def prepare_connection(conn):
        """Nothing to do per connection: the auto-extension gives each its SQL functions."""
except ImportError:  # pragma: no cover - imported without Datasette
    pass
