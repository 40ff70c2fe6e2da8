//! Errors are values with a kind. Shells map the kind to a SQLite result code and keep the
//! message for the log and for SQL functions.

use std::fmt;

/// What went wrong, coarsely: enough for a shell to pick a SQLite result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An object or page does not exist (retryable for page reads: compaction may race us).
    NotFound,
    /// Bytes that do not follow the LTX format, or a checksum mismatch.
    Corrupt,
    /// Transient: a transport failure (refused, reset), a request timeout (connect, first byte,
    /// body progress), a truncated body, or a server error (5xx, 429). Retrying may succeed;
    /// the storage retry layer does so with backoff.
    Network,
    /// The storage refused the request for a reason retrying cannot fix (400, 405, 416 outside
    /// a read, an unsupported operation, an unparsable reply to a complete request).
    Permanent,
    /// A create-only put found the key already there (a racing writer won).
    AlreadyExists,
    /// Credentials rejected.
    Auth,
    /// Remote has newer transactions than this writer expected.
    Conflict,
    /// Another connection of this process holds the writer slot (`SQLITE_BUSY`).
    Busy,
    /// The replica has a hole in its TXID sequence.
    Gap,
    /// Bad configuration: URL, URI parameter, environment variable.
    Config,
    /// No file satisfies the requested point in time (`transaction not available`).
    NotAvailable,
    /// A write was attempted where writes are not allowed.
    ReadOnly,
    /// Waited for something (the first snapshot) and gave up.
    Timeout,
    /// Anything else: a bug or an unexpected state.
    Internal,
}

/// An error with a kind and a human-readable message.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message is redacted (`crate::redact`): no password or key is ever in an error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: crate::redact::redact_text(&message.into()).into_owned() }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn corrupt(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, m)
    }
    pub fn network(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, m)
    }
    pub fn config(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, m)
    }
    pub fn permanent(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    /// Prefix the message with context, keeping the kind.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = crate::redact::redact_text(&format!("{ctx}: {}", self.message)).into_owned();
        self
    }
    /// Whether the failure is transient (network, timeout): the storage retry layer retries
    /// exactly these (plus not-found on ranged reads, VFS.md §5.1).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Network | ErrorKind::Timeout)
    }
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::NotFound | ErrorKind::Network | ErrorKind::Timeout)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}
