//! What a connection reads and writes in write mode: the committed-but-unsynced overlay shared
//! by the process, the snapshot a read transaction pins, and one write transaction's dirty set.

use crate::error::{Error, Result};
use crate::ltx::lock_pgno;
use crate::replica::View;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Pages committed locally and not yet indexed from an upload: read before the replica.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// pgno → (generation of the commit that wrote it, page).
    pub pages: BTreeMap<u32, (u64, Bytes)>,
    /// Database size in pages after the last local commit (`None`: the view's).
    pub commit: Option<u32>,
    /// Local commits so far (never reset: it moves the change counter SQLite sees).
    pub generation: u64,
    /// Generation up to which the pages have been uploaded and indexed.
    pub synced_generation: u64,
    /// Page size of the local commits (a new database's may differ from the view's default).
    pub page_size: Option<u32>,
}

impl Overlay {
    /// Whether commits are waiting for an upload.
    pub fn unsynced(&self) -> bool {
        self.generation > self.synced_generation
    }

    /// Apply one committed transaction as generation `generation + 1`.
    pub fn apply(&mut self, commit: u32, pages: &[(u32, Bytes)]) {
        self.generation += 1;
        let g = self.generation;
        self.pages.retain(|&p, _| p <= commit);
        for (pgno, page) in pages {
            if *pgno <= commit {
                self.pages.insert(*pgno, (g, page.clone()));
            }
        }
        self.commit = Some(commit);
    }
}

/// The state one read transaction sees: a replica view with the local overlay on top.
#[derive(Clone)]
pub struct Snapshot {
    pub view: Arc<View>,
    pub overlay: Arc<Overlay>,
}

impl Snapshot {
    pub fn of_view(view: Arc<View>) -> Self {
        Self { view, overlay: Arc::new(Overlay::default()) }
    }

    pub fn commit(&self) -> u32 {
        self.overlay.commit.unwrap_or(self.view.commit)
    }

    pub fn page_size(&self) -> u32 {
        self.overlay.page_size.unwrap_or(self.view.page_size)
    }

    pub fn file_size(&self) -> u64 {
        self.commit() as u64 * self.page_size() as u64
    }

    /// The change counter presented in page 1: moves with every remote TXID and local commit.
    pub fn change_counter(&self) -> u32 {
        self.view.txid.wrapping_add(self.overlay.generation) as u32
    }

    pub fn local_page(&self, pgno: u32) -> Option<Bytes> {
        self.overlay.pages.get(&pgno).map(|(_, p)| p.clone())
    }
}

/// One write transaction: the pages written since RESERVED, and the size SQLite set.
pub struct Transaction {
    pub page_size: u32,
    pub dirty: BTreeMap<u32, Bytes>,
    pub commit: u32,
    /// The size at the start, to tell an empty transaction.
    start_commit: u32,
    /// A new database whose page size the first write of page 1 decides (VFS.md §9.7:
    /// `PRAGMA page_size` before the first table is honoured).
    page_size_open: bool,
}

impl Transaction {
    pub fn new(page_size: u32, commit: u32, page_size_open: bool) -> Self {
        Self { page_size, dirty: BTreeMap::new(), commit, start_commit: commit, page_size_open }
    }

    /// Whether the transaction changed nothing (`BEGIN; COMMIT`, a read-only statement).
    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty() && self.commit == self.start_commit
    }

    /// Write `data` at `offset`. `current` gives the page as it is now (for a partial write).
    pub fn write(&mut self, offset: u64, data: &[u8], current: impl FnOnce(u32) -> Result<Bytes>) -> Result<()> {
        if self.page_size_open && offset == 0 && crate::ltx::is_valid_page_size(data.len() as u32) {
            self.page_size = data.len() as u32;
        }
        self.page_size_open = false;
        let ps = self.page_size as u64;
        let pgno = u32::try_from(offset / ps + 1).map_err(|_| Error::internal("page number overflow"))?;
        if pgno == lock_pgno(self.page_size) {
            return Err(Error::internal("cannot write to lock page"));
        }
        let in_page = (offset % ps) as usize;
        let page = if in_page == 0 && data.len() == self.page_size as usize {
            Bytes::copy_from_slice(data)
        } else {
            if in_page + data.len() > self.page_size as usize {
                return Err(Error::internal(format!(
                    "write of {} bytes at offset {offset} crosses a {}-byte page: changing the page size is not supported",
                    data.len(),
                    self.page_size
                )));
            }
            let mut page = match self.dirty.get(&pgno) {
                Some(p) => p.to_vec(),
                None => current(pgno)?.to_vec(),
            };
            page.resize(self.page_size as usize, 0);
            page[in_page..in_page + data.len()].copy_from_slice(data);
            Bytes::from(page)
        };
        self.dirty.insert(pgno, page);
        self.commit = self.commit.max(pgno);
        Ok(())
    }

    /// `xTruncate`: drop pages past the new end.
    pub fn truncate(&mut self, size: u64) {
        let commit = (size / self.page_size as u64) as u32;
        self.dirty.retain(|&p, _| p <= commit);
        self.commit = commit;
    }

    /// The committed form: the size and the pages within it, ascending.
    pub fn into_commit(self) -> (u32, Vec<(u32, Bytes)>) {
        let commit = self.commit;
        (commit, self.dirty.into_iter().filter(|(p, _)| *p <= commit).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_partial_page_writes() {
        let mut t = Transaction::new(512, 2, false);
        t.write(512, &[7u8; 512], |_| unreachable!()).unwrap();
        t.write(1024 + 10, &[9u8; 4], |_| Ok(Bytes::from(vec![1u8; 512]))).unwrap();
        assert_eq!(t.commit, 3);
        let p3 = t.dirty.get(&3).unwrap();
        assert_eq!((p3[9], p3[10], p3[13], p3[14]), (1, 9, 9, 1));
        assert!(t.write(1000, &[0u8; 100], |_| Ok(Bytes::new())).is_err());
        t.truncate(512);
        assert_eq!(t.into_commit(), (1, vec![]));
    }

    #[test]
    fn lock_page_is_refused_and_empty_transactions_are_seen() {
        let mut t = Transaction::new(65536, 0, false);
        assert!(t.is_empty());
        let lock = (lock_pgno(65536) as u64 - 1) * 65536;
        assert!(t.write(lock, &[0u8; 65536], |_| unreachable!()).unwrap_err().message.contains("lock page"));
        t.truncate(0);
        assert!(t.is_empty());
    }

    #[test]
    fn a_new_database_takes_the_page_size_of_its_first_page() {
        let mut t = Transaction::new(4096, 0, true);
        t.write(0, &[1u8; 8192], |_| unreachable!()).unwrap();
        t.write(8192, &[2u8; 8192], |_| unreachable!()).unwrap();
        assert_eq!((t.page_size, t.commit), (8192, 2));
    }

    #[test]
    fn overlay_generations_and_shrink() {
        let mut o = Overlay::default();
        o.apply(3, &[(1, Bytes::from_static(b"a")), (3, Bytes::from_static(b"c"))]);
        o.apply(2, &[(2, Bytes::from_static(b"b"))]);
        assert_eq!(o.generation, 2);
        assert_eq!(o.commit, Some(2));
        assert_eq!(o.pages.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert!(o.unsynced());
        o.synced_generation = 2;
        assert!(!o.unsynced());
    }
}
