//! The HTTP/2 codec adapters of the exchange, for both sides: a client's stream (its request
//! body, [`ClientBody`]; the response written to it, [`ClientResponse`]) and an upstream
//! stream (the request body written to it, [`UpstreamBody`]; its response, [`UpstreamResponse`]).
//!
//! Flow control: a DATA frame is credited back to its sender only once the other side took it
//! ([`BodySource::release`] after the sink accepted the bytes), so a slow reader slows the
//! writer on the other side, whatever its protocol.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protocols::grpc::Code;

use super::convert::{self, Fields};
use crate::codec::h2::session::{Recv, SendError, Session, StreamSlot};
use crate::error::{Kind, Phase, ProxyError};
use crate::proxy::body::{Patience, PumpError};
use crate::proxy::grpc;
use crate::proxy::message::{BodySink, BodySource, Chunk, RespHead};
use crate::proxy::relay::{HeadSent, ReqFacts, ResponseSink, ResponseSource};
use crate::rt::timer;
use crate::upstream::http2::UpstreamStream;

fn gone() -> io::Error {
    io::Error::from(io::ErrorKind::ConnectionReset)
}

/// A failed send of stream data as the pump sees it: a peer that opened no window for the
/// stream idle timeout stalled ([`io::ErrorKind::TimedOut`]), else the stream is gone.
fn send_failed(e: SendError) -> io::Error {
    match e {
        SendError::Stalled => io::ErrorKind::TimedOut.into(),
        SendError::Gone => gone(),
    }
}

/// What arrived on `slot`, as a body chunk: `Pending` when nothing is there yet.
fn chunk_of(slot: &StreamSlot) -> Result<Chunk, PumpError> {
    match slot.try_recv() {
        None => Ok(Chunk::Pending),
        Some(Recv::Data(d)) => Ok(Chunk::Data(d)),
        Some(Recv::Trailers(t)) => Ok(Chunk::Trailers(t)),
        Some(Recv::End) => Ok(Chunk::End),
        // A head in the middle of a body.
        Some(Recv::Head(..)) => Err(PumpError::Framing),
        Some(Recv::Gone) => Err(PumpError::Source(io::ErrorKind::ConnectionReset)),
    }
}

/// The request body a client sends on its stream.
pub(crate) struct ClientBody<'a> {
    pub(crate) slot: &'a StreamSlot,
    pub(crate) sess: &'a Session,
    pub(crate) patience: Patience,
}

impl BodySource for ClientBody<'_> {
    fn next(&mut self) -> Result<Chunk, PumpError> {
        match chunk_of(self.slot) {
            // No second head comes from a client.
            Err(PumpError::Framing) => Err(PumpError::Source(io::ErrorKind::ConnectionReset)),
            other => other,
        }
    }

    async fn fill(&mut self) -> Result<(), PumpError> {
        let started = timer::coarse_now();
        if self.slot.wait_until(self.patience.deadline()).await {
            Ok(())
        } else {
            Err(self.patience.timed_out(started))
        }
    }

    fn release(&self, n: usize) {
        // Passed on: the client may send this much more.
        self.slot.release(self.sess, n);
    }
}

/// The response written to a client's stream.
pub(crate) struct ClientResponse<'a> {
    pub(crate) slot: &'a StreamSlot,
    pub(crate) sess: &'a Session,
    pub(crate) idle: Duration,
    /// By reference: the facts are a few hundred bytes, and copying them is a `memcpy`.
    pub(crate) facts: &'a ReqFacts<'a>,
    /// END_STREAM went out.
    ended: bool,
    grpc_status: Option<Code>,
}

impl<'a> ClientResponse<'a> {
    pub(crate) fn new(
        slot: &'a StreamSlot,
        sess: &'a Session,
        idle: Duration,
        facts: &'a ReqFacts<'a>,
    ) -> Self {
        Self {
            slot,
            sess,
            idle,
            facts,
            ended: false,
            grpc_status: None,
        }
    }
}

