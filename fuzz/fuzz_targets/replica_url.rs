//! Replica URL parsing and redaction: never panic, and a password never survives redaction.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ltxvfs::redact::redact_text;
use ltxvfs::replica_url::ReplicaUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = redact_text(s);
    if let Ok(u) = ReplicaUrl::parse(s) {
        let d = format!("{u:?}");
        assert!(!u.password.is_some() || d.contains("password: Some(\"xxxxx\")"), "{d}");
        let _ = ltxvfs::replica_url::S3Config::resolve(&u, &|_| None);
    }
    // A planted password in a well-formed URL never survives. The marker holds ':', which is
    // stripped from the rest, so the path cannot repeat it.
    let marker = format!("P:W{}", s.len());
    let planted = format!("s3://user:{marker}@host/{}", s.replace(['@', ':', '/', '?', '#'], ""));
    let r = redact_text(&planted);
    assert!(!r.contains(&marker), "{r}");
});
