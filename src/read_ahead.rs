//! Pipelined read-ahead (issue 12): once the read planner has seen a scan, the pages ahead of
//! the reader are kept in flight while SQLite consumes the ones it has, so the link never sits
//! idle between windows.
//!
//! Pure. A [`Stream`] starts when [`crate::read_planner::plan_read`] returns a window. From then
//! on every read inside the stream (a cache hit as well as a miss) may top it up: the pages
//! from the stream's frontier up to `ahead` bytes past the reader are cut into *chunks* of at
//! most `ahead_request` decoded bytes, each one concurrent background request per LTX file
//! holding pages of it. `ahead` doubles with every top-up, up to the window cap
//! (`max_readahead`, a quarter of the cache), so the bytes in flight or fetched and not yet
//! read stay within a quarter of the cache, and with the foreground window within the cache's
//! probationary half. Frames cached or already in flight are never requested again.

use crate::file_table::FileId;
use crate::page_index::PageIndex;
use crate::read_planner::{Extent, PlannerConfig};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

/// The pages ahead of one connection's scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// First page not yet issued; 0 = no stream.
    next: u32,
    /// Highest page the reader reached inside the stream.
    pos: u32,
    /// How far ahead of the reader pages are kept in flight (decoded bytes).
    ahead: u64,
}

impl Stream {
    pub fn is_active(&self) -> bool {
        self.next != 0
    }

    /// A window up to page `covered` was planned for a miss on `pgno`: the stream goes on
    /// after it, at first one more window ahead of it (twice `window` past the reader).
    pub fn start(&mut self, pgno: u32, covered: u32, window: u64) {
        if !self.is_active() {
            self.pos = pgno;
        }
        self.next = self.next.max(covered.saturating_add(1));
        self.pos = self.pos.max(pgno);
        self.ahead = self.ahead.max(window.saturating_mul(2));
    }

    /// An isolated miss: the scan is over.
    pub fn stop(&mut self) {
        *self = Self::default();
    }

    /// First page not yet issued (0 = none).
    pub fn frontier(&self) -> u32 {
        self.next
    }
}

