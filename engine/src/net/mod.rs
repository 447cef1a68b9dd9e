//! Byte streams both directions share: [`Io`], plain TCP or TLS, with its split halves.
//!
//! A leaf layer: it knows sockets and TLS sessions ([`crate::tls`]), not listeners, clusters
//! or HTTP. Downstream connections (listener, HTTP connection manager, TCP proxy) and upstream
//! ones (the pool, HTTP/2 connections, tunnels) use the same type.

pub(crate) mod io;

pub(crate) use io::Io;
