//! The storage conformance checks (like object_store's `integration.rs`), written once for
//! every [`Storage`]: the native backends run them from `ext/tests/conformance.rs`, the
//! component's wasi-http S3 storage from `examples/wasi_conformance.rs` inside a wasmtime
//! instance (`ltxvfs-host run-wasi`). Test support only: a failed check panics.
//!
//! - listing per level (one level deep, strict LTX names left to the caller, sizes);
//! - listing with seek (`list_after` from `Layout::seek_key`: MinTXID ≥ seek, one level);
//! - created-at (the LTX header timestamp where the backend keeps it, else the upload time);
//! - ranged reads: middle, first and last bytes, past the end, empty, open-ended;
//! - a missing key is NotFound, a missing prefix an empty listing;
//! - put create-only: a second create is AlreadyExists where the backend promises it;
//! - wrong credentials are an Auth error; a server that is down is a Network error, quickly.

use crate::ErrorKind;
use crate::layout::{Layout, LevelStyle, LtxName};
use crate::storage::{PutMode, RangeRequest, Storage};
use bytes::Bytes;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The LTX header timestamp of the seeded files: 2026-11-22T06:16:31.755Z.
pub const TS_MS: i64 = 1_795_328_191_755;

/// Whether the backend records the LTX header timestamp as created-at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedAt {
    /// Always (file mtime, memory).
    Header,
    /// With a metadata listing; the plain listing has the upload time (S3, GCS, Azure).
    HeaderWithMetadata,
    /// The upload time only (WebDAV).
    Upload,
    /// Always, in whole seconds (SFTP v3 file times).
    HeaderSeconds,
}

/// Writes one object (with the LTX timestamp metadata a backend keeps).
pub type Put<'a> = &'a dyn Fn(&str, &[u8], PutMode);

/// The keys of the suite under the replica root `root`.
pub struct Keys {
    pub l0: String,
    pub k1: String,
    pub k2: String,
    pub ktmp: String,
    pub knested: String,
    pub k5: String,
    pub k9: String,
}

impl Keys {
    pub fn new(root: &str) -> Keys {
        let l0 = format!("{root}/ltx/0/");
        Keys {
            k1: format!("{l0}0000000000000001-0000000000000001.ltx"),
            k2: format!("{l0}0000000000000002-0000000000000003.ltx"),
            ktmp: format!("{l0}0000000000000004-0000000000000004.ltx.tmp"),
            knested: format!("{l0}nested/0000000000000005-0000000000000005.ltx"),
            k5: format!("{l0}0000000000000005-0000000000000007.ltx"),
            k9: format!("{root}/ltx/9/0000000000000001-0000000000000003.ltx"),
            l0,
        }
    }
}

/// Wall-clock nanoseconds (std's clock: the system's natively, WASI's wall clock in wasm).
pub fn now_nanos() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// An LTX-looking object: a valid header (so puts record its timestamp) and `n` more bytes.
pub fn ltx_bytes(min: u64, max: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; 100];
    b[..4].copy_from_slice(b"LTX1");
    b[8..12].copy_from_slice(&4096u32.to_be_bytes());
    b[12..16].copy_from_slice(&1u32.to_be_bytes());
    b[16..24].copy_from_slice(&min.to_be_bytes());
    b[24..32].copy_from_slice(&max.to_be_bytes());
    b[32..40].copy_from_slice(&TS_MS.to_be_bytes());
    if min > 1 {
        b[40..48].copy_from_slice(&((1u64 << 63) | 1).to_be_bytes()); // pre-apply checksum (flag bit set) of an incremental file
    }
    b.extend((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)));
    b
}

fn data1() -> Vec<u8> {
    ltx_bytes(1, 1, 5000)
}

fn data2() -> Vec<u8> {
    ltx_bytes(2, 3, 300)
}

pub fn req(key: &str, start: u64, end: u64) -> RangeRequest {
    RangeRequest { key: key.to_string(), range: start..end }
}

/// Write the suite's objects under `root` with `put`; the wall-clock window of the uploads.
pub fn seed(put: Put, root: &str) -> (i64, i64) {
    let k = Keys::new(root);
    let before = now_nanos();
    put(&k.k1, &data1(), PutMode::Create);
    put(&k.k2, &data2(), PutMode::Overwrite);
    put(&k.ktmp, b"staging", PutMode::Overwrite);
    put(&k.knested, b"nested", PutMode::Overwrite);
    put(&k.k5, &ltx_bytes(5, 7, 10), PutMode::Overwrite);
    put(&k.k9, &ltx_bytes(1, 3, 10), PutMode::Overwrite);
    (before, now_nanos())
}

