//! TLS toward clients: the certificate and key from PEM files, and the client stream type that
//! is plain until the client's SSLRequest and TLS afterwards. The protocol decision ("the
//! client asked for TLS: upgrade now") is the core's ([`SessionEvent::StartTls`]); this module
//! only runs the rustls handshake (ring provider) on the socket.
//!
//! [`SessionEvent::StartTls`]: shardgate_core::session::SessionEvent::StartTls

use bytes::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;

/// Builds the TLS acceptor from a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1
/// or SEC1).
///
/// # Errors
/// A message naming the file that could not be read or used.
pub fn acceptor_from_pem(cert_path: &str, key_path: &str) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("cannot read TLS certificate {cert_path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad TLS certificate {cert_path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {cert_path}"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("cannot read TLS key {key_path}: {e}"))?;
    // ring, as DESIGN section 9 fixes (aws-lc-rs needs cmake and nasm to build); rustls
    // 0.23.48 deprecates it for lacking post-quantum key exchange, which we accept here.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate {cert_path} / key {key_path}: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS connector toward shards whose URL asks for TLS.
/// - `ca: None` (`?ssl=true`): MySQL's `ssl-mode=REQUIRED` — the connection is encrypted and
///   the server must prove it holds the key of the certificate it presents, but the
///   certificate itself is not verified;
/// - `ca: Some(file)` (`?ssl-ca=file`): MySQL's `ssl-mode=VERIFY_IDENTITY` — the certificate
///   must chain to a CA certificate of that PEM file and name the shard's host.
///
/// # Errors
/// The CA file cannot be read or holds no usable certificate.
pub fn shard_connector(ca: Option<&str>) -> Result<tokio_rustls::TlsConnector, String> {
    #[allow(deprecated)] // ring: see acceptor_from_pem
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match ca {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedCertificate(provider)))
            .with_no_client_auth(),
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("shard CA file {path}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("shard CA file {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("shard CA file {path}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("shard CA file {path}: no certificate in it"));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The protocol version and cipher suite a TLS handshake settled on, named as MySQL's
/// `Ssl_version` / `Ssl_cipher` show them (`TLSv1.3`, `TLS_AES_256_GCM_SHA384`; TLS 1.2
/// suites by their IANA names).
pub fn negotiated(conn: &rustls::ServerConnection) -> shardgate_core::session::TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => String::new(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let name = s
                .suite()
                .as_str()
                .map_or_else(|| format!("{:?}", s.suite()), str::to_string);
            name.replacen("TLS13_", "TLS_", 1)
        })
        .unwrap_or_default();
    shardgate_core::session::TlsInfo { version, cipher }
}

/// The server name presented to a shard: its host (a name or an IP address).
pub fn server_name(host: &str) -> rustls_pki_types::ServerName<'static> {
    rustls_pki_types::ServerName::try_from(host.to_string()).unwrap_or_else(|_| {
        rustls_pki_types::ServerName::try_from("shard").expect("a valid DNS name")
    })
}

/// Accepts any certificate chain, but still checks the handshake signatures against the
/// certificate presented (see [`shard_connector`]).
#[derive(Debug)]
struct UnverifiedCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for UnverifiedCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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

/// A stream that first yields bytes already read from it (the start of the client's TLS
/// handshake, received together with its SSLRequest), then reads the stream itself.
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.prefix.is_empty() {
            let n = me.prefix.len().min(buf.remaining());
            buf.put_slice(&me.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A client socket: plain, or TLS after the client's SSLRequest.
pub enum ClientStream<S> {
    Plain(S),
    Tls(Box<tokio_rustls::server::TlsStream<Prefixed<S>>>),
    /// Only while the TLS handshake runs (or after it failed): reads end, writes fail.
    Gone,
}

impl<S> ClientStream<S> {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }

    /// The socket itself, when nothing (TLS) sits between it and the session.
    pub fn plain(&self) -> Option<&S> {
        match self {
            ClientStream::Plain(s) => Some(s),
            _ => None,
        }
    }

    pub fn plain_mut(&mut self) -> Option<&mut S> {
        match self {
            ClientStream::Plain(s) => Some(s),
            _ => None,
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "client stream is gone")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ClientStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientStream::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClientStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ClientStream::Gone => Poll::Ready(Err(gone())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ClientStream::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientStream::Gone => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn prefixed_reads_the_prefix_first() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b" world").await.unwrap();
        drop(b);
        let mut p = Prefixed::new(Bytes::from_static(b"hello"), a);
        let mut s = String::new();
        p.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }

    #[test]
    fn missing_files_are_reported_by_name() {
        let e = acceptor_from_pem("/nonexistent/cert.pem", "/nonexistent/key.pem")
            .err()
            .unwrap();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }
}
