//! The HTTP/1 codec adapters of the exchange, for both sides: a body read from a connection
//! ([`H1Source`]: a client's request body, or an upstream's response body), a body written to
//! one ([`H1Sink`]), an upstream's response head ([`H1Response`]) and a response written to a
//! client ([`H1Client`]). The exchange drives them through [`super::message`]'s traits, so
//! the same adapter serves an HTTP/1 or an HTTP/2 peer on the other side.
//!
//! Bodies are re-framed for the next hop (chunked, content-length as is, or close-delimited
//! for HTTP/1.0 clients). Small pieces are gathered so a head and a small body leave in one
//! write; pieces of [`WRITE_THROUGH`] and more are written straight from the read buffer.

use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::tcp::MultiRecv;
use protocols::http1::{self, BodyDecoder, BodyEvent, BodyFraming, MethodKind, encode};

use super::body::{Patience, PumpError, flush_out, read_into, write_out, write_within};
use super::h2::convert::{self, Fields};
use super::head::{self, OutFraming, ResponseRewrite};
use super::message::{BodySink, BodySource, Chunk, RawDest, RawRest, RespHead};
use super::relay::{HeadSent, ReqFacts, ResponseSink, ResponseSource};
use crate::error::ProxyError;
use crate::net::io::PlainSocket;
use crate::net::multishot;
use crate::rt::{buffers, timer};

/// Pieces at least this large are written without copying them into the output buffer.
const WRITE_THROUGH: usize = 8 * 1024;
/// Room made for each read while streaming a body.
const BODY_READ: usize = 64 * 1024;
/// Flush the output buffer once it holds this much.
const OUT_HIGH_WATER: usize = 64 * 1024;

/// A body arriving on an HTTP/1 connection, decoded from its framing. What is already in
/// `buf` is used first; bytes past the body stay there (a pipelined request, say).
pub(crate) struct H1Source<'a, R> {
    io: &'a mut R,
    buf: &'a mut BytesMut,
    decoder: BodyDecoder,
    patience: Patience,
    /// The connection's multishot receive, when it may have one armed (a pooled upstream
    /// connection): the response head is read from it; a body read or spliced from the socket
    /// ends it first.
    multi: Option<&'a mut Option<MultiRecv>>,
}

impl<'a, R: AsyncReadRent> H1Source<'a, R> {
    pub(crate) fn new(
        io: &'a mut R,
        buf: &'a mut BytesMut,
        framing: BodyFraming,
        patience: impl Into<Patience>,
    ) -> Self {
        Self::resume(io, buf, BodyDecoder::new(framing), patience)
    }

    /// Continue with a decoder that already consumed part of the body.
    pub(crate) fn resume(
        io: &'a mut R,
        buf: &'a mut BytesMut,
        decoder: BodyDecoder,
        patience: impl Into<Patience>,
    ) -> Self {
        Self {
            io,
            buf,
            decoder,
            patience: patience.into(),
            multi: None,
        }
    }
}

