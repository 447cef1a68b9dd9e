//! Responses to an HTTP/2 client as field lists: an HTTP/1 upstream's response head
//! (connection-specific fields dropped, RFC 9113 8.2.2; names lowercased, 8.2.1), an HTTP/2
//! upstream's, and local replies, each with the route's and the filters' header changes.
//! (A request from a client stream becomes a [`protocols::http::RequestHead`] in
//! [`protocols::http2::request_head`], without passing through HTTP/1 text.)
//!
//! The conversions the upstream side needs too are in [`crate::codec::h2::convert`] and
//! re-exported.

use bytes::Bytes;
use protocols::http1::ResponseHead;

use crate::codec::h2::convert::lower;
pub(crate) use crate::codec::h2::convert::{Fields, status_of, trailer_fields, write_trailers};
use crate::codec::is_hop_by_hop;
use crate::config::HttpOptions;
use crate::filters::Edits;
use crate::proxy::reply::LocalReply;

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
