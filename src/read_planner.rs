//! The read planner: given a missing page, decide which byte ranges to fetch.
//!
//! Pure. An isolated miss fetches the frame and its neighbours in the same file up to a small
//! size. Sequential access (table and index scans, b-tree leaves that lie close together) grows
//! a *window of page numbers* geometrically; the window is mapped to one request per LTX file
//! that holds pages of it, so a scan over a database spread across a snapshot and several
//! newer files costs one concurrent round per window, not one request per file switch. Windows
//! are sized in decoded bytes so that what is fetched fits the page cache. Small files are
//! taken whole (their checksum is verified). Cached frames are never requested again.

use crate::file_table::FileId;
use crate::page_index::{PageIndex, PageLoc};
use crate::read_ahead::Stream;
use std::collections::BTreeMap;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannerConfig {
    /// Bytes fetched for an isolated miss (the frame itself, plus neighbours up to this size).
    pub min_request: u64,
    /// First read-ahead window (decoded bytes) once access looks sequential; doubles per miss.
    pub initial_readahead: u64,
    /// Read-ahead window cap (decoded bytes).
    pub max_readahead: u64,
    /// Files up to this size are fetched whole (and their checksum verified).
    pub whole_file_threshold: u64,
    /// Two pages whose numbers differ by at most this count as "close together".
    pub sequential_stride: u32,
    /// Decoded bytes per background request of a scan's pipelined read-ahead
    /// ([`crate::read_ahead`]).
    pub ahead_request: u64,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            min_request: 16 * 1024,
            initial_readahead: 128 * 1024,
            max_readahead: 8 * 1024 * 1024,
            whole_file_threshold: 128 * 1024,
            sequential_stride: 8,
            ahead_request: 1024 * 1024,
        }
    }
}

/// Per-connection access history.
#[derive(Debug, Clone, Default)]
pub struct AccessHistory {
    last_miss: u32,
    /// Highest page the previous request covered.
    last_covered: u32,
    sequential_misses: u32,
    readahead: u64,
    /// The pages kept in flight ahead of a scan ([`crate::read_ahead`]).
    pub(crate) stream: Stream,
}

impl AccessHistory {
    /// Whether a scan's read-ahead stream is running (every read then may top it up).
    pub fn is_streaming(&self) -> bool {
        self.stream.is_active()
    }

    /// The stream issued pages up to its frontier: a miss just past them is still close.
    pub(crate) fn note_streamed(&mut self) {
        let f = self.stream.frontier();
        if f != 0 && f != u32::MAX {
            self.last_covered = self.last_covered.max(f - 1);
        }
    }

    /// Record a miss of `pgno`; returns the read-ahead window in bytes, or `None` for an
    /// isolated miss.
    fn record_miss(&mut self, pgno: u32, cfg: &PlannerConfig) -> Option<u64> {
        let reach = self.last_covered.max(self.last_miss).saturating_add(cfg.sequential_stride.max(1));
        let close = pgno > self.last_miss && pgno <= reach;
        self.last_miss = pgno;
        self.last_covered = pgno;
        if !close {
            self.sequential_misses = 0;
            self.readahead = 0;
            return None;
        }
        self.sequential_misses += 1;
        // Two misses close together are as likely a b-tree descent as a scan: the window (one
        // request per file holding pages of it) starts with the third.
        if self.sequential_misses < 2 {
            return None;
        }
        self.readahead =
            if self.readahead == 0 { cfg.initial_readahead } else { (self.readahead * 2).min(cfg.max_readahead) };
        Some(self.readahead.max(cfg.min_request))
    }
}

/// One request: a byte range of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    pub file: FileId,
    pub range: Range<u64>,
    /// The range is the whole file: decode it fully and verify its checksum.
    pub whole_file: bool,
}

