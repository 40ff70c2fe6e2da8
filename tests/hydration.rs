//! Hydration against an in-memory store and an in-memory file: the restore writes the state's
//! pages and checks the replica's checksum, updates follow polls in place, a read transaction
//! pinned before an update reads its own TXID from the replica path while new ones read the
//! file, a wrong checksum fails the step, and a restart reuses a clean file and restores a
//! dirty or torn one. The real disk file and SQLite are exercised in tests/integration.

use bytes::Bytes;
use ltxvfs::connection::{Connection, Lock};
use ltxvfs::hydrate::Hydrator;
use ltxvfs::hydrate::file::{HydrationFile, MemHydrationFile, Meta};
use ltxvfs::layout::{Layout, LevelStyle};
use ltxvfs::ltx::{self, Header, RollingChecksum};
use ltxvfs::memory_storage::MemoryStorage;
use ltxvfs::replica::{Replica, ReplicaOptions};
use ltxvfs::storage::SystemClock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const PS: u32 = 512;

fn layout() -> Layout {
    Layout::new("db", LevelStyle::Hex4)
}

/// The primary: page → fill byte, and what it last uploaded.
#[derive(Default)]
struct Primary {
    pages: BTreeMap<u32, u8>,
    txid: u64,
}

impl Primary {
    fn checksum(&self) -> u64 {
        let mut c = RollingChecksum::new();
        for (&p, &f) in &self.pages {
            c.add_page(p, &vec![f; PS as usize]);
        }
        c.value()
    }

    /// Apply `changes` as one L0 file with a correct (or, `wrong`, a broken) post-apply checksum.
    fn commit(&mut self, store: &MemoryStorage, changes: &[(u32, u8)], wrong: bool) {
        let pre = self.checksum();
        for &(p, f) in changes {
            self.pages.insert(p, f);
        }
        self.txid += 1;
        let header = Header {
            flags: 0,
            page_size: PS,
            commit: *self.pages.keys().last().unwrap(),
            min_txid: self.txid,
            max_txid: self.txid,
            timestamp_ms: 1_000 * self.txid as i64,
            pre_apply_checksum: if self.txid == 1 { 0 } else { pre },
            ..Default::default()
        };
        let data: Vec<(u32, Vec<u8>)> = changes.iter().map(|&(p, f)| (p, vec![f; PS as usize])).collect();
        let refs: Vec<(u32, &[u8])> = data.iter().map(|(p, d)| (*p, d.as_slice())).collect();
        let post = if wrong { self.checksum() ^ 1 } else { self.checksum() };
        let encoded = ltx::encode_file_with_post_apply(&header, &refs, Some(post)).expect("encode");
        store.insert(
            &layout().key(0, self.txid, self.txid),
            Bytes::from(encoded.bytes),
            1_000_000_000 * self.txid as i64,
        );
    }

    fn image(&self) -> Vec<u8> {
        self.pages.values().flat_map(|&f| vec![f; PS as usize]).collect()
    }
}

fn open(store: &Arc<MemoryStorage>) -> Arc<Replica> {
    let opts = ReplicaOptions { open_timeout: Duration::from_secs(2), ..Default::default() };
    Replica::open(store.clone(), Arc::new(SystemClock), layout(), opts).expect("open")
}

fn byte_of(conn: &mut Connection, pgno: u32) -> u8 {
    let mut b = [0u8; 1];
    conn.read((pgno as u64 - 1) * PS as u64 + 100, &mut b).expect("read");
    b[0]
}

