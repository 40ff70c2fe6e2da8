//! The writer's side of the replica (VFS.md §9.4, §9.5): upload a file the writer built and
//! index it at once, so its pages are read from that file after a cache eviction (Go defect 3)
//! and the poller never applies the writer's own TXIDs a second time.

use crate::error::Result;
use crate::ltx::{Header, PageIndexEntry};
use crate::plan::{LtxFileInfo, Target, restore_plan};
use crate::storage::{PutMode, RangeRequest};
use bytes::Bytes;
use std::sync::Arc;

use super::{Replica, View};

impl Replica {
    /// Under the poll lock: list level 0 and let `check` refuse (a conflict), create the
    /// object `key` (create-only), then publish a view with the file's pages indexed and
    /// cached (`pages` in the order of `index`). The poller, which takes the same lock, sees
    /// the new position and skips the file.
    #[allow(clippy::too_many_arguments)]
    pub fn upload_own(
        &self,
        key: &str,
        bytes: Bytes,
        header: &Header,
        index: &[PageIndexEntry],
        pages: &[(u32, Bytes)],
        check: impl FnOnce(&[LtxFileInfo]) -> Result<()>,
    ) -> Result<Arc<View>> {
        let _guard = self.poll_lock.lock();
        let l0 = self.list_levels(&[0], false)?.into_iter().next().unwrap_or_default();
        check(&l0)?;
        let size = bytes.len() as u64;
        self.storage.put(key, bytes, PutMode::Create)?;
        let info = LtxFileInfo {
            level: 0,
            min_txid: header.min_txid,
            max_txid: header.max_txid,
            size,
            created_at: header.timestamp_ms.saturating_mul(1_000_000),
            key: key.to_string(),
        };
        Ok(self.index_own(&info, header, index, pages))
    }

    /// Index a file of the writer's that is known to be in storage; publish and return the view.
    pub fn index_own(
        &self,
        info: &LtxFileInfo,
        header: &Header,
        index: &[PageIndexEntry],
        pages: &[(u32, Bytes)],
    ) -> Arc<View> {
        let file = self.files.intern(info);
        let mut next = (*self.current()).clone();
        for (e, (_, page)) in index.iter().zip(pages) {
            if let Some(loc) = Self::loc(file.id, e) {
                next.index.insert(e.pgno, loc);
                self.cache.insert(file.id, e.offset, page.clone());
            }
        }
        next.index.truncate(header.commit);
        next.page_size = header.page_size;
        next.commit = header.commit;
        next.txid = header.max_txid;
        next.created_at = info.created_at;
        let next = Arc::new(next);
        *self.current.write() = next.clone();
        next
    }

    /// The whole bytes of one object of `size` bytes (to recognise the writer's own upload).
    pub fn fetch_object(&self, key: &str, size: u64) -> Result<Bytes> {
        let req = [RangeRequest { key: key.to_string(), range: 0..size }];
        self.get_ranges(&req).pop().unwrap_or_else(|| Err(crate::Error::internal("no fetch result")))
    }

    /// The key of the writer's level-0 file for `txid`.
    pub fn own_key(&self, txid: u64) -> String {
        self.layout.key(0, txid, txid)
    }

    /// The level-0 files now in storage.
    pub fn level0(&self) -> Result<Vec<LtxFileInfo>> {
        Ok(self.list_levels(&[0], false)?.into_iter().next().unwrap_or_default())
    }

    /// The state at exactly `txid` (a writer whose local changes sit on an older TXID).
    pub fn view_at_txid(&self, txid: u64) -> Result<Arc<View>> {
        let listing = self.list_all(false)?;
        let plan = restore_plan(&listing, Target::Txid(txid))?;
        Ok(Arc::new(self.build_view(&plan, None)?))
    }
}
