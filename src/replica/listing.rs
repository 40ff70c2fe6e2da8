//! Level listings: storage objects to LTX file infos, every level, forgetting deleted files.

use crate::error::Result;
use crate::layout::{LtxName, SNAPSHOT_LEVEL};
use crate::plan::{Listing, LtxFileInfo};

use super::Replica;

impl Replica {
    pub(super) fn to_infos(&self, level: u8, objects: Vec<crate::storage::ObjectInfo>) -> Vec<LtxFileInfo> {
        let mut out: Vec<LtxFileInfo> = objects
            .into_iter()
            .filter_map(|o| {
                let name = LtxName::parse_key(&o.key)?;
                if name.min_txid > name.max_txid || name.min_txid == 0 {
                    return None;
                }
                Some(LtxFileInfo {
                    level,
                    min_txid: name.min_txid,
                    max_txid: name.max_txid,
                    size: o.size,
                    created_at: o.created_at,
                    key: o.key,
                })
            })
            .collect();
        out.sort_by_key(|f| (f.min_txid, f.max_txid));
        out
    }

    pub(super) fn list_levels(&self, levels: &[u8], with_metadata: bool) -> Result<Vec<Vec<LtxFileInfo>>> {
        let prefixes: Vec<String> = levels.iter().map(|&l| self.layout.level_prefix(l)).collect();
        let results = self.storage.list_many(&prefixes, with_metadata);
        levels
            .iter()
            .zip(results)
            .map(|(&level, r)| {
                r.map(|objs| self.to_infos(level, objs)).map_err(|e| e.context(format!("list level {level}")))
            })
            .collect()
    }

    /// L0 files with MinTXID ≥ `seek` (REPLICA.md §2), listed from there where the store can.
    pub(super) fn list_l0_from(&self, seek: u64) -> Result<Vec<LtxFileInfo>> {
        let prefix = self.layout.level_prefix(0);
        let objects = self
            .storage
            .list_after(&prefix, &self.layout.seek_key(0, seek), false)
            .map_err(|e| e.context("list level 0"))?;
        Ok(self.to_infos(0, objects).into_iter().filter(|f| f.min_txid >= seek).collect())
    }

    /// Every level of the replica.
    pub fn list_all(&self, with_metadata: bool) -> Result<Listing> {
        let levels: Vec<u8> = (self.opts.min_level.min(SNAPSHOT_LEVEL)..=SNAPSHOT_LEVEL).collect();
        let mut listing = Listing::new();
        for files in self.list_levels(&levels, with_metadata)? {
            listing.extend(files);
        }
        Ok(listing)
    }

    /// Forget files the replica no longer has: their file-table entries and persisted bytes.
    pub(super) fn forget_deleted(&self, listing: &Listing) {
        let live: std::collections::HashSet<&str> =
            (0..=SNAPSHOT_LEVEL).flat_map(|l| listing.level(l)).map(|f| f.key.as_str()).collect();
        self.files.retain(&|f| live.contains(f.key.as_str()));
        if let Some(store) = &self.extents {
            store.retain(&|key| live.contains(key));
        }
    }
}
