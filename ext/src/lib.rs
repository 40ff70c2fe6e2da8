//! The native loadable extension. Placeholder: being written.
pub mod storage;
