//! Length-prefixed messages (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"):
//!
//! ```text
//! Length-Prefixed-Message → Compressed-Flag Message-Length Message
//! Compressed-Flag → 0 / 1          ; 1 byte unsigned integer
//! Message-Length  → {length of Message}   ; 4 byte unsigned big-endian integer
//! ```
//!
//! A message may span several DATA frames and a DATA frame may hold several messages, so
//! the decoder works on whatever bytes the caller has gathered and takes one whole message at a
//! time.

use core::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Code;

/// Bytes before each message: the compressed flag and the 32-bit length.
pub const HEADER_LEN: usize = 5;

/// The default largest message a [`Decoder`] accepts: 4 MiB, the receive limit gRPC
/// implementations use by default.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 << 20;

/// One gRPC message. The payload is opaque (protobuf or anything else); when `compressed` is
/// set it is encoded with the call's `grpc-encoding`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The Compressed-Flag: the payload is compressed with the message encoding.
    pub compressed: bool,
    /// The message bytes without the 5-byte prefix.
    pub payload: Bytes,
}

/// Why bytes are not a valid sequence of length-prefixed messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The Compressed-Flag byte is neither 0 nor 1.
    InvalidCompressedFlag(u8),
    /// The declared length is over the limit (for decoding: the decoder's maximum; for
    /// encoding: 2^32 - 1, what Message-Length can carry).
    TooLarge {
        /// The length the message has or declares.
        len: u64,
        /// The largest length allowed.
        max: u64,
    },
    /// The stream ended inside a message (see [`Decoder::finish`]).
    Truncated,
}

impl Error {
    /// The status a gRPC peer answers with for this error: a message over the receive limit
    /// is `RESOURCE_EXHAUSTED`, broken framing is `INTERNAL`.
    pub fn code(self) -> Code {
        match self {
            Self::TooLarge { .. } => Code::ResourceExhausted,
            Self::InvalidCompressedFlag(_) | Self::Truncated => Code::Internal,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidCompressedFlag(b) => write!(f, "invalid gRPC compressed flag {b:#04x}"),
            Self::TooLarge { len, max } => {
                write!(f, "gRPC message of {len} bytes is larger than {max}")
            }
            Self::Truncated => f.write_str("stream ended inside a gRPC message"),
        }
    }
}

impl std::error::Error for Error {}

/// Splits whole messages off the front of a buffer. Stateless between calls apart from its
/// limit: an incomplete message stays in the caller's buffer until the rest arrives.
#[derive(Clone, Copy, Debug)]
pub struct Decoder {
    max_message_size: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_SIZE)
    }
}

impl Decoder {
    /// A decoder that refuses messages longer than `max_message_size` bytes (payload only,
    /// without the 5-byte prefix).
    pub fn new(max_message_size: usize) -> Self {
        Self { max_message_size }
    }

    /// The largest payload this decoder accepts.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Takes the next whole message off the front of `src`.
    ///
    /// `Ok(None)`: more bytes are needed; `src` is untouched. An error leaves `src` untouched
    /// too; it is reported as soon as the 5-byte prefix is there, before the payload arrives,
    /// so an over-long message is refused without buffering it.
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        let Some(len) = self.peek(src)? else {
            return Ok(None);
        };
        let Some(total) = HEADER_LEN.checked_add(len) else {
            return Err(self.too_large(len));
        };
        if src.len() < total {
            return Ok(None);
        }
        let compressed = src.first() == Some(&1);
        src.advance(HEADER_LEN);
        let payload = src.split_to(len).freeze();
        Ok(Some(Message {
            compressed,
            payload,
        }))
    }

    /// Validates the prefix at the front of `src`, if it is complete, and returns the
    /// payload length it declares.
    ///
    /// `Ok(None)`: fewer than 5 bytes. Lets a caller that forwards bytes as they come (a
    /// proxy) check each message's prefix without waiting for the payload.
    pub fn peek(&self, src: &[u8]) -> Result<Option<usize>, Error> {
        let Some(&[flag, a, b, c, d]) = src.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        if flag > 1 {
            return Err(Error::InvalidCompressedFlag(flag));
        }
        let len = u32::from_be_bytes([a, b, c, d]);
        let len = usize::try_from(len).map_err(|_| self.too_large_u32(len))?;
        if len > self.max_message_size {
            return Err(self.too_large(len));
        }
        Ok(Some(len))
    }

    /// At the end of the stream: the bytes left over must be empty, else the last message
    /// was cut short ([`Error::Truncated`]).
    pub fn finish(&self, rest: &[u8]) -> Result<(), Error> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Truncated)
        }
    }

    fn too_large(&self, len: usize) -> Error {
        Error::TooLarge {
            len: len as u64,
            max: self.max_message_size as u64,
        }
    }

    fn too_large_u32(&self, len: u32) -> Error {
        Error::TooLarge {
            len: u64::from(len),
            max: self.max_message_size as u64,
        }
    }
}

impl Message {
    /// A message with this payload.
    pub fn new(compressed: bool, payload: impl Into<Bytes>) -> Self {
        Self {
            compressed,
            payload: payload.into(),
        }
    }

    /// Appends the prefix and the payload to `dst`. Fails only for a payload over 2^32 - 1
    /// bytes, which Message-Length cannot express; nothing is written then.
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<(), Error> {
        let header = encode_header(self.compressed, self.payload.len())?;
        dst.put_slice(&header);
        dst.put_slice(&self.payload);
        Ok(())
    }
}

/// The 5-byte prefix for a payload of `len` bytes, for callers that write the prefix and a
/// payload they already hold as separate buffers (vectored writes, no copy).
pub fn encode_header(compressed: bool, len: usize) -> Result<[u8; HEADER_LEN], Error> {
    let n = u32::try_from(len).map_err(|_| Error::TooLarge {
        len: len as u64,
        max: u64::from(u32::MAX),
    })?;
    let [a, b, c, d] = n.to_be_bytes();
    Ok([u8::from(compressed), a, b, c, d])
}
