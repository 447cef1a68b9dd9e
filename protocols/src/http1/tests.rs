//! Tests for the HTTP/1 codec: one case per RFC 9112 rule (table-driven), split feeding,
//! keep-alive semantics, encode/parse round trips and never-panic properties.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

fn req(s: &[u8]) -> Result<Option<RequestHead>, RequestError> {
    parse_request(&mut BytesMut::from(s), &Limits::default())
}

fn req_ok(s: &[u8]) -> RequestHead {
    match req(s) {
        Ok(Some(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(s)),
    }
}

fn resp(s: &[u8], method: MethodKind) -> Result<Option<ResponseHead>, ResponseError> {
    parse_response_for(&mut BytesMut::from(s), method, &Limits::default())
}

fn resp_ok(s: &[u8]) -> ResponseHead {
    match resp(s, MethodKind::Other) {
        Ok(Some(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(s)),
    }
}

/// A POST with Host and the given extra field lines (each without CRLF).
fn post_with(fields: &[&str]) -> Vec<u8> {
    let mut s = String::from("POST / HTTP/1.1\r\nHost: example.com\r\n");
    for f in fields {
        s.push_str(f);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Requests: refusals, one per rule, each with its status.
// ---------------------------------------------------------------------------------------------

/// One refusal per RFC 9112 rule: (name, input, error, status).
fn request_refusal_cases() -> Vec<(&'static str, Vec<u8>, RequestError, u16)> {
    use RequestError as E;
    let h = |fields: &[&str]| post_with(fields);
    vec![
        // RFC 9110 8.6 / RFC 9112 6.3: Content-Length = 1*DIGIT, one value.
        (
            "cl plus sign",
            h(&["Content-Length: +5"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl minus sign",
            h(&["Content-Length: -5"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl hex",
            h(&["Content-Length: 0x5"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl inner space",
            h(&["Content-Length: 5 5"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl trailing garbage",
            h(&["Content-Length: 5a"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl empty",
            h(&["Content-Length:"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl u64 overflow",
            h(&["Content-Length: 18446744073709551616"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl very long",
            h(&["Content-Length: 000000000000000000000001"]),
            E::InvalidContentLength,
            400,
        ),
        (
            "cl duplicate lines",
            h(&["Content-Length: 5", "Content-Length: 5"]),
            E::DuplicateContentLength,
            400,
        ),
        (
            "cl duplicate list",
            h(&["Content-Length: 5, 5"]),
            E::DuplicateContentLength,
            400,
        ),
        (
            "cl differing list",
            h(&["Content-Length: 5,6"]),
            E::DuplicateContentLength,
            400,
        ),
        (
            "cl empty list element",
            h(&["Content-Length: 5,"]),
            E::InvalidContentLength,
            400,
        ),
        // RFC 9112 6.1 / 6.3: Transfer-Encoding.
        (
            "te and cl",
            h(&["Transfer-Encoding: chunked", "Content-Length: 5"]),
            E::TeAndContentLength,
            400,
        ),
        (
            "cl and te",
            h(&["Content-Length: 5", "Transfer-Encoding: chunked"]),
            E::TeAndContentLength,
            400,
        ),
        (
            "te gzip alone",
            h(&["Transfer-Encoding: gzip"]),
            E::UnsupportedTransferCoding,
            501,
        ),
        (
            "te unknown coding",
            h(&["Transfer-Encoding: x"]),
            E::UnsupportedTransferCoding,
            501,
        ),
        (
            "te unknown before chunked",
            h(&["Transfer-Encoding: x, chunked"]),
            E::UnsupportedTransferCoding,
            501,
        ),
        (
            "te chunked twice",
            h(&["Transfer-Encoding: chunked, chunked"]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te chunked twice in two lines",
            h(&["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te chunked not final",
            h(&["Transfer-Encoding: chunked, gzip"]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te chunked with parameter",
            h(&["Transfer-Encoding: chunked;x"]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te empty element after",
            h(&["Transfer-Encoding: chunked,"]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te empty element before",
            h(&["Transfer-Encoding: , chunked"]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te empty value",
            h(&["Transfer-Encoding:"]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te quoted",
            h(&["Transfer-Encoding: \"chunked\""]),
            E::InvalidTransferEncoding,
            400,
        ),
        (
            "te vertical tab",
            h(&["Transfer-Encoding: \x0bchunked"]),
            E::InvalidHeaderValue,
            400,
        ),
        (
            "te form feed inside",
            h(&["Transfer-Encoding: chunked\x0c"]),
            E::InvalidHeaderValue,
            400,
        ),
        (
            "te space before colon",
            h(&["Transfer-Encoding : chunked"]),
            E::InvalidHeaderName,
            400,
        ),
        (
            "te in http/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            E::TransferEncodingInHttp10,
            400,
        ),
        // RFC 9112 3.2 / RFC 9110 7.2: Host.
        (
            "missing host",
            b"GET / HTTP/1.1\r\nX: y\r\n\r\n".to_vec(),
            E::MissingHost,
            400,
        ),
        (
            "missing host absolute form",
            b"GET http://a/ HTTP/1.1\r\n\r\n".to_vec(),
            E::MissingHost,
            400,
        ),
        (
            "two hosts",
            h(&["Host: example.com"]),
            E::DuplicateHost,
            400,
        ),
        (
            "two different hosts",
            h(&["host: evil.com"]),
            E::DuplicateHost,
            400,
        ),
        (
            "host with space",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(),
            E::InvalidHost,
            400,
        ),
        (
            "host with userinfo",
            b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n".to_vec(),
            E::InvalidHost,
            400,
        ),
        (
            "host with slash",
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n".to_vec(),
            E::InvalidHost,
            400,
        ),
        (
            "host with control",
            b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n".to_vec(),
            E::InvalidHeaderValue,
            400,
        ),
        (
            "host bad port",
            b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n".to_vec(),
            E::InvalidHost,
            400,
        ),
        (
            "host port too long",
            b"GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n".to_vec(),
            E::InvalidHost,
            400,
        ),
        (
            "host empty name",
            b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n".to_vec(),
            E::InvalidHost,
            400,
        ),
        (
            "host unclosed ipv6",
            b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n".to_vec(),
            E::InvalidHost,
            400,
        ),
        // RFC 9112 5 / RFC 9110 5.1, 5.5: field syntax.
        (
            "name with space",
            h(&["Bad Name: x"]),
            E::InvalidHeaderName,
            400,
        ),
        (
            "space before colon",
            h(&["Name : x"]),
            E::InvalidHeaderName,
            400,
        ),
        (
            "tab before colon",
            h(&["Name\t: x"]),
            E::InvalidHeaderName,
            400,
        ),
        ("empty name", h(&[": x"]), E::InvalidHeaderName, 400),
        (
            "name not a token",
            h(&["Na(me: x"]),
            E::InvalidHeaderName,
            400,
        ),
        (
            "name without colon",
            h(&["NoColon"]),
            E::InvalidHeaderName,
            400,
        ),
        (
            "value with nul",
            h(&["X: a\0b"]),
            E::InvalidHeaderValue,
            400,
        ),
        (
            "value with del",
            h(&["X: a\x7fb"]),
            E::InvalidHeaderValue,
            400,
        ),
        (
            "value with escape",
            h(&["X: a\x1bb"]),
            E::InvalidHeaderValue,
            400,
        ),
        ("value with bare cr", h(&["X: a\rb"]), E::BareCr, 400),
        ("obs-fold", h(&["X: a", " b"]), E::ObsFold, 400),
        ("obs-fold tab", h(&["X: a", "\tb"]), E::ObsFold, 400),
        (
            "space after request line",
            b"GET / HTTP/1.1\r\n Host: a\r\n\r\n".to_vec(),
            E::ObsFold,
            400,
        ),
        // RFC 9112 2.2: line endings.
        (
            "bare lf in fields",
            b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n".to_vec(),
            E::BareLf,
            400,
        ),
        (
            "bare lf end",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n".to_vec(),
            E::BareLf,
            400,
        ),
        (
            "bare lf request line",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n".to_vec(),
            E::BareLf,
            400,
        ),
        (
            "bare cr request line",
            b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::BareCr,
            400,
        ),
        (
            "leading bare lf",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::BareLf,
            400,
        ),
        (
            "leading bare cr",
            b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::BareCr,
            400,
        ),
        // RFC 9112 3: request line.
        (
            "double space after method",
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidRequestLine,
            400,
        ),
        (
            "double space before version",
            b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidRequestLine,
            400,
        ),
        (
            "trailing space",
            b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidRequestLine,
            400,
        ),
        (
            "space in target",
            b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidRequestLine,
            400,
        ),
        (
            "tab separator",
            b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidRequestLine,
            400,
        ),
        (
            "http/0.9",
            b"GET /\r\n\r\n".to_vec(),
            E::InvalidRequestLine,
            400,
        ),
        (
            "method not a token",
            b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidMethod,
            400,
        ),
        (
            "http/2.0",
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(),
            E::UnsupportedVersion,
            505,
        ),
        (
            "http/1.2",
            b"GET / HTTP/1.2\r\nHost: a\r\n\r\n".to_vec(),
            E::UnsupportedVersion,
            505,
        ),
        (
            "http/0.9 versioned",
            b"GET / HTTP/0.9\r\nHost: a\r\n\r\n".to_vec(),
            E::UnsupportedVersion,
            505,
        ),
        (
            "version lowercase",
            b"GET / http/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidVersion,
            400,
        ),
        (
            "version two digits",
            b"GET / HTTP/1.10\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidVersion,
            400,
        ),
        (
            "version garbage",
            b"GET / HTTQ/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidVersion,
            400,
        ),
        (
            "version bare number",
            b"GET / HTTP/2\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidVersion,
            400,
        ),
        // RFC 9112 3.2: request target.
        (
            "target del",
            b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "target non-ascii",
            b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "target fragment",
            b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "target relative",
            b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "authority form without connect",
            b"GET a.com:443 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "connect origin form",
            b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "connect without port",
            b"CONNECT a.com HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "connect absolute form",
            b"CONNECT http://a.com:80/ HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "asterisk without options",
            b"GET * HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "absolute form other scheme",
            b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "absolute form userinfo",
            b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
        (
            "absolute form empty authority",
            b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            E::InvalidTarget,
            400,
        ),
    ]
}

#[test]
fn request_refusals_map_to_the_right_error_and_status() {
    let cases = request_refusal_cases();
    for (name, input, want, status) in &cases {
        match req(input) {
            Err(got) => {
                assert_eq!(got, *want, "{name}");
                assert_eq!(got.status(), *status, "{name}");
                assert!(!got.to_string().is_empty(), "{name}");
            }
            other => panic!("{name}: expected {want:?}, got {other:?}"),
        }
    }
}

/// Feeds `input` one byte at a time through one [`RequestParser`]; returns the first verdict.
fn req_trickled(input: &[u8]) -> Result<Option<RequestHead>, RequestError> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    for &b in input {
        buf.extend_from_slice(&[b]);
        if let Some(h) = parser.parse(&mut buf, &Limits::default())? {
            return Ok(Some(h));
        }
    }
    Ok(None)
}

#[test]
fn incremental_parser_gives_the_same_refusals_byte_by_byte() {
    for (name, input, want, _) in request_refusal_cases() {
        assert_eq!(req_trickled(&input).err(), Some(want), "{name}");
    }
}

#[test]
fn incremental_parser_parses_pipelined_heads_in_turn() {
    let input = b"\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nxyGET /c HTTP/1.0\r\n\r\n";
    let mut parser = RequestParser::new();
    let mut body: Option<BodyDecoder> = None;
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    for &b in input {
        buf.extend_from_slice(&[b]);
        loop {
            if let Some(dec) = body.as_mut() {
                match dec.decode(&mut buf).unwrap() {
                    BodyEvent::Data(d) => seen.push(d.to_vec()),
                    BodyEvent::End => body = None,
                    BodyEvent::NeedMore => break,
                    BodyEvent::Trailers(_) => unreachable!(),
                }
                continue;
            }
            match parser.parse(&mut buf, &Limits::default()).unwrap() {
                Some(h) => {
                    seen.push([h.method(), b" ", h.path()].concat());
                    body = Some(BodyDecoder::new(h.framing()));
                }
                None => break,
            }
        }
    }
    let want: Vec<&[u8]> = vec![b"GET /a", b"POST /b", b"x", b"y", b"GET /c"];
    assert_eq!(seen, want);
}

#[test]
fn request_line_longer_than_limit_is_414_before_its_end() {
    let limits = Limits::default();
    let mut line = b"GET /".to_vec();
    line.resize(limits.max_request_line + 2, b'a');
    // No CRLF yet: the line is already too long.
    assert_eq!(req(&line).unwrap_err(), RequestError::RequestLineTooLong);
    // One byte short of provably too long: still waiting.
    assert!(req(&line[..limits.max_request_line + 1]).unwrap().is_none());
    // Complete but one byte too long.
    let mut long = b"GET /".to_vec();
    long.resize(limits.max_request_line - 8, b'a');
    long.extend_from_slice(b"x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req(&long).unwrap_err().status(), 414);
    // Exactly at the limit is fine.
    let mut exact = b"GET /".to_vec();
    exact.resize(limits.max_request_line - 9, b'a');
    exact.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req_ok(&exact).target().len() + 13, limits.max_request_line);
}

#[test]
fn too_many_headers_is_431_before_the_head_ends() {
    let limits = Limits::default();
    let mut s = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..limits.max_headers - 1 {
        s.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let mut at_limit = s.clone();
    at_limit.extend_from_slice(b"\r\n");
    assert_eq!(req_ok(&at_limit).header_count(), limits.max_headers);
    s.extend_from_slice(b"X-last: v\r\n"); // no end of head yet
    let err = req(&s).unwrap_err();
    assert_eq!(err, RequestError::TooManyHeaders);
    assert_eq!(err.status(), 431);
}

#[test]
fn head_larger_than_limit_is_431_before_the_head_ends() {
    let limits = Limits {
        max_head: 1024,
        ..Limits::default()
    };
    let mut s = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    s.resize(1023, b'v');
    assert!(
        parse_request(&mut BytesMut::from(&s[..]), &limits)
            .unwrap()
            .is_none()
    );
    s.push(b'v');
    let err = parse_request(&mut BytesMut::from(&s[..]), &limits).unwrap_err();
    assert_eq!((err, err.status()), (RequestError::HeadTooLarge, 431));
    // A head of exactly max_head bytes is accepted.
    let mut exact = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    exact.resize(1020, b'v');
    exact.extend_from_slice(b"\r\n\r\n");
    assert!(
        parse_request(&mut BytesMut::from(&exact[..]), &limits)
            .unwrap()
            .is_some()
    );
}

#[test]
fn more_headers_than_the_stack_array_parse() {
    let limits = Limits {
        max_headers: 500,
        ..Limits::default()
    };
    let mut s = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..300 {
        s.extend_from_slice(format!("X-{i}: v{i}\r\n").as_bytes());
    }
    s.extend_from_slice(b"\r\n");
    let h = parse_request(&mut BytesMut::from(&s[..]), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(h.header_count(), 301);
    assert_eq!(h.header(b"x-299"), Some(&b"v299"[..]));
}

// ---------------------------------------------------------------------------------------------
// Requests: accepted shapes and accessors.
// ---------------------------------------------------------------------------------------------

#[test]
fn origin_form_accessors() {
    let h = req_ok(b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com:8080\r\nX-A:  spaced value \t\r\nx-b: 2\r\n\r\n");
    assert_eq!(h.method(), b"GET");
    assert!(!h.is_head() && !h.is_connect());
    assert_eq!(h.target(), b"/a/b?x=1&y");
    assert_eq!(h.path(), b"/a/b");
    assert_eq!(h.query(), b"x=1&y");
    assert_eq!(h.authority(), b"example.com:8080");
    assert_eq!(h.version(), Version::Http11);
    let fields: Vec<_> = h.headers().collect();
    assert_eq!(
        fields,
        vec![
            (&b"Host"[..], &b"example.com:8080"[..]),
            (b"X-A", b"spaced value"),
            (b"x-b", b"2")
        ]
    );
    assert_eq!(h.header(b"x-a"), Some(&b"spaced value"[..]));
    assert_eq!(h.header(b"host"), Some(&b"example.com:8080"[..]));
    assert_eq!(h.header(b"missing"), None);
    assert_eq!(h.framing(), BodyFraming::None);
    assert!(h.is_keep_alive());
    assert!(!h.is_absolute_form());
    assert_eq!(&h.raw()[..], &b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com:8080\r\nX-A:  spaced value \t\r\nx-b: 2\r\n\r\n"[..]);
}

#[test]
fn absolute_form_authority_wins_over_host() {
    let h = req_ok(b"GET http://Upstream.example:81?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert!(h.is_absolute_form());
    assert_eq!(h.path(), b"/");
    assert_eq!(h.query(), b"q=1");
    assert_eq!(h.authority(), b"Upstream.example:81");
    let h = req_ok(b"GET HTTPS://[::1]:8443/p/q HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(
        (h.path(), h.query(), h.authority()),
        (&b"/p/q"[..], &b""[..], &b"[::1]:8443"[..])
    );
    // HTTP/1.0 absolute form needs no Host.
    let h = req_ok(b"GET http://a.b/ HTTP/1.0\r\n\r\n");
    assert_eq!(h.authority(), b"a.b");
}

#[test]
fn asterisk_and_authority_forms() {
    let h = req_ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(h.is_asterisk_form());
    assert_eq!((h.path(), h.authority()), (&b"*"[..], &b"a"[..]));
    let h = req_ok(b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
    assert!(h.is_connect());
    assert_eq!(
        (h.path(), h.authority()),
        (&b""[..], &b"db.internal:5432"[..])
    );
    let h = req_ok(b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.authority(), b"[2001:db8::1]:443");
}

#[test]
fn http10_without_host_has_empty_authority() {
    let h = req_ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.authority(), b"");
    assert_eq!(h.version(), Version::Http10);
    // An empty Host is valid (RFC 9110 7.2) and yields an empty authority.
    assert_eq!(req_ok(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").authority(), b"");
}

#[test]
fn request_framing_cases() {
    let f = |fields: &[&str]| req_ok(&post_with(fields)).framing();
    assert_eq!(f(&[]), BodyFraming::None);
    assert_eq!(f(&["Content-Length: 0"]), BodyFraming::Length(0));
    assert_eq!(f(&["Content-Length:  42 "]), BodyFraming::Length(42));
    assert_eq!(
        f(&["Content-Length: 18446744073709551615"]),
        BodyFraming::Length(u64::MAX)
    );
    assert_eq!(f(&["Transfer-Encoding: chunked"]), BodyFraming::Chunked);
    assert_eq!(f(&["transfer-encoding: CHUNKED"]), BodyFraming::Chunked);
    assert_eq!(
        f(&["Transfer-Encoding: gzip, chunked"]),
        BodyFraming::Chunked
    );
    assert_eq!(
        f(&["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"]),
        BodyFraming::Chunked
    );
    assert_eq!(
        f(&["Transfer-Encoding: gzip ,\tchunked"]),
        BodyFraming::Chunked
    );
}

#[test]
fn request_keep_alive_semantics() {
    let ka = |s: &[u8]| req_ok(s).is_keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Foo, CLOSE\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));
    // "closed" is not "close".
    assert!(ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"
    ));
}

#[test]
fn expect_continue_only_on_http11() {
    assert!(req_ok(&post_with(&["Expect: 100-Continue", "Content-Length: 3"])).expects_continue());
    assert!(!req_ok(&post_with(&["Expect: 200-ok"])).expects_continue());
    assert!(!req_ok(&post_with(&[])).expects_continue());
    assert!(!req_ok(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue());
}

#[test]
fn upgrade_needs_connection_upgrade_and_http11() {
    let h = req_ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), Some(&b"websocket"[..]));
    let h = req_ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), None);
    let h = req_ok(b"GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), None);
}

#[test]
fn connection_tokens_from_all_connection_fields() {
    let h = req_ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\nconnection: ,x-bar ,\r\n\r\n");
    let tokens: Vec<_> = h.connection_tokens().collect();
    assert_eq!(tokens, vec![&b"close"[..], b"X-Foo", b"x-bar"]);
}

#[test]
fn leading_empty_lines_are_skipped() {
    let h = req_ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.raw().first(), Some(&b'G'));
    let mut buf = BytesMut::from(&b"\r\n\r"[..]);
    assert!(
        parse_request(&mut buf, &Limits::default())
            .unwrap()
            .is_none()
    );
    assert_eq!(&buf[..], b"\r");
}

#[test]
fn pipelined_requests_and_body_stay_in_the_buffer() {
    let mut buf = BytesMut::from(
        &b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c"[..],
    );
    let limits = Limits::default();
    let a = parse_request(&mut buf, &limits).unwrap().unwrap();
    assert_eq!(
        (a.path(), a.framing()),
        (&b"/a"[..], BodyFraming::Length(5))
    );
    let mut body = BodyDecoder::new(a.framing());
    assert_eq!(
        body.decode(&mut buf).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"hello"))
    );
    assert_eq!(body.decode(&mut buf).unwrap(), BodyEvent::End);
    let b = parse_request(&mut buf, &limits).unwrap().unwrap();
    assert_eq!(b.path(), b"/b");
    assert!(parse_request(&mut buf, &limits).unwrap().is_none());
    assert_eq!(&buf[..], b"GET /c");
}

#[test]
fn every_prefix_of_a_valid_request_needs_more() {
    let full = b"\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
    for n in 0..full.len() {
        let mut buf = BytesMut::from(&full[..n]);
        assert!(
            parse_request(&mut buf, &Limits::default())
                .unwrap()
                .is_none(),
            "prefix {n}"
        );
    }
    assert_eq!(req_ok(full).framing(), BodyFraming::Chunked);
}

#[test]
fn early_errors_before_the_head_is_complete() {
    // Bad request line: refused before any field arrives.
    assert_eq!(
        req(b"GET / HTTP/2.0\r\n").unwrap_err(),
        RequestError::UnsupportedVersion
    );
    assert_eq!(
        req(b"GET  / HTTP/1.1\r\nHost").unwrap_err(),
        RequestError::InvalidRequestLine
    );
    // Obs-fold refused as soon as the folded line starts.
    assert_eq!(
        req(b"GET / HTTP/1.1\r\nX: a\r\n ").unwrap_err(),
        RequestError::ObsFold
    );
    assert_eq!(
        req(b"GET / HTTP/1.1\r\nX: a\nY").unwrap_err(),
        RequestError::BareLf
    );
}

#[test]
fn obs_text_in_values_is_kept() {
    let h = req_ok(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n");
    assert_eq!(h.header(b"x"), Some(&b"caf\xc3\xa9"[..]));
}

#[test]
fn head_and_method_predicates() {
    assert!(req_ok(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").is_head());
    assert!(!req_ok(b"head / HTTP/1.1\r\nHost: a\r\n\r\n").is_head());
    assert_eq!(
        req_ok(b"M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n").method(),
        b"M-SEARCH"
    );
}

// ---------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------

#[test]
fn response_refusals() {
    use ResponseError as E;
    let cases: Vec<(&str, &[u8], E)> = vec![
        (
            "te and cl",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            E::TeAndContentLength,
        ),
        (
            "te and cl on 304",
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            E::TeAndContentLength,
        ),
        (
            "differing cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            E::DuplicateContentLength,
        ),
        (
            "differing cl list",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            E::DuplicateContentLength,
        ),
        (
            "invalid cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
            E::InvalidContentLength,
        ),
        (
            "negative cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            E::InvalidContentLength,
        ),
        (
            "te chunked twice",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            E::InvalidTransferEncoding,
        ),
        (
            "te with parameter",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
            E::InvalidTransferEncoding,
        ),
        (
            "te in http/1.0",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            E::TransferEncodingInHttp10,
        ),
        (
            "two digit status",
            b"HTTP/1.1 20 OK\r\n\r\n",
            E::InvalidStatusLine,
        ),
        (
            "four digit status",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            E::InvalidStatusLine,
        ),
        (
            "status below 100",
            b"HTTP/1.1 099 Weird\r\n\r\n",
            E::InvalidStatus,
        ),
        (
            "status not digits",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            E::InvalidStatus,
        ),
        (
            "status double space",
            b"HTTP/1.1  200 OK\r\n\r\n",
            E::InvalidStatusLine,
        ),
        ("version 1.2", b"HTTP/1.2 200 OK\r\n\r\n", E::InvalidVersion),
        ("version 2", b"HTTP/2 200 OK\r\n\r\n", E::InvalidVersion),
        ("not http", b"ICY 200 OK\r\n\r\n", E::InvalidVersion),
        (
            "reason with control",
            b"HTTP/1.1 200 O\x01K\r\n\r\n",
            E::InvalidStatusLine,
        ),
        (
            "bare lf",
            b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
            E::BareLf,
        ),
        ("bare cr", b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", E::BareCr),
        (
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            E::ObsFold,
        ),
        (
            "space before colon",
            b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
            E::InvalidHeaderName,
        ),
        (
            "empty name",
            b"HTTP/1.1 200 OK\r\n: 5\r\n\r\n",
            E::InvalidHeaderName,
        ),
        (
            "nul in value",
            b"HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n",
            E::InvalidHeaderValue,
        ),
        (
            "empty line before status line",
            b"\r\nHTTP/1.1 200 OK\r\n\r\n",
            E::InvalidStatusLine,
        ),
        (
            "header line without colon",
            b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            E::InvalidHeaderName,
        ),
    ];
    for (name, input, want) in cases {
        match resp(input, MethodKind::Other) {
            Err(got) => {
                assert_eq!(got, want, "{name}");
                assert!(!got.to_string().is_empty());
            }
            other => panic!("{name}: expected {want:?}, got {other:?}"),
        }
    }
}

#[test]
fn response_framing_by_method_and_status() {
    use BodyFraming as F;
    let cases: Vec<(&str, &[u8], MethodKind, F, bool)> = vec![
        (
            "cl",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            MethodKind::Other,
            F::Length(5),
            true,
        ),
        (
            "equal cl repeated",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n",
            MethodKind::Other,
            F::Length(5),
            true,
        ),
        (
            "chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            MethodKind::Other,
            F::Chunked,
            true,
        ),
        (
            "unknown te is close",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            MethodKind::Other,
            F::Close,
            false,
        ),
        (
            "no framing is close",
            b"HTTP/1.1 200 OK\r\n\r\n",
            MethodKind::Other,
            F::Close,
            false,
        ),
        (
            "head",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            MethodKind::Head,
            F::None,
            true,
        ),
        (
            "head chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            MethodKind::Head,
            F::None,
            true,
        ),
        (
            "204",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            MethodKind::Other,
            F::None,
            true,
        ),
        (
            "304 with cl",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            MethodKind::Other,
            F::None,
            true,
        ),
        (
            "100",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            MethodKind::Other,
            F::None,
            true,
        ),
        (
            "connect 200",
            b"HTTP/1.1 200 Connection Established\r\n\r\n",
            MethodKind::Connect,
            F::None,
            true,
        ),
        (
            "connect 200 ignores framing fields",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            MethodKind::Connect,
            F::None,
            true,
        ),
        (
            "unknown coding before chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom, chunked\r\n\r\n",
            MethodKind::Other,
            F::Chunked,
            true,
        ),
        (
            "connect 407",
            b"HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n",
            MethodKind::Connect,
            F::Length(2),
            true,
        ),
        (
            "1.0 default close",
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
            MethodKind::Other,
            F::Length(2),
            false,
        ),
        (
            "1.0 keep-alive",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
            MethodKind::Other,
            F::Length(2),
            true,
        ),
        (
            "1.0 keep-alive but close body",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
            MethodKind::Other,
            F::Close,
            false,
        ),
        (
            "1.1 close",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
            MethodKind::Other,
            F::Length(2),
            false,
        ),
    ];
    for (name, input, method, framing, keep_alive) in cases {
        let h = match resp(input, method) {
            Ok(Some(h)) => h,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(h.framing(), framing, "{name}");
        assert_eq!(h.is_keep_alive(), keep_alive, "{name}");
    }
}

#[test]
fn response_accessors() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 404 Not Found\r\nServer: x\r\nContent-Length: 3\r\nConnection: X-Hop\r\n\r\nabcHTTP"[..]);
    let h = parse_response(&mut buf, false, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.status(), h.reason(), h.version()),
        (404, &b"Not Found"[..], Version::Http11)
    );
    assert_eq!(h.header(b"server"), Some(&b"x"[..]));
    assert_eq!(h.headers().count(), 3);
    assert_eq!(
        h.connection_tokens().collect::<Vec<_>>(),
        vec![&b"X-Hop"[..]]
    );
    assert!(!h.is_informational());
    assert_eq!(&buf[..], b"abcHTTP");
    assert!(h.raw().ends_with(b"\r\n\r\n"));
    let h = resp_ok(b"HTTP/1.1 200\r\n\r\n");
    assert_eq!((h.status(), h.reason()), (200, &b""[..]));
    let h = resp_ok(b"HTTP/1.1 999 \r\n\r\n");
    assert_eq!((h.status(), h.reason()), (999, &b""[..]));
    let h = resp_ok(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
    assert!(h.is_informational());
    let h = parse_response(
        &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"[..]),
        true,
        &Limits::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing(), BodyFraming::None);
}

#[test]
fn response_101_upgrade() {
    let h = resp_ok(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!(h.upgrade(), Some(&b"websocket"[..]));
    assert_eq!(h.framing(), BodyFraming::None);
    let h = resp_ok(b"HTTP/1.1 200 OK\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.upgrade(), None);
}

#[test]
fn response_prefixes_and_limits() {
    let full = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: y\r\n\r\n";
    for n in 0..full.len() {
        assert!(
            resp(&full[..n], MethodKind::Other).unwrap().is_none(),
            "prefix {n}"
        );
    }
    assert_eq!(
        resp(b"HTTP/1.1 2x0 OK\r\nX", MethodKind::Other).unwrap_err(),
        ResponseError::InvalidStatus
    );
    let limits = Limits {
        max_head: 64,
        ..Limits::default()
    };
    let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    big.resize(64, b'a');
    assert_eq!(
        parse_response(&mut BytesMut::from(&big[..]), false, &limits).unwrap_err(),
        ResponseError::HeadTooLarge
    );
    let limits = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    let three = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
    assert_eq!(
        parse_response(&mut BytesMut::from(&three[..]), false, &limits).unwrap_err(),
        ResponseError::TooManyHeaders
    );
}

// ---------------------------------------------------------------------------------------------
// Bodies.
// ---------------------------------------------------------------------------------------------

/// Decodes everything in `input` fed in pieces of `step` bytes; returns data, trailers, ended.
fn decode_all(
    framing: BodyFraming,
    input: &[u8],
    step: usize,
) -> Result<(Vec<u8>, Option<Bytes>, bool, BytesMut), BodyError> {
    let mut dec = BodyDecoder::new(framing);
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut trailers = None;
    let mut fed = 0;
    loop {
        match dec.decode(&mut buf)? {
            BodyEvent::Data(d) => {
                assert!(!d.is_empty());
                data.extend_from_slice(&d);
            }
            BodyEvent::Trailers(t) => {
                assert!(dec.is_done());
                trailers = Some(t);
            }
            BodyEvent::End => {
                assert!(dec.is_done());
                // End is sticky and consumes nothing.
                assert_eq!(dec.decode(&mut buf)?, BodyEvent::End);
                return Ok((data, trailers, true, buf));
            }
            BodyEvent::NeedMore => {
                if fed == input.len() {
                    return Ok((data, trailers, false, buf));
                }
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

#[test]
fn chunked_with_extensions_and_trailers_at_every_split() {
    let input = b"5;name=value;q=\"quo\\\"ted\" ; flag\r\nhello\r\nA\r\n0123456789\r\n000\r\nX-Checksum: abc\r\nX-Other:\t2\r\n\r\nNEXT";
    for step in 1..input.len() {
        let (data, trailers, ended, rest) = decode_all(BodyFraming::Chunked, input, step).unwrap();
        assert!(ended, "step {step}");
        assert_eq!(data, b"hello0123456789", "step {step}");
        assert_eq!(
            trailers.as_deref(),
            Some(&b"X-Checksum: abc\r\nX-Other:\t2\r\n"[..])
        );
        // Bytes after the body are left for the next message.
        assert!(b"NEXT".starts_with(&rest), "step {step}");
    }
}

#[test]
fn chunked_without_trailers_and_uppercase_hex() {
    let (data, trailers, ended, rest) = decode_all(
        BodyFraming::Chunked,
        b"1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
        7,
    )
    .unwrap();
    assert_eq!(
        (data.len(), trailers, ended, rest.len()),
        (31, None, true, 0)
    );
}

#[test]
fn chunked_refusals() {
    use BodyError as E;
    let long_ext = format!("1{}\r\nx\r\n0\r\n\r\n", ";a".repeat(MAX_CHUNK_LINE));
    let big_trailer = format!("0\r\nX: {}\r\n\r\n", "a".repeat(MAX_TRAILERS));
    let cases: Vec<(&str, &[u8], E)> = vec![
        (
            "size overflow 17 digits",
            b"10000000000000000\r\n",
            E::ChunkSizeOverflow,
        ),
        ("non hex size", b"g\r\n", E::InvalidChunkSize),
        ("empty size", b"\r\n", E::InvalidChunkSize),
        ("negative size", b"-1\r\n", E::InvalidChunkSize),
        ("hex prefix", b"0x5\r\n", E::InvalidChunkSize),
        ("trailing space", b"5 \r\nhello\r\n", E::InvalidChunkSize),
        ("leading space", b" 5\r\nhello\r\n", E::InvalidChunkSize),
        ("garbage after size", b"5x\r\n", E::InvalidChunkSize),
        ("empty extension name", b"5;\r\n", E::InvalidChunkExtension),
        (
            "extension without value",
            b"5;a=\r\n",
            E::InvalidChunkExtension,
        ),
        ("extension bad name", b"5;(a)\r\n", E::InvalidChunkExtension),
        (
            "extension unterminated quote",
            b"5;a=\"x\r\n",
            E::InvalidChunkExtension,
        ),
        (
            "extension trailing space",
            b"5;a=b \r\n",
            E::InvalidChunkExtension,
        ),
        (
            "extension control",
            b"5;a=\"\x01\"\r\n",
            E::InvalidChunkExtension,
        ),
        (
            "extension line too long",
            long_ext.as_bytes(),
            E::ChunkLineTooLong,
        ),
        (
            "data not followed by crlf",
            b"5\r\nhelloX\r\n",
            E::MissingChunkCrlf,
        ),
        (
            "data followed by lf",
            b"5\r\nhello\n0\r\n\r\n",
            E::MissingChunkCrlf,
        ),
        (
            "data followed by cr only",
            b"5\r\nhello\rX",
            E::MissingChunkCrlf,
        ),
        ("size line bare lf", b"5\nhello\r\n", E::BareLf),
        ("size line bare cr", b"5\rhello\r\n", E::BareCr),
        ("trailer bare lf", b"0\r\nX: a\n\r\n", E::BareLf),
        ("trailer bare cr", b"0\r\nX: a\rb\r\n\r\n", E::BareCr),
        ("last chunk bare lf", b"0\r\n\n", E::BareLf),
        (
            "trailer without colon",
            b"0\r\nbad trailer\r\n\r\n",
            E::InvalidTrailer,
        ),
        (
            "trailer obs-fold",
            b"0\r\nX: a\r\n b\r\n\r\n",
            E::InvalidTrailer,
        ),
        (
            "trailer space before colon",
            b"0\r\nX : a\r\n\r\n",
            E::InvalidTrailer,
        ),
        ("trailer nul", b"0\r\nX: a\0\r\n\r\n", E::InvalidTrailer),
        (
            "trailers too large",
            big_trailer.as_bytes(),
            E::TrailersTooLarge,
        ),
    ];
    for (name, input, want) in cases {
        // Whole and byte by byte: same verdict.
        for step in [input.len(), 1] {
            match decode_all(BodyFraming::Chunked, input, step) {
                Err(got) => assert_eq!(got, want, "{name} step {step}"),
                Ok(r) => panic!("{name} step {step}: expected {want:?}, got {r:?}"),
            }
        }
        assert!(!want.to_string().is_empty());
    }
}

#[test]
fn chunk_size_of_sixteen_digits_is_accepted() {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"ab"))
    );
    assert_eq!(dec.decode(&mut buf).unwrap(), BodyEvent::NeedMore);
    assert_eq!(dec.eof(), Err(BodyError::Incomplete));
}

#[test]
fn content_length_body_and_eof() {
    let (data, _, ended, rest) = decode_all(BodyFraming::Length(5), b"hello world", 3).unwrap();
    assert_eq!(
        (&data[..], ended, &rest[..]),
        (&b"hello"[..], true, &b" "[..])
    );
    let mut dec = BodyDecoder::new(BodyFraming::Length(5));
    let mut buf = BytesMut::from(&b"hel"[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"hel"))
    );
    assert!(!dec.is_done());
    assert_eq!(dec.decode(&mut buf).unwrap(), BodyEvent::NeedMore);
    assert_eq!(dec.eof(), Err(BodyError::Incomplete));
    let mut zero = BodyDecoder::new(BodyFraming::Length(0));
    assert!(zero.is_done());
    assert_eq!(zero.decode(&mut buf).unwrap(), BodyEvent::End);
    assert_eq!(zero.eof(), Ok(()));
}

#[test]
fn a_length_body_can_be_skipped_past_without_decoding() {
    let mut dec = BodyDecoder::new(BodyFraming::Length(10));
    let mut buf = BytesMut::from(&b"abc"[..]);
    assert_eq!(dec.length_left(), Some(10));
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"abc"))
    );
    assert_eq!(dec.length_left(), Some(7));
    dec.skip(5);
    assert_eq!(dec.length_left(), Some(2));
    assert!(!dec.is_done());
    let mut rest = BytesMut::from(&b"deNEXT"[..]);
    assert_eq!(
        dec.decode(&mut rest).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"de"))
    );
    assert_eq!(&rest[..], b"NEXT");
    assert_eq!(dec.length_left(), None);
    let mut whole = BodyDecoder::new(BodyFraming::Length(4));
    whole.skip(4);
    assert!(whole.is_done());
    assert_eq!(whole.decode(&mut rest).unwrap(), BodyEvent::End);
    assert_eq!(whole.eof(), Ok(()));
    // Other framings have no length to skip.
    let mut chunked = BodyDecoder::new(BodyFraming::Chunked);
    assert_eq!(chunked.length_left(), None);
    chunked.skip(3);
    assert_eq!(BodyDecoder::new(BodyFraming::Close).length_left(), None);
    let mut chunks = BytesMut::from(&b"1\r\na\r\n"[..]);
    assert_eq!(
        chunked.decode(&mut chunks).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"a"))
    );
}

#[test]
fn close_delimited_body_ends_at_eof() {
    let mut dec = BodyDecoder::new(BodyFraming::Close);
    let mut buf = BytesMut::from(&b"abc"[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"abc"))
    );
    assert_eq!(dec.decode(&mut buf).unwrap(), BodyEvent::NeedMore);
    buf.extend_from_slice(b"de");
    dec.eof().unwrap();
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        BodyEvent::Data(Bytes::from_static(b"de"))
    );
    assert_eq!(dec.decode(&mut buf).unwrap(), BodyEvent::End);
    assert!(dec.is_done());
}

#[test]
fn no_body_ends_immediately_and_chunked_eof_is_incomplete() {
    let mut dec = BodyDecoder::new(BodyFraming::None);
    let mut buf = BytesMut::from(&b"GET"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), BodyEvent::End);
    assert_eq!(&buf[..], b"GET");
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n"[..]);
    assert!(matches!(dec.decode(&mut buf).unwrap(), BodyEvent::Data(_)));
    assert_eq!(dec.decode(&mut buf).unwrap(), BodyEvent::NeedMore);
    assert_eq!(dec.eof(), Err(BodyError::Incomplete));
}

#[test]
fn body_data_is_zero_copy() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"3\r\nabc\r\n0\r\n\r\n");
    let base = buf.as_ptr() as usize;
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let BodyEvent::Data(d) = dec.decode(&mut buf).unwrap() else {
        panic!("expected data");
    };
    assert_eq!(d.as_ptr() as usize, base + 3);
}

// ---------------------------------------------------------------------------------------------
// Encoding.
// ---------------------------------------------------------------------------------------------

#[test]
fn encoders_write_the_wire_format() {
    let mut dst = BytesMut::new();
    encode::request_line(&mut dst, b"GET", b"/x?y");
    encode::header(&mut dst, b"Host", b"a");
    encode::end_head(&mut dst);
    assert_eq!(&dst[..], b"GET /x?y HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut dst = BytesMut::new();
    encode::status_line(&mut dst, 200, b"");
    encode::status_line(&mut dst, 404, b"Nope");
    encode::status_line(&mut dst, 599, b"");
    assert_eq!(
        &dst[..],
        b"HTTP/1.1 200 OK\r\nHTTP/1.1 404 Nope\r\nHTTP/1.1 599 \r\n"
    );
    for (len, want) in [
        (0usize, &b"0\r\n"[..]),
        (1, b"1\r\n"),
        (255, b"ff\r\n"),
        (4096, b"1000\r\n"),
    ] {
        let mut dst = BytesMut::new();
        encode::chunk_head(&mut dst, len);
        assert_eq!(&dst[..], want);
    }
    let mut dst = BytesMut::new();
    encode::chunk_head(&mut dst, usize::MAX);
    assert_eq!(dst.len(), usize::BITS as usize / 4 + 2);
    for n in [0u64, 7, 10, 1234567890, u64::MAX] {
        let mut dst = BytesMut::new();
        encode::decimal(&mut dst, n);
        assert_eq!(&dst[..], n.to_string().as_bytes());
    }
    assert_eq!(encode::canonical_reason(503), b"Service Unavailable");
    assert_eq!(encode::canonical_reason(299), b"");
    assert_eq!(encode::LAST_CHUNK, b"0\r\n\r\n");
    assert_eq!(encode::CHUNK_END, b"\r\n");
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

fn field_name() -> impl Strategy<Value = String> {
    "x-[a-z0-9-]{1,12}"
}

fn field_value() -> impl Strategy<Value = String> {
    // Visible ASCII, inner spaces, no leading/trailing whitespace (OWS is trimmed by parsing).
    "[!-~]([ !-~]{0,20}[!-~])?"
}

fn feed_request(bytes: &[u8], step: usize) -> (RequestHead, BytesMut) {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    loop {
        if let Some(h) = parser.parse(&mut buf, &Limits::default()).unwrap() {
            buf.extend_from_slice(&bytes[fed..]);
            return (h, buf);
        }
        assert!(fed < bytes.len(), "head never completed");
        let end = (fed + step).min(bytes.len());
        buf.extend_from_slice(&bytes[fed..end]);
        fed = end;
    }
}

proptest! {
    #[test]
    fn request_round_trip(
        method in "[A-Z]{1,10}",
        path in "/[a-zA-Z0-9/._~%-]{0,30}",
        query in proptest::option::of("[a-z0-9=&]{0,20}"),
        fields in proptest::collection::vec((field_name(), field_value()), 0..8),
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..5),
        trailer in proptest::option::of((field_name(), field_value())),
        step in 1usize..64,
    ) {
        let target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let mut dst = BytesMut::new();
        encode::request_line(&mut dst, method.as_bytes(), target.as_bytes());
        encode::header(&mut dst, b"Host", b"svc.local:8080");
        for (n, v) in &fields {
            encode::header(&mut dst, n.as_bytes(), v.as_bytes());
        }
        encode::header(&mut dst, b"Transfer-Encoding", b"chunked");
        encode::end_head(&mut dst);
        for c in &chunks {
            encode::chunk_head(&mut dst, c.len());
            dst.extend_from_slice(c);
            dst.extend_from_slice(encode::CHUNK_END);
        }
        if let Some((n, v)) = &trailer {
            dst.extend_from_slice(b"0\r\n");
            encode::header(&mut dst, n.as_bytes(), v.as_bytes());
            encode::end_head(&mut dst);
        } else {
            dst.extend_from_slice(encode::LAST_CHUNK);
        }
        let (h, rest) = feed_request(&dst, step);
        prop_assert_eq!(h.method(), method.as_bytes());
        prop_assert_eq!(h.target(), target.as_bytes());
        prop_assert_eq!(h.path(), path.as_bytes());
        prop_assert_eq!(h.query(), query.as_deref().unwrap_or("").as_bytes());
        prop_assert_eq!(h.authority(), b"svc.local:8080");
        prop_assert_eq!(h.framing(), BodyFraming::Chunked);
        let got: Vec<(Vec<u8>, Vec<u8>)> = h.headers().skip(1).take(fields.len())
            .map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = fields.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        prop_assert_eq!(got, want);
        let (data, trailers, ended, left) = decode_all(BodyFraming::Chunked, &rest, step).unwrap();
        prop_assert!(ended);
        prop_assert!(left.is_empty());
        prop_assert_eq!(data, chunks.concat());
        let want_trailers = trailer.map(|(n, v)| format!("{n}: {v}\r\n").into_bytes());
        prop_assert_eq!(trailers.map(|t| t.to_vec()), want_trailers);
    }

    #[test]
    fn response_round_trip(
        status in 200u16..=999,
        reason in proptest::option::of("[A-Za-z][A-Za-z ]{0,20}[A-Za-z]"),
        fields in proptest::collection::vec((field_name(), field_value()), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..100),
        step in 1usize..64,
    ) {
        prop_assume!(status != 204 && status != 304);
        let mut dst = BytesMut::new();
        encode::status_line(&mut dst, status, reason.as_deref().unwrap_or("").as_bytes());
        for (n, v) in &fields {
            encode::header(&mut dst, n.as_bytes(), v.as_bytes());
        }
        let mut len = BytesMut::new();
        encode::decimal(&mut len, body.len() as u64);
        encode::header(&mut dst, b"Content-Length", &len);
        encode::end_head(&mut dst);
        dst.extend_from_slice(&body);
        let mut parser = ResponseParser::new();
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let h = loop {
            if let Some(h) = parser.parse(&mut buf, MethodKind::Other, &Limits::default()).unwrap() {
                buf.extend_from_slice(&dst[fed..]);
                break h;
            }
            let end = (fed + step).min(dst.len());
            buf.extend_from_slice(&dst[fed..end]);
            fed = end;
        };
        prop_assert_eq!(h.status(), status);
        let want_reason = reason.as_deref().map_or_else(|| encode::canonical_reason(status), str::as_bytes);
        prop_assert_eq!(h.reason(), want_reason);
        prop_assert_eq!(h.framing(), BodyFraming::Length(body.len() as u64));
        prop_assert!(h.is_keep_alive());
        prop_assert_eq!(h.headers().count(), fields.len() + 1);
        let (data, _, ended, _) = decode_all(h.framing(), &buf, step).unwrap();
        prop_assert!(ended);
        prop_assert_eq!(data, body);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let limits = Limits { max_request_line: 64, max_head: 256, max_headers: 8 };
        let _ = parse_request(&mut BytesMut::from(&bytes[..]), &limits);
        let _ = parse_request(&mut BytesMut::from(&bytes[..]), &Limits::default());
        let _ = parse_response(&mut BytesMut::from(&bytes[..]), false, &limits);
        let _ = parse_response_for(&mut BytesMut::from(&bytes[..]), MethodKind::Connect, &Limits::default());
        for framing in [BodyFraming::Chunked, BodyFraming::Length(7), BodyFraming::Close, BodyFraming::None] {
            let mut dec = BodyDecoder::new(framing);
            let mut buf = BytesMut::from(&bytes[..]);
            for _ in 0..1000 {
                match dec.decode(&mut buf) {
                    Ok(BodyEvent::End) | Err(_) => break,
                    Ok(BodyEvent::NeedMore) => { let _ = dec.eof(); }
                    Ok(_) => {}
                }
            }
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        pos in 0usize..200,
        byte in any::<u8>(),
        cut in 0usize..220,
    ) {
        let templates: [&[u8]; 3] = [
            b"POST http://a.example:80/p?q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: upgrade, x\r\nUpgrade: ws\r\n\r\n5;a=\"b\"\r\nhello\r\n0\r\nT: v\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nConnection: keep-alive\r\n\r\nhello",
            b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        ];
        for t in templates {
            let mut m = t.to_vec();
            if let Some(b) = m.get_mut(pos % t.len()) {
                *b = byte;
            }
            m.truncate(cut.min(m.len()));
            let mut buf = BytesMut::from(&m[..]);
            if let Ok(Some(h)) = parse_request(&mut buf, &Limits::default()) {
                let _ = (h.path(), h.query(), h.authority(), h.upgrade(), h.connection_tokens().count());
                let mut dec = BodyDecoder::new(h.framing());
                while let Ok(BodyEvent::Data(_) | BodyEvent::Trailers(_)) = dec.decode(&mut buf) {}
            }
            let mut buf = BytesMut::from(&m[..]);
            if let Ok(Some(h)) = parse_response(&mut buf, false, &Limits::default()) {
                let mut dec = BodyDecoder::new(h.framing());
                while let Ok(BodyEvent::Data(_) | BodyEvent::Trailers(_)) = dec.decode(&mut buf) {}
            }
        }
    }

    #[test]
    fn incremental_and_one_shot_agree_on_mutated_requests(
        pos in 0usize..120,
        byte in any::<u8>(),
        step in 1usize..17,
    ) {
        let template: &[u8] = b"\r\nPOST http://a.example:80/p?q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: upgrade, x\r\nUpgrade: ws\r\n\r\n";
        let mut m = template.to_vec();
        if let Some(b) = m.get_mut(pos % template.len()) {
            *b = byte;
        }
        let limits = Limits { max_request_line: 40, max_head: 120, max_headers: 3 };
        let one_shot = parse_request(&mut BytesMut::from(&m[..]), &limits);
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut incremental = Ok(None);
        for piece in m.chunks(step) {
            buf.extend_from_slice(piece);
            incremental = parser.parse(&mut buf, &limits);
            if !matches!(incremental, Ok(None)) {
                break;
            }
        }
        match (one_shot, incremental) {
            (Ok(Some(a)), Ok(Some(b))) => prop_assert_eq!(a.raw(), b.raw()),
            (a, b) => prop_assert_eq!(a.map(|h| h.map(|h| h.raw().clone())), b.map(|h| h.map(|h| h.raw().clone()))),
        }
    }

    #[test]
    fn chunked_verdict_does_not_depend_on_splits(
        pos in 0usize..80,
        byte in prop_oneof![Just(b'\r'), Just(b'\n'), Just(b' '), Just(b';'), Just(b'"'), Just(b'z'), any::<u8>()],
        step in 1usize..9,
    ) {
        let template: &[u8] = b"5;a=b;c=\"d\\\"e\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\nU:w\r\n\r\n";
        let mut m = template.to_vec();
        if let Some(b) = m.get_mut(pos % template.len()) {
            *b = byte;
        }
        let whole = decode_all(BodyFraming::Chunked, &m, m.len());
        let split = decode_all(BodyFraming::Chunked, &m, step);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn incremental_and_one_shot_agree_on_mutated_responses(
        pos in 0usize..90,
        byte in any::<u8>(),
        step in 1usize..17,
    ) {
        let template: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n";
        let mut m = template.to_vec();
        if let Some(b) = m.get_mut(pos % template.len()) {
            *b = byte;
        }
        let limits = Limits { max_request_line: 40, max_head: 80, max_headers: 2 };
        let one_shot = parse_response(&mut BytesMut::from(&m[..]), false, &limits)
            .map(|h| h.map(|h| (h.raw().clone(), h.framing())));
        let mut parser = ResponseParser::new();
        let mut buf = BytesMut::new();
        let mut incremental = Ok(None);
        for piece in m.chunks(step) {
            buf.extend_from_slice(piece);
            incremental = parser.parse(&mut buf, MethodKind::Other, &limits);
            if !matches!(incremental, Ok(None)) {
                break;
            }
        }
        let incremental = incremental.map(|h| h.map(|h| (h.raw().clone(), h.framing())));
        prop_assert_eq!(one_shot, incremental);
    }
}

#[test]
fn tchar_set_is_rfc9110_tchar_for_every_byte() {
    for b in 0..=255u8 {
        let rfc = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(headers::is_tchar(b), rfc, "byte {b:#04x}");
    }
}

/// RFC 9110 section 5.5, byte by byte: HTAB, SP, VCHAR or obs-text.
fn rfc_field_value_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80
}

#[test]
fn field_value_check_is_per_byte_rule() {
    // Every byte value at every position of a word and of the tail.
    for b in 0..=255u8 {
        for at in 0..17 {
            let mut v = [b'a'; 17];
            v[at] = b;
            for len in [at + 1, 17] {
                assert_eq!(
                    headers::is_field_value(&v[..len]),
                    rfc_field_value_byte(b),
                    "byte {b:#04x} at {at} of {len}"
                );
            }
        }
    }
}

proptest! {
    /// The word-at-a-time check answers what the byte rule answers, for any bytes.
    #[test]
    fn field_value_check_agrees_with_byte_rule(v in proptest::collection::vec(any::<u8>(), 0..40)) {
        prop_assert_eq!(headers::is_field_value(&v), v.iter().all(|&b| rfc_field_value_byte(b)));
    }
}

proptest! {
    /// `connection_lists` (the fast path) answers exactly what a scan of the Connection tokens
    /// answers, for requests and responses, whatever the tokens.
    #[test]
    fn connection_lists_agrees_with_token_scan(
        tokens in proptest::collection::vec(
            prop_oneof![
                Just("close".to_owned()),
                Just("Keep-Alive".to_owned()),
                Just("upgrade".to_owned()),
                Just("x-a".to_owned()),
                "[a-z]{1,6}",
            ],
            0..4,
        ),
        probes in proptest::collection::vec(
            prop_oneof![
                Just("close".to_owned()),
                Just("keep-alive".to_owned()),
                Just("UPGRADE".to_owned()),
                Just("X-A".to_owned()),
                "[a-z]{1,6}",
            ],
            1..6,
        ),
    ) {
        let mut head = String::new();
        if !tokens.is_empty() {
            head.push_str(&format!("Connection: {}\r\n", tokens.join(", ")));
        }
        head.push_str("x-a: 1\r\n\r\n");
        let rq = req_ok(format!("GET / HTTP/1.1\r\nHost: a\r\n{head}").as_bytes());
        let rs = resp_ok(format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{head}").as_bytes());
        for p in &probes {
            let p = p.as_bytes();
            let scan = rq.connection_tokens().any(|t| t.eq_ignore_ascii_case(p));
            prop_assert_eq!(rq.connection_lists(p), scan);
            let scan = rs.connection_tokens().any(|t| t.eq_ignore_ascii_case(p));
            prop_assert_eq!(rs.connection_lists(p), scan);
        }
    }
}

/// The field-line byte rules (RFC 9110 sections 5.6.2 and 5.5) hold for every byte value, in
/// names and values, of requests and responses (`headers::parse_fields`).
#[test]
fn every_byte_outside_the_rfc_sets_is_refused() {
    for b in 0..=255u8 {
        if b == b':' {
            continue; // ends the name
        }
        let mut name = b"GET / HTTP/1.1\r\nHost: a\r\nx".to_vec();
        name.extend_from_slice(&[b, b'y']);
        name.extend_from_slice(b": v\r\n\r\n");
        let ok = matches!(req(&name), Ok(Some(_)));
        assert_eq!(ok, headers::is_tchar(b), "request name byte {b:#04x}");
        let mut resp_name = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx".to_vec();
        resp_name.extend_from_slice(&[b, b'y']);
        resp_name.extend_from_slice(b": v\r\n\r\n");
        let ok = matches!(resp(&resp_name, MethodKind::Other), Ok(Some(_)));
        assert_eq!(ok, headers::is_tchar(b), "response name byte {b:#04x}");

        let mut value = b"GET / HTTP/1.1\r\nHost: a\r\nx: a".to_vec();
        value.extend_from_slice(&[b, b'c']);
        value.extend_from_slice(b"\r\n\r\n");
        let ok = matches!(req(&value), Ok(Some(_)));
        assert_eq!(ok, rfc_field_value_byte(b), "request value byte {b:#04x}");
        let mut resp_value = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx: a".to_vec();
        resp_value.extend_from_slice(&[b, b'c']);
        resp_value.extend_from_slice(b"\r\n\r\n");
        let ok = matches!(resp(&resp_value, MethodKind::Other), Ok(Some(_)));
        assert_eq!(ok, rfc_field_value_byte(b), "response value byte {b:#04x}");
    }
}

/// The fields `httparse` parsed, names and OWS-trimmed values, if the head was complete.
fn complete(
    status: httparse::Status<usize>,
    fields: &[httparse::Header<'_>],
) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    status.is_complete().then(|| {
        fields
            .iter()
            .map(|h| {
                (
                    h.name.as_bytes().to_vec(),
                    headers::trim_ows(h.value).to_vec(),
                )
            })
            .collect()
    })
}

/// Bytes that make field lines interesting: tchars, the colon, whitespace, controls, DEL,
/// obs-text and delimiters. None spells a name that framing looks at.
const FIELD_BYTES: &[u8] = b"aX-!~: \t\x01\x7f\x80\xff\"(";

proptest! {
    /// The field lines of a head are accepted exactly when `httparse` (an independent parser,
    /// a dev-dependency) accepts them, with the same names and OWS-trimmed values, for
    /// requests and responses.
    #[test]
    fn field_lines_agree_with_httparse(
        lines in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(FIELD_BYTES), 0..8),
            0..6,
        )
    ) {
        let mut fields = Vec::new();
        for line in &lines {
            fields.extend_from_slice(line);
            fields.extend_from_slice(b"\r\n");
        }
        fields.extend_from_slice(b"\r\n");
        let request = [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], &fields].concat();
        let response = [&b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"[..], &fields].concat();

        let mut slots = [httparse::EMPTY_HEADER; 8];
        let mut r = httparse::Request::new(&mut slots);
        let reference = r.parse(&request).ok().and_then(|s| complete(s, r.headers));
        let ours = req(&request).ok().flatten().map(|h| {
            h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect::<Vec<_>>()
        });
        prop_assert_eq!(&ours, &reference, "request {:?}", String::from_utf8_lossy(&request));

        let mut slots = [httparse::EMPTY_HEADER; 8];
        let mut r = httparse::Response::new(&mut slots);
        let reference = r.parse(&response).ok().and_then(|s| complete(s, r.headers));
        let ours = resp(&response, MethodKind::Other).ok().flatten().map(|h| {
            h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect::<Vec<_>>()
        });
        prop_assert_eq!(&ours, &reference, "response {:?}", String::from_utf8_lossy(&response));
    }
}

/// `field_line` gives each field's whole line as received, OWS and CRLF included; the lines
/// are adjacent and together are the field section (what a proxy forwards unchanged).
#[test]
fn field_lines_are_the_received_lines_end_to_end() {
    let text: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nX-Ows:  v \t\r\nX-None:x\r\n\r\n";
    let h = req_ok(text);
    let lines: Vec<&[u8]> = (0..h.header_count())
        .map(|i| &h.raw()[h.field_line(i).unwrap()])
        .collect();
    assert_eq!(
        lines,
        [&b"Host: a\r\n"[..], b"X-Ows:  v \t\r\n", b"X-None:x\r\n"]
    );
    assert_eq!(h.field_line(3), None);
    assert_eq!(lines.concat(), &text[16..text.len() - 2]);
    assert_eq!(req_ok(b"GET / HTTP/1.0\r\n\r\n").field_line(0), None);
}
