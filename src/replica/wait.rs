//! Waiting until the replica reaches a TXID (`PRAGMA litestream_wait`, [`crate::wait_txid`]).

use crate::error::{Error, ErrorKind, Result};
use crate::layout::format_txid;
use crate::wait_txid::poll_step;
use std::time::Duration;

use super::Replica;

impl Replica {
    /// Block until the latest view reaches `txid`, polling at once (a full listing) and then
    /// every [`poll_step`] (the cheap scheduled poll), or fail with `Timeout` after `timeout`.
    /// Poll errors are retried until the timeout; the last one is named in the error.
    pub fn wait_for_txid(&self, txid: u64, timeout: Duration) -> Result<u64> {
        let started = self.clock.now();
        let step = poll_step(self.opts.poll_interval);
        let mut first = true;
        let mut last_error: Option<Error> = None;
        loop {
            let pos = self.current().txid;
            if pos >= txid {
                return Ok(pos);
            }
            let waited = Duration::from_nanos((self.clock.now() - started).max(0) as u64);
            if !first && waited >= timeout {
                let why = last_error.map(|e| format!("; last poll failed: {e}")).unwrap_or_default();
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "litestream_wait: TXID {} not reached within {timeout:?} (replica at {}){why}",
                        format_txid(txid),
                        format_txid(pos)
                    ),
                ));
            }
            if !first {
                self.clock.sleep(step.min(timeout - waited));
            }
            let polled = if first { self.poll_once() } else { self.poll_tick() };
            first = false;
            if let Err(e) = polled {
                last_error = Some(e);
            }
        }
    }
}
