//! The TLS stage of a connection on a listener with `[listeners.tls]`: after the optional
//! PROXY protocol header, run the server handshake ([`crate::tls::accept`]) within the
//! listener's `handshake_timeout`, count how it went, and hand the decrypted stream on.
//!
//! Stats (`listener.<name>.`, Envoy's names): `ssl.handshake`, `ssl.session_reused`,
//! `ssl.versions.TLSv1.2` / `ssl.versions.TLSv1.3` on success; `ssl.connection_error` for a
//! handshake that failed on a TLS error, a client that does not speak TLS (also
//! `ssl.not_tls`) or a socket error; `downstream_cx_transport_socket_connect_timeout` for a
//! handshake past its deadline. A client that just closes during the handshake counts only as
//! a closed connection.
//!
//! Client certificates (`client_ca`): a refused client also counts as
//! `ssl.fail_verify_no_cert` (none sent, required), `ssl.fail_verify_error` (did not verify)
//! or `ssl.fail_verify_san` (not in `client_allowed_names`); a client without a certificate
//! on an optional listener counts as `ssl.no_certificate`.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use monoio::net::TcpStream;
use rustls::{CertificateError, ProtocolVersion, ServerConfig};

use crate::local::Worker;
use crate::rt::timer;
use crate::tls::{self, TlsError, TlsStream};

/// What a listener needs to accept TLS: its rustls configuration and the handshake timeout.
pub(crate) struct Acceptor {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) timeout: Duration,
    /// The listener's TLS settings when they ask for client certificates (to describe the
    /// client's certificate for `x-forwarded-client-cert`).
    pub(crate) client_auth: Option<tls::ServerTls>,
}

impl Acceptor {
    /// The acceptor of a listener's TLS settings: ALPN as configured (HTTP listeners serve
    /// `h2` over TLS, TCP listeners offer what is listed).
    pub(crate) fn of(tls: &tls::ServerTls) -> Self {
        Self {
            config: tls.server_config(true).clone(),
            timeout: tls.handshake_timeout,
            client_auth: tls.client_auth().then(|| tls.clone()),
        }
    }
}

/// Runs the handshake on `tcp` (`first`: bytes already read after a PROXY header) and counts
/// it on listener `li`. `None`: it failed and the connection is closed (the caller counts the
/// connection as opened and destroyed).
pub(crate) async fn handshake(
    worker: &Worker,
    li: usize,
    tcp: TcpStream,
    first: BytesMut,
    acceptor: Acceptor,
    peer: SocketAddr,
) -> Option<TlsStream> {
    let deadline = timer::coarse_now() + acceptor.timeout;
    let result = tls::accept(tcp, first, acceptor.config, deadline).await;
    let local = worker.local();
    let ls = local.listeners[li].stats();
    match result {
        Ok(stream) => {
            ls.ssl_handshake.inc();
            match stream.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => ls.ssl_versions_tls13.inc(),
                Some(ProtocolVersion::TLSv1_2) => ls.ssl_versions_tls12.inc(),
                _ => {}
            }
            if stream.is_resumed() {
                ls.ssl_session_reused.inc();
            }
            if let Some(server) = &acceptor.client_auth {
                match stream.peer_certificates() {
                    Some(chain) => stream
                        .set_client_identity(server.forwarded_client_cert(&chain).map(Rc::from)),
                    None => ls.ssl_no_certificate.inc(),
                }
            }
            if log::log_enabled!(log::Level::Debug) {
                log::debug!(
                    "TLS from {peer}: {:?}, {:?}, sni {:?}, alpn {:?}",
                    stream.protocol_version(),
                    stream.cipher_suite().map(|s| s.suite()),
                    stream.sni(),
                    stream
                        .alpn()
                        .map(|a| String::from_utf8_lossy(&a).into_owned()),
                );
            }
            Some(stream)
        }
        Err(e) => {
            log::debug!("TLS handshake from {peer}: {e}");
            match e {
                TlsError::Timeout => ls.downstream_cx_transport_socket_connect_timeout.inc(),
                TlsError::Closed => {}
                TlsError::NotTls { .. } => {
                    ls.ssl_not_tls.inc();
                    ls.ssl_connection_error.inc();
                }
                TlsError::Handshake { ref reason } => {
                    ls.ssl_connection_error.inc();
                    match reason {
                        rustls::Error::NoCertificatesPresented => ls.ssl_fail_verify_no_cert.inc(),
                        rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                            ls.ssl_fail_verify_san.inc();
                        }
                        rustls::Error::InvalidCertificate(_) => ls.ssl_fail_verify_error.inc(),
                        _ => {}
                    }
                }
                TlsError::Io(_) => ls.ssl_connection_error.inc(),
            }
            None
        }
    }
}
