//! Streaming a message body from one connection to the other, re-framed for the next hop.
//!
//! The decoder yields `Bytes` slices of the read buffer. Small pieces are gathered in an
//! output buffer (so a head and a small body leave in one write); large pieces are written
//! straight from the read buffer without a copy. Memory stays bounded by the buffer sizes
//! whatever the body length.

use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};
use protocols::http1::{BodyDecoder, BodyError, BodyEvent, encode};

use crate::filters::BufferedBody;
pub(crate) use crate::net::io::{write_out, write_within};
use crate::proxy::head::OutFraming;
pub(crate) use crate::rt::buffers::read_into;
use crate::rt::timer;

/// Which side a body transfer failed on.
#[derive(Debug)]
pub(crate) enum PumpError {
    /// Reading the source failed, timed out, or it closed mid-body.
    Source(io::ErrorKind),
    /// The source sent nothing for the stream idle timeout ([`Patience::idle`]).
    Idle,
    /// The source sent invalid framing.
    Framing,
    /// Writing to the destination failed.
    Sink,
    /// The destination took no byte for the stream idle timeout: a client (or upstream) that
    /// stopped reading ([`write_within`]).
    Stalled,
    /// A filter's data or trailers phase answered while the body was passing: too late for a
    /// local answer, so the transfer stops.
    Filter,
}

/// How long a body read may wait: `idle` for its next bytes, and never past `ends_by` (the
/// route timeout over the whole response, say).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    pub(crate) idle: Duration,
    pub(crate) ends_by: Option<Instant>,
}

impl Patience {
    /// When a read starting now gives up.
    pub(crate) fn deadline(&self) -> Instant {
        let by_idle = timer::coarse_now() + self.idle;
        match self.ends_by {
            Some(end) if end < by_idle => end,
            _ => by_idle,
        }
    }

    /// A read that waited from `started` (its [`Patience::deadline`] then) timed out: into
    /// the idle timeout ([`PumpError::Idle`]), or into `ends_by`.
    pub(crate) fn timed_out(&self, started: Instant) -> PumpError {
        match self.ends_by {
            Some(end) if end < started + self.idle => PumpError::Source(io::ErrorKind::TimedOut),
            _ => PumpError::Idle,
        }
    }
}

impl From<Duration> for Patience {
    fn from(idle: Duration) -> Self {
        Self {
            idle,
            ends_by: None,
        }
    }
}

/// Write all of `data`.
pub(crate) async fn write_bytes<W: AsyncWriteRent>(io: &mut W, data: Bytes) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    io.write_all(data).await.0.map(|_| ())
}

/// Write out and empty `out` ([`write_within`]), keeping its remaining capacity for reuse.
pub(crate) async fn flush_out<W: AsyncWriteRent>(
    io: &mut W,
    out: &mut BytesMut,
    idle: Duration,
) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    write_within(io, out.split().freeze(), idle).await
}

/// Frame one piece of body data into `out` for the outgoing side.
fn frame_into(out: &mut BytesMut, data: &[u8], framing: OutFraming) {
    if framing == OutFraming::Chunked {
        encode::chunk_head(out, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(encode::CHUNK_END);
    } else {
        out.extend_from_slice(data);
    }
}

fn frame_end(out: &mut BytesMut, trailers: Option<&[u8]>, framing: OutFraming) {
    if framing != OutFraming::Chunked {
        return;
    }
    match trailers {
        Some(t) => {
            out.extend_from_slice(b"0\r\n");
            out.extend_from_slice(t);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(encode::LAST_CHUNK),
    }
}

/// Frame a whole body held in memory (and its trailers, sent only when chunked) into `out`.
pub(crate) fn frame_whole(out: &mut BytesMut, body: &BufferedBody, framing: OutFraming) {
    if !body.data.is_empty() {
        frame_into(out, &body.data, framing);
    }
    if framing == OutFraming::Chunked {
        out.extend_from_slice(b"0\r\n");
        if let Some(t) = &body.trailers {
            crate::proxy::h2::convert::write_trailers(t, out);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Move the body bytes already in `buf` into `out`, framed. Returns `true` when the body
/// ended within `buf`. Never reads or writes a socket.
pub(crate) fn fill(
    decoder: &mut BodyDecoder,
    buf: &mut BytesMut,
    out: &mut BytesMut,
    framing: OutFraming,
    moved: &mut u64,
) -> Result<bool, BodyError> {
    if decoder.is_done() {
        return Ok(true);
    }
    loop {
        match decoder.decode(buf)? {
            BodyEvent::Data(d) => {
                *moved += d.len() as u64;
                frame_into(out, &d, framing);
            }
            BodyEvent::Trailers(t) => {
                frame_end(out, Some(&t), framing);
                // The decoder reports End next; the last chunk is already written.
                return finish_after_trailers(decoder, buf);
            }
            BodyEvent::End => {
                frame_end(out, None, framing);
                return Ok(true);
            }
            BodyEvent::NeedMore => return Ok(false),
        }
    }
}

fn finish_after_trailers(decoder: &mut BodyDecoder, buf: &mut BytesMut) -> Result<bool, BodyError> {
    match decoder.decode(buf)? {
        BodyEvent::End => Ok(true),
        _ => Ok(decoder.is_done()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::http1::BodyFraming;

    #[test]
    fn fill_rechunks_a_complete_chunked_body() {
        let mut dec = BodyDecoder::new(BodyFraming::Chunked);
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT"[..]);
        let mut out = BytesMut::new();
        let mut n = 0;
        assert!(fill(&mut dec, &mut buf, &mut out, OutFraming::Chunked, &mut n).unwrap());
        assert_eq!(&out[..], b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        assert_eq!(n, 5);
        assert_eq!(&buf[..], b"NEXT", "pipelined bytes stay in the buffer");
    }

    #[test]
    fn fill_stops_at_content_length() {
        let mut dec = BodyDecoder::new(BodyFraming::Length(4));
        let mut buf = BytesMut::from(&b"abcdGET"[..]);
        let mut out = BytesMut::new();
        let mut n = 0;
        assert!(fill(&mut dec, &mut buf, &mut out, OutFraming::AsIs, &mut n).unwrap());
        assert_eq!(&out[..], b"abcd");
        assert_eq!(&buf[..], b"GET");
    }

    #[test]
    fn fill_reports_partial_body() {
        let mut dec = BodyDecoder::new(BodyFraming::Length(10));
        let mut buf = BytesMut::from(&b"abc"[..]);
        let mut out = BytesMut::new();
        let mut n = 0;
        assert!(!fill(&mut dec, &mut buf, &mut out, OutFraming::AsIs, &mut n).unwrap());
        assert_eq!(n, 3);
    }

    #[test]
    fn trailers_are_forwarded_on_chunked() {
        let mut dec = BodyDecoder::new(BodyFraming::Chunked);
        let mut buf = BytesMut::from(&b"1\r\na\r\n0\r\nx-sum: 1\r\n\r\n"[..]);
        let mut out = BytesMut::new();
        let mut n = 0;
        assert!(fill(&mut dec, &mut buf, &mut out, OutFraming::Chunked, &mut n).unwrap());
        assert_eq!(&out[..], b"1\r\na\r\n0\r\nx-sum: 1\r\n\r\n");
    }
}
