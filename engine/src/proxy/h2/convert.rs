//! Responses to an HTTP/2 client as field lists: an HTTP/1 upstream's response head
//! (connection-specific fields dropped, RFC 9113 8.2.2; names lowercased, 8.2.1), an HTTP/2
//! upstream's, and local replies, each with the route's and the filters' header changes.
//! (A request from a client stream becomes a [`protocols::http::RequestHead`] in
//! [`protocols::http2::request_head`], without passing through HTTP/1 text.)
//!
//! The conversions the upstream side needs too are in [`crate::codec::h2::convert`] and
//! re-exported.

use protocols::http1::ResponseHead;

pub(crate) use crate::codec::h2::convert::{
    Fields, head_fields, status_of, trailer_fields, write_trailers,
};
use crate::codec::is_hop_by_hop;
use crate::config::HttpOptions;
use crate::filters::Edits;
use crate::proxy::reply::LocalReply;

/// Appends `:status`.
fn push_status(out: &mut Fields, status: u16) {
    let mut n = itoa::Buffer::new();
    out.push_lowercase(b":status", &[n.format(status).as_bytes()]);
}

fn push_adds(out: &mut Fields, edits: Edits<'_>) {
    edits.for_each_add(|name, value| out.push_lowercase(name, &[value]));
}

fn push_via(out: &mut Fields, opts: &HttpOptions) {
    if let Some(via) = &opts.via {
        out.push_lowercase(b"via", &[b"1.1 ", via.as_bytes()]);
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
    push_status(out, resp.status());
    for (name, value) in resp.headers() {
        if is_hop_by_hop(name) || resp.connection_lists(name) || edits.drops(name) {
            continue;
        }
        out.push_lowercase(name, &[value]);
    }
    push_via(out, opts);
    push_adds(out, edits);
}

/// Whether a response head goes to an HTTP/2 client as the upstream sent it (an HTTP/1
/// head without its connection-specific fields): no header changes, no `via`. Then
/// [`unedited_response_fields`] gives an HTTP/1 head's fields without copying them.
pub(crate) fn is_unedited(edits: Edits<'_>, opts: &HttpOptions) -> bool {
    edits.is_none() && opts.via.is_none()
}

/// The HTTP/2 response head for the upstream's HTTP/1 response `resp` when [`is_unedited`]:
/// what [`response_fields`] would write, read from the head in place (`status` holds the
/// `:status` text). The names are as the upstream sent them: they go to the codec's
/// lowercasing send (`send_headers_lowercasing`), which lowercases each as it encodes it.
pub(crate) fn unedited_response_fields<'r>(
    resp: &'r ResponseHead,
    status: &'r mut itoa::Buffer,
) -> impl Iterator<Item = (&'r [u8], &'r [u8])> {
    let status: &[u8] = status.format(resp.status()).as_bytes();
    std::iter::once((&b":status"[..], status)).chain(
        resp.headers()
            .filter(|&(name, _)| !is_hop_by_hop(name) && !resp.connection_lists(name)),
    )
}

/// The fields of a locally generated response (the body goes in DATA frames).
pub(crate) fn local_reply_fields(reply: &LocalReply<'_>, opts: &HttpOptions, out: &mut Fields) {
    push_status(out, reply.status);
    if !reply.edits.drops(b"server") {
        out.push_lowercase(b"server", &[opts.server_name.as_bytes()]);
    }
    if let Some(loc) = reply.location {
        out.push_lowercase(b"location", &[loc]);
    }
    let mut n = itoa::Buffer::new();
    out.push_lowercase(b"content-length", &[n.format(reply.body.len()).as_bytes()]);
    if !reply.body.is_empty() && !reply.edits.drops(b"content-type") {
        out.push_lowercase(b"content-type", &[reply.content_type]);
    }
    push_adds(out, reply.edits);
}

/// The response head from an HTTP/2 upstream with the route's and the filters' header
/// changes.
pub(crate) fn upstream_response_fields(
    fields: &Fields,
    edits: Edits<'_>,
    opts: &HttpOptions,
    out: &mut Fields,
) {
    for (name, value) in fields.iter() {
        if edits.drops(name) {
            continue;
        }
        out.push_lowercase(name, &[value]);
    }
    push_via(out, opts);
    push_adds(out, edits);
}
