//! Views other than the latest: re-planning a view whose files vanished, and time travel.

use crate::error::Result;
use crate::plan::{Target, restore_plan};
use crate::time::TimeTarget;
use std::sync::Arc;

use super::{Replica, View};

impl Replica {
    /// The same state as `view` (same TXID, or same time target) from a fresh listing: used
    /// when a file the view points at has vanished (compaction, retention).
    pub fn replan(&self, view: &View) -> Result<Arc<View>> {
        let with_metadata = view.target.is_some();
        let listing = self.list_all(with_metadata)?;
        self.forget_deleted(&listing);
        let plan = restore_plan(&listing, Target::Txid(view.txid))?;
        let mut fresh = self.build_view(&plan, view.target.clone())?;
        fresh.created_at = view.created_at;
        let fresh = Arc::new(fresh);
        if view.target.is_none() {
            let mut cur = self.current.write();
            if cur.txid == fresh.txid {
                *cur = fresh.clone();
            }
        }
        Ok(fresh)
    }

    /// A time-travel view: files created strictly before `target.at`.
    pub fn view_at(&self, target: TimeTarget) -> Result<Arc<View>> {
        let listing = self.list_all(true)?;
        let plan = restore_plan(&listing, Target::Time(target.at))?;
        Ok(Arc::new(self.build_view(&plan, Some(target))?))
    }
}
