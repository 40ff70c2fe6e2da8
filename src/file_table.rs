//! The replica's table of LTX files it has seen, append-only, so that a page index entry and a
//! cache key can name a file with a small integer. LTX files are immutable: an id always means
//! the same bytes.

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
    files: Vec<Arc<LtxFile>>,
    by_key: HashMap<String, FileId>,
}

impl FileTable {
    /// The id of this file, registering it on first sight.
    pub fn intern(&self, info: &LtxFileInfo) -> Arc<LtxFile> {
        if let Some(f) = self.lookup_key(&info.key) {
            return f;
        }
        let mut inner = self.inner.write();
        if let Some(&id) = inner.by_key.get(&info.key) {
            return inner.files[id as usize].clone();
        }
        let id = inner.files.len() as FileId;
        let file = Arc::new(LtxFile { id, info: info.clone() });
        inner.files.push(file.clone());
        inner.by_key.insert(info.key.clone(), id);
        file
    }

    pub fn get(&self, id: FileId) -> Option<Arc<LtxFile>> {
        self.inner.read().files.get(id as usize).cloned()
    }

    fn lookup_key(&self, key: &str) -> Option<Arc<LtxFile>> {
        let inner = self.inner.read();
        inner.by_key.get(key).map(|&id| inner.files[id as usize].clone())
    }

    /// Every file whose MaxTXID is `txid`, in the order they were seen.
    pub fn ending_at(&self, txid: u64) -> Vec<Arc<LtxFile>> {
        self.inner.read().files.iter().filter(|f| f.info.max_txid == txid).cloned().collect()
    }

    /// MaxTXID of a file, 0 for an unknown id.
    pub fn max_txid(&self, id: FileId) -> u64 {
        self.inner.read().files.get(id as usize).map(|f| f.info.max_txid).unwrap_or(0)
    }
}
