//! The seam between hydration and the disk: the page file and its `.meta` record.
//!
//! The core never touches a file system; the native shell implements [`HydrationFile`] on
//! local disk (`ext/src/hydration_file.rs`). [`Meta`] is the record kept beside the file
//! (`<path>.meta`): what state the file holds and whether an update was under way.

use crate::error::{Error, Result};

/// The local copy of the database and its `.meta` record.
pub trait HydrationFile: Send + Sync {
    /// Read exactly `buf.len()` bytes at `offset`, or fewer at the end of the file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize>;
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()>;
    fn set_len(&self, len: u64) -> Result<()>;
    fn size(&self) -> Result<u64>;
    /// Make every write so far durable.
    fn sync(&self) -> Result<()>;
    /// The `.meta` text, `None` when there is none.
    fn read_meta(&self) -> Result<Option<String>>;
    /// Replace the `.meta` text atomically (temp file, fsync, rename, fsync directory).
    fn write_meta(&self, text: &str) -> Result<()>;
    /// Where the file lives (`litestream_hydration_file`).
    fn path(&self) -> String;
}

/// What `<path>.meta` records. The first line is the decimal TXID, as Go writes it; the other
/// lines let a restart check that the file is the state the TXID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub txid: u64,
    pub page_size: u32,
    /// Database size in pages.
    pub commit: u32,
    /// Rolling database checksum (LTX.md §9.3) of the file's pages.
    pub checksum: u64,
    /// Set before an in-place update starts, cleared when it is durable: a `.meta` still dirty
    /// at open means the file may be torn.
    pub dirty: bool,
}

impl Meta {
    pub fn encode(&self) -> String {
        format!(
            "{}\npage_size={}\ncommit={}\nchecksum={:016x}\nstate={}\n",
            self.txid,
            self.page_size,
            self.commit,
            self.checksum,
            if self.dirty { "dirty" } else { "clean" }
        )
    }

    /// Parse a record; anything missing or malformed is an error (the file is then restored).
    pub fn decode(text: &str) -> Result<Meta> {
        let bad = |what: &str| Error::corrupt(format!("hydration meta: {what}"));
        let mut lines = text.lines();
        let txid = lines.next().and_then(|l| l.trim().parse::<u64>().ok()).ok_or_else(|| bad("no TXID"))?;
        let (mut page_size, mut commit, mut checksum, mut dirty) = (None, None, None, None);
        for line in lines {
            let Some((k, v)) = line.split_once('=') else { continue };
            match k {
                "page_size" => page_size = v.parse::<u32>().ok(),
                "commit" => commit = v.parse::<u32>().ok(),
                "checksum" => checksum = u64::from_str_radix(v, 16).ok(),
                "state" => dirty = Some(v != "clean"),
                _ => {}
            }
        }
        Ok(Meta {
            txid,
            page_size: page_size.ok_or_else(|| bad("no page size"))?,
            commit: commit.ok_or_else(|| bad("no commit"))?,
            checksum: checksum.ok_or_else(|| bad("no checksum"))?,
            dirty: dirty.ok_or_else(|| bad("no state"))?,
        })
    }

    pub fn file_size(&self) -> u64 {
        self.commit as u64 * self.page_size as u64
    }
}

/// An in-memory [`HydrationFile`] for tests of the core.
#[derive(Default)]
pub struct MemHydrationFile {
    pub data: parking_lot::Mutex<Vec<u8>>,
    pub meta: parking_lot::Mutex<Option<String>>,
}

impl HydrationFile for MemHydrationFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let data = self.data.lock();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        let mut data = self.data.lock();
        let end = offset as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.data.lock().resize(len as usize, 0);
        Ok(())
    }
    fn size(&self) -> Result<u64> {
        Ok(self.data.lock().len() as u64)
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn read_meta(&self) -> Result<Option<String>> {
        Ok(self.meta.lock().clone())
    }
    fn write_meta(&self, text: &str) -> Result<()> {
        *self.meta.lock() = Some(text.to_string());
        Ok(())
    }
    fn path(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_starts_with_the_txid() {
        let m = Meta { txid: 8, page_size: 4096, commit: 3, checksum: 0x8000_0000_0000_0001, dirty: false };
        let text = m.encode();
        assert!(text.starts_with("8\n"));
        assert_eq!(Meta::decode(&text).unwrap(), m);
        let d = Meta { dirty: true, ..m };
        assert!(Meta::decode(&d.encode()).unwrap().dirty);
    }

    #[test]
    fn go_style_or_broken_meta_is_rejected() {
        assert!(Meta::decode("8\n").is_err());
        assert!(Meta::decode("").is_err());
        assert!(Meta::decode("x\npage_size=1\ncommit=1\nchecksum=1\nstate=clean\n").is_err());
    }
}
