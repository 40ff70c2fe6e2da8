//! The Rust API (feature `embed`): register the `litestream` VFS in a program that links SQLite
//! itself (rusqlite, `libsqlite3-sys`), without loading the extension file.
//!
//! ```no_run
//! use litestream_vfs::{Config, register};
//! register("litestream", Config::new().replica_url("file:///var/lib/litestream/app.db"))?;
//! let db = rusqlite::Connection::open_with_flags_and_vfs(
//!     "app.db", rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY, "litestream")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every connection opened afterwards gets the SQL functions (`litestream_txid()`, …,
//! `litestream_configure()`), as with the loadable extension.

use crate::host::NativeHost;
use crate::{api, named_config, registration, router, sql_functions};
use libsqlite3_sys as ffi;
use ltxvfs::storage::Storage;
use ltxvfs::{Error, Result};
use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

/// What a registered VFS serves: a replica URL or a storage object, and URI options.
#[derive(Clone, Default)]
pub struct Config {
    replica_url: Option<String>,
    storage: Option<Arc<dyn Storage>>,
    params: Vec<(String, String)>,
    error: Option<Error>,
}

impl Config {
    /// No replica yet; URI parameters and per-name configuration can still name one.
    pub fn new() -> Self {
        Self::default()
    }

    /// The replica every open reads unless its URI says otherwise (`file://`, `s3://`, …).
    pub fn replica_url(mut self, url: impl Into<String>) -> Self {
        self.replica_url = Some(url.into());
        self
    }

    /// Serve the replica at `url` from `storage` (a backend of [`crate::storage`] or your own
    /// [`Storage`]); the URL gives the key layout (`file://` vs object-store naming).
    pub fn storage(mut self, url: impl Into<String>, storage: Arc<dyn Storage>) -> Self {
        self.replica_url = Some(url.into());
        self.storage = Some(storage);
        self
    }

    /// Any database URI option (`poll_interval`, `cache_size`, `cache_dir`, `open_timeout`,
    /// `hydration_enabled`, …), checked now: a bad key or value makes [`register`] fail.
    pub fn option(mut self, key: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if self.error.is_none() {
            if let Err(e) = named_config::check(key, &value) {
                self.error = Some(e);
                return self;
            }
            self.params.retain(|(k, _)| k != key);
            self.params.push((key.to_string(), value));
        }
        self
    }

    pub fn poll_interval(self, every: Duration) -> Self {
        self.option("poll_interval", format!("{}ns", every.as_nanos()))
    }

    /// Page cache size in bytes.
    pub fn cache_size(self, bytes: u64) -> Self {
        self.option("cache_size", bytes.to_string())
    }

    /// Directory of the persistent page cache.
    pub fn cache_dir(self, dir: impl Into<String>) -> Self {
        self.option("cache_dir", dir)
    }

    /// How long an open waits for a first snapshot of an empty replica.
    pub fn open_timeout(self, wait: Duration) -> Self {
        self.option("open_timeout", format!("{}ns", wait.as_nanos()))
    }
}

/// Register the VFS `name` serving `config`. Open databases with that VFS name (rusqlite:
/// `open_with_flags_and_vfs`, or a URI `?vfs=<name>`).
pub fn register(name: &str, config: Config) -> Result<()> {
    register_as(name, config, false)
}

/// Register `litestream` serving `config` and make it the process's default VFS through the
/// router: names configured with [`configure`] are replicas, every other file is an ordinary
/// SQLite file of the platform's VFS (with no name configured, every file is a replica).
pub fn register_default(config: Config) -> Result<()> {
    register_as("litestream", config, true)
}

/// Per-name configuration: `key` = `value` for database `name`, as in the URI.
pub fn configure(name: &str, key: &str, value: &str) -> Result<()> {
    named_config::configure(name, key, value)
}

fn register_as(name: &str, config: Config, make_default: bool) -> Result<()> {
    if let Some(e) = config.error {
        return Err(e);
    }
    let cname = CString::new(name).map_err(|_| Error::config("VFS name contains NUL"))?;
    capture_api()?;
    let mut host =
        NativeHost::new(config.replica_url.clone(), None, Default::default()).with_base_params(config.params);
    if let (Some(url), Some(storage)) = (config.replica_url, config.storage) {
        host = host.with_storage(url, storage);
    }
    let raw = registration::register_vfs(&cname, host).map_err(Error::config)?;
    sql_functions::set_our_vfs(raw);
    if make_default {
        router::install(raw).map_err(Error::config)?;
    }
    registration::install_functions().map_err(Error::config)
}

static CAPTURED: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" fn capture(
    _db: *mut ffi::sqlite3,
    _err: *mut *mut c_char,
    api: *const ffi::sqlite3_api_routines,
) -> c_int {
    CAPTURED.store(api.cast_mut().cast(), Ordering::Release);
    0
}

/// SQLite hands its routine table to auto-extensions: register one, open a memory database
/// once, and keep the table (the same one the loadable extension gets).
fn capture_api() -> Result<()> {
    if api::get().is_some() {
        return Ok(());
    }
    let entry = capture;
    let mut db: *mut ffi::sqlite3 = std::ptr::null_mut();
    // SAFETY: plain SQLite calls with valid arguments; the connection is closed right away and
    // the auto-extension cancelled.
    unsafe {
        ffi::sqlite3_auto_extension(Some(entry));
        ffi::sqlite3_open(c":memory:".as_ptr(), &mut db);
        ffi::sqlite3_close(db);
        ffi::sqlite3_cancel_auto_extension(Some(entry));
    }
    let p = CAPTURED.load(Ordering::Acquire);
    if p.is_null() {
        return Err(Error::config("SQLite gave no routine table (built with SQLITE_OMIT_LOAD_EXTENSION?)"));
    }
    api::set(p.cast());
    Ok(())
}
