//! Listening sockets: one SO_REUSEPORT socket per worker for every configured listener, so
//! the kernel spreads new connections across workers and no accept lock is shared.
//!
//! Sockets are bound up front on the starting thread (bind errors surface before any worker
//! runs, and port 0 resolves to one port shared by all workers); each worker then adopts its
//! own socket into its runtime with `monoio::net::TcpListener::from_std`.
//!
//! An accepted connection then goes through the listener's stages in order ([`serve`]): the
//! PROXY protocol header ([`proxy_protocol`]), TLS termination ([`tls`]), then its protocol:
//! the HTTP connection manager ([`crate::proxy`]; HTTP/2 when TLS's ALPN picked `h2`) or the
//! TCP proxy ([`crate::tcp`]).

pub(crate) mod proxy_protocol;
pub(crate) mod tls;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use monoio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::ListenerProtocol;
use crate::local::Worker;
use crate::net::Io;
use crate::proxy::Ended;

/// Listen backlog; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

/// Bind `count` sockets to `addr` with SO_REUSEPORT. When the port is 0 the first socket picks
/// it and the rest bind to the same one. Returns the sockets and the address actually bound.
pub(crate) fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
) -> io::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
    let mut bound = addr;
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = Socket::new(
            Domain::for_address(bound),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        // Small request/response exchanges must not wait for Nagle. Set on the listening
        // socket, it is inherited by every connection accepted from it (Linux copies the
        // listener's TCP state into the new socket): no setsockopt per connection.
        socket.set_nodelay(true)?;
        if bound.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&bound.into())?;
        socket.listen(BACKLOG)?;
        let listener: std::net::TcpListener = socket.into();
        bound = listener.local_addr()?;
        sockets.push(listener);
    }
    Ok((sockets, bound))
}

/// Serve a connection accepted on listener `li` (`fresh`), or resumed after parking: the
/// PROXY header if the listener requires one, the TLS handshake if it terminates TLS (both
/// for fresh connections only; a parked connection is a plaintext one past both), then its
/// protocol.
pub(crate) async fn serve(
    worker: &Rc<Worker>,
    li: usize,
    mut stream: TcpStream,
    peer: SocketAddr,
    fresh: bool,
) -> Ended {
    let (protocol, header_timeout, acceptor) = {
        let local = worker.local();
        let cfg = local.listener_config(li);
        let timeout = match cfg.protocol {
            ListenerProtocol::Http => cfg.http.request_header_timeout,
            ListenerProtocol::Tcp => proxy_protocol::TCP_HEADER_TIMEOUT,
        };
        (
            cfg.protocol,
            (fresh && cfg.proxy_protocol).then_some(timeout),
            cfg.tls.as_ref().filter(|_| fresh).map(tls::Acceptor::of),
        )
    };
    let (peer, first) = match header_timeout {
        None => (peer, BytesMut::new()),
        Some(t) => match proxy_protocol::header(worker, li, &mut stream, peer, t).await {
            Some(found) => found,
            None => return Ended::Closed,
        },
    };
    let (io, first) = match acceptor {
        None => (Io::Plain(stream), first),
        // Boxed: the handshake's future (about 2.6 KiB) would otherwise stay in the task of
        // every connection, TLS or not, for its whole life. Built in its box (`rt::boxed`),
        // not copied in.
        Some(acceptor) => {
            let handshake = || tls::handshake(worker, li, stream, first, acceptor, peer);
            match crate::rt::boxed(handshake).await {
                Some(s) => (Io::Tls(s), BytesMut::new()),
                None => {
                    let local = worker.local();
                    let ls = local.listeners[li].stats();
                    ls.downstream_cx_total.inc();
                    ls.downstream_cx_destroy.inc();
                    return Ended::Closed;
                }
            }
        }
    };
    match protocol {
        ListenerProtocol::Http => crate::proxy::serve(worker, li, io, peer, fresh, first).await,
        ListenerProtocol::Tcp => {
            // Boxed: the TCP proxy's future (about 6 KiB) would otherwise size every HTTP
            // connection's task too; built in its box, not copied in.
            crate::rt::boxed(|| crate::tcp::serve(worker, li, io, peer, first)).await;
            Ended::Closed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_resolves_once_for_all_sockets() {
        let (socks, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(socks.len(), 3);
        assert_ne!(addr.port(), 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap(), addr);
        }
    }

    #[test]
    fn accepted_connections_inherit_nodelay_from_the_listener() {
        let (socks, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        socks[0].set_nonblocking(false).unwrap();
        let (accepted, _) = socks[0].accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    #[test]
    fn second_bind_without_reuseport_owner_conflicts() {
        let (_socks, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        // A plain bind (no SO_REUSEPORT) to the same port must fail: proves the port is held.
        assert!(std::net::TcpListener::bind(addr).is_err());
    }
}