/// The whole suite on a backend that writes; `put` replaces its own puts for the seeding
/// (a store whose emulator does not take its uploads), and then the write checks are skipped.
pub fn conformance(name: &str, s: &dyn Storage, root: &str, created: CreatedAt, put: Option<Put>) {
    eprintln!("conformance: {name} ({})", s.describe());
    let own = |key: &str, data: &[u8], mode: PutMode| s.put(key, Bytes::copy_from_slice(data), mode).unwrap();
    let (before, after) = seed(put.unwrap_or(&own), root);
    if put.is_none() {
        create_only(name, s, root);
    }
    reads(name, s, root, created, (before, after));
    seek(name, s, root);
    if put.is_none() {
        overwrite(name, s, root);
    }
}

/// Create-only (atomic where `supports_conditional_create`, else best effort): a second create
/// loses and changes nothing.
pub fn create_only(name: &str, s: &dyn Storage, root: &str) {
    let k = Keys::new(root);
    let e = s.put(&k.k1, Bytes::from_static(b"loser"), PutMode::Create).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{name}: {e:?}");
    assert!(e.message.contains("0000000000000001-0000000000000001.ltx"), "{name}: {e:?}");
    let got = s.get_ranges(&[req(&k.k1, 0, 10)]);
    assert_eq!(got[0].as_ref().unwrap().as_ref(), &data1()[..10], "{name}: the loser changed nothing");
}

/// Listings (one level, sizes, created-at) and ranged reads of the seeded objects; `uploaded`
/// is the wall-clock window of the seeding.
pub fn reads(name: &str, s: &dyn Storage, root: &str, created: CreatedAt, uploaded: (i64, i64)) {
    let k = Keys::new(root);
    let (before, after) = uploaded;
    let (d1, d2) = (data1(), data2());
    for with_metadata in [false, true] {
        let mut got = s.list(&k.l0, with_metadata).unwrap();
        got.sort_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<&str> = got.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![k.k1.as_str(), k.k2.as_str(), k.ktmp.as_str(), k.k5.as_str()],
            "{name}: level 0, not recursive"
        );
        assert_eq!(got.iter().map(|o| o.size).collect::<Vec<_>>(), vec![5100, 400, 7, 110], "{name}");
        let header_ts = TS_MS * 1_000_000;
        let expect_header = created == CreatedAt::Header || (created == CreatedAt::HeaderWithMetadata && with_metadata);
        for o in &got[..2] {
            if expect_header {
                assert_eq!(o.created_at, header_ts, "{name}: header timestamp (metadata {with_metadata}): {o:?}");
            } else if created == CreatedAt::HeaderSeconds {
                assert_eq!(o.created_at, header_ts / 1_000_000_000 * 1_000_000_000, "{name}: header seconds: {o:?}");
            } else {
                // Some stores keep whole seconds.
                let slack = 2_000_000_000;
                assert!(
                    o.created_at >= before - slack && o.created_at <= after + slack,
                    "{name}: upload time (metadata {with_metadata}): {o:?} not in {before}..{after}"
                );
            }
        }
    }
    let l9 = s.list(&format!("{root}/ltx/9/"), true).unwrap();
    assert_eq!(l9.len(), 1, "{name}");
    assert!(s.list(&format!("{root}/ltx/1/"), false).unwrap().is_empty(), "{name}: missing level");
    assert!(s.list("nothing-here/ltx/0/", true).unwrap().is_empty(), "{name}: missing prefix");
    let many = s.list_many(&[k.l0.clone(), format!("{root}/ltx/9/")], false);
    assert_eq!(many[0].as_ref().unwrap().len(), 4, "{name}");
    assert_eq!(many[1].as_ref().unwrap().len(), 1, "{name}");

    let missing = format!("{}00000000000000ff-00000000000000ff.ltx", k.l0);
    let n1 = d1.len() as u64;
    let got = s.get_ranges(&[
        req(&k.k1, 100, 200),
        req(&k.k1, 0, 10),
        req(&k.k1, n1 - 8, n1),
        req(&k.k1, n1 - 10, n1 + 1000),
        req(&missing, 0, 10),
        req(&k.k1, n1 + 1000, n1 + 2000),
        req(&k.k1, 7, 7),
        req(&k.k2, 250, u64::MAX),
        req(&k.k2, 0, 400),
    ]);
    assert_eq!(got.len(), 9);
    assert_eq!(got[0].as_ref().unwrap().as_ref(), &d1[100..200], "{name}: middle");
    assert_eq!(got[1].as_ref().unwrap().as_ref(), &d1[..10], "{name}: first bytes");
    assert_eq!(got[2].as_ref().unwrap().as_ref(), &d1[d1.len() - 8..], "{name}: last bytes");
    assert_eq!(got[3].as_ref().unwrap().as_ref(), &d1[d1.len() - 10..], "{name}: clamped to the end");
    let e = got[4].as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{name}: {e:?}");
    assert!(e.message.contains("00000000000000ff-00000000000000ff.ltx"), "{name}: {e:?}");
    assert!(got[5].as_ref().unwrap().is_empty(), "{name}: past the end: {:?}", got[5]);
    assert!(got[6].as_ref().unwrap().is_empty(), "{name}: empty range");
    assert_eq!(got[7].as_ref().unwrap().as_ref(), &d2[250..], "{name}: open-ended");
    assert_eq!(got[8].as_ref().unwrap().as_ref(), &d2[..], "{name}: whole file");
}

