//! Where S3 requests go: the one set of S3 endpoint rules, used by the native extension
//! (`ext/src/storage/s3.rs`), the component (`src/wasi/s3.rs`) and the host's allow-list
//! (`host/src/sandbox.rs`), so the three cannot disagree.
//!
//! Pure: no I/O, no environment. Two parts:
//!
//! * **Host forms** of a replica URL (`s3://bucket.s3.eu-west-1.amazonaws.com/db`,
//!   `s3://bucket.nyc3.digitaloceanspaces.com/db`, …): Litestream's `s3.ParseHost` and
//!   `oss.ParseHost`, plus Cloudflare R2 and Tigris host forms that Go lacks. They give
//!   [`crate::replica_url::S3Config::resolve`] a bucket, a region and an endpoint; the query
//!   (`endpoint=`, `region=`, `forcePathStyle=`) and `LITESTREAM_S3_ENDPOINT` override them there.
//! * **[`S3Endpoint::resolve`]**: bucket, region, endpoint and the path-style flag of an
//!   [`S3Config`] → the scheme, `host[:port]` and path prefix of every request, the SigV4
//!   region, and the `host:port` the sandbox must allow. The rules:
//!   - no endpoint: AWS, `s3.<region>.amazonaws.com` (`amazonaws.com.cn` for `cn-*` regions);
//!   - virtual-hosted (`<bucket>.<host>`) unless path style is asked for, or the bucket cannot be
//!     a host name: not DNS-compatible (upper case, `_`, too long), or dotted over HTTPS (the
//!     wildcard certificate does not cover `a.b.<host>`; the AWS SDKs switch to path style too);
//!   - path style: `<host>/<bucket>`; an endpoint's own path stays in front of both;
//!   - an access-point ARN (`arn:<partition>:s3:<region>:<account>:accesspoint/<name>`) goes to
//!     `<name>-<account>.s3-accesspoint.<region>.<domain>`, signed for the ARN's region;
//!   - Tigris (`fly.storage.tigris.dev`, `t3.storage.dev`) gets `X-Tigris-Consistent: true` on
//!     every request, as Litestream sends it (read-after-write listings for the poller).

use crate::error::{Error, Result};
use crate::replica_url::{S3_DEFAULT_REGION, S3Config};

/// The SigV4 region Cloudflare R2 expects (it also accepts `us-east-1`).
pub const R2_REGION: &str = "auto";
/// The SigV4 region Tigris documents.
pub const TIGRIS_REGION: &str = "auto";
/// Tigris endpoints (Litestream `IsTigrisEndpoint`).
const TIGRIS_HOSTS: [&str; 2] = ["fly.storage.tigris.dev", "t3.storage.dev"];

// ------------------------------------------------------------------------------------------------
// Where requests go

/// Who serves an endpoint, from its host (Litestream's `Is*Endpoint`). Only Tigris changes a
/// request; the rest names the provider in descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Aws,
    AwsAccessPoint,
    Aliyun,
    CloudflareR2,
    DigitalOcean,
    Backblaze,
    Filebase,
    Scaleway,
    Linode,
    Tigris,
    Other,
}

impl Provider {
    /// From a lower-case host without port.
    fn of_host(host: &str) -> Provider {
        let ends = |s: &str| host.ends_with(s);
        if TIGRIS_HOSTS.contains(&host) {
            Provider::Tigris
        } else if ends(".amazonaws.com") || ends(".amazonaws.com.cn") {
            Provider::Aws
        } else if ends(".aliyuncs.com") {
            Provider::Aliyun
        } else if ends(".r2.cloudflarestorage.com") {
            Provider::CloudflareR2
        } else if ends(".digitaloceanspaces.com") {
            Provider::DigitalOcean
        } else if ends(".backblazeb2.com") {
            Provider::Backblaze
        } else if host == "s3.filebase.com" {
            Provider::Filebase
        } else if ends(".scw.cloud") {
            Provider::Scaleway
        } else if ends(".linodeobjects.com") {
            Provider::Linode
        } else {
            Provider::Other
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::AwsAccessPoint => "aws access point",
            Provider::Aliyun => "aliyun oss",
            Provider::CloudflareR2 => "cloudflare r2",
            Provider::DigitalOcean => "digitalocean spaces",
            Provider::Backblaze => "backblaze b2",
            Provider::Filebase => "filebase",
            Provider::Scaleway => "scaleway",
            Provider::Linode => "linode",
            Provider::Tigris => "tigris",
            Provider::Other => "custom",
        }
    }
}

