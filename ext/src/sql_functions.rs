//! The SQL functions `litestream_txid()`, `litestream_lag()`, `litestream_time()` and
//! `litestream_set_time(ts)` (VFS.md §10.1), registered by an auto-extension on connections
//! whose main database is a replica; and, on every connection, `litestream_version()`,
//! `litestream_last_error()` and `litestream_configure(name, key, value)`.
//!
//! Each function sends `SQLITE_FCNTL_PRAGMA` to the connection's main file, so functions and
//! PRAGMAs share one implementation (`ltxvfs::connection::Connection::pragma`), and errors keep
//! their real message.

use crate::api;
use sqlite_plugin::vars;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Address of the registered `litestream` sqlite3_vfs, to recognise our connections.
static OUR_VFS: AtomicUsize = AtomicUsize::new(0);

pub fn set_our_vfs(p: *mut c_void) {
    OUR_VFS.store(p as usize, Ordering::Relaxed);
}

type ScalarFn = unsafe extern "C" fn(*mut c_void, c_int, *mut *mut c_void);

struct Function {
    name: &'static CStr,
    args: c_int,
    direct_only: bool,
    f: ScalarFn,
}

/// On every connection: they do not need a replica.
const GLOBAL_FUNCTIONS: [Function; 3] = [
    Function { name: c"litestream_version", args: 0, direct_only: false, f: fn_version },
    Function { name: c"litestream_last_error", args: 0, direct_only: false, f: fn_last_error },
    Function { name: c"litestream_configure", args: 3, direct_only: true, f: fn_configure },
];

const FUNCTIONS: [Function; 4] = [
    Function { name: c"litestream_txid", args: 0, direct_only: false, f: fn_txid },
    Function { name: c"litestream_lag", args: 0, direct_only: false, f: fn_lag },
    Function { name: c"litestream_time", args: 0, direct_only: false, f: fn_time },
    Function { name: c"litestream_set_time", args: 1, direct_only: true, f: fn_set_time },
];

/// Auto-extension entry: runs for every new connection in the process. Always returns 0 (OK):
/// a connection that is not ours is left alone.
pub unsafe extern "C" fn on_new_connection(db: *mut c_void, _err: *mut *mut c_char, _api: *const c_void) -> c_int {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: SQLite calls the auto-extension with a valid, open connection handle.
        unsafe { register_if_ours(db) }
    }));
    0
}

/// Register the functions on `db`: the global ones always, the replica ones if its main
/// database is a replica.
///
/// # Safety
/// `db` must be a valid connection handle.
pub unsafe fn register_if_ours(db: *mut c_void) {
    // SAFETY: caller contract.
    unsafe { create_all(db, &GLOBAL_FUNCTIONS) };
    // SAFETY: caller contract.
    if unsafe { main_is_replica(db) } {
        // SAFETY: caller contract.
        unsafe { create_all(db, &FUNCTIONS) };
    }
}

/// Whether the main database of `db` is a replica file of this VFS, whichever VFS name routed
/// it there (`litestream`, or the default-VFS router): the file answers `litestream_version`.
///
/// # Safety
/// `db` must be a valid connection handle.
unsafe fn main_is_replica(db: *mut c_void) -> bool {
    let Some(api) = api::get() else { return false };
    let (Some(file_control), Some(free)) = (api.file_control, api.free) else { return false };
    let mut vfs: *mut c_void = null_mut();
    // SAFETY: SQLITE_FCNTL_VFS_POINTER writes one `sqlite3_vfs*` into the pointer we pass.
    let rc =
        unsafe { file_control(db.cast(), c"main".as_ptr(), vars::SQLITE_FCNTL_VFS_POINTER, (&raw mut vfs).cast()) };
    if rc == vars::SQLITE_OK && !vfs.is_null() && vfs as usize == OUR_VFS.load(Ordering::Relaxed) {
        return true;
    }
    let mut args: [*mut c_char; 3] = [null_mut(), c"litestream_version".as_ptr().cast_mut(), null_mut()];
    // SAFETY: SQLITE_FCNTL_PRAGMA takes a char*[3]; a value stored in args[0] is sqlite3_malloc'ed.
    let rc = unsafe { file_control(db.cast(), c"main".as_ptr(), vars::SQLITE_FCNTL_PRAGMA, args.as_mut_ptr().cast()) };
    if !args[0].is_null() {
        // SAFETY: allocated by SQLite for us (see above).
        unsafe { free(args[0].cast()) };
    }
    rc == vars::SQLITE_OK
}

