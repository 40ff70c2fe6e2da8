//! Following the primary: one poll (VFS.md §8 with the §8.3 fixes) and the poller thread.

use crate::error::{Error, Result};
use crate::file_table::LtxFile;
use crate::plan::LtxFileInfo;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Replica;

/// What one poll lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollScope {
    /// L0 and L1 whole (or the lowest polled level): sees compactions, forgets deleted files.
    Whole,
    /// L0 from MinTXID pos + 1 only (after a probe hit): the new files, nothing re-listed.
    L0FromPosition,
}

impl Replica {
    /// Forget L0 and L1 files the poll's listing no longer shows (deleted after compaction), so
    /// that the file table of a long-lived reader stays flat.
    fn forget_polled_levels(&self, l0: &[LtxFileInfo], l1: &[LtxFileInfo]) {
        let live: std::collections::HashSet<&str> = l0.iter().chain(l1).map(|f| f.key.as_str()).collect();
        let upper = self.poll_upper_level();
        self.files.retain(&|f| f.level > upper || live.contains(f.key.as_str()));
    }

    /// Whether a poll is due (used where there is no background thread).
    pub fn poll_due(&self) -> bool {
        let last = self.last_poll_at.load(Ordering::Relaxed);
        last == 0 || self.clock.now() - last >= self.opts.poll_interval.as_nanos() as i64
    }

    /// One poll (VFS.md §8, with the required fixes of §8.3): read L0 and L1, accept files that
    /// overlap what is applied, never let an older file overwrite a newer entry, trim on shrink.
    /// Returns whether a new view was published.
    pub fn poll_once(&self) -> Result<bool> {
        self.poll(PollScope::Whole)
    }

    /// [`Self::poll_once`] over L0 files with MinTXID ≥ pos + 1 only (`Storage::list_after`),
    /// without L1 and without forgetting: what the scheduled poll does when its probe finds the
    /// next L0 file. With `min_level > 0` there is no L0 to follow: a whole poll.
    pub fn poll_from_position(&self) -> Result<bool> {
        if self.opts.min_level > 0 {
            return self.poll(PollScope::Whole);
        }
        self.poll(PollScope::L0FromPosition)
    }

    fn poll(&self, scope: PollScope) -> Result<bool> {
        let _guard = self.poll_lock.lock();
        self.last_poll_at.store(self.clock.now(), Ordering::Relaxed);
        let cur = self.current();
        let (l0, l1) = match (scope, cur.txid.checked_add(1)) {
            (PollScope::L0FromPosition, Some(seek)) => (self.list_l0_from(seek)?, Vec::new()),
            _ => {
                let (l0, l1) = self.list_poll_levels()?;
                self.forget_polled_levels(&l0, &l1);
                (l0, l1)
            }
        };
        let mut candidates: Vec<LtxFileInfo> = l0
            .into_iter()
            .filter(|f| f.max_txid > cur.txid)
            .chain(l1.into_iter().filter(|f| f.max_txid > cur.max_l1))
            .collect();
        // By start, then the file reaching furthest, then the higher level.
        candidates.sort_by(|a, b| {
            (a.min_txid, std::cmp::Reverse(a.max_txid), std::cmp::Reverse(a.level)).cmp(&(
                b.min_txid,
                std::cmp::Reverse(b.max_txid),
                std::cmp::Reverse(b.level),
            ))
        });
        let mut pos = cur.txid;
        let mut max_l1 = cur.max_l1;
        let mut apply: Vec<(LtxFileInfo, bool)> = Vec::new();
        for f in candidates {
            if f.max_txid <= pos {
                if f.level >= 1 {
                    // Re-point entries from L0 to the compaction that covers them.
                    max_l1 = max_l1.max(f.max_txid);
                    apply.push((f, false));
                }
                continue;
            }
            if f.min_txid > pos + 1 {
                if f.level == 0 {
                    tracing::debug!(next = f.min_txid, pos, "ltx gap detected at L0, deferring to higher levels");
                }
                continue;
            }
            pos = f.max_txid;
            if f.level >= 1 {
                max_l1 = max_l1.max(f.max_txid);
            }
            apply.push((f, true));
        }
        if apply.is_empty() {
            self.last_poll_ok.store(self.clock.now(), Ordering::Relaxed);
            return Ok(false);
        }
        let files: Vec<(Arc<LtxFile>, bool)> = apply.iter().map(|(f, adv)| (self.files.intern(f), *adv)).collect();
        let metas = self.fetch_metas(&files)?;
        let mut next = (*cur).clone();
        let mut commit = cur.commit;
        let mut created_at = cur.created_at;
        for ((file, advances), meta) in files.iter().zip(&metas) {
            let incoming_max = file.info.max_txid;
            for e in &meta.index {
                let loc = Self::loc(file.id, e).ok_or_else(|| Error::corrupt("page frame too large"))?;
                next.index.insert_if(e.pgno, loc, |old| self.files.max_txid(old.file) <= incoming_max);
            }
            if *advances {
                if let Some(h) = &meta.header {
                    // An empty view (a new database in write mode) takes the first file's size.
                    if cur.txid == 0 && cur.commit == 0 {
                        next.page_size = h.page_size;
                    }
                    if h.page_size != next.page_size {
                        return Err(Error::corrupt("page size changed").context(&file.info.key));
                    }
                    commit = h.commit;
                }
                created_at = file.info.created_at;
            }
        }
        next.index.truncate(commit);
        next.commit = commit;
        next.created_at = created_at;
        next.txid = pos;
        next.max_l1 = max_l1;
        self.cache_heads(&files, &metas, &next);
        let changed = next.txid != cur.txid || next.commit != cur.commit;
        *self.current.write() = Arc::new(next);
        self.last_poll_ok.store(self.clock.now(), Ordering::Relaxed);
        if changed {
            tracing::debug!(txid = pos, commit, "replica advanced");
        }
        Ok(changed)
    }

    /// Start the background poller (native); it stops when the last `Arc` is dropped.
    pub fn start_poller(self: &Arc<Self>) {
        cfg_if::cfg_if! {
            if #[cfg(target_family = "wasm")] {
                // Single-threaded: connections poll at the transaction boundary (poll_due).
            } else {
                let weak = Arc::downgrade(self);
                let interval = self.opts.poll_interval;
                let clock = self.clock.clone();
                let spawned = std::thread::Builder::new().name("ltxvfs-poller".into()).spawn(move || loop {
                    clock.sleep(interval);
                    let Some(replica) = weak.upgrade() else { break };
                    if let Err(e) = replica.poll_tick() {
                        tracing::warn!(replica = %replica.describe(), error = %e, "cannot fetch new ltx files");
                    }
                });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the poller thread");
                }
            }
        }
    }
}
