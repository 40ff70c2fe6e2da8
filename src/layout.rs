//! Where LTX files live in a replica (REPLICA.md §1) and how their names parse (LTX.md §11).

use std::fmt;

/// Highest level; snapshots live here.
pub const SNAPSHOT_LEVEL: u8 = 9;

/// How a backend names level directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelStyle {
    /// `s3://`, `oss://`: `<path>/<level as %04x>/F`.
    Hex4,
    /// Every other backend: `<path>/ltx/<level decimal>/F`.
    LtxDecimal,
}

/// A replica root plus its level naming style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Key prefix without a trailing slash; may be empty (bucket root) for object stores.
    root: String,
    style: LevelStyle,
}

impl Layout {
    pub fn new(root: impl Into<String>, style: LevelStyle) -> Self {
        let root = root.into();
        // Keep a lone "/" (a replica at the filesystem root) absolute; trim other trailing slashes.
        let trimmed = root.trim_end_matches('/');
        let root = if trimmed.is_empty() && root.starts_with('/') { "/".to_string() } else { trimmed.to_string() };
        Self { root, style }
    }

    pub fn style(&self) -> LevelStyle {
        self.style
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The listing prefix of one level, ending in `/`.
    pub fn level_prefix(&self, level: u8) -> String {
        let dir = match self.style {
            LevelStyle::Hex4 => format!("{level:04x}"),
            LevelStyle::LtxDecimal => format!("ltx/{level}"),
        };
        match self.root.as_str() {
            "" => format!("{dir}/"),
            "/" => format!("/{dir}/"),
            root => format!("{root}/{dir}/"),
        }
    }

    /// The key of one file.
    /// The `after_key` of a [`crate::storage::Storage::list_after`] of `level` from MinTXID
    /// `seek`: the level prefix and `seek` as 16 hex digits. Every LTX name with MinTXID ≥ `seek`
    /// (`<seek>-…` is longer) sorts after it, every smaller one before.
    pub fn seek_key(&self, level: u8, seek: u64) -> String {
        format!("{}{}", self.level_prefix(level), format_txid(seek))
    }

    pub fn key(&self, level: u8, min_txid: u64, max_txid: u64) -> String {
        format!("{}{}", self.level_prefix(level), LtxName { min_txid, max_txid })
    }
}

/// A file name `<min %016x>-<max %016x>.ltx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LtxName {
    pub min_txid: u64,
    pub max_txid: u64,
}

impl LtxName {
    /// Parse strictly: exactly `^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$`; anything else is `None`
    /// (staging `.tmp` files, upper-case hex, other objects are skipped silently).
    pub fn parse(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        if b.len() != 37 || b[16] != b'-' || &b[33..] != b".ltx" {
            return None;
        }
        let hex = |s: &[u8]| -> Option<u64> {
            if !s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
                return None;
            }
            u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
        };
        Some(Self { min_txid: hex(&b[..16])?, max_txid: hex(&b[17..33])? })
    }

    /// Parse the last path component of a key.
    pub fn parse_key(key: &str) -> Option<Self> {
        Self::parse(key.rsplit('/').next().unwrap_or(key))
    }
}

impl fmt::Display for LtxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{:016x}.ltx", self.min_txid, self.max_txid)
    }
}

/// A TXID in its canonical text form.
pub fn format_txid(txid: u64) -> String {
    format!("{txid:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_use_hex_levels_without_ltx_component() {
        let l = Layout::new("mydb", LevelStyle::Hex4);
        assert_eq!(l.key(9, 1, 3), "mydb/0009/0000000000000001-0000000000000003.ltx");
        assert_eq!(l.level_prefix(0), "mydb/0000/");
        assert_eq!(Layout::new("", LevelStyle::Hex4).level_prefix(10), "000a/");
    }

    #[test]
    fn file_keys_use_ltx_decimal_levels() {
        let l = Layout::new("/srv/replica/", LevelStyle::LtxDecimal);
        assert_eq!(l.key(0, 8, 8), "/srv/replica/ltx/0/0000000000000008-0000000000000008.ltx");
        assert_eq!(Layout::new("/", LevelStyle::LtxDecimal).level_prefix(9), "/ltx/9/");
    }

    #[test]
    fn names_parse_strictly() {
        let n = LtxName::parse("0000000000000001-00000000000000ff.ltx").unwrap();
        assert_eq!((n.min_txid, n.max_txid), (1, 255));
        assert_eq!(n.to_string(), "0000000000000001-00000000000000ff.ltx");
        for bad in [
            "0000000000000001-00000000000000FF.ltx",
            "0000000000000001-00000000000000ff.ltx.tmp",
            "000000000000001-00000000000000ff.ltx",
            "0000000000000001_00000000000000ff.ltx",
            "+000000000000001-00000000000000ff.ltx",
            "",
        ] {
            assert_eq!(LtxName::parse(bad), None, "{bad}");
        }
        assert_eq!(LtxName::parse_key("a/0000/0000000000000002-0000000000000002.ltx").unwrap().max_txid, 2);
    }
}
