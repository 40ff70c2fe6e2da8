//! The replica and connection layers against an in-memory store: polling (with the fixes VFS.md
//! §8.3 requires), read isolation, shrink, vanished files, the bounded wait for a snapshot.
//! SQLite itself is exercised through the real extension in tests/integration.

use bytes::Bytes;
use ltxvfs::connection::{Connection, Lock};
use ltxvfs::error::{ErrorKind, Result};
use ltxvfs::layout::{Layout, LevelStyle};
use ltxvfs::ltx::{self, Header};
use ltxvfs::replica::{Replica, ReplicaOptions};
use ltxvfs::storage::{Clock, ObjectInfo, RangeRequest, Storage, UnixNanos};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const PS: u32 = 512;

#[derive(Default)]
struct MemStore {
    objects: Mutex<BTreeMap<String, (Bytes, UnixNanos)>>,
}

impl Storage for MemStore {
    fn list(&self, prefix: &str, _with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .objects
            .lock()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, t))| ObjectInfo { key: k.clone(), size: b.len() as u64, created_at: *t })
            .collect())
    }
    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let objects = self.objects.lock();
        requests
            .iter()
            .map(|r| match objects.get(&r.key) {
                None => Err(ltxvfs::Error::not_found(format!("object not found: {}", r.key))),
                Some((b, _)) => {
                    let end = (r.range.end as usize).min(b.len());
                    let start = (r.range.start as usize).min(end);
                    Ok(b.slice(start..end))
                }
            })
            .collect()
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

/// A clock that only moves when somebody sleeps.
#[derive(Default)]
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> UnixNanos {
        self.0.load(Ordering::Relaxed) + 1_700_000_000_000_000_000
    }
    fn sleep(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as i64, Ordering::Relaxed);
    }
}

fn layout() -> Layout {
    Layout::new("db", LevelStyle::Hex4)
}

fn page(fill: u8) -> Vec<u8> {
    vec![fill; PS as usize]
}

/// Put an LTX file holding `pages` (pgno, fill byte) with the given commit.
fn put(store: &MemStore, level: u8, min: u64, max: u64, commit: u32, pages: &[(u32, u8)]) {
    let header = Header {
        flags: ltx::HEADER_FLAG_NO_CHECKSUM,
        page_size: PS,
        commit,
        min_txid: min,
        max_txid: max,
        timestamp_ms: 1_000 * max as i64,
        ..Default::default()
    };
    let data: Vec<(u32, Vec<u8>)> = pages.iter().map(|&(p, f)| (p, page(f))).collect();
    let refs: Vec<(u32, &[u8])> = data.iter().map(|(p, d)| (*p, d.as_slice())).collect();
    let encoded = ltx::encode_file(&header, &refs).expect("encode");
    store
        .objects
        .lock()
        .insert(layout().key(level, min, max), (Bytes::from(encoded.bytes), 1_000_000_000 * max as i64));
}

fn remove(store: &MemStore, level: u8, min: u64, max: u64) {
    store.objects.lock().remove(&layout().key(level, min, max));
}

fn open(store: &Arc<MemStore>) -> Arc<Replica> {
    let opts = ReplicaOptions { open_timeout: Duration::from_secs(2), ..Default::default() };
    Replica::open(store.clone(), Arc::new(ManualClock::default()), layout(), opts).expect("open")
}

/// First byte of page `pgno` as a new read transaction sees it.
fn byte_of(conn: &mut Connection, pgno: u32) -> Result<u8> {
    let mut b = [0u8; 1];
    conn.read((pgno as u64 - 1) * PS as u64 + 100, &mut b)?;
    Ok(b[0])
}

fn in_txn<T>(conn: &mut Connection, f: impl FnOnce(&mut Connection) -> T) -> T {
    conn.lock(Lock::Shared).unwrap();
    let r = f(conn);
    conn.unlock(Lock::None).unwrap();
    r
}

#[test]
fn poll_follows_l0_and_isolates_open_read_transactions() {
    let store = Arc::new(MemStore::default());
    put(&store, 0, 1, 1, 2, &[(1, b'a'), (2, b'a')]);
    let replica = open(&store);
    let mut conn = Connection::new(replica.clone(), "t");
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 2)).unwrap(), b'a');
    assert_eq!(replica.lag_seconds(), -1, "no poll yet");

    conn.lock(Lock::Shared).unwrap();
    put(&store, 0, 2, 2, 2, &[(2, b'b')]);
    assert!(replica.poll_once().unwrap());
    assert_eq!(byte_of(&mut conn, 2).unwrap(), b'a', "the open transaction keeps its view");
    conn.unlock(Lock::None).unwrap();
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 2)).unwrap(), b'b');
    assert_eq!(conn.txid_text(), "0000000000000002");
    assert_eq!(replica.lag_seconds(), 0);
}

