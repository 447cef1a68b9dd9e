//! PRIORITY frames (RFC 9113 section 6.3) and the priority fields of HEADERS.
//!
//! The RFC 7540 priority scheme is deprecated (section 5.3.2); ringway parses and validates the
//! fields and otherwise ignores them. Does not build a priority tree.

use super::{Error, ErrorKind, Head, Kind, Reason, StreamId};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Exclusive flag, stream dependency and weight (section 5.3 of RFC 7540, kept by 9113 as
/// wire format).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StreamDependency {
    /// Stream depended on.
    pub dependency: StreamId,
    /// Weight minus one, as on the wire.
    pub weight: u8,
    /// Exclusive flag.
    pub exclusive: bool,
}

impl StreamDependency {
    /// Encoded size.
    pub const LEN: usize = 5;

    /// Parses the 5 octets at the front of `buf` (the caller checked the length).
    pub(super) fn parse(buf: &mut Bytes) -> Self {
        let raw = buf.get_u32();
        let weight = buf.get_u8();
        Self {
            dependency: StreamId::new(raw),
            weight,
            exclusive: raw & 0x8000_0000 != 0,
        }
    }

    /// The 5 wire octets.
    pub fn to_bytes(self) -> [u8; 5] {
        let mut raw = self.dependency.get();
        if self.exclusive {
            raw |= 0x8000_0000;
        }
        let b = raw.to_be_bytes();
        [b[0], b[1], b[2], b[3], self.weight]
    }

    /// Section 5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a
    /// stream error of type PROTOCOL_ERROR."
    pub(super) fn check(self, stream_id: StreamId) -> Result<Self, Error> {
        if self.dependency == stream_id {
            return Err(Error::stream(
                stream_id,
                Reason::PROTOCOL_ERROR,
                ErrorKind::SelfDependency,
            ));
        }
        Ok(self)
    }
}

/// A PRIORITY frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Priority {
    /// Stream whose priority is given (never 0).
    pub stream_id: StreamId,
    /// The priority fields.
    pub dependency: StreamDependency,
}

impl Priority {
    /// Validates a PRIORITY payload.
    pub fn load(head: Head, mut payload: Bytes) -> Result<Self, Error> {
        // Section 6.3: "If a PRIORITY frame is received with a stream identifier of 0x00, the
        // recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream_id.is_zero() {
            return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::StreamIdZero));
        }
        // Section 6.3: "A PRIORITY frame with a length other than 5 octets MUST be treated as a
        // stream error of type FRAME_SIZE_ERROR."
        if payload.len() != StreamDependency::LEN {
            return Err(Error::stream(
                head.stream_id,
                Reason::FRAME_SIZE_ERROR,
                ErrorKind::BadLength,
            ));
        }
        let dependency = StreamDependency::parse(&mut payload).check(head.stream_id)?;
        Ok(Self {
            stream_id: head.stream_id,
            dependency,
        })
    }

    /// Appends the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        Head::new(Kind::Priority, 0, self.stream_id, 5).encode(dst);
        dst.put_slice(&self.dependency.to_bytes());
    }
}
