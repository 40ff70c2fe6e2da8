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
    pub(super) fn fetch_extents(&self, extents: &[Extent], view: &View, want: PageLoc) -> Result<Bytes> {
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
}
