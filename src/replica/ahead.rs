//! The background half of pipelined read-ahead ([`crate::read_ahead`]): a scan's chunks are
//! fetched on their own threads while SQLite reads what is cached, and a miss on a frame that
//! is in flight waits for it instead of requesting it again.
//!
//! Each chunk is registered (file and byte ranges) before its thread starts and leaves the
//! registry once its frames are decoded into the cache, so the planners skip what is in
//! flight. Failures are only logged: a later miss fetches the page in the foreground.
//! Each chunk is one thread that makes one batch of requests (bounded by the retry schedule)
//! and exits; a connection's close joins the chunks then in flight ([`Replica::join_read_ahead`]),
//! so no read-ahead thread outlives the connections of its replica.
//! Native only; the component has no threads and reads windows in the foreground.

use crate::file_table::FileId;
use crate::page_index::PageLoc;
use crate::read_ahead::plan_ahead;
use crate::read_planner::{AccessHistory, Extent};
use bytes::Bytes;
use parking_lot::Mutex;
use std::ops::Range;
use std::sync::Arc;

use super::{Inflight, Replica, View};

/// Background chunks in flight at once, per replica (a bound on threads and connections; the
/// bytes are bounded by the stream's distance, a quarter of the cache).
const MAX_CHUNKS_IN_FLIGHT: usize = 8;

/// One background chunk's ranges, while in flight.
struct Flight {
    ranges: Vec<(FileId, Range<u64>)>,
    done: Arc<Inflight>,
}

/// The chunks in flight for one replica (a handful at a time: at most a quarter of the cache),
/// and the threads fetching them, until they are joined.
#[derive(Default)]
pub(super) struct AheadFlights {
    flights: Mutex<Vec<Flight>>,
    #[cfg(not(target_family = "wasm"))]
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl AheadFlights {
    /// Whether the frame at `offset` of `file` is being fetched in the background.
    pub(super) fn contains(&self, file: FileId, offset: u64) -> bool {
        self.find(file, offset).is_some()
    }

    fn len(&self) -> usize {
        self.flights.lock().len()
    }

    fn find(&self, file: FileId, offset: u64) -> Option<Arc<Inflight>> {
        self.flights
            .lock()
            .iter()
            .find(|f| f.ranges.iter().any(|(id, r)| *id == file && r.contains(&offset)))
            .map(|f| f.done.clone())
    }

    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    fn register(&self, extents: &[Extent]) -> Arc<Inflight> {
        let done = Arc::new(Inflight::default());
        let ranges = extents.iter().map(|e| (e.file, e.range.clone())).collect();
        self.flights.lock().push(Flight { ranges, done: done.clone() });
        done
    }

    /// Publish the end of a chunk: drop it from the registry and wake whoever waits on it.
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    fn finish(&self, done: &Arc<Inflight>) {
        self.flights.lock().retain(|f| !Arc::ptr_eq(&f.done, done));
        *done.done.lock() = Some(Ok(()));
        done.cv.notify_all();
    }

    /// Keep a chunk's thread until it is joined (threads already finished are joined now).
    #[cfg(not(target_family = "wasm"))]
    fn keep(&self, thread: std::thread::JoinHandle<()>) {
        let finished = {
            let mut threads = self.threads.lock();
            let (finished, running): (Vec<_>, Vec<_>) =
                std::mem::take(&mut *threads).into_iter().partition(|t| t.is_finished());
            *threads = running;
            threads.push(thread);
            finished
        };
        join_all(finished);
    }

    /// Wait for the threads started so far (each makes one bounded batch of requests).
    fn join(&self) {
        #[cfg(not(target_family = "wasm"))]
        {
            let threads = std::mem::take(&mut *self.threads.lock());
            join_all(threads);
        }
    }
}

#[cfg(not(target_family = "wasm"))]
fn join_all(threads: Vec<std::thread::JoinHandle<()>>) {
    for thread in threads {
        if thread.join().is_err() {
            tracing::debug!("a read-ahead thread panicked");
        }
    }
}

/// Finishes a chunk even if its fetch panics, so that no reader waits forever.
#[cfg_attr(target_family = "wasm", allow(dead_code))]
struct FinishGuard {
    replica: Arc<Replica>,
    done: Arc<Inflight>,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.replica.ahead.finish(&self.done);
    }
}

