//! Replica URLs (VFS.md §2.2) and the S3 settings derived from them (VFS.md §2.1).
//!
//! Pure: no I/O, no async, no environment access (the environment comes in as a lookup
//! function), so it builds for wasm32-wasip2 and every rule is unit-testable.
//!
//! The parser follows Go's `net/url.Parse` as Litestream uses it (`ParseReplicaURLWithQuery`):
//! the scheme is case-insensitive; `file:` URLs become a cleaned path (`file:///abs/dir` →
//! `/abs/dir`, `file://rel` → `/rel`, `file:rel` → `rel`); every other scheme gives
//! host + cleaned path without the leading slash (`s3://bucket/a/b` → `bucket`, `a/b`).
//! Percent-escapes are decoded in the host, the path, the user info and the query
//! (Go keeps them *encoded* in `file:` paths, which turns `file:///my%20dir` into the
//! literal directory `/my%20dir`; we decode them, which is what a user means).

use std::fmt;

use crate::error::{Error, Result};
use crate::layout::{Layout, LevelStyle};
use crate::s3_endpoint::{HostInfo, ensure_endpoint_scheme, parse_oss_host, parse_s3_host, region_from_arn};

/// The replica URL schemes Litestream knows. Knowing a scheme does not mean a build can
/// open it: the shells decide which backends they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    File,
    S3,
    Oss,
    Gs,
    Abs,
    Sftp,
    Webdav,
    Webdavs,
    Nats,
    Http,
    Https,
}

impl Scheme {
    /// Every scheme, in declaration order.
    pub const ALL: [Scheme; 11] = [
        Scheme::File,
        Scheme::S3,
        Scheme::Oss,
        Scheme::Gs,
        Scheme::Abs,
        Scheme::Sftp,
        Scheme::Webdav,
        Scheme::Webdavs,
        Scheme::Nats,
        Scheme::Http,
        Scheme::Https,
    ];

    /// The scheme as written in URLs (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::File => "file",
            Scheme::S3 => "s3",
            Scheme::Oss => "oss",
            Scheme::Gs => "gs",
            Scheme::Abs => "abs",
            Scheme::Sftp => "sftp",
            Scheme::Webdav => "webdav",
            Scheme::Webdavs => "webdavs",
            Scheme::Nats => "nats",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Why the WebAssembly component refuses this scheme (`None`: it reads it), for the
    /// component's and the host's error messages alike.
    pub fn component_refusal(self) -> Option<String> {
        let why = match self {
            Scheme::File | Scheme::S3 | Scheme::Oss | Scheme::Http | Scheme::Https => return None,
            Scheme::Sftp | Scheme::Nats => "it needs raw TCP sockets, which the component does not use",
            Scheme::Gs | Scheme::Abs | Scheme::Webdav | Scheme::Webdavs => "not built into the component yet",
        };
        Some(format!(
            "replica URL scheme {:?} is not supported by the component ({why}); the native extension reads it",
            self.as_str()
        ))
    }

    /// Look a scheme up by name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Scheme> {
        let lower = name.to_ascii_lowercase();
        Scheme::ALL.into_iter().find(|s| s.as_str() == lower)
    }

    /// S3 and OSS share the S3 protocol and the `<path>/<level %04x>/` key layout.
    pub fn is_s3_compatible(self) -> bool {
        matches!(self, Scheme::S3 | Scheme::Oss)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed replica URL. `Debug` is hand-written in `crate::redact` (no password shows).
#[derive(Clone, PartialEq, Eq)]
pub struct ReplicaUrl {
    pub scheme: Scheme,
    /// Bucket/container for object stores (an access-point ARN for `s3://arn:…`); `host[:port]`
    /// for the network schemes; empty for `file:`.
    pub host: String,
    /// `file:`: the cleaned path (absolute unless the URL was the opaque `file:rel` form).
    /// Others: the cleaned path without leading or trailing slash; empty for the bucket root.
    pub path: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Decoded query pairs in URL order (repeated keys kept; [`Self::query_param`] takes the first).
    pub query: Vec<(String, String)>,
    /// The URL as given, with the password and secret-looking query values replaced by `xxxxx`.
    pub original: String,
}

impl ReplicaUrl {
    /// Parse a replica URL.
    ///
    /// Errors (all [`crate::ErrorKind::Config`]): `replica url scheme required: <s>` when there is no
    /// scheme, `unsupported replica URL scheme: "<x>"` for a scheme Litestream does not know,
    /// `invalid replica URL "<s>": …` for malformed escapes, ports or control characters.
    pub fn parse(s: &str) -> Result<ReplicaUrl> {
        if lower_starts_with(s, "s3://arn:") {
            return parse_s3_access_point(s);
        }
        let bad = |why: &str| Error::config(format!("invalid replica URL {:?}: {why}", redact_raw(s)));
        if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(bad("invalid control character in URL"));
        }

        // Fragment first, as Go does; only `file:` keeps it (as part of the path).
        let (rest, fragment) = match s.split_once('#') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };

        let (scheme_raw, rest) = match split_scheme(rest) {
            Some(x) => x,
            None => return Err(Error::config(format!("replica url scheme required: {s}"))),
        };
        let scheme_lower = scheme_raw.to_ascii_lowercase();

        let (rest, raw_query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };

        let mut host = String::new();
        let mut user = None;
        let mut password = None;
        let raw_path;
        let mut opaque = false;
        if let Some(after) = rest.strip_prefix("//") {
            let (authority, p) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            raw_path = p;
            let (userinfo, hostport) = match authority.rfind('@') {
                Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
                None => (None, authority),
            };
            if let Some(ui) = userinfo {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                user = Some(unescape(u, false).map_err(|e| bad(&e))?);
                password = p.map(|p| unescape(p, false)).transpose().map_err(|e| bad(&e))?;
            }
            check_port(hostport).map_err(|e| bad(&e))?;
            host = unescape(hostport, false).map_err(|e| bad(&e))?;
        } else if rest.starts_with('/') {
            raw_path = rest;
        } else {
            raw_path = rest;
            opaque = true;
        }
        let decoded_path = unescape(raw_path, false).map_err(|e| bad(&e))?;

        let scheme = Scheme::from_name(&scheme_lower)
            .ok_or_else(|| Error::config(format!("unsupported replica URL scheme: {scheme_lower:?}")))?;

        let query = raw_query.map(parse_query).unwrap_or_default();

        let path = match scheme {
            Scheme::File => {
                // Go: the URL without scheme and query, re-serialised, then path.Clean.
                let mut p = String::new();
                if !host.is_empty() {
                    p.push('/');
                    p.push('/');
                    p.push_str(&host);
                    if !decoded_path.is_empty() && !decoded_path.starts_with('/') {
                        p.push('/');
                    }
                }
                p.push_str(&decoded_path);
                if let Some(f) = fragment {
                    p.push('#');
                    p.push_str(&unescape(f, false).map_err(|e| bad(&e))?);
                }
                clean_path(&p)
            }
            _ if opaque => String::new(),
            _ => clean_object_path(&decoded_path),
        };
        if scheme == Scheme::File {
            // Go drops user info and query for files; keep the struct tidy the same way.
            user = None;
            password = None;
            host.clear();
        }

        Ok(ReplicaUrl { scheme, host, path, user, password, query, original: redact_raw(s) })
    }

    /// The first value of a query parameter (exact, case-sensitive key).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Where the LTX files live (REPLICA.md §1): `<path>/<level %04x>/` for s3/oss,
    /// `<path>/ltx/<level>/` for everything else.
    pub fn layout(&self) -> Layout {
        let style = if self.scheme.is_s3_compatible() { LevelStyle::Hex4 } else { LevelStyle::LtxDecimal };
        Layout::new(self.path.clone(), style)
    }
}

