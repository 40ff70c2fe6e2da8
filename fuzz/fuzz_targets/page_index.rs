//! The page index parsers (whole index and from a file's tail): never panic; entries that
//! parse re-encode to bytes that parse to the same entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltxvfs::ltx;

fuzz_target!(|data: &[u8]| {
    if let Ok((entries, _used)) = ltx::parse_page_index(data, 100) {
        let again = ltx::encode_page_index(&entries);
        let (back, _) = ltx::parse_page_index(&again, 100).expect("re-encoded index parses");
        assert_eq!(back, entries);
    }
    let _ = ltx::index_size_from_tail(data);
    for file_size in [data.len() as u64, data.len() as u64 + 4096, u64::MAX] {
        let _ = ltx::parse_page_index_from_tail(data, 0, file_size);
        if let Ok(n) = ltx::index_size_from_tail(data) {
            let _ = ltx::page_index_range(file_size, n);
        }
    }
});