impl<R: AsyncReadRent + PlainSocket> BodySource for H1Source<'_, R> {
    fn next(&mut self) -> Result<Chunk, PumpError> {
        if self.decoder.is_done() {
            return Ok(Chunk::End);
        }
        match self
            .decoder
            .decode(self.buf)
            .map_err(|_| PumpError::Framing)?
        {
            BodyEvent::Data(d) => Ok(Chunk::Data(d)),
            BodyEvent::Trailers(block) => {
                let mut fields = Fields::new();
                convert::trailer_fields(&block, &mut fields);
                // The decoder reports End next.
                self.decoder
                    .decode(self.buf)
                    .map_err(|_| PumpError::Framing)?;
                Ok(Chunk::Trailers(fields))
            }
            BodyEvent::End => Ok(Chunk::End),
            BodyEvent::NeedMore => Ok(Chunk::Pending),
        }
    }

    async fn fill(&mut self) -> Result<(), PumpError> {
        // A body read from the socket, in large pieces: a multishot receive ends first, and
        // what it took is decoded before anything else is read.
        if let Some(slot) = self.multi.as_deref_mut()
            && slot.is_some()
        {
            multishot::end(slot, self.buf).await;
            if !self.buf.is_empty() {
                return Ok(());
            }
        }
        // A body being streamed: read in large pieces (fewer reads and writes per body).
        if self.buf.capacity() == 0 {
            *self.buf = buffers::take();
        }
        if self.buf.capacity() - self.buf.len() < BODY_READ / 4 {
            self.buf.reserve(BODY_READ);
        }
        let started = timer::coarse_now();
        let deadline = self.patience.deadline();
        match read_into(self.io, self.buf, Some(deadline)).await {
            Ok(0) => self
                .decoder
                .eof()
                .map_err(|_| PumpError::Source(io::ErrorKind::UnexpectedEof)),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(self.patience.timed_out(started)),
            Err(e) => Err(PumpError::Source(e.kind())),
        }
    }

    fn raw_rest(&self) -> Option<RawRest<'_>> {
        // (A multishot receive still armed is ended by the next fill.)
        if !self.buf.is_empty() || self.multi.as_ref().is_some_and(|m| m.is_some()) {
            return None;
        }
        Some(RawRest {
            left: self.decoder.length_left()?,
            socket: self.io.plain_socket()?,
            patience: self.patience,
        })
    }

    fn skipped(&mut self, n: u64) {
        self.decoder.skip(n);
    }
}

/// A body written to an HTTP/1 connection in `framing`. `out` may start with a head. A write
/// the peer takes no byte of for `idle` (the stream idle timeout) fails with
/// [`std::io::ErrorKind::TimedOut`] ([`write_within`]).
pub(crate) struct H1Sink<'a, W> {
    io: &'a mut W,
    out: BytesMut,
    framing: OutFraming,
    idle: Duration,
    /// The connection closes after this message: its last bytes wait for the close's FIN
    /// ([`write_out`]).
    last: bool,
}

impl<'a, W: AsyncWriteRent> H1Sink<'a, W> {
    pub(crate) fn new(io: &'a mut W, out: BytesMut, framing: OutFraming, idle: Duration) -> Self {
        Self {
            io,
            out,
            framing,
            idle,
            last: false,
        }
    }

    async fn flush_out(&mut self) -> io::Result<()> {
        flush_out(self.io, &mut self.out, self.idle).await
    }
}

impl<W: AsyncWriteRent + PlainSocket> BodySink for H1Sink<'_, W> {
    async fn data(&mut self, d: Bytes) -> io::Result<()> {
        if d.len() >= WRITE_THROUGH && self.framing != OutFraming::Chunked {
            self.flush_out().await?;
            return write_within(self.io, d, self.idle).await;
        }
        if self.framing == OutFraming::Chunked {
            encode::chunk_head(&mut self.out, d.len());
            self.out.extend_from_slice(&d);
            self.out.extend_from_slice(encode::CHUNK_END);
        } else {
            self.out.extend_from_slice(&d);
        }
        if self.out.len() >= OUT_HIGH_WATER {
            self.flush_out().await?;
        }
        Ok(())
    }

    async fn trailers(&mut self, fields: Fields) -> io::Result<()> {
        if self.framing == OutFraming::Chunked {
            self.out.extend_from_slice(b"0\r\n");
            convert::write_trailers(&fields, &mut self.out);
            self.out.extend_from_slice(b"\r\n");
        }
        self.flush_out().await
    }

    async fn end(&mut self) -> io::Result<()> {
        if self.framing == OutFraming::Chunked {
            self.out.extend_from_slice(encode::LAST_CHUNK);
        }
        write_out(self.io, self.out.split().freeze(), self.idle, self.last).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.flush_out().await
    }

    fn raw_dest(&self) -> Option<RawDest<'_>> {
        if self.framing == OutFraming::Chunked || !self.out.is_empty() {
            return None;
        }
        Some(RawDest {
            socket: self.io.plain_socket()?,
            idle: self.idle,
        })
    }
}

