//! `sftp://user[:password]@host[:port]/path` replicas (REPLICA.md §1: `<path>/ltx/<L>/<min>-<max>.ltx`)
//! over SSH with libssh2, through the `ssh2` crate.
//!
//! Why ssh2 and not russh: the storage trait is synchronous and so is libssh2, so no async
//! bridge is needed; libssh2 also reads OpenSSH `known_hosts` files itself. object_store has no
//! SFTP backend.
//!
//! - Keys are absolute paths on the server: the key `data/db/ltx/0/F` is `/data/db/ltx/0/F`
//!   (Litestream's URL path is absolute too).
//! - Listing reads one directory; created-at is the file mtime, which SFTP (version 3, what
//!   OpenSSH speaks) carries in whole seconds: Litestream sets it from the LTX header, and so
//!   does [`Storage::put`] here, so created-at is the header timestamp truncated to the second.
//! - Reads open the file, seek, and read the range (a range past the end returns what exists).
//! - [`PutMode::Create`] opens the final name with `CREATE|EXCL`, which the SFTP server makes
//!   atomic (`O_EXCL`): of two racing writers exactly one wins. The bytes are written in place,
//!   so a reader may briefly see a short file (the same as Litestream's own SFTP writer).
//!   [`PutMode::Overwrite`] writes a temporary file beside the target and renames it over it.
//! - Every request is bounded (connect [`ltxvfs::retry::CONNECT_TIMEOUT`], each call
//!   [`ltxvfs::retry::REQUEST_TIMEOUT`]); a session that broke is dropped and the next call
//!   reconnects. Retries are left to `ltxvfs::retrying_storage`.
//! - Up to [`POOL`] sessions serve one `get_ranges` batch in parallel. A batch is spread over
//!   the sessions already logged in; a long batch (8 reads or more) has the next session log in
//!   on a background thread. So no batch waits for a login (~100 ms each against OpenSSH)
//!   while one session is ready, and short work (an open, a point lookup) logs in once.

pub mod config;
mod connection;
pub mod errors;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use ltxvfs::storage::{ObjectInfo, PutMode, RangeRequest, Storage, UnixNanos, ltx_timestamp_ms};
use ltxvfs::{Error, ErrorKind, Result};
use parking_lot::Mutex;
use ssh2::{FileStat, OpenFlags, OpenType, Sftp};

pub use config::SftpConfig;
use connection::Connection;

/// Sessions one storage may hold open (parallel ranged reads).
pub const POOL: usize = 4;

/// A batch at least this long (a scan's read-ahead, many files' headers) is worth another
/// session; shorter ones (an open's few reads, a point lookup) run on the sessions there are,
/// since a login costs more CPU and time than they do.
const BATCH_WORTH_A_LOGIN: usize = 8;

/// A failed operation: the error, and whether the session it ran on is broken.
struct Fail {
    err: Error,
    broken: bool,
}

impl Fail {
    fn ssh(op: &str, what: &str, e: &ssh2::Error) -> Self {
        Self { err: errors::map(op, what, e), broken: errors::breaks_session(e.code()) }
    }
    /// An I/O error on an open handle: the transport (ssh2 hides the code behind io::Error).
    fn io(op: &str, what: &str, e: &std::io::Error) -> Self {
        let kind = if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::Network };
        Self { err: Error::new(kind, format!("sftp {op} {what}: {e}")), broken: kind == ErrorKind::Network }
    }
    fn plain(err: Error) -> Self {
        Self { err, broken: false }
    }
}

/// The session slots: `None` until a session logs in (shared with the background login).
type Slots = Arc<[Mutex<Option<Connection>>]>;

pub struct SftpStorage {
    cfg: SftpConfig,
    slots: Slots,
    /// A background login is under way (one at a time).
    logging_in: Arc<AtomicBool>,
}

impl std::fmt::Debug for SftpStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpStorage").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

pub fn open(cfg: SftpConfig) -> SftpStorage {
    SftpStorage {
        cfg,
        slots: (0..POOL).map(|_| Mutex::new(None)).collect::<Vec<_>>().into(),
        logging_in: Arc::default(),
    }
}

