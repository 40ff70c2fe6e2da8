//! One SQLite connection's main database file: its lock state, the view it reads, time
//! travel, the page-1 presentation and the PRAGMAs. Free of SQLite types so it is tested
//! directly.

use crate::error::{Error, ErrorKind, Result};
use crate::hydrate::Hydrator;
use crate::layout::format_txid;
use crate::read_planner::AccessHistory;
use crate::replica::{Replica, View};
use crate::time::{format_rfc3339_nano_utc, is_latest, parse_time};
use crate::write::buffer::BufferStore;
use crate::write::transaction::{Snapshot, Transaction};
use crate::write::{WriteOptions, Writer};
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

/// What the connection's main file is doing (in the way Graft's `VolFileState` names it).
enum FileState {
    /// No lock: reads see the latest state.
    Idle,
    /// SHARED: a read transaction pinned this snapshot.
    Reading(Snapshot),
    /// RESERVED or above: this connection holds the writer slot.
    Writing(Snapshot, Transaction),
}

/// How a connection may turn writes on (`PRAGMA litestream_write_enabled=1`).
#[derive(Clone)]
pub struct WriteAccess {
    pub buffers: Arc<dyn BufferStore>,
    pub options: WriteOptions,
}

pub struct Connection {
    replica: Arc<Replica>,
    writer: Arc<Writer>,
    id: u64,
    name: String,
    lock: Lock,
    state: FileState,
    /// A time-travel view, when set: pinned instead of the latest.
    travel: Option<Arc<View>>,
    history: AccessHistory,
    write_enabled: bool,
    /// Where writes can come from; `None` on a `mode=ro` open or a read-only build.
    write_access: Option<WriteAccess>,
    /// Why writes cannot be enabled when `write_access` is `None`.
    no_write_reason: &'static str,
    /// The replica's hydrated local copy, when hydration is on.
    hydrator: Option<Arc<Hydrator>>,
}

