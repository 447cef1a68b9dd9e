//! What went wrong with a request, as data: the status to answer, the access-log flag and the
//! body of the local reply. Logic reads the variant, never a message.

use crate::access_log::ResponseFlags;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No virtual host or route matched.
    NoRoute,
    /// The cluster has no endpoint to send to.
    NoHealthyUpstream,
    /// The per-worker upstream connection limit is reached.
    Overflow,
    /// Connecting upstream was refused or failed.
    ConnectFailure,
    /// Connecting upstream took longer than the cluster's connect timeout.
    ConnectTimeout,
    /// The TLS handshake with the upstream failed (certificate not verified, name mismatch,
    /// alert, no ALPN agreement): 503 as Envoy answers it.
    UpstreamTls,
    /// The upstream closed or reset the connection before the response was complete.
    UpstreamReset,
    /// No response head within the route timeout (or a body read stalled past the idle timeout).
    UpstreamTimeout,
    /// The upstream sent something that is not a valid HTTP/1 response.
    UpstreamProtocol,
}

impl Fault {
    pub(crate) fn status(self) -> u16 {
        match self {
            Self::NoRoute => 404,
            Self::NoHealthyUpstream | Self::Overflow | Self::UpstreamTls => 503,
            Self::ConnectFailure | Self::UpstreamReset | Self::UpstreamProtocol => 502,
            Self::ConnectTimeout | Self::UpstreamTimeout => 504,
        }
    }

    pub(crate) fn flag(self) -> ResponseFlags {
        match self {
            Self::NoRoute => ResponseFlags::NR,
            Self::NoHealthyUpstream => ResponseFlags::UH,
            Self::Overflow => ResponseFlags::UO,
            Self::ConnectFailure | Self::ConnectTimeout | Self::UpstreamTls => ResponseFlags::UF,
            Self::UpstreamReset => ResponseFlags::UC,
            Self::UpstreamTimeout => ResponseFlags::UT,
            Self::UpstreamProtocol => ResponseFlags::UPE,
        }
    }

    pub(crate) fn body(self) -> &'static [u8] {
        match self {
            Self::NoRoute => b"no route\n",
            Self::NoHealthyUpstream => b"no healthy upstream\n",
            Self::Overflow => b"upstream connection limit reached\n",
            Self::ConnectFailure => b"upstream connect error\n",
            Self::ConnectTimeout => b"upstream connect timeout\n",
            Self::UpstreamTls => b"upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS error\n",
            Self::UpstreamReset => b"upstream reset before response\n",
            Self::UpstreamTimeout => b"upstream request timeout\n",
            Self::UpstreamProtocol => b"upstream protocol error\n",
        }
    }
}
