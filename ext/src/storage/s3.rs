//! `s3://` and `oss://` replicas through object_store's AmazonS3 client (REPLICA.md §1–§2).
//!
//! Requests, listings, timestamps and puts are the shared [`super::object_store_backend`];
//! this module builds the client (region lookup, credentials, `AWS_CA_BUNDLE`). Where requests
//! go (virtual-hosted or path style, providers, access points) is [`ltxvfs::s3_endpoint`], the
//! same rules the component and the host's allow-list use.
//!
//! Every request is bounded (`ltxvfs::retry`): 5 s to connect, 8 s to the first byte, 5 s of
//! silence inside a body, 10 s in all; a body shorter than its Content-Length is an error
//! ([`super::http_guard`]). object_store does not retry: the core's retry layer does, by error
//! kind ([`super::object_store_errors`]), within `max_wait`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use ltxvfs::replica_url::S3Config;
use ltxvfs::s3_endpoint::S3Endpoint;
use ltxvfs::storage::{ObjectInfo, PutMode, RangeRequest, Storage};
use ltxvfs::{Error, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{Certificate, ClientOptions, ObjectStore};

use super::object_store_backend::{
    self, Backend, ObjectStoreStorage, StorageRuntime, connector, describe_location, retry_config,
};
#[cfg(test)]
use super::object_store_backend::{format_timestamp_ms, is_unsatisfiable_range, parse_timestamp};

/// User metadata key holding the LTX header timestamp (RFC 3339 with fraction).
pub const METADATA_TIMESTAMP_KEY: &str = "litestream-timestamp";
pub use object_store_backend::{GET_CONCURRENCY, METADATA_CONCURRENCY};

const REGION_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// An S3-compatible replica: the shared object_store backend with an AmazonS3 client.
pub struct S3Storage {
    inner: ObjectStoreStorage,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage").field("describe", &self.inner.describe()).finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Build the client. `env` is consulted only for the credential chain variables that
    /// object_store otherwise reads from the process environment itself
    /// (`AWS_CONTAINER_CREDENTIALS_*`, shared credentials file, `AWS_PROFILE`).
    ///
    /// Without a region (no URL/env region, no custom endpoint) the bucket's region is looked up
    /// with an anonymous HEAD on `https://<bucket>.s3.amazonaws.com` (10 s at most), falling back
    /// to `us-east-1` with a warning.
    pub fn new(cfg: &S3Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let runtime = StorageRuntime::new("ltxvfs-s3")?;

        // A CA bundle only matters to TLS: with a plain-http endpoint every request goes there,
        // and parsing the bundle (~150 certificates) costs an open about 30 ms.
        let certs = if plain_http_endpoint(cfg) { Vec::new() } else { load_ca_bundle(cfg.ca_bundle.as_deref()) };
        let options = client_options(cfg, &certs);

        let region = match &cfg.region {
            Some(r) => r.clone(),
            None => {
                let bucket = cfg.bucket.clone();
                let opts = options.clone();
                let found = runtime.block_on(async move {
                    tokio::time::timeout(
                        REGION_LOOKUP_TIMEOUT,
                        object_store::aws::resolve_bucket_region(&bucket, &opts),
                    )
                    .await
                })?;
                match found {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => {
                        tracing::warn!(bucket = %cfg.bucket, error = %e, "cannot look up the bucket region; using us-east-1");
                        ltxvfs::replica_url::S3_DEFAULT_REGION.to_string()
                    }
                    Err(_) => {
                        tracing::warn!(bucket = %cfg.bucket, "bucket region lookup timed out; using us-east-1");
                        ltxvfs::replica_url::S3_DEFAULT_REGION.to_string()
                    }
                }
            }
        };

        let store = match build_store(cfg, &region, options, env) {
            Ok(s) => s,
            Err(e) if !certs.is_empty() => {
                // rustls rejected something in the bundle: keep going with the system roots.
                tracing::warn!(
                    bundle = cfg.ca_bundle.as_deref().unwrap_or(""),
                    error = %e,
                    "cannot use the AWS_CA_BUNDLE certificates; continuing with the system trust store"
                );
                build_store(cfg, &region, client_options(cfg, &[]), env)?
            }
            Err(e) => return Err(e),
        };

        let mut details = vec![format!("region {region}")];
        details.extend(cfg.endpoint.iter().map(|ep| format!("endpoint {ep}")));
        if cfg.force_path_style {
            details.push("path-style".into());
        }
        let describe = describe_location(format!("s3://{}", cfg.bucket), &cfg.prefix, &details);

        let backend = Backend {
            scheme: "s3",
            container: cfg.bucket.clone(),
            timestamp_key: Some(METADATA_TIMESTAMP_KEY),
            // S3 and SeaweedFS enforce `If-None-Match: *` (object_store's default ETag mode).
            conditional_create: true,
            describe,
        };
        // ListObjectsV2 `start-after`: a poll lists L0 from its position on the server.
        Ok(Self { inner: ObjectStoreStorage::new(Arc::new(store), runtime, backend).with_server_side_offset() })
    }

    /// The underlying object_store client (for writers and tests).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.object_store()
    }

    /// Run a future on this storage's runtime and wait for it, from any thread.
    pub fn block_on<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.block_on(fut)
    }

    /// Upload one object, optionally with the `litestream-timestamp` user metadata.
    /// `mode` Create sends `If-None-Match: *`; an existing key is `ErrorKind::AlreadyExists`.
    pub fn put_with_timestamp(&self, key: &str, data: Bytes, mode: PutMode, ts: Option<String>) -> Result<()> {
        self.inner.put_with_timestamp(key, data, mode, ts)
    }
}

