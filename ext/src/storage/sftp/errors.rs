//! libssh2 errors → typed kinds, by code (never by message text), so the retry layer retries
//! the right ones; and whether the session is still usable afterwards.
//!
//! SFTP status codes (draft-ietf-secsh-filexfer-02 §7) are answers from a working session:
//! no such file → NotFound, permission denied → Auth, the rest → Permanent (OpenSSH reports an
//! exclusive create of an existing file as plain `FAILURE`; `put` checks existence itself).
//! Session codes mean the transport or the protocol broke: authentication failures → Auth,
//! an unreadable key file → Config, everything else (timeout, reset, disconnect, protocol
//! error) → Network, and the session is dropped so that the next call reconnects.

use ltxvfs::{Error, ErrorKind};
use ssh2::ErrorCode;

const FX_NO_SUCH_FILE: i32 = 2;
const FX_PERMISSION_DENIED: i32 = 3;
const FX_NO_CONNECTION: i32 = 6;
const FX_CONNECTION_LOST: i32 = 7;
const FX_NO_SUCH_PATH: i32 = 10;
const FX_FILE_ALREADY_EXISTS: i32 = 11;

const ERROR_FILE: i32 = -16;
const ERROR_AUTHENTICATION_FAILED: i32 = -18;
const ERROR_PUBLICKEY_UNVERIFIED: i32 = -19;
const ERROR_KEYFILE_AUTH_FAILED: i32 = -48;

/// The kind of a libssh2 error code.
pub fn kind_of(code: ErrorCode) -> ErrorKind {
    match code {
        ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH) => ErrorKind::NotFound,
        ErrorCode::SFTP(FX_PERMISSION_DENIED) => ErrorKind::Auth,
        ErrorCode::SFTP(FX_FILE_ALREADY_EXISTS) => ErrorKind::AlreadyExists,
        ErrorCode::SFTP(FX_NO_CONNECTION | FX_CONNECTION_LOST) => ErrorKind::Network,
        ErrorCode::SFTP(_) => ErrorKind::Permanent,
        ErrorCode::Session(ERROR_AUTHENTICATION_FAILED | ERROR_PUBLICKEY_UNVERIFIED | ERROR_KEYFILE_AUTH_FAILED) => {
            ErrorKind::Auth
        }
        ErrorCode::Session(ERROR_FILE) => ErrorKind::Config,
        ErrorCode::Session(_) => ErrorKind::Network,
    }
}

/// Whether the session must be dropped after this error (a reconnect follows on the next call).
pub fn breaks_session(code: ErrorCode) -> bool {
    match code {
        ErrorCode::SFTP(c) => matches!(c, FX_NO_CONNECTION | FX_CONNECTION_LOST),
        ErrorCode::Session(_) => true,
    }
}

/// `op path: message` with the kind of `e`. libssh2 messages hold no secrets; the result is
/// redacted by [`Error::new`] anyway.
pub fn map(op: &str, what: &str, e: &ssh2::Error) -> Error {
    let kind = kind_of(e.code());
    let hint = match kind {
        ErrorKind::Auth if matches!(e.code(), ErrorCode::Session(_)) => " (wrong user, password or key?)",
        ErrorKind::Network => " (connection lost or timed out; will reconnect)",
        _ => "",
    };
    Error::new(kind, format!("sftp {op} {what}: {}{hint}", e.message()))
}

/// A socket-level failure (connect, refused, DNS): transient.
pub fn io(op: &str, what: &str, e: &std::io::Error) -> Error {
    Error::network(format!("sftp {op} {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_code() {
        assert_eq!(kind_of(ErrorCode::SFTP(2)), ErrorKind::NotFound);
        assert_eq!(kind_of(ErrorCode::SFTP(10)), ErrorKind::NotFound);
        assert_eq!(kind_of(ErrorCode::SFTP(3)), ErrorKind::Auth);
        assert_eq!(kind_of(ErrorCode::SFTP(4)), ErrorKind::Permanent);
        assert_eq!(kind_of(ErrorCode::SFTP(11)), ErrorKind::AlreadyExists);
        assert_eq!(kind_of(ErrorCode::SFTP(7)), ErrorKind::Network);
        assert_eq!(kind_of(ErrorCode::Session(-18)), ErrorKind::Auth);
        assert_eq!(kind_of(ErrorCode::Session(-16)), ErrorKind::Config);
        assert_eq!(kind_of(ErrorCode::Session(-9)), ErrorKind::Network); // timeout
        assert_eq!(kind_of(ErrorCode::Session(-13)), ErrorKind::Network); // disconnect
        assert!(breaks_session(ErrorCode::Session(-9)));
        assert!(breaks_session(ErrorCode::SFTP(7)));
        assert!(!breaks_session(ErrorCode::SFTP(2)));
    }

    #[test]
    fn retry_layer_sees_the_right_kinds() {
        let e = map("read", "/d/x.ltx", &ssh2::Error::new(ErrorCode::Session(-9), "timed out"));
        assert!(e.is_transient(), "{e:?}");
        let e = map("login", "u@h", &ssh2::Error::new(ErrorCode::Session(-18), "Authentication failed"));
        assert!(!e.is_retryable(), "{e:?}");
        assert!(e.message.contains("wrong user, password or key"), "{e:?}");
    }
}
