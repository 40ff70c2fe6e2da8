//! Configuration read from the environment once, at load time (VFS.md §2.1).

use ltxvfs::hydrate::HydrationConfig;
use ltxvfs::replica_url::{ReplicaUrl, legacy_s3_url_from_env};
use ltxvfs::write::WriteOptions;
use ltxvfs::{Error, Result};

#[derive(Debug, Clone)]
pub struct EnvConfig {
    /// `LITESTREAM_REPLICA_URL`, or a URL built from the legacy `LITESTREAM_S3_*` variables.
    pub replica_url: Option<String>,
    pub debug: bool,
    pub log_file: Option<String>,
    /// `LITESTREAM_VFS_DEFAULT=true`: register `litestream` as the default VFS.
    pub make_default: bool,
    /// `LITESTREAM_CACHE_DIR`: persistent page cache for every connection (URI `cache_dir` wins).
    pub cache_dir: Option<String>,
    /// `LITESTREAM_HYDRATION_ENABLED`, `LITESTREAM_HYDRATION_PATH` (read only when enabled).
    pub hydration: HydrationConfig,
    /// `LITESTREAM_WRITE_ENABLED`, `LITESTREAM_SYNC_INTERVAL`, `LITESTREAM_BUFFER_PATH`.
    pub write: WriteOptions,
}

pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn is_true(key: &str) -> bool {
    env(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

impl EnvConfig {
    pub fn from_env() -> Result<Self> {
        let replica_url = match env("LITESTREAM_REPLICA_URL") {
            Some(u) => {
                ReplicaUrl::parse(&u).map_err(|e| Error::config(format!("invalid LITESTREAM_REPLICA_URL: {e}")))?;
                Some(u)
            }
            None => legacy_s3_url_from_env(&env)?.map(|u| u.original),
        };
        let mut write = WriteOptions { enabled: is_true("LITESTREAM_WRITE_ENABLED"), ..Default::default() };
        if write.enabled {
            // Read only when write mode is on, as Go does (VFS.md §2.1).
            if let Some(v) = env("LITESTREAM_SYNC_INTERVAL") {
                write.sync_interval = ltxvfs::config::sync_interval("LITESTREAM_SYNC_INTERVAL", &v)?;
            }
            write.buffer_path = env("LITESTREAM_BUFFER_PATH");
        }
        Ok(Self {
            replica_url,
            debug: env("LITESTREAM_LOG_LEVEL").is_some_and(|v| v.eq_ignore_ascii_case("debug")),
            log_file: env("LITESTREAM_LOG_FILE"),
            make_default: is_true("LITESTREAM_VFS_DEFAULT"),
            cache_dir: env("LITESTREAM_CACHE_DIR"),
            hydration: {
                let enabled = is_true("LITESTREAM_HYDRATION_ENABLED");
                HydrationConfig { enabled, path: env("LITESTREAM_HYDRATION_PATH").filter(|_| enabled) }
            },
            write,
        })
    }
}
