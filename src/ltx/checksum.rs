//! CRC-64/GO-ISO and the checksums built on it (LTX.md §9).

use crc::{CRC_64_GO_ISO, Crc, Digest, Table};

/// Set on every non-zero checksum stored in an LTX file, so a real checksum is never 0.
pub const CHECKSUM_FLAG: u64 = 1 << 63;

/// Go's `hash/crc64` with the ISO table: reflected, init and final XOR all ones. Slice-by-16
/// tables: pages are kilobytes long and full decodes hash every byte.
static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_GO_ISO);

/// CRC-64/GO-ISO of `data` (check value of `b"123456789"` is `0xB90956C775A41001`).
pub fn crc64_iso(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// `ChecksumFlag | CRC64ISO(u32be(pgno) ‖ data)` (§9.3).
pub fn page_checksum(pgno: u32, data: &[u8]) -> u64 {
    let mut digest = CRC64.digest();
    digest.update(&pgno.to_be_bytes());
    digest.update(data);
    CHECKSUM_FLAG | digest.finalize()
}

/// Streaming CRC-64/GO-ISO; updates are equivalent to one CRC over the concatenation.
pub struct Crc64Hasher {
    digest: Digest<'static, u64, Table<16>>,
}

impl Crc64Hasher {
    pub fn new() -> Self {
        Self { digest: CRC64.digest() }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// The CRC of everything written so far, without the flag.
    pub fn finalize(self) -> u64 {
        self.digest.finalize()
    }
}

impl Default for Crc64Hasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Rolling database checksum (§9.3), updated one page at a time.
///
/// Starts at 0; after the first page it always has [`CHECKSUM_FLAG`] set. The lock page must be
/// skipped by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RollingChecksum(u64);

impl RollingChecksum {
    pub fn new() -> Self {
        Self(0)
    }

    /// Starts from an existing checksum value (e.g. a pre-apply checksum).
    pub fn from_value(value: u64) -> Self {
        Self(value)
    }

    /// Folds a page in: `c = ChecksumFlag | (c XOR page_checksum(pgno, data))`.
    pub fn add_page(&mut self, pgno: u32, data: &[u8]) {
        self.0 = CHECKSUM_FLAG | (self.0 ^ page_checksum(pgno, data));
    }

    /// Removes a page previously folded in (XOR is its own inverse).
    pub fn remove_page(&mut self, pgno: u32, data: &[u8]) {
        self.add_page(pgno, data);
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ltx::lock_pgno;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc64_iso(b"123456789"), 0xB909_56C7_75A4_1001);
        assert_eq!(crc64_iso(b""), 0);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut h = Crc64Hasher::new();
        h.update(b"1234");
        h.update(b"");
        h.update(b"56789");
        assert_eq!(h.finalize(), crc64_iso(b"123456789"));
    }

    #[test]
    fn page_checksum_has_flag_and_covers_pgno() {
        let data = [7u8; 512];
        let a = page_checksum(1, &data);
        let b = page_checksum(2, &data);
        assert_ne!(a & CHECKSUM_FLAG, 0);
        assert_ne!(a, b);
        let mut buf = vec![0, 0, 0, 1];
        buf.extend_from_slice(&data);
        assert_eq!(a, CHECKSUM_FLAG | crc64_iso(&buf));
    }

    #[test]
    fn rolling_three_small_pages() {
        let mut c = RollingChecksum::new();
        for (i, fill) in [1u8, 2, 3].iter().enumerate() {
            c.add_page(i as u32 + 1, &[*fill; 512]);
        }
        assert_eq!(c.value(), 0xefff_ffff_ecd9_9000);
    }

    #[test]
    fn rolling_with_lock_page_skipped() {
        let page_size = 4096u32;
        let lock = lock_pgno(page_size);
        let data = vec![b'x'; page_size as usize];
        let mut c = RollingChecksum::new();
        for pgno in 1..=lock + 10 {
            if pgno == lock {
                continue;
            }
            c.add_page(pgno, &data);
        }
        assert_eq!(c.value(), 0xc19b_668c_3766_62c7);
    }

    #[test]
    fn rolling_incremental_update() {
        let mut c = RollingChecksum::new();
        c.add_page(1, &[1; 512]);
        c.add_page(2, &[2; 512]);
        c.remove_page(2, &[2; 512]);
        c.add_page(2, &[9; 512]);
        let mut d = RollingChecksum::new();
        d.add_page(1, &[1; 512]);
        d.add_page(2, &[9; 512]);
        assert_eq!(c.value(), d.value());
    }
}
