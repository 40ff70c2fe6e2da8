//! The Rust API's "make default" with per-name configuration: the configured name is the
//! replica, a local file in the same process is an ordinary read-write SQLite file, and
//! `VACUUM INTO` a plain name writes a local copy.
#![cfg(feature = "embed")]
use rusqlite::Connection;

#[test]
fn default_with_names_serves_only_the_configured_names() {
    let dir = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/ps512/replica")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let replica_name = tmp.path().join("replica.db");
    let name = replica_name.to_str().unwrap();
    litestream_vfs::configure(name, "replica_url", &format!("file://{}", dir.display())).unwrap();
    assert_eq!(litestream_vfs::configure(name, "colour", "red").unwrap_err().message, "unknown config key: colour");
    litestream_vfs::register_default(litestream_vfs::Config::new()).unwrap();

    let replica = Connection::open(name).unwrap();
    let n: i64 = replica.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 305);
    let out = tmp.path().join("out.db");
    replica.execute("VACUUM INTO ?1", [out.to_str().unwrap()]).unwrap();

    let local = Connection::open(tmp.path().join("local.db")).unwrap();
    local.execute_batch("CREATE TABLE a(x); INSERT INTO a VALUES (42);").unwrap();
    let x: i64 = local.query_row("SELECT x FROM a", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 42);
    let copy = Connection::open(&out).unwrap();
    let n: i64 = copy.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 305);
}
