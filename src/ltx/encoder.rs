//! Writing whole LTX files (LTX.md §4 writer rules, §6, §7, §9.2).

use crate::error::{Error, Result};
use crate::ltx::checksum::{CHECKSUM_FLAG, Crc64Hasher, RollingChecksum};
use crate::ltx::frame::{END_MARKER, PAGE_HEADER_SIZE, PAGE_SIZE_FIELD, encode_frame};
use crate::ltx::header::{HEADER_SIZE, Header};
use crate::ltx::page_index::{PageIndexEntry, TRAILER_SIZE, encode_page_index};

/// An encoded file and the page index of what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFile {
    pub bytes: Vec<u8>,
    pub index: Vec<PageIndexEntry>,
}

/// Encodes a complete LTX file: header, LZ4-block frames, end marker, page index, trailer.
///
/// The post-apply checksum is 0 under NoChecksum (what litestream writes). When checksums are
/// tracked, a snapshot's post-apply checksum is computed from its pages; other files need
/// [`encode_file_with_post_apply`].
///
/// Rule violations (invalid header, pages out of order, pgno 0 or > commit, lock page, snapshot
/// not starting at 1 or not consecutive, wrong page length) are `Internal` errors carrying the
/// Go encoder's messages: they are bugs in the caller, not corrupt input.
pub fn encode_file(header: &Header, pages: &[(u32, &[u8])]) -> Result<EncodedFile> {
    encode_file_with_post_apply(header, pages, None)
}

/// [`encode_file`] with an explicit post-apply checksum (for files with checksum tracking on).
pub fn encode_file_with_post_apply(
    header: &Header,
    pages: &[(u32, &[u8])],
    post_apply_checksum: Option<u64>,
) -> Result<EncodedFile> {
    let invalid = |e: Error| Error::internal(e.message);
    header.validate().map_err(invalid)?;
    check_pages(header, pages)?;

    let post_apply = match post_apply_checksum {
        Some(c) => c,
        None if header.no_checksum() => 0,
        None if header.is_snapshot() => {
            let mut rolling = RollingChecksum::new();
            for (pgno, data) in pages {
                rolling.add_page(*pgno, data);
            }
            if pages.is_empty() { CHECKSUM_FLAG } else { rolling.value() }
        }
        None => {
            return Err(Error::internal("post-apply checksum required when checksums are tracked"));
        }
    };
    check_trailer(header, post_apply)?;

    let page_size = header.page_size as usize;
    let frame_bound = PAGE_HEADER_SIZE + PAGE_SIZE_FIELD + lz4_flex::block::get_maximum_output_size(page_size);
    let mut bytes =
        Vec::with_capacity(HEADER_SIZE + pages.len().saturating_mul(frame_bound).min(1 << 30) + 64 + TRAILER_SIZE);
    let mut hash = Crc64Hasher::new();
    let head = header.encode();
    bytes.extend_from_slice(&head);
    hash.update(&head);

    let mut index = Vec::with_capacity(pages.len());
    for (pgno, data) in pages {
        let offset = bytes.len();
        let len = encode_frame(&mut bytes, *pgno, data)?;
        // Hash the page header and size field as stored, then the uncompressed page.
        let stored = bytes.get(offset..offset + PAGE_HEADER_SIZE + PAGE_SIZE_FIELD).unwrap_or_default();
        hash.update(stored);
        hash.update(data);
        index.push(PageIndexEntry { pgno: *pgno, offset: offset as u64, size: len as u64 });
    }

    bytes.extend_from_slice(&END_MARKER);
    hash.update(&END_MARKER);

    let index_bytes = encode_page_index(&index);
    bytes.extend_from_slice(&index_bytes);
    hash.update(&index_bytes);

    let post = post_apply.to_be_bytes();
    bytes.extend_from_slice(&post);
    hash.update(&post);
    let file_checksum = CHECKSUM_FLAG | hash.finalize();
    bytes.extend_from_slice(&file_checksum.to_be_bytes());

    Ok(EncodedFile { bytes, index })
}

