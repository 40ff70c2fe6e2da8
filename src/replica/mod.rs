//! The replica object: one per (storage, options) per process, shared by every connection.
//!
//! It owns the listing, the file table, the page cache and the latest published [`View`].
//! Connections pin a `View` (an `Arc`) at their SHARED lock; a poll builds the next `View`
//! and publishes it by swapping a pointer. That is the two-index isolation of VFS.md §6
//! without copying maps.
//!
//! The methods live by concern: [`access`] (what hydration reads), [`listing`] (level listings), [`metadata`] (headers, page
//! indexes, building a view), [`pages`] (page reads, single-flight, frame decoding),
//! [`views`] (re-planning and time travel) and [`poll`] (following the primary).

mod access;
mod ahead;
mod cheap_poll;
mod interior;
mod listing;
mod metadata;
mod min_level;
mod own_upload;
mod pages;
mod poll;
mod views;
mod wait;

use crate::cache::PageCache;
use crate::error::{Error, ErrorKind, Result};
use crate::extent_store::ExtentStore;
use crate::file_table::{FileId, FileTable};
use crate::layout::Layout;
use crate::ltx::{Header, PageIndexEntry};
use crate::page_index::PageIndex;
use crate::plan::{Target, restore_plan};
use crate::poll_schedule::PollSchedule;
use crate::read_planner::PlannerConfig;
use crate::retry::RetryPolicy;
use crate::retrying_storage::RetryingStorage;
use crate::stats_storage::{StatsStorage, StorageStats};
use crate::storage::{Clock, Storage, UnixNanos};
use crate::time::TimeTarget;
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Tunables of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOptions {
    /// Page cache capacity in bytes (VFS.md §5.2: 10 MiB).
    pub cache_size: u64,
    pub poll_interval: Duration,
    /// How long an open waits for a first snapshot before it fails.
    pub open_timeout: Duration,
    pub planner: PlannerConfig,
    /// Bytes read from the end of a large file to find its page index in one request.
    pub tail_fetch: u64,
    /// Bytes read from the start of a large file whose header is needed, in the same request.
    pub head_fetch: u64,
    /// Retries of storage calls (URI `max_wait`): the storage is wrapped in a
    /// [`RetryingStorage`] layer with this policy.
    pub retry: RetryPolicy,
    /// Open an empty replica at once as a new database (write mode, VFS.md §9.7) instead of
    /// waiting for a first snapshot.
    pub allow_empty: bool,
    /// Read only levels ≥ this (URI `min_level`, as ncruces' driver): 0 reads everything;
    /// N ≥ 1 ignores levels below N and polls only level N ([`min_level`]).
    pub min_level: u8,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self {
            cache_size: 10 * 1024 * 1024,
            poll_interval: Duration::from_secs(1),
            open_timeout: Duration::from_secs(30),
            planner: PlannerConfig::default(),
            tail_fetch: 64 * 1024,
            head_fetch: 64 * 1024,
            retry: RetryPolicy::default(),
            allow_empty: false,
            min_level: 0,
        }
    }
}

/// One consistent state of the database: what a read transaction sees.
#[derive(Clone)]
pub struct View {
    pub index: PageIndex,
    pub page_size: u32,
    /// Database size in pages.
    pub commit: u32,
    /// Position (`litestream_txid`).
    pub txid: u64,
    /// `createdAt` of the last file of the plan this view was built from.
    pub created_at: UnixNanos,
    /// Highest MaxTXID among level-1 files applied (poller bookkeeping).
    pub max_l1: u64,
    /// Set when this is a time-travel view.
    pub target: Option<TimeTarget>,
}

impl View {
    pub fn file_size(&self) -> u64 {
        self.commit as u64 * self.page_size as u64
    }
}

/// Request counters, kept by the [`StatsStorage`] layer.
pub type Stats = StorageStats;

/// What a file's header and page index say.
struct FileMeta {
    header: Option<Header>,
    index: Vec<PageIndexEntry>,
    /// The first bytes of the page area (from offset 100), where page 1 and the low pages —
    /// the schema and the first root pages — sit, since frames are sorted by page number.
    head: Option<Bytes>,
}

/// A fetch in flight, so that concurrent misses on the same extent send one request.
#[derive(Default)]
struct Inflight {
    done: Mutex<Option<Result<()>>>,
    cv: Condvar,
}

pub struct Replica {
    storage: Arc<dyn Storage>,
    extents: Option<Arc<dyn ExtentStore>>,
    clock: Arc<dyn Clock>,
    layout: Layout,
    opts: ReplicaOptions,
    files: FileTable,
    cache: PageCache,
    current: RwLock<Arc<View>>,
    poll_lock: Mutex<()>,
    /// Probe or list on the next poll ([`cheap_poll`]).
    schedule: Mutex<PollSchedule>,
    /// Read transactions begun so far ([`interior`] starts after a few).
    read_transactions: std::sync::atomic::AtomicU32,
    inflight: Mutex<HashMap<(FileId, u64), Arc<Inflight>>>,
    /// Background read-ahead chunks in flight ([`ahead`]).
    ahead: ahead::AheadFlights,
    /// This replica, for the background threads it starts.
    me: std::sync::Weak<Replica>,
    /// When the last poll succeeded (ns since epoch), 0 = never.
    last_poll_ok: AtomicI64,
    /// When the last poll was attempted (ns since epoch), 0 = never.
    last_poll_at: AtomicI64,
    /// What was sent to the storage (every attempt).
    pub stats: Arc<Stats>,
}

