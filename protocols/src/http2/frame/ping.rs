//! PING frames (RFC 9113 section 6.7). Answering and flood limits are the connection's job.

use super::{Error, ErrorKind, Head, Kind, Reason, StreamId, flags};
use bytes::{BufMut, Bytes, BytesMut};

/// A PING frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ping {
    /// ACK flag.
    pub ack: bool,
    /// Opaque data, echoed in the ACK.
    pub payload: [u8; 8],
}

impl Ping {
    /// A PING request.
    pub const fn new(payload: [u8; 8]) -> Self {
        Self {
            ack: false,
            payload,
        }
    }

    /// The ACK answering a PING with `payload`.
    pub const fn pong(payload: [u8; 8]) -> Self {
        Self { ack: true, payload }
    }

    /// Validates a PING payload.
    pub fn load(head: Head, payload: Bytes) -> Result<Self, Error> {
        // Section 6.7: "If a PING frame is received with a Stream Identifier field value other
        // than 0x00, the recipient MUST respond with a connection error of type
        // PROTOCOL_ERROR."
        if !head.stream_id.is_zero() {
            return Err(Error::conn(
                Reason::PROTOCOL_ERROR,
                ErrorKind::StreamIdNotZero,
            ));
        }
        // Section 6.7: "Receipt of a PING frame with a length field value other than 8 MUST be
        // treated as a connection error of type FRAME_SIZE_ERROR."
        let Ok(data) = <[u8; 8]>::try_from(payload.as_ref()) else {
            return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
        };
        Ok(Self {
            ack: head.has(flags::ACK),
            payload: data,
        })
    }

    /// Appends the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let fl = if self.ack { flags::ACK } else { 0 };
        Head::new(Kind::Ping, fl, StreamId::ZERO, 8).encode(dst);
        dst.put_slice(&self.payload);
    }
}
