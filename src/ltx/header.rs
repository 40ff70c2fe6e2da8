//! The 100-byte LTX header (LTX.md §3): layout, validation, page sizes and the lock page.

use crate::error::{Error, Result};
use crate::ltx::checksum::CHECKSUM_FLAG;

/// Size of the fixed header at offset 0.
pub const HEADER_SIZE: usize = 100;

/// ASCII `LTX1`, shared by format versions 2 and 3.
pub const MAGIC: &[u8; 4] = b"LTX1";

/// Header flag: database checksum tracking is off (pre/post-apply checksums are 0).
pub const HEADER_FLAG_NO_CHECKSUM: u32 = 2;

/// Every header flag bit that may be set.
pub const HEADER_FLAG_MASK: u32 = HEADER_FLAG_NO_CHECKSUM;

/// SQLite's PENDING_BYTE: the lock page is the page that contains it.
const PENDING_BYTE: u32 = 0x4000_0000;

/// Whether `page_size` is a power of two in 512..=65536.
pub fn is_valid_page_size(page_size: u32) -> bool {
    (512..=65536).contains(&page_size) && page_size.is_power_of_two()
}

/// The page holding PENDING_BYTE (offset 1 GiB): never stored in an LTX file.
///
/// `page_size` 0 (invalid anyway) returns `u32::MAX` instead of dividing by zero.
pub fn lock_pgno(page_size: u32) -> u32 {
    match PENDING_BYTE.checked_div(page_size) {
        Some(q) => q + 1,
        None => u32::MAX,
    }
}

/// The decoded LTX header. The 20 reserved bytes are written as zeros and ignored on read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub flags: u32,
    pub page_size: u32,
    /// Database size in pages after this file is applied.
    pub commit: u32,
    pub min_txid: u64,
    pub max_txid: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub pre_apply_checksum: u64,
    pub wal_offset: i64,
    pub wal_size: i64,
    pub wal_salt1: u32,
    pub wal_salt2: u32,
    pub node_id: u64,
}

fn be_u32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(off..off + 4) {
        b.copy_from_slice(s);
    }
    u32::from_be_bytes(b)
}

fn be_u64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(off..off + 8) {
        b.copy_from_slice(s);
    }
    u64::from_be_bytes(b)
}

impl Header {
    /// Unmarshals the first [`HEADER_SIZE`] bytes of `buf`, checks the magic, then validates,
    /// in the order of the Go reader (§3.2).
    pub fn decode(buf: &[u8]) -> Result<Header> {
        let Some(buf) = buf.get(..HEADER_SIZE) else {
            return Err(Error::corrupt(format!(
                "short buffer: ltx header needs {HEADER_SIZE} bytes, got {}",
                buf.len()
            )));
        };
        let hdr = Header {
            flags: be_u32(buf, 4),
            page_size: be_u32(buf, 8),
            commit: be_u32(buf, 12),
            min_txid: be_u64(buf, 16),
            max_txid: be_u64(buf, 24),
            timestamp_ms: be_u64(buf, 32) as i64,
            pre_apply_checksum: be_u64(buf, 40),
            wal_offset: be_u64(buf, 48) as i64,
            wal_size: be_u64(buf, 56) as i64,
            wal_salt1: be_u32(buf, 64),
            wal_salt2: be_u32(buf, 68),
            node_id: be_u64(buf, 72),
        };
        if buf.get(..4) != Some(&MAGIC[..]) {
            return Err(Error::corrupt("invalid LTX file"));
        }
        hdr.validate()?;
        Ok(hdr)
    }

    /// The header rules of §3.2 (steps 2..8); errors are `Corrupt` with the Go messages.
    pub fn validate(&self) -> Result<()> {
        if self.flags & !HEADER_FLAG_MASK != 0 {
            return Err(Error::corrupt(format!("invalid flags: 0x{:08x}", self.flags)));
        }
        if !is_valid_page_size(self.page_size) {
            return Err(Error::corrupt(format!("invalid page size: {}", self.page_size)));
        }
        if self.min_txid == 0 {
            return Err(Error::corrupt("minimum transaction id required"));
        }
        if self.max_txid == 0 {
            return Err(Error::corrupt("maximum transaction id required"));
        }
        if self.min_txid > self.max_txid {
            return Err(Error::corrupt(format!("transaction ids out of order: ({},{})", self.min_txid, self.max_txid)));
        }
        if self.wal_offset < 0 {
            return Err(Error::corrupt(format!("wal offset cannot be negative: {}", self.wal_offset)));
        }
        if self.wal_size < 0 {
            return Err(Error::corrupt(format!("wal size cannot be negative: {}", self.wal_size)));
        }
        if (self.wal_salt1 != 0 || self.wal_salt2 != 0) && self.wal_offset == 0 {
            return Err(Error::corrupt("wal offset required if salt exists"));
        }
        if self.wal_offset == 0 && self.wal_size != 0 {
            return Err(Error::corrupt("wal offset required if wal size exists"));
        }
        if self.is_snapshot() {
            if self.pre_apply_checksum != 0 {
                return Err(Error::corrupt("pre-apply checksum must be zero on snapshots"));
            }
        } else if self.no_checksum() {
            if self.pre_apply_checksum != 0 {
                return Err(Error::corrupt("pre-apply checksum not allowed"));
            }
        } else if self.pre_apply_checksum == 0 {
            return Err(Error::corrupt("pre-apply checksum required on non-snapshot files"));
        } else if self.pre_apply_checksum & CHECKSUM_FLAG == 0 {
            return Err(Error::corrupt("invalid pre-apply checksum format"));
        }
        Ok(())
    }

