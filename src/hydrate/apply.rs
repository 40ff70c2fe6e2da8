//! Writing pages of a view into the hydration file: ranged fetches (several in flight per
//! round), frames decoded straight to their page offsets, the rolling checksum kept as it goes.
//! Memory is bounded by two rounds of [`Budget::round_bytes`] whatever the database size.

use crate::error::{Error, Result};
use crate::hydrate::file::HydrationFile;
use crate::hydrate::ranges::{FetchRange, RangeBuilder};
use crate::ltx::{self, RollingChecksum};
use crate::page_index::PageLoc;
use crate::replica::Replica;
use crate::storage::RangeRequest;
use std::sync::atomic::{AtomicBool, Ordering};

/// How much is fetched at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Largest single ranged request.
    pub max_request: u64,
    /// Gap between two wanted frames of a file read through rather than split.
    pub max_gap: u64,
    /// Bytes fetched per round (all requests of the round are in flight together).
    pub round_bytes: u64,
    /// Requests per round.
    pub in_flight: usize,
}

impl Budget {
    /// A budget that fits in the page cache's size: memory of the hydration stays within
    /// what the user already granted to the cache.
    pub fn for_cache(cache_size: u64) -> Self {
        // Two rounds are in memory at once (one fetching, one being written): half the cache each.
        let round_bytes = (cache_size / 2).clamp(1 << 20, 32 << 20);
        let in_flight = 8;
        Self { max_request: (round_bytes / in_flight as u64).max(128 << 10), max_gap: 64 << 10, round_bytes, in_flight }
    }
}

/// Where pages go and what the file held before (for the checksum of an in-place update).
pub struct PageWriter<'a> {
    pub replica: &'a Replica,
    pub file: &'a dyn HydrationFile,
    pub page_size: u32,
    /// Pages `1..=old_commit` held data before: their old contents leave the checksum.
    pub old_commit: u32,
    pub checksum: RollingChecksum,
    pub stop: &'a AtomicBool,
}

