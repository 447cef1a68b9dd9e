//! HTTP/2 field lists as both sides of the proxy need them: the packed list a request to an
//! upstream is written into (names lowercased, RFC 9113 8.2.1), a response's `:status`, and
//! trailer sections between HTTP/1 chunked trailers and HTTP/2 fields. The downstream side's
//! conversions, which apply route and filter header changes, are in `proxy::h2::convert`.

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
    Bytes::from(name.to_ascii_lowercase())
}

/// ASCII-lowercases `b` in place, eight bytes at a time.
fn make_lowercase(b: &mut [u8]) {
    let mut words = b.chunks_exact_mut(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        w.copy_from_slice(&lowercase8(u64::from_le_bytes(x)).to_le_bytes());
    }
    words.into_remainder().make_ascii_lowercase();
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
        make_lowercase(&mut self.buf[start..]);
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

    #[test]
    fn names_are_lowercased_a_word_at_a_time_like_byte_by_byte() {
        let raw = Bytes::from_static(b"Content-Type X-Custom-Thing already-lower");
        assert_eq!(lower(&raw, &raw[..12]), "content-type");
        assert_eq!(lower(&raw, &raw[13..27]), "x-custom-thing");
        assert_eq!(lower(&raw, &raw[28..]), "already-lower");
        // Every byte value, at every position of a word and in the tail.
        let all: Vec<u8> = (0..=255u8).collect();
        for len in [0, 1, 7, 8, 9, 16, 17, 256] {
            for start in 0..8 {
                let src: Vec<u8> = all.iter().cycle().skip(start).take(len).copied().collect();
                let mut got = src.clone();
                make_lowercase(&mut got);
                assert_eq!(got, src.to_ascii_lowercase(), "len {len} start {start}");
            }
        }
        let mut packed = PackedFields::new();
        packed.push(b"X-Forwarded-FOR", &[b"1.2.3.4"]);
        assert_eq!(
            packed.iter().next(),
            Some((&b"x-forwarded-for"[..], &b"1.2.3.4"[..]))
        );
    }
}
