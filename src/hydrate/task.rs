//! The hydration loop: restore or catch up to the replica's latest view, then follow it, one
//! [`step`] at a time; failures are recorded and retried with a growing pause.

use crate::error::{Error, Result};
use crate::hydrate::apply::{Budget, PageWriter, local_checksum, remove_tail};
use crate::hydrate::file::{HydrationFile, Meta};
use crate::hydrate::progress::Progress;
use crate::hydrate::{Served, Shared, State, changed_pages};
use crate::ltx::RollingChecksum;
use crate::page_index::PageIndex;
use crate::replica::{Replica, View};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What the file is known to hold.
#[derive(Clone)]
pub struct Known {
    pub txid: u64,
    pub commit: u32,
    pub page_size: u32,
    checksum: RollingChecksum,
    /// The index of the view the file was built from (not after a restart).
    index: Option<PageIndex>,
}

impl Known {
    fn meta(&self, dirty: bool) -> Meta {
        Meta { txid: self.txid, page_size: self.page_size, commit: self.commit, checksum: self.checksum.value(), dirty }
    }
}

/// A file kept from an earlier run, if its `.meta` is clean and the file matches it.
pub fn load_existing(file: &dyn HydrationFile) -> Option<Known> {
    let text = match file.read_meta() {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the hydration meta; restoring");
            return None;
        }
    };
    let why = match Meta::decode(&text) {
        Err(e) => e.message,
        Ok(m) if m.dirty => "an update was interrupted (meta is dirty)".into(),
        Ok(m) => match file.size() {
            Ok(len) if len != m.file_size() => format!("file is {len} bytes, meta says {}", m.file_size()),
            Err(e) => e.message,
            Ok(_) => match local_checksum(file, m.page_size, m.commit) {
                Ok(Some(sum)) if sum.value() == m.checksum => {
                    tracing::info!(path = %file.path(), txid = m.txid, "reusing the hydration file");
                    return Some(Known {
                        txid: m.txid,
                        commit: m.commit,
                        page_size: m.page_size,
                        checksum: sum,
                        index: None,
                    });
                }
                Ok(_) => "file does not match the checksum in its meta".into(),
                Err(e) => e.message,
            },
        },
    };
    tracing::info!(path = %file.path(), reason = %why, "hydration file not reusable; restoring");
    None
}

fn set_state(shared: &Shared, state: State) {
    shared.status.lock().state = state;
}

/// Bring the file to the replica's latest view.
pub fn step(shared: &Shared, replica: &Replica, known: &mut Option<Known>) -> Result<()> {
    let view = replica.current();
    if let Some(k) = known.as_ref() {
        if k.txid == view.txid && k.commit == view.commit && k.page_size == view.page_size {
            publish(shared, k);
            return Ok(());
        }
    }
    let next = match known.take() {
        Some(k) if k.txid <= view.txid && k.page_size == view.page_size => {
            if shared.status.lock().state != State::Complete {
                set_state(shared, State::CatchingUp);
            }
            match catch_up(shared, replica, k, &view) {
                Ok(k) => k,
                Err((e, kept)) => {
                    *known = kept;
                    return Err(e);
                }
            }
        }
        Some(k) => {
            if k.txid > view.txid {
                tracing::warn!(file_txid = k.txid, remote_txid = view.txid, "remote TXID regressed; restoring");
            }
            restore(shared, replica, &view)?
        }
        None => restore(shared, replica, &view)?,
    };
    publish(shared, &next);
    *known = Some(next);
    Ok(())
}

fn publish(shared: &Shared, k: &Known) {
    *shared.served.write() = Some(Served { txid: k.txid, commit: k.commit, page_size: k.page_size });
    let mut st = shared.status.lock();
    if st.state != State::Complete {
        tracing::info!(txid = k.txid, pages = k.commit, "hydration complete");
    }
    st.state = State::Complete;
}

fn stop_serving(shared: &Shared) {
    *shared.served.write() = None;
}

fn verify(replica: &Replica, view: &View, local: RollingChecksum) -> Result<()> {
    compare(replica.post_apply_checksum(view)?, view, local)
}

fn compare(remote: Option<u64>, view: &View, local: RollingChecksum) -> Result<()> {
    match remote {
        Some(remote) if remote != local.value() => Err(Error::corrupt(format!(
            "hydrated file checksum {:016x} differs from the replica's {remote:016x} at TXID {:016x}",
            local.value(),
            view.txid
        ))),
        Some(_) => {
            tracing::debug!(txid = view.txid, "hydrated file checksum matches the replica's");
            Ok(())
        }
        None => Ok(()),
    }
}

