//! Between the sans-IO protocol machines of `protocols` and monoio IO, per protocol: what both
//! the downstream side (the HTTP connection manager, [`crate::proxy`]) and the upstream side
//! ([`crate::upstream`]) of a proxied request use.
//!
//! A leaf layer: it imports `rt` and `protocols`, never a listener, cluster, filter or
//! connection manager. [`h2`] holds the HTTP/2 session (a connection's codec shared by its
//! connection task and its stream tasks) and field conversions.

pub(crate) mod h2;

use bytes::Bytes;

/// Fields that describe one connection, never forwarded (besides those `Connection` names).
pub(crate) fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP: [&[u8]; 7] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"upgrade",
        b"expect",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// A request body collected whole because a filter asked for it (`filters::Flow::StopAndBuffer`);
/// the router sends it from memory (and may send it again).
#[derive(Debug, Clone)]
pub(crate) struct BufferedBody {
    pub(crate) data: Bytes,
    /// Trailer fields, lowercase names.
    pub(crate) trailers: Option<h2::convert::Fields>,
}

impl BufferedBody {
    pub(crate) fn new(data: Bytes, trailers: Option<h2::convert::Fields>) -> Self {
        Self { data, trailers }
    }
}
