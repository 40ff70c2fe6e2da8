//! Which byte ranges of which LTX files hold the pages to write: frames are grouped per file
//! into ranges of at most `max_request` bytes, bridging gaps of up to `max_gap` bytes (cheaper
//! to read through than to ask for twice). Pure: no I/O.

use crate::file_table::FileId;
use crate::page_index::PageLoc;
use std::collections::HashMap;

/// One page frame to decode out of a fetched range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    pub pgno: u32,
    pub offset: u64,
    pub size: u32,
}

/// One ranged request and the frames it holds, in offset order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRange {
    pub file: FileId,
    pub start: u64,
    pub end: u64,
    pub frames: Vec<FrameRef>,
}

impl FetchRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Builds ranges from frames given in ascending page order (so, per file, ascending offsets:
/// frames of an LTX file are sorted by page number).
pub struct RangeBuilder {
    max_request: u64,
    max_gap: u64,
    open: HashMap<FileId, FetchRange>,
    open_bytes: u64,
}

impl RangeBuilder {
    pub fn new(max_request: u64, max_gap: u64) -> Self {
        Self { max_request: max_request.max(1), max_gap, open: HashMap::new(), open_bytes: 0 }
    }

    /// Add a frame; returns the range it closed, if any.
    pub fn push(&mut self, pgno: u32, loc: PageLoc) -> Option<FetchRange> {
        let frame = FrameRef { pgno, offset: loc.offset, size: loc.size };
        let end = loc.end();
        if let Some(r) = self.open.get_mut(&loc.file) {
            let joins = loc.offset >= r.end && loc.offset - r.end <= self.max_gap && end - r.start <= self.max_request;
            if joins {
                self.open_bytes += end - r.end;
                r.end = end;
                r.frames.push(frame);
                return None;
            }
        }
        let fresh = FetchRange { file: loc.file, start: loc.offset, end, frames: vec![frame] };
        self.open_bytes += fresh.len();
        let closed = self.open.insert(loc.file, fresh);
        if let Some(c) = &closed {
            self.open_bytes -= c.len();
        }
        closed
    }

    /// Bytes in ranges still open.
    pub fn open_bytes(&self) -> u64 {
        self.open_bytes
    }

    /// Close every open range.
    pub fn drain(&mut self) -> Vec<FetchRange> {
        self.open_bytes = 0;
        let mut out: Vec<FetchRange> = self.open.drain().map(|(_, r)| r).collect();
        out.sort_by_key(|r| (r.file, r.start));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file: FileId, offset: u64, size: u32) -> PageLoc {
        PageLoc { file, size, offset }
    }

    #[test]
    fn adjacent_frames_of_one_file_make_one_range() {
        let mut b = RangeBuilder::new(1000, 0);
        assert_eq!(b.push(1, loc(0, 100, 50)), None);
        assert_eq!(b.push(2, loc(0, 150, 50)), None);
        assert_eq!(b.open_bytes(), 100);
        let r = b.drain();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].start, r[0].end, r[0].frames.len()), (100, 200, 2));
        assert_eq!(b.open_bytes(), 0);
    }

    #[test]
    fn gaps_and_size_limits_close_ranges() {
        let mut b = RangeBuilder::new(120, 10);
        b.push(1, loc(0, 100, 50));
        // A gap of 5 bytes is bridged.
        assert_eq!(b.push(2, loc(0, 155, 50)), None);
        // Too large now: the first range closes.
        let closed = b.push(3, loc(0, 205, 50)).unwrap();
        assert_eq!((closed.start, closed.end), (100, 205));
        // A gap of 100 bytes is not bridged.
        let closed = b.push(4, loc(0, 355, 10)).unwrap();
        assert_eq!((closed.start, closed.end), (205, 255));
        assert_eq!(b.open_bytes(), 10);
    }

    #[test]
    fn files_interleaved_by_page_keep_their_own_ranges() {
        let mut b = RangeBuilder::new(1000, 0);
        b.push(1, loc(0, 100, 10));
        b.push(2, loc(1, 100, 10));
        b.push(3, loc(0, 110, 10));
        b.push(4, loc(1, 110, 10));
        let r = b.drain();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.frames.len() == 2 && r.len() == 20));
    }
}
