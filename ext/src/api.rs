//! The `sqlite3_api_routines` table SQLite hands a loadable extension. Every call into SQLite
//! goes through it (the host process's SQLite may be linked statically, as in Python).

use sqlite_plugin::sqlite3_api_routines;
use std::sync::OnceLock;

struct ApiPtr(*const sqlite3_api_routines);

// SAFETY: the routine table is a static, immutable struct inside the host's SQLite that lives
// for the whole process; sharing a pointer to it across threads is what SQLite intends.
unsafe impl Send for ApiPtr {}
// SAFETY: see above; the table is never written after SQLite initialises it.
unsafe impl Sync for ApiPtr {}

static API: OnceLock<ApiPtr> = OnceLock::new();

/// Remember the table (first load wins; every load of one process gets the same table).
pub fn set(p: *const sqlite3_api_routines) {
    if !p.is_null() {
        let _ = API.set(ApiPtr(p));
    }
}

/// The table, once an extension init ran.
pub fn get() -> Option<&'static sqlite3_api_routines> {
    // SAFETY: the pointer came from SQLite's extension init, is non-null (checked in `set`) and
    // points at a table that lives for the rest of the process.
    API.get().and_then(|p| unsafe { p.0.as_ref() })
}
