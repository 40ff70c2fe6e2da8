//! `file://` replicas: the portable std::fs backend from the core crate, shared with the
//! component.

pub use ltxvfs::file_storage::FileStorage;
