//! "Make default" without taking over the process: the default VFS becomes a router that sends
//! each file to `litestream` or to the VFS that was the default before (the platform's).
//!
//! * No name configured (plain `LITESTREAM_VFS_DEFAULT=true`): every file goes to `litestream`,
//!   as with the Go extension.
//! * Once names are configured (`litestream_configure`, `LITESTREAM_VFS_CONFIG`, the Rust
//!   API): only those names (and their `-journal`/`-wal`/`-shm` companions) go to `litestream`;
//!   every other file, `.backup` and `VACUUM INTO` targets included, goes to the previous
//!   default unchanged.
//!
//! Files keep the methods of the VFS that opened them (`sqlite3_file.pMethods`), so only the
//! name-based entry points route; the rest is the previous default's.

use crate::api;
use crate::named_config;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

type Fptr = Option<unsafe extern "C" fn()>;

/// `sqlite3_vfs` (version 3), in sqlite3.h order: a stable C ABI.
#[repr(C)]
pub struct RawVfs {
    i_version: c_int,
    sz_os_file: c_int,
    mx_pathname: c_int,
    p_next: *mut RawVfs,
    z_name: *const c_char,
    p_app_data: *mut c_void,
    x_open: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char, *mut c_void, c_int, *mut c_int) -> c_int>,
    x_delete: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char, c_int) -> c_int>,
    x_access: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char, c_int, *mut c_int) -> c_int>,
    x_full_pathname: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char, c_int, *mut c_char) -> c_int>,
    x_dl_open: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char) -> *mut c_void>,
    x_dl_error: Option<unsafe extern "C" fn(*mut RawVfs, c_int, *mut c_char)>,
    x_dl_sym: Option<unsafe extern "C" fn(*mut RawVfs, *mut c_void, *const c_char) -> Fptr>,
    x_dl_close: Option<unsafe extern "C" fn(*mut RawVfs, *mut c_void)>,
    x_randomness: Option<unsafe extern "C" fn(*mut RawVfs, c_int, *mut c_char) -> c_int>,
    x_sleep: Option<unsafe extern "C" fn(*mut RawVfs, c_int) -> c_int>,
    x_current_time: Option<unsafe extern "C" fn(*mut RawVfs, *mut f64) -> c_int>,
    x_get_last_error: Option<unsafe extern "C" fn(*mut RawVfs, c_int, *mut c_char) -> c_int>,
    x_current_time_int64: Option<unsafe extern "C" fn(*mut RawVfs, *mut i64) -> c_int>,
    x_set_system_call: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char, Fptr) -> c_int>,
    x_get_system_call: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char) -> Fptr>,
    x_next_system_call: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char) -> *const c_char>,
}

struct Routes {
    litestream: *mut RawVfs,
    previous: *mut RawVfs,
}

// SAFETY: both pointers are registered sqlite3_vfs objects that live for the whole process
// (SQLite never frees a VFS; we never unregister) and are only read.
unsafe impl Send for Routes {}
// SAFETY: see above.
unsafe impl Sync for Routes {}

static ROUTES: OnceLock<Routes> = OnceLock::new();

/// The VFS for a file name SQLite hands a name-based entry point.
fn target_for(name: *const c_char) -> *mut RawVfs {
    let Some(r) = ROUTES.get() else { return std::ptr::null_mut() };
    if !named_config::any() {
        return r.litestream;
    }
    if name.is_null() {
        return r.previous;
    }
    // SAFETY: SQLite passes NUL-terminated file names.
    let text = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    if named_config::owns(&text) { r.litestream } else { r.previous }
}

fn previous() -> *mut RawVfs {
    ROUTES.get().map_or(std::ptr::null_mut(), |r| r.previous)
}

/// Call `field` of `vfs`, or return `missing` when the VFS lacks it (or no route exists).
macro_rules! forward {
    ($vfs:expr, $field:ident, $missing:expr $(, $arg:expr)*) => {{
        let v: *mut RawVfs = $vfs;
        // SAFETY: `v` is null or a registered, live sqlite3_vfs (see Routes).
        match unsafe { v.as_ref() }.and_then(|r| r.$field) {
            // SAFETY: the method of that VFS takes the VFS itself first, then SQLite's own
            // arguments, passed through unchanged.
            Some(f) => unsafe { f(v $(, $arg)*) },
            None => $missing,
        }
    }};
}

const CANTOPEN: c_int = sqlite_plugin::vars::SQLITE_CANTOPEN;
const ERROR: c_int = sqlite_plugin::vars::SQLITE_ERROR;

