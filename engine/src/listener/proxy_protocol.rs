//! The connection stage right after accept: on a listener with `proxy_protocol = true`, read
//! the PROXY protocol v1 or v2 header every connection must start with (before TLS, if the
//! listener terminates TLS; [`super::serve`] runs the stages in order).
//!
//! The header's source address replaces the socket peer for the rest of the connection
//! (`x-forwarded-for`, access log, PROXY out); a `LOCAL` command or an `UNKNOWN`/non-TCP
//! address block keeps the socket peer. Bytes after the header stay in the buffer handed on.
//! A malformed, truncated or late header closes the connection (stat
//! `listener.<name>.downstream_cx_proxy_proto_error`). Parsing is the sans-IO
//! [`protocols::proxy_protocol::parse`]; spec: HAProxy `proxy-protocol.txt` sections 2.1, 2.2.
//!
//! Does not: accept connections without a header on such a listener (no optional mode), or
//! use the header's TLVs.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::net::TcpStream;
use protocols::proxy_protocol::{self as pp, Addresses, Command, Header};

use crate::local::Worker;
use crate::rt::{buffers, timer};

/// How long a TCP listener waits for the PROXY header (HTTP listeners use their
/// `request_header_timeout`).
pub(crate) const TCP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no header could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The bytes are not a valid PROXY header.
    Malformed(pp::Error),
    /// The client closed (or reset) the connection before the header was complete.
    Closed,
    /// The header was not complete by the deadline.
    Timeout,
}

/// The PROXY stage of a fresh connection on listener `li`: read the header within `timeout`.
/// Returns the client address it names (else `peer`) and the bytes read after it; `None` when
/// there is no valid header, after counting the connection as opened, destroyed and a PROXY
/// protocol error.
pub(crate) async fn header(
    worker: &Worker,
    li: usize,
    stream: &mut TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<(SocketAddr, BytesMut)> {
    match read(stream, timer::coarse_now() + timeout).await {
        Ok((header, rest)) => Some((source(&header, peer), rest)),
        Err(e) => {
            log::debug!("PROXY header from {peer}: {e:?}");
            let local = worker.local();
            let ls = local.listeners[li].stats();
            ls.downstream_cx_total.inc();
            ls.downstream_cx_destroy.inc();
            ls.downstream_cx_proxy_proto_error.inc();
            None
        }
    }
}

/// Read one PROXY header from the start of `stream`, waiting until `deadline` at most.
/// Returns the header and the bytes read after it.
pub(crate) async fn read(
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<(Header, BytesMut), Failure> {
    let mut buf = buffers::take();
    loop {
        match pp::parse(&mut buf) {
            Ok(Some(header)) => return Ok((header, buf)),
            Ok(None) => {}
            Err(e) => return Err(Failure::Malformed(e)),
        }
        match buffers::read_into(stream, &mut buf, Some(deadline)).await {
            Ok(0) => return Err(Failure::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(Failure::Timeout),
            Err(_) => return Err(Failure::Closed),
        }
    }
}

/// The client a header speaks for: its TCP source, else the socket peer.
pub(crate) fn source(header: &Header, peer: SocketAddr) -> SocketAddr {
    if header.command == Command::Local {
        return peer;
    }
    match &header.addresses {
        Addresses::Tcp4 { src, .. } => SocketAddr::V4(*src),
        Addresses::Tcp6 { src, .. } => SocketAddr::V6(*src),
        _ => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddrV4, SocketAddrV6};

    fn header(command: Command, addresses: Addresses) -> Header {
        Header {
            version: 2,
            command,
            addresses,
            tlvs: bytes::Bytes::new(),
        }
    }

    #[test]
    fn source_is_the_tcp_source_unless_local_or_unknown() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let src4: SocketAddrV4 = "192.0.2.7:40000".parse().unwrap();
        let dst4: SocketAddrV4 = "192.0.2.1:443".parse().unwrap();
        let tcp4 = Addresses::Tcp4 {
            src: src4,
            dst: dst4,
        };
        assert_eq!(
            source(&header(Command::Proxy, tcp4.clone()), peer),
            SocketAddr::V4(src4)
        );
        assert_eq!(source(&header(Command::Local, tcp4), peer), peer);
        assert_eq!(
            source(&header(Command::Proxy, Addresses::Unknown), peer),
            peer
        );
        let src6: SocketAddrV6 = "[2001:db8::7]:1".parse().unwrap();
        let dst6: SocketAddrV6 = "[2001:db8::1]:2".parse().unwrap();
        let tcp6 = Addresses::Tcp6 {
            src: src6,
            dst: dst6,
        };
        assert_eq!(
            source(&header(Command::Proxy, tcp6), peer),
            SocketAddr::V6(src6)
        );
        let udp = Addresses::Udp4 {
            src: src4,
            dst: dst4,
        };
        assert_eq!(source(&header(Command::Proxy, udp), peer), peer);
    }
}
