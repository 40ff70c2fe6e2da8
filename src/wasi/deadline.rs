//! The current request's deadline inside the component ([`crate::request_budget`]).
//!
//! The incoming handler enters a [`Scope`] with the budget of the
//! [`DEADLINE_HEADER`](crate::request_budget::DEADLINE_HEADER) header; while it lasts,
//! [`super::http`] shortens every timeout to what is left and gives up at the deadline, the
//! retry layer's waits are cut short ([`DeadlineClock`]), and SQLite statements are interrupted
//! (the progress handler in [`super::sqlite`]). Errors from a passed deadline are `Permanent`:
//! retrying cannot help. Outside a scope (the typed `replica` interface) nothing changes.
//!
//! The component runs on one thread, so the current budget is a thread-local.

use crate::request_budget::Budget;
use crate::storage::{Clock, SystemClock, UnixNanos};
use std::cell::Cell;
use std::time::Duration;
use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::Pollable;

thread_local! {
    static CURRENT: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// A request's budget, current until dropped.
pub struct Scope {
    previous: Option<Budget>,
}

impl Scope {
    /// Make `budget` (from now) current; `None` leaves the request unbounded.
    pub fn enter(budget: Option<Duration>) -> Scope {
        let b = budget.map(|d| Budget::starting(monotonic_clock::now(), d));
        Scope { previous: CURRENT.with(|c| c.replace(b)) }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

fn current() -> Option<Budget> {
    CURRENT.with(Cell::get)
}

/// Whether the current request's deadline has passed (false outside a request).
pub fn passed() -> bool {
    current().is_some_and(|b| b.passed(monotonic_clock::now()))
}

/// `timeout`, shortened to the time left in the current request.
pub fn clamp(timeout: Duration) -> Duration {
    match current() {
        Some(b) => b.clamp(monotonic_clock::now(), timeout),
        None => timeout,
    }
}

/// A pollable that becomes ready at the deadline, when there is one.
pub fn pollable() -> Option<Pollable> {
    current().map(|b| monotonic_clock::subscribe_instant(b.deadline_ns()))
}

/// The error of `what` giving up at the deadline, if it has passed.
pub fn check(what: &str) -> crate::Result<()> {
    match current() {
        Some(b) if b.passed(monotonic_clock::now()) => Err(crate::Error::permanent(b.exceeded(what))),
        _ => Ok(()),
    }
}

/// The error of `what` giving up at the deadline (whether or not it has passed yet).
pub fn exceeded(what: &str) -> crate::Error {
    let msg = current().map(|b| b.exceeded(what)).unwrap_or_else(|| format!("{what}: timed out"));
    crate::Error::permanent(msg)
}

/// The message suffix for an error that happened after the deadline passed.
pub fn note() -> Option<String> {
    current()
        .filter(|b| b.passed(monotonic_clock::now()))
        .map(|b| format!("the request deadline passed ({} ms budget)", b.total().as_millis()))
}

/// The system clock whose sleeps end at the current request's deadline (retry backoff, the
/// wait for a first snapshot): the attempt that follows then fails at once with [`check`].
#[derive(Debug, Default, Clone, Copy)]
pub struct DeadlineClock;

impl Clock for DeadlineClock {
    fn now(&self) -> UnixNanos {
        SystemClock.now()
    }
    fn sleep(&self, d: Duration) {
        SystemClock.sleep(clamp(d))
    }
}
