//! The storage seam. The core performs no I/O: shells implement [`Storage`] natively
//! (std::fs, object_store on a private tokio runtime) or over wasi-http in the component.
//!
//! Keys are full object keys/paths; the core's `layout` module decides what they are.
//! The trait is synchronous because SQLite calls the VFS synchronously; parallelism comes from
//! the batch method [`Storage::get_ranges`], which implementations fan out.

use crate::error::Result;
use bytes::Bytes;
use std::ops::Range;

/// Nanoseconds since the Unix epoch (UTC).
pub type UnixNanos = i64;

/// One object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full key, usable with [`Storage::get_ranges`].
    pub key: String,
    /// Object size in bytes.
    pub size: u64,
    /// Creation time as the backend reports it (REPLICA.md §2): file mtime, S3 LastModified,
    /// or the `litestream-timestamp` metadata when the listing was made `with_metadata`.
    pub created_at: UnixNanos,
}

/// A byte range of one object, half-open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeRequest {
    pub key: String,
    pub range: Range<u64>,
}

/// How [`Storage::put`] treats an object that already exists (object_store's `PutMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Create only: fail with [`crate::error::ErrorKind::AlreadyExists`] if the key exists,
    /// atomically where the backend can (`If-None-Match: *`, `O_EXCL`/link). Write mode's
    /// conflict check relies on it.
    Create,
}

pub trait Storage: Send + Sync {
    /// Objects whose key starts with `prefix` (a "directory" ending in `/`), in any order.
    /// `with_metadata` asks for the precise creation timestamp where the backend keeps it apart
    /// from the upload time (S3 metadata `litestream-timestamp`); used for time travel.
    /// A missing prefix is an empty listing, not an error.
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>>;

    /// The objects of [`Storage::list`] whose key sorts strictly after `after_key` (S3
    /// `start-after`): a listing from a position. LTX names are fixed-width hex, so from
    /// [`crate::layout::Layout::seek_key`] this is REPLICA.md §2's "MinTXID ≥ seek". The
    /// default lists everything and filters; backends that can skip the rest server-side
    /// (S3 `start-after`) or before touching it (`file://`: no stat) override it.
    fn list_after(&self, prefix: &str, after_key: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let mut all = self.list(prefix, with_metadata)?;
        all.retain(|o| o.key.as_str() > after_key);
        Ok(all)
    }

    /// Several listings; backends that can run them concurrently override this.
    fn list_many(&self, prefixes: &[String], with_metadata: bool) -> Vec<Result<Vec<ObjectInfo>>> {
        prefixes.iter().map(|p| self.list(p, with_metadata)).collect()
    }

    /// Fetch several ranges, concurrently where the backend can. One result per request, same
    /// order. A range that runs past the end of the object returns the bytes that exist.
    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>>;

    /// Store `data` at `key`. Backends that cannot write return [`crate::error::ErrorKind::ReadOnly`].
    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let _ = (data, mode);
        Err(crate::error::Error::new(
            crate::error::ErrorKind::ReadOnly,
            format!("{} cannot write {key}: this backend is read-only", self.describe()),
        ))
    }

    /// Whether [`PutMode::Create`] is enforced atomically by the backend (README's table).
    fn supports_conditional_create(&self) -> bool {
        false
    }

    /// Whether an object exists at `key`: the cheapest request the backend offers (HEAD on
    /// object stores, a stat on files). Missing is `Ok(false)`, not an error. The default reads
    /// one byte through [`Storage::get_ranges`]; the poller probes the next L0 name with it.
    fn exists(&self, key: &str) -> Result<bool> {
        let req = RangeRequest { key: key.to_string(), range: 0..1 };
        match self.get_ranges(std::slice::from_ref(&req)).pop() {
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) if e.kind == crate::error::ErrorKind::NotFound => Ok(false),
            Some(Err(e)) => Err(e),
            None => Err(crate::error::Error::internal("storage returned no result")),
        }
    }

    /// Human-readable description for logs (no secrets).
    fn describe(&self) -> String;
}

/// The creation time a put records for `data` stored at `key`: the LTX header timestamp when
/// the key is an LTX file name and the bytes start with a valid header (Litestream sets the
/// file mtime / `litestream-timestamp` metadata from it, REPLICA.md §2). Milliseconds.
pub fn ltx_timestamp_ms(key: &str, data: &[u8]) -> Option<i64> {
    crate::layout::LtxName::parse_key(key)?;
    crate::ltx::Header::decode(data).ok().map(|h| h.timestamp_ms)
}

/// Wall clock and sleeping, injected so that tests and the component control time.
pub trait Clock: Send + Sync {
    fn now(&self) -> UnixNanos;
    fn sleep(&self, d: std::time::Duration);
}

/// The system clock (std works on native targets and on wasm32-wasip2).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixNanos {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
    }
    fn sleep(&self, d: std::time::Duration) {
        std::thread::sleep(d)
    }
}
