//! One hydrator per (replica, path) per process, shared by that replica's connections.
//!
//! When the last connection closes, the task stops within a round or a tick and only then
//! releases the file (and its lock); an open of the same key meanwhile waits for that instead
//! of finding the file locked by its own process.

use crate::error::{Error, ErrorKind, Result};
use crate::hydrate::{Hydrator, Shared};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

struct Entry {
    handle: Weak<Hydrator>,
    task: Weak<Shared>,
}

fn map() -> &'static Mutex<HashMap<String, Entry>> {
    static MAP: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// How long an open waits for the stopping task of a closed hydrator of the same key.
const STOPPING_WAIT: Duration = Duration::from_secs(10);

/// The live hydrator for `key`, or a new one from `start` (under the registry lock, so two
/// opens never start two tasks on one file).
pub fn shared_hydrator(key: &str, start: impl FnOnce() -> Result<Arc<Hydrator>>) -> Result<Arc<Hydrator>> {
    let deadline = Instant::now() + STOPPING_WAIT;
    loop {
        let mut m = map().lock();
        if let Some(e) = m.get(key) {
            if let Some(h) = e.handle.upgrade() {
                return Ok(h);
            }
            if e.task.strong_count() > 0 {
                drop(m);
                if Instant::now() > deadline {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        "the previous hydration task of this replica did not stop in time",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        let fresh = start()?;
        m.retain(|_, e| e.handle.strong_count() > 0 || e.task.strong_count() > 0);
        m.insert(key.to_string(), Entry { handle: Arc::downgrade(&fresh), task: Arc::downgrade(&fresh.shared) });
        return Ok(fresh);
    }
}
