//! A Rust program that links the crate and registers `sqlite3_litestreamvfs_init` with
//! `sqlite3_auto_extension` (rusqlite's bundled SQLite): every connection must keep opening.
use rusqlite::{Connection, OpenFlags, ffi};
use std::ffi::{c_char, c_int};

fn replica_url() -> String {
    let dir = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/ps512/replica")).unwrap();
    format!("file://{}", dir.display())
}

type Init = unsafe extern "C" fn(*mut ffi::sqlite3, *mut *mut c_char, *const ffi::sqlite3_api_routines) -> c_int;

#[test]
fn init_works_as_an_auto_extension() {
    // SAFETY: the entry point has SQLite's extension-init signature (its routine-table pointer
    // type is sqlite-plugin's copy of the same C struct).
    let init: Init = unsafe { std::mem::transmute(litestream_vfs::sqlite3_litestreamvfs_init as *const ()) };
    // SAFETY: registering a valid auto-extension function.
    assert_eq!(unsafe { ffi::sqlite3_auto_extension(Some(init)) }, ffi::SQLITE_OK);

    let dir = tempfile::tempdir().unwrap();
    let plain = Connection::open(dir.path().join("plain.db")).unwrap();
    plain.execute_batch("CREATE TABLE a(x); INSERT INTO a VALUES (1);").unwrap();
    let v: String = plain.query_row("SELECT litestream_version()", [], |r| r.get(0)).unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));

    let uri = format!("file:x.db?vfs=litestream&replica_url={}", replica_url());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    let db = Connection::open_with_flags(&uri, flags).unwrap();
    let (n, txid): (i64, String) =
        db.query_row("SELECT count(*), litestream_txid() FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((n, txid.as_str()), (305, "0000000000000008"));
    // A second connection after the init ran again.
    let again = Connection::open_with_flags(&uri, flags).unwrap();
    let n: i64 = again.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 305);
}
