//! Page frames (LTX.md §4): a 6-byte page header (pgno u32, flags u16), then either a 4-byte
//! size and an LZ4 block (flag 0x0001, what litestream writes) or, for legacy files (flags 0),
//! a complete LZ4 frame.

use std::io::Read;

use crate::error::{Error, Result};

/// pgno (u32) + flags (u16).
pub const PAGE_HEADER_SIZE: usize = 6;

/// Page header flag: a 4-byte payload size follows and the payload is an LZ4 block.
pub const PAGE_HEADER_FLAG_SIZE: u16 = 0x0001;

/// The 4-byte compressed-size field of block frames.
pub const PAGE_SIZE_FIELD: usize = 4;

/// Six zero bytes ending the page block.
pub const END_MARKER: [u8; PAGE_HEADER_SIZE] = [0; PAGE_HEADER_SIZE];

/// LZ4 frame magic (little-endian `0x184D2204`).
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// What [`decode_frame`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedFrame {
    pub pgno: u32,
    pub flags: u16,
    /// Bytes of `frame` the frame occupies (page header included): the page index `size`.
    pub frame_len: usize,
}

/// Reads the 6-byte page header at the start of `buf`: `(pgno, flags)`.
pub fn read_page_header(buf: &[u8]) -> Result<(u32, u16)> {
    match buf.get(..PAGE_HEADER_SIZE) {
        Some(&[a, b, c, d, e, f]) => Ok((u32::from_be_bytes([a, b, c, d]), u16::from_be_bytes([e, f]))),
        _ => Err(Error::corrupt(format!("page frame too short for a page header: {} bytes", buf.len()))),
    }
}

/// Page header checks of the Go decoder, for a header that is not the end marker.
pub fn validate_page_header(pgno: u32, flags: u16) -> Result<()> {
    if pgno == 0 {
        return Err(Error::corrupt("page number required"));
    }
    if flags & !PAGE_HEADER_FLAG_SIZE != 0 {
        return Err(Error::corrupt(format!("invalid page header flags: 0x{flags:04x}")));
    }
    Ok(())
}

/// Decodes one page frame that starts at `frame[0]` into `out` (`out.len()` == page size) and
/// returns its page number. Bytes after the frame are ignored; use [`decode_frame`] to learn the
/// frame length.
pub fn decode_frame_into(frame: &[u8], out: &mut [u8]) -> Result<u32> {
    decode_frame(frame, out).map(|f| f.pgno)
}

/// Like [`decode_frame_into`] but also returns the flags and the frame length.
///
/// Rejects pgno 0 (including the end marker), unknown flags, a payload running past the slice,
/// a payload that does not decompress to exactly `out.len()` bytes.
pub fn decode_frame(frame: &[u8], out: &mut [u8]) -> Result<DecodedFrame> {
    let (pgno, flags) = read_page_header(frame)?;
    validate_page_header(pgno, flags)?;
    let body = frame.get(PAGE_HEADER_SIZE..).unwrap_or_default();
    let body_len = if flags & PAGE_HEADER_FLAG_SIZE != 0 {
        decode_block_payload(pgno, body, out)?
    } else {
        decode_legacy_frame_payload(pgno, body, out)?
    };
    Ok(DecodedFrame { pgno, flags, frame_len: PAGE_HEADER_SIZE + body_len })
}

/// `body` starts at the size field. Returns 4 + N.
fn decode_block_payload(pgno: u32, body: &[u8], out: &mut [u8]) -> Result<usize> {
    let size = match body.get(..PAGE_SIZE_FIELD) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize,
        _ => {
            return Err(Error::corrupt(format!("page {pgno}: frame too short for the compressed size field")));
        }
    };
    let payload =
        PAGE_SIZE_FIELD.checked_add(size).and_then(|end| body.get(PAGE_SIZE_FIELD..end)).ok_or_else(|| {
            Error::corrupt(format!(
                "page {pgno}: compressed size {size} exceeds the {} bytes available",
                body.len().saturating_sub(PAGE_SIZE_FIELD)
            ))
        })?;
    let n = lz4_flex::block::decompress_into(payload, out)
        .map_err(|e| Error::corrupt(format!("page {pgno}: lz4 block decode: {e}")))?;
    if n != out.len() {
        return Err(Error::corrupt(format!("page {pgno}: decompressed {n} bytes, expected page size {}", out.len())));
    }
    Ok(PAGE_SIZE_FIELD + size)
}

