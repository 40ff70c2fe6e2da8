//! The scheduled poll (`Replica::poll_tick`) against the in-memory store with a manual clock:
//! an idle replica costs one probe per poll and a listing every `DEFAULT_LIST_EVERY` polls;
//! L0 is still followed at once, L1 compactions and gaps within one listing period.

use bytes::Bytes;
use ltxvfs::layout::{Layout, LevelStyle};
use ltxvfs::ltx::{self, Header};
use ltxvfs::memory_storage::MemoryStorage;
use ltxvfs::poll_schedule::DEFAULT_LIST_EVERY;
use ltxvfs::replica::{Replica, ReplicaOptions};
use ltxvfs::storage::{Clock, UnixNanos};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const PS: u32 = 512;

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

fn put(store: &MemoryStorage, level: u8, min: u64, max: u64, fill: u8) {
    let header = Header {
        flags: ltx::HEADER_FLAG_NO_CHECKSUM,
        page_size: PS,
        commit: 1,
        min_txid: min,
        max_txid: max,
        timestamp_ms: 1_000 * max as i64,
        ..Default::default()
    };
    let page = vec![fill; PS as usize];
    let encoded = ltx::encode_file(&header, &[(1, page.as_slice())]).expect("encode");
    store.insert(&layout().key(level, min, max), Bytes::from(encoded.bytes), 1_000_000_000 * max as i64);
}

fn open(store: &Arc<MemoryStorage>) -> (Arc<Replica>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let opts = ReplicaOptions { open_timeout: Duration::from_secs(2), ..Default::default() };
    (Replica::open(store.clone(), clock.clone(), layout(), opts).expect("open"), clock)
}

/// (requests, lists) sent so far.
fn counts(r: &Replica) -> (u64, u64) {
    (r.stats.requests.load(Ordering::Relaxed), r.stats.lists.load(Ordering::Relaxed))
}

/// Tick up to `max` polls, one interval apart, until the position reaches `txid`; polls used.
fn ticks_until(r: &Replica, clock: &ManualClock, txid: u64, max: u32) -> Option<u32> {
    for n in 1..=max {
        clock.sleep(r.options().poll_interval);
        r.poll_tick().expect("poll");
        if r.current().txid >= txid {
            return Some(n);
        }
    }
    None
}

#[test]
fn an_idle_replica_probes_once_per_poll_and_rarely_lists() {
    let store = Arc::new(MemoryStorage::new());
    put(&store, 0, 1, 1, b'a');
    let (replica, clock) = open(&store);
    let before = counts(&replica);
    let polls = 2 * DEFAULT_LIST_EVERY;
    assert_eq!(ticks_until(&replica, &clock, 2, polls), None);
    let (requests, lists) = (counts(&replica).0 - before.0, counts(&replica).1 - before.1);
    assert_eq!(lists, 2 * 2, "two listings (L0 and L1) in {polls} polls");
    assert_eq!(requests, u64::from(polls) - 2, "one probe per poll that did not list");
    assert_eq!(replica.lag_seconds(), 0, "a probe is a successful poll");
}

#[test]
fn new_l0_files_are_followed_on_the_next_poll() {
    let store = Arc::new(MemoryStorage::new());
    put(&store, 0, 1, 1, b'a');
    let (replica, clock) = open(&store);
    for t in 2..=4 {
        put(&store, 0, t, t, b'0' + t as u8);
        assert_eq!(ticks_until(&replica, &clock, t, 1), Some(1), "txid {t} on the next poll");
    }
}

#[test]
fn l1_compactions_and_multi_txid_files_are_followed_within_one_listing_period() {
    let store = Arc::new(MemoryStorage::new());
    for t in 1..=3 {
        put(&store, 0, t, t, b'a');
    }
    let (replica, clock) = open(&store);
    // Compaction, then retention removes L0: only L1 carries the next TXIDs; no probe sees it.
    put(&store, 1, 1, 5, b'5');
    for t in 1..=3 {
        store.remove(&layout().key(0, t, t));
    }
    let polls = ticks_until(&replica, &clock, 5, DEFAULT_LIST_EVERY).expect("followed by the periodic listing");
    assert!(polls <= DEFAULT_LIST_EVERY);
    assert_eq!(replica.current().max_l1, 5);
    // An L0 file spanning several TXIDs is found the same way.
    put(&store, 0, 6, 8, b'8');
    assert!(ticks_until(&replica, &clock, 8, DEFAULT_LIST_EVERY).is_some());
}

