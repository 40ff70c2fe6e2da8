//! Write mode (VFS.md §9, with the required fixes of §14): one [`Writer`] per replica per
//! process, beside the [`Replica`] rather than inside it.
//!
//! * [`transaction`]: the overlay of committed-unsynced pages, the snapshot a read transaction
//!   pins, one write transaction's dirty set.
//! * [`buffer`]: the crash-safe local log of commits behind the [`buffer::BufferStore`] seam
//!   (disk implementation in the native shell).
//! * [`sync`]: encode → conflict check → conditional put → re-point the index → publish.
//! * [`registry`]: the writer of each replica.
//!
//! The writer slot: connections of one process to one replica share it; the one holding
//! RESERVED owns it until its transaction ends, the others get `SQLITE_BUSY`.

pub mod buffer;
pub mod registry;
pub mod sync;
pub mod transaction;

use crate::error::{Error, ErrorKind, Result};
use crate::replica::{Replica, View};
use buffer::{BufferFile, BufferHeader, BufferStore, CommitRecord, encode_commit, replica_identity};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use transaction::{Overlay, Snapshot, Transaction};

/// How long disabling writes waits for another connection's write transaction.
const DISABLE_WAIT: Duration = Duration::from_secs(10);

/// Write settings of one open (environment, then URI parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    pub enabled: bool,
    /// `None`: no periodic sync (a negative `sync_interval`); sync at close, disable, PRAGMA.
    pub sync_interval: Option<Duration>,
    pub buffer_path: Option<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self { enabled: false, sync_interval: Some(Duration::from_secs(1)), buffer_path: None }
    }
}

/// Local changes that cannot go up because the remote moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub expected: u64,
    pub remote: u64,
    pub buffer: String,
}

impl Conflict {
    pub fn error(&self) -> Error {
        Error::new(
            ErrorKind::Conflict,
            format!(
                "write conflict: local changes are based on TXID {} but the replica has TXID {}; they are kept in \
                 the write buffer {}. Export them with VACUUM INTO 'file:/path/copy.db?vfs=unix' then run \
                 PRAGMA litestream_write_enabled=0 to follow the replica, or drop them with PRAGMA \
                 litestream_discard_local=1",
                crate::layout::format_txid(self.expected),
                crate::layout::format_txid(self.remote),
                self.buffer
            ),
        )
    }
}

struct OpenBuffer {
    file: Box<dyn BufferFile>,
    name: String,
    /// Page size in the file's header (records depend on it).
    page_size: u32,
    /// Whether the file holds any record after the header.
    has_records: bool,
}

struct State {
    /// Connection id holding the writer slot (RESERVED or above).
    slot: Option<u64>,
    /// A disable is waiting for the current transaction (VFS.md §9.6).
    disabling: bool,
    /// Connections with writes enabled.
    enabled: usize,
    /// The view the overlay sits on; the remote TXID the next upload expects.
    base: Arc<View>,
    overlay: Arc<Overlay>,
    /// Page size, once known (a new database takes it from its first write of page 1).
    page_size: Option<u32>,
    conflict: Option<Conflict>,
    syncing: bool,
    sync_interval: Option<Duration>,
    ticker: bool,
}

pub struct Writer {
    replica: Arc<Replica>,
    identity: u64,
    state: Mutex<State>,
    changed: Condvar,
    /// Lock order: `buffer` before `state`.
    buffer: Mutex<Option<OpenBuffer>>,
    sync_lock: Mutex<()>,
    next_conn: AtomicU64,
}