/// An upstream's HTTP/1 response on a pooled connection: the head, then the body.
pub(crate) struct H1Response<'a, R> {
    body: H1Source<'a, R>,
    parser: http1::ResponseParser,
    method: MethodKind,
    framing: BodyFraming,
    keep_alive: bool,
    /// The body was wholly in the buffer when the head was parsed.
    complete: bool,
    /// The final head and the whole body came in the multishot receive's first bytes.
    whole: bool,
}

impl<'a, R: AsyncReadRent> H1Response<'a, R> {
    /// `multi`: the connection's multishot receive (a pooled connection's), read first while
    /// it is armed, and ended when the response's body does not come whole with its head.
    pub(crate) fn new(
        io: &'a mut R,
        buf: &'a mut BytesMut,
        head_request: bool,
        patience: impl Into<Patience>,
        multi: Option<&'a mut Option<MultiRecv>>,
    ) -> Self {
        if buf.capacity() == 0 {
            *buf = buffers::take();
        }
        let mut body = H1Source::new(io, buf, BodyFraming::None, patience);
        body.multi = multi;
        Self {
            body,
            parser: http1::ResponseParser::new(),
            method: if head_request {
                MethodKind::Head
            } else {
                MethodKind::Other
            },
            framing: BodyFraming::None,
            keep_alive: false,
            complete: false,
            whole: false,
        }
    }

    /// Whether the response came whole (head and body) in one arrival of a multishot
    /// receive, which then stays armed for the next one.
    pub(crate) fn came_whole(&self) -> bool {
        self.whole
    }
}

impl<R: AsyncReadRent + PlainSocket> BodySource for H1Response<'_, R> {
    fn next(&mut self) -> Result<Chunk, PumpError> {
        self.body.next()
    }

    async fn fill(&mut self) -> Result<(), PumpError> {
        self.body.fill().await
    }

    fn raw_rest(&self) -> Option<RawRest<'_>> {
        self.body.raw_rest()
    }

    fn skipped(&mut self, n: u64) {
        self.body.skipped(n);
    }
}

impl<R: AsyncReadRent + PlainSocket> ResponseSource for H1Response<'_, R> {
    async fn head(&mut self, deadline: Option<Instant>) -> Result<RespHead, ProxyError> {
        let r = crate::upstream::read_response_head(
            self.body.io,
            self.body.buf,
            &mut self.parser,
            self.method,
            deadline,
            self.body.multi.as_deref_mut(),
        )
        .await?;
        if !r.is_informational() {
            self.framing = r.framing();
            self.keep_alive = r.is_keep_alive() && self.framing != BodyFraming::Close;
            let complete = |buf: &BytesMut| match self.framing {
                BodyFraming::None => true,
                BodyFraming::Length(n) => buf.len() as u64 >= n,
                BodyFraming::Chunked | BodyFraming::Close => false,
            };
            self.complete = complete(self.body.buf);
            if let Some(slot) = self.body.multi.as_deref_mut()
                && slot.is_some()
            {
                // A body still to come is read from the socket (in large pieces, or spliced).
                self.whole = self.complete && self.keep_alive;
                if !self.complete {
                    multishot::end(slot, self.body.buf).await;
                    self.complete = complete(self.body.buf);
                }
            }
            self.body.decoder = BodyDecoder::new(self.framing);
        }
        Ok(RespHead::H1(r))
    }

    fn is_complete(&self) -> bool {
        self.complete
    }

    fn is_reusable(&self) -> bool {
        self.keep_alive
    }
}

/// A response written to an HTTP/1 client.
pub(crate) struct H1Client<'a, W> {
    sink: H1Sink<'a, W>,
    /// By reference: the facts are a few hundred bytes, and copying them is a `memcpy`.
    facts: &'a ReqFacts<'a>,
}

impl<'a, W: AsyncWriteRent> H1Client<'a, W> {
    /// `idle`: the stream idle timeout, which also bounds each wait for the client to take
    /// bytes.
    pub(crate) fn new(io: &'a mut W, facts: &'a ReqFacts<'a>, idle: Duration) -> Self {
        Self {
            sink: H1Sink::new(io, BytesMut::new(), OutFraming::AsIs, idle),
            facts,
        }
    }
}

