//! HTTPS for the SCIM server: the operator's certificate and key
//! (`[scim.tls]`), read again when they change, so that a renewed
//! certificate is served without a restart, and a handshake that may take
//! no longer than [`HANDSHAKE`], so that a client that connects and says
//! nothing holds nothing but its own socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

use crate::config::tls::{Stamp, TlsError, TlsFiles, provider};

/// How long a client has for its TLS handshake, and then for its request
/// headers.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// The certificate in service, and the stamps of the files it came from.
#[derive(Debug)]
struct Loaded {
    pair: Arc<CertifiedKey>,
    stamps: (Option<Stamp>, Option<Stamp>),
}

/// Looks at the files' stamps at every handshake (two `stat` calls, next to
/// a handshake's cryptography) and loads them again when they changed. A
/// pair that fails to load (a certificate renewed before its key, say)
/// leaves the one in service serving, and is tried again at the next
/// handshake after the files change again.
#[derive(Debug)]
struct Reloading {
    files: TlsFiles,
    provider: Arc<rustls::crypto::CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl Reloading {
    fn current(&self) -> Arc<CertifiedKey> {
        // Nothing panics while holding the lock; were it poisoned, what it
        // holds is still a whole pair.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let stamps = self.files.stamps();
        if stamps != loaded.stamps {
            loaded.stamps = stamps;
            match self.files.load(&self.provider) {
                Ok(pair) => {
                    tracing::info!(
                        certificate = %self.files.certificate.display(),
                        "the SCIM server's certificate changed on disk; serving the new one"
                    );
                    loaded.pair = pair;
                }
                Err(error) => tracing::warn!(
                    %error,
                    "the SCIM server's certificate or key changed on disk but cannot be served; the previous pair stays in service"
                ),
            }
        }
        loaded.pair.clone()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The TLS side of the SCIM server, ready to accept connections.
#[derive(Clone)]
pub struct Acceptor(tokio_rustls::TlsAcceptor);

impl Acceptor {
    /// Loads the pair; an error names the file and what was expected.
    pub fn new(files: TlsFiles) -> Result<Acceptor, TlsError> {
        let provider = provider();
        let stamps = files.stamps();
        let pair = files.load(&provider)?;
        let resolver = Reloading {
            files,
            provider: provider.clone(),
            loaded: Mutex::new(Loaded { pair, stamps }),
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::UnusableKey {
                path: resolver.files.key.clone(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

/// Accepts connections until the task is dropped, each handshake and each
/// connection on a task of its own, so that one slow or hostile client
/// delays no other.
pub(super) async fn serve(listener: TcpListener, acceptor: Acceptor, app: Router) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, most likely: accepting again at once
                // would spin; the connections in hand finish meanwhile.
                tracing::warn!(%error, "the SCIM server could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.0.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "a TLS handshake with a SCIM client failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "a SCIM client did not finish its TLS handshake in time");
                    return;
                }
            };
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE);
            let service = hyper_util::service::TowerToHyperService::new(app);
            if let Err(error) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "a SCIM connection ended with an error");
            }
        });
    }
}
