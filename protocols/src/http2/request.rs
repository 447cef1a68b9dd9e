//! An HTTP/2 request's decoded fields as the protocol-neutral [`RequestHead`] (RFC 9113 8.3.1).
//!
//! Owns: [`request_head`]. The head takes over the buffer HPACK decoded the fields into
//! ([`Fields`]) and keeps offsets into it, as an HTTP/1 head does into the bytes it was parsed
//! from: no name or value is copied, nothing is written as HTTP/1 text or parsed twice.
//! Pseudo-header fields are skipped, `:authority` stands for the Host field (a `host` field
//! beside it is dropped; the name `host` is appended once), cookie crumbs are joined into one
//! field appended at the end (8.2.3), and the body framing comes from `content-length` and
//! END_STREAM.
//!
//! The same limits and rules as an HTTP/1 head apply, with the same errors, so a request is
//! answered alike on either protocol: the size of the equivalent HTTP/1.1 head against
//! [`Limits`] (414, 431), the method a token, the path visible ASCII without a fragment, the
//! authority `host[:port]`, names tokens and values free of control characters.
//!
//! Does not: check what the connection already checked for every HTTP/2 request (pseudo-header
//! order, presence and uniqueness, lowercase names, connection-specific fields, a decimal
//! `content-length`: `conn::validate`). Names and values are not scanned again when the
//! connection's one pass found them tokens and field values (`Fields::http1_valid`); a list
//! built otherwise is scanned here.

use bytes::BytesMut;

use crate::http::{RequestHead, TargetForm};
use crate::http1::headers::{
    Field, Span, is_field_value, is_token, is_valid_authority, parse_content_length,
};
use crate::http1::request::{is_target_text, split_query};
use crate::http1::{BodyFraming, Limits, RequestError, Version};
use crate::http2::Fields;
use crate::http2::fields::Slot;

/// `" HTTP/1.1"`: what the equivalent request line adds after the target.
const VERSION_SUFFIX: usize = 9;

/// The head for an HTTP/2 request whose HEADERS carried `fields` (pseudo-header fields first,
/// as the connection checked). `end_stream`: no body follows. An HTTP/2 head reports
/// [`Version::Http11`] semantics: persistent, `Host` required, `Expect: 100-continue` honoured.
///
/// The head's buffer is `fields`' own: its spans point at the decoded names and values, with
/// `host` (for `:authority`) and joined cookie crumbs appended. A refused request gives its
/// fields back beside the error (as received: the log line reads `:method` and `:path`).
pub fn request_head(
    mut fields: Fields,
    end_stream: bool,
    limits: &Limits,
) -> Result<RequestHead, (RequestError, Fields)> {
    let len = fields.buf.len();
    let checked = fields.http1_valid;
    match build(&mut fields.buf, &fields.slots, checked, end_stream, limits) {
        Ok(head) => Ok(RequestHead {
            raw: fields.buf.freeze(),
            ..head
        }),
        Err(e) => {
            fields.buf.truncate(len);
            Err((e, fields))
        }
    }
}

/// The name and value spans of `slot`.
fn spans(slot: &Slot) -> (Span, Span) {
    let name = Span {
        start: slot.start,
        end: slot.name_end,
    };
    let value = Span {
        start: slot.name_end,
        end: slot.end,
    };
    (name, value)
}

