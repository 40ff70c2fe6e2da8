//! The page index and the file tail (LTX.md §6, §7): uvarint triples, terminator, u64 size,
//! 16-byte trailer; located from the end of the file by random-access readers.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::ltx::frame::PAGE_HEADER_SIZE;
use crate::ltx::header::HEADER_SIZE;

/// post-apply checksum + file checksum.
pub const TRAILER_SIZE: usize = 16;

/// The u64 page-index size that sits right before the trailer.
pub const INDEX_SIZE_FIELD: usize = 8;

/// Bytes at the end of every file after the index proper: index size + trailer.
pub const TAIL_FIXED_SIZE: usize = INDEX_SIZE_FIELD + TRAILER_SIZE;

/// What the Go VFS fetches first to find the index (`DefaultEstimatedPageIndexSize`).
pub const DEFAULT_ESTIMATED_PAGE_INDEX_SIZE: u64 = 32 * 1024;

/// Longest uvarint for a u64 (Go's `binary.MaxVarintLen64`).
const MAX_VARINT_LEN: usize = 10;

/// Where one page frame lives in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageIndexEntry {
    pub pgno: u32,
    /// Absolute file offset of the frame's 6-byte page header.
    pub offset: u64,
    /// Whole frame length: 6 + 4 + N for block frames (the whole legacy frame otherwise).
    pub size: u64,
}

/// Appends `x` as an unsigned LEB128 varint (Go `binary.PutUvarint`).
pub fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Reads a uvarint at `buf[*pos..]` like Go's `binary.Uvarint`, advancing `pos`.
/// `what` names the field for error messages.
pub fn read_uvarint(buf: &[u8], pos: &mut usize, what: &str) -> Result<u64> {
    let mut x: u64 = 0;
    let mut shift = 0u32;
    for i in 0..MAX_VARINT_LEN {
        let Some(&b) = buf.get(*pos + i) else {
            return Err(Error::corrupt(format!("page index: truncated uvarint ({what})")));
        };
        if b < 0x80 {
            if i == MAX_VARINT_LEN - 1 && b > 1 {
                break; // overflow
            }
            *pos += i + 1;
            return Ok(x | (u64::from(b) << shift));
        }
        x |= u64::from(b & 0x7f) << shift;
        shift += 7;
    }
    Err(Error::corrupt(format!("page index: varint overflows a 64-bit integer ({what})")))
}

/// Serializes the index: triples, terminator and the u64 size (not the trailer).
pub fn encode_page_index(entries: &[PageIndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 8 + 1 + INDEX_SIZE_FIELD);
    for e in entries {
        put_uvarint(&mut out, u64::from(e.pgno));
        put_uvarint(&mut out, e.offset);
        put_uvarint(&mut out, e.size);
    }
    put_uvarint(&mut out, 0);
    let size = out.len() as u64;
    out.extend_from_slice(&size.to_be_bytes());
    out
}

/// Parses the triples and terminator at the start of `buf`, which starts at absolute file offset
/// `index_start`. Returns the entries and the number of bytes consumed (triples + terminator).
///
/// Checks: pgnos strictly increasing (and non-zero, as 0 terminates), frames ascending and
/// non-overlapping, each at least a page header plus one byte long, every frame inside
/// `[HEADER_SIZE, index_start - 6)` (before the end-of-pages marker).
pub fn parse_page_index(buf: &[u8], index_start: u64) -> Result<(Vec<PageIndexEntry>, usize)> {
    let page_area_end = index_start
        .checked_sub(PAGE_HEADER_SIZE as u64)
        .filter(|&end| end >= HEADER_SIZE as u64)
        .ok_or_else(|| Error::corrupt(format!("page index offset {index_start} overlaps the header")))?;
    let mut pos = 0usize;
    let mut entries = Vec::new();
    let mut prev_pgno = 0u64;
    let mut prev_end = HEADER_SIZE as u64;
    loop {
        let pgno = read_uvarint(buf, &mut pos, "pgno")?;
        if pgno == 0 {
            break;
        }
        let offset = read_uvarint(buf, &mut pos, "offset")?;
        let size = read_uvarint(buf, &mut pos, "size")?;
        let pgno32 =
            u32::try_from(pgno).map_err(|_| Error::corrupt(format!("page index: page number too large: {pgno}")))?;
        if pgno <= prev_pgno {
            return Err(Error::corrupt(format!("page index: out-of-order page numbers: {prev_pgno},{pgno}")));
        }
        if size <= PAGE_HEADER_SIZE as u64 {
            return Err(Error::corrupt(format!("page index: invalid frame size for page {pgno}: {size}")));
        }
        let end = offset.checked_add(size);
        if offset < prev_end || end.is_none_or(|end| end > page_area_end) {
            return Err(Error::corrupt(format!(
                "page index: frame for page {pgno} at offset {offset} size {size} is outside \
                 the page area [{prev_end}, {page_area_end})"
            )));
        }
        prev_pgno = pgno;
        prev_end = end.unwrap_or(page_area_end);
        entries.push(PageIndexEntry { pgno: pgno32, offset, size });
    }
    Ok((entries, pos))
}

