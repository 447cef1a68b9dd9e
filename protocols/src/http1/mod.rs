//! HTTP/1.1 (RFC 9112): request and response head parsing, body framing, chunked coding and
//! head/chunk encoding.
//!
//! Owns: the sans-IO HTTP/1 codec. Heads are parsed in place, in two passes (line endings and
//! sizes, then start line and field lines), with the strictness RFC 9112 asks of a proxy (no
//! bare CR/LF, no obs-fold, one unambiguous body length, sections 2.2, 3, 5, 6 and 7), kept as
//! one [`bytes::Bytes`] with `u32` offset spans. Bodies are decoded by [`BodyDecoder`] into
//! zero-copy slices of the caller's buffer.
//!
//! Does not: own sockets or buffers, decide routing, rewrite hop-by-hop headers (it only reports
//! them via `connection_tokens`), or decode content codings (gzip etc. are forwarded as-is).

mod body;
pub mod encode;
mod error;
pub(crate) mod headers;
pub(crate) mod request;
mod response;
#[cfg(test)]
mod tests;

pub use crate::http::RequestHead;
pub use body::{BodyDecoder, BodyEvent, MAX_CHUNK_LINE, MAX_TRAILERS};
pub use error::{BodyError, RequestError, ResponseError};
pub use headers::BodyFraming;
pub use request::{RequestParser, parse_request};
pub use response::{MethodKind, ResponseHead, ResponseParser, parse_response, parse_response_for};

/// Default longest request line in bytes (without CRLF); longer gets 414.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8192;
/// Default largest head in bytes (start line, fields and the final CRLFCRLF); larger gets 431.
pub const DEFAULT_MAX_HEAD: usize = 65536;
/// Default largest number of header field lines; more gets 431.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Size limits applied while parsing a head, before the head is complete where possible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line in bytes, excluding the CRLF (else 414 URI Too Long).
    pub max_request_line: usize,
    /// Largest head in bytes including the final CRLFCRLF (else 431).
    pub max_head: usize,
    /// Most header field lines (else 431).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_head: DEFAULT_MAX_HEAD,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

/// The HTTP version of a message (RFC 9112 section 2.3); only 1.0 and 1.1 are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

impl Version {
    /// The protocol version as it appears on the wire, e.g. `b"HTTP/1.1"`.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Http10 => b"HTTP/1.0",
            Self::Http11 => b"HTTP/1.1",
        }
    }

    /// Parses exactly `HTTP/1.0` or `HTTP/1.1`.
    pub(crate) fn from_bytes(v: &[u8]) -> Option<Self> {
        match v {
            b"HTTP/1.1" => Some(Self::Http11),
            b"HTTP/1.0" => Some(Self::Http10),
            _ => None,
        }
    }
}

/// `HTTP/` DIGIT `.` DIGIT: a well-formed version we may not support (-> 505 rather than 400).
pub(crate) fn is_version_shaped(v: &[u8]) -> bool {
    matches!(v, [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit())
}
