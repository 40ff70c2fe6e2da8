//! `file://` replicas: plain directories read with std::fs (REPLICA.md §1–§2).
//!
//! A storage *backend*, not core logic: the core never calls it. It lives in this crate because
//! both shells use it unchanged — the native extension, and the component, where std::fs reaches
//! the directory the host preopened.
//!
//! Keys are absolute paths (the core's [`crate::layout::Layout`] builds them from the URL
//! path). `created_at` is the file mtime, which Litestream sets to the LTX header timestamp
//! after the upload, so `with_metadata` makes no difference here.
//!
//! Writes ([`Storage::put`]) never leave a partial file under the final name: the bytes go to a
//! temporary file in the same directory, are fsynced, and then appear at once — by `rename`
//! for [`PutMode::Overwrite`], by `hard_link` for [`PutMode::Create`] (which fails if the name
//! exists, atomically, so two racing writers cannot both win).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{ObjectInfo, PutMode, RangeRequest, Storage, UnixNanos, ltx_timestamp_ms};
use bytes::Bytes;

/// A replica in a local directory.
#[derive(Debug, Clone)]
pub struct FileStorage {
    root: String,
}

impl FileStorage {
    /// `root` is only used for [`Storage::describe`]; keys are full paths.
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }
}

/// Nanoseconds since the epoch of a system time (negative before 1970, saturating).
fn to_unix_nanos(t: SystemTime) -> UnixNanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map(|n| -n).unwrap_or(i64::MIN),
    }
}

fn io_error(op: &str, path: &str, e: &io::Error) -> Error {
    // In the component, a path outside the preopened directories fails like this.
    let hint = if cfg!(target_family = "wasm")
        && (e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(76))
    {
        " (is the directory preopened by the host?)"
    } else {
        ""
    };
    Error::network(format!("{op} {path}: {e}{hint}"))
}

impl FileStorage {
    /// The files of one directory whose full path sorts after `after` (names are compared
    /// before any stat, so a listing from a position stats only what it returns).
    fn list_dir(&self, prefix: &str, after: &str) -> Result<Vec<ObjectInfo>> {
        let dir = if prefix.len() > 1 { prefix.trim_end_matches('/') } else { prefix };
        let dir = if dir.is_empty() { "." } else { dir };
        let entries = match std::fs::read_dir(dir) {
            Ok(it) => it,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list", dir, &e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", dir, &e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: cannot be an LTX file name
            };
            let key = if dir.ends_with('/') { format!("{dir}{name}") } else { format!("{dir}/{name}") };
            if key.as_str() <= after {
                continue;
            }
            // Follow symlinks; a file deleted since read_dir (retention racing us) is skipped.
            let meta = match std::fs::metadata(&key) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("stat", &key, &e)),
            };
            if !meta.is_file() {
                continue;
            }
            let created_at = meta.modified().map(to_unix_nanos).map_err(|e| io_error("stat", &key, &e))?;
            out.push(ObjectInfo { key, size: meta.len(), created_at });
        }
        Ok(out)
    }
}

impl Storage for FileStorage {
    fn list(&self, prefix: &str, _with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.list_dir(prefix, "")
    }

    fn list_after(&self, prefix: &str, after_key: &str, _with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.list_dir(prefix, after_key)
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        requests.iter().map(|r| read_range(&r.key, r.range.start, r.range.end)).collect()
    }

    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let mtime = ltx_timestamp_ms(key, &data)
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        write_atomically(Path::new(key), &data, mode, mtime)
    }

    fn supports_conditional_create(&self) -> bool {
        true
    }

    /// A stat: no file is opened.
    fn exists(&self, key: &str) -> Result<bool> {
        match std::fs::metadata(key) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("stat", key, &e)),
        }
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root)
    }
}

/// Distinguishes temporary files of concurrent puts within one process (the pid and the clock
/// separate processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary file next to `path` (same directory, so rename/link stay on one file system).
fn create_temp_beside(path: &Path) -> Result<(PathBuf, File)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("object");
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let tmp = dir.join(format!(".{name}.{}-{n}-{nanos}.tmp", std::process::id()));
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("create", &tmp.display().to_string(), &e)),
        }
    }
    Err(Error::internal(format!("cannot pick a temporary name beside {}", path.display())))
}

