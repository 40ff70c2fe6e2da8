//! The `litestream_time` grammar (RFC 3339, relative times, Go durations): never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = ltxvfs::time::parse_time(s, 1_700_000_000_000_000_000);
    let _ = ltxvfs::time::parse_time(s, i64::MAX);
    let _ = ltxvfs::time::parse_time(s, 0);
    let _ = ltxvfs::time::parse_go_duration(s);
    let _ = ltxvfs::time::is_latest(s);
});
