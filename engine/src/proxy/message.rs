//! The protocol-neutral message model the exchange moves between codecs: a response head from
//! either upstream codec, body chunks, and the two halves every codec adapter implements for a
//! body ([`BodySource`] reads one, [`BodySink`] writes one). [`pump`] moves a body from any
//! source to any sink, so the four protocol pairings share one body loop in each direction.
//!
//! [`pump_with`] is the same loop with the filters' data and trailers phases on the way
//! ([`Decode`] for a request body, [`Encode`] for a response body); the exchange uses it only
//! when a filter of its chain has such a phase ([`crate::filters::Phases`]), so a chain
//! without one costs nothing per piece. Without them, the rest of a long Content-Length body
//! between two plain TCP HTTP/1 connections is spliced instead of read and written
//! ([`splice_rest`]: the kernel moves it socket -> pipe -> socket).
//!
//! The request head is the protocol-neutral [`protocols::http::RequestHead`] (offsets into one
//! buffer: the received head for HTTP/1, the packed decoded fields for HTTP/2); its header
//! edits are applied once, by [`super::head::rewrite_request`], as it is written for either
//! upstream codec ([`crate::filters::Edits`]).

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use monoio::net::TcpStream;
use protocols::http1::{BodyFraming, ResponseHead};

use super::body::{Patience, PumpError};
use super::h2::convert::{self, Fields};
use crate::filters::{Chain, FilterState, Flow, ResponseInfo, Wait};
use crate::net::pipe::{self, Stopped};

/// A response head as the upstream codec read it.
pub(crate) enum RespHead {
    H1(ResponseHead),
    /// HTTP/2 fields (`:status` first) and whether the HEADERS frame ended the stream.
    H2(Fields, bool),
}

impl RespHead {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::H1(h) => h.status(),
            Self::H2(f, _) => convert::status_of(f),
        }
    }

    /// Nothing follows the head: no body (as framed by HTTP/1, or ended with the HTTP/2
    /// HEADERS frame).
    pub(crate) fn is_bodiless(&self) -> bool {
        match self {
            Self::H1(h) => matches!(h.framing(), BodyFraming::None | BodyFraming::Length(0)),
            Self::H2(_, end) => *end,
        }
    }
}

impl ResponseInfo for RespHead {
    fn status(&self) -> u16 {
        Self::status(self)
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        match self {
            Self::H1(h) => h.header(name),
            Self::H2(f, _) => f.value_of(name),
        }
    }
}

/// A piece of a body.
pub(crate) enum Chunk {
    Data(Bytes),
    /// Trailer fields (lowercase names); the body ends with them.
    Trailers(Fields),
    End,
    /// Nothing decodable is buffered: the sink should flush, then the source [`BodySource::fill`].
    Pending,
}

/// A body being read: from the client (a request) or from the upstream (a response).
pub(crate) trait BodySource {
    /// The next piece, or [`Chunk::Pending`] when more must be read first (never waits).
    fn next(&mut self) -> Result<Chunk, PumpError>;
    /// Read more (after [`Chunk::Pending`]), waiting at most the idle timeout.
    async fn fill(&mut self) -> Result<(), PumpError>;
    /// `n` bytes were passed on: credit the sender (HTTP/2 flow control).
    fn release(&self, _n: usize) {}
    /// The rest of the body, when it may be moved from socket to socket without being read
    /// (a Content-Length body on a plain TCP connection, nothing of it buffered); `None` by
    /// default.
    fn raw_rest(&self) -> Option<RawRest<'_>> {
        None
    }
    /// `n` bytes of the rest [`Self::raw_rest`] named were moved past the source.
    fn skipped(&mut self, _n: u64) {}
}

/// The rest of a body that may be moved without being read ([`BodySource::raw_rest`]).
pub(crate) struct RawRest<'a> {
    /// The plain TCP socket it arrives on; nothing but the body comes before its end.
    pub(crate) socket: &'a TcpStream,
    /// Bytes of it still to come.
    pub(crate) left: u64,
    /// How long each wait for them may be.
    pub(crate) patience: Patience,
}

