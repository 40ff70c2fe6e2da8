//! The LTX codec (shared/spec/LTX.md). Placeholder: being written.
