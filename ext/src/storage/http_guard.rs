//! Every HTTP request that object_store sends for us (S3 today; GCS, Azure and WebDAV use the
//! same builders) goes through [`GuardedConnector`], which adds what object_store 0.12 does
//! not have and types what it leaves as text:
//!
//! - a **first-byte timeout** (request sent → response headers) and a **body-progress timeout**
//!   (the longest silence inside a body); reqwest's connect and whole-request timeouts come from
//!   [`ClientOptions`];
//! - a body **shorter than its Content-Length is an error**, never data;
//! - statuses object_store does not type (5xx, 429, 408, 400, 416) become a typed
//!   [`Failure::Status`] with the status code and the start of the body, so that
//!   [`crate::storage::object_store_errors`] classifies by status, not by message text;
//! - transport errors are wrapped in [`Failure::Transport`], so they are recognisable in an
//!   error's source chain.
//!
//! object_store's own retries are switched off where this connector is used: the core's
//! `RetryingStorage` layer retries by error kind, once, for every backend.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
    ReqwestConnector,
};

/// The start of an error body kept for the message (S3 puts its error code there).
const ERROR_BODY_LIMIT: usize = 2048;

/// The timeouts this connector adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub first_byte: Duration,
    pub body_progress: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { first_byte: ltxvfs::retry::FIRST_BYTE_TIMEOUT, body_progress: ltxvfs::retry::BODY_PROGRESS_TIMEOUT }
    }
}

/// Why a request failed, as a type in the error's source chain.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with a status object_store leaves untyped.
    Status { status: u16, body: String },
    /// No response headers within the first-byte timeout.
    NoFirstByte(Duration),
    /// No body bytes within the body-progress timeout.
    Stalled(Duration),
    /// The body ended before Content-Length bytes.
    Truncated { expected: u64, got: u64 },
    /// Connect, reset, TLS, or any other transport failure.
    Transport(HttpError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status { status, body } if body.is_empty() => write!(f, "server answered HTTP {status}"),
            Failure::Status { status, body } => write!(f, "server answered HTTP {status}: {body}"),
            Failure::NoFirstByte(d) => write!(f, "no response within {d:?} (first-byte timeout)"),
            Failure::Stalled(d) => write!(f, "response body stalled for {d:?} (body-progress timeout)"),
            Failure::Truncated { expected, got } => {
                write!(f, "response body truncated: {got} of {expected} bytes (Content-Length)")
            }
            // Not "HTTP error: HTTP error: …": the outer HttpError says that already.
            Failure::Transport(e) => match std::error::Error::source(e) {
                Some(inner) => write!(f, "{inner}"),
                None => write!(f, "{e}"),
            },
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Transport(e) => std::error::Error::source(e).and_then(|s| s.source()),
            _ => None,
        }
    }
}

fn fail(kind: HttpErrorKind, f: Failure) -> HttpError {
    HttpError::new(kind, f)
}

/// Statuses we classify ourselves: object_store types 401/403 only for some requests (not for
/// listings), and 5xx, 429, 408, 400, 416 never. The statuses its clients act on are left to
/// object_store: 404, 409, 412, 304, 3xx, and the 405 its HTTP store reads as "not found".
fn untyped_status(status: u16) -> bool {
    status >= 500 || matches!(status, 400 | 401 | 403 | 408 | 416 | 429)
}

/// The [`HttpConnector`] to give object_store builders.
#[derive(Debug, Default, Clone, Copy)]
pub struct GuardedConnector {
    pub timeouts: Timeouts,
}

impl HttpConnector for GuardedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Guarded { inner, timeouts: self.timeouts }))
    }
}

#[derive(Debug)]
struct Guarded {
    inner: HttpClient,
    timeouts: Timeouts,
}

#[async_trait::async_trait]
impl HttpService for Guarded {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let is_head = req.method() == http::Method::HEAD;
        let t = self.timeouts;
        let resp = match tokio::time::timeout(t.first_byte, self.inner.execute(req)).await {
            Err(_) => return Err(fail(HttpErrorKind::Timeout, Failure::NoFirstByte(t.first_byte))),
            Ok(Err(e)) => return Err(fail(e.kind(), Failure::Transport(e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        if untyped_status(status) {
            let body = error_body(resp.into_body(), t.body_progress).await;
            return Err(fail(HttpErrorKind::Request, Failure::Status { status, body }));
        }
        let expected = if is_head || status == 204 || status == 304 {
            None
        } else {
            resp.headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Ok(resp.map(|body| HttpResponseBody::new(ProgressBody::new(body, t.body_progress, expected))))
    }
}

/// The first [`ERROR_BODY_LIMIT`] bytes of an error body, as text (best effort, bounded in time).
async fn error_body(body: HttpResponseBody, idle: Duration) -> String {
    use futures::StreamExt;
    let mut stream = body.bytes_stream();
    let mut out = Vec::new();
    while out.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&out).into_owned()
}

/// A response body with a progress timeout and a Content-Length check.
struct ProgressBody {
    inner: HttpResponseBody,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    expected: Option<u64>,
    got: u64,
    finished: bool,
}

impl ProgressBody {
    fn new(inner: HttpResponseBody, idle: Duration, expected: Option<u64>) -> Self {
        Self { inner, idle, timer: Box::pin(tokio::time::sleep(idle)), expected, got: 0, finished: false }
    }
}

impl Body for ProgressBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.got += d.len() as u64;
                }
                let next = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finished = true;
                Poll::Ready(Some(Err(fail(e.kind(), Failure::Transport(e)))))
            }
            Poll::Ready(None) => {
                this.finished = true;
                match this.expected {
                    Some(expected) if this.got < expected => Poll::Ready(Some(Err(fail(
                        HttpErrorKind::Interrupted,
                        Failure::Truncated { expected, got: this.got },
                    )))),
                    _ => Poll::Ready(None),
                }
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.finished = true;
                    Poll::Ready(Some(Err(fail(HttpErrorKind::Timeout, Failure::Stalled(this.idle)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    /// Never "ended" before the inner body said so: the length check runs at the end.
    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_untyped_statuses_are_converted() {
        for s in [500, 502, 503, 504, 429, 408, 400, 401, 403, 416] {
            assert!(untyped_status(s), "{s}");
        }
        for s in [200, 206, 207, 301, 304, 404, 405, 409, 412] {
            assert!(!untyped_status(s), "{s}");
        }
    }

    #[test]
    fn failures_read_well() {
        assert_eq!(Failure::Status { status: 503, body: String::new() }.to_string(), "server answered HTTP 503");
        assert_eq!(
            Failure::Truncated { expected: 10, got: 4 }.to_string(),
            "response body truncated: 4 of 10 bytes (Content-Length)"
        );
        assert!(Failure::Stalled(Duration::from_secs(5)).to_string().contains("body-progress timeout"));
    }
}
