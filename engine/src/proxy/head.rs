//! Rewriting heads on their way through: hop-by-hop fields dropped (RFC 9110 7.6.1), framing
//! re-declared for the next hop, forwarding fields and route header changes applied.
//!
//! Heads are written straight into the outgoing buffer; nothing is collected per header.

use std::io::Write;
use std::net::SocketAddr;

use bytes::BytesMut;
use protocols::http1::{self, Limits, RequestHead, ResponseHead, encode};

use crate::config::HttpOptions;
use crate::filters::Edits;
use crate::router::{Route, XFCC};

pub(crate) use crate::codec::is_hop_by_hop;

/// How the body of a message is framed on the outgoing side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutFraming {
    /// No body, or `Content-Length` passed through unchanged.
    AsIs,
    Chunked,
    /// Body runs until the connection closes (HTTP/1.0 downstreams).
    Close,
}

/// Everything the upstream request head depends on besides the request itself.
pub(crate) struct RequestRewrite<'a> {
    pub(crate) route: &'a Route,
    pub(crate) opts: &'a HttpOptions,
    pub(crate) peer: SocketAddr,
    pub(crate) framing: OutFraming,
    pub(crate) upgrade: Option<&'a [u8]>,
    /// Set when the request had no `x-request-id` and one was generated.
    pub(crate) request_id: Option<&'a [u8; 36]>,
    /// The route's and the filters' header changes.
    pub(crate) edits: Edits<'a>,
}

/// Write the head to send upstream for `req`. `xfcc`: the `x-forwarded-client-cert` value of
/// the client's verified certificate (mTLS). An `x-forwarded-client-cert` the client sent is
/// never forwarded: only ringway's own identifies the client.
pub(crate) fn write_request_xfcc(
    dst: &mut BytesMut,
    req: &RequestHead,
    rw: &RequestRewrite<'_>,
    xfcc: Option<&[u8]>,
) {
    let route = rw.route;
    write_request_line(dst, req, route);
    let xff_last = if rw.opts.use_forwarded_headers {
        req.headers()
            .enumerate()
            .filter(|(_, (n, _))| n.eq_ignore_ascii_case(b"x-forwarded-for"))
            .map(|(i, _)| i)
            .last()
    } else {
        None
    };
    let mut has_host = false;
    for (i, (name, value)) in req.headers().enumerate() {
        // `TE` is hop-by-hop, but its `trailers` token says the client takes trailers (gRPC
        // needs it). Like Envoy, forward `te: trailers` alone and drop other codings.
        if name.eq_ignore_ascii_case(b"te") {
            let trailers = value.split(|&b| b == b',').any(|t| {
                let coding = t.split(|&b| b == b';').next().unwrap_or_default();
                coding.trim_ascii().eq_ignore_ascii_case(b"trailers")
            });
            if trailers {
                encode::header(dst, b"te", b"trailers");
            }
            continue;
        }
        if is_hop_by_hop(name) || req.connection_lists(name) || rw.edits.drops(name) {
            continue;
        }
        if rw.opts.use_forwarded_headers && name.eq_ignore_ascii_case(b"x-forwarded-proto") {
            continue;
        }
        if name.eq_ignore_ascii_case(XFCC) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"host") {
            has_host = true;
            // Absolute-form: the target's authority wins over Host (RFC 9112 3.2.2).
            encode::header(dst, b"host", req.authority());
            continue;
        }
        if Some(i) == xff_last {
            dst.extend_from_slice(name);
            dst.extend_from_slice(b": ");
            dst.extend_from_slice(value);
            dst.extend_from_slice(b", ");
            write_ip(dst, rw.peer);
            dst.extend_from_slice(b"\r\n");
            continue;
        }
        encode::header(dst, name, value);
    }
    if !has_host {
        // HTTP/1.0 without Host: an HTTP/1.1 request must carry one, empty when the target
        // has no authority (RFC 9112 3.2).
        encode::header(dst, b"host", req.authority());
    }
    if rw.opts.use_forwarded_headers {
        if xff_last.is_none() {
            dst.extend_from_slice(b"x-forwarded-for: ");
            write_ip(dst, rw.peer);
            dst.extend_from_slice(b"\r\n");
        }
        encode::header(dst, b"x-forwarded-proto", rw.opts.scheme());
    }
    if let Some(id) = rw.request_id {
        encode::header(dst, b"x-request-id", id);
    }
    if let Some(v) = xfcc {
        encode::header(dst, XFCC, v);
    }
    if let Some(via) = &rw.opts.via {
        write_via(dst, via);
    }
    match rw.framing {
        OutFraming::Chunked => encode::header(dst, b"transfer-encoding", b"chunked"),
        OutFraming::AsIs | OutFraming::Close => {}
    }
    if let Some(proto) = rw.upgrade {
        encode::header(dst, b"connection", b"upgrade");
        encode::header(dst, b"upgrade", proto);
    }
    write_adds(dst, rw.edits);
    encode::end_head(dst);
}

/// The upstream request head as a parsed head, for HTTP/2 upstreams (which take fields):
/// written by [`write_request_xfcc`], so both upstream codecs get the same rewrites, then read
/// back. `None` only if the rewritten head does not parse (a route adds a bad header).
/// `xfcc`: see [`write_request_xfcc`].
pub(crate) fn rewrite_request_xfcc(
    req: &RequestHead,
    rw: &RequestRewrite<'_>,
    xfcc: Option<&[u8]>,
) -> Option<RequestHead> {
    let mut out = BytesMut::with_capacity(req.raw().len() + 256 + xfcc.map_or(0, <[u8]>::len));
    write_request_xfcc(&mut out, req, rw, xfcc);
    // The downstream limits already bounded the head; these only bound the additions.
    let limits = Limits {
        max_request_line: out.len(),
        max_head: out.len(),
        max_headers: req.header_count() + 64,
    };
    http1::parse_request(&mut out, &limits).ok().flatten()
}