/// The server path of a key.
fn remote(key: &str) -> PathBuf {
    if key.starts_with('/') { PathBuf::from(key) } else { PathBuf::from(format!("/{key}")) }
}

fn nanos(secs: Option<u64>) -> UnixNanos {
    secs.and_then(|s| i64::try_from(s).ok()).map(|s| s.saturating_mul(1_000_000_000)).unwrap_or(0)
}

/// Distinguishes temporary files of concurrent puts of this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl SftpStorage {
    /// Run `f` on the session of `slot` (connecting first if needed); drop the session if `f`
    /// broke it.
    fn on_slot<T>(&self, slot: usize, f: impl FnOnce(&Sftp) -> Result<T, Fail>) -> Result<T> {
        let mut guard = self.slots[slot % self.slots.len()].lock();
        if guard.is_none() {
            *guard = Some(Connection::open(&self.cfg).map_err(|e| e.context(self.cfg.describe()))?);
        }
        let Some(conn) = guard.as_ref() else { return Err(Error::internal("sftp session vanished")) };
        match f(&conn.sftp) {
            Ok(v) => Ok(v),
            Err(fail) => {
                if fail.broken {
                    *guard = None;
                }
                Err(fail.err)
            }
        }
    }

    /// Run `f` on a free session (the first one when all are busy).
    fn on_any<T>(&self, f: impl FnOnce(&Sftp) -> Result<T, Fail>) -> Result<T> {
        let free = (0..self.slots.len()).find(|&i| !self.slots[i].is_locked()).unwrap_or(0);
        self.on_slot(free, f)
    }

    /// The slots a batch of `len` reads may use now: those with a session (or busy, hence
    /// logged in or about to be), and slot 0 when none is. For a long batch the first empty
    /// slot gets a session on a background thread, for the batches that follow.
    fn ready_slots(&self, len: usize) -> Vec<usize> {
        let mut ready = Vec::with_capacity(self.slots.len());
        let mut empty = None;
        for (i, slot) in self.slots.iter().enumerate() {
            match slot.try_lock() {
                Some(g) if g.is_none() => empty = empty.or(Some(i)),
                _ => ready.push(i),
            }
        }
        if ready.is_empty() {
            return vec![0];
        }
        if let Some(i) = empty.filter(|_| len >= BATCH_WORTH_A_LOGIN) {
            self.log_in_behind(i);
        }
        ready
    }

    /// Log a session into slot `i` on a background thread, one login at a time. The slot is
    /// locked only to store the session, so a busy slot always means a session in use. A
    /// failed login is left for the next foreground call to report.
    fn log_in_behind(&self, i: usize) {
        if self.logging_in.swap(true, Ordering::AcqRel) {
            return;
        }
        let (slots, cfg, flag) = (Arc::clone(&self.slots), self.cfg.clone(), Arc::clone(&self.logging_in));
        let spawned = std::thread::Builder::new().name("ltxvfs-sftp-login".into()).spawn(move || {
            if let Ok(conn) = Connection::open(&cfg) {
                if let Some(mut g) = slots[i].try_lock() {
                    if g.is_none() {
                        *g = Some(conn);
                    }
                }
            }
            flag.store(false, Ordering::Release);
        });
        if let Err(e) = spawned {
            self.logging_in.store(false, Ordering::Release);
            tracing::debug!(error = %e, "cannot start a background sftp login");
        }
    }

    fn read_range(sftp: &Sftp, key: &str, start: u64, end: u64) -> Result<Bytes, Fail> {
        let path = remote(key);
        let shown = path.display().to_string();
        let mut file = sftp.open(&path).map_err(|e| Fail::ssh("open", &shown, &e))?;
        let len = end.saturating_sub(start);
        if len == 0 {
            return Ok(Bytes::new());
        }
        if start > 0 {
            file.seek(SeekFrom::Start(start)).map_err(|e| Fail::io("seek", &shown, &e))?;
        }
        let mut out = Vec::with_capacity(usize::try_from(len.min(4 << 20)).unwrap_or(0));
        file.take(len).read_to_end(&mut out).map_err(|e| Fail::io("read", &shown, &e))?;
        Ok(Bytes::from(out))
    }

    fn mkdir_all(sftp: &Sftp, dir: &Path) -> Result<(), Fail> {
        let mut cur = PathBuf::from("/");
        for part in dir.components().skip(1) {
            cur.push(part);
            if let Err(e) = sftp.mkdir(&cur, 0o755) {
                // Already there (OpenSSH answers FAILURE) or a real failure: stat tells.
                match sftp.stat(&cur) {
                    Ok(st) if st.is_dir() => {}
                    _ => return Err(Fail::ssh("create directory", &cur.display().to_string(), &e)),
                }
            }
        }
        Ok(())
    }

    /// Open `path` create-only for writing, making missing parent directories.
    fn create_excl(sftp: &Sftp, path: &Path) -> Result<ssh2::File, Fail> {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
        let shown = path.display().to_string();
        match sftp.open_mode(path, flags, 0o644, OpenType::File) {
            Ok(f) => Ok(f),
            Err(e) if errors::kind_of(e.code()) == ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    Self::mkdir_all(sftp, dir)?;
                }
                sftp.open_mode(path, flags, 0o644, OpenType::File).map_err(|e| Fail::ssh("create", &shown, &e))
            }
            Err(e) if !errors::breaks_session(e.code()) && sftp.stat(path).is_ok() => {
                Err(Fail::plain(Error::new(ErrorKind::AlreadyExists, format!("sftp create {shown}: already exists"))))
            }
            Err(e) => Err(Fail::ssh("create", &shown, &e)),
        }
    }

    /// Write all of `data` and the modification time into an open file, then close it.
    fn fill(mut file: ssh2::File, shown: &str, data: &[u8], mtime_secs: Option<u64>) -> Result<(), Fail> {
        file.write_all(data).map_err(|e| Fail::io("write", shown, &e))?;
        if let Some(t) = mtime_secs {
            let times = FileStat { size: None, uid: None, gid: None, perm: None, atime: Some(t), mtime: Some(t) };
            file.setstat(times).map_err(|e| Fail::ssh("set the modification time of", shown, &e))?;
        }
        file.close().map_err(|e| Fail::ssh("close", shown, &e))
    }

    fn put_on(sftp: &Sftp, key: &str, data: &[u8], mode: PutMode) -> Result<(), Fail> {
        let path = remote(key);
        let shown = path.display().to_string();
        let mtime = ltx_timestamp_ms(key, data).and_then(|ms| u64::try_from(ms / 1000).ok());
        match mode {
            PutMode::Create => {
                let file = Self::create_excl(sftp, &path)?;
                Self::fill(file, &shown, data, mtime).inspect_err(|_| {
                    let _ = sftp.unlink(&path); // do not leave a short file that blocks the next writer
                })
            }
            PutMode::Overwrite => {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("object");
                let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
                let result = Self::create_excl(sftp, &tmp)
                    .and_then(|file| Self::fill(file, &shown, data, mtime))
                    .and_then(|()| Self::rename_over(sftp, &tmp, &path));
                if result.is_err() {
                    let _ = sftp.unlink(&tmp);
                }
                result
            }
        }
    }

    /// SFTP v3 `rename` refuses an existing target (OpenSSH links, then unlinks): remove the
    /// target and rename again. Readers see the old file, then briefly none, then the new one.
    fn rename_over(sftp: &Sftp, tmp: &Path, path: &Path) -> Result<(), Fail> {
        let shown = path.display().to_string();
        match sftp.rename(tmp, path, None) {
            Ok(()) => Ok(()),
            Err(e) if errors::breaks_session(e.code()) => Err(Fail::ssh("rename to", &shown, &e)),
            Err(_) => {
                match sftp.unlink(path) {
                    Ok(()) => {}
                    Err(e) if errors::kind_of(e.code()) == ErrorKind::NotFound => {}
                    Err(e) => return Err(Fail::ssh("replace", &shown, &e)),
                }
                sftp.rename(tmp, path, None).map_err(|e| Fail::ssh("rename to", &shown, &e))
            }
        }
    }
}

