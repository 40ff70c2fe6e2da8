//! Per-connection configuration from URI parameters (VFS.md §2.3).

use crate::error::{Error, Result};
use crate::replica::ReplicaOptions;
use crate::time::parse_go_duration;
use crate::write::WriteOptions;
use std::time::Duration;

/// What one main-database open asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenConfig {
    pub replica_url: Option<String>,
    /// Directory for the persistent page cache (URI `cache_dir`).
    pub cache_dir: Option<String>,
    pub options: ReplicaOptions,
    /// URI `hydration_enabled` (`None`: the environment decides).
    pub hydration_enabled: Option<bool>,
    /// URI `hydration_path` (`None`: the environment decides).
    pub hydration_path: Option<String>,
    /// Write mode (URI `write_enabled`, `sync_interval`, `buffer_path` over the environment).
    pub write: WriteOptions,
    /// Whether `buffer_path` came from the URI (used as is) rather than the environment.
    pub buffer_path_from_uri: bool,
}

/// `sync_interval` as Go reads it (VFS.md §2.1): `0` is the default 1 s, negative means no
/// periodic sync.
pub fn sync_interval(key: &str, value: &str) -> Result<Option<Duration>> {
    let ns = parse_go_duration(value).map_err(|e| Error::config(format!("invalid {key}: {e}")))?;
    Ok(match ns {
        0 => Some(Duration::from_secs(1)),
        n if n < 0 => None,
        n => Some(Duration::from_nanos(n as u64)),
    })
}

fn duration(key: &str, value: &str) -> Result<i64> {
    parse_go_duration(value).map_err(|e| Error::config(format!("invalid {key}: {e}")))
}

/// `min_level` (URI): the lowest LTX level read, 0 to 9 (`crate::layout::SNAPSHOT_LEVEL`).
pub fn min_level(value: &str) -> Result<u8> {
    match value.trim().parse::<u8>() {
        Ok(n) if n <= crate::layout::SNAPSHOT_LEVEL => Ok(n),
        _ => Err(Error::config(format!("invalid min_level: {value:?} (a level from 0 to 9)"))),
    }
}

fn boolean(value: &str) -> bool {
    value.eq_ignore_ascii_case("true") || value == "1"
}

/// `max_wait` (URI) / `LITESTREAM_MAX_WAIT` (environment): the bound on one storage call with
/// its retries (`crate::retry`), a Go duration > 0.
pub fn max_wait(value: &str) -> Result<Duration> {
    let ns = duration("max_wait", value)?;
    if ns <= 0 {
        return Err(Error::config(format!("invalid max_wait: {value} (must be > 0)")));
    }
    Ok(Duration::from_nanos(ns as u64))
}

impl OpenConfig {
    /// Apply URI parameters over `base`. Unknown parameters are ignored; a value that does not
    /// parse is an error naming the parameter.
    pub fn from_params(params: &[(String, String)], base: ReplicaOptions) -> Result<Self> {
        Self::from_params_with(params, base, WriteOptions::default())
    }