/// Legacy flag-0 encoding: `body` starts with a complete LZ4 frame. Returns the frame length.
fn decode_legacy_frame_payload(pgno: u32, body: &[u8], out: &mut [u8]) -> Result<usize> {
    let len = lz4_frame_len(body).map_err(|e| e.context(format!("page {pgno}: lz4 frame")))?;
    let mut src = body.get(..len).unwrap_or_default();
    let mut dec = lz4_flex::frame::FrameDecoder::new(&mut src);
    dec.read_exact(out).map_err(|e| Error::corrupt(format!("page {pgno}: lz4 frame decode: {e}")))?;
    // The frame must end right after the page: end mark (and content checksum, verified here).
    let mut extra = [0u8; 1];
    match dec.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => {
            return Err(Error::corrupt(format!("page {pgno}: lz4 frame holds more than the page size {}", out.len())));
        }
        Err(e) => {
            return Err(Error::corrupt(format!("page {pgno}: lz4 frame decode: {e}")));
        }
    }
    drop(dec);
    if !src.is_empty() {
        return Err(Error::corrupt(format!("page {pgno}: lz4 frame ends early")));
    }
    Ok(len)
}

fn le_u32_at(buf: &[u8], pos: usize) -> Result<u32> {
    match buf.get(pos..pos.saturating_add(4)) {
        Some(&[a, b, c, d]) => Ok(u32::from_le_bytes([a, b, c, d])),
        _ => Err(Error::corrupt("truncated")),
    }
}

/// Walks the structure of the LZ4 frame at the start of `buf` (header, blocks, end mark,
/// optional content checksum) and returns its length, without decompressing.
fn lz4_frame_len(buf: &[u8]) -> Result<usize> {
    if buf.get(..4) != Some(&LZ4_FRAME_MAGIC[..]) {
        return Err(Error::corrupt("missing magic"));
    }
    let flg = *buf.get(4).ok_or_else(|| Error::corrupt("truncated"))?;
    if flg >> 6 != 1 {
        return Err(Error::corrupt(format!("unsupported version in FLG 0x{flg:02x}")));
    }
    let block_checksum = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    let dict_id = flg & 0x01 != 0;
    // magic, FLG, BD, [content size], [dict id], HC.
    let mut pos = 6 + if content_size { 8 } else { 0 } + if dict_id { 4 } else { 0 } + 1;
    if buf.len() < pos {
        return Err(Error::corrupt("truncated"));
    }
    loop {
        let word = le_u32_at(buf, pos)?;
        pos += 4;
        if word == 0 {
            break;
        }
        let len = (word & 0x7fff_ffff) as usize;
        pos = pos
            .checked_add(len)
            .and_then(|p| p.checked_add(if block_checksum { 4 } else { 0 }))
            .filter(|&p| p <= buf.len())
            .ok_or_else(|| Error::corrupt("truncated"))?;
    }
    if content_checksum {
        pos += 4;
        if pos > buf.len() {
            return Err(Error::corrupt("truncated"));
        }
    }
    Ok(pos)
}

