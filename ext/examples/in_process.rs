//! The Go docs' in-process example (`NewVFS(client)` + `RegisterVFS`), with rusqlite:
//! register the VFS from a replica client (storage object), open a database on it, query.
//!
//!     cargo run -p litestream-vfs --features embed --example in_process [REPLICA_DIR]
//!
//! Without an argument it reads the sample replica in tests/fixtures/ps512/replica.
use litestream_vfs::storage::file::FileStorage;
use litestream_vfs::{Config, register};
use rusqlite::{Connection, OpenFlags};
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("{}/../tests/fixtures/ps512/replica", env!("CARGO_MANIFEST_DIR")));
    let dir = std::fs::canonicalize(&dir)?.to_string_lossy().into_owned();

    // Go: client := file.NewReplicaClient(dir); vfs := litestream.NewVFS(client, logger)
    let client = Arc::new(FileStorage::new(dir.clone()));
    let config = Config::new().storage(format!("file://{dir}"), client).poll_interval(Duration::from_secs(1));
    // Go: sqlite3vfs.RegisterVFS("litestream", vfs)
    register("litestream", config)?;

    // Go: sql.Open("sqlite3", "file:my.db?vfs=litestream")
    let db = Connection::open_with_flags_and_vfs("my.db", OpenFlags::SQLITE_OPEN_READ_ONLY, "litestream")?;
    let rows: i64 = db.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
    let txid: String = db.query_row("SELECT litestream_txid()", [], |r| r.get(0))?;
    let version: String = db.query_row("SELECT litestream_version()", [], |r| r.get(0))?;
    println!("rows={rows} txid={txid} version={version}");
    Ok(())
}
