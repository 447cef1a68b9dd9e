//! HTTP/2 field lists as both sides of the proxy need them: the request sent to an upstream,
//! from the rewritten HTTP/1.1 head (RFC 9113 8.3.1; connection-specific fields dropped, 8.2.2;
//! names lowercased, 8.2.1), a response's `:status`, and trailer sections between HTTP/1
//! chunked trailers and HTTP/2 fields. The downstream side's conversions, which apply route and
//! filter header changes, are in `proxy::h2::convert`.

use bytes::{Bytes, BytesMut};
use protocols::http1::{RequestHead, encode};

use crate::codec::is_hop_by_hop;

/// An HTTP/2 field list: pseudo-header fields first.
pub(crate) type Fields = Vec<(Bytes, Bytes)>;

/// A header name as HTTP/2 requires it: lowercase (a slice of `raw` when it already is).
pub(crate) fn lower(raw: &Bytes, name: &[u8]) -> Bytes {
    if !name.iter().any(u8::is_ascii_uppercase) {
        return raw.slice_ref(name);
    }
    // HTTP/1 peers capitalise the common names: those need no allocation.
    match COMMON_NAMES
        .iter()
        .find(|common| common.eq_ignore_ascii_case(name))
    {
        Some(common) => Bytes::from_static(common),
        None => Bytes::from(name.to_ascii_lowercase()),
    }
}

/// Response and request field names HTTP/1 peers send in capitalised form most often.
const COMMON_NAMES: [&[u8]; 16] = [
    b"content-type",
    b"content-length",
    b"date",
    b"server",
    b"connection",
    b"cache-control",
    b"etag",
    b"last-modified",
    b"location",
    b"set-cookie",
    b"vary",
    b"accept-ranges",
    b"expires",
    b"content-encoding",
    b"keep-alive",
    b"transfer-encoding",
];

/// The HTTP/2 request for an upstream, from the rewritten HTTP/1.1 head `head` (so both
/// upstream codecs get the same forwarding fields and route changes).
pub(crate) fn request_fields(head: &RequestHead, scheme: &'static [u8], out: &mut Fields) {
    let raw = head.raw();
    out.push((Bytes::from_static(b":method"), raw.slice_ref(head.method())));
    out.push((Bytes::from_static(b":scheme"), Bytes::from_static(scheme)));
    out.push((
        Bytes::from_static(b":authority"),
        raw.slice_ref(head.authority()),
    ));
    out.push((Bytes::from_static(b":path"), raw.slice_ref(head.target())));
    for (name, value) in head.headers() {
        let te_trailers = name.eq_ignore_ascii_case(b"te") && value == b"trailers";
        if name.eq_ignore_ascii_case(b"host") || (is_hop_by_hop(name) && !te_trailers) {
            continue;
        }
        out.push((lower(raw, name), raw.slice_ref(value)));
    }
}

/// The `:status` of a response head (0 when missing or not a number).
pub(crate) fn status_of(fields: &Fields) -> u16 {
    fields
        .iter()
        .find(|(n, _)| n.as_ref() == b":status")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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
        out.push((lower(block, name), block.slice_ref(value)));
    }
}

/// HTTP/2 trailer fields as the trailer block of a last chunk (`name: value\r\n` lines).
pub(crate) fn write_trailers(fields: &[(Bytes, Bytes)], dst: &mut BytesMut) {
    for (name, value) in fields {
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
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    Bytes::from_static(n.as_bytes()),
                    Bytes::from_static(v.as_bytes()),
                )
            })
            .collect()
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

    #[test]
    fn names_are_lowercased_with_or_without_the_common_table() {
        let raw = Bytes::from_static(b"Content-Type X-Custom-Thing already-lower");
        assert_eq!(lower(&raw, &raw[..12]), "content-type");
        assert_eq!(lower(&raw, &raw[13..27]), "x-custom-thing");
        assert_eq!(lower(&raw, &raw[28..]), "already-lower");
        for name in COMMON_NAMES {
            assert!(!name.iter().any(u8::is_ascii_uppercase), "{name:?}");
        }
    }
}