impl Writer {
    /// A writer with writes off for `replica`; `identity` names the replica (hashed into the
    /// buffer header).
    pub fn new(replica: Arc<Replica>, identity: &str) -> Arc<Self> {
        let base = replica.current();
        let page_size = (base.commit > 0).then_some(base.page_size);
        Arc::new(Self {
            replica,
            identity: replica_identity(identity),
            state: Mutex::new(State {
                slot: None,
                disabling: false,
                enabled: 0,
                base,
                overlay: Arc::new(Overlay::default()),
                page_size,
                conflict: None,
                syncing: false,
                sync_interval: None,
                ticker: false,
            }),
            changed: Condvar::new(),
            buffer: Mutex::new(None),
            sync_lock: Mutex::new(()),
            next_conn: AtomicU64::new(1),
        })
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// A process-unique id for a connection (the slot's owner).
    pub fn connection_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the buffer is open (some connection enabled writes since the writer was made).
    pub fn is_active(&self) -> bool {
        self.buffer.lock().is_some()
    }

    /// The name of the open buffer, if any.
    pub fn buffer_name(&self) -> Option<String> {
        self.buffer.lock().as_ref().map(|b| b.name.clone())
    }

    /// The current conflict, if one was seen.
    pub fn conflict(&self) -> Option<Conflict> {
        self.state.lock().conflict.clone()
    }

    /// Whether any connection holds the writer slot (`xCheckReservedLock`).
    pub fn slot_held(&self) -> bool {
        self.state.lock().slot.is_some()
    }

    fn follows_remote(st: &State) -> bool {
        !st.overlay.unsynced() && st.conflict.is_none() && st.slot.is_none() && !st.syncing
    }

    fn snapshot_locked(&self, st: &mut State) -> Snapshot {
        if Self::follows_remote(st) {
            let cur = self.replica.current();
            if !Arc::ptr_eq(&cur, &st.base) {
                if cur.commit > 0 {
                    st.page_size = Some(cur.page_size);
                }
                st.base = cur;
            }
        }
        Snapshot { view: st.base.clone(), overlay: st.overlay.clone() }
    }

    /// What a new read transaction sees: the remote latest, or the base of local changes with
    /// those changes on top.
    pub fn snapshot(&self) -> Snapshot {
        let mut st = self.state.lock();
        self.snapshot_locked(&mut st)
    }

    /// Enable writes for one connection: the first opens (and recovers) the buffer.
    pub fn enable(self: &Arc<Self>, store: &dyn BufferStore, opts: &WriteOptions) -> Result<()> {
        let mut buf = self.buffer.lock();
        if buf.is_none() {
            let path = match &opts.buffer_path {
                Some(p) => p.clone(),
                None => store.default_path(registry::next_buffer_number()),
            };
            let file = store.open(&path)?;
            *buf = Some(self.recover(file)?);
        }
        let start_ticker = {
            let mut st = self.state.lock();
            st.enabled += 1;
            if st.sync_interval.is_none() {
                st.sync_interval = opts.sync_interval;
            }
            let start = !st.ticker && st.sync_interval.is_some();
            st.ticker |= start;
            start.then_some(st.sync_interval).flatten()
        };
        drop(buf);
        if let Some(interval) = start_ticker {
            sync::start_ticker(self, interval);
        }
        tracing::info!(replica = %self.replica.describe(), "write support enabled");
        Ok(())
    }

    /// Read the buffer left by an earlier process and decide what it means (module docs of
    /// [`buffer`]): nothing to do, commits to upload, commits already uploaded, or a conflict.
    fn recover(&self, mut file: Box<dyn BufferFile>) -> Result<OpenBuffer> {
        let name = file.describe();
        let view = self.replica.current();
        let fresh = |file: Box<dyn BufferFile>, view: &View| -> Result<OpenBuffer> {
            let mut ob = OpenBuffer { file, name: name.clone(), page_size: view.page_size, has_records: false };
            self.rewrite(&mut ob, view.txid, view.page_size, &[])?;
            Ok(ob)
        };
        let Some(bytes) = file.load()? else { return fresh(file, &view) };
        if bytes.is_empty() {
            return fresh(file, &view);
        }
        let parsed = buffer::parse(&name, &bytes)?;
        if parsed.header.replica != self.identity {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("write buffer {name} belongs to another replica; move it away or use another buffer_path"),
            ));
        }
        if parsed.torn > 0 {
            tracing::warn!(buffer = %name, bytes = parsed.torn, "dropping a torn commit at the end of the write buffer");
        }
        let mut base = parsed.header.base_txid;
        let mut commits = parsed.commits;
        if let Some(up) = parsed.upload {
            if up.txid == base + 1 && view.txid >= up.txid && self.remote_file_matches(up.txid, up.file_crc)? {
                tracing::info!(buffer = %name, txid = up.txid, "the upload before the restart had landed");
                commits.retain(|c| c.generation > up.generation);
                base = up.txid;
            }
        }
        if commits.is_empty() {
            return fresh(file, &view);
        }
        let page_size = parsed.header.page_size;
        if view.commit > 0 && view.page_size != page_size {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("write buffer {name} has page size {page_size} but the replica has {}", view.page_size),
            ));
        }
        if view.txid < base {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "write buffer {name} holds changes on TXID {} but the replica is only at TXID {}: the replica was \
                     replaced or restored; move the buffer away",
                    crate::layout::format_txid(base),
                    crate::layout::format_txid(view.txid)
                ),
            ));
        }
        let base_view = if view.txid == base {
            view.clone()
        } else {
            self.replica.view_at_txid(base).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot rebuild the state the local changes are based on");
                view.clone()
            })
        };
        let mut overlay = Overlay { page_size: Some(page_size), ..Default::default() };
        let first_gen = commits.first().map_or(0, |c| c.generation);
        overlay.generation = first_gen.saturating_sub(1);
        overlay.synced_generation = overlay.generation;
        for c in &commits {
            overlay.apply(c.commit, &c.pages);
            overlay.generation = overlay.generation.max(c.generation);
        }
        let mut ob = OpenBuffer { file, name: name.clone(), page_size, has_records: true };
        self.rewrite(&mut ob, base, page_size, &commits)?;
        let mut st = self.state.lock();
        st.page_size = Some(page_size);
        st.base = base_view;
        st.overlay = Arc::new(overlay);
        if view.txid > base {
            let c = Conflict { expected: base, remote: view.txid, buffer: name.clone() };
            tracing::error!("{}", c.error());
            st.conflict = Some(c);
        } else {
            tracing::info!(buffer = %name, commits = commits.len(), "recovered commits not yet uploaded");
        }
        Ok(ob)
    }

    /// Whether the remote level-0 file for `txid` is the one whose CRC is `crc`.
    fn remote_file_matches(&self, txid: u64, crc: u64) -> Result<bool> {
        let key = self.replica.own_key(txid);
        let Some(f) = self.replica.level0()?.into_iter().find(|f| f.key == key) else { return Ok(false) };
        let bytes = self.replica.fetch_object(&f.key, f.size)?;
        Ok(crate::ltx::crc64_iso(&bytes) == crc)
    }

    /// Replace the buffer with a header at `base` and `commits`.
    fn rewrite(&self, ob: &mut OpenBuffer, base: u64, page_size: u32, commits: &[CommitRecord]) -> Result<()> {
        let header = BufferHeader {
            page_size,
            base_txid: base,
            replica: self.identity,
            created_ms: self.replica.now() / 1_000_000,
        };
        let mut data = header.encode();
        for c in commits {
            data.extend(encode_commit(c.generation, c.commit, &c.pages));
        }
        ob.file.replace(&data).map_err(|e| e.context(format!("write buffer {}", ob.name)))?;
        ob.page_size = page_size;
        ob.has_records = !commits.is_empty();
        Ok(())
    }

    /// Start a write transaction for connection `id`, whose read transaction pinned `snap`
    /// (RESERVED). Returns the transaction.
    pub fn begin(&self, id: u64, snap: &Snapshot) -> Result<Transaction> {
        let mut st = self.state.lock();
        while st.disabling {
            self.changed.wait(&mut st);
        }
        if st.enabled == 0 {
            return Err(Error::new(ErrorKind::ReadOnly, "attempt to write a readonly database"));
        }
        if let Some(c) = &st.conflict {
            return Err(c.error());
        }
        match st.slot {
            Some(owner) if owner != id => return Err(Error::new(ErrorKind::Busy, "another connection is writing")),
            _ => {}
        }
        let now = self.snapshot_locked(&mut st);
        if !Arc::ptr_eq(&now.view, &snap.view) || !Arc::ptr_eq(&now.overlay, &snap.overlay) {
            // A commit (or a poll) since this read transaction began: writing on the old state
            // would lose it. SQLite retries after the read transaction ends.
            return Err(Error::new(ErrorKind::Busy, "the database changed since this read transaction began"));
        }
        st.slot = Some(id);
        let page_size = st.page_size.unwrap_or(snap.view.page_size);
        Ok(Transaction::new(page_size, snap.commit(), st.page_size.is_none()))
    }

    /// End connection `id`'s write transaction: make it durable in the buffer, then visible.
    /// Returns the snapshot that includes it.
    pub fn commit(&self, id: u64, txn: Transaction) -> Result<Snapshot> {
        if txn.is_empty() {
            return Ok(self.release(id));
        }
        let page_size = txn.page_size;
        let (commit, pages) = txn.into_commit();
        let mut buf = self.buffer.lock();
        let generation = self.state.lock().overlay.generation + 1;
        let durable = match buf.as_mut() {
            None => Err(Error::internal("write buffer is not open")),
            Some(ob) if ob.page_size != page_size && !ob.has_records => {
                let base = self.state.lock().base.txid;
                self.rewrite(ob, base, page_size, &[CommitRecord { generation, commit, pages: pages.clone() }])
            }
            Some(ob) if ob.page_size != page_size => Err(Error::internal("page size changed in a write transaction")),
            Some(ob) => {
                ob.has_records = true;
                ob.file
                    .append(&encode_commit(generation, commit, &pages))
                    .map_err(|e| e.context(format!("write buffer {}", ob.name)))
            }
        };
        let snap = {
            let mut st = self.state.lock();
            // Visible even if the buffer failed: the pages are still uploaded from memory, and
            // the error reaches COMMIT.
            let mut overlay = (*st.overlay).clone();
            overlay.apply(commit, &pages);
            overlay.page_size = Some(page_size);
            st.overlay = Arc::new(overlay);
            st.page_size = Some(page_size);
            if st.slot == Some(id) {
                st.slot = None;
            }
            self.changed.notify_all();
            Snapshot { view: st.base.clone(), overlay: st.overlay.clone() }
        };
        drop(buf);
        durable.map(|_| snap)
    }

    /// Free the slot without committing (close in a transaction, failed begin).
    pub fn release(&self, id: u64) -> Snapshot {
        let mut st = self.state.lock();
        if st.slot == Some(id) {
            st.slot = None;
            self.changed.notify_all();
        }
        self.snapshot_locked(&mut st)
    }

    /// One connection turns writes off (VFS.md §9.6): the last one waits for the current
    /// transaction, then syncs; on a sync failure writes stay on. In a conflict the local
    /// changes stay in the buffer file and the writer follows the replica.
    pub fn disable(&self) -> Result<()> {
        {
            let mut st = self.state.lock();
            if st.enabled > 1 {
                st.enabled -= 1;
                return Ok(());
            }
            st.disabling = true;
            // Bounded: the transaction may belong to a connection of this same thread.
            let deadline = std::time::Instant::now() + DISABLE_WAIT;
            while st.slot.is_some() {
                if self.changed.wait_until(&mut st, deadline).timed_out() && st.slot.is_some() {
                    st.disabling = false;
                    self.changed.notify_all();
                    return Err(Error::new(
                        ErrorKind::Busy,
                        format!("cannot disable writes: a write transaction is still open after {DISABLE_WAIT:?}"),
                    ));
                }
            }
        }
        let conflicted = self.conflict().is_some();
        let synced = if conflicted { Ok(0) } else { self.sync() };
        let mut buf = self.buffer.lock();
        let mut st = self.state.lock();
        st.disabling = false;
        self.changed.notify_all();
        if let Err(e) = synced {
            return Err(e.context("sync before disable"));
        }
        st.enabled = st.enabled.saturating_sub(1);
        if conflicted {
            if let Some(c) = st.conflict.take() {
                tracing::warn!(buffer = %c.buffer, "writes disabled in a conflict: the local changes stay in the write buffer");
            }
            // Close the buffer without touching it; follow the replica from now on.
            *buf = None;
            let mut overlay = Overlay { generation: st.overlay.generation + 1, ..Default::default() };
            overlay.synced_generation = overlay.generation;
            st.overlay = Arc::new(overlay);
            st.base = self.replica.current();
        }
        Ok(())
    }

    /// `PRAGMA litestream_discard_local`: drop every local change not uploaded and follow the
    /// replica. Returns the remote TXID.
    pub fn discard_local(&self) -> Result<u64> {
        let _one = self.sync_lock.lock();
        // Follow the replica as it is now, not as of the last poll.
        if let Err(e) = self.replica.poll_once() {
            tracing::warn!(error = %e, "cannot fetch new ltx files before discarding");
        }
        let mut buf = self.buffer.lock();
        let mut st = self.state.lock();
        if st.slot.is_some() {
            return Err(Error::new(ErrorKind::Busy, "a write transaction is open"));
        }
        let cur = self.replica.current();
        if let Some(ob) = buf.as_mut() {
            self.rewrite(ob, cur.txid, cur.page_size, &[])?;
        }
        let mut overlay = Overlay { generation: st.overlay.generation + 1, ..Default::default() };
        overlay.synced_generation = overlay.generation;
        st.overlay = Arc::new(overlay);
        st.conflict = None;
        st.page_size = (cur.commit > 0).then_some(cur.page_size);
        st.base = cur.clone();
        tracing::warn!(txid = cur.txid, "local changes discarded");
        Ok(cur.txid)
    }

    /// A write-enabled connection closes: the last one syncs (failures are logged; the
    /// buffer keeps the commits for the next open).
    pub fn close_connection(&self) {
        let last = {
            let mut st = self.state.lock();
            st.enabled = st.enabled.saturating_sub(1);
            st.enabled == 0
        };
        if last && self.state.lock().overlay.unsynced() {
            if let Err(e) = self.sync() {
                tracing::error!(error = %e, "failed to sync on close; the commits stay in the write buffer");
            }
        }
    }

    /// Upload what is committed now; the remote TXID afterwards.
    pub fn sync(&self) -> Result<u64> {
        sync::sync(self)
    }
}
