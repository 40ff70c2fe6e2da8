//! Whole objects kept in memory: JetStream objects cannot be range-read (a read streams the
//! object's chunks from the first), so each object is fetched once, whole, and every range is
//! served from here. LTX files are immutable, so nothing is invalidated except by eviction
//! (least recently used, bounded by bytes) and by this process's own puts.
//!
//! Concurrent requests for one object share one fetch ([`ObjectCache::get_or_fetch`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use ltxvfs::Result;
use parking_lot::Mutex;

/// Default bound of the cache: 256 MiB.
pub const DEFAULT_CAPACITY: usize = 256 << 20;

/// Least-recently-used map of objects, bounded by their total size. Pure (no I/O).
#[derive(Debug)]
pub struct ByteLru {
    capacity: usize,
    used: usize,
    tick: u64,
    entries: HashMap<String, (Bytes, u64)>,
    /// Last use → key, oldest first.
    order: BTreeMap<u64, String>,
}

impl ByteLru {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, used: 0, tick: 0, entries: HashMap::new(), order: BTreeMap::new() }
    }

    pub fn used(&self) -> usize {
        self.used
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The object, marked as just used.
    pub fn get(&mut self, key: &str) -> Option<Bytes> {
        let t = self.next_tick();
        let (data, last) = self.entries.get_mut(key)?;
        self.order.remove(last);
        *last = t;
        self.order.insert(t, key.to_string());
        Some(data.clone())
    }

    /// Keep `data` for `key`, evicting the least recently used objects to make room. An object
    /// larger than the whole capacity is not kept.
    pub fn insert(&mut self, key: &str, data: Bytes) {
        self.remove(key);
        if data.len() > self.capacity {
            return;
        }
        while self.used + data.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some((d, _)) = self.entries.remove(&oldest) {
                self.used -= d.len();
            }
        }
        let t = self.next_tick();
        self.used += data.len();
        self.order.insert(t, key.to_string());
        self.entries.insert(key.to_string(), (data, t));
    }

    pub fn remove(&mut self, key: &str) {
        if let Some((d, t)) = self.entries.remove(key) {
            self.used -= d.len();
            self.order.remove(&t);
        }
    }
}

type SharedFetch = Shared<BoxFuture<'static, Result<Bytes>>>;

#[derive(Debug)]
struct Inner {
    lru: ByteLru,
    /// Fetches under way: an id (so that a put in between can disown it) and the shared future.
    inflight: HashMap<String, (u64, SharedFetch)>,
    next_id: u64,
}

/// The cache with single-flight fetches.
#[derive(Debug)]
pub struct ObjectCache {
    inner: Mutex<Inner>,
}

impl ObjectCache {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner { lru: ByteLru::new(capacity), inflight: HashMap::new(), next_id: 0 }),
        })
    }

    /// The object from the cache, or from the fetch already under way for it, or from `fetch`
    /// (called at most once per miss). A failed fetch is not kept: the next call fetches again.
    pub fn get_or_fetch(
        self: &Arc<Self>,
        key: &str,
        fetch: impl FnOnce() -> BoxFuture<'static, Result<Bytes>>,
    ) -> BoxFuture<'static, Result<Bytes>> {
        let mut inner = self.inner.lock();
        if let Some(data) = inner.lru.get(key) {
            return futures::future::ready(Ok(data)).boxed();
        }
        if let Some((_, shared)) = inner.inflight.get(key) {
            return shared.clone().boxed();
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let me = Arc::clone(self);
        let owned = key.to_string();
        let fut = fetch();
        let shared = async move {
            let result = fut.await;
            me.finish(&owned, id, &result);
            result
        }
        .boxed()
        .shared();
        inner.inflight.insert(key.to_string(), (id, shared.clone()));
        shared.boxed()
    }

    fn finish(&self, key: &str, id: u64, result: &Result<Bytes>) {
        let mut inner = self.inner.lock();
        if inner.inflight.get(key).map(|(i, _)| *i) != Some(id) {
            return; // disowned by a put: its bytes may be stale
        }
        inner.inflight.remove(key);
        if let Ok(data) = result {
            inner.lru.insert(key, data.clone());
        }
    }

    /// Forget `key` (this process wrote it), including a fetch under way.
    pub fn invalidate(&self, key: &str) {
        let mut inner = self.inner.lock();
        inner.inflight.remove(key);
        inner.lru.remove(key);
    }

    /// Bytes held and objects held.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.lru.used(), inner.lru.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn b(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn lru_evicts_the_least_recently_used_by_bytes() {
        let mut c = ByteLru::new(100);
        c.insert("a", b(40));
        c.insert("b", b(40));
        assert!(c.get("a").is_some()); // a is now newer than b
        c.insert("c", b(40)); // evicts b
        assert!(c.get("b").is_none());
        assert!(c.get("a").is_some() && c.get("c").is_some());
        assert_eq!((c.used(), c.len()), (80, 2));
        c.insert("huge", b(101)); // larger than the cache: not kept, nothing evicted
        assert_eq!((c.used(), c.len()), (80, 2));
        c.insert("a", b(10)); // replacing adjusts the size
        assert_eq!(c.used(), 50);
        c.insert("d", b(100)); // evicts everything else
        assert_eq!((c.used(), c.len()), (100, 1));
        c.remove("d");
        assert!(c.is_empty() && c.used() == 0);
    }

    #[test]
    fn concurrent_misses_share_one_fetch_and_failures_are_not_kept() {
        let cache = ObjectCache::new(1000);
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let c1 = Arc::clone(&calls);
        let first = cache.get_or_fetch("k", move || {
            async move {
                c1.fetch_add(1, Ordering::SeqCst);
                let _ = rx.await;
                Ok(Bytes::from_static(b"data"))
            }
            .boxed()
        });
        let second = cache.get_or_fetch("k", || panic!("a second fetch for the same key"));
        let _ = tx.send(());
        let (a, b2) = futures::executor::block_on(futures::future::join(first, second));
        assert_eq!((a.unwrap(), b2.unwrap()), (Bytes::from_static(b"data"), Bytes::from_static(b"data")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Now cached.
        let third = cache.get_or_fetch("k", || panic!("cached"));
        assert_eq!(futures::executor::block_on(third).unwrap(), Bytes::from_static(b"data"));
        assert_eq!(cache.usage(), (4, 1));

        let fail = cache.get_or_fetch("x", || async { Err(ltxvfs::Error::network("down")) }.boxed());
        assert!(futures::executor::block_on(fail).is_err());
        let again = cache.get_or_fetch("x", || async { Ok(Bytes::from_static(b"up")) }.boxed());
        assert_eq!(futures::executor::block_on(again).unwrap(), Bytes::from_static(b"up"));
    }

    #[test]
    fn a_put_disowns_a_fetch_under_way() {
        let cache = ObjectCache::new(1000);
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let stale = cache.get_or_fetch("k", move || {
            async move {
                let _ = rx.await;
                Ok(Bytes::from_static(b"old"))
            }
            .boxed()
        });
        cache.invalidate("k");
        let _ = tx.send(());
        assert_eq!(futures::executor::block_on(stale).unwrap(), Bytes::from_static(b"old"));
        assert_eq!(cache.usage(), (0, 0), "the stale bytes were not kept");
    }
}
