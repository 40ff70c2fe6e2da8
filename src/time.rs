//! Time syntax for time travel (VFS.md §10.4). Placeholder: being written.
