//! Write mode against in-memory storage and buffers: the lock state machine (TESTS.md
//! LockStateMachine) with a truthful `xCheckReservedLock`, the writer slot, read-your-writes
//! across connections, the crash promise (a writer that vanishes without syncing leaves its
//! commits to the next one), and a conflict that reaches the next write and the sync.

use ltxvfs::ErrorKind;
use ltxvfs::connection::{Connection, Lock, WriteAccess};
use ltxvfs::layout::{Layout, LevelStyle};
use ltxvfs::memory_storage::MemoryStorage;
use ltxvfs::replica::{Replica, ReplicaOptions};
use ltxvfs::storage::{Storage, SystemClock};
use ltxvfs::write::buffer::MemoryBuffers;
use ltxvfs::write::{WriteOptions, Writer};
use std::sync::Arc;
use std::time::Duration;

const PS: usize = 512;

fn replica(store: &Arc<MemoryStorage>) -> Arc<Replica> {
    let opts = ReplicaOptions { allow_empty: true, poll_interval: Duration::from_secs(3600), ..Default::default() };
    Replica::open(store.clone(), Arc::new(SystemClock), Layout::new("db", LevelStyle::Hex4), opts).expect("open")
}

fn conn(replica: &Arc<Replica>, writer: &Arc<Writer>, buffers: &MemoryBuffers, path: &str) -> Connection {
    let options = WriteOptions { enabled: true, sync_interval: None, buffer_path: Some(path.into()) };
    let access = WriteAccess { buffers: Arc::new(buffers.clone()), options };
    let mut c = Connection::with_writer(replica.clone(), writer.clone(), "t", Some(access), "");
    c.enable_writes().expect("enable");
    c
}

/// One write transaction writing `pages` (pgno, fill byte), committed.
fn commit(c: &mut Connection, pages: &[(u32, u8)]) -> ltxvfs::Result<()> {
    c.lock(Lock::Shared)?;
    c.lock(Lock::Reserved)?;
    c.lock(Lock::Exclusive)?;
    for &(p, f) in pages {
        c.write((p as u64 - 1) * PS as u64, &[f; PS])?;
    }
    c.unlock(Lock::Shared)?;
    c.unlock(Lock::None)
}

fn byte(c: &mut Connection, pgno: u32) -> u8 {
    let mut b = [0u8; 1];
    c.lock(Lock::Shared).unwrap();
    c.read((pgno as u64 - 1) * PS as u64 + 200, &mut b).unwrap();
    c.unlock(Lock::None).unwrap();
    b[0]
}

#[test]
fn lock_state_machine_and_writer_slot() {
    let store = Arc::new(MemoryStorage::new());
    let r = replica(&store);
    let w = Writer::new(r.clone(), "mem://db");
    let bufs = MemoryBuffers::default();
    let mut a = conn(&r, &w, &bufs, "buf");
    let mut b = conn(&r, &w, &bufs, "buf");
    a.lock(Lock::Shared).unwrap();
    assert!(!a.check_reserved());
    a.lock(Lock::Reserved).unwrap();
    assert!(a.check_reserved() && b.check_reserved(), "the slot is visible to every connection");
    assert!(a.lock(Lock::Shared).unwrap_err().message.contains("invalid lock downgrade"));
    b.lock(Lock::Shared).unwrap();
    assert_eq!(b.lock(Lock::Reserved).unwrap_err().kind, ErrorKind::Busy);
    b.unlock(Lock::None).unwrap();
    a.unlock(Lock::Shared).unwrap();
    assert!(!a.check_reserved() && !b.check_reserved());
    assert!(a.unlock(Lock::Pending).is_err());
    a.lock(Lock::Exclusive).unwrap();
    a.unlock(Lock::None).unwrap();
}

#[test]
fn commits_are_read_everywhere_and_survive_a_vanished_writer() {
    let store = Arc::new(MemoryStorage::new());
    let bufs = MemoryBuffers::default();
    {
        let r = replica(&store);
        let w = Writer::new(r.clone(), "mem://db");
        let mut a = conn(&r, &w, &bufs, "buf");
        let mut reader = Connection::with_writer(r.clone(), w.clone(), "r", None, "read-only");
        commit(&mut a, &[(1, 1), (2, 2)]).unwrap();
        commit(&mut a, &[(2, 3)]).unwrap();
        assert_eq!((byte(&mut reader, 1), byte(&mut reader, 2)), (1, 3));
        assert_eq!(reader.file_size(), 2 * PS as u64);
        assert!(store.list("db/", false).unwrap().is_empty(), "nothing uploaded yet");
        // A crash: the connections vanish without closing (no final sync).
        std::mem::forget(a);
        std::mem::forget(reader);
    }
    let r = replica(&store);
    let w = Writer::new(r.clone(), "mem://db");
    let mut a = conn(&r, &w, &bufs, "buf");
    assert_eq!((byte(&mut a, 1), byte(&mut a, 2)), (1, 3), "recovered from the buffer");
    assert_eq!(w.sync().unwrap(), 1);
    let fresh = replica(&store);
    let mut c = Connection::new(fresh, "f");
    assert_eq!((byte(&mut c, 1), byte(&mut c, 2)), (1, 3));
    // A foreign buffer is refused, never applied.
    bufs.set("other", b"INVALID DATA".repeat(10));
    let w2 = Writer::new(replica(&store), "mem://db");
    let options = WriteOptions { enabled: true, sync_interval: None, buffer_path: Some("other".into()) };
    let access = WriteAccess { buffers: Arc::new(bufs.clone()), options };
    let mut bad = Connection::with_writer(w2.replica().clone(), w2.clone(), "b", Some(access), "");
    assert!(bad.enable_writes().unwrap_err().message.contains("write buffer memory:other cannot be used"));
}

#[test]
fn a_conflict_reaches_the_sync_and_the_next_write_until_discarded() {
    let store = Arc::new(MemoryStorage::new());
    let bufs = MemoryBuffers::default();
    let (ra, rb) = (replica(&store), replica(&store));
    let (wa, wb) = (Writer::new(ra.clone(), "mem://db"), Writer::new(rb.clone(), "mem://db"));
    let mut a = conn(&ra, &wa, &bufs, "a");
    let mut b = conn(&rb, &wb, &bufs, "b");
    commit(&mut a, &[(1, 1)]).unwrap();
    commit(&mut b, &[(1, 2)]).unwrap();
    assert_eq!(wa.sync().unwrap(), 1);
    let e = wb.sync().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("0000000000000000") && e.message.contains("0000000000000001"), "{e}");
    assert!(e.message.contains("memory:b"), "{e}");
    assert_eq!(byte(&mut b, 1), 2, "the loser keeps reading its own state");
    b.lock(Lock::Shared).unwrap();
    assert_eq!(b.lock(Lock::Reserved).unwrap_err().kind, ErrorKind::Conflict);
    b.unlock(Lock::None).unwrap();
    assert_eq!(wb.discard_local().unwrap(), 1);
    assert_eq!(byte(&mut b, 1), 1, "follows the remote after discarding");
    commit(&mut b, &[(1, 5)]).unwrap();
    assert_eq!(wb.sync().unwrap(), 2);
}
