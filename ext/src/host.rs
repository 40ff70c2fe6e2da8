//! The native [`Host`]: storage from the URL (std::fs, object_store), the system clock, disk
//! temp files, and the environment's default replica.

use crate::env_config::env;
use crate::temp_files::DiskTempFiles;
use ltxvfs::Result;
use ltxvfs::replica_url::ReplicaUrl;
use ltxvfs::storage::{Clock, Storage, SystemClock};
use ltxvfs::temp_files::TempFiles;
use ltxvfs::vfs::Host;
use std::sync::Arc;

pub struct NativeHost {
    default_url: Option<String>,
    temp: DiskTempFiles,
}

impl NativeHost {
    pub fn new(default_url: Option<String>) -> Self {
        Self { default_url, temp: DiskTempFiles::default() }
    }
}

impl Host for NativeHost {
    fn storage(&self, url: &ReplicaUrl) -> Result<Arc<dyn Storage>> {
        crate::storage::open_storage(url, &env)
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
    fn default_replica_url(&self) -> Option<String> {
        self.default_url.clone()
    }
    fn temp_files(&self) -> &dyn TempFiles {
        &self.temp
    }
}
