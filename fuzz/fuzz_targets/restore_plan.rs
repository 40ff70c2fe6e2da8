//! The restore plan over arbitrary listings: never panics, and a plan is contiguous in TXIDs
//! and starts with a snapshot-covering file at TXID 1.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltxvfs::plan::{Listing, LtxFileInfo, Target, restore_plan};

fuzz_target!(|data: &[u8]| {
    // 10 bytes per file: level, min (3 bytes), span (2 bytes), created (4 bytes).
    let mut files = Vec::new();
    for c in data.chunks_exact(10).take(64) {
        let level = c[0] % 10;
        let min = u64::from(u32::from_be_bytes([0, c[1], c[2], c[3]]) % 64) + 1;
        let span = u64::from(u16::from_be_bytes([c[4], c[5]]) % 32);
        let created = i64::from(u32::from_be_bytes([c[6], c[7], c[8], c[9]]));
        files.push(LtxFileInfo {
            level,
            min_txid: min,
            max_txid: min + span,
            size: 1000,
            created_at: created,
            key: format!("ltx/{level}/{min:016x}-{:016x}.ltx", min + span),
        });
    }
    let mut listing = Listing::new();
    listing.extend(files);
    let tail = data.len() as u64;
    for target in [Target::Latest, Target::Txid(tail % 70), Target::Time((tail as i64) << 20)] {
        if let Ok(plan) = restore_plan(&listing, target) {
            assert!(!plan.is_empty());
            for w in plan.windows(2) {
                assert!(w[1].min_txid <= w[0].max_txid + 1, "plan has a gap: {w:?}");
                assert!(w[1].max_txid > w[0].max_txid, "plan does not advance: {w:?}");
            }
        }
    }
});
