//! The cause of the last failed open, or of the last write refused by a conflict, for the
//! application: SQLite itself only reports "unable to open database file" or "attempt to write
//! a readonly database". Kept process-wide (`litestream_last_error()` may be asked on
//! another connection, even another thread, than the one that failed) and sent to
//! `sqlite3_log`, so hosts with SQLITE_CONFIG_LOG see it too.

use crate::api;
use parking_lot::Mutex;
use std::ffi::CString;

static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Remember the outcome of a main-database open: a failure replaces the message, a success
/// clears it.
pub fn record(name: &str, outcome: Result<(), &ltxvfs::Error>) {
    match outcome {
        Ok(()) => *LAST.lock() = None,
        Err(e) => {
            let msg = format!("litestream: cannot open {name}: {e}");
            log_to_sqlite(sqlite_plugin::vars::SQLITE_CANTOPEN, &msg);
            *LAST.lock() = Some(msg);
        }
    }
}

/// Remember why a write transaction was refused (a conflict with the remote).
pub fn record_write_refused(name: &str, error: &ltxvfs::Error) {
    let msg = format!("litestream: cannot write {name}: {error}");
    log_to_sqlite(sqlite_plugin::vars::SQLITE_READONLY, &msg);
    *LAST.lock() = Some(msg);
}

/// The message of the last failed open or refused write.
pub fn get() -> Option<String> {
    LAST.lock().clone()
}

fn log_to_sqlite(code: std::ffi::c_int, msg: &str) {
    let (Some(api), Ok(text)) = (api::get(), CString::new(msg.replace('\0', " "))) else { return };
    if let Some(log) = api.log {
        // SAFETY: sqlite3_log is printf-like; "%s" with one NUL-terminated string argument.
        unsafe { log(code, c"%s".as_ptr(), text.as_ptr()) }
    }
}
