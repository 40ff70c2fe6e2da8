//! Sync: encode → conflict check → conditional put → re-point the index → publish
//! (VFS.md §9.3, §9.4, with the §9.5 fix), and the per-writer ticker.

use super::buffer::{CommitRecord, UploadRecord, encode_upload};
use super::transaction::Overlay;
use super::{Conflict, Writer};
use crate::error::{Error, ErrorKind, Result};
use crate::ltx::{self, HEADER_FLAG_NO_CHECKSUM, Header, lock_pgno};
use crate::plan::LtxFileInfo;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// The pages of the file for TXID `txid`: a snapshot (pages 1..=commit without holes, the
/// lock page skipped) when it is the first TXID, else the changed pages.
pub fn pages_to_upload(
    txid: u64,
    page_size: u32,
    commit: u32,
    overlay: &Overlay,
    mut base_page: impl FnMut(u32) -> Result<Option<Bytes>>,
) -> Result<Vec<(u32, Bytes)>> {
    let lock = lock_pgno(page_size);
    if txid == 1 {
        let mut out = Vec::with_capacity(commit as usize);
        for pgno in (1..=commit).filter(|&p| p != lock) {
            let page = match overlay.pages.get(&pgno) {
                Some((_, p)) => p.clone(),
                None => base_page(pgno)?.unwrap_or_else(|| Bytes::from(vec![0u8; page_size as usize])),
            };
            out.push((pgno, page));
        }
        return Ok(out);
    }
    Ok(overlay.pages.iter().filter(|(p, _)| **p <= commit && **p != lock).map(|(p, (_, d))| (*p, d.clone())).collect())
}

/// One upload of everything committed now. Returns the remote TXID afterwards.
pub fn sync(w: &Writer) -> Result<u64> {
    let _one = w.sync_lock.lock();
    let buffer_name = w.buffer_name();
    let (base, overlay, page_size) = {
        let mut st = w.state.lock();
        if let Some(c) = &st.conflict {
            return Err(c.error());
        }
        if !st.overlay.unsynced() {
            return Ok(st.base.txid);
        }
        st.syncing = true;
        (st.base.clone(), st.overlay.clone(), st.page_size.unwrap_or(st.base.page_size))
    };
    let result = upload(w, &base, &overlay, page_size, buffer_name.unwrap_or_default());
    let mut buf = w.buffer.lock();
    let mut st = w.state.lock();
    st.syncing = false;
    match result {
        Ok((view, g)) => {
            let mut next = (*st.overlay).clone();
            next.pages.retain(|_, (gen_, _)| *gen_ > g);
            next.synced_generation = g;
            if !next.unsynced() {
                next.commit = None;
            }
            let txid = view.txid;
            st.base = view;
            st.overlay = Arc::new(next);
            let remaining: Vec<CommitRecord> = if st.overlay.unsynced() {
                vec![CommitRecord {
                    generation: st.overlay.generation,
                    commit: st.overlay.commit.unwrap_or(st.base.commit),
                    pages: st.overlay.pages.iter().map(|(p, (_, d))| (*p, d.clone())).collect(),
                }]
            } else {
                Vec::new()
            };
            drop(st);
            if let Some(ob) = buf.as_mut() {
                // A failure here is safe: the upload record lets the next open see the file as ours.
                if let Err(e) = w.rewrite(ob, txid, page_size, &remaining) {
                    tracing::error!(error = %e, "cannot reset the write buffer after an upload");
                }
            }
            Ok(txid)
        }
        Err(e) => {
            if e.kind == ErrorKind::Conflict {
                if let Some(remote) = conflict_remote(&e) {
                    let c = Conflict { expected: base.txid, remote, buffer: w.buffer_name_locked(&buf) };
                    tracing::error!("{}", c.error());
                    st.conflict = Some(c.clone());
                    return Err(c.error());
                }
            }
            Err(e)
        }
    }
}

/// Conflicts found by [`upload`] carry the remote TXID in this form until the state is set.
fn conflict_at(remote: u64) -> Error {
    Error::new(ErrorKind::Conflict, format!("remote-txid={remote}"))
}

fn conflict_remote(e: &Error) -> Option<u64> {
    e.message.strip_prefix("remote-txid=")?.parse().ok()
}

