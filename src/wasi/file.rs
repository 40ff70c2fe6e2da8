//! `file://` replicas inside the component: std::fs on a directory the host preopened (the
//! host maps the replica directory at the same path, read-only). Keys are absolute paths;
//! `created_at` is the file mtime, which Litestream sets to the LTX header timestamp.

use crate::error::{Error, Result};
use crate::storage::{ObjectInfo, RangeRequest, Storage, UnixNanos};
use bytes::Bytes;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct FileStorage {
    root: String,
}

impl FileStorage {
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }
}

fn nanos(t: SystemTime) -> UnixNanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map(|n| -n).unwrap_or(i64::MIN),
    }
}

fn io_error(op: &str, path: &str, e: &io::Error) -> Error {
    let hint = if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(76) {
        " (is the directory preopened by the host?)"
    } else {
        ""
    };
    Error::network(format!("{op} {path}: {e}{hint}"))
}

impl Storage for FileStorage {
    fn list(&self, prefix: &str, _with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let dir = if prefix.len() > 1 { prefix.trim_end_matches('/') } else { prefix };
        let entries = match std::fs::read_dir(dir) {
            Ok(it) => it,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list", dir, &e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", dir, &e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let key = format!("{}/{name}", dir.trim_end_matches('/'));
            let meta = match std::fs::metadata(&key) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("stat", &key, &e)),
            };
            if !meta.is_file() {
                continue;
            }
            let created_at = meta.modified().map(nanos).map_err(|e| io_error("stat", &key, &e))?;
            out.push(ObjectInfo { key, size: meta.len(), created_at });
        }
        Ok(out)
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        requests.iter().map(|r| read_range(&r.key, r.range.start, r.range.end)).collect()
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root)
    }
}

fn read_range(path: &str, start: u64, end: u64) -> Result<Bytes> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::not_found(format!("object not found: {path}")));
        }
        Err(e) => return Err(io_error("open", path, &e)),
    };
    let len = file.metadata().map_err(|e| io_error("stat", path, &e))?.len();
    let end = end.min(len);
    if start >= end {
        return Ok(Bytes::new());
    }
    let want = usize::try_from(end - start).map_err(|_| Error::internal(format!("range too large: {path}")))?;
    file.seek(SeekFrom::Start(start)).map_err(|e| io_error("seek", path, &e))?;
    let mut buf = Vec::with_capacity(want);
    file.take(want as u64).read_to_end(&mut buf).map_err(|e| io_error("read", path, &e))?;
    Ok(Bytes::from(buf))
}
