//! One SSH session with its SFTP channel: connect within [`CONNECT_TIMEOUT`], check the host
//! key, log in, and bound every later request by [`REQUEST_TIMEOUT`] (libssh2's session
//! timeout applies to each blocking call, handshake and login included).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ltxvfs::retry::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use ltxvfs::{Error, ErrorKind, Result};
use ssh2::{CheckResult, KnownHostFileKind, Session, Sftp};

use super::config::{HostKeyCheck, SftpConfig, blob_algorithm};
use super::errors;

/// A logged-in session and its SFTP subsystem.
pub struct Connection {
    pub sftp: Sftp,
    /// Kept alive for `sftp`; closed on drop.
    _session: Session,
}

/// Warn once per process that host keys are not being checked (as Litestream logs).
static WARNED_UNVERIFIED: AtomicBool = AtomicBool::new(false);

impl Connection {
    pub fn open(cfg: &SftpConfig) -> Result<Self> {
        let target = format!("{}:{}", cfg.host, cfg.port);
        let addrs: Vec<_> =
            (cfg.host.as_str(), cfg.port).to_socket_addrs().map_err(|e| errors::io("resolve", &target, &e))?.collect();
        let mut last = None;
        let mut tcp = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(tcp) = tcp else {
            let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
            return Err(errors::io("connect", &target, &e));
        };
        let _ = tcp.set_nodelay(true);
        let mut session = Session::new().map_err(|e| errors::map("start session", &target, &e))?;
        session.set_timeout(u32::try_from(REQUEST_TIMEOUT.as_millis()).unwrap_or(u32::MAX));
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| errors::map("handshake", &target, &e))?;
        check_host_key(&session, cfg)?;
        login(&session, cfg)?;
        let sftp = session.sftp().map_err(|e| errors::map("start the sftp subsystem on", &target, &e))?;
        Ok(Self { sftp, _session: session })
    }
}

fn check_host_key(session: &Session, cfg: &SftpConfig) -> Result<()> {
    let target = format!("{}:{}", cfg.host, cfg.port);
    let Some((blob, _)) = session.host_key() else {
        return Err(Error::network(format!("sftp {target} sent no host key")));
    };
    let rejected = |why: String| Err(Error::new(ErrorKind::Auth, format!("sftp host key of {target} rejected: {why}")));
    match &cfg.host_key {
        HostKeyCheck::Unverified => {
            if !WARNED_UNVERIFIED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    host = %target,
                    "sftp host key not verified (set host-key= or known-hosts= to check it)"
                );
            }
            Ok(())
        }
        HostKeyCheck::Fixed { algorithm, blob: want } => {
            if blob == want.as_slice() {
                Ok(())
            } else {
                rejected(format!(
                    "the server offers a {} key that is not the configured {algorithm} host-key",
                    blob_algorithm(blob).unwrap_or("unknown")
                ))
            }
        }
        HostKeyCheck::KnownHosts(path) => {
            let mut kh = session.known_hosts().map_err(|e| errors::map("known_hosts", path, &e))?;
            kh.read_file(Path::new(path), KnownHostFileKind::OpenSSH)
                .map_err(|e| Error::config(format!("cannot read sftp known-hosts file {path}: {}", e.message())))?;
            match kh.check_port(&cfg.host, cfg.port, blob) {
                CheckResult::Match => Ok(()),
                CheckResult::Mismatch => rejected(format!("it does not match the key for this host in {path}")),
                CheckResult::NotFound => rejected(format!("the host is not in {path}")),
                CheckResult::Failure => rejected(format!("cannot check it against {path}")),
            }
        }
    }
}

fn login(session: &Session, cfg: &SftpConfig) -> Result<()> {
    let who = format!("{}@{}:{}", cfg.user, cfg.host, cfg.port);
    let mut failure = None;
    if let Some(key) = &cfg.key_path {
        if !Path::new(key).is_file() {
            return Err(Error::config(format!("cannot read sftp key-path {key}: no such file")));
        }
        match session.userauth_pubkey_file(&cfg.user, None, Path::new(key), cfg.key_passphrase.as_deref()) {
            Ok(()) => return Ok(()),
            Err(e) => failure = Some(errors::map("login (key)", &who, &e)),
        }
    }
    if let Some(pw) = &cfg.password {
        match session.userauth_password(&cfg.user, pw) {
            Ok(()) => return Ok(()),
            Err(e) => failure = Some(errors::map("login (password)", &who, &e)),
        }
    }
    Err(failure.unwrap_or_else(|| Error::config(format!("sftp {who}: no password or key to log in with"))))
}
