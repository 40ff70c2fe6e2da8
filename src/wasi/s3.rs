//! `s3://` and `oss://` replicas over wasi-http (REPLICA.md §1–§2): ListObjectsV2 (parsed with
//! quick-xml), HEAD for the `litestream-timestamp` metadata, ranged GETs. Requests are signed
//! with SigV4 by `aws-sigv4` (the AWS SDK's own signer) when credentials are set, and sent
//! unsigned otherwise.
//!
//! Settings come from [`S3Config::resolve`] and requests go where [`S3Endpoint`] says, as in the
//! native extension and the host's allow-list. Listings are one level (`delimiter=/`), and a
//! failed or missing `litestream-timestamp` HEAD keeps LastModified, as native does
//! (REPLICA.md §2). Differences: there is no bucket-region lookup (no region and no endpoint
//! means `us-east-1`), no shared credentials file and no instance metadata: the sandbox has no
//! filesystem and reaches only the replica.

use super::http::{self, Request, Response, Target, Verb};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::LtxName;
use crate::replica_url::{S3_DEFAULT_REGION, S3Config};
use crate::s3_endpoint::S3Endpoint;
use crate::storage::{ObjectInfo, RangeRequest, Storage, UnixNanos};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::events::Event;

/// Parallel ranged GETs of one batch (as the native extension).
const GET_CONCURRENCY: usize = 16;
/// Parallel HEADs of a `with_metadata` listing.
const HEAD_CONCURRENCY: usize = 16;
const METADATA_TIMESTAMP_HEADER: &str = "x-amz-meta-litestream-timestamp";

/// RFC 3986 unreserved characters stay; everything else is escaped (what SigV4 expects).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// A key as a URL path: every segment escaped, the slashes kept.
fn encode_key(key: &str) -> String {
    key.split('/').map(encode).collect::<Vec<_>>().join("/")
}

pub struct S3Storage {
    bucket: String,
    region: String,
    /// Where requests go; `path_prefix` is `/bucket` for path-style requests, empty otherwise.
    server: Target,
    path_prefix: String,
    /// Provider headers on every request (Tigris consistency).
    extra_headers: &'static [(&'static str, &'static str)],
    identity: Option<Identity>,
    describe: String,
}

impl S3Storage {
    pub fn new(cfg: &S3Config) -> Result<Self> {
        let region = cfg.region.clone().unwrap_or_else(|| S3_DEFAULT_REGION.to_string());
        let ep = S3Endpoint::for_config(cfg, &region)?;
        let server = Target { https: ep.https, authority: ep.authority.clone(), path_and_query: "/".into() };
        let identity = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => Some(
                Credentials::new(id.clone(), secret.clone(), cfg.session_token.clone(), None, "environment").into(),
            ),
            (Some(_), None) => {
                return Err(Error::config(
                    "an S3 access key id is set but no secret access key (AWS_SECRET_ACCESS_KEY)",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config("an S3 secret access key is set but no access key id (AWS_ACCESS_KEY_ID)"));
            }
            (None, None) => None,
        };
        let mut describe = format!("s3://{}", cfg.bucket);
        if !cfg.prefix.is_empty() {
            describe.push('/');
            describe.push_str(&cfg.prefix);
        }
        describe.push_str(&format!(" (region {}, {})", ep.region, ep.bucket_url()));
        Ok(Self {
            bucket: cfg.bucket.clone(),
            region: ep.region.clone(),
            server,
            path_prefix: ep.bucket_path.clone(),
            extra_headers: ep.extra_headers(),
            identity,
            describe,
        })
    }

    fn object_target(&self, key: &str) -> Target {
        self.server.with_path(format!("{}/{}", self.path_prefix, encode_key(key)))
    }

    fn bucket_target(&self, query: &[(&str, &str)]) -> Target {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.sort();
        let query = q.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        let path = if self.path_prefix.is_empty() { "/".to_string() } else { format!("{}/", self.path_prefix) };
        self.server.with_path(format!("{path}?{query}"))
    }

