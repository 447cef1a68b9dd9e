//! TLS termination: listener settings -> rustls server configurations ([`ServerTls`]), and
//! the server side of a TLS connection over a monoio socket with owned-buffer IO. TLS
//! origination: cluster settings -> [`ClientTls`], and the client side (`connect`) over the
//! same stream type.
//!
//! What this module owns: certificate loading and SNI selection (exact names, `*.suffix`
//! wildcards, a default), ALPN (HTTP/2 offered only when the caller can serve it), TLS 1.2 and
//! 1.3 only, cipher suite lists, session resumption (stateless tickets and a session cache),
//! the handshake deadline, and the encrypted stream with its split halves. What it does not
//! do (yet): SNI passthrough; that belongs to the listener code that uses this module.
//! Specs: RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 6066 section 3 (SNI), RFC 7301 (ALPN).

mod client;
mod error;
mod server;
mod server_names;
mod stream;

#[cfg(test)]
mod tests;

pub use client::{ClientTls, ClientTlsSettings};
pub use error::TlsConfigError;
pub use server::{
    ALPN_H2, ALPN_HTTP11, CertificateSource, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_SESSION_CACHE_SIZE,
    ServerTls, TlsSettings, TlsVersion, check_server_name,
};
pub use server_names::ServerNames;

pub(crate) use client::{Failure as ClientFailure, connect};
pub(crate) use error::TlsError;
pub(crate) use stream::{TlsReadHalf, TlsStream, TlsWriteHalf, accept};
