//! Shared by the integration tests that read the fixture written by the real litestream with
//! 512-byte pages (tests/fixtures/ps512), so its b-trees have interior levels.

use ltxvfs::file_storage::FileStorage;
use ltxvfs::layout::{Layout, LevelStyle};
use ltxvfs::read_planner::PlannerConfig;
use ltxvfs::replica::{Replica, ReplicaOptions};
use ltxvfs::storage::SystemClock;
use std::sync::Arc;

/// The ps512 replica opened with these planner settings and cache size.
pub fn open_ps512(planner: PlannerConfig, cache_size: u64) -> Arc<Replica> {
    let root = format!("{}/tests/fixtures/ps512/replica", env!("CARGO_MANIFEST_DIR"));
    let opts = ReplicaOptions { cache_size, planner, ..Default::default() };
    Replica::open(
        Arc::new(FileStorage::new(root.clone())),
        Arc::new(SystemClock),
        Layout::new(root, LevelStyle::LtxDecimal),
        opts,
    )
    .expect("open the fixture")
}
