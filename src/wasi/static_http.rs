//! `http://` and `https://` replicas: a copy of a `file://` replica directory served by any
//! static web server that answers byte ranges.
//!
//! Convention (there is no portable way to list a directory over HTTP): `GET <base>/ltx/<L>/`
//! must answer an HTML directory index, as `python3 -m http.server`, nginx `autoindex`, Apache
//! `mod_autoindex` or Caddy `file_server browse` serve it; every `href` whose last path
//! component is an LTX file name (`^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$`) is a file of that level.
//! A 404 is an empty level. Each file's size and creation time come from one `HEAD`
//! (`Content-Length`, `Last-Modified`, whole seconds). Reads are ranged `GET`s; a server that
//! ignores `Range` still works (the range is cut out of the full answer), only slower.

use super::http::{self, Request, Response, Target, Verb};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::LtxName;
use crate::replica_url::ReplicaUrl;
use crate::storage::{ObjectInfo, RangeRequest, Storage, UnixNanos};
use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

const CONCURRENCY: usize = 16;
/// Escape what cannot stand in a URL path; keep `/`.
const PATH: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'<').add(b'>').add(b'?').add(b'`');

pub struct HttpStorage {
    server: Target,
    describe: String,
}

impl HttpStorage {
    pub fn new(url: &ReplicaUrl) -> Result<Self> {
        if url.host.is_empty() {
            return Err(Error::config(format!("no host in replica URL {}", url.original)));
        }
        let https = url.scheme == crate::replica_url::Scheme::Https;
        let server = Target { https, authority: url.host.clone(), path_and_query: "/".into() };
        let describe = format!("{}/{}", server.url().trim_end_matches('/'), url.path);
        Ok(Self { server, describe })
    }

    fn target(&self, key: &str) -> Target {
        self.server.with_path(format!("/{}", utf8_percent_encode(key.trim_start_matches('/'), PATH)))
    }

    fn error(&self, resp: &Response, op: &str, key: &str) -> Error {
        let what = format!("{op} {}: HTTP {}", self.target(key).url(), resp.status);
        match resp.status {
            401 | 403 => Error::new(ErrorKind::Auth, what),
            404 | 410 => Error::not_found(format!("object not found: {}", self.target(key).url())),
            _ => Error::network(what),
        }
    }
}

/// LTX file names linked from an HTML directory index.
fn linked_ltx_names(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find("href=") {
        let start = at + i + 5;
        let rest = &html[start..];
        let (value, used) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
                Some(end) => (&rest[1..1 + end], end + 2),
                None => break,
            },
            _ => {
                let end = rest.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(rest.len());
                (&rest[..end], end)
            }
        };
        at = start + used.max(1);
        let value = value.split(['?', '#']).next().unwrap_or("");
        let last = value.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let name = percent_decode_str(last).decode_utf8_lossy();
        if LtxName::parse(&name).is_some() && !out.iter().any(|n: &String| n == name.as_ref()) {
            out.push(name.into_owned());
        }
    }
    out
}

fn http_date_nanos(s: &str) -> Option<UnixNanos> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

impl Storage for HttpStorage {
    fn list(&self, prefix: &str, _with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let dir = if prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        let resp = http::send(&Request { verb: Verb::Get, target: self.target(&dir), headers: Vec::new() })?;
        match resp.status {
            200 => {}
            404 | 410 => return Ok(Vec::new()),
            _ => return Err(self.error(&resp, "list", &dir)),
        }
        let html = String::from_utf8_lossy(&resp.body);
        let keys: Vec<String> = linked_ltx_names(&html).into_iter().map(|n| format!("{dir}{n}")).collect();
        let heads: Vec<Request> =
            keys.iter().map(|k| Request { verb: Verb::Head, target: self.target(k), headers: Vec::new() }).collect();
        let mut out = Vec::new();
        for (key, r) in keys.into_iter().zip(http::send_all(&heads, CONCURRENCY)) {
            let resp = r?;
            match resp.status {
                200 => {}
                404 | 410 => continue, // deleted since the index was read
                _ => return Err(self.error(&resp, "head", &key)),
            }
            let size = resp
                .header("content-length")
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Error::network(format!("HEAD {}: no Content-Length", self.target(&key).url())))?;
            let created_at = resp.header("last-modified").and_then(http_date_nanos).unwrap_or(0);
            out.push(ObjectInfo { key, size, created_at });
        }
        Ok(out)
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let reqs: Vec<Request> = requests
            .iter()
            .map(|r| {
                let range = if r.range.end == u64::MAX {
                    format!("bytes={}-", r.range.start)
                } else {
                    format!("bytes={}-{}", r.range.start, r.range.end.saturating_sub(1))
                };
                Request { verb: Verb::Get, target: self.target(&r.key), headers: vec![("range".into(), range)] }
            })
            .collect();
        http::send_all(&reqs, CONCURRENCY)
            .into_iter()
            .zip(requests)
            .map(|(r, rr)| {
                let resp = r?;
                if rr.range.start >= rr.range.end {
                    return Ok(Bytes::new());
                }
                match resp.status {
                    206 => Ok(Bytes::from(resp.body)),
                    200 => {
                        let len = resp.body.len() as u64;
                        let (s, e) = (rr.range.start.min(len) as usize, rr.range.end.min(len) as usize);
                        Ok(Bytes::copy_from_slice(&resp.body[s..e]))
                    }
                    416 => Ok(Bytes::new()),
                    _ => Err(self.error(&resp, "get", &rr.key)),
                }
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
