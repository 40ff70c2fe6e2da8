//! The component's SQLite: the bundled library (rusqlite), the `litestream` VFS registered on
//! it through sqlite-plugin, and read-only connections that run typed queries.

use super::host::ComponentHost;
use super::log;
use crate::vfs::{LitestreamVfs, RawVfsHead, install_uri_capture};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, ffi};
use sqlite_plugin::vfs::{RegisterOpts, register_dynamic};
use std::ffi::CString;
use std::sync::OnceLock;

/// SQLITE_ERROR: the code of errors that are not SQLite's own.
pub const SQLITE_ERROR: i32 = 1;

/// An error with SQLite's result code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: i32,
    pub message: String,
}

impl SqlError {
    pub fn other(message: impl Into<String>) -> Self {
        Self { code: SQLITE_ERROR, message: message.into() }
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<rusqlite::Error> for SqlError {
    /// SQLite's extended code and message; when SQLite only says "unable to open" or "disk I/O
    /// error", the reason the VFS logged is appended.
    fn from(e: rusqlite::Error) -> Self {
        let (code, mut message) = match &e {
            rusqlite::Error::SqliteFailure(f, msg) => (f.extended_code, msg.clone().unwrap_or_else(|| f.to_string())),
            other => (SQLITE_ERROR, other.to_string()),
        };
        // SQLite names the file it could not open: here that is our internal URI, which says
        // nothing the caller does not know.
        if let Some(i) = message.find(": file:replica.db?") {
            message.truncate(i);
        }
        let primary = code & 0xff;
        if primary == ffi::SQLITE_CANTOPEN || primary == ffi::SQLITE_IOERR || primary == ffi::SQLITE_CORRUPT {
            if let Some(detail) = log::take_last_error() {
                message = format!("{message}: {detail}");
            }
        }
        Self { code, message }
    }
}

pub type SqlResult<T> = std::result::Result<T, SqlError>;

/// A typed SQLite value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<SqlValue> for Value {
    fn from(v: SqlValue) -> Value {
        match v {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(i) => Value::Integer(i),
            SqlValue::Real(r) => Value::Real(r),
            SqlValue::Text(s) => Value::Text(s),
            SqlValue::Blob(b) => Value::Blob(b),
        }
    }
}

impl From<ValueRef<'_>> for SqlValue {
    fn from(v: ValueRef<'_>) -> SqlValue {
        match v {
            ValueRef::Null => SqlValue::Null,
            ValueRef::Integer(i) => SqlValue::Integer(i),
            ValueRef::Real(r) => SqlValue::Real(r),
            // WIT strings are UTF-8; SQLite text normally is, and is repaired where it is not.
            ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
        }
    }
}

pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

pub struct Status {
    pub replica: String,
    pub txid: String,
    pub lag_seconds: i64,
    pub time: String,
}

/// Options of an open (URI parameters of the core's VFS).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub cache_size: Option<u64>,
    pub poll_interval_ms: Option<u64>,
    pub open_timeout_ms: Option<u64>,
    pub time: Option<String>,
}

/// Register the `litestream` VFS on the bundled SQLite, once.
fn register() -> SqlResult<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| register_once().map_err(|e| format!("cannot register the litestream VFS: {e}")))
        .clone()
        .map_err(SqlError::other)
}

/// A function of the bundled SQLite as the `Option<fn>` field type of sqlite-plugin's routine
/// table.
macro_rules! routine {
    ($f:path) => {
        // SAFETY: sqlite-plugin's `sqlite3_api_routines` fields and libsqlite3-sys' functions are
        // both bindgen output for the same C prototypes in sqlite3.h; they differ only in the
        // nominal Rust types of their pointer arguments (each crate has its own `sqlite3_vfs`),
        // which have the same layout. A function pointer of one is a valid function pointer of
        // the other, and `*const ()` has the size of a function pointer on every target.
        Some(unsafe { std::mem::transmute::<*const (), _>($f as *const ()) })
    };
}

