//! TLS origination: a cluster's `tls` settings -> a rustls [`ClientConfig`] ([`ClientTls`]),
//! and the client side of a TLS connection to an upstream endpoint ([`connect`]), which is
//! the same owned-buffer [`TlsStream`] as the server side.
//!
//! What this module owns: the trust anchors (the `ca` bundle, else Mozilla's list from
//! `webpki-roots`, compiled in), server certificate
//! verification (on by default; the name checked is `sni`, else the endpoint's IP address as
//! an IP subjectAltName), the optional client certificate, ALPN, TLS 1.2 and 1.3 with the
//! `ring` provider, client session resumption (rustls's in-memory store, shared by the
//! workers), and sorting a failed handshake into Envoy's `ssl.*` outcomes. What it does not
//! do: the operating system's trust store, certificate reload without a configuration
//! reload, OCSP or CRLs. Specs: RFC 8446, RFC 5246, RFC 6066
//! section 3 (SNI), RFC 7301 (ALPN), RFC 6125 / RFC 9525 (name checks, done by webpki).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use monoio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::version::{TLS12, TLS13};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, Connection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};

use super::error::{TlsConfigError, TlsError};
use super::server::{read_chain, read_key};
use super::stream::{TlsStream, start};

/// Validated `tls` settings of a cluster, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// Server name sent (SNI) and checked against the certificate; `None`: no SNI, and the
    /// certificate must name the endpoint's IP address.
    pub sni: Option<String>,
    /// PEM file of the trust anchors the upstream's chain must lead to; `None`: Mozilla's CA
    /// list (`webpki-roots`).
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM, leaf first) and its key, presented when the upstream
    /// asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// ALPN protocol ids offered, in preference order; empty: no ALPN.
    pub alpn: Vec<Vec<u8>>,
    /// Verify the upstream's certificate chain and name. Off only for testing setups: any
    /// certificate is accepted then (the handshake's signatures are still checked).
    pub verify: bool,
    /// The connection is only usable when ALPN agreed on this protocol (HTTP/2 clusters
    /// require `h2`).
    pub required_alpn: Option<Vec<u8>>,
}

/// A cluster's built TLS client side. Cloning shares the rustls configuration (and its
/// session resumption store).
///
/// Two are equal when they were built from equal settings and the files held the same
/// certificates and key: a reload keeps an unchanged cluster's pooled connections, but a
/// cluster whose files were replaced on disk gets the new contents and new connections.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    sni: Option<ServerName<'static>>,
    required_alpn: Option<Vec<u8>>,
    settings: ClientTlsSettings,
    /// A hash of the DER of what the files held (CA certificates, client chain and key),
    /// rather than a second copy of the key.
    files: u64,
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings && self.files == other.files
    }
}

impl ClientTls {
    /// Reads the files and builds the client configuration. Errors name the field (relative
    /// to the `tls` table) and, for files, the file.
    pub fn build(settings: &ClientTlsSettings) -> Result<Self, TlsConfigError> {
        let mut files = DefaultHasher::new();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let sni = match &settings.sni {
            None => None,
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| TlsConfigError::new("sni", format!("{name:?}: {e}")))?,
            ),
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&TLS13, &TLS12])
            .map_err(|e| TlsConfigError::new("tls", format!("no usable protocol version: {e}")))?;
        let builder = match (&settings.ca, settings.verify) {
            (_, false) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(
                    provider.signature_verification_algorithms,
                ))),
            (Some(ca), true) => builder.with_root_certificates(read_roots(ca, &mut files)?),
            (None, true) => builder.with_root_certificates(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
        };
        let mut config = match &settings.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = read_chain(cert, "cert")?;
                let key_der = read_key(key, "key")?;
                chain.hash(&mut files);
                key_der.secret_der().hash(&mut files);
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    TlsConfigError::new(
                        "key",
                        format!("{} does not fit {}: {e}", key.display(), cert.display()),
                    )
                })?
            }
        };
        config.alpn_protocols = settings.alpn.clone();
        Ok(Self {
            config: Arc::new(config),
            sni,
            required_alpn: settings.required_alpn.clone(),
            settings: settings.clone(),
            files: files.finish(),
        })
    }

    /// The name a connection to `ip` verifies (and sends as SNI when it is a DNS name).
    fn server_name(&self, ip: IpAddr) -> ServerName<'static> {
        match &self.sni {
            Some(name) => name.clone(),
            None => ServerName::IpAddress(ip.into()),
        }
    }
}

/// Runs the client side of a TLS handshake with the endpoint at `ip` on `tcp`, done by
/// `deadline` (the worker's coarse timer) or [`TlsError::Timeout`]. A configuration that
/// requires an ALPN protocol fails with [`TlsError::Handshake`] (`NoApplicationProtocol`)
/// when the upstream did not agree on it.
pub(crate) async fn connect(
    tcp: TcpStream,
    tls: &ClientTls,
    ip: IpAddr,
    deadline: Instant,
) -> Result<TlsStream, TlsError> {
    let conn = ClientConnection::new(tls.config.clone(), tls.server_name(ip))
        .map_err(|reason| TlsError::Handshake { reason })?;
    let stream = start(tcp, Connection::Client(conn), BytesMut::new(), deadline).await?;
    if let Some(want) = &tls.required_alpn
        && stream.alpn().as_ref() != Some(want)
    {
        return Err(TlsError::Handshake {
            reason: rustls::Error::NoApplicationProtocol,
        });
    }
    Ok(stream)
}

/// How a failed upstream handshake is counted (Envoy's `ssl.*` names under the cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The certificate does not name the server (`ssl.fail_verify_san`).
    Name,
    /// The chain did not verify: unknown issuer, expired, bad signature, ...
    /// (`ssl.fail_verify_error`).
    Verify,
    /// Any other failure: alerts, no shared parameters, timeouts, resets.
    Other,
}

impl Failure {
    /// Sorts a failed handshake.
    pub(crate) fn of(e: &TlsError) -> Self {
        match e {
            TlsError::Handshake {
                reason: rustls::Error::InvalidCertificate(c),
            } => match c {
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Self::Name,
                _ => Self::Verify,
            },
            _ => Self::Other,
        }
    }
}

/// Reads the trust anchors in `path`, adding their DER to `files`.
fn read_roots(path: &Path, files: &mut DefaultHasher) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    let chain = read_chain(path, "ca")?;
    chain.hash(files);
    for cert in chain {
        roots.add(cert).map_err(|e| {
            TlsConfigError::new(
                "ca",
                format!("{}: not a CA certificate: {e}", path.display()),
            )
        })?;
    }
    Ok(roots)
}

/// `verify = false`: accepts any certificate chain and name, but still checks that the
/// handshake was signed by the certificate's key.
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