impl Replica {
    /// Open the replica at its latest state. Waits up to `open_timeout` for a first snapshot;
    /// any other planning error fails at once.
    pub fn open(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        layout: Layout,
        opts: ReplicaOptions,
    ) -> Result<Arc<Self>> {
        Self::open_with_extents(storage, None, clock, layout, opts)
    }

    /// [`Replica::open`] with a persistent extent store in front of the storage.
    pub fn open_with_extents(
        storage: Arc<dyn Storage>,
        extents: Option<Arc<dyn ExtentStore>>,
        clock: Arc<dyn Clock>,
        layout: Layout,
        mut opts: ReplicaOptions,
    ) -> Result<Arc<Self>> {
        // Read-ahead decodes into the cache's probationary half; a window larger than a quarter
        // of the cache would be evicted before SQLite reads it, and fetched again.
        let p = &mut opts.planner;
        let cap = (opts.cache_size / 4).max(p.min_request);
        p.max_readahead = p.max_readahead.min(cap);
        p.initial_readahead = p.initial_readahead.min(p.max_readahead);
        p.whole_file_threshold = p.whole_file_threshold.min(cap);
        // The pipelined read-ahead keeps up to a quarter of the cache in flight, in about four
        // concurrent requests.
        p.ahead_request = p.ahead_request.min((p.max_readahead / 4).max(p.min_request));
        let cache = PageCache::new(opts.cache_size, 4096);
        // Storage layers: retries by error kind over request statistics over the backend.
        let stats = Arc::new(Stats::default());
        let counted: Arc<dyn Storage> = Arc::new(StatsStorage::new(storage, stats.clone()));
        let storage: Arc<dyn Storage> = Arc::new(RetryingStorage::new(counted, clock.clone(), opts.retry.clone()));
        let this = Self {
            storage,
            extents,
            clock,
            layout,
            opts,
            files: FileTable::default(),
            cache,
            current: RwLock::new(Arc::new(View {
                index: PageIndex::new(),
                page_size: 4096,
                commit: 0,
                txid: 0,
                created_at: 0,
                max_l1: 0,
                target: None,
            })),
            poll_lock: Mutex::new(()),
            schedule: Mutex::new(PollSchedule::default()),
            read_transactions: std::sync::atomic::AtomicU32::new(0),
            inflight: Mutex::new(HashMap::new()),
            ahead: ahead::AheadFlights::default(),
            me: std::sync::Weak::new(),
            last_poll_ok: AtomicI64::new(0),
            last_poll_at: AtomicI64::new(0),
            stats,
        };
        let started = this.clock.now();
        let view = loop {
            let listing = this.list_all(false)?;
            this.forget_deleted(&listing);
            match restore_plan(&listing, Target::Latest) {
                Ok(plan) => break this.build_view(&plan, None)?,
                Err(e) if e.kind == ErrorKind::NotAvailable && this.opts.allow_empty && listing.is_empty() => {
                    tracing::info!(replica = %this.storage.describe(), "no existing database found, creating new database");
                    break View {
                        index: PageIndex::new(),
                        page_size: 4096,
                        commit: 0,
                        txid: 0,
                        created_at: 0,
                        max_l1: 0,
                        target: None,
                    };
                }
                Err(e) if e.kind == ErrorKind::NotAvailable => {
                    let waited = Duration::from_nanos((this.clock.now() - started).max(0) as u64);
                    if waited >= this.opts.open_timeout {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!(
                                "transaction not available: no snapshot in {} after waiting {:?}",
                                this.storage.describe(),
                                this.opts.open_timeout
                            ),
                        ));
                    }
                    let left = this.opts.open_timeout - waited;
                    tracing::info!(replica = %this.storage.describe(), "no snapshot yet, waiting");
                    this.clock.sleep(this.opts.poll_interval.min(left));
                }
                Err(e) => return Err(e),
            }
        };
        *this.current.write() = Arc::new(view);
        // The open just listed everything: the first poll is due one interval from now.
        this.last_poll_at.store(this.clock.now(), Ordering::Relaxed);
        Ok(Arc::new_cyclic(|me| {
            let mut this = this;
            this.me = me.clone();
            this
        }))
    }

    pub fn options(&self) -> &ReplicaOptions {
        &self.opts
    }

    pub fn describe(&self) -> String {
        self.storage.describe()
    }

    /// The latest published view.
    pub fn current(&self) -> Arc<View> {
        self.current.read().clone()
    }

    pub fn cache(&self) -> &PageCache {
        &self.cache
    }

    /// Seconds since the last successful poll, -1 before the first.
    pub fn lag_seconds(&self) -> i64 {
        match self.last_poll_ok.load(Ordering::Relaxed) {
            0 => -1,
            t => ((self.clock.now() - t).max(0)) / 1_000_000_000,
        }
    }

    pub fn now(&self) -> UnixNanos {
        self.clock.now()
    }
}
