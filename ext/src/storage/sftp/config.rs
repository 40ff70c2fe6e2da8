//! `sftp://user[:password]@host[:port]/path` and its credentials, resolved from the URL and the
//! environment without I/O.
//!
//! Names follow Litestream's `type: sftp` replica config: `key-path` (a private key file) and
//! `host-key` (the server's public key in `authorized_keys` form, `ssh-ed25519 AAAA…`). One
//! more, which Litestream lacks: `known-hosts` (an OpenSSH `known_hosts` file). Each is a URL
//! query parameter or an environment variable (the URL wins):
//!
//! | query | environment | meaning |
//! |---|---|---|
//! | (URL password) | `LITESTREAM_SFTP_PASSWORD` | password authentication |
//! | `key-path` | `LITESTREAM_SFTP_KEY_PATH` | private key file (public key authentication) |
//! | — | `LITESTREAM_SFTP_KEY_PASSPHRASE` | passphrase of that key (never in a URL) |
//! | `host-key` | `LITESTREAM_SFTP_HOST_KEY` | the one host key accepted |
//! | `known-hosts` | `LITESTREAM_SFTP_KNOWN_HOSTS` | known_hosts file the host must be in |
//!
//! With neither `host-key` nor `known-hosts` the server's key is accepted unverified, as
//! Litestream does (`ssh.InsecureIgnoreHostKey`, logged once as a warning).
//!
//! The URL path is absolute on the server (`sftp://h/data/db` → `/data/db`), as in Litestream.

use base64::Engine;
use ltxvfs::redact::secret_opt;
use ltxvfs::replica_url::ReplicaUrl;
use ltxvfs::{Error, Result};

/// Standard SSH port.
pub const DEFAULT_PORT: u16 = 22;

/// How the server's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Accept any key (Litestream's behaviour without `host-key`); logged as a warning.
    Unverified,
    /// Exactly this key: algorithm name and the decoded key blob.
    Fixed { algorithm: String, blob: Vec<u8> },
    /// The host (with its port, `[host]:port` when not 22) must be in this known_hosts file.
    KnownHosts(String),
}

#[derive(Clone, PartialEq, Eq)]
pub struct SftpConfig {
    /// Host name or address, without brackets.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub key_path: Option<String>,
    pub key_passphrase: Option<String>,
    pub host_key: HostKeyCheck,
    /// Absolute replica root on the server, without trailing slash (`/` for the root).
    pub root: String,
}

impl std::fmt::Debug for SftpConfig {
    /// No password, no passphrase.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &secret_opt(&self.password))
            .field("key_path", &self.key_path)
            .field("key_passphrase", &secret_opt(&self.key_passphrase))
            .field("host_key", &self.host_key)
            .field("root", &self.root)
            .finish()
    }
}

impl SftpConfig {
    pub fn resolve(url: &ReplicaUrl, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        const FORM: &str = "sftp://user[:password]@host[:port]/path";
        if url.host.is_empty() {
            return Err(Error::config(format!("sftp:// replica URL needs a host: {FORM}")));
        }
        let user = url.user.clone().filter(|u| !u.is_empty());
        let Some(user) = user else {
            return Err(Error::config(format!("sftp user required: {FORM}")));
        };
        let (host, port) = split_host_port(&url.host)?;
        let pick =
            |q: &str, var: &str| url.query_param(q).map(str::to_string).or_else(|| env(var)).filter(|v| !v.is_empty());
        let password = url.password.clone().filter(|p| !p.is_empty()).or_else(|| env("LITESTREAM_SFTP_PASSWORD"));
        let key_path = pick("key-path", "LITESTREAM_SFTP_KEY_PATH");
        let key_passphrase = env("LITESTREAM_SFTP_KEY_PASSPHRASE").filter(|v| !v.is_empty());
        if password.is_none() && key_path.is_none() {
            return Err(Error::config(format!(
                "sftp replica {url} has no credentials: put a password in the URL ({FORM}) or name a \
                 private key with key-path= (or LITESTREAM_SFTP_KEY_PATH)"
            )));
        }
        let host_key =
            match (pick("host-key", "LITESTREAM_SFTP_HOST_KEY"), pick("known-hosts", "LITESTREAM_SFTP_KNOWN_HOSTS")) {
                (Some(k), _) => parse_host_key(&k)?,
                (None, Some(path)) => HostKeyCheck::KnownHosts(path),
                (None, None) => HostKeyCheck::Unverified,
            };
        let trimmed = url.path.trim_matches('/');
        Ok(Self { host, port, user, password, key_path, key_passphrase, host_key, root: format!("/{trimmed}") })
    }