/// Plan the requests for a miss on `pgno` located at `loc`. The first extent holds the wanted
/// page. `file_size` gives a file's size, `is_cached` whether a frame is cached already.
#[allow(clippy::too_many_arguments)]
pub fn plan_read(
    pgno: u32,
    loc: PageLoc,
    page_size: u32,
    index: &PageIndex,
    file_size: impl Fn(FileId) -> u64,
    is_cached: impl Fn(FileId, u64) -> bool,
    history: &mut AccessHistory,
    cfg: &PlannerConfig,
) -> Vec<Extent> {
    let whole = |file: FileId| {
        let size = file_size(file);
        (size <= cfg.whole_file_threshold).then_some(Extent { file, range: 0..size, whole_file: true })
    };
    let Some(window) = history.record_miss(pgno, cfg) else {
        if history.readahead == 0 {
            history.stream.stop();
        }
        return vec![whole(loc.file).unwrap_or_else(|| isolated(pgno, loc, index, &is_cached, history, cfg))];
    };
    // A window of page numbers, one extent per file, the wanted page's file first.
    let pages = (window / page_size.max(512) as u64).max(1) as u32;
    let last = pgno.saturating_add(pages - 1);
    let mut spans: BTreeMap<FileId, Range<u64>> = BTreeMap::new();
    let mut covered = pgno;
    for (p, l) in index.iter_from(pgno) {
        if p > last {
            break;
        }
        covered = p;
        if p != pgno && is_cached(l.file, l.offset) {
            continue;
        }
        spans
            .entry(l.file)
            .and_modify(|r| {
                r.start = r.start.min(l.offset);
                r.end = r.end.max(l.end());
            })
            .or_insert(l.offset..l.end());
    }
    history.last_covered = covered;
    history.stream.start(pgno, covered, window);
    let mut out: Vec<Extent> = Vec::with_capacity(spans.len());
    let mut push = |file: FileId, range: Range<u64>| {
        out.push(whole(file).unwrap_or(Extent { file, range, whole_file: false }));
    };
    if let Some(r) = spans.remove(&loc.file) {
        push(loc.file, r);
    }
    for (file, r) in spans {
        push(file, r);
    }
    out
}

