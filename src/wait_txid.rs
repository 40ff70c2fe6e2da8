//! `PRAGMA litestream_wait = '<txid>[,<timeout>]'`: read-your-writes for a replica. The
//! argument is parsed here; the wait itself is `Replica::wait_for_txid`.
//!
//! The TXID is hexadecimal, as `PRAGMA litestream_txid` prints it (leading zeros optional);
//! the timeout is a Go duration ("500ms", "5s"), [`DEFAULT_TIMEOUT`] when omitted.

use crate::error::{Error, Result};
use crate::time::parse_go_duration;
use std::time::Duration;

/// How long a wait without an explicit timeout blocks at most.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a `litestream_wait` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitRequest {
    pub txid: u64,
    pub timeout: Duration,
}

/// Parse `<txid>[,<timeout>]`.
pub fn parse(arg: &str) -> Result<WaitRequest> {
    let usage = |why: &str| {
        Error::config(format!(
            "invalid value for litestream_wait: {arg:?} ({why}; use '<txid>[,<timeout>]', e.g. '000000000000002a,5s')"
        ))
    };
    let (txid, timeout) = match arg.split_once(',') {
        Some((t, d)) => (t.trim(), Some(d.trim())),
        None => (arg.trim(), None),
    };
    if txid.is_empty() || txid.len() > 16 || !txid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(usage("the TXID must be 1 to 16 hex digits"));
    }
    let txid = u64::from_str_radix(txid, 16).map_err(|_| usage("the TXID must be 1 to 16 hex digits"))?;
    let timeout = match timeout {
        None => DEFAULT_TIMEOUT,
        Some(d) => {
            let ns = parse_go_duration(d).map_err(|e| usage(&e.message))?;
            if ns < 0 {
                return Err(usage("the timeout must not be negative"));
            }
            Duration::from_nanos(ns as u64)
        }
    };
    Ok(WaitRequest { txid, timeout })
}

/// How long the waiter sleeps between two polls: a tenth of the poll interval, 10–100 ms.
pub fn poll_step(poll_interval: Duration) -> Duration {
    (poll_interval / 10).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_txid_and_optional_timeout() {
        assert_eq!(parse("000000000000002a").unwrap(), WaitRequest { txid: 42, timeout: DEFAULT_TIMEOUT });
        assert_eq!(parse("2A, 500ms").unwrap(), WaitRequest { txid: 42, timeout: Duration::from_millis(500) });
        assert_eq!(parse("1,0").unwrap().timeout, Duration::ZERO);
    }

    #[test]
    fn rejects_bad_values_clearly() {
        for bad in ["", "xyz", "-1", "00000000000000001", "1,5", "1,-1s", "1,soon"] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.starts_with("invalid value for litestream_wait"), "{bad}: {e}");
        }
        assert!(parse("1,5").unwrap_err().message.contains("missing unit"));
    }

    #[test]
    fn poll_step_is_bounded() {
        assert_eq!(poll_step(Duration::from_secs(1)), Duration::from_millis(100));
        assert_eq!(poll_step(Duration::from_millis(20)), Duration::from_millis(10));
    }
}
