//! Between HTTP/2 field lists and the HTTP/1 message model the router and the upstream codec
//! use: a request from an HTTP/2 stream becomes an HTTP/1.1 [`RequestHead`] (RFC 9113 8.3.1:
//! `:authority` is the Host, cookie crumbs are joined, 8.2.3), and an HTTP/1 response head or
//! trailer section becomes an HTTP/2 field list (connection-specific fields dropped, 8.2.2;
//! names lowercased, 8.2.1).
//!
//! The downstream side's conversions (a request from a client stream, responses and local
//! replies to it, with the route's and filters' header changes) live here; those the
//! upstream side needs too are in [`crate::codec::h2::convert`] and re-exported.

use bytes::{Bytes, BytesMut};
use protocols::http1::{self, Limits, RequestError, RequestHead, ResponseHead, encode};

use crate::codec::h2::convert::lower;
pub(crate) use crate::codec::h2::convert::{Fields, status_of, trailer_fields, write_trailers};
use crate::codec::is_hop_by_hop;
use crate::config::HttpOptions;
use crate::filters::Edits;
use crate::proxy::reply::LocalReply;

/// The HTTP/1.1 request head an HTTP/2 request stands for. `end_stream`: the HEADERS frame
/// ended the stream (no body). A body without `content-length` is declared chunked, so the
/// head's framing says how the body is sent upstream.
pub(crate) fn request_head(
    fields: &[(Bytes, Bytes)],
    end_stream: bool,
    limits: &Limits,
) -> Result<RequestHead, RequestError> {
    let pseudo = |name: &[u8]| {
        fields
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    };
    let method = pseudo(b":method").unwrap_or_default();
    let authority = pseudo(b":authority");
    let mut dst = BytesMut::with_capacity(256);
    dst.extend_from_slice(method);
    dst.extend_from_slice(b" ");
    match pseudo(b":path") {
        Some(path) => dst.extend_from_slice(path),
        // CONNECT names only the authority (RFC 9113 8.5).
        None => dst.extend_from_slice(authority.unwrap_or_default()),
    }
    dst.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        encode::header(&mut dst, b"host", a);
    }
    let mut has_length = false;
    let mut cookies = 0;
    for (name, value) in fields.iter().filter(|(n, _)| !n.starts_with(b":")) {
        match name.as_ref() {
            // `:authority` wins over Host (RFC 9113 8.3.1).
            b"host" if authority.is_some() => continue,
            b"cookie" => {
                cookies += 1;
                continue;
            }
            b"content-length" => has_length = true,
            _ => {}
        }
        encode::header(&mut dst, name, value);
    }
    if cookies > 0 {
        // Crumbs become one field again for HTTP/1.1 (RFC 9113 8.2.3).
        dst.extend_from_slice(b"cookie: ");
        let crumbs = fields.iter().filter(|(n, _)| n.as_ref() == b"cookie");
        for (i, (_, v)) in crumbs.enumerate() {
            if i > 0 {
                dst.extend_from_slice(b"; ");
            }
            dst.extend_from_slice(v);
        }
        dst.extend_from_slice(b"\r\n");
    }
    if !end_stream && !has_length {
        encode::header(&mut dst, b"transfer-encoding", b"chunked");
    }
    encode::end_head(&mut dst);
    match http1::parse_request(&mut dst, limits)? {
        Some(head) => Ok(head),
        // A complete head was written; this cannot happen, but it is not worth a panic.
        None => Err(RequestError::HeadTooLarge),
    }
}

fn status_value(status: u16) -> Bytes {
    // The common ones without an allocation.
    let common: &'static [u8] = match status {
        200 => b"200",
        201 => b"201",
        204 => b"204",
        301 => b"301",
        302 => b"302",
        304 => b"304",
        400 => b"400",
        401 => b"401",
        403 => b"403",
        404 => b"404",
        500 => b"500",
        502 => b"502",
        503 => b"503",
        504 => b"504",
        _ => {
            let mut n = itoa::Buffer::new();
            return Bytes::copy_from_slice(n.format(status).as_bytes());
        }
    };
    Bytes::from_static(common)
}

fn push_adds(out: &mut Fields, edits: Edits<'_>) {
    edits.for_each_add(|h| {
        out.push((
            Bytes::from(h.name.to_ascii_lowercase()),
            Bytes::copy_from_slice(&h.value),
        ));
    });
}

