//! Page reads: cache, persistent extents, the read planner, single-flight fetches and frame
//! decoding.

use crate::error::{Error, Result};
use crate::file_table::LtxFile;
use crate::ltx::{self, Header, PageIndexEntry};
use crate::page_index::PageLoc;
use crate::read_planner::{AccessHistory, Extent, plan_read};
use crate::storage::RangeRequest;
use bytes::Bytes;
use std::sync::Arc;

use super::{Inflight, Replica, View};

impl Replica {
    /// The decoded bytes of page `pgno` as `view` sees it.
    pub fn read_page(&self, view: &View, pgno: u32, history: &mut AccessHistory) -> Result<Bytes> {
        let loc = view.index.get(pgno).ok_or_else(|| Error::corrupt(format!("page not found: {pgno}")))?;
        if let Some(page) = self.cache.get(loc.file, loc.offset) {
            self.read_ahead(view, pgno, history);
            return Ok(page);
        }
        if let Some(page) = self.wait_ahead(loc) {
            self.read_ahead(view, pgno, history);
            return Ok(page);
        }
        let file = self.files.get(loc.file).ok_or_else(gone)?;
        if let Some(store) = &self.extents {
            if let Some(frame) = store.get(&file.info.key, loc.offset..loc.end()) {
                match self.decode_frames(&file, loc.offset, &frame, loc, view) {
                    Ok(Some(page)) => return Ok(page),
                    // Stored bytes that fail a check are never served: drop the file, refetch.
                    _ => store.discard(&file.info.key),
                }
            }
        }
        let extents = plan_read(
            pgno,
            loc,
            view.page_size,
            &view.index,
            |f| self.files.get(f).map_or(0, |x| x.info.size),
            |f, o| self.is_busy(f, o),
            history,
            &self.opts.planner,
        );
        // A scan's next chunks go out before this window is awaited, so they overlap it.
        self.read_ahead(view, pgno, history);
        self.fetch_extents_once(&extents, view, loc)
    }

