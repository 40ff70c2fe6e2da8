//! The component's exports: the typed `replica` interface and the JSON API on
//! `wasi:http/incoming-handler`.
//!
//! JSON API (the replica is `LITESTREAM_REPLICA_URL`, or `"replica"` in a query body; options
//! from `LTXVFS_CACHE_SIZE`, `LTXVFS_POLL_INTERVAL_MS`, `LTXVFS_OPEN_TIMEOUT_MS`):
//!
//! * `POST /query` with `{"sql": "...", "params": [...], "time": "...", "replica": "..."}`
//!   (only `sql` required) → `200 {"columns": [...], "rows": [[...]], "txid": "..."}`.
//! * `GET /status` → `200 {"replica", "txid", "lag", "time"}`.
//! * errors → `{"error": {"code": <SQLite result code>, "message": "..."}}` with 400 (the
//!   request or the SQL), 404 (no such route), 502 (the replica cannot be read) or 504 (the
//!   request's deadline passed).
//!
//! A request's deadline: the `ltxvfs-deadline-ms` header (`ltxvfs-host serve` sets it), see
//! [`super::deadline`]. Without it a request is bounded only by the storage timeouts.
//!
//! Values: `null`, integers and reals as JSON numbers, text as strings, blobs as
//! `{"base64": "..."}`, non-finite reals as `{"real": "inf" | "-inf" | "nan"}`. Parameters use the
//! same forms (booleans become 0/1).

use super::exports::ltxvfs::replica::replica as wit;
use super::exports::wasi::http::incoming_handler;
use super::host::env;
use super::sqlite::{Database, OpenOptions, SqlError, SqlResult, SqlValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};
use std::cell::RefCell;
use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::streams::StreamError;

pub struct Component;

// ------------------------------------------------------------------ typed interface

impl From<SqlError> for wit::Error {
    fn from(e: SqlError) -> Self {
        wit::Error { code: e.code, message: e.message }
    }
}

fn to_wit(v: SqlValue) -> wit::Value {
    match v {
        SqlValue::Null => wit::Value::Null,
        SqlValue::Integer(i) => wit::Value::Integer(i),
        SqlValue::Real(r) => wit::Value::Real(r),
        SqlValue::Text(s) => wit::Value::Text(s),
        SqlValue::Blob(b) => wit::Value::Blob(b),
    }
}

fn from_wit(v: wit::Value) -> SqlValue {
    match v {
        wit::Value::Null => SqlValue::Null,
        wit::Value::Integer(i) => SqlValue::Integer(i),
        wit::Value::Real(r) => SqlValue::Real(r),
        wit::Value::Text(s) => SqlValue::Text(s),
        wit::Value::Blob(b) => SqlValue::Blob(b),
    }
}

impl wit::Guest for Component {
    type Database = Database;

    fn open(url: String, options: wit::OpenOptions) -> Result<wit::Database, wit::Error> {
        let opts = OpenOptions {
            cache_size: options.cache_size,
            poll_interval_ms: options.poll_interval_ms,
            open_timeout_ms: options.open_timeout_ms,
            time: options.time,
        };
        Ok(wit::Database::new(Database::open(&url, &opts)?))
    }
}

impl wit::GuestDatabase for Database {
    fn query(&self, sql: String, params: Vec<wit::Value>) -> Result<wit::Rows, wit::Error> {
        let rows = Database::query(self, &sql, params.into_iter().map(from_wit).collect())?;
        Ok(wit::Rows {
            columns: rows.columns,
            rows: rows.rows.into_iter().map(|r| r.into_iter().map(to_wit).collect()).collect(),
        })
    }

    fn status(&self) -> Result<wit::Status, wit::Error> {
        let s = Database::status(self)?;
        Ok(wit::Status { replica: s.replica, txid: s.txid, lag_seconds: s.lag_seconds, time: s.time })
    }

    fn set_time(&self, time: String) -> Result<(), wit::Error> {
        Ok(Database::set_time(self, &time)?)
    }
}

// ------------------------------------------------------------------ JSON values

