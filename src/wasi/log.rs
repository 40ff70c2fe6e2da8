//! Logging inside the component: a minimal `tracing` subscriber.
//!
//! SQLite reduces a failed open or read to a result code (`unable to open database file`); the
//! reason lives in the core's log line. This subscriber keeps the last error-level message so
//! that the API can return it with SQLite's own message, and prints events to stderr at the
//! level of `LTXVFS_LOG` (`error`, `warn`, `info`, `debug`, `trace`; unset: nothing).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Forget the last error (before an operation).
pub fn clear() {
    LAST_ERROR.with(|e| e.borrow_mut().take());
}

/// The last error logged since [`clear`].
pub fn take_last_error() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow_mut().take())
}

struct Sink {
    print: Option<Level>,
}

/// An event's message and its other fields, apart.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Subscriber for Sink {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() == Level::ERROR || self.print.is_some_and(|l| *metadata.level() <= l)
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        let level = *event.metadata().level();
        // Redacted like every log line (`crate::redact`).
        if self.print.is_some_and(|l| level <= l) {
            let text = format!("ltxvfs {level} {}: {}{}", event.metadata().target(), line.message, line.fields);
            eprintln!("{}", crate::redact::redact_text(&text));
        }
        if level == Level::ERROR {
            let message = crate::redact::redact_text(&line.message).into_owned();
            LAST_ERROR.with(|e| *e.borrow_mut() = Some(message));
        }
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

/// Install the subscriber once.
pub fn init() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let print = std::env::var("LTXVFS_LOG").ok().and_then(|v| match v.to_ascii_lowercase().as_str() {
            "error" => Some(Level::ERROR),
            "warn" => Some(Level::WARN),
            "info" => Some(Level::INFO),
            "debug" => Some(Level::DEBUG),
            "trace" => Some(Level::TRACE),
            _ => None,
        });
        let _ = tracing::subscriber::set_global_default(Sink { print });
    });
}
