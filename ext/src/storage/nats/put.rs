//! Create-only put, atomic: the object store's own put cannot be conditional, so this writes an
//! object the way every NATS client does (chunks on `$O.<bucket>.C.<nuid>`, then one meta
//! message on `$O.<bucket>.M.<base64url(name)>` with `Nats-Rollup: sub`), and publishes the
//! meta message with `Nats-Expected-Last-Subject-Sequence`: 0 when the name was never used,
//! or the sequence of its delete marker. JetStream refuses the publish if another writer's
//! meta message came in between, so of two racing creators exactly one wins; the loser's
//! chunks are purged.

use async_nats::HeaderMap;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use bytes::Bytes;
use ltxvfs::{Error, ErrorKind, Result};

use super::connection::Conn;
use super::errors;

/// Chunk size of NATS object stores (the clients' default).
pub const CHUNK_SIZE: usize = 128 * 1024;

/// The meta subject of an object (names are base64url-encoded, padded, as in every client).
pub fn meta_subject(bucket: &str, name: &str) -> String {
    format!("$O.{bucket}.M.{}", URL_SAFE.encode(name))
}

/// `SHA-256=<base64url>` of the object, as the clients record and check it.
pub fn digest(data: &[u8]) -> String {
    format!("SHA-256={}", URL_SAFE.encode(ring::digest::digest(&ring::digest::SHA256, data)))
}

/// The meta message body (the object info JSON of the NATS object-store protocol).
pub fn meta_json(
    bucket: &str,
    name: &str,
    nuid: &str,
    data: &[u8],
    headers: &HeaderMap,
    mtime: &str,
) -> Result<Vec<u8>> {
    let headers = serde_json::to_value(headers).map_err(|e| Error::internal(format!("nats headers: {e}")))?;
    let info = serde_json::json!({
        "name": name,
        "headers": headers,
        "options": { "max_chunk_size": CHUNK_SIZE },
        "bucket": bucket,
        "nuid": nuid,
        "size": data.len(),
        "chunks": data.len().div_ceil(CHUNK_SIZE),
        "mtime": mtime,
        "digest": digest(data),
    });
    serde_json::to_vec(&info).map_err(|e| Error::internal(format!("nats object info: {e}")))
}

fn exists_error(shown: &str) -> Error {
    Error::new(ErrorKind::AlreadyExists, format!("nats create {shown}: already exists"))
}

/// The sequence the meta subject must still end at for the create to win (0: never used).
async fn expected_sequence(conn: &Conn, subject: &str, shown: &str) -> Result<u64> {
    match conn.stream.get_last_raw_message_by_subject(subject).await {
        Ok(msg) => {
            let deleted = serde_json::from_slice::<serde_json::Value>(&msg.payload)
                .ok()
                .and_then(|v| v.get("deleted").and_then(serde_json::Value::as_bool))
                .unwrap_or(false);
            if deleted { Ok(msg.sequence) } else { Err(exists_error(shown)) }
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(Error::network(format!("nats create {shown}: looking up the name: {e}"))),
    }
}

pub async fn create(conn: &Conn, bucket: &str, name: &str, shown: &str, data: Bytes, headers: HeaderMap) -> Result<()> {
    let subject = meta_subject(bucket, name);
    let expected = expected_sequence(conn, &subject, shown).await?;
    let nuid = nuid::next().to_string();
    let chunk_subject = format!("$O.{bucket}.C.{nuid}");
    let result = async {
        for start in (0..data.len()).step_by(CHUNK_SIZE) {
            let chunk = data.slice(start..(start + CHUNK_SIZE).min(data.len()));
            let ack = conn.js.publish(chunk_subject.clone(), chunk).await;
            ack.map_err(|e| Error::new(errors::publish_kind(e.kind()), format!("nats create {shown}: chunk: {e}")))?
                .await
                .map_err(|e| {
                    Error::new(errors::publish_kind(e.kind()), format!("nats create {shown}: chunk ack: {e}"))
                })?;
        }
        let mtime = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let body = meta_json(bucket, name, &nuid, &data, &headers, &mtime)?;
        let mut hdrs = HeaderMap::new();
        hdrs.insert("Nats-Rollup", "sub");
        hdrs.insert("Nats-Expected-Last-Subject-Sequence", expected.to_string().as_str());
        let publish = |e: async_nats::jetstream::context::PublishError| match errors::publish_kind(e.kind()) {
            ErrorKind::AlreadyExists => exists_error(shown),
            kind => Error::new(kind, format!("nats create {shown}: meta: {e}")),
        };
        conn.js
            .publish_with_headers(subject.clone(), hdrs, body.into())
            .await
            .map_err(publish)?
            .await
            .map_err(publish)?;
        Ok(())
    }
    .await;
    if result.is_err() {
        // Do not leave the loser's (or a failed writer's) chunks behind.
        if let Err(e) = conn.stream.purge().filter(&chunk_subject).await {
            tracing::debug!(error = %e, subject = %chunk_subject, "purging the chunks of a failed create");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_pieces() {
        // base64url with padding, as nats.go's `base64.URLEncoding`.
        assert_eq!(meta_subject("b", "ltx/0/a"), "$O.b.M.bHR4LzAvYQ==");
        // SHA-256 of "abc".
        assert_eq!(digest(b"abc"), "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=");
        let mut h = HeaderMap::new();
        h.insert("Litestream-Timestamp", "2026-11-22T06:16:31.755Z");
        let data = vec![1u8; CHUNK_SIZE + 1];
        let body = meta_json("b", "ltx/0/a", "NUID", &data, &h, "2026-11-22T06:16:32Z").unwrap();
        let info: async_nats::jetstream::object_store::ObjectInfo = serde_json::from_slice(&body).unwrap();
        assert_eq!((info.name.as_str(), info.bucket.as_str(), info.nuid.as_str()), ("ltx/0/a", "b", "NUID"));
        assert_eq!((info.size, info.chunks, info.deleted), (CHUNK_SIZE + 1, 2, false));
        let ts = info.headers.as_ref().and_then(|h| h.get("Litestream-Timestamp")).map(|v| v.as_str().to_string());
        assert_eq!(ts.as_deref(), Some("2026-11-22T06:16:31.755Z"));
        assert!(info.modified.is_some());
    }
}
