//! The response half of every exchange, written once for all four protocol pairings: read the
//! upstream's head (passing interim ones on), write the head for the client, then [`pump`] the
//! body. The upstream side is a [`ResponseSource`] (HTTP/1 connection or HTTP/2 stream), the
//! client side a [`ResponseSink`] (HTTP/1 connection or HTTP/2 stream).
//!
//! The encode phases of the HTTP filters run here, once for every pairing: encode headers
//! between reading the final head and writing it (a filter may replace the response,
//! [`Relayed::Answer`]), encode data and trailers while the body is pumped
//! ([`super::message::pump_with`]). A chain without them takes the plain path.

use std::io;
use std::time::Instant;

use protocols::grpc::Code;

use super::body::PumpError;
use super::exchange::Record;
use super::message::{BodySink, BodySource, Encode, Filters, Moved, RespHead, pump, pump_with};
use super::retry::Retry;
use crate::config::HttpOptions;
use crate::error::{Kind, Phase, ProxyError, Side};
use crate::filters::{Edits, Flow, LocalAnswer};

/// What the client-side codec needs to know of the request to frame the response.
#[derive(Clone, Copy)]
pub(crate) struct ReqFacts<'a> {
    pub(crate) head_request: bool,
    pub(crate) http10: bool,
    /// The client asked to keep the connection.
    pub(crate) client_keep_alive: bool,
    /// The worker's drain state: a draining worker keeps no connection.
    pub(crate) drain: &'a crate::rt::drain::Drain,
    pub(crate) opts: &'a HttpOptions,
    /// Response header changes (route and filters).
    pub(crate) edits: Edits<'a>,
    /// An `Upgrade` was sent upstream: a 101 may answer it.
    pub(crate) upgrade_sent: bool,
    /// The request may be tried again: a final response head its retry policy retries is
    /// dropped, not relayed ([`Relayed::Retry`]).
    pub(crate) retry: Option<&'a Retry<'a>>,
}

impl ReqFacts<'_> {
    /// Keep the client connection after this response, as far as the request goes (asked
    /// when the response head is written: a drain may have begun since the request came).
    pub(crate) fn keep_alive_wanted(&self) -> bool {
        self.client_keep_alive && !self.drain.is_draining()
    }
}

/// What writing the response head decided.
pub(crate) struct HeadSent {
    /// The client connection may serve another request after this response.
    pub(crate) keep_alive: bool,
    /// 101 Switching Protocols went out: both connections now carry a tunnel.
    pub(crate) upgrade: bool,
    /// Bytes of head written (HTTP/1; HTTP/2 heads are not counted).
    pub(crate) head_bytes: u64,
}

/// An upstream response being read.
pub(crate) trait ResponseSource: BodySource {
    /// The next response head (interim ones included), waiting until `deadline` at most.
    async fn head(&mut self, deadline: Option<Instant>) -> Result<RespHead, ProxyError>;
    /// The whole response had arrived when its head was read.
    fn is_complete(&self) -> bool;
    /// The upstream connection may carry another request once this response is read.
    fn is_reusable(&self) -> bool {
        true
    }
}

/// A response being written to the client.
pub(crate) trait ResponseSink: BodySink {
    /// An interim (1xx) response from the upstream.
    async fn interim(&mut self, resp: &RespHead) -> io::Result<()>;
    /// Write the final head. `answered_early`: the response is complete while the request
    /// body is still arriving (the upstream did not wait for it).
    async fn head(&mut self, resp: &RespHead, answered_early: bool) -> io::Result<HeadSent>;
    /// The gRPC status the response carried (trailers, or a trailers-only head).
    fn grpc_status(&self) -> Option<Code> {
        None
    }
}

/// Where a relay stands, shared with the request body upload running beside it.
#[derive(Default)]
pub(crate) struct Progress {
    /// The response head went downstream (a failure can no longer be answered locally).
    pub(crate) head_sent: std::cell::Cell<bool>,
    /// The request body is still being read.
    pub(crate) body_pending: std::cell::Cell<bool>,
}

/// How the upstream part of an exchange ended.
pub(crate) enum Relayed<'a> {
    /// Response complete.
    Done {
        /// The upstream connection may serve another request.
        upstream_reusable: bool,
        /// The client connection may serve another request.
        downstream_keep_alive: bool,
    },
    /// 101 Switching Protocols was relayed; both connections now carry the tunnel.
    Upgraded,
    /// Failed: [`ProxyError::phase`] says whether the response had started.
    Failed(ProxyError),
    /// A filter's encode-headers phase replaced the response: nothing of it went downstream
    /// and its body was not read (the upstream connection is not reusable); the exchange
    /// answers locally.
    Answer(LocalAnswer<'a>),
    /// The response head (this status) is one the request's retry policy retries, and a
    /// retry was admitted: nothing of it went downstream and its body was not read (the
    /// upstream connection is not reusable).
    Retry(u16),
}

