//! The byte pipe under MQTT: TCP, TLS (rustls), or a WebSocket over either,
//! with connect errors a person can act on.
//!
//! TLS follows MQTT-T Appendix B by construction: rustls speaks TLS 1.2 and
//! 1.3 only (1.3 preferred), its TLS 1.2 suites are all ECDHE with AEAD
//! (none of RFC 7540's blacklist), and a client never sends 0-RTT data
//! unless asked to, which we do not.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::config::{BrokerUrl, ClientConfig, Scheme};
use crate::error::{Error, Result};

/// A TCP stream, with TLS when the URL asks for it.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open byte pipe to the broker.
pub(crate) enum Transport {
    /// MQTT directly over TCP or TLS.
    Stream(Stream),
    /// MQTT in binary WebSocket frames (sub-protocol `mqtt`).
    WebSocket(Box<WebSocketStream<Stream>>),
}

impl Transport {
    /// Connects to `url` within the configured connect timeout: TCP, then
    /// TLS, then the WebSocket upgrade, each failure named.
    pub(crate) async fn connect(url: &BrokerUrl, config: &ClientConfig) -> Result<Self> {
        let timeout = config.connect_timeout();
        let secs = config.connect_timeout_secs;
        let fut = Self::connect_inner(url, config);
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::Connect(format!(
                "cannot connect to {}: no answer within {secs} s (connect_timeout_secs)",
                url.original
            ))),
        }
    }

    async fn connect_inner(url: &BrokerUrl, config: &ClientConfig) -> Result<Self> {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| {
                Error::Connect(format!(
                    "cannot connect to {}: {}",
                    url.original,
                    io_reason(&e)
                ))
            })?;
        // Every OpenC2 exchange is a few small packets: never hold them back.
        tcp.set_nodelay(true)
            .map_err(|e| Error::Connect(format!("cannot set TCP_NODELAY: {e}")))?;
        let stream = if url.tls() {
            Stream::Tls(Box::new(tls_handshake(tcp, url, config).await?))
        } else {
            Stream::Plain(tcp)
        };
        if !matches!(url.scheme, Scheme::Ws | Scheme::Wss) {
            return Ok(Self::Stream(stream));
        }
        let scheme = if url.tls() { "wss" } else { "ws" };
        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        let uri = format!("{scheme}://{host}:{}{}", url.port, url.path);
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(uri.as_str())
            .map_err(|e| Error::Config(format!("broker URL '{}': {e}", url.original)))?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static("mqtt"),
        );
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| {
                Error::Connect(format!(
                    "cannot connect to {}: WebSocket upgrade failed: {e}",
                    url.original
                ))
            })?;
        Ok(Self::WebSocket(Box::new(ws)))
    }

    /// The plain TCP stream under MQTT, if that is all there is (no TLS, no
    /// WebSocket): any thread may then write to it without waiting.
    pub(crate) fn into_tcp(self) -> std::result::Result<TcpStream, Self> {
        match self {
            Self::Stream(Stream::Plain(tcp)) => Ok(tcp),
            other => Err(other),
        }
    }

    /// Reads what is available into `buf` (appending); `Ok(0)` at end of stream.
    pub(crate) async fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Self::Stream(s) => {
                buf.reserve(16 * 1024);
                s.read_buf(buf).await
            }
            Self::WebSocket(ws) => loop {
                match ws.next().await {
                    None => return Ok(0),
                    Some(Ok(WsMessage::Binary(b))) => {
                        buf.extend_from_slice(&b);
                        return Ok(b.len());
                    }
                    Some(Ok(WsMessage::Close(_))) => return Ok(0),
                    // Ping/pong are answered by tungstenite; text is not MQTT.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(std::io::Error::other(e)),
                }
            },
        }
    }

    /// Writes `bytes` whole.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Stream(s) => s.write_all(bytes).await,
            Self::WebSocket(ws) => ws
                .send(WsMessage::Binary(bytes.to_vec().into()))
                .await
                .map_err(std::io::Error::other),
        }
    }

    /// Closes the write side (after a DISCONNECT), ignoring errors.
    pub(crate) async fn shutdown(&mut self) {
        match self {
            Self::Stream(s) => {
                let _ = s.shutdown().await;
            }
            Self::WebSocket(ws) => {
                let _ = SinkExt::close(ws.as_mut()).await;
            }
        }
    }
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            "connection timed out".to_owned()
        }
        std::io::ErrorKind::ConnectionReset => "connection reset by the broker".to_owned(),
        _ => e.to_string(),
    }
}

async fn tls_handshake(
    tcp: TcpStream,
    url: &BrokerUrl,
    config: &ClientConfig,
) -> Result<TlsStream<TcpStream>> {
    let tls = tls_config(config)?;
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| Error::Config(format!("broker URL '{}': {e}", url.original)))?;
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Tls(format!("{} for {}", tls_reason(&e), url.host)))
}

/// What a failed handshake means, in OpenSSL's words where they are the
/// ones people search for.
fn tls_reason(e: &std::io::Error) -> String {
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the handshake (not a TLS port, or no protocol version or cipher suite in common?)".to_owned()
            }
            _ => io_reason(e),
        };
    };
    match inner {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                rustls::CertificateError::UnknownIssuer => {
                    "unable to get local issuer certificate".to_owned()
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "hostname mismatch".to_owned()
                }
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => {
                    "certificate has expired".to_owned()
                }
                other => format!("{other:?}").to_lowercase(),
            };
            format!("certificate verify failed ({why})")
        }
        rustls::Error::AlertReceived(alert) => {
            format!(
                "the server refused the handshake ({alert:?} alert; a client certificate required, or no protocol version or cipher suite in common?)"
            )
        }
        rustls::Error::PeerIncompatible(p) => {
            format!(
                "no protocol version or cipher suite in common with the server (TLS 1.2+ with forward-secret AEAD suites required): {p:?}"
            )
        }
        other => other.to_string(),
    }
}

/// The rustls client configuration: TLS 1.3 and 1.2 only, the broker's
/// certificate checked against `ca_file` (or the system's roots), and the
/// client certificate for mutual TLS.
fn tls_config(config: &ClientConfig) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let builder = if config.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification::new()))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| Error::Config(format!("TLS CA file {}: {e}", path.display())))?;
                if certs.is_empty() {
                    return Err(Error::Config(format!(
                        "TLS CA file {}: no PEM certificate in it",
                        path.display()
                    )));
                }
                for c in certs {
                    roots.add(c).map_err(|e| {
                        Error::Config(format!("TLS CA file {}: {e}", path.display()))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    let tls = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::Config(format!("TLS certificate file {}: {e}", cert.display()))
                })?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Config(format!("TLS key file {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("TLS client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(tls))
}

/// rustls on *ring*: no C toolchain or cmake needed to build it. (rustls
/// deprecates *ring*'s provider for lacking post-quantum key exchange, which
/// MQTT-T does not ask for; aws-lc-rs would add a C build to every binding.)
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// `insecure_skip_verify`: accepts any certificate (testing only), still
/// checking the handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl NoVerification {
    fn new() -> Self {
        Self(Arc::new(provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