/// [`request_head`] over the buffer `buf` the `slots` point into; appends to `buf` what the
/// head adds. `checked`: the names are known to be tokens and the values field values
/// ([`Fields`]' `http1_valid`). The returned head's `raw` is empty: the caller puts the buffer
/// in.
fn build(
    buf: &mut BytesMut,
    slots: &[Slot],
    checked: bool,
    end_stream: bool,
    limits: &Limits,
) -> Result<RequestHead, RequestError> {
    let mut method: Option<Span> = None;
    let mut path: Option<Span> = None;
    let mut authority: Option<Span> = None;
    let mut list = Vec::with_capacity(slots.len() + 1);
    let mut host = None;
    let mut host_count = 0u32;
    let mut content_length = None;
    let mut expect_continue = false;
    let mut cookie: Option<Field> = None;
    let mut cookies = 0;
    // The first problem with a regular field, in order: reported once the method and the
    // request line passed, as an HTTP/1 head's would be.
    let mut field_error = None;
    for slot in slots {
        let (name_span, value_span) = spans(slot);
        let (name, value) = (name_span.get(buf), value_span.get(buf));
        if name.starts_with(b":") {
            // The first of each pseudo-header counts (the connection refuses a repeated one).
            match name {
                b":method" => _ = method.get_or_insert(value_span),
                b":path" => _ = path.get_or_insert(value_span),
                b":authority" => _ = authority.get_or_insert(value_span),
                _ => {}
            }
            continue;
        }
        if field_error.is_some() {
            continue;
        }
        if !checked && !is_token(name) {
            field_error = Some(RequestError::InvalidHeaderName);
            continue;
        }
        if !checked && !is_field_value(value) {
            field_error = Some(RequestError::InvalidHeaderValue);
            continue;
        }
        match name {
            b"cookie" => {
                // One crumb stays where it is; more are joined at the end, below.
                cookies += 1;
                _ = cookie.get_or_insert(Field {
                    name: name_span,
                    value: value_span,
                });
                continue;
            }
            b"host" => {
                host_count += 1;
                _ = host.get_or_insert(value_span);
            }
            b"content-length" => {
                if content_length.is_some() {
                    field_error = Some(RequestError::DuplicateContentLength);
                    continue;
                }
                let Some(n) = parse_content_length(value) else {
                    field_error = Some(RequestError::InvalidContentLength);
                    continue;
                };
                content_length = Some(n);
            }
            b"expect" => expect_continue |= value.eq_ignore_ascii_case(b"100-continue"),
            _ => {}
        }
        list.push(Field {
            name: name_span,
            value: value_span,
        });
    }
    let method_span = method.unwrap_or_default();
    let method = method_span.get(buf);
    if !is_token(method) {
        return Err(RequestError::InvalidMethod);
    }
    let connect = method == b"CONNECT";
    let target_span = if connect { authority } else { path }.unwrap_or_default();
    let target = target_span.get(buf);
    // RFC 9112 section 3: the equivalent request line's length, CRLF excluded.
    if method.len() + 1 + target.len() + VERSION_SUFFIX > limits.max_request_line {
        return Err(RequestError::RequestLineTooLong);
    }
    if let Some(e) = field_error {
        return Err(e);
    }
    let method_len = method.len();
    let target_len = target.len();
    if let Some(value) = authority {
        // `:authority` wins over Host (RFC 9113 8.3.1) ...
        if host_count > 0 {
            list.retain(|f| f.name.get(buf) != b"host");
            (host, host_count) = (None, 0);
        }
        // ... and is the Host, first as an HTTP/1.1 client would send it.
        let name = put(buf, b"host");
        list.insert(0, Field { name, value });
    }
    if let Some(mut field) = cookie {
        if cookies > 1 {
            // Crumbs become one field again (RFC 9113 8.2.3), as HTTP/1.1 carries them.
            let start = buf.len() as u32;
            let mut first = true;
            for (name, value) in slots.iter().map(spans) {
                if name.get(buf) != b"cookie" {
                    continue;
                }
                if !first {
                    buf.extend_from_slice(b"; ");
                }
                first = false;
                append_within(buf, value);
            }
            field.value = Span {
                start,
                end: buf.len() as u32,
            };
        }
        list.push(field);
    }
    let framing = match content_length {
        Some(n) => BodyFraming::Length(n),
        None if end_stream => BodyFraming::None,
        // The body's length is unknown: an HTTP/1 next hop gets it chunked.
        None => BodyFraming::Chunked,
    };
    // RFC 6585 section 5: the equivalent HTTP/1.1 head's size and field count (with the
    // `transfer-encoding: chunked` line a length-less body would add).
    let chunked_line = if framing == BodyFraming::Chunked {
        "transfer-encoding: chunked\r\n".len()
    } else {
        0
    };
    let count = list.len() + usize::from(chunked_line > 0);
    let head_len = method_len + 1 + target_len + VERSION_SUFFIX + 2 + chunked_line + 2;
    let head_len = head_len
        + list
            .iter()
            .map(|f| (f.name.end - f.name.start + f.value.end - f.value.start) as usize + 4)
            .sum::<usize>();
    if count > limits.max_headers {
        return Err(RequestError::TooManyHeaders);
    }
    if head_len > limits.max_head {
        return Err(RequestError::HeadTooLarge);
    }

    let target = target_span.get(buf);
    let method = method_span.get(buf);
    let (form, path, query, authority) = if connect {
        // RFC 9113 8.5: CONNECT names only the authority, which must carry a port.
        if !is_valid_authority(target, true) {
            return Err(RequestError::InvalidTarget);
        }
        (
            TargetForm::Authority,
            Some(Span::default()),
            Span::default(),
            target_span,
        )
    } else {
        let (form, path, query) = split_target(buf, method, target)?;
        // RFC 9112 3.2 (as HTTP/1.1 would): an authority, or a Host, valid when not empty.
        if host_count > 1 {
            return Err(RequestError::DuplicateHost);
        }
        let Some(authority) = authority.or(host) else {
            return Err(RequestError::MissingHost);
        };
        let value = authority.get(buf);
        if !value.is_empty() && !is_valid_authority(value, false) {
            return Err(RequestError::InvalidHost);
        }
        (form, Some(path), query, authority)
    };
    Ok(RequestHead {
        raw: Default::default(),
        method: method_span,
        target: target_span,
        path,
        query,
        authority,
        form,
        version: Version::Http11,
        fields: list,
        framing,
        keep_alive: true,
        connection_other: false,
        expect_continue,
        upgrade: None,
        text: false,
    })
}

