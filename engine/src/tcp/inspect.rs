//! SNI routing without terminating TLS (Envoy's `tls_inspector` listener filter): read a
//! connection's first bytes until they hold a whole ClientHello, take its server name, and
//! keep every byte so the relay sends them upstream unchanged.
//!
//! Runs only on tcp listeners with `[[listeners.tcp.sni]]` routes and no `[listeners.tls]`
//! (with TLS terminated here, rustls's SNI is used instead). Parsing is the sans-IO
//! [`protocols::tls`] peeker: bytes that are not a TLS handshake record (decided from the first
//! byte) are let through without a server name, like Envoy's inspector does; a malformed or
//! oversized ClientHello, an early close, a reset or `inspect_timeout` passing closes the
//! connection. At most [`tls::MAX_PEEK_LEN`] bytes are buffered. RFC 8446 section 4.1.2,
//! RFC 6066 section 3.

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use monoio::net::TcpStream;
use protocols::tls::{self, ClientHello};

use crate::rt::buffers;

/// Longest DNS name (RFC 1035; the peeker refuses longer ones).
const MAX_NAME: usize = 253;

/// A server name as sent by a client, held inline (no allocation per connection).
#[derive(Clone, Copy)]
pub(crate) struct ServerName {
    len: u8,
    bytes: [u8; MAX_NAME],
}

impl ServerName {
    /// `None` for names longer than 253 bytes or not UTF-8.
    pub(crate) fn new(name: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_NAME];
        bytes.get_mut(..name.len())?.copy_from_slice(name);
        std::str::from_utf8(name).ok()?;
        Some(Self {
            len: u8::try_from(name.len()).ok()?,
            bytes,
        })
    }

    /// The name's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The name (UTF-8 by construction).
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl std::fmt::Debug for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// What the first bytes turned out to be.
#[derive(Debug, Clone, Copy)]
// reason: one value per connection, briefly, on the stack; boxing would allocate per connection.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Inspected {
    /// A ClientHello, with the server name it asks for (if any).
    Tls(Option<ServerName>),
    /// Not a TLS handshake: the connection is routed without a server name.
    NotTls,
}

/// Why a connection is closed before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The ClientHello is larger than the peeker takes, or split across too many records.
    TooLarge,
    /// The bytes start like a ClientHello but are not a valid one.
    Invalid(tls::Error),
    /// The client closed before the ClientHello was complete.
    Closed,
    /// Reading failed (a reset).
    ReadError,
    /// No complete ClientHello by the deadline.
    Timeout,
}

/// Decide from the bytes read so far: `Ok(None)` means read more.
pub(crate) fn decide(buf: &[u8]) -> Result<Option<Inspected>, Failure> {
    let classify = |e: tls::Error| match e {
        tls::Error::TooLarge | tls::Error::TooManyRecords => Failure::TooLarge,
        e => Failure::Invalid(e),
    };
    match tls::client_hello_message(buf) {
        Ok(None) if buf.len() >= tls::MAX_PEEK_LEN => Err(Failure::TooLarge),
        Ok(None) => Ok(None),
        Ok(Some(msg)) => {
            let hello = ClientHello::parse(&msg).map_err(classify)?;
            Ok(Some(Inspected::Tls(
                hello.server_name.and_then(ServerName::new),
            )))
        }
        Err(tls::Error::NotHandshake) => Ok(Some(Inspected::NotTls)),
        Err(e) => Err(classify(e)),
    }
}

/// Read from `stream` into `buf` (which may already hold bytes, after a PROXY header) until
/// [`decide`] does, or `deadline`. Every byte read stays in `buf`.
pub(crate) async fn client_hello(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    deadline: Instant,
) -> Result<Inspected, Failure> {
    if buf.capacity() == 0 {
        *buf = buffers::take();
    }
    loop {
        if let Some(found) = decide(buf)? {
            return Ok(found);
        }
        match buffers::read_into(stream, buf, Some(deadline)).await {
            Ok(0) => return Err(Failure::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(Failure::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Failure::ReadError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello record for `sni` (RFC 8446 4.1.2 layout).
    fn hello(sni: Option<&str>) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(name) = sni {
            let n = name.len() as u16;
            exts.extend_from_slice(&0u16.to_be_bytes());
            exts.extend_from_slice(&(n + 5).to_be_bytes());
            exts.extend_from_slice(&(n + 3).to_be_bytes());
            exts.push(0);
            exts.extend_from_slice(&n.to_be_bytes());
            exts.extend_from_slice(name.as_bytes());
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![1, 0];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        rec.extend_from_slice(&msg);
        rec
    }

    fn name(i: Inspected) -> Option<String> {
        match i {
            Inspected::Tls(n) => n.map(|n| n.as_str().to_owned()),
            Inspected::NotTls => panic!("not tls"),
        }
    }

    #[test]
    fn a_whole_hello_is_decided_and_a_partial_one_waits() {
        let h = hello(Some("api.Example.com"));
        assert_eq!(
            name(decide(&h).unwrap().unwrap()).as_deref(),
            Some("api.Example.com")
        );
        for cut in [0, 1, 5, 9, h.len() - 1] {
            assert!(decide(&h[..cut]).unwrap().is_none(), "cut {cut}");
        }
        assert_eq!(name(decide(&hello(None)).unwrap().unwrap()), None);
    }

    #[test]
    fn not_tls_is_let_through_and_bad_hellos_fail() {
        assert!(matches!(
            decide(b"GET / HTTP/1.1\r\n").unwrap(),
            Some(Inspected::NotTls)
        ));
        assert!(matches!(decide(b"\x16\x09"), Err(Failure::Invalid(_))));
        let mut h = hello(Some("a.example"));
        h[6] = 1; // handshake length past the 16 KiB limit
        assert_eq!(decide(&h).unwrap_err(), Failure::TooLarge);
        let mut h = hello(Some("a.example"));
        h[5] = 2; // not a ClientHello
        assert!(matches!(decide(&h), Err(Failure::Invalid(_))));
    }

    #[test]
    fn server_name_is_inline_and_bounded() {
        let n = ServerName::new(b"a.example").unwrap();
        assert_eq!(n.as_str(), "a.example");
        assert_eq!(format!("{n:?}"), "\"a.example\"");
        assert!(ServerName::new(&[b'a'; 254]).is_none());
        assert!(ServerName::new(&[0xff]).is_none());
        assert_eq!(ServerName::new(&[b'a'; 253]).unwrap().as_bytes().len(), 253);
    }
}
