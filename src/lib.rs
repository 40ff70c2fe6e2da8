//! ltxvfs core: read Litestream LTX replicas in place.
//!
//! Layers (see DESIGN.md): `ltx` codec → `layout` keys → `plan` restore plan → `page_index` →
//! `cache` → `read_planner` → `replica` (shared object, poller) → `connection` → `vfs`
//! (sqlite-plugin glue). No I/O happens here: storage and clocks come in through
//! [`storage::Storage`] and [`storage::Clock`].

pub mod error;
pub mod layout;
pub mod ltx;
pub mod storage;
pub mod time;

pub use error::{Error, ErrorKind, Result};
