//! The `litestream` VFS for sqlite-plugin, shared by the native extension and the component.
//!
//! Shells provide a [`Host`] (storage per URL, clock, temp files, defaults). Every callback runs
//! under a panic guard: a panic becomes `SQLITE_IOERR`, never an unwind across FFI.
//!
//! sqlite-plugin hands `open` the file name as a string, which loses SQLite's URI parameters.
//! [`install_uri_capture`] wraps the registered `xOpen` so that it reads them with
//! `sqlite3_uri_key`/`sqlite3_uri_parameter` first and hands them over in a thread-local.

use crate::config::OpenConfig;
use crate::connection::{Connection, Lock, PragmaResult};
use crate::error::{Error, ErrorKind, Result};
use crate::extent_store::ExtentStore;
use crate::hydrate::file::HydrationFile;
use crate::hydrate::registry::shared_hydrator;
use crate::hydrate::{HydrationConfig, Hydrator};
use crate::registry::shared_replica;
use crate::replica::{Replica, ReplicaOptions};
use crate::replica_url::ReplicaUrl;
use crate::storage::{Clock, Storage};
use crate::temp_files::{TempFile, TempFiles};
use crate::write::buffer::BufferStore;
use crate::write::{WriteOptions, registry as writers};
use sqlite_plugin::flags::{AccessFlags, LockLevel, OpenKind, OpenOpts};
use sqlite_plugin::vars;
use sqlite_plugin::vfs::{Pragma, PragmaErr, Vfs, VfsHandle, VfsResult};
use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

/// What a shell provides to the VFS.
pub trait Host: Send + Sync + 'static {
    /// Storage for a replica URL.
    fn storage(&self, url: &ReplicaUrl) -> Result<Arc<dyn Storage>>;
    fn clock(&self) -> Arc<dyn Clock>;
    /// The replica URL used when the database URI names none (environment).
    fn default_replica_url(&self) -> Option<String>;
    /// Options before URI parameters apply.
    fn default_options(&self) -> ReplicaOptions {
        ReplicaOptions::default()
    }
    fn temp_files(&self) -> &dyn TempFiles;
    /// The default persistent cache directory (environment), if any.
    fn default_cache_dir(&self) -> Option<String> {
        None
    }
    /// Write settings before URI parameters apply (environment).
    fn default_write(&self) -> WriteOptions {
        WriteOptions::default()
    }
    /// Make a replica that may not exist yet writable (a write-enabled open creates the
    /// database: VFS.md §9.7), e.g. create a `file://` directory.
    fn prepare_new_replica(&self, _url: &ReplicaUrl) -> Result<()> {
        Ok(())
    }
    /// Where write buffers live; `None` makes this shell read-only.
    fn write_buffers(&self) -> Option<Arc<dyn BufferStore>> {
        None
    }
    /// Why writes are refused when [`Host::write_buffers`] is `None`.
    fn read_only_reason(&self) -> &'static str {
        "write mode is not available in this build of ltxvfs (read-only)"
    }
    /// A persistent extent store for this replica under `dir`; `None` where there is no disk.
    fn extent_store(&self, _url: &ReplicaUrl, _dir: &str) -> Result<Option<Arc<dyn ExtentStore>>> {
        Ok(None)
    }
    /// Hydration settings from the environment.
    fn default_hydration(&self) -> HydrationConfig {
        HydrationConfig::default()
    }
    /// The local file to hydrate into: `path` (persistent, locked against other processes) or
    /// a temporary file. Shells without a local disk cannot hydrate.
    fn hydration_file(&self, _path: Option<&str>) -> Result<Arc<dyn HydrationFile>> {
        Err(Error::config(
            "hydration is not available here: the WebAssembly component has no local disk to hydrate to (reads use the replica)",
        ))
    }
    /// Parameters configured for this database name before the open (per-name configuration),
    /// applied under the URI's own parameters.
    fn named_params(&self, _name: &str) -> Vec<(String, String)> {
        Vec::new()
    }
    /// A main-database open finished: `Err` carries the cause, so the shell can show it to the
    /// application (SQLite itself only says "unable to open database file").
    fn open_finished(&self, _name: &str, _outcome: std::result::Result<(), &Error>) {}
    /// A write transaction was refused for a reason SQLite cannot carry (a conflict: SQLite
    /// only says "attempt to write a readonly database"), so the shell can show the cause.
    fn write_refused(&self, _name: &str, _error: &Error) {}
}