fn upload(
    w: &Writer,
    base: &Arc<crate::replica::View>,
    overlay: &Overlay,
    page_size: u32,
    _buffer: String,
) -> Result<(Arc<crate::replica::View>, u64)> {
    let replica = &w.replica;
    let expected = base.txid;
    let txid = expected + 1;
    let commit = overlay.commit.unwrap_or(base.commit);
    let key = replica.own_key(txid);
    // An earlier attempt whose answer was lost may have landed: then it is ours to index.
    let l0 = replica.level0()?;
    if let Some(f) = l0.iter().find(|f| f.key == key) {
        if let Some(adopted) = adopt_if_ours(w, f, page_size)? {
            return Ok(adopted);
        }
    }
    if let Some(newer) = l0.iter().filter(|f| f.max_txid > expected).map(|f| f.max_txid).max() {
        return Err(conflict_at(newer));
    }
    let mut history = crate::read_planner::AccessHistory::default();
    let pages = pages_to_upload(txid, page_size, commit, overlay, |pgno| {
        if base.index.get(pgno).is_none() {
            return Ok(None);
        }
        replica.read_page(base, pgno, &mut history).map(Some)
    })?;
    let header = Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size,
        commit,
        min_txid: txid,
        max_txid: txid,
        timestamp_ms: replica.now() / 1_000_000,
        ..Default::default()
    };
    let refs: Vec<(u32, &[u8])> = pages.iter().map(|(p, d)| (*p, d.as_ref())).collect();
    let encoded = ltx::encode_file(&header, &refs).map_err(|e| e.context(format!("encode ltx file {txid}")))?;
    let file_crc = ltx::crc64_iso(&encoded.bytes);
    {
        let mut buf = w.buffer.lock();
        if let Some(ob) = buf.as_mut() {
            ob.file
                .append(&encode_upload(&UploadRecord { txid, generation: overlay.generation, file_crc }))
                .map_err(|e| e.context(format!("write buffer {}", ob.name)))?;
        }
    }
    let size = encoded.bytes.len();
    let view = replica
        .upload_own(&key, Bytes::from(encoded.bytes), &header, &encoded.index, &pages, |l0| {
            match l0.iter().filter(|f| f.max_txid > expected).map(|f| f.max_txid).max() {
                Some(newer) => Err(conflict_at(newer)),
                None => Ok(()),
            }
        })
        .map_err(|e| match e.kind {
            ErrorKind::AlreadyExists => conflict_at(txid),
            _ => e,
        })?;
    tracing::info!(txid, pages = pages.len(), size, "synced to remote");
    Ok((view, overlay.generation))
}

/// If the level-0 file `f` is one this writer uploaded (its bytes match the last upload record),
/// index it and return the view and the generation of the commits it holds.
fn adopt_if_ours(w: &Writer, f: &LtxFileInfo, page_size: u32) -> Result<Option<(Arc<crate::replica::View>, u64)>> {
    let Some(up) = w.last_upload()? else { return Ok(None) };
    if up.txid != f.max_txid {
        return Ok(None);
    }
    let crc = up.file_crc;
    let bytes = w.replica.fetch_object(&f.key, f.size)?;
    if ltx::crc64_iso(&bytes) != crc {
        return Ok(None);
    }
    let decoded = ltx::decode_file(&bytes).map_err(|e| e.context(&f.key))?;
    if decoded.header.page_size != page_size {
        return Ok(None);
    }
    let pages: Vec<(u32, Bytes)> = decoded.pages.into_iter().map(|(p, d)| (p, Bytes::from(d))).collect();
    tracing::info!(key = %f.key, "an earlier upload had landed; indexing it");
    Ok(Some((w.replica.index_own(f, &decoded.header, &decoded.index, &pages), up.generation)))
}

impl Writer {
    fn buffer_name_locked(&self, buf: &Option<super::OpenBuffer>) -> String {
        buf.as_ref().map(|b| b.name.clone()).unwrap_or_default()
    }

    /// The last upload recorded in the buffer.
    fn last_upload(&self) -> Result<Option<UploadRecord>> {
        let mut buf = self.buffer.lock();
        let Some(ob) = buf.as_mut() else { return Ok(None) };
        let Some(bytes) = ob.file.load()? else { return Ok(None) };
        Ok(super::buffer::parse(&ob.name, &bytes)?.upload)
    }
}

/// Sync every `interval` while the writer lives (per replica, not per process).
pub fn start_ticker(w: &Arc<Writer>, interval: Duration) {
    cfg_if::cfg_if! {
        if #[cfg(target_family = "wasm")] {
            let _ = (w, interval);
        } else {
            let weak: std::sync::Weak<Writer> = Arc::downgrade(w);
            let spawned = std::thread::Builder::new().name("ltxvfs-sync".into()).spawn(move || loop {
                std::thread::sleep(interval);
                let Some(w) = weak.upgrade() else { break };
                let due = {
                    let st = w.state.lock();
                    st.enabled > 0 && st.overlay.unsynced() && st.conflict.is_none()
                };
                if due {
                    if let Err(e) = w.sync() {
                        tracing::error!(error = %e, "periodic sync failed");
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the sync thread");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_has_every_page_but_the_lock_page() {
        let mut o = Overlay::default();
        o.apply(3, &[(1, Bytes::from(vec![1u8; 512])), (3, Bytes::from(vec![3u8; 512]))]);
        let pages = pages_to_upload(1, 512, 3, &o, |_| Ok(None)).unwrap();
        assert_eq!(pages.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(pages[1].1[0], 0);
        let later = pages_to_upload(5, 512, 3, &o, |_| unreachable!()).unwrap();
        assert_eq!(later.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [1, 3]);
        let lock = lock_pgno(65536);
        let big = pages_to_upload(1, 65536, lock + 1, &Overlay::default(), |_| Ok(None)).unwrap();
        assert!(big.iter().all(|(p, _)| *p != lock));
        assert_eq!(big.len() as u32, lock);
    }

    #[test]
    fn conflict_marker_round_trips() {
        assert_eq!(conflict_remote(&conflict_at(12)), Some(12));
        assert_eq!(conflict_remote(&Error::new(ErrorKind::Conflict, "other")), None);
    }
}
