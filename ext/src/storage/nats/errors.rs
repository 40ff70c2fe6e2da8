//! async-nats errors → typed [`ErrorKind`]s, decided by the client's error kinds and the
//! JetStream error codes, never by message text. Messages name the server and object, never a
//! credential (async-nats messages carry none; `Error::new` redacts anyway).

use async_nats::jetstream::context::{GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::object_store::{GetErrorKind, InfoErrorKind, PutErrorKind, WatchErrorKind};
use async_nats::{ConnectErrorKind, jetstream};
use ltxvfs::{Error, ErrorKind};

/// The kind of a failed connect.
pub fn connect_kind(k: ConnectErrorKind) -> ErrorKind {
    match k {
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => ErrorKind::Auth,
        ConnectErrorKind::ServerParse | ConnectErrorKind::Tls => ErrorKind::Config,
        ConnectErrorKind::Dns | ConnectErrorKind::TimedOut | ConnectErrorKind::Io | ConnectErrorKind::MaxReconnects => {
            ErrorKind::Network
        }
    }
}

pub fn connect(target: &str, e: &async_nats::ConnectError) -> Error {
    let kind = connect_kind(e.kind());
    let hint = if kind == ErrorKind::Auth { " (wrong user, password, token, nkey or creds)" } else { "" };
    Error::new(kind, format!("nats connect to {target}: {e}{hint}"))
}

/// Looking up the bucket's stream (`OBJ_<bucket>`).
pub fn get_bucket(target: &str, bucket: &str, e: &jetstream::context::GetStreamError) -> Error {
    match e.kind() {
        GetStreamErrorKind::JetStream(js) if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND => {
            Error::not_found(format!(
                "nats object store bucket {bucket:?} not found on {target} (Litestream needs it created \
                 beforehand: nats object add {bucket})"
            ))
        }
        GetStreamErrorKind::JetStream(_) => Error::permanent(format!("nats bucket {bucket:?} on {target}: {e}")),
        GetStreamErrorKind::Request => {
            Error::network(format!("nats bucket {bucket:?} on {target}: {e} (is JetStream enabled on the server?)"))
        }
        GetStreamErrorKind::EmptyName | GetStreamErrorKind::InvalidStreamName => {
            Error::config(format!("nats bucket {bucket:?}: {e}"))
        }
    }
}

pub fn info_kind(k: InfoErrorKind) -> ErrorKind {
    match k {
        InfoErrorKind::NotFound => ErrorKind::NotFound,
        InfoErrorKind::InvalidName => ErrorKind::Permanent,
        InfoErrorKind::TimedOut | InfoErrorKind::Other => ErrorKind::Network,
    }
}

pub fn get_kind(k: GetErrorKind) -> ErrorKind {
    match k {
        GetErrorKind::NotFound => ErrorKind::NotFound,
        GetErrorKind::InvalidName | GetErrorKind::BucketLink => ErrorKind::Permanent,
        GetErrorKind::ConsumerCreate | GetErrorKind::TimedOut | GetErrorKind::Other => ErrorKind::Network,
    }
}

pub fn put_kind(k: PutErrorKind) -> ErrorKind {
    match k {
        PutErrorKind::InvalidName => ErrorKind::Permanent,
        PutErrorKind::ReadChunks
        | PutErrorKind::PublishChunks
        | PutErrorKind::PublishMetadata
        | PutErrorKind::PurgeOldChunks
        | PutErrorKind::TimedOut
        | PutErrorKind::Other => ErrorKind::Network,
    }
}

pub fn list_kind(k: WatchErrorKind) -> ErrorKind {
    match k {
        WatchErrorKind::TimedOut | WatchErrorKind::ConsumerCreate | WatchErrorKind::Other => ErrorKind::Network,
    }
}

/// A JetStream publish: a wrong last sequence is a lost create-only race.
pub fn publish_kind(k: PublishErrorKind) -> ErrorKind {
    match k {
        PublishErrorKind::WrongLastSequence => ErrorKind::AlreadyExists,
        PublishErrorKind::StreamNotFound => ErrorKind::NotFound,
        PublishErrorKind::WrongLastMessageId => ErrorKind::Permanent,
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending
        | PublishErrorKind::Other => ErrorKind::Network,
    }
}

/// An operation that did not finish within its timeout.
pub fn timed_out(op: &str, what: &str, after: std::time::Duration) -> Error {
    Error::network(format!("nats {op} {what}: no answer within {} s", after.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(connect_kind(ConnectErrorKind::AuthorizationViolation), ErrorKind::Auth);
        assert_eq!(connect_kind(ConnectErrorKind::Io), ErrorKind::Network);
        assert_eq!(connect_kind(ConnectErrorKind::TimedOut), ErrorKind::Network);
        assert_eq!(connect_kind(ConnectErrorKind::Tls), ErrorKind::Config);
        assert_eq!(get_kind(GetErrorKind::NotFound), ErrorKind::NotFound);
        assert_eq!(info_kind(InfoErrorKind::TimedOut), ErrorKind::Network);
        assert_eq!(publish_kind(PublishErrorKind::WrongLastSequence), ErrorKind::AlreadyExists);
        assert_eq!(put_kind(PutErrorKind::InvalidName), ErrorKind::Permanent);
        let e = timed_out("list", "nats://h:1/b", std::time::Duration::from_secs(10));
        assert!(e.is_retryable() && e.message.contains("10 s"), "{e:?}");
    }
}
