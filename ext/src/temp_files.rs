//! SQLite's temporary files on local disk: one private directory per process, named files
//! tracked so that `xAccess`/`xDelete` see them, and removed on delete or close-with-delete.

use ltxvfs::temp_files::{TempFile, TempFiles};
use ltxvfs::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

type Tracked = Arc<Mutex<HashMap<String, PathBuf>>>;

#[derive(Default)]
pub struct DiskTempFiles {
    dir: OnceLock<std::result::Result<PathBuf, String>>,
    named: Tracked,
}

fn io(context: &str, e: std::io::Error) -> Error {
    Error::internal(format!("{context}: {e}"))
}

impl DiskTempFiles {
    fn dir(&self) -> Result<PathBuf> {
        self.dir
            .get_or_init(|| {
                let d = std::env::temp_dir().join(format!("litestream-vfs-{}", std::process::id()));
                std::fs::create_dir_all(&d).map(|_| d).map_err(|e| format!("create temp dir: {e}"))
            })
            .clone()
            .map_err(Error::internal)
    }

    /// `<dir>/<basename>-<FNV-1a-64 of the name>`, as the Go VFS names them.
    fn path_for(&self, name: &str) -> Result<PathBuf> {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        Ok(self.dir()?.join(format!("{base}-{h:016x}")))
    }
}

struct DiskFile {
    file: File,
    remove_on_drop: Option<(String, PathBuf, Tracked)>,
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        if let Some((name, path, named)) = self.remove_on_drop.take() {
            let _ = std::fs::remove_file(&path);
            named.lock().remove(&name);
        }
    }
}

impl TempFile for DiskFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("temp read", e)),
            }
        }
        Ok(done)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.file.write_all_at(data, offset).map_err(|e| io("temp write", e))
    }
    fn truncate(&mut self, size: u64) -> Result<()> {
        self.file.set_len(size).map_err(|e| io("temp truncate", e))
    }
    fn size(&mut self) -> Result<u64> {
        self.file.metadata().map(|m| m.len()).map_err(|e| io("temp size", e))
    }
}

impl TempFiles for DiskTempFiles {
    fn open(&self, name: Option<&str>, delete_on_close: bool) -> Result<Box<dyn TempFile>> {
        let Some(name) = name else {
            let file = tempfile::tempfile_in(self.dir()?).map_err(|e| io("create temp file", e))?;
            return Ok(Box::new(DiskFile { file, remove_on_drop: None }));
        };
        let path = self.path_for(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&format!("open {}", path.display()), e))?;
        self.named.lock().insert(name.to_string(), path.clone());
        let remove_on_drop = delete_on_close.then(|| (name.to_string(), path, self.named.clone()));
        Ok(Box::new(DiskFile { file, remove_on_drop }))
    }

    fn delete(&self, name: &str) -> Result<()> {
        if let Some(path) = self.named.lock().remove(name) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("delete temp file", e)),
            }
        }
        Ok(())
    }

    fn exists(&self, name: &str) -> bool {
        self.named.lock().get(name).is_some_and(|p| p.exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_are_removed_on_delete() {
        let t = DiskTempFiles::default();
        let mut f = t.open(Some("/x/db-journal"), false).unwrap();
        f.write_at(0, b"hot").unwrap();
        let path = t.path_for("/x/db-journal").unwrap();
        assert!(path.exists());
        drop(f);
        assert!(t.exists("/x/db-journal"));
        t.delete("/x/db-journal").unwrap();
        assert!(!path.exists(), "Go defect 6: journals must really be deleted");
        assert!(!t.exists("/x/db-journal"));
    }

    #[test]
    fn delete_on_close_and_unnamed_files_leave_nothing() {
        let t = DiskTempFiles::default();
        let f = t.open(Some("/y/t.db"), true).unwrap();
        let path = t.path_for("/y/t.db").unwrap();
        assert!(path.exists());
        drop(f);
        assert!(!path.exists());
        let mut u = t.open(None, true).unwrap();
        u.write_at(5, b"z").unwrap();
        assert_eq!(u.size().unwrap(), 6);
    }
}
