//! An HTTP/2 request's decoded fields as the protocol-neutral [`RequestHead`] (RFC 9113 8.3.1).
//!
//! Owns: [`request_head`]. The fields are packed into one buffer (names and values, no text
//! framing) and the head keeps offsets into it, as an HTTP/1 head does into the bytes it was
//! parsed from; nothing is written as HTTP/1 text or parsed twice. `:authority` stands for the
//! Host field (a `host` field beside it is dropped), cookie crumbs are joined into one field
//! (8.2.3), and the body framing comes from `content-length` and END_STREAM.
//!
//! The same limits and rules as an HTTP/1 head apply, with the same errors, so a request is
//! answered alike on either protocol: the size of the equivalent HTTP/1.1 head against
//! [`Limits`] (414, 431), the method a token, the path visible ASCII without a fragment, the
//! authority `host[:port]`, names tokens and values free of control characters.
//!
//! Does not: check what the connection already checked for every HTTP/2 request (pseudo-header
//! order, presence and uniqueness, lowercase names, connection-specific fields, a decimal
//! `content-length`: `conn::validate`).

use bytes::{Bytes, BytesMut};

use crate::http::{RequestHead, TargetForm};
use crate::http1::headers::{
    Field, Span, is_field_value, is_token, is_valid_authority, parse_content_length,
};
use crate::http1::{BodyFraming, Limits, RequestError, Version};

/// `" HTTP/1.1"`: what the equivalent request line adds after the target.
const VERSION_SUFFIX: usize = 9;

