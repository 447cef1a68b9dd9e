//! Byte streams both directions share: [`Io`], plain TCP or TLS, with its split halves, and the
//! [`relay`] that copies bytes both ways between two of them (TCP proxy, Upgrade tunnels).
//!
//! A leaf layer: it knows sockets and TLS sessions ([`crate::tls`]), not listeners, clusters
//! or HTTP. Downstream connections (listener, HTTP connection manager, TCP proxy) and upstream
//! ones (the pool, HTTP/2 connections, tunnels) use the same type.

pub(crate) mod io;
pub(crate) mod multishot;
pub(crate) mod pipe;
pub(crate) mod relay;

pub(crate) use io::Io;