impl fmt::Display for ReplicaUrl {
    /// The redacted URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// S3 settings resolved from the URL + environment. `Debug` is hand-written in
/// `crate::redact` (no key shows).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix of the replica (the URL path), without leading/trailing slash.
    pub prefix: String,
    /// `None`: no region anywhere and no custom endpoint; the backend discovers the bucket's region.
    pub region: Option<String>,
    /// Full endpoint URL with scheme and without trailing slash; `None` = AWS.
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    pub skip_verify: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Path of a PEM bundle of extra trusted CA certificates (`AWS_CA_BUNDLE`).
    pub ca_bundle: Option<String>,
}

/// Alibaba OSS default region (Litestream `oss.DefaultRegion`).
pub const OSS_DEFAULT_REGION: &str = "cn-hangzhou";
/// Region used with custom endpoints when none is given (Litestream `s3.DefaultRegion`).
pub const S3_DEFAULT_REGION: &str = "us-east-1";

impl S3Config {
    /// Resolve the S3 settings of an `s3://` or `oss://` URL.
    ///
    /// * bucket: the host; provider host forms are understood as Litestream's `ParseHost` does
    ///   (`bucket.s3.<region>.amazonaws.com`, `bucket.localhost:9000`, `bucket.<host>:<port>`,
    ///   `bucket.<region>.digitaloceanspaces.com`, `bucket.s3.<region>.backblazeb2.com`,
    ///   `bucket.s3.filebase.com`, `bucket.s3.<region>.scw.cloud`, `bucket.<region>.linodeobjects.com`,
    ///   and for OSS `bucket.oss-<region>[-internal].aliyuncs.com`), plus Cloudflare R2
    ///   (`bucket.<account>[.eu].r2.cloudflarestorage.com`) and Tigris (`bucket.fly.storage.tigris.dev`,
    ///   `bucket.t3.storage.dev`), region `auto`; an access-point ARN host is kept whole. The host
    ///   forms and where requests then go are [`crate::s3_endpoint`].
    /// * query: `endpoint`, `region`, `forcePathStyle`/`force-path-style`, `skipVerify`/`skip-verify`.
    /// * env: `AWS_ACCESS_KEY_ID` → `LITESTREAM_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` →
    ///   `LITESTREAM_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (OSS first tries `OSS_ACCESS_KEY_ID`,
    ///   `OSS_ACCESS_KEY_SECRET`, `OSS_SESSION_TOKEN`); `AWS_REGION` → `AWS_DEFAULT_REGION`;
    ///   `LITESTREAM_S3_ENDPOINT` (s3 only) when the URL gives no endpoint; `AWS_CA_BUNDLE`.
    ///   Empty variables count as unset.
    /// * path style: an explicit query value wins; otherwise on for any custom endpoint (query,
    ///   `LITESTREAM_S3_ENDPOINT`, or a provider host form) and off for AWS and Aliyun.
    /// * region: query, host form, `AWS_REGION`, `AWS_DEFAULT_REGION`; else `us-east-1` with a
    ///   custom endpoint (`cn-hangzhou` for OSS), else `None`.
    /// * an endpoint without scheme gets `https://` (`http://` for local hosts: localhost,
    ///   127.0.0.1, private ranges, `.local`, as Litestream's `EnsureEndpointScheme`).
    pub fn resolve(url: &ReplicaUrl, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Config> {
        let getenv = |k: &str| env(k).filter(|v| !v.is_empty());
        let oss = match url.scheme {
            Scheme::S3 => false,
            Scheme::Oss => true,
            other => {
                return Err(Error::config(format!("S3 settings requested for a {other}:// replica URL")));
            }
        };

        let parsed = if oss {
            parse_oss_host(&url.host)
        } else if lower_starts_with(&url.host, "arn:") {
            HostInfo { bucket: url.host.clone(), region: region_from_arn(&url.host), ..Default::default() }
        } else {
            parse_s3_host(&url.host)
        };
        if parsed.bucket.is_empty() {
            return Err(Error::config(format!("bucket required for {} replica URL: {}", url.scheme, url.original)));
        }

        let explicit_path_style = bool_query(url, &["forcePathStyle", "force-path-style"])?;
        let skip_verify = bool_query(url, &["skipVerify", "skip-verify"])?.unwrap_or(false);

        let mut custom_endpoint = false;
        let mut endpoint = None;
        if let Some(e) = url.query_param("endpoint").filter(|v| !v.is_empty()) {
            endpoint = Some(ensure_endpoint_scheme(e));
            custom_endpoint = true;
        } else if let Some(e) = parsed.endpoint.clone() {
            endpoint = Some(ensure_endpoint_scheme(&e));
            custom_endpoint = true;
        } else if !oss {
            if let Some(e) = getenv("LITESTREAM_S3_ENDPOINT") {
                endpoint = Some(ensure_endpoint_scheme(&e));
                custom_endpoint = true;
            }
        }

        let region = url
            .query_param("region")
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .or(parsed.region.clone())
            .or_else(|| getenv("AWS_REGION"))
            .or_else(|| getenv("AWS_DEFAULT_REGION"))
            .or_else(|| {
                if oss {
                    Some(OSS_DEFAULT_REGION.to_string())
                } else if endpoint.is_some() {
                    Some(S3_DEFAULT_REGION.to_string())
                } else {
                    None
                }
            });
        if oss && endpoint.is_none() {
            let r = region.as_deref().unwrap_or(OSS_DEFAULT_REGION);
            endpoint = Some(format!("https://oss-{r}.aliyuncs.com"));
        }
        let force_path_style = explicit_path_style.unwrap_or(custom_endpoint);

        let first = |names: &[&str]| names.iter().find_map(|n| getenv(n));
        let (access_key_id, secret_access_key, session_token) = if oss {
            (
                first(&["OSS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID", "LITESTREAM_ACCESS_KEY_ID"]),
                first(&["OSS_ACCESS_KEY_SECRET", "AWS_SECRET_ACCESS_KEY", "LITESTREAM_SECRET_ACCESS_KEY"]),
                first(&["OSS_SESSION_TOKEN", "AWS_SESSION_TOKEN"]),
            )
        } else {
            (
                first(&["AWS_ACCESS_KEY_ID", "LITESTREAM_ACCESS_KEY_ID"]),
                first(&["AWS_SECRET_ACCESS_KEY", "LITESTREAM_SECRET_ACCESS_KEY"]),
                first(&["AWS_SESSION_TOKEN"]),
            )
        };

        Ok(S3Config {
            bucket: parsed.bucket,
            prefix: url.path.clone(),
            region,
            endpoint,
            force_path_style,
            skip_verify,
            access_key_id,
            secret_access_key,
            session_token,
            ca_bundle: getenv("AWS_CA_BUNDLE"),
        })
    }
}

/// When `LITESTREAM_REPLICA_URL` is unset: build a replica URL from the legacy variables
/// (`LITESTREAM_S3_BUCKET` required, `LITESTREAM_S3_PATH`, `LITESTREAM_S3_REGION`,
/// `LITESTREAM_S3_ENDPOINT`, `LITESTREAM_S3_FORCE_PATH_STYLE`, `LITESTREAM_S3_SKIP_VERIFY`).
/// `Ok(None)` when `LITESTREAM_S3_BUCKET` is unset or empty. The booleans parse like Go's
/// `strconv.ParseBool` (`1 t T TRUE true True 0 f F FALSE false False`); anything else is
/// `failed to parse LITESTREAM_S3_FORCE_PATH_STYLE: strconv.ParseBool: parsing "x": invalid syntax`.
pub fn legacy_s3_url_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<ReplicaUrl>> {
    let getenv = |k: &str| env(k).filter(|v| !v.is_empty());
    let Some(bucket) = getenv("LITESTREAM_S3_BUCKET") else {
        return Ok(None);
    };
    let path = clean_object_path(&getenv("LITESTREAM_S3_PATH").unwrap_or_default());
    let mut query = Vec::new();
    if let Some(v) = getenv("LITESTREAM_S3_REGION") {
        query.push(("region".to_string(), v));
    }
    if let Some(v) = getenv("LITESTREAM_S3_ENDPOINT") {
        query.push(("endpoint".to_string(), v));
    }
    for (var, key) in
        [("LITESTREAM_S3_FORCE_PATH_STYLE", "forcePathStyle"), ("LITESTREAM_S3_SKIP_VERIFY", "skipVerify")]
    {
        if let Some(v) = getenv(var) {
            let b = parse_go_bool(&v).ok_or_else(|| {
                Error::config(format!("failed to parse {var}: strconv.ParseBool: parsing {v:?}: invalid syntax"))
            })?;
            query.push((key.to_string(), b.to_string()));
        }
    }

    let mut original = format!("s3://{}", escape(&bucket, false));
    if !path.is_empty() {
        original.push('/');
        original.push_str(&escape(&path, true));
    }
    for (i, (k, v)) in query.iter().enumerate() {
        original.push(if i == 0 { '?' } else { '&' });
        original.push_str(k);
        original.push('=');
        original.push_str(&escape(v, false));
    }
    Ok(Some(ReplicaUrl { scheme: Scheme::S3, host: bucket, path, user: None, password: None, query, original }))
}

// ------------------------------------------------------------------------------------------------
// Booleans

/// Query booleans: `true|1|t|yes` / `false|0|f|no`, any case (Litestream `BoolQueryValue`).
/// `Ok(None)` when no key is present or the value is empty; anything else is a Config error.
fn bool_query(url: &ReplicaUrl, keys: &[&str]) -> Result<Option<bool>> {
    for key in keys {
        if let Some(raw) = url.query_param(key).filter(|v| !v.is_empty()) {
            return match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "t" | "yes" => Ok(Some(true)),
                "false" | "0" | "f" | "no" => Ok(Some(false)),
                _ => Err(Error::config(format!("invalid boolean value for {key}: {raw:?}"))),
            };
        }
    }
    Ok(None)
}

