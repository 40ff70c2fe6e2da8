//! The page cache: decoded pages keyed by their immutable location (file id, frame offset).
//!
//! LTX files never change, so an entry never goes stale; connections at different TXIDs share
//! it safely. Bounded in bytes. `quick_cache` is a sharded, weight-aware S3-FIFO cache: readers
//! on different shards never contend and a hit costs a hash and an `Arc` clone.

use crate::file_table::FileId;
use bytes::Bytes;

#[derive(Clone, Copy)]
struct ByteWeighter;

impl quick_cache::Weighter<(FileId, u64), Bytes> for ByteWeighter {
    fn weight(&self, _key: &(FileId, u64), val: &Bytes) -> u64 {
        val.len() as u64
    }
}

pub struct PageCache {
    inner: quick_cache::sync::Cache<(FileId, u64), Bytes, ByteWeighter>,
}

impl PageCache {
    /// A cache holding at most `capacity_bytes` of page data (at least one page of `page_size`).
    pub fn new(capacity_bytes: u64, page_size_hint: u32) -> Self {
        let capacity = capacity_bytes.max(page_size_hint as u64).max(512);
        let items = (capacity / page_size_hint.max(512) as u64).clamp(16, 1 << 20) as usize;
        Self { inner: quick_cache::sync::Cache::with_weighter(items, capacity, ByteWeighter) }
    }

    pub fn get(&self, file: FileId, offset: u64) -> Option<Bytes> {
        self.inner.get(&(file, offset))
    }

    pub fn contains(&self, file: FileId, offset: u64) -> bool {
        self.inner.contains_key(&(file, offset))
    }

    pub fn insert(&self, file: FileId, offset: u64, page: Bytes) {
        self.inner.insert((file, offset), page);
    }

    /// Bytes currently held.
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }

    pub fn capacity(&self) -> u64 {
        self.inner.capacity()
    }

    /// Forget every page of a file (it was deleted from the replica).
    pub fn forget_file(&self, file: FileId) {
        self.inner.retain(|k, _| k.0 != file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_bytes() {
        let c = PageCache::new(64 * 1024, 4096);
        for i in 0..100u64 {
            c.insert(0, i * 4096, Bytes::from(vec![i as u8; 4096]));
        }
        assert!(c.weight() <= 64 * 1024, "{}", c.weight());
        assert_eq!(c.get(0, 99 * 4096).map(|b| b[0]), Some(99));
    }

    #[test]
    fn keyed_by_location() {
        let c = PageCache::new(1 << 20, 512);
        c.insert(1, 100, Bytes::from_static(b"a"));
        c.insert(2, 100, Bytes::from_static(b"b"));
        assert_eq!(c.get(1, 100).as_deref(), Some(&b"a"[..]));
        c.forget_file(1);
        assert!(!c.contains(1, 100));
        assert!(c.contains(2, 100));
    }
}