/// Appends a block frame (flag 0x0001, size, LZ4 block of `page`) to `out`; returns its length.
pub fn encode_frame(out: &mut Vec<u8>, pgno: u32, page: &[u8]) -> Result<usize> {
    let start = out.len();
    out.extend_from_slice(&pgno.to_be_bytes());
    out.extend_from_slice(&PAGE_HEADER_FLAG_SIZE.to_be_bytes());
    let size_pos = out.len();
    out.extend_from_slice(&[0; PAGE_SIZE_FIELD]);
    let payload_pos = out.len();
    out.resize(payload_pos + lz4_flex::block::get_maximum_output_size(page.len()), 0);
    let n = lz4_flex::block::compress_into(page, &mut out[payload_pos..])
        .map_err(|e| Error::internal(format!("page {pgno}: lz4 block compress: {e}")))?;
    out.truncate(payload_pos + n);
    let n32 = u32::try_from(n).map_err(|_| Error::internal(format!("page {pgno}: compressed size {n} too large")))?;
    out[size_pos..payload_pos].copy_from_slice(&n32.to_be_bytes());
    Ok(out.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// Page 79 of the worked example (LTX.md §13): 24-byte LZ4 block of 512 zero bytes.
    const EXAMPLE_FRAME: [u8; 34] = [
        0x00, 0x00, 0x00, 0x4f, 0x00, 0x01, 0x00, 0x00, 0x00, 0x18, 0x1f, 0x00, 0x01, 0x00, 0xff, 0xda, 0x00, 0x02,
        0x00, 0x00, 0x02, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    fn corrupt_msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt, "{e:?}");
        e.message
    }

    #[test]
    fn decodes_worked_example_frame() {
        let mut out = vec![0xaau8; 512];
        assert_eq!(decode_frame_into(&EXAMPLE_FRAME, &mut out).unwrap(), 79);
        assert!(out.iter().all(|&b| b == 0));
        // Followed by the end marker: trailing bytes are not part of the frame.
        let mut buf = EXAMPLE_FRAME.to_vec();
        buf.extend_from_slice(&END_MARKER);
        let f = decode_frame(&buf, &mut out).unwrap();
        assert_eq!(f, DecodedFrame { pgno: 79, flags: 1, frame_len: 34 });
    }

    #[test]
    fn wrong_page_size() {
        let mut small = vec![0u8; 256];
        assert!(decode_frame_into(&EXAMPLE_FRAME, &mut small).is_err());
        let mut big = vec![0u8; 1024];
        let msg = corrupt_msg(decode_frame_into(&EXAMPLE_FRAME, &mut big));
        assert!(msg.contains("decompressed 512 bytes, expected page size 1024"), "{msg}");
    }

    #[test]
    fn rejects_bad_headers() {
        let mut out = vec![0u8; 512];
        let mut f = EXAMPLE_FRAME;
        f[..4].fill(0);
        assert_eq!(corrupt_msg(decode_frame_into(&f, &mut out)), "page number required");
        assert_eq!(corrupt_msg(decode_frame_into(&END_MARKER, &mut out)), "page number required");
        let mut f = EXAMPLE_FRAME;
        f[5] = 0x03;
        assert_eq!(corrupt_msg(decode_frame_into(&f, &mut out)), "invalid page header flags: 0x0003");
        f[4] = 0x80;
        f[5] = 0x01;
        assert_eq!(corrupt_msg(decode_frame_into(&f, &mut out)), "invalid page header flags: 0x8001");
    }

    #[test]
    fn rejects_truncation_at_every_length() {
        let mut out = vec![0u8; 512];
        for n in 0..EXAMPLE_FRAME.len() {
            assert!(decode_frame_into(&EXAMPLE_FRAME[..n], &mut out).is_err(), "len {n}");
        }
        // Size field larger than the slice.
        let mut f = EXAMPLE_FRAME;
        f[9] = 0x19;
        let msg = corrupt_msg(decode_frame_into(&f, &mut out));
        assert!(msg.contains("exceeds"), "{msg}");
        let mut f = EXAMPLE_FRAME;
        f[6..10].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_frame_into(&f, &mut out).is_err());
    }

    #[test]
    fn rejects_garbage_payloads() {
        let mut out = vec![0u8; 512];
        // Offset 0 / beyond the output, and a few arbitrary byte patterns: never panic.
        for fill in [0x00u8, 0x0f, 0x1f, 0xf0, 0xff, 0x55] {
            let mut f = EXAMPLE_FRAME.to_vec();
            f[10..].fill(fill);
            let _ = decode_frame_into(&f, &mut out);
        }
        let mut f = EXAMPLE_FRAME;
        f[12] = 0x05; // back-reference offset 5 with 1 byte of output
        assert!(decode_frame_into(&f, &mut out).is_err());
        // Smaller payload size: block ends early.
        let mut f = EXAMPLE_FRAME;
        f[9] = 0x10;
        assert!(decode_frame_into(&f, &mut out).is_err());
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut rng = 0x1234_5678u32;
        let mut random = vec![0u8; 4096];
        for b in random.iter_mut() {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            *b = rng as u8;
        }
        let zeros = vec![0u8; 4096];
        let text: Vec<u8> = b"SQLite format 3\0".iter().copied().cycle().take(65536).collect();
        for (pgno, page) in [(1u32, &random), (2, &zeros), (3, &text)] {
            let mut buf = vec![9u8; 3]; // frames are appended
            let len = encode_frame(&mut buf, pgno, page).unwrap();
            assert_eq!(buf.len(), 3 + len);
            let mut out = vec![0u8; page.len()];
            let f = decode_frame(&buf[3..], &mut out).unwrap();
            assert_eq!(f, DecodedFrame { pgno, flags: 1, frame_len: len });
            assert_eq!(&out, page);
        }
    }

    fn legacy_frame(pgno: u32, page: &[u8], info: lz4_flex::frame::FrameInfo) -> Vec<u8> {
        use std::io::Write;
        let mut out = pgno.to_be_bytes().to_vec();
        out.extend_from_slice(&[0, 0]);
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
        enc.write_all(page).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn legacy_lz4_frame_encoding() {
        use lz4_flex::frame::{BlockSize, FrameInfo};
        let page: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let info = FrameInfo::new().block_size(BlockSize::Max64KB).content_checksum(true);
        let frame = legacy_frame(7, &page, info);
        let mut out = vec![0u8; 4096];
        let f = decode_frame(&frame, &mut out).unwrap();
        assert_eq!(f, DecodedFrame { pgno: 7, flags: 0, frame_len: frame.len() });
        assert_eq!(out, page);

        // Trailing bytes (the next frame) are not consumed.
        let mut buf = frame.clone();
        buf.extend_from_slice(&EXAMPLE_FRAME);
        assert_eq!(decode_frame(&buf, &mut out).unwrap().frame_len, frame.len());

        // Block checksums and content size are handled too.
        let info = FrameInfo::new().block_checksums(true).content_size(Some(4096));
        let frame2 = legacy_frame(8, &page, info);
        assert_eq!(decode_frame(&frame2, &mut out).unwrap().frame_len, frame2.len());

        // Content checksum mismatch.
        let mut bad = frame.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        assert!(decode_frame(&bad, &mut out).is_err());

        // Truncated anywhere.
        for n in 0..frame.len() {
            assert!(decode_frame(&frame[..n], &mut out).is_err(), "len {n}");
        }

        // Frame with more data than the page, and with less.
        let mut big = vec![0u8; 8192];
        big[..4096].copy_from_slice(&page);
        let frame = legacy_frame(7, &big, FrameInfo::new());
        assert!(decode_frame(&frame, &mut out).is_err());
        let frame = legacy_frame(7, &page[..2048], FrameInfo::new());
        assert!(decode_frame(&frame, &mut out).is_err());

        // Not a frame at all.
        let mut f = vec![0, 0, 0, 7, 0, 0];
        f.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(decode_frame(&f, &mut out).is_err());
    }
}
