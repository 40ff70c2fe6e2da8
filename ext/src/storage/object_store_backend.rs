//! One [`Storage`] over any object_store client: S3/OSS, GCS, Azure Blob and WebDAV differ
//! only in how their client is built and where they keep a file's creation time
//! (REPLICA.md §2), which [`Backend`] says.
//!
//! The core is synchronous; every call runs its futures on a private multi-thread tokio
//! runtime owned by the storage and waits with a plain blocking wait, so it may be called from
//! any thread, including threads inside some other tokio runtime. Dropping the storage shuts
//! the runtime down in the background, which is allowed from anywhere.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use ltxvfs::layout::LtxName;
use ltxvfs::storage::{ObjectInfo, PutMode, RangeRequest, Storage, UnixNanos, ltx_timestamp_ms};
use ltxvfs::{Error, Result};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, PutOptions, PutPayload, RetryConfig,
};

use super::http_guard::GuardedConnector;
use super::object_store_errors;

/// Parallel HEAD requests of a `with_metadata` listing (Litestream `DefaultMetadataConcurrency`).
pub const METADATA_CONCURRENCY: usize = 50;
/// Parallel ranged GETs of one `get_ranges` batch.
pub const GET_CONCURRENCY: usize = 16;

/// What distinguishes one object_store backend from another here.
#[derive(Debug, Clone)]
pub struct Backend {
    /// URL scheme for messages (`s3`, `gs`, `abs`, `webdav`).
    pub scheme: &'static str,
    /// Bucket or container (or host) for messages.
    pub container: String,
    /// The user-metadata key holding the LTX header timestamp (RFC 3339): S3 and GCS
    /// `litestream-timestamp`, Azure `litestreamtimestamp`; `None` where the store keeps no
    /// metadata (WebDAV: the modification time is all there is).
    pub timestamp_key: Option<&'static str>,
    /// Whether the store enforces [`PutMode::Create`] (README's table).
    pub conditional_create: bool,
    /// For [`Storage::describe`] (no secrets).
    pub describe: String,
}

/// No retries inside object_store: `ltxvfs::retrying_storage` retries every backend alike.
pub fn retry_config() -> RetryConfig {
    RetryConfig { max_retries: 0, ..RetryConfig::default() }
}

/// Client options with the request timeouts of `ltxvfs::retry`.
pub fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_timeout(ltxvfs::retry::REQUEST_TIMEOUT)
        .with_connect_timeout(ltxvfs::retry::CONNECT_TIMEOUT)
        .with_allow_http(allow_http)
}

/// The connector every backend uses (first-byte and body-progress timeouts, typed statuses).
pub fn connector() -> GuardedConnector {
    GuardedConnector::default()
}

/// A private runtime for one storage: futures run on it from any thread, and dropping it shuts
/// it down in the background (never blocking, even when dropped inside another runtime).
pub struct StorageRuntime(Option<tokio::runtime::Runtime>);

impl StorageRuntime {
    pub fn new(name: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the {name} runtime: {e}")))?;
        Ok(Self(Some(rt)))
    }

    /// Spawn `fut` on the runtime and wait, without needing (or tripping over) a runtime
    /// context on this thread.
    pub fn block_on<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let rt = self.0.as_ref().ok_or_else(|| Error::internal("storage runtime is shut down"))?;
        let handle = rt.spawn(fut);
        futures::executor::block_on(handle).map_err(|e| Error::internal(format!("storage task failed: {e}")))
    }
}

impl Drop for StorageRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    runtime: StorageRuntime,
    backend: Arc<Backend>,
    /// [`Storage::list_after`] through object_store's `list_with_offset` (S3 `start-after`);
    /// otherwise the trait's list-and-filter (Azure has no offset, and the emulators of the
    /// others are not known to honour one).
    server_side_offset: bool,
}

impl std::fmt::Debug for ObjectStoreStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreStorage").field("describe", &self.backend.describe).finish_non_exhaustive()
    }
}

impl ObjectStoreStorage {
    pub fn new(store: Arc<dyn ObjectStore>, runtime: StorageRuntime, backend: Backend) -> Self {
        Self { store, runtime, backend: Arc::new(backend), server_side_offset: false }
    }

    /// List from a position on the server ([`Self::server_side_offset`]).
    pub fn with_server_side_offset(mut self) -> Self {
        self.server_side_offset = true;
        self
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Run a future on this storage's runtime and wait for it, from any thread.
    pub fn block_on<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.block_on(fut)
    }

