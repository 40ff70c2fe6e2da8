//! A second-level cache of raw LTX bytes that survives restarts (URI `cache_dir`).
//!
//! LTX files are immutable, so a stored range never goes stale: the only invalidation is a file
//! that was deleted from the replica. Shells implement the store (local disk natively).

use bytes::Bytes;
use std::ops::Range;

pub trait ExtentStore: Send + Sync {
    /// The bytes of `range` of the file `key`, if every byte of it is stored.
    fn get(&self, key: &str, range: Range<u64>) -> Option<Bytes>;
    /// Remember bytes of `key` (a file of `file_size` bytes) starting at `start`. Only bytes
    /// that passed the reader's checks (frame against index entry, header, page index) are put.
    fn put(&self, key: &str, file_size: u64, start: u64, bytes: &[u8]);
    /// Remember a whole file whose CRC-64 was verified.
    fn put_verified_file(&self, key: &str, bytes: &[u8]) {
        self.put(key, bytes.len() as u64, 0, bytes);
    }
    /// Forget a file whose stored bytes failed a check: it is fetched again from the replica.
    fn discard(&self, key: &str);
    /// Drop every stored file for which `live` is false (deleted from the replica).
    fn retain(&self, live: &dyn Fn(&str) -> bool);
}
