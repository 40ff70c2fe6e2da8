//! The persistent page cache on local disk (URI `cache_dir`, env `LITESTREAM_CACHE_DIR`).
//!
//! Layout: `<dir>/<FNV-1a-64 of the replica URL>/<escaped object key>.data` mirrors the remote
//! LTX file at the same offsets (a sparse file), and `<…>.extents` is an append-only log of the
//! byte ranges present (24-byte records: start, end as big-endian u64, then the CRC-64 of those
//! 16 bytes; a record with start == end states the file's size).
//!
//! What it promises (issue 11):
//! - It stores only bytes that passed the reader's checks: the replica calls `put` after a frame
//!   matched its page index entry, a header or page index parsed, or a whole file's CRC-64
//!   verified (`put_verified_file`), never with raw network bytes.
//! - Torn writes after a power loss: the data is `fsync`ed before its range record is appended,
//!   and a record that is short or fails its own checksum is ignored, so a range is never
//!   trusted unless its bytes reached the disk.
//! - Once every byte of a file is present (its ranges cover 0..size), the whole file is decoded and its CRC-64 checked; on a
//!   mismatch the file is dropped. A complete file is checked again each time it is loaded
//!   from disk, so bytes flipped on disk since are not served either.
//! - A file whose cached bytes fail a check in the reader is dropped (`discard`) and fetched
//!   again from the replica.
//! - At most [`MAX_OPEN_FILES`] files are open (two descriptors each), least recently used
//!   closed first.
//!
//! LTX files are immutable: entries otherwise only go when the file leaves the replica
//! (`retain`).

use bytes::Bytes;
use ltxvfs::extent_store::ExtentStore;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Open cached files at once (each holds two descriptors).
pub const MAX_OPEN_FILES: usize = 32;

const RECORD: usize = 24;
const DATA_SUFFIX: &str = ".data";
const LOG_SUFFIX: &str = ".extents";
/// The log of an earlier layout (16-byte records without a checksum): removed on sight.
const LEGACY_LOG_SUFFIX: &str = ".ranges";

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
    /// Whether the ranges cover a whole file of `size` bytes.
    fn complete(&self, size: Option<u64>) -> bool {
        size.is_some_and(|n| n > 0 && self.covers(&(0..n)))
    }
}

/// One log record: a stored range, or the file's size.
enum Record {
    Range(Range<u64>),
    Size(u64),
}

fn encode_record(r: &Range<u64>) -> [u8; RECORD] {
    let mut rec = [0u8; RECORD];
    rec[..8].copy_from_slice(&r.start.to_be_bytes());
    rec[8..16].copy_from_slice(&r.end.to_be_bytes());
    let crc = ltxvfs::ltx::crc64_iso(&rec[..16]);
    rec[16..].copy_from_slice(&crc.to_be_bytes());
    rec
}

/// A record, or None if it is torn or garbled.
fn decode_record(rec: &[u8]) -> Option<Record> {
    let word = |i: usize| rec.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    let (start, end, crc) = (word(0)?, word(8)?, word(16)?);
    if ltxvfs::ltx::crc64_iso(rec.get(..16)?) != crc || start > end {
        return None;
    }
    Some(if start == end { Record::Size(start) } else { Record::Range(start..end) })
}

struct Entry {
    data: File,
    log: File,
    ranges: RangeSet,
    /// The remote file's size, once a put stated it.
    size: Option<u64>,
    /// The whole file is present and its CRC-64 verified.
    verified: bool,
    last_used: u64,
}

pub struct DiskExtentCache {
    dir: PathBuf,
    max_open: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    entries: HashMap<String, Entry>,
    tick: u64,
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

/// Decode the complete cached bytes of a file: every check of `decode_file`, CRC-64 included.
fn verify_complete(data: &File, len: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    data.read_exact_at(&mut buf, 0)?;
    Ok(ltxvfs::ltx::decode_file(&buf).is_ok())
}

impl DiskExtentCache {
    /// The cache for one replica (identified by its URL) under `root`.
    pub fn new(root: &Path, replica_url: &str) -> std::io::Result<Self> {
        Self::with_max_open(root, replica_url, MAX_OPEN_FILES)
    }