pub enum Handle {
    Main(Box<Connection>),
    Temp(Box<dyn TempFile>),
}

impl VfsHandle for Handle {
    /// Main files are opened read-write unless the open asked for read-only (`mode=ro`), so
    /// that `PRAGMA litestream_write_enabled=1` works later (VFS.md §9.6); writes with write
    /// mode off fail at the RESERVED lock with SQLITE_READONLY.
    fn readonly(&self) -> bool {
        matches!(self, Handle::Main(c) if !c.can_write())
    }
    fn in_memory(&self) -> bool {
        false
    }
}

pub struct LitestreamVfs<H: Host> {
    host: H,
}

impl<H: Host> LitestreamVfs<H> {
    pub fn new(host: H) -> Self {
        Self { host }
    }

    /// Open a main database: share the replica and its writer, enable writes if asked.
    fn open_main(&self, name: &str, params: &[(String, String)], read_only: bool) -> Result<Connection> {
        let (replica, hydrator, cfg, key, url) = self.open_replica(name, params)?;
        let writer = writers::writer_for(&key, &url, &replica);
        let (access, reason) = match (self.host.write_buffers(), read_only) {
            (_, true) => (None, "the database was opened read-only (mode=ro)"),
            (None, false) => (None, self.host.read_only_reason()),
            (Some(buffers), false) => {
                let mut options = cfg.write.clone();
                if !cfg.buffer_path_from_uri {
                    options.buffer_path = options.buffer_path.map(|p| writers::numbered_path(&p));
                }
                (Some(crate::connection::WriteAccess { buffers, options }), "")
            }
        };
        let mut conn = Connection::with_writer(replica, writer, name, access, reason).with_hydrator(hydrator);
        if cfg.write.enabled {
            conn.enable_writes()?;
        }
        Ok(conn)
    }

    /// Open (or share) the replica a main-database open asks for.
    #[allow(clippy::type_complexity)]
    fn open_replica(
        &self,
        name: &str,
        params: &[(String, String)],
    ) -> Result<(Arc<Replica>, Option<Arc<Hydrator>>, OpenConfig, String, String)> {
        let mut all = self.host.named_params(name);
        all.extend_from_slice(params);
        let mut cfg = OpenConfig::from_params_with(&all, self.host.default_options(), self.host.default_write())?;
        if cfg.cache_dir.is_none() {
            cfg.cache_dir = self.host.default_cache_dir();
        }
        let url_text = cfg.replica_url.clone().or_else(|| self.host.default_replica_url()).ok_or_else(|| {
            Error::config(
                "no replica client configured: set LITESTREAM_REPLICA_URL, pass replica_url in the database URI, or configure this database name (litestream_configure)",
            )
        })?;
        let url = ReplicaUrl::parse(&url_text)?;
        let key = cfg.replica_key(&url_text);
        // What a write buffer belongs to: the scheme, bucket and path, not the endpoint or options
        // (the same bucket reached through another endpoint is the same replica).
        let identity = format!("{}://{}/{}", url.scheme.as_str(), url.host, url.path.trim_start_matches('/'));
        if cfg.write.enabled {
            self.host.prepare_new_replica(&url)?;
        }
        let replica = shared_replica(&key, || {
            let storage = self.host.storage(&url)?;
            let extents = match &cfg.cache_dir {
                Some(dir) => self.host.extent_store(&url, dir)?,
                None => None,
            };
            tracing::debug!(db = name, replica = %storage.describe(), cache_dir = ?cfg.cache_dir, "opening replica");
            Replica::open_with_extents(storage, extents, self.host.clock(), url.layout(), cfg.options.clone())
        })?;
        let env = self.host.default_hydration();
        if !cfg.hydration_enabled.unwrap_or(env.enabled) {
            return Ok((replica, None, cfg, key, identity));
        }
        // One task and one file per replica and path; connections to the replica share them.
        let path = cfg.hydration_path.clone().or(env.path);
        let hydrator = shared_hydrator(&format!("{key}|hydration={path:?}"), || {
            let file = self.host.hydration_file(path.as_deref())?;
            tracing::info!(db = name, path = %file.path(), "hydration enabled");
            Ok(Hydrator::start(&replica, file))
        })?;
        Ok((replica, Some(hydrator), cfg, key, identity))
    }
}

