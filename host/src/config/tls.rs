//! The certificate and private key a server of ours presents, read from
//! the PEM files the operator names. They are checked when the
//! configuration is (`provisioner check`, and `run` before it listens), and
//! read again by the server when they change, so that a renewed
//! certificate is served without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Where the certificate chain and its key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates, the server's own first, then its intermediates.
    pub certificate: PathBuf,
    /// The PEM private key of the first certificate.
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{path} holds no PEM certificate; expected the server's certificate, then its intermediates, each as -----BEGIN CERTIFICATE-----"
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "{path} holds no PEM private key; expected one PKCS#8 (-----BEGIN PRIVATE KEY-----), PKCS#1 or SEC1 key"
    )]
    NoKey { path: PathBuf },
    #[error(
        "{path} is readable by every user of this machine (mode {mode:o}); the private key must not be: chmod 600 it (640 to share it with a group)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path}: the private key is not one TLS can use ({reason})")]
    UnusableKey { path: PathBuf, reason: String },
    #[error("the key in {key} does not belong to the certificate in {certificate} ({reason})")]
    Mismatch {
        certificate: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// What identifies a file's contents without reading it: a certificate
/// renewed in place, renamed into place or swapped behind a symbolic link
/// changes one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Stamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        })
    }
}

impl TlsFiles {
    /// The files' stamps, read before they are loaded: a change made while
    /// loading then shows at the next look.
    pub fn stamps(&self) -> (Option<Stamp>, Option<Stamp>) {
        (Stamp::of(&self.certificate), Stamp::of(&self.key))
    }

    /// Reads and checks the pair: certificates that parse, a key no other
    /// user of the machine can read, and a key that matches the first
    /// certificate.
    pub fn load(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        let certificate = read(&self.certificate)?;
        let chain = CertificateDer::pem_slice_iter(&certificate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Unreadable {
                path: self.certificate.clone(),
                reason: format!("not PEM certificates: {e}"),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.certificate.clone(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.key)
                .map_err(|e| TlsError::Unreadable {
                    path: self.key.clone(),
                    reason: e.to_string(),
                })?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o007 != 0 {
                return Err(TlsError::TooOpen {
                    path: self.key.clone(),
                    mode,
                });
            }
        }
        let key = read(&self.key)?;
        let key = match PrivateKeyDer::from_pem_slice(&key) {
            Ok(key) => key,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err(TlsError::NoKey {
                    path: self.key.clone(),
                });
            }
            Err(e) => {
                return Err(TlsError::Unreadable {
                    path: self.key.clone(),
                    reason: format!("not a PEM private key: {e}"),
                });
            }
        };
        let signing =
            provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| TlsError::UnusableKey {
                    path: self.key.clone(),
                    reason: e.to_string(),
                })?;
        let pair = CertifiedKey::new(chain, signing);
        match pair.keys_match() {
            Ok(()) => Ok(Arc::new(pair)),
            Err(e) => Err(TlsError::Mismatch {
                certificate: self.certificate.clone(),
                key: self.key.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The cryptography our servers use: the provider reqwest already brings,
/// so that the binary carries one.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
