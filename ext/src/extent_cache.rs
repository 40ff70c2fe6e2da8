//! The persistent page cache on local disk (URI `cache_dir`, env `LITESTREAM_CACHE_DIR`).
//!
//! Layout: `<dir>/<FNV-1a-64 of the replica URL>/<escaped object key>.data` mirrors the remote
//! LTX file at the same offsets (a sparse file), and `<…>.ranges` is an append-only log of the
//! byte ranges present (16-byte records: start, end as big-endian u64). Data is written before
//! its range is logged, and a torn trailing record is ignored, so a reader never trusts bytes
//! that were not written. LTX files are immutable: entries only go when the file is deleted
//! from the replica (`retain`).

use bytes::Bytes;
use ltxvfs::extent_store::ExtentStore;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Merged, non-overlapping ranges: start → end.
#[derive(Default)]
struct RangeSet(BTreeMap<u64, u64>);

impl RangeSet {
    fn covers(&self, r: &Range<u64>) -> bool {
        self.0.range(..=r.start).next_back().is_some_and(|(_, &end)| end >= r.end)
    }
    fn insert(&mut self, mut r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        let touching: Vec<(u64, u64)> =
            self.0.range(..=r.end).filter(|&(&s, &e)| e >= r.start && s <= r.end).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in touching {
            self.0.remove(&s);
            r.start = r.start.min(s);
            r.end = r.end.max(e);
        }
        self.0.insert(r.start, r.end);
    }
}

struct Entry {
    data: File,
    log: File,
    ranges: RangeSet,
}

pub struct DiskExtentCache {
    dir: PathBuf,
    open: Mutex<HashMap<String, Entry>>,
}

fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// A reversible file name for an object key.
fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(name: &str) -> String {
    name.replace("%2F", "/").replace("%25", "%")
}

impl DiskExtentCache {
    /// The cache for one replica (identified by its URL) under `root`.
    pub fn new(root: &Path, replica_url: &str) -> std::io::Result<Self> {
        let dir = root.join(format!("{:016x}", fnv64(replica_url)));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, open: Mutex::new(HashMap::new()) })
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        let base = escape(key);
        (self.dir.join(format!("{base}.data")), self.dir.join(format!("{base}.ranges")))
    }

    fn load(&self, key: &str) -> std::io::Result<Entry> {
        let (data_path, log_path) = self.paths(key);
        let data = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&data_path)?;
        let log = OpenOptions::new().read(true).append(true).create(true).open(&log_path)?;
        let raw = std::fs::read(&log_path)?;
        let mut ranges = RangeSet::default();
        for rec in raw.chunks_exact(16) {
            let start = u64::from_be_bytes(rec[..8].try_into().unwrap_or_default());
            let end = u64::from_be_bytes(rec[8..].try_into().unwrap_or_default());
            ranges.insert(start..end);
        }
        Ok(Entry { data, log, ranges })
    }

    fn with_entry<T>(&self, key: &str, f: impl FnOnce(&mut Entry) -> std::io::Result<T>) -> Option<T> {
        let mut open = self.open.lock();
        if !open.contains_key(key) {
            match self.load(key) {
                Ok(e) => {
                    open.insert(key.to_string(), e);
                }
                Err(e) => {
                    tracing::debug!(key, error = %e, "disk cache unavailable for this file");
                    return None;
                }
            }
        }
        let entry = open.get_mut(key)?;
        match f(entry) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(key, error = %e, "disk cache I/O failed");
                None
            }
        }
    }
}

impl ExtentStore for DiskExtentCache {
    fn get(&self, key: &str, range: Range<u64>) -> Option<Bytes> {
        if range.start >= range.end {
            return None;
        }
        self.with_entry(key, |e| {
            if !e.ranges.covers(&range) {
                return Ok(None);
            }
            let mut buf = vec![0u8; (range.end - range.start) as usize];
            e.data.read_exact_at(&mut buf, range.start)?;
            Ok(Some(Bytes::from(buf)))
        })
        .flatten()
    }

    fn put(&self, key: &str, start: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let end = start + bytes.len() as u64;
        self.with_entry(key, |e| {
            if e.ranges.covers(&(start..end)) {
                return Ok(());
            }
            e.data.write_all_at(bytes, start)?;
            let mut rec = [0u8; 16];
            rec[..8].copy_from_slice(&start.to_be_bytes());
            rec[8..].copy_from_slice(&end.to_be_bytes());
            e.log.write_all(&rec)?;
            e.ranges.insert(start..end);
            Ok(())
        });
    }

    fn retain(&self, live: &dyn Fn(&str) -> bool) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut open = self.open.lock();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(base) = name.strip_suffix(".data").or_else(|| name.strip_suffix(".ranges")) else { continue };
            let key = unescape(base);
            if !live(&key) {
                open.remove(&key);
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_cover() {
        let mut r = RangeSet::default();
        r.insert(10..20);
        r.insert(30..40);
        assert!(r.covers(&(12..18)));
        assert!(!r.covers(&(15..35)));
        r.insert(20..30);
        assert!(r.covers(&(10..40)));
        assert_eq!(r.0.len(), 1);
    }

    #[test]
    fn survives_reopen_and_forgets_deleted_files() {
        let root = tempfile::tempdir().unwrap();
        let key = "db/0000/0000000000000001-0000000000000001.ltx";
        {
            let c = DiskExtentCache::new(root.path(), "s3://b/db").unwrap();
            c.put(key, 100, b"hello");
            assert_eq!(c.get(key, 101..104).as_deref(), Some(&b"ell"[..]));
            assert_eq!(c.get(key, 99..104), None, "byte 99 was never stored");
        }
        let c = DiskExtentCache::new(root.path(), "s3://b/db").unwrap();
        assert_eq!(c.get(key, 100..105).as_deref(), Some(&b"hello"[..]), "persisted");
        let other = DiskExtentCache::new(root.path(), "s3://b/other").unwrap();
        assert_eq!(other.get(key, 100..105), None, "keyed by replica");
        c.retain(&|k| k != key);
        assert_eq!(c.get(key, 100..105), None, "a deleted file invalidates its entries");
    }

    #[test]
    fn torn_log_record_is_ignored() {
        let root = tempfile::tempdir().unwrap();
        let c = DiskExtentCache::new(root.path(), "u").unwrap();
        c.put("k", 0, b"abcd");
        let (_, log) = c.paths("k");
        drop(c);
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&[0u8; 7]).unwrap();
        let c = DiskExtentCache::new(root.path(), "u").unwrap();
        assert_eq!(c.get("k", 0..4).as_deref(), Some(&b"abcd"[..]));
    }
}
