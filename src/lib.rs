//! ltxvfs core: read Litestream LTX replicas in place.
//!
//! Layers (see DESIGN.md): `ltx` codec → `layout` keys → `plan` restore plan → `page_index` →
//! `cache` → `read_planner` → `replica` (shared object, poller) → `connection` → `vfs`
//! (sqlite-plugin glue). No I/O happens here: storage and clocks come in through
//! [`storage::Storage`] and [`storage::Clock`].

pub mod btree_pages;
pub mod cache;
pub mod config;
#[doc(hidden)]
pub mod conformance;
pub mod connection;
pub mod error;
pub mod extent_store;
pub mod file_storage;
pub mod file_table;
pub mod hydrate;
pub mod layout;
pub mod ltx;
pub mod memory_storage;
pub mod page_index;
pub mod plan;
pub mod poll_schedule;
pub mod read_ahead;
pub mod read_planner;
pub mod redact;
pub mod registry;
pub mod replica;
pub mod replica_url;
pub mod request_budget;
pub mod retry;
pub mod retrying_storage;
pub mod s3_endpoint;
pub mod stats_storage;
pub mod storage;
pub mod temp_files;
pub mod time;
pub mod verify;
pub mod vfs;
pub mod wait_txid;
/// The WebAssembly component shell (wit exports, wasi-http storage, bundled SQLite).
#[cfg(target_family = "wasm")]
pub mod wasi;
pub mod write;

pub use error::{Error, ErrorKind, Result};

/// This build's version (`PRAGMA litestream_version`, `litestream_version()`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