/// Where a body may be moved without being read ([`BodySink::raw_dest`]).
pub(crate) struct RawDest<'a> {
    /// The plain TCP socket it goes to, as it comes (no re-framing).
    pub(crate) socket: &'a TcpStream,
    /// The longest wait for the peer to take bytes (the stream idle timeout).
    pub(crate) idle: Duration,
}

/// A body being written: to the upstream (a request) or to the client (a response).
pub(crate) trait BodySink {
    /// Send (or gather) a piece of data.
    async fn data(&mut self, data: Bytes) -> io::Result<()>;
    /// End the body with trailers.
    async fn trailers(&mut self, fields: Fields) -> io::Result<()>;
    /// End the body.
    async fn end(&mut self) -> io::Result<()>;
    /// Send the last piece of data and end the body (HTTP/2: one DATA frame with END_STREAM
    /// instead of an empty one after it).
    async fn last(&mut self, data: Bytes) -> io::Result<()> {
        self.data(data).await?;
        self.end().await
    }
    /// Write out what was gathered.
    async fn flush(&mut self) -> io::Result<()>;
    /// The plain TCP socket the body's bytes may be written to as they come (no re-framing),
    /// asked once what was gathered is flushed; `None` by default.
    fn raw_dest(&self) -> Option<RawDest<'_>> {
        None
    }
}

/// Body bytes a [`pump`] passed on.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Moved {
    /// All of them.
    pub(crate) bytes: u64,
    /// Those moved from socket to socket without being read ([`splice_rest`]).
    pub(crate) spliced: u64,
}

/// The rest of a body at least this long goes from socket to socket without being read, when
/// both sides allow it: below it, two `fcntl` calls per socket and a pipe cost more than the
/// copies they save.
const SPLICE_FROM: u64 = 16 * 1024;

/// Move a body from `src` to `sink` until it ends; `moved` counts the data bytes passed on.
/// With no filter phase to see them, the rest of a long body is spliced ([`splice_rest`]).
pub(crate) async fn pump<S: BodySource, K: BodySink>(
    src: &mut S,
    sink: &mut K,
    moved: &mut Moved,
) -> Result<(), PumpError> {
    pump_with(src, sink, moved, &NoPhases).await
}

/// An exchange's filters as its two halves see them while both run (the request body upload
/// and the response relay): the chain and the request's filter state. A phase borrows the
/// state only while it runs, never across an await, so the two never collide.
#[derive(Clone, Copy)]
pub(crate) struct Filters<'s, 'a> {
    pub(crate) chain: Chain<'a>,
    pub(crate) state: &'s RefCell<FilterState>,
}

/// What a body's data and trailers phases said of one piece.
pub(crate) enum Step {
    /// Pass it on.
    Go,
    /// Wait, then run the phase again from the filter that paused.
    Wait(Wait),
    /// A filter answered: stop the transfer ([`PumpError::Filter`]).
    Stop,
}

impl Step {
    fn of(flow: Flow<'_>) -> Self {
        match flow {
            Flow::Continue | Flow::StopAndBuffer { .. } => Self::Go,
            Flow::Pause(w) => Self::Wait(w),
            Flow::Respond(_) => Self::Stop,
        }
    }
}

/// The filter phases a body passes in [`pump_with`].
pub(crate) trait BodyPhases {
    /// Whether any phase runs: [`NoPhases`] makes [`pump_with`] the plain loop.
    const ACTIVE: bool = true;
    /// The data phase for `len` bytes, from filter `from` on; with the index to resume at.
    fn data(&self, from: usize, len: usize) -> (Step, usize);
    /// The trailers phase, from filter `from` on.
    fn trailers(&self, from: usize, trailers: &mut Fields) -> (Step, usize);
}

/// No filter phase: what [`pump`] passes.
pub(crate) struct NoPhases;

impl BodyPhases for NoPhases {
    const ACTIVE: bool = false;

