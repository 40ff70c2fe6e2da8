//! `gs://bucket/path` replicas through object_store's Google Cloud Storage client.
//!
//! Credentials as Google's libraries find them: `GOOGLE_APPLICATION_CREDENTIALS` (a service
//! account or authorized-user JSON file), else the gcloud default file, else the instance
//! metadata server (object_store's chain). `STORAGE_EMULATOR_HOST`, as Litestream honours it,
//! or `endpoint=` (URI query; the Go extension has none) point the client at another base URL
//! without OAuth, e.g. fake-gcs-server. The creation time with metadata is the
//! `litestream-timestamp` metadata (REPLICA.md §2), else the object's Last-Modified.

use std::sync::Arc;

use ltxvfs::replica_url::ReplicaUrl;
use ltxvfs::{Error, Result};
use object_store::gcp::GoogleCloudStorageBuilder;

use super::object_store_backend::{
    Backend, ObjectStoreStorage, StorageRuntime, client_options, connector, describe_location, retry_config,
};

pub const METADATA_TIMESTAMP_KEY: &str = "litestream-timestamp";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsConfig {
    pub bucket: String,
    pub prefix: String,
    /// Base URL replacing `https://storage.googleapis.com` (no OAuth then).
    pub endpoint: Option<String>,
    /// `GOOGLE_APPLICATION_CREDENTIALS` (a path, not a secret).
    pub credentials_file: Option<String>,
}

impl GcsConfig {
    pub fn resolve(url: &ReplicaUrl, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        if url.host.is_empty() {
            return Err(Error::config("gs:// replica URL needs a bucket: gs://bucket/path"));
        }
        let endpoint = url
            .query_param("endpoint")
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .or_else(|| get("STORAGE_EMULATOR_HOST"))
            .map(|e| {
                // Go's client accepts a bare host:port in STORAGE_EMULATOR_HOST.
                let e = e.trim_end_matches('/');
                if e.contains("://") { e.to_string() } else { format!("http://{e}") }
            });
        Ok(Self {
            bucket: url.host.clone(),
            prefix: url.path.clone(),
            endpoint,
            credentials_file: get("GOOGLE_APPLICATION_CREDENTIALS"),
        })
    }
}

/// The service-account JSON object_store takes for a custom base URL without OAuth (its only
/// way to set the base URL).
fn emulator_key(endpoint: &str) -> String {
    serde_json::json!({
        "private_key": "",
        "private_key_id": "",
        "client_email": "",
        "gcs_base_url": endpoint,
        "disable_oauth": true,
    })
    .to_string()
}

pub fn open(cfg: &GcsConfig) -> Result<ObjectStoreStorage> {
    let runtime = StorageRuntime::new("ltxvfs-gs")?;
    let allow_http = cfg.endpoint.as_deref().is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
    let mut b = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&cfg.bucket)
        .with_retry(retry_config())
        .with_client_options(client_options(allow_http))
        .with_http_connector(connector());
    match (&cfg.endpoint, &cfg.credentials_file) {
        (Some(ep), _) => b = b.with_service_account_key(emulator_key(ep)),
        (None, Some(path)) => b = b.with_application_credentials(path),
        (None, None) => {}
    }
    let store = b.build().map_err(|e| Error::config(format!("cannot set up Google Cloud Storage: {e}")))?;
    let endpoint: Vec<String> = cfg.endpoint.iter().map(|ep| format!("endpoint {ep}")).collect();
    let describe = describe_location(format!("gs://{}", cfg.bucket), &cfg.prefix, &endpoint);
    let backend = Backend {
        scheme: "gs",
        container: cfg.bucket.clone(),
        timestamp_key: Some(METADATA_TIMESTAMP_KEY),
        // object_store sends `x-goog-if-generation-match: 0`.
        conditional_create: true,
        describe,
    };
    Ok(ObjectStoreStorage::new(Arc::new(store), runtime, backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_from_query_or_emulator_variable() {
        let url = ReplicaUrl::parse("gs://bkt/a/db").unwrap();
        let c = GcsConfig::resolve(&url, &|k: &str| (k == "STORAGE_EMULATOR_HOST").then(|| "127.0.0.1:4443".into()))
            .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:4443"));
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bkt", "a/db"));
        let url = ReplicaUrl::parse("gs://bkt/db?endpoint=https://gcs.example/").unwrap();
        let c = GcsConfig::resolve(&url, &|k: &str| (k == "STORAGE_EMULATOR_HOST").then(|| "x:1".into())).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("https://gcs.example"), "the URL wins");
        let c = GcsConfig::resolve(&url, &|_: &str| None).unwrap();
        assert_eq!(c.credentials_file, None);
        assert!(GcsConfig::resolve(&ReplicaUrl::parse("gs:///db").unwrap(), &|_: &str| None).is_err());
    }

    #[test]
    fn an_emulator_endpoint_builds_without_credentials() {
        let cfg = GcsConfig {
            bucket: "b".into(),
            prefix: "db".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            credentials_file: None,
        };
        let s = open(&cfg).unwrap();
        use ltxvfs::storage::Storage;
        assert_eq!(s.describe(), "gs://b/db (endpoint http://127.0.0.1:9)");
        let e = s.list("db/ltx/0/", false).unwrap_err();
        assert_eq!(e.kind, ltxvfs::ErrorKind::Network, "{e:?}");
    }
}
