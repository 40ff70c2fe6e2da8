//! Full sequential decode of an LTX file with every check of LTX.md §8.

use crate::error::{Error, Result};
use crate::ltx::checksum::{CHECKSUM_FLAG, Crc64Hasher, RollingChecksum};
use crate::ltx::frame::{
    END_MARKER, PAGE_HEADER_FLAG_SIZE, PAGE_HEADER_SIZE, PAGE_SIZE_FIELD, decode_frame, read_page_header,
};
use crate::ltx::header::{HEADER_SIZE, Header};
use crate::ltx::page_index::{INDEX_SIZE_FIELD, PageIndexEntry, TRAILER_SIZE, parse_page_index};

/// A fully decoded and verified LTX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFile {
    pub header: Header,
    /// Decoded pages in file order (strictly increasing pgno).
    pub pages: Vec<(u32, Vec<u8>)>,
    /// The page index as stored in the file (checked against the frames).
    pub index: Vec<PageIndexEntry>,
    pub post_apply_checksum: u64,
    pub file_checksum: u64,
}

fn be_u64_at(bytes: &[u8], pos: usize) -> Option<u64> {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes.get(pos..pos.checked_add(8)?)?);
    Some(u64::from_be_bytes(b))
}

/// Decodes and verifies a whole file.
///
/// Beyond the Go decoder it also rejects: a decompressed length other than the page size, pgnos
/// not strictly increasing or above `commit`, the lock page, snapshots that do not start at page 1
/// or skip pages, an index that disagrees with the frames or with its stored size, and bytes
/// after the trailer. The file checksum is compared before the index/frame agreement check, so
/// any corruption that still decodes is reported as `file checksum mismatch`.
pub fn decode_file(bytes: &[u8]) -> Result<DecodedFile> {
    if bytes.len() < HEADER_SIZE {
        return Err(Error::corrupt(format!(
            "unexpected EOF: ltx file of {} bytes is shorter than its header",
            bytes.len()
        )));
    }
    let header = Header::decode(bytes)?;
    let mut hash = Crc64Hasher::new();
    hash.update(bytes.get(..HEADER_SIZE).unwrap_or_default());

    let page_size = header.page_size as usize;
    let lock = header.lock_pgno();
    let snapshot = header.is_snapshot();
    let track = !header.no_checksum();
    let mut rolling = RollingChecksum::from_value(if track { CHECKSUM_FLAG } else { 0 });

    let mut pos = HEADER_SIZE;
    let mut pages: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut frames: Vec<PageIndexEntry> = Vec::new();
    let mut prev = 0u32;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (pgno, flags) = read_page_header(rest)
            .map_err(|e| e.context(format!("unexpected EOF reading page header at offset {pos}")))?;
        if pgno == 0 && flags == 0 {
            hash.update(&END_MARKER);
            pos += PAGE_HEADER_SIZE;
            break;
        }
        let mut data = vec![0u8; page_size];
        let frame = decode_frame(rest, &mut data)?;
        check_sequence(&header, prev, pgno, lock, snapshot)?;
        prev = pgno;

        let stored_len = PAGE_HEADER_SIZE + if flags & PAGE_HEADER_FLAG_SIZE != 0 { PAGE_SIZE_FIELD } else { 0 };
        hash.update(rest.get(..stored_len).unwrap_or_default());
        hash.update(&data);
        if snapshot && track && pgno != lock {
            rolling.add_page(pgno, &data);
        }
        frames.push(PageIndexEntry { pgno, offset: pos as u64, size: frame.frame_len as u64 });
        pages.push((pgno, data));
        pos += frame.frame_len;
    }

    // Page index: triples + terminator, u64 size, then the 16-byte trailer and nothing else.
    let index_start = pos;
    let rest = bytes.get(index_start..).unwrap_or_default();
    let (index, used) = parse_page_index(rest, index_start as u64)?;
    let size_pos = index_start + used;
    let trailer_pos = size_pos + INDEX_SIZE_FIELD;
    let (Some(index_size), Some(post_apply_checksum), Some(file_checksum)) =
        (be_u64_at(bytes, size_pos), be_u64_at(bytes, trailer_pos), be_u64_at(bytes, trailer_pos + 8))
    else {
        return Err(Error::corrupt("unexpected EOF reading page index size and trailer"));
    };
    let end = trailer_pos + TRAILER_SIZE;
    hash.update(bytes.get(index_start..end - 8).unwrap_or_default());

    if CHECKSUM_FLAG | hash.finalize() != file_checksum {
        return Err(Error::corrupt("file checksum mismatch"));
    }
    if end != bytes.len() {
        return Err(Error::corrupt(format!("unexpected {} bytes after the ltx trailer", bytes.len() - end)));
    }
    if index_size != used as u64 {
        return Err(Error::corrupt(format!("page index size mismatch: stored {index_size}, actual {used}")));
    }
    if index != frames {
        return Err(Error::corrupt("page index does not match the page frames"));
    }
    if snapshot && track && post_apply_checksum != rolling.value() {
        return Err(Error::corrupt(format!(
            "post-apply checksum in trailer ({post_apply_checksum:016x}) does not match \
             calculated checksum ({:016x})",
            rolling.value()
        )));
    }

    Ok(DecodedFile { header, pages, index, post_apply_checksum, file_checksum })
}

