//! The cause of the last failed open, for the application: SQLite itself only reports
//! "unable to open database file". Kept process-wide (`litestream_last_error()` may be asked on
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
            log_to_sqlite(&msg);
            *LAST.lock() = Some(msg);
        }
    }
}

/// The message of the last failed open, if the latest open failed.
pub fn get() -> Option<String> {
    LAST.lock().clone()
}

fn log_to_sqlite(msg: &str) {
    let (Some(api), Ok(text)) = (api::get(), CString::new(msg.replace('\0', " "))) else { return };
    if let Some(log) = api.log {
        // SAFETY: sqlite3_log is printf-like; "%s" with one NUL-terminated string argument.
        unsafe { log(sqlite_plugin::vars::SQLITE_CANTOPEN, c"%s".as_ptr(), text.as_ptr()) }
    }
}
