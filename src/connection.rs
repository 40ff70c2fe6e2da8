//! One SQLite connection's main database file: its lock state, the view it reads, time
//! travel, the page-1 presentation and the PRAGMAs. Free of SQLite types so it is tested
//! directly.

use crate::error::{Error, ErrorKind, Result};
use crate::hydrate::Hydrator;
use crate::layout::format_txid;
use crate::read_planner::AccessHistory;
use crate::replica::{Replica, View};
use crate::time::{format_rfc3339_nano_utc, is_latest, parse_time};
use std::sync::Arc;

/// SQLite's lock levels, as this VFS tracks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lock {
    None,
    Shared,
    Reserved,
    Pending,
    Exclusive,
}

pub struct Connection {
    replica: Arc<Replica>,
    name: String,
    lock: Lock,
    /// What reads see now; pinned at the SHARED lock.
    view: Arc<View>,
    /// A time-travel view, when set: pinned instead of the latest.
    travel: Option<Arc<View>>,
    history: AccessHistory,
    /// The replica's hydrated local copy, when hydration is on.
    hydrator: Option<Arc<Hydrator>>,
}

/// Bytes of page 1 that the VFS presents differently from the file (VFS.md §7).
fn page1_patch(view: &View) -> [(usize, u8); 14] {
    // The change counter derives from the TXID: stable while the TXID is, so SQLite keeps its
    // page cache; different when it moves, so SQLite drops it. Version-valid-for carries the
    // same value, so SQLite trusts the in-header size, which is `commit`.
    let counter = (view.txid as u32).to_be_bytes();
    let size = view.commit.to_be_bytes();
    [
        (18, 1),
        (19, 1),
        (24, counter[0]),
        (25, counter[1]),
        (26, counter[2]),
        (27, counter[3]),
        (28, size[0]),
        (29, size[1]),
        (30, size[2]),
        (31, size[3]),
        (92, counter[0]),
        (93, counter[1]),
        (94, counter[2]),
        (95, counter[3]),
    ]
}

/// Apply the page-1 presentation to `buf`, read at `offset`.
fn patch_page1(view: &View, offset: u64, buf: &mut [u8]) {
    for (pos, byte) in page1_patch(view) {
        if let Some(i) = (pos as u64).checked_sub(offset) {
            if let Some(b) = buf.get_mut(i as usize) {
                *b = byte;
            }
        }
    }
}

impl Connection {
    pub fn new(replica: Arc<Replica>, name: impl Into<String>) -> Self {
        let view = replica.current();
        Self {
            replica,
            name: name.into(),
            lock: Lock::None,
            view,
            travel: None,
            history: AccessHistory::default(),
            hydrator: None,
        }
    }

    /// Read through `hydrator` whenever its file holds the pinned view's state.
    pub fn with_hydrator(mut self, hydrator: Option<Arc<Hydrator>>) -> Self {
        self.hydrator = hydrator;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    pub fn lock_level(&self) -> Lock {
        self.lock
    }

    /// The view reads use now.
    pub fn view(&self) -> &Arc<View> {
        &self.view
    }

    /// The view a statement outside a transaction reports: the time-travel view, the pinned
    /// one inside a transaction, the latest otherwise.
    fn reporting_view(&self) -> Arc<View> {
        if let Some(t) = &self.travel {
            return t.clone();
        }
        if self.lock >= Lock::Shared { self.view.clone() } else { self.replica.current() }
    }

    pub fn file_size(&self) -> u64 {
        self.view.file_size()
    }

    /// Take a lock. SHARED from NONE pins the view for the whole read transaction. Anything
    /// above SHARED is a write, which this read-only VFS refuses.
    pub fn lock(&mut self, level: Lock) -> Result<()> {
        if level > Lock::Shared {
            return Err(Error::new(ErrorKind::ReadOnly, "attempt to write a readonly database"));
        }
        if self.lock == Lock::None && level == Lock::Shared {
            cfg_if::cfg_if! {
                if #[cfg(target_family = "wasm")] {
                    // No poller thread here: poll on the transaction boundary when due.
                    if self.travel.is_none() && self.replica.poll_due() {
                        if let Err(e) = self.replica.poll_once() {
                            tracing::warn!(error = %e, "cannot fetch new ltx files");
                        }
                    }
                }
            }
            self.view = match &self.travel {
                Some(t) => t.clone(),
                None => self.replica.current(),
            };
        }
        self.lock = self.lock.max(level);
        Ok(())
    }

    pub fn unlock(&mut self, level: Lock) -> Result<()> {
        if level > Lock::Shared {
            return Err(Error::internal(format!("invalid unlock target: {level:?}")));
        }
        self.lock = self.lock.min(level);
        Ok(())
    }