    /// Upload one object, optionally with the timestamp metadata (`timestamp`: RFC 3339).
    /// `mode` Create is conditional (`If-None-Match: *` or the store's equivalent); an
    /// existing key is `ErrorKind::AlreadyExists`.
    pub fn put_with_timestamp(&self, key: &str, data: Bytes, mode: PutMode, timestamp: Option<String>) -> Result<()> {
        let store = self.object_store();
        let path = to_path(key)?;
        let mut attributes = Attributes::new();
        if let (Some(ts), Some(k)) = (timestamp, self.backend.timestamp_key) {
            attributes.insert(Attribute::Metadata(k.into()), ts.into());
        }
        // Without a conditional put in the store (WebDAV), create-only is best effort: a HEAD,
        // then a plain PUT. Not atomic; `supports_conditional_create` says so.
        let emulate_create = mode == PutMode::Create && !self.backend.conditional_create;
        let mode = match mode {
            PutMode::Create if !emulate_create => object_store::PutMode::Create,
            _ => object_store::PutMode::Overwrite,
        };
        let key = key.to_string();
        let backend = Arc::clone(&self.backend);
        self.block_on(async move {
            if emulate_create {
                match store.head(&path).await {
                    Ok(_) => {
                        return Err(Error::new(
                            ltxvfs::ErrorKind::AlreadyExists,
                            format!("object already exists: {}://{}/{key}", backend.scheme, backend.container),
                        ));
                    }
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(map_error(&backend, e, "put", &key)),
                }
            }
            let opts = PutOptions { attributes, mode, ..Default::default() };
            store
                .put_opts(&path, PutPayload::from(data), opts)
                .await
                .map(|_| ())
                .map_err(|e| map_error(&backend, e, "put", &key))
        })?
    }
}

pub fn to_path(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| Error::config(format!("invalid object key {key:?}: {e}")))
}

pub fn datetime_nanos(t: chrono::DateTime<chrono::Utc>) -> UnixNanos {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// Parse the timestamp metadata (Go `time.RFC3339Nano`).
pub fn parse_timestamp(s: &str) -> Option<UnixNanos> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok()?.timestamp_nanos_opt()
}

