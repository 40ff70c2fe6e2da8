//! Fetching: ranges (extent store, then storage), file headers and page indexes in one
//! concurrent round, and building a view from a restore plan.

use crate::error::{Error, Result};
use crate::file_table::{FileId, LtxFile};
use crate::ltx::{self, Header, PageIndexEntry};
use crate::page_index::{PageIndex, PageLoc};
use crate::plan::LtxFileInfo;
use crate::storage::RangeRequest;
use crate::time::TimeTarget;
use bytes::Bytes;
use std::sync::Arc;

use super::{FileMeta, Replica, View};

impl Replica {
    /// Fetch ranges: from the extent store where it has them, else from the storage (whose
    /// layers retry transient failures and count requests, `crate::retrying_storage`).
    pub(super) fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let mut results: Vec<Option<Result<Bytes>>> = match &self.extents {
            Some(store) => requests.iter().map(|r| store.get(&r.key, r.range.clone()).map(Ok)).collect(),
            None => (0..requests.len()).map(|_| None).collect(),
        };
        let pending: Vec<usize> = (0..requests.len()).filter(|&i| results[i].is_none()).collect();
        if !pending.is_empty() {
            let batch: Vec<RangeRequest> = pending.iter().map(|&i| requests[i].clone()).collect();
            // Not persisted here: callers write bytes to the extent store once they pass their
            // checks (`Replica::persist`).
            for (i, r) in pending.into_iter().zip(self.storage.get_ranges(&batch)) {
                results[i] = Some(r);
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::internal("fetch not attempted")))).collect()
    }

    pub(super) fn request(file: &LtxFile, range: std::ops::Range<u64>) -> RangeRequest {
        RangeRequest { key: file.info.key.clone(), range }
    }

    /// Headers (where asked) and page indexes of several files, fetched concurrently: small
    /// files whole (checksum verified, pages cached), large ones by their tail, and where the
    /// header is asked for, the header and the head of the page area in one request.
    pub(super) fn fetch_metas(&self, files: &[(Arc<LtxFile>, bool)]) -> Result<Vec<FileMeta>> {
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
                        Some(index) => {
                            self.persist(f, start, &tail);
                            metas[i] = Some(FileMeta { header: None, index, head: None })
                        }
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
                    // The header passed; the page-area head is persisted frame by frame once
                    // its frames are checked (`cache_heads`).
                    self.persist(f, 0, bytes.get(..ltx::HEADER_SIZE).unwrap_or_default());
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
                self.persist(f, range.start, &tail);
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

    pub(super) fn loc(file: FileId, e: &PageIndexEntry) -> Option<PageLoc> {
        Some(PageLoc { file, size: u32::try_from(e.size).ok()?, offset: e.offset })
    }

    /// Build a view from a plan: fetch every file's index concurrently, apply in order.
    pub(super) fn build_view(&self, plan: &[LtxFileInfo], target: Option<TimeTarget>) -> Result<View> {
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
        let metas = match self.fetch_metas(&files) {
            Err(e) if e.kind == crate::error::ErrorKind::Corrupt => {
                // Bad bytes, in transit or on local disk: drop what the extent store holds of
                // these files and fetch them once more from the replica itself.
                if let Some(store) = &self.extents {
                    for (f, _) in &files {
                        store.discard(&f.info.key);
                    }
                }
                tracing::warn!(error = %e, "corrupt bytes read, fetching once more");
                self.fetch_metas(&files)?
            }
            r => r?,
        };
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
        let max_l1 = plan
            .iter()
            .filter(|f| f.level == self.poll_upper_level())
            .map(|f| f.max_txid)
            .max()
            .unwrap_or(last.max_txid);
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
    pub(super) fn cache_heads(&self, files: &[(Arc<LtxFile>, bool)], metas: &[FileMeta], view: &View) {
        let nothing = PageLoc { file: FileId::MAX, size: 0, offset: 0 };
        for ((file, _), meta) in files.iter().zip(metas) {
            if let Some(head) = &meta.head {
                if let Err(e) = self.decode_frames(file, ltx::HEADER_SIZE as u64, head, nothing, view) {
                    tracing::debug!(error = %e, "head of {} not cached", file.info.key);
                }
            }
        }
    }
}
