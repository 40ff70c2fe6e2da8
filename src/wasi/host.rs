//! The component's [`Host`]: storage from the URL (wasi-http or a preopened directory), the
//! WASI clocks (sleeps cut short at a served request's deadline), in-memory temp files and
//! `LITESTREAM_REPLICA_URL` from the environment.

use super::{s3::S3Storage, static_http::HttpStorage};
use crate::Result;
use crate::error::Error;
use crate::file_storage::FileStorage;
use crate::replica_url::{ReplicaUrl, S3Config, Scheme};
use crate::storage::{Clock, Storage};
use crate::temp_files::{MemoryTempFiles, TempFiles};
use crate::vfs::Host;
use std::sync::Arc;

/// An environment variable, empty counting as unset.
pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

#[derive(Default)]
pub struct ComponentHost {
    temp: MemoryTempFiles,
}

impl Host for ComponentHost {
    fn storage(&self, url: &ReplicaUrl) -> Result<Arc<dyn Storage>> {
        match url.scheme {
            Scheme::File => Ok(Arc::new(FileStorage::new(url.path.clone()))),
            Scheme::S3 | Scheme::Oss => Ok(Arc::new(S3Storage::new(&S3Config::resolve(url, &env)?)?)),
            Scheme::Http | Scheme::Https => Ok(Arc::new(HttpStorage::new(url)?)),
            other => Err(Error::config(other.component_refusal().unwrap_or_else(|| {
                format!("replica URL scheme {:?} is not supported by the component", other.as_str())
            }))),
        }
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(super::deadline::DeadlineClock)
    }
    fn default_replica_url(&self) -> Option<String> {
        env("LITESTREAM_REPLICA_URL")
    }
    fn temp_files(&self) -> &dyn TempFiles {
        &self.temp
    }
    fn read_only_reason(&self) -> &'static str {
        "the WebAssembly component is read-only: write mode needs the native extension"
    }
}
