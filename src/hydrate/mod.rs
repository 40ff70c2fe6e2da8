//! Hydration (VFS.md §11): a background task per replica copies the whole database into a
//! local file, keeps it at the replica's latest TXID, and serves reads of views at that TXID
//! from local disk.
//!
//! Isolation (Go defect 7): the file only serves a view whose TXID and size are the file's.
//! A read transaction pinned at N while the file moves to N+1 reads the replica path, which
//! still gives N; nothing is ever read from a file being updated (updates take the `served`
//! lock for writing and clear it first). Time travel views never match; `LATEST` does again.
//!
//! Crash safety: `.meta` is marked dirty before the first byte of an update and rewritten clean
//! (TXID, size, checksum) once the file is synced. A restart trusts the file only with a clean
//! `.meta` whose size and checksum match the file; otherwise it restores from scratch.
//!
//! Shape: [`Hydrator`] is the handle connections hold (one per replica and path, shared through
//! [`registry`]); [`task`] is the loop; [`apply`] writes pages; [`file::HydrationFile`] is the
//! disk seam the native shell implements. The WebAssembly component does not hydrate.

pub mod apply;
pub mod file;
pub mod progress;
pub mod ranges;
pub mod registry;
mod task;

use crate::page_index::PageIndex;
use crate::replica::{Replica, View};
use file::HydrationFile;
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

pub use task::Known;

/// Hydration settings of one open (environment, then URI).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HydrationConfig {
    pub enabled: bool,
    /// Persistent path; `None` = a temporary file deleted when the last connection closes.
    pub path: Option<String>,
}

/// Where the task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Writing a complete image from scratch.
    Restoring,
    /// Bringing a file kept from an earlier run up to the replica's TXID.
    CatchingUp,
    /// The file holds the latest TXID (or is applying the next poll).
    Complete,
    /// The last attempt failed; the task retries, reads use the replica.
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Restoring => "restoring",
            State::CatchingUp => "catching up",
            State::Complete => "complete",
            State::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
struct Status {
    state: State,
    last_error: Option<String>,
}

/// The state the file holds while it may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Served {
    txid: u64,
    commit: u32,
    page_size: u32,
}

/// What the task and the connections share.
struct Shared {
    file: Arc<dyn HydrationFile>,
    replica: Weak<Replica>,
    served: RwLock<Option<Served>>,
    status: Mutex<Status>,
    /// Progress of the initial restore, in tenths of a percent.
    permille: AtomicU32,
    stop: AtomicBool,
}

/// The handle connections hold. Dropping the last one stops the task.
pub struct Hydrator {
    shared: Arc<Shared>,
}

impl Drop for Hydrator {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl Hydrator {
    fn new(replica: &Arc<Replica>, file: Arc<dyn HydrationFile>) -> Self {
        Self {
            shared: Arc::new(Shared {
                file,
                replica: Arc::downgrade(replica),
                served: RwLock::new(None),
                status: Mutex::new(Status { state: State::Restoring, last_error: None }),
                permille: AtomicU32::new(0),
                stop: AtomicBool::new(false),
            }),
        }
    }

    /// Start hydrating `replica` into `file` on a background thread.
    pub fn start(replica: &Arc<Replica>, file: Arc<dyn HydrationFile>) -> Arc<Self> {
        let this = Arc::new(Self::new(replica, file));
        task::spawn(this.shared.clone(), replica.options().poll_interval);
        this
    }

    /// A hydrator whose steps the caller drives ([`Hydrator::step`]), for tests.
    pub fn manual(replica: &Arc<Replica>, file: Arc<dyn HydrationFile>) -> (Self, Option<Known>) {
        let this = Self::new(replica, file);
        let known = task::load_existing(&*this.shared.file);
        (this, known)
    }

    /// One step of the task: bring the file to the replica's latest view.
    pub fn step(&self, known: &mut Option<Known>) -> crate::Result<()> {
        let replica = self.shared.replica.upgrade().ok_or_else(|| crate::Error::internal("replica closed"))?;
        task::step(&self.shared, &replica, known)
    }