/// Bytes of page 1 that the VFS presents differently from the file (VFS.md §7).
fn page1_patch(counter: u32, commit: u32) -> [(usize, u8); 14] {
    // The change counter derives from the TXID and the local commits: stable while they are,
    // so SQLite keeps its page cache; different when either moves, so SQLite drops it.
    // Version-valid-for carries the same value, so SQLite trusts the in-header size, which is
    // `commit`.
    let counter = counter.to_be_bytes();
    let size = commit.to_be_bytes();
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
fn patch_page1(counter: u32, commit: u32, offset: u64, buf: &mut [u8]) {
    for (pos, byte) in page1_patch(counter, commit) {
        if let Some(i) = (pos as u64).checked_sub(offset) {
            if let Some(b) = buf.get_mut(i as usize) {
                *b = byte;
            }
        }
    }
}

fn read_only(why: &str) -> Error {
    Error::new(ErrorKind::ReadOnly, format!("attempt to write a readonly database: {why}"))
}

impl Connection {
    /// A read-only connection with a writer of its own (tests, tools).
    pub fn new(replica: Arc<Replica>, name: impl Into<String>) -> Self {
        let writer = Writer::new(replica.clone(), "");
        Self::with_writer(replica, writer, name, None, "write mode is not configured")
    }

    /// A connection sharing `writer` with the other connections of its replica. With
    /// `write_access` writes may be enabled; [`Connection::enable_writes`] turns them on.
    pub fn with_writer(
        replica: Arc<Replica>,
        writer: Arc<Writer>,
        name: impl Into<String>,
        write_access: Option<WriteAccess>,
        no_write_reason: &'static str,
    ) -> Self {
        let id = writer.connection_id();
        Self {
            replica,
            writer,
            id,
            name: name.into(),
            lock: Lock::None,
            state: FileState::Idle,
            travel: None,
            history: AccessHistory::default(),
            write_enabled: false,
            write_access,
            no_write_reason,
            hydrator: None,
        }
    }

    /// Read through `hydrator` whenever its file holds the pinned view's state.
    pub fn with_hydrator(mut self, hydrator: Option<Arc<Hydrator>>) -> Self {
        self.hydrator = hydrator;
        self
    }

    /// Turn writes on for this connection (opens and recovers the replica's buffer first).
    pub fn enable_writes(&mut self) -> Result<()> {
        if self.write_enabled {
            return Ok(());
        }
        let access = self.write_access.clone().ok_or_else(|| read_only(self.no_write_reason))?;
        self.writer.enable(access.buffers.as_ref(), &access.options)?;
        self.write_enabled = true;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    pub fn writer(&self) -> &Arc<Writer> {
        &self.writer
    }

    pub fn lock_level(&self) -> Lock {
        self.lock
    }

    /// Whether writes could be enabled on this connection (not `mode=ro`, not read-only build).
    pub fn can_write(&self) -> bool {
        self.write_access.is_some()
    }

    pub fn writes_enabled(&self) -> bool {
        self.write_enabled
    }

    /// The latest state for a new read transaction: the time-travel view, or the writer's.
    fn fresh_snapshot(&self) -> Snapshot {
        match &self.travel {
            Some(t) => Snapshot::of_view(t.clone()),
            None => self.writer.snapshot(),
        }
    }

    /// What reads see now.
    fn snapshot(&self) -> Snapshot {
        match &self.state {
            FileState::Idle => self.fresh_snapshot(),
            FileState::Reading(s) | FileState::Writing(s, _) => s.clone(),
        }
    }

    /// The view a statement reports: the pinned one inside a transaction, the latest otherwise.
    fn reporting_view(&self) -> Arc<View> {
        self.snapshot().view
    }

    pub fn file_size(&self) -> u64 {
        match &self.state {
            FileState::Writing(_, t) => t.commit as u64 * t.page_size as u64,
            _ => self.snapshot().file_size(),
        }
    }

    /// Take a lock. SHARED from NONE pins the snapshot for the whole read transaction;
    /// RESERVED takes the replica's writer slot (VFS.md §6, §9.1).
    pub fn lock(&mut self, level: Lock) -> Result<()> {
        if level < self.lock {
            return Err(Error::internal(format!("invalid lock downgrade: current={:?} target={level:?}", self.lock)));
        }
        if self.lock == Lock::None && level >= Lock::Shared {
            cfg_if::cfg_if! {
                if #[cfg(target_family = "wasm")] {
                    // No poller thread here: poll on the transaction boundary when due.
                    if self.travel.is_none() && self.replica.poll_due() {
                        if let Err(e) = self.replica.poll_tick() {
                            tracing::warn!(error = %e, "cannot fetch new ltx files");
                        }
                    }
                }
            }
            Replica::note_read_transaction(&self.replica);
            self.state = FileState::Reading(self.fresh_snapshot());
        }
        if level >= Lock::Reserved && self.lock < Lock::Reserved {
            if self.travel.is_some() {
                return Err(read_only("time travel is set (PRAGMA litestream_time = 'latest' to write)"));
            }
            if !self.write_enabled {
                return Err(read_only(self.no_write_reason_now()));
            }
            let snap = self.snapshot();
            let txn = self.writer.begin(self.id, &snap)?;
            self.state = FileState::Writing(snap, txn);
        }
        self.lock = self.lock.max(level);
        Ok(())
    }

    fn no_write_reason_now(&self) -> &'static str {
        if self.write_access.is_some() {
            "write mode is off (PRAGMA litestream_write_enabled=1)"
        } else {
            self.no_write_reason
        }
    }

    pub fn unlock(&mut self, level: Lock) -> Result<()> {
        if level > Lock::Shared {
            return Err(Error::internal(format!("invalid unlock target: {level:?}")));
        }
        let mut outcome = Ok(());
        if let FileState::Writing(..) = self.state {
            let FileState::Writing(_, txn) = std::mem::replace(&mut self.state, FileState::Idle) else {
                unreachable!("matched above")
            };
            let snap = match self.writer.commit(self.id, txn) {
                Ok(s) => s,
                Err(e) => {
                    outcome = Err(e);
                    self.writer.snapshot()
                }
            };
            self.state = FileState::Reading(snap);
        }
        if level == Lock::None {
            self.state = FileState::Idle;
        }
        self.lock = self.lock.min(level);
        outcome
    }

    /// `xCheckReservedLock`: this connection or another of the replica holds the writer slot.
    pub fn check_reserved(&self) -> bool {
        self.lock >= Lock::Reserved || self.writer.slot_held()
    }

    /// `xWrite` of the main database: into the transaction's dirty set.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let FileState::Writing(snap, txn) = &mut self.state else {
            return Err(read_only("no write transaction (RESERVED lock) is held"));
        };
        let replica = &self.replica;
        txn.write(offset, data, |pgno| {
            if let Some(p) = snap.local_page(pgno) {
                return Ok(p);
            }
            if snap.view.index.get(pgno).is_some() {
                return replica.read_page(&snap.view, pgno, &mut AccessHistory::default());
            }
            Ok(bytes::Bytes::from(vec![0u8; snap.page_size() as usize]))
        })
    }

    /// `xTruncate` of the main database: shrink the transaction's size (VACUUM, auto-vacuum).
    pub fn truncate(&mut self, size: u64) -> Result<()> {
        let FileState::Writing(_, txn) = &mut self.state else {
            return Err(read_only("no write transaction (RESERVED lock) is held"));
        };
        txn.truncate(size);
        Ok(())
    }

    /// Read `buf.len()` bytes at `offset`. Returns how many bytes exist (short at the end).
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let snap = self.snapshot();
        let (size, page_size, commit) = match &self.state {
            FileState::Writing(_, t) => (t.commit as u64 * t.page_size as u64, t.page_size as u64, t.commit),
            _ => (snap.file_size(), snap.page_size() as u64, snap.commit()),
        };
        if offset >= size {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(size - offset) as usize;
        // The hydrated file holds the replica's state only: not local changes.
        let local = matches!(self.state, FileState::Writing(..))
            || snap.overlay.commit.is_some()
            || !snap.overlay.pages.is_empty();
        if let (Some(h), false) = (&self.hydrator, local) {
            if h.read(&snap.view, offset, &mut buf[..want]) {
                patch_page1(snap.change_counter(), commit, offset, &mut buf[..want]);
                return Ok(want);
            }
        }
        let mut done = 0usize;
        while done < want {
            let at = offset + done as u64;
            let pgno = u32::try_from(at / page_size + 1).map_err(|_| Error::corrupt("page number overflow"))?;
            let in_page = (at % page_size) as usize;
            let page = self.page(&snap, pgno)?;
            let n = (want - done).min(page.len().saturating_sub(in_page));
            if n == 0 {
                return Err(Error::corrupt(format!("page {pgno} is shorter than the page size")));
            }
            buf[done..done + n].copy_from_slice(&page[in_page..in_page + n]);
            if pgno == 1 {
                patch_page1(snap.change_counter(), commit, at, &mut buf[done..done + n]);
            }
            done += n;
        }
        Ok(done)
    }

    /// A page as the pinned snapshot sees it: this transaction's dirty page, then the local
    /// commits, then the replica. If the file it lives in has vanished, re-plan the same state
    /// from the files that exist now and try once more.
    fn page(&mut self, snap: &Snapshot, pgno: u32) -> Result<bytes::Bytes> {
        if let FileState::Writing(_, t) = &self.state {
            if let Some(p) = t.dirty.get(&pgno) {
                return Ok(p.clone());
            }
        }
        if let Some(p) = snap.local_page(pgno) {
            return Ok(p);
        }
        match self.replica.read_page(&snap.view, pgno, &mut self.history) {
            Err(e) if e.kind == ErrorKind::NotFound => {
                tracing::info!(connection = %self.name, error = %e, "file vanished, re-planning");
                let fresh = self.replica.replan(&snap.view).map_err(|re| re.context(format!("after {e}")))?;
                if self.travel.is_some() {
                    self.travel = Some(fresh.clone());
                }
                match &mut self.state {
                    FileState::Reading(s) | FileState::Writing(s, _) => s.view = fresh.clone(),
                    FileState::Idle => {}
                }
                self.replica.read_page(&fresh, pgno, &mut self.history)
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
            // The audit of issue 11 (`crate::verify`): every file of the plan, and the database.
            ("litestream_verify", None) => PragmaResult::Value(
                crate::verify::verify(&self.replica, &self.reporting_view()).map(|r| Some(r.text())),
            ),
            ("litestream_lag", None) => PragmaResult::Value(Ok(Some(self.lag().to_string()))),
            ("litestream_time", None) => PragmaResult::Value(Ok(Some(self.time_text()))),
            // A set answers with the new value: a PRAGMA that returns no column name makes
            // Python's sqlite3 raise MemoryError.
            ("litestream_time", Some(v)) => PragmaResult::Value(self.set_time(v).map(|_| Some(self.time_text()))),
            ("litestream_write_enabled", None) => {
                PragmaResult::Value(Ok(Some(if self.write_enabled { "1" } else { "0" }.into())))
            }
            ("litestream_write_enabled", Some(v)) => PragmaResult::Value(self.set_write_enabled(v)),
            ("litestream_wait", Some(v)) => PragmaResult::Value(self.wait_for(v)),
            ("litestream_sync", _) => PragmaResult::Value(self.sync_now()),
            ("litestream_discard_local", Some(v)) => PragmaResult::Value(self.discard_local(v)),
            ("litestream_conflict", None) => {
                PragmaResult::Value(Ok(Some(self.writer.conflict().map(|c| c.error().message).unwrap_or_default())))
            }
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
                | "litestream_hydration_state"
                | "litestream_conflict"),
                Some(_),
            ) => PragmaResult::Value(read_only(n)),
            _ => PragmaResult::NotOurs,
        }
    }
}

