//! An in-memory [`Storage`]: a map from key to bytes, for tests and for the conformance suite's
//! reference backend. Listings are one level deep like a directory (`prefix/` then a name with
//! no further `/`), as `file://` and S3 with a delimiter list.
//!
//! `created_at` is the LTX header timestamp for LTX files (as Litestream records it), else the
//! time of the put.

use std::collections::BTreeMap;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{Clock, ObjectInfo, PutMode, RangeRequest, Storage, SystemClock, UnixNanos, ltx_timestamp_ms};

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    created_at: UnixNanos,
}

/// Objects kept in a map; cheap to create, shared through `Arc` like any storage.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<String, Object>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Store an object with an explicit creation time (tests of time travel).
    pub fn insert(&self, key: &str, data: Bytes, created_at: UnixNanos) {
        self.objects.lock().insert(key.to_string(), Object { data, created_at });
    }

    /// Remove an object (tests of compaction races); whether it existed.
    pub fn remove(&self, key: &str) -> bool {
        self.objects.lock().remove(key).is_some()
    }
}

impl Storage for MemoryStorage {
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.list_after(prefix, "", with_metadata)
    }

    /// A range of the ordered map: nothing before `after_key` is visited.
    fn list_after(&self, prefix: &str, after_key: &str, _with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        use std::ops::Bound;
        let dir = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        let objects = self.objects.lock();
        let start = if after_key >= dir.as_str() {
            Bound::Excluded(after_key.to_string())
        } else {
            Bound::Included(dir.clone())
        };
        Ok(objects
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&dir))
            .filter(|(k, _)| !k[dir.len()..].contains('/'))
            .map(|(k, o)| ObjectInfo { key: k.clone(), size: o.data.len() as u64, created_at: o.created_at })
            .collect())
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let objects = self.objects.lock();
        requests
            .iter()
            .map(|r| {
                let o = objects.get(&r.key).ok_or_else(|| Error::not_found(format!("object not found: {}", r.key)))?;
                let len = o.data.len() as u64;
                let end = r.range.end.min(len);
                let start = r.range.start.min(end);
                // Both bounds are ≤ len, which is a usize.
                Ok(o.data.slice(start as usize..end as usize))
            })
            .collect()
    }

    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let created_at = match ltx_timestamp_ms(key, &data) {
            Some(ms) => ms.saturating_mul(1_000_000),
            None => SystemClock.now(),
        };
        let mut objects = self.objects.lock();
        if mode == PutMode::Create && objects.contains_key(key) {
            return Err(Error::new(ErrorKind::AlreadyExists, format!("object already exists: memory://{key}")));
        }
        objects.insert(key.to_string(), Object { data, created_at });
        Ok(())
    }

    fn supports_conditional_create(&self) -> bool {
        true
    }

    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.objects.lock().contains_key(key))
    }

    fn describe(&self) -> String {
        "memory://".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, start: u64, end: u64) -> RangeRequest {
        RangeRequest { key: key.to_string(), range: start..end }
    }

    #[test]
    fn list_is_one_level_and_reads_clamp() {
        let s = MemoryStorage::new();
        s.insert("db/ltx/0/a", Bytes::from_static(b"hello"), 7);
        s.insert("db/ltx/0/b/c", Bytes::from_static(b"nested"), 8);
        s.insert("db/ltx/00/x", Bytes::from_static(b"other"), 9);
        let got = s.list("db/ltx/0/", false).unwrap();
        assert_eq!(got, vec![ObjectInfo { key: "db/ltx/0/a".into(), size: 5, created_at: 7 }]);
        assert_eq!(s.list("db/ltx/0", true).unwrap(), got);
        assert!(s.list("nope/", false).unwrap().is_empty());
        let r = s.get_ranges(&[
            req("db/ltx/0/a", 1, 3),
            req("db/ltx/0/a", 3, 99),
            req("db/ltx/0/a", 9, 10),
            req("x", 0, 1),
        ]);
        assert_eq!(r[0].as_ref().unwrap().as_ref(), b"el");
        assert_eq!(r[1].as_ref().unwrap().as_ref(), b"lo");
        assert!(r[2].as_ref().unwrap().is_empty());
        assert_eq!(r[3].as_ref().unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn create_twice_is_already_exists() {
        let s = MemoryStorage::new();
        assert!(s.supports_conditional_create());
        s.put("k", Bytes::from_static(b"1"), PutMode::Create).unwrap();
        let e = s.put("k", Bytes::from_static(b"2"), PutMode::Create).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists);
        assert_eq!(s.get_ranges(&[req("k", 0, 9)])[0].as_ref().unwrap().as_ref(), b"1");
        s.put("k", Bytes::from_static(b"3"), PutMode::Overwrite).unwrap();
        assert_eq!(s.get_ranges(&[req("k", 0, 9)])[0].as_ref().unwrap().as_ref(), b"3");
        assert!(s.remove("k"));
    }
}
