//! `min_level`: which levels a poll lists. By default L0 (followed) and L1 (compactions);
//! with `min_level = N ≥ 1`, only level N: the replica then moves at the pace of level N's
//! compactions, and levels below it are never read.

use crate::error::Result;
use crate::plan::LtxFileInfo;

use super::Replica;

impl Replica {
    /// The level whose files a poll treats as compactions (1, or `min_level`).
    pub(super) fn poll_upper_level(&self) -> u8 {
        self.opts.min_level.clamp(1, crate::layout::SNAPSHOT_LEVEL)
    }

    /// (L0 files, compaction-level files) for one poll; L0 is empty when `min_level` ≥ 1.
    pub(super) fn list_poll_levels(&self) -> Result<(Vec<LtxFileInfo>, Vec<LtxFileInfo>)> {
        if self.opts.min_level == 0 {
            let mut lists = self.list_levels(&[0, 1], false)?.into_iter();
            let l0 = lists.next().unwrap_or_default();
            Ok((l0, lists.next().unwrap_or_default()))
        } else {
            let upper = self.poll_upper_level();
            Ok((Vec::new(), self.list_levels(&[upper], false)?.into_iter().next().unwrap_or_default()))
        }
    }
}
