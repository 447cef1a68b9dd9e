//! DATA frames (RFC 9113 section 6.1).
//!
//! Owns parsing, padding removal and encoding, plus splitting a body into frames of at most the
//! peer's SETTINGS_MAX_FRAME_SIZE. Does not do flow control: [`Data::flow_len`] is the number
//! the connection charges against its windows.

use super::{
    Error, ErrorKind, Head, Kind, Reason, StreamId, flags, padded_len, put_padded, strip_padding,
};
use bytes::{Bytes, BytesMut};

/// A DATA frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Data {
    /// Stream the data belongs to (never 0).
    pub stream_id: StreamId,
    /// Payload without padding.
    pub data: Bytes,
    /// END_STREAM flag.
    pub end_stream: bool,
    /// Padding length if the PADDED flag was set.
    pub pad_len: Option<u8>,
}

impl Data {
    /// A DATA frame without padding.
    pub fn new(stream_id: StreamId, data: Bytes, end_stream: bool) -> Self {
        Self {
            stream_id,
            data,
            end_stream,
            pad_len: None,
        }
    }

    /// Validates a DATA payload.
    pub fn load(head: Head, payload: Bytes) -> Result<Self, Error> {
        // Section 6.1: "If a DATA frame is received whose Stream Identifier field is 0x00, the
        // recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id.is_zero() {
            return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::StreamIdZero));
        }
        let (data, pad_len) = strip_padding(&head, payload, 0)?;
        Ok(Self {
            stream_id: head.stream_id,
            data,
            end_stream: head.has(flags::END_STREAM),
            pad_len,
        })
    }

    /// Octets this frame counts against flow-control windows: "The entire DATA frame payload is
    /// included in flow control, including the Pad Length and Padding fields if present."
    pub fn flow_len(&self) -> u32 {
        padded_len(self.pad_len, self.data.len())
    }

    /// Appends the frame as-is (the caller keeps it within the peer's maximum frame size).
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut fl = 0;
        if self.end_stream {
            fl |= flags::END_STREAM;
        }
        if self.pad_len.is_some() {
            fl |= flags::PADDED;
        }
        let len = padded_len(self.pad_len, self.data.len());
        dst.reserve(Head::LEN + len as usize);
        Head::new(Kind::Data, fl, self.stream_id, len).encode(dst);
        put_padded(dst, self.pad_len, &[], &self.data);
    }

    /// Writes `data` as unpadded DATA frames of at most `max_frame_size` octets each, END_STREAM
    /// on the last one when `end_stream`. Empty `data` writes one empty frame.
    pub fn encode_split(
        stream_id: StreamId,
        data: &[u8],
        end_stream: bool,
        max_frame_size: u32,
        dst: &mut BytesMut,
    ) {
        let max = (max_frame_size.max(1)) as usize;
        let mut chunks = data.chunks(max).peekable();
        if chunks.peek().is_none() {
            let fl = if end_stream { flags::END_STREAM } else { 0 };
            Head::new(Kind::Data, fl, stream_id, 0).encode(dst);
            return;
        }
        dst.reserve(data.len() + Head::LEN * data.len().div_ceil(max));
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let fl = if last && end_stream {
                flags::END_STREAM
            } else {
                0
            };
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            Head::new(Kind::Data, fl, stream_id, len).encode(dst);
            dst.extend_from_slice(chunk);
        }
    }
}
