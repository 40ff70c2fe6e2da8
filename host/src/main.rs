//! `ltxvfs-host`: serve Litestream replica queries from sandboxed instances of the ltxvfs
//! WebAssembly component (wasmtime, wasmtime-wasi, wasmtime-wasi-http).
//!
//! ```text
//! ltxvfs-host query --replica URL "SQL"          one query in a fresh instance, JSON out
//! ltxvfs-host serve --replica URL --listen ADDR  POST /query, GET /status from pooled instances
//!                  [--request-timeout-ms 10000]  (each request answered within its deadline)
//! ltxvfs-host startup --replica URL              instance start-up timings (benchmark)
//! ```

mod run_wasi;
mod runtime;
mod sandbox;
mod serve;

use clap::{Args, Parser, Subcommand};
use runtime::{Factory, call, default_component_path, load_component};
use sandbox::{DEFAULT_CREDENTIAL_VARS, Policy, normalize_authority, replica_access};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::error::Context as _;
use wasmtime::{Result, bail};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "component",
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::sync::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        },
        require_store_data_send: true,
    });
}

use bindings::exports::ltxvfs::replica::replica as api;

#[derive(Parser)]
#[command(
    name = "ltxvfs-host",
    version,
    about = "Serve Litestream replica queries from sandboxed WebAssembly instances"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one query in a fresh instance and print {"columns", "rows", "txid"} as JSON.
    Query {
        #[command(flatten)]
        common: Common,
        /// The SQL statement.
        sql: String,
        /// A positional parameter as JSON (repeatable): 42, 1.5, "text", null, {"base64": "..."}.
        #[arg(long = "param", value_name = "JSON")]
        params: Vec<String>,
        /// Read the replica as of this time (RFC 3339, "5 minutes ago", ...).
        #[arg(long)]
        time: Option<String>,
    },
    /// Answer POST /query and GET /status over HTTP from a pool of warm instances.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Most instances alive (and requests served) at once.
        #[arg(long, default_value_t = 4)]
        pool: usize,
        /// The deadline of one request, from its arrival to its answer, in milliseconds: past
        /// it the request is answered `504` (the component gets the time left and gives up
        /// first, with the cause).
        #[arg(long, env = "LTXVFS_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
        request_timeout_ms: u64,
    },
    /// Measure a warm query: one instance, the typed `query` export called N times (no HTTP).
    Warm {
        #[command(flatten)]
        common: Common,
        sql: String,
        #[arg(long = "param", value_name = "JSON")]
        params: Vec<String>,
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
    },
    /// Run a WASI command component in the instances' sandbox (tests).
    #[command(hide = true)]
    RunWasi {
        /// The command component (.wasm).
        file: PathBuf,
        /// Allow outgoing HTTP to this host:port (repeatable).
        #[arg(long = "allow-host", value_name = "HOST:PORT")]
        allow_hosts: Vec<String>,
        /// NAME=VALUE in the command's environment (repeatable; nothing else is passed).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        #[arg(long, default_value_t = 256)]
        memory_limit_mib: usize,
        #[arg(long, default_value_t = 120_000)]
        deadline_ms: u64,
    },
    /// Measure instance start-up: compile or load the .cwasm, instantiate N times, open, query.
    Startup {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 50)]
        iterations: usize,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// The replica: s3://bucket/path?endpoint=..., http(s)://host/path, file:///dir.
    #[arg(long)]
    replica: String,
    /// The component (default: $LTXVFS_COMPONENT or target/wasm32-wasip2/component/ltxvfs.wasm).
    #[arg(long)]
    component: Option<PathBuf>,
    /// Where the compiled component (.cwasm) is cached (default: beside the component).
    #[arg(long)]
    compiled_cache: Option<PathBuf>,
    /// Memory limit of one instance, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_limit_mib: usize,
    /// Deadline of one call into an instance (open, query), in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    deadline_ms: u64,
    /// Page cache size in bytes (default: the core's 10 MiB).
    #[arg(long)]
    cache_size: Option<u64>,
    /// Poll interval in milliseconds (default 1000).
    #[arg(long)]
    poll_interval_ms: Option<u64>,
    /// How long opening waits for a first snapshot, in milliseconds.
    #[arg(long)]
    open_timeout_ms: Option<u64>,
    /// Allow outgoing HTTP to this host:port instead of the replica's own (repeatable).
    #[arg(long = "allow-host", value_name = "HOST:PORT")]
    allow_hosts: Vec<String>,
    /// Also pass this environment variable through (the defaults are the AWS/Litestream/OSS
    /// credential variables).
    #[arg(long = "pass-env", value_name = "NAME")]
    pass_env: Vec<String>,
    /// Component log level on stderr (error, warn, info, debug).
    #[arg(long)]
    log: Option<String>,
}

