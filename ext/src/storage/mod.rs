//! Native storage backends: `file://` on std::fs; `s3://`, `oss://`, `gs://`, `abs://`,
//! `webdav(s)://` on object_store (one shared backend, [`object_store_backend`]); `sftp://` on
//! libssh2 ([`sftp`]); `nats://` on async-nats ([`nats`]).

pub mod azure;
pub mod file;
pub mod gcs;
pub mod http_guard;
pub mod nats;
pub mod object_store_backend;
pub mod object_store_errors;
pub mod s3;
pub mod sftp;
pub mod webdav;

use std::sync::Arc;

use ltxvfs::replica_url::{ReplicaUrl, S3Config, Scheme};
use ltxvfs::storage::Storage;
use ltxvfs::{Error, Result};

/// Build the storage for a URL. `env` looks up environment variables (credentials, endpoint,
/// `AWS_CA_BUNDLE`; see [`S3Config::resolve`]). `file` → [`file::FileStorage`], `s3`/`oss` →
/// [`s3::S3Storage`]; any other known scheme is a Config error
/// `replica URL scheme "gs" is not supported by this build yet`. Never panics.
pub fn open_storage(url: &ReplicaUrl, env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn Storage>> {
    match url.scheme {
        Scheme::File => Ok(Arc::new(file::FileStorage::new(url.path.clone()))),
        Scheme::S3 | Scheme::Oss => {
            let cfg = S3Config::resolve(url, env)?;
            Ok(Arc::new(s3::S3Storage::new(&cfg, env)?))
        }
        Scheme::Abs => Ok(Arc::new(azure::open(&azure::AzureConfig::resolve(url, env)?)?)),
        Scheme::Gs => Ok(Arc::new(gcs::open(&gcs::GcsConfig::resolve(url, env)?)?)),
        Scheme::Webdav | Scheme::Webdavs => Ok(Arc::new(webdav::open(&webdav::WebdavConfig::resolve(url)?)?)),
        Scheme::Sftp => Ok(Arc::new(sftp::open(sftp::SftpConfig::resolve(url, env)?))),
        Scheme::Nats => Ok(Arc::new(nats::open(nats::NatsConfig::resolve(url, env)?)?)),
        other => {
            Err(Error::config(format!("replica URL scheme {:?} is not supported by this build yet", other.as_str())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltxvfs::ErrorKind;

    #[test]
    fn unsupported_schemes_are_config_errors() {
        for (s, name) in [("http://h/p", "http"), ("https://h/p", "https")] {
            let url = ReplicaUrl::parse(s).unwrap();
            let e = open_storage(&url, &|_: &str| None).err().expect(s);
            assert_eq!(e.kind, ErrorKind::Config);
            assert_eq!(e.message, format!("replica URL scheme \"{name}\" is not supported by this build yet"));
        }
    }

    #[test]
    fn file_and_s3_urls_open() {
        let tmp = tempfile::tempdir().unwrap();
        let url = ReplicaUrl::parse(&format!("file://{}", tmp.path().display())).unwrap();
        let s = open_storage(&url, &|_: &str| None).unwrap();
        assert_eq!(s.describe(), format!("file://{}", tmp.path().display()));
        assert!(s.list(&url.layout().level_prefix(0), false).unwrap().is_empty());

        let url = ReplicaUrl::parse("s3://bkt/db?endpoint=http://127.0.0.1:9").unwrap();
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("K".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("S".to_string()),
            _ => None,
        };
        let s = open_storage(&url, &env).unwrap();
        assert!(s.describe().starts_with("s3://bkt/db"), "{}", s.describe());

        let bad = ReplicaUrl::parse("s3:///db").unwrap();
        assert_eq!(open_storage(&bad, &env).err().unwrap().kind, ErrorKind::Config);
    }
}
