//! The SQL functions of the native extension, on the component's connections:
//! `litestream_txid()`, `litestream_lag()`, `litestream_time()`, `litestream_set_time(ts)` and
//! `litestream_version()`. Each sends `SQLITE_FCNTL_PRAGMA` to the main file, so functions and
//! PRAGMAs share one implementation (`Connection::pragma`) and errors keep their message.

use rusqlite::ffi;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::Value;
use rusqlite::{Connection, Error};
use std::ffi::{CStr, CString, c_char};

fn user_error(msg: String) -> Error {
    Error::UserFunctionError(msg.into())
}

/// Ask the connection's main file for a PRAGMA (`Ok(None)`: no value).
fn pragma(ctx: &Context<'_>, name: &CStr, arg: Option<&str>) -> rusqlite::Result<Option<String>> {
    // SAFETY: the connection is only used for one file-control call, inside this function call.
    let conn = unsafe { ctx.get_connection()? };
    let arg = arg.map(CString::new).transpose().map_err(|_| user_error("argument contains NUL".into()))?;
    let mut args: [*mut c_char; 3] = [
        std::ptr::null_mut(),
        name.as_ptr().cast_mut(),
        arg.as_ref().map_or(std::ptr::null_mut(), |a| a.as_ptr().cast_mut()),
    ];
    // SAFETY: SQLITE_FCNTL_PRAGMA takes a char*[3] (result, name, value); the VFS may store an
    // sqlite3_malloc'ed string in args[0], freed below after copying.
    let rc = unsafe {
        ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), ffi::SQLITE_FCNTL_PRAGMA, args.as_mut_ptr().cast())
    };
    let text = (!args[0].is_null()).then(|| {
        // SAFETY: a NUL-terminated string from sqlite3_mprintf.
        let s = unsafe { CStr::from_ptr(args[0]) }.to_string_lossy().into_owned();
        // SAFETY: allocated by SQLite for us and no longer used after the copy above.
        unsafe { ffi::sqlite3_free(args[0].cast()) };
        s
    });
    match rc {
        ffi::SQLITE_OK => Ok(text),
        ffi::SQLITE_NOTFOUND => Err(user_error("connection not registered".into())),
        _ => Err(user_error(text.unwrap_or_else(|| "SQL logic error".into()))),
    }
}

fn text(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::Text)
}

/// Register the functions on one connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("litestream_txid", 0, flags, |ctx| pragma(ctx, c"litestream_txid", None).map(text))?;
    conn.create_scalar_function("litestream_time", 0, flags, |ctx| pragma(ctx, c"litestream_time", None).map(text))?;
    conn.create_scalar_function("litestream_lag", 0, flags, |ctx| {
        Ok(match pragma(ctx, c"litestream_lag", None)? {
            Some(v) => v.trim().parse::<i64>().map_or(Value::Null, Value::Integer),
            None => Value::Null,
        })
    })?;
    conn.create_scalar_function("litestream_set_time", 1, flags | FunctionFlags::SQLITE_DIRECTONLY, |ctx| {
        let ts: Option<String> = ctx.get(0)?;
        let ts = ts.ok_or_else(|| user_error("timestamp required".into()))?;
        // Success is NULL, as in Go and the native extension.
        pragma(ctx, c"litestream_time", Some(&ts)).map(|_| Value::Null)
    })?;
    conn.create_scalar_function("litestream_version", 0, flags | FunctionFlags::SQLITE_DETERMINISTIC, |_| {
        Ok(Value::Text(crate::VERSION.to_string()))
    })?;
    Ok(())
}