/// A complete image of `view`, written from scratch.
fn restore(shared: &Shared, replica: &Replica, view: &View) -> Result<Known> {
    stop_serving(shared);
    set_state(shared, State::Restoring);
    shared.permille.store(0, Ordering::Relaxed);
    let file = &*shared.file;
    let started = replica.now();
    tracing::info!(path = %file.path(), txid = view.txid, pages = view.commit, "hydration: restoring");
    // A dirty meta first: a crash from here on leaves a file that is never trusted.
    file.write_meta(
        &Meta { txid: view.txid, page_size: view.page_size, commit: view.commit, checksum: 0, dirty: true }.encode(),
    )?;
    file.set_len(0)?;
    file.set_len(view.file_size())?;
    let mut progress = Progress::new(view.index.len() as u64, started);
    let mut writer = PageWriter {
        replica,
        file,
        page_size: view.page_size,
        old_commit: 0,
        checksum: RollingChecksum::new(),
        stop: &shared.stop,
    };
    // The replica's checksum for this TXID is fetched while the pages are.
    let (written, remote) = std::thread::scope(|scope| {
        let remote = scope.spawn(|| replica.post_apply_checksum(view));
        let written = writer.write(
            view.index.iter_from(1),
            Budget::for_cache(replica.options().cache_size),
            &mut || Ok(()),
            &mut |pages, bytes| {
                if let Some(r) = progress.record(pages, bytes, replica.now()) {
                    tracing::info!(
                        percent = r.percent,
                        rate = format!("{:.1} MiB/s", r.mib_per_s),
                        eta = format!("{:.1}s", r.eta_s),
                        "hydration progress"
                    );
                }
                shared.permille.store(progress.permille(), Ordering::Relaxed);
            },
        );
        (written, remote.join().map_err(|_| Error::internal("checksum fetch panicked")))
    });
    written?;
    compare(remote??, view, writer.checksum)?;
    let known = Known {
        txid: view.txid,
        commit: view.commit,
        page_size: view.page_size,
        checksum: writer.checksum,
        index: Some(view.index.clone()),
    };
    // Whole and verified: serve it now; the clean .meta follows once it is durable (a crash in
    // between leaves the dirty .meta, so the next run restores).
    shared.permille.store(1000, Ordering::Relaxed);
    publish(shared, &known);
    let durable = file.sync().and_then(|_| file.write_meta(&known.meta(false).encode()));
    if let Err(e) = durable {
        stop_serving(shared);
        return Err(e);
    }
    Ok(known)
}

/// Apply what changed between `k` and `view` in place. On failure, returns what the file still
/// is: `k` when nothing was written yet, `None` (restore) otherwise.
fn catch_up(
    shared: &Shared,
    replica: &Replica,
    k: Known,
    view: &View,
) -> std::result::Result<Known, (Error, Option<Known>)> {
    let file = &*shared.file;
    let touched = std::cell::Cell::new(false);
    let result = (|| -> Result<Known> {
        let mut sum = k.checksum;
        let pages = changed_pages(view, k.index.as_ref(), k.txid, |f| replica.file_max_txid(f));
        let mut writer = PageWriter {
            replica,
            file,
            page_size: view.page_size,
            old_commit: k.commit,
            checksum: sum,
            stop: &shared.stop,
        };
        let mut mark_dirty = || -> Result<()> {
            // Readers at the old TXID move to the replica path before the first byte changes.
            stop_serving(shared);
            touched.set(true);
            file.write_meta(&k.meta(true).encode())
        };
        let mut wrote = 0u64;
        writer
            .write(pages, Budget::for_cache(replica.options().cache_size), &mut mark_dirty, &mut |n, _| wrote += n)?;
        sum = writer.checksum;
        if view.commit != k.commit {
            if !touched.get() {
                mark_dirty()?;
            }
            if view.commit < k.commit {
                remove_tail(file, view.page_size, view.commit + 1, k.commit, &mut sum)?;
            }
            file.set_len(view.file_size())?;
        }
        if touched.get() {
            file.sync()?;
        }
        verify(replica, view, sum)?;
        let next = Known {
            txid: view.txid,
            commit: view.commit,
            page_size: view.page_size,
            checksum: sum,
            index: Some(view.index.clone()),
        };
        file.write_meta(&next.meta(false).encode())?;
        tracing::debug!(from = k.txid, to = view.txid, pages = wrote, "hydration file updated");
        Ok(next)
    })();
    result.map_err(|e| (e, if touched.get() { None } else { Some(k.clone()) }))
}

/// Run the task on a thread until the last [`super::Hydrator`] is dropped or the replica closes.
pub(super) fn spawn(shared: Arc<Shared>, poll_interval: Duration) {
    cfg_if::cfg_if! {
        if #[cfg(target_family = "wasm")] {
            let _ = (shared, poll_interval);
        } else {
            let spawned = std::thread::Builder::new().name("ltxvfs-hydrate".into()).spawn(move || run(&shared, poll_interval));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the hydration thread");
            }
        }
    }
}

#[cfg(not(target_family = "wasm"))]
fn run(shared: &Shared, poll_interval: Duration) {
    let mut known = load_existing(&*shared.file);
    if known.is_some() {
        set_state(shared, State::CatchingUp);
    }
    // Following the replica costs one pointer read per tick: keep the window in which a new
    // transaction reads the replica path instead of the file short.
    let tick = (poll_interval / 10).clamp(Duration::from_millis(10), Duration::from_millis(100));
    let mut pause = Duration::ZERO;
    let mut first = true;
    loop {
        let mut waited = Duration::ZERO;
        while !first && waited < pause.max(tick) {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(tick);
            waited += tick;
        }
        first = false;
        let Some(replica) = shared.replica.upgrade() else { return };
        match step(shared, &replica, &mut known) {
            Ok(()) => {
                pause = Duration::ZERO;
                shared.status.lock().last_error = None;
            }
            Err(_) if shared.stop.load(Ordering::Relaxed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "hydration failed; reads use the replica, retrying");
                {
                    let mut st = shared.status.lock();
                    st.state = State::Failed;
                    st.last_error = Some(e.message.clone());
                }
                if e.kind == crate::error::ErrorKind::NotFound {
                    // A file the view reads has gone (compaction, retention): re-plan it.
                    if let Err(re) = replica.replan(&replica.current()) {
                        tracing::debug!(error = %re, "re-plan after a vanished file failed");
                    }
                }
                pause = (pause * 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
            }
        }
    }
}
