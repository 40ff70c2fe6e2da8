//! The local write buffer: a crash-safe log of transactions committed and not yet uploaded.
//!
//! Go's buffer is raw pages with no header, truncated at open (VFS.md §9.2); this one is kept
//! across a crash and recognised before it is used:
//!
//! ```text
//! header (64 bytes): "LTXVFSWB" | version u32 | page_size u32 | base_txid u64 | replica u64
//!                    | created_ms i64 | 16 zero bytes | crc64(bytes 0..56) u64
//! record, repeated:  tag u8, then
//!   1 = commit:  generation u64 | commit u32 | n u32 | n × (pgno u32 | page) | crc64 u64
//!   2 = upload:  txid u64 | generation u64 | file_crc u64 | crc64 u64
//! ```
//!
//! `base_txid` is the remote TXID the first commit was made on; `replica` a hash of the
//! replica's identity (never the URL itself: it may hold credentials). An upload record says
//! "commits up to `generation` were sent as TXID `txid`, a file with CRC `file_crc`", so that
//! after a crash between the upload and the buffer reset the writer can tell its own file from
//! a foreign one. A commit is appended and fsynced before COMMIT returns; a record cut short
//! at the end of the file, or a bad last record followed only by zeros (space the disk layer
//! preallocates), is a torn append (its COMMIT never returned) and is dropped; any
//! other damage is an error naming the buffer.

use crate::error::{Error, ErrorKind, Result};
use crate::ltx::crc64_iso;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

pub const MAGIC: &[u8; 8] = b"LTXVFSWB";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;
const TAG_COMMIT: u8 = 1;
const TAG_UPLOAD: u8 = 2;
const UPLOAD_LEN: usize = 1 + 8 + 8 + 8 + 8;
const COMMIT_HEAD: usize = 1 + 8 + 4 + 4;

/// One buffer file. Implementations make `append` and `replace` durable before returning.
pub trait BufferFile: Send {
    /// The whole content, or `None` when the file does not exist.
    fn load(&mut self) -> Result<Option<Vec<u8>>>;
    /// Append and fsync.
    fn append(&mut self, data: &[u8]) -> Result<()>;
    /// Replace the whole content atomically (write aside, fsync, rename) and fsync.
    fn replace(&mut self, data: &[u8]) -> Result<()>;
    /// Where it lives, for messages.
    fn describe(&self) -> String;
}

/// Opens buffer files by path (the disk implementation lives in the native shell).
pub trait BufferStore: Send + Sync {
    fn open(&self, path: &str) -> Result<Box<dyn BufferFile>>;
    /// A path for a buffer when none is configured.
    fn default_path(&self, n: usize) -> String;
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferHeader {
    pub page_size: u32,
    pub base_txid: u64,
    pub replica: u64,
    pub created_ms: i64,
}

impl BufferHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_be_bytes());
        b.extend_from_slice(&self.page_size.to_be_bytes());
        b.extend_from_slice(&self.base_txid.to_be_bytes());
        b.extend_from_slice(&self.replica.to_be_bytes());
        b.extend_from_slice(&self.created_ms.to_be_bytes());
        b.resize(56, 0);
        let crc = crc64_iso(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }
}

/// The identity hash stored in the header.
pub fn replica_identity(identity: &str) -> u64 {
    crc64_iso(identity.as_bytes())
}

/// A committed transaction: the database size after it and the pages it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// The writer's commit counter (monotonic across uploads).
    pub generation: u64,
    pub commit: u32,
    pub pages: Vec<(u32, Bytes)>,
}

/// An upload that was started: the commits up to `generation`, sent as `txid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadRecord {
    pub txid: u64,
    pub generation: u64,
    pub file_crc: u64,
}

