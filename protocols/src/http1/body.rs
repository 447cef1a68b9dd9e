//! Message body decoding (RFC 9112 sections 6.3 and 7.1): Content-Length, chunked with
//! extensions and trailers, and close-delimited bodies.
//!
//! Owns: [`BodyDecoder`], a sans-IO state machine over the caller's `BytesMut`; data is handed
//! out as zero-copy `split_to(n).freeze()` slices. Does not: de-chunk into a contiguous buffer,
//! interpret chunk extensions, or merge trailers into the head (they are returned raw, validated).

use bytes::{Buf, Bytes, BytesMut};

use super::BodyError;
use super::headers::{BodyFraming, is_tchar, is_valid_field_line};

/// Longest chunk-size line (size, extensions, CRLF) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section (all trailer field lines and the final CRLF) accepted.
pub const MAX_TRAILERS: usize = 16384;

/// One step of body decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyEvent {
    /// Body bytes (never empty), a slice of the input buffer.
    Data(Bytes),
    /// The raw trailer field block of a chunked body: field lines each ending in CRLF, every line
    /// validated, without the final empty line. `End` follows.
    Trailers(Bytes),
    /// The body is complete; every later call returns `End` too and consumes nothing.
    End,
    /// More input is needed (or, for close-delimited bodies, the peer's close via `eof`).
    NeedMore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length {
        remaining: u64,
    },
    Close {
        eof: bool,
    },
    /// `scanned`: bytes of the size line already searched for its end.
    ChunkSize {
        scanned: usize,
    },
    ChunkData {
        remaining: u64,
    },
    ChunkDataCrlf,
    Trailers(TrailerScan),
    Done,
}

/// Resumable position in a trailer section not yet complete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TrailerScan {
    pos: usize,
    line_start: usize,
}

/// Sans-IO body decoder for one message. Feed it the bytes that follow the head.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    /// A decoder for a body with the given framing.
    pub fn new(framing: BodyFraming) -> Self {
        let state = match framing {
            BodyFraming::None | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::ChunkSize { scanned: 0 },
            BodyFraming::Close => State::Close { eof: false },
        };
        Self { state }
    }

    /// Whether the whole body has been decoded (the next `decode` returns `End`).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes still to come of a Content-Length body; `None` for any other framing, and once
    /// the body is complete. With [`Self::skip`], a caller may move them without decoding them
    /// (a splice from socket to socket): the framing needs nothing of their content.
    pub fn length_left(&self) -> Option<u64> {
        match self.state {
            State::Length { remaining } => Some(remaining),
            _ => None,
        }
    }

    /// `n` bytes of a Content-Length body went past the decoder (see [`Self::length_left`]);
    /// the body is complete when none is left. More than what is left counts as what is left;
    /// other framings are unchanged.
    pub fn skip(&mut self, n: u64) {
        if let State::Length { remaining } = self.state {
            debug_assert!(n <= remaining, "skipped past the body's end");
            let left = remaining.saturating_sub(n);
            self.state = if left == 0 {
                State::Done
            } else {
                State::Length { remaining: left }
            };
        }
    }

    /// The peer closed: `Ok` for close-delimited bodies (then `decode` returns what is left, then
    /// `End`) and for complete bodies; `Err(BodyError::Incomplete)` mid-body otherwise.
    pub fn eof(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::Close { .. } => {
                self.state = State::Close { eof: true };
                Ok(())
            }
            State::Done => Ok(()),
            _ => Err(BodyError::Incomplete),
        }
    }

    /// Decode the next event from the front of `src`, consuming what it returns.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<BodyEvent, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(BodyEvent::End),
                State::Length { remaining } => {
                    if src.is_empty() {
                        return Ok(BodyEvent::NeedMore);
                    }
                    let n = take(remaining, src.len());
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length { remaining: left }
                    };
                    return Ok(BodyEvent::Data(src.split_to(n).freeze()));
                }
                State::Close { eof } => {
                    if !src.is_empty() {
                        return Ok(BodyEvent::Data(src.split().freeze()));
                    }
                    if eof {
                        self.state = State::Done;
                        return Ok(BodyEvent::End);
                    }
                    return Ok(BodyEvent::NeedMore);
                }
                State::ChunkSize { mut scanned } => {
                    let line = chunk_size_line(src, &mut scanned);
                    self.state = State::ChunkSize { scanned };
                    let Some((consumed, size)) = line? else {
                        return Ok(BodyEvent::NeedMore);
                    };
                    src.advance(consumed);
                    self.state = if size == 0 {
                        State::Trailers(TrailerScan::default())
                    } else {
                        State::ChunkData { remaining: size }
                    };
                }
                State::ChunkData { remaining } => {
                    if src.is_empty() {
                        return Ok(BodyEvent::NeedMore);
                    }
                    let n = take(remaining, src.len());
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::ChunkDataCrlf
                    } else {
                        State::ChunkData { remaining: left }
                    };
                    return Ok(BodyEvent::Data(src.split_to(n).freeze()));
                }
                State::ChunkDataCrlf => match (src.first(), src.get(1)) {
                    (None, _) | (Some(b'\r'), None) => return Ok(BodyEvent::NeedMore),
                    (Some(b'\r'), Some(b'\n')) => {
                        src.advance(2);
                        self.state = State::ChunkSize { scanned: 0 };
                    }
                    // RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF.
                    _ => return Err(BodyError::MissingChunkCrlf),
                },
                State::Trailers(mut scan) => {
                    let section = trailer_section(src, &mut scan);
                    self.state = State::Trailers(scan);
                    let Some(block) = section? else {
                        return Ok(BodyEvent::NeedMore);
                    };
                    self.state = State::Done;
                    if block == 0 {
                        src.advance(2);
                        return Ok(BodyEvent::End);
                    }
                    let trailers = src.split_to(block).freeze();
                    src.advance(2);
                    return Ok(BodyEvent::Trailers(trailers));
                }
            }
        }
    }
}

