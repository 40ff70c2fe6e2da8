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
            builder.with_writer(Redacting(Mutex::new(file))).try_init()
        }
        None => builder.with_writer(Redacting(std::io::stderr)).try_init(),
    };
    // Another subscriber already installed (a second load): keep it.
    let _ = result;
    Ok(())
}

/// Every log line passes `ltxvfs::redact` before it is written: no password or key in a log,
/// whatever a message or field (an error from a client library, a URL) carried.
struct Redacting<M>(M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter { inner: self.0.make_writer(), buf: Vec::new() }
    }
}

/// Buffers one event (the formatter writes an event, then drops its writer) and writes it
/// redacted.
struct RedactingWriter<W: std::io::Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let out = ltxvfs::redact::redact_text(&text).into_owned();
        self.buf.clear();
        self.inner.write_all(out.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
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

    #[test]
    fn log_lines_are_redacted() {
        use std::io::Write;
        let mut sink = Vec::new();
        {
            let mut w = RedactingWriter { inner: &mut sink, buf: Vec::new() };
            write!(w, "ERROR open: endpoint=http://user:S3cr3t@127.0.0.1:1/b ").unwrap();
            writeln!(w, "replica=s3://b/p?secret-access-key=S3cr3t").unwrap();
        }
        let s = String::from_utf8(sink).unwrap();
        assert!(!s.contains("S3cr3t"), "{s}");
        assert!(s.contains("user:xxxxx@127.0.0.1:1"), "{s}");
    }
}
