//! HEADERS (RFC 9113 section 6.2) and CONTINUATION (section 6.10) frames.
//!
//! Owns parsing, padding and priority fields, encoding, and splitting a field block into a
//! HEADERS or PUSH_PROMISE frame followed by CONTINUATION frames. The field block fragment is
//! opaque here: HPACK decoding and CONTINUATION sequencing belong to the connection.

use super::{
    Error, ErrorKind, Head, Kind, Reason, StreamDependency, StreamId, flags, padded_len,
    put_padded, strip_padding,
};
use bytes::{Bytes, BytesMut};

/// A HEADERS frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Headers {
    /// Stream (never 0).
    pub stream_id: StreamId,
    /// Priority fields if the PRIORITY flag was set (deprecated, validated only).
    pub priority: Option<StreamDependency>,
    /// END_STREAM flag.
    pub end_stream: bool,
    /// END_HEADERS flag: no CONTINUATION follows.
    pub end_headers: bool,
    /// Field block fragment (HPACK-encoded, possibly partial).
    pub fragment: Bytes,
    /// Padding length if the PADDED flag was set.
    pub pad_len: Option<u8>,
}

impl Headers {
    /// A complete, unpadded HEADERS frame without priority.
    pub fn new(stream_id: StreamId, fragment: Bytes, end_stream: bool) -> Self {
        Self {
            stream_id,
            priority: None,
            end_stream,
            end_headers: true,
            fragment,
            pad_len: None,
        }
    }

    /// Validates a HEADERS payload.
    pub fn load(head: Head, payload: Bytes) -> Result<Self, Error> {
        // Section 6.2: "If a HEADERS frame is received whose Stream Identifier field is 0x00,
        // the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id.is_zero() {
            return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::StreamIdZero));
        }
        let has_priority = head.has(flags::PRIORITY);
        let skip = if has_priority {
            StreamDependency::LEN
        } else {
            0
        };
        let (mut rest, pad_len) = strip_padding(&head, payload, skip)?;
        let priority = if has_priority {
            Some(StreamDependency::parse(&mut rest).check(head.stream_id)?)
        } else {
            None
        };
        Ok(Self {
            stream_id: head.stream_id,
            priority,
            end_stream: head.has(flags::END_STREAM),
            end_headers: head.has(flags::END_HEADERS),
            fragment: rest,
            pad_len,
        })
    }

    fn flags(&self) -> u8 {
        let mut fl = 0;
        if self.end_stream {
            fl |= flags::END_STREAM;
        }
        if self.priority.is_some() {
            fl |= flags::PRIORITY;
        }
        fl
    }

    fn prefix(&self) -> ([u8; 5], usize) {
        match self.priority {
            Some(p) => (p.to_bytes(), StreamDependency::LEN),
            None => ([0; 5], 0),
        }
    }

    /// Appends the frame as one HEADERS frame with the fields as they are.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut fl = self.flags();
        if self.end_headers {
            fl |= flags::END_HEADERS;
        }
        let (prefix, n) = self.prefix();
        let prefix = prefix.get(..n).unwrap_or_default();
        encode_one(
            Kind::Headers,
            fl,
            self.stream_id,
            self.pad_len,
            prefix,
            &self.fragment,
            dst,
        );
    }

    /// Appends the whole field block as HEADERS + CONTINUATION frames of at most
    /// `max_frame_size` payload octets, END_HEADERS on the last one (`end_headers` is ignored).
    pub fn encode_split(&self, max_frame_size: u32, dst: &mut BytesMut) {
        let (prefix, n) = self.prefix();
        let prefix = prefix.get(..n).unwrap_or_default();
        encode_field_block(
            Kind::Headers,
            self.flags(),
            self.stream_id,
            self.pad_len,
            prefix,
            &self.fragment,
            max_frame_size,
            dst,
        );
    }
}

/// A CONTINUATION frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Continuation {
    /// Stream (never 0).
    pub stream_id: StreamId,
    /// END_HEADERS flag.
    pub end_headers: bool,
    /// Field block fragment.
    pub fragment: Bytes,
}

impl Continuation {
    /// Validates a CONTINUATION payload.
    pub fn load(head: Head, payload: Bytes) -> Result<Self, Error> {
        // Section 6.10: "If a CONTINUATION frame is received with a Stream Identifier field of
        // 0x00, the recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id.is_zero() {
            return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::StreamIdZero));
        }
        Ok(Self {
            stream_id: head.stream_id,
            end_headers: head.has(flags::END_HEADERS),
            fragment: payload,
        })
    }

    /// Appends the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let fl = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        encode_one(
            Kind::Continuation,
            fl,
            self.stream_id,
            None,
            &[],
            &self.fragment,
            dst,
        );
    }
}

/// Writes one frame of `kind` whose payload is [pad length] prefix fragment [padding].
pub(super) fn encode_one(
    kind: Kind,
    mut fl: u8,
    stream_id: StreamId,
    pad_len: Option<u8>,
    prefix: &[u8],
    fragment: &[u8],
    dst: &mut BytesMut,
) {
    if pad_len.is_some() {
        fl |= flags::PADDED;
    }
    let len = padded_len(pad_len, prefix.len() + fragment.len());
    dst.reserve(Head::LEN + len as usize);
    Head::new(kind, fl, stream_id, len).encode(dst);
    put_padded(dst, pad_len, prefix, fragment);
}

/// Writes a field block as one `kind` frame (HEADERS or PUSH_PROMISE) carrying `prefix` and as
/// much of `fragment` as fits, then CONTINUATION frames; END_HEADERS goes on the last frame.
#[allow(clippy::too_many_arguments)] // reason: private helper shared by two frame types
pub(super) fn encode_field_block(
    kind: Kind,
    first_flags: u8,
    stream_id: StreamId,
    pad_len: Option<u8>,
    prefix: &[u8],
    fragment: &[u8],
    max_frame_size: u32,
    dst: &mut BytesMut,
) {
    let max = max_frame_size as usize;
    let overhead = padded_len(pad_len, prefix.len()) as usize;
    // At least one octet of fragment per frame, so a tiny limit cannot loop forever.
    let first_room = max.saturating_sub(overhead).max(1);
    let (first, mut rest) = fragment.split_at(first_room.min(fragment.len()));
    let fl = if rest.is_empty() {
        first_flags | flags::END_HEADERS
    } else {
        first_flags
    };
    encode_one(kind, fl, stream_id, pad_len, prefix, first, dst);
    let room = max.max(1);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(room.min(rest.len()));
        rest = tail;
        let fl = if rest.is_empty() {
            flags::END_HEADERS
        } else {
            0
        };
        encode_one(Kind::Continuation, fl, stream_id, None, &[], chunk, dst);
    }
}