/// `min(remaining, available)` as a usize.
fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

/// Parses a complete chunk-size line at the front of `src`: `Some((bytes incl. CRLF, size))`.
///
/// `scanned` is how much of the line earlier calls already searched for its end (resumed, so a
/// trickled line costs O(n)). Checks run in byte order (first byte, then line ending, then the
/// grammar of the complete line), so the verdict does not depend on how the input was split.
fn chunk_size_line(src: &[u8], scanned: &mut usize) -> Result<Option<(usize, u64)>, BodyError> {
    if src.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
        return Err(BodyError::InvalidChunkSize);
    }
    let window = src.get(..MAX_CHUNK_LINE).unwrap_or(src);
    let rest = window.get(*scanned..).unwrap_or_default();
    let Some(skip) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
        *scanned = window.len();
        if src.len() >= MAX_CHUNK_LINE {
            return Err(BodyError::ChunkLineTooLong);
        }
        return Ok(None);
    };
    let cr = *scanned + skip;
    *scanned = cr;
    if rest.get(skip) == Some(&b'\n') {
        return Err(BodyError::BareLf);
    }
    match window.get(cr + 1) {
        Some(b'\n') => {}
        Some(_) => return Err(BodyError::BareCr),
        None if src.len() >= MAX_CHUNK_LINE => return Err(BodyError::ChunkLineTooLong),
        None => return Ok(None),
    }
    let line = window.get(..cr).unwrap_or_default();
    // RFC 9112 section 7.1: chunk-size = 1*HEXDIG. More than 16 digits cannot fit a u64.
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > 16 {
        return Err(BodyError::ChunkSizeOverflow);
    }
    let (hex, ext) = line.split_at(digits);
    let size = hex
        .iter()
        .fold(0u64, |n, &b| (n << 4) | u64::from(hex_value(b)));
    check_extensions(ext)?;
    Ok(Some((cr + 2, size)))
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

fn skip_bws(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    v
}

/// RFC 9112 section 7.1.1:
/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`,
/// `chunk-ext-val = token / quoted-string`. Anything after the size that is not this is refused
/// (trailing whitespace included).
fn check_extensions(mut rest: &[u8]) -> Result<(), BodyError> {
    let mut first = true;
    while !rest.is_empty() {
        rest = match skip_bws(rest) {
            [b';', after @ ..] => skip_bws(after),
            // Garbage right after the digits is a bad size ("1x", "1 "), later a bad extension.
            _ if first => return Err(BodyError::InvalidChunkSize),
            _ => return Err(BodyError::InvalidChunkExtension),
        };
        first = false;
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name_len == 0 {
            return Err(BodyError::InvalidChunkExtension);
        }
        rest = rest.get(name_len..).unwrap_or_default();
        if let [b'=', after @ ..] = skip_bws(rest) {
            rest = skip_value(skip_bws(after))?;
        }
    }
    Ok(())
}

/// Skips a `token / quoted-string` extension value, returning what follows it.
fn skip_value(v: &[u8]) -> Result<&[u8], BodyError> {
    let Some((b'"', mut rest)) = v.split_first() else {
        let n = v.iter().take_while(|&&b| is_tchar(b)).count();
        if n == 0 {
            return Err(BodyError::InvalidChunkExtension);
        }
        return Ok(v.get(n..).unwrap_or_default());
    };
    // RFC 9110 section 5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE.
    loop {
        match rest.split_first() {
            Some((b'"', after)) => return Ok(after),
            Some((b'\\', after)) => match after.split_first() {
                Some((&c, after)) if c == b'\t' || (c >= b' ' && c != 0x7f) => rest = after,
                _ => return Err(BodyError::InvalidChunkExtension),
            },
            Some((&c, after)) if c == b'\t' || (c >= b' ' && c != 0x7f) => rest = after,
            _ => return Err(BodyError::InvalidChunkExtension),
        }
    }
}

/// Finds the end of the trailer section at the front of `src` (RFC 9112 section 7.1.2):
/// `Some(n)` where `src[..n]` are the field lines (each with its CRLF) and `src[n..n + 2]` is
/// the final CRLF. Each field line is validated; obs-fold is refused. `st` resumes the scan.
fn trailer_section(src: &[u8], st: &mut TrailerScan) -> Result<Option<usize>, BodyError> {
    let window = src.get(..MAX_TRAILERS).unwrap_or(src);
    loop {
        let rest = window.get(st.pos..).unwrap_or_default();
        let Some(skip) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            st.pos = window.len();
            break;
        };
        let i = st.pos + skip;
        st.pos = i;
        if rest.get(skip) == Some(&b'\n') {
            return Err(BodyError::BareLf);
        }
        match window.get(i + 1) {
            Some(b'\n') => {}
            Some(_) => return Err(BodyError::BareCr),
            None => break,
        }
        if i == st.line_start {
            return Ok(Some(i));
        }
        let line = window.get(st.line_start..i).unwrap_or_default();
        if !is_valid_field_line(line) {
            return Err(BodyError::InvalidTrailer);
        }
        st.pos = i + 2;
        st.line_start = st.pos;
    }
    if src.len() >= MAX_TRAILERS {
        return Err(BodyError::TrailersTooLarge);
    }
    Ok(None)
}
