//! The one error type of the HTTP path: what went wrong, as facts, mapped once to everything
//! that reports it.
//!
//! A [`ProxyError`] says what happened ([`Kind`]), on which side ([`Side`]) and how far the
//! exchange had come ([`Phase`]), plus the HTTP/2 reset code when an upstream stream was reset.
//! From those facts alone come the status of a local answer, the access-log response flag, the
//! gRPC status, the stats, and what the exchange does: answer locally (nothing went downstream
//! yet), cut the response short, or let a client that left go. Retry decisions read the same
//! facts (today the one replay on a stale pooled connection). Logic reads fields, never
//! messages.

use protocols::grpc::Code;
use protocols::http2::frame::Reason;

use crate::access_log::ResponseFlags;
use crate::stats::ClusterStats;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
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
    /// The peer closed or reset the connection (or the stream) before its message was
    /// complete.
    Reset,
    /// Upstream: no response head within the route (or per-try) timeout, or a response
    /// body that stalled past the stream idle timeout or outlasted the route timeout.
    /// Downstream: a request body that stalled past the stream idle timeout or outlasted
    /// `request_timeout`. Either side: `max_stream_duration` passed.
    Timeout,
    /// A body (either way) moved no byte for the stream idle timeout.
    Idle,
    /// The peer sent something that is not valid HTTP (framing, heads).
    Protocol,
}

/// Which peer the error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client.
    Downstream,
    /// The upstream endpoint (or connecting to it).
    Upstream,
    /// ringway's own decision (no route, no endpoint, a limit).
    Internal,
}

/// How far the exchange had come when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Nothing was sent upstream.
    BeforeRequest,
    /// The request was (at least partly) sent; no response head went downstream.
    BeforeResponse,
    /// The response head went downstream: the client sees the response cut short.
    AfterHead,
}

/// A failed exchange, as facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyError {
    pub(crate) kind: Kind,
    pub(crate) side: Side,
    pub(crate) phase: Phase,
    /// The RST_STREAM code of a reset HTTP/2 upstream stream.
    pub(crate) reset: Option<Reason>,
}

impl ProxyError {
    pub(crate) fn new(kind: Kind, side: Side, phase: Phase) -> Self {
        Self {
            kind,
            side,
            phase,
            reset: None,
        }
    }

    /// An error of ringway's own (nothing was sent upstream).
    pub(crate) fn internal(kind: Kind) -> Self {
        Self::new(kind, Side::Internal, Phase::BeforeRequest)
    }

    /// The upstream failed.
    pub(crate) fn upstream(kind: Kind, phase: Phase) -> Self {
        Self::new(kind, Side::Upstream, phase)
    }

    /// The client left (or broke its request body's framing: `Kind::Protocol`).
    pub(crate) fn downstream(kind: Kind, phase: Phase) -> Self {
        Self::new(kind, Side::Downstream, phase)
    }

    /// Nothing went downstream yet and the client is still there (it may have broken its
    /// request body's framing or stalled it, but it did not leave): answer locally.
    pub(crate) fn is_answerable(&self) -> bool {
        self.phase < Phase::AfterHead
            && (self.side != Side::Downstream
                || matches!(self.kind, Kind::Protocol | Kind::Timeout | Kind::Idle))
    }

    /// The status of the local answer.
    pub(crate) fn status(&self) -> u16 {
        match (self.side, self.kind) {
            (Side::Downstream, Kind::Protocol) => 400,
            (Side::Downstream, Kind::Timeout | Kind::Idle) => 408,
            (_, Kind::NoRoute) => 404,
            (_, Kind::NoHealthyUpstream | Kind::Overflow | Kind::UpstreamTls) => 503,
            (_, Kind::ConnectFailure | Kind::Reset | Kind::Protocol) => 502,
            (_, Kind::ConnectTimeout | Kind::Timeout | Kind::Idle) => 504,
        }
    }

