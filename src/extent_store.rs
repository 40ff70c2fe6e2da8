//! A second-level cache of raw LTX bytes that survives restarts (URI `cache_dir`).
//!
//! LTX files are immutable, so a stored range never goes stale: the only invalidation is a file
//! that was deleted from the replica. Shells implement the store (local disk natively).

use bytes::Bytes;
use std::ops::Range;

pub trait ExtentStore: Send + Sync {
    /// The bytes of `range` of the file `key`, if every byte of it is stored.
    fn get(&self, key: &str, range: Range<u64>) -> Option<Bytes>;
    /// Remember bytes of `key` starting at `start`.
    fn put(&self, key: &str, start: u64, bytes: &[u8]);
    /// Drop every stored file for which `live` is false (deleted from the replica).
    fn retain(&self, live: &dyn Fn(&str) -> bool);
}