/// The page-index size stored 24 bytes before the end of the file; `tail` must end at EOF.
pub fn index_size_from_tail(tail: &[u8]) -> Result<u64> {
    let start = tail
        .len()
        .checked_sub(TAIL_FIXED_SIZE)
        .ok_or_else(|| Error::corrupt(format!("ltx file too short to contain a page index: {} bytes", tail.len())))?;
    let mut b = [0u8; INDEX_SIZE_FIELD];
    let field = tail
        .get(start..start + INDEX_SIZE_FIELD)
        .ok_or_else(|| Error::corrupt(format!("ltx file too short to contain a page index: {} bytes", tail.len())))?;
    b.copy_from_slice(field);
    Ok(u64::from_be_bytes(b))
}

/// The bytes holding index triples + terminator + index size + trailer:
/// `[file_size - 24 - index_size, file_size)`. The index must start after the header and the
/// end-of-pages marker, and must hold at least the terminator.
pub fn page_index_range(file_size: u64, index_size: u64) -> Result<Range<u64>> {
    let min_start = (HEADER_SIZE + PAGE_HEADER_SIZE) as u64;
    let start = file_size
        .checked_sub(TAIL_FIXED_SIZE as u64)
        .and_then(|x| x.checked_sub(index_size))
        .filter(|&start| start >= min_start && index_size >= 1)
        .ok_or_else(|| {
            Error::corrupt(format!("invalid page index size {index_size} for ltx file of {file_size} bytes"))
        })?;
    Ok(start..file_size)
}

