//! `webdav://[user:pass@]host[:port]/path` (and `webdavs://`, TLS) replicas through
//! object_store's HTTP client, which speaks WebDAV: PROPFIND (depth 1) lists a directory, GET
//! with Range reads, PUT (with MKCOL of missing parents) writes.
//!
//! Where object_store does not serve WebDAV: it has no authentication of its own, so the user
//! and password of the URL go into an `Authorization: Basic` default header (marked sensitive);
//! and it cannot set a file's modification time, so objects written here get the upload time
//! as their created-at, not the LTX header timestamp (Litestream's own WebDAV client has the
//! same limit). Created-at is the `getlastmodified` property (REPLICA.md §2).

use std::sync::Arc;

use base64::Engine;
use ltxvfs::replica_url::{ReplicaUrl, Scheme};
use ltxvfs::{Error, Result};
use object_store::http::HttpBuilder;

use super::object_store_backend::{
    Backend, ObjectStoreStorage, StorageRuntime, client_options, connector, retry_config,
};

#[derive(Clone, PartialEq, Eq)]
pub struct WebdavConfig {
    /// `http(s)://host[:port]`
    pub base_url: String,
    pub prefix: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for WebdavConfig {
    /// No password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebdavConfig")
            .field("base_url", &self.base_url)
            .field("prefix", &self.prefix)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "xxxxx"))
            .finish()
    }
}

impl WebdavConfig {
    pub fn resolve(url: &ReplicaUrl) -> Result<Self> {
        if url.host.is_empty() {
            return Err(Error::config("webdav:// replica URL needs a host: webdav://user:pass@host:port/path"));
        }
        let scheme = if url.scheme == Scheme::Webdavs { "https" } else { "http" };
        Ok(Self {
            base_url: format!("{scheme}://{}", url.host),
            prefix: url.path.clone(),
            user: url.user.clone().filter(|u| !u.is_empty()),
            password: url.password.clone(),
        })
    }
}

pub fn open(cfg: &WebdavConfig) -> Result<ObjectStoreStorage> {
    let runtime = StorageRuntime::new("ltxvfs-webdav")?;
    let mut options = client_options(cfg.base_url.starts_with("http://"));
    if let Some(user) = &cfg.user {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", cfg.password.as_deref().unwrap_or("")));
        let mut value = http::HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| Error::config("webdav user or password holds characters a header cannot carry"))?;
        value.set_sensitive(true);
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        options = options.with_default_headers(headers);
    }
    let store = HttpBuilder::new()
        .with_url(format!("{}/", cfg.base_url))
        .with_retry(retry_config())
        .with_client_options(options)
        .with_http_connector(connector())
        .build()
        .map_err(|e| Error::config(format!("cannot set up WebDAV storage: {e}")))?;
    let mut describe = format!("{}/{}", cfg.base_url.replacen("http", "webdav", 1), cfg.prefix);
    if let Some(u) = &cfg.user {
        describe = describe.replacen("://", &format!("://{u}@"), 1);
    }
    let backend = Backend {
        scheme: if cfg.base_url.starts_with("https") { "webdavs" } else { "webdav" },
        container: cfg.base_url.split_once("://").map(|(_, h)| h.to_string()).unwrap_or_default(),
        timestamp_key: None,
        // object_store's HTTP store has no create-only put (NotImplemented), and WebDAV servers
        // need not honour `If-None-Match`: create-only is a best-effort HEAD + PUT here.
        conditional_create: false,
        describe,
    };
    Ok(ObjectStoreStorage::new(Arc::new(store), runtime, backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_to_base_and_prefix_without_leaking_the_password() {
        let c = WebdavConfig::resolve(&ReplicaUrl::parse("webdav://u:s3cret@127.0.0.1:8080/a/db").unwrap()).unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert_eq!(c.prefix, "a/db");
        assert_eq!(c.user.as_deref(), Some("u"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let s = open(&c).unwrap();
        use ltxvfs::storage::Storage;
        assert_eq!(s.describe(), "webdav://u@127.0.0.1:8080/a/db");
        let c = WebdavConfig::resolve(&ReplicaUrl::parse("webdavs://h/db").unwrap()).unwrap();
        assert_eq!(c.base_url, "https://h");
    }
}