pub fn value_to_json(v: SqlValue) -> Json {
    match v {
        SqlValue::Null => Json::Null,
        SqlValue::Integer(i) => Json::from(i),
        SqlValue::Real(r) => match serde_json::Number::from_f64(r) {
            Some(n) => Json::Number(n),
            None => {
                let s = if r.is_nan() {
                    "nan"
                } else if r > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                json!({ "real": s })
            }
        },
        SqlValue::Text(s) => Json::String(s),
        SqlValue::Blob(b) => json!({ "base64": BASE64.encode(b) }),
    }
}

pub fn json_to_value(j: &Json) -> SqlResult<SqlValue> {
    Ok(match j {
        Json::Null => SqlValue::Null,
        Json::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => SqlValue::Text(s.clone()),
        Json::Object(o) if o.len() == 1 && o.contains_key("base64") => {
            let s = o.get("base64").and_then(Json::as_str).ok_or_else(|| SqlError::other("base64 must be a string"))?;
            SqlValue::Blob(BASE64.decode(s).map_err(|e| SqlError::other(format!("invalid base64 parameter: {e}")))?)
        }
        Json::Object(o) if o.len() == 1 && o.contains_key("real") => match o.get("real").and_then(Json::as_str) {
            Some("inf") => SqlValue::Real(f64::INFINITY),
            Some("-inf") => SqlValue::Real(f64::NEG_INFINITY),
            Some("nan") => SqlValue::Real(f64::NAN),
            _ => return Err(SqlError::other("\"real\" must be \"inf\", \"-inf\" or \"nan\"")),
        },
        other => return Err(SqlError::other(format!("unsupported parameter: {other}"))),
    })
}

fn error_json(e: &SqlError) -> Json {
    json!({ "error": { "code": e.code, "message": e.message } })
}

/// HTTP status of an error: 504 once the request's deadline has passed, 502 when the replica
/// cannot be read, 400 otherwise.
fn error_status(e: &SqlError) -> u16 {
    if super::deadline::passed() {
        return 504;
    }
    match e.code & 0xff {
        10 | 11 | 14 => 502, // SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_CANTOPEN
        _ => 400,
    }
}

/// An error that happened after the deadline says so (SQLite's own text is only
/// "interrupted" for a statement the progress handler stopped).
fn with_deadline_note(mut e: SqlError) -> SqlError {
    if let Some(note) = super::deadline::note() {
        if !e.message.contains("request deadline") {
            e.message = format!("{}: {note}", e.message);
        }
    }
    e
}

/// The budget a request carries in its deadline header, if any.
fn request_budget(request: &IncomingRequest) -> Option<std::time::Duration> {
    let values = request.headers().get(crate::request_budget::DEADLINE_HEADER);
    values.first().and_then(|v| crate::request_budget::parse_header(v))
}

// ------------------------------------------------------------------ incoming handler

thread_local! {
    /// Open databases by replica URL: instances are reused, so cache and poller stay warm.
    static DATABASES: RefCell<Vec<(String, Database)>> = const { RefCell::new(Vec::new()) };
}

fn env_u64(key: &str) -> SqlResult<Option<u64>> {
    env(key).map(|v| v.trim().parse::<u64>().map_err(|_| SqlError::other(format!("invalid {key}: {v:?}")))).transpose()
}

/// Run `f` with the database of `replica` (default: `LITESTREAM_REPLICA_URL`), opening it once.
fn with_database<T>(replica: Option<&str>, f: impl FnOnce(&Database) -> SqlResult<T>) -> SqlResult<T> {
    let url = match replica {
        Some(u) => u.to_string(),
        None => env("LITESTREAM_REPLICA_URL").ok_or_else(|| {
            SqlError::other("no replica: set LITESTREAM_REPLICA_URL or give \"replica\" in the request")
        })?,
    };
    let known = DATABASES.with(|d| d.borrow().iter().position(|(u, _)| *u == url));
    if known.is_none() {
        let opts = OpenOptions {
            cache_size: env_u64("LTXVFS_CACHE_SIZE")?,
            poll_interval_ms: env_u64("LTXVFS_POLL_INTERVAL_MS")?,
            open_timeout_ms: env_u64("LTXVFS_OPEN_TIMEOUT_MS")?,
            time: None,
        };
        let db = Database::open(&url, &opts)?;
        DATABASES.with(|d| d.borrow_mut().push((url.clone(), db)));
    }
    DATABASES.with(|d| {
        let dbs = d.borrow();
        let (_, db) = dbs.iter().find(|(u, _)| *u == url).ok_or_else(|| SqlError::other("database vanished"))?;
        f(db)
    })
}

