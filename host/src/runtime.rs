//! The wasmtime engine, the compiled-component cache (`.cwasm`), and instances.

use crate::bindings::{Component as Bindings, ComponentPre};
use crate::sandbox::{Counters, Policy, State};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime::{Result, format_err};

/// How often the epoch ticks; deadlines are whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

pub fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    let engine = Engine::new(&config)?;
    // The epoch ticker: a daemon thread; deadlines are counted in its ticks.
    let weak = engine.weak();
    std::thread::Builder::new().name("ltxvfs-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(e) => e.increment_epoch(),
                None => break,
            }
        }
    })?;
    Ok(engine)
}

/// Where the component is when no `--component` is given: `$LTXVFS_COMPONENT`, else next to
/// this executable's target directory (`target/wasm32-wasip2/component/ltxvfs.wasm`).
pub fn default_component_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LTXVFS_COMPONENT") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/ltxvfs-host → target/wasm32-wasip2/component/ltxvfs.wasm
    let target = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    target.join("wasm32-wasip2").join("component").join("ltxvfs.wasm")
}

/// Load the component, from its compiled form when a valid one is cached.
///
/// The cache is `<dir>/ltxvfs-<sha256 of the component and the engine's compatibility
/// hash>.cwasm`; a stale or foreign file fails wasmtime's own compatibility check and is
/// replaced. Returns the component and whether the cache was used.
pub fn load_component(engine: &Engine, path: &Path, cache_dir: Option<&Path>) -> Result<(Component, bool)> {
    let bytes = std::fs::read(path).with_context(|| {
        format!("cannot read the component {} (build it with scripts/build-component.sh)", path.display())
    })?;
    let mut h = Sha256::new();
    h.update(&bytes);
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    h.update(compat.finish().to_le_bytes());
    let digest = h.finalize();
    let key: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let dir = cache_dir.map(Path::to_path_buf).or_else(|| path.parent().map(Path::to_path_buf)).unwrap_or_default();
    let cwasm = dir.join(format!("ltxvfs-{key}.cwasm"));
    if cwasm.is_file() {
        // SAFETY: the file is a wasmtime-compiled artifact that this program wrote itself (its
        // name carries the hash of the component and of this engine's settings), in a directory
        // the user controls; wasmtime checks its header and engine compatibility before use.
        match unsafe { Component::deserialize_file(engine, &cwasm) } {
            Ok(c) => return Ok((c, true)),
            Err(e) => eprintln!("ltxvfs-host: ignoring the compiled cache {}: {e:#}", cwasm.display()),
        }
    }
    let compiled = engine.precompile_component(&bytes).context("cannot compile the component")?;
    // Write atomically; a failure to cache is not an error.
    let tmp = dir.join(format!(".ltxvfs-{key}.{}.tmp", std::process::id()));
    if std::fs::write(&tmp, &compiled).and_then(|_| std::fs::rename(&tmp, &cwasm)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    // SAFETY: `compiled` was produced by `precompile_component` of this very engine just now.
    let component = unsafe { Component::deserialize(engine, &compiled) }?;
    Ok((component, false))
}

pub fn linker(engine: &Engine) -> Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    Ok(linker)
}

/// A pre-linked component: instances start from here.
#[derive(Clone)]
pub struct Factory {
    pub engine: Engine,
    pub pre: ComponentPre<State>,
    pub policy: Arc<Policy>,
    pub counters: Arc<Counters>,
}

impl Factory {
    pub fn new(engine: Engine, component: &Component, policy: Policy) -> Result<Self> {
        let linker = linker(&engine)?;
        let pre = ComponentPre::new(linker.instantiate_pre(component)?)?;
        Ok(Self { engine, pre, policy: Arc::new(policy), counters: Arc::default() })
    }

    pub fn instantiate(&self) -> Result<Instance> {
        let started = Instant::now();
        let mut store = Store::new(&self.engine, State::new(&self.policy, self.counters.clone())?);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        let bindings = self.pre.instantiate(&mut store)?;
        Ok(Instance { store, bindings, started: started.elapsed() })
    }

    pub fn deadline_ticks(&self) -> u64 {
        (self.policy.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// One sandboxed instance.
pub struct Instance {
    pub store: Store<State>,
    pub bindings: Bindings,
    /// How long instantiation took.
    pub started: Duration,
}

/// Explain a failed call: traps from the sandbox get a clear message.
pub fn explain(err: &wasmtime::Error, policy: &Policy) -> String {
    if let Some(trap) = err.downcast_ref::<Trap>() {
        match trap {
            Trap::Interrupt => {
                return format!(
                    "query stopped: it ran past the sandbox deadline of {} ms",
                    policy.deadline.as_millis()
                );
            }
            Trap::StackOverflow => return "query stopped: stack overflow in the sandbox".into(),
            _ => {}
        }
    }
    let text = format!("{err:#}");
    if text.contains("forcing trap when growing memory") || text.contains("memory limit") {
        return format!(
            "instance stopped: it exceeded its memory limit of {} MiB",
            policy.memory_limit / (1024 * 1024)
        );
    }
    format!("instance failed: {text}")
}

/// Run `f` on an instance with a fresh deadline.
pub fn call<T>(
    factory: &Factory,
    inst: &mut Instance,
    f: impl FnOnce(&mut Instance) -> Result<T>,
) -> Result<T, String> {
    inst.store.set_epoch_deadline(factory.deadline_ticks());
    f(inst).map_err(|e| explain(&e, &factory.policy))
}

pub fn error_from(s: String) -> wasmtime::Error {
    format_err!("{s}")
}
