//! When and how long to wait before retrying a storage request: the policy of the
//! [`crate::retrying_storage::RetryingStorage`] layer, as pure logic (no I/O, no clock).
//!
//! Exponential backoff with full jitter (each wait is uniform in `[0, min(cap, base·2^k)]`), a
//! bounded number of attempts, and a bound on the whole operation: another attempt starts only
//! if it can finish — at its worst, one [`REQUEST_TIMEOUT`] — before `max_wait` has passed. So
//! one storage call (a listing, a batch of ranged reads, a put) returns within
//! `max(max_wait, REQUEST_TIMEOUT)`, and a query waits no longer than that per call.

use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// The most one request may take, connect to last byte (backends enforce it). Together with
/// [`CONNECT_TIMEOUT`], [`FIRST_BYTE_TIMEOUT`] and [`BODY_PROGRESS_TIMEOUT`] it bounds a stalled
/// or slow request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP (and TLS) connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// From sending the request to the response headers.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(8);
/// The longest silence in the middle of a response body.
pub const BODY_PROGRESS_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on one storage call including its retries (URI `max_wait`, env
/// `LITESTREAM_MAX_WAIT`).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(30);

/// What kind of call is retried: it decides which errors are worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    List,
    /// Ranged reads of keys that a listing returned: a missing object may be a race with
    /// compaction or an eventually consistent store, so not-found is retried too (VFS.md §5.1).
    Read,
    /// An overwriting put (idempotent).
    Put,
    /// A create-only put is never retried: the first attempt may have succeeded without us
    /// seeing the reply, and a retry would then report a conflict that is not one.
    CreatePut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (≥ 1).
    pub max_attempts: u32,
    /// Attempts for not-found on reads (they are cheap to give up on: the reader re-plans).
    pub not_found_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Bound on the whole call, retries included.
    pub max_wait: Duration,
    /// The worst case of one attempt (the backend's request timeout).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            not_found_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_wait: DEFAULT_MAX_WAIT,
            attempt_timeout: REQUEST_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (tests, callers that retry themselves).
    pub fn none() -> Self {
        Self { max_attempts: 1, not_found_attempts: 1, ..Self::default() }
    }

    /// Whether `e`, from attempt number `attempt` (1-based) of `op`, deserves another attempt
    /// (attempt count only; [`RetryPolicy::next_wait`] checks the time).
    pub fn should_retry(&self, op: Operation, e: &Error, attempt: u32) -> bool {
        match (op, e.kind) {
            (Operation::CreatePut, _) => false,
            (Operation::Read, ErrorKind::NotFound) => attempt < self.not_found_attempts.min(self.max_attempts),
            _ if e.is_transient() => attempt < self.max_attempts,
            _ => false,
        }
    }

    /// The wait before attempt `attempt + 1`, given the time already spent and a uniform random
    /// number in `[0, 1)`; `None` when that attempt could not finish within `max_wait`.
    pub fn next_wait(&self, attempt: u32, elapsed: Duration, random: f64) -> Option<Duration> {
        let exp = self.initial_backoff.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
        let cap = exp.min(self.max_backoff);
        let wait = cap.mul_f64(random.clamp(0.0, 1.0));
        let finish = elapsed.saturating_add(wait).saturating_add(self.attempt_timeout);
        (finish <= self.max_wait).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kinds_are_retried_up_to_the_attempt_bound() {
        let p = RetryPolicy::default();
        let net = Error::network("reset");
        assert!(p.should_retry(Operation::Read, &net, 1));
        assert!(p.should_retry(Operation::List, &net, 5));
        assert!(!p.should_retry(Operation::List, &net, 6));
        assert!(p.should_retry(Operation::Put, &Error::new(ErrorKind::Timeout, "stalled"), 1));
        for kind in
            [ErrorKind::Auth, ErrorKind::Permanent, ErrorKind::Corrupt, ErrorKind::Config, ErrorKind::AlreadyExists]
        {
            assert!(!p.should_retry(Operation::Read, &Error::new(kind, "x"), 1), "{kind:?}");
        }
    }

    #[test]
    fn not_found_is_retried_briefly_and_only_for_reads() {
        let p = RetryPolicy::default();
        let nf = Error::not_found("gone");
        assert!(p.should_retry(Operation::Read, &nf, 1));
        assert!(p.should_retry(Operation::Read, &nf, 2));
        assert!(!p.should_retry(Operation::Read, &nf, 3));
        assert!(!p.should_retry(Operation::List, &nf, 1));
        assert!(!p.should_retry(Operation::Put, &nf, 1));
    }

    #[test]
    fn create_only_puts_are_never_retried() {
        assert!(!RetryPolicy::default().should_retry(Operation::CreatePut, &Error::network("reset"), 1));
    }

    #[test]
    fn backoff_grows_exponentially_with_full_jitter_and_a_cap() {
        let p = RetryPolicy::default();
        let z = Duration::ZERO;
        assert_eq!(p.next_wait(1, z, 0.999_999).map(|d| d.as_millis()), Some(49));
        assert_eq!(p.next_wait(2, z, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(p.next_wait(3, z, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(p.next_wait(10, z, 1.0), Some(Duration::from_secs(2)), "capped");
        assert_eq!(p.next_wait(40, z, 1.0), Some(Duration::from_secs(2)), "no overflow");
        assert_eq!(p.next_wait(3, z, 0.0), Some(Duration::ZERO));
    }

    #[test]
    fn no_attempt_starts_that_could_end_after_max_wait() {
        let p = RetryPolicy { max_wait: Duration::from_secs(30), ..RetryPolicy::default() };
        assert!(p.next_wait(1, Duration::from_secs(19), 1.0).is_some());
        assert_eq!(p.next_wait(1, Duration::from_secs(20), 1.0), None);
        assert_eq!(p.next_wait(1, Duration::from_secs(20), 0.0), Some(Duration::ZERO), "20 + 0 + 10 ≤ 30");
        assert_eq!(p.next_wait(1, Duration::from_secs(21), 0.0), None);
        let none = RetryPolicy::none();
        assert!(!none.should_retry(Operation::Read, &Error::network("x"), 1));
    }
}