/// The per-page writer rules of the Go encoder (`EncodePage`).
fn check_pages(header: &Header, pages: &[(u32, &[u8])]) -> Result<()> {
    let lock = header.lock_pgno();
    let mut prev = 0u32;
    for (pgno, data) in pages {
        let pgno = *pgno;
        if pgno > header.commit {
            return Err(Error::internal(format!("page number {pgno} out-of-bounds for commit size {}", header.commit)));
        }
        if pgno == 0 {
            return Err(Error::internal("page number required"));
        }
        if data.len() != header.page_size as usize {
            return Err(Error::internal(format!(
                "invalid page buffer size: {}, expecting {}",
                data.len(),
                header.page_size
            )));
        }
        if pgno == lock {
            return Err(Error::internal(format!("cannot encode lock page: pgno={pgno}")));
        }
        if header.is_snapshot() {
            if prev == 0 && pgno != 1 {
                return Err(Error::internal("snapshot transaction file must start with page number 1"));
            }
            if prev != 0 && prev.checked_add(1) == Some(lock) {
                if Some(pgno) != prev.checked_add(2) {
                    return Err(Error::internal(format!(
                        "nonsequential page numbers in snapshot transaction (skip lock page): \
                         {prev},{pgno}"
                    )));
                }
            } else if prev != 0 && Some(pgno) != prev.checked_add(1) {
                return Err(Error::internal(format!(
                    "nonsequential page numbers in snapshot transaction: {prev},{pgno}"
                )));
            }
        } else if prev >= pgno {
            return Err(Error::internal(format!("out-of-order page numbers: {prev},{pgno}")));
        }
        prev = pgno;
    }
    Ok(())
}