    fn data(&self, _from: usize, _len: usize) -> (Step, usize) {
        (Step::Go, 0)
    }

    fn trailers(&self, _from: usize, _trailers: &mut Fields) -> (Step, usize) {
        (Step::Go, 0)
    }
}

/// A request body's decode phases.
pub(crate) struct Decode<'s, 'a>(pub(crate) Filters<'s, 'a>);

impl BodyPhases for Decode<'_, '_> {
    fn data(&self, _from: usize, len: usize) -> (Step, usize) {
        // Decode data runs the whole chain each time (a pause runs it again).
        let st = &mut self.0.state.borrow_mut();
        (Step::of(self.0.chain.decode_data(len, st)), 0)
    }

    fn trailers(&self, from: usize, trailers: &mut Fields) -> (Step, usize) {
        let st = &mut self.0.state.borrow_mut();
        let (flow, at) = self.0.chain.decode_trailers(from, trailers, st);
        (Step::of(flow), at)
    }
}

/// A response body's encode phases.
pub(crate) struct Encode<'s, 'a>(pub(crate) Filters<'s, 'a>);

impl BodyPhases for Encode<'_, '_> {
    fn data(&self, from: usize, len: usize) -> (Step, usize) {
        let st = &mut self.0.state.borrow_mut();
        let (flow, at) = self.0.chain.encode_data(from, len, st);
        (Step::of(flow), at)
    }

    fn trailers(&self, from: usize, trailers: &mut Fields) -> (Step, usize) {
        let st = &mut self.0.state.borrow_mut();
        let (flow, at) = self.0.chain.encode_trailers(from, trailers, st);
        (Step::of(flow), at)
    }
}

/// Run a phase until it lets the piece pass, waiting out each pause and resuming at the filter
/// that paused.
async fn passed(mut phase: impl FnMut(usize) -> (Step, usize)) -> Result<(), PumpError> {
    let mut from = 0;
    loop {
        match phase(from) {
            (Step::Go, _) => return Ok(()),
            (Step::Wait(w), at) => {
                w.elapse().await;
                from = at;
            }
            (Step::Stop, _) => return Err(PumpError::Filter),
        }
    }
}

/// [`pump`] with the filters' data and trailers phases on the way: each piece passes them
/// before the sink takes it (so nothing is spliced past them).
pub(crate) async fn pump_with<S: BodySource, K: BodySink, P: BodyPhases>(
    src: &mut S,
    sink: &mut K,
    moved: &mut Moved,
    phases: &P,
) -> Result<(), PumpError> {
    let mut next = src.next()?;
    loop {
        match next {
            Chunk::Data(d) => {
                let n = d.len();
                if P::ACTIVE {
                    passed(|from| phases.data(from, n)).await?;
                }
                // A body whose end is already buffered ends with its last piece.
                let after = src.next()?;
                if matches!(after, Chunk::End) {
                    sink.last(d).await.map_err(sink_error)?;
                    src.release(n);
                    moved.bytes += n as u64;
                    return Ok(());
                }
                sink.data(d).await.map_err(sink_error)?;
                src.release(n);
                moved.bytes += n as u64;
                next = after;
            }
            Chunk::Trailers(mut t) => {
                if P::ACTIVE {
                    passed(|from| phases.trailers(from, &mut t)).await?;
                }
                return sink.trailers(t).await.map_err(sink_error);
            }
            Chunk::End => return sink.end().await.map_err(sink_error),
            Chunk::Pending => {
                sink.flush().await.map_err(sink_error)?;
                if !P::ACTIVE && splice_rest(src, sink, moved).await? {
                    next = src.next()?;
                    continue;
                }
                src.fill().await?;
                next = src.next()?;
            }
        }
    }
}

/// What a failed [`BodySink`] write means for the transfer: the destination stalled (a write
/// waited past the stream idle timeout, [`io::ErrorKind::TimedOut`]) or went away.
fn sink_error(e: io::Error) -> PumpError {
    if e.kind() == io::ErrorKind::TimedOut {
        PumpError::Stalled
    } else {
        PumpError::Sink
    }
}

