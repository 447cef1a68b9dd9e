//! The 9-octet frame header (RFC 9113 section 4.1) and stream identifiers (section 5.1.1).
//!
//! Owns parsing and encoding of the header only; payload rules live in the per-frame files and
//! the frame size limit (section 4.2) is checked by [`super::decode`].

use bytes::{BufMut, BytesMut};
use core::fmt;

/// A stream identifier: 31 bits, the reserved high bit always cleared.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId(u32);

impl StreamId {
    /// Stream 0: the connection control stream.
    pub const ZERO: Self = Self(0);
    /// The largest stream identifier, 2^31-1.
    pub const MAX: Self = Self(0x7fff_ffff);

    /// Makes an id from a raw 32-bit value. "The semantics of this bit are undefined, and the
    /// bit MUST remain unset (0x00) when sending and MUST be ignored when receiving."
    pub const fn new(raw: u32) -> Self {
        Self(raw & 0x7fff_ffff)
    }

    /// The id as an integer.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// True for stream 0.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True for odd ids, the ones a client opens (section 5.1.1).
    pub const fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }

    /// True for even non-zero ids, the ones a server opens (section 5.1.1).
    pub const fn is_server_initiated(self) -> bool {
        self.0 != 0 && self.0.is_multiple_of(2)
    }
}

impl From<u32> for StreamId {
    fn from(raw: u32) -> Self {
        Self::new(raw)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.0)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Frame type (RFC 9113 section 6 and the IANA registry of section 11.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Kind {
    /// DATA, 0x00.
    Data,
    /// HEADERS, 0x01.
    Headers,
    /// PRIORITY, 0x02 (deprecated priority scheme; parsed and validated only).
    Priority,
    /// RST_STREAM, 0x03.
    RstStream,
    /// SETTINGS, 0x04.
    Settings,
    /// PUSH_PROMISE, 0x05.
    PushPromise,
    /// PING, 0x06.
    Ping,
    /// GOAWAY, 0x07.
    GoAway,
    /// WINDOW_UPDATE, 0x08.
    WindowUpdate,
    /// CONTINUATION, 0x09.
    Continuation,
    /// Any other type: "Implementations MUST ignore and discard frames of unknown types."
    Unknown(u8),
}

impl Kind {
    /// Maps the wire type octet to a kind.
    pub const fn from_u8(byte: u8) -> Self {
        match byte {
            0x0 => Self::Data,
            0x1 => Self::Headers,
            0x2 => Self::Priority,
            0x3 => Self::RstStream,
            0x4 => Self::Settings,
            0x5 => Self::PushPromise,
            0x6 => Self::Ping,
            0x7 => Self::GoAway,
            0x8 => Self::WindowUpdate,
            0x9 => Self::Continuation,
            other => Self::Unknown(other),
        }
    }

    /// The wire type octet.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Data => 0x0,
            Self::Headers => 0x1,
            Self::Priority => 0x2,
            Self::RstStream => 0x3,
            Self::Settings => 0x4,
            Self::PushPromise => 0x5,
            Self::Ping => 0x6,
            Self::GoAway => 0x7,
            Self::WindowUpdate => 0x8,
            Self::Continuation => 0x9,
            Self::Unknown(other) => other,
        }
    }
}

/// Flag bits shared by several frame types (section 6).
pub mod flags {
    /// END_STREAM on DATA and HEADERS.
    pub const END_STREAM: u8 = 0x1;
    /// ACK on SETTINGS and PING.
    pub const ACK: u8 = 0x1;
    /// END_HEADERS on HEADERS, PUSH_PROMISE and CONTINUATION.
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED on DATA, HEADERS and PUSH_PROMISE.
    pub const PADDED: u8 = 0x8;
    /// PRIORITY on HEADERS.
    pub const PRIORITY: u8 = 0x20;
}

/// A parsed frame header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Head {
    /// Frame type.
    pub kind: Kind,
    /// Raw flags octet; unknown bits are ignored by the frame loaders.
    pub flags: u8,
    /// Stream the frame belongs to (0 for connection frames).
    pub stream_id: StreamId,
    /// Payload length (24 bits).
    pub length: u32,
}

impl Head {
    /// Encoded size of a frame header.
    pub const LEN: usize = 9;

    /// Builds a header.
    pub const fn new(kind: Kind, flags: u8, stream_id: StreamId, length: u32) -> Self {
        Self {
            kind,
            flags,
            stream_id,
            length,
        }
    }

    /// Parses the 9 header octets. Every bit pattern is a valid header; the reserved bit of the
    /// stream identifier is dropped.
    pub fn parse(buf: &[u8; 9]) -> Self {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *buf;
        Self {
            kind: Kind::from_u8(kind),
            flags,
            stream_id: StreamId::new(u32::from_be_bytes([s0, s1, s2, s3])),
            length: u32::from_be_bytes([0, l0, l1, l2]),
        }
    }

    /// True if `flag` is set.
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }

    /// Appends the 9 header octets. Only the low 24 bits of `length` are written; callers keep
    /// payloads within SETTINGS_MAX_FRAME_SIZE (at most 2^24-1).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }

    /// The 9 header octets (only the low 24 bits of `length`).
    pub fn to_bytes(&self) -> [u8; 9] {
        let [_, l0, l1, l2] = self.length.to_be_bytes();
        let [s0, s1, s2, s3] = self.stream_id.get().to_be_bytes();
        [l0, l1, l2, self.kind.as_u8(), self.flags, s0, s1, s2, s3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sec4_1_header_round_trip() {
        let head = Head::new(Kind::Headers, 0x25, StreamId::new(7), 0x01_02_03);
        let mut buf = BytesMut::new();
        head.encode(&mut buf);
        assert_eq!(&buf[..], &[1, 2, 3, 1, 0x25, 0, 0, 0, 7]);
        let arr: [u8; 9] = buf[..].try_into().unwrap();
        assert_eq!(Head::parse(&arr), head);
    }

    #[test]
    fn sec4_1_reserved_bit_ignored_on_receive() {
        let head = Head::parse(&[0, 0, 0, 0, 0, 0x80, 0, 0, 3]);
        assert_eq!(head.stream_id, StreamId::new(3));
        assert_eq!(head.stream_id.get(), 3);
    }

    #[test]
    fn sec5_1_1_stream_id_parity() {
        assert!(StreamId::new(1).is_client_initiated());
        assert!(StreamId::new(2).is_server_initiated());
        assert!(!StreamId::ZERO.is_server_initiated());
        assert!(!StreamId::ZERO.is_client_initiated());
    }

    #[test]
    fn sec11_2_kind_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(Kind::from_u8(b).as_u8(), b);
        }
        assert_eq!(Kind::from_u8(0xfe), Kind::Unknown(0xfe));
    }
}