/// # Safety
/// `db` must be a valid connection handle.
unsafe fn create_all(db: *mut c_void, functions: &[Function]) {
    let Some(create) = api::get().and_then(|a| a.create_function_v2) else { return };
    for f in functions {
        let mut flags = vars::SQLITE_UTF8;
        if f.direct_only {
            flags |= vars::SQLITE_DIRECTONLY;
        }
        #[allow(clippy::missing_transmute_annotations)] // the target type is sqlite-plugin's private FFI alias
        // SAFETY: the function pointer has the C signature SQLite calls scalar functions with
        // (context, argc, argv), all pointers; transmuting between pointer-typed signatures of
        // the same ABI is sound. Name is a static C string; no user data, no destructor.
        let rc = unsafe {
            create(
                db.cast(),
                f.name.as_ptr(),
                f.args,
                flags,
                null_mut(),
                Some(std::mem::transmute::<ScalarFn, _>(f.f)),
                None,
                None,
                None,
            )
        };
        if rc != vars::SQLITE_OK {
            tracing::warn!(function = ?f.name, rc, "cannot register SQL function");
        }
    }
}

/// Ask the connection's main file for a PRAGMA; `Ok(None)` is "no value".
///
/// # Safety
/// `ctx` must be the context of a running scalar function.
unsafe fn pragma(ctx: *mut c_void, name: &CStr, arg: Option<&CStr>) -> Result<Option<String>, String> {
    let api = api::get().ok_or("extension not initialised")?;
    let (Some(db_of), Some(file_control), Some(free)) = (api.context_db_handle, api.file_control, api.free) else {
        return Err("SQLite API incomplete".into());
    };
    // SAFETY: ctx is a live function context (caller contract).
    let db = unsafe { db_of(ctx.cast()) };
    let mut args: [*mut c_char; 3] =
        [null_mut(), name.as_ptr().cast_mut(), arg.map_or(null_mut(), |a| a.as_ptr().cast_mut())];
    // SAFETY: SQLITE_FCNTL_PRAGMA takes a char*[3] (result, name, value); SQLite or the VFS may
    // store an sqlite3_malloc'ed string in args[0], which we free below.
    // SAFETY: `db` is the live connection of the calling function; `args` is the three-slot
    // array SQLITE_FCNTL_PRAGMA expects and outlives the call.
    let rc = unsafe { file_control(db, c"main".as_ptr(), vars::SQLITE_FCNTL_PRAGMA, args.as_mut_ptr().cast()) };
    let text = (!args[0].is_null()).then(|| {
        // SAFETY: args[0] is a NUL-terminated string from sqlite3_mprintf; freed right after copying.
        let s = unsafe { CStr::from_ptr(args[0]) }.to_string_lossy().into_owned();
        // SAFETY: args[0] came from sqlite3_mprintf and is not used after this.
        unsafe { free(args[0].cast()) };
        s
    });
    match rc {
        vars::SQLITE_OK => Ok(text),
        vars::SQLITE_NOTFOUND => Err("connection not registered".into()),
        _ => Err(text.unwrap_or_else(|| "SQL logic error".into())),
    }
}

/// # Safety
/// `ctx` must be the context of a running scalar function.
unsafe fn result(ctx: *mut c_void, r: Result<Option<String>, String>, as_integer: bool) {
    let Some(api) = api::get() else { return };
    match r {
        Ok(None) => {
            if let Some(null) = api.result_null {
                // SAFETY: live context.
                unsafe { null(ctx.cast()) }
            }
        }
        Ok(Some(v)) if as_integer => {
            if let (Ok(n), Some(int64)) = (v.trim().parse::<i64>(), api.result_int64) {
                // SAFETY: live context.
                unsafe { int64(ctx.cast(), n) }
            }
        }
        Ok(Some(v)) => {
            let (Some(text), Some(malloc), Some(free)) = (api.result_text, api.malloc, api.free) else { return };
            let Ok(len) = c_int::try_from(v.len()) else { return };
            // SAFETY: we copy into memory from sqlite3_malloc and hand it over with sqlite3_free
            // as its destructor, so SQLite owns and frees it.
            unsafe {
                let p: *mut c_char = malloc(len + 1).cast();
                if p.is_null() {
                    return;
                }
                std::ptr::copy_nonoverlapping(v.as_ptr(), p.cast(), v.len());
                *p.add(v.len()) = 0;
                text(ctx.cast(), p, len, Some(free));
            }
        }
        Err(msg) => {
            if let (Some(error), Ok(len)) = (api.result_error, c_int::try_from(msg.len())) {
                // SAFETY: result_error copies `len` bytes of the message.
                unsafe { error(ctx.cast(), msg.as_ptr().cast(), len) }
            }
        }
    }
}

fn guarded(ctx: *mut c_void, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        // SAFETY: live context (we are inside the function callback).
        unsafe { result(ctx, Err("internal error (panic) in litestream function".into()), false) }
    }
}