    /// [`DiskExtentCache::new`] keeping at most `max_open` files open.
    pub fn with_max_open(root: &Path, replica_url: &str, max_open: usize) -> std::io::Result<Self> {
        let dir = root.join(format!("{:016x}", fnv64(replica_url)));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, max_open: max_open.max(1), open: Mutex::new(Open::default()) })
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        let base = escape(key);
        (self.dir.join(format!("{base}{DATA_SUFFIX}")), self.dir.join(format!("{base}{LOG_SUFFIX}")))
    }

    fn remove_files(&self, key: &str) {
        let (data, log) = self.paths(key);
        let _ = std::fs::remove_file(data);
        let _ = std::fs::remove_file(log);
        let _ = std::fs::remove_file(self.dir.join(format!("{}{LEGACY_LOG_SUFFIX}", escape(key))));
    }

    fn load(&self, key: &str) -> std::io::Result<Entry> {
        let (data_path, log_path) = self.paths(key);
        let data = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&data_path)?;
        let log = OpenOptions::new().read(true).append(true).create(true).open(&log_path)?;
        let raw = std::fs::read(&log_path)?;
        let mut ranges = RangeSet::default();
        let mut size = None;
        for rec in raw.chunks_exact(RECORD).filter_map(decode_record) {
            match rec {
                Record::Range(r) => ranges.insert(r),
                Record::Size(n) => size = Some(n),
            }
        }
        let mut entry = Entry { data, log, ranges, size, verified: false, last_used: 0 };
        if let (true, Some(len)) = (entry.ranges.complete(size), size) {
            if !verify_complete(&entry.data, len)? {
                tracing::warn!(key, "disk cache: cached file fails its checksum, dropped");
                drop(entry);
                self.remove_files(key);
                return self.load(key);
            }
            entry.verified = true;
        }
        Ok(entry)
    }

    fn with_entry<T>(&self, key: &str, f: impl FnOnce(&mut Entry) -> std::io::Result<T>) -> Option<T> {
        let mut open = self.open.lock();
        open.tick += 1;
        let tick = open.tick;
        if !open.entries.contains_key(key) {
            if open.entries.len() >= self.max_open {
                // Close the least recently used file: its ranges are reloaded from the log.
                if let Some(lru) = open.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) {
                    open.entries.remove(&lru);
                }
            }
            match self.load(key) {
                Ok(e) => {
                    open.entries.insert(key.to_string(), e);
                }
                Err(e) => {
                    tracing::debug!(key, error = %e, "disk cache unavailable for this file");
                    return None;
                }
            }
        }
        let entry = open.entries.get_mut(key)?;
        entry.last_used = tick;
        match f(entry) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(key, error = %e, "disk cache I/O failed");
                None
            }
        }
    }

    /// Write `bytes` at `start`, make them durable, then record the range.
    fn store(e: &mut Entry, size: u64, start: u64, bytes: &[u8]) -> std::io::Result<bool> {
        let range = start..start + bytes.len() as u64;
        if e.ranges.covers(&range) {
            return Ok(false);
        }
        if e.size != Some(size) {
            e.log.write_all(&encode_record(&(size..size)))?;
            e.size = Some(size);
        }
        e.data.write_all_at(bytes, start)?;
        // Durable before it is recorded: a power loss leaves either no record or good bytes.
        e.data.sync_data()?;
        e.log.write_all(&encode_record(&range))?;
        e.ranges.insert(range);
        Ok(true)
    }

    /// Number of files open now (for tests).
    #[cfg(test)]
    fn open_files(&self) -> usize {
        self.open.lock().entries.len()
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

    fn put(&self, key: &str, file_size: u64, start: u64, bytes: &[u8]) {
        if bytes.is_empty() || start + bytes.len() as u64 > file_size {
            return;
        }
        let bad = self.with_entry(key, |e| {
            if !Self::store(e, file_size, start, bytes)? || e.verified || !e.ranges.complete(e.size) {
                return Ok(false);
            }
            if verify_complete(&e.data, file_size)? {
                e.verified = true;
                return Ok(false);
            }
            Ok(true)
        });
        if bad == Some(true) {
            tracing::warn!(key, "disk cache: completed file fails its checksum, dropped");
            self.discard(key);
        }
    }

    fn put_verified_file(&self, key: &str, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let size = bytes.len() as u64;
        self.with_entry(key, |e| {
            Self::store(e, size, 0, bytes)?;
            e.verified = e.ranges.complete(e.size);
            Ok(())
        });
    }

    fn discard(&self, key: &str) {
        let mut open = self.open.lock();
        open.entries.remove(key);
        self.remove_files(key);
    }

    fn retain(&self, live: &dyn Fn(&str) -> bool) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut open = self.open.lock();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let legacy = name.strip_suffix(LEGACY_LOG_SUFFIX);
            let Some(base) = name.strip_suffix(DATA_SUFFIX).or_else(|| name.strip_suffix(LOG_SUFFIX)).or(legacy) else {
                continue;
            };
            let key = unescape(base);
            if legacy.is_some() || !live(&key) {
                if !live(&key) {
                    open.entries.remove(&key);
                }
                let _ = std::fs::remove_file(entry.path());
            }
        }
        // Handles of files that left the replica but were never on disk under this name.
        open.entries.retain(|k, _| live(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltxvfs::ltx::{Header, encode_file};

    #[test]
    fn ranges_merge_and_cover() {
        let mut r = RangeSet::default();
        r.insert(10..20);
        r.insert(30..40);
        assert!(r.covers(&(12..18)));
        assert!(!r.covers(&(15..35)));
        assert!(!r.complete(Some(40)));
        r.insert(20..30);
        assert!(r.covers(&(10..40)));
        assert_eq!(r.0.len(), 1);
        assert!(!r.complete(Some(40)), "does not start at 0");
        r.insert(0..10);
        assert!(r.complete(Some(40)));
        assert!(!r.complete(Some(41)));
        assert!(!r.complete(None));
    }

    #[test]
    fn survives_reopen_and_forgets_deleted_files() {
        let root = tempfile::tempdir().unwrap();
        let key = "db/0000/0000000000000001-0000000000000001.ltx";
        {
            let c = DiskExtentCache::new(root.path(), "s3://b/db").unwrap();
            c.put(key, 1000, 100, b"hello");
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
    fn torn_or_garbled_log_records_are_ignored() {
        let root = tempfile::tempdir().unwrap();
        let c = DiskExtentCache::new(root.path(), "u").unwrap();
        c.put("k", 1000, 100, b"abcd");
        let (_, log) = c.paths("k");
        drop(c);
        // A torn trailing record, then a full-length record of garbage (a power loss that
        // extended the log without writing it).
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&[0u8; 7]).unwrap();
        drop(f);
        let mut raw = std::fs::read(&log).unwrap();
        raw.truncate(2 * RECORD);
        let mut garbage = encode_record(&(0..100));
        garbage[20] ^= 1;
        raw.extend_from_slice(&garbage);
        std::fs::write(&log, &raw).unwrap();
        let c = DiskExtentCache::new(root.path(), "u").unwrap();
        assert_eq!(c.get("k", 100..104).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(c.get("k", 0..100), None, "the garbled record is not trusted");
    }

    #[test]
    fn open_files_are_bounded() {
        let root = tempfile::tempdir().unwrap();
        let c = DiskExtentCache::with_max_open(root.path(), "u", 4).unwrap();
        for i in 0..50 {
            c.put(&format!("k{i}"), 1000, 10, b"xyz");
        }
        assert_eq!(c.open_files(), 4);
        // Evicted handles reload their ranges from the log.
        for i in 0..50 {
            assert_eq!(c.get(&format!("k{i}"), 10..13).as_deref(), Some(&b"xyz"[..]), "k{i}");
        }
        assert_eq!(c.open_files(), 4);
    }

    fn ltx_file() -> Vec<u8> {
        let header = Header {
            flags: 0,
            page_size: 512,
            commit: 2,
            min_txid: 1,
            max_txid: 1,
            timestamp_ms: 0,
            pre_apply_checksum: 0,
            wal_offset: 0,
            wal_size: 0,
            wal_salt1: 0,
            wal_salt2: 0,
            node_id: 0,
        };
        let (a, b) = (vec![1u8; 512], vec![2u8; 512]);
        encode_file(&header, &[(1u32, &a[..]), (2, &b[..])]).unwrap().bytes
    }

    #[test]
    fn a_completed_file_is_checked_and_dropped_on_mismatch() {
        let root = tempfile::tempdir().unwrap();
        let c = DiskExtentCache::new(root.path(), "u").unwrap();
        let good = ltx_file();
        ltxvfs::ltx::decode_file(&good).unwrap();
        let n = good.len() as u64;
        // Pieces of a good file: kept once the last one completes it.
        let half = good.len() / 2;
        c.put("good", n, 0, &good[..half]);
        c.put("good", n, half as u64, &good[half..]);
        assert_eq!(c.get("good", 0..n).as_deref(), Some(&good[..]));
        // A file whose bytes differ (one flipped byte in a page payload the reader could not
        // check alone): dropped when it completes.
        let mut bad = good.clone();
        bad[120] ^= 0x40;
        c.put("bad", n, 0, &bad[..half]);
        assert!(c.get("bad", 0..half as u64).is_some(), "kept while incomplete");
        c.put("bad", n, half as u64, &bad[half..]);
        assert_eq!(c.get("bad", 0..half as u64), None, "dropped on completion");
        // A complete file flipped on disk afterwards is dropped when next loaded.
        c.put_verified_file("later", &good);
        let (data, _) = c.paths("later");
        drop(c);
        let mut raw = std::fs::read(&data).unwrap();
        raw[120] ^= 0x40;
        std::fs::write(&data, &raw).unwrap();
        let c = DiskExtentCache::new(root.path(), "u").unwrap();
        assert_eq!(c.get("later", 0..n), None);
        assert_eq!(c.get("good", 0..n).as_deref(), Some(&good[..]), "the good file stays");
        c.discard("good");
        assert_eq!(c.get("good", 0..n), None);
    }
}