/// Where every request of one bucket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    pub https: bool,
    /// `host[:port]` of every request, as sent (the bucket included when virtual-hosted).
    pub authority: String,
    /// Percent-encoded path in front of every key, without trailing slash: the endpoint's own
    /// path, then `/<bucket>` in path style; empty for a virtual-hosted bucket at the root.
    pub bucket_path: String,
    pub virtual_hosted: bool,
    /// The SigV4 region.
    pub region: String,
    pub provider: Provider,
}

impl S3Endpoint {
    /// Resolve an [`S3Config`]'s endpoint. `region` is the region in use: the config's, or the
    /// one the native extension looked up, or [`S3_DEFAULT_REGION`].
    pub fn for_config(cfg: &S3Config, region: &str) -> Result<S3Endpoint> {
        S3Endpoint::resolve(&cfg.bucket, region, cfg.endpoint.as_deref(), cfg.force_path_style)
    }

    /// The rules of the module documentation. `endpoint` is a full `http(s)://host[:port][/path]`
    /// URL ([`S3Config`] adds the scheme); anything else is a Config error, as is an invalid
    /// access-point ARN or an empty bucket.
    pub fn resolve(bucket: &str, region: &str, endpoint: Option<&str>, force_path_style: bool) -> Result<S3Endpoint> {
        if bucket.is_empty() {
            return Err(Error::config("S3 bucket name is empty"));
        }
        let region = if region.is_empty() { S3_DEFAULT_REGION } else { region };
        if bucket.len() >= 4 && bucket[..4].eq_ignore_ascii_case("arn:") {
            return access_point(bucket, region);
        }
        let (https, server, base) = match endpoint {
            Some(ep) => split_endpoint(ep)?,
            None => (true, format!("s3.{region}.{}", aws_domain(region)), String::new()),
        };
        let host = split_host_port(&server).0.to_ascii_lowercase();
        let provider = Provider::of_host(&host);
        let virtual_hosted = !force_path_style && virtual_hostable(bucket, https);
        let (authority, bucket_path) = if virtual_hosted {
            (format!("{bucket}.{server}"), base)
        } else {
            (server, format!("{base}/{}", encode_segment(bucket)))
        };
        Ok(S3Endpoint { https, authority, bucket_path, virtual_hosted, region: region.to_string(), provider })
    }

    /// `http(s)://<authority><bucket_path>`: the URL every key is appended to (after a `/`).
    pub fn bucket_url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.authority, self.bucket_path)
    }

    /// The `host:port` the sandbox allows (lower case, default port explicit).
    pub fn allowed_authority(&self) -> String {
        normalize_authority(&self.authority, self.https)
    }

    /// Headers every request carries (lower-case names).
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self.provider {
            Provider::Tigris => &[("x-tigris-consistent", "true")],
            _ => &[],
        }
    }
}

/// `host:port` with the scheme's default port made explicit, lower-cased (the form the host's
/// allow-list compares; also used there for `http(s)://` replicas).
pub fn normalize_authority(authority: &str, https: bool) -> String {
    let a = authority.trim().to_ascii_lowercase();
    let has_port = match a.rfind(':') {
        Some(i) => !a[i..].contains(']') && a[i + 1..].chars().all(|c| c.is_ascii_digit()) && i + 1 < a.len(),
        None => false,
    };
    if has_port { a } else { format!("{a}:{}", if https { 443 } else { 80 }) }
}