unsafe extern "C" fn x_open(_: *mut RawVfs, n: *const c_char, f: *mut c_void, fl: c_int, o: *mut c_int) -> c_int {
    forward!(target_for(n), x_open, CANTOPEN, n, f, fl, o)
}
unsafe extern "C" fn x_delete(_: *mut RawVfs, n: *const c_char, sync: c_int) -> c_int {
    forward!(target_for(n), x_delete, ERROR, n, sync)
}
unsafe extern "C" fn x_access(_: *mut RawVfs, n: *const c_char, fl: c_int, out: *mut c_int) -> c_int {
    forward!(target_for(n), x_access, ERROR, n, fl, out)
}
unsafe extern "C" fn x_full_pathname(_: *mut RawVfs, n: *const c_char, len: c_int, out: *mut c_char) -> c_int {
    forward!(target_for(n), x_full_pathname, ERROR, n, len, out)
}
unsafe extern "C" fn x_dl_open(_: *mut RawVfs, n: *const c_char) -> *mut c_void {
    forward!(previous(), x_dl_open, std::ptr::null_mut(), n)
}
unsafe extern "C" fn x_dl_error(_: *mut RawVfs, len: c_int, out: *mut c_char) {
    forward!(previous(), x_dl_error, (), len, out)
}
unsafe extern "C" fn x_dl_sym(_: *mut RawVfs, h: *mut c_void, s: *const c_char) -> Fptr {
    forward!(previous(), x_dl_sym, None, h, s)
}
unsafe extern "C" fn x_dl_close(_: *mut RawVfs, h: *mut c_void) {
    forward!(previous(), x_dl_close, (), h)
}
unsafe extern "C" fn x_randomness(_: *mut RawVfs, len: c_int, out: *mut c_char) -> c_int {
    forward!(previous(), x_randomness, 0, len, out)
}
unsafe extern "C" fn x_sleep(_: *mut RawVfs, us: c_int) -> c_int {
    forward!(previous(), x_sleep, 0, us)
}
unsafe extern "C" fn x_current_time(_: *mut RawVfs, out: *mut f64) -> c_int {
    forward!(previous(), x_current_time, ERROR, out)
}
unsafe extern "C" fn x_get_last_error(_: *mut RawVfs, len: c_int, out: *mut c_char) -> c_int {
    forward!(previous(), x_get_last_error, 0, len, out)
}
unsafe extern "C" fn x_current_time_int64(_: *mut RawVfs, out: *mut i64) -> c_int {
    forward!(previous(), x_current_time_int64, ERROR, out)
}
unsafe extern "C" fn x_set_system_call(_: *mut RawVfs, n: *const c_char, f: Fptr) -> c_int {
    forward!(previous(), x_set_system_call, sqlite_plugin::vars::SQLITE_NOTFOUND, n, f)
}
unsafe extern "C" fn x_get_system_call(_: *mut RawVfs, n: *const c_char) -> Fptr {
    forward!(previous(), x_get_system_call, None, n)
}
unsafe extern "C" fn x_next_system_call(_: *mut RawVfs, n: *const c_char) -> *const c_char {
    forward!(previous(), x_next_system_call, std::ptr::null(), n)
}

/// Make the router the default VFS in front of the registered `litestream` VFS `lit`.
pub fn install(lit: *mut c_void) -> Result<(), String> {
    if ROUTES.get().is_some() {
        return Ok(());
    }
    let api = api::get().ok_or("no SQLite API")?;
    let (Some(find), Some(register)) = (api.vfs_find, api.vfs_register) else {
        return Err("SQLite lacks sqlite3_vfs_register".into());
    };
    // SAFETY: sqlite3_vfs_find(NULL) returns the current default VFS (or NULL if none).
    let previous: *mut RawVfs = unsafe { find(std::ptr::null()) }.cast();
    let lit: *mut RawVfs = lit.cast();
    // SAFETY: both are registered, live sqlite3_vfs objects (checked non-null).
    let (Some(p), Some(l)) = (unsafe { previous.as_ref() }, unsafe { lit.as_ref() }) else {
        return Err("no default VFS to route to".into());
    };
    let router = Box::new(RawVfs {
        i_version: p.i_version.min(3),
        sz_os_file: p.sz_os_file.max(l.sz_os_file),
        mx_pathname: p.mx_pathname.max(l.mx_pathname),
        p_next: std::ptr::null_mut(),
        z_name: c"litestream-default".as_ptr(),
        p_app_data: std::ptr::null_mut(),
        x_open: Some(x_open),
        x_delete: Some(x_delete),
        x_access: Some(x_access),
        x_full_pathname: Some(x_full_pathname),
        x_dl_open: Some(x_dl_open),
        x_dl_error: Some(x_dl_error),
        x_dl_sym: Some(x_dl_sym),
        x_dl_close: Some(x_dl_close),
        x_randomness: Some(x_randomness),
        x_sleep: Some(x_sleep),
        x_current_time: Some(x_current_time),
        x_get_last_error: Some(x_get_last_error),
        x_current_time_int64: p.x_current_time_int64.map(|_| x_current_time_int64 as _),
        x_set_system_call: p.x_set_system_call.map(|_| x_set_system_call as _),
        x_get_system_call: p.x_get_system_call.map(|_| x_get_system_call as _),
        x_next_system_call: p.x_next_system_call.map(|_| x_next_system_call as _),
    });
    ROUTES.set(Routes { litestream: lit, previous }).map_err(|_| "router installed twice".to_string())?;
    let raw = Box::into_raw(router);
    // SAFETY: `raw` is a complete sqlite3_vfs that lives for the rest of the process (leaked on
    // purpose: SQLite keeps the pointer); registering it as the default is what we want.
    let rc = unsafe { register(raw.cast(), 1) };
    if rc != sqlite_plugin::vars::SQLITE_OK {
        return Err(format!("cannot register the default-VFS router (error {rc})"));
    }
    Ok(())
}
