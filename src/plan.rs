//! The restore plan (REPLICA.md §4): which LTX files, applied in order, give the database at
//! the latest position, at a TXID, or as of a moment in time. Pure: it works on listings.

use crate::error::{Error, ErrorKind, Result};
use crate::layout::SNAPSHOT_LEVEL;
use crate::storage::UnixNanos;
use std::cmp::Ordering;

/// One LTX file as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtxFileInfo {
    pub level: u8,
    pub min_txid: u64,
    pub max_txid: u64,
    pub size: u64,
    pub created_at: UnixNanos,
    pub key: String,
}

impl LtxFileInfo {
    /// `L<level>:<min>-<max>` in decimal, as the vector READMEs print plans.
    pub fn short(&self) -> String {
        format!("L{}:{}-{}", self.level, self.min_txid, self.max_txid)
    }
}

/// What state to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Latest,
    Txid(u64),
    /// Files created strictly before this instant.
    Time(UnixNanos),
}

/// Files per level, 0..=9, each sorted by (min, max).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    levels: [Vec<LtxFileInfo>; SNAPSHOT_LEVEL as usize + 1],
}

impl Listing {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add files (any level, any order).
    pub fn extend(&mut self, files: impl IntoIterator<Item = LtxFileInfo>) {
        for f in files {
            if let Some(level) = self.levels.get_mut(f.level as usize) {
                level.push(f);
            }
        }
        for level in &mut self.levels {
            level.sort_by_key(|f| (f.min_txid, f.max_txid));
        }
    }

    pub fn level(&self, level: u8) -> &[LtxFileInfo] {
        self.levels.get(level as usize).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.levels.iter().all(Vec::is_empty)
    }
}

fn eligible(f: &LtxFileInfo, target: Target) -> bool {
    match target {
        Target::Latest => true,
        Target::Txid(txid) => f.max_txid <= txid,
        Target::Time(t) => f.created_at < t,
    }
}

/// Candidate order: larger MaxTXID, then smaller MinTXID, then higher level, then earlier
/// creation. `Greater` means `a` is the better candidate.
fn compare_candidates(a: &LtxFileInfo, b: &LtxFileInfo) -> Ordering {
    a.max_txid
        .cmp(&b.max_txid)
        .then(b.min_txid.cmp(&a.min_txid))
        .then(a.level.cmp(&b.level))
        .then(b.created_at.cmp(&a.created_at))
}

fn better<'a>(cand: &'a LtxFileInfo, best: Option<&'a LtxFileInfo>) -> &'a LtxFileInfo {
    match best {
        Some(b) if compare_candidates(cand, b) != Ordering::Greater => b,
        _ => cand,
    }
}

/// The `transaction not available` error.
pub fn not_available() -> Error {
    Error::new(ErrorKind::NotAvailable, "transaction not available")
}

