//! HTTP/2 frames (RFC 9113 section 6): one file per frame type.
//!
//! Owns the frame header, the per-frame payload rules of section 6 (each MUST sits above its
//! check), the frame size limit of section 4.2 and the encoders, including the helpers that split
//! DATA and field blocks (HEADERS/PUSH_PROMISE + CONTINUATION) to a maximum frame size.
//! Does not own stream state, flow control or HPACK: a field block stays an opaque `Bytes`
//! fragment here; the connection state machine (`super::conn`) sequences and decodes it.

mod data;
mod goaway;
mod head;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod reason;
mod rst_stream;
mod settings;
mod window_update;

#[cfg(test)]
mod tests;

pub use data::Data;
pub use goaway::GoAway;
pub use head::{Head, Kind, StreamId, flags};
pub use headers::{Continuation, Headers};
pub use ping::Ping;
pub use priority::{Priority, StreamDependency};
pub use push_promise::PushPromise;
pub use reason::Reason;
pub use rst_stream::RstStream;
pub use settings::{Setting, Settings};
pub use window_update::WindowUpdate;

use bytes::{Bytes, BytesMut};
use core::fmt;

/// The default and minimum SETTINGS_MAX_FRAME_SIZE, 2^14 (section 6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The largest allowed SETTINGS_MAX_FRAME_SIZE, 2^24-1 (section 6.5.2).
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;
/// The largest flow-control window, 2^31-1 (section 6.9.1).
pub const MAX_WINDOW_SIZE: u32 = 0x7fff_ffff;

/// One decoded frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Frame {
    /// DATA (section 6.1).
    Data(Data),
    /// HEADERS (section 6.2).
    Headers(Headers),
    /// PRIORITY (section 6.3).
    Priority(Priority),
    /// RST_STREAM (section 6.4).
    RstStream(RstStream),
    /// SETTINGS (section 6.5).
    Settings(Settings),
    /// PUSH_PROMISE (section 6.6).
    PushPromise(PushPromise),
    /// PING (section 6.7).
    Ping(Ping),
    /// GOAWAY (section 6.8).
    GoAway(GoAway),
    /// WINDOW_UPDATE (section 6.9).
    WindowUpdate(WindowUpdate),
    /// CONTINUATION (section 6.10).
    Continuation(Continuation),
    /// A frame of unknown type, already discarded (section 4.1). Reported because it still
    /// breaks a field block (section 6.10).
    Unknown,
}

impl Frame {
    /// Appends this frame to `dst`. Field-block frames are written as one frame; use
    /// [`Headers::encode_split`] to respect a peer's maximum frame size. `Unknown` writes nothing.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::Data(f) => f.encode(dst),
            Self::Headers(f) => f.encode(dst),
            Self::Priority(f) => f.encode(dst),
            Self::RstStream(f) => f.encode(dst),
            Self::Settings(f) => f.encode(dst),
            Self::PushPromise(f) => f.encode(dst),
            Self::Ping(f) => f.encode(dst),
            Self::GoAway(f) => f.encode(dst),
            Self::WindowUpdate(f) => f.encode(dst),
            Self::Continuation(f) => f.encode(dst),
            Self::Unknown => {}
        }
    }
}

/// What was wrong with a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorKind {
    /// Length exceeds SETTINGS_MAX_FRAME_SIZE (section 4.2).
    FrameTooLarge,
    /// Payload length wrong for the frame type, or too short for its mandatory fields.
    BadLength,
    /// Pad Length covers the whole payload or more.
    BadPadding,
    /// A stream frame arrived on stream 0.
    StreamIdZero,
    /// A connection frame arrived on a non-zero stream.
    StreamIdNotZero,
    /// A SETTINGS value out of its range (section 6.5.2).
    BadSettingValue,
    /// WINDOW_UPDATE with an increment of 0.
    ZeroWindowIncrement,
    /// A stream declared a priority dependency on itself (section 5.3.1).
    SelfDependency,
}

/// A frame-level error with its wire reaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Error {
    /// Error code to send.
    pub reason: Reason,
    /// `Some` -> stream error (answer with RST_STREAM on that stream); `None` -> connection
    /// error (answer with GOAWAY and close).
    pub stream: Option<StreamId>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// A connection error (section 5.4.1).
    pub const fn conn(reason: Reason, kind: ErrorKind) -> Self {
        Self {
            reason,
            stream: None,
            kind,
        }
    }

    /// A stream error (section 5.4.2).
    pub const fn stream(id: StreamId, reason: Reason, kind: ErrorKind) -> Self {
        Self {
            reason,
            stream: Some(id),
            kind,
        }
    }

    /// True for a connection error.
    pub const fn is_connection_error(&self) -> bool {
        self.stream.is_none()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stream {
            Some(id) => write!(f, "stream {id} error {}: {:?}", self.reason, self.kind),
            None => write!(f, "connection error {}: {:?}", self.reason, self.kind),
        }
    }
}