#[test]
fn restore_update_isolation_and_restart() {
    let store = Arc::new(MemoryStorage::new());
    let mut primary = Primary::default();
    primary.commit(&store, &[(1, 1), (2, b'a'), (3, b'a')], false);
    let replica = open(&store);
    let file = Arc::new(MemHydrationFile::default());
    let (h, mut known) = Hydrator::manual(&replica, file.clone());
    let h = Arc::new(h);
    assert!(known.is_none());
    h.step(&mut known).expect("restore");
    assert_eq!(h.state_text(), "complete");
    assert_eq!(h.progress_text(), "100.0");
    assert_eq!(*file.data.lock(), primary.image());
    let meta = Meta::decode(&file.read_meta().unwrap().unwrap()).unwrap();
    assert_eq!((meta.txid, meta.commit, meta.dirty, meta.checksum), (1, 3, false, primary.checksum()));

    // Reads at the file's TXID come from the file: mark page 3 there to see it.
    file.data.lock()[2 * PS as usize + 100] = b'F';
    let mut pinned = Connection::new(replica.clone(), "pinned").with_hydrator(Some(h.clone()));
    pinned.lock(Lock::Shared).unwrap();
    assert_eq!(byte_of(&mut pinned, 3), b'F', "served from the hydrated file");
    file.data.lock()[2 * PS as usize + 100] = b'a';

    // A poll moves the replica to TXID 2 and the step moves the file; the pinned transaction
    // keeps TXID 1 (from the replica path), a new one reads TXID 2 from the file.
    primary.commit(&store, &[(2, b'b'), (4, b'b')], false);
    assert!(replica.poll_once().unwrap());
    h.step(&mut known).expect("update");
    assert_eq!(*file.data.lock(), primary.image());
    assert_eq!(byte_of(&mut pinned, 2), b'a');
    assert_eq!(pinned.file_size(), 3 * PS as u64);
    pinned.unlock(Lock::None).unwrap();
    let mut fresh = Connection::new(replica.clone(), "fresh").with_hydrator(Some(h.clone()));
    fresh.lock(Lock::Shared).unwrap();
    file.data.lock()[PS as usize + 100] = b'G';
    assert_eq!(byte_of(&mut fresh, 2), b'G', "TXID 2 is served from the file");
    file.data.lock()[PS as usize + 100] = b'b';
    fresh.unlock(Lock::None).unwrap();
    // Time travel reads the replica; LATEST comes back to the file.
    fresh.set_time("1970-01-01T00:00:01.500Z").expect("travel");
    fresh.lock(Lock::Shared).unwrap();
    assert_eq!((byte_of(&mut fresh, 2), fresh.file_size()), (b'a', 3 * PS as u64));
    fresh.unlock(Lock::None).unwrap();
    fresh.set_time("LATEST").unwrap();
    fresh.lock(Lock::Shared).unwrap();
    file.data.lock()[PS as usize + 100] = b'H';
    assert_eq!(byte_of(&mut fresh, 2), b'H');
    file.data.lock()[PS as usize + 100] = b'b';
    fresh.unlock(Lock::None).unwrap();

    // A file whose checksum disagrees with the replica's fails the step; it is not served.
    primary.commit(&store, &[(3, b'c')], true);
    assert!(replica.poll_once().unwrap());
    let e = h.step(&mut known).expect_err("checksum mismatch");
    assert!(e.message.contains("checksum"), "{e}");
    assert_eq!(h.served_txid(), None);
    drop(h);

    // Restart: the .meta is still dirty from the failed update → a fresh restore (which the
    // wrong checksum fails again); after a correct file, a clean restart reuses the file.
    let (h2, known2) = Hydrator::manual(&replica, file.clone());
    assert!(known2.is_none(), "a dirty .meta is never trusted");
    drop(h2);
    primary.commit(&store, &[(3, b'd')], false);
    assert!(replica.poll_once().unwrap());
    let (h3, mut known3) = Hydrator::manual(&replica, file.clone());
    h3.step(&mut known3).expect("restore");
    assert_eq!(*file.data.lock(), primary.image());
    drop(h3);
    let (h4, mut known4) = Hydrator::manual(&replica, file.clone());
    assert_eq!(known4.as_ref().map(|k| k.txid), Some(primary.txid), "a clean file is reused");
    h4.step(&mut known4).expect("no-op catch-up");
    assert_eq!(h4.progress_text(), "0.0", "resumed without a restore");
    drop(h4);
    // A torn file (bytes differ from the .meta's checksum) is restored.
    file.data.lock()[5] ^= 0xff;
    let (h5, known5) = Hydrator::manual(&replica, file.clone());
    assert!(known5.is_none());
    drop(h5);
}
