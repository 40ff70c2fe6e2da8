//! The LTX codec against every real file written by litestream 0.5.17 under tests/fixtures,
//! checked against each vector's expected.json (produced by the independent Python reader).

use std::fs;
use std::path::{Path, PathBuf};

use ltxvfs::ErrorKind;
use ltxvfs::ltx::{
    DecodedFile, Header, decode_file, decode_frame_into, index_size_from_tail, page_index_range,
    parse_page_index_from_tail,
};
use serde_json::Value;

const TAIL: u64 = 32 * 1024;

struct Fixture {
    path: PathBuf,
    vector: String,
    level: u64,
    name: String,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "ltx") {
            out.push(p);
        }
    }
}

/// Every `.ltx` file: `<vector>/.../ltx/<level>/<name>`.
fn fixtures() -> Vec<Fixture> {
    let root = fixtures_dir();
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    let mut out = Vec::new();
    for path in paths {
        let rel: Vec<String> = path
            .strip_prefix(&root)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let n = rel.len();
        assert!(n >= 4 && rel[n - 3] == "ltx", "unexpected fixture path {}", path.display());
        out.push(Fixture {
            vector: rel[0].clone(),
            level: rel[n - 2].parse().expect("numeric level directory"),
            name: rel[n - 1].clone(),
            path,
        });
    }
    assert!(out.len() >= 50, "expected the fixture files, found {}", out.len());
    out
}

fn expected_json(vector: &str) -> Value {
    let p = fixtures_dir().join(vector).join("expected.json");
    serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap()
}

/// What expected.json says about one file, normalized across the two layouts.
struct Expected {
    header: Value,
    pgnos: Vec<u32>,
    file_checksum: u64,
    post_apply_checksum: u64,
    size: Option<u64>,
    index_offset: Option<u64>,
    index_size: Option<u64>,
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap(), 16).unwrap()
}