/// Compute the restore plan exactly as Litestream 0.5.17's `CalcRestorePlan` does.
pub fn restore_plan(listing: &Listing, target: Target) -> Result<Vec<LtxFileInfo>> {
    let mut plan: Vec<LtxFileInfo> = Vec::new();
    let mut cur = 0u64;

    // 1. The newest eligible snapshot (last in listing order).
    if let Some(snap) = listing.level(SNAPSHOT_LEVEL).iter().rev().find(|f| eligible(f, target)) {
        cur = snap.max_txid;
        plan.push(snap.clone());
        if let Target::Txid(txid) = target {
            if cur >= txid {
                return Ok(plan);
            }
        }
    }

    // 2. Fill forward across levels 8..0, one forward-only cursor per level.
    let levels: Vec<&[LtxFileInfo]> = (0..SNAPSHOT_LEVEL).rev().map(|l| listing.level(l)).collect();
    let mut cursors = vec![0usize; levels.len()];
    loop {
        let mut best: Option<&LtxFileInfo> = None;
        for (files, pos) in levels.iter().zip(cursors.iter_mut()) {
            while let Some(f) = files.get(*pos) {
                if f.min_txid > cur.saturating_add(1) {
                    break;
                }
                *pos += 1;
                if f.max_txid <= cur || !eligible(f, target) {
                    continue;
                }
                best = Some(better(f, best));
            }
        }
        let Some(next) = best else { break };
        cur = next.max_txid;
        plan.push(next.clone());
        if let Target::Txid(txid) = target {
            if cur >= txid {
                break;
            }
        }
    }

    // 3. A gap is an error at latest; elsewhere it silently truncates the plan.
    if target == Target::Latest {
        for (files, pos) in levels.iter().zip(cursors.iter()) {
            if let Some(f) = files.get(*pos) {
                if f.min_txid > cur.saturating_add(1) {
                    return Err(Error::new(
                        ErrorKind::Gap,
                        format!(
                            "non-contiguous ltx files: have up to {cur:016x} but next file starts at {:016x}",
                            f.min_txid
                        ),
                    ));
                }
            }
        }
    }

    // 4. Nothing, or not far enough.
    if plan.is_empty() {
        return Err(not_available());
    }
    if let Target::Txid(txid) = target {
        if cur < txid {
            return Err(not_available());
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(level: u8, min: u64, max: u64, created: i64) -> LtxFileInfo {
        LtxFileInfo { level, min_txid: min, max_txid: max, size: 100, created_at: created, key: String::new() }
    }

    fn shorts(p: &[LtxFileInfo]) -> Vec<String> {
        p.iter().map(LtxFileInfo::short).collect()
    }

    #[test]
    fn snapshot_reaching_the_end_wins_outright() {
        let mut l = Listing::new();
        l.extend([f(9, 1, 8, 10), f(0, 7, 7, 5), f(0, 8, 8, 6), f(1, 1, 8, 7)]);
        assert_eq!(shorts(&restore_plan(&l, Target::Latest).unwrap()), ["L9:1-8"]);
    }

    #[test]
    fn gap_fails_at_latest_but_truncates_at_txid() {
        let mut l = Listing::new();
        l.extend([f(0, 1, 1, 1), f(0, 2, 2, 2), f(0, 4, 4, 4)]);
        let e = restore_plan(&l, Target::Latest).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Gap);
        assert_eq!(
            e.message,
            "non-contiguous ltx files: have up to 0000000000000002 but next file starts at 0000000000000004"
        );
        assert_eq!(shorts(&restore_plan(&l, Target::Txid(2)).unwrap()), ["L0:1-1", "L0:2-2"]);
        assert_eq!(restore_plan(&l, Target::Txid(4)).unwrap_err().kind, ErrorKind::NotAvailable);
    }

    #[test]
    fn empty_listing_is_not_available() {
        let e = restore_plan(&Listing::new(), Target::Latest).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::NotAvailable, "transaction not available"));
    }

    #[test]
    fn overlap_is_allowed_and_higher_level_breaks_ties() {
        let mut l = Listing::new();
        l.extend([f(9, 1, 2, 1), f(2, 1, 5, 5), f(1, 3, 5, 5), f(0, 3, 3, 3)]);
        assert_eq!(shorts(&restore_plan(&l, Target::Txid(5)).unwrap()), ["L9:1-2", "L2:1-5"]);
    }

    #[test]
    fn time_target_is_strict() {
        let mut l = Listing::new();
        l.extend([f(0, 1, 1, 100), f(0, 2, 2, 200)]);
        assert_eq!(shorts(&restore_plan(&l, Target::Time(200)).unwrap()), ["L0:1-1"]);
        assert_eq!(shorts(&restore_plan(&l, Target::Time(201)).unwrap()), ["L0:1-1", "L0:2-2"]);
        assert_eq!(restore_plan(&l, Target::Time(100)).unwrap_err().kind, ErrorKind::NotAvailable);
    }
}