fn push_via(out: &mut Fields, opts: &HttpOptions) {
    if let Some(via) = &opts.via {
        out.push((
            Bytes::from_static(b"via"),
            Bytes::from(format!("1.1 {via}")),
        ));
    }
}

/// The HTTP/2 response head for the upstream's HTTP/1 response `resp`, with the route's and
/// the filters' header changes.
pub(crate) fn response_fields(
    resp: &ResponseHead,
    edits: Edits<'_>,
    opts: &HttpOptions,
    out: &mut Fields,
) {
    out.push((Bytes::from_static(b":status"), status_value(resp.status())));
    let raw = resp.raw();
    for (name, value) in resp.headers() {
        if is_hop_by_hop(name) || resp.connection_lists(name) || edits.drops(name) {
            continue;
        }
        out.push((lower(raw, name), raw.slice_ref(value)));
    }
    push_via(out, opts);
    push_adds(out, edits);
}

/// The fields of a locally generated response (the body goes in DATA frames).
pub(crate) fn local_reply_fields(reply: &LocalReply<'_>, opts: &HttpOptions, out: &mut Fields) {
    out.push((Bytes::from_static(b":status"), status_value(reply.status)));
    if !reply.edits.drops(b"server") {
        out.push((
            Bytes::from_static(b"server"),
            Bytes::copy_from_slice(opts.server_name.as_bytes()),
        ));
    }
    if let Some(loc) = reply.location {
        out.push((Bytes::from_static(b"location"), Bytes::copy_from_slice(loc)));
    }
    let mut n = itoa::Buffer::new();
    out.push((
        Bytes::from_static(b"content-length"),
        Bytes::copy_from_slice(n.format(reply.body.len()).as_bytes()),
    ));
    if !reply.body.is_empty() && !reply.edits.drops(b"content-type") {
        out.push((
            Bytes::from_static(b"content-type"),
            Bytes::copy_from_slice(reply.content_type),
        ));
    }
    push_adds(out, reply.edits);
}

/// The response head from an HTTP/2 upstream with the route's and the filters' header
/// changes.
pub(crate) fn upstream_response_fields(
    fields: Fields,
    edits: Edits<'_>,
    opts: &HttpOptions,
    out: &mut Fields,
) {
    for (name, value) in fields {
        if edits.drops(&name) {
            continue;
        }
        out.push((name, value));
    }
    push_via(out, opts);
    push_adds(out, edits);
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
    fn authority_becomes_host_and_cookie_crumbs_are_joined() {
        let fields = f(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "example.com"),
            (":path", "/a?b=1"),
            ("cookie", "a=1"),
            ("host", "other.example"),
            ("x-y", "z"),
            ("cookie", "b=2"),
        ]);
        let head = request_head(&fields, true, &Limits::default()).unwrap();
        assert_eq!(head.method(), b"GET");
        assert_eq!(head.path(), b"/a");
        assert_eq!(head.query(), b"b=1");
        assert_eq!(head.authority(), b"example.com");
        assert_eq!(head.header(b"cookie"), Some(&b"a=1; b=2"[..]));
        assert_eq!(head.header(b"x-y"), Some(&b"z"[..]));
        assert_eq!(head.headers().filter(|(n, _)| *n == b"host").count(), 1);
        assert_eq!(head.framing(), http1::BodyFraming::None);
    }

    #[test]
    fn a_body_without_length_is_chunked_and_with_length_is_not() {
        let base = [(":method", "POST"), (":authority", "a"), (":path", "/")];
        let head = request_head(&f(&base), false, &Limits::default()).unwrap();
        assert_eq!(head.framing(), http1::BodyFraming::Chunked);
        let mut with_len = f(&base);
        with_len.push((
            Bytes::from_static(b"content-length"),
            Bytes::from_static(b"5"),
        ));
        let head = request_head(&with_len, false, &Limits::default()).unwrap();
        assert_eq!(head.framing(), http1::BodyFraming::Length(5));
    }

    #[test]
    fn a_request_without_authority_or_host_is_refused() {
        let fields = f(&[(":method", "GET"), (":scheme", "http"), (":path", "/")]);
        assert!(request_head(&fields, true, &Limits::default()).is_err());
    }
}