fn expected_for(f: &Fixture) -> Expected {
    let json = expected_json(&f.vector);
    let entry = if let Some(files) = json.get("files").and_then(Value::as_array) {
        files
            .iter()
            .find(|e| e["level"].as_u64() == Some(f.level) && e["name"].as_str() == Some(&f.name))
            .unwrap_or_else(|| panic!("{}: no expected.json entry", f.path.display()))
            .clone()
    } else {
        // vfs-write: states keyed by the TXID (min == max for these L0 files).
        let txid = &f.name[..16];
        let mut e = json["states"][txid].clone();
        assert!(e.is_object(), "{}: no expected.json state", f.path.display());
        e["header"] = e["ltx_header"].clone();
        e
    };
    Expected {
        header: entry["header"].clone(),
        pgnos: entry["pgnos"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect(),
        file_checksum: hex(&entry["file_checksum"]),
        post_apply_checksum: hex(&entry["post_apply_checksum"]),
        size: entry.get("size").and_then(Value::as_u64),
        index_offset: entry.get("index_offset").and_then(Value::as_u64),
        index_size: entry.get("index_size").and_then(Value::as_u64),
    }
}

fn check_header(h: &Header, want: &Value, what: &str) {
    let field = |name: &str| want[name].as_i64().unwrap_or_else(|| panic!("{what}: {name}"));
    assert_eq!(i64::from(h.flags), field("flags"), "{what}: flags");
    assert_eq!(i64::from(h.page_size), field("page_size"), "{what}: page_size");
    assert_eq!(i64::from(h.commit), field("commit"), "{what}: commit");
    assert_eq!(h.min_txid as i64, field("min_txid"), "{what}: min_txid");
    assert_eq!(h.max_txid as i64, field("max_txid"), "{what}: max_txid");
    assert_eq!(h.timestamp_ms, field("timestamp_ms"), "{what}: timestamp_ms");
    assert_eq!(h.pre_apply_checksum as i64, field("pre_apply_checksum"), "{what}: pre_apply");
    assert_eq!(h.wal_offset, field("wal_offset"), "{what}: wal_offset");
    assert_eq!(h.wal_size, field("wal_size"), "{what}: wal_size");
    assert_eq!(i64::from(h.wal_salt1), field("wal_salt1"), "{what}: wal_salt1");
    assert_eq!(i64::from(h.wal_salt2), field("wal_salt2"), "{what}: wal_salt2");
    assert_eq!(h.node_id as i64, field("node_id"), "{what}: node_id");
}

/// Random-access view: index from the last `tail_len` bytes, fetching the exact range if needed.
fn index_via_tail(bytes: &[u8], tail_len: u64) -> Vec<ltxvfs::ltx::PageIndexEntry> {
    let size = bytes.len() as u64;
    let tail_off = size.saturating_sub(tail_len);
    let tail = &bytes[tail_off as usize..];
    match parse_page_index_from_tail(tail, tail_off, size).unwrap() {
        Some(idx) => idx,
        None => {
            let range = page_index_range(size, index_size_from_tail(tail).unwrap()).unwrap();
            assert!(range.start < tail_off);
            let chunk = &bytes[range.start as usize..range.end as usize];
            parse_page_index_from_tail(chunk, range.start, size).unwrap().unwrap()
        }
    }
}

fn decode_ok(f: &Fixture, bytes: &[u8]) -> DecodedFile {
    decode_file(bytes).unwrap_or_else(|e| panic!("{}: {e:?}", f.path.display()))
}

#[test]
fn every_fixture_decodes_and_matches_expected() {
    let mut with_index_size = 0;
    for f in fixtures() {
        let what = f.path.display().to_string();
        let bytes = fs::read(&f.path).unwrap();
        let want = expected_for(&f);
        let dec = decode_ok(&f, &bytes);

        check_header(&dec.header, &want.header, &what);
        let pgnos: Vec<u32> = dec.pages.iter().map(|(p, _)| *p).collect();
        assert_eq!(pgnos, want.pgnos, "{what}: pgnos");
        assert_eq!(dec.file_checksum, want.file_checksum, "{what}: file checksum");
        assert_eq!(dec.post_apply_checksum, want.post_apply_checksum, "{what}: post-apply");
        if let Some(size) = want.size {
            assert_eq!(bytes.len() as u64, size, "{what}: size");
        }
        for (_, page) in &dec.pages {
            assert_eq!(page.len(), dec.header.page_size as usize);
        }

        // Index from the tail (32 KiB like the Go VFS, and a tiny tail forcing a second fetch).
        let size = bytes.len() as u64;
        let index_size = index_size_from_tail(&bytes).unwrap();
        assert_eq!(index_via_tail(&bytes, TAIL), dec.index, "{what}: tail index");
        assert_eq!(index_via_tail(&bytes, 30), dec.index, "{what}: short-tail index");
        let range = page_index_range(size, index_size).unwrap();
        if let Some(want_size) = want.index_size {
            assert_eq!(index_size, want_size, "{what}: index_size");
            with_index_size += 1;
        }
        if let Some(want_off) = want.index_offset {
            assert_eq!(range.start, want_off, "{what}: index_offset");
        }

        // Each indexed frame decodes alone, exactly as the VFS will fetch it.
        assert_eq!(dec.index.len(), dec.pages.len());
        let mut out = vec![0u8; dec.header.page_size as usize];
        for (e, (pgno, page)) in dec.index.iter().zip(&dec.pages) {
            assert_eq!(e.pgno, *pgno);
            let frame = &bytes[e.offset as usize..(e.offset + e.size) as usize];
            assert_eq!(decode_frame_into(frame, &mut out).unwrap(), *pgno, "{what}");
            assert_eq!(&out, page, "{what}: page {pgno}");
        }
    }
    assert!(with_index_size >= 50);
}

#[test]
fn snapshots_are_complete() {
    for f in fixtures() {
        let bytes = fs::read(&f.path).unwrap();
        let dec = decode_ok(&f, &bytes);
        if dec.header.is_snapshot() {
            let pgnos: Vec<u32> = dec.pages.iter().map(|(p, _)| *p).collect();
            let want: Vec<u32> = (1..=dec.header.commit).collect();
            assert_eq!(pgnos, want, "{}", f.path.display());
        }
    }
}

/// Offset of the first literal byte of the first frame's LZ4 block, if the block starts with one.
fn first_literal_offset(bytes: &[u8], frame_off: usize) -> Option<usize> {
    let payload = frame_off + 10;
    let token = *bytes.get(payload)?;
    let mut p = payload + 1;
    match token >> 4 {
        0 => return None,
        // Literal length >= 15: skip the extension bytes (255s, then one byte < 255).
        15 => {
            while *bytes.get(p)? == 255 {
                p += 1;
            }
            p += 1;
        }
        _ => {}
    }
    Some(p)
}

#[test]
fn flipped_page_byte_is_a_checksum_mismatch() {
    let mut tested = 0;
    for f in fixtures() {
        let bytes = fs::read(&f.path).unwrap();
        let dec = decode_ok(&f, &bytes);
        let Some(first) = dec.index.first() else {
            continue;
        };
        let Some(at) = first_literal_offset(&bytes, first.offset as usize) else {
            continue;
        };
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let e = decode_file(&bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt, "{}", f.path.display());
        assert_eq!(e.message, "file checksum mismatch", "{}", f.path.display());
        // The random-access path does not verify: the lone frame still decodes (to other data).
        let frame = &bad[first.offset as usize..(first.offset + first.size) as usize];
        let mut out = vec![0u8; dec.header.page_size as usize];
        assert_eq!(decode_frame_into(frame, &mut out).unwrap(), first.pgno);
        assert_ne!(out, dec.pages[0].1);
        tested += 1;
    }
    assert!(tested >= 20, "only {tested} files had a leading literal");
}

#[test]
fn flipped_trailer_or_index_byte_fails() {
    for f in fixtures() {
        let bytes = fs::read(&f.path).unwrap();
        let n = bytes.len();
        for at in [n - 1, n - 9, n - 17, n - 25, 90] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            let e = decode_file(&bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Corrupt, "{} flip at {at}", f.path.display());
        }
    }
}