impl PageWriter<'_> {
    /// Write `pages` (ascending page numbers, with where the view reads them). `progress`
    /// gets (pages, bytes) after every round; `before_first_write` runs once, before any byte
    /// of the file changes (it marks the `.meta` dirty). The next round is fetched while the
    /// previous one is decoded and written (two rounds in memory at most).
    pub fn write(
        &mut self,
        pages: impl Iterator<Item = (u32, PageLoc)>,
        budget: Budget,
        before_first_write: &mut dyn FnMut() -> Result<()>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let replica = self.replica;
        std::thread::scope(|scope| {
            type Fetched<'s> = std::thread::ScopedJoinHandle<'s, Vec<Result<bytes::Bytes>>>;
            let mut inflight: Option<(Vec<FetchRange>, Vec<RangeRequest>, Fetched<'_>)> = None;
            let mut first = true;
            // Start fetching `round`; apply the round fetched before it.
            let mut submit = |this: &mut Self, round: Vec<FetchRange>| -> Result<()> {
                if this.stop.load(Ordering::Relaxed) {
                    return Err(Error::internal("hydration stopped"));
                }
                let next = if round.is_empty() {
                    None
                } else {
                    let reqs = this.requests(&round)?;
                    let batch = reqs.clone();
                    Some((round, reqs, scope.spawn(move || replica.fetch_ranges(&batch))))
                };
                if let Some((prev, reqs, handle)) = std::mem::replace(&mut inflight, next) {
                    let results = handle.join().map_err(|_| Error::internal("hydration fetch panicked"))?;
                    if std::mem::take(&mut first) {
                        before_first_write()?;
                    }
                    let (n, bytes) = this.apply(&prev, &reqs, results)?;
                    progress(n, bytes);
                }
                Ok(())
            };
            let mut builder = RangeBuilder::new(budget.max_request, budget.max_gap);
            let mut round: Vec<FetchRange> = Vec::new();
            let mut round_len = 0u64;
            for (pgno, loc) in pages {
                if let Some(r) = builder.push(pgno, loc) {
                    round_len += r.len();
                    round.push(r);
                }
                let full = round_len + builder.open_bytes() >= budget.round_bytes;
                if round.len() >= budget.in_flight || full {
                    if full {
                        round.extend(builder.drain());
                    }
                    submit(self, std::mem::take(&mut round))?;
                    round_len = 0;
                }
            }
            round.extend(builder.drain());
            submit(self, round)?;
            // Apply the last round.
            submit(self, Vec::new())
        })
    }

    fn requests(&self, ranges: &[FetchRange]) -> Result<Vec<RangeRequest>> {
        let mut reqs = Vec::with_capacity(ranges.len());
        for r in ranges {
            let f = self.replica.ltx_file(r.file).ok_or_else(|| Error::internal("unknown file id"))?;
            reqs.push(RangeRequest { key: f.info.key.clone(), range: r.start..r.end });
        }
        Ok(reqs)
    }

    /// Decode and write one fetched round. Returns (pages, bytes).
    fn apply(
        &mut self,
        ranges: &[FetchRange],
        reqs: &[RangeRequest],
        fetched: Vec<Result<bytes::Bytes>>,
    ) -> Result<(u64, u64)> {
        let ps = self.page_size as usize;
        let lock = ltx::lock_pgno(self.page_size);
        let mut page = vec![0u8; ps];
        let mut old = vec![0u8; ps];
        let (mut pages, mut bytes) = (0u64, 0u64);
        for ((r, req), got) in ranges.iter().zip(reqs).zip(fetched) {
            let data = got.map_err(|e| e.context(&req.key))?;
            // Consecutive pages are written with one call.
            let mut run: Vec<u8> = Vec::new();
            let mut run_start = 0u32;
            for f in &r.frames {
                let rel = (f.offset - r.start) as usize;
                let frame = data
                    .get(rel..rel + f.size as usize)
                    .ok_or_else(|| Error::corrupt("short ranged read of page frames").context(&req.key))?;
                let got = ltx::decode_frame_into(frame, &mut page).map_err(|e| e.context(&req.key))?;
                if got != f.pgno {
                    return Err(
                        Error::corrupt(format!("frame holds page {got}, index says {}", f.pgno)).context(&req.key)
                    );
                }
                if f.pgno != lock {
                    if f.pgno <= self.old_commit {
                        let n = self.file.read_at((f.pgno as u64 - 1) * ps as u64, &mut old)?;
                        if n == ps {
                            self.checksum.remove_page(f.pgno, &old);
                        }
                    }
                    self.checksum.add_page(f.pgno, &page);
                }
                let next = run_start + (run.len() / ps) as u32;
                if run.is_empty() || f.pgno != next || run.len() >= 1 << 20 {
                    self.flush(run_start, &run)?;
                    run.clear();
                    run_start = f.pgno;
                }
                run.extend_from_slice(&page);
                pages += 1;
            }
            self.flush(run_start, &run)?;
            bytes += data.len() as u64;
        }
        Ok((pages, bytes))
    }

    fn flush(&self, start: u32, run: &[u8]) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        self.file.write_at((start as u64 - 1) * self.page_size as u64, run)
    }
}

/// The rolling checksum of the file's first `commit` pages, read locally (lock page skipped).
/// `None` when the file is shorter than that.
pub fn local_checksum(file: &dyn HydrationFile, page_size: u32, commit: u32) -> Result<Option<RollingChecksum>> {
    let ps = page_size as usize;
    let lock = ltx::lock_pgno(page_size);
    let per_read = (1usize << 20) / ps.max(1);
    let mut buf = vec![0u8; per_read.max(1) * ps];
    let mut sum = RollingChecksum::new();
    let mut pgno = 1u32;
    while pgno <= commit {
        let n_pages = ((commit - pgno + 1) as usize).min(per_read.max(1));
        let want = &mut buf[..n_pages * ps];
        if file.read_at((pgno as u64 - 1) * ps as u64, want)? != want.len() {
            return Ok(None);
        }
        for (i, page) in want.chunks(ps).enumerate() {
            let p = pgno + i as u32;
            if p != lock {
                sum.add_page(p, page);
            }
        }
        pgno += n_pages as u32;
    }
    Ok(Some(sum))
}

/// Remove pages `from..=to` (the tail dropped by a shrink) from `sum`, reading them locally.
pub fn remove_tail(
    file: &dyn HydrationFile,
    page_size: u32,
    from: u32,
    to: u32,
    sum: &mut RollingChecksum,
) -> Result<()> {
    let ps = page_size as usize;
    let lock = ltx::lock_pgno(page_size);
    let mut page = vec![0u8; ps];
    for p in from..=to {
        if p != lock && file.read_at((p as u64 - 1) * ps as u64, &mut page)? == ps {
            sum.remove_page(p, &page);
        }
    }
    Ok(())
}