    /// Read `buf.len()` bytes at `offset`. Returns how many bytes exist (short at the end).
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let size = self.view.file_size();
        if offset >= size {
            return Ok(0);
        }
        let page_size = self.view.page_size as u64;
        let want = (buf.len() as u64).min(size - offset) as usize;
        if let Some(h) = &self.hydrator {
            if h.read(&self.view, offset, &mut buf[..want]) {
                patch_page1(&self.view, offset, &mut buf[..want]);
                return Ok(want);
            }
        }
        let mut done = 0usize;
        while done < want {
            let at = offset + done as u64;
            let pgno = u32::try_from(at / page_size + 1).map_err(|_| Error::corrupt("page number overflow"))?;
            let in_page = (at % page_size) as usize;
            let page = self.page(pgno)?;
            let n = (want - done).min(page.len().saturating_sub(in_page));
            if n == 0 {
                return Err(Error::corrupt(format!("page {pgno} is shorter than the page size")));
            }
            buf[done..done + n].copy_from_slice(&page[in_page..in_page + n]);
            if pgno == 1 {
                for (pos, byte) in page1_patch(&self.view) {
                    if pos >= in_page && pos < in_page + n {
                        buf[done + pos - in_page] = byte;
                    }
                }
            }
            done += n;
        }
        Ok(done)
    }

    /// A page as the pinned view sees it; if the file it lives in has vanished, re-plan the
    /// same state from the files that exist now and try once more.
    fn page(&mut self, pgno: u32) -> Result<bytes::Bytes> {
        match self.replica.read_page(&self.view, pgno, &mut self.history) {
            Err(e) if e.kind == ErrorKind::NotFound => {
                tracing::info!(connection = %self.name, error = %e, "file vanished, re-planning");
                let fresh = self.replica.replan(&self.view).map_err(|re| re.context(format!("after {e}")))?;
                if self.travel.is_some() {
                    self.travel = Some(fresh.clone());
                }
                self.view = fresh;
                self.replica.read_page(&self.view, pgno, &mut self.history)
            }
            other => other,
        }
    }

    /// Travel to a time, or back to `latest`. An error leaves the current view untouched.
    pub fn set_time(&mut self, value: &str) -> Result<()> {
        if is_latest(value) {
            self.travel = None;
        } else {
            let target = parse_time(value, self.replica.now())?;
            let view = self.replica.view_at(target).map_err(|e| {
                if e.kind == ErrorKind::NotAvailable { e.context("cannot calc restore plan") } else { e }
            })?;
            self.travel = Some(view);
        }
        if self.lock == Lock::None {
            self.view = self.travel.clone().unwrap_or_else(|| self.replica.current());
        }
        Ok(())
    }

    /// `litestream_time`: the travel target as given, else the creation time of the newest
    /// file applied, else `latest`.
    pub fn time_text(&self) -> String {
        let v = self.reporting_view();
        match &v.target {
            Some(t) => t.display.clone(),
            None if v.created_at == 0 => "latest".to_string(),
            None => format_rfc3339_nano_utc(v.created_at),
        }
    }

    pub fn txid_text(&self) -> String {
        format_txid(self.reporting_view().txid)
    }

    pub fn lag(&self) -> i64 {
        self.replica.lag_seconds()
    }

    /// Answer one of the `litestream_*` PRAGMAs. `Ok(None)` with `handled == false` means the
    /// name is not ours.
    pub fn pragma(&mut self, name: &str, arg: Option<&str>) -> PragmaResult {
        let name = name.to_ascii_lowercase();
        let read_only = |n: &str| Err(Error::config(format!("{n} is read-only")));
        match (name.as_str(), arg) {
            ("litestream_txid", None) => PragmaResult::Value(Ok(Some(self.txid_text()))),
            ("litestream_lag", None) => PragmaResult::Value(Ok(Some(self.lag().to_string()))),
            ("litestream_time", None) => PragmaResult::Value(Ok(Some(self.time_text()))),
            // A set answers with the new value: a PRAGMA that returns no column name makes
            // Python's sqlite3 raise MemoryError.
            ("litestream_time", Some(v)) => PragmaResult::Value(self.set_time(v).map(|_| Some(self.time_text()))),
            ("litestream_write_enabled", None) => PragmaResult::Value(Ok(Some("0".into()))),
            ("litestream_write_enabled", Some(v)) => PragmaResult::Value(match v.to_ascii_lowercase().as_str() {
                "0" | "false" | "off" => Ok(Some("0".into())),
                "1" | "true" | "on" => {
                    Err(Error::new(ErrorKind::ReadOnly, "write mode is not supported by this build of ltxvfs"))
                }
                _ => Err(Error::config(format!("invalid value for litestream_write_enabled: {v} (use 0 or 1)"))),
            }),
            ("litestream_hydration_progress", None) => {
                PragmaResult::Value(Ok(Some(self.hydrator.as_ref().map_or("0".into(), |h| h.progress_text()))))
            }
            ("litestream_hydration_file", None) => {
                PragmaResult::Value(Ok(Some(self.hydrator.as_ref().map_or(String::new(), |h| h.path()))))
            }
            ("litestream_hydration_state", None) => {
                PragmaResult::Value(Ok(Some(self.hydrator.as_ref().map_or("off".into(), |h| h.state_text()))))
            }
            (
                n @ ("litestream_txid"
                | "litestream_lag"
                | "litestream_hydration_progress"
                | "litestream_hydration_file"
                | "litestream_hydration_state"),
                Some(_),
            ) => PragmaResult::Value(read_only(n)),
            _ => PragmaResult::NotOurs,
        }
    }
}

/// Outcome of [`Connection::pragma`].
#[derive(Debug)]
pub enum PragmaResult {
    NotOurs,
    Value(Result<Option<String>>),
}
