//! Registering a `litestream` VFS with SQLite, shared by the loadable extension's init and the
//! Rust API: the VFS itself (sqlite-plugin), the URI capture on its `xOpen`, and the
//! auto-extension that gives every new connection the SQL functions.

use crate::api;
use crate::host::NativeHost;
use crate::sql_functions;
use ltxvfs::vfs::{LitestreamVfs, RawVfsHead, install_uri_capture};
use sqlite_plugin::vars;
use sqlite_plugin::vfs::{RegisterOpts, register_dynamic};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

/// Register `host` as the VFS `name` (not as the default: the router does that, see
/// [`crate::router`]). Returns the registered `sqlite3_vfs`.
pub fn register_vfs(name: &CStr, host: NativeHost) -> Result<*mut c_void, String> {
    let api = api::get().ok_or("no SQLite API")?;
    // SAFETY: `sqlite3_libversion_number` takes no arguments and only returns a constant.
    let version = api.libversion_number.map(|f| unsafe { f() }).unwrap_or(0);
    if version < sqlite_plugin::vfs::MIN_SQLITE_VERSION_NUMBER {
        return Err(format!(
            "litestream VFS requires SQLite {} or later (found {version})",
            sqlite_plugin::vfs::MIN_SQLITE_VERSION_NUMBER
        ));
    }
    let find = api.vfs_find.ok_or("no sqlite3_vfs_find")?;
    // SAFETY: sqlite3_vfs_find with a NUL-terminated name returns the registered VFS or NULL.
    if !unsafe { find(name.as_ptr()) }.is_null() {
        return Err(format!("a VFS named {:?} is already registered", name.to_string_lossy()));
    }
    let api_ptr = std::ptr::from_ref(api).cast_mut();
    // SAFETY: api_ptr is the routine table SQLite handed us (extension init or auto-extension).
    unsafe {
        register_dynamic(api_ptr, CString::from(name), LitestreamVfs::new(host), RegisterOpts { make_default: false })
    }
    .map_err(|rc| format!("cannot register the litestream VFS (error {rc})"))?;
    // SAFETY: as above.
    let raw = unsafe { find(name.as_ptr()) };
    if raw.is_null() {
        return Err("litestream VFS vanished after registration".into());
    }
    let (Some(key), Some(param)) = (api.uri_key, api.uri_parameter) else {
        return Err("SQLite lacks sqlite3_uri_key".into());
    };
    // SAFETY: `raw` is the sqlite3_vfs sqlite-plugin just registered for a LitestreamVfs, not
    // yet used by any connection (the cast views its leading fields, which RawVfsHead mirrors
    // in sqlite3.h order); key/param are SQLite's own URI functions.
    unsafe { install_uri_capture(raw.cast::<RawVfsHead>(), key, param) }.map_err(|e| e.message)?;
    Ok(raw.cast())
}

static FUNCTIONS_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Install (once) the auto-extension that registers the SQL functions on new connections.
pub fn install_functions() -> Result<(), String> {
    if FUNCTIONS_INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    let api = api::get().ok_or("no SQLite API")?;
    let auto = api.auto_extension.ok_or("no sqlite3_auto_extension")?;
    type AutoExt = unsafe extern "C" fn(*mut c_void, *mut *mut c_char, *const c_void) -> c_int;
    // SAFETY: SQLite calls auto-extensions as `int (*)(sqlite3*, char**, const sqlite3_api_routines*)`;
    // it stores them as `void (*)(void)`, hence the transmute between fn-pointer types.
    let rc =
        unsafe { auto(Some(std::mem::transmute::<AutoExt, unsafe extern "C" fn()>(sql_functions::on_new_connection))) };
    if rc != vars::SQLITE_OK {
        return Err(format!("cannot register the auto-extension (error {rc})"));
    }
    FUNCTIONS_INSTALLED.store(true, Ordering::Release);
    Ok(())
}