#[test]
fn a_hit_lists_l0_from_the_position_and_the_whole_listing_still_comes() {
    let store = Arc::new(MemoryStorage::new());
    put(&store, 0, 1, 1, b'a');
    let (replica, clock) = open(&store);
    put(&store, 0, 2, 2, b'b');
    let before = counts(&replica);
    assert_eq!(ticks_until(&replica, &clock, 2, 1), Some(1));
    assert_eq!(counts(&replica).1 - before.1, 1, "one listing (L0 from the position), not L0 and L1");
    // A writer on every poll: every poll hits, and the whole listing (which sees L1) still
    // comes within DEFAULT_LIST_EVERY polls.
    put(&store, 1, 1, 2, b'c');
    for t in 3..3 + u64::from(DEFAULT_LIST_EVERY) {
        put(&store, 0, t, t, b'0' + (t % 10) as u8);
        assert_eq!(ticks_until(&replica, &clock, t, 1), Some(1), "txid {t} on the next poll");
    }
    assert_eq!(replica.current().max_l1, 2, "the compaction was seen by a whole listing");
}

#[test]
fn a_gap_still_waits_and_is_filled() {
    let store = Arc::new(MemoryStorage::new());
    put(&store, 0, 1, 1, b'a');
    let (replica, clock) = open(&store);
    put(&store, 0, 3, 3, b'c');
    assert_eq!(ticks_until(&replica, &clock, 2, 2 * DEFAULT_LIST_EVERY), None, "TXID 2 is missing: wait");
    assert_eq!(replica.current().txid, 1);
    put(&store, 0, 2, 2, b'b');
    assert_eq!(ticks_until(&replica, &clock, 3, 1), Some(1), "the probe of TXID 2 hits; the listing applies 2 and 3");
}

#[test]
fn wait_returns_at_once_when_the_txid_is_there_or_arrives() {
    let store = Arc::new(MemoryStorage::new());
    put(&store, 0, 1, 1, b'a');
    let (replica, clock) = open(&store);
    assert_eq!(replica.wait_for_txid(1, Duration::ZERO).unwrap(), 1);
    // Arrived, but not yet polled: the wait polls at once instead of waiting for the tick.
    put(&store, 0, 2, 2, b'b');
    let t0 = clock.now();
    let mut conn = ltxvfs::connection::Connection::new(replica.clone(), "t");
    match conn.pragma("litestream_wait", Some("2,5s")) {
        ltxvfs::connection::PragmaResult::Value(v) => assert_eq!(v.unwrap().as_deref(), Some("0000000000000002")),
        _ => panic!("litestream_wait is ours"),
    }
    assert_eq!(clock.now(), t0, "no sleep was needed");
}

#[test]
fn wait_for_a_txid_that_never_arrives_times_out_clearly() {
    let store = Arc::new(MemoryStorage::new());
    put(&store, 0, 1, 1, b'a');
    let (replica, clock) = open(&store);
    let t0 = clock.now();
    let e = replica.wait_for_txid(7, Duration::from_millis(1500)).unwrap_err();
    assert_eq!(e.kind, ltxvfs::ErrorKind::Timeout);
    assert_eq!(
        e.message,
        "litestream_wait: TXID 0000000000000007 not reached within 1.5s (replica at 0000000000000001)"
    );
    assert!(clock.now() - t0 >= 1_500_000_000, "it waited the whole timeout");
    assert!(clock.now() - t0 < 1_700_000_000, "and not much longer");
    let mut conn = ltxvfs::connection::Connection::new(replica.clone(), "t");
    match conn.pragma("litestream_wait", Some("nope")) {
        ltxvfs::connection::PragmaResult::Value(v) => {
            assert!(v.unwrap_err().message.starts_with("invalid value for litestream_wait"))
        }
        _ => panic!("litestream_wait is ours"),
    }
}

fn open_min_level(store: &Arc<MemoryStorage>, min_level: u8) -> (Arc<Replica>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let opts = ReplicaOptions { open_timeout: Duration::from_secs(2), min_level, ..Default::default() };
    (Replica::open(store.clone(), clock.clone(), layout(), opts).expect("open"), clock)
}

#[test]
fn min_level_reads_and_follows_only_compacted_levels() {
    let store = Arc::new(MemoryStorage::new());
    for t in 1..=4 {
        put(&store, 0, t, t, b'0' + t as u8);
    }
    put(&store, 1, 1, 3, b'3');
    let (replica, clock) = open_min_level(&store, 1);
    assert_eq!(replica.current().txid, 3, "L0 file 4 is ignored");
    let before = counts(&replica);
    put(&store, 0, 5, 5, b'5');
    assert_eq!(ticks_until(&replica, &clock, 4, 3), None, "new L0 files are not followed");
    let (requests, lists) = (counts(&replica).0 - before.0, counts(&replica).1 - before.1);
    assert_eq!((requests, lists), (0, 3), "one LIST of level 1 per poll, no probe");
    put(&store, 1, 4, 5, b'5');
    assert_eq!(ticks_until(&replica, &clock, 5, 1), Some(1), "the next L1 compaction is followed");
    // Level 2 and above only: at open nothing is available below level 2 but the snapshot.
    let store2 = Arc::new(MemoryStorage::new());
    put(&store2, 9, 1, 2, b's');
    put(&store2, 1, 3, 3, b'x');
    put(&store2, 2, 3, 4, b'y');
    let (replica2, _) = open_min_level(&store2, 2);
    assert_eq!(replica2.current().txid, 4);
}
