//! `serve`: an HTTP server whose requests are answered by the component's own
//! `wasi:http/incoming-handler` (the JSON API: `POST /query`, `GET /status`), the way
//! `wasmtime serve` runs it, but from a pool of warm, sandboxed instances: an instance opens its
//! replica once and keeps its page cache and poll position across requests.
//!
//! At most `pool` instances exist; each serves one request at a time. An instance that traps
//! (deadline, memory limit) is dropped, its request answered `503` with the reason, and the
//! next request gets a fresh instance; the others keep serving.

use crate::Common;
use crate::runtime::{Factory, Instance, explain};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

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

/// Serve one request on a pooled instance through the component's incoming handler.
async fn handle(pool: Arc<Pool>, req: Request<Incoming>) -> Result<Response<HyperOutgoingBody>, Infallible> {
    let Ok(permit) = pool.permits.clone().acquire_owned().await else {
        return Ok(error_response(StatusCode::SERVICE_UNAVAILABLE, "server shutting down"));
    };
    let mut pooled = match pool.take().await {
        Ok(p) => p,
        Err(e) => return Ok(error_response(StatusCode::SERVICE_UNAVAILABLE, &e)),
    };
    let id = pooled.id;
    let (tx, rx) = oneshot::channel();
    let factory = pool.factory.clone();
    let task = tokio::task::spawn_blocking(move || {
        let inst = &mut pooled.instance;
        inst.store.set_epoch_deadline(factory.deadline_ticks());
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
    match rx.await {
        Ok(Ok(mut resp)) => {
            // The body may still be streaming from the instance: the instance (and the permit)
            // go back to the pool when its call ends.
            let pool = pool.clone();
            pool.finishing.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(async move {
                let _ = finish(&pool, task).await;
                pool.finishing.fetch_sub(1, Ordering::AcqRel);
                drop(permit);
            });
            resp.headers_mut().insert("x-ltxvfs-instance", hyper::header::HeaderValue::from(id));
            Ok(resp)
        }
        Ok(Err(code)) => {
            let _ = finish(&pool, task).await;
            drop(permit);
            Ok(error_response(StatusCode::INTERNAL_SERVER_ERROR, &format!("the component failed: {code:?}")))
        }
        Err(_) => {
            // No response: the instance trapped (deadline, memory) or returned without one.
            let msg = finish(&pool, task).await.unwrap_or_else(|| "the component sent no response".into());
            drop(permit);
            Ok(error_response(StatusCode::SERVICE_UNAVAILABLE, &msg))
        }
    }
}

/// Wait for the instance's call; keep it if it ended well, drop it otherwise. The error, if any.
async fn finish(pool: &Pool, task: tokio::task::JoinHandle<(Pooled, Result<(), String>)>) -> Option<String> {
    match task.await {
        Ok((p, Ok(()))) => {
            pool.give_back(p).await;
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

pub fn run(common: &Common, listen: &str, pool_size: usize) -> Result<()> {
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
        });
        eprintln!(
            "ltxvfs-host: serving {} on http://{addr} (pool {}, component {} in {:.1} ms)",
            common.replica,
            pool_size.max(1),
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
