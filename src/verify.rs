//! `PRAGMA litestream_verify`: an audit of what a connection reads (Graft's `graft_audit`).
//!
//! It fetches every file of the view's restore plan whole, one at a time, decodes each with
//! every check of the format (CRC-64 of the file included), applies them in plan order keeping
//! only one page checksum per page (8 bytes a page, never the pages), and compares the
//! database checksum with the post-apply checksum in the last file's trailer. It reports every
//! problem it finds, not just the first.

use crate::error::Result;
use crate::ltx::{self, CHECKSUM_FLAG};
use crate::plan::{LtxFileInfo, Target, restore_plan};
use crate::replica::{Replica, View};
use crate::storage::RangeRequest;
use std::collections::HashMap;

/// What the audit found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    pub bytes: u64,
    /// The database checksum computed from the plan, when every file decoded.
    pub checksum: Option<u64>,
    pub problems: Vec<String>,
}

impl Report {
    /// The one-line PRAGMA answer: `ok: …` or `FAILED: problem; problem`.
    pub fn text(&self) -> String {
        if self.problems.is_empty() {
            let sum = self.checksum.map_or_else(|| "not recorded".to_string(), |c| format!("{c:016x}"));
            format!("ok: {} files, {} bytes, CRC-64 of each verified, database checksum {sum}", self.files, self.bytes)
        } else {
            format!("FAILED: {}", self.problems.join("; "))
        }
    }
}

/// Page checksums of the database being rebuilt, and the final check (pure: tested alone).
#[derive(Default)]
struct Rebuild {
    pages: HashMap<u32, u64>,
    tracked: bool,
}

impl Rebuild {
    fn apply(&mut self, file: &ltx::DecodedFile) {
        if file.header.is_snapshot() {
            self.pages.clear();
        }
        self.tracked = !file.header.no_checksum();
        let lock = file.header.lock_pgno();
        for (pgno, data) in &file.pages {
            if *pgno != lock {
                self.pages.insert(*pgno, ltx::page_checksum(*pgno, data));
            }
        }
        self.pages.retain(|&p, _| p <= file.header.commit);
    }

    /// `ChecksumFlag | XOR of every page's checksum` (LTX.md §9.3).
    fn checksum(&self) -> u64 {
        CHECKSUM_FLAG | self.pages.values().fold(0, |acc, c| acc ^ c)
    }
}

/// Audit `view`: every file of its plan, and the database it adds up to.
pub fn verify(replica: &Replica, view: &View) -> Result<Report> {
    let listing = replica.list_all(false)?;
    let plan = restore_plan(&listing, Target::Txid(view.txid))?;
    Ok(verify_plan(replica, &plan))
}

fn verify_plan(replica: &Replica, plan: &[LtxFileInfo]) -> Report {
    let mut report = Report::default();
    let mut rebuild = Rebuild::default();
    let mut complete = true;
    let mut last_post_apply = 0;
    for f in plan {
        report.files += 1;
        let req = RangeRequest { key: f.key.clone(), range: 0..f.size };
        let bytes = match replica.fetch_ranges(&[req]).pop() {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                report.problems.push(format!("{}: {e}", f.key));
                complete = false;
                continue;
            }
            None => {
                report.problems.push(format!("{}: not fetched", f.key));
                complete = false;
                continue;
            }
        };
        report.bytes += bytes.len() as u64;
        match ltx::decode_file(&bytes) {
            Ok(decoded) => {
                if decoded.header.min_txid != f.min_txid || decoded.header.max_txid != f.max_txid {
                    report.problems.push(format!("{}: header TXIDs do not match the file name", f.key));
                }
                last_post_apply = decoded.post_apply_checksum;
                rebuild.apply(&decoded);
            }
            Err(e) => {
                report.problems.push(format!("{}: {e}", f.key));
                complete = false;
            }
        }
    }
    if complete && rebuild.tracked && last_post_apply != 0 {
        let sum = rebuild.checksum();
        report.checksum = Some(sum);
        if sum != last_post_apply {
            report.problems.push(format!(
                "database checksum {sum:016x} after applying the plan, the last file records {last_post_apply:016x}"
            ));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ltx::{Header, encode_file_with_post_apply};

    fn header(min: u64, max: u64, commit: u32) -> Header {
        Header {
            flags: 0,
            page_size: 512,
            commit,
            min_txid: min,
            max_txid: max,
            timestamp_ms: 0,
            pre_apply_checksum: if min == 1 { 0 } else { CHECKSUM_FLAG | 1 },
            wal_offset: 0,
            wal_size: 0,
            wal_salt1: 0,
            wal_salt2: 0,
            node_id: 0,
        }
    }

    #[test]
    fn rebuild_checksum_matches_a_snapshot_of_the_final_state() {
        let (a, b, c) = (vec![1u8; 512], vec![2u8; 512], vec![3u8; 512]);
        // Snapshot 1-2, then an update of page 2 and a shrink to one page.
        let snap = encode_file_with_post_apply(&header(1, 1, 2), &[(1, &a[..]), (2, &b[..])], None).unwrap();
        let snap = ltx::decode_file(&snap.bytes).unwrap();
        let mut r = Rebuild::default();
        r.apply(&snap);
        assert_eq!(r.checksum(), snap.post_apply_checksum, "a snapshot's own trailer");
        let mut later = ltx::decode_file(
            &encode_file_with_post_apply(&header(2, 2, 1), &[(1, &c[..])], Some(CHECKSUM_FLAG | 7)).unwrap().bytes,
        )
        .unwrap();
        r.apply(&later);
        // What a snapshot of the final state (page 1 = c, one page) records.
        let fin = ltx::decode_file(&encode_file_with_post_apply(&header(1, 2, 1), &[(1, &c[..])], None).unwrap().bytes)
            .unwrap();
        assert_eq!(r.checksum(), fin.post_apply_checksum);
        later.pages.clear();
        assert!(Report { problems: vec!["x".into()], ..Default::default() }.text().starts_with("FAILED: x"));
        assert!(Report { files: 2, ..Default::default() }.text().starts_with("ok: 2 files"));
    }
}