    /// `sftp://user@host:port/root` (no secrets).
    pub fn describe(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("sftp://{}@{host}:{}{}", self.user, self.port, self.root)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, u16)> {
    let bad = || Error::config(format!("sftp replica URL has a bad host {s:?}"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
        (h, tail.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// An `authorized_keys`-style public key: `[options] algorithm base64 [comment]`; the first
/// field that decodes as a key blob naming its own algorithm wins (Go's `ParseAuthorizedKey`).
pub fn parse_host_key(text: &str) -> Result<HostKeyCheck> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    for pair in fields.windows(2) {
        let (algorithm, b64) = (pair[0], pair[1]);
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(b64) else { continue };
        if blob_algorithm(&blob) == Some(algorithm) {
            return Ok(HostKeyCheck::Fixed { algorithm: algorithm.to_string(), blob });
        }
    }
    Err(Error::config(format!(
        "cannot parse sftp host key {text:?}: expected a public key line such as \"ssh-ed25519 AAAA…\""
    )))
}

/// The algorithm name a key blob starts with (an SSH string: u32 length + bytes).
pub fn blob_algorithm(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4usize.checked_add(len)?)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILC/XT9tR8Lgb9y7jCowrxVcmKYmq/KdXBurPqFS3QFj test@host";

    fn cfg(url: &str, vars: &[(&str, &str)]) -> Result<SftpConfig> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        SftpConfig::resolve(&ReplicaUrl::parse(url).unwrap(), &env)
    }

    #[test]
    fn url_forms() {
        let c = cfg("sftp://u:s3cret@127.0.0.1:2222/data/db", &[]).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.user.as_str()), ("127.0.0.1", 2222, "u"));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.root, "/data/db");
        assert_eq!(c.host_key, HostKeyCheck::Unverified);
        assert_eq!(c.describe(), "sftp://u@127.0.0.1:2222/data/db");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = cfg("sftp://u:p@host/", &[]).unwrap();
        assert_eq!((c.port, c.root.as_str()), (22, "/"));
        let c = cfg("sftp://u:p@[::1]:23/x", &[]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 23));
        assert_eq!(c.describe(), "sftp://u@[::1]:23/x");
    }

    #[test]
    fn credentials_from_query_and_env() {
        let c =
            cfg("sftp://u@h/db?key-path=/k/id&known-hosts=/k/kh", &[("LITESTREAM_SFTP_KEY_PASSPHRASE", "pp")]).unwrap();
        assert_eq!(c.key_path.as_deref(), Some("/k/id"));
        assert_eq!(c.key_passphrase.as_deref(), Some("pp"));
        assert_eq!(c.host_key, HostKeyCheck::KnownHosts("/k/kh".into()));
        assert!(!format!("{c:?}").contains("pp\""));
        let c = cfg(
            "sftp://u@h/db",
            &[
                ("LITESTREAM_SFTP_KEY_PATH", "/e/id"),
                ("LITESTREAM_SFTP_HOST_KEY", ED),
                ("LITESTREAM_SFTP_PASSWORD", "pw"),
            ],
        )
        .unwrap();
        assert_eq!(c.key_path.as_deref(), Some("/e/id"));
        assert_eq!(c.password.as_deref(), Some("pw"));
        let HostKeyCheck::Fixed { algorithm, blob } = c.host_key else { panic!("{:?}", c.host_key) };
        assert_eq!((algorithm.as_str(), blob.len()), ("ssh-ed25519", 51));
        // The URL wins over the environment.
        let c = cfg("sftp://u@h/db?key-path=/q", &[("LITESTREAM_SFTP_KEY_PATH", "/e")]).unwrap();
        assert_eq!(c.key_path.as_deref(), Some("/q"));
    }

    #[test]
    fn clear_config_errors() {
        let e = cfg("sftp://h/db", &[]).unwrap_err();
        assert!(e.message.contains("sftp user required"), "{e:?}");
        let e = cfg("sftp://u@h/db", &[]).unwrap_err();
        assert!(e.message.contains("no credentials"), "{e:?}");
        let e = cfg("sftp://u:p@h/db?host-key=garbage", &[]).unwrap_err();
        assert!(e.message.contains("cannot parse sftp host key"), "{e:?}");
        // A blob that names another algorithm than its line is refused.
        let e = parse_host_key(&ED.replace("ssh-ed25519 ", "ssh-rsa ")).unwrap_err();
        assert_eq!(e.kind, ltxvfs::ErrorKind::Config);
        assert!(matches!(parse_host_key(&format!("no-pty {ED}")), Ok(HostKeyCheck::Fixed { .. })));
    }
}
