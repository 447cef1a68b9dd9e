//! Percent-encoding of the `grpc-message` trailer (PROTOCOL-HTTP2.md, "Status-Message"):
//! the UTF-8 text is sent with every byte outside 0x20..=0x7E, and `%` itself, written as
//! `%XX`. A receiver must not fail on a broken encoding: bad escapes are kept as they are.

use std::borrow::Cow;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(b: u8) -> bool {
    (0x20..=0x7E).contains(&b) && b != b'%'
}

/// Percent-encodes a status message for the `grpc-message` header. Borrows when nothing
/// needs escaping (the common case: plain ASCII text).
pub fn encode_message(msg: &[u8]) -> Cow<'_, [u8]> {
    let escapes = msg.iter().filter(|&&b| !is_unreserved(b)).count();
    if escapes == 0 {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len() + 2 * escapes);
    for &b in msg {
        if is_unreserved(b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.extend(
                [b >> 4, b & 0xF]
                    .iter()
                    .filter_map(|&n| HEX.get(usize::from(n))),
            );
        }
    }
    Cow::Owned(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a `grpc-message` value to the message bytes (UTF-8 when the sender followed the
/// spec; the caller decides how to treat invalid UTF-8). `%XX` with two hex digits (either
/// case) becomes the byte; a `%` not followed by two hex digits is kept as it is. Borrows
/// when there is no `%`.
pub fn decode_message(value: &[u8]) -> Cow<'_, [u8]> {
    if !value.contains(&b'%') {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&b, tail)) = rest.split_first() {
        let escaped = match tail.first_chunk::<2>() {
            Some(&[hi, lo]) if b == b'%' => hex_value(hi).zip(hex_value(lo)),
            _ => None,
        };
        if let Some((hi, lo)) = escaped {
            out.push(hi << 4 | lo);
            rest = tail.get(2..).unwrap_or_default();
        } else {
            out.push(b);
            rest = tail;
        }
    }
    Cow::Owned(out)
}
