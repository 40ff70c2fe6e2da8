//! `nats://[user:password@]host[:port]/bucket` replicas: a NATS JetStream object store, through
//! async-nats on a private tokio runtime (the pattern of [`super::object_store_backend`]).
//!
//! - Objects are named `ltx/<L>/<min>-<max>.ltx` in the bucket (REPLICA.md §1), as Litestream's
//!   `nats` replica client writes them; the storage keys are `<bucket>/ltx/<L>/F` (the URL
//!   path, like every other backend) and [`config::NatsConfig::object_name`] maps them.
//! - Listing: the object store lists the whole bucket (one consumer over the meta subjects);
//!   the entries one level below the prefix are kept. [`Storage::list_many`] lists once for
//!   all prefixes. Created-at is the `Litestream-Timestamp` object header (RFC 3339, the LTX
//!   header time, which Litestream sets), else the object's modification time: both come with
//!   the listing, so `with_metadata` changes nothing (Litestream ignores it too).
//! - Reads: JetStream objects cannot be range-read, so each object is fetched whole once and
//!   kept in a bounded LRU ([`cache`]); ranges are cut from it. Concurrent reads of one object
//!   share its fetch.
//! - [`PutMode::Create`] is atomic: the meta message is published with
//!   `Nats-Expected-Last-Subject-Sequence` ([`put`]), so of two racing creators exactly one
//!   wins; [`PutMode::Overwrite`] is the object store's own put. Puts record the
//!   `Litestream-Timestamp` header from the LTX header, as Litestream does.
//! - Every request is bounded: connect by [`ltxvfs::retry::CONNECT_TIMEOUT`], each request and
//!   each chunk of a read by [`ltxvfs::retry::REQUEST_TIMEOUT`]. Retries are left to
//!   `ltxvfs::retrying_storage`.
//! - The component build cannot reach NATS (no raw sockets in wasi-http).

pub mod cache;
pub mod config;
mod connection;
pub mod errors;
mod put;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::object_store::{ObjectInfo as NatsObjectInfo, ObjectMetadata};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use ltxvfs::retry::REQUEST_TIMEOUT;
use ltxvfs::storage::{ObjectInfo, PutMode, RangeRequest, Storage, UnixNanos, ltx_timestamp_ms};
use ltxvfs::{Error, ErrorKind, Result};
use tokio::io::AsyncReadExt;

use super::object_store_backend::{StorageRuntime, format_timestamp_ms, parse_timestamp};
pub use cache::ObjectCache;
pub use config::NatsConfig;
use connection::Remote;

/// The object header holding the LTX header timestamp (Litestream `HeaderKeyTimestamp`).
pub const TIMESTAMP_HEADER: &str = "Litestream-Timestamp";
/// Objects fetched at once by one `get_ranges` batch.
pub const FETCH_CONCURRENCY: usize = 8;

pub struct NatsStorage {
    remote: Arc<Remote>,
    cache: Arc<ObjectCache>,
    runtime: StorageRuntime,
}

impl std::fmt::Debug for NatsStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStorage").field("cfg", &self.remote.cfg).finish_non_exhaustive()
    }
}

pub fn open(cfg: NatsConfig) -> Result<NatsStorage> {
    Ok(NatsStorage {
        remote: Arc::new(Remote::new(cfg)),
        cache: ObjectCache::new(cache::DEFAULT_CAPACITY),
        runtime: StorageRuntime::new("ltxvfs-nats")?,
    })
}

/// `fut` within `limit`, else a Network error naming the operation.
async fn within<T>(limit: Duration, op: &str, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, fut).await.map_err(|_| errors::timed_out(op, what, limit))?
}

/// Created-at of an object: its `Litestream-Timestamp` header, else its modification time.
pub fn created_at(headers: Option<&HeaderMap>, modified_nanos: Option<UnixNanos>) -> UnixNanos {
    headers
        .and_then(|h| h.get(TIMESTAMP_HEADER))
        .and_then(|v| parse_timestamp(v.as_str()))
        .or(modified_nanos)
        .unwrap_or(0)
}

