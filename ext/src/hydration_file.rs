//! The hydration file on local disk (VFS.md §11): positioned reads and writes, an exclusive
//! advisory lock (`flock`) so that a second process on the same path gets a clear error, and
//! `<path>.meta` replaced atomically (temp file, fsync, rename, fsync directory).

use ltxvfs::hydrate::file::HydrationFile;
use ltxvfs::{Error, ErrorKind, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct DiskHydrationFile {
    file: File,
    path: PathBuf,
    meta: PathBuf,
    /// Temporary files (no configured path) are deleted with their `.meta` when closed.
    temporary: bool,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("hydration file {}: {what}: {e}", path.display()))
}

fn meta_path(path: &Path) -> PathBuf {
    let mut m = path.as_os_str().to_owned();
    m.push(".meta");
    PathBuf::from(m)
}

impl DiskHydrationFile {
    /// Open (creating parent directories and the file, mode 0600) and lock `path`.
    pub fn open(path: &Path, temporary: bool) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("create directory", path, e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| io("open", path, e))?;
        // SAFETY: flock on a file descriptor this function owns (kept open by `file`).
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "hydration file {} is in use by another connection or process (lock: {e}); give each replica its own hydration_path",
                    path.display()
                ),
            ));
        }
        Ok(Self { file, meta: meta_path(path), path: path.to_path_buf(), temporary })
    }

    /// A temporary file in this process's temp directory, unique per hydrator.
    pub fn temporary() -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!("litestream-vfs-{}", std::process::id()));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("hydration-{n}.db"));
        let _ = std::fs::remove_file(meta_path(&path));
        Self::open(&path, true)
    }
}

impl Drop for DiskHydrationFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(&self.meta);
        }
    }
}

impl HydrationFile for DiskHydrationFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("read", &self.path, e)),
            }
        }
        Ok(done)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.file.write_all_at(data, offset).map_err(|e| io("write", &self.path, e))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| io("truncate", &self.path, e))
    }

    fn size(&self) -> Result<u64> {
        self.file.metadata().map(|m| m.len()).map_err(|e| io("stat", &self.path, e))
    }

    fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| io("fsync", &self.path, e))
    }

    fn read_meta(&self) -> Result<Option<String>> {
        match std::fs::read_to_string(&self.meta) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read meta", &self.meta, e)),
        }
    }

    fn write_meta(&self, text: &str) -> Result<()> {
        let mut tmp = self.meta.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("create meta", &tmp, e))?;
        f.write_all(text.as_bytes()).map_err(|e| io("write meta", &tmp, e))?;
        f.sync_all().map_err(|e| io("fsync meta", &tmp, e))?;
        std::fs::rename(&tmp, &self.meta).map_err(|e| io("rename meta", &self.meta, e))?;
        if let Some(dir) = self.meta.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn path(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_is_replaced_and_a_second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/h.db");
        let f = DiskHydrationFile::open(&path, false).unwrap();
        assert_eq!(f.read_meta().unwrap(), None);
        f.write_meta("1\n").unwrap();
        f.write_meta("2\n").unwrap();
        assert_eq!(f.read_meta().unwrap().as_deref(), Some("2\n"));
        f.write_at(4096, b"abc").unwrap();
        assert_eq!(f.size().unwrap(), 4099);
        let mut buf = [0u8; 8];
        assert_eq!(f.read_at(4096, &mut buf).unwrap(), 3);
        let e = DiskHydrationFile::open(&path, false).err().unwrap();
        assert!(e.message.contains("in use"), "{e}");
        drop(f);
        assert!(DiskHydrationFile::open(&path, false).is_ok());
        assert!(path.exists());
    }

    #[test]
    fn temporary_files_vanish_on_close() {
        let f = DiskHydrationFile::temporary().unwrap();
        f.write_meta("1\n").unwrap();
        let path = PathBuf::from(f.path());
        assert!(path.exists());
        drop(f);
        assert!(!path.exists() && !meta_path(&path).exists());
    }
}
