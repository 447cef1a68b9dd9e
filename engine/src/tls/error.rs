//! Why a TLS handshake did not produce a connection, and why TLS settings were refused.

use std::io;

use rustls::AlertDescription;

/// Why [`accept`](super::accept) failed. Each variant is a distinct outcome that stats and logs
/// tell apart (Envoy counts them as `ssl.handshake` failures / `ssl.connection_error`).
#[derive(Debug, thiserror::Error)]
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the listener wiring (phase 2 of issue #5) uses it"
    )
)]
pub(crate) enum TlsError {
    /// The handshake did not finish before its deadline.
    #[error("TLS handshake timed out")]
    Timeout,
    /// The first bytes from the client are not a TLS handshake record (plain HTTP to a TLS
    /// port, a port scanner, ...). Nothing was sent back.
    #[error("client did not speak TLS (first byte {first_byte:#04x})")]
    NotTls {
        /// The first byte received; a TLS handshake record starts with 0x16.
        first_byte: u8,
    },
    /// The client closed the connection before the handshake completed.
    #[error("client closed the connection during the TLS handshake")]
    Closed,
    /// The TLS protocol failed: rustls's reason. Unless the client sent an alert itself,
    /// rustls has sent (best effort) the matching alert to the client.
    #[error("TLS handshake failed: {reason}")]
    Handshake {
        /// What rustls found wrong (no shared version or cipher suite, no ALPN overlap, a
        /// malformed message, an alert from the client, ...).
        reason: rustls::Error,
    },
    /// Reading or writing the socket failed.
    #[error("i/o error during the TLS handshake: {0}")]
    Io(#[from] io::Error),
}

#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the listener wiring (phase 2 of issue #5) uses it"
    )
)]
impl TlsError {
    /// The alert the client sent, when the handshake failed because of one.
    pub(crate) fn alert_received(&self) -> Option<AlertDescription> {
        match self {
            Self::Handshake {
                reason: rustls::Error::AlertReceived(a),
            } => Some(*a),
            _ => None,
        }
    }
}

/// Why TLS settings could not be turned into a server configuration: the field (relative to
/// the `tls` table, such as `certificates[1].key`) and the reason. Only built on the cold path
/// of loading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TlsConfigError {
    /// Field path inside the `tls` table: `certificates[0].cert`, `cipher_suites[2]`, ...
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl TlsConfigError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