    /// A request with SigV4 headers (or none, anonymously).
    fn request(&self, verb: Verb, target: Target, mut headers: Vec<(String, String)>) -> Result<Request> {
        headers.extend(self.extra_headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some(identity) = &self.identity {
            let method = if verb == Verb::Head { "HEAD" } else { "GET" };
            let url = target.url();
            let mut settings = SigningSettings::default();
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            let params = v4::SigningParams::builder()
                .identity(identity)
                .region(&self.region)
                .name("s3")
                .time(std::time::SystemTime::now())
                .settings(settings)
                .build()
                .map_err(|e| Error::internal(format!("SigV4 parameters: {e}")))?
                .into();
            let signed = {
                // `host` comes from the URL, as the runtime sets it; the payload is empty.
                let all = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let signable = SignableRequest::new(method, url.as_str(), all, SignableBody::Bytes(&[]))
                    .map_err(|e| Error::internal(format!("cannot sign {url}: {e}")))?;
                sign(signable, &params).map_err(|e| Error::internal(format!("cannot sign {url}: {e}")))?
            };
            let (instructions, _signature) = signed.into_parts();
            for (k, v) in instructions.headers() {
                headers.push((k.to_string(), v.to_string()));
            }
        }
        Ok(Request { verb, target, headers })
    }

    fn get_request(&self, r: &RangeRequest) -> Result<Request> {
        let range = if r.range.end == u64::MAX {
            format!("bytes={}-", r.range.start)
        } else {
            format!("bytes={}-{}", r.range.start, r.range.end - 1)
        };
        self.request(Verb::Get, self.object_target(&r.key), vec![("range".into(), range)])
    }

    /// ListObjectsV2 of one level; the first page from `start_after` (exclusive) when given,
    /// later pages from their continuation token.
    fn list_request(&self, prefix: &str, token: Option<&str>, start_after: Option<&str>) -> Result<Request> {
        // One level, as native (object_store `list_with_delimiter`) and Litestream list.
        let mut q = vec![("delimiter", "/"), ("list-type", "2"), ("prefix", prefix)];
        if let Some(t) = token {
            q.push(("continuation-token", t));
        }
        if let Some(a) = start_after {
            q.push(("start-after", a));
        }
        self.request(Verb::Get, self.bucket_target(&q), Vec::new())
    }

    fn list_page_of(&self, prefix: &str, resp: Result<Response>) -> Result<ListPage> {
        let resp = resp?;
        if resp.status == 404 && s3_code(&resp.body).as_deref() == Some("NoSuchKey") {
            return Ok(ListPage::default());
        }
        if resp.status != 200 {
            return Err(status_error(&resp, "list", &self.bucket, prefix));
        }
        parse_list(&resp.body)
    }

    /// Every page of one listing, starting from its first page.
    fn rest_of_listing(&self, prefix: &str, first: Result<Response>) -> Result<Vec<ObjectInfo>> {
        let mut page = self.list_page_of(prefix, first)?;
        let mut out = std::mem::take(&mut page.objects);
        for _ in 0..100_000 {
            let Some(token) = page.next_token.take() else { break };
            let req = self.list_request(prefix, Some(&token), None)?;
            page = self.list_page_of(prefix, http::send(&req))?;
            out.append(&mut page.objects);
        }
        Ok(out)
    }

    /// Replace `created_at` of the LTX objects with their `litestream-timestamp` metadata (one
    /// HEAD per object, concurrently). Never fails the listing: an object whose HEAD fails (gone
    /// since the listing, denied, a transient error) or carries no parsable timestamp keeps
    /// LastModified, as native and Litestream do (REPLICA.md §2).
    fn add_metadata(&self, objects: &mut [&mut ObjectInfo]) {
        let mut wanted: Vec<&mut &mut ObjectInfo> =
            objects.iter_mut().filter(|o| LtxName::parse_key(&o.key).is_some()).collect();
        let mut reqs = Vec::with_capacity(wanted.len());
        let mut sendable = Vec::with_capacity(wanted.len());
        for (i, o) in wanted.iter().enumerate() {
            match self.request(Verb::Head, self.object_target(&o.key), Vec::new()) {
                Ok(r) => {
                    reqs.push(r);
                    sendable.push(i);
                }
                Err(e) => tracing::debug!(key = %o.key, error = %e.message, "cannot build the metadata HEAD"),
            }
        }
        for (i, r) in sendable.into_iter().zip(http::send_all(&reqs, HEAD_CONCURRENCY)) {
            let o = &mut wanted[i];
            match r {
                Ok(resp) if resp.status == 200 => {
                    match resp.header(METADATA_TIMESTAMP_HEADER).and_then(rfc3339_nanos) {
                        Some(ts) => o.created_at = ts,
                        None => tracing::debug!(key = %o.key, "no parsable litestream-timestamp; keeping LastModified"),
                    }
                }
                Ok(resp) => {
                    tracing::debug!(key = %o.key, status = resp.status, "metadata HEAD failed; keeping LastModified")
                }
                Err(e) => {
                    tracing::debug!(key = %o.key, error = %e.message, "metadata HEAD failed; keeping LastModified")
                }
            }
        }
    }
}

#[derive(Debug, Default, PartialEq)]
struct ListPage {
    objects: Vec<ObjectInfo>,
    next_token: Option<String>,
}

/// The `<Code>` of an S3 XML error body.
fn s3_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + 6;
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].to_string())
}

