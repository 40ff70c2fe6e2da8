//! The page index: pgno → where that page's frame lives (file, offset, size).
//!
//! Stored as copy-on-write chunks so that a poll can build the next snapshot by cloning a
//! vector of `Arc`s and touching only the chunks that change; connections keep reading the
//! snapshot they pinned at their SHARED lock.

use crate::file_table::FileId;
use std::sync::Arc;

/// Location of one page frame inside an LTX file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLoc {
    pub file: FileId,
    /// Whole frame length (header + size + LZ4 payload).
    pub size: u32,
    pub offset: u64,
}

impl PageLoc {
    const EMPTY: PageLoc = PageLoc { file: FileId::MAX, size: 0, offset: 0 };

    fn is_empty(&self) -> bool {
        self.file == FileId::MAX
    }

    /// Offset just past this frame.
    pub fn end(&self) -> u64 {
        self.offset + self.size as u64
    }
}

const CHUNK: usize = 1024;
type Chunk = [PageLoc; CHUNK];

#[derive(Clone, Default)]
pub struct PageIndex {
    chunks: Vec<Arc<Chunk>>,
    len: usize,
}

fn split(pgno: u32) -> Option<(usize, usize)> {
    let i = (pgno as usize).checked_sub(1)?;
    Some((i / CHUNK, i % CHUNK))
}

impl PageIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of pages with an entry.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, pgno: u32) -> Option<PageLoc> {
        let (c, o) = split(pgno)?;
        let loc = self.chunks.get(c)?[o];
        (!loc.is_empty()).then_some(loc)
    }

    /// Set an entry unconditionally (plan order: later files win).
    pub fn insert(&mut self, pgno: u32, loc: PageLoc) {
        self.insert_if(pgno, loc, |_| true);
    }

    /// Set an entry if `keep_new(old)` says so (or if there is none).
    pub fn insert_if(&mut self, pgno: u32, loc: PageLoc, keep_new: impl FnOnce(PageLoc) -> bool) {
        let Some((c, o)) = split(pgno) else { return };
        if self.chunks.len() <= c {
            self.chunks.resize_with(c + 1, || Arc::new([PageLoc::EMPTY; CHUNK]));
        }
        let old = self.chunks[c][o];
        if !old.is_empty() && !keep_new(old) {
            return;
        }
        if old.is_empty() {
            self.len += 1;
        }
        Arc::make_mut(&mut self.chunks[c])[o] = loc;
    }

    /// Drop every entry above `commit` (a shrink: VACUUM, auto-vacuum).
    pub fn truncate(&mut self, commit: u32) {
        let keep_chunks = (commit as usize).div_ceil(CHUNK);
        for chunk in self.chunks.drain(keep_chunks.min(self.chunks.len())..) {
            self.len -= chunk.iter().filter(|l| !l.is_empty()).count();
        }
        if let Some(last) = self.chunks.last_mut() {
            let from = commit as usize % CHUNK;
            if from != 0 && last[from..].iter().any(|l| !l.is_empty()) {
                let chunk = Arc::make_mut(last);
                for l in &mut chunk[from..] {
                    if !l.is_empty() {
                        *l = PageLoc::EMPTY;
                        self.len -= 1;
                    }
                }
            }
        }
    }

    /// Entries with pgno ≥ `from`, ascending.
    pub fn iter_from(&self, from: u32) -> impl Iterator<Item = (u32, PageLoc)> + '_ {
        let start = (from.max(1) - 1) as usize;
        self.chunks
            .iter()
            .enumerate()
            .skip(start / CHUNK)
            .flat_map(|(c, chunk)| chunk.iter().enumerate().map(move |(o, l)| ((c * CHUNK + o + 1) as u32, *l)))
            .filter(move |(p, l)| *p as usize > start && !l.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file: FileId, offset: u64) -> PageLoc {
        PageLoc { file, size: 10, offset }
    }

    #[test]
    fn insert_get_and_overwrite() {
        let mut i = PageIndex::new();
        assert_eq!(i.get(0), None);
        assert_eq!(i.get(1), None);
        i.insert(1, loc(0, 100));
        i.insert(2000, loc(0, 200));
        i.insert(1, loc(1, 300));
        assert_eq!(i.get(1), Some(loc(1, 300)));
        assert_eq!(i.get(2000), Some(loc(0, 200)));
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn conditional_insert_keeps_newer_entries() {
        let mut i = PageIndex::new();
        i.insert(5, loc(7, 1));
        i.insert_if(5, loc(3, 2), |old| old.file <= 3);
        assert_eq!(i.get(5), Some(loc(7, 1)));
        i.insert_if(5, loc(9, 2), |old| old.file <= 9);
        assert_eq!(i.get(5), Some(loc(9, 2)));
    }

    #[test]
    fn truncate_drops_only_pages_above_commit() {
        let mut i = PageIndex::new();
        for p in 1..=3000 {
            i.insert(p, loc(0, p as u64));
        }
        i.truncate(1500);
        assert_eq!(i.len(), 1500);
        assert!(i.get(1500).is_some());
        assert!(i.get(1501).is_none());
        assert!(i.get(2999).is_none());
        i.truncate(1024);
        assert_eq!(i.len(), 1024);
        i.insert(3000, loc(0, 1));
        assert_eq!(i.len(), 1025);
    }

    #[test]
    fn clones_are_isolated_snapshots() {
        let mut a = PageIndex::new();
        a.insert(1, loc(0, 1));
        let b = a.clone();
        a.insert(1, loc(1, 2));
        a.truncate(0);
        assert_eq!(b.get(1), Some(loc(0, 1)));
        assert_eq!(a.get(1), None);
    }

    #[test]
    fn iter_from_walks_ascending() {
        let mut i = PageIndex::new();
        for p in [3, 1024, 1025, 5000] {
            i.insert(p, loc(0, p as u64));
        }
        let got: Vec<u32> = i.iter_from(4).map(|(p, _)| p).collect();
        assert_eq!(got, [1024, 1025, 5000]);
        let all: Vec<u32> = i.iter_from(0).map(|(p, _)| p).collect();
        assert_eq!(all, [3, 1024, 1025, 5000]);
    }
}
