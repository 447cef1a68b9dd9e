//! HTTP/2 field lists as both sides of the proxy need them: the packed list a request to an
//! upstream is written into (names lowercased, RFC 9113 8.2.1), a response's `:status`, and
//! trailer sections between HTTP/1 chunked trailers and HTTP/2 fields. The downstream side's conversions, which apply route and
//! filter header changes, are in `proxy::h2::convert`.

use bytes::{Bytes, BytesMut};
use protocols::http1::encode;

use crate::codec::is_hop_by_hop;

/// An HTTP/2 field list: pseudo-header fields first.
pub(crate) type Fields = Vec<(Bytes, Bytes)>;

/// The fields of `fields` as slices, as the connection encodes them.
pub(crate) fn slices(fields: &Fields) -> impl Iterator<Item = (&[u8], &[u8])> {
    fields.iter().map(|(n, v)| (&n[..], &v[..]))
}

/// A header name as HTTP/2 requires it: lowercase (a slice of `raw` when it already is).
pub(crate) fn lower(raw: &Bytes, name: &[u8]) -> Bytes {
    if !name.iter().any(u8::is_ascii_uppercase) {
        return raw.slice_ref(name);
    }
    // HTTP/1 peers capitalise the common names: those need no allocation.
    match common_name(name) {
        Some(common) => Bytes::from_static(common),
        None => Bytes::from(name.to_ascii_lowercase()),
    }
}

/// The response and request field names HTTP/1 peers send in capitalised form most often, as
/// static lowercase names, when `name` is one of them (ASCII case aside): one comparison, the
/// candidate picked by length and first letter (no two names share both).
fn common_name(name: &[u8]) -> Option<&'static [u8]> {
    let first = name.first()?.to_ascii_lowercase();
    let common: &'static [u8] = match (name.len(), first) {
        (4, b'd') => b"date",
        (4, b'e') => b"etag",
        (4, b'v') => b"vary",
        (6, b's') => b"server",
        (7, b'e') => b"expires",
        (8, b'l') => b"location",
        (10, b'c') => b"connection",
        (10, b'k') => b"keep-alive",
        (10, b's') => b"set-cookie",
        (12, b'c') => b"content-type",
        (13, b'a') => b"accept-ranges",
        (13, b'c') => b"cache-control",
        (13, b'l') => b"last-modified",
        (14, b'c') => b"content-length",
        (16, b'c') => b"content-encoding",
        (17, b't') => b"transfer-encoding",
        _ => return None,
    };
    is_lowercase_of(name, common).then_some(common)
}

/// `name` lowercased (ASCII) is `lower`, compared a word at a time: for 8 to 24 bytes the
/// words at 0, 8 and the last eight bytes (overlapping), for 4 to 7 the first and last four.
fn is_lowercase_of(name: &[u8], lower: &[u8]) -> bool {
    let n = name.len();
    if n != lower.len() {
        return false;
    }
    let same8 = |i: usize| lowercase8(word8(name, i)) == word8(lower, i);
    let same4 = |i: usize| lowercase8(word4(name, i)) == word4(lower, i);
    match n {
        8..=24 => same8(0) && same8(n - 8) && (n <= 16 || same8(8)),
        4..=7 => same4(0) && same4(n - 4),
        _ => name.eq_ignore_ascii_case(lower),
    }
}

/// The eight bytes of `b` from `i`, as a word.
fn word8(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// The four bytes of `b` from `i`, as a word.
fn word4(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Each byte of `x` ASCII-lowercased (`A`-`Z` plus 0x20, every other byte as it is).
fn lowercase8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // The low seven bits of each byte: adding below 0x80 to them never carries across bytes.
    let low7 = x & !HIGH;
    let from_a = low7 + ONES * (0x80 - u64::from(b'A'));
    let past_z = low7 + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = from_a & !past_z & !x & HIGH;
    x | (upper >> 2)
}

/// A field list packed into one buffer, names lowercased: the request head for an HTTP/2
/// upstream, written by the same rewrite that writes an HTTP/1 upstream's head
/// (`proxy::head::rewrite_request`). One buffer and one span list, no allocation per field.
#[derive(Debug, Default)]
pub(crate) struct PackedFields {
    buf: Vec<u8>,
    /// `[name start, name end, value end]`: each value follows its name.
    spans: Vec<[u32; 3]>,
}

impl PackedFields {
    /// An empty list with room for a typical request head.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(512),
            spans: Vec::with_capacity(16),
        }
    }

    /// Appends a field whose value is `parts` concatenated; the name is lowercased (RFC 9113
    /// 8.2.1).
    pub(crate) fn push(&mut self, name: &[u8], parts: &[&[u8]]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        self.buf[start..].make_ascii_lowercase();
        let name_end = self.buf.len();
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        let end = self.buf.len();
        self.spans.push([start as u32, name_end as u32, end as u32]);
    }

    /// The fields in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&[start, name_end, end]| {
            let at = |a: u32, b: u32| self.buf.get(a as usize..b as usize).unwrap_or_default();
            (at(start, name_end), at(name_end, end))
        })
    }

    /// The bytes of every name and value.
    pub(crate) fn byte_len(&self) -> usize {
        self.buf.len()
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

    /// Every name `common_name` knows.
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

    #[test]
    fn names_are_lowercased_with_or_without_the_common_table() {
        let raw = Bytes::from_static(b"Content-Type X-Custom-Thing already-lower");
        assert_eq!(lower(&raw, &raw[..12]), "content-type");
        assert_eq!(lower(&raw, &raw[13..27]), "x-custom-thing");
        assert_eq!(lower(&raw, &raw[28..]), "already-lower");
        for name in COMMON_NAMES {
            assert!(!name.iter().any(u8::is_ascii_uppercase), "{name:?}");
            assert_eq!(common_name(&name.to_ascii_uppercase()), Some(name));
            assert_eq!(common_name(name), Some(name));
        }
        assert_eq!(common_name(b"Content-Typo"), None);
        assert_eq!(common_name(b"X-Date"), None);
        assert_eq!(common_name(b""), None);
    }

    #[test]
    fn eight_byte_lowercasing_is_ascii_lowercasing() {
        let mut bytes: Vec<u8> = (0..=255).collect();
        bytes.extend_from_slice(b"Content-Length: Transfer-Encoding X-Y@[`{");
        for (i, chunk) in bytes.windows(8).enumerate() {
            let mut want = [0u8; 8];
            want.copy_from_slice(chunk);
            want.make_ascii_lowercase();
            assert_eq!(
                lowercase8(word8(&bytes, i)),
                u64::from_le_bytes(want),
                "{chunk:?}"
            );
        }
        for name in COMMON_NAMES {
            for len in 0..=name.len() {
                let mut mixed = name[..len].to_vec();
                mixed
                    .iter_mut()
                    .step_by(2)
                    .for_each(|b| *b = b.to_ascii_uppercase());
                assert!(is_lowercase_of(&mixed, &name[..len]), "{mixed:?}");
                for at in [len / 2, len.saturating_sub(1)]
                    .into_iter()
                    .filter(|_| len > 0)
                {
                    let mut wrong = mixed.clone();
                    wrong[at] ^= 0x01;
                    assert!(!is_lowercase_of(&wrong, &name[..len]), "{wrong:?}");
                }
            }
        }
        assert!(is_lowercase_of(b"Transfer-ENCODING", b"transfer-encoding"));
        assert!(!is_lowercase_of(b"Transfer-Encodinh", b"transfer-encoding"));
        assert!(!is_lowercase_of(b"Content\rLength", b"content-length"));
    }
}