unsafe extern "C" fn fn_version(ctx: *mut c_void, _n: c_int, _v: *mut *mut c_void) {
    // SAFETY: SQLite calls us with a live context.
    guarded(ctx, || unsafe { result(ctx, Ok(Some(env!("CARGO_PKG_VERSION").to_string())), false) })
}

unsafe extern "C" fn fn_last_error(ctx: *mut c_void, _n: c_int, _v: *mut *mut c_void) {
    // SAFETY: SQLite calls us with a live context.
    guarded(ctx, || unsafe { result(ctx, Ok(crate::last_error::get()), false) })
}

/// The text of argument `i`, `None` for NULL.
///
/// # Safety
/// `argv` must hold at least `i + 1` live values of a running function call.
unsafe fn text_arg(argv: *mut *mut c_void, i: usize) -> Option<String> {
    let api = api::get()?;
    let (value_type, value_text) = (api.value_type?, api.value_text?);
    // SAFETY: caller contract: argv[i] is a live sqlite3_value.
    let v = unsafe { *argv.add(i) };
    // SAFETY: live value.
    if unsafe { value_type(v.cast()) } == vars::SQLITE_NULL {
        return None;
    }
    // SAFETY: value_text returns a NUL-terminated UTF-8 string valid until the next call on v.
    let text = unsafe { value_text(v.cast()) };
    // SAFETY: checked non-null; copied at once.
    (!text.is_null()).then(|| unsafe { CStr::from_ptr(text.cast()) }.to_string_lossy().into_owned())
}

/// `litestream_configure(name, key, value)`: per-name configuration (see named_config).
unsafe extern "C" fn fn_configure(ctx: *mut c_void, n: c_int, argv: *mut *mut c_void) {
    guarded(ctx, || {
        if n != 3 || argv.is_null() {
            // SAFETY: live context.
            return unsafe { result(ctx, Err("litestream_configure(name, key, value)".into()), false) };
        }
        // SAFETY: argv holds 3 live values.
        let args = unsafe { (text_arg(argv, 0), text_arg(argv, 1), text_arg(argv, 2)) };
        let outcome = match args {
            (Some(name), Some(key), Some(value)) => {
                crate::named_config::configure(&name, &key, &value).map(|_| None).map_err(|e| e.message)
            }
            _ => Err("litestream_configure: name, key and value are required".into()),
        };
        // SAFETY: live context.
        unsafe { result(ctx, outcome, false) }
    })
}

unsafe extern "C" fn fn_txid(ctx: *mut c_void, _n: c_int, _v: *mut *mut c_void) {
    // SAFETY: SQLite calls us with a live context.
    guarded(ctx, || unsafe { result(ctx, pragma(ctx, c"litestream_txid", None), false) })
}

unsafe extern "C" fn fn_lag(ctx: *mut c_void, _n: c_int, _v: *mut *mut c_void) {
    // SAFETY: SQLite calls us with a live context.
    guarded(ctx, || unsafe { result(ctx, pragma(ctx, c"litestream_lag", None), true) })
}

unsafe extern "C" fn fn_time(ctx: *mut c_void, _n: c_int, _v: *mut *mut c_void) {
    // SAFETY: SQLite calls us with a live context.
    guarded(ctx, || unsafe { result(ctx, pragma(ctx, c"litestream_time", None), false) })
}

unsafe extern "C" fn fn_set_time(ctx: *mut c_void, n: c_int, argv: *mut *mut c_void) {
    guarded(ctx, || {
        let Some(api) = api::get() else { return };
        let (Some(value_type), Some(value_text)) = (api.value_type, api.value_text) else { return };
        if n != 1 || argv.is_null() {
            // SAFETY: live context.
            return unsafe { result(ctx, Err("timestamp required".into()), false) };
        }
        // SAFETY: argv holds `n` == 1 valid value pointers for the duration of the call.
        let v = unsafe { *argv };
        // SAFETY: v is a live sqlite3_value.
        if unsafe { value_type(v.cast()) } == vars::SQLITE_NULL {
            // SAFETY: live context of this call.
            return unsafe { result(ctx, Err("timestamp required".into()), false) };
        }
        // SAFETY: value_text returns a NUL-terminated UTF-8 string valid until the next call on v.
        let text = unsafe { value_text(v.cast()) };
        if text.is_null() {
            // SAFETY: live context of this call.
            return unsafe { result(ctx, Err("timestamp required".into()), false) };
        }
        // SAFETY: `text` is non-null and NUL-terminated, valid until the next call on `v`.
        let owned: CString = unsafe { CStr::from_ptr(text.cast()) }.to_owned();
        // SAFETY: live context. Success is NULL, as in Go; the PRAGMA's echo is dropped.
        unsafe { result(ctx, pragma(ctx, c"litestream_time", Some(&owned)).map(|_| None), false) }
    })
}
