//! The read planner: given a missing page, decide which byte range to fetch.
//!
//! Pure. It merges frames that sit next to each other in the same LTX file, grows read-ahead
//! geometrically while access is sequential (table and index scans, b-tree leaves that lie
//! close together), takes the whole file when the file is small or most of it will be needed,
//! and never extends a request over a frame the cache already holds.

use crate::file_table::FileId;
use crate::page_index::{PageIndex, PageLoc};
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannerConfig {
    /// Bytes fetched for an isolated miss (the frame itself, plus neighbours up to this size).
    pub min_request: u64,
    /// First read-ahead size once access looks sequential; doubles per sequential miss.
    pub initial_readahead: u64,
    /// Read-ahead cap.
    pub max_readahead: u64,
    /// Files up to this size are fetched whole (and their checksum verified).
    pub whole_file_threshold: u64,
    /// Two pages whose numbers differ by at most this count as "close together".
    pub sequential_stride: u32,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            min_request: 16 * 1024,
            initial_readahead: 128 * 1024,
            max_readahead: 8 * 1024 * 1024,
            whole_file_threshold: 128 * 1024,
            sequential_stride: 8,
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
}

impl AccessHistory {
    /// Record a miss of `pgno`; returns how many bytes the next request may cover.
    fn record_miss(&mut self, pgno: u32, cfg: &PlannerConfig) -> u64 {
        let reach = self.last_covered.max(self.last_miss).saturating_add(cfg.sequential_stride.max(1));
        let close = pgno > self.last_miss && pgno <= reach;
        self.last_miss = pgno;
        self.last_covered = pgno;
        if close {
            self.sequential_misses += 1;
        } else {
            self.sequential_misses = 0;
            self.readahead = 0;
        }
        if self.sequential_misses == 0 {
            return cfg.min_request;
        }
        self.readahead =
            if self.readahead == 0 { cfg.initial_readahead } else { (self.readahead * 2).min(cfg.max_readahead) };
        self.readahead.max(cfg.min_request)
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

/// Plan the request for a miss on `pgno` located at `loc` in a file of `file_size` bytes.
pub fn plan_read(
    pgno: u32,
    loc: PageLoc,
    file_size: u64,
    index: &PageIndex,
    is_cached: impl Fn(FileId, u64) -> bool,
    history: &mut AccessHistory,
    cfg: &PlannerConfig,
) -> Extent {
    let budget = history.record_miss(pgno, cfg);
    if file_size <= cfg.whole_file_threshold || budget >= file_size.saturating_mul(3) / 4 {
        return Extent { file: loc.file, range: 0..file_size, whole_file: true };
    }
    let start = loc.offset;
    let mut end = loc.end();
    // Walk later pages of the same file, in file order, while they are uncached and within budget.
    const MAX_WALK: usize = 1 << 16;
    for (next_pgno, next) in index.iter_from(pgno.saturating_add(1)).take(MAX_WALK) {
        if next.file != loc.file || next.offset < end {
            continue;
        }
        if next.end() - start > budget || is_cached(next.file, next.offset) {
            break;
        }
        end = next.end();
        history.last_covered = next_pgno;
    }
    Extent { file: loc.file, range: start..end.min(file_size.max(end)), whole_file: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: u64 = 4096;

    /// An index where pages 1..=n live back to back in file 0, each frame `PS` bytes.
    fn contiguous(n: u32) -> PageIndex {
        let mut i = PageIndex::new();
        for p in 1..=n {
            i.insert(p, PageLoc { file: 0, size: PS as u32, offset: 100 + (p as u64 - 1) * PS });
        }
        i
    }

    fn cfg() -> PlannerConfig {
        PlannerConfig {
            min_request: PS,
            initial_readahead: 4 * PS,
            max_readahead: 32 * PS,
            whole_file_threshold: 8 * PS,
            sequential_stride: 8,
        }
    }

    fn frames(e: &Extent) -> u64 {
        (e.range.end - e.range.start) / PS
    }

    #[test]
    fn small_files_are_fetched_whole() {
        let i = contiguous(4);
        let mut h = AccessHistory::default();
        let e = plan_read(2, i.get(2).unwrap(), 4 * PS + 200, &i, |_, _| false, &mut h, &cfg());
        assert!(e.whole_file);
        assert_eq!(e.range, 0..4 * PS + 200);
    }

    #[test]
    fn random_access_fetches_only_the_frame() {
        let i = contiguous(1000);
        let mut h = AccessHistory::default();
        let size = 1000 * PS + 5000;
        for p in [500, 20, 900, 300] {
            let e = plan_read(p, i.get(p).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
            assert_eq!(frames(&e), 1, "page {p}");
            assert_eq!(e.range.start, i.get(p).unwrap().offset);
        }
    }

    #[test]
    fn sequential_scans_grow_geometrically_to_the_cap() {
        let i = contiguous(10_000);
        let size = 10_000 * PS + 5000;
        let mut h = AccessHistory::default();
        let mut p = 100;
        let mut sizes = vec![];
        for _ in 0..7 {
            let e = plan_read(p, i.get(p).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
            sizes.push(frames(&e));
            p += frames(&e) as u32; // the next miss is right after what we fetched
        }
        assert_eq!(sizes, [1, 4, 8, 16, 32, 32, 32]);
    }

    #[test]
    fn leaves_close_together_count_as_sequential() {
        let i = contiguous(10_000);
        let size = 10_000 * PS + 5000;
        let mut h = AccessHistory::default();
        plan_read(100, i.get(100).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
        let e = plan_read(105, i.get(105).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
        assert_eq!(frames(&e), 4);
    }

    #[test]
    fn never_extends_over_cached_frames() {
        let i = contiguous(10_000);
        let size = 10_000 * PS + 5000;
        let mut h = AccessHistory::default();
        plan_read(100, i.get(100).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
        let cached_at = i.get(103).unwrap().offset;
        let e = plan_read(101, i.get(101).unwrap(), size, &i, |_, off| off == cached_at, &mut h, &cfg());
        assert_eq!(frames(&e), 2, "pages 101 and 102 only");
    }

    #[test]
    fn skips_pages_of_other_files_and_superseded_frames() {
        let mut i = contiguous(100);
        // Page 51 now lives in a newer file; its old frame in file 0 is still inside the range.
        i.insert(51, PageLoc { file: 1, size: 50, offset: 100 });
        let size = 100 * PS + 5000;
        let mut h = AccessHistory::default();
        plan_read(49, i.get(49).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
        let e = plan_read(50, i.get(50).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
        assert_eq!(e.file, 0);
        assert_eq!(frames(&e), 4, "pages 50..=53 of file 0, spanning the stale frame of 51");
    }

    #[test]
    fn most_of_the_file_needed_means_the_whole_file() {
        let i = contiguous(20);
        let size = 20 * PS + 500;
        let mut h = AccessHistory { last_miss: 0, last_covered: 0, sequential_misses: 5, readahead: 32 * PS };
        let e = plan_read(1, i.get(1).unwrap(), size, &i, |_, _| false, &mut h, &cfg());
        assert!(e.whole_file);
    }
}
