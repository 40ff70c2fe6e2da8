//! Interior pages first (issue 12), in request counts on a fixture written by the real
//! litestream (tests/fixtures/ps512: 512-byte pages, so its b-trees have interior levels):
//! after the prefetch, a cold descent from any root to a leaf costs one request, the leaf's.

mod common;

use ltxvfs::btree_pages::{interior_children, page_kind, schema_root_pages};
use ltxvfs::read_planner::{AccessHistory, PlannerConfig};
use ltxvfs::replica::{Replica, View};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn open() -> Arc<Replica> {
    open_with_cache(1 << 20)
}

fn open_with_cache(cache_size: u64) -> Arc<Replica> {
    // One frame per isolated miss: no neighbours, no whole files, so requests count pages.
    let planner = PlannerConfig {
        min_request: 512,
        initial_readahead: 512,
        max_readahead: 512,
        whole_file_threshold: 0,
        sequential_stride: 0,
        ahead_request: 512,
    };
    common::open_ps512(planner, cache_size)
}

fn requests(r: &Replica) -> u64 {
    r.stats.requests.load(Ordering::Relaxed)
}

/// Roots of every b-tree (schema included), read through the replica.
fn roots(r: &Replica, view: &View) -> Vec<u32> {
    let mut h = AccessHistory::default();
    let page1 = r.read_page(view, 1, &mut h).unwrap();
    let mut out = vec![1];
    let mut level = vec![(1u32, page1)];
    while !level.is_empty() {
        let mut next = Vec::new();
        for (p, b) in &level {
            out.extend(schema_root_pages(b, *p, view.page_size as usize));
            for c in interior_children(b, *p) {
                next.push((c, r.read_page(view, c, &mut h).unwrap()));
            }
        }
        level = next;
    }
    out
}

/// Descend from `root` choosing child `pick % n` at each level; (requests, depth) of the walk.
fn descend(r: &Replica, view: &View, root: u32, pick: usize) -> (u64, u32) {
    let before = requests(r);
    let mut pgno = root;
    let mut depth = 1;
    loop {
        let page = r.read_page(view, pgno, &mut AccessHistory::default()).unwrap();
        let children = interior_children(&page, pgno);
        if children.is_empty() {
            return (requests(r) - before, depth);
        }
        pgno = children[pick % children.len()];
        depth += 1;
    }
}

#[test]
fn after_the_prefetch_a_cold_lookup_costs_one_request() {
    let replica = open();
    let view = replica.current();
    let before = requests(&replica);
    let fetched = replica.prefetch_interior(&view, 1 << 18).unwrap();
    let prefetch_requests = requests(&replica) - before;
    assert!(fetched > 1, "the fixture has interior pages");
    assert!(prefetch_requests <= fetched as u64, "batched: at most one request per page");
    let trees = roots(&replica, &view);
    assert!(trees.len() >= 2, "{trees:?}");
    let mut deep = 0;
    for (i, &root) in trees.iter().enumerate() {
        for pick in [0usize, 1, 2, 3, 5, 8, 13, 1000 + i] {
            let (cost, depth) = descend(&replica, &view, root, pick);
            assert!(cost <= 1, "root {root} pick {pick}: {cost} requests for a depth-{depth} descent");
            if depth > 1 {
                deep += 1;
            }
        }
    }
    assert!(deep > 0, "some tree has an interior level");
}

#[test]
fn without_the_prefetch_a_deep_descent_costs_a_request_per_level() {
    let replica = open();
    let view = replica.current();
    let trees = roots(&replica, &view);
    // A fresh replica (empty cache) for the walk; the roots' list came from the first one.
    let cold = open();
    let view = cold.current();
    let worst = trees.iter().map(|&root| descend(&cold, &view, root, 7)).max_by_key(|&(c, _)| c).unwrap();
    assert!(worst.0 >= 2 && worst.0 == u64::from(worst.1), "{worst:?}");
    let _ = page_kind;
}

#[test]
fn the_budget_bounds_the_prefetch() {
    let replica = open();
    let view = replica.current();
    let before = requests(&replica);
    assert_eq!(replica.prefetch_interior(&view, 3 * 512).unwrap(), 3);
    assert!(requests(&replica) - before <= 3);
}

#[test]
fn interior_pages_stay_cached_while_leaves_stream_through_a_small_cache() {
    // A 32 KiB cache (64 pages of 512 bytes) and a 76-page database: reading every page
    // twice over evicts pages that are only cached, but not the pinned interior pages.
    let replica = open_with_cache(32 * 1024);
    let view = replica.current();
    let trees = roots(&replica, &view);
    replica.prefetch_interior(&view, 8 * 1024).unwrap();
    assert!(replica.cache().pinned_weight() > 0, "the prefetch pinned pages");
    for _ in 0..2 {
        for p in (1..=view.commit).rev() {
            replica.read_page(&view, p, &mut AccessHistory::default()).unwrap();
        }
    }
    for &root in &trees {
        for pick in [0usize, 3, 7, 1000] {
            let (cost, depth) = descend(&replica, &view, root, pick);
            assert!(cost <= 1, "root {root} pick {pick}: {cost} requests for a depth-{depth} descent after the churn");
        }
    }
    assert!(replica.cache().weight() <= replica.cache().capacity());
}
