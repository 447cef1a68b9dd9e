//! RST_STREAM frames (RFC 9113 section 6.4). Stream state changes are the connection's job.

use super::{Error, ErrorKind, Head, Kind, Reason, StreamId};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A RST_STREAM frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RstStream {
    /// Stream being reset (never 0).
    pub stream_id: StreamId,
    /// Why.
    pub reason: Reason,
}

impl RstStream {
    /// Builds a frame.
    pub const fn new(stream_id: StreamId, reason: Reason) -> Self {
        Self { stream_id, reason }
    }

    /// Validates a RST_STREAM payload.
    pub fn load(head: Head, mut payload: Bytes) -> Result<Self, Error> {
        // Section 6.4: "If a RST_STREAM frame is received with a stream identifier of 0x00, the
        // recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
        if head.stream_id.is_zero() {
            return Err(Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::StreamIdZero));
        }
        // Section 6.4: "A RST_STREAM frame with a length other than 4 octets MUST be treated as
        // a connection error of type FRAME_SIZE_ERROR."
        if payload.len() != 4 {
            return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
        }
        Ok(Self {
            stream_id: head.stream_id,
            reason: Reason::new(payload.get_u32()),
        })
    }

    /// Appends the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        Head::new(Kind::RstStream, 0, self.stream_id, 4).encode(dst);
        dst.put_u32(self.reason.get());
    }
}
