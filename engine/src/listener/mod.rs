//! Listening sockets: one SO_REUSEPORT socket per worker for every configured listener, so
//! the kernel spreads new connections across workers and no accept lock is shared.
//!
//! Sockets are bound up front on the starting thread (bind errors surface before any worker
//! runs, and port 0 resolves to one port shared by all workers); each worker then adopts its
//! own socket into its runtime with `monoio::net::TcpListener::from_std`.

pub(crate) mod proxy_protocol;

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

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

/// Options applied to every accepted downstream connection.
pub(crate) fn tune_accepted(stream: &monoio::net::TcpStream) {
    // Small request/response exchanges must not wait for Nagle; failure is harmless.
    let _ = stream.set_nodelay(true);
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
    fn second_bind_without_reuseport_owner_conflicts() {
        let (_socks, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        // A plain bind (no SO_REUSEPORT) to the same port must fail: proves the port is held.
        assert!(std::net::TcpListener::bind(addr).is_err());
    }
}
