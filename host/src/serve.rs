//! `serve`: an HTTP server whose requests are answered by the component's own
//! `wasi:http/incoming-handler` (the JSON API: `POST /query`, `GET /status`), the way
//! `wasmtime serve` runs it, but from a pool of warm, sandboxed instances: an instance opens its
//! replica once and keeps its page cache and poll position across requests.
//!
//! At most `pool` instances exist; each serves one request at a time. An instance that traps
//! (deadline, memory limit) is dropped, its request answered `503` with the reason, and the
//! next request gets a fresh instance; the others keep serving.
//!
//! Every request has a deadline (`--request-timeout-ms`, default 10 s), counted from its
//! arrival: waiting for an instance, the component's work and its storage requests. The
//! component gets what is left, less a margin, in the `ltxvfs-deadline-ms` header
//! (`ltxvfs::request_budget`), so that it gives up first and answers with the cause (`504`, or
//! `502` with a refused connection). Should the deadline pass anyway, the host answers `504`
//! itself and discards the instance once its call ends (its epoch deadline is set just past the
//! request's, so a runaway call ends too).

use crate::Common;
use crate::runtime::{EPOCH_TICK, Factory, Instance, explain};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify, Semaphore, oneshot};
use wasmtime::Result;
use wasmtime::error::Context as _;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

struct Pooled {
    id: u64,
    instance: Instance,
}

struct Pool {
    factory: Factory,
    idle: Mutex<Vec<Pooled>>,
    permits: Arc<Semaphore>,
    next_id: AtomicU64,
    started: AtomicU64,
    dropped: AtomicU64,
    /// Instances whose response is out but whose call is still ending; a request waits for one
    /// of them rather than starting another instance.
    finishing: AtomicU64,
    returned: Notify,
    /// The deadline of one request, from its arrival.
    request_timeout: Duration,
    deadline_exceeded: AtomicU64,
}

/// How long past the request's deadline an abandoned instance may still run wasm before its
/// epoch deadline traps it.
const EPOCH_GRACE: Duration = Duration::from_millis(500);

impl Pool {
    async fn take(&self) -> Result<Pooled, String> {
        loop {
            let returned = self.returned.notified();
            if let Some(p) = self.idle.lock().await.pop() {
                return Ok(p);
            }
            if self.finishing.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout(Duration::from_millis(200), returned).await.is_err() {
                break;
            }
        }
        let factory = self.factory.clone();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let instance = tokio::task::spawn_blocking(move || factory.instantiate())
            .await
            .map_err(|e| format!("instance start failed: {e}"))?
            .map_err(|e| format!("instance start failed: {e:#}"))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        Ok(Pooled { id, instance })
    }

    async fn give_back(&self, p: Pooled) {
        self.idle.lock().await.push(p);
        self.returned.notify_one();
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(body.to_string())).map_err(|never: Infallible| match never {}).boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    resp
}

fn error_response(status: StatusCode, message: &str) -> Response<HyperOutgoingBody> {
    json_response(status, serde_json::json!({ "error": { "code": -1, "message": message } }))
}

/// The `504` of a request whose deadline passed in the host.
fn deadline_response(pool: &Pool, what: &str) -> Response<HyperOutgoingBody> {
    pool.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
    let ms = pool.request_timeout.as_millis();
    error_response(
        StatusCode::GATEWAY_TIMEOUT,
        &format!("the request deadline of {ms} ms passed (--request-timeout-ms) {what}"),
    )
}