/// Relay one response from `src` to `sink`, through the encode phases of `filters`.
pub(crate) async fn relay<'a, S: ResponseSource, K: ResponseSink>(
    src: &mut S,
    sink: &mut K,
    facts: &ReqFacts<'_>,
    deadline: Option<Instant>,
    progress: &Progress,
    rec: &mut Record,
    filters: Filters<'_, 'a>,
) -> Relayed<'a> {
    let resp = loop {
        match src.head(deadline).await {
            Ok(r) if r.status() == 101 => {
                if !facts.upgrade_sent {
                    return Relayed::Failed(ProxyError::upstream(
                        Kind::Protocol,
                        Phase::BeforeResponse,
                    ));
                }
                break r;
            }
            Ok(r) if (100..200).contains(&r.status()) => {
                if sink.interim(&r).await.is_err() {
                    return Relayed::Failed(client_gone(Phase::BeforeResponse));
                }
            }
            Ok(r) => break r,
            Err(e) => return Relayed::Failed(e),
        }
    };
    if let Some(retry) = facts.retry {
        if resp.status() != 101 && retry.on_head(&resp) {
            return Relayed::Retry(resp.status());
        }
    }
    rec.status = resp.status();
    if let RespHead::H1(r) = &resp {
        rec.up_rx += r.raw().len() as u64;
    }
    if filters.chain.phases().encode_headers && resp.status() != 101 {
        let mut from = 0;
        loop {
            let (flow, at) =
                filters
                    .chain
                    .encode_headers(from, &resp, &mut filters.state.borrow_mut());
            match flow {
                Flow::Continue | Flow::StopAndBuffer { .. } => break,
                Flow::Respond(answer) => return Relayed::Answer(answer),
                Flow::Pause(w) => {
                    w.elapse().await;
                    from = at;
                }
            }
        }
    }
    let answered_early = progress.body_pending.get() && src.is_complete();
    let Ok(sent) = sink.head(&resp, answered_early).await else {
        return Relayed::Failed(client_gone(Phase::BeforeResponse));
    };
    progress.head_sent.set(true);
    rec.head_tx += sent.head_bytes;
    if sent.upgrade {
        return Relayed::Upgraded;
    }
    let mut moved = Moved::default();
    let result = if filters.chain.phases().encode_body {
        pump_with(src, sink, &mut moved, &Encode(filters)).await
    } else {
        pump(src, sink, &mut moved).await
    };
    rec.bytes_sent += moved.bytes;
    rec.up_rx += moved.bytes;
    rec.spliced += moved.spliced;
    match result {
        Ok(()) => Relayed::Done {
            upstream_reusable: src.is_reusable(),
            downstream_keep_alive: sent.keep_alive,
        },
        Err(PumpError::Sink) => Relayed::Failed(client_gone(Phase::AfterHead)),
        // The client stopped reading: the stream idle timeout, on its side.
        Err(PumpError::Stalled) => {
            Relayed::Failed(ProxyError::downstream(Kind::Idle, Phase::AfterHead))
        }
        Err(PumpError::Idle) => Relayed::Failed(ProxyError::upstream(Kind::Idle, Phase::AfterHead)),
        Err(PumpError::Source(io::ErrorKind::TimedOut)) => {
            Relayed::Failed(ProxyError::upstream(Kind::Timeout, Phase::AfterHead))
        }
        Err(PumpError::Source(_)) => {
            Relayed::Failed(ProxyError::upstream(Kind::Reset, Phase::AfterHead))
        }
        Err(PumpError::Framing) => {
            Relayed::Failed(ProxyError::upstream(Kind::Protocol, Phase::AfterHead))
        }
        Err(PumpError::Filter) => Relayed::Failed(filter_stopped(Phase::AfterHead)),
    }
}

/// A filter stopped a body passing through (an answer too late to give).
pub(crate) fn filter_stopped(phase: Phase) -> ProxyError {
    ProxyError::new(Kind::Protocol, Side::Internal, phase)
}

/// The client went away (or stopped reading).
pub(crate) fn client_gone(phase: Phase) -> ProxyError {
    ProxyError::downstream(Kind::Reset, phase)
}