/// Go `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

// ------------------------------------------------------------------------------------------------
// URL syntax helpers

fn lower_starts_with(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Go `getScheme`: `[A-Za-z][A-Za-z0-9+.-]*:`. `None` when there is no (valid) scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i > 0 => return Some((&s[..i], &s[i + 1..])),
            _ => return None,
        }
    }
    None
}

/// Go `validOptionalPort` on the part after the last colon (IPv6 literals in brackets allowed).
fn check_port(hostport: &str) -> std::result::Result<(), String> {
    let after_bracket = match hostport.rfind(']') {
        Some(i) if hostport.starts_with('[') => &hostport[i + 1..],
        _ => hostport,
    };
    if let Some(i) = after_bracket.rfind(':') {
        let port = &after_bracket[i..];
        if !port[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    Ok(())
}

/// Percent-decode; `plus_is_space` for query components. Invalid escapes are errors.
fn unescape(s: &str, plus_is_space: bool) -> std::result::Result<String, String> {
    if !(s.contains('%') || (plus_is_space && s.contains('+'))) {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(b.len());
                        let bad = String::from_utf8_lossy(&b[i..end]);
                        return Err(format!("invalid URL escape {bad:?}"));
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 after unescaping".to_string())
}

/// Percent-encode everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
fn escape(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go `url.ParseQuery` as used through `u.Query()`: pairs with a `;` or a bad escape are dropped.
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(k, true).ok()?, unescape(v, true).ok()?))
        })
        .collect()
}

