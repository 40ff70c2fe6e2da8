//! `abs://[account@]container/path` replicas through object_store's Azure Blob client.
//!
//! Credentials, as Litestream and the Azure SDKs name them: the account from the URL user or
//! `AZURE_STORAGE_ACCOUNT`; a shared key from `LITESTREAM_AZURE_ACCOUNT_KEY` or
//! `AZURE_STORAGE_KEY`; or a SAS token from `LITESTREAM_AZURE_SAS_TOKEN` (with or without the
//! leading `?`). `endpoint=` (URI query) overrides `https://<account>.blob.core.windows.net`,
//! e.g. `http://127.0.0.1:10000/devstoreaccount1` for azurite or a sovereign cloud — the Go
//! extension has no such setting. The creation time with metadata is the `litestreamtimestamp`
//! metadata (REPLICA.md §2), else the blob's Last-Modified.

use std::sync::Arc;

use ltxvfs::replica_url::ReplicaUrl;
use ltxvfs::{Error, Result};
use object_store::azure::MicrosoftAzureBuilder;

use super::object_store_backend::{
    Backend, ObjectStoreStorage, StorageRuntime, client_options, connector, describe_location, retry_config,
};

/// Azure metadata names cannot contain `-`: Litestream writes `litestreamtimestamp`.
pub const METADATA_TIMESTAMP_KEY: &str = "litestreamtimestamp";

/// The settings of an `abs://` URL and its environment (no I/O).
#[derive(Clone, PartialEq, Eq)]
pub struct AzureConfig {
    pub account: String,
    pub container: String,
    pub prefix: String,
    pub endpoint: Option<String>,
    pub credential: AzureCredential,
}

#[derive(Clone, PartialEq, Eq)]
pub enum AzureCredential {
    AccessKey(String),
    /// Query pairs of a SAS token.
    Sas(Vec<(String, String)>),
}

impl std::fmt::Debug for AzureConfig {
    /// No key or token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cred = match self.credential {
            AzureCredential::AccessKey(_) => "access key",
            AzureCredential::Sas(_) => "SAS token",
        };
        f.debug_struct("AzureConfig")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("credential", &cred)
            .finish()
    }
}

impl AzureConfig {
    pub fn resolve(url: &ReplicaUrl, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        if url.host.is_empty() {
            return Err(Error::config("abs:// replica URL needs a container: abs://[account@]container/path"));
        }
        let account = url
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| get("AZURE_STORAGE_ACCOUNT"))
            .or_else(|| get("LITESTREAM_AZURE_ACCOUNT_NAME"))
            .ok_or_else(|| {
                Error::config("no Azure storage account: use abs://ACCOUNT@container/path or set AZURE_STORAGE_ACCOUNT")
            })?;
        let credential = if let Some(key) = get("LITESTREAM_AZURE_ACCOUNT_KEY").or_else(|| get("AZURE_STORAGE_KEY")) {
            AzureCredential::AccessKey(key)
        } else if let Some(sas) = get("LITESTREAM_AZURE_SAS_TOKEN") {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(sas.trim_start_matches('?').as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if pairs.is_empty() {
                return Err(Error::config("LITESTREAM_AZURE_SAS_TOKEN is not a SAS query string"));
            }
            AzureCredential::Sas(pairs)
        } else {
            return Err(Error::config(
                "no Azure credentials: set LITESTREAM_AZURE_ACCOUNT_KEY (or AZURE_STORAGE_KEY) or LITESTREAM_AZURE_SAS_TOKEN",
            ));
        };
        let endpoint =
            url.query_param("endpoint").filter(|e| !e.is_empty()).map(|e| e.trim_end_matches('/').to_string());
        Ok(Self { account, container: url.host.clone(), prefix: url.path.clone(), endpoint, credential })
    }
}

/// Open an Azure Blob container.
pub fn open(cfg: &AzureConfig) -> Result<ObjectStoreStorage> {
    let runtime = StorageRuntime::new("ltxvfs-abs")?;
    let allow_http = cfg.endpoint.as_deref().is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
    let mut b = MicrosoftAzureBuilder::new()
        .with_account(&cfg.account)
        .with_container_name(&cfg.container)
        .with_retry(retry_config())
        .with_client_options(client_options(allow_http))
        .with_allow_http(allow_http)
        .with_http_connector(connector());
    if let Some(ep) = &cfg.endpoint {
        b = b.with_endpoint(ep.clone());
    }
    b = match &cfg.credential {
        AzureCredential::AccessKey(k) => b.with_access_key(k),
        AzureCredential::Sas(pairs) => b.with_sas_authorization(pairs.clone()),
    };
    // The builder's messages name settings, never their values.
    let store = b.build().map_err(|e| Error::config(format!("cannot set up Azure Blob storage: {e}")))?;
    let endpoint: Vec<String> = cfg.endpoint.iter().map(|ep| format!("endpoint {ep}")).collect();
    let describe = describe_location(format!("abs://{}@{}", cfg.account, cfg.container), &cfg.prefix, &endpoint);
    let backend = Backend {
        scheme: "abs",
        container: cfg.container.clone(),
        timestamp_key: Some(METADATA_TIMESTAMP_KEY),
        // object_store sends `If-None-Match: *`; Azure (and azurite) answer 409 BlobAlreadyExists.
        conditional_create: true,
        describe,
    };
    Ok(ObjectStoreStorage::new(Arc::new(store), runtime, backend))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltxvfs::ErrorKind;

    fn resolve(u: &str, vars: &[(&str, &str)]) -> Result<AzureConfig> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AzureConfig::resolve(&ReplicaUrl::parse(u).unwrap(), &move |k: &str| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn account_key_sas_and_endpoint() {
        let c = resolve("abs://acct@cont/a/db?endpoint=http://127.0.0.1:10000/acct/", &[("AZURE_STORAGE_KEY", "k")])
            .unwrap();
        assert_eq!((c.account.as_str(), c.container.as_str(), c.prefix.as_str()), ("acct", "cont", "a/db"));
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:10000/acct"));
        assert!(c.credential == AzureCredential::AccessKey("k".into()));
        let c = resolve(
            "abs://cont/db",
            &[("AZURE_STORAGE_ACCOUNT", "env"), ("LITESTREAM_AZURE_ACCOUNT_KEY", "lk"), ("AZURE_STORAGE_KEY", "k")],
        )
        .unwrap();
        assert_eq!(c.account, "env");
        assert!(c.credential == AzureCredential::AccessKey("lk".into()), "Litestream's variable wins");
        let c = resolve("abs://a@cont/db", &[("LITESTREAM_AZURE_SAS_TOKEN", "?sv=2022&sig=abc%2Bd")]).unwrap();
        assert!(
            c.credential == AzureCredential::Sas(vec![("sv".into(), "2022".into()), ("sig".into(), "abc+d".into())])
        );
        assert!(!format!("{c:?}").contains("abc"), "no token in Debug: {c:?}");
    }

    #[test]
    fn missing_pieces_are_config_errors_naming_the_variables() {
        let e = resolve("abs://cont/db", &[("AZURE_STORAGE_KEY", "k")]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("AZURE_STORAGE_ACCOUNT"), "{e:?}");
        let e = resolve("abs://a@cont/db", &[]).unwrap_err();
        assert!(e.message.contains("LITESTREAM_AZURE_ACCOUNT_KEY"), "{e:?}");
        assert!(e.message.contains("LITESTREAM_AZURE_SAS_TOKEN"), "{e:?}");
    }
}
