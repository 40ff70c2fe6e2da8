//! The writer of each replica in this process: connections to one replica share it (and its
//! slot, buffer, TXIDs and ticker); two replicas never share anything.

use super::Writer;
use crate::replica::Replica;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

fn map() -> &'static Mutex<HashMap<String, Weak<Writer>>> {
    static MAP: OnceLock<Mutex<HashMap<String, Weak<Writer>>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// The writer of the replica with registry key `key` (made on first use, writes off);
/// `identity` (the replica URL) is what a buffer file is matched against.
pub fn writer_for(key: &str, identity: &str, replica: &Arc<Replica>) -> Arc<Writer> {
    let mut m = map().lock();
    if let Some(w) = m.get(key).and_then(Weak::upgrade) {
        if Arc::ptr_eq(w.replica(), replica) {
            return w;
        }
    }
    m.retain(|_, w| w.strong_count() > 0);
    let w = Writer::new(replica.clone(), identity);
    m.insert(key.to_string(), Arc::downgrade(&w));
    w
}

static BUFFERS: AtomicUsize = AtomicUsize::new(0);

/// 1, 2, 3… for the write buffers opened by this process.
pub fn next_buffer_number() -> usize {
    BUFFERS.fetch_add(1, Ordering::Relaxed) + 1
}

/// The process-wide buffer path (environment) for the next writer: the path itself first,
/// then `<path>.2`, `<path>.3`… (VFS.md §9.2).
pub fn numbered_path(path: &str) -> String {
    match next_buffer_number() {
        1 => path.to_string(),
        n => format!("{path}.{n}"),
    }
}