/// The timestamp metadata as Litestream writes it: RFC 3339 with milliseconds, UTC.
pub fn format_timestamp_ms(ms: i64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn map_error(b: &Backend, e: object_store::Error, op: &str, key: &str) -> Error {
    object_store_errors::to_error(&e, &format!("{} {op}", b.scheme), &format!("{}://{}/{key}", b.scheme, b.container))
}

/// A range that starts at or past the end of the object: the server answers 416.
pub fn is_unsatisfiable_range(e: &object_store::Error) -> bool {
    object_store_errors::status(e) == Some(416)
}

async fn head_timestamp(store: &dyn ObjectStore, meta_key: &'static str, key: &str) -> Option<UnixNanos> {
    let path = Path::parse(key).ok()?;
    let res = store.get_opts(&path, GetOptions { head: true, ..Default::default() }).await;
    match res {
        Ok(r) => {
            let v = r.attributes.get(&Attribute::Metadata(meta_key.into()))?;
            let ts = parse_timestamp(v.as_ref());
            if ts.is_none() {
                tracing::debug!(key, value = %v.as_ref(), "unparsable timestamp metadata");
            }
            ts
        }
        Err(e) => {
            // Non-fatal, as in Litestream: fall back to the listing's time.
            tracing::debug!(key, error = %e, "HEAD for the timestamp metadata failed");
            None
        }
    }
}

async fn get_one(store: Arc<dyn ObjectStore>, backend: Arc<Backend>, r: RangeRequest) -> Result<Bytes> {
    let (start, end) = (r.range.start, r.range.end);
    if start >= end {
        return Ok(Bytes::new());
    }
    let path = to_path(&r.key)?;
    let range = if end == u64::MAX { GetRange::Offset(start) } else { GetRange::Bounded(start..end) };
    let res = store.get_opts(&path, GetOptions { range: Some(range), ..Default::default() }).await;
    match res {
        Ok(res) => res.bytes().await.map_err(|e| map_error(&backend, e, "get", &r.key)),
        Err(e) if is_unsatisfiable_range(&e) => Ok(Bytes::new()),
        Err(e) => Err(map_error(&backend, e, "get", &r.key)),
    }
}

/// LIST one level prefix (non-recursive), from `after` (exclusive, server-side) when given;
/// with metadata, HEAD every LTX object for its timestamp metadata (REPLICA.md §2).
async fn list_prefix(
    store: Arc<dyn ObjectStore>,
    backend: Arc<Backend>,
    prefix: String,
    after: Option<Path>,
    with_metadata: bool,
) -> Result<Vec<ObjectInfo>> {
    use futures::TryStreamExt;
    let path = if prefix.trim_matches('/').is_empty() { None } else { Some(to_path(&prefix)?) };
    let listed = match &after {
        // No delimiter with an offset in object_store: deeper keys are dropped below.
        Some(offset) => store.list_with_offset(path.as_ref(), offset).try_collect::<Vec<_>>().await,
        None => store.list_with_delimiter(path.as_ref()).await.map(|l| l.objects),
    };
    let objects = match listed {
        Ok(l) => l,
        // WebDAV answers 404 for a directory that does not exist yet; object stores list nothing.
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(map_error(&backend, e, "list", &prefix)),
    };
    // One level: an offset listing is recursive.
    let dir = match &path {
        Some(p) => format!("{p}/"),
        None => String::new(),
    };
    let one_level = |m: &object_store::ObjectMeta| {
        after.is_none() || m.location.as_ref().strip_prefix(dir.as_str()).is_some_and(|rest| !rest.contains('/'))
    };
    let mut out: Vec<ObjectInfo> = objects
        .into_iter()
        .filter(one_level)
        .map(|m| ObjectInfo { key: m.location.to_string(), size: m.size, created_at: datetime_nanos(m.last_modified) })
        .collect();
    if let (true, Some(meta_key)) = (with_metadata, backend.timestamp_key) {
        let wanted: Vec<usize> = (0..out.len()).filter(|&i| LtxName::parse_key(&out[i].key).is_some()).collect();
        let stamps: Vec<(usize, Option<UnixNanos>)> = futures::stream::iter(wanted.into_iter().map(|i| {
            let store = Arc::clone(&store);
            let key = out[i].key.clone();
            async move { (i, head_timestamp(store.as_ref(), meta_key, &key).await) }
        }))
        .buffer_unordered(METADATA_CONCURRENCY)
        .collect()
        .await;
        for (i, ts) in stamps {
            if let Some(ts) = ts {
                out[i].created_at = ts;
            }
        }
    }
    Ok(out)
}

impl Storage for ObjectStoreStorage {
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let fut = list_prefix(self.object_store(), Arc::clone(&self.backend), prefix.to_string(), None, with_metadata);
        self.block_on(fut)?
    }

    fn list_after(&self, prefix: &str, after_key: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let offset = match Path::parse(after_key) {
            Ok(p) if self.server_side_offset => p,
            _ => {
                let mut all = self.list(prefix, with_metadata)?;
                all.retain(|o| o.key.as_str() > after_key);
                return Ok(all);
            }
        };
        let (store, backend) = (self.object_store(), Arc::clone(&self.backend));
        self.block_on(list_prefix(store, backend, prefix.to_string(), Some(offset), with_metadata))?
    }

    /// All levels at once, as concurrent requests: an open lists ten prefixes, and each LIST
    /// is a round trip.
    fn list_many(&self, prefixes: &[String], with_metadata: bool) -> Vec<Result<Vec<ObjectInfo>>> {
        let store = self.object_store();
        let backend = Arc::clone(&self.backend);
        let prefixes = prefixes.to_vec();
        let n = prefixes.len();
        let all = self.block_on(async move {
            futures::future::join_all(
                prefixes
                    .into_iter()
                    .map(|p| list_prefix(Arc::clone(&store), Arc::clone(&backend), p, None, with_metadata)),
            )
            .await
        });
        match all {
            Ok(v) => v,
            Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
        }
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        if requests.is_empty() {
            return Vec::new();
        }
        let store = self.object_store();
        let backend = Arc::clone(&self.backend);
        let reqs = requests.to_vec();
        let res = self.block_on(async move {
            futures::stream::iter(reqs.into_iter().map(|r| get_one(Arc::clone(&store), Arc::clone(&backend), r)))
                .buffered(GET_CONCURRENCY)
                .collect::<Vec<_>>()
                .await
        });
        match res {
            Ok(v) => v,
            Err(e) => requests.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// LTX files get the timestamp metadata from their header, as Litestream writes it.
    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let ts = ltx_timestamp_ms(key, &data).and_then(format_timestamp_ms);
        self.put_with_timestamp(key, data, mode, ts)
    }

    fn supports_conditional_create(&self) -> bool {
        self.backend.conditional_create
    }

    /// One HEAD request (the poller's probe of the next L0 name).
    fn exists(&self, key: &str) -> Result<bool> {
        let store = self.object_store();
        let path = to_path(key)?;
        match self.block_on(async move { store.head(&path).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(map_error(&self.backend, e, "head", key)),
        }
    }

    fn describe(&self) -> String {
        self.backend.describe.clone()
    }
}

/// A backend's description for logs and errors: `<location>[/<prefix>]`, then `details` in
/// parentheses when there are any (region, endpoint, …). Holds no secrets: callers pass none.
pub fn describe_location(location: String, prefix: &str, details: &[String]) -> String {
    let mut out = location;
    if !prefix.is_empty() {
        out.push('/');
        out.push_str(prefix);
    }
    if !details.is_empty() {
        out.push_str(&format!(" ({})", details.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_like_go_rfc3339nano_and_format_like_litestream() {
        assert_eq!(parse_timestamp("2026-11-22T06:16:31.755Z"), Some(1_795_328_191_755_000_000));
        assert_eq!(parse_timestamp("2026-11-22T06:16:31Z"), Some(1_795_328_191_000_000_000));
        assert_eq!(parse_timestamp("2026-11-22T07:16:31.000000001+01:00"), Some(1_795_328_191_000_000_001));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(format_timestamp_ms(1_795_328_191_755).as_deref(), Some("2026-11-22T06:16:31.755Z"));
    }
}