fn info_created_at(o: &NatsObjectInfo) -> UnixNanos {
    let modified = o.modified.and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok());
    created_at(o.headers.as_ref(), modified)
}

/// The objects of a whole-bucket listing that sit one level below `prefix` (an object name
/// prefix ending in `/`, or empty for the bucket root).
pub fn one_level<'a>(names: impl Iterator<Item = &'a str>, prefix: &str) -> Vec<&'a str> {
    names.filter(|n| n.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))).collect()
}

impl NatsStorage {
    fn block_on<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.block_on(fut)
    }

    fn describe_object(&self, name: &str) -> String {
        self.remote.cfg.describe_object(name)
    }

    /// Every live object of the bucket.
    async fn list_bucket(remote: Arc<Remote>) -> Result<Vec<NatsObjectInfo>> {
        let what = remote.cfg.describe();
        let conn = remote.conn().await?;
        let mut list = within(REQUEST_TIMEOUT, "list", &what, async {
            conn.store
                .list()
                .await
                .map_err(|e| Error::new(errors::list_kind(e.kind()), format!("nats list {what}: {e}")))
        })
        .await?;
        let mut out = Vec::new();
        loop {
            let next = tokio::time::timeout(REQUEST_TIMEOUT, list.next())
                .await
                .map_err(|_| errors::timed_out("list", &what, REQUEST_TIMEOUT))?;
            match next {
                None => break,
                Some(Ok(info)) if !info.deleted => out.push(info),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Error::network(format!("nats list {what}: {e}"))),
            }
        }
        Ok(out)
    }

    /// The listing of one storage prefix out of a bucket listing.
    fn level(&self, all: &[NatsObjectInfo], prefix: &str) -> Vec<ObjectInfo> {
        let cfg = &self.remote.cfg;
        let Some(name_prefix) = cfg.object_name(prefix) else {
            return Vec::new(); // outside this replica: nothing there
        };
        let by_name: std::collections::HashMap<&str, &NatsObjectInfo> =
            all.iter().map(|o| (o.name.as_str(), o)).collect();
        one_level(all.iter().map(|o| o.name.as_str()), name_prefix)
            .into_iter()
            .filter_map(|n| by_name.get(n))
            .map(|o| ObjectInfo { key: cfg.key_of(&o.name), size: o.size as u64, created_at: info_created_at(o) })
            .collect()
    }

    /// The whole object (cached; one fetch shared by concurrent callers).
    fn fetch_whole(&self, key: &str) -> futures::future::BoxFuture<'static, Result<Bytes>> {
        let Some(name) = self.remote.cfg.object_name(key).map(str::to_string) else {
            let e = Error::not_found(format!("nats object {key} not found: outside {}", self.remote.cfg.describe()));
            return futures::future::ready(Err(e)).boxed();
        };
        let remote = Arc::clone(&self.remote);
        let shown = self.describe_object(&name);
        self.cache.get_or_fetch(key, move || read_object(remote, name, shown).boxed())
    }
}

/// Fetch one object whole: each step (the info lookup, every chunk) within the request timeout.
async fn read_object(remote: Arc<Remote>, name: String, shown: String) -> Result<Bytes> {
    let conn = remote.conn().await?;
    let mut object = within(REQUEST_TIMEOUT, "get", &shown, async {
        conn.store.get(&name).await.map_err(|e| match errors::get_kind(e.kind()) {
            ErrorKind::NotFound => Error::not_found(format!("nats object {shown} not found")),
            kind => Error::new(kind, format!("nats get {shown}: {e}")),
        })
    })
    .await?;
    let size = object.info().size;
    let mut out = Vec::with_capacity(size.min(64 << 20));
    loop {
        let n = tokio::time::timeout(REQUEST_TIMEOUT, object.read_buf(&mut out))
            .await
            .map_err(|_| errors::timed_out("read", &shown, REQUEST_TIMEOUT))?
            .map_err(|e| Error::network(format!("nats read {shown}: {e}")))?;
        if n == 0 {
            break;
        }
        if out.len() == out.capacity() {
            out.reserve(size.saturating_sub(out.len()).max(128 << 10));
        }
    }
    if out.len() != size {
        return Err(Error::network(format!("nats read {shown}: got {} of {size} bytes", out.len())));
    }
    Ok(Bytes::from(out))
}

