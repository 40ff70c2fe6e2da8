//! The native [`Host`]: storage from the URL (std::fs, object_store), the system clock, disk
//! temp files, and the environment's default replica.

use crate::env_config::env;
use crate::extent_cache::DiskExtentCache;
use crate::hydration_file::DiskHydrationFile;
use crate::temp_files::DiskTempFiles;
use crate::write_buffer::DiskBuffers;
use ltxvfs::Result;
use ltxvfs::extent_store::ExtentStore;
use ltxvfs::hydrate::HydrationConfig;
use ltxvfs::hydrate::file::HydrationFile;
use ltxvfs::replica::ReplicaOptions;
use ltxvfs::replica_url::{ReplicaUrl, Scheme};
use ltxvfs::storage::{Clock, Storage, SystemClock};
use ltxvfs::temp_files::TempFiles;
use ltxvfs::vfs::Host;
use ltxvfs::write::WriteOptions;
use ltxvfs::write::buffer::BufferStore;
use std::sync::Arc;

pub struct NativeHost {
    /// A storage object given through the Rust API, for the replica URL it serves.
    storage_override: Option<(String, Arc<dyn Storage>)>,
    /// Options every open of this VFS starts from (Rust API), under per-name and URI ones.
    base_params: Vec<(String, String)>,
    default_url: Option<String>,
    default_cache_dir: Option<String>,
    hydration: HydrationConfig,
    temp: DiskTempFiles,
    write: WriteOptions,
    buffers: Arc<DiskBuffers>,
}

impl NativeHost {
    pub fn new(default_url: Option<String>, default_cache_dir: Option<String>, hydration: HydrationConfig) -> Self {
        Self {
            storage_override: None,
            base_params: Vec::new(),
            write: WriteOptions::default(),
            buffers: Arc::new(DiskBuffers),
            default_url,
            default_cache_dir,
            hydration,
            temp: DiskTempFiles::default(),
        }
    }

    #[cfg_attr(not(feature = "embed"), allow(dead_code))] // the Rust API
    /// Serve `url` with `storage` instead of the backend the URL names.
    pub fn with_storage(mut self, url: String, storage: Arc<dyn Storage>) -> Self {
        self.storage_override = Some((url, storage));
        self
    }

    #[cfg_attr(not(feature = "embed"), allow(dead_code))] // the Rust API
    /// Options applied to every open before per-name and URI parameters.
    pub fn with_base_params(mut self, params: Vec<(String, String)>) -> Self {
        self.base_params = params;
        self
    }

    /// The environment's write settings.
    pub fn with_write(mut self, write: WriteOptions) -> Self {
        self.write = write;
        self
    }
}

impl Host for NativeHost {
    fn storage(&self, url: &ReplicaUrl) -> Result<Arc<dyn Storage>> {
        if let Some((u, s)) = &self.storage_override
            && *u == url.original
        {
            return Ok(s.clone());
        }
        // A directory that does not exist will not get a snapshot by waiting: say so at once.
        if url.scheme == Scheme::File && !std::path::Path::new(&url.path).is_dir() {
            return Err(ltxvfs::Error::config(format!(
                "replica directory does not exist: {} (from {})",
                url.path, url.original
            )));
        }
        crate::storage::open_storage(url, &env)
    }
    fn prepare_new_replica(&self, url: &ReplicaUrl) -> Result<()> {
        if url.scheme == Scheme::File {
            std::fs::create_dir_all(&url.path)
                .map_err(|e| ltxvfs::Error::config(format!("cannot create replica directory {}: {e}", url.path)))?;
        }
        Ok(())
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
    /// `LITESTREAM_MAX_WAIT` bounds every storage call (URI `max_wait` wins); a bad value is
    /// logged and the 30 s default kept.
    fn default_options(&self) -> ReplicaOptions {
        let mut o = ReplicaOptions::default();
        if let Some(v) = env("LITESTREAM_MAX_WAIT") {
            match ltxvfs::config::max_wait(&v) {
                Ok(d) => o.retry.max_wait = d,
                Err(e) => tracing::warn!("LITESTREAM_MAX_WAIT ignored: {e}"),
            }
        }
        o
    }
    fn default_replica_url(&self) -> Option<String> {
        self.default_url.clone()
    }
    fn temp_files(&self) -> &dyn TempFiles {
        &self.temp
    }
    fn default_write(&self) -> WriteOptions {
        self.write.clone()
    }
    fn write_buffers(&self) -> Option<Arc<dyn BufferStore>> {
        Some(self.buffers.clone())
    }
    fn default_cache_dir(&self) -> Option<String> {
        self.default_cache_dir.clone()
    }
    fn named_params(&self, name: &str) -> Vec<(String, String)> {
        let mut params = self.base_params.clone();
        params.extend(crate::named_config::lookup(name).unwrap_or_default());
        params
    }
    fn open_finished(&self, name: &str, outcome: std::result::Result<(), &ltxvfs::Error>) {
        crate::last_error::record(name, outcome);
    }
    fn write_refused(&self, name: &str, error: &ltxvfs::Error) {
        crate::last_error::record_write_refused(name, error);
    }
    fn extent_store(&self, url: &ReplicaUrl, dir: &str) -> Result<Option<Arc<dyn ExtentStore>>> {
        let cache = DiskExtentCache::new(std::path::Path::new(dir), &url.original)
            .map_err(|e| ltxvfs::Error::config(format!("cannot use cache_dir {dir}: {e}")))?;
        Ok(Some(Arc::new(cache)))
    }
    fn default_hydration(&self) -> HydrationConfig {
        self.hydration.clone()
    }
    fn hydration_file(&self, path: Option<&str>) -> Result<Arc<dyn HydrationFile>> {
        Ok(Arc::new(match path {
            Some(p) => DiskHydrationFile::open(std::path::Path::new(p), false)?,
            None => DiskHydrationFile::temporary()?,
        }))
    }
}