/// The chunks to issue now that the reader is at `pgno`: each inner vector is one background
/// batch (one extent per file), at most `slots` of them. `is_busy` says whether a frame is
/// cached or in flight. Returns nothing when `pgno` lies outside the stream (a hit elsewhere
/// does not move it).
#[allow(clippy::too_many_arguments)]
pub fn plan_ahead(
    pgno: u32,
    page_size: u32,
    index: &PageIndex,
    file_size: impl Fn(FileId) -> u64,
    is_busy: impl Fn(FileId, u64) -> bool,
    stream: &mut Stream,
    slots: usize,
    cfg: &PlannerConfig,
) -> Vec<Vec<Extent>> {
    let stride = cfg.sequential_stride.max(1);
    if !stream.is_active() || pgno < stream.pos.saturating_sub(stride) || pgno > stream.next.saturating_add(stride) {
        return Vec::new();
    }
    stream.pos = stream.pos.max(pgno);
    let page = u64::from(page_size.max(512));
    let ahead_pages = (stream.ahead.min(cfg.max_readahead.max(page)) / page).max(1);
    let target = u64::from(stream.pos).saturating_add(ahead_pages).min(u64::from(u32::MAX - 1)) as u32;
    if stream.next > target {
        return Vec::new();
    }
    // Whole chunks only (a reader one page further must not cost a one-page request), and
    // no more than `slots` of them at once.
    let chunk_pages = ((cfg.ahead_request.max(page) / page) as u32).min((ahead_pages / 2) as u32).max(1);
    let mut whole_taken: HashSet<FileId> = HashSet::new();
    let mut out = Vec::new();
    while u64::from(stream.next) + u64::from(chunk_pages) - 1 <= u64::from(target) && out.len() < slots {
        let first = stream.next;
        let last = first.saturating_add(chunk_pages - 1);
        let mut spans: BTreeMap<FileId, Range<u64>> = BTreeMap::new();
        if index.iter_from(first).next().is_none() {
            // Past the last page: nothing more to stream.
            stream.next = u32::MAX;
            break;
        }
        for (p, l) in index.iter_from(first) {
            if p > last {
                break;
            }
            if is_busy(l.file, l.offset) {
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
        stream.next = last.saturating_add(1);
        let mut batch = Vec::with_capacity(spans.len());
        for (file, range) in spans {
            let size = file_size(file);
            if size <= cfg.whole_file_threshold {
                if whole_taken.insert(file) {
                    batch.push(Extent { file, range: 0..size, whole_file: true });
                }
            } else {
                batch.push(Extent { file, range, whole_file: false });
            }
        }
        if !batch.is_empty() {
            out.push(batch);
        }
    }
    if !out.is_empty() {
        stream.ahead = (stream.ahead * 2).min(cfg.max_readahead.max(page));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_index::PageLoc;
    use crate::read_planner::tests::{PS, cfg, contiguous};

    const BIG: u64 = 1 << 40;

    fn pages(batch: &[Extent]) -> u64 {
        batch.iter().map(|e| (e.range.end - e.range.start) / PS).sum()
    }

    #[test]
    fn nothing_is_issued_before_a_scan_is_seen() {
        let i = contiguous(1000);
        let mut s = Stream::default();
        assert!(plan_ahead(10, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg()).is_empty());
        assert!(!s.is_active());
    }

    #[test]
    fn the_next_window_is_in_flight_while_the_current_one_is_read() {
        let i = contiguous(1000);
        let mut s = Stream::default();
        // The planner fetched pages 100..=103 for a miss on 100 (a 4-page window).
        s.start(100, 103, 4 * PS);
        let c = plan_ahead(100, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0][0].range, i.get(104).unwrap().offset..i.get(107).unwrap().end(), "the next window, 104..=107");
        assert_eq!(s.frontier(), 108);
        // One page further is no reason for a one-page request.
        assert!(
            plan_ahead(101, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg()).iter().all(|b| pages(b) >= 4)
        );
        // Reading on through the window (cache hits) keeps the pages ahead in flight, farther each time.
        let mut issued = vec![];
        for p in 101..=140 {
            for b in plan_ahead(p, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg()) {
                issued.push(pages(&b));
            }
            assert!(u64::from(s.frontier()) <= u64::from(p) + 1 + 32, "never more than the cap ahead of the reader");
        }
        assert!(s.frontier() > 140 + 16, "the stream runs well ahead of the reader: {}", s.frontier());
        assert!(issued.iter().all(|&n| n <= 8), "chunks are at most ahead_request: {issued:?}");
        assert!(issued.len() >= 4, "several concurrent requests: {issued:?}");
    }

    #[test]
    fn chunks_cover_every_page_once() {
        let i = contiguous(2000);
        let mut s = Stream::default();
        s.start(1, 4, 4 * PS);
        let mut covered: Vec<u64> = vec![];
        for p in 1..=1500 {
            for b in plan_ahead(p, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg()) {
                for e in b {
                    let mut o = e.range.start;
                    while o < e.range.end {
                        covered.push(o);
                        o += PS;
                    }
                }
            }
        }
        let last = (covered.last().unwrap() - 100) / PS + 1;
        let expect: Vec<u64> = (5..=last).map(|p| 100 + (p - 1) * PS).collect();
        assert!(covered == expect, "pages 5.. issued in order, each once");
        assert!((1500 + 32 - 16..=1500 + 32).contains(&last), "a whole chunk within the cap past the reader: {last}");
    }

    #[test]
    fn the_distance_grows_geometrically_to_the_cap() {
        let i = contiguous(10_000);
        let mut s = Stream::default();
        s.start(1, 4, 4 * PS);
        let mut distance = vec![];
        for p in 1..=200 {
            let before = s.ahead;
            plan_ahead(p, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg());
            if s.ahead != before {
                distance.push(s.ahead / PS);
            }
        }
        assert_eq!(distance, [16, 32], "from twice the first window");
    }

    #[test]
    fn cached_and_in_flight_frames_are_skipped() {
        let i = contiguous(1000);
        let busy: Vec<u64> = (110..=115).map(|p| i.get(p).unwrap().offset).collect();
        let mut s = Stream::default();
        s.start(100, 103, 32 * PS);
        let c = plan_ahead(100, PS as u32, &i, |_| BIG, |_, o| busy.contains(&o), &mut s, 64, &cfg());
        let all: Vec<&Extent> = c.iter().flatten().collect();
        assert!(all.iter().all(|e| !busy.iter().any(|o| e.range.contains(o))), "{all:?}");
    }

    #[test]
    fn a_read_elsewhere_does_not_move_the_stream() {
        let i = contiguous(1000);
        let mut s = Stream::default();
        s.start(100, 103, 4 * PS);
        plan_ahead(100, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg());
        let before = s.clone();
        assert!(plan_ahead(900, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg()).is_empty());
        assert!(plan_ahead(2, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg()).is_empty());
        assert_eq!(s, before);
    }

    #[test]
    fn the_stream_ends_at_the_last_page() {
        let i = contiguous(50);
        let mut s = Stream::default();
        s.start(40, 43, 32 * PS);
        let c = plan_ahead(40, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg());
        assert_eq!(c.iter().map(|b| pages(b)).sum::<u64>(), 7, "pages 44..=50");
        assert!(plan_ahead(45, PS as u32, &i, |_| BIG, |_, _| false, &mut s, 64, &cfg()).is_empty());
    }

    #[test]
    fn a_chunk_spanning_files_is_one_request_per_file_and_small_files_once_whole() {
        let mut i = contiguous(1000);
        for p in [106, 109, 113] {
            i.insert(p, PageLoc { file: 1, size: 300, offset: 100 + p as u64 });
        }
        let sizes = |f: FileId| if f == 0 { BIG } else { 2 * PS };
        let mut s = Stream::default();
        s.start(100, 103, 32 * PS);
        let c = plan_ahead(100, PS as u32, &i, sizes, |_, _| false, &mut s, 64, &cfg());
        assert_eq!(c[0].len(), 2, "pages 104..=111: the snapshot and file 1");
        assert_eq!(c[0][1], Extent { file: 1, range: 0..2 * PS, whole_file: true });
        assert!(c[1..].iter().flatten().all(|e| e.file == 0), "file 1 is taken whole once");
    }
}
