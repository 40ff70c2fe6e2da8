//! The page cache: decoded pages keyed by their immutable location (file id, frame offset).
//!
//! LTX files never change, so an entry never goes stale; connections at different TXIDs share
//! it safely. Bounded in bytes. `quick_cache` is a sharded, weight-aware S3-FIFO cache: readers
//! on different shards never contend and a hit costs a hash and an `Arc` clone.
//!
//! S3-FIFO admits new entries to a probationary section. quick_cache gives it 3% of the
//! capacity by default, which suits point lookups but evicts read-ahead before SQLite gets to
//! it; here it gets half ([`PROBATION_SHARE`]), and the read planner keeps windows well below.
//!
//! Pinned pages (the interior b-tree pages, [`PageCache::pin`]) are never evicted: a page that
//! every lookup descends through must not leave the probationary section before its first hit
//! because random leaves stream past it. They count in the same byte bound, up to
//! [`PIN_SHARE`] of it.

use crate::file_table::FileId;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cached page and whether it is pinned.
#[derive(Clone)]
struct Entry {
    page: Bytes,
    pinned: bool,
}

#[derive(Clone, Copy)]
struct ByteWeighter;

impl quick_cache::Weighter<(FileId, u64), Entry> for ByteWeighter {
    fn weight(&self, _key: &(FileId, u64), val: &Entry) -> u64 {
        val.page.len() as u64
    }
}

/// Pinned entries are never evicted.
#[derive(Clone, Copy, Default)]
struct Pins;

impl quick_cache::Lifecycle<(FileId, u64), Entry> for Pins {
    type RequestState = ();

    fn is_pinned(&self, _key: &(FileId, u64), val: &Entry) -> bool {
        val.pinned
    }
}

/// At most this share of the capacity may be pinned.
pub const PIN_SHARE: u64 = 4;

/// Share of the capacity for entries not yet read twice (read-ahead lands there).
pub const PROBATION_SHARE: f64 = 0.5;

/// Each shard holds its own share of the capacity, so a read-ahead window spread unevenly over
/// many small shards overflows one shard's probationary section and is evicted before use.
/// One shard per MiB (a power of two, at most 32) keeps every shard large next to a window.
fn shards_for(capacity: u64) -> usize {
    let per_mib = usize::try_from(capacity >> 20).unwrap_or(usize::MAX).clamp(1, 32);
    1 << per_mib.ilog2()
}

pub struct PageCache {
    inner: quick_cache::sync::Cache<(FileId, u64), Entry, ByteWeighter, quick_cache::DefaultHashBuilder, Pins>,
    /// Bytes pinned, at most `capacity / PIN_SHARE`.
    pinned: AtomicU64,
}

impl PageCache {
    /// A cache holding at most `capacity_bytes` of page data (at least one page of `page_size`).
    pub fn new(capacity_bytes: u64, page_size_hint: u32) -> Self {
        let capacity = capacity_bytes.max(page_size_hint as u64).max(512);
        let items = (capacity / page_size_hint.max(512) as u64).clamp(16, 1 << 20) as usize;
        let options = quick_cache::OptionsBuilder::new()
            .shards(shards_for(capacity))
            .estimated_items_capacity(items)
            .weight_capacity(capacity)
            .hot_allocation(1.0 - PROBATION_SHARE)
            .build();
        let inner = match options {
            Ok(o) => quick_cache::sync::Cache::with_options(
                o,
                ByteWeighter,
                quick_cache::DefaultHashBuilder::default(),
                Pins,
            ),
            Err(_) => quick_cache::sync::Cache::with(items, capacity, ByteWeighter, Default::default(), Pins),
        };
        Self { inner, pinned: AtomicU64::new(0) }
    }

    pub fn get(&self, file: FileId, offset: u64) -> Option<Bytes> {
        self.inner.get(&(file, offset)).map(|e| e.page)
    }

    pub fn contains(&self, file: FileId, offset: u64) -> bool {
        self.inner.contains_key(&(file, offset))
    }

    /// Cache a page. A frame never changes, so a page already cached (pinned or not) stays as
    /// it is.
    pub fn insert(&self, file: FileId, offset: u64, page: Bytes) {
        if !self.inner.contains_key(&(file, offset)) {
            self.inner.insert((file, offset), Entry { page, pinned: false });
        }
    }

    /// Cache a page that must stay (an interior b-tree page) while the pinned bytes stay within
    /// [`PIN_SHARE`] of the capacity; returns whether it is pinned.
    pub fn pin(&self, file: FileId, offset: u64, page: Bytes) -> bool {
        let key = (file, offset);
        if self.inner.peek(&key).is_some_and(|e| e.pinned) {
            return true;
        }
        let len = page.len() as u64;
        let cap = self.inner.capacity() / PIN_SHARE;
        let reserved =
            self.pinned.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| (p + len <= cap).then_some(p + len));
        if reserved.is_err() {
            self.insert(file, offset, page);
            return false;
        }
        self.inner.insert(key, Entry { page, pinned: true });
        true
    }

    /// Bytes pinned.
    pub fn pinned_weight(&self) -> u64 {
        self.pinned.load(Ordering::Relaxed)
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
        self.inner.retain(|k, e| {
            let keep = k.0 != file;
            if !keep && e.pinned {
                self.pinned.fetch_sub(e.page.len() as u64, Ordering::Relaxed);
            }
            keep
        });
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
    fn read_ahead_survives_until_read() {
        // A window of a quarter of the cache, inserted and then read in order, must all hit.
        let c = PageCache::new(1 << 20, 4096);
        for round in 0..8u64 {
            let window: Vec<u64> = (0..64).map(|i| (round * 64 + i) * 4096).collect();
            for &off in &window {
                c.insert(0, off, Bytes::from(vec![0u8; 4096]));
            }
            for &off in &window {
                assert!(c.get(0, off).is_some(), "round {round} offset {off} evicted before use");
            }
        }
    }

    #[test]
    fn shards_stay_large() {
        assert_eq!(shards_for(64 * 1024), 1);
        assert_eq!(shards_for(1 << 20), 1);
        assert_eq!(shards_for(10 << 20), 8);
        assert_eq!(shards_for(1 << 40), 32);
    }

    #[test]
    fn pinned_pages_outlive_a_stream_of_others_within_their_share() {
        let c = PageCache::new(1 << 20, 4096);
        // 64 pages may be pinned (a quarter of 256); the 65th is only cached.
        for i in 0..65u64 {
            let pinned = c.pin(1, i * 4096, Bytes::from(vec![1u8; 4096]));
            assert_eq!(pinned, i < 64, "page {i}");
        }
        assert_eq!(c.pinned_weight(), 64 * 4096);
        // Ten times the capacity of pages read once each streams past them.
        for i in 0..2560u64 {
            c.insert(0, i * 4096, Bytes::from(vec![0u8; 4096]));
        }
        assert!((0..64u64).all(|i| c.contains(1, i * 4096)), "every pinned page stayed");
        assert!(c.weight() <= c.capacity(), "{} > {}", c.weight(), c.capacity());
        // Caching a pinned page again does not unpin it; forgetting its file does.
        c.insert(1, 0, Bytes::from(vec![2u8; 4096]));
        assert_eq!(c.get(1, 0).map(|p| p[0]), Some(1));
        c.forget_file(1);
        assert_eq!(c.pinned_weight(), 0);
        assert!(!c.contains(1, 0));
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