/// An isolated miss: the frame plus its uncached neighbours in the same file, up to
/// `min_request` bytes.
fn isolated(
    pgno: u32,
    loc: PageLoc,
    index: &PageIndex,
    is_cached: &impl Fn(FileId, u64) -> bool,
    history: &mut AccessHistory,
    cfg: &PlannerConfig,
) -> Extent {
    let start = loc.offset;
    let mut end = loc.end();
    for (next_pgno, next) in index.iter_from(pgno.saturating_add(1)).take(4096) {
        if next.file != loc.file || next.offset < end {
            continue;
        }
        if next.end() - start > cfg.min_request || is_cached(next.file, next.offset) {
            break;
        }
        end = next.end();
        history.last_covered = next_pgno;
    }
    Extent { file: loc.file, range: start..end, whole_file: false }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const PS: u64 = 4096;

    /// An index where pages 1..=n live back to back in file 0, each frame `PS` bytes.
    pub(crate) fn contiguous(n: u32) -> PageIndex {
        let mut i = PageIndex::new();
        for p in 1..=n {
            i.insert(p, PageLoc { file: 0, size: PS as u32, offset: 100 + (p as u64 - 1) * PS });
        }
        i
    }

    /// The planner settings of the unit tests (and of crate::read_ahead's).
    pub(crate) fn cfg() -> PlannerConfig {
        PlannerConfig {
            min_request: PS,
            initial_readahead: 4 * PS,
            max_readahead: 32 * PS,
            whole_file_threshold: 8 * PS,
            sequential_stride: 8,
            ahead_request: 8 * PS,
        }
    }

    fn frames(e: &Extent) -> u64 {
        (e.range.end - e.range.start) / PS
    }

    fn plan(
        i: &PageIndex,
        p: u32,
        sizes: impl Fn(FileId) -> u64,
        cached: impl Fn(FileId, u64) -> bool,
        h: &mut AccessHistory,
    ) -> Vec<Extent> {
        plan_read(p, i.get(p).unwrap(), PS as u32, i, sizes, cached, h, &cfg())
    }

    #[test]
    fn small_files_are_fetched_whole() {
        let i = contiguous(4);
        let mut h = AccessHistory::default();
        let e = plan(&i, 2, |_| 4 * PS + 200, |_, _| false, &mut h);
        assert_eq!(e, [Extent { file: 0, range: 0..4 * PS + 200, whole_file: true }]);
    }

    #[test]
    fn random_access_fetches_only_the_frame() {
        let i = contiguous(1000);
        let mut h = AccessHistory::default();
        for p in [500, 20, 900, 300] {
            let e = plan(&i, p, |_| 1000 * PS + 5000, |_, _| false, &mut h);
            assert_eq!(e.len(), 1);
            assert_eq!(frames(&e[0]), 1, "page {p}");
            assert_eq!(e[0].range.start, i.get(p).unwrap().offset);
        }
    }

    #[test]
    fn sequential_scans_grow_geometrically_to_the_cap() {
        let i = contiguous(10_000);
        let mut h = AccessHistory::default();
        let mut p = 100;
        let mut sizes = vec![];
        for _ in 0..7 {
            let e = plan(&i, p, |_| 10_000 * PS + 5000, |_, _| false, &mut h);
            sizes.push(frames(&e[0]));
            p += frames(&e[0]) as u32; // the next miss is right after what we fetched
        }
        assert_eq!(sizes, [1, 1, 4, 8, 16, 32, 32], "the window starts with the third close miss");
    }

    #[test]
    fn leaves_close_together_count_as_sequential() {
        let i = contiguous(10_000);
        let mut h = AccessHistory::default();
        plan(&i, 100, |_| 10_000 * PS + 5000, |_, _| false, &mut h);
        let e = plan(&i, 105, |_| 10_000 * PS + 5000, |_, _| false, &mut h);
        assert_eq!(frames(&e[0]), 1, "two close misses may be a b-tree descent");
        let e = plan(&i, 110, |_| 10_000 * PS + 5000, |_, _| false, &mut h);
        assert_eq!(frames(&e[0]), 4);
    }

    #[test]
    fn never_requests_cached_frames_at_the_edges() {
        let i = contiguous(10_000);
        let mut h = AccessHistory::default();
        plan(&i, 100, |_| 10_000 * PS + 5000, |_, _| false, &mut h);
        plan(&i, 101, |_| 10_000 * PS + 5000, |_, _| false, &mut h);
        let cached: Vec<u64> = [104, 105].iter().map(|p| i.get(*p).unwrap().offset).collect();
        let e = plan(&i, 102, |_| 10_000 * PS + 5000, |_, off| cached.contains(&off), &mut h);
        assert_eq!(e.len(), 1);
        assert_eq!(frames(&e[0]), 2, "pages 102 and 103 only: 104 and 105 are cached");
    }

    #[test]
    fn a_window_spanning_several_files_is_one_request_per_file() {
        // A snapshot (file 0) with every page, and a newer file (1) holding pages 52 and 55.
        let mut i = contiguous(10_000);
        i.insert(52, PageLoc { file: 1, size: 200, offset: 100 });
        i.insert(55, PageLoc { file: 1, size: 300, offset: 300 });
        let sizes = |f: FileId| if f == 0 { 10_000 * PS + 5000 } else { 900_000 };
        let mut h = AccessHistory::default();
        plan(&i, 48, sizes, |_, _| false, &mut h);
        plan(&i, 49, sizes, |_, _| false, &mut h);
        let e = plan(&i, 50, sizes, |_, _| false, &mut h);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].file, 0, "the wanted page's file comes first");
        assert_eq!(e[0].range.start, i.get(50).unwrap().offset);
        assert_eq!(e[0].range.end, i.get(53).unwrap().end(), "pages 50..=53 of the snapshot");
        assert_eq!(e[1], Extent { file: 1, range: 100..300, whole_file: false }, "page 52 only: 55 is past the window");
    }

    #[test]
    fn small_newer_files_in_a_window_are_taken_whole() {
        let mut i = contiguous(10_000);
        i.insert(52, PageLoc { file: 1, size: 200, offset: 100 });
        let sizes = |f: FileId| if f == 0 { 10_000 * PS + 5000 } else { 2 * PS };
        let mut h = AccessHistory::default();
        plan(&i, 48, sizes, |_, _| false, &mut h);
        plan(&i, 49, sizes, |_, _| false, &mut h);
        let e = plan(&i, 50, sizes, |_, _| false, &mut h);
        assert_eq!(e[1], Extent { file: 1, range: 0..2 * PS, whole_file: true });
    }
}
