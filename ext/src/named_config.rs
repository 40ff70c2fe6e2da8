//! Configuration by database *name*, for clients that cannot pass a URI (VFS.md §2.3, Go's
//! `GoLitestreamConfigure(name, key, value)`): the URI's own keys, set per name before the open,
//! applied under the URI's parameters. Set from SQL (`litestream_configure`), from the
//! environment (`LITESTREAM_VFS_CONFIG`) or from Rust ([`crate::configure`]).
//!
//! A name matches the name the application opens, as given or after making both absolute
//! against the current directory (`replica.db` matches `/srv/app/replica.db` opened from
//! `/srv/app`).

use ltxvfs::config::OpenConfig;
use ltxvfs::replica::ReplicaOptions;
use ltxvfs::{Error, Result};
use parking_lot::Mutex;
use std::path::{Component, Path, PathBuf};

/// The keys a database URI accepts (VFS.md §2.3, plus ours: `cache_dir`, `open_timeout`).
pub const KEYS: &[&str] = &[
    "replica_url",
    "write_enabled",
    "sync_interval",
    "buffer_path",
    "hydration_enabled",
    "hydration_path",
    "poll_interval",
    "cache_size",
    "cache_dir",
    "open_timeout",
];

/// (name, ordered key/value pairs), in configuration order.
type Table = Vec<(String, Vec<(String, String)>)>;

static TABLE: Mutex<Table> = Mutex::new(Vec::new());

/// Set `key` to `value` for database `name` (a later value for the same key replaces it).
/// An unknown key or a value that does not parse is an error naming it; nothing is stored then.
pub fn configure(name: &str, key: &str, value: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::config("database name required"));
    }
    check(key, value)?;
    let mut table = TABLE.lock();
    let pos = match table.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            table.push((name.to_string(), Vec::new()));
            table.len() - 1
        }
    };
    let pairs = &mut table[pos].1;
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_string(), value.to_string()));
    Ok(())
}

/// A known URI key with a value that parses.
pub fn check(key: &str, value: &str) -> Result<()> {
    if !KEYS.contains(&key) {
        return Err(Error::config(format!("unknown config key: {key}")));
    }
    OpenConfig::from_params(&[(key.to_string(), value.to_string())], ReplicaOptions::default()).map(|_| ())
}

/// Whether any name has been configured (then "make default" serves only configured names).
pub fn any() -> bool {
    !TABLE.lock().is_empty()
}

/// The parameters configured for a database name SQLite opens, if it is configured.
pub fn lookup(opened: &str) -> Option<Vec<(String, String)>> {
    let table = TABLE.lock();
    if table.is_empty() {
        return None;
    }
    let opened_abs = absolute(opened);
    table.iter().find(|(n, _)| n == opened || absolute(n) == opened_abs).map(|(_, p)| p.clone())
}

/// Whether a file SQLite names belongs to a configured database: the database itself or one of
/// its `-journal`/`-wal`/`-shm` companions.
pub fn owns(path: &str) -> bool {
    let main = ["-journal", "-wal", "-shm"].iter().find_map(|s| path.strip_suffix(s)).unwrap_or(path);
    lookup(main).is_some()
}

/// Parse the environment form: entries separated by `;` (or newlines), each
/// `name?key=value&key=value` with percent-encoded values where needed, the URI's own syntax.
pub fn parse_env(text: &str) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for entry in text.split([';', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        let (name, query) = entry
            .split_once('?')
            .ok_or_else(|| Error::config(format!("LITESTREAM_VFS_CONFIG: expected name?key=value, got {entry:?}")))?;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode =
                |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
            let (Some(k), Some(v)) = (decode(k), decode(v)) else { continue };
            out.push((name.trim().to_string(), k, v));
        }
    }
    Ok(out)
}

/// Apply `LITESTREAM_VFS_CONFIG` (errors name the entry).
pub fn configure_from_env(text: &str) -> Result<()> {
    for (name, k, v) in parse_env(text)? {
        configure(&name, &k, &v).map_err(|e| Error::config(format!("LITESTREAM_VFS_CONFIG {name}: {}", e.message)))?;
    }
    Ok(())
}

/// `name` made absolute against the current directory, `.`/`..` folded lexically.
fn absolute(name: &str) -> PathBuf {
    let p = Path::new(name);
    let joined = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_form_parses_entries_and_decodes_values() {
        let got = parse_env("a.db?replica_url=file:///r&poll_interval=1s; b.db?replica_url=s3%3A%2F%2Fb%2Fp").unwrap();
        assert_eq!(
            got,
            vec![
                ("a.db".into(), "replica_url".into(), "file:///r".into()),
                ("a.db".into(), "poll_interval".into(), "1s".into()),
                ("b.db".into(), "replica_url".into(), "s3://b/p".into()),
            ]
        );
        assert!(parse_env("nokeys").unwrap_err().message.contains("expected name?key=value"));
    }

    #[test]
    fn configure_validates_and_matches_names() {
        assert_eq!(configure("x.db", "colour", "red").unwrap_err().message, "unknown config key: colour");
        assert!(configure("x.db", "poll_interval", "0s").unwrap_err().message.contains("must be > 0"));
        configure("nc-test.db", "replica_url", "file:///a").unwrap();
        configure("nc-test.db", "replica_url", "file:///b").unwrap();
        configure("nc-test.db", "cache_size", "4096").unwrap();
        let want = vec![("replica_url".to_string(), "file:///b".to_string()), ("cache_size".into(), "4096".into())];
        assert_eq!(lookup("nc-test.db"), Some(want.clone()));
        let abs = std::env::current_dir().unwrap().join("nc-test.db");
        assert_eq!(lookup(abs.to_str().unwrap()), Some(want));
        assert!(owns(&format!("{}-journal", abs.display())));
        assert!(!owns("other.db") && lookup("./sub/../other.db").is_none());
        assert!(any());
    }
}