/// Read `AWS_CA_BUNDLE`: a PEM file of extra trusted roots. Problems are warnings, never errors.
fn load_ca_bundle(path: Option<&str>) -> Vec<Certificate> {
    let Some(path) = path else { return Vec::new() };
    let pem = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(path, error = %e, "cannot read AWS_CA_BUNDLE; continuing without it");
            return Vec::new();
        }
    };
    match Certificate::from_pem_bundle(&pem) {
        Ok(certs) if certs.is_empty() => {
            tracing::warn!(path, "AWS_CA_BUNDLE holds no PEM certificates; continuing without it");
            certs
        }
        Ok(certs) => {
            tracing::debug!(path, count = certs.len(), "loaded AWS_CA_BUNDLE");
            certs
        }
        Err(e) => {
            tracing::warn!(path, error = %e, "cannot parse AWS_CA_BUNDLE; continuing without it");
            Vec::new()
        }
    }
}

/// Whether every request goes out as plain HTTP (no TLS), by the shared endpoint rules. The
/// scheme does not depend on the region, so any region will do here.
fn plain_http_endpoint(cfg: &S3Config) -> bool {
    S3Endpoint::for_config(cfg, ltxvfs::replica_url::S3_DEFAULT_REGION).is_ok_and(|e| !e.https)
}

fn client_options(cfg: &S3Config, certs: &[Certificate]) -> ClientOptions {
    let mut o = object_store_backend::client_options(plain_http_endpoint(cfg));
    if cfg.skip_verify {
        o = o.with_allow_invalid_certificates(true);
    }
    for c in certs {
        o = o.with_root_certificate(c.clone());
    }
    o
}

