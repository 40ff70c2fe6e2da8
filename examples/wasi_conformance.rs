//! The storage conformance checks ([`ltxvfs::conformance`]) against the component's own S3
//! storage (src/wasi/s3.rs over wasi-http), as a WASI command:
//!
//! ```text
//! cargo build --profile component --target wasm32-wasip2 --example wasi_conformance
//! ltxvfs-host run-wasi target/wasm32-wasip2/component/examples/wasi_conformance.wasm \
//!     --allow-host 127.0.0.1:PORT --allow-host 127.0.0.1:DEAD --env K=V ...
//! ```
//!
//! The component's storage is read-only, so the objects are seeded beforehand (natively, by
//! `ext/tests/conformance.rs`, which drives this). Environment:
//! `LTXVFS_CONFORMANCE_URL` (the seeded replica), `LTXVFS_CONFORMANCE_ROOT` (its root key),
//! `LTXVFS_CONFORMANCE_UPLOADED` (`before,after`: the seeding's wall-clock window, ns),
//! `LTXVFS_CONFORMANCE_DEAD_URL` (the same store on a port nothing listens on), and the
//! credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`). A failed check panics (the
//! command then exits non-zero).

#[cfg(target_family = "wasm")]
fn main() {
    use ltxvfs::conformance::{CreatedAt, down, reads, rejects, seek};
    use ltxvfs::replica_url::{ReplicaUrl, S3Config};
    use ltxvfs::wasi::s3::S3Storage;

    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let storage = |url: &str, env: &dyn Fn(&str) -> Option<String>| {
        let url = ReplicaUrl::parse(url).expect("replica URL");
        S3Storage::new(&S3Config::resolve(&url, env).expect("S3 settings")).expect("S3 storage")
    };
    let env = |k: &str| std::env::var(k).ok();
    let root = var("LTXVFS_CONFORMANCE_ROOT");
    let uploaded = var("LTXVFS_CONFORMANCE_UPLOADED");
    let (before, after) = uploaded.split_once(',').expect("before,after");
    let uploaded = (before.parse().expect("before"), after.parse().expect("after"));

    let s = storage(&var("LTXVFS_CONFORMANCE_URL"), &env);
    eprintln!("conformance: s3 (component) ({})", ltxvfs::storage::Storage::describe(&s));
    reads("s3 (component)", &s, &root, CreatedAt::HeaderWithMetadata, uploaded);
    seek("s3 (component)", &s, &root);
    let wrong = |k: &str| if k == "AWS_SECRET_ACCESS_KEY" { Some("WRONG".to_string()) } else { env(k) };
    rejects("s3 (component)", &storage(&var("LTXVFS_CONFORMANCE_URL"), &wrong), &root);
    down("s3 (component)", &storage(&var("LTXVFS_CONFORMANCE_DEAD_URL"), &env), &root);
    eprintln!("conformance: s3 (component): ok");
}

#[cfg(not(target_family = "wasm"))]
fn main() {
    eprintln!("wasi_conformance runs inside wasmtime: build it with --target wasm32-wasip2");
    std::process::exit(2);
}
