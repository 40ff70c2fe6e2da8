//! `run-wasi` (hidden, for tests): run a WASI command component in the sandbox the replica
//! instances get (wasi + wasi-http, the outgoing allow-list, the memory limit, the epoch
//! deadline, only the environment given). `ext/tests/conformance.rs` runs the storage
//! conformance checks against the component's S3 storage with it
//! (`examples/wasi_conformance.rs`).

use crate::runtime::{self, EPOCH_TICK, explain};
use crate::sandbox::{Counters, Policy, State, normalize_authority};
use std::path::Path;
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::error::Context as _;
use wasmtime::{Result, Store, bail};
use wasmtime_wasi::p2::bindings::sync::Command;

pub struct Options<'a> {
    pub allow_hosts: &'a [String],
    /// `NAME=VALUE`: the command's whole environment.
    pub env: &'a [String],
    pub memory_limit_mib: usize,
    pub deadline: Duration,
}

/// Run `file`'s `wasi:cli/run`; the process exit code (0 when it succeeded).
pub fn run(file: &Path, opts: &Options) -> Result<i32> {
    let mut env = Vec::new();
    for kv in opts.env {
        let Some((k, v)) = kv.split_once('=') else { bail!("--env {kv:?} is not NAME=VALUE") };
        env.push((k.to_string(), v.to_string()));
    }
    let policy = Policy {
        allowed: opts.allow_hosts.iter().map(|h| normalize_authority(h, false)).collect(),
        preopens: Vec::new(),
        memory_limit: opts.memory_limit_mib.saturating_mul(1024 * 1024),
        deadline: opts.deadline,
        env,
    };
    let engine = runtime::engine()?;
    let component = Component::from_file(&engine, file).with_context(|| format!("cannot load {}", file.display()))?;
    let linker = runtime::linker(&engine)?;
    let mut store = Store::new(&engine, State::new(&policy, std::sync::Arc::new(Counters::default()))?);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(
        u64::try_from(opts.deadline.as_millis() / EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).max(1),
    );
    let command = Command::instantiate(&mut store, &component, &linker)?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => {
            eprintln!("ltxvfs-host: {}: {}", file.display(), explain(&e, &policy));
            Ok(2)
        }
    }
}