/// Appends `bytes` to `buf` and returns where they are.
fn put(buf: &mut BytesMut, bytes: &[u8]) -> Span {
    let start = buf.len();
    buf.extend_from_slice(bytes);
    Span {
        start: start as u32,
        end: buf.len() as u32,
    }
}

/// Appends a copy of the octets at `span` of `buf` to its end (nothing if `span` is not in
/// `buf`, which cannot happen for the spans of its own fields).
fn append_within(buf: &mut BytesMut, span: Span) {
    let (start, end) = (span.start as usize, span.end as usize);
    if start > end || end > buf.len() {
        return;
    }
    let at = buf.len();
    buf.resize(at + (end - start), 0);
    buf.copy_within(start..end, at);
}

/// `:path` (RFC 9113 8.3.1): origin-form, or `*` for OPTIONS; the HTTP/1 target rules
/// (visible ASCII, no fragment). `target` is a slice of `base`; returns the form and the spans
/// of the path and the query (without its `?`) in `base`.
fn split_target(
    base: &[u8],
    method: &[u8],
    target: &[u8],
) -> Result<(TargetForm, Span, Span), RequestError> {
    let bad = RequestError::InvalidTarget;
    if !is_target_text(target) {
        return Err(bad);
    }
    let sp = |part: &[u8]| Span::of(base, part).ok_or(bad);
    if target == b"*" && method == b"OPTIONS" {
        return Ok((TargetForm::Asterisk, sp(target)?, Span::default()));
    }
    if target.first() != Some(&b'/') {
        return Err(bad);
    }
    let (path, query) = split_query(target);
    let query = query.map(sp).transpose()?.unwrap_or_default();
    Ok((TargetForm::Origin, sp(path)?, query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&'static str, &'static str)]) -> Fields {
        pairs.iter().copied().collect()
    }

    /// [`request_head`] without the fields a refusal gives back.
    fn build_head(
        fields: &Fields,
        end_stream: bool,
        limits: &Limits,
    ) -> Result<RequestHead, RequestError> {
        request_head(fields.clone(), end_stream, limits).map_err(|(e, _)| e)
    }

    fn get(pairs: &[(&'static str, &'static str)]) -> Result<RequestHead, RequestError> {
        build_head(&f(pairs), true, &Limits::default())
    }

    #[test]
    fn authority_becomes_host_and_cookie_crumbs_are_joined() {
        let head = get(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "example.com"),
            (":path", "/a?b=1"),
            ("cookie", "a=1"),
            ("host", "other.example"),
            ("x-y", "z"),
            ("cookie", "b=2"),
        ])
        .unwrap();
        assert_eq!(head.method(), b"GET");
        assert_eq!(head.target(), b"/a?b=1");
        assert_eq!(head.path(), b"/a");
        assert_eq!(head.query(), b"b=1");
        assert_eq!(head.authority(), b"example.com");
        assert_eq!(head.header(b"cookie"), Some(&b"a=1; b=2"[..]));
        assert_eq!(head.header(b"x-y"), Some(&b"z"[..]));
        let names: Vec<_> = head.headers().map(|(n, _)| n.to_vec()).collect();
        assert_eq!(names, [&b"host"[..], b"x-y", b"cookie"]);
        assert_eq!(head.header(b"host"), Some(&b"example.com"[..]));
        assert_eq!(head.framing(), BodyFraming::None);
        assert!(head.is_keep_alive() && !head.expects_continue());
        assert!(!head.is_absolute_form() && head.upgrade().is_none());
        // The packed buffer holds no field lines to forward as they are.
        assert_eq!(head.field_line(0), None);
    }

    #[test]
    fn the_head_keeps_the_decoded_buffer_and_a_refusal_gives_the_fields_back() {
        let fields = f(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "a"),
            (":path", "/p"),
            ("x", "1"),
        ]);
        let (bytes, at) = (fields.byte_len(), fields.get(0).unwrap().0.as_ptr());
        let head = request_head(fields, true, &Limits::default()).unwrap();
        // The same allocation, with only the name `host` appended.
        assert_eq!(head.raw().as_ptr(), at);
        assert_eq!(head.raw().len(), bytes + "host".len());
        assert_eq!(head.header(b"host"), Some(&b"a"[..]));
        // Refused after `host` was appended: the fields come back as they were.
        let bad = f(&[
            (":method", "GET"),
            (":authority", "a"),
            (":path", "/"),
            ("a(b", "v"),
        ]);
        let (e, back) = request_head(bad.clone(), true, &Limits::default()).unwrap_err();
        assert_eq!(e, RequestError::InvalidHeaderName);
        assert_eq!((back.byte_len(), &back), (bad.byte_len(), &bad));
    }

    #[test]
    fn host_stands_in_for_a_missing_authority() {
        let head = get(&[(":method", "GET"), (":path", "/"), ("host", "h:8080")]).unwrap();
        assert_eq!(head.authority(), b"h:8080");
        let two = get(&[
            (":method", "GET"),
            (":path", "/"),
            ("host", "a"),
            ("host", "b"),
        ]);
        assert_eq!(two.unwrap_err(), RequestError::DuplicateHost);
        let none = get(&[(":method", "GET"), (":scheme", "http"), (":path", "/")]);
        assert_eq!(none.unwrap_err(), RequestError::MissingHost);
        let bad = get(&[(":method", "GET"), (":path", "/"), (":authority", "a b")]);
        assert_eq!(bad.unwrap_err(), RequestError::InvalidHost);
    }

    #[test]
    fn framing_follows_content_length_then_end_stream() {
        let base = [(":method", "POST"), (":authority", "a"), (":path", "/")];
        let head = build_head(&f(&base), false, &Limits::default()).unwrap();
        assert_eq!(head.framing(), BodyFraming::Chunked);
        let mut with_len = f(&base);
        with_len.push(b"content-length", b"5");
        let head = build_head(&with_len, false, &Limits::default()).unwrap();
        assert_eq!(head.framing(), BodyFraming::Length(5));
        with_len.push(b"content-length", b"5");
        let err = build_head(&with_len, false, &Limits::default()).unwrap_err();
        assert_eq!(err, RequestError::DuplicateContentLength);
        let expect = get(&[
            (":method", "PUT"),
            (":authority", "a"),
            (":path", "/"),
            ("expect", "100-Continue"),
        ]);
        assert!(expect.unwrap().expects_continue());
    }

    #[test]
    fn connect_names_an_authority_with_a_port() {
        let head = get(&[(":method", "CONNECT"), (":authority", "example.com:443")]).unwrap();
        assert!(head.is_connect());
        assert_eq!(head.target(), b"example.com:443");
        assert_eq!(head.authority(), b"example.com:443");
        assert_eq!(head.path(), b"");
        let no_port = get(&[(":method", "CONNECT"), (":authority", "example.com")]);
        assert_eq!(no_port.unwrap_err(), RequestError::InvalidTarget);
    }

    #[test]
    fn targets_methods_names_and_values_are_judged_as_http1_judges_them() {
        let base =
            |path: &'static str| get(&[(":method", "GET"), (":authority", "a"), (":path", path)]);
        assert_eq!(base("/a#frag").unwrap_err(), RequestError::InvalidTarget);
        assert_eq!(base("http://a/").unwrap_err(), RequestError::InvalidTarget);
        assert_eq!(base("*").unwrap_err(), RequestError::InvalidTarget);
        let star = get(&[(":method", "OPTIONS"), (":authority", "a"), (":path", "*")]);
        assert!(star.unwrap().is_asterisk_form());
        let method = get(&[(":method", "G(T"), (":authority", "a"), (":path", "/")]);
        assert_eq!(method.unwrap_err(), RequestError::InvalidMethod);
        let name = get(&[
            (":method", "GET"),
            (":authority", "a"),
            (":path", "/"),
            ("a(b", "v"),
        ]);
        assert_eq!(name.unwrap_err(), RequestError::InvalidHeaderName);
        let value = get(&[
            (":method", "GET"),
            (":authority", "a"),
            (":path", "/"),
            ("a", "v\x01"),
        ]);
        assert_eq!(value.unwrap_err(), RequestError::InvalidHeaderValue);
    }

    #[test]
    fn limits_count_the_equivalent_http1_head() {
        // "GET /aaaa HTTP/1.1" is 18 bytes.
        let fields = f(&[(":method", "GET"), (":authority", "a"), (":path", "/aaaa")]);
        let limits = |line, head, n| Limits {
            max_request_line: line,
            max_head: head,
            max_headers: n,
        };
        assert!(build_head(&fields, true, &limits(18, 1000, 10)).is_ok());
        let err = build_head(&fields, true, &limits(17, 1000, 10)).unwrap_err();
        assert_eq!(err, RequestError::RequestLineTooLong);
        // + "host: a\r\n" (9) + CRLF after the line and at the end: 31 bytes, 1 field.
        assert!(build_head(&fields, true, &limits(18, 31, 1)).is_ok());
        let err = build_head(&fields, true, &limits(18, 30, 1)).unwrap_err();
        assert_eq!(err, RequestError::HeadTooLarge);
        let err = build_head(&fields, true, &limits(18, 31, 0)).unwrap_err();
        assert_eq!(err, RequestError::TooManyHeaders);
    }
}