fn build_store(
    cfg: &S3Config,
    region: &str,
    mut options: ClientOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AmazonS3> {
    // Where requests go is `ltxvfs::s3_endpoint` (shared with the component and the host): the
    // bucket URL is handed to object_store as a virtual-hosted endpoint, which it uses as is.
    let ep = S3Endpoint::for_config(cfg, region)?;
    if !ep.extra_headers().is_empty() {
        let mut headers = HeaderMap::new();
        for (k, v) in ep.extra_headers() {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        options = options.with_default_headers(headers);
    }
    let mut b = AmazonS3Builder::new()
        .with_region(&ep.region)
        .with_retry(retry_config())
        .with_client_options(options)
        .with_http_connector(connector())
        .with_bucket_name(&cfg.bucket)
        .with_endpoint(ep.bucket_url())
        .with_virtual_hosted_style_request(true);

    let getenv = |k: &str| env(k).filter(|v| !v.is_empty());
    match (&cfg.access_key_id, &cfg.secret_access_key) {
        (Some(id), Some(secret)) => {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = &cfg.session_token {
                b = b.with_token(t);
            }
        }
        (Some(_), None) => {
            return Err(Error::config("an S3 access key id is set but no secret access key (AWS_SECRET_ACCESS_KEY)"));
        }
        (None, Some(_)) => {
            return Err(Error::config("an S3 secret access key is set but no access key id (AWS_ACCESS_KEY_ID)"));
        }
        (None, None) => {
            if let Some((id, secret, token)) = shared_credentials(&getenv) {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = token {
                    b = b.with_token(t);
                }
            } else {
                // object_store's own chain: web identity (read from the process env by object_store),
                // container credentials, then instance metadata.
                for (var, key) in [
                    ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", AmazonS3ConfigKey::ContainerCredentialsRelativeUri),
                    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", AmazonS3ConfigKey::ContainerCredentialsFullUri),
                    ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", AmazonS3ConfigKey::ContainerAuthorizationTokenFile),
                    ("AWS_ROLE_SESSION_NAME", AmazonS3ConfigKey::RoleSessionName),
                ] {
                    if let Some(v) = getenv(var) {
                        b = b.with_config(key, v);
                    }
                }
                if !asks_for_instance_metadata(&getenv) {
                    // No credentials anywhere and the instance provider not asked for: send
                    // unsigned requests rather than reach for the cloud metadata address.
                    b = b.with_skip_signature(true);
                }
            }
        }
    }

    b.build().map_err(|e| Error::config(format!("cannot create the S3 client for bucket {:?}: {e}", cfg.bucket)))
}

/// Whether the credential chain may go on to the cloud metadata endpoint (169.254.169.254):
/// only when `LITESTREAM_S3_CREDENTIALS=instance` asks for it, or a web-identity or container
/// provider is configured (those are what the chain then uses).
fn asks_for_instance_metadata(getenv: &dyn Fn(&str) -> Option<String>) -> bool {
    let asked = getenv("LITESTREAM_S3_CREDENTIALS").is_some_and(|v| v.eq_ignore_ascii_case("instance"));
    let web_identity = getenv("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && getenv("AWS_ROLE_ARN").is_some();
    let container = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    asked || web_identity || container
}

/// Static keys from the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
/// `~/.aws/credentials`), profile `AWS_PROFILE` or `default`.
fn shared_credentials(getenv: &dyn Fn(&str) -> Option<String>) -> Option<(String, String, Option<String>)> {
    let path =
        getenv("AWS_SHARED_CREDENTIALS_FILE").or_else(|| getenv("HOME").map(|h| format!("{h}/.aws/credentials")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let profile = getenv("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    parse_shared_credentials(&text, &profile)
}

fn parse_shared_credentials(text: &str, profile: &str) -> Option<(String, String, Option<String>)> {
    let (mut in_profile, mut id, mut secret, mut token) = (false, None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some((id?, secret?, token))
}

impl Storage for S3Storage {
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix, with_metadata)
    }
    fn list_after(&self, prefix: &str, after_key: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.inner.list_after(prefix, after_key, with_metadata)
    }
    fn list_many(&self, prefixes: &[String], with_metadata: bool) -> Vec<Result<Vec<ObjectInfo>>> {
        self.inner.list_many(prefixes, with_metadata)
    }
    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        self.inner.get_ranges(requests)
    }
    /// LTX files get the `litestream-timestamp` metadata from their header (REPLICA.md §2).
    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        self.inner.put(key, data, mode)
    }
    fn supports_conditional_create(&self) -> bool {
        self.inner.supports_conditional_create()
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltxvfs::ErrorKind;

    #[test]
    fn timestamps_parse_like_go_rfc3339nano() {
        assert_eq!(parse_timestamp("2026-11-22T06:16:31.755Z"), Some(1_795_328_191_755_000_000));
        assert_eq!(parse_timestamp("2026-11-22T06:16:31Z"), Some(1_795_328_191_000_000_000));
        assert_eq!(parse_timestamp("2026-11-22T07:16:31.000000001+01:00"), Some(1_795_328_191_000_000_001));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn put_timestamps_are_rfc3339_millis_utc() {
        assert_eq!(format_timestamp_ms(1_795_328_191_755).as_deref(), Some("2026-11-22T06:16:31.755Z"));
        assert_eq!(parse_timestamp(&format_timestamp_ms(1_795_328_191_755).unwrap()), Some(1_795_328_191_755_000_000));
    }

    #[test]
    fn no_metadata_endpoint_unless_asked() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(!asks_for_instance_metadata(&env(&[])));
        assert!(!asks_for_instance_metadata(&env(&[("AWS_ROLE_ARN", "r")])));
        assert!(asks_for_instance_metadata(&env(&[("LITESTREAM_S3_CREDENTIALS", "instance")])));
        assert!(asks_for_instance_metadata(&env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "f"), ("AWS_ROLE_ARN", "r")])));
        assert!(asks_for_instance_metadata(&env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://x")])));
    }

    #[test]
    fn shared_credentials_file_profiles() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key=S\n\n[other]\n# c\naws_access_key_id=B\naws_secret_access_key = T\naws_session_token = TOK\n";
        assert_eq!(parse_shared_credentials(text, "default"), Some(("A".into(), "S".into(), None)));
        assert_eq!(parse_shared_credentials(text, "other"), Some(("B".into(), "T".into(), Some("TOK".into()))));
        assert_eq!(parse_shared_credentials(text, "missing"), None);
    }

    #[test]
    fn unsatisfiable_ranges_are_recognised_by_status_only() {
        use super::super::http_guard::Failure;
        use object_store::client::{HttpError, HttpErrorKind};
        let st = |status: u16| object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(HttpErrorKind::Request, Failure::Status { status, body: String::new() })),
        };
        assert!(is_unsatisfiable_range(&st(416)));
        assert!(!is_unsatisfiable_range(&st(500)));
        let text = object_store::Error::Generic { store: "S3", source: "416 Range Not Satisfiable".into() };
        assert!(!is_unsatisfiable_range(&text), "text is never matched");
    }

    #[test]
    fn ca_bundle_problems_are_not_fatal() {
        assert!(load_ca_bundle(None).is_empty());
        assert!(load_ca_bundle(Some("/nonexistent/bundle.pem")).is_empty());
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk.pem");
        std::fs::write(&junk, b"not a certificate").unwrap();
        assert!(load_ca_bundle(Some(junk.to_str().unwrap())).is_empty());
    }

    #[test]
    fn system_ca_bundle_loads_and_builds() {
        // The machine's AWS_CA_BUNDLE (or the Debian bundle): every certificate must be accepted,
        // so no fallback to the system store happens.
        let path = std::env::var("AWS_CA_BUNDLE").unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
        if !std::path::Path::new(&path).exists() {
            eprintln!("skipped: no CA bundle at {path}");
            return;
        }
        let certs = load_ca_bundle(Some(&path));
        assert!(!certs.is_empty(), "{path}");
        let cfg = S3Config {
            bucket: "bkt".into(),
            prefix: String::new(),
            region: Some("us-east-1".into()),
            endpoint: Some("https://s3.example.com".into()),
            force_path_style: true,
            skip_verify: false,
            access_key_id: Some("K".into()),
            secret_access_key: Some("S".into()),
            session_token: None,
            ca_bundle: Some(path.clone()),
        };
        build_store(&cfg, "us-east-1", client_options(&cfg, &certs), &|_: &str| None).unwrap();
    }

    #[test]
    fn storage_drops_cleanly_inside_and_outside_a_runtime() {
        let cfg = S3Config {
            bucket: "bkt".into(),
            prefix: "db".into(),
            region: Some("us-east-1".into()),
            endpoint: Some("http://127.0.0.1:9".into()),
            force_path_style: true,
            skip_verify: false,
            access_key_id: Some("K".into()),
            secret_access_key: Some("S".into()),
            session_token: None,
            ca_bundle: Some("/nonexistent/ca.pem".into()),
        };
        let env = |_: &str| None;
        let s = S3Storage::new(&cfg, &env).unwrap();
        assert!(
            s.describe().starts_with("s3://bkt/db (region us-east-1, endpoint http://127.0.0.1:9"),
            "{}",
            s.describe()
        );
        drop(s);
        let s = S3Storage::new(&cfg, &env).unwrap();
        let outer = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        outer.block_on(async move {
            // Calls from inside another runtime work (port 9 refuses connections quickly)...
            let e = s.list("db/0000/", false).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
            // ...and so does dropping.
            drop(s);
        });
    }

    #[test]
    fn missing_secret_is_a_config_error() {
        let cfg = S3Config {
            bucket: "bkt".into(),
            prefix: String::new(),
            region: Some("us-east-1".into()),
            endpoint: None,
            force_path_style: false,
            skip_verify: false,
            access_key_id: Some("K".into()),
            secret_access_key: None,
            session_token: None,
            ca_bundle: None,
        };
        let e = S3Storage::new(&cfg, &|_: &str| None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
    }
}