// The transmutes in `routine!` take their target type from the routine table's field.
#[allow(clippy::missing_transmute_annotations)]
fn register_once() -> Result<(), String> {
    log::init();
    // SAFETY: every field of the routine table is an `Option` of a function pointer, for which
    // all-zero bytes are `None`; sqlite-plugin reads only the fields set below (checked against
    // sqlite-plugin 0.11's `SqliteApi::new_dynamic`).
    let mut api: sqlite_plugin::sqlite3_api_routines = unsafe { std::mem::zeroed() };
    api.vfs_register = routine!(ffi::sqlite3_vfs_register);
    api.vfs_find = routine!(ffi::sqlite3_vfs_find);
    api.mprintf = routine!(ffi::sqlite3_mprintf);
    api.log = routine!(ffi::sqlite3_log);
    api.libversion_number = routine!(ffi::sqlite3_libversion_number);
    api.uri_key = routine!(ffi::sqlite3_uri_key);
    api.uri_parameter = routine!(ffi::sqlite3_uri_parameter);
    // The table must outlive the registration only for its duration (sqlite-plugin copies the
    // pointers), but leaking one small struct once keeps any later reader safe too.
    let api: &'static mut sqlite_plugin::sqlite3_api_routines = Box::leak(Box::new(api));
    let vfs = LitestreamVfs::new(ComponentHost::default());
    // SAFETY: `api` points to a valid routine table whose used fields are the bundled SQLite's.
    unsafe { register_dynamic(api, CString::from(c"litestream"), vfs, RegisterOpts { make_default: false }) }
        .map_err(|rc| format!("error {rc}"))?;
    // SAFETY: sqlite3_vfs_find with a NUL-terminated name returns the registered VFS or NULL.
    let raw = unsafe { ffi::sqlite3_vfs_find(c"litestream".as_ptr()) };
    if raw.is_null() {
        return Err("the VFS vanished after registration".into());
    }
    // SAFETY: `raw` is the sqlite3_vfs sqlite-plugin just registered for a LitestreamVfs and no
    // connection uses it yet; RawVfsHead mirrors the leading fields of sqlite3_vfs. The key and
    // parameter functions are the bundled SQLite's own; their argument types differ from
    // ltxvfs' aliases only nominally (`sqlite3_filename` is `*const c_char`).
    unsafe {
        install_uri_capture(
            raw.cast::<RawVfsHead>(),
            std::mem::transmute::<*const (), crate::vfs::UriKeyFn>(ffi::sqlite3_uri_key as *const ()),
            std::mem::transmute::<*const (), crate::vfs::UriParamFn>(ffi::sqlite3_uri_parameter as *const ()),
        )
    }
    .map_err(|e| e.message)
}

/// Escape a URI parameter value (SQLite decodes %HH).
const URI_VALUE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/').remove(b':');

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One read-only connection to a replica.
pub struct Database {
    conn: Connection,
    replica: String,
}

impl Database {
    pub fn open(url: &str, opts: &OpenOptions) -> SqlResult<Database> {
        register()?;
        log::clear();
        let parsed = crate::replica_url::ReplicaUrl::parse(url).map_err(|e| SqlError::other(e.message))?;
        let mut uri = format!("file:replica.db?vfs=litestream&replica_url={}", utf8_percent_encode(url, URI_VALUE));
        if let Some(n) = opts.cache_size {
            uri.push_str(&format!("&cache_size={n}"));
        }
        if let Some(ms) = opts.poll_interval_ms {
            uri.push_str(&format!("&poll_interval={ms}ms"));
        }
        if let Some(ms) = opts.open_timeout_ms {
            uri.push_str(&format!("&open_timeout={ms}ms"));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&uri, flags)?;
        super::functions::register(&conn)?;
        // No ATTACH, TEMP objects or load_extension: nothing carries over between requests.
        conn.authorizer(Some(super::isolation::authorize))?;
        // A statement still running at a served request's deadline is interrupted.
        conn.progress_handler(10_000, Some(super::deadline::passed))?;
        let db = Database { conn, replica: parsed.original };
        // The VFS opens the replica lazily on the first read: do it now, so that open fails
        // where the replica cannot be read.
        db.conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        if let Some(t) = &opts.time {
            db.set_time(t)?;
        }
        Ok(db)
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn query(&self, sql: &str, params: Vec<SqlValue>) -> SqlResult<Rows> {
        log::clear();
        // Cached: a warm instance answers repeated queries without compiling them again.
        let mut stmt = self.conn.prepare_cached(sql)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let n = columns.len();
        let mut out = Vec::new();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.into_iter().map(Value::from)))?;
        let cap = super::isolation::ResultCap::from_env();
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                let v = row.get_ref(i)?;
                bytes += match v {
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
                    _ => 8,
                };
                vals.push(SqlValue::from(v));
            }
            out.push(vals);
            cap.check(out.len(), bytes).map_err(SqlError::other)?;
        }
        Ok(Rows { columns, rows: out })
    }

    fn pragma_text(&self, name: &str) -> SqlResult<String> {
        let mut stmt = self.conn.prepare_cached(&format!("PRAGMA {name}"))?;
        Ok(stmt.query_row([], |r| r.get::<_, String>(0))?)
    }

    pub fn status(&self) -> SqlResult<Status> {
        log::clear();
        // A read transaction: polls the replica when the interval has passed.
        self.conn.prepare_cached("SELECT count(*) FROM sqlite_master")?.query_row([], |_| Ok(()))?;
        Ok(Status {
            replica: self.replica.clone(),
            txid: self.pragma_text("litestream_txid")?,
            lag_seconds: self.pragma_text("litestream_lag")?.trim().parse().unwrap_or(-1),
            time: self.pragma_text("litestream_time")?,
        })
    }

    pub fn txid(&self) -> SqlResult<String> {
        self.pragma_text("litestream_txid")
    }

    pub fn set_time(&self, time: &str) -> SqlResult<()> {
        log::clear();
        self.conn.execute_batch(&format!("PRAGMA litestream_time = {}", sql_quote(time)))?;
        Ok(())
    }
}