    /// Marshals the header; the reserved bytes are zero. Does not validate.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        let fields: [(usize, &[u8]); 13] = [
            (0, &MAGIC[..]),
            (4, &self.flags.to_be_bytes()),
            (8, &self.page_size.to_be_bytes()),
            (12, &self.commit.to_be_bytes()),
            (16, &self.min_txid.to_be_bytes()),
            (24, &self.max_txid.to_be_bytes()),
            (32, &self.timestamp_ms.to_be_bytes()),
            (40, &self.pre_apply_checksum.to_be_bytes()),
            (48, &self.wal_offset.to_be_bytes()),
            (56, &self.wal_size.to_be_bytes()),
            (64, &self.wal_salt1.to_be_bytes()),
            (68, &self.wal_salt2.to_be_bytes()),
            (72, &self.node_id.to_be_bytes()),
        ];
        for (off, bytes) in fields {
            b[off..off + bytes.len()].copy_from_slice(bytes);
        }
        b
    }

    /// A snapshot contains the first transaction (and therefore every page).
    pub fn is_snapshot(&self) -> bool {
        self.min_txid == 1
    }

    /// Whether database checksum tracking is off.
    pub fn no_checksum(&self) -> bool {
        self.flags & HEADER_FLAG_NO_CHECKSUM != 0
    }

    /// The lock page for this header's page size.
    pub fn lock_pgno(&self) -> u32 {
        lock_pgno(self.page_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn sample() -> Header {
        Header {
            flags: HEADER_FLAG_NO_CHECKSUM,
            page_size: 512,
            commit: 79,
            min_txid: 8,
            max_txid: 8,
            timestamp_ms: 1_795_326_869_754,
            pre_apply_checksum: 0,
            wal_offset: 570_336,
            wal_size: 3216,
            wal_salt1: 4_076_402_030,
            wal_salt2: 4_014_165_762,
            node_id: 0,
        }
    }

    /// The first 0x60 header bytes of the worked example (LTX.md §13), reserved bytes zero.
    fn example_bytes() -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        let head: [u8; 72] = [
            0x4c, 0x54, 0x58, 0x31, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x4f, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x01, 0xa2,
            0x01, 0xd2, 0x00, 0xfa, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
            0xb3, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x90, 0xf2, 0xf8, 0xf5, 0x6e, 0xef, 0x43, 0x4f, 0x02,
        ];
        b[..72].copy_from_slice(&head);
        b
    }

    fn err_msg(h: Header) -> String {
        let e = h.validate().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        e.message
    }

    #[test]
    fn decodes_worked_example() {
        assert_eq!(Header::decode(&example_bytes()).unwrap(), sample());
        assert_eq!(sample().encode(), example_bytes());
    }

    #[test]
    fn round_trip() {
        let h = Header {
            flags: 0,
            page_size: 65536,
            commit: 0,
            min_txid: 3,
            max_txid: u64::MAX,
            timestamp_ms: -5,
            pre_apply_checksum: CHECKSUM_FLAG | 0x1234,
            wal_offset: i64::MAX,
            wal_size: 1,
            wal_salt1: 1,
            wal_salt2: u32::MAX,
            node_id: u64::MAX,
        };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn reserved_bytes_ignored_and_longer_buffer_ok() {
        let mut b = example_bytes().to_vec();
        b[80..].fill(0xff);
        b.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Header::decode(&b).unwrap(), sample());
    }

    #[test]
    fn short_buffer() {
        let e = Header::decode(&example_bytes()[..99]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        assert!(Header::decode(&[]).is_err());
    }

    #[test]
    fn bad_magic_checked_before_validation() {
        let mut b = [0u8; HEADER_SIZE]; // would also fail validation (page size 0)
        b[..4].copy_from_slice(b"LTX2");
        let e = Header::decode(&b).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        assert_eq!(e.message, "invalid LTX file");
    }

    #[test]
    fn validation_rules() {
        let base = sample();
        assert!(base.validate().is_ok());

        let mut h = base;
        h.flags = 0x11;
        assert_eq!(err_msg(h), "invalid flags: 0x00000011");
        h.flags = 1;
        assert_eq!(err_msg(h), "invalid flags: 0x00000001");

        for ps in [0u32, 256, 511, 1000, 131072, 3 * 1024] {
            let mut h = base;
            h.page_size = ps;
            assert_eq!(err_msg(h), format!("invalid page size: {ps}"));
        }

        let mut h = base;
        h.min_txid = 0;
        assert_eq!(err_msg(h), "minimum transaction id required");
        let mut h = base;
        h.max_txid = 0;
        assert_eq!(err_msg(h), "maximum transaction id required");
        let mut h = base;
        h.min_txid = 9;
        assert_eq!(err_msg(h), "transaction ids out of order: (9,8)");

        let mut h = base;
        h.wal_offset = -1;
        assert_eq!(err_msg(h), "wal offset cannot be negative: -1");
        let mut h = base;
        h.wal_size = -2;
        assert_eq!(err_msg(h), "wal size cannot be negative: -2");
        let mut h = base;
        h.wal_offset = 0;
        assert_eq!(err_msg(h), "wal offset required if salt exists");
        let mut h = base;
        h.wal_salt1 = 0;
        h.wal_salt2 = 0;
        h.wal_offset = 0;
        assert_eq!(err_msg(h), "wal offset required if wal size exists");
        h.wal_size = 0;
        assert!(h.validate().is_ok());
        h.wal_salt2 = 1;
        assert_eq!(err_msg(h), "wal offset required if salt exists");

        // Checksums: snapshot.
        let mut h = base;
        h.min_txid = 1;
        h.pre_apply_checksum = CHECKSUM_FLAG;
        assert_eq!(err_msg(h), "pre-apply checksum must be zero on snapshots");
        h.flags = 0;
        assert_eq!(err_msg(h), "pre-apply checksum must be zero on snapshots");
        h.pre_apply_checksum = 0;
        assert!(h.validate().is_ok());
        // NoChecksum non-snapshot.
        let mut h = base;
        h.pre_apply_checksum = CHECKSUM_FLAG | 5;
        assert_eq!(err_msg(h), "pre-apply checksum not allowed");
        // Tracked non-snapshot.
        let mut h = base;
        h.flags = 0;
        assert_eq!(err_msg(h), "pre-apply checksum required on non-snapshot files");
        h.pre_apply_checksum = 5;
        assert_eq!(err_msg(h), "invalid pre-apply checksum format");
        h.pre_apply_checksum = CHECKSUM_FLAG | 5;
        assert!(h.validate().is_ok());

        // Commit is not validated.
        let mut h = base;
        h.commit = 0;
        assert!(h.validate().is_ok());
    }

    #[test]
    fn validation_order_follows_go() {
        // Bad flags and bad page size: flags reported first.
        let mut h = sample();
        h.flags = 4;
        h.page_size = 3;
        assert_eq!(err_msg(h), "invalid flags: 0x00000004");
        // Decode: bad magic wins over bad flags.
        let mut b = h.encode();
        b[0] = b'X';
        assert_eq!(Header::decode(&b).unwrap_err().message, "invalid LTX file");
        // Decode runs validation.
        let b = h.encode();
        assert_eq!(Header::decode(&b).unwrap_err().message, "invalid flags: 0x00000004");
    }

    #[test]
    fn page_sizes_and_lock_page() {
        let valid = [512u32, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
        for ps in valid {
            assert!(is_valid_page_size(ps));
        }
        for ps in [0u32, 1, 2, 256, 513, 65535, 131072, u32::MAX] {
            assert!(!is_valid_page_size(ps));
        }
        let locks = [2097153u32, 1048577, 524289, 262145, 131073, 65537, 32769, 16385];
        for (ps, lock) in valid.iter().zip(locks) {
            assert_eq!(lock_pgno(*ps), lock);
        }
        assert_eq!(lock_pgno(0), u32::MAX);
        assert!(sample().lock_pgno() == 2097153);
    }

    #[test]
    fn snapshot_and_no_checksum() {
        let mut h = sample();
        assert!(!h.is_snapshot());
        assert!(h.no_checksum());
        h.min_txid = 1;
        h.flags = 0;
        assert!(h.is_snapshot());
        assert!(!h.no_checksum());
    }
}
