//! A small blocking HTTP client over `wasi:http/outgoing-handler`, with batches.
//!
//! The core calls storage synchronously; parallelism comes from batches. [`send_all`] starts
//! up to `concurrency` requests, waits on their pollables together, reads each response body as
//! its headers arrive, and starts the next request as soon as one finishes. Every request has a
//! connect, first-byte and between-bytes timeout (the core's, `crate::retry`), so a dead server
//! cannot hang SQLite; inside a served request they are shortened to the request's deadline,
//! and a request still waiting at the deadline gives up ([`super::deadline`]).

use super::deadline;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{BODY_PROGRESS_TIMEOUT, CONNECT_TIMEOUT, FIRST_BYTE_TIMEOUT};
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, FutureIncomingResponse, Method, OutgoingRequest, RequestOptions, Scheme};
use wasip2::io::streams::StreamError;

/// Refuse response bodies above this (a replica object or a listing page is far smaller).
const MAX_BODY: usize = 512 * 1024 * 1024;

/// An absolute URL split the way wasi-http wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// Starts with `/`; already percent-encoded.
    pub path_and_query: String,
}

impl Target {
    /// Split `http(s)://authority/path?query` (the path must already be encoded).
    pub fn parse(url: &str) -> Result<Target> {
        let (https, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else {
            return Err(Error::config(format!("not an http(s) URL: {url}")));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(Error::config(format!("URL without a host: {url}")));
        }
        Ok(Target { https, authority: authority.to_string(), path_and_query: path.to_string() })
    }

    pub fn url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.authority, self.path_and_query)
    }

    /// The same server, another path.
    pub fn with_path(&self, path_and_query: impl Into<String>) -> Target {
        Target { https: self.https, authority: self.authority.clone(), path_and_query: path_and_query.into() }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Head,
}

/// One request. `Host` is set by the runtime from the authority; do not put it in `headers`.
#[derive(Debug, Clone)]
pub struct Request {
    pub verb: Verb,
    pub target: Target,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (case-insensitive name), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

/// Send every request, at most `concurrency` at a time; one result per request, same order.
/// A transport failure is an error; any HTTP status is a response.
pub fn send_all(requests: &[Request], concurrency: usize) -> Vec<Result<Response>> {
    let mut results: Vec<Option<Result<Response>>> = (0..requests.len()).map(|_| None).collect();
    let mut next = 0usize;
    let mut inflight: Vec<(usize, FutureIncomingResponse)> = Vec::new();
    let concurrency = concurrency.max(1);
    loop {
        while inflight.len() < concurrency && next < requests.len() {
            match start(&requests[next]) {
                Ok(f) => inflight.push((next, f)),
                Err(e) => results[next] = Some(Err(e)),
            }
            next += 1;
        }
        if inflight.is_empty() {
            break;
        }
        let mut pollables: Vec<_> = inflight.iter().map(|(_, f)| f.subscribe()).collect();
        // Last: the request's deadline, if any.
        pollables.extend(deadline::pollable());
        let refs: Vec<_> = pollables.iter().collect();
        let mut ready = wasip2::io::poll::poll(&refs);
        drop(refs);
        drop(pollables);
        ready.sort_unstable();
        if deadline::passed() {
            // Give up on every request still waiting for its response; the ones not started
            // fail in `start`.
            for (idx, _) in inflight.drain(..) {
                results[idx] = Some(Err(deadline::exceeded(&describe(&requests[idx]))));
            }
            continue;
        }
        // Remove from the back so that earlier indices stay valid.
        for &i in ready.iter().rev() {
            let Some(slot) = usize::try_from(i).ok().filter(|&i| i < inflight.len()) else { continue };
            let (idx, fut) = inflight.swap_remove(slot);
            results[idx] = Some(finish(&requests[idx], &fut));
        }
    }
    results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::internal("request was never sent")))).collect()
}

/// One request, on its own.
pub fn send(request: &Request) -> Result<Response> {
    send_all(std::slice::from_ref(request), 1).pop().unwrap_or_else(|| Err(Error::internal("no response")))
}

fn describe(req: &Request) -> String {
    format!("{} {}", if req.verb == Verb::Head { "HEAD" } else { "GET" }, req.target.url())
}

/// A timeout as WASI nanoseconds, shortened to the request's deadline.
fn timeout_ns(d: Duration) -> u64 {
    u64::try_from(deadline::clamp(d).as_nanos()).unwrap_or(u64::MAX).max(1)
}

