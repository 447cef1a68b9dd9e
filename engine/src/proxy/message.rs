//! The protocol-neutral message model the exchange moves between codecs: a response head from
//! either upstream codec, body chunks, and the two halves every codec adapter implements for a
//! body ([`BodySource`] reads one, [`BodySink`] writes one). [`pump`] moves a body from any
//! source to any sink, so the four protocol pairings share one body loop in each direction.
//!
//! The request head is the protocol-neutral [`protocols::http::RequestHead`] (offsets into one
//! buffer: the received head for HTTP/1, the packed decoded fields for HTTP/2); its header
//! edits are applied once, by [`super::head::rewrite_request`], as it is written for either
//! upstream codec ([`crate::filters::Edits`]).

use std::io;

use bytes::Bytes;
use protocols::http1::{BodyFraming, ResponseHead};

use super::body::PumpError;
use super::h2::convert::{self, Fields};

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
}

/// Move a body from `src` to `sink` until it ends; `moved` counts the data bytes passed on.
pub(crate) async fn pump<S: BodySource, K: BodySink>(
    src: &mut S,
    sink: &mut K,
    moved: &mut u64,
) -> Result<(), PumpError> {
    let to_sink = |_: io::Error| PumpError::Sink;
    let mut next = src.next()?;
    loop {
        match next {
            Chunk::Data(d) => {
                let n = d.len();
                // A body whose end is already buffered ends with its last piece.
                let after = src.next()?;
                if matches!(after, Chunk::End) {
                    sink.last(d).await.map_err(to_sink)?;
                    src.release(n);
                    *moved += n as u64;
                    return Ok(());
                }
                sink.data(d).await.map_err(to_sink)?;
                src.release(n);
                *moved += n as u64;
                next = after;
            }
            Chunk::Trailers(t) => return sink.trailers(t).await.map_err(to_sink),
            Chunk::End => return sink.end().await.map_err(to_sink),
            Chunk::Pending => {
                sink.flush().await.map_err(to_sink)?;
                src.fill().await?;
                next = src.next()?;
            }
        }
    }
}

/// A request body held in memory ([`crate::filters::BufferedBody`]) as a source.
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