/// The bytes of `range` within a whole object (clamped to its end).
fn slice(data: &Bytes, start: u64, end: u64) -> Bytes {
    let len = data.len() as u64;
    let (s, e) = (start.min(len), end.min(len));
    if s >= e { Bytes::new() } else { data.slice(s as usize..e as usize) }
}

impl Storage for NatsStorage {
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.list_many(&[prefix.to_string()], with_metadata).pop().unwrap_or_else(|| Err(Error::internal("no listing")))
    }

    /// One bucket listing serves every prefix.
    fn list_many(&self, prefixes: &[String], _with_metadata: bool) -> Vec<Result<Vec<ObjectInfo>>> {
        let inside = prefixes.iter().any(|p| self.remote.cfg.object_name(p).is_some());
        let all = if inside {
            self.block_on(Self::list_bucket(Arc::clone(&self.remote))).and_then(|r| r)
        } else {
            Ok(Vec::new())
        };
        match all {
            Ok(all) => prefixes.iter().map(|p| Ok(self.level(&all, p))).collect(),
            Err(e) => prefixes.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let mut keys: Vec<&str> =
            requests.iter().filter(|r| r.range.start < r.range.end).map(|r| r.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let fetches: Vec<_> = keys.iter().map(|k| self.fetch_whole(k)).collect();
        let fetched = self.block_on(async move {
            futures::stream::iter(fetches).buffered(FETCH_CONCURRENCY).collect::<Vec<Result<Bytes>>>().await
        });
        let fetched = match fetched {
            Ok(v) => v,
            Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
        };
        requests
            .iter()
            .map(|r| {
                if r.range.start >= r.range.end {
                    return Ok(Bytes::new());
                }
                let i = keys.binary_search(&r.key.as_str()).map_err(|_| Error::internal("nats fetch lost"))?;
                let data = fetched[i].as_ref().map_err(Error::clone)?;
                Ok(slice(data, r.range.start, r.range.end))
            })
            .collect()
    }

    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let cfg = &self.remote.cfg;
        let Some(name) = cfg.object_name(key).map(str::to_string) else {
            return Err(Error::config(format!("nats put {key}: outside {}", cfg.describe())));
        };
        let shown = self.describe_object(&name);
        let mut headers = HeaderMap::new();
        if let Some(ts) = ltx_timestamp_ms(key, &data).and_then(format_timestamp_ms) {
            headers.insert(TIMESTAMP_HEADER, ts.as_str());
        }
        let remote = Arc::clone(&self.remote);
        // Big objects need more than one request's time: a minute per 64 MiB on top.
        let limit = REQUEST_TIMEOUT + Duration::from_secs(60 * (data.len() as u64 / (64 << 20) + 1));
        self.cache.invalidate(key);
        let result = self.block_on(async move {
            within(limit, "put", &shown.clone(), async {
                let conn = remote.conn().await?;
                match mode {
                    PutMode::Create => put::create(&conn, &remote.cfg.bucket, &name, &shown, data, headers).await,
                    PutMode::Overwrite => {
                        let meta = ObjectMetadata { name: name.clone(), headers: Some(headers), ..Default::default() };
                        conn.store
                            .put(meta, &mut data.as_ref())
                            .await
                            .map(|_| ())
                            .map_err(|e| Error::new(errors::put_kind(e.kind()), format!("nats put {shown}: {e}")))
                    }
                }
            })
            .await
        })?;
        self.cache.invalidate(key);
        result
    }

    fn supports_conditional_create(&self) -> bool {
        true
    }

    /// One meta lookup (the poller's probe of the next L0 name).
    fn exists(&self, key: &str) -> Result<bool> {
        let Some(name) = self.remote.cfg.object_name(key).map(str::to_string) else { return Ok(false) };
        let shown = self.describe_object(&name);
        let remote = Arc::clone(&self.remote);
        self.block_on(async move {
            let conn = remote.conn().await?;
            within(REQUEST_TIMEOUT, "info", &shown.clone(), async {
                match conn.store.info(&name).await {
                    Ok(info) => Ok(!info.deleted),
                    Err(e) => match errors::info_kind(e.kind()) {
                        ErrorKind::NotFound => Ok(false),
                        kind => Err(Error::new(kind, format!("nats info {shown}: {e}"))),
                    },
                }
            })
            .await
        })?
    }

    fn describe(&self) -> String {
        self.remote.cfg.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltxvfs::replica_url::ReplicaUrl;

    #[test]
    fn one_level_below_a_prefix() {
        let names = ["ltx/0/a.ltx", "ltx/0/b.ltx", "ltx/0/nested/c.ltx", "ltx/1/d.ltx", "ltx/0/"];
        assert_eq!(one_level(names.iter().copied(), "ltx/0/"), vec!["ltx/0/a.ltx", "ltx/0/b.ltx"]);
        assert!(one_level(names.iter().copied(), "ltx/2/").is_empty());
        assert_eq!(one_level(names.iter().copied(), "ltx/1/"), vec!["ltx/1/d.ltx"]);
    }

    #[test]
    fn created_at_prefers_the_header() {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, "2026-11-22T06:16:31.755Z");
        assert_eq!(created_at(Some(&h), Some(5)), 1_795_328_191_755_000_000);
        assert_eq!(created_at(None, Some(5)), 5);
        let mut bad = HeaderMap::new();
        bad.insert(TIMESTAMP_HEADER, "yesterday");
        assert_eq!(created_at(Some(&bad), Some(5)), 5);
        assert_eq!(created_at(None, None), 0);
    }

    #[test]
    fn slices_clamp_to_the_object() {
        let d = Bytes::from_static(b"0123456789");
        assert_eq!(slice(&d, 2, 5), Bytes::from_static(b"234"));
        assert_eq!(slice(&d, 8, 100), Bytes::from_static(b"89"));
        assert!(slice(&d, 10, 20).is_empty());
        assert!(slice(&d, 50, u64::MAX).is_empty());
    }

    #[test]
    fn a_server_that_is_down_is_a_network_error_and_no_secret_leaks() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = ReplicaUrl::parse(&format!("nats://u:Pl4nted@127.0.0.1:{port}/bkt")).unwrap();
        let s = open(NatsConfig::resolve(&url, &|_: &str| None).unwrap()).unwrap();
        let t = std::time::Instant::now();
        let e = s.list("bkt/ltx/0/", false).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
        assert!(t.elapsed() < ltxvfs::retry::CONNECT_TIMEOUT * 2, "{:?}", t.elapsed());
        assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e:?}");
        let r = s.get_ranges(&[RangeRequest { key: "bkt/ltx/0/x".into(), range: 0..1 }]);
        assert_eq!(r[0].as_ref().unwrap_err().kind, ErrorKind::Network);
        assert!(!format!("{e:?} {s:?} {}", s.describe()).contains("Pl4nted"));
        // Outside the replica: nothing listed, nothing found, no request made.
        assert!(s.list("elsewhere/ltx/0/", false).unwrap().is_empty());
        assert!(!s.exists("elsewhere/ltx/0/x").unwrap());
    }

    /// A server that accepts the connection and then says nothing: the connect gives up after
    /// the connect timeout (5 s) with a Network error instead of hanging.
    #[test]
    fn a_silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = std::thread::spawn(move || listener.accept().map(|(sock, _)| sock));
        let url = ReplicaUrl::parse(&format!("nats://127.0.0.1:{port}/bkt")).unwrap();
        let s = open(NatsConfig::resolve(&url, &|_: &str| None).unwrap()).unwrap();
        let t = std::time::Instant::now();
        let e = s.list("bkt/ltx/0/", false).unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
        assert!(took >= ltxvfs::retry::CONNECT_TIMEOUT / 2, "{took:?}: {e:?}");
        assert!(took < ltxvfs::retry::CONNECT_TIMEOUT + Duration::from_secs(2), "{took:?}: {e:?}");
        drop(holder.join());
    }
}
