//! Write buffers on local disk (the format is the core's `ltxvfs::write::buffer`): appends are
//! fsynced before COMMIT returns, into zeros written ahead so they change no file size; a reset writes a new file aside, fsyncs it and renames it
//! over the old one, then fsyncs the directory, so a crash leaves either the old or the new.

use ltxvfs::write::buffer::{BufferFile, BufferStore};
use ltxvfs::{Error, ErrorKind, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct DiskBuffers;

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    let kind = if e.kind() == std::io::ErrorKind::PermissionDenied { ErrorKind::Config } else { ErrorKind::Internal };
    Error::new(kind, format!("write buffer {}: {what}: {e}", path.display()))
}

/// Appends go into zeros written ahead in chunks of at least this size: an append inside the
/// file's size needs only `fdatasync` (no size change, no block allocation to flush).
const PREALLOCATE: u64 = 1 << 20;

struct DiskBuffer {
    path: PathBuf,
    /// Open for writing once the file exists.
    file: Option<File>,
    /// Bytes of records (the rest up to `allocated` is zeros), known after a `replace`.
    len: Option<u64>,
    allocated: u64,
}

impl DiskBuffer {
    fn sync_dir(&self) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, "fsync directory", e))?;
        }
        Ok(())
    }
}

impl BufferFile for DiskBuffer {
    fn load(&mut self) -> Result<Option<Vec<u8>>> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&self.path, "read", e)),
        }
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let Some(len) = self.len else {
            // Not replaced in this process: plain append at the end.
            let mut f = OpenOptions::new().append(true).open(&self.path).map_err(|e| io(&self.path, "open", e))?;
            f.write_all(data).map_err(|e| io(&self.path, "append", e))?;
            return f.sync_data().map_err(|e| io(&self.path, "fsync", e));
        };
        if self.file.is_none() {
            let f = OpenOptions::new().write(true).open(&self.path).map_err(|e| io(&self.path, "open", e))?;
            self.file = Some(f);
        }
        let Some(f) = self.file.as_ref() else { return Err(Error::internal("write buffer not open")) };
        let end = len + data.len() as u64;
        if end > self.allocated {
            // Real zeros, not a sparse set_len: later writes then allocate nothing.
            let grow = (end - self.allocated).max(PREALLOCATE);
            let zeros = vec![0u8; grow as usize];
            f.write_all_at(&zeros, self.allocated).map_err(|e| io(&self.path, "preallocate", e))?;
            f.sync_all().map_err(|e| io(&self.path, "fsync", e))?;
            self.allocated += grow;
        }
        f.write_all_at(data, len).map_err(|e| io(&self.path, "append", e))?;
        f.sync_data().map_err(|e| io(&self.path, "fsync", e))?;
        self.len = Some(end);
        Ok(())
    }

    fn replace(&mut self, data: &[u8]) -> Result<()> {
        let mut aside = self.path.clone().into_os_string();
        aside.push(".tmp");
        let aside = PathBuf::from(aside);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&aside)
            .map_err(|e| io(&aside, "create", e))?;
        f.write_all(data).map_err(|e| io(&aside, "write", e))?;
        f.sync_all().map_err(|e| io(&aside, "fsync", e))?;
        drop(f);
        self.file = None;
        std::fs::rename(&aside, &self.path).map_err(|e| io(&self.path, "rename", e))?;
        self.sync_dir()?;
        self.len = Some(data.len() as u64);
        self.allocated = data.len() as u64;
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl BufferStore for DiskBuffers {
    fn open(&self, path: &str) -> Result<Box<dyn BufferFile>> {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, "initialize write buffer: create directory", e))?;
        }
        Ok(Box::new(DiskBuffer { path, file: None, len: None, allocated: 0 }))
    }

    fn default_path(&self, n: usize) -> String {
        // Go's default: `<tmp>/litestream-vfs-<random>/write-buffer-<n>`. A default path is new
        // in every process, so it keeps commits through a crash only with an explicit path.
        std::env::temp_dir()
            .join(format!("litestream-vfs-{}", std::process::id()))
            .join(format!("write-buffer-{n}"))
            .display()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_replace_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/buf");
        let mut b = DiskBuffers.open(p.to_str().unwrap()).unwrap();
        assert_eq!(b.load().unwrap(), None);
        b.replace(b"head").unwrap();
        b.append(b"-1").unwrap();
        b.append(b"-2").unwrap();
        let got = b.load().unwrap().unwrap();
        assert_eq!(&got[..8], b"head-1-2");
        assert!(got.len() as u64 >= PREALLOCATE && got[8..].iter().all(|&x| x == 0));
        b.replace(b"new").unwrap();
        b.append(b"+").unwrap();
        assert_eq!(&std::fs::read(&p).unwrap()[..4], b"new+");
    }
}