impl Replica {
    /// Whether a frame is cached or being fetched ahead.
    pub(super) fn is_busy(&self, file: FileId, offset: u64) -> bool {
        self.cache.contains(file, offset) || self.ahead.contains(file, offset)
    }

    /// A miss on a frame that a background chunk is fetching: wait for the chunk and return
    /// the page if it is cached then.
    pub(super) fn wait_ahead(&self, loc: PageLoc) -> Option<Bytes> {
        let flight = self.ahead.find(loc.file, loc.offset)?;
        let mut done = flight.done.lock();
        while done.is_none() {
            flight.cv.wait(&mut done);
        }
        drop(done);
        self.cache.get(loc.file, loc.offset)
    }

    /// Wait for the read-ahead chunks in flight (a connection's close): afterwards no
    /// background thread of this replica runs a fetch that was started before.
    pub fn join_read_ahead(&self) {
        self.ahead.join();
    }

    /// The reader is at `pgno`: top up the scan's stream (if one runs) with background chunks.
    /// The component has no threads: its windows are read in the foreground only.
    pub(super) fn read_ahead(&self, view: &View, pgno: u32, history: &mut AccessHistory) {
        if cfg!(target_family = "wasm") || !history.is_streaming() {
            return;
        }
        let chunks = plan_ahead(
            pgno,
            view.page_size,
            &view.index,
            |f| self.files.get(f).map_or(0, |x| x.info.size),
            |f, o| self.is_busy(f, o),
            &mut history.stream,
            MAX_CHUNKS_IN_FLIGHT.saturating_sub(self.ahead.len()),
            &self.opts.planner,
        );
        history.note_streamed();
        if chunks.is_empty() {
            return;
        }
        cfg_if::cfg_if! {
            if #[cfg(target_family = "wasm")] {
                let _ = (view, chunks);
            } else {
                let Some(me) = self.me.upgrade() else { return };
                let view = Arc::new(view.clone());
                for chunk in chunks {
                    // Created before the spawn: if the thread cannot start, dropping the closure
                    // drops the guard, which unregisters the chunk.
                    let guard = FinishGuard { replica: me.clone(), done: self.ahead.register(&chunk) };
                    let view = view.clone();
                    let spawned = std::thread::Builder::new().name("ltxvfs-ahead".into()).spawn(move || {
                        guard.replica.fetch_ahead(&chunk, &view);
                        drop(guard);
                    });
                    match spawned {
                        Ok(thread) => self.ahead.keep(thread),
                        Err(e) => tracing::debug!(error = %e, "cannot start a read-ahead thread"),
                    }
                }
            }
        }
    }

    /// Fetch one background chunk and decode what it holds into the cache.
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    fn fetch_ahead(&self, extents: &[Extent], view: &View) {
        // No page is wanted: every frame the view reads goes to the cache.
        let none = PageLoc { file: FileId::MAX, size: 0, offset: 0 };
        let mut files = Vec::with_capacity(extents.len());
        for e in extents {
            match self.files.get(e.file) {
                Some(f) => files.push(f),
                None => return,
            }
        }
        let reqs: Vec<_> = extents.iter().zip(&files).map(|(e, f)| Self::request(f, e.range.clone())).collect();
        for ((extent, file), result) in extents.iter().zip(&files).zip(self.get_ranges(&reqs)) {
            let decoded = result.map_err(|e| e.context(&file.info.key)).and_then(|bytes| {
                if extent.whole_file {
                    self.decode_whole(file, &bytes, none, view.page_size)
                } else {
                    self.decode_frames(file, extent.range.start, &bytes, none, view)
                }
            });
            if let Err(e) = decoded {
                tracing::debug!(error = %e, "read-ahead chunk failed");
            }
        }
    }
}
