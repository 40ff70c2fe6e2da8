//! Pipelined read-ahead (issue 12) on a fixture written by the real litestream
//! (tests/fixtures/ps512): a scan that keeps chunks in flight on background threads reads the
//! same bytes as page-by-page reads, at most one request per page, and once the read-ahead is
//! joined (a connection's close) no read-ahead thread is left running.
//!
//! One test in this binary: it looks at the process's threads.

mod common;

use ltxvfs::read_planner::{AccessHistory, PlannerConfig};
use ltxvfs::replica::Replica;
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn open() -> Arc<Replica> {
    // Small windows and chunks so that a 76-page database streams: windows of 2 to 8 pages,
    // background chunks of 2 pages, no whole files.
    let planner = PlannerConfig {
        min_request: 512,
        initial_readahead: 1024,
        max_readahead: 4096,
        whole_file_threshold: 0,
        sequential_stride: 8,
        ahead_request: 1024,
    };
    common::open_ps512(planner, 1 << 20)
}

/// Threads of this process named `ltxvfs-ahead` (Linux: /proc/self/task/*/comm).
fn ahead_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "ltxvfs-ahead")
        .count()
}

#[test]
fn a_streamed_scan_reads_the_same_pages_and_joins_its_threads() {
    // Reference: every page read alone (a fresh history per read: never a window).
    let plain = open();
    let view = plain.current();
    let before = plain.stats.requests.load(Ordering::Relaxed);
    let want: Vec<_> =
        (1..=view.commit).map(|p| plain.read_page(&view, p, &mut AccessHistory::default()).unwrap()).collect();
    let plain_requests = plain.stats.requests.load(Ordering::Relaxed) - before;

    let streamed = open();
    let view = streamed.current();
    let before = streamed.stats.requests.load(Ordering::Relaxed);
    let mut history = AccessHistory::default();
    let mut streaming = false;
    for p in 1..=view.commit {
        let page = streamed.read_page(&view, p, &mut history).unwrap();
        assert_eq!(page, want[p as usize - 1], "page {p}");
        streaming |= history.is_streaming();
    }
    streamed.join_read_ahead();
    let streamed_requests = streamed.stats.requests.load(Ordering::Relaxed) - before;
    assert!(streaming, "the scan started a read-ahead stream");
    // A 76-page database spread over several files: 2-page chunks are one request per file
    // each, so no fewer requests than isolated reads with neighbours here, but never one per
    // page or more (the request savings are measured on real scans in BENCHMARKS.md).
    assert!(
        streamed_requests < u64::from(view.commit),
        "streamed {streamed_requests} requests for {} pages (page by page: {plain_requests})",
        view.commit
    );
    assert_eq!(ahead_threads(), 0, "no read-ahead thread outlives the join");
    // The bytes in the cache stay within its capacity.
    assert!(streamed.cache().weight() <= streamed.cache().capacity());
}
