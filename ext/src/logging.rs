//! Logs go to stderr (never stdout, which belongs to the host program) or to
//! `LITESTREAM_LOG_FILE`.

use crate::env_config::EnvConfig;
use std::fs::OpenOptions;
use std::sync::Mutex;
use tracing::Level;

pub fn init(cfg: &EnvConfig) -> Result<(), String> {
    let level = if cfg.debug { Level::DEBUG } else { Level::INFO };
    let builder = tracing_subscriber::fmt().with_max_level(level).with_ansi(false).with_target(false);
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
