//! Logs go to stderr (never stdout, which belongs to the host program) or to
//! `LITESTREAM_LOG_FILE`. HTTP-client crates (hyper, reqwest, rustls, h2) stay at warn even at
//! debug level, unless `LITESTREAM_LOG_FILTER` (tracing-subscriber `EnvFilter` directives, e.g.
//! `debug,hyper=trace`) asks for them.

use crate::env_config::{EnvConfig, env};
use std::fs::OpenOptions;
use std::sync::Mutex;
use tracing_subscriber::EnvFilter;

/// HTTP-client crates kept at warn by default: at debug they drown the VFS's own lines.
const QUIET_CRATES: &[&str] = &["hyper", "hyper_util", "reqwest", "rustls", "h2", "tower", "object_store::client"];

/// The filter directives for a configuration: `LITESTREAM_LOG_FILTER` if set, else the level
/// with the HTTP-client crates at warn.
pub fn directives(debug: bool, explicit: Option<String>) -> String {
    if let Some(d) = explicit {
        return d;
    }
    let mut d = String::from(if debug { "debug" } else { "info" });
    for c in QUIET_CRATES {
        d.push_str(&format!(",{c}=warn"));
    }
    d
}

pub fn init(cfg: &EnvConfig) -> Result<(), String> {
    let text = directives(cfg.debug, env("LITESTREAM_LOG_FILTER"));
    let filter = EnvFilter::try_new(&text).map_err(|e| format!("invalid LITESTREAM_LOG_FILTER {text:?}: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_target(false);
    let result = match &cfg.log_file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("failed to open log file: {path}: {e}"))?;
            builder.with_writer(Mutex::new(file)).try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    // Another subscriber already installed (a second load): keep it.
    let _ = result;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_clients_stay_at_warn_unless_asked() {
        let d = directives(true, None);
        assert!(d.starts_with("debug,") && d.contains("hyper=warn") && d.contains("rustls=warn"), "{d}");
        assert!(EnvFilter::try_new(&d).is_ok());
        assert_eq!(directives(true, Some("trace".into())), "trace");
    }
}
