//! The scheduled poll: a probe of the next L0 name; when it finds the file, a poll of L0 from
//! the position; the whole listing poll when [`crate::poll_schedule`] says it is due.

use crate::error::Result;
use crate::poll_schedule::PollStep;
use std::sync::atomic::Ordering;

use super::Replica;

impl Replica {
    /// One poll of the poller: usually one HEAD. Returns whether a new view was published.
    pub fn poll_tick(&self) -> Result<bool> {
        let pos = self.current().txid;
        let step = if self.opts.min_level > 0 {
            PollStep::List // no L0 name to probe
        } else {
            self.schedule.lock().next_step(&self.layout, pos)
        };
        match step {
            PollStep::Probe(key) => {
                self.last_poll_at.store(self.clock.now(), Ordering::Relaxed);
                if !self.storage.exists(&key)? {
                    self.schedule.lock().probed_nothing();
                    self.last_poll_ok.store(self.clock.now(), Ordering::Relaxed);
                    return Ok(false);
                }
                let changed = self.poll_from_position()?;
                self.schedule.lock().listed_from_position();
                Ok(changed)
            }
            PollStep::List => {
                let changed = self.poll_once()?;
                self.schedule.lock().listed();
                Ok(changed)
            }
        }
    }
}
