//! A [`Storage`] layer that counts what is sent to the storage below it: requests, bytes,
//! listings and errors. Placed under the retry layer, it counts every attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::Result;
use crate::storage::{ObjectInfo, PutMode, RangeRequest, Storage};

/// Request counters, for logs and benchmarks.
#[derive(Debug, Default)]
pub struct StorageStats {
    /// Ranged reads sent.
    pub requests: AtomicU64,
    /// Bytes received by ranged reads.
    pub bytes: AtomicU64,
    /// Listings sent (one per prefix).
    pub lists: AtomicU64,
    /// Puts sent.
    pub puts: AtomicU64,
    /// Requests that failed (any kind).
    pub errors: AtomicU64,
}

pub struct StatsStorage {
    inner: Arc<dyn Storage>,
    stats: Arc<StorageStats>,
}

impl StatsStorage {
    pub fn new(inner: Arc<dyn Storage>, stats: Arc<StorageStats>) -> Self {
        Self { inner, stats }
    }

    fn count<T>(&self, r: &Result<T>) {
        if r.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Storage for StatsStorage {
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.stats.lists.fetch_add(1, Ordering::Relaxed);
        let r = self.inner.list(prefix, with_metadata);
        self.count(&r);
        r
    }

    fn list_after(&self, prefix: &str, after_key: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.stats.lists.fetch_add(1, Ordering::Relaxed);
        let r = self.inner.list_after(prefix, after_key, with_metadata);
        self.count(&r);
        r
    }

    fn list_many(&self, prefixes: &[String], with_metadata: bool) -> Vec<Result<Vec<ObjectInfo>>> {
        self.stats.lists.fetch_add(prefixes.len() as u64, Ordering::Relaxed);
        let out = self.inner.list_many(prefixes, with_metadata);
        out.iter().for_each(|r| self.count(r));
        out
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        self.stats.requests.fetch_add(requests.len() as u64, Ordering::Relaxed);
        let out = self.inner.get_ranges(requests);
        for r in &out {
            self.count(r);
            if let Ok(b) = r {
                self.stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        }
        out
    }

    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        self.stats.puts.fetch_add(1, Ordering::Relaxed);
        let r = self.inner.put(key, data, mode);
        self.count(&r);
        r
    }

    fn supports_conditional_create(&self) -> bool {
        self.inner.supports_conditional_create()
    }

    /// A HEAD is a request (counted in `requests`, no bytes).
    fn exists(&self, key: &str) -> Result<bool> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let r = self.inner.exists(key);
        self.count(&r);
        r
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_storage::MemoryStorage;

    #[test]
    fn counts_requests_bytes_lists_puts_and_errors() {
        let mem = Arc::new(MemoryStorage::new());
        let stats = Arc::new(StorageStats::default());
        let s = StatsStorage::new(mem, stats.clone());
        s.put("d/a", Bytes::from_static(b"hello"), PutMode::Create).unwrap();
        assert!(s.put("d/a", Bytes::from_static(b"x"), PutMode::Create).is_err());
        let r = |k: &str| RangeRequest { key: k.into(), range: 0..3 };
        let got = s.get_ranges(&[r("d/a"), r("d/missing")]);
        assert!(got[1].is_err());
        s.list_many(&["d/".into(), "e/".into()], false);
        s.list("d/", false).unwrap();
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(
            (n(&stats.requests), n(&stats.bytes), n(&stats.lists), n(&stats.puts), n(&stats.errors)),
            (2, 3, 3, 2, 2)
        );
        assert!(s.supports_conditional_create());
        assert_eq!(s.describe(), "memory://");
    }
}