/// Map an error to a SQLite result code, logging it.
fn code(e: &Error, during: &str, default: i32) -> i32 {
    tracing::error!(kind = ?e.kind, "{during}: {e}");
    match e.kind {
        ErrorKind::Corrupt => vars::SQLITE_CORRUPT,
        ErrorKind::ReadOnly => vars::SQLITE_READONLY,
        _ => default,
    }
}

/// Map a main-file write error: read-only stays SQLITE_READONLY, the rest is an I/O error.
fn write_code(e: &Error, during: &str) -> i32 {
    match e.kind {
        ErrorKind::ReadOnly => vars::SQLITE_READONLY,
        _ => code(e, during, vars::SQLITE_IOERR_WRITE),
    }
}

/// Run a callback body; a panic becomes `SQLITE_IOERR` (logged) instead of crossing FFI.
fn guard<T>(what: &str, f: impl FnOnce() -> VfsResult<T>) -> VfsResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("panic in {what}: {msg}");
            Err(vars::SQLITE_IOERR)
        }
    }
}

fn lock_of(l: LockLevel) -> Lock {
    match l {
        LockLevel::Unlocked => Lock::None,
        LockLevel::Shared => Lock::Shared,
        LockLevel::Reserved => Lock::Reserved,
        LockLevel::Pending => Lock::Pending,
        LockLevel::Exclusive => Lock::Exclusive,
    }
}

/// sqlite-plugin passes PRAGMA text to `sqlite3_mprintf` as the format string.
fn escape_percent(s: String) -> String {
    if s.contains('%') { s.replace('%', "%%") } else { s }
}

impl<H: Host> Vfs for LitestreamVfs<H> {
    type Handle = Handle;

    fn open(&self, path: Option<&str>, opts: OpenOpts) -> VfsResult<Handle> {
        guard("open", || match opts.kind() {
            OpenKind::MainDb => {
                let name = path.unwrap_or("");
                let params = take_open_params();
                let opened = self.open_main(name, &params, opts.mode().is_readonly());
                self.host.open_finished(name, opened.as_ref().map(|_| ()));
                let conn = opened.map_err(|e| code(&e, &format!("open {name}"), vars::SQLITE_CANTOPEN))?;
                Ok(Handle::Main(Box::new(conn)))
            }
            OpenKind::Wal => {
                tracing::debug!("refusing a WAL file: this VFS has no shared memory");
                Err(vars::SQLITE_CANTOPEN)
            }
            _ => {
                let file = self
                    .host
                    .temp_files()
                    .open(path, opts.delete_on_close() || path.is_none())
                    .map_err(|e| code(&e, "open temp file", vars::SQLITE_CANTOPEN))?;
                Ok(Handle::Temp(file))
            }
        })
    }

    fn delete(&self, path: &str) -> VfsResult<()> {
        guard("delete", || {
            self.host.temp_files().delete(path).map_err(|e| code(&e, "delete", vars::SQLITE_IOERR_DELETE))
        })
    }

    fn access(&self, path: &str, _flags: AccessFlags) -> VfsResult<bool> {
        guard("access", || Ok(!path.ends_with("-wal") && self.host.temp_files().exists(path)))
    }

    fn file_size(&self, handle: &mut Handle) -> VfsResult<usize> {
        guard("file_size", || match handle {
            Handle::Main(c) => usize::try_from(c.file_size()).map_err(|_| vars::SQLITE_IOERR_FSTAT),
            Handle::Temp(t) => t
                .size()
                .map_err(|e| code(&e, "temp size", vars::SQLITE_IOERR_FSTAT))
                .and_then(|s| usize::try_from(s).map_err(|_| vars::SQLITE_IOERR_FSTAT)),
        })
    }

    fn truncate(&self, handle: &mut Handle, size: usize) -> VfsResult<()> {
        guard("truncate", || match handle {
            Handle::Main(c) => c.truncate(size as u64).map_err(|e| write_code(&e, "truncate")),
            Handle::Temp(t) => {
                t.truncate(size as u64).map_err(|e| code(&e, "temp truncate", vars::SQLITE_IOERR_TRUNCATE))
            }
        })
    }