fn write_request_line(dst: &mut BytesMut, req: &RequestHead, route: &Route) {
    dst.extend_from_slice(req.method());
    dst.extend_from_slice(b" ");
    let path = req.path();
    let mut rewritten = Vec::new();
    if route.prefix_rewrite.is_some() && route.rewrite_path(path, &mut rewritten) {
        dst.extend_from_slice(&rewritten);
    } else {
        dst.extend_from_slice(path);
    }
    let query = req.query();
    if !query.is_empty() {
        dst.extend_from_slice(b"?");
        dst.extend_from_slice(query);
    }
    dst.extend_from_slice(b" HTTP/1.1\r\n");
}

/// Everything the downstream response head depends on besides the response itself.
pub(crate) struct ResponseRewrite<'a> {
    /// The route's and the filters' header changes.
    pub(crate) edits: Edits<'a>,
    pub(crate) opts: &'a HttpOptions,
    pub(crate) framing: OutFraming,
    /// Ask the client to close (we will close after this response).
    pub(crate) close: bool,
    /// The client is HTTP/1.0 and keeps the connection alive: say so explicitly.
    pub(crate) keep_alive_10: bool,
    /// 101 Switching Protocols: keep `Upgrade` and `Connection: upgrade`.
    pub(crate) upgrade: bool,
}

/// Write the head to send downstream for the upstream response `resp`.
pub(crate) fn write_response(dst: &mut BytesMut, resp: &ResponseHead, rw: &ResponseRewrite<'_>) {
    encode::status_line(dst, resp.status(), resp.reason());
    let mut upgrade_value = None;
    for (name, value) in resp.headers() {
        if rw.upgrade && name.eq_ignore_ascii_case(b"upgrade") {
            upgrade_value = Some(value);
            continue;
        }
        if is_hop_by_hop(name) || resp.connection_lists(name) || rw.edits.drops(name) {
            continue;
        }
        encode::header(dst, name, value);
    }
    if let Some(via) = &rw.opts.via {
        write_via(dst, via);
    }
    if rw.framing == OutFraming::Chunked {
        encode::header(dst, b"transfer-encoding", b"chunked");
    }
    if rw.upgrade {
        encode::header(dst, b"connection", b"upgrade");
        if let Some(v) = upgrade_value {
            encode::header(dst, b"upgrade", v);
        }
    } else if rw.close {
        encode::header(dst, b"connection", b"close");
    } else if rw.keep_alive_10 {
        encode::header(dst, b"connection", b"keep-alive");
    }
    write_adds(dst, rw.edits);
    encode::end_head(dst);
}

/// Write the HTTP/1.1 head to send downstream for a response that came from an HTTP/2 upstream
/// (`fields` without pseudo-header fields; they carry no connection-specific fields).
pub(crate) fn write_response_fields<'f>(
    dst: &mut BytesMut,
    status: u16,
    fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
    rw: &ResponseRewrite<'_>,
) {
    encode::status_line(dst, status, b"");
    for (name, value) in fields {
        if name.starts_with(b":") || is_hop_by_hop(name) || rw.edits.drops(name) {
            continue;
        }
        encode::header(dst, name, value);
    }
    if let Some(via) = &rw.opts.via {
        write_via(dst, via);
    }
    if rw.framing == OutFraming::Chunked {
        encode::header(dst, b"transfer-encoding", b"chunked");
    }
    if rw.close {
        encode::header(dst, b"connection", b"close");
    } else if rw.keep_alive_10 {
        encode::header(dst, b"connection", b"keep-alive");
    }
    write_adds(dst, rw.edits);
    encode::end_head(dst);
}

fn write_adds(dst: &mut BytesMut, edits: Edits<'_>) {
    edits.for_each_add(|h| {
        encode::header(dst, &h.name, &h.value);
    });
}

fn write_via(dst: &mut BytesMut, via: &str) {
    dst.extend_from_slice(b"via: 1.1 ");
    dst.extend_from_slice(via.as_bytes());
    dst.extend_from_slice(b"\r\n");
}

fn write_ip(dst: &mut BytesMut, peer: SocketAddr) {
    match peer.ip() {
        // The common case, written without the formatting machinery (it is on every request).
        std::net::IpAddr::V4(ip) => {
            let mut n = itoa::Buffer::new();
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    dst.extend_from_slice(b".");
                }
                dst.extend_from_slice(n.format(octet).as_bytes());
            }
        }
        ip @ std::net::IpAddr::V6(_) => {
            let _ = write!(dst.writer(), "{ip}");
        }
    }
}

use bytes::BufMut as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_names_are_case_insensitive() {
        assert!(is_hop_by_hop(b"Connection"));
        assert!(is_hop_by_hop(b"TRANSFER-ENCODING"));
        assert!(!is_hop_by_hop(b"content-length"));
        assert!(!is_hop_by_hop(b"trailer"));
    }

    #[test]
    fn ip_is_written_without_port() {
        let mut b = BytesMut::new();
        write_ip(&mut b, "[::1]:9000".parse().unwrap());
        write_ip(&mut b, "10.0.0.1:80".parse().unwrap());
        write_ip(&mut b, " 255.255.0.9:1".trim().parse().unwrap());
        assert_eq!(&b[..], b"::110.0.0.1255.255.0.9");
    }
}
