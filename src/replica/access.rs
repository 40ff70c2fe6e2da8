//! What background tasks beside the replica (hydration) read from it: files by id, ranges with
//! the read retry schedule, and the database checksum a view's TXID must have.

use crate::error::{ErrorKind, Result};
use crate::file_table::{FileId, LtxFile};
use crate::ltx;
use crate::storage::RangeRequest;
use bytes::Bytes;
use std::sync::Arc;

use super::{Replica, View};

impl Replica {
    pub fn ltx_file(&self, id: FileId) -> Option<Arc<LtxFile>> {
        self.files.get(id)
    }

    /// MaxTXID of a file, 0 for an unknown id.
    pub fn file_max_txid(&self, id: FileId) -> u64 {
        self.files.max_txid(id)
    }

    /// Fetch ranges concurrently with the read retry schedule (counted in [`super::Stats`]).
    pub fn fetch_ranges(&self, requests: &[RangeRequest]) -> Vec<Result<Bytes>> {
        self.get_ranges(requests)
    }

    /// The post-apply database checksum recorded for `view`'s TXID (the trailer of a file that
    /// ends there), `None` when no such file is known or its writer kept no checksums.
    pub fn post_apply_checksum(&self, view: &View) -> Result<Option<u64>> {
        for file in self.files.ending_at(view.txid).into_iter().rev() {
            let size = file.info.size;
            let Some(start) = size.checked_sub(ltx::TRAILER_SIZE as u64) else { continue };
            let got = self.get_ranges(&[Self::request(&file, start..size)]).pop();
            match got {
                Some(Ok(b)) if b.len() == ltx::TRAILER_SIZE => {
                    let mut v = [0u8; 8];
                    v.copy_from_slice(&b[..8]);
                    let sum = u64::from_be_bytes(v);
                    return Ok((sum != 0).then_some(sum));
                }
                Some(Err(e)) if e.kind == ErrorKind::NotFound => continue,
                Some(Err(e)) => return Err(e.context(&file.info.key)),
                _ => continue,
            }
        }
        Ok(None)
    }
}