impl Common {
    fn policy(&self) -> Result<Policy> {
        let host_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        // The instance's whole environment: the replica configuration set here, plus the named
        // credential variables that are set. Nothing else of the host's.
        let mut vars: Vec<(String, String)> = vec![("LITESTREAM_REPLICA_URL".into(), self.replica.clone())];
        for (k, v) in [
            ("LTXVFS_CACHE_SIZE", self.cache_size),
            ("LTXVFS_POLL_INTERVAL_MS", self.poll_interval_ms),
            ("LTXVFS_OPEN_TIMEOUT_MS", self.open_timeout_ms),
        ] {
            if let Some(v) = v {
                vars.push((k.into(), v.to_string()));
            }
        }
        if let Some(l) = &self.log {
            vars.push(("LTXVFS_LOG".into(), l.clone()));
        }
        for name in DEFAULT_CREDENTIAL_VARS.iter().map(|s| s.to_string()).chain(self.pass_env.iter().cloned()) {
            if let Some(v) = host_env(&name) {
                vars.push((name, v));
            }
        }
        // Where the instance will send requests, resolved with the environment it will see.
        let instance_env = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let access = replica_access(&self.replica, &instance_env)?;
        let allowed: BTreeSet<String> = if self.allow_hosts.is_empty() {
            access.authorities.into_iter().collect()
        } else {
            self.allow_hosts.iter().map(|h| normalize_authority(h, false)).collect()
        };
        let mut preopens = Vec::new();
        if let Some(dir) = access.directory {
            if !dir.is_dir() {
                bail!("replica directory {} does not exist", dir.display());
            }
            let guest = dir.to_string_lossy().into_owned();
            preopens.push((dir, guest));
        }
        Ok(Policy {
            allowed,
            preopens,
            memory_limit: self.memory_limit_mib.saturating_mul(1024 * 1024),
            deadline: Duration::from_millis(self.deadline_ms.max(1)),
            env: vars,
        })
    }

    fn open_options(&self, time: Option<String>) -> api::OpenOptions {
        api::OpenOptions {
            cache_size: self.cache_size,
            poll_interval_ms: self.poll_interval_ms,
            open_timeout_ms: self.open_timeout_ms,
            time,
        }
    }

    fn factory(&self) -> Result<(Factory, Duration, bool)> {
        let started = Instant::now();
        let engine = runtime::engine()?;
        let path = self.component.clone().unwrap_or_else(default_component_path);
        let (component, cached) = load_component(&engine, &path, self.compiled_cache.as_deref())?;
        let factory = Factory::new(engine, &component, self.policy()?)?;
        Ok((factory, started.elapsed(), cached))
    }
}