fn run_query(body: &[u8]) -> SqlResult<Json> {
    let req: Json =
        serde_json::from_slice(body).map_err(|e| SqlError::other(format!("request body is not JSON: {e}")))?;
    let obj = req.as_object().ok_or_else(|| SqlError::other("request body must be a JSON object"))?;
    let sql = obj.get("sql").and_then(Json::as_str).ok_or_else(|| SqlError::other("\"sql\" (a string) is required"))?;
    let params = match obj.get("params") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(a)) => a.iter().map(json_to_value).collect::<SqlResult<Vec<_>>>()?,
        Some(_) => return Err(SqlError::other("\"params\" must be an array")),
    };
    let time = obj.get("time").and_then(Json::as_str);
    let replica = obj.get("replica").and_then(Json::as_str);
    with_database(replica, |db| {
        // Every request starts at the latest state, whatever an earlier one set.
        db.set_time(time.unwrap_or("latest"))?;
        let result = db.query(sql, params);
        let txid = db.txid();
        if time.is_some() {
            db.set_time("latest")?;
        }
        let rows = result?;
        let mut out = Map::new();
        out.insert("columns".into(), json!(rows.columns));
        out.insert(
            "rows".into(),
            Json::Array(
                rows.rows.into_iter().map(|r| Json::Array(r.into_iter().map(value_to_json).collect())).collect(),
            ),
        );
        out.insert("txid".into(), Json::String(txid?));
        Ok(Json::Object(out))
    })
}

fn run_status() -> SqlResult<Json> {
    with_database(None, |db| {
        let s = db.status()?;
        Ok(json!({ "replica": s.replica, "txid": s.txid, "lag": s.lag_seconds, "time": s.time }))
    })
}

const MAX_REQUEST_BODY: usize = 1024 * 1024;

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|_| "request body already taken".to_string())?;
    let mut out = Vec::new();
    {
        let stream = body.stream().map_err(|_| "request body stream already taken".to_string())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    out.extend_from_slice(&chunk);
                    if out.len() > MAX_REQUEST_BODY {
                        return Err(format!("request body larger than {MAX_REQUEST_BODY} bytes"));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
    }
    drop(wasip2::http::types::IncomingBody::finish(body));
    Ok(out)
}

fn respond(out: ResponseOutparam, status: u16, body: &Json) {
    let bytes = body.to_string().into_bytes();
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"application/json".to_vec()),
        ("content-length".to_string(), bytes.len().to_string().into_bytes()),
    ])
    .unwrap_or_else(|_| Fields::new());
    let resp = OutgoingResponse::new(headers);
    let _ = resp.set_status_code(status);
    let Ok(body) = resp.body() else {
        ResponseOutparam::set(out, Ok(resp));
        return;
    };
    ResponseOutparam::set(out, Ok(resp));
    if let Ok(stream) = body.write() {
        for chunk in bytes.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return; // the client went away
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}

impl incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let _deadline = super::deadline::Scope::enter(request_budget(&request));
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let path = path.split('?').next().unwrap_or("/").to_string();
        let method = request.method();
        let outcome = match (&method, path.as_str()) {
            (Method::Post, "/query") => match read_body(&request) {
                Ok(body) => run_query(&body),
                Err(e) => Err(SqlError::other(format!("cannot read the request body: {e}"))),
            },
            (Method::Get, "/status") => run_status(),
            (Method::Get, "/") => Ok(json!({
                "service": "ltxvfs",
                "routes": ["POST /query {\"sql\", \"params\", \"time\", \"replica\"}", "GET /status"],
            })),
            _ => {
                let e = SqlError::other(format!("no route {method:?} {path}: use POST /query or GET /status"));
                respond(response_out, 404, &error_json(&e));
                return;
            }
        };
        match outcome {
            Ok(body) => respond(response_out, 200, &body),
            Err(e) => {
                let e = with_deadline_note(e);
                respond(response_out, error_status(&e), &error_json(&e))
            }
        }
    }
}
