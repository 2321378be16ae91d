//! The serving certificate, read from files and read again when they change.
//!
//! Kubernetes rotates a mounted Secret by swapping a symbolic link, so the files are checked
//! (followed through links: size, modification time and inode) at every TLS handshake, and
//! reloaded when they differ. A half-written pair (certificate and key not matching) is refused
//! and the previous pair kept until the next handshake looks again.
//!
//! A handshake has a time limit ([`handshake`]): a client that opens a TCP connection and never
//! finishes the handshake would otherwise hold a task and a file descriptor for ever.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};
use crate::mirror::lock;

/// What identifies one version of a file.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata: Metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some((metadata.modified().ok()?, metadata.len(), inode))
}

#[derive(Debug)]
struct Loaded {
    stamps: (Stamp, Stamp),
    key: Arc<CertifiedKey>,
}

/// A [`ResolvesServerCert`] that reloads the certificate and key when their files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

impl ReloadingCert {
    /// Loads the pair now; fails when it cannot be read or does not match.
    pub fn new(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<ReloadingCert> {
        let stamps = (stamp(cert_path), stamp(key_path));
        let key = load(cert_path, key_path, &provider)?;
        Ok(ReloadingCert {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: Mutex::new(Loaded { stamps, key }),
        })
    }

    /// The pair to serve, reloaded first when the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        let mut current = lock(&self.current);
        if current.stamps != stamps {
            match load(&self.cert_path, &self.key_path, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                    *current = Loaded { stamps, key };
                }
                Err(error) => {
                    // Keep serving the previous pair; the next handshake looks again.
                    tracing::warn!(%error, "new certificate not usable yet; keeping the previous one");
                }
            }
        }
        current.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>> {
    let tls = |what, path: &Path, reason: String| Error::Tls {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| tls("certificate", cert_path, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| tls("certificate", cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls(
            "certificate",
            cert_path,
            "no PEM certificate in the file".into(),
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| tls("key", key_path, e.to_string()))?;
    let certified = CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        tls(
            "key",
            key_path,
            format!("does not fit the certificate: {e}"),
        )
    })?;
    Ok(Arc::new(certified))
}

/// A rustls server configuration serving HTTP/1.1 with the reloading certificate.
pub fn server_config(
    resolver: Arc<ReloadingCert>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            what: "certificate",
            path: PathBuf::new(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The crypto provider (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a TLS handshake with a client did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client did not finish the handshake in time (it sent nothing, or too slowly).
    #[error("the client did not complete the TLS handshake within {} ms", within.as_millis())]
    TimedOut {
        /// The limit it was given.
        within: Duration,
    },
    /// The handshake failed: not TLS, no common cipher suite, the connection dropped.
    #[error("the TLS handshake failed")]
    Failed {
        /// What rustls or the socket said.
        #[source]
        source: std::io::Error,
    },
}

/// Completes the server side of a TLS handshake on `stream`, giving up after `within`, so that
/// a client which connects and stays silent cannot hold the connection's task for ever.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    within: Duration,
) -> std::result::Result<TlsStream<TcpStream>, HandshakeError> {
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(source)) => Err(HandshakeError::Failed { source }),
        // Dropping the pending handshake closes the socket.
        Err(_) => Err(HandshakeError::TimedOut { within }),
    }
}