/// Go `path.Clean`.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Object-store path: cleaned, no leading slash, `""` for the root (Litestream `CleanReplicaURLPath`).
fn clean_object_path(p: &str) -> String {
    let c = clean_path(&format!("/{p}"));
    c.trim_start_matches('/').to_string()
}

/// The raw URL with `user:password@` → `user:xxxxx@` and secret query values → `xxxxx`.
fn redact_raw(s: &str) -> String {
    crate::redact::redact_url(s)
}

/// `s3://arn:aws:s3:<region>:<account>:accesspoint/<name>[/<path>][?query]` (Litestream
/// `parseS3AccessPointURL`): the ARN up to the access-point name is the "bucket".
fn parse_s3_access_point(s: &str) -> Result<ReplicaUrl> {
    let rest = &s["s3://".len()..];
    let (arn_path, raw_query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let invalid = || Error::config(format!("invalid s3 access point arn: {arn_path}"));
    let marker = ":accesspoint/";
    let i = arn_path.to_ascii_lowercase().find(marker).ok_or_else(invalid)?;
    let name_start = i + marker.len();
    if name_start >= arn_path.len() {
        return Err(invalid());
    }
    let (bucket, key) = match arn_path[name_start..].find('/') {
        Some(j) => (&arn_path[..name_start + j], &arn_path[name_start + j + 1..]),
        None => (arn_path, ""),
    };
    Ok(ReplicaUrl {
        scheme: Scheme::S3,
        host: bucket.to_string(),
        path: clean_object_path(key),
        user: None,
        password: None,
        query: raw_query.map(parse_query).unwrap_or_default(),
        original: redact_raw(s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::collections::HashMap;

    fn p(s: &str) -> ReplicaUrl {
        ReplicaUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn err(s: &str) -> Error {
        let e = ReplicaUrl::parse(s).expect_err(s);
        assert_eq!(e.kind, ErrorKind::Config, "{s}");
        e
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| m.get(k).cloned()
    }

    fn s3(url: &str, env: &[(&str, &str)]) -> S3Config {
        S3Config::resolve(&p(url), &env_of(env)).unwrap_or_else(|e| panic!("{url}: {e:?}"))
    }

    // ---- parse: file ----

    #[test]
    fn file_absolute_paths_are_cleaned() {
        let u = p("file:///abs/dir");
        assert_eq!((u.scheme, u.host.as_str(), u.path.as_str()), (Scheme::File, "", "/abs/dir"));
        assert_eq!(p("file:///abs/dir/").path, "/abs/dir");
        assert_eq!(p("file:///abs//x/./y/../dir/").path, "/abs/x/dir");
        assert_eq!(p("file:///../../x").path, "/x");
        assert_eq!(p("file:///").path, "/");
        assert_eq!(p("file:/abs/dir").path, "/abs/dir");
    }

    #[test]
    fn file_host_becomes_first_path_component() {
        assert_eq!(p("file://rel").path, "/rel");
        assert_eq!(p("file://rel/sub/").path, "/rel/sub");
        assert_eq!(p("file://rel").host, "");
    }

    #[test]
    fn file_opaque_form_stays_relative() {
        assert_eq!(p("file:rel/x/").path, "rel/x");
        assert_eq!(p("file:./data/../replica").path, "replica");
    }

    #[test]
    fn file_query_is_not_part_of_the_path_and_escapes_are_decoded() {
        assert_eq!(p("file:///srv/replica?foo=bar").path, "/srv/replica");
        assert_eq!(p("file:///srv/replica?foo=bar").query_param("foo"), Some("bar"));
        assert_eq!(p("file:///srv/my%20replica").path, "/srv/my replica");
        assert_eq!(p("file:///srv/a#b").path, "/srv/a#b");
    }

    #[test]
    fn file_scheme_is_case_insensitive() {
        assert_eq!(p("FILE:///x").scheme, Scheme::File);
        assert_eq!(p("S3://b/x").scheme, Scheme::S3);
    }

    // ---- parse: object stores and network schemes ----

    #[test]
    fn object_store_host_and_path() {
        let u = p("s3://bucket/a/b");
        assert_eq!((u.scheme, u.host.as_str(), u.path.as_str()), (Scheme::S3, "bucket", "a/b"));
        assert_eq!(p("s3://bucket/a/b/").path, "a/b");
        assert_eq!(p("s3://bucket").path, "");
        assert_eq!(p("s3://bucket/").path, "");
        assert_eq!(p("s3://bucket/./a//../b").path, "b");
        assert_eq!(p("s3://bucket/../x").path, "x");
        assert_eq!(p("gs://bkt/db").scheme, Scheme::Gs);
        assert_eq!(p("abs://container/db").scheme, Scheme::Abs);
        assert_eq!(p("oss://bkt/db").scheme, Scheme::Oss);
        assert_eq!(p("nats://127.0.0.1:4222/bucket").host, "127.0.0.1:4222");
        assert_eq!(p("webdavs://h/p").scheme, Scheme::Webdavs);
        assert_eq!(p("http://h:8080/p").host, "h:8080");
        assert_eq!(p("https://h/p").scheme, Scheme::Https);
        assert_eq!(p("s3:bucket/path").path, "", "opaque form has no host/path");
    }

    #[test]
    fn every_scheme_round_trips_by_name() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.as_str()), Some(s));
            assert_eq!(p(&format!("{s}://h/x")).scheme, s);
        }
        assert_eq!(Scheme::from_name("ftp"), None);
    }

    #[test]
    fn user_password_are_decoded_and_redacted_in_original() {
        let u = p("sftp://us%40er:p%40ss:w@127.0.0.1:2222/data/db");
        assert_eq!(u.user.as_deref(), Some("us@er"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        assert_eq!(u.host, "127.0.0.1:2222");
        assert_eq!(u.path, "data/db");
        assert_eq!(u.original, "sftp://us%40er:xxxxx@127.0.0.1:2222/data/db");
        assert!(!u.to_string().contains("p%40ss"));
        let u = p("webdav://user@h/p");
        assert_eq!((u.user.as_deref(), u.password.as_deref()), (Some("user"), None));
        assert_eq!(u.original, "webdav://user@h/p");
    }

    #[test]
    fn secret_query_values_are_redacted_in_original() {
        let u = p("abs://c/db?sas-token=abc%2Bdef&endpoint=http://x&account-key=k");
        assert_eq!(u.original, "abs://c/db?sas-token=xxxxx&endpoint=http://x&account-key=xxxxx");
        assert_eq!(u.query_param("sas-token"), Some("abc+def"));
    }

    #[test]
    fn query_pairs_are_decoded_in_order_and_first_wins() {
        let u = p("s3://b/p?endpoint=http%3A%2F%2Fh%3A9000&region=a+b&region=second&flag&x=1;y=2");
        assert_eq!(u.query_param("endpoint"), Some("http://h:9000"));
        assert_eq!(u.query_param("region"), Some("a b"));
        assert_eq!(u.query_param("flag"), Some(""));
        assert_eq!(u.query_param("x"), None, "pairs containing ';' are dropped like Go");
        assert_eq!(u.query_param("missing"), None);
        assert_eq!(u.query.len(), 4);
    }

    #[test]
    fn access_point_arn_hosts() {
        let u = p("s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/db/x?region=eu-west-1");
        assert_eq!(u.host, "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap");
        assert_eq!(u.path, "db/x");
        assert_eq!(u.query_param("region"), Some("eu-west-1"));
        let e = ReplicaUrl::parse("s3://arn:aws:s3:us-west-2:1:bucket/x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.starts_with("invalid s3 access point arn: "), "{e:?}");
        let c = s3("s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/db", &[]);
        assert_eq!(c.region.as_deref(), Some("us-west-2"));
        assert_eq!(c.bucket, "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap");
    }

    // ---- parse: errors ----

    #[test]
    fn missing_scheme_error_text() {
        for s in ["/abs/dir", "bucket/path", "", "://x", "1s3://b"] {
            assert_eq!(err(s).message, format!("replica url scheme required: {s}"));
        }
    }

    #[test]
    fn unsupported_scheme_error_text() {
        assert_eq!(err("ftp://host/x").message, r#"unsupported replica URL scheme: "ftp""#);
        assert_eq!(err("FTP://host/x").message, r#"unsupported replica URL scheme: "ftp""#);
        assert_eq!(err("c:/windows").message, r#"unsupported replica URL scheme: "c""#);
    }

    #[test]
    fn malformed_urls_are_config_errors() {
        assert_eq!(err("s3://b/a%zzb").message, r#"invalid replica URL "s3://b/a%zzb": invalid URL escape "%zz""#);
        assert_eq!(
            err("s3://b:port/x").message,
            r#"invalid replica URL "s3://b:port/x": invalid port ":port" after host"#
        );
        assert!(err("s3://b/x\ny").message.contains("invalid control character in URL"));
        // The password never shows in errors.
        assert!(!err("sftp://u:secret@h:xx/p").message.contains("secret"));
        // IPv6 literal with port is fine.
        assert_eq!(p("http://[::1]:8080/x").host, "[::1]:8080");
    }

    // ---- layout ----

    #[test]
    fn layout_per_scheme() {
        let l = p("s3://bkt/mydb").layout();
        assert_eq!(l.style(), LevelStyle::Hex4);
        assert_eq!(l.level_prefix(9), "mydb/0009/");
        assert_eq!(p("oss://bkt/x").layout().style(), LevelStyle::Hex4);
        assert_eq!(p("s3://bkt").layout().level_prefix(0), "0000/");
        let l = p("file:///srv/replica/").layout();
        assert_eq!(l.style(), LevelStyle::LtxDecimal);
        assert_eq!(l.level_prefix(0), "/srv/replica/ltx/0/");
        for s in ["gs://b/p", "abs://b/p", "sftp://h/p", "webdav://h/p", "nats://h/p", "https://h/p"] {
            assert_eq!(p(s).layout().level_prefix(1), "p/ltx/1/", "{s}");
        }
    }

    // ---- S3Config ----

    #[test]
    fn s3_plain_aws_bucket() {
        let c = s3("s3://bkt/a/b", &[]);
        assert_eq!(
            c,
            S3Config {
                bucket: "bkt".into(),
                prefix: "a/b".into(),
                region: None,
                endpoint: None,
                force_path_style: false,
                skip_verify: false,
                access_key_id: None,
                secret_access_key: None,
                session_token: None,
                ca_bundle: None,
            }
        );
    }

    #[test]
    fn s3_query_endpoint_region_and_flags() {
        let c = s3("s3://bkt/db?endpoint=http://127.0.0.1:9000/&region=eu-central-1", &[]);
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.region.as_deref(), Some("eu-central-1"));
        assert!(c.force_path_style, "custom endpoint defaults to path style");
        let c = s3("s3://bkt/db?endpoint=minio.example.com&forcePathStyle=false", &[]);
        assert_eq!(c.endpoint.as_deref(), Some("https://minio.example.com"));
        assert_eq!(c.region.as_deref(), Some("us-east-1"), "custom endpoint defaults to us-east-1");
        assert!(!c.force_path_style);
        assert!(s3("s3://bkt/db?force-path-style=TRUE", &[]).force_path_style);
        assert!(s3("s3://bkt/db?forcePathStyle=1", &[]).force_path_style);
        assert!(!s3("s3://bkt/db?endpoint=x.example&force-path-style=0", &[]).force_path_style);
        assert!(s3("s3://bkt/db?skipVerify=True", &[]).skip_verify);
        assert!(s3("s3://bkt/db?skip-verify=1", &[]).skip_verify);
        assert!(!s3("s3://bkt/db?skipVerify=FALSE", &[]).skip_verify);
        assert!(!s3("s3://bkt/db?skipVerify=", &[]).skip_verify);
        assert!(s3("s3://bkt/db?forcePathStyle=yes&skipVerify=t", &[]).force_path_style);
    }

    #[test]
    fn s3_bad_boolean_is_config_error() {
        let e = S3Config::resolve(&p("s3://bkt/db?forcePathStyle=maybe"), &env_of(&[])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.message, r#"invalid boolean value for forcePathStyle: "maybe""#);
        let e = S3Config::resolve(&p("s3://bkt/db?skip-verify=2"), &env_of(&[])).unwrap_err();
        assert_eq!(e.message, r#"invalid boolean value for skip-verify: "2""#);
    }

    #[test]
    fn s3_endpoint_scheme_defaults() {
        assert_eq!(s3("s3://b/p?endpoint=s3.example.com", &[]).endpoint.as_deref(), Some("https://s3.example.com"));
        assert_eq!(s3("s3://b/p?endpoint=localhost:9000", &[]).endpoint.as_deref(), Some("http://localhost:9000"));
        assert_eq!(s3("s3://b/p?endpoint=127.0.0.1:9000", &[]).endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3("s3://b/p?endpoint=192.168.1.5", &[]).endpoint.as_deref(), Some("http://192.168.1.5"));
        assert_eq!(s3("s3://b/p?endpoint=172.20.0.1:80", &[]).endpoint.as_deref(), Some("http://172.20.0.1:80"));
        assert_eq!(s3("s3://b/p?endpoint=172.32.0.1", &[]).endpoint.as_deref(), Some("https://172.32.0.1"));
        assert_eq!(s3("s3://b/p?endpoint=minio.local:9000", &[]).endpoint.as_deref(), Some("http://minio.local:9000"));
        assert_eq!(s3("s3://b/p?endpoint=HTTPS://X.example/", &[]).endpoint.as_deref(), Some("https://X.example"));
    }

    #[test]
    fn s3_env_credentials_and_fallbacks() {
        let c = s3(
            "s3://b/p",
            &[
                ("AWS_ACCESS_KEY_ID", "AK"),
                ("LITESTREAM_ACCESS_KEY_ID", "LAK"),
                ("AWS_SECRET_ACCESS_KEY", "SK"),
                ("LITESTREAM_SECRET_ACCESS_KEY", "LSK"),
                ("AWS_SESSION_TOKEN", "TOK"),
                ("AWS_CA_BUNDLE", "/etc/ca.pem"),
            ],
        );
        assert_eq!(c.access_key_id.as_deref(), Some("AK"));
        assert_eq!(c.secret_access_key.as_deref(), Some("SK"));
        assert_eq!(c.session_token.as_deref(), Some("TOK"));
        assert_eq!(c.ca_bundle.as_deref(), Some("/etc/ca.pem"));

        let c = s3(
            "s3://b/p",
            &[("AWS_ACCESS_KEY_ID", ""), ("LITESTREAM_ACCESS_KEY_ID", "LAK"), ("LITESTREAM_SECRET_ACCESS_KEY", "LSK")],
        );
        assert_eq!(c.access_key_id.as_deref(), Some("LAK"), "empty AWS_ACCESS_KEY_ID counts as unset");
        assert_eq!(c.secret_access_key.as_deref(), Some("LSK"));
        assert_eq!(c.session_token, None);
        assert_eq!(c.ca_bundle, None);
    }

    #[test]
    fn s3_region_precedence() {
        let env = [("AWS_REGION", "r-env"), ("AWS_DEFAULT_REGION", "r-default")];
        assert_eq!(s3("s3://b/p?region=r-url", &env).region.as_deref(), Some("r-url"));
        assert_eq!(s3("s3://b/p", &env).region.as_deref(), Some("r-env"));
        assert_eq!(s3("s3://b/p", &env[1..]).region.as_deref(), Some("r-default"));
        assert_eq!(s3("s3://b/p?endpoint=http://h:1", &env).region.as_deref(), Some("r-env"));
        assert_eq!(s3("s3://b/p?endpoint=http://h:1", &[]).region.as_deref(), Some("us-east-1"));
        assert_eq!(s3("s3://b/p", &[]).region, None);
        assert_eq!(s3("s3://b.s3.eu-west-3.amazonaws.com/p", &env).region.as_deref(), Some("eu-west-3"));
    }

    #[test]
    fn s3_litestream_endpoint_env() {
        let env = [("LITESTREAM_S3_ENDPOINT", "http://10.0.0.1:9000")];
        let c = s3("s3://b/p", &env);
        assert_eq!(c.endpoint.as_deref(), Some("http://10.0.0.1:9000"));
        assert!(c.force_path_style, "LITESTREAM_S3_ENDPOINT forces path style");
        assert_eq!(c.region.as_deref(), Some("us-east-1"));
        // The URL endpoint wins over the env endpoint.
        assert_eq!(s3("s3://b/p?endpoint=https://u.example", &env).endpoint.as_deref(), Some("https://u.example"));
        // An explicit forcePathStyle=false still wins.
        assert!(!s3("s3://b/p?forcePathStyle=false", &env).force_path_style);
        // Without scheme.
        assert_eq!(
            s3("s3://b/p", &[("LITESTREAM_S3_ENDPOINT", "storage.example.com")]).endpoint.as_deref(),
            Some("https://storage.example.com")
        );
        // Not for OSS.
        assert_eq!(s3("oss://b/p", &env).endpoint.as_deref(), Some("https://oss-cn-hangzhou.aliyuncs.com"));
    }

    #[test]
    fn s3_provider_host_forms() {
        let c = s3("s3://bkt.s3.amazonaws.com/p", &[]);
        assert_eq!((c.bucket.as_str(), c.region.as_deref(), c.endpoint.as_deref()), ("bkt", None, None));
        assert!(!c.force_path_style);
        let c = s3("s3://my.bkt.s3.us-west-2.amazonaws.com/p", &[]);
        assert_eq!((c.bucket.as_str(), c.region.as_deref()), ("my.bkt", Some("us-west-2")));
        let c = s3("s3://bkt.s3-eu-west-1.amazonaws.com/p", &[]);
        assert_eq!((c.bucket.as_str(), c.region.as_deref()), ("bkt", Some("eu-west-1")));

        let c = s3("s3://bkt.localhost:9000/p", &[]);
        assert_eq!(
            (c.bucket.as_str(), c.region.as_deref(), c.endpoint.as_deref(), c.force_path_style),
            ("bkt", Some("us-east-1"), Some("http://localhost:9000"), true)
        );
        let c = s3("s3://bkt.127.0.0.1:8333/p", &[]);
        assert_eq!((c.bucket.as_str(), c.endpoint.as_deref()), ("bkt", Some("http://127.0.0.1:8333")));
        assert!(c.force_path_style);
        let c = s3("s3://bkt.s3.us-west-000.backblazeb2.com/p", &[]);
        assert_eq!(
            (c.bucket.as_str(), c.region.as_deref(), c.endpoint.as_deref()),
            ("bkt", Some("us-west-000"), Some("https://s3.us-west-000.backblazeb2.com"))
        );
        let c = s3("s3://bkt.s3.filebase.com/p", &[]);
        assert_eq!((c.bucket.as_str(), c.endpoint.as_deref()), ("bkt", Some("https://s3.filebase.com")));
        let c = s3("s3://bkt.nyc3.digitaloceanspaces.com/p", &[]);
        assert_eq!(
            (c.bucket.as_str(), c.region.as_deref(), c.endpoint.as_deref()),
            ("bkt", Some("nyc3"), Some("https://nyc3.digitaloceanspaces.com"))
        );
        let c = s3("s3://bkt.s3.fr-par.scw.cloud/p", &[]);
        assert_eq!(
            (c.bucket.as_str(), c.region.as_deref(), c.endpoint.as_deref()),
            ("bkt", Some("fr-par"), Some("https://s3.fr-par.scw.cloud"))
        );
        let c = s3("s3://bkt.us-east-1.linodeobjects.com/p", &[]);
        assert_eq!(
            (c.bucket.as_str(), c.region.as_deref(), c.endpoint.as_deref()),
            ("bkt", Some("us-east-1"), Some("https://us-east-1.linodeobjects.com"))
        );
        // The query endpoint overrides the host-derived one, the host-derived region stays.
        let c = s3("s3://bkt.nyc3.digitaloceanspaces.com/p?endpoint=http://127.0.0.1:1", &[]);
        assert_eq!((c.endpoint.as_deref(), c.region.as_deref()), (Some("http://127.0.0.1:1"), Some("nyc3")));
        // A plain dotted bucket is a bucket.
        assert_eq!(s3("s3://my.bucket.name/p", &[]).bucket, "my.bucket.name");
    }

    #[test]
    fn s3_bucket_required() {
        for u in ["s3:///p", "s3://localhost:9000/p", "s3:bucket/p"] {
            let e = S3Config::resolve(&p(u), &env_of(&[])).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Config);
            assert!(e.message.starts_with("bucket required for s3 replica URL"), "{u}: {e:?}");
        }
    }

    #[test]
    fn s3_config_rejects_other_schemes() {
        let e = S3Config::resolve(&p("gs://b/p"), &env_of(&[])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.message, "S3 settings requested for a gs:// replica URL");
    }

    #[test]
    fn oss_defaults_and_host_forms() {
        let c = s3("oss://bkt/db", &[]);
        assert_eq!(c.region.as_deref(), Some("cn-hangzhou"));
        assert_eq!(c.endpoint.as_deref(), Some("https://oss-cn-hangzhou.aliyuncs.com"));
        assert!(!c.force_path_style, "OSS uses virtual-hosted style");
        let c = s3("oss://bkt.oss-cn-beijing.aliyuncs.com/db", &[]);
        assert_eq!((c.bucket.as_str(), c.region.as_deref()), ("bkt", Some("cn-beijing")));
        assert_eq!(c.endpoint.as_deref(), Some("https://oss-cn-beijing.aliyuncs.com"));
        let c = s3("oss://bkt.oss-cn-shanghai-internal.aliyuncs.com/db", &[]);
        assert_eq!((c.bucket.as_str(), c.region.as_deref()), ("bkt", Some("cn-shanghai")));
        let c = s3("oss://bkt/db?endpoint=http://127.0.0.1:8333", &[]);
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert!(c.force_path_style);
        let c = s3(
            "oss://bkt/db",
            &[("OSS_ACCESS_KEY_ID", "O"), ("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "S")],
        );
        assert_eq!((c.access_key_id.as_deref(), c.secret_access_key.as_deref()), (Some("O"), Some("S")));
    }

    // ---- legacy env ----

    #[test]
    fn legacy_env_absent_bucket_is_none() {
        assert_eq!(legacy_s3_url_from_env(&env_of(&[])).unwrap(), None);
        assert_eq!(legacy_s3_url_from_env(&env_of(&[("LITESTREAM_S3_BUCKET", "")])).unwrap(), None);
        assert_eq!(legacy_s3_url_from_env(&env_of(&[("LITESTREAM_S3_PATH", "x")])).unwrap(), None);
    }

    #[test]
    fn legacy_env_builds_an_s3_url() {
        let env = env_of(&[
            ("LITESTREAM_S3_BUCKET", "bkt"),
            ("LITESTREAM_S3_PATH", "/db/prod/"),
            ("LITESTREAM_S3_REGION", "eu-west-1"),
            ("LITESTREAM_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("LITESTREAM_S3_FORCE_PATH_STYLE", "false"),
            ("LITESTREAM_S3_SKIP_VERIFY", "T"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
        ]);
        let u = legacy_s3_url_from_env(&env).unwrap().unwrap();
        assert_eq!((u.scheme, u.host.as_str(), u.path.as_str()), (Scheme::S3, "bkt", "db/prod"));
        assert_eq!(
            u.original,
            "s3://bkt/db/prod?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&forcePathStyle=false&skipVerify=true"
        );
        // The original re-parses to the same URL.
        assert_eq!(ReplicaUrl::parse(&u.original).unwrap(), u);
        let c = S3Config::resolve(&u, &env).unwrap();
        assert_eq!(c.bucket, "bkt");
        assert_eq!(c.prefix, "db/prod");
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(!c.force_path_style);
        assert!(c.skip_verify);
        assert_eq!(c.access_key_id.as_deref(), Some("AK"));
        assert_eq!(u.layout().level_prefix(0), "db/prod/0000/");
    }

    #[test]
    fn legacy_env_minimal_and_endpoint_defaults_to_path_style() {
        let u = legacy_s3_url_from_env(&env_of(&[("LITESTREAM_S3_BUCKET", "bkt")])).unwrap().unwrap();
        assert_eq!((u.path.as_str(), u.query.len(), u.original.as_str()), ("", 0, "s3://bkt"));
        let env = env_of(&[("LITESTREAM_S3_BUCKET", "bkt"), ("LITESTREAM_S3_ENDPOINT", "http://h:1")]);
        let u = legacy_s3_url_from_env(&env).unwrap().unwrap();
        assert!(S3Config::resolve(&u, &env).unwrap().force_path_style);
    }

    #[test]
    fn legacy_env_bad_booleans() {
        let e = legacy_s3_url_from_env(&env_of(&[
            ("LITESTREAM_S3_BUCKET", "bkt"),
            ("LITESTREAM_S3_FORCE_PATH_STYLE", "yes"),
        ]))
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(
            e.message,
            r#"failed to parse LITESTREAM_S3_FORCE_PATH_STYLE: strconv.ParseBool: parsing "yes": invalid syntax"#
        );
        let e =
            legacy_s3_url_from_env(&env_of(&[("LITESTREAM_S3_BUCKET", "bkt"), ("LITESTREAM_S3_SKIP_VERIFY", "tRuE")]))
                .unwrap_err();
        assert_eq!(
            e.message,
            r#"failed to parse LITESTREAM_S3_SKIP_VERIFY: strconv.ParseBool: parsing "tRuE": invalid syntax"#
        );
        for ok in ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"] {
            let env = env_of(&[("LITESTREAM_S3_BUCKET", "bkt"), ("LITESTREAM_S3_SKIP_VERIFY", ok)]);
            assert!(legacy_s3_url_from_env(&env).is_ok(), "{ok}");
        }
    }

    // ---- helpers ----

    #[test]
    fn clean_path_matches_go() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("//", "/"),
            ("a/b/", "a/b"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/..", "."),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/a/./b/../c/", "/a/c"),
        ] {
            assert_eq!(clean_path(i), o, "{i:?}");
        }
    }

    #[test]
    fn the_component_says_why_it_refuses_a_scheme() {
        for s in [Scheme::File, Scheme::S3, Scheme::Oss, Scheme::Http, Scheme::Https] {
            assert_eq!(s.component_refusal(), None, "{s:?}");
        }
        let nats = Scheme::Nats.component_refusal().unwrap();
        assert!(
            nats.starts_with("replica URL scheme \"nats\" is not supported by the component (it needs raw TCP"),
            "{nats}"
        );
        assert!(Scheme::Gs.component_refusal().unwrap().contains("not built into the component yet"));
    }
}
