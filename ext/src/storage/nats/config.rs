//! `nats://[user:password@]host[:port]/bucket[/path]` and its credentials, resolved from the
//! URL and the environment without I/O.
//!
//! Litestream's `nats` replica (`nats/replica_client.go`, `cmd/litestream/main.go`): the URL
//! host is the server, the URL path is the JetStream object-store bucket (which must exist:
//! Litestream does not create it), and objects are named `ltx/<level>/<min>-<max>.ltx` from the
//! bucket's root. Litestream takes the *whole* path as the bucket name, so a URL with a
//! further path (`nats://h/bkt/sub`) names a bucket NATS refuses; here the first segment is
//! the bucket and the rest a prefix inside it (`sub/ltx/0/…`), which only this VFS writes.
//!
//! Credentials carry the names of Litestream's config fields (`creds`, `nkey`, `jwt` + `seed`,
//! `token`, `username` + `password`); Litestream has no environment variables for them (its
//! config file expands `$VARS`), so these are ours. The URL wins over the environment:
//!
//! | query | environment | meaning |
//! |---|---|---|
//! | (URL user and password) | `LITESTREAM_NATS_USERNAME`, `LITESTREAM_NATS_PASSWORD` | user/password |
//! | `creds` | `LITESTREAM_NATS_CREDS` | a `.creds` file (user JWT + nkey seed) |
//! | `nkey` | `LITESTREAM_NATS_NKEY` | an nkey seed (`SU…`) |
//! | `jwt`, `seed` | `LITESTREAM_NATS_JWT`, `LITESTREAM_NATS_SEED` | a user JWT and its nkey seed |
//! | `token` | `LITESTREAM_NATS_TOKEN` | a token |
//! | `tls=true`, `root-cas`, `client-cert` + `client-key` | `LITESTREAM_NATS_…` likewise | TLS |
//!
//! When several are set, the first of Litestream's order is used: jwt+seed, creds, nkey,
//! user/password, token. Secret query values are redacted everywhere (`ltxvfs::redact`).

use ltxvfs::redact::MASK;
use ltxvfs::replica_url::ReplicaUrl;
use ltxvfs::{Error, Result};

/// The NATS client port.
pub const DEFAULT_PORT: u16 = 4222;

/// How the client authenticates (Litestream's precedence, first match wins).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// A user JWT and the nkey seed that signs the server's nonce.
    JwtAndSeed {
        jwt: String,
        seed: String,
    },
    /// A `.creds` file (path).
    CredsFile(String),
    /// An nkey seed.
    NKey(String),
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
}

impl std::fmt::Debug for Auth {
    /// No secret: only which method and the non-secret parts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::JwtAndSeed { .. } => write!(f, "JwtAndSeed({MASK})"),
            Auth::CredsFile(p) => f.debug_tuple("CredsFile").field(p).finish(),
            Auth::NKey(_) => write!(f, "NKey({MASK})"),
            Auth::UserPassword { user, .. } => {
                f.debug_struct("UserPassword").field("user", user).finish_non_exhaustive()
            }
            Auth::Token(_) => write!(f, "Token({MASK})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    pub required: bool,
    /// PEM files of extra trusted CAs.
    pub root_cas: Vec<String>,
    /// Client certificate and key (mutual TLS).
    pub client_cert: Option<(String, String)>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Host name or address (brackets kept for IPv6) and port.
    pub host: String,
    pub port: u16,
    /// The object-store bucket (first URL path segment).
    pub bucket: String,
    /// The storage key root: the URL path (`bucket[/path]`); keys below it name objects.
    pub root: String,
    pub auth: Auth,
    pub tls: Tls,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish()
    }
}

const FORM: &str = "nats://[user:password@]host[:port]/bucket";