/// Serve one request on a pooled instance through the component's incoming handler, within
/// the request's deadline.
async fn handle(pool: Arc<Pool>, mut req: Request<Incoming>) -> Result<Response<HyperOutgoingBody>, Infallible> {
    let deadline = tokio::time::Instant::now() + pool.request_timeout;
    let permit = match tokio::time::timeout_at(deadline, pool.permits.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return Ok(error_response(StatusCode::SERVICE_UNAVAILABLE, "server shutting down")),
        Err(_) => return Ok(deadline_response(&pool, "while waiting for a free instance")),
    };
    let mut pooled = match tokio::time::timeout_at(deadline, pool.take()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Ok(error_response(StatusCode::SERVICE_UNAVAILABLE, &e)),
        Err(_) => return Ok(deadline_response(&pool, "while starting an instance")),
    };
    let id = pooled.id;
    // What is left goes to the component, less the host's margin; the client cannot set it.
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let budget = ltxvfs::request_budget::component_budget(remaining);
    req.headers_mut().insert(
        ltxvfs::request_budget::DEADLINE_HEADER,
        hyper::header::HeaderValue::from(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX)),
    );
    let ticks = epoch_ticks(pool.factory.policy.deadline.min(remaining + EPOCH_GRACE));
    let abandoned = Arc::new(AtomicBool::new(false));
    let (tx, rx) = oneshot::channel();
    let factory = pool.factory.clone();
    let task = tokio::task::spawn_blocking(move || {
        let inst = &mut pooled.instance;
        inst.store.set_epoch_deadline(ticks);
        // The sender is shared with the outparam's callback, so that it is dropped (and the
        // waiting request learns of it) as soon as the call ends without a response, also when
        // the instance trapped and its store is still alive.
        let slot = Arc::new(std::sync::Mutex::new(Some(tx)));
        let outcome = (|| -> wasmtime::Result<()> {
            let req = inst.store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
            let cb = slot.clone();
            let out = inst.store.data_mut().http().new_response_outparam_from_callback(move |r| {
                if let Some(tx) = cb.lock().ok().and_then(|mut s| s.take()) {
                    let _ = tx.send(r);
                }
            })?;
            inst.bindings.wasi_http_incoming_handler().call_handle(&mut inst.store, req, out)
        })();
        if let Ok(mut s) = slot.lock() {
            s.take();
        }
        (pooled, outcome.map_err(|e| explain(&e, &factory.policy)))
    });
    let call = Call { task, abandoned: abandoned.clone() };
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(Ok(mut resp))) => {
            // The body may still be streaming from the instance: the instance (and the permit)
            // go back to the pool when its call ends.
            let pool = pool.clone();
            pool.finishing.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(async move {
                let _ = finish(&pool, call).await;
                pool.finishing.fetch_sub(1, Ordering::AcqRel);
                drop(permit);
            });
            resp.headers_mut().insert("x-ltxvfs-instance", hyper::header::HeaderValue::from(id));
            Ok(resp)
        }
        Ok(Ok(Err(code))) => {
            let _ = finish(&pool, call).await;
            drop(permit);
            Ok(error_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("the component failed: {code:?}")))
        }
        Ok(Err(_)) => {
            // No response: the instance trapped (deadline, memory) or returned without one.
            let msg = finish(&pool, call).await.unwrap_or_else(|| "the component sent no response".into());
            drop(permit);
            Ok(error_response(StatusCode::SERVICE_UNAVAILABLE, &msg))
        }
        Err(_) => {
            // The component did not answer in time: answer for it. The instance is discarded
            // when its call ends; until then it keeps its permit, so the pool stays bounded.
            abandoned.store(true, Ordering::Release);
            let pool2 = pool.clone();
            tokio::spawn(async move {
                let _ = finish(&pool2, call).await;
                drop(permit);
            });
            Ok(deadline_response(&pool, &format!("before instance {id} answered; it is discarded")))
        }
    }
}

fn epoch_ticks(d: Duration) -> u64 {
    u64::try_from(d.as_millis() / EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// An instance's call in progress, and whether its request was already answered for it.
struct Call {
    task: tokio::task::JoinHandle<(Pooled, Result<(), String>)>,
    abandoned: Arc<AtomicBool>,
}

/// Wait for the instance's call; keep it if it ended well and in time, drop it otherwise. The
/// error, if any.
async fn finish(pool: &Pool, call: Call) -> Option<String> {
    match call.task.await {
        Ok((p, Ok(()))) if !call.abandoned.load(Ordering::Acquire) => {
            pool.give_back(p).await;
            None
        }
        Ok((p, Ok(()))) => {
            eprintln!("ltxvfs-host: instance {} dropped: it answered after its request's deadline", p.id);
            pool.dropped.fetch_add(1, Ordering::Relaxed);
            None
        }
        Ok((p, Err(e))) => {
            eprintln!("ltxvfs-host: instance {} dropped: {e}", p.id);
            pool.dropped.fetch_add(1, Ordering::Relaxed);
            Some(e)
        }
        Err(e) => Some(format!("instance task failed: {e}")),
    }
}

pub fn run(common: &Common, listen: &str, pool_size: usize, request_timeout: Duration) -> Result<()> {
    let (factory, load, cached) = common.factory()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let pool = Arc::new(Pool {
            factory,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(pool_size.max(1))),
            next_id: AtomicU64::new(1),
            started: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            finishing: AtomicU64::new(0),
            returned: Notify::new(),
            request_timeout,
            deadline_exceeded: AtomicU64::new(0),
        });
        eprintln!(
            "ltxvfs-host: serving {} on http://{addr} (pool {}, request deadline {} ms, component {} in {:.1} ms)",
            ltxvfs::redact::redact_url(&common.replica),
            pool_size.max(1),
            request_timeout.as_millis(),
            if cached { "loaded from .cwasm" } else { "compiled" },
            load.as_secs_f64() * 1e3
        );
        let started = Instant::now();
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("ltxvfs-host: accept: {e}");
                    continue;
                }
            };
            let pool = pool.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let pool = pool.clone();
                    async move {
                        if req.method() == hyper::Method::GET && req.uri().path() == "/host/stats" {
                            return Ok(json_response(
                                StatusCode::OK,
                                serde_json::json!({
                                    "instances_started": pool.started.load(Ordering::Relaxed),
                                    "instances_dropped": pool.dropped.load(Ordering::Relaxed),
                                    "instances_idle": pool.idle.lock().await.len(),
                                    "deadline_exceeded": pool.deadline_exceeded.load(Ordering::Relaxed),
                                    "outgoing_requests": pool.factory.counters.requests.load(Ordering::Relaxed),
                                    "outgoing_denied": pool.factory.counters.denied.load(Ordering::Relaxed),
                                    "uptime_s": started.elapsed().as_secs_f64(),
                                }),
                            ));
                        }
                        handle(pool, req).await
                    }
                });
                if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    eprintln!("ltxvfs-host: connection: {e}");
                }
            });
        }
    })
}