impl<W: AsyncWriteRent + PlainSocket> BodySink for H1Client<'_, W> {
    async fn data(&mut self, d: Bytes) -> io::Result<()> {
        self.sink.data(d).await
    }
    async fn trailers(&mut self, fields: Fields) -> io::Result<()> {
        self.sink.trailers(fields).await
    }
    async fn end(&mut self) -> io::Result<()> {
        self.sink.end().await
    }
    async fn flush(&mut self) -> io::Result<()> {
        self.sink.flush().await
    }
    fn raw_dest(&self) -> Option<RawDest<'_>> {
        self.sink.raw_dest()
    }
}

impl<W: AsyncWriteRent + PlainSocket> ResponseSink for H1Client<'_, W> {
    async fn interim(&mut self, resp: &RespHead) -> io::Result<()> {
        // 100 Continue was answered by ringway; other interim responses from an HTTP/1
        // upstream pass through (an HTTP/2 upstream's are not passed on).
        match resp {
            RespHead::H1(r) if r.status() != 100 => {
                write_within(self.sink.io, r.raw().clone(), self.sink.idle).await
            }
            _ => Ok(()),
        }
    }

    async fn head(&mut self, resp: &RespHead, answered_early: bool) -> io::Result<HeadSent> {
        let f = &self.facts;
        let down_10 = f.http10;
        let status = resp.status();
        let upgrade = status == 101;
        let out_cap = match resp {
            RespHead::H1(r) => r.raw().len().min(64 * 1024) + 512,
            RespHead::H2(..) => 512,
        };
        let mut out = BytesMut::with_capacity(out_cap);
        let (framing, keep) = match resp {
            RespHead::H1(r) => {
                let framing = match r.framing() {
                    BodyFraming::Chunked | BodyFraming::Close if !down_10 => OutFraming::Chunked,
                    BodyFraming::Close | BodyFraming::Chunked => OutFraming::Close,
                    BodyFraming::None | BodyFraming::Length(_) => OutFraming::AsIs,
                };
                let keep = f.keep_alive_wanted()
                    && framing != OutFraming::Close
                    && !upgrade
                    && !answered_early;
                head::write_response(
                    &mut out,
                    r,
                    &ResponseRewrite {
                        edits: f.edits,
                        opts: f.opts,
                        framing,
                        close: !keep,
                        keep_alive_10: keep && down_10,
                        upgrade,
                    },
                );
                (framing, keep)
            }
            RespHead::H2(fields, end) => {
                let end = *end;
                let has_length = fields.value_of(b"content-length").is_some();
                let bodiless = f.head_request || status == 204 || status == 304;
                let framing = if end || has_length || bodiless {
                    OutFraming::AsIs
                } else if down_10 {
                    OutFraming::Close
                } else {
                    OutFraming::Chunked
                };
                let keep = f.keep_alive_wanted() && framing != OutFraming::Close && !answered_early;
                // A response that ended with its head still needs a length for HTTP/1.
                let zero: &[(&[u8], &[u8])] = if end && !has_length && !bodiless {
                    &[(b"content-length", b"0")]
                } else {
                    &[]
                };
                head::write_response_fields(
                    &mut out,
                    status,
                    fields.iter().chain(zero.iter().copied()),
                    &ResponseRewrite {
                        edits: f.edits,
                        opts: f.opts,
                        framing,
                        close: !keep,
                        keep_alive_10: keep && down_10,
                        upgrade: false,
                    },
                );
                (framing, keep)
            }
        };
        let head_bytes = out.len() as u64;
        self.sink.out = out;
        self.sink.framing = framing;
        // An upgraded connection goes on as a tunnel; any other that is not kept closes
        // after this response.
        self.sink.last = !keep && !upgrade;
        if upgrade {
            self.sink.flush().await?;
        }
        Ok(HeadSent {
            keep_alive: keep,
            upgrade,
            head_bytes,
        })
    }
}