/// Write `data` to `path` so that readers see either nothing (or the old object) or all of it.
/// `mtime` becomes the file's modification time (the created-at of REPLICA.md §2).
fn write_atomically(path: &Path, data: &[u8], mode: PutMode, mtime: Option<SystemTime>) -> Result<()> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create directory", &dir.display().to_string(), &e))?;
    }
    let (tmp, mut file) = create_temp_beside(path)?;
    let result = (|| {
        file.write_all(data).map_err(|e| io_error("write", &shown, &e))?;
        if let Some(t) = mtime {
            file.set_modified(t).map_err(|e| io_error("set mtime of", &shown, &e))?;
        }
        file.sync_all().map_err(|e| io_error("fsync", &shown, &e))?;
        drop(file);
        match mode {
            PutMode::Overwrite => std::fs::rename(&tmp, path).map_err(|e| io_error("rename into", &shown, &e)),
            PutMode::Create => match std::fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(Error::new(ErrorKind::AlreadyExists, format!("object already exists: {shown}")))
                }
                Err(e) => Err(io_error("link into", &shown, &e)),
            },
        }
    })();
    // After a rename the temporary name is gone already; otherwise it is garbage now.
    let _ = std::fs::remove_file(&tmp);
    result?;
    sync_parent(path);
    Ok(())
}

