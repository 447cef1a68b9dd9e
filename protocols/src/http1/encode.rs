//! HTTP/1.1 head and chunk writers (RFC 9112 sections 3, 4, 5 and 7.1) into a `BytesMut`.
//!
//! Owns: the byte layout of what ringway sends. Does not: validate what it is given (callers pass
//! fields that came from a parsed head or from validated configuration), or pick framing.
//! No `fmt` machinery: numbers are written by hand.

use bytes::{BufMut, BytesMut};

/// The CRLF that ends a chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk and the empty trailer section that end a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes `method SP target SP HTTP/1.1 CRLF`.
pub fn request_line(dst: &mut BytesMut, method: &[u8], target: &[u8]) {
    dst.reserve(method.len() + target.len() + 12);
    dst.put_slice(method);
    dst.put_u8(b' ');
    dst.put_slice(target);
    dst.put_slice(b" HTTP/1.1\r\n");
}

/// Writes `HTTP/1.1 SP status SP reason CRLF`; an empty `reason` is replaced by the canonical
/// one (nothing if the status has none). `status` is written as three digits (clamped to 999).
pub fn status_line(dst: &mut BytesMut, status: u16, reason: &[u8]) {
    let status = status.min(999);
    let reason = if reason.is_empty() {
        canonical_reason(status)
    } else {
        reason
    };
    dst.reserve(reason.len() + 15);
    dst.put_slice(b"HTTP/1.1 ");
    let digits = [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    dst.put_slice(&digits);
    dst.put_u8(b' ');
    dst.put_slice(reason);
    dst.put_slice(b"\r\n");
}

/// Writes `name: value CRLF`.
pub fn header(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.reserve(name.len() + value.len() + 4);
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

/// Writes the empty line that ends a head.
pub fn end_head(dst: &mut BytesMut) {
    dst.put_slice(b"\r\n");
}

/// Writes a chunk-size line, `{len:x} CRLF`. The data and [`CHUNK_END`] follow.
pub fn chunk_head(dst: &mut BytesMut, len: usize) {
    let mut buf = [0u8; 18];
    let mut i = buf.len();
    let mut n = len as u64;
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b"0123456789abcdef"
                .get((n & 0xf) as usize)
                .copied()
                .unwrap_or(b'0');
        }
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(buf.get(i..).unwrap_or_default());
    dst.put_slice(b"\r\n");
}

/// Writes a decimal number (e.g. a Content-Length value) without `fmt`.
pub fn decimal(dst: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(buf.get(i..).unwrap_or_default());
}

/// The reason phrase registered for `status` (RFC 9110 section 15), empty if unknown.
pub fn canonical_reason(status: u16) -> &'static [u8] {
    match status {
        100 => b"Continue",
        101 => b"Switching Protocols",
        102 => b"Processing",
        103 => b"Early Hints",
        200 => b"OK",
        201 => b"Created",
        202 => b"Accepted",
        203 => b"Non-Authoritative Information",
        204 => b"No Content",
        205 => b"Reset Content",
        206 => b"Partial Content",
        207 => b"Multi-Status",
        208 => b"Already Reported",
        226 => b"IM Used",
        300 => b"Multiple Choices",
        301 => b"Moved Permanently",
        302 => b"Found",
        303 => b"See Other",
        304 => b"Not Modified",
        305 => b"Use Proxy",
        307 => b"Temporary Redirect",
        308 => b"Permanent Redirect",
        400 => b"Bad Request",
        401 => b"Unauthorized",
        402 => b"Payment Required",
        403 => b"Forbidden",
        404 => b"Not Found",
        405 => b"Method Not Allowed",
        406 => b"Not Acceptable",
        407 => b"Proxy Authentication Required",
        408 => b"Request Timeout",
        409 => b"Conflict",
        410 => b"Gone",
        411 => b"Length Required",
        412 => b"Precondition Failed",
        413 => b"Content Too Large",
        414 => b"URI Too Long",
        415 => b"Unsupported Media Type",
        416 => b"Range Not Satisfiable",
        417 => b"Expectation Failed",
        418 => b"I'm a teapot",
        421 => b"Misdirected Request",
        422 => b"Unprocessable Content",
        423 => b"Locked",
        424 => b"Failed Dependency",
        425 => b"Too Early",
        426 => b"Upgrade Required",
        428 => b"Precondition Required",
        429 => b"Too Many Requests",
        431 => b"Request Header Fields Too Large",
        451 => b"Unavailable For Legal Reasons",
        500 => b"Internal Server Error",
        501 => b"Not Implemented",
        502 => b"Bad Gateway",
        503 => b"Service Unavailable",
        504 => b"Gateway Timeout",
        505 => b"HTTP Version Not Supported",
        506 => b"Variant Also Negotiates",
        507 => b"Insufficient Storage",
        508 => b"Loop Detected",
        510 => b"Not Extended",
        511 => b"Network Authentication Required",
        _ => b"",
    }
}