/// `https://host[:port][/base]` → (https, `host[:port]`, `/base` or "").
fn split_endpoint(endpoint: &str) -> Result<(bool, String, String)> {
    let e = endpoint.trim();
    let shown = crate::redact::redact_url(e);
    let lower = e.to_ascii_lowercase();
    let (https, rest) = if lower.starts_with("https://") {
        (true, &e[8..])
    } else if lower.starts_with("http://") {
        (false, &e[7..])
    } else {
        return Err(Error::config(format!("S3 endpoint without http(s):// scheme: {shown:?}")));
    };
    let (server, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if server.is_empty() {
        return Err(Error::config(format!("S3 endpoint without a host: {shown:?}")));
    }
    if server.contains('@') {
        // Not shown: whatever precedes the `@` is a credential.
        return Err(Error::config(
            "S3 endpoint with user info: give credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
        ));
    }
    if path.starts_with(['?', '#']) {
        return Err(Error::config(format!("S3 endpoint with a query or fragment: {shown:?}")));
    }
    Ok((https, server.to_string(), path.trim_end_matches('/').to_string()))
}

/// The AWS partition's domain for a region.
fn aws_domain(region: &str) -> &'static str {
    if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }
}

/// Whether `<bucket>.<host>` is a host name a certificate can cover: DNS-compatible, and
/// without dots over HTTPS.
fn virtual_hostable(bucket: &str, https: bool) -> bool {
    let b = bucket.as_bytes();
    let dns = (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..")
        && !bucket.contains(".-")
        && !bucket.contains("-.")
        && bucket.parse::<std::net::Ipv4Addr>().is_err();
    dns && !(https && bucket.contains('.'))
}

/// `arn:<partition>:s3:<region>:<account>:accesspoint/<name>` → its endpoint.
fn access_point(arn: &str, region: &str) -> Result<S3Endpoint> {
    let bad = || Error::config(format!("invalid s3 access point arn: {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let name = parts[5].strip_prefix("accesspoint/").filter(|n| !n.is_empty() && !n.contains('/')).ok_or_else(bad)?;
    let account = parts[4];
    if account.is_empty() {
        return Err(bad());
    }
    let region = if parts[3].is_empty() { region } else { parts[3] };
    let domain = if parts[1] == "aws-cn" { "amazonaws.com.cn" } else { "amazonaws.com" };
    Ok(S3Endpoint {
        https: true,
        authority: format!("{name}-{account}.s3-accesspoint.{region}.{domain}"),
        bucket_path: String::new(),
        virtual_hosted: true,
        region: region.to_string(),
        provider: Provider::AwsAccessPoint,
    })
}

/// Percent-encode all but RFC 3986 unreserved characters (one path segment).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Host forms of a replica URL (what `S3Config::resolve` reads from `s3://<host>/…`)

/// What a replica URL's host says: the bucket, and for provider host forms a region and an
/// endpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct HostInfo {
    pub(crate) bucket: String,
    pub(crate) region: Option<String>,
    /// Endpoint without scheme, or with `http://` for local hosts.
    pub(crate) endpoint: Option<String>,
}

/// Litestream `s3.ParseHost`: provider-specific host forms.
pub(crate) fn parse_s3_host(host: &str) -> HostInfo {
    let (name, port) = split_host_port(host);
    let with_port = |ep: String| match port {
        Some(p) => format!("{ep}:{p}"),
        None => ep,
    };
    let lower = name.to_ascii_lowercase();
    let info = |bucket: &str, region: Option<&str>, endpoint: String| HostInfo {
        bucket: bucket.to_string(),
        region: region.map(str::to_string),
        endpoint: Some(with_port(endpoint)),
    };

    // bucket.localhost[:port] → http://localhost[:port], us-east-1.
    if lower == "localhost" || lower.ends_with(".localhost") {
        let bucket = if lower == "localhost" { "" } else { &name[..name.len() - ".localhost".len()] };
        return info(bucket, Some(S3_DEFAULT_REGION), "http://localhost".into());
    }
    // AWS virtual-hosted forms: bucket.s3.amazonaws.com, bucket.s3.<region>.amazonaws.com,
    // bucket.s3-<region>.amazonaws.com.
    if let Some(rest) = lower.strip_suffix(".amazonaws.com") {
        let n = rest.len();
        if let Some(b) = rest.strip_suffix(".s3") {
            if !b.is_empty() {
                return HostInfo { bucket: name[..b.len()].to_string(), ..Default::default() };
            }
        } else if let Some(i) = rest.rfind(".s3.").or_else(|| rest.rfind(".s3-")) {
            let region = &rest[i + 4..];
            if i > 0 && !region.is_empty() && !region.contains('.') {
                return HostInfo {
                    bucket: name[..i].to_string(),
                    region: Some(name[i + 4..n].to_string()),
                    endpoint: None,
                };
            }
        }
    }
    // bucket.s3.<region>.backblazeb2.com
    if let Some((bucket, region)) = match_s3_region(&lower, name, ".backblazeb2.com") {
        return info(&bucket, Some(&region), format!("s3.{region}.backblazeb2.com"));
    }
    // bucket.s3.filebase.com
    if lower == "s3.filebase.com" || lower.ends_with(".s3.filebase.com") {
        let bucket = name.len().checked_sub(".s3.filebase.com".len()).map(|n| &name[..n]).unwrap_or("");
        return info(bucket, None, "s3.filebase.com".into());
    }
    // bucket.<region>.digitaloceanspaces.com
    if let Some((bucket, region)) = match_region_label(&lower, name, ".digitaloceanspaces.com") {
        return info(&bucket, Some(&region), format!("{region}.digitaloceanspaces.com"));
    }
    // bucket.s3.<region>.scw.cloud
    if let Some((bucket, region)) = match_s3_region(&lower, name, ".scw.cloud") {
        return info(&bucket, Some(&region), format!("s3.{region}.scw.cloud"));
    }
    // bucket.<region>.linodeobjects.com
    if let Some((bucket, region)) = match_region_label(&lower, name, ".linodeobjects.com") {
        return info(&bucket, Some(&region), format!("{region}.linodeobjects.com"));
    }
    // bucket.<account>[.<jurisdiction>].r2.cloudflarestorage.com (Go has no such form).
    if let Some(rest) = lower.strip_suffix(".r2.cloudflarestorage.com") {
        let mut labels: Vec<&str> = rest.split('.').collect();
        let jurisdiction = match labels.last() {
            Some(&j) if labels.len() > 1 && (j == "eu" || j == "fedramp") => labels.pop(),
            _ => None,
        };
        let account = labels.pop().unwrap_or_default();
        let bucket_len = labels.iter().map(|l| l.len() + 1).sum::<usize>().saturating_sub(1);
        let server = match jurisdiction {
            Some(j) => format!("{account}.{j}.r2.cloudflarestorage.com"),
            None => format!("{account}.r2.cloudflarestorage.com"),
        };
        return info(&name[..bucket_len], Some(R2_REGION), server);
    }
    // bucket.fly.storage.tigris.dev, bucket.t3.storage.dev (Go has no such form).
    for server in TIGRIS_HOSTS {
        if lower == server || lower.ends_with(&format!(".{server}")) {
            let bucket = name.len().checked_sub(server.len() + 1).map(|n| &name[..n]).unwrap_or("");
            return info(bucket, Some(TIGRIS_REGION), server.to_string());
        }
    }
    // MinIO style: bucket.<host>:<port> (a port can never be part of a bucket name).
    if let Some(p) = port {
        return match name.split_once('.') {
            Some((bucket, rest)) => HostInfo {
                bucket: bucket.to_string(),
                region: Some(S3_DEFAULT_REGION.into()),
                endpoint: Some(format!("http://{rest}:{p}")),
            },
            None => HostInfo {
                bucket: String::new(),
                region: Some(S3_DEFAULT_REGION.into()),
                endpoint: Some(format!("http://{name}:{p}")),
            },
        };
    }
    HostInfo { bucket: host.to_string(), ..Default::default() }
}

/// `^(?:(.+)\.)?s3\.([^.]+)<suffix>$` → (bucket, region); bucket may be empty.
fn match_s3_region(lower: &str, name: &str, suffix: &str) -> Option<(String, String)> {
    let rest = lower.strip_suffix(suffix)?;
    let (bucket_len, region_start) = if let Some(region) = rest.strip_prefix("s3.") {
        (0, rest.len() - region.len())
    } else {
        let i = rest.rfind(".s3.")?;
        (i, i + 4)
    };
    let region = &name[region_start..rest.len()];
    if region.is_empty() || region.contains('.') {
        return None;
    }
    Some((name[..bucket_len].to_string(), region.to_string()))
}

/// `^(?:(.+)\.)?([^.]+)<suffix>$` → (bucket, region); bucket may be empty.
fn match_region_label(lower: &str, name: &str, suffix: &str) -> Option<(String, String)> {
    let rest = lower.strip_suffix(suffix)?;
    if rest.is_empty() {
        return None;
    }
    match rest.rfind('.') {
        Some(i) if i + 1 < rest.len() => Some((name[..i].to_string(), name[i + 1..rest.len()].to_string())),
        Some(_) => None,
        None => Some((String::new(), name[..rest.len()].to_string())),
    }
}

/// Litestream `oss.ParseHost`: `bucket.oss-<region>[-internal].aliyuncs.com` or a bare bucket.
pub(crate) fn parse_oss_host(host: &str) -> HostInfo {
    let lower = host.to_ascii_lowercase();
    if let Some(rest) = lower.strip_suffix(".aliyuncs.com") {
        let (bucket_len, label_start) = match rest.find('.') {
            Some(i) => (i, i + 1),
            None => (0, 0),
        };
        let label = &rest[label_start..];
        if let Some(region) = label.strip_prefix("oss-") {
            let region = region.strip_suffix("-internal").unwrap_or(region);
            if !region.is_empty() && !region.contains('.') {
                let start = label_start + 4;
                return HostInfo {
                    bucket: host[..bucket_len].to_string(),
                    region: Some(host[start..start + region.len()].to_string()),
                    endpoint: None,
                };
            }
        }
    }
    HostInfo { bucket: host.to_string(), ..Default::default() }
}

/// `arn:partition:service:region:account:resource` → region.
pub(crate) fn region_from_arn(arn: &str) -> Option<String> {
    arn.split(':').nth(3).filter(|r| !r.is_empty()).map(str::to_string)
}

/// Split `host:port` (IPv6 in brackets). Port is `None` when absent or empty.
fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        if let Some(i) = host.find(']') {
            let rest = &host[i + 1..];
            return match rest.strip_prefix(':') {
                Some(p) if !p.is_empty() => (&host[..=i], Some(p)),
                _ => (&host[..=i], None),
            };
        }
        return (host, None);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() => (h, Some(p)),
        Some((h, _)) => (h, None),
        None => (host, None),
    }
}

