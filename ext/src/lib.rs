//! The native loadable extension: a drop-in for Litestream's `litestream-vfs`.
//!
//! `.load ./litestream-vfs` (SQLite derives the entry point `sqlite3_litestreamvfs_init` from
//! `litestream-vfs.so` or `liblitestream_vfs.so`) registers the VFS `litestream`; open a
//! database with `?vfs=litestream`.

mod api;
#[cfg(feature = "embed")]
mod embed;
mod env_config;
mod extent_cache;
mod host;
mod hydration_file;
mod last_error;
mod logging;
mod named_config;
mod registration;
mod router;
mod sql_functions;
pub mod storage;
#[cfg(feature = "embed")]
pub use embed::{Config, configure, register, register_default};
pub use ltxvfs::{Error, ErrorKind, Result};
mod temp_files;
mod write_buffer;

use env_config::EnvConfig;
use sqlite_plugin::sqlite3_api_routines;
use sqlite_plugin::vars;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

/// Extension results SQLite understands.
const SQLITE_OK_LOAD_PERMANENTLY: c_int = 256;

/// Registration happens once per process, whatever the number of loads.
static REGISTERED: Mutex<bool> = Mutex::new(false);

fn register_extension(api_ptr: *mut sqlite3_api_routines) -> Result<(), String> {
    let mut done = REGISTERED.lock().map_err(|_| "registration lock poisoned".to_string())?;
    if *done {
        return Ok(());
    }
    api::set(api_ptr);
    let cfg = EnvConfig::from_env().map_err(|e| e.message)?;
    logging::init(&cfg)?;
    if let Some(text) = env_config::env("LITESTREAM_VFS_CONFIG") {
        named_config::configure_from_env(&text).map_err(|e| e.message)?;
    }
    let host = host::NativeHost::new(cfg.replica_url.clone(), cfg.cache_dir.clone(), cfg.hydration.clone())
        .with_write(cfg.write.clone());
    let raw = registration::register_vfs(c"litestream", host)?;
    sql_functions::set_our_vfs(raw);
    if cfg.make_default {
        router::install(raw)?;
    }
    registration::install_functions()?;
    tracing::debug!(default = cfg.make_default, replica = ?cfg.replica_url, "litestream VFS registered");
    *done = true;
    Ok(())
}

/// Set `*err` to a copy of `msg` allocated by SQLite.
fn report(err: *mut *mut c_char, msg: &str) {
    let (Some(api), false) = (api::get(), err.is_null()) else { return };
    let (Some(malloc), Ok(len)) = (api.malloc, c_int::try_from(msg.len() + 1)) else { return };
    // SAFETY: `err` is SQLite's out-parameter for the load error; SQLite frees it with
    // sqlite3_free, so it must come from sqlite3_malloc, which it does.
    unsafe {
        let p: *mut c_char = malloc(len).cast();
        if p.is_null() {
            return;
        }
        std::ptr::copy_nonoverlapping(msg.as_ptr(), p.cast(), msg.len());
        *p.add(msg.len()) = 0;
        *err = p;
    }
}

/// Keep this code loaded for the rest of the process, whatever SQLite does with its handle:
/// the registered VFS points into it. True when the code cannot be unloaded any more (pinned
/// with RTLD_NODELETE, or linked into the program itself); then init can return plain
/// `SQLITE_OK`, which both `sqlite3_load_extension` and `sqlite3_auto_extension` accept.
fn pin_self() -> bool {
    // SAFETY: Dl_info is plain old data (pointers and ints); all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = sqlite3_litestreamvfs_init as *const c_void;
    // SAFETY: dladdr only reads the address and fills `info`.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return false;
    }
    // SAFETY: dli_fname is a NUL-terminated path owned by the dynamic loader.
    let fname = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let path = std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(fname.to_bytes()));
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    if let Ok(exe) = std::env::current_exe()
        && canon(&exe).is_some()
        && canon(&exe) == canon(path)
    {
        return true; // linked into the program (a Rust application): never unloaded
    }
    // SAFETY: RTLD_NOLOAD only looks the already-loaded object up (and, with RTLD_NODELETE,
    // marks it never to be unloaded); the handle is deliberately never closed.
    let handle = unsafe { libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE) };
    !handle.is_null()
}

/// The extension entry point, for `sqlite3_load_extension` and for `sqlite3_auto_extension`
/// alike (an auto-extension must return 0: `SQLITE_OK_LOAD_PERMANENTLY` breaks every open).
///
/// # Safety
/// Called by SQLite's extension loader with a connection, an error out-pointer and the API
/// routine table.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_litestreamvfs_init(
    db: *mut c_void,
    err: *mut *mut c_char,
    api_ptr: *mut sqlite3_api_routines,
) -> c_int {
    api::set(api_ptr);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        register_extension(api_ptr)?;
        if !db.is_null() {
            // SAFETY: SQLite passes the connection being loaded into (or being opened).
            unsafe { sql_functions::register_if_ours(db) };
        }
        Ok::<bool, String>(pin_self())
    }));
    match outcome {
        Ok(Ok(true)) => vars::SQLITE_OK,
        Ok(Ok(false)) => SQLITE_OK_LOAD_PERMANENTLY,
        Ok(Err(msg)) => {
            report(err, &msg);
            vars::SQLITE_ERROR
        }
        Err(_) => {
            report(err, "internal error (panic) while loading the litestream VFS");
            vars::SQLITE_ERROR
        }
    }
}
