//! The replica's table of LTX files it has seen, so that a page index entry and a cache key can
//! name a file with a small integer. LTX files are immutable: an id always means the same bytes,
//! and ids are never reused. Files deleted from the replica are forgotten (`retain`), so the
//! table stays as large as the replica, not as its history; a view that still names a forgotten
//! file gets `NotFound` for it and re-plans.

use crate::plan::LtxFileInfo;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

pub type FileId = u32;

#[derive(Debug)]
pub struct LtxFile {
    pub id: FileId,
    pub info: LtxFileInfo,
}

#[derive(Default)]
pub struct FileTable {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    files: HashMap<FileId, Arc<LtxFile>>,
    by_key: HashMap<String, FileId>,
    next: FileId,
}

impl FileTable {
    /// The id of this file, registering it on first sight.
    pub fn intern(&self, info: &LtxFileInfo) -> Arc<LtxFile> {
        if let Some(f) = self.lookup_key(&info.key) {
            return f;
        }
        let mut inner = self.inner.write();
        if let Some(f) = inner.by_key.get(&info.key).and_then(|id| inner.files.get(id)) {
            return f.clone();
        }
        let id = inner.next;
        // FileId::MAX marks an empty page index slot.
        inner.next = inner.next.saturating_add(1).min(FileId::MAX - 1);
        let file = Arc::new(LtxFile { id, info: info.clone() });
        inner.files.insert(id, file.clone());
        inner.by_key.insert(info.key.clone(), id);
        file
    }

    pub fn get(&self, id: FileId) -> Option<Arc<LtxFile>> {
        self.inner.read().files.get(&id).cloned()
    }

    fn lookup_key(&self, key: &str) -> Option<Arc<LtxFile>> {
        let inner = self.inner.read();
        inner.by_key.get(key).and_then(|id| inner.files.get(id)).cloned()
    }

    /// Every file whose MaxTXID is `txid`, in the order they were seen.
    pub fn ending_at(&self, txid: u64) -> Vec<Arc<LtxFile>> {
        let mut out: Vec<Arc<LtxFile>> =
            self.inner.read().files.values().filter(|f| f.info.max_txid == txid).cloned().collect();
        out.sort_by_key(|f| f.id);
        out
    }

    /// MaxTXID of a file, 0 for an unknown (or forgotten) id.
    pub fn max_txid(&self, id: FileId) -> u64 {
        self.inner.read().files.get(&id).map(|f| f.info.max_txid).unwrap_or(0)
    }

    /// Forget every file `live` rejects (deleted from the replica).
    pub fn retain(&self, live: &dyn Fn(&LtxFileInfo) -> bool) {
        let mut inner = self.inner.write();
        let Inner { files, by_key, .. } = &mut *inner;
        files.retain(|_, f| live(&f.info));
        by_key.retain(|_, id| files.contains_key(id));
    }

    /// Files known now.
    pub fn len(&self) -> usize {
        self.inner.read().files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u64) -> LtxFileInfo {
        LtxFileInfo {
            level: 0,
            min_txid: n,
            max_txid: n,
            size: 100,
            created_at: 0,
            key: format!("ltx/0/{n:016x}-{n:016x}.ltx"),
        }
    }

    #[test]
    fn stays_as_large_as_the_live_set() {
        let t = FileTable::default();
        let mut last_ids = Vec::new();
        for round in 0..100u64 {
            // Ten live files per round, the previous round's deleted.
            let live: Vec<LtxFileInfo> = (round * 10..round * 10 + 10).map(info).collect();
            last_ids = live.iter().map(|f| t.intern(f).id).collect();
            let keys: std::collections::HashSet<String> = live.iter().map(|f| f.key.clone()).collect();
            t.retain(&|f| keys.contains(&f.key));
            assert_eq!(t.len(), 10, "round {round}");
        }
        // Ids are never reused; forgotten ids are unknown; live ones stay the same.
        assert_eq!(last_ids[0], 990);
        assert!(t.get(0).is_none());
        assert_eq!(t.max_txid(0), 0);
        assert_eq!(t.intern(&info(995)).id, last_ids[5]);
    }
}
