//! The time budget of one served request (issue 11 item 6), as pure logic: no clock, no I/O.
//!
//! `ltxvfs-host serve` gives every request a deadline. It answers `504` itself when the
//! deadline passes, and hands the component a slightly smaller budget in the
//! [`DEADLINE_HEADER`] request header, so that the component's own storage requests (connect,
//! first byte, body), its retry waits and its SQLite statements give up first and the client
//! gets the component's own error, which names the cause (`connection refused`, no response
//! from a host). The host keeps [`host_margin`] to itself: time to receive that answer.
//!
//! Instants are nanoseconds of a monotonic clock (WASI's `monotonic-clock` in the component).

use std::time::Duration;

/// The request header carrying the component's budget, in whole milliseconds. The host sets
/// it (replacing any the client sent); under another runtime a client may set it itself.
pub const DEADLINE_HEADER: &str = "ltxvfs-deadline-ms";

/// The largest budget a header may ask for (larger values are clamped to it).
pub const MAX_BUDGET: Duration = Duration::from_secs(3600);

/// The part of the remaining time the host keeps to receive the component's answer: a tenth,
/// between 100 ms and 1 s.
pub fn host_margin(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// The budget the host hands the component, from the time left before the request deadline
/// (at least 1 ms: a request that has no time left still runs and fails at once).
pub fn component_budget(remaining: Duration) -> Duration {
    remaining.saturating_sub(host_margin(remaining)).max(Duration::from_millis(1))
}

/// The header's value: whole milliseconds, > 0; `None` when absent or malformed.
pub fn parse_header(value: &[u8]) -> Option<Duration> {
    let ms: u64 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms).min(MAX_BUDGET))
}

/// A deadline on a monotonic clock, with the budget it was given (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    deadline_ns: u64,
    total: Duration,
}

impl Budget {
    /// A budget of `total` starting at `now_ns`.
    pub fn starting(now_ns: u64, total: Duration) -> Self {
        let ns = u64::try_from(total.as_nanos()).unwrap_or(u64::MAX);
        Self { deadline_ns: now_ns.saturating_add(ns), total }
    }

    /// The deadline, in the clock's nanoseconds.
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }

    pub fn total(&self) -> Duration {
        self.total
    }

    pub fn remaining(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(self.deadline_ns.saturating_sub(now_ns))
    }

    pub fn passed(&self, now_ns: u64) -> bool {
        now_ns >= self.deadline_ns
    }

    /// `timeout`, shortened to what is left (a wait never outlasts the deadline).
    pub fn clamp(&self, now_ns: u64, timeout: Duration) -> Duration {
        timeout.min(self.remaining(now_ns))
    }

    /// The message of a request that ran out of time: `what` gave up.
    pub fn exceeded(&self, what: &str) -> String {
        format!("{what}: the request deadline passed ({} ms budget)", self.total.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_host_keeps_a_tenth_between_100ms_and_1s() {
        assert_eq!(host_margin(Duration::from_secs(10)), Duration::from_secs(1));
        assert_eq!(host_margin(Duration::from_secs(60)), Duration::from_secs(1));
        assert_eq!(host_margin(Duration::from_secs(3)), Duration::from_millis(300));
        assert_eq!(host_margin(Duration::from_millis(200)), Duration::from_millis(100));
        assert_eq!(component_budget(Duration::from_secs(10)), Duration::from_secs(9));
        assert_eq!(component_budget(Duration::from_millis(50)), Duration::from_millis(1));
        assert_eq!(component_budget(Duration::ZERO), Duration::from_millis(1));
    }

    #[test]
    fn header_values_are_positive_milliseconds() {
        assert_eq!(parse_header(b"2500"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_header(b" 7 "), Some(Duration::from_millis(7)));
        assert_eq!(parse_header(b"99999999999"), Some(MAX_BUDGET));
        for bad in [&b""[..], b"0", b"-5", b"1.5", b"soon", b"\xff"] {
            assert_eq!(parse_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn waits_are_clamped_to_what_is_left() {
        let b = Budget::starting(1_000 * MS, Duration::from_millis(500));
        assert_eq!(b.deadline_ns(), 1_500 * MS);
        assert_eq!(b.remaining(1_200 * MS), Duration::from_millis(300));
        assert_eq!(b.clamp(1_200 * MS, Duration::from_secs(8)), Duration::from_millis(300));
        assert_eq!(b.clamp(1_200 * MS, Duration::from_millis(50)), Duration::from_millis(50));
        assert!(!b.passed(1_499 * MS));
        assert!(b.passed(1_500 * MS));
        assert_eq!(b.remaining(2_000 * MS), Duration::ZERO);
        assert_eq!(b.clamp(2_000 * MS, Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(b.exceeded("GET http://h/x"), "GET http://h/x: the request deadline passed (500 ms budget)");
        assert!(!Budget::starting(u64::MAX - 1, Duration::MAX).passed(u64::MAX - 1));
    }
}