fn start(req: &Request) -> Result<FutureIncomingResponse> {
    deadline::check(&describe(req))?;
    let url = || req.target.url();
    let entries: Vec<(String, Vec<u8>)> =
        req.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    let headers = Fields::from_list(&entries)
        .map_err(|e| Error::internal(format!("{}: invalid request header: {e:?}", url())))?;
    let out = OutgoingRequest::new(headers);
    let method = match req.verb {
        Verb::Get => Method::Get,
        Verb::Head => Method::Head,
    };
    let scheme = if req.target.https { Scheme::Https } else { Scheme::Http };
    out.set_method(&method).map_err(|_| Error::internal("cannot set the request method"))?;
    out.set_scheme(Some(&scheme)).map_err(|_| Error::internal("cannot set the request scheme"))?;
    out.set_authority(Some(&req.target.authority)).map_err(|_| Error::config(format!("invalid host in {}", url())))?;
    out.set_path_with_query(Some(&req.target.path_and_query))
        .map_err(|_| Error::config(format!("invalid path in {}", url())))?;
    let opts = RequestOptions::new();
    // A runtime may not support a timeout; the request still goes out.
    let _ = opts.set_connect_timeout(Some(timeout_ns(CONNECT_TIMEOUT)));
    let _ = opts.set_first_byte_timeout(Some(timeout_ns(FIRST_BYTE_TIMEOUT)));
    let _ = opts.set_between_bytes_timeout(Some(timeout_ns(BODY_PROGRESS_TIMEOUT)));
    outgoing_handler::handle(out, Some(opts)).map_err(|e| transport_error(req, &e))
}

fn finish(req: &Request, fut: &FutureIncomingResponse) -> Result<Response> {
    let resp = match fut.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(transport_error(req, &e)),
        Some(Err(())) => return Err(Error::internal("response taken twice")),
        None => return Err(Error::internal("response polled before it was ready")),
    };
    let status = resp.status();
    let headers = resp.headers().entries();
    let mut body = Vec::new();
    if req.verb != Verb::Head {
        let incoming = resp.consume().map_err(|_| Error::internal("response body taken twice"))?;
        {
            let stream = incoming.stream().map_err(|_| Error::internal("response body stream taken twice"))?;
            loop {
                match read_chunk(req, &stream)? {
                    Ok(chunk) => {
                        body.extend_from_slice(&chunk);
                        if body.len() > MAX_BODY {
                            return Err(Error::network(format!("{}: response body too large", req.target.url())));
                        }
                    }
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(Error::network(format!(
                            "{}: reading the response body: {}",
                            req.target.url(),
                            e.to_debug_string()
                        )));
                    }
                }
            }
        }
        drop(wasip2::http::types::IncomingBody::finish(incoming));
    }
    Ok(Response { status, headers, body })
}

/// The next chunk of a body: blocking, or within a served request until its deadline.
fn read_chunk(
    req: &Request,
    stream: &wasip2::io::streams::InputStream,
) -> Result<std::result::Result<Vec<u8>, StreamError>> {
    const CHUNK: u64 = 256 * 1024;
    let Some(at_deadline) = deadline::pollable() else {
        return Ok(stream.blocking_read(CHUNK));
    };
    let readable = stream.subscribe();
    let ready = wasip2::io::poll::poll(&[&readable, &at_deadline]);
    if !ready.contains(&0) {
        return Err(deadline::exceeded(&format!("{}: reading the response body", describe(req))));
    }
    Ok(stream.read(CHUNK))
}

/// A transport failure as an error with a kind: the host refusing the request is `Auth` (no
/// retry helps), everything else is `Network`.
fn transport_error(req: &Request, e: &ErrorCode) -> Error {
    let what = describe(req);
    if deadline::passed() && !matches!(e, ErrorCode::HttpRequestDenied) {
        // A timeout shortened to the deadline: say so.
        return deadline::exceeded(&format!("{what}: {e:?}"));
    }
    match e {
        ErrorCode::HttpRequestDenied => Error::new(
            ErrorKind::Auth,
            format!("{what}: denied by the host: {} is not on the sandbox's allow-list", req.target.authority),
        ),
        ErrorCode::ConnectionRefused => Error::network(format!("{what}: connection refused")),
        ErrorCode::ConnectionTimeout => Error::network(format!("{what}: connection timed out")),
        ErrorCode::DnsError(d) => Error::network(format!("{what}: DNS error {:?}", d.rcode)),
        other => Error::network(format!("{what}: {other:?}")),
    }
}