#[test]
fn l0_gap_waits_without_failing_the_poll() {
    let store = Arc::new(MemStore::default());
    put(&store, 0, 1, 1, 1, &[(1, b'a')]);
    let replica = open(&store);
    put(&store, 0, 3, 3, 1, &[(1, b'c')]);
    assert!(!replica.poll_once().unwrap());
    assert_eq!(replica.current().txid, 1);
    put(&store, 0, 2, 2, 1, &[(1, b'b')]);
    assert!(replica.poll_once().unwrap());
    assert_eq!(replica.current().txid, 3);
}

#[test]
fn l1_file_overlapping_the_position_is_accepted() {
    // Go defect 2: a plan without L1 seeds maxTXID1 = pos, so the first L1 compaction overlaps
    // it and Go freezes. Here the overlapping L1 file (and the next one) are followed.
    let store = Arc::new(MemStore::default());
    for t in 1..=3 {
        put(&store, 0, t, t, 1, &[(1, b'0' + t as u8)]);
    }
    let replica = open(&store);
    assert_eq!(replica.current().max_l1, 3);
    put(&store, 1, 1, 4, 1, &[(1, b'4')]);
    assert!(replica.poll_once().unwrap());
    assert_eq!(replica.current().txid, 4);
    // L0 is pruned by retention; L1 carries on.
    for t in 1..=3 {
        remove(&store, 0, t, t);
    }
    put(&store, 1, 5, 6, 1, &[(1, b'6')]);
    assert!(replica.poll_once().unwrap());
    let mut conn = Connection::new(replica.clone(), "t");
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 1)).unwrap(), b'6');
    assert_eq!(replica.current().txid, 6);
}

#[test]
fn older_compaction_never_overwrites_a_newer_entry() {
    let store = Arc::new(MemStore::default());
    put(&store, 1, 1, 1, 2, &[(1, b'a'), (2, b'a')]);
    put(&store, 0, 2, 2, 2, &[(2, b'b')]);
    put(&store, 0, 3, 3, 2, &[(2, b'c')]);
    let replica = open(&store);
    assert_eq!(replica.current().max_l1, 1);
    // A compaction of TX 2 only arrives after TX 3 was applied: page 2 must stay at TX 3.
    put(&store, 1, 2, 2, 2, &[(2, b'b')]);
    replica.poll_once().unwrap();
    let mut conn = Connection::new(replica.clone(), "t");
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 2)).unwrap(), b'c');
}

#[test]
fn shrinking_commit_trims_only_pages_above_it() {
    // Go replaces the whole index with the shrinking file's pages (malformed database); the
    // required behaviour drops entries above the new commit and keeps the rest.
    let store = Arc::new(MemStore::default());
    put(&store, 0, 1, 1, 4, &[(1, b'a'), (2, b'a'), (3, b'a'), (4, b'a')]);
    let replica = open(&store);
    let mut conn = Connection::new(replica.clone(), "t");
    assert_eq!(in_txn(&mut conn, |c| c.file_size()), 4 * PS as u64);
    put(&store, 0, 2, 2, 3, &[(1, b'b')]);
    assert!(replica.poll_once().unwrap());
    in_txn(&mut conn, |c| {
        assert_eq!(c.file_size(), 3 * PS as u64);
        assert_eq!(byte_of(c, 1).unwrap(), b'b');
        assert_eq!(byte_of(c, 3).unwrap(), b'a', "pages below the commit survive");
        let mut buf = [0u8; 16];
        assert_eq!(c.read(3 * PS as u64, &mut buf).unwrap(), 0, "page 4 is past the end");
    });
}