fn s3_message(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Message>")? + 9;
    let end = start + text[start..].find("</Message>")?;
    Some(text[start..end].to_string())
}

/// An error for a non-success status: 403/401 → Auth, 404 → NotFound, else Network.
fn status_error(resp: &Response, op: &str, bucket: &str, key: &str) -> Error {
    let code = s3_code(&resp.body).unwrap_or_default();
    let msg = s3_message(&resp.body).unwrap_or_default();
    let what = format!("{op} s3://{bucket}/{key}: {} {code} {msg}", resp.status);
    let what = what.trim_end().to_string();
    match resp.status {
        401 | 403 => Error::new(ErrorKind::Auth, what),
        404 => Error::not_found(format!("object not found: s3://{bucket}/{key}")),
        _ => Error::network(what),
    }
}

fn rfc3339_nanos(s: &str) -> Option<UnixNanos> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok()?.timestamp_nanos_opt()
}

/// Parse a ListObjectsV2 result: `Contents/{Key,Size,LastModified}` and the continuation.
fn parse_list(body: &[u8]) -> Result<ListPage> {
    let text = std::str::from_utf8(body).map_err(|_| Error::network("ListObjectsV2: response is not UTF-8"))?;
    let bad = |e: &dyn std::fmt::Display| Error::network(format!("ListObjectsV2: invalid XML: {e}"));
    let mut reader = quick_xml::Reader::from_str(text);
    let mut page = ListPage::default();
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let (mut key, mut size, mut modified) = (None::<String>, None::<u64>, None::<UnixNanos>);
    let mut truncated = false;
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                value.clear();
            }
            Event::Text(t) => value.push_str(&t.decode().map_err(|e| bad(&e))?),
            Event::CData(t) => value.push_str(&t.decode().map_err(|e| bad(&e))?),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| bad(&e))? {
                    value.push(c);
                } else {
                    match r.decode().map_err(|e| bad(&e))?.as_ref() {
                        "amp" => value.push('&'),
                        "lt" => value.push('<'),
                        "gt" => value.push('>'),
                        "quot" => value.push('"'),
                        "apos" => value.push('\''),
                        other => return Err(bad(&format!("unknown entity &{other};"))),
                    }
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let in_contents = path.last().is_some_and(|p| p == "Contents");
                match name.as_str() {
                    "Key" if in_contents => key = Some(std::mem::take(&mut value)),
                    "Size" if in_contents => size = value.trim().parse().ok(),
                    "LastModified" if in_contents => modified = rfc3339_nanos(&value),
                    "Contents" => {
                        if let (Some(k), Some(s)) = (key.take(), size.take()) {
                            page.objects.push(ObjectInfo { key: k, size: s, created_at: modified.take().unwrap_or(0) });
                        }
                        modified = None;
                    }
                    "IsTruncated" if path.len() == 1 => truncated = value.trim() == "true",
                    "NextContinuationToken" if path.len() == 1 => {
                        page.next_token = Some(value.trim().to_string()).filter(|t| !t.is_empty())
                    }
                    _ => {}
                }
                value.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !truncated {
        page.next_token = None;
    } else if page.next_token.is_none() {
        return Err(Error::network("ListObjectsV2: truncated listing without a continuation token"));
    }
    Ok(page)
}