    /// Fetch the planned extents, or wait for a concurrent fetch of the same wanted extent,
    /// then return the wanted page.
    pub(super) fn fetch_extents_once(&self, extents: &[Extent], view: &View, want: PageLoc) -> Result<Bytes> {
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
            // The guard publishes an outcome and clears the entry even if the fetch panics,
            // so that no follower waits forever.
            let guard = LeaderGuard { map: &self.inflight, key, flight: &flight };
            let result = self.fetch_extents(extents, view, want);
            guard.finish(result.as_ref().map(|_| ()).map_err(Clone::clone));
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
    pub(super) fn fetch_extents(&self, extents: &[Extent], view: &View, want: PageLoc) -> Result<Bytes> {
        let result = self.fetch_extents_from(extents, view, want);
        match &result {
            Err(e) if e.kind == crate::error::ErrorKind::Corrupt => {
                // Bad bytes, from the network or the extent store: drop what the store holds
                // of these files and fetch once more from the replica itself (a byte flipped
                // in transit is then read right; a file corrupt at rest fails again).
                if let Some(store) = &self.extents {
                    for f in extents.iter().filter_map(|e| self.files.get(e.file)) {
                        store.discard(&f.info.key);
                    }
                }
                tracing::warn!(error = %e, "corrupt bytes read, fetching once more");
                self.fetch_extents_from(extents, view, want)
            }
            _ => result,
        }
    }

    fn fetch_extents_from(&self, extents: &[Extent], view: &View, want: PageLoc) -> Result<Bytes> {
        let mut files = Vec::with_capacity(extents.len());
        for e in extents {
            files.push(self.files.get(e.file).ok_or_else(gone)?);
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
    pub(super) fn decode_whole(
        &self,
        file: &LtxFile,
        bytes: &[u8],
        want: PageLoc,
        page_size: u32,
    ) -> Result<Option<Bytes>> {
        let want_offset = (file.id == want.file).then_some(want.offset);
        let (header, _, wanted) = self.cache_whole(file, bytes, want_offset)?;
        if header.page_size != page_size {
            return Err(Error::corrupt("page size differs from the database's").context(&file.info.key));
        }
        Ok(wanted)
    }

    /// Decode a whole file (every check, file checksum included) and cache all its pages;
    /// return its header, its page index and the page at `want_offset`.
    pub(super) fn cache_whole(
        &self,
        file: &LtxFile,
        bytes: &[u8],
        want_offset: Option<u64>,
    ) -> Result<(Header, Vec<PageIndexEntry>, Option<Bytes>)> {
        let decoded = ltx::decode_file(bytes).map_err(|e| e.context(&file.info.key))?;
        if let Some(store) = &self.extents {
            store.put_verified_file(&file.info.key, bytes);
        }
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

    /// Write bytes that passed their checks to the extent store (never before).
    pub(super) fn persist(&self, file: &LtxFile, start: u64, bytes: &[u8]) {
        if let Some(store) = &self.extents {
            store.put(&file.info.key, file.info.size, start, bytes);
        }
    }

    /// Decode the frames in `bytes` (which start at file offset `start`) that `view` reads
    /// from this file into the cache (frames of superseded pages are skipped); return the
    /// frame at `want`.
    ///
    /// Every decoded frame is checked against its page index entry: its page number must map,
    /// in `view`, to this very file, offset and frame size (so a flipped pgno, flag or size
    /// field is caught), and it must decompress to exactly one page. Only frames that passed
    /// are cached and written to the extent store.
    pub(super) fn decode_frames(
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
        let mut verified = VerifiedRuns::default();
        while let Some(head) = bytes.get(pos..pos + ltx::PAGE_HEADER_SIZE + 4) {
            let offset = start + pos as u64;
            let pgno = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let flags = u16::from_be_bytes([head[4], head[5]]);
            if pgno == 0 {
                break;
            }
            let is_want = file.id == want.file && offset == want.offset;
            let frame_len = if flags == 1 {
                ltx::PAGE_HEADER_SIZE + 4 + u32::from_be_bytes([head[6], head[7], head[8], head[9]]) as usize
            } else if is_want {
                // Legacy LZ4-frame pages carry no length; the index knows it.
                want.size as usize
            } else {
                break;
            };
            let Some(frame) = bytes.get(pos..pos + frame_len) else { break };
            let entry = view.index.get(pgno);
            let current = entry.is_some_and(|l| l.file == file.id && l.offset == offset);
            if !is_want && !current {
                pos += frame_len;
                if flags != 1 {
                    break;
                }
                continue;
            }
            let page = Self::decode_checked(frame, pgno, offset, page_size, entry, is_want.then_some(want))
                .map_err(|e| e.context(&file.info.key))?;
            verified.add(offset, frame_len as u64);
            if is_want {
                wanted = Some(page.clone());
            }
            self.cache.insert(file.id, offset, page);
            pos += frame_len;
            if flags != 1 {
                break;
            }
        }
        for (run_start, run_end) in verified.runs() {
            let (a, b) = ((run_start - start) as usize, (run_end - start) as usize);
            if let Some(run) = bytes.get(a..b) {
                self.persist(file, run_start, run);
            }
        }
        Ok(wanted)
    }

    /// Decode one frame at file offset `offset` and check it against the page index:
    /// `entry` (the view's entry for the frame's pgno) must name this offset with this frame
    /// size, and when the frame is the one asked for, `want` must be that entry.
    fn decode_checked(
        frame: &[u8],
        pgno: u32,
        offset: u64,
        page_size: u32,
        entry: Option<PageLoc>,
        want: Option<PageLoc>,
    ) -> Result<Bytes> {
        let mut page = vec![0u8; page_size as usize];
        let decoded = ltx::decode_frame(frame, &mut page)?;
        check_frame_against_index(decoded, pgno, offset, entry, want)?;
        Ok(Bytes::from(page))
    }
}

type InflightMap = parking_lot::Mutex<std::collections::HashMap<(crate::file_table::FileId, u64), Arc<Inflight>>>;

/// Held by the leader of a single-flight fetch. [`LeaderGuard::finish`] publishes the outcome;
/// dropping the guard without it (a panic unwinding through the fetch) publishes an error. Either
/// way the entry leaves the map and every follower wakes.
pub(super) struct LeaderGuard<'a> {
    pub(super) map: &'a InflightMap,
    pub(super) key: (crate::file_table::FileId, u64),
    pub(super) flight: &'a Inflight,
}

impl LeaderGuard<'_> {
    pub(super) fn finish(self, outcome: Result<()>) {
        *self.flight.done.lock() = Some(outcome);
        // Drop wakes the followers and clears the entry.
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        {
            let mut done = self.flight.done.lock();
            if done.is_none() {
                *done = Some(Err(Error::internal("the fetch of this extent panicked")));
            }
        }
        self.flight.cv.notify_all();
        self.map.lock().remove(&self.key);
    }
}

/// A view names a file the table forgot (deleted from the replica): `NotFound` makes the
/// connection re-plan.
fn gone() -> Error {
    Error::not_found("ltx file no longer in the replica")
}

/// The checks of a decoded frame against its page index entry (pure, so unit-tested alone).
pub(crate) fn check_frame_against_index(
    decoded: ltx::DecodedFrame,
    pgno: u32,
    offset: u64,
    entry: Option<PageLoc>,
    want: Option<PageLoc>,
) -> Result<()> {
    if decoded.pgno != pgno {
        return Err(Error::corrupt("page frame changed under decode"));
    }
    let Some(entry) = entry else {
        return Err(Error::corrupt(format!("frame at offset {offset} holds page {pgno}, which the page index lacks")));
    };
    if entry.offset != offset || want.is_some_and(|w| w != entry) {
        return Err(Error::corrupt(format!(
            "frame at offset {offset} holds page {pgno}, which the page index places at offset {}",
            entry.offset
        )));
    }
    if entry.size as usize != decoded.frame_len {
        return Err(Error::corrupt(format!(
            "page {pgno}: frame is {} bytes, the page index says {}",
            decoded.frame_len, entry.size
        )));
    }
    Ok(())
}

/// Contiguous byte runs of frames that passed every check, merged as they are added in order.
#[derive(Default)]
struct VerifiedRuns(Vec<(u64, u64)>);

impl VerifiedRuns {
    fn add(&mut self, offset: u64, len: u64) {
        match self.0.last_mut() {
            Some((_, end)) if *end == offset => *end += len,
            _ => self.0.push((offset, offset + len)),
        }
    }

    fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pgno: u32, len: usize) -> ltx::DecodedFrame {
        ltx::DecodedFrame { pgno, flags: 1, frame_len: len }
    }

    #[test]
    fn frame_must_match_its_index_entry() {
        let loc = PageLoc { file: 3, size: 40, offset: 100 };
        assert!(check_frame_against_index(frame(7, 40), 7, 100, Some(loc), Some(loc)).is_ok());
        assert!(check_frame_against_index(frame(7, 40), 7, 100, Some(loc), None).is_ok());
        // Size disagrees with the index.
        let e = check_frame_against_index(frame(7, 41), 7, 100, Some(loc), Some(loc)).unwrap_err();
        assert!(e.message.contains("the page index says 40"), "{e}");
        // A flipped pgno: the index places that page elsewhere, or nowhere.
        let other = PageLoc { file: 3, size: 40, offset: 900 };
        assert!(check_frame_against_index(frame(8, 40), 8, 100, Some(other), Some(loc)).is_err());
        assert!(check_frame_against_index(frame(8, 40), 8, 100, None, Some(loc)).is_err());
        // The wanted frame decoded as some other page's current frame is still wrong.
        let same_offset_other_file = PageLoc { file: 4, size: 40, offset: 100 };
        assert!(check_frame_against_index(frame(8, 40), 8, 100, Some(same_offset_other_file), Some(loc)).is_err());
        assert!(check_frame_against_index(frame(8, 40), 7, 100, Some(loc), Some(loc)).is_err());
    }

    #[test]
    fn a_panicking_leader_wakes_its_followers() {
        let map: InflightMap = Default::default();
        let key = (1, 100);
        let flight = Arc::new(Inflight::default());
        map.lock().insert(key, flight.clone());
        let follower = {
            let flight = flight.clone();
            std::thread::spawn(move || {
                let mut done = flight.done.lock();
                while done.is_none() {
                    flight.cv.wait(&mut done);
                }
                done.clone()
            })
        };
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = LeaderGuard { map: &map, key, flight: &flight };
            panic!("fetch blew up");
        }));
        assert!(panicked.is_err());
        let outcome = follower.join().unwrap();
        assert!(matches!(outcome, Some(Err(_))), "follower woke with an error");
        assert!(map.lock().is_empty(), "entry cleared");

        // The normal path publishes the outcome and clears the entry too.
        let flight = Arc::new(Inflight::default());
        map.lock().insert(key, flight.clone());
        LeaderGuard { map: &map, key, flight: &flight }.finish(Ok(()));
        assert!(matches!(*flight.done.lock(), Some(Ok(()))));
        assert!(map.lock().is_empty());
    }

    #[test]
    fn verified_runs_merge_contiguous_frames() {
        let mut r = VerifiedRuns::default();
        r.add(100, 10);
        r.add(110, 5);
        r.add(200, 1);
        assert_eq!(r.runs().collect::<Vec<_>>(), vec![(100, 115), (200, 201)]);
    }
}
