//! The sandbox every component instance runs in.
//!
//! * Outgoing HTTP: only to the replica's host and port; anything else is refused by the
//!   `send_request` hook with `HTTP-request-denied` (the component reports it as such).
//! * Filesystem: none, except a `file://` replica's directory, preopened read-only.
//! * Sockets and name lookups: none (WASI sockets are denied by default).
//! * Memory: a [`StoreLimits`] cap; growing past it traps the instance.
//! * Time: an epoch deadline per call; a runaway query traps with an interrupt.
//! * Environment: the replica configuration the host sets, plus only the credential variables
//!   the host names (and that are set).

use ltxvfs::replica_url::{ReplicaUrl, S3Config, Scheme};
use ltxvfs::s3_endpoint::S3Endpoint;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::error::Context as _;
use wasmtime::{Result, bail};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Credential variables passed through to instances when set (and nothing else of the host's
/// environment).
pub const DEFAULT_CREDENTIAL_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LITESTREAM_ACCESS_KEY_ID",
    "LITESTREAM_SECRET_ACCESS_KEY",
    "OSS_ACCESS_KEY_ID",
    "OSS_ACCESS_KEY_SECRET",
    "OSS_SESSION_TOKEN",
];

pub use ltxvfs::s3_endpoint::normalize_authority;

/// Where a replica URL makes the component send requests (S3: the shared
/// `ltxvfs::s3_endpoint` rules; `http(s)://`: the URL's host, as `src/wasi/static_http.rs`), and
/// which directory it reads for `file://`.
pub struct ReplicaAccess {
    pub authorities: Vec<String>,
    pub directory: Option<PathBuf>,
}

pub fn replica_access(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ReplicaAccess> {
    let u = ReplicaUrl::parse(url).map_err(|e| wasmtime::format_err!("{}", e.message))?;
    match u.scheme {
        Scheme::File => Ok(ReplicaAccess { authorities: Vec::new(), directory: Some(PathBuf::from(&u.path)) }),
        Scheme::Http | Scheme::Https => Ok(ReplicaAccess {
            authorities: vec![normalize_authority(&u.host, u.scheme == Scheme::Https)],
            directory: None,
        }),
        Scheme::S3 | Scheme::Oss => {
            // The component's own rules (`ltxvfs::s3_endpoint`), with the region it uses.
            let cfg = S3Config::resolve(&u, env).map_err(|e| wasmtime::format_err!("{}", e.message))?;
            let region = cfg.region.clone().unwrap_or_else(|| ltxvfs::replica_url::S3_DEFAULT_REGION.into());
            let ep = S3Endpoint::for_config(&cfg, &region).map_err(|e| wasmtime::format_err!("{}", e.message))?;
            Ok(ReplicaAccess { authorities: vec![ep.allowed_authority()], directory: None })
        }
        other => bail!(
            "{}",
            other.component_refusal().unwrap_or_else(|| format!(
                "replica URL scheme {:?} is not supported by the component",
                other.as_str()
            ))
        ),
    }
}

/// What one instance may do.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Normalised `host:port` the instance may send HTTP requests to.
    pub allowed: BTreeSet<String>,
    /// Host directory → guest path, read-only.
    pub preopens: Vec<(PathBuf, String)>,
    pub memory_limit: usize,
    pub deadline: Duration,
    /// Variables set in the instance's environment.
    pub env: Vec<(String, String)>,
}

impl Policy {
    pub fn build_ctx(&self) -> Result<WasiCtx> {
        let mut b = WasiCtx::builder();
        b.inherit_stderr();
        for (k, v) in &self.env {
            b.env(k, v);
        }
        for (host, guest) in &self.preopens {
            b.preopened_dir(host, guest, FsPerms::ReadOnly)
                .with_context(|| format!("cannot preopen {}", host.display()))?;
        }
        Ok(b.build())
    }
}

/// Counters shared by all instances of a host.
#[derive(Default, Debug)]
pub struct Counters {
    pub requests: AtomicU64,
    pub denied: AtomicU64,
}

/// The `send_request` hook: the allow-list.
pub struct Hooks {
    allowed: BTreeSet<String>,
    counters: Arc<Counters>,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(fut);
        let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = request.uri().authority().map(|a| normalize_authority(a.as_str(), https)).unwrap_or_default();
        if !self.allowed.contains(&authority) {
            self.counters.denied.fetch_add(1, Ordering::Relaxed);
            eprintln!("ltxvfs-host: refused outgoing HTTP to {authority} (not on the allow-list)");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// The data of one instance's store.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    table: ResourceTable,
    pub limits: StoreLimits,
}

impl State {
    pub fn new(policy: &Policy, counters: Arc<Counters>) -> Result<Self> {
        Ok(Self {
            wasi: policy.build_ctx()?,
            http: WasiHttpCtx::new(),
            hooks: Hooks { allowed: policy.allowed.clone(), counters },
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(policy.memory_limit).trap_on_grow_failure(true).build(),
        })
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_normalised() {
        assert_eq!(normalize_authority("127.0.0.1:8333", false), "127.0.0.1:8333");
        assert_eq!(normalize_authority("Example.COM", true), "example.com:443");
        assert_eq!(normalize_authority("example.com", false), "example.com:80");
        assert_eq!(normalize_authority("[::1]", false), "[::1]:80");
        assert_eq!(normalize_authority("[::1]:9000", false), "[::1]:9000");
    }

    #[test]
    fn replica_urls_map_to_their_server() {
        let none = |_: &str| None;
        let a = replica_access("s3://bkt/db?endpoint=http://127.0.0.1:8333&forcePathStyle=true", &none).unwrap();
        assert_eq!(a.authorities, vec!["127.0.0.1:8333"]);
        let a = replica_access("s3://bkt/db?endpoint=https://minio.local:9000&forcePathStyle=false", &none).unwrap();
        assert_eq!(a.authorities, vec!["bkt.minio.local:9000"]);
        let a = replica_access("s3://bkt/db?region=eu-west-1", &none).unwrap();
        assert_eq!(a.authorities, vec!["bkt.s3.eu-west-1.amazonaws.com:443"]);
        // Dotted buckets over HTTPS go path style, with a custom endpoint too.
        let a = replica_access("s3://my.bkt/db?endpoint=https://s3.example.com&forcePathStyle=false", &none).unwrap();
        assert_eq!(a.authorities, vec!["s3.example.com:443"]);
        let a = replica_access("s3://arn:aws:s3:us-west-2:123456789012:accesspoint/ap/db", &none).unwrap();
        assert_eq!(a.authorities, vec!["ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com:443"]);
        let a = replica_access("http://127.0.0.1:8000/replica", &none).unwrap();
        assert_eq!(a.authorities, vec!["127.0.0.1:8000"]);
        let a = replica_access("file:///srv/replica", &none).unwrap();
        assert!(a.authorities.is_empty());
        assert_eq!(a.directory, Some(PathBuf::from("/srv/replica")));
        assert!(replica_access("gs://b/p", &none).is_err());
    }
}
