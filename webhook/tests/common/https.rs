//! A minimal HTTPS (and plain HTTP) client for tests and the benchmark: one keep-alive HTTP/1.1
//! connection over rustls, trusting one CA. Loopback only.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// A rustls client configuration trusting `ca_pem`.
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every handshake in full, so a rotated certificate is seen on the next connection (a resumed
    // session would carry the certificate of the session it resumes).
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One open HTTPS connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// The server's leaf certificate as presented in the handshake.
    pub peer_certificate: Vec<u8>,
}

impl Connection {
    /// Connects to `address` over TLS, checking the certificate for `localhost`.
    pub async fn open(
        address: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Connection> {
        let tcp = TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        let peer_certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Connection {
            sender,
            peer_certificate,
        })
    }

    /// POSTs `body` to `path`; returns status and body.
    pub async fn post(&mut self, path: &str, body: Vec<u8>) -> std::io::Result<(u16, Vec<u8>)> {
        self.sender.ready().await.map_err(std::io::Error::other)?;
        let request = hyper::Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        exchange(&mut self.sender, request).await
    }
}

/// Sends `request` on an open connection: the status and the whole body.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, body.to_vec()))
}

/// Writes raw bytes over TLS and returns the response's status line.
pub async fn raw_exchange(
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    request: &[u8],
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = TcpStream::connect(address).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(request).await?;
    tls.flush().await?;
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut buffer))
        .await
        .map_err(std::io::Error::other)??;
    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// A plain-HTTP GET (the admin port); returns status and body.
pub async fn get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let tcp = TcpStream::connect(address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = exchange(&mut sender, request).await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