    /// [`OpenConfig::from_params`] over the environment's write settings.
    pub fn from_params_with(params: &[(String, String)], base: ReplicaOptions, write: WriteOptions) -> Result<Self> {
        let mut cfg = OpenConfig {
            replica_url: None,
            cache_dir: None,
            options: base,
            hydration_enabled: None,
            hydration_path: None,
            write,
            buffer_path_from_uri: false,
        };
        for (key, value) in params {
            match key.as_str() {
                "replica_url" => cfg.replica_url = Some(value.clone()),
                "cache_dir" => cfg.cache_dir = Some(value.clone()).filter(|v| !v.is_empty()),
                "cache_size" => {
                    cfg.options.cache_size = value
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| Error::config(format!("invalid cache_size: {value:?} (bytes expected)")))?;
                }
                "poll_interval" => {
                    let ns = duration(key, value)?;
                    if ns <= 0 {
                        return Err(Error::config(format!("invalid poll_interval: {value} (must be > 0)")));
                    }
                    cfg.options.poll_interval = Duration::from_nanos(ns as u64);
                }
                "open_timeout" => {
                    let ns = duration(key, value)?;
                    if ns < 0 {
                        return Err(Error::config(format!("invalid open_timeout: {value} (must be >= 0)")));
                    }
                    cfg.options.open_timeout = Duration::from_nanos(ns as u64);
                }
                "hydration_enabled" => cfg.hydration_enabled = Some(boolean(value)),
                "hydration_path" => cfg.hydration_path = Some(value.clone()).filter(|v| !v.is_empty()),
                "max_wait" => cfg.options.retry.max_wait = max_wait(value)?,
                "min_level" => cfg.options.min_level = min_level(value)?,
                "write_enabled" => cfg.write.enabled = boolean(value),
                "sync_interval" => cfg.write.sync_interval = sync_interval(key, value)?,
                "buffer_path" if !value.is_empty() => {
                    cfg.write.buffer_path = Some(value.clone());
                    cfg.buffer_path_from_uri = true;
                }
                _ => {}
            }
        }
        cfg.options.allow_empty = cfg.write.enabled;
        if cfg.write.enabled && cfg.options.min_level > 0 {
            return Err(Error::config("min_level cannot be combined with write_enabled (a writer must read L0)"));
        }
        Ok(cfg)
    }

    /// Identity of the shared replica object: connections with the same URL and options share
    /// listing, index, cache and poller.
    pub fn replica_key(&self, url: &str) -> String {
        let o = &self.options;
        format!(
            "{url}|cache={}|poll={:?}|planner={:?}|dir={:?}|wait={:?}|min_level={}",
            o.cache_size, o.poll_interval, o.planner, self.cache_dir, o.retry.max_wait, o.min_level
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn max_wait_bounds_storage_retries() {
        let c = OpenConfig::from_params(&params(&[("max_wait", "5s")]), ReplicaOptions::default()).unwrap();
        assert_eq!(c.options.retry.max_wait, Duration::from_secs(5));
        assert_eq!(ReplicaOptions::default().retry.max_wait, Duration::from_secs(30));
        for bad in ["0s", "-1s", "soon"] {
            let e = OpenConfig::from_params(&params(&[("max_wait", bad)]), ReplicaOptions::default()).unwrap_err();
            assert!(e.message.starts_with("invalid max_wait"), "{e:?}");
        }
    }

    #[test]
    fn parses_known_parameters() {
        let c = OpenConfig::from_params(
            &params(&[("replica_url", "file:///r"), ("cache_size", "4096"), ("poll_interval", "250ms"), ("x", "y")]),
            ReplicaOptions::default(),
        )
        .unwrap();
        assert_eq!(c.replica_url.as_deref(), Some("file:///r"));
        assert_eq!(c.options.cache_size, 4096);
        assert_eq!(c.options.poll_interval, Duration::from_millis(250));
        assert_eq!((c.hydration_enabled, c.hydration_path), (None, None));
        let h = OpenConfig::from_params(
            &params(&[("hydration_enabled", "1"), ("hydration_path", "/var/h.db")]),
            ReplicaOptions::default(),
        )
        .unwrap();
        assert_eq!((h.hydration_enabled, h.hydration_path.as_deref()), (Some(true), Some("/var/h.db")));
        assert!(!c.write.enabled);
    }

    #[test]
    fn min_level_is_a_level_and_excludes_writes() {
        let c = OpenConfig::from_params(&params(&[("min_level", "2")]), ReplicaOptions::default()).unwrap();
        assert_eq!(c.options.min_level, 2);
        assert_ne!(
            c.replica_key("u"),
            OpenConfig::from_params(&[], ReplicaOptions::default()).unwrap().replica_key("u")
        );
        for bad in ["10", "-1", "one", ""] {
            let e = OpenConfig::from_params(&params(&[("min_level", bad)]), ReplicaOptions::default()).unwrap_err();
            assert!(e.message.starts_with("invalid min_level"), "{bad}: {e}");
        }
        let e = OpenConfig::from_params(
            &params(&[("min_level", "1"), ("write_enabled", "true")]),
            ReplicaOptions::default(),
        )
        .unwrap_err();
        assert!(e.message.contains("min_level cannot be combined with write_enabled"), "{e}");
    }

    #[test]
    fn parses_write_parameters() {
        let c = OpenConfig::from_params(
            &params(&[("write_enabled", "TRUE"), ("sync_interval", "500ms"), ("buffer_path", "/b")]),
            ReplicaOptions::default(),
        )
        .unwrap();
        assert!(c.write.enabled && c.options.allow_empty && c.buffer_path_from_uri);
        assert_eq!(c.write.sync_interval, Some(Duration::from_millis(500)));
        assert_eq!(c.write.buffer_path.as_deref(), Some("/b"));
        for (v, want) in [("0", Some(Duration::from_secs(1))), ("-1s", None)] {
            let c = OpenConfig::from_params(&params(&[("sync_interval", v)]), ReplicaOptions::default()).unwrap();
            assert_eq!(c.write.sync_interval, want);
        }
        let c = OpenConfig::from_params(&params(&[("write_enabled", "yes")]), ReplicaOptions::default()).unwrap();
        assert!(!c.write.enabled);
        let c = OpenConfig::from_params(&params(&[("write_enabled", "1")]), ReplicaOptions::default()).unwrap();
        assert!(c.write.enabled);
    }

    #[test]
    fn rejects_non_positive_poll_interval_and_bad_values() {
        for (k, v, msg) in [
            ("poll_interval", "0s", "invalid poll_interval: 0s (must be > 0)"),
            ("poll_interval", "-1s", "invalid poll_interval: -1s (must be > 0)"),
            ("cache_size", "lots", "invalid cache_size: \"lots\" (bytes expected)"),
        ] {
            let e = OpenConfig::from_params(&params(&[(k, v)]), ReplicaOptions::default()).unwrap_err();
            assert_eq!(e.message, msg);
        }
        let e = OpenConfig::from_params(&params(&[("sync_interval", "1")]), ReplicaOptions::default()).unwrap_err();
        assert!(e.message.starts_with("invalid sync_interval: time: missing unit"), "{e}");
        let e = OpenConfig::from_params(&params(&[("poll_interval", "soon")]), ReplicaOptions::default()).unwrap_err();
        assert!(e.message.starts_with("invalid poll_interval: time: invalid duration"), "{e}");
    }
}