    /// The access log's response flag.
    pub(crate) fn flag(&self) -> ResponseFlags {
        if self.side == Side::Downstream {
            return match self.kind {
                Kind::Protocol => ResponseFlags::DPE,
                Kind::Idle => ResponseFlags::SI,
                // `request_timeout` (Envoy sets no flag), unless the exchange names another
                // limit.
                Kind::Timeout => ResponseFlags::NONE,
                _ => ResponseFlags::DC,
            };
        }
        match self.kind {
            Kind::NoRoute => ResponseFlags::NR,
            Kind::NoHealthyUpstream => ResponseFlags::UH,
            Kind::Overflow => ResponseFlags::UO,
            Kind::ConnectFailure | Kind::ConnectTimeout | Kind::UpstreamTls => ResponseFlags::UF,
            Kind::Reset => ResponseFlags::UC,
            Kind::Timeout => ResponseFlags::UT,
            Kind::Idle => ResponseFlags::SI,
            Kind::Protocol => ResponseFlags::UPE,
        }
    }

    /// The body of the local answer.
    pub(crate) fn body(&self) -> &'static [u8] {
        if self.side == Side::Downstream && self.kind == Kind::Protocol {
            return b"invalid request body\n";
        }
        if self.side == Side::Downstream && matches!(self.kind, Kind::Timeout | Kind::Idle) {
            return b"request timeout\n";
        }
        match self.kind {
            Kind::NoRoute => b"no route\n",
            Kind::NoHealthyUpstream => b"no healthy upstream\n",
            Kind::Overflow => b"upstream connection limit reached\n",
            Kind::ConnectFailure => b"upstream connect error\n",
            Kind::ConnectTimeout => b"upstream connect timeout\n",
            Kind::UpstreamTls => b"upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS error\n",
            Kind::Reset => b"upstream reset before response\n",
            Kind::Timeout => b"upstream request timeout\n",
            Kind::Idle => b"stream timeout\n",
            Kind::Protocol => b"upstream protocol error\n",
        }
    }

    /// The gRPC status of the local answer to a gRPC call.
    pub(crate) fn grpc_code(&self) -> Code {
        match self.kind {
            // The client's deadline (or the route's) passed before the upstream answered.
            Kind::Timeout | Kind::Idle if self.side == Side::Upstream => Code::DeadlineExceeded,
            _ => Code::from_http_status(self.status()),
        }
    }

    /// Count what the error says about the upstream request in the cluster's stats.
    pub(crate) fn count(&self, stats: &ClusterStats) {
        match (self.side, self.kind) {
            (Side::Upstream, Kind::Protocol) => stats.upstream_cx_protocol_error.inc(),
            (Side::Upstream, Kind::Timeout) => stats.upstream_rq_timeout.inc(),
            (Side::Upstream, Kind::Reset) => stats.upstream_rq_rx_reset.inc(),
            // The client left with the upstream request in flight.
            (Side::Downstream, Kind::Reset | Kind::Timeout | Kind::Idle) => {
                stats.upstream_rq_tx_reset.inc()
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_map_to_status_flag_and_answerability() {
        let head_timeout = ProxyError::upstream(Kind::Timeout, Phase::BeforeResponse);
        assert_eq!(head_timeout.status(), 504);
        assert_eq!(head_timeout.flag(), ResponseFlags::UT);
        assert_eq!(head_timeout.grpc_code(), Code::DeadlineExceeded);
        assert!(head_timeout.is_answerable());

        let cut = ProxyError::upstream(Kind::Reset, Phase::AfterHead);
        assert_eq!(cut.flag(), ResponseFlags::UC);
        assert!(!cut.is_answerable());

        let gone = ProxyError::downstream(Kind::Reset, Phase::BeforeResponse);
        assert_eq!(gone.flag(), ResponseFlags::DC);
        assert!(!gone.is_answerable(), "nobody to answer");

        let bad_body = ProxyError::downstream(Kind::Protocol, Phase::BeforeResponse);
        assert_eq!(
            (bad_body.status(), bad_body.flag()),
            (400, ResponseFlags::DPE)
        );

        let refused = ProxyError::internal(Kind::ConnectFailure);
        assert_eq!((refused.status(), refused.flag()), (502, ResponseFlags::UF));
        assert_eq!(ProxyError::internal(Kind::NoRoute).status(), 404);
        assert_eq!(
            ProxyError::internal(Kind::NoRoute).grpc_code(),
            Code::from_http_status(404)
        );
    }
}
