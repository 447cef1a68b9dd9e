//! HTTP/2 field lists as both sides of the proxy need them: the packed list a request to an
//! upstream is written into (names lowercased, RFC 9113 8.2.1), a response's `:status`, and
//! trailer sections between HTTP/1 chunked trailers and HTTP/2 fields. The downstream side's
//! conversions, which apply route and filter header changes, are in `proxy::h2::convert`.

use bytes::{Bytes, BytesMut};
use protocols::http1::encode;

use crate::codec::is_hop_by_hop;

/// An HTTP/2 field list packed into one buffer, pseudo-header fields first: what the connection
/// decodes a head or trailers into, and what a head or trailers to send are written into (by
/// `proxy::head::rewrite_request` for an upstream request, names lowercased, RFC 9113 8.2.1).
pub(crate) use protocols::http2::Fields;

/// An empty list with room for a typical head (one allocation each for its octets and its
/// offsets, no regrowth), for a head about to be written.
pub(crate) fn head_fields() -> Fields {
    Fields::with_capacity(512, 16)
}

/// The `:status` of a response head (0 when missing or not three digits, which the codec
/// refuses in a received head: RFC 9113 8.3.2).
pub(crate) fn status_of(fields: &Fields) -> u16 {
    match fields.value_of(b":status") {
        Some(&[a, b, c]) if [a, b, c].iter().all(u8::is_ascii_digit) => [a, b, c]
            .iter()
            .fold(0, |n, &d| n * 10 + u16::from(d - b'0')),
        _ => 0,
    }
}

/// An HTTP/1 chunked trailer block (`name: value` lines, each ending in CRLF) as HTTP/2
/// trailer fields; connection-specific fields are dropped.
pub(crate) fn trailer_fields(block: &Bytes, out: &mut Fields) {
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.is_empty() || is_hop_by_hop(name) {
            continue;
        }
        out.push_lowercase(name, &[value]);
    }
}

/// HTTP/2 trailer fields as the trailer block of a last chunk (`name: value\r\n` lines).
pub(crate) fn write_trailers(fields: &Fields, dst: &mut BytesMut) {
    for (name, value) in fields.iter() {
        if is_hop_by_hop(name) {
            continue;
        }
        encode::header(dst, name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&'static str, &'static str)]) -> Fields {
        pairs.iter().copied().collect()
    }

    #[test]
    fn status_is_three_digits_or_zero() {
        assert_eq!(status_of(&f(&[(":status", "204"), ("x", "1")])), 204);
        assert_eq!(status_of(&f(&[("x", "1"), (":status", "503")])), 503);
        for bad in ["", "20", "2000", "2x0", "+20"] {
            assert_eq!(status_of(&f(&[(":status", bad)])), 0, "{bad:?}");
        }
        assert_eq!(status_of(&f(&[("x", "1")])), 0);
    }

    #[test]
    fn trailer_blocks_become_lowercase_fields_without_connection_fields() {
        let block = Bytes::from_static(b"Grpc-Status: 0\r\nconnection: x\r\nx-sum:  7 \r\n");
        let mut out = Fields::new();
        trailer_fields(&block, &mut out);
        assert_eq!(
            out,
            f(&[("grpc-status", "0"), ("x-sum", "7")]),
            "names lowercased, values trimmed"
        );
        let mut dst = BytesMut::new();
        write_trailers(&out, &mut dst);
        assert_eq!(&dst[..], b"grpc-status: 0\r\nx-sum: 7\r\n");
    }
}
