//! Interior pages first: fetch the interior (non-leaf) b-tree pages of every table and index,
//! level by level, so that a cold lookup afterwards costs one request, for its leaf.
//!
//! All leaves of a b-tree are at the same depth, so one probe per tree and level tells whether
//! the next level is interior: the children of a level are fetched only when the first of them
//! is interior (one wasted leaf per tree). Each round is one concurrent batch; adjacent frames
//! of one file are one request. Bounded by a page budget (a share of the cache).
//!
//! Page 1 and the interior pages fetched are pinned in the cache ([`crate::cache::PageCache::pin`]):
//! random lookups stream a leaf each through the cache's probationary section, and an interior
//! page not hit before it reaches the end would be evicted and fetched again.

use crate::btree_pages::{interior_children, page_kind, schema_root_pages};
use crate::error::Result;
use crate::read_planner::Extent;
use bytes::Bytes;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::{Replica, View};

/// Share of the cache the prefetch may fill (native only: the component has no background work).
#[cfg_attr(target_family = "wasm", allow(dead_code))]
pub const INTERIOR_CACHE_SHARE: u64 = 4;

/// Read transactions before the prefetch starts: a one-shot user (open, one query) pays
/// nothing for it; a connection that goes on is long-lived, and its lookups then get cheaper.
pub const PREFETCH_AFTER_TRANSACTIONS: u32 = 8;

impl Replica {
    /// Fetch the interior pages of `view` into the cache, at most `budget_bytes`. Returns how
    /// many pages were fetched (probes included).
    pub fn prefetch_interior(&self, view: &View, budget_bytes: u64) -> Result<usize> {
        let mut budget = (budget_bytes / u64::from(view.page_size.max(512))) as usize;
        let mut seen: HashSet<u32> = HashSet::new();
        let mut fetched = 0usize;
        let mut fetch = |pages: &[u32], budget: &mut usize| -> Result<Vec<(u32, Bytes)>> {
            let wanted: Vec<u32> = pages.iter().copied().filter(|p| seen.insert(*p)).take(*budget).collect();
            *budget -= wanted.len();
            fetched += wanted.len();
            let pages = self.fetch_pages(view, &wanted)?;
            self.pin_interior(view, &pages);
            Ok(pages)
        };
        // The schema b-tree (page 1): every page of it, for the root pages it lists.
        let Some((_, page1)) = fetch(&[1], &mut budget)?.pop() else { return Ok(fetched) };
        let usable = view.page_size as usize - page1.get(20).copied().unwrap_or(0) as usize;
        let mut roots: Vec<u32> = Vec::new();
        let mut level = vec![(1u32, page1)];
        while !level.is_empty() {
            let mut next = Vec::new();
            for (pgno, page) in &level {
                next.extend(interior_children(page, *pgno));
                roots.extend(schema_root_pages(page, *pgno, usable));
            }
            level = if next.is_empty() || budget == 0 { Vec::new() } else { fetch(&next, &mut budget)? };
        }
        // Every other tree, level by level.
        let mut frontier: Vec<(usize, u32)> = roots.iter().copied().enumerate().collect();
        let mut pages: BTreeMap<u32, Bytes> = BTreeMap::new();
        while !frontier.is_empty() && budget > 0 {
            let want: Vec<u32> = frontier.iter().map(|&(_, p)| p).filter(|p| !pages.contains_key(p)).collect();
            pages.extend(fetch(&want, &mut budget)?);
            let mut children: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            for &(tree, pgno) in &frontier {
                if let Some(page) = pages.get(&pgno) {
                    children.entry(tree).or_default().extend(interior_children(page, pgno));
                }
            }
            children.retain(|_, c| !c.is_empty());
            let probes: Vec<u32> = children.values().map(|c| c[0]).collect();
            pages.extend(fetch(&probes, &mut budget)?);
            frontier = Vec::new();
            for (tree, c) in children {
                let interior = pages.get(&c[0]).and_then(|p| page_kind(p, c[0])).is_some_and(|k| k.is_interior());
                if interior {
                    frontier.extend(c.into_iter().map(|p| (tree, p)));
                }
            }
            pages.retain(|p, _| frontier.iter().any(|&(_, f)| f == *p));
        }
        Ok(fetched)
    }

    /// Pin page 1 and the interior b-tree pages among `pages`, so that they stay cached.
    fn pin_interior(&self, view: &View, pages: &[(u32, Bytes)]) {
        for (pgno, page) in pages {
            let interior = *pgno == 1 || page_kind(page, *pgno).is_some_and(|k| k.is_interior());
            if let (true, Some(loc)) = (interior, view.index.get(*pgno)) {
                self.cache.pin(loc.file, loc.offset, page.clone());
            }
        }
    }

    /// The raw bytes of `pgnos` (those in the view), fetched in one concurrent batch where not
    /// cached, adjacent frames of one file merged into one request.
    fn fetch_pages(&self, view: &View, pgnos: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let mut locs: Vec<(u32, crate::page_index::PageLoc)> =
            pgnos.iter().filter_map(|&p| view.index.get(p).map(|l| (p, l))).collect();
        let missing: Vec<_> =
            locs.iter().filter(|(_, l)| !self.cache.contains(l.file, l.offset)).map(|x| x.1).collect();
        if let Some(&first) = missing.first() {
            let mut sorted = missing.clone();
            sorted.sort_by_key(|l| (l.file, l.offset));
            let mut extents: Vec<Extent> = Vec::new();
            for l in sorted {
                match extents.last_mut() {
                    Some(e) if e.file == l.file && e.range.end == l.offset => e.range.end = l.end(),
                    _ => extents.push(Extent { file: l.file, range: l.offset..l.end(), whole_file: false }),
                }
            }
            // The wanted page's extent first (its failure is the batch's failure).
            if let Some(i) = extents.iter().position(|e| e.file == first.file && e.range.contains(&first.offset)) {
                extents.swap(0, i);
            }
            self.fetch_extents_once(&extents, view, first)?;
        }
        let mut out = Vec::with_capacity(locs.len());
        let mut history = crate::read_planner::AccessHistory::default();
        for (p, _) in locs.drain(..) {
            out.push((p, self.read_page(view, p, &mut history)?));
        }
        Ok(out)
    }

    /// Count a read transaction; the one after [`PREFETCH_AFTER_TRANSACTIONS`] starts the
    /// prefetch (once per replica).
    pub fn note_read_transaction(self: &Arc<Self>) {
        let n = self.read_transactions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n == PREFETCH_AFTER_TRANSACTIONS {
            self.start_interior_prefetch();
        }
    }

    /// Prefetch the interior pages of the latest view in the background (native), within a
    /// quarter of the cache.
    pub fn start_interior_prefetch(self: &Arc<Self>) {
        cfg_if::cfg_if! {
            if #[cfg(target_family = "wasm")] {
                // Single-threaded: no background work.
            } else {
                let weak = Arc::downgrade(self);
                let spawned = std::thread::Builder::new().name("ltxvfs-interior".into()).spawn(move || {
                    let Some(replica) = weak.upgrade() else { return };
                    let view = replica.current();
                    let budget = replica.opts.cache_size / INTERIOR_CACHE_SHARE;
                    match replica.prefetch_interior(&view, budget) {
                        Ok(n) => tracing::debug!(pages = n, "interior pages prefetched"),
                        Err(e) => tracing::debug!(error = %e, "interior page prefetch stopped"),
                    }
                });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start the interior prefetch thread");
                }
            }
        }
    }
}