/// Reader-side ordering rules: strictly increasing, `<= commit`, no lock page, and snapshots
/// start at 1 and are consecutive except for the lock page.
fn check_sequence(header: &Header, prev: u32, pgno: u32, lock: u32, snapshot: bool) -> Result<()> {
    if pgno <= prev {
        return Err(Error::corrupt(format!("out-of-order page numbers: {prev},{pgno}")));
    }
    if pgno > header.commit {
        return Err(Error::corrupt(format!("page number {pgno} out-of-bounds for commit size {}", header.commit)));
    }
    if pgno == lock {
        return Err(Error::corrupt(format!("unexpected lock page in ltx file: pgno={pgno}")));
    }
    if snapshot {
        if prev == 0 && pgno != 1 {
            return Err(Error::corrupt("snapshot transaction file must start with page number 1"));
        }
        let expected = if prev.checked_add(1) == Some(lock) { prev.checked_add(2) } else { prev.checked_add(1) };
        if prev != 0 && Some(pgno) != expected {
            return Err(Error::corrupt(format!("nonsequential page numbers in snapshot transaction: {prev},{pgno}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ltx::checksum::crc64_iso;
    use crate::ltx::encoder::encode_file;
    use crate::ltx::frame::encode_frame;
    use crate::ltx::header::HEADER_FLAG_NO_CHECKSUM;
    use crate::ltx::page_index::encode_page_index;

    fn header(min: u64, max: u64, commit: u32) -> Header {
        Header {
            flags: HEADER_FLAG_NO_CHECKSUM,
            page_size: 512,
            commit,
            min_txid: min,
            max_txid: max,
            timestamp_ms: 1,
            ..Header::default()
        }
    }

    /// Builds a file by hand, bypassing the encoder's rules, with a correct checksum.
    fn raw_file(h: &Header, pages: &[(u32, Vec<u8>)], post_apply: u64) -> Vec<u8> {
        let mut out = h.encode().to_vec();
        let mut hashed = out.clone();
        let mut index = Vec::new();
        for (pgno, data) in pages {
            let off = out.len();
            let len = encode_frame(&mut out, *pgno, data).unwrap();
            hashed.extend_from_slice(&out[off..off + 10]);
            hashed.extend_from_slice(data);
            index.push(PageIndexEntry { pgno: *pgno, offset: off as u64, size: len as u64 });
        }
        out.extend_from_slice(&END_MARKER);
        hashed.extend_from_slice(&END_MARKER);
        let idx = encode_page_index(&index);
        out.extend_from_slice(&idx);
        hashed.extend_from_slice(&idx);
        out.extend_from_slice(&post_apply.to_be_bytes());
        hashed.extend_from_slice(&post_apply.to_be_bytes());
        out.extend_from_slice(&(CHECKSUM_FLAG | crc64_iso(&hashed)).to_be_bytes());
        out
    }

    fn corrupt_msg(r: Result<DecodedFile>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt, "{e:?}");
        e.message
    }

    fn pg(fill: u8) -> Vec<u8> {
        vec![fill; 512]
    }

    #[test]
    fn raw_builder_matches_encoder() {
        let h = header(2, 2, 3);
        let p = pg(1);
        let enc = encode_file(&h, &[(2, &p)]).unwrap();
        assert_eq!(raw_file(&h, &[(2, p)], 0), enc.bytes);
    }

    #[test]
    fn reader_rejects_bad_sequences() {
        let h = header(2, 2, 3);
        let msg = corrupt_msg(decode_file(&raw_file(&h, &[(3, pg(1)), (2, pg(2))], 0)));
        assert_eq!(msg, "out-of-order page numbers: 3,2");
        let msg = corrupt_msg(decode_file(&raw_file(&h, &[(2, pg(1)), (2, pg(2))], 0)));
        assert_eq!(msg, "out-of-order page numbers: 2,2");
        let msg = corrupt_msg(decode_file(&raw_file(&h, &[(4, pg(1))], 0)));
        assert_eq!(msg, "page number 4 out-of-bounds for commit size 3");

        let s = header(1, 2, 3);
        let msg = corrupt_msg(decode_file(&raw_file(&s, &[(2, pg(1))], 0)));
        assert_eq!(msg, "snapshot transaction file must start with page number 1");
        let msg = corrupt_msg(decode_file(&raw_file(&s, &[(1, pg(1)), (3, pg(1))], 0)));
        assert_eq!(msg, "nonsequential page numbers in snapshot transaction: 1,3");
        // Snapshot incompleteness up to commit is tolerated, as in Go.
        assert!(decode_file(&raw_file(&s, &[(1, pg(1))], 0)).is_ok());
    }

    #[test]
    fn reader_sequence_lock_page() {
        let h = Header { commit: u32::MAX, ..header(1, 1, 0) };
        let lock = h.lock_pgno();
        assert!(check_sequence(&h, lock - 1, lock + 1, lock, true).is_ok());
        assert!(check_sequence(&h, lock - 1, lock, lock, true).is_err());
        assert!(check_sequence(&h, lock - 1, lock + 2, lock, true).is_err());
        assert!(check_sequence(&h, 0, lock, lock, false).is_err());
    }

    #[test]
    fn tracked_snapshot_post_apply_checked() {
        let mut h = header(1, 1, 2);
        h.flags = 0;
        let pages = vec![(1, pg(1)), (2, pg(2))];
        let mut c = RollingChecksum::new();
        c.add_page(1, &pg(1));
        c.add_page(2, &pg(2));
        let ok = decode_file(&raw_file(&h, &pages, c.value())).unwrap();
        assert_eq!(ok.post_apply_checksum, c.value());
        let msg = corrupt_msg(decode_file(&raw_file(&h, &pages, CHECKSUM_FLAG | 1)));
        assert!(msg.starts_with("post-apply checksum in trailer (8000000000000001)"), "{msg}");
        // Not checked for non-snapshots or NoChecksum.
        let mut h2 = header(2, 2, 2);
        h2.flags = 0;
        h2.pre_apply_checksum = CHECKSUM_FLAG;
        assert!(decode_file(&raw_file(&h2, &pages, CHECKSUM_FLAG | 1)).is_ok());
    }

    #[test]
    fn structural_corruption() {
        let h = header(2, 2, 3);
        let good = raw_file(&h, &[(1, pg(1)), (3, pg(3))], 0);
        assert!(decode_file(&good).is_ok());

        // Every truncation fails cleanly.
        for n in 0..good.len() {
            assert!(decode_file(&good[..n]).is_err(), "len {n}");
        }
        // Trailing garbage.
        let mut long = good.clone();
        long.push(0);
        assert!(decode_file(&long).is_err());
        // Every single-byte flip either fails or (only inside a compressed payload, which the
        // file checksum does not cover) still decodes to the very same pages.
        let want = decode_file(&good).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            match decode_file(&bad) {
                Err(e) if (80..100).contains(&i) => {
                    // Reserved bytes are not validated but are hashed.
                    assert_eq!(e.message, "file checksum mismatch");
                }
                Err(_) => {}
                Ok(d) => {
                    let payload = want.index.iter().any(|e| (e.offset + 10..e.offset + e.size).contains(&(i as u64)));
                    assert!(payload, "flip at {i} went unnoticed");
                    assert_eq!(d.pages, want.pages, "flip at {i}");
                }
            }
        }
        // Bad magic.
        let mut bad = good.clone();
        bad[3] = b'2';
        assert_eq!(corrupt_msg(decode_file(&bad)), "invalid LTX file");
    }

    #[test]
    fn index_disagreeing_with_frames() {
        // Build a file whose index lies about a size but whose checksum is right.
        let h = header(2, 2, 3);
        let p = pg(1);
        let enc = encode_file(&h, &[(1, &p)]).unwrap();
        let mut index = enc.index.clone();
        index[0].size -= 1;
        let marker = 100 + enc.index[0].size as usize;
        let mut out = enc.bytes[..marker + 6].to_vec();
        let mut hashed = out[..110].to_vec();
        hashed.extend_from_slice(&p);
        hashed.extend_from_slice(&END_MARKER);
        let idx = encode_page_index(&index);
        out.extend_from_slice(&idx);
        hashed.extend_from_slice(&idx);
        out.extend_from_slice(&[0; 8]);
        hashed.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&(CHECKSUM_FLAG | crc64_iso(&hashed)).to_be_bytes());
        assert_eq!(corrupt_msg(decode_file(&out)), "page index does not match the page frames");
    }

    #[test]
    fn legacy_frames_in_a_file() {
        use std::io::Write;
        let h = header(2, 2, 3);
        let p = pg(7);
        let mut out = h.encode().to_vec();
        let mut hashed = out.clone();
        let mut frame = vec![0, 0, 0, 2, 0, 0];
        hashed.extend_from_slice(&frame);
        hashed.extend_from_slice(&p);
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(&p).unwrap();
        frame.extend_from_slice(&enc.finish().unwrap());
        out.extend_from_slice(&frame);
        let index = [PageIndexEntry { pgno: 2, offset: 100, size: frame.len() as u64 }];
        out.extend_from_slice(&END_MARKER);
        hashed.extend_from_slice(&END_MARKER);
        let idx = encode_page_index(&index);
        out.extend_from_slice(&idx);
        hashed.extend_from_slice(&idx);
        out.extend_from_slice(&[0; 8]);
        hashed.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&(CHECKSUM_FLAG | crc64_iso(&hashed)).to_be_bytes());
        let dec = decode_file(&out).unwrap();
        assert_eq!(dec.pages, vec![(2, p)]);
        assert_eq!(dec.index, index);
    }
}