impl Connection {
    /// `PRAGMA litestream_wait = '<txid>[,<timeout>]'`: block until the replica reaches the
    /// TXID; answers the position reached.
    fn wait_for(&mut self, v: &str) -> Result<Option<String>> {
        let req = crate::wait_txid::parse(v)?;
        if self.travel.is_some() {
            return Err(Error::config("litestream_wait: time travel is set (PRAGMA litestream_time = 'latest' first)"));
        }
        if self.lock >= Lock::Shared {
            return Err(Error::config(
                "litestream_wait: inside a read transaction the view is pinned; run it before BEGIN",
            ));
        }
        self.replica.wait_for_txid(req.txid, req.timeout)?;
        Ok(Some(self.txid_text()))
    }

    /// `PRAGMA litestream_write_enabled = v` (VFS.md §9.6).
    fn set_write_enabled(&mut self, v: &str) -> Result<Option<String>> {
        match v.to_ascii_lowercase().as_str() {
            "0" | "false" | "off" => {
                if self.write_enabled {
                    if self.lock >= Lock::Reserved {
                        return Err(Error::config("cannot disable writes inside a write transaction"));
                    }
                    self.writer.disable()?;
                    self.write_enabled = false;
                }
                Ok(Some("0".into()))
            }
            "1" | "true" | "on" => self.enable_writes().map(|_| Some("1".into())),
            _ => Err(Error::config(format!("invalid value for litestream_write_enabled: {v} (use 0 or 1)"))),
        }
    }

    /// `PRAGMA litestream_sync`: upload now; the remote TXID.
    fn sync_now(&mut self) -> Result<Option<String>> {
        if !self.write_enabled {
            return Err(read_only(self.no_write_reason_now()));
        }
        self.writer.sync().map(|t| Some(format_txid(t)))
    }

    /// `PRAGMA litestream_discard_local = 1`: drop local changes, follow the replica.
    fn discard_local(&mut self, v: &str) -> Result<Option<String>> {
        if !matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on") {
            return Err(Error::config(format!("invalid value for litestream_discard_local: {v} (use 1)")));
        }
        if self.lock >= Lock::Reserved {
            return Err(Error::config("cannot discard local changes inside a write transaction"));
        }
        self.writer.discard_local().map(|t| Some(format_txid(t)))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let FileState::Writing(..) = self.state {
            self.writer.release(self.id);
        }
        if self.write_enabled {
            self.writer.close_connection();
        }
        // The scan's background chunks end with the connection (each one bounded batch).
        self.replica.join_read_ahead();
    }
}

/// Outcome of [`Connection::pragma`].
#[derive(Debug)]
pub enum PragmaResult {
    NotOurs,
    Value(Result<Option<String>>),
}