impl Storage for S3Storage {
    fn list(&self, prefix: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        self.list_many(&[prefix.to_string()], with_metadata)
            .pop()
            .unwrap_or_else(|| Err(Error::internal("listing returned nothing")))
    }

    /// One level from `after_key` on the server (`start-after`).
    fn list_after(&self, prefix: &str, after_key: &str, with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let first = http::send(&self.list_request(prefix, None, Some(after_key))?);
        let mut out = self.rest_of_listing(prefix, first)?;
        // A server that ignores start-after still gives the right answer.
        out.retain(|o| o.key.as_str() > after_key);
        if with_metadata && !out.is_empty() {
            self.add_metadata(&mut out.iter_mut().collect::<Vec<_>>());
        }
        Ok(out)
    }

    /// The first page of every listing in one concurrent batch (one round trip for all levels),
    /// further pages in order; then all metadata HEADs in one batch.
    fn list_many(&self, prefixes: &[String], with_metadata: bool) -> Vec<Result<Vec<ObjectInfo>>> {
        let built: Vec<Result<Request>> = prefixes.iter().map(|p| self.list_request(p, None, None)).collect();
        let sendable: Vec<Request> = built.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let mut responses = http::send_all(&sendable, GET_CONCURRENCY).into_iter();
        let mut out: Vec<Result<Vec<ObjectInfo>>> = built
            .into_iter()
            .zip(prefixes)
            .map(|(b, p)| {
                b?;
                let first = responses.next().unwrap_or_else(|| Err(Error::internal("missing response")));
                self.rest_of_listing(p, first)
            })
            .collect();
        if with_metadata {
            let mut all: Vec<&mut ObjectInfo> = out.iter_mut().filter_map(|r| r.as_mut().ok()).flatten().collect();
            if !all.is_empty() {
                self.add_metadata(&mut all);
            }
        }
        out
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let built: Vec<Result<Request>> = requests.iter().map(|r| self.get_request(r)).collect();
        let sendable: Vec<Request> = built.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let mut responses = http::send_all(&sendable, GET_CONCURRENCY).into_iter();
        built
            .into_iter()
            .zip(requests)
            .map(|(b, rr)| {
                b?;
                let resp = responses.next().unwrap_or_else(|| Err(Error::internal("missing response")))?;
                match resp.status {
                    200 => {
                        // The whole object (a server that ignores Range): cut the range out.
                        let len = resp.body.len() as u64;
                        let (s, e) = (rr.range.start.min(len) as usize, rr.range.end.min(len) as usize);
                        Ok(Bytes::copy_from_slice(&resp.body[s..e]))
                    }
                    206 => Ok(Bytes::from(resp.body)),
                    416 => Ok(Bytes::new()),
                    _ => Err(status_error(&resp, "get", &self.bucket, &rr.key)),
                }
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