impl NatsConfig {
    pub fn resolve(url: &ReplicaUrl, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        if url.host.is_empty() {
            return Err(Error::config(format!("nats:// replica URL needs a host: {FORM}")));
        }
        let (host, port) = split_host_port(&url.host)?;
        let root = url.path.trim_matches('/').to_string();
        let bucket = root.split('/').next().unwrap_or_default().to_string();
        if bucket.is_empty() {
            return Err(Error::config(format!("bucket required for nats replica URL: {FORM}")));
        }
        if !bucket.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(Error::config(format!(
                "nats bucket name {bucket:?} is not valid: letters, digits, '-' and '_' only"
            )));
        }
        let pick = |q: &str, var: &str| {
            url.query_param(q).map(str::to_string).or_else(|| env(var)).filter(|v| !v.trim().is_empty())
        };
        let user = url.user.clone().filter(|u| !u.is_empty()).or_else(|| pick("username", "LITESTREAM_NATS_USERNAME"));
        let password =
            url.password.clone().filter(|p| !p.is_empty()).or_else(|| pick("password", "LITESTREAM_NATS_PASSWORD"));
        let jwt = pick("jwt", "LITESTREAM_NATS_JWT");
        let seed = pick("seed", "LITESTREAM_NATS_SEED");
        let creds = pick("creds", "LITESTREAM_NATS_CREDS");
        let nkey = pick("nkey", "LITESTREAM_NATS_NKEY");
        let token = pick("token", "LITESTREAM_NATS_TOKEN");
        if jwt.is_some() != seed.is_some() {
            return Err(Error::config("nats jwt and seed must be given together (jwt= and seed=)"));
        }
        if user.is_some() && password.is_none() {
            return Err(Error::config(format!(
                "nats user {:?} has no password: put it in the URL ({FORM}) or LITESTREAM_NATS_PASSWORD",
                user.as_deref().unwrap_or_default()
            )));
        }
        let auth = match (jwt, seed, creds, nkey, user, password, token) {
            (Some(jwt), Some(seed), ..) => Auth::JwtAndSeed { jwt, seed },
            (_, _, Some(path), ..) => Auth::CredsFile(path),
            (_, _, _, Some(seed), ..) => Auth::NKey(seed),
            (_, _, _, _, Some(user), Some(password), _) => Auth::UserPassword { user, password },
            (.., Some(token)) => Auth::Token(token),
            _ => Auth::None,
        };
        let flag = pick("tls", "LITESTREAM_NATS_TLS");
        let required = match flag.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => return Err(Error::config(format!("nats tls={other:?}: expected true or false"))),
        };
        let root_cas = pick("root-cas", "LITESTREAM_NATS_ROOT_CAS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let client_cert = match (
            pick("client-cert", "LITESTREAM_NATS_CLIENT_CERT"),
            pick("client-key", "LITESTREAM_NATS_CLIENT_KEY"),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(Error::config(
                    "client-cert and client-key must both be specified for mutual TLS authentication",
                ));
            }
        };
        Ok(Self { host, port, bucket, root, auth, tls: Tls { required, root_cas, client_cert } })
    }

    /// The server address for the client: `nats://host:port` (no credentials).
    pub fn server_url(&self) -> String {
        let scheme = if self.tls.required { "tls" } else { "nats" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// `nats://[user@]host:port/bucket[/path]` (no secrets).
    pub fn describe(&self) -> String {
        self.describe_object(self.root.strip_prefix(self.bucket.as_str()).unwrap_or_default().trim_start_matches('/'))
    }

    /// `nats://[user@]host:port/bucket/name` for an object name (no secrets).
    pub fn describe_object(&self, name: &str) -> String {
        let user = match &self.auth {
            Auth::UserPassword { user, .. } => format!("{user}@"),
            _ => String::new(),
        };
        let sep = if name.is_empty() { "" } else { "/" };
        format!("nats://{user}{}:{}/{}{sep}{name}", self.host, self.port, self.bucket)
    }

    /// The object name of a storage key (`<root>/ltx/0/F` → `ltx/0/F`); `None` when the key
    /// is outside this replica's root.
    pub fn object_name<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.root.as_str())?.strip_prefix('/')?;
        key.get(self.bucket.len() + 1..)
    }

    /// The storage key of an object name (the inverse of [`NatsConfig::object_name`]).
    pub fn key_of(&self, name: &str) -> String {
        format!("{}/{name}", self.bucket)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` (brackets kept: the client takes a URL).
fn split_host_port(s: &str) -> Result<(String, u16)> {
    let bad = || Error::config(format!("nats replica URL has a bad host {s:?}"));
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or_else(bad)?;
        (&s[..=end], s[end + 1..].strip_prefix(':'))
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
    if host.is_empty() || host == "[]" {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, vars: &[(&str, &str)]) -> Result<NatsConfig> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        NatsConfig::resolve(&ReplicaUrl::parse(url).unwrap(), &env)
    }

    #[test]
    fn url_forms_and_keys() {
        let c = cfg("nats://127.0.0.1:4333/bkt", &[]).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.bucket.as_str(), c.root.as_str()), ("127.0.0.1", 4333, "bkt", "bkt"));
        assert_eq!(c.auth, Auth::None);
        assert_eq!(c.server_url(), "nats://127.0.0.1:4333");
        assert_eq!(c.describe(), "nats://127.0.0.1:4333/bkt");
        assert_eq!(c.object_name("bkt/ltx/0/x.ltx"), Some("ltx/0/x.ltx"));
        assert_eq!(c.object_name("bktx/ltx/0/x.ltx"), None);
        assert_eq!(c.object_name("other/ltx/0/"), None);
        assert_eq!(c.key_of("ltx/0/x.ltx"), "bkt/ltx/0/x.ltx");
        assert_eq!(c.describe_object("ltx/0/x.ltx"), "nats://127.0.0.1:4333/bkt/ltx/0/x.ltx");
        let c = cfg("nats://h/bkt/sub/db/", &[]).unwrap();
        assert_eq!((c.port, c.bucket.as_str(), c.root.as_str()), (4222, "bkt", "bkt/sub/db"));
        assert_eq!(c.object_name("bkt/sub/db/ltx/9/"), Some("sub/db/ltx/9/"));
        assert_eq!(c.object_name("bkt/ltx/9/"), None);
        assert_eq!(c.key_of("sub/db/ltx/9/f"), "bkt/sub/db/ltx/9/f");
        assert_eq!(c.describe(), "nats://h:4222/bkt/sub/db");
        let c = cfg("nats://[::1]:5/b", &[]).unwrap();
        assert_eq!(c.server_url(), "nats://[::1]:5");
    }

    #[test]
    fn credentials_in_litestreams_order_and_no_secret_in_debug() {
        let c = cfg("nats://u:Pl4nted@h/b", &[]).unwrap();
        assert_eq!(c.auth, Auth::UserPassword { user: "u".into(), password: "Pl4nted".into() });
        assert_eq!(c.describe(), "nats://u@h:4222/b");
        assert!(!format!("{c:?}").contains("Pl4nted"), "{c:?}");
        let c = cfg("nats://h/b", &[("LITESTREAM_NATS_TOKEN", "T0ken-Pl4nted")]).unwrap();
        assert_eq!(c.auth, Auth::Token("T0ken-Pl4nted".into()));
        assert!(!format!("{c:?}").contains("Pl4nted"));
        let c = cfg("nats://h/b?creds=/x/u.creds", &[("LITESTREAM_NATS_TOKEN", "t")]).unwrap();
        assert_eq!(c.auth, Auth::CredsFile("/x/u.creds".into()));
        let c = cfg("nats://h/b", &[("LITESTREAM_NATS_NKEY", "SUAPl4nted"), ("LITESTREAM_NATS_CREDS", "/c")]).unwrap();
        assert_eq!(c.auth, Auth::CredsFile("/c".into()));
        let c = cfg("nats://h/b", &[("LITESTREAM_NATS_NKEY", "SUAPl4nted")]).unwrap();
        assert_eq!(c.auth, Auth::NKey("SUAPl4nted".into()));
        assert!(!format!("{c:?}").contains("Pl4nted"));
        let c = cfg("nats://h/b?jwt=eyJ&seed=SUAPl4nted", &[("LITESTREAM_NATS_CREDS", "/c")]).unwrap();
        assert_eq!(c.auth, Auth::JwtAndSeed { jwt: "eyJ".into(), seed: "SUAPl4nted".into() });
        assert!(!format!("{c:?}").contains("Pl4nted"));
        let c = cfg("nats://h/b", &[("LITESTREAM_NATS_USERNAME", "eu"), ("LITESTREAM_NATS_PASSWORD", "ep")]).unwrap();
        assert_eq!(c.auth, Auth::UserPassword { user: "eu".into(), password: "ep".into() });
        // The URL wins.
        let c = cfg("nats://h/b?token=q", &[("LITESTREAM_NATS_TOKEN", "e")]).unwrap();
        assert_eq!(c.auth, Auth::Token("q".into()));
    }

    #[test]
    fn tls_settings() {
        let c = cfg("nats://h/b?tls=true&root-cas=/a.pem,/b.pem", &[]).unwrap();
        assert!(c.tls.required);
        assert_eq!(c.tls.root_cas, vec!["/a.pem".to_string(), "/b.pem".to_string()]);
        assert_eq!(c.server_url(), "tls://h:4222");
        let c = cfg("nats://h/b?client-cert=/c&client-key=/k", &[]).unwrap();
        assert_eq!(c.tls.client_cert, Some(("/c".into(), "/k".into())));
        assert!(cfg("nats://h/b?client-cert=/c", &[]).unwrap_err().message.contains("both"));
        assert!(cfg("nats://h/b?tls=maybe", &[]).is_err());
    }

    #[test]
    fn clear_config_errors() {
        let e = cfg("nats://h", &[]).unwrap_err();
        assert!(e.message.contains("bucket required"), "{e:?}");
        let e = cfg("nats:///b", &[]).unwrap_err();
        assert!(e.message.contains("needs a host"), "{e:?}");
        let e = cfg("nats://h/b.c", &[]).unwrap_err();
        assert!(e.message.contains("not valid"), "{e:?}");
        let e = cfg("nats://h:0/b", &[]).unwrap_err();
        assert!(e.message.contains("bad host"), "{e:?}");
        let e = cfg("nats://h/b?jwt=x", &[]).unwrap_err();
        assert!(e.message.contains("together"), "{e:?}");
        let e = cfg("nats://u@h/b", &[]).unwrap_err();
        assert!(e.message.contains("no password"), "{e:?}");
    }
}