pub fn value_to_json(v: api::Value) -> Json {
    use base64::Engine as _;
    match v {
        api::Value::Null => Json::Null,
        api::Value::Integer(i) => json!(i),
        api::Value::Real(r) => match serde_json::Number::from_f64(r) {
            Some(n) => Json::Number(n),
            None => json!({ "real": if r.is_nan() { "nan" } else if r > 0.0 { "inf" } else { "-inf" } }),
        },
        api::Value::Text(s) => Json::String(s),
        api::Value::Blob(b) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

pub fn json_to_value(j: &Json) -> Result<api::Value> {
    use base64::Engine as _;
    Ok(match j {
        Json::Null => api::Value::Null,
        Json::Bool(b) => api::Value::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => api::Value::Integer(i),
            None => api::Value::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => api::Value::Text(s.clone()),
        Json::Object(o) if o.len() == 1 && o.get("base64").is_some_and(Json::is_string) => {
            let s = o.get("base64").and_then(Json::as_str).unwrap_or_default();
            api::Value::Blob(base64::engine::general_purpose::STANDARD.decode(s).context("invalid base64 parameter")?)
        }
        other => bail!("unsupported parameter: {other}"),
    })
}

fn error_json(code: i32, message: &str) -> Json {
    json!({ "error": { "code": code, "message": message } })
}

/// `query`: one fresh instance, open, (travel), query, print.
fn run_query(common: &Common, sql: &str, params: &[String], time: Option<String>) -> Result<i32> {
    let params = parse_params(params)?;
    let (factory, _, _) = common.factory()?;
    let mut inst = factory.instantiate()?;
    let opts = common.open_options(time);
    let url = common.replica.clone();
    let outcome = call(&factory, &mut inst, |i| {
        let r = i.bindings.ltxvfs_replica_replica();
        let db = match r.call_open(&mut i.store, &url, &opts)? {
            Ok(db) => db,
            Err(e) => return Ok(Err(e)),
        };
        let rows = r.database().call_query(&mut i.store, db, sql, &params)?;
        let status = r.database().call_status(&mut i.store, db)?;
        Ok(rows.and_then(|rows| status.map(|s| (rows, s))))
    });
    match outcome {
        Ok(Ok((rows, status))) => {
            let out = json!({
                "columns": rows.columns,
                "rows": rows.rows.into_iter().map(|r| r.into_iter().map(value_to_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "txid": status.txid,
            });
            println!("{out}");
            Ok(0)
        }
        Ok(Err(e)) => {
            eprintln!("{}", error_json(e.code, &e.message));
            Ok(1)
        }
        Err(msg) => {
            eprintln!("{}", error_json(-1, &msg));
            Ok(2)
        }
    }
}

/// `startup`: what an instance costs to start.
fn run_startup(common: &Common, iterations: usize) -> Result<i32> {
    let (factory, load, cached) = common.factory()?;
    let mut starts = Vec::new();
    for _ in 0..iterations.max(1) {
        let inst = factory.instantiate()?;
        starts.push(inst.started);
    }
    starts.sort();
    let median = starts[starts.len() / 2];
    let mut inst = factory.instantiate()?;
    let url = common.replica.clone();
    let opts = common.open_options(None);
    let t = Instant::now();
    let first = call(&factory, &mut inst, |i| {
        let r = i.bindings.ltxvfs_replica_replica();
        let db = r.call_open(&mut i.store, &url, &opts)?.map_err(|e| wasmtime::format_err!("{}", e.message))?;
        let opened = t.elapsed();
        let rows = r.database().call_query(&mut i.store, db, "SELECT count(*) FROM sqlite_master", &[])?;
        rows.map_err(|e| wasmtime::format_err!("{}", e.message))?;
        Ok(opened)
    })
    .map_err(runtime::error_from)?;
    let out = json!({
        "engine_and_component_ms": load.as_secs_f64() * 1e3,
        "compiled_cache_hit": cached,
        "instantiate_median_ms": median.as_secs_f64() * 1e3,
        "instantiate_min_ms": starts[0].as_secs_f64() * 1e3,
        "instantiate_max_ms": starts[starts.len() - 1].as_secs_f64() * 1e3,
        "open_ms": first.as_secs_f64() * 1e3,
        "open_and_first_query_ms": t.elapsed().as_secs_f64() * 1e3,
        "requests": factory.counters.requests.load(std::sync::atomic::Ordering::Relaxed),
    });
    println!("{out}");
    Ok(0)
}

/// `warm`: the same query N times on one warm instance, through the typed export.
fn run_warm(common: &Common, sql: &str, params: &[String], iterations: usize) -> Result<i32> {
    let params = parse_params(params)?;
    let (factory, _, _) = common.factory()?;
    let mut inst = factory.instantiate()?;
    let url = common.replica.clone();
    let opts = common.open_options(None);
    let times = call(&factory, &mut inst, |i| {
        let r = i.bindings.ltxvfs_replica_replica();
        let db = r.call_open(&mut i.store, &url, &opts)?.map_err(|e| wasmtime::format_err!("{}", e.message))?;
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations.max(1) + 1 {
            let t = Instant::now();
            r.database()
                .call_query(&mut i.store, db, sql, &params)?
                .map_err(|e| wasmtime::format_err!("{}", e.message))?;
            times.push(t.elapsed());
        }
        times.remove(0); // the first run fills the cache
        Ok(times)
    })
    .map_err(runtime::error_from)?;
    let mut times = times;
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{}",
        json!({
            "iterations": times.len(),
            "median_ms": ms(times[times.len() / 2]),
            "p90_ms": ms(times[times.len() * 9 / 10]),
            "min_ms": ms(times[0]),
        })
    );
    Ok(0)
}

fn parse_params(params: &[String]) -> Result<Vec<api::Value>> {
    params
        .iter()
        .map(|p| {
            serde_json::from_str::<Json>(p)
                .with_context(|| format!("--param {p} is not JSON"))
                .and_then(|j| json_to_value(&j))
        })
        .collect()
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Query { common, sql, params, time } => run_query(&common, &sql, &params, time),
        Command::Serve { common, listen, pool, request_timeout_ms } => {
            serve::run(&common, &listen, pool, Duration::from_millis(request_timeout_ms.max(1))).map(|_| 0)
        }
        Command::Warm { common, sql, params, iterations } => run_warm(&common, &sql, &params, iterations),
        Command::Startup { common, iterations } => run_startup(&common, iterations),
        Command::RunWasi { file, allow_hosts, env, memory_limit_mib, deadline_ms } => run_wasi::run(
            &file,
            &run_wasi::Options {
                allow_hosts: &allow_hosts,
                env: &env,
                memory_limit_mib,
                deadline: Duration::from_millis(deadline_ms.max(1)),
            },
        ),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ltxvfs-host: {e:#}");
            std::process::exit(2);
        }
    }
}