impl BodySink for ClientResponse<'_> {
    async fn data(&mut self, data: Bytes) -> io::Result<()> {
        self.slot
            .send_data(self.sess, data, false, self.idle)
            .await
            .map_err(send_failed)
    }

    async fn trailers(&mut self, fields: Fields) -> io::Result<()> {
        self.grpc_status = grpc::status_in(&fields);
        self.ended = true;
        self.slot
            .send_trailers(self.sess, &fields)
            .map_err(|_| gone())
    }

    async fn end(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.ended, true) {
            return Ok(());
        }
        self.slot
            .send_data(self.sess, Bytes::new(), true, self.idle)
            .await
            .map_err(send_failed)
    }

    async fn last(&mut self, data: Bytes) -> io::Result<()> {
        self.ended = true;
        self.slot
            .send_data(self.sess, data, true, self.idle)
            .await
            .map_err(send_failed)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ResponseSink for ClientResponse<'_> {
    async fn interim(&mut self, _resp: &RespHead) -> io::Result<()> {
        // Interim responses are not relayed over HTTP/2 yet.
        Ok(())
    }

    async fn head(&mut self, resp: &RespHead, _answered_early: bool) -> io::Result<HeadSent> {
        let sent = HeadSent {
            keep_alive: true,
            upgrade: false,
            head_bytes: 0,
        };
        if let RespHead::H2(fields, true) = resp {
            // Trailers-only: the status is in the head.
            self.grpc_status = grpc::status_in(fields);
        }
        if convert::is_unedited(self.facts.edits, self.facts.opts) {
            // The common case: encoded from the upstream's head in place, with no list of
            // copies built first. An HTTP/2 upstream's fields are sent as they are (decoded
            // and checked by the codec: lowercase names, no connection-specific field); an
            // HTTP/1 upstream's without its connection-specific fields, the codec lowercasing
            // the names as it encodes them.
            let end = resp.is_bodiless();
            let sent_head = match resp {
                RespHead::H1(r) => {
                    let mut status = itoa::Buffer::new();
                    let fields = convert::unedited_response_fields(r, &mut status);
                    self.slot.send_headers_lowercasing(self.sess, fields, end)
                }
                RespHead::H2(fields, _) => self.slot.send_headers(self.sess, fields.iter(), end),
            };
            sent_head.map_err(|_| gone())?;
            self.ended = end;
            return Ok(sent);
        }
        let mut out = convert::head_fields();
        let end = match resp {
            RespHead::H1(r) => {
                convert::response_fields(r, self.facts.edits, self.facts.opts, &mut out);
                resp.is_bodiless()
            }
            RespHead::H2(fields, end) => {
                convert::upstream_response_fields(
                    fields,
                    self.facts.edits,
                    self.facts.opts,
                    &mut out,
                );
                *end
            }
        };
        self.slot
            .send_headers(self.sess, out.iter(), end)
            .map_err(|_| gone())?;
        self.ended = end;
        Ok(sent)
    }

    fn grpc_status(&self) -> Option<Code> {
        self.grpc_status
    }
}

/// The request body written to an upstream stream.
pub(crate) struct UpstreamBody<'a> {
    pub(crate) up: &'a UpstreamStream,
    pub(crate) idle: Duration,
}

impl BodySink for UpstreamBody<'_> {
    async fn data(&mut self, data: Bytes) -> io::Result<()> {
        self.up
            .send_data(data, false, self.idle)
            .await
            .map_err(send_failed)
    }

    async fn trailers(&mut self, fields: Fields) -> io::Result<()> {
        self.up.send_trailers(&fields).map_err(|_| gone())
    }

    async fn end(&mut self) -> io::Result<()> {
        self.up
            .send_data(Bytes::new(), true, self.idle)
            .await
            .map_err(send_failed)
    }

    async fn last(&mut self, data: Bytes) -> io::Result<()> {
        self.up
            .send_data(data, true, self.idle)
            .await
            .map_err(send_failed)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An upstream stream's response.
pub(crate) struct UpstreamResponse<'a> {
    pub(crate) up: &'a UpstreamStream,
    pub(crate) patience: Patience,
}

impl BodySource for UpstreamResponse<'_> {
    fn next(&mut self) -> Result<Chunk, PumpError> {
        chunk_of(&self.up.slot)
    }

    async fn fill(&mut self) -> Result<(), PumpError> {
        let started = timer::coarse_now();
        if self.up.slot.wait_until(self.patience.deadline()).await {
            Ok(())
        } else {
            Err(self.patience.timed_out(started))
        }
    }

    fn release(&self, n: usize) {
        // Passed on downstream: the upstream may send this much more.
        self.up.release(n);
    }
}

impl ResponseSource for UpstreamResponse<'_> {
    async fn head(&mut self, deadline: Option<Instant>) -> Result<RespHead, ProxyError> {
        let fail = |kind| ProxyError::upstream(kind, Phase::BeforeResponse);
        let next = match deadline {
            Some(d) => monoio::select! {
                r = self.up.recv(self.patience.idle) => r,
                () = timer::sleep_until(d) => return Err(fail(Kind::Timeout)),
            },
            None => self.up.recv(self.patience.idle).await,
        };
        match next {
            Recv::Head(fields, end) => Ok(RespHead::H2(fields, end)),
            _ => {
                let mut e = fail(Kind::Reset);
                e.reset = self.up.slot.reset_reason();
                Err(e)
            }
        }
    }

    fn is_complete(&self) -> bool {
        self.up.is_complete()
    }
}