    /// Serve a read of `view` from the file if it holds exactly that state. `false` = use the
    /// replica path (a failed local read is logged and falls back too).
    pub fn read(&self, view: &View, offset: u64, buf: &mut [u8]) -> bool {
        if view.target.is_some() {
            return false;
        }
        let served = self.shared.served.read();
        match *served {
            Some(s) if s.txid == view.txid && s.commit == view.commit && s.page_size == view.page_size => {}
            _ => return false,
        }
        match self.shared.file.read_at(offset, buf) {
            Ok(n) if n == buf.len() => true,
            Ok(n) => {
                tracing::warn!(
                    offset,
                    want = buf.len(),
                    got = n,
                    "short read from the hydration file; using the replica"
                );
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the hydration file; using the replica");
                false
            }
        }
    }

    /// `PRAGMA litestream_hydration_progress`: percent of the initial restore, one decimal.
    pub fn progress_text(&self) -> String {
        format!("{:.1}", self.shared.permille.load(Ordering::Relaxed) as f64 / 10.0)
    }

    pub fn path(&self) -> String {
        self.shared.file.path()
    }

    pub fn state(&self) -> State {
        self.shared.status.lock().state
    }

    pub fn last_error(&self) -> Option<String> {
        self.shared.status.lock().last_error.clone()
    }

    /// `PRAGMA litestream_hydration_state`: `complete`, `restoring`, `catching up`,
    /// `failed: <error>`; a retry after a failure adds `(last error: …)`.
    pub fn state_text(&self) -> String {
        let s = self.shared.status.lock().clone();
        match (s.state, s.last_error) {
            (State::Failed, Some(e)) => format!("failed: {e}"),
            (State::Complete, _) | (_, None) => s.state.as_str().to_string(),
            (st, Some(e)) => format!("{} (last error: {e})", st.as_str()),
        }
    }

    /// The TXID the file serves, if any.
    pub fn served_txid(&self) -> Option<u64> {
        self.shared.served.read().map(|s| s.txid)
    }
}

/// Pages `view` reads that may differ from a file at `old_txid`: those read from a file that
/// reaches past `old_txid` (every later change is in such a file), and, when the index the
/// file was built from is known, only those whose location changed too (so a compaction that
/// re-points pages to an L1 file costs nothing).
pub fn changed_pages<'a>(
    view: &'a View,
    old_index: Option<&'a PageIndex>,
    old_txid: u64,
    file_max_txid: impl Fn(crate::file_table::FileId) -> u64 + 'a,
) -> impl Iterator<Item = (u32, crate::page_index::PageLoc)> + 'a {
    view.index.iter_from(1).filter(move |(pgno, loc)| {
        old_index.is_none_or(|old| old.get(*pgno) != Some(*loc)) && file_max_txid(loc.file) > old_txid
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_index::PageLoc;

    fn view(entries: &[(u32, u32, u64)], txid: u64) -> View {
        let mut index = PageIndex::new();
        for &(pgno, file, offset) in entries {
            index.insert(pgno, PageLoc { file, size: 10, offset });
        }
        View { index, page_size: 512, commit: 4, txid, created_at: 0, max_l1: 0, target: None }
    }

    #[test]
    fn changed_pages_by_location_or_by_file_txid() {
        let old = view(&[(1, 0, 100), (2, 0, 200), (3, 0, 300)], 5);
        let new = view(&[(1, 0, 100), (2, 1, 100), (3, 0, 300), (4, 1, 200)], 6);
        let by_loc: Vec<u32> = changed_pages(&new, Some(&old.index), 5, |_| 6).map(|(p, _)| p).collect();
        assert_eq!(by_loc, [2, 4]);
        // Re-pointed to a file that ends at or before the file's TXID (a compaction): unchanged.
        let repointed: Vec<u32> = changed_pages(&new, Some(&old.index), 5, |_| 5).map(|(p, _)| p).collect();
        assert!(repointed.is_empty());
        // File 0 ends at TXID 5, file 1 at 6.
        let by_txid: Vec<u32> = changed_pages(&new, None, 5, |f| if f == 0 { 5 } else { 6 }).map(|(p, _)| p).collect();
        assert_eq!(by_txid, [2, 4]);
    }
}