/// Litestream `IsLocalEndpoint`.
fn is_local_endpoint(endpoint: &str) -> bool {
    let e = endpoint.trim().to_ascii_lowercase();
    let hostport = e.split('/').next().unwrap_or("");
    let host = split_host_port(hostport).0.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host == "::1"
        || host.starts_with("127.")
        || host.starts_with("10.")
        || host.starts_with("192.168.")
        || host
            .strip_prefix("172.")
            .and_then(|r| r.split('.').next())
            .and_then(|o| o.parse::<u8>().ok())
            .is_some_and(|o| (16..=31).contains(&o))
        || host.ends_with(".local")
        || host.ends_with(".localhost")
}

/// Add `https://` (or `http://` for local hosts) to an endpoint without scheme; drop trailing `/`.
pub(crate) fn ensure_endpoint_scheme(endpoint: &str) -> String {
    let e = endpoint.trim();
    let lower = e.to_ascii_lowercase();
    let full = if lower.starts_with("http://") {
        format!("http://{}", &e[7..])
    } else if lower.starts_with("https://") {
        format!("https://{}", &e[8..])
    } else if is_local_endpoint(e) {
        format!("http://{e}")
    } else {
        format!("https://{e}")
    };
    full.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::replica_url::ReplicaUrl;

    /// (bucket, region, endpoint, force path style) → (bucket URL, allowed host:port, provider).
    type Case = (&'static str, &'static str, Option<&'static str>, bool, &'static str, &'static str, Provider);

    /// The table of [`Case`]s.
    #[test]
    fn endpoints_resolve_by_one_table() {
        use Provider::*;
        let cases: &[Case] = &[
            // AWS: virtual-hosted unless asked or the name cannot be a host.
            (
                "bkt",
                "us-east-1",
                None,
                false,
                "https://bkt.s3.us-east-1.amazonaws.com",
                "bkt.s3.us-east-1.amazonaws.com:443",
                Aws,
            ),
            (
                "bkt",
                "eu-west-1",
                None,
                true,
                "https://s3.eu-west-1.amazonaws.com/bkt",
                "s3.eu-west-1.amazonaws.com:443",
                Aws,
            ),
            (
                "my.bkt",
                "us-west-2",
                None,
                false,
                "https://s3.us-west-2.amazonaws.com/my.bkt",
                "s3.us-west-2.amazonaws.com:443",
                Aws,
            ),
            (
                "Legacy_Bkt",
                "us-east-1",
                None,
                false,
                "https://s3.us-east-1.amazonaws.com/Legacy_Bkt",
                "s3.us-east-1.amazonaws.com:443",
                Aws,
            ),
            (
                "bkt",
                "cn-north-1",
                None,
                false,
                "https://bkt.s3.cn-north-1.amazonaws.com.cn",
                "bkt.s3.cn-north-1.amazonaws.com.cn:443",
                Aws,
            ),
            (
                "bkt",
                "",
                None,
                false,
                "https://bkt.s3.us-east-1.amazonaws.com",
                "bkt.s3.us-east-1.amazonaws.com:443",
                Aws,
            ),
            (
                "b",
                "us-east-1",
                None,
                false,
                "https://s3.us-east-1.amazonaws.com/b",
                "s3.us-east-1.amazonaws.com:443",
                Aws,
            ),
            // Local servers.
            (
                "bkt",
                "us-east-1",
                Some("http://127.0.0.1:9000"),
                true,
                "http://127.0.0.1:9000/bkt",
                "127.0.0.1:9000",
                Other,
            ),
            (
                "bkt",
                "us-east-1",
                Some("http://localhost:9000"),
                false,
                "http://bkt.localhost:9000",
                "bkt.localhost:9000",
                Other,
            ),
            (
                "my.bkt",
                "us-east-1",
                Some("http://minio.local:9000"),
                false,
                "http://my.bkt.minio.local:9000",
                "my.bkt.minio.local:9000",
                Other,
            ),
            ("192.168.1.1", "us-east-1", Some("http://h:1"), false, "http://h:1/192.168.1.1", "h:1", Other),
            ("bkt", "us-east-1", Some("http://[::1]:9000"), true, "http://[::1]:9000/bkt", "[::1]:9000", Other),
            // Dotted names over HTTPS fall back to path style with custom endpoints too.
            (
                "my.bkt",
                "us-east-1",
                Some("https://minio.example.com"),
                false,
                "https://minio.example.com/my.bkt",
                "minio.example.com:443",
                Other,
            ),
            (
                "bkt",
                "us-east-1",
                Some("HTTPS://S3.Example.COM/"),
                true,
                "https://S3.Example.COM/bkt",
                "s3.example.com:443",
                Other,
            ),
            // An endpoint's own path stays in front.
            (
                "bkt",
                "us-east-1",
                Some("https://gw.example.com/s3/"),
                true,
                "https://gw.example.com/s3/bkt",
                "gw.example.com:443",
                Other,
            ),
            (
                "bkt",
                "us-east-1",
                Some("http://gw.example.com:8080/s3"),
                false,
                "http://bkt.gw.example.com:8080/s3",
                "bkt.gw.example.com:8080",
                Other,
            ),
            // Providers.
            (
                "bkt",
                "nyc3",
                Some("https://nyc3.digitaloceanspaces.com"),
                false,
                "https://bkt.nyc3.digitaloceanspaces.com",
                "bkt.nyc3.digitaloceanspaces.com:443",
                DigitalOcean,
            ),
            (
                "bkt",
                "us-west-000",
                Some("https://s3.us-west-000.backblazeb2.com"),
                true,
                "https://s3.us-west-000.backblazeb2.com/bkt",
                "s3.us-west-000.backblazeb2.com:443",
                Backblaze,
            ),
            (
                "bkt",
                "us-east-1",
                Some("https://s3.filebase.com"),
                true,
                "https://s3.filebase.com/bkt",
                "s3.filebase.com:443",
                Filebase,
            ),
            (
                "bkt",
                "fr-par",
                Some("https://s3.fr-par.scw.cloud"),
                false,
                "https://bkt.s3.fr-par.scw.cloud",
                "bkt.s3.fr-par.scw.cloud:443",
                Scaleway,
            ),
            (
                "bkt",
                "us-east-1",
                Some("https://us-east-1.linodeobjects.com"),
                false,
                "https://bkt.us-east-1.linodeobjects.com",
                "bkt.us-east-1.linodeobjects.com:443",
                Linode,
            ),
            (
                "bkt",
                "auto",
                Some("https://acct.r2.cloudflarestorage.com"),
                true,
                "https://acct.r2.cloudflarestorage.com/bkt",
                "acct.r2.cloudflarestorage.com:443",
                CloudflareR2,
            ),
            (
                "bkt",
                "auto",
                Some("https://acct.eu.r2.cloudflarestorage.com"),
                false,
                "https://bkt.acct.eu.r2.cloudflarestorage.com",
                "bkt.acct.eu.r2.cloudflarestorage.com:443",
                CloudflareR2,
            ),
            (
                "bkt",
                "auto",
                Some("https://fly.storage.tigris.dev"),
                true,
                "https://fly.storage.tigris.dev/bkt",
                "fly.storage.tigris.dev:443",
                Tigris,
            ),
            (
                "bkt",
                "auto",
                Some("https://t3.storage.dev"),
                false,
                "https://bkt.t3.storage.dev",
                "bkt.t3.storage.dev:443",
                Tigris,
            ),
            (
                "bkt",
                "cn-hangzhou",
                Some("https://oss-cn-hangzhou.aliyuncs.com"),
                false,
                "https://bkt.oss-cn-hangzhou.aliyuncs.com",
                "bkt.oss-cn-hangzhou.aliyuncs.com:443",
                Aliyun,
            ),
            // Access points.
            (
                "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap",
                "x",
                None,
                false,
                "https://my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com",
                "my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com:443",
                AwsAccessPoint,
            ),
            (
                "arn:aws-cn:s3::123:accesspoint/ap",
                "cn-north-1",
                Some("http://ignored:1"),
                true,
                "https://ap-123.s3-accesspoint.cn-north-1.amazonaws.com.cn",
                "ap-123.s3-accesspoint.cn-north-1.amazonaws.com.cn:443",
                AwsAccessPoint,
            ),
        ];
        for &(bucket, region, endpoint, path_style, url, allowed, provider) in cases {
            let what = format!("{bucket} {region} {endpoint:?} path_style={path_style}");
            let e =
                S3Endpoint::resolve(bucket, region, endpoint, path_style).unwrap_or_else(|e| panic!("{what}: {e:?}"));
            assert_eq!(e.bucket_url(), url, "{what}");
            assert_eq!(e.allowed_authority(), allowed, "{what}");
            assert_eq!(e.provider, provider, "{what}");
            assert_eq!(e.virtual_hosted, !url.ends_with(&format!("/{bucket}")), "{what}");
        }
    }

    #[test]
    fn signing_regions_and_headers() {
        let e = S3Endpoint::resolve("arn:aws:s3:eu-west-1:1:accesspoint/ap", "us-east-1", None, false).unwrap();
        assert_eq!(e.region, "eu-west-1");
        assert_eq!(S3Endpoint::resolve("b", "", None, false).unwrap().region, "us-east-1");
        let tigris = S3Endpoint::resolve("bkt", "auto", Some("https://fly.storage.tigris.dev"), true).unwrap();
        assert_eq!(tigris.extra_headers(), &[("x-tigris-consistent", "true")]);
        assert!(S3Endpoint::resolve("bkt", "r", None, false).unwrap().extra_headers().is_empty());
    }

    #[test]
    fn bad_endpoints_are_config_errors() {
        for (bucket, ep) in [
            ("bkt", Some("s3.example.com")),
            ("bkt", Some("ftp://s3.example.com")),
            ("bkt", Some("https://")),
            ("bkt", Some("https://user:pw@h")),
            ("bkt", Some("https://h?x=1")),
            ("", None),
            ("arn:aws:s3:us-west-2:1:bucket/x", None),
            ("arn:aws:s3:us-west-2::accesspoint/x", None),
            ("arn:aws:s3", None),
        ] {
            let e = S3Endpoint::resolve(bucket, "us-east-1", ep, false).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Config, "{bucket} {ep:?}");
            assert!(!e.message.contains("pw"), "{}", e.message);
        }
    }

    /// Replica URL → S3Config (host forms, query, defaults) → where requests go.
    #[test]
    fn replica_urls_end_to_end() {
        let cases: &[(&str, &str, &str)] = &[
            ("s3://bkt/db", "https://bkt.s3.us-east-1.amazonaws.com", "us-east-1"),
            ("s3://bkt.s3.eu-west-3.amazonaws.com/db", "https://bkt.s3.eu-west-3.amazonaws.com", "eu-west-3"),
            ("s3://my.bkt.s3.us-west-2.amazonaws.com/db", "https://s3.us-west-2.amazonaws.com/my.bkt", "us-west-2"),
            ("s3://bkt.localhost:9000/db", "http://localhost:9000/bkt", "us-east-1"),
            ("s3://bkt/db?endpoint=127.0.0.1:9000", "http://127.0.0.1:9000/bkt", "us-east-1"),
            ("s3://bkt/db?endpoint=s3.example.com&forcePathStyle=false", "https://bkt.s3.example.com", "us-east-1"),
            ("s3://bkt.nyc3.digitaloceanspaces.com/db", "https://nyc3.digitaloceanspaces.com/bkt", "nyc3"),
            ("s3://bkt.s3.us-west-000.backblazeb2.com/db", "https://s3.us-west-000.backblazeb2.com/bkt", "us-west-000"),
            ("s3://bkt.acct.r2.cloudflarestorage.com/db", "https://acct.r2.cloudflarestorage.com/bkt", "auto"),
            (
                "s3://my.bkt.acct.eu.r2.cloudflarestorage.com/db",
                "https://acct.eu.r2.cloudflarestorage.com/my.bkt",
                "auto",
            ),
            ("s3://bkt.fly.storage.tigris.dev/db", "https://fly.storage.tigris.dev/bkt", "auto"),
            ("s3://bkt.t3.storage.dev/db?forcePathStyle=false", "https://bkt.t3.storage.dev", "auto"),
            ("oss://bkt/db", "https://bkt.oss-cn-hangzhou.aliyuncs.com", "cn-hangzhou"),
            ("oss://bkt.oss-cn-beijing.aliyuncs.com/db", "https://bkt.oss-cn-beijing.aliyuncs.com", "cn-beijing"),
            (
                "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/db",
                "https://my-ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com",
                "us-west-2",
            ),
        ];
        for &(url, want, region) in cases {
            let u = ReplicaUrl::parse(url).unwrap();
            let cfg = S3Config::resolve(&u, &|_: &str| None).unwrap_or_else(|e| panic!("{url}: {e:?}"));
            let r = cfg.region.clone().unwrap_or_else(|| S3_DEFAULT_REGION.to_string());
            let e = S3Endpoint::for_config(&cfg, &r).unwrap();
            assert_eq!((e.bucket_url().as_str(), e.region.as_str()), (want, region), "{url}");
        }
        for url in ["s3://acct.r2.cloudflarestorage.com/db", "s3://fly.storage.tigris.dev/db"] {
            let e = S3Config::resolve(&ReplicaUrl::parse(url).unwrap(), &|_: &str| None).unwrap_err();
            assert!(e.message.starts_with("bucket required"), "{url}: {e:?}");
        }
    }
}
