//! GOAWAY frames (RFC 9113 section 6.8). Graceful shutdown logic is the connection's job.

use super::{Error, ErrorKind, Head, Kind, Reason, StreamId};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A GOAWAY frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GoAway {
    /// Highest peer-initiated stream that was or might be processed.
    pub last_stream_id: StreamId,
    /// Why the connection is closing.
    pub reason: Reason,
    /// Opaque diagnostic data.
    pub debug_data: Bytes,
}

impl GoAway {
    /// Builds a frame without debug data.
    pub const fn new(last_stream_id: StreamId, reason: Reason) -> Self {
        Self {
            last_stream_id,
            reason,
            debug_data: Bytes::new(),
        }
    }

    /// Validates a GOAWAY payload.
    pub fn load(head: Head, mut payload: Bytes) -> Result<Self, Error> {
        // Section 6.8: "An endpoint MUST treat a GOAWAY frame with a stream identifier other
        // than 0x00 as a connection error of type PROTOCOL_ERROR."
        if !head.stream_id.is_zero() {
            return Err(Error::conn(
                Reason::PROTOCOL_ERROR,
                ErrorKind::StreamIdNotZero,
            ));
        }
        // Section 4.2: a frame too small for its mandatory fields is a FRAME_SIZE_ERROR;
        // GOAWAY always carries Last-Stream-ID and Error Code (8 octets).
        if payload.len() < 8 {
            return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
        }
        let last_stream_id = StreamId::new(payload.get_u32());
        let reason = Reason::new(payload.get_u32());
        Ok(Self {
            last_stream_id,
            reason,
            debug_data: payload,
        })
    }

    /// Appends the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let len = u32::try_from(8 + self.debug_data.len()).unwrap_or(u32::MAX);
        Head::new(Kind::GoAway, 0, StreamId::ZERO, len).encode(dst);
        dst.put_u32(self.last_stream_id.get());
        dst.put_u32(self.reason.get());
        dst.put_slice(&self.debug_data);
    }
}
