//! object_store errors → our [`ErrorKind`]s, from types only: object_store's typed variants,
//! and in the source chain the [`Failure`]s that [`super::http_guard`] puts there (HTTP status,
//! timeouts, truncation, transport). The message (one line, with the source chain) is kept for
//! the log; it never decides the kind — except for the S3 error *code* of a 400 reply, which is
//! a protocol field (`<Code>…</Code>`) read from the body, as every S3 SDK does.

use ltxvfs::{Error, ErrorKind};

use super::http_guard::Failure;

/// S3 error codes that mean "your credentials are wrong or expired" (sent with 400 or 403).
const S3_AUTH_CODES: [&str; 7] = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
];

/// The first [`Failure`] in the source chain of `e`.
pub fn failure<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Failure> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if let Some(f) = x.downcast_ref::<Failure>() {
            return Some(f);
        }
        cur = x.source();
    }
    None
}

/// The HTTP status of a reply that object_store left untyped, if that is what `e` is.
pub fn status(e: &object_store::Error) -> Option<u16> {
    match failure(e) {
        Some(Failure::Status { status, .. }) => Some(*status),
        _ => None,
    }
}

/// The `<Code>` of an S3 XML error body.
fn s3_error_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    Some(body[start..start + len].trim())
}

/// The kind of an object_store error.
pub fn kind(e: &object_store::Error) -> ErrorKind {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => ErrorKind::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::Auth,
        E::UnknownConfigurationKey { .. } | E::InvalidPath { .. } => ErrorKind::Config,
        E::NotImplemented | E::NotSupported { .. } | E::NotModified { .. } => ErrorKind::Permanent,
        _ => match failure(e) {
            Some(Failure::Status { status, body }) => match *status {
                s if s >= 500 => ErrorKind::Network,
                408 | 429 => ErrorKind::Network,
                401 | 403 => ErrorKind::Auth,
                400 if s3_error_code(body).is_some_and(|c| S3_AUTH_CODES.contains(&c)) => ErrorKind::Auth,
                _ => ErrorKind::Permanent,
            },
            Some(Failure::NoFirstByte(_) | Failure::Stalled(_)) => ErrorKind::Network,
            Some(Failure::Truncated { .. } | Failure::Transport(_)) => ErrorKind::Network,
            // A complete reply that object_store could not use (unparsable listing, bad
            // headers), or a local refusal: retrying the same request cannot help.
            None => ErrorKind::Permanent,
        },
    }
}

/// The error text with its source chain (object_store messages often hide the server's reply
/// or the OS error one level down).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    msg
}

/// One line per error: drop the XML declaration of error bodies and fold line breaks.
pub fn tidy(msg: &str) -> String {
    let mut s = msg.to_string();
    while let Some(i) = s.find("<?xml") {
        match s[i..].find("?>") {
            Some(j) => s.replace_range(i..i + j + 2, ""),
            None => break,
        }
    }
    s.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Our error for `e`, raised by `op` on `what` (a URL-like name without secrets).
pub fn to_error(e: &object_store::Error, op: &str, what: &str) -> Error {
    let msg = tidy(&error_chain(e));
    match kind(e) {
        ErrorKind::NotFound => Error::not_found(format!("object not found: {what}: {msg}")),
        ErrorKind::AlreadyExists => {
            Error::new(ErrorKind::AlreadyExists, format!("object already exists: {what}: {msg}"))
        }
        k => Error::new(k, format!("{op} {what}: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::client::{HttpError, HttpErrorKind};

    fn generic(f: Failure) -> object_store::Error {
        // The shape object_store produces: Generic { source: … → HttpError → our Failure }.
        object_store::Error::Generic { store: "S3", source: Box::new(HttpError::new(HttpErrorKind::Request, f)) }
    }

    #[test]
    fn typed_variants_map_directly() {
        let nf = object_store::Error::NotFound { path: "k".into(), source: "x".into() };
        assert_eq!(kind(&nf), ErrorKind::NotFound);
        let e = to_error(&nf, "get", "s3://b/k");
        assert!(e.message.starts_with("object not found: s3://b/k"), "{e:?}");
        let pd = object_store::Error::PermissionDenied { path: "k".into(), source: "AccessDenied".into() };
        assert_eq!(kind(&pd), ErrorKind::Auth);
        let ae = object_store::Error::AlreadyExists { path: "k".into(), source: "x".into() };
        assert_eq!(to_error(&ae, "put", "s3://b/k").kind, ErrorKind::AlreadyExists);
        let pf = object_store::Error::Precondition { path: "k".into(), source: "x".into() };
        assert_eq!(kind(&pf), ErrorKind::AlreadyExists);
        assert_eq!(kind(&object_store::Error::NotImplemented), ErrorKind::Permanent);
    }

    #[test]
    fn statuses_decide_transient_versus_permanent() {
        let st = |status: u16, body: &str| generic(Failure::Status { status, body: body.into() });
        assert_eq!(kind(&st(500, "")), ErrorKind::Network);
        assert_eq!(kind(&st(503, "SlowDown")), ErrorKind::Network);
        assert_eq!(kind(&st(429, "")), ErrorKind::Network);
        assert_eq!(kind(&st(400, "<Error><Code>InvalidArgument</Code></Error>")), ErrorKind::Permanent);
        assert_eq!(kind(&st(400, "<Error><Code>ExpiredToken</Code></Error>")), ErrorKind::Auth);
        assert_eq!(kind(&st(416, "")), ErrorKind::Permanent);
        assert_eq!(kind(&st(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>")), ErrorKind::Auth);
        assert_eq!(kind(&st(401, "")), ErrorKind::Auth);
        assert_eq!(status(&st(416, "")), Some(416));
        // A key with the digits 500 in it is not a server error: only the type counts.
        let g = object_store::Error::Generic { store: "S3", source: "GET /db/0000000000000500.ltx: bad XML".into() };
        assert_eq!(kind(&g), ErrorKind::Permanent);
        assert_eq!(status(&g), None);
    }

    #[test]
    fn timeouts_truncation_and_transport_are_transient() {
        use std::time::Duration;
        assert_eq!(kind(&generic(Failure::NoFirstByte(Duration::from_secs(1)))), ErrorKind::Network);
        assert_eq!(kind(&generic(Failure::Stalled(Duration::from_secs(1)))), ErrorKind::Network);
        let t = generic(Failure::Truncated { expected: 10, got: 3 });
        assert_eq!(kind(&t), ErrorKind::Network);
        assert!(to_error(&t, "get", "s3://b/k").message.contains("truncated: 3 of 10 bytes"));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let tr = generic(Failure::Transport(HttpError::new(HttpErrorKind::Interrupted, io)));
        assert_eq!(kind(&tr), ErrorKind::Network);
    }

    #[test]
    fn error_bodies_are_folded_into_one_line() {
        let m = "GET x - 403 Forbidden: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code></Error>\n";
        assert_eq!(tidy(m), "GET x - 403 Forbidden: <Error><Code>AccessDenied</Code></Error>");
        assert_eq!(s3_error_code("<Error><Code> ExpiredToken </Code></Error>"), Some("ExpiredToken"));
        assert_eq!(s3_error_code("nothing"), None);
    }
}