    fn write(&self, handle: &mut Handle, offset: usize, data: &[u8]) -> VfsResult<usize> {
        guard("write", || match handle {
            Handle::Main(c) => c.write(offset as u64, data).map(|_| data.len()).map_err(|e| write_code(&e, "write")),
            Handle::Temp(t) => t
                .write_at(offset as u64, data)
                .map(|_| data.len())
                .map_err(|e| code(&e, "temp write", vars::SQLITE_IOERR_WRITE)),
        })
    }

    fn read(&self, handle: &mut Handle, offset: usize, data: &mut [u8]) -> VfsResult<usize> {
        guard("read", || match handle {
            Handle::Main(c) => c
                .read(offset as u64, data)
                .map_err(|e| code(&e, &format!("read {} at {offset}", c.name()), vars::SQLITE_IOERR_READ)),
            Handle::Temp(t) => {
                t.read_at(offset as u64, data).map_err(|e| code(&e, "temp read", vars::SQLITE_IOERR_READ))
            }
        })
    }

    fn lock(&self, handle: &mut Handle, level: LockLevel) -> VfsResult<()> {
        guard("lock", || match handle {
            Handle::Main(c) => c.lock(lock_of(level)).map_err(|e| match e.kind {
                // The conflict's message names both TXIDs and the buffer; SQLite only passes
                // the code on, so the message goes to the log, to `litestream_last_error()`
                // and `sqlite3_log` (the shell's `write_refused`), and to PRAGMA litestream_sync.
                ErrorKind::Conflict => {
                    self.host.write_refused(c.name(), &e);
                    code(&e, "lock", vars::SQLITE_READONLY)
                }
                ErrorKind::ReadOnly => {
                    tracing::debug!("lock: {e}");
                    vars::SQLITE_READONLY
                }
                ErrorKind::Busy => {
                    tracing::debug!("lock: {e}");
                    vars::SQLITE_BUSY
                }
                _ => code(&e, "lock", vars::SQLITE_IOERR_LOCK),
            }),
            Handle::Temp(_) => Ok(()),
        })
    }

    fn unlock(&self, handle: &mut Handle, level: LockLevel) -> VfsResult<()> {
        guard("unlock", || match handle {
            Handle::Main(c) => c.unlock(lock_of(level)).map_err(|e| code(&e, "commit", vars::SQLITE_IOERR_FSYNC)),
            Handle::Temp(_) => Ok(()),
        })
    }

    fn check_reserved_lock(&self, handle: &mut Handle) -> VfsResult<bool> {
        guard("check_reserved_lock", || match handle {
            Handle::Main(c) => Ok(c.check_reserved()),
            Handle::Temp(_) => Ok(false),
        })
    }

    fn close(&self, handle: Handle) -> VfsResult<()> {
        guard("close", || {
            drop(handle);
            Ok(())
        })
    }

    fn pragma(&self, handle: &mut Handle, pragma: Pragma<'_>) -> std::result::Result<Option<String>, PragmaErr> {
        let outcome = catch_unwind(AssertUnwindSafe(|| match handle {
            Handle::Main(_) if pragma.name.eq_ignore_ascii_case("litestream_version") => {
                PragmaResult::Value(Ok(Some(crate::VERSION.to_string())))
            }
            Handle::Main(c) => c.pragma(pragma.name, pragma.arg),
            Handle::Temp(_) => PragmaResult::NotOurs,
        }));
        match outcome {
            Ok(PragmaResult::NotOurs) => Err(PragmaErr::NotFound),
            // PRAGMA output is redacted like logs and errors (`crate::redact`).
            Ok(PragmaResult::Value(Ok(v))) => {
                Ok(v.map(|v| escape_percent(crate::redact::redact_text(&v).into_owned())))
            }
            Ok(PragmaResult::Value(Err(e))) => {
                tracing::debug!("pragma {}: {e}", pragma.name);
                let msg = crate::redact::redact_text(&e.message).into_owned();
                Err(PragmaErr::Fail(vars::SQLITE_ERROR, Some(escape_percent(msg))))
            }
            Err(_) => Err(PragmaErr::Fail(vars::SQLITE_ERROR, Some("internal error (panic) in pragma".into()))),
        }
    }

    fn sector_size(&self, _handle: &mut Handle) -> VfsResult<i32> {
        Ok(512)
    }

    fn device_characteristics(&self, _handle: &mut Handle) -> VfsResult<i32> {
        Ok(0)
    }
}

// ------------------------------------------------------------------ URI parameter capture

