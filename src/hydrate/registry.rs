//! One hydrator per (replica, path) per process, shared by that replica's connections.

use crate::error::Result;
use crate::hydrate::Hydrator;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

fn map() -> &'static Mutex<HashMap<String, Weak<Hydrator>>> {
    static MAP: OnceLock<Mutex<HashMap<String, Weak<Hydrator>>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// The live hydrator for `key`, or a new one from `start` (under the registry lock, so two
/// opens never start two tasks on one file).
pub fn shared_hydrator(key: &str, start: impl FnOnce() -> Result<Arc<Hydrator>>) -> Result<Arc<Hydrator>> {
    let mut m = map().lock();
    if let Some(h) = m.get(key).and_then(Weak::upgrade) {
        return Ok(h);
    }
    let fresh = start()?;
    m.retain(|_, w| w.strong_count() > 0);
    m.insert(key.to_string(), Arc::downgrade(&fresh));
    Ok(fresh)
}
