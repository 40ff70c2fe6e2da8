//! When a poll lists the replica and when it only probes for the next L0 file.
//!
//! Litestream names the L0 file that follows position `pos` `<pos+1>-<pos+1>.ltx`
//! (one TXID per L0 file), so an idle replica is watched with one cheap request per poll:
//! a HEAD (or stat) of that name. When the probe finds the file, the poll lists L0 *from its
//! position* only (`Storage::list_after`, MinTXID ≥ pos + 1: S3 `start-after`, REPLICA.md §2),
//! so a busy replica's growing L0 is not re-listed whole on every transaction. A whole
//! listing of L0 and L1 runs every `list_every` polls, hits included, to catch what neither
//! can see: L1 compactions, L0 files spanning several TXIDs, gaps filled from a higher level,
//! and deleted files to forget. Pure state; the replica owns one behind a mutex.

use crate::layout::Layout;

/// Polls between two full listings by default: an idle reader LISTs once every 20 polls
/// (two LISTs, L0 and L1), so about 1.05 requests per poll interval and 0.05× Go's LISTs.
pub const DEFAULT_LIST_EVERY: u32 = 20;

/// What the next poll does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollStep {
    /// Ask whether this key exists; list only if it does.
    Probe(String),
    /// List L0 and L1 (the full poll of VFS.md §8).
    List,
}

/// Counts polls since the last whole listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSchedule {
    list_every: u32,
    /// Polls since the last whole listing (probes, and listings from the position).
    probes_since_list: u32,
}

impl PollSchedule {
    /// `list_every` ≥ 1; 1 lists on every poll (Go's behaviour).
    pub fn new(list_every: u32) -> Self {
        Self { list_every: list_every.max(1), probes_since_list: 0 }
    }

    /// The step for a replica at position `pos`.
    pub fn next_step(&self, layout: &Layout, pos: u64) -> PollStep {
        if self.probes_since_list + 1 >= self.list_every {
            return PollStep::List;
        }
        match pos.checked_add(1) {
            Some(next) => PollStep::Probe(next_l0_key(layout, next)),
            None => PollStep::List,
        }
    }

    /// The probe found nothing: the poll is over.
    pub fn probed_nothing(&mut self) {
        self.probes_since_list = self.probes_since_list.saturating_add(1);
    }

    /// The probe found a file and L0 was listed from the position: a poll like a probe, so a
    /// replica that changes on every poll still gets its whole listing every `list_every` polls.
    pub fn listed_from_position(&mut self) {
        self.probes_since_list = self.probes_since_list.saturating_add(1);
    }

    /// A whole listing ran (it was due, or a caller polled outside the schedule).
    pub fn listed(&mut self) {
        self.probes_since_list = 0;
    }
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self::new(DEFAULT_LIST_EVERY)
    }
}

/// The key Litestream gives the L0 file holding TXID `txid`.
pub fn next_l0_key(layout: &Layout, txid: u64) -> String {
    layout.key(0, txid, txid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LevelStyle;

    fn layout() -> Layout {
        Layout::new("db", LevelStyle::Hex4)
    }

    #[test]
    fn probes_the_next_l0_name_and_lists_every_n_polls() {
        let mut s = PollSchedule::new(4);
        let mut steps = Vec::new();
        for _ in 0..8 {
            let step = s.next_step(&layout(), 5);
            match step {
                PollStep::Probe(_) => s.probed_nothing(),
                PollStep::List => s.listed(),
            }
            steps.push(step);
        }
        let probe = PollStep::Probe("db/0000/0000000000000006-0000000000000006.ltx".into());
        assert_eq!(steps[..4], [probe.clone(), probe.clone(), probe.clone(), PollStep::List]);
        assert_eq!(steps[4..], [probe.clone(), probe.clone(), probe, PollStep::List]);
    }

    #[test]
    fn a_hit_resets_the_count() {
        let mut s = PollSchedule::new(3);
        s.probed_nothing();
        s.listed();
        assert!(matches!(s.next_step(&layout(), 1), PollStep::Probe(_)));
        s.probed_nothing();
        assert!(matches!(s.next_step(&layout(), 1), PollStep::Probe(_)));
        s.probed_nothing();
        assert_eq!(s.next_step(&layout(), 1), PollStep::List);
    }

    #[test]
    fn hits_do_not_postpone_the_whole_listing() {
        let mut s = PollSchedule::new(3);
        for _ in 0..2 {
            assert!(matches!(s.next_step(&layout(), 1), PollStep::Probe(_)));
            s.listed_from_position();
        }
        assert_eq!(s.next_step(&layout(), 1), PollStep::List, "every 3rd poll, though each one found a file");
        s.listed();
        assert!(matches!(s.next_step(&layout(), 1), PollStep::Probe(_)));
    }

    #[test]
    fn one_means_always_list_and_the_last_txid_lists() {
        assert_eq!(PollSchedule::new(1).next_step(&layout(), 1), PollStep::List);
        assert_eq!(PollSchedule::new(0).next_step(&layout(), 1), PollStep::List);
        assert_eq!(PollSchedule::default().next_step(&layout(), u64::MAX), PollStep::List);
    }

    #[test]
    fn file_layout_names() {
        let l = Layout::new("/r", LevelStyle::LtxDecimal);
        assert_eq!(next_l0_key(&l, 0x10), "/r/ltx/0/0000000000000010-0000000000000010.ltx");
    }
}