impl std::error::Error for Error {}

/// Decodes one frame from the front of `src`; the payload is split off without copying.
///
/// `Ok(None)` means more bytes are needed and `src` is untouched. On success and on every error
/// except [`ErrorKind::FrameTooLarge`] the whole frame has been removed from `src`, so after a
/// stream error the caller can go on decoding. A frame larger than `max_frame_size` is a
/// connection error FRAME_SIZE_ERROR and nothing is consumed.
pub fn decode(src: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, Error> {
    let Some(raw) = src.get(..Head::LEN) else {
        return Ok(None);
    };
    let mut arr = [0u8; Head::LEN];
    arr.copy_from_slice(raw);
    let head = Head::parse(&arr);
    // Section 4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds
    // the size defined in SETTINGS_MAX_FRAME_SIZE". Treated as a connection error for every
    // frame type, which section 5.4 allows, and which avoids buffering an oversized payload.
    if head.length > max_frame_size {
        return Err(Error::conn(
            Reason::FRAME_SIZE_ERROR,
            ErrorKind::FrameTooLarge,
        ));
    }
    let total = Head::LEN + head.length as usize;
    if src.len() < total {
        src.reserve(total - src.len());
        return Ok(None);
    }
    let mut frame = src.split_to(total);
    let payload = frame.split_off(Head::LEN).freeze();
    load(head, payload).map(Some)
}

/// Validates and builds the frame described by `head` from its complete `payload`.
pub fn load(head: Head, payload: Bytes) -> Result<Frame, Error> {
    Ok(match head.kind {
        Kind::Data => Frame::Data(Data::load(head, payload)?),
        Kind::Headers => Frame::Headers(Headers::load(head, payload)?),
        Kind::Priority => Frame::Priority(Priority::load(head, payload)?),
        Kind::RstStream => Frame::RstStream(RstStream::load(head, payload)?),
        Kind::Settings => Frame::Settings(Settings::load(head, payload)?),
        Kind::PushPromise => Frame::PushPromise(PushPromise::load(head, payload)?),
        Kind::Ping => Frame::Ping(Ping::load(head, payload)?),
        Kind::GoAway => Frame::GoAway(GoAway::load(head, payload)?),
        Kind::WindowUpdate => Frame::WindowUpdate(WindowUpdate::load(head, payload)?),
        Kind::Continuation => Frame::Continuation(Continuation::load(head, payload)?),
        // Section 4.1: "Implementations MUST ignore and discard frames of unknown types."
        Kind::Unknown(_) => Frame::Unknown,
    })
}

/// Strips padding (section 6.1/6.2/6.6) from `payload`, after `skip` octets of fixed fields
/// that follow the Pad Length octet. Returns (fixed fields + content, pad length).
fn strip_padding(
    head: &Head,
    mut payload: Bytes,
    skip: usize,
) -> Result<(Bytes, Option<u8>), Error> {
    if !head.has(flags::PADDED) {
        if payload.len() < skip {
            return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
        }
        return Ok((payload, None));
    }
    let Some(&pad_len) = payload.first() else {
        // Section 4.2: a frame "too small to contain mandatory frame data" is a
        // FRAME_SIZE_ERROR.
        return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
    };
    let len = payload.len();
    if len < 1 + skip {
        return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
    }
    // Sections 6.1, 6.2, 6.6: "If the length of the padding is the length of the frame payload
    // or greater, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
    // Padding that eats into the fixed fields (priority, promised id) is the same error.
    if usize::from(pad_len) >= len || usize::from(pad_len) > len - 1 - skip {
        return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::BadPadding));
    }
    payload.truncate(len - usize::from(pad_len));
    let _ = bytes::Buf::get_u8(&mut payload);
    Ok((payload, Some(pad_len)))
}

/// Writes `pad_len` (if any) before the content and zeroed padding after it.
fn put_padded(dst: &mut BytesMut, pad_len: Option<u8>, fixed: &[u8], content: &[u8]) {
    use bytes::BufMut;
    if let Some(p) = pad_len {
        dst.put_u8(p);
    }
    dst.put_slice(fixed);
    dst.put_slice(content);
    if let Some(p) = pad_len {
        dst.put_bytes(0, usize::from(p));
    }
}

/// Payload length for a padded frame body.
fn padded_len(pad_len: Option<u8>, body: usize) -> u32 {
    let pad = pad_len.map_or(0, |p| 1 + usize::from(p));
    u32::try_from(body + pad).unwrap_or(u32::MAX)
}
