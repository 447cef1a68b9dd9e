//! PUSH_PROMISE frames (RFC 9113 section 6.6).
//!
//! Owns parsing and encoding. ringway never pushes and advertises SETTINGS_ENABLE_PUSH = 0;
//! refusing a received PUSH_PROMISE is the connection's job.

use super::headers::{encode_field_block, encode_one};
use super::{Error, ErrorKind, Head, Kind, Reason, StreamId, flags, strip_padding};
use bytes::{Buf, Bytes, BytesMut};

/// A PUSH_PROMISE frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PushPromise {
    /// Stream the promise is associated with (never 0).
    pub stream_id: StreamId,
    /// Stream reserved by the promise.
    pub promised_id: StreamId,
    /// END_HEADERS flag.
    pub end_headers: bool,
    /// Field block fragment.
    pub fragment: Bytes,
    /// Padding length if the PADDED flag was set.
    pub pad_len: Option<u8>,
}

impl PushPromise {
    /// Validates a PUSH_PROMISE payload.
    pub fn load(head: Head, payload: Bytes) -> Result<Self, Error> {
        // Section 6.6: "If the Stream Identifier field specifies the value 0x00, a recipient
        // MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id.is_zero() {
            return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::StreamIdZero));
        }
        let (mut rest, pad_len) = strip_padding(&head, payload, 4)?;
        let promised_id = StreamId::new(rest.get_u32());
        // Section 5.1.1: stream 0 cannot be opened; a promise of it is a PROTOCOL_ERROR.
        if promised_id.is_zero() {
            return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::StreamIdZero));
        }
        Ok(Self {
            stream_id: head.stream_id,
            promised_id,
            end_headers: head.has(flags::END_HEADERS),
            fragment: rest,
            pad_len,
        })
    }

    /// Appends the frame as one PUSH_PROMISE frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let fl = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        let prefix = self.promised_id.get().to_be_bytes();
        encode_one(
            Kind::PushPromise,
            fl,
            self.stream_id,
            self.pad_len,
            &prefix,
            &self.fragment,
            dst,
        );
    }

    /// Appends the field block as PUSH_PROMISE + CONTINUATION frames of at most
    /// `max_frame_size` payload octets.
    pub fn encode_split(&self, max_frame_size: u32, dst: &mut BytesMut) {
        let prefix = self.promised_id.get().to_be_bytes();
        encode_field_block(
            Kind::PushPromise,
            0,
            self.stream_id,
            self.pad_len,
            &prefix,
            &self.fragment,
            max_frame_size,
            dst,
        );
    }
}