/// Parses the page index from the tail of a file: `tail` holds bytes `[tail_offset, file_size)`.
///
/// `Ok(None)` means the index starts before `tail_offset`; fetch
/// [`page_index_range`]`(file_size, index_size)` and call again with that range.
pub fn parse_page_index_from_tail(
    tail: &[u8],
    tail_offset: u64,
    file_size: u64,
) -> Result<Option<Vec<PageIndexEntry>>> {
    if tail_offset.checked_add(tail.len() as u64) != Some(file_size) {
        return Err(Error::internal(format!(
            "page index tail of {} bytes at offset {tail_offset} does not end at file size {file_size}",
            tail.len()
        )));
    }
    let index_size = index_size_from_tail(tail)?;
    let range = page_index_range(file_size, index_size)?;
    if range.start < tail_offset {
        return Ok(None);
    }
    // range.start >= tail_offset and range.start <= file_size, so this fits in the tail.
    let rel =
        usize::try_from(range.start - tail_offset).map_err(|_| Error::corrupt("page index offset out of range"))?;
    let index_end = tail.len().saturating_sub(TAIL_FIXED_SIZE);
    let index_bytes = tail.get(rel..index_end).ok_or_else(|| Error::corrupt("page index outside the fetched tail"))?;
    let (entries, used) = parse_page_index(index_bytes, range.start)?;
    if used != index_bytes.len() {
        return Err(Error::corrupt(format!(
            "page index size mismatch: terminator after {used} bytes, index size {index_size}"
        )));
    }
    Ok(Some(entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// The index and trailer of the worked example (LTX.md §13), file of 696 bytes.
    const EXAMPLE_TAIL: [u8; 41] = [
        0x01, 0x64, 0x6c, 0x4d, 0xd0, 0x01, 0x4a, 0x4e, 0x9a, 0x02, 0xcd, 0x02, 0x4f, 0xe7, 0x04, 0x22, 0x00, 0, 0, 0,
        0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0xda, 0x1a, 0x8a, 0x3f, 0xcf, 0x18, 0x7e, 0x0d,
    ];
    const EXAMPLE_SIZE: u64 = 696;

    fn example_entries() -> Vec<PageIndexEntry> {
        [(1, 100, 108), (77, 208, 74), (78, 282, 333), (79, 615, 34)]
            .iter()
            .map(|&(pgno, offset, size)| PageIndexEntry { pgno, offset, size })
            .collect()
    }

    fn corrupt_msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt, "{e:?}");
        e.message
    }

    #[test]
    fn uvarint_round_trip_and_limits() {
        for x in [0u64, 1, 127, 128, 300, 16383, 16384, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, x);
            let mut pos = 0;
            assert_eq!(read_uvarint(&buf, &mut pos, "x").unwrap(), x);
            assert_eq!(pos, buf.len());
        }
        let mut buf = Vec::new();
        put_uvarint(&mut buf, u64::MAX);
        assert_eq!(buf.len(), 10);
        // 10th byte > 1 overflows.
        let mut bad = buf.clone();
        bad[9] = 2;
        assert!(corrupt_msg(read_uvarint(&bad, &mut 0, "x")).contains("overflows"));
        // 11 continuation bytes.
        let bad = [0xffu8; 11];
        assert!(corrupt_msg(read_uvarint(&bad, &mut 0, "x")).contains("overflows"));
        // Truncated.
        assert!(corrupt_msg(read_uvarint(&[0x80, 0x80], &mut 0, "x")).contains("truncated"));
        assert!(read_uvarint(&[], &mut 0, "x").is_err());
        // Non-minimal encodings are accepted, like Go.
        let mut pos = 0;
        assert_eq!(read_uvarint(&[0x81, 0x00], &mut pos, "x").unwrap(), 1);
        assert_eq!(pos, 2);
    }

    #[test]
    fn parse_worked_example_tail() {
        let off = EXAMPLE_SIZE - EXAMPLE_TAIL.len() as u64;
        let got = parse_page_index_from_tail(&EXAMPLE_TAIL, off, EXAMPLE_SIZE).unwrap();
        assert_eq!(got, Some(example_entries()));
        assert_eq!(index_size_from_tail(&EXAMPLE_TAIL).unwrap(), 17);
        assert_eq!(page_index_range(EXAMPLE_SIZE, 17).unwrap(), 0x28f..696);
        // Encoder produces the same bytes.
        let enc = encode_page_index(&example_entries());
        assert_eq!(&enc[..], &EXAMPLE_TAIL[..25]);
    }

    #[test]
    fn tail_too_small_for_the_index() {
        // Only the last 30 bytes: the index starts before them.
        let tail = &EXAMPLE_TAIL[11..];
        let off = EXAMPLE_SIZE - tail.len() as u64;
        assert_eq!(parse_page_index_from_tail(tail, off, EXAMPLE_SIZE).unwrap(), None);
        // Exactly the index range works.
        let tail = &EXAMPLE_TAIL[..];
        let r = page_index_range(EXAMPLE_SIZE, index_size_from_tail(tail).unwrap()).unwrap();
        assert_eq!(r.end - r.start, tail.len() as u64);
    }

    #[test]
    fn too_short() {
        let msg = corrupt_msg(parse_page_index_from_tail(&[0u8; 23], 0, 23));
        assert_eq!(msg, "ltx file too short to contain a page index: 23 bytes");
        let msg = corrupt_msg(index_size_from_tail(&[0u8; 10]));
        assert_eq!(msg, "ltx file too short to contain a page index: 10 bytes");
        assert_eq!(index_size_from_tail(&[0u8; 24]).unwrap(), 0);
    }

    #[test]
    fn tail_must_end_at_file_size() {
        let e = parse_page_index_from_tail(&EXAMPLE_TAIL, 0, EXAMPLE_SIZE).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
    }

    #[test]
    fn bad_index_sizes() {
        // Index size 0: no room for the terminator.
        assert!(page_index_range(1000, 0).is_err());
        // Index overlapping the header / marker.
        assert!(page_index_range(200, 100).is_err());
        assert!(page_index_range(131, 1).is_ok()); // 100 + 6 + 1 + 24
        assert!(page_index_range(130, 1).is_err());
        assert!(page_index_range(10, 1).is_err());
        assert!(page_index_range(u64::MAX, u64::MAX).is_err());
        // Huge index size in the tail.
        let mut tail = EXAMPLE_TAIL;
        tail[17..25].copy_from_slice(&u64::MAX.to_be_bytes());
        let off = EXAMPLE_SIZE - tail.len() as u64;
        assert!(parse_page_index_from_tail(&tail, off, EXAMPLE_SIZE).is_err());
        // Index size one too small: the first byte is skipped and parsing hits garbage.
        let mut tail = EXAMPLE_TAIL;
        tail[17..25].copy_from_slice(&16u64.to_be_bytes());
        let off = EXAMPLE_SIZE - tail.len() as u64;
        assert!(parse_page_index_from_tail(&tail, off, EXAMPLE_SIZE).is_err());
        // One too large: the index would start at the last byte of the end marker (a zero,
        // read as the terminator, leaving 17 unparsed bytes).
        let mut tail = vec![0u8];
        tail.extend_from_slice(&EXAMPLE_TAIL);
        tail[18..26].copy_from_slice(&18u64.to_be_bytes());
        let off = EXAMPLE_SIZE - tail.len() as u64;
        let e = parse_page_index_from_tail(&tail, off, EXAMPLE_SIZE).unwrap_err();
        assert!(e.message.contains("page index size mismatch"), "{e:?}");
        // ... and with the short tail it asks for more bytes.
        assert_eq!(parse_page_index_from_tail(&tail[1..], off + 1, EXAMPLE_SIZE).unwrap(), None);
    }

    #[test]
    fn garbage_and_truncated_indexes() {
        let check = |index: &[u8]| {
            let mut tail = index.to_vec();
            tail.extend_from_slice(&(index.len() as u64).to_be_bytes());
            tail.extend_from_slice(&[0u8; 16]);
            let size = 600u64;
            let off = size - tail.len() as u64;
            parse_page_index_from_tail(&tail, off, size)
        };
        // Valid minimal: just the terminator (zero pages).
        assert_eq!(check(&[0]).unwrap(), Some(vec![]));
        // Missing terminator (truncated triple / no terminator).
        assert!(check(&[0x01, 0x64]).is_err());
        assert!(check(&[0x01, 0x64, 0x6c]).is_err());
        assert!(check(&[0x01, 0x64, 0x80]).is_err());
        // Bytes after the terminator.
        assert!(check(&[0x00, 0x00]).is_err());
        // All 0xff.
        assert!(check(&[0xff; 40]).is_err());
        // Out of order pgnos.
        assert!(check(&[0x02, 0x64, 0x0a, 0x01, 0x6e, 0x0a, 0x00]).is_err());
        // Duplicate pgnos.
        assert!(check(&[0x02, 0x64, 0x0a, 0x02, 0x6e, 0x0a, 0x00]).is_err());
        // Offset inside the header.
        assert!(check(&[0x01, 0x10, 0x0a, 0x00]).is_err());
        // Overlapping frames.
        assert!(check(&[0x01, 0x64, 0x0a, 0x02, 0x6a, 0x0a, 0x00]).is_err());
        // Size too small.
        assert!(check(&[0x01, 0x64, 0x06, 0x00]).is_err());
        // Frame runs past the marker (index of 5 bytes starts at 600-24-5 = 571, marker at 565).
        let mut big = vec![0x01, 0x64];
        put_uvarint(&mut big, 466);
        big.push(0);
        assert!(check(&big).is_err());
        let mut ok = vec![0x01, 0x64];
        put_uvarint(&mut ok, 465);
        ok.push(0);
        assert_eq!(check(&ok).unwrap(), Some(vec![PageIndexEntry { pgno: 1, offset: 100, size: 465 }]));
        // Pgno beyond u32.
        let mut big_pgno = Vec::new();
        put_uvarint(&mut big_pgno, 1 << 32);
        big_pgno.extend_from_slice(&[0x64, 0x0a, 0x00]);
        assert!(check(&big_pgno).is_err());
        // Huge offset + size overflow.
        let mut ovf = vec![0x01];
        put_uvarint(&mut ovf, u64::MAX);
        put_uvarint(&mut ovf, u64::MAX);
        ovf.push(0);
        assert!(check(&ovf).is_err());
    }
}