/// Listing with seek (REPLICA.md §2: MinTXID ≥ seek), one level deep, on the seeded objects.
pub fn seek(name: &str, s: &dyn Storage, root: &str) {
    let k = Keys::new(root);
    let layout = Layout::new(root, LevelStyle::LtxDecimal);
    for (seek, want) in [
        (0, vec![&k.k1, &k.k2, &k.k5]),
        (1, vec![&k.k1, &k.k2, &k.k5]),
        (2, vec![&k.k2, &k.k5]),
        (3, vec![&k.k5]),
        (5, vec![&k.k5]),
        (6, vec![]),
    ] {
        for with_metadata in [false, true] {
            let got = s.list_after(&k.l0, &layout.seek_key(0, seek), with_metadata).unwrap();
            assert!(got.iter().all(|o| o.key != k.knested), "{name}: seek {seek}: one level: {got:?}");
            let mut keys: Vec<&str> =
                got.iter().map(|o| o.key.as_str()).filter(|key| LtxName::parse_key(key).is_some()).collect();
            keys.sort();
            assert_eq!(keys, want.iter().map(|key| key.as_str()).collect::<Vec<_>>(), "{name}: seek {seek}");
            if let Some(o) = got.iter().find(|o| o.key == k.k5) {
                assert_eq!(o.size, 110, "{name}: seek {seek}");
            }
        }
    }
    assert!(s.list_after("nothing-here/ltx/0/", "nothing-here/ltx/0/0", true).unwrap().is_empty(), "{name}");
}

/// An overwrite replaces the object.
pub fn overwrite(name: &str, s: &dyn Storage, root: &str) {
    let k = Keys::new(root);
    s.put(&k.k2, Bytes::from_static(b"replaced"), PutMode::Overwrite).unwrap();
    assert_eq!(s.get_ranges(&[req(&k.k2, 0, 100)])[0].as_ref().unwrap().as_ref(), b"replaced", "{name}");
}

/// Wrong credentials: a clear Auth error on listing and on reading.
pub fn rejects(name: &str, s: &dyn Storage, root: &str) {
    let e = s.list(&format!("{root}/ltx/0/"), false).unwrap_err();
    eprintln!("{name} wrong credentials: {e:?}");
    assert_eq!(e.kind, ErrorKind::Auth, "{name}: {e:?}");
    let r = s.get_ranges(&[req(&format!("{root}/ltx/0/0000000000000001-0000000000000001.ltx"), 0, 10)]);
    assert_eq!(r[0].as_ref().unwrap_err().kind, ErrorKind::Auth, "{name}: {:?}", r[0]);
}

/// A server that is down: a Network error within seconds.
pub fn down(name: &str, s: &dyn Storage, root: &str) {
    let t = Instant::now();
    let e = s.list(&format!("{root}/ltx/0/"), false).unwrap_err();
    eprintln!("{name} down after {:?}: {e:?}", t.elapsed());
    assert_eq!(e.kind, ErrorKind::Network, "{name}: {e:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{name}: took {:?}", t.elapsed());
}