#[test]
fn bad_magic_is_invalid_ltx_file() {
    for f in fixtures() {
        let mut bytes = fs::read(&f.path).unwrap();
        bytes[0] = b'X';
        let e = decode_file(&bytes).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Corrupt);
        assert_eq!(e.message, "invalid LTX file", "{}", f.path.display());
        assert_eq!(Header::decode(&bytes).unwrap_err().message, "invalid LTX file");
    }
}

#[test]
fn truncated_files_fail_cleanly() {
    for f in fixtures() {
        let bytes = fs::read(&f.path).unwrap();
        let n = bytes.len();
        let cuts = [0, 1, 4, 50, 99, 100, 105, 106, 110, n / 2, n - 41, n - 25, n - 24, n - 17, n - 16, n - 8, n - 1];
        for cut in cuts {
            let e = decode_file(&bytes[..cut]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Corrupt, "{} cut at {cut}: {e:?}", f.path.display());
        }
        // The tail parser on a truncated file fails or asks for more, never panics.
        for cut in [0, 10, 23, 24, 40, n / 2, n - 1] {
            let t = &bytes[..cut];
            let _ = parse_page_index_from_tail(t, 0, cut as u64);
        }
    }
}

#[test]
fn every_byte_of_a_small_file_flipped_never_panics_or_lies() {
    // The smallest fixture: flip every bit position in turn; decode must fail or return the very
    // same pages (a flip inside a compressed payload that decodes identically).
    let mut all = fixtures();
    all.sort_by_key(|f| fs::metadata(&f.path).unwrap().len());
    let f = &all[0];
    let bytes = fs::read(&f.path).unwrap();
    let want = decode_ok(f, &bytes);
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            if let Ok(d) = decode_file(&bad) {
                assert_eq!(d.pages, want.pages, "{} flip {bit:#x} at {i}", f.path.display());
                assert_eq!(d.header, want.header);
            }
        }
    }
}