thread_local! {
    static OPEN_PARAMS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

fn take_open_params() -> Vec<(String, String)> {
    OPEN_PARAMS.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// `sqlite3_uri_key`.
pub type UriKeyFn = unsafe extern "C" fn(*const c_char, c_int) -> *const c_char;
/// `sqlite3_uri_parameter`.
pub type UriParamFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *const c_char;
type XOpen = unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void, c_int, *mut c_int) -> c_int;

/// The leading fields of `sqlite3_vfs`, in sqlite3.h order (a stable C ABI).
#[repr(C)]
pub struct RawVfsHead {
    i_version: c_int,
    sz_os_file: c_int,
    mx_pathname: c_int,
    p_next: *mut c_void,
    z_name: *const c_char,
    p_app_data: *mut c_void,
    x_open: Option<XOpen>,
}

struct Capture {
    original: XOpen,
    key: UriKeyFn,
    param: UriParamFn,
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

/// Collect every URI parameter of a main-database file name.
///
/// # Safety
/// `name` must be a file name SQLite passed to `xOpen` for a main database (a
/// `sqlite3_filename`), for which `sqlite3_uri_key`/`sqlite3_uri_parameter` are defined.
unsafe fn uri_params(name: *const c_char, cap: &Capture) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..256 {
        // SAFETY: `name` is a sqlite3_filename (caller contract); uri_key returns NULL past the
        // last key, and a NUL-terminated string owned by SQLite otherwise.
        let k = unsafe { (cap.key)(name, i) };
        if k.is_null() {
            break;
        }
        // SAFETY: `k` is a NUL-terminated key owned by SQLite for the life of the open.
        let v = unsafe { (cap.param)(name, k) };
        // SAFETY: `k` is a non-null NUL-terminated string owned by SQLite (checked above).
        let key = unsafe { CStr::from_ptr(k) }.to_string_lossy().into_owned();
        let value = if v.is_null() {
            String::new()
        } else {
            // SAFETY: `v` is non-null and NUL-terminated, owned by SQLite for the life of the open.
            unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()
        };
        out.push((key, value));
    }
    out
}

unsafe extern "C" fn capturing_xopen(
    vfs: *mut c_void,
    name: *const c_char,
    file: *mut c_void,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(cap) = CAPTURE.get() else { return vars::SQLITE_CANTOPEN };
    if flags & vars::SQLITE_OPEN_MAIN_DB != 0 && !name.is_null() {
        // SAFETY: SQLite passes a sqlite3_filename for main databases; see uri_params.
        let params = catch_unwind(AssertUnwindSafe(|| unsafe { uri_params(name, cap) })).unwrap_or_default();
        OPEN_PARAMS.with(|p| *p.borrow_mut() = params);
    }
    // SAFETY: `original` is the xOpen sqlite-plugin registered for this same VFS; we pass the
    // arguments SQLite gave us unchanged.
    let rc = unsafe { (cap.original)(vfs, name, file, flags, out_flags) };
    OPEN_PARAMS.with(|p| p.borrow_mut().clear());
    rc
}

/// Wrap the `xOpen` of the registered VFS `vfs` so that URI parameters reach [`Vfs::open`].
///
/// # Safety
/// `vfs` must point to the live `sqlite3_vfs` that sqlite-plugin registered for a
/// [`LitestreamVfs`], before any connection uses it; the key/param functions must be SQLite's.
pub unsafe fn install_uri_capture(vfs: *mut RawVfsHead, key: UriKeyFn, param: UriParamFn) -> Result<()> {
    // SAFETY: caller guarantees `vfs` is a valid, registered sqlite3_vfs not yet in use.
    let head = unsafe { vfs.as_mut() }.ok_or_else(|| Error::internal("vfs not found"))?;
    let original = head.x_open.ok_or_else(|| Error::internal("vfs has no xOpen"))?;
    if original as *const () == capturing_xopen as *const () {
        return Ok(()); // already wrapped
    }
    // Several VFS of one shell (the extension's and the Rust API's) share one `xOpen`; the
    // wrapper hands each call to it with the calling VFS, so one capture serves them all.
    let cap = CAPTURE.get_or_init(|| Capture { original, key, param });
    if cap.original as *const () != original as *const () {
        return Err(Error::internal("uri capture: a second VFS type in one process"));
    }
    head.x_open = Some(capturing_xopen);
    Ok(())
}