impl Storage for SftpStorage {
    fn list(&self, prefix: &str, _with_metadata: bool) -> Result<Vec<ObjectInfo>> {
        let dir = remote(prefix.trim_end_matches('/'));
        let shown = dir.display().to_string();
        let entries = self.on_any(|sftp| match sftp.readdir(&dir) {
            Ok(v) => Ok(v),
            Err(e) if errors::kind_of(e.code()) == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Fail::ssh("list", &shown, &e)),
        })?;
        let base = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        let mut out = Vec::with_capacity(entries.len());
        for (path, stat) in entries {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if !stat.is_file() {
                continue;
            }
            out.push(ObjectInfo {
                key: format!("{base}{name}"),
                size: stat.size.unwrap_or(0),
                created_at: nanos(stat.mtime),
            });
        }
        Ok(out)
    }

    fn get_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        let read = |slot: usize, reqs: &[RangeRequest]| -> Vec<Result<Bytes>> {
            reqs.iter()
                .map(|r| self.on_slot(slot, |sftp| Self::read_range(sftp, &r.key, r.range.start, r.range.end)))
                .collect()
        };
        if requests.len() <= 1 {
            return read(0, requests);
        }
        let ready = self.ready_slots(requests.len());
        if ready.len() == 1 {
            return read(ready[0], requests);
        }
        let chunk = requests.len().div_ceil(ready.len().min(requests.len()));
        std::thread::scope(|s| {
            let handles: Vec<_> = requests
                .chunks(chunk)
                .zip(&ready)
                .map(|(reqs, &slot)| (reqs.len(), s.spawn(move || read(slot, reqs))))
                .collect();
            let mut out = Vec::with_capacity(requests.len());
            for (n, h) in handles {
                match h.join() {
                    Ok(v) => out.extend(v),
                    Err(_) => out.extend((0..n).map(|_| Err(Error::internal("sftp read thread panicked")))),
                }
            }
            out
        })
    }

    fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        self.on_any(|sftp| Self::put_on(sftp, key, &data, mode))
    }

    fn supports_conditional_create(&self) -> bool {
        true
    }

    /// A stat.
    fn exists(&self, key: &str) -> Result<bool> {
        let path = remote(key);
        self.on_any(|sftp| match sftp.stat(&path) {
            Ok(st) => Ok(st.is_file()),
            Err(e) if errors::kind_of(e.code()) == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Fail::ssh("stat", &path.display().to_string(), &e)),
        })
    }

    fn describe(&self) -> String {
        self.cfg.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltxvfs::replica_url::ReplicaUrl;

    #[test]
    fn keys_are_absolute_server_paths() {
        assert_eq!(remote("data/db/ltx/0/x.ltx"), PathBuf::from("/data/db/ltx/0/x.ltx"));
        assert_eq!(remote("/abs/ltx/0/"), PathBuf::from("/abs/ltx/0/"));
        assert_eq!(nanos(Some(2)), 2_000_000_000);
        assert_eq!(nanos(None), 0);
    }

    #[test]
    fn a_server_that_is_down_is_a_network_error_and_no_secret_leaks() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = ReplicaUrl::parse(&format!("sftp://u:Pl4nted@127.0.0.1:{port}/db")).unwrap();
        let s = open(SftpConfig::resolve(&url, &|_: &str| None).unwrap());
        let e = s.list("db/ltx/0/", false).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
        assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e:?}");
        assert!(!format!("{e:?} {s:?} {}", s.describe()).contains("Pl4nted"));
    }

    /// A server that accepts the connection and then says nothing: the handshake gives up
    /// after the request timeout with a Network error instead of hanging.
    #[test]
    fn a_silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = std::thread::spawn(move || listener.accept().map(|(sock, _)| sock));
        let url = ReplicaUrl::parse(&format!("sftp://u:p@127.0.0.1:{port}/db")).unwrap();
        let s = open(SftpConfig::resolve(&url, &|_: &str| None).unwrap());
        let t = std::time::Instant::now();
        let e = s.list("db/ltx/0/", false).unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
        assert!(took >= ltxvfs::retry::REQUEST_TIMEOUT / 2, "{took:?}: {e:?}");
        assert!(took < ltxvfs::retry::REQUEST_TIMEOUT * 2, "{took:?}: {e:?}");
        drop(holder.join());
    }
}