pub fn encode_commit(generation: u64, commit: u32, pages: &[(u32, Bytes)]) -> Vec<u8> {
    let page_len = pages.first().map_or(0, |(_, p)| p.len());
    let mut b = Vec::with_capacity(COMMIT_HEAD + pages.len() * (4 + page_len) + 8);
    b.push(TAG_COMMIT);
    b.extend_from_slice(&generation.to_be_bytes());
    b.extend_from_slice(&commit.to_be_bytes());
    b.extend_from_slice(&(pages.len() as u32).to_be_bytes());
    for (pgno, page) in pages {
        b.extend_from_slice(&pgno.to_be_bytes());
        b.extend_from_slice(page);
    }
    let crc = crc64_iso(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

pub fn encode_upload(u: &UploadRecord) -> Vec<u8> {
    let mut b = Vec::with_capacity(UPLOAD_LEN);
    b.push(TAG_UPLOAD);
    b.extend_from_slice(&u.txid.to_be_bytes());
    b.extend_from_slice(&u.generation.to_be_bytes());
    b.extend_from_slice(&u.file_crc.to_be_bytes());
    let crc = crc64_iso(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

/// A parsed buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub header: BufferHeader,
    pub commits: Vec<CommitRecord>,
    /// The last upload record, if any.
    pub upload: Option<UploadRecord>,
    /// Bytes of torn tail dropped (a commit whose fsync never finished).
    pub torn: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

fn bad(path: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Corrupt, format!("write buffer {path} cannot be used: {what}"))
}

/// Parse a buffer's bytes. `path` only names it in errors.
pub fn parse(path: &str, bytes: &[u8]) -> Result<Parsed> {
    if bytes.len() < HEADER_LEN {
        return Err(bad(path, format!("{} bytes is too short for a header (not an ltxvfs write buffer)", bytes.len())));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad(path, "not an ltxvfs write buffer (wrong magic)"));
    }
    if crc64_iso(&bytes[..56]) != u64_at(bytes, 56) {
        return Err(bad(path, "header checksum mismatch"));
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(bad(path, format!("unsupported buffer version {version}")));
    }
    let header = BufferHeader {
        page_size: u32_at(bytes, 12),
        base_txid: u64_at(bytes, 16),
        replica: u64_at(bytes, 24),
        created_ms: u64_at(bytes, 32) as i64,
    };
    if !crate::ltx::is_valid_page_size(header.page_size) {
        return Err(bad(path, format!("invalid page size {}", header.page_size)));
    }
    let ps = header.page_size as usize;
    let mut commits = Vec::new();
    let mut upload = None;
    let mut pos = HEADER_LEN;
    let mut torn = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let len = match rest[0] {
            TAG_COMMIT if rest.len() >= COMMIT_HEAD => {
                let n = u32_at(rest, 13) as usize;
                n.checked_mul(4 + ps).and_then(|x| x.checked_add(COMMIT_HEAD + 8))
            }
            TAG_COMMIT => None,
            TAG_UPLOAD => Some(UPLOAD_LEN),
            0 if rest.iter().all(|&b| b == 0) => None,
            t => return Err(bad(path, format!("unknown record tag {t} at offset {pos}"))),
        };
        let Some(len) = len.filter(|&l| l <= rest.len()) else {
            // Cut short at the end of the file: an append that never finished.
            torn = rest.len();
            break;
        };
        let rec = &rest[..len];
        if crc64_iso(&rec[..len - 8]) != u64_at(rec, len - 8) {
            // Last record (only zeros follow: unused preallocated space): a torn append.
            if rest[len..].iter().all(|&b| b == 0) {
                torn = rest.len();
                break;
            }
            return Err(bad(path, format!("record checksum mismatch at offset {pos}")));
        }
        match rec[0] {
            TAG_COMMIT => {
                let generation = u64_at(rec, 1);
                let commit = u32_at(rec, 9);
                let n = u32_at(rec, 13) as usize;
                let mut pages = Vec::with_capacity(n);
                for i in 0..n {
                    let at = COMMIT_HEAD + i * (4 + ps);
                    pages.push((u32_at(rec, at), Bytes::copy_from_slice(&rec[at + 4..at + 4 + ps])));
                }
                commits.push(CommitRecord { generation, commit, pages });
            }
            _ => {
                upload =
                    Some(UploadRecord { txid: u64_at(rec, 1), generation: u64_at(rec, 9), file_crc: u64_at(rec, 17) })
            }
        }
        pos += len;
    }
    Ok(Parsed { header, commits, upload, torn })
}

/// In-memory buffers for tests and hosts without a disk; they survive a [`crate::write::Writer`]
/// being dropped (a simulated crash) as long as the store lives.
#[derive(Default, Clone)]
pub struct MemoryBuffers {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl MemoryBuffers {
    pub fn contents(&self, path: &str) -> Option<Vec<u8>> {
        self.files.lock().get(path).cloned()
    }
    pub fn set(&self, path: &str, data: Vec<u8>) {
        self.files.lock().insert(path.to_string(), data);
    }
}

struct MemoryBuffer {
    path: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl BufferFile for MemoryBuffer {
    fn load(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.files.lock().get(&self.path).cloned())
    }
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.files.lock().entry(self.path.clone()).or_default().extend_from_slice(data);
        Ok(())
    }
    fn replace(&mut self, data: &[u8]) -> Result<()> {
        self.files.lock().insert(self.path.clone(), data.to_vec());
        Ok(())
    }
    fn describe(&self) -> String {
        format!("memory:{}", self.path)
    }
}

impl BufferStore for MemoryBuffers {
    fn open(&self, path: &str) -> Result<Box<dyn BufferFile>> {
        Ok(Box::new(MemoryBuffer { path: path.to_string(), files: self.files.clone() }))
    }
    fn default_path(&self, n: usize) -> String {
        format!("write-buffer-{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BufferHeader {
        BufferHeader { page_size: 512, base_txid: 7, replica: 42, created_ms: 1 }
    }

    fn page(b: u8) -> Bytes {
        Bytes::from(vec![b; 512])
    }

    #[test]
    fn round_trips_commits_and_uploads() {
        let mut buf = header().encode();
        buf.extend(encode_commit(1, 3, &[(1, page(1)), (3, page(3))]));
        let up = UploadRecord { txid: 8, generation: 1, file_crc: 99 };
        buf.extend(encode_upload(&up));
        buf.extend(encode_commit(2, 2, &[(2, page(2))]));
        let p = parse("b", &buf).unwrap();
        assert_eq!(p.header, header());
        assert_eq!(p.commits.len(), 2);
        assert_eq!(p.commits[0].pages[1], (3, page(3)));
        assert_eq!(p.commits[1].commit, 2);
        assert_eq!(p.upload, Some(up));
        assert_eq!(p.torn, 0);
    }

    #[test]
    fn torn_tail_is_dropped_at_every_cut() {
        let mut buf = header().encode();
        buf.extend(encode_commit(1, 1, &[(1, page(1))]));
        let good = buf.len();
        buf.extend(encode_commit(2, 2, &[(2, page(2))]));
        for cut in good + 1..buf.len() {
            let p = parse("b", &buf[..cut]).unwrap();
            assert_eq!(p.commits.len(), 1, "cut {cut}");
            assert_eq!(p.torn, cut - good);
        }
        let mut zeros = buf[..good].to_vec();
        zeros.extend([0u8; 100]);
        assert_eq!(parse("b", &zeros).unwrap().commits.len(), 1);
        // Torn into preallocated zeros: the partial record then zeros, at every cut.
        for cut in good + 1..buf.len() {
            let mut pre = buf[..cut].to_vec();
            pre.resize(buf.len() + 700, 0);
            let p = parse("b", &pre).unwrap();
            assert_eq!(p.commits.len(), 1, "cut {cut}");
        }
        let mut whole = buf.clone();
        whole.resize(buf.len() + 700, 0);
        assert_eq!(parse("b", &whole).unwrap().commits.len(), 2);
    }

    #[test]
    fn foreign_stale_and_corrupt_buffers_are_named() {
        for (data, want) in [
            (b"stale data".to_vec(), "too short"),
            (b"INVALID DATA, and then some more bytes to pass the header length check.....".to_vec(), "wrong magic"),
        ] {
            let e = parse("/x/buf", &data).unwrap_err();
            assert!(e.message.contains("/x/buf") && e.message.contains(want), "{e}");
        }
        let mut h = header().encode();
        h[20] ^= 1;
        assert!(parse("b", &h).unwrap_err().message.contains("header checksum"));
        let mut buf = header().encode();
        buf.extend(encode_commit(1, 1, &[(1, page(1))]));
        let mid = buf.len() - 20;
        buf.extend(encode_commit(2, 2, &[(2, page(2))]));
        buf[mid] ^= 1;
        assert!(parse("b", &buf).unwrap_err().message.contains("record checksum mismatch"));
    }
}
