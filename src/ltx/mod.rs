//! The LTX codec (shared/spec/LTX.md): header, page frames, page index, checksums, and whole-file
//! encode/decode. Pure functions over byte slices; no I/O.

pub mod checksum;
pub mod decoder;
pub mod encoder;
pub mod frame;
pub mod header;
pub mod page_index;

pub use checksum::{CHECKSUM_FLAG, Crc64Hasher, RollingChecksum, crc64_iso, page_checksum};
pub use decoder::{DecodedFile, decode_file};
pub use encoder::{EncodedFile, encode_file, encode_file_with_post_apply};
pub use frame::{
    DecodedFrame, END_MARKER, PAGE_HEADER_FLAG_SIZE, PAGE_HEADER_SIZE, decode_frame, decode_frame_into, encode_frame,
};
pub use header::{
    HEADER_FLAG_MASK, HEADER_FLAG_NO_CHECKSUM, HEADER_SIZE, Header, MAGIC, is_valid_page_size, lock_pgno,
};
pub use page_index::{
    DEFAULT_ESTIMATED_PAGE_INDEX_SIZE, PageIndexEntry, TRAILER_SIZE, encode_page_index, index_size_from_tail,
    page_index_range, parse_page_index, parse_page_index_from_tail,
};
