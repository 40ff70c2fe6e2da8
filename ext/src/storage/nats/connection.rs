//! The client connection and the bucket's object store, opened on first use and kept: the
//! async-nats client reconnects by itself after a drop. While it is disconnected every call
//! fails at once with a Network error instead of waiting out a timeout.

use std::sync::Arc;

use async_nats::jetstream::object_store::ObjectStore;
use async_nats::{Client, ConnectOptions, jetstream};
use ltxvfs::retry::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use ltxvfs::{Error, Result};

use super::config::{Auth, NatsConfig};
use super::errors;

/// One logged-in client and the bucket it serves.
pub struct Conn {
    pub client: Client,
    pub js: jetstream::Context,
    /// The bucket's stream (`OBJ_<bucket>`), for raw meta lookups.
    pub stream: jetstream::stream::Stream,
    pub store: ObjectStore,
}

/// Configuration plus the connection, once made.
pub struct Remote {
    pub cfg: NatsConfig,
    slot: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

impl Remote {
    pub fn new(cfg: NatsConfig) -> Self {
        Self { cfg, slot: tokio::sync::Mutex::new(None) }
    }

    /// The connection, connecting first if there is none (one attempt per call: retries are
    /// `ltxvfs::retrying_storage`'s job).
    pub async fn conn(&self) -> Result<Arc<Conn>> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.client.connection_state() == async_nats::connection::State::Disconnected {
                return Err(Error::network(format!(
                    "nats {}: disconnected from the server (reconnecting)",
                    self.cfg.describe()
                )));
            }
            return Ok(Arc::clone(c));
        }
        let conn = Arc::new(connect(&self.cfg).await?);
        *slot = Some(Arc::clone(&conn));
        Ok(conn)
    }
}

/// A `.creds` text holding a user JWT and its seed (how async-nats takes the pair).
fn creds_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        jwt.trim(),
        seed.trim()
    )
}

async fn options(cfg: &NatsConfig) -> Result<ConnectOptions> {
    let mut opts = ConnectOptions::new()
        .name("ltxvfs")
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .event_callback(|event| async move { tracing::debug!(%event, "nats client event") });
    opts = match &cfg.auth {
        Auth::None => opts,
        Auth::JwtAndSeed { jwt, seed } => opts
            .credentials(&creds_text(jwt, seed))
            .map_err(|e| Error::config(format!("nats jwt/seed cannot be used: {e}")))?,
        Auth::CredsFile(path) => opts
            .credentials_file(path)
            .await
            .map_err(|e| Error::config(format!("cannot use nats creds file {path}: {e}")))?,
        Auth::NKey(seed) => opts.nkey(seed.clone()),
        Auth::UserPassword { user, password } => opts.user_and_password(user.clone(), password.clone()),
        Auth::Token(token) => opts.token(token.clone()),
    };
    if cfg.tls.required {
        opts = opts.require_tls(true);
    }
    for ca in &cfg.tls.root_cas {
        opts = opts.add_root_certificates(ca.into());
    }
    if let Some((cert, key)) = &cfg.tls.client_cert {
        opts = opts.add_client_certificate(cert.into(), key.into());
    }
    Ok(opts)
}

/// Connect (TCP, the server's INFO, CONNECT and its answer) within the connect timeout (a
/// healthy server answers in milliseconds; async-nats bounds only the TCP part), then look
/// the bucket up within the request timeout.
async fn connect(cfg: &NatsConfig) -> Result<Conn> {
    let target = cfg.server_url();
    let opts = options(cfg).await?;
    let client = tokio::time::timeout(CONNECT_TIMEOUT, opts.connect(target.as_str()))
        .await
        .map_err(|_| errors::timed_out("connect to", &target, CONNECT_TIMEOUT))?
        .map_err(|e| errors::connect(&target, &e))?;
    let js = jetstream::new(client.clone());
    let lookup = async {
        let stream = js
            .get_stream(format!("OBJ_{}", cfg.bucket))
            .await
            .map_err(|e| errors::get_bucket(&target, &cfg.bucket, &e))?;
        let store = js
            .get_object_store(&cfg.bucket)
            .await
            .map_err(|e| Error::network(format!("nats object store {:?} on {target}: {e}", cfg.bucket)))?;
        Ok::<_, Error>((stream, store))
    };
    let (stream, store) = tokio::time::timeout(REQUEST_TIMEOUT, lookup)
        .await
        .map_err(|_| errors::timed_out("look up the bucket on", &target, REQUEST_TIMEOUT))??;
    Ok(Conn { client, js, stream, store })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_and_seed_make_a_creds_text_async_nats_accepts() {
        // A throwaway user seed (nkeys' documented test seed format: SU + base32).
        let seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU";
        let text = creds_text("eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5In0.e30.sig", seed);
        assert!(ConnectOptions::new().credentials(&text).is_ok(), "{text}");
    }
}