/// Trailer rules of the Go encoder (`Trailer.Validate` plus the zero-length database rule).
fn check_trailer(header: &Header, post_apply: u64) -> Result<()> {
    if header.no_checksum() {
        if post_apply != 0 {
            return Err(Error::internal("post-apply checksum not allowed"));
        }
    } else if post_apply == 0 {
        return Err(Error::internal("post-apply checksum required"));
    } else if post_apply & CHECKSUM_FLAG == 0 {
        return Err(Error::internal("invalid post-apply checksum format"));
    }
    if header.commit == 0 && post_apply != CHECKSUM_FLAG {
        return Err(Error::internal("post-apply checksum must be empty for zero-length database"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ltx::decoder::decode_file;
    use crate::ltx::header::{HEADER_FLAG_NO_CHECKSUM, lock_pgno};
    use crate::ltx::page_index::parse_page_index_from_tail;

    fn header(min: u64, max: u64, commit: u32, page_size: u32) -> Header {
        Header {
            flags: HEADER_FLAG_NO_CHECKSUM,
            page_size,
            commit,
            min_txid: min,
            max_txid: max,
            timestamp_ms: 1_795_326_869_754,
            ..Header::default()
        }
    }

    fn page(pgno: u32, page_size: u32) -> Vec<u8> {
        // Partly compressible, partly noisy, different per page.
        let mut x = pgno.wrapping_mul(2_654_435_761) | 1;
        (0..page_size)
            .map(|i| {
                if i < page_size / 2 {
                    (pgno % 7) as u8
                } else {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                }
            })
            .collect()
    }

    fn internal_msg(r: Result<EncodedFile>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal, "{e:?}");
        e.message
    }

    fn round_trip(h: &Header, pgnos: &[u32]) -> EncodedFile {
        let data: Vec<Vec<u8>> = pgnos.iter().map(|&p| page(p, h.page_size)).collect();
        let pages: Vec<(u32, &[u8])> = pgnos.iter().zip(&data).map(|(&p, d)| (p, d.as_slice())).collect();
        let enc = encode_file(h, &pages).unwrap();
        let dec = decode_file(&enc.bytes).unwrap();
        assert_eq!(dec.header, *h);
        assert_eq!(dec.index, enc.index);
        let got: Vec<(u32, &[u8])> = dec.pages.iter().map(|(p, d)| (*p, d.as_slice())).collect();
        assert_eq!(got, pages);
        // Random-access view agrees, with the whole file and with a short tail.
        let size = enc.bytes.len() as u64;
        let idx = parse_page_index_from_tail(&enc.bytes, 0, size).unwrap();
        assert_eq!(idx.as_ref(), Some(&enc.index));
        // Every indexed frame decodes on its own.
        for (e, want) in enc.index.iter().zip(&data) {
            let frame = &enc.bytes[e.offset as usize..(e.offset + e.size) as usize];
            let mut out = vec![0u8; h.page_size as usize];
            assert_eq!(crate::ltx::decode_frame_into(frame, &mut out).unwrap(), e.pgno);
            assert_eq!(&out, want);
        }
        enc
    }

    #[test]
    fn round_trips() {
        round_trip(&header(1, 1, 3, 512), &[1, 2, 3]);
        round_trip(&header(1, 5, 4, 4096), &[1, 2, 3, 4]);
        round_trip(&header(6, 8, 100, 4096), &[1, 13, 15, 100]);
        round_trip(&header(9, 9, 2, 65536), &[2]);
        round_trip(&header(2, 2, 10, 1024), &[]);
        let mut h = header(3, 3, 5, 512);
        h.wal_offset = 32;
        h.wal_size = 536;
        h.wal_salt1 = 1;
        h.wal_salt2 = 2;
        h.node_id = 42;
        round_trip(&h, &[5]);
    }

    #[test]
    fn layout_and_index_offsets() {
        let h = header(2, 2, 3, 512);
        let enc = round_trip(&h, &[1, 3]);
        assert_eq!(enc.index[0].offset, HEADER_SIZE as u64);
        assert_eq!(enc.index[1].offset, enc.index[0].offset + enc.index[0].size);
        let marker = (enc.index[1].offset + enc.index[1].size) as usize;
        assert_eq!(&enc.bytes[marker..marker + 6], &END_MARKER);
        let post = &enc.bytes[enc.bytes.len() - 16..enc.bytes.len() - 8];
        assert_eq!(post, &[0u8; 8]);
        let sum = u64::from_be_bytes(enc.bytes[enc.bytes.len() - 8..].try_into().unwrap());
        assert_ne!(sum & CHECKSUM_FLAG, 0);
        // Short tail: the index does not fit in 20 bytes of tail.
        let size = enc.bytes.len() as u64;
        let tail = &enc.bytes[enc.bytes.len() - 30..];
        assert_eq!(parse_page_index_from_tail(tail, size - 30, size).unwrap(), None);
    }

    #[test]
    fn empty_file_matches_spec_layout() {
        let h = header(2, 2, 10, 1024);
        let enc = encode_file(&h, &[]).unwrap();
        // header, marker, index `00`, size 1, trailer.
        assert_eq!(enc.bytes.len(), 100 + 6 + 1 + 8 + 16);
        assert_eq!(&enc.bytes[106..115], &[0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(enc.index.is_empty());
    }

    #[test]
    fn tracked_checksums() {
        // Snapshot: post-apply computed from pages and verified by the decoder.
        let mut h = header(1, 1, 3, 512);
        h.flags = 0;
        let enc = round_trip(&h, &[1, 2, 3]);
        let dec = decode_file(&enc.bytes).unwrap();
        let mut c = RollingChecksum::new();
        for p in 1..=3 {
            c.add_page(p, &page(p, 512));
        }
        assert_eq!(dec.post_apply_checksum, c.value());

        // Non-snapshot needs it given.
        let mut h = header(2, 2, 3, 512);
        h.flags = 0;
        h.pre_apply_checksum = CHECKSUM_FLAG | 1;
        let p = page(2, 512);
        assert!(internal_msg(encode_file(&h, &[(2, &p)])).contains("post-apply checksum required"));
        let enc = encode_file_with_post_apply(&h, &[(2, &p)], Some(CHECKSUM_FLAG | 7)).unwrap();
        assert_eq!(decode_file(&enc.bytes).unwrap().post_apply_checksum, CHECKSUM_FLAG | 7);
        assert_eq!(
            internal_msg(encode_file_with_post_apply(&h, &[(2, &p)], Some(7))),
            "invalid post-apply checksum format"
        );
        // NoChecksum forbids one.
        let h = header(2, 2, 3, 512);
        assert_eq!(
            internal_msg(encode_file_with_post_apply(&h, &[(2, &p)], Some(CHECKSUM_FLAG))),
            "post-apply checksum not allowed"
        );
    }

    #[test]
    fn rejections() {
        let p512 = page(1, 512);
        let p = p512.as_slice();
        // Invalid header.
        let mut h = header(2, 1, 3, 512);
        assert_eq!(internal_msg(encode_file(&h, &[])), "transaction ids out of order: (2,1)");
        h = header(1, 1, 3, 500);
        assert!(internal_msg(encode_file(&h, &[])).contains("invalid page size"));
        // Out of order / duplicate.
        let h = header(2, 2, 10, 512);
        assert_eq!(internal_msg(encode_file(&h, &[(3, p), (2, p)])), "out-of-order page numbers: 3,2");
        assert_eq!(internal_msg(encode_file(&h, &[(3, p), (3, p)])), "out-of-order page numbers: 3,3");
        // pgno 0 and > commit.
        assert_eq!(internal_msg(encode_file(&h, &[(0, p)])), "page number required");
        assert_eq!(internal_msg(encode_file(&h, &[(11, p)])), "page number 11 out-of-bounds for commit size 10");
        // Wrong page length.
        assert_eq!(internal_msg(encode_file(&h, &[(1, &p[..511])])), "invalid page buffer size: 511, expecting 512");
        // Lock page.
        let lock = lock_pgno(65536);
        let h = header(2, 2, lock + 5, 65536);
        let big = vec![0u8; 65536];
        assert_eq!(internal_msg(encode_file(&h, &[(lock, &big)])), format!("cannot encode lock page: pgno={lock}"));
        // Snapshot rules.
        let h = header(1, 3, 10, 512);
        assert_eq!(internal_msg(encode_file(&h, &[(2, p)])), "snapshot transaction file must start with page number 1");
        assert_eq!(
            internal_msg(encode_file(&h, &[(1, p), (3, p)])),
            "nonsequential page numbers in snapshot transaction: 1,3"
        );
        // Commit 0 cannot be written under NoChecksum.
        let h = header(2, 2, 0, 512);
        assert_eq!(internal_msg(encode_file(&h, &[])), "post-apply checksum must be empty for zero-length database");
    }

    #[test]
    fn snapshot_skips_lock_page() {
        // 512-byte pages: lock page 2097153; build a non-snapshot around it cheaply and check
        // the snapshot sequence rule with the lock page skipped.
        let lock = lock_pgno(512);
        let h = header(1, 1, lock + 2, 512);
        let p = vec![0u8; 512];
        let mut pages: Vec<(u32, &[u8])> = Vec::new();
        for pgno in 1..=lock + 1 {
            if pgno != lock {
                pages.push((pgno, &p));
            }
        }
        assert!(check_pages(&h, &pages).is_ok());
        let n = pages.len();
        pages.swap_remove(n - 1);
        pages.push((lock + 2, &p));
        let msg = check_pages(&h, &pages).unwrap_err().message;
        assert!(msg.contains("(skip lock page)"), "{msg}");
    }
}