/// The head for an HTTP/2 request whose HEADERS carried `fields` (pseudo-header fields first,
/// as the connection checked). `end_stream`: no body follows. An HTTP/2 head reports
/// [`Version::Http11`] semantics: persistent, `Host` required, `Expect: 100-continue` honoured.
pub fn request_head(
    fields: &[(Bytes, Bytes)],
    end_stream: bool,
    limits: &Limits,
) -> Result<RequestHead, RequestError> {
    let mut method: Option<&[u8]> = None;
    let mut path: Option<&[u8]> = None;
    let mut authority: Option<&[u8]> = None;
    let mut size = 0;
    let mut cookies = 0;
    let mut cookie_bytes = 0;
    for (name, value) in fields {
        // The first of each pseudo-header counts (the connection refuses a repeated one).
        match name.as_ref() {
            b":method" => _ = method.get_or_insert(value),
            b":path" => _ = path.get_or_insert(value),
            b":authority" => _ = authority.get_or_insert(value),
            b"cookie" => {
                cookies += 1;
                cookie_bytes += value.len() + 2;
            }
            _ => {}
        }
        size += name.len() + value.len();
    }
    let method = method.unwrap_or_default();
    if !is_token(method) {
        return Err(RequestError::InvalidMethod);
    }
    let connect = method == b"CONNECT";
    let target = if connect { authority } else { path }.unwrap_or_default();
    // RFC 9112 section 3: the equivalent request line's length, CRLF excluded.
    if method.len() + 1 + target.len() + VERSION_SUFFIX > limits.max_request_line {
        return Err(RequestError::RequestLineTooLong);
    }

    let mut buf = BytesMut::with_capacity(size + cookie_bytes + "host".len());
    let method_span = put(&mut buf, method);
    let target_span = put(&mut buf, target);
    let mut list = Vec::with_capacity(fields.len() + 1);
    // `:authority` is the Host (RFC 9113 8.3.1), first as an HTTP/1.1 client would send it.
    let authority_span = authority.map(|a| {
        let value = Span {
            start: target_span.start,
            end: target_span.end,
        };
        let value = if connect { value } else { put(&mut buf, a) };
        list.push(Field {
            name: put(&mut buf, b"host"),
            value,
        });
        value
    });
    let mut host = None;
    let mut host_count = 0u32;
    let mut content_length = None;
    let mut expect_continue = false;
    for (name, value) in fields.iter().filter(|(n, _)| !n.starts_with(b":")) {
        if !is_token(name) {
            return Err(RequestError::InvalidHeaderName);
        }
        if !is_field_value(value) {
            return Err(RequestError::InvalidHeaderValue);
        }
        match name.as_ref() {
            b"cookie" => continue,
            // `:authority` wins over Host (RFC 9113 8.3.1).
            b"host" if authority.is_some() => continue,
            b"host" => host_count += 1,
            b"content-length" => {
                if content_length.is_some() {
                    return Err(RequestError::DuplicateContentLength);
                }
                content_length =
                    Some(parse_content_length(value).ok_or(RequestError::InvalidContentLength)?);
            }
            b"expect" => expect_continue |= value.eq_ignore_ascii_case(b"100-continue"),
            _ => {}
        }
        let field = Field {
            name: put(&mut buf, name),
            value: put(&mut buf, value),
        };
        if name.as_ref() == b"host" && host.is_none() {
            host = Some(field.value);
        }
        list.push(field);
    }
    if cookies > 0 {
        // Crumbs become one field again (RFC 9113 8.2.3), as HTTP/1.1 carries them.
        let name = put(&mut buf, b"cookie");
        let start = buf.len() as u32;
        let crumbs = fields.iter().filter(|(n, _)| n.as_ref() == b"cookie");
        for (i, (_, v)) in crumbs.enumerate() {
            if i > 0 {
                buf.extend_from_slice(b"; ");
            }
            buf.extend_from_slice(v);
        }
        let value = Span {
            start,
            end: buf.len() as u32,
        };
        list.push(Field { name, value });
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
    let head_len = method.len() + 1 + target.len() + VERSION_SUFFIX + 2 + chunked_line + 2;
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

    let raw = buf.freeze();
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
        let (form, path, query) = split_target(method, target, target_span)?;
        // RFC 9112 3.2 (as HTTP/1.1 would): an authority, or a Host, valid when not empty.
        if host_count > 1 {
            return Err(RequestError::DuplicateHost);
        }
        let Some(authority) = authority_span.or(host) else {
            return Err(RequestError::MissingHost);
        };
        let value = authority.get(&raw);
        if !value.is_empty() && !is_valid_authority(value, false) {
            return Err(RequestError::InvalidHost);
        }
        (form, Some(path), query, authority)
    };
    Ok(RequestHead {
        raw,
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

/// `:path` (RFC 9113 8.3.1): origin-form, or `*` for OPTIONS; visible ASCII, no fragment.
/// Returns the form and the spans of the path and the query (without its `?`).
fn split_target(
    method: &[u8],
    target: &[u8],
    at: Span,
) -> Result<(TargetForm, Span, Span), RequestError> {
    if !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) || target.contains(&b'#') {
        return Err(RequestError::InvalidTarget);
    }
    if target == b"*" && method == b"OPTIONS" {
        return Ok((TargetForm::Asterisk, at, Span::default()));
    }
    if target.first() != Some(&b'/') {
        return Err(RequestError::InvalidTarget);
    }
    Ok(match target.iter().position(|&b| b == b'?') {
        Some(q) => {
            let q = at.start + q as u32;
            let path = Span {
                start: at.start,
                end: q,
            };
            let query = Span {
                start: q + 1,
                end: at.end,
            };
            (TargetForm::Origin, path, query)
        }
        None => (TargetForm::Origin, at, Span::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&'static str, &'static str)]) -> Vec<(Bytes, Bytes)> {
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

    fn get(pairs: &[(&'static str, &'static str)]) -> Result<RequestHead, RequestError> {
        request_head(&f(pairs), true, &Limits::default())
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
        let head = request_head(&f(&base), false, &Limits::default()).unwrap();
        assert_eq!(head.framing(), BodyFraming::Chunked);
        let mut with_len = f(&base);
        with_len.push((
            Bytes::from_static(b"content-length"),
            Bytes::from_static(b"5"),
        ));
        let head = request_head(&with_len, false, &Limits::default()).unwrap();
        assert_eq!(head.framing(), BodyFraming::Length(5));
        with_len.push((
            Bytes::from_static(b"content-length"),
            Bytes::from_static(b"5"),
        ));
        let err = request_head(&with_len, false, &Limits::default()).unwrap_err();
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
        assert!(request_head(&fields, true, &limits(18, 1000, 10)).is_ok());
        let err = request_head(&fields, true, &limits(17, 1000, 10)).unwrap_err();
        assert_eq!(err, RequestError::RequestLineTooLong);
        // + "host: a\r\n" (9) + CRLF after the line and at the end: 31 bytes, 1 field.
        assert!(request_head(&fields, true, &limits(18, 31, 1)).is_ok());
        let err = request_head(&fields, true, &limits(18, 30, 1)).unwrap_err();
        assert_eq!(err, RequestError::HeadTooLarge);
        let err = request_head(&fields, true, &limits(18, 31, 0)).unwrap_err();
        assert_eq!(err, RequestError::TooManyHeaders);
    }
}