/// Make the new directory entry durable (best effort: not every platform can open directories).
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Read `[start, end)` of a file, clamped to its end.
fn read_range(path: &str, start: u64, end: u64) -> Result<Bytes> {
    let mut file = match File::open(Path::new(path)) {
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
    // The file is opened per call, so seeking it is private to this read (portable to wasip2,
    // which has no positioned reads in std).
    file.seek(SeekFrom::Start(start)).map_err(|e| io_error("seek", path, &e))?;
    let mut buf = Vec::with_capacity(want);
    file.take(want as u64).read_to_end(&mut buf).map_err(|e| io_error("read", path, &e))?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::time::Duration;

    fn req(key: &str, start: u64, end: u64) -> RangeRequest {
        RangeRequest { key: key.to_string(), range: start..end }
    }

    fn set_mtime(path: &Path, nanos: i64) {
        let t = UNIX_EPOCH + Duration::from_nanos(nanos as u64);
        File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn list_returns_regular_files_with_size_and_mtime() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap().to_string();
        let dir = tmp.path().join("ltx/0");
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("0000000000000001-0000000000000001.ltx");
        let b = dir.join("0000000000000002-0000000000000002.ltx");
        std::fs::write(&a, b"hello").unwrap();
        std::fs::write(&b, vec![7u8; 1000]).unwrap();
        std::fs::create_dir(dir.join("subdir")).unwrap();
        // Header timestamp 2026-11-22T06:16:31.755Z.
        set_mtime(&a, 1_795_328_191_755_000_000);
        set_mtime(&b, 1_795_328_192_000_000_000);

        let s = FileStorage::new(root.clone());
        let prefix = format!("{root}/ltx/0/");
        for with_metadata in [false, true] {
            let mut got = s.list(&prefix, with_metadata).unwrap();
            got.sort_by(|x, y| x.key.cmp(&y.key));
            assert_eq!(
                got,
                vec![
                    ObjectInfo {
                        key: format!("{root}/ltx/0/0000000000000001-0000000000000001.ltx"),
                        size: 5,
                        created_at: 1_795_328_191_755_000_000,
                    },
                    ObjectInfo {
                        key: format!("{root}/ltx/0/0000000000000002-0000000000000002.ltx"),
                        size: 1000,
                        created_at: 1_795_328_192_000_000_000,
                    },
                ]
            );
        }
        // Without the trailing slash the keys are the same.
        let got = s.list(&format!("{root}/ltx/0"), false).unwrap();
        assert!(got.iter().all(|o| o.key.starts_with(&prefix)), "{got:?}");
        assert_eq!(s.describe(), format!("file://{root}"));
    }

    #[test]
    fn list_of_missing_directory_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let s = FileStorage::new("/x");
        let missing = format!("{}/nope/ltx/9/", tmp.path().display());
        assert_eq!(s.list(&missing, false).unwrap(), vec![]);
    }

    #[test]
    fn list_of_a_file_is_a_network_error_with_path() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("plain");
        std::fs::write(&f, b"x").unwrap();
        let prefix = format!("{}/", f.display());
        let e = FileStorage::new("/x").list(&prefix, false).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Network);
        assert!(e.message.contains(&f.display().to_string()), "{e:?}");
        assert!(e.message.contains("Not a directory"), "{e:?}");
    }

    #[test]
    fn get_ranges_reads_in_order_and_clamps() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.ltx");
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        std::fs::write(&p, &data).unwrap();
        let k = p.to_str().unwrap();
        let missing = format!("{}/missing.ltx", tmp.path().display());
        let got = FileStorage::new("/x").get_ranges(&[
            req(k, 100, 200),
            req(k, 0, 10),
            req(k, 9_990, 20_000),
            req(k, 20_000, 20_100),
            req(&missing, 0, 10),
            req(k, 5, 5),
            req(k, 0, u64::MAX),
        ]);
        assert_eq!(got.len(), 7);
        assert_eq!(got[0].as_ref().unwrap().as_ref(), &data[100..200]);
        assert_eq!(got[1].as_ref().unwrap().as_ref(), &data[0..10]);
        assert_eq!(got[2].as_ref().unwrap().as_ref(), &data[9_990..]);
        assert!(got[3].as_ref().unwrap().is_empty());
        let e = got[4].as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, format!("object not found: {missing}"));
        assert!(got[5].as_ref().unwrap().is_empty());
        assert_eq!(got[6].as_ref().unwrap().as_ref(), &data[..]);
    }

    #[test]
    fn put_creates_parents_overwrites_and_refuses_a_second_create() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap().to_string();
        let s = FileStorage::new(root.clone());
        assert!(s.supports_conditional_create());
        let key = format!("{root}/db/ltx/0/0000000000000001-0000000000000001.ltx");
        s.put(&key, Bytes::from_static(b"first"), PutMode::Create).unwrap();
        let e = s.put(&key, Bytes::from_static(b"second"), PutMode::Create).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e:?}");
        assert!(e.message.contains(&key), "{e:?}");
        assert_eq!(std::fs::read(&key).unwrap(), b"first", "the loser changes nothing");
        s.put(&key, Bytes::from_static(b"third"), PutMode::Overwrite).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"third");
        // No temporary file is left behind, and the listing shows exactly the object.
        let dir = format!("{root}/db/ltx/0");
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, vec!["0000000000000001-0000000000000001.ltx".to_string()]);
        let listed = s.list(&format!("{dir}/"), false).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].size, 5);
    }

    #[test]
    fn put_of_an_ltx_file_sets_the_mtime_to_its_header_timestamp() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap().to_string();
        let s = FileStorage::new(root.clone());
        let mut header = test_header();
        header.timestamp_ms = 1_795_328_191_755;
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        let key = format!("{root}/ltx/0/0000000000000001-0000000000000001.ltx");
        s.put(&key, Bytes::from(bytes), PutMode::Create).unwrap();
        let listed = s.list(&format!("{root}/ltx/0/"), false).unwrap();
        assert_eq!(listed[0].created_at, 1_795_328_191_755_000_000);
    }

    fn test_header() -> crate::ltx::Header {
        crate::ltx::Header {
            flags: 0,
            page_size: 4096,
            commit: 1,
            min_txid: 1,
            max_txid: 1,
            timestamp_ms: 0,
            pre_apply_checksum: 0,
            wal_offset: 0,
            wal_size: 0,
            wal_salt1: 0,
            wal_salt2: 0,
            node_id: 0,
        }
    }

    #[test]
    fn concurrent_creates_have_exactly_one_winner() {
        let tmp = tempfile::tempdir().unwrap();
        let key = format!("{}/race/0000000000000002-0000000000000002.ltx", tmp.path().display());
        let s = std::sync::Arc::new(FileStorage::new("/x"));
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let (s, key) = (s.clone(), key.clone());
                std::thread::spawn(move || s.put(&key, Bytes::from(vec![i; 1000]), PutMode::Create))
            })
            .collect();
        let results: Vec<Result<()>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.kind == ErrorKind::AlreadyExists));
        let body = std::fs::read(&key).unwrap();
        assert_eq!(body.len(), 1000);
        assert!(body.iter().all(|&b| b == body[0]), "one writer's bytes, whole");
    }

    #[test]
    fn pre_epoch_mtime_is_negative() {
        assert_eq!(to_unix_nanos(UNIX_EPOCH - Duration::from_secs(1)), -1_000_000_000);
        assert_eq!(to_unix_nanos(UNIX_EPOCH + Duration::from_nanos(5)), 5);
    }
}
