//! Temporary files SQLite asks for (journals, sort spill, temp tables). The native shell keeps
//! them on local disk; this in-memory store serves the component, which has no filesystem.

use crate::error::Result;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

pub trait TempFile: Send {
    /// Bytes read (short at the end of the file).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize>;
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    fn truncate(&mut self, size: u64) -> Result<()>;
    fn size(&mut self) -> Result<u64>;
}

pub trait TempFiles: Send + Sync {
    fn open(&self, name: Option<&str>, delete_on_close: bool) -> Result<Box<dyn TempFile>>;
    fn delete(&self, name: &str) -> Result<()>;
    fn exists(&self, name: &str) -> bool;
}

type Shared = Arc<Mutex<Vec<u8>>>;
type NameMap = Arc<Mutex<HashMap<String, Shared>>>;

#[derive(Default, Clone)]
pub struct MemoryTempFiles {
    named: NameMap,
}

struct MemoryFile {
    data: Shared,
    forget_on_drop: Option<(String, NameMap)>,
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        if let Some((name, map)) = self.forget_on_drop.take() {
            map.lock().remove(&name);
        }
    }
}

impl TempFile for MemoryFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let data = self.data.lock();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
    fn write_at(&mut self, offset: u64, src: &[u8]) -> Result<()> {
        let mut data = self.data.lock();
        let end = offset as usize + src.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(src);
        Ok(())
    }
    fn truncate(&mut self, size: u64) -> Result<()> {
        self.data.lock().resize(size as usize, 0);
        Ok(())
    }
    fn size(&mut self) -> Result<u64> {
        Ok(self.data.lock().len() as u64)
    }
}

impl TempFiles for MemoryTempFiles {
    fn open(&self, name: Option<&str>, delete_on_close: bool) -> Result<Box<dyn TempFile>> {
        let Some(name) = name else {
            return Ok(Box::new(MemoryFile { data: Shared::default(), forget_on_drop: None }));
        };
        let data = self.named.lock().entry(name.to_string()).or_default().clone();
        let forget_on_drop = delete_on_close.then(|| (name.to_string(), self.named.clone()));
        Ok(Box::new(MemoryFile { data, forget_on_drop }))
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.named.lock().remove(name);
        Ok(())
    }
    fn exists(&self, name: &str) -> bool {
        self.named.lock().contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_files_persist_until_deleted_or_closed() {
        let t = MemoryTempFiles::default();
        let mut f = t.open(Some("j"), false).unwrap();
        f.write_at(10, b"abc").unwrap();
        assert_eq!(f.size().unwrap(), 13);
        let mut buf = [9u8; 20];
        assert_eq!(f.read_at(9, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"\0abc");
        drop(f);
        assert!(t.exists("j"));
        t.delete("j").unwrap();
        assert!(!t.exists("j"));
        let g = t.open(Some("k"), true).unwrap();
        assert!(t.exists("k"));
        drop(g);
        assert!(!t.exists("k"));
    }
}
