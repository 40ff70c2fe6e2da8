//! The replica object: one per (storage, options) per process, shared by every connection.
//!
//! It owns the listing, the file table, the page cache and the latest published [`View`].
//! Connections pin a `View` (an `Arc`) at their SHARED lock; a poll builds the next `View`
//! and publishes it by swapping a pointer. That is the two-index isolation of VFS.md §6
//! without copying maps.

use crate::cache::PageCache;
use crate::error::{Error, ErrorKind, Result};
use crate::extent_store::ExtentStore;
use crate::file_table::{FileId, FileTable, LtxFile};
use crate::layout::{Layout, LtxName, SNAPSHOT_LEVEL};
use crate::ltx::{self, Header, PageIndexEntry};
use crate::page_index::{PageIndex, PageLoc};
use crate::plan::{Listing, LtxFileInfo, Target, restore_plan};
use crate::read_planner::{AccessHistory, Extent, PlannerConfig, plan_read};
use crate::storage::{Clock, RangeRequest, Storage, UnixNanos};
use crate::time::TimeTarget;
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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

/// Request counters, for logs and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub lists: AtomicU64,
}

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

const READ_ATTEMPTS: u32 = 6;

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
    inflight: Mutex<HashMap<(FileId, u64), Arc<Inflight>>>,
    /// When the last poll succeeded (ns since epoch), 0 = never.
    last_poll_ok: AtomicI64,
    /// When the last poll was attempted (ns since epoch), 0 = never.
    last_poll_at: AtomicI64,
    pub stats: Stats,
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
        let cache = PageCache::new(opts.cache_size, 4096);
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
            inflight: Mutex::new(HashMap::new()),
            last_poll_ok: AtomicI64::new(0),
            last_poll_at: AtomicI64::new(0),
            stats: Stats::default(),
        };
        let started = this.clock.now();
        let view = loop {
            let listing = this.list_all(false)?;
            this.forget_deleted(&listing);
            match restore_plan(&listing, Target::Latest) {
                Ok(plan) => break this.build_view(&plan, None)?,
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
        Ok(Arc::new(this))
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

    // ---------------------------------------------------------------- listing

    fn to_infos(&self, level: u8, objects: Vec<crate::storage::ObjectInfo>) -> Vec<LtxFileInfo> {
        let mut out: Vec<LtxFileInfo> = objects
            .into_iter()
            .filter_map(|o| {
                let name = LtxName::parse_key(&o.key)?;
                if name.min_txid > name.max_txid || name.min_txid == 0 {
                    return None;
                }
                Some(LtxFileInfo {
                    level,
                    min_txid: name.min_txid,
                    max_txid: name.max_txid,
                    size: o.size,
                    created_at: o.created_at,
                    key: o.key,
                })
            })
            .collect();
        out.sort_by_key(|f| (f.min_txid, f.max_txid));
        out
    }

    fn list_levels(&self, levels: &[u8], with_metadata: bool) -> Result<Vec<Vec<LtxFileInfo>>> {
        let prefixes: Vec<String> = levels.iter().map(|&l| self.layout.level_prefix(l)).collect();
        self.stats.lists.fetch_add(prefixes.len() as u64, Ordering::Relaxed);
        let results = self.storage.list_many(&prefixes, with_metadata);
        levels
            .iter()
            .zip(results)
            .map(|(&level, r)| {
                r.map(|objs| self.to_infos(level, objs)).map_err(|e| e.context(format!("list level {level}")))
            })
            .collect()
    }

    /// Every level of the replica.
    pub fn list_all(&self, with_metadata: bool) -> Result<Listing> {
        let levels: Vec<u8> = (0..=SNAPSHOT_LEVEL).collect();
        let mut listing = Listing::new();
        for files in self.list_levels(&levels, with_metadata)? {
            listing.extend(files);
        }
        Ok(listing)
    }

    /// Drop persisted bytes of files the replica no longer has.
    fn forget_deleted(&self, listing: &Listing) {
        if let Some(store) = &self.extents {
            let live: std::collections::HashSet<&str> =
                (0..=SNAPSHOT_LEVEL).flat_map(|l| listing.level(l)).map(|f| f.key.as_str()).collect();
            store.retain(&|key| live.contains(key));
        }
    }

    // ---------------------------------------------------------------- fetching

    /// Fetch ranges with the read retry schedule of VFS.md §5.1 (15 ms × attempt).
    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let mut results: Vec<Option<Result<Bytes>>> = match &self.extents {
            Some(store) => requests.iter().map(|r| store.get(&r.key, r.range.clone()).map(Ok)).collect(),
            None => (0..requests.len()).map(|_| None).collect(),
        };
        for attempt in 1..=READ_ATTEMPTS {
            let pending: Vec<usize> = (0..requests.len())
                .filter(|&i| match &results[i] {
                    None => true,
                    Some(Err(e)) => e.is_retryable(),
                    Some(Ok(_)) => false,
                })
                .collect();
            if pending.is_empty() {
                break;
            }
            if attempt > 1 {
                self.clock.sleep(Duration::from_millis(15 * (attempt as u64 - 1)));
            }
            let batch: Vec<RangeRequest> = pending.iter().map(|&i| requests[i].clone()).collect();
            self.stats.requests.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (i, r) in pending.into_iter().zip(self.storage.get_ranges(&batch)) {
                if let Ok(b) = &r {
                    self.stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    if let Some(store) = &self.extents {
                        store.put(&requests[i].key, requests[i].range.start, b);
                    }
                }
                results[i] = Some(r);
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::internal("fetch not attempted")))).collect()
    }

    fn request(file: &LtxFile, range: std::ops::Range<u64>) -> RangeRequest {
        RangeRequest { key: file.info.key.clone(), range }
    }

    /// Headers (where asked) and page indexes of several files, fetched concurrently: small
    /// files whole (checksum verified, pages cached), large ones by their tail, and where the
    /// header is asked for, the header and the head of the page area in one request.
    fn fetch_metas(&self, files: &[(Arc<LtxFile>, bool)]) -> Result<Vec<FileMeta>> {
        enum Part {
            Whole(usize),
            Tail(usize, u64),
            Header(usize),
        }
        let mut metas: Vec<Option<FileMeta>> = files.iter().map(|_| None).collect();
        let mut headers: Vec<Option<Header>> = files.iter().map(|_| None).collect();
        let mut heads: Vec<Option<Bytes>> = files.iter().map(|_| None).collect();
        let mut reqs = Vec::new();
        let mut parts = Vec::new();
        for (i, (f, need_header)) in files.iter().enumerate() {
            let size = f.info.size;
            if size < (ltx::HEADER_SIZE + ltx::TRAILER_SIZE) as u64 {
                return Err(Error::corrupt(format!("ltx file too short to contain a page index: {size} bytes"))
                    .context(&f.info.key));
            }
            if size <= self.opts.planner.whole_file_threshold {
                reqs.push(Self::request(f, 0..size));
                parts.push(Part::Whole(i));
            } else {
                let start = size - self.opts.tail_fetch.min(size);
                reqs.push(Self::request(f, start..size));
                parts.push(Part::Tail(i, start));
                if *need_header && start > 0 {
                    let head_end = (ltx::HEADER_SIZE as u64 + self.opts.head_fetch).min(start);
                    reqs.push(Self::request(f, 0..head_end));
                    parts.push(Part::Header(i));
                }
            }
        }
        let results = self.get_ranges(&reqs);
        let mut second = Vec::new();
        for (part, result) in parts.into_iter().zip(results) {
            match part {
                Part::Whole(i) => {
                    let f = &files[i].0;
                    let bytes = result.map_err(|e| e.context(&f.info.key))?;
                    let (header, index, _) = self.cache_whole(f, &bytes, None)?;
                    metas[i] = Some(FileMeta { header: Some(header), index, head: None });
                }
                Part::Tail(i, start) => {
                    let f = &files[i].0;
                    let tail = result.map_err(|e| e.context(&f.info.key))?;
                    if start == 0 && files[i].1 {
                        headers[i] = Some(Header::decode(&tail).map_err(|e| e.context(&f.info.key))?);
                    }
                    match ltx::parse_page_index_from_tail(&tail, start, f.info.size)
                        .map_err(|e| e.context(&f.info.key))?
                    {
                        Some(index) => metas[i] = Some(FileMeta { header: None, index, head: None }),
                        None => {
                            let index_size = ltx::index_size_from_tail(&tail).map_err(|e| e.context(&f.info.key))?;
                            let range =
                                ltx::page_index_range(f.info.size, index_size).map_err(|e| e.context(&f.info.key))?;
                            second.push((i, range));
                        }
                    }
                }
                Part::Header(i) => {
                    let f = &files[i].0;
                    let bytes = result.map_err(|e| e.context(&f.info.key))?;
                    headers[i] = Some(Header::decode(&bytes).map_err(|e| e.context(&f.info.key))?);
                    if bytes.len() > ltx::HEADER_SIZE {
                        heads[i] = Some(bytes.slice(ltx::HEADER_SIZE..));
                    }
                }
            }
        }
        if !second.is_empty() {
            let reqs: Vec<RangeRequest> = second.iter().map(|(i, r)| Self::request(&files[*i].0, r.clone())).collect();
            for ((i, range), result) in second.into_iter().zip(self.get_ranges(&reqs)) {
                let f = &files[i].0;
                let tail = result.map_err(|e| e.context(&f.info.key))?;
                let index = ltx::parse_page_index_from_tail(&tail, range.start, f.info.size)
                    .map_err(|e| e.context(&f.info.key))?
                    .ok_or_else(|| Error::corrupt("page index does not fit its declared size").context(&f.info.key))?;
                metas[i] = Some(FileMeta { header: None, index, head: None });
            }
        }
        let mut out = Vec::with_capacity(files.len());
        for (i, meta) in metas.into_iter().enumerate() {
            let mut meta = meta.ok_or_else(|| Error::internal("missing file metadata"))?;
            if meta.header.is_none() {
                meta.header = headers[i].take();
            }
            if meta.head.is_none() {
                meta.head = heads[i].take();
            }
            if files[i].1 && meta.header.is_none() {
                return Err(Error::internal("header not fetched").context(&files[i].0.info.key));
            }
            if let Some(h) = &meta.header {
                if h.min_txid != files[i].0.info.min_txid || h.max_txid != files[i].0.info.max_txid {
                    return Err(Error::corrupt(format!(
                        "header TXIDs {:016x}-{:016x} do not match the file name",
                        h.min_txid, h.max_txid
                    ))
                    .context(&files[i].0.info.key));
                }
            }
            out.push(meta);
        }
        Ok(out)
    }

    fn loc(file: FileId, e: &PageIndexEntry) -> Option<PageLoc> {
        Some(PageLoc { file, size: u32::try_from(e.size).ok()?, offset: e.offset })
    }

    /// Build a view from a plan: fetch every file's index concurrently, apply in order.
    fn build_view(&self, plan: &[LtxFileInfo], target: Option<TimeTarget>) -> Result<View> {
        let last = plan.last().ok_or_else(crate::plan::not_available)?;
        // The last file gives commit and page size. The heads of the files (their lowest pages:
        // the schema, the first root pages) come along in the same concurrent round: every file
        // of a short plan, the first (usually the snapshot) and the last of a long one.
        let short = plan.len() <= 16;
        let files: Vec<(Arc<LtxFile>, bool)> = plan
            .iter()
            .enumerate()
            .map(|(i, f)| (self.files.intern(f), short || i == 0 || i + 1 == plan.len()))
            .collect();
        let metas = self.fetch_metas(&files)?;
        let header =
            metas.last().and_then(|m| m.header).ok_or_else(|| Error::internal("no header for the last plan file"))?;
        if !ltx::is_valid_page_size(header.page_size) {
            return Err(Error::corrupt(format!("unsupported page size: {}", header.page_size)));
        }
        let mut index = PageIndex::new();
        for ((file, _), meta) in files.iter().zip(&metas) {
            for e in &meta.index {
                let loc = Self::loc(file.id, e).ok_or_else(|| Error::corrupt("page frame too large"))?;
                index.insert(e.pgno, loc);
            }
        }
        index.truncate(header.commit);
        let max_l1 = plan.iter().filter(|f| f.level == 1).map(|f| f.max_txid).max().unwrap_or(last.max_txid);
        let view = View {
            index,
            page_size: header.page_size,
            commit: header.commit,
            txid: last.max_txid,
            created_at: last.created_at,
            max_l1,
            target,
        };
        self.cache_heads(&files, &metas, &view);
        Ok(view)
    }

    /// Cache the frames of fetched heads that `view` reads (speculative: errors only logged).
    fn cache_heads(&self, files: &[(Arc<LtxFile>, bool)], metas: &[FileMeta], view: &View) {
        let nothing = PageLoc { file: FileId::MAX, size: 0, offset: 0 };
        for ((file, _), meta) in files.iter().zip(metas) {
            if let Some(head) = &meta.head {
                if let Err(e) = self.decode_frames(file, ltx::HEADER_SIZE as u64, head, nothing, view) {
                    tracing::debug!(error = %e, "head of {} not cached", file.info.key);
                }
            }
        }
    }

    // ---------------------------------------------------------------- pages

    /// The decoded bytes of page `pgno` as `view` sees it.
    pub fn read_page(&self, view: &View, pgno: u32, history: &mut AccessHistory) -> Result<Bytes> {
        let loc = view.index.get(pgno).ok_or_else(|| Error::corrupt(format!("page not found: {pgno}")))?;
        if let Some(page) = self.cache.get(loc.file, loc.offset) {
            return Ok(page);
        }
        let file = self.files.get(loc.file).ok_or_else(|| Error::internal("unknown file id"))?;
        if let Some(frame) = self.extents.as_ref().and_then(|s| s.get(&file.info.key, loc.offset..loc.end())) {
            if let Ok(Some(page)) = self.decode_frames(&file, loc.offset, &frame, loc, view) {
                return Ok(page);
            }
        }
        let extents = plan_read(
            pgno,
            loc,
            view.page_size,
            &view.index,
            |f| self.files.get(f).map_or(0, |x| x.info.size),
            |f, o| self.cache.contains(f, o),
            history,
            &self.opts.planner,
        );
        self.fetch_extents_once(&extents, view, loc)
    }

    /// Fetch the planned extents, or wait for a concurrent fetch of the same wanted extent,
    /// then return the wanted page.
    fn fetch_extents_once(&self, extents: &[Extent], view: &View, want: PageLoc) -> Result<Bytes> {
        let first = extents.first().ok_or_else(|| Error::internal("empty read plan"))?;
        let key = (first.file, first.range.start);
        let (flight, leader) = {
            let mut map = self.inflight.lock();
            match map.get(&key) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Inflight::default());
                    map.insert(key, f.clone());
                    (f, true)
                }
            }
        };
        if leader {
            let result = self.fetch_extents(extents, view, want);
            *flight.done.lock() = Some(result.as_ref().map(|_| ()).map_err(Clone::clone));
            flight.cv.notify_all();
            self.inflight.lock().remove(&key);
            return result;
        }
        let outcome = {
            let mut done = flight.done.lock();
            while done.is_none() {
                flight.cv.wait(&mut done);
            }
            done.clone()
        };
        match outcome {
            Some(Ok(())) => match self.cache.get(want.file, want.offset) {
                Some(p) => Ok(p),
                // Evicted already (tiny cache): fetch just the frame.
                None => self.fetch_extents(
                    &[Extent { file: want.file, range: want.offset..want.end(), whole_file: false }],
                    view,
                    want,
                ),
            },
            Some(Err(e)) => Err(e),
            None => Err(Error::internal("in-flight fetch vanished")),
        }
    }

    /// Fetch extents in one concurrent batch and cache what they hold. The first extent holds
    /// the wanted page; the others are read-ahead, whose failures are only logged.
    fn fetch_extents(&self, extents: &[Extent], view: &View, want: PageLoc) -> Result<Bytes> {
        let mut files = Vec::with_capacity(extents.len());
        for e in extents {
            files.push(self.files.get(e.file).ok_or_else(|| Error::internal("unknown file id"))?);
        }
        let reqs: Vec<RangeRequest> =
            extents.iter().zip(&files).map(|(e, f)| Self::request(f, e.range.clone())).collect();
        let mut wanted = None;
        for (i, ((extent, file), result)) in extents.iter().zip(&files).zip(self.get_ranges(&reqs)).enumerate() {
            let decoded = result.map_err(|e| e.context(&file.info.key)).and_then(|bytes| {
                if extent.whole_file {
                    self.decode_whole(file, &bytes, want, view.page_size)
                } else {
                    self.decode_frames(file, extent.range.start, &bytes, want, view)
                }
            });
            match decoded {
                Ok(Some(page)) => wanted = Some(page),
                Ok(None) => {}
                Err(e) if i == 0 => return Err(e),
                Err(e) => tracing::debug!(error = %e, "read-ahead failed"),
            }
        }
        wanted.ok_or_else(|| Error::corrupt(format!("no page frame at offset {}", want.offset)))
    }

    /// Decode a whole file (checksum verified) into the cache; return the frame at `want`.
    fn decode_whole(&self, file: &LtxFile, bytes: &[u8], want: PageLoc, page_size: u32) -> Result<Option<Bytes>> {
        let want_offset = (file.id == want.file).then_some(want.offset);
        let (header, _, wanted) = self.cache_whole(file, bytes, want_offset)?;
        if header.page_size != page_size {
            return Err(Error::corrupt("page size differs from the database's").context(&file.info.key));
        }
        Ok(wanted)
    }

    /// Decode a whole file (every check, file checksum included) and cache all its pages;
    /// return its header, its page index and the page at `want_offset`.
    fn cache_whole(
        &self,
        file: &LtxFile,
        bytes: &[u8],
        want_offset: Option<u64>,
    ) -> Result<(Header, Vec<PageIndexEntry>, Option<Bytes>)> {
        let decoded = ltx::decode_file(bytes).map_err(|e| e.context(&file.info.key))?;
        let mut wanted = None;
        for (entry, (_, page)) in decoded.index.iter().zip(decoded.pages) {
            let page = Bytes::from(page);
            if want_offset == Some(entry.offset) {
                wanted = Some(page.clone());
            }
            self.cache.insert(file.id, entry.offset, page);
        }
        Ok((decoded.header, decoded.index, wanted))
    }

    /// Decode the frames in `bytes` (which start at file offset `start`) that `view` reads
    /// from this file into the cache (frames of superseded pages are skipped); return the
    /// frame at `want`.
    fn decode_frames(
        &self,
        file: &LtxFile,
        start: u64,
        bytes: &[u8],
        want: PageLoc,
        view: &View,
    ) -> Result<Option<Bytes>> {
        let page_size = view.page_size;
        let mut wanted = None;
        let mut pos = 0usize;
        while let Some(head) = bytes.get(pos..pos + ltx::PAGE_HEADER_SIZE + 4) {
            let offset = start + pos as u64;
            let pgno = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let flags = u16::from_be_bytes([head[4], head[5]]);
            if pgno == 0 {
                break;
            }
            let frame_len = if flags == 1 {
                ltx::PAGE_HEADER_SIZE + 4 + u32::from_be_bytes([head[6], head[7], head[8], head[9]]) as usize
            } else if offset == want.offset {
                // Legacy LZ4-frame pages carry no length; the index knows it.
                want.size as usize
            } else {
                break;
            };
            let Some(frame) = bytes.get(pos..pos + frame_len) else { break };
            let is_want = file.id == want.file && offset == want.offset;
            let current = view.index.get(pgno).is_some_and(|l| l.file == file.id && l.offset == offset);
            if !is_want && !current {
                pos += frame_len;
                if flags != 1 {
                    break;
                }
                continue;
            }
            let mut page = vec![0u8; page_size as usize];
            let got = ltx::decode_frame_into(frame, &mut page).map_err(|e| e.context(&file.info.key))?;
            if got != pgno {
                return Err(Error::corrupt("page frame changed under decode").context(&file.info.key));
            }
            let page = Bytes::from(page);
            if is_want {
                wanted = Some(page.clone());
            }
            self.cache.insert(file.id, offset, page);
            pos += frame_len;
            if flags != 1 {
                break;
            }
        }
        Ok(wanted)
    }

    // ---------------------------------------------------------------- views

    /// The same state as `view` (same TXID, or same time target) from a fresh listing: used
    /// when a file the view points at has vanished (compaction, retention).
    pub fn replan(&self, view: &View) -> Result<Arc<View>> {
        let with_metadata = view.target.is_some();
        let listing = self.list_all(with_metadata)?;
        self.forget_deleted(&listing);
        let plan = restore_plan(&listing, Target::Txid(view.txid))?;
        let mut fresh = self.build_view(&plan, view.target.clone())?;
        fresh.created_at = view.created_at;
        let fresh = Arc::new(fresh);
        if view.target.is_none() {
            let mut cur = self.current.write();
            if cur.txid == fresh.txid {
                *cur = fresh.clone();
            }
        }
        Ok(fresh)
    }

    /// A time-travel view: files created strictly before `target.at`.
    pub fn view_at(&self, target: TimeTarget) -> Result<Arc<View>> {
        let listing = self.list_all(true)?;
        let plan = restore_plan(&listing, Target::Time(target.at))?;
        Ok(Arc::new(self.build_view(&plan, Some(target))?))
    }

    // ---------------------------------------------------------------- polling

    /// Whether a poll is due (used where there is no background thread).
    pub fn poll_due(&self) -> bool {
        let last = self.last_poll_at.load(Ordering::Relaxed);
        last == 0 || self.clock.now() - last >= self.opts.poll_interval.as_nanos() as i64
    }

    /// One poll (VFS.md §8, with the required fixes of §8.3): read L0 and L1, accept files that
    /// overlap what is applied, never let an older file overwrite a newer entry, trim on shrink.
    /// Returns whether a new view was published.
    pub fn poll_once(&self) -> Result<bool> {
        let _guard = self.poll_lock.lock();
        self.last_poll_at.store(self.clock.now(), Ordering::Relaxed);
        let cur = self.current();
        let mut lists = self.list_levels(&[0, 1], false)?.into_iter();
        let l0 = lists.next().unwrap_or_default();
        let l1 = lists.next().unwrap_or_default();
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
                if f.level == 1 {
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
            if f.level == 1 {
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
                    if let Err(e) = replica.poll_once() {
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
