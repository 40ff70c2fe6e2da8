"""sqlite-utils plugin (registered by the wheel's `sqlite_utils` entry point): the sqlite-utils
CLI loads its plugins when it is imported, before it opens any database, so loading the
extension here lets `sqlite-utils query replica.db ...` read a replica name configured with
LITESTREAM_VFS_DEFAULT=true and LITESTREAM_VFS_CONFIG, while every other file stays an ordinary
SQLite file. It has no hooks: the auto-extension gives each connection the SQL functions."""
import sqlite3

from . import load

_loader = sqlite3.connect(":memory:", check_same_thread=False)
load(_loader)  # the VFS stays registered for the process; keep the loader open as well
