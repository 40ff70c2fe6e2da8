//! One replica object per (URL, options) per process, shared by its connections.

use crate::error::Result;
use crate::replica::Replica;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

fn map() -> &'static Mutex<HashMap<String, Weak<Replica>>> {
    static MAP: OnceLock<Mutex<HashMap<String, Weak<Replica>>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// The live replica for `key`, or a new one from `open` (run without holding the registry
/// lock: an open may wait for a first snapshot). The replica lives while a connection holds it.
pub fn shared_replica(key: &str, open: impl FnOnce() -> Result<Arc<Replica>>) -> Result<Arc<Replica>> {
    if let Some(r) = map().lock().get(key).and_then(Weak::upgrade) {
        return Ok(r);
    }
    let fresh = open()?;
    let mut m = map().lock();
    if let Some(r) = m.get(key).and_then(Weak::upgrade) {
        return Ok(r);
    }
    m.retain(|_, w| w.strong_count() > 0);
    m.insert(key.to_string(), Arc::downgrade(&fresh));
    fresh.start_poller();
    Ok(fresh)
}