#[test]
fn vanished_file_is_replanned_not_an_error() {
    let store = Arc::new(MemStore::default());
    let first: Vec<(u32, u8)> = (1..=64).map(|p| (p, b'a')).collect();
    put(&store, 0, 1, 1, 64, &first);
    put(&store, 0, 2, 2, 64, &[(2, b'b')]);
    // A cache far smaller than the database, so that pages must be fetched again later.
    let opts = ReplicaOptions { cache_size: 512, ..Default::default() };
    let replica = Replica::open(store.clone(), Arc::new(ManualClock::default()), layout(), opts).unwrap();
    let mut conn = Connection::new(replica.clone(), "t");
    in_txn(&mut conn, |c| (1..=64).for_each(|p| drop(byte_of(c, p))));
    // Compaction then retention: the L0 files go, an L1 file covers them.
    let mut merged = first.clone();
    merged[1] = (2, b'b');
    put(&store, 1, 1, 2, 64, &merged);
    remove(&store, 0, 1, 1);
    remove(&store, 0, 2, 2);
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 2)).unwrap(), b'b');
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 3)).unwrap(), b'a');
    assert_eq!(conn.txid_text(), "0000000000000002");
}

#[test]
fn open_waits_for_a_first_snapshot_then_fails_clearly() {
    let store = Arc::new(MemStore::default());
    let opts = ReplicaOptions { open_timeout: Duration::from_secs(3), ..Default::default() };
    let clock = Arc::new(ManualClock::default());
    let err = Replica::open(store.clone(), clock.clone(), layout(), opts).err().expect("must fail");
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.starts_with("transaction not available: no snapshot in memory after waiting 3s"), "{err}");
    assert!(clock.now() - 1_700_000_000_000_000_000 >= 3_000_000_000, "it waited the whole bound");
}

#[test]
fn gap_at_open_fails_at_once() {
    let store = Arc::new(MemStore::default());
    put(&store, 0, 1, 1, 1, &[(1, b'a')]);
    put(&store, 0, 3, 3, 1, &[(1, b'c')]);
    let err = Replica::open(store, Arc::new(ManualClock::default()), layout(), ReplicaOptions::default())
        .err()
        .expect("must fail");
    assert_eq!(err.kind, ErrorKind::Gap);
}

#[test]
fn page_one_is_presented_with_rollback_journal_bytes_and_a_txid_counter() {
    let store = Arc::new(MemStore::default());
    put(&store, 0, 1, 1, 2, &[(1, b'a'), (2, b'a')]);
    let replica = open(&store);
    let mut conn = Connection::new(replica.clone(), "t");
    let read_header = |c: &mut Connection| {
        let mut h = [0u8; 100];
        in_txn(c, |c| c.read(0, &mut h).unwrap());
        h
    };
    let h1 = read_header(&mut conn);
    assert_eq!((h1[18], h1[19]), (1, 1));
    assert_eq!(&h1[24..28], &h1[92..96], "version-valid-for matches the counter");
    assert_eq!(u32::from_be_bytes([h1[28], h1[29], h1[30], h1[31]]), 2, "in-header size = commit");
    // The 16-byte probe SQLite makes at offset 24 sees the same counter: its cache stays warm.
    let mut probe = [0u8; 16];
    in_txn(&mut conn, |c| c.read(24, &mut probe).unwrap());
    assert_eq!(&probe[..4], &h1[24..28]);
    assert_eq!(read_header(&mut conn), h1, "unchanged while the TXID is unchanged");
    put(&store, 0, 2, 2, 2, &[(1, b'b')]);
    replica.poll_once().unwrap();
    let h2 = read_header(&mut conn);
    assert_ne!(&h2[24..28], &h1[24..28], "a new TXID changes the counter");
}

#[test]
fn time_travel_errors_leave_the_view_untouched() {
    let store = Arc::new(MemStore::default());
    put(&store, 0, 1, 1, 1, &[(1, b'a')]);
    put(&store, 0, 2, 2, 1, &[(1, b'b')]);
    let replica = open(&store);
    let mut conn = Connection::new(replica.clone(), "t");
    // Files are "created" at 1 s and 2 s after the epoch.
    conn.set_time("1970-01-01T00:00:01.5Z").unwrap();
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 1)).unwrap(), b'a');
    assert_eq!(conn.time_text(), "1970-01-01T00:00:01.5Z");
    let e = conn.set_time("1970-01-01T00:00:00.5Z").unwrap_err();
    assert_eq!(e.message, "cannot calc restore plan: transaction not available");
    let e = conn.set_time("garbage in").unwrap_err();
    assert!(e.message.starts_with("invalid timestamp"), "{e}");
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 1)).unwrap(), b'a', "still travelling");
    conn.set_time("LATEST").unwrap();
    assert_eq!(in_txn(&mut conn, |c| byte_of(c, 1)).unwrap(), b'b');
}
