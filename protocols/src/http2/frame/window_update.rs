//! WINDOW_UPDATE frames (RFC 9113 section 6.9). Window arithmetic and overflow checks
//! (section 6.9.1) are the connection's job.

use super::{Error, ErrorKind, Head, Kind, Reason, StreamId};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A WINDOW_UPDATE frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WindowUpdate {
    /// Stream whose window grows; 0 for the connection window.
    pub stream_id: StreamId,
    /// Window size increment, 1..=2^31-1.
    pub increment: u32,
}

impl WindowUpdate {
    /// Builds a frame.
    pub const fn new(stream_id: StreamId, increment: u32) -> Self {
        Self {
            stream_id,
            increment,
        }
    }

    /// Validates a WINDOW_UPDATE payload.
    pub fn load(head: Head, mut payload: Bytes) -> Result<Self, Error> {
        // Section 6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated
        // as a connection error of type FRAME_SIZE_ERROR."
        if payload.len() != 4 {
            return Err(Error::conn(Reason::FRAME_SIZE_ERROR, ErrorKind::BadLength));
        }
        // The reserved bit "MUST be ignored when receiving".
        let increment = payload.get_u32() & 0x7fff_ffff;
        // Section 6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-
        // control window increment of 0 as a stream error of type PROTOCOL_ERROR; errors on
        // the connection flow-control window MUST be treated as a connection error."
        if increment == 0 {
            return Err(if head.stream_id.is_zero() {
                Error::conn(Reason::PROTOCOL_ERROR, ErrorKind::ZeroWindowIncrement)
            } else {
                Error::stream(
                    head.stream_id,
                    Reason::PROTOCOL_ERROR,
                    ErrorKind::ZeroWindowIncrement,
                )
            });
        }
        Ok(Self {
            stream_id: head.stream_id,
            increment,
        })
    }

    /// Appends the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        Head::new(Kind::WindowUpdate, 0, self.stream_id, 4).encode(dst);
        dst.put_u32(self.increment & 0x7fff_ffff);
    }
}