/// Moves the rest of the body from the source's socket to the sink's without reading it, when
/// both allow it and at least [`SPLICE_FROM`] bytes are left ([`crate::net::pipe::move_exact`]).
/// `Ok(false)`: nothing was moved (not possible here, or no pipe to be had): the caller reads
/// and writes instead.
async fn splice_rest<S: BodySource, K: BodySink>(
    src: &mut S,
    sink: &K,
    moved: &mut Moved,
) -> Result<bool, PumpError> {
    let (Some(rest), Some(dst)) = (src.raw_rest(), sink.raw_dest()) else {
        return Ok(false);
    };
    if rest.left < SPLICE_FROM {
        return Ok(false);
    }
    let patience = rest.patience;
    // Boxed: only long bodies get here, and the move's state would otherwise size every
    // response relay's future (moved with each request's).
    let (n, res) = Box::pin(pipe::move_exact(
        rest.socket,
        dst.socket,
        rest.left,
        move || patience.deadline(),
        dst.idle,
    ))
    .await;
    src.skipped(n);
    moved.bytes += n;
    moved.spliced += n;
    match res {
        Ok(()) => Ok(true),
        Err(Stopped::Unavailable) => Ok(false),
        Err(Stopped::Src(kind)) => Err(PumpError::Source(kind)),
        Err(Stopped::SrcTimedOut(started)) => Err(patience.timed_out(started)),
        Err(Stopped::Dst) => Err(PumpError::Sink),
        Err(Stopped::DstStalled) => Err(PumpError::Stalled),
    }
}

/// A request body held in memory ([`crate::filters::BufferedBody`]) as a source.
/// A body whose start was read already: `prefix` first, then the rest from `rest`.
pub(crate) struct Prefixed<S> {
    prefix: Option<Bytes>,
    /// Bytes of the prefix, credited to the sender when it was read: not credited again.
    credited: std::cell::Cell<usize>,
    rest: S,
}

impl<S> Prefixed<S> {
    /// `prefix` (empty: none) was read, and credited, before `rest`.
    pub(crate) fn new(prefix: Bytes, rest: S) -> Self {
        Self {
            credited: std::cell::Cell::new(prefix.len()),
            prefix: Some(prefix).filter(|p| !p.is_empty()),
            rest,
        }
    }
}

impl<S: BodySource> BodySource for Prefixed<S> {
    fn next(&mut self) -> Result<Chunk, PumpError> {
        match self.prefix.take() {
            Some(p) => Ok(Chunk::Data(p)),
            None => self.rest.next(),
        }
    }

    async fn fill(&mut self) -> Result<(), PumpError> {
        self.rest.fill().await
    }

    fn release(&self, n: usize) {
        let skip = n.min(self.credited.get());
        self.credited.set(self.credited.get() - skip);
        if n > skip {
            self.rest.release(n - skip);
        }
    }
}

pub(crate) struct MemorySource<'b> {
    data: Option<Bytes>,
    trailers: Option<&'b Fields>,
    ended: bool,
}

impl<'b> MemorySource<'b> {
    pub(crate) fn new(body: &'b crate::filters::BufferedBody) -> Self {
        Self {
            data: Some(body.data.clone()).filter(|d| !d.is_empty()),
            trailers: body.trailers.as_ref(),
            ended: false,
        }
    }
}

impl BodySource for MemorySource<'_> {
    fn next(&mut self) -> Result<Chunk, PumpError> {
        if let Some(d) = self.data.take() {
            return Ok(Chunk::Data(d));
        }
        if self.ended {
            return Ok(Chunk::End);
        }
        self.ended = true;
        Ok(match self.trailers {
            Some(t) => Chunk::Trailers(t.clone()),
            None => Chunk::End,
        })
    }

    async fn fill(&mut self) -> Result<(), PumpError> {
        Ok(())
    }
}
