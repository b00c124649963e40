//! The SCIM 2.0 service provider (RFC 7643, 7644) that `provisioner run`
//! serves under `/scim/v2` when `[scim] listen` is set, so that an
//! identity provider (PingOne, Entra ID, Okta) can push people and groups
//! into the directory. It writes through [`crate::directory`], never around
//! it: a person made over SCIM is the same kind of person as one imported
//! from a file, and every write advances the change sequence that the
//! scheduler follows.

mod discovery;
mod error;
pub mod filter;
mod group;
mod http;
pub mod patch;
mod tls;
mod user;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::tls::TlsFiles;
pub use error::ScimError;
pub use http::{DEFAULT_MAX_SCAN, ScimState};

/// The URL of the resource `id` of `kind` (`Users`, `Groups`) under
/// `base`: an id imported from a file may hold any character, and goes in
/// the path as one segment.
pub(crate) fn location(base: &str, kind: &str, id: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    format!("{base}/{kind}/{}", utf8_percent_encode(id, SEGMENT))
}

/// SCIM's media type (RFC 7644 §8.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// Serves SCIM on `addr`: HTTPS with `tls`, else plain HTTP, which the
/// configuration allows on loopback only. Returns the bound address and
/// the server's task.
pub async fn serve(
    addr: SocketAddr,
    tls: Option<TlsFiles>,
    state: impl FnOnce(SocketAddr) -> ScimState,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    // The pair is loaded before the port is taken: a bad one fails `run`
    // before anything listens.
    let acceptor = tls.map(tls::Acceptor::new).transpose()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = http::router(Arc::new(state(bound)));
    let task = match acceptor {
        Some(acceptor) => tokio::spawn(tls::serve(listener, acceptor, app)),
        None => tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the SCIM server stopped");
            }
        }),
    };
    Ok((bound, task))
}

/// Why the SCIM server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] crate::config::tls::TlsError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
