//! Rewriting heads on their way through: hop-by-hop fields dropped (RFC 9110 7.6.1), framing
//! re-declared for the next hop, forwarding fields and route header changes applied.
//!
//! Heads are written straight into the outgoing buffer; nothing is collected per header. For an
//! HTTP/1 request to an HTTP/1 upstream, the field lines kept unchanged are not copied at all:
//! they leave from the client's head buffer, beside the buffer the rest went to, in one
//! vectored write ([`H1Parts`]).

use std::io::Write;
use std::net::SocketAddr;

use bytes::BytesMut;
use protocols::http::RequestHead;
use protocols::http1::{ResponseHead, encode};

use crate::codec::h2::convert::Fields;
use crate::config::HttpOptions;
use crate::filters::Edits;
use crate::router::{Route, XFCC};
use crate::sys::gather::{Gather, Src};

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

/// Where the upstream request head is written: HTTP/1.1 text ([`BytesMut`]), HTTP/1.1 text
/// whose kept lines stay where they were received ([`H1Parts`]), or an HTTP/2 field list
/// ([`H2Request`]). [`rewrite_request`] decides every field once for all three.
pub(crate) trait HeadOut {
    /// The request line, or the pseudo-header fields: `query` without its `?`.
    fn start(&mut self, method: &[u8], path: &[u8], query: &[u8], authority: &[u8]);
    /// One field whose value is `parts` concatenated.
    fn field_parts(&mut self, name: &[u8], parts: &[&[u8]]);
    /// One field.
    fn field(&mut self, name: &[u8], value: &[u8]) {
        self.field_parts(name, &[value]);
    }
    /// The request's field number `index` (`name`, trimmed `value`), forwarded unchanged.
    fn keep(&mut self, index: usize, name: &[u8], value: &[u8]) {
        let _ = index;
        self.field(name, value);
    }
    /// The head is complete.
    fn end(&mut self);
}

impl HeadOut for BytesMut {
    fn start(&mut self, method: &[u8], path: &[u8], query: &[u8], _authority: &[u8]) {
        self.extend_from_slice(method);
        self.extend_from_slice(b" ");
        self.extend_from_slice(path);
        if !query.is_empty() {
            self.extend_from_slice(b"?");
            self.extend_from_slice(query);
        }
        self.extend_from_slice(b" HTTP/1.1\r\n");
    }

    fn field_parts(&mut self, name: &[u8], parts: &[&[u8]]) {
        self.extend_from_slice(name);
        self.extend_from_slice(b": ");
        for part in parts {
            self.extend_from_slice(part);
        }
        self.extend_from_slice(b"\r\n");
    }

    fn field(&mut self, name: &[u8], value: &[u8]) {
        encode::header(self, name, value);
    }

    fn end(&mut self) {
        encode::end_head(self);
    }
}

/// An HTTP/1 upstream's request as the parts of one vectored write ([`Gather`]): each field
/// line kept unchanged is sent as received, a slice of the client's head buffer (runs of kept
/// lines are one slice), and everything else (request line, changed and added fields, the end
/// of the head, and whatever the caller appends after it, such as a small body) is written to
/// `out` as [`BytesMut`]'s [`HeadOut`] writes it. A kept line keeps its optional whitespace
/// (`x:  v ` leaves as `x:  v `; the text writer would send `x: v`), which HTTP/1 allows a
/// proxy to forward. A head that did not come as HTTP/1 text has no lines to keep: all of it
/// goes to `out`.
pub(crate) struct H1Parts<'a> {
    pub(crate) req: &'a RequestHead,
    pub(crate) out: &'a mut BytesMut,
    pub(crate) parts: &'a mut Gather,
    /// Where the bytes written to `out` since the last part start. After the head, the caller
    /// appends what follows it to `out` and closes the parts with
    /// `parts.push(Src::Out, from..out.len())`.
    pub(crate) from: usize,
}

impl HeadOut for H1Parts<'_> {
    fn start(&mut self, method: &[u8], path: &[u8], query: &[u8], authority: &[u8]) {
        self.out.start(method, path, query, authority);
    }

    fn field_parts(&mut self, name: &[u8], parts: &[&[u8]]) {
        self.out.field_parts(name, parts);
    }

    fn field(&mut self, name: &[u8], value: &[u8]) {
        self.out.field(name, value);
    }

    fn keep(&mut self, index: usize, name: &[u8], value: &[u8]) {
        let Some(line) = self.req.field_line(index) else {
            return self.out.field(name, value);
        };
        self.parts.push(Src::Out, self.from..self.out.len());
        self.from = self.out.len();
        self.parts.push(Src::Head, line);
    }

    fn end(&mut self) {
        self.out.end();
    }
}

/// An HTTP/2 upstream's request (RFC 9113 8.3.1): pseudo-header fields from the request line,
/// the Host as `:authority`, names lowercased. The rewrite adds no connection-specific field
/// for it (no upgrade, no chunked framing).
pub(crate) struct H2Request<'a> {
    pub(crate) fields: &'a mut Fields,
    /// `http` or `https`, from the upstream connection.
    pub(crate) scheme: &'static [u8],
}

impl HeadOut for H2Request<'_> {
    fn start(&mut self, method: &[u8], path: &[u8], query: &[u8], authority: &[u8]) {
        // The pseudo-header names are lowercase already.
        self.fields.push(b":method", method);
        self.fields.push(b":scheme", self.scheme);
        self.fields.push(b":authority", authority);
        if query.is_empty() {
            self.fields.push(b":path", path);
        } else {
            self.fields.push_lowercase(b":path", &[path, b"?", query]);
        }
    }

    fn field_parts(&mut self, name: &[u8], parts: &[&[u8]]) {
        // The Host travels as `:authority`.
        if !name.eq_ignore_ascii_case(b"host") {
            self.fields.push_lowercase(name, parts);
        }
    }

    fn end(&mut self) {}
}

/// Write the head to send upstream for `req`, as HTTP/1.1 text or as HTTP/2 fields. `xfcc`:
/// the `x-forwarded-client-cert` value of the client's verified certificate (mTLS). An
/// `x-forwarded-client-cert` the client sent is never forwarded: only ringway's own
/// identifies the client.
pub(crate) fn rewrite_request(
    req: &RequestHead,
    rw: &RequestRewrite<'_>,
    xfcc: Option<&[u8]>,
    out: &mut impl HeadOut,
) {
    let route = rw.route;
    let mut rewritten = Vec::new();
    let path = req.path();
    let path = if route.prefix_rewrite.is_some() && route.rewrite_path(path, &mut rewritten) {
        &rewritten[..]
    } else {
        path
    };
    // A route or filter that sets `host` replaces the authority: it goes upstream once, as
    // `Host` or `:authority`, never beside the client's.
    let authority = rw
        .edits
        .first_add(b"host")
        .unwrap_or_else(|| req.authority());
    out.start(req.method(), path, req.query(), authority);
    let xff_last = if rw.opts.use_forwarded_headers {
        req.headers()
            .enumerate()
            .filter(|(_, (n, _))| n.eq_ignore_ascii_case(b"x-forwarded-for"))
            .map(|(i, _)| i)
            .last()
    } else {
        None
    };
    let mut ip = IpText::default();
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
                out.field(b"te", b"trailers");
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
            out.field(b"host", authority);
            continue;
        }
        if Some(i) == xff_last {
            out.field_parts(name, &[value, b", ", ip.of(rw.peer)]);
            continue;
        }
        out.keep(i, name, value);
    }
    if !has_host {
        // HTTP/1.0 without Host (or a Host an edit replaces): an HTTP/1.1 request must carry
        // one, empty when the target has no authority (RFC 9112 3.2).
        out.field(b"host", authority);
    }
    if rw.opts.use_forwarded_headers {
        if xff_last.is_none() {
            out.field(b"x-forwarded-for", ip.of(rw.peer));
        }
        out.field(b"x-forwarded-proto", rw.opts.scheme());
    }
    if let Some(id) = rw.request_id {
        out.field(b"x-request-id", id);
    }
    if let Some(v) = xfcc {
        out.field(XFCC, v);
    }
    if let Some(via) = &rw.opts.via {
        out.field_parts(b"via", &[b"1.1 ", via.as_bytes()]);
    }
    match rw.framing {
        OutFraming::Chunked => out.field(b"transfer-encoding", b"chunked"),
        OutFraming::AsIs | OutFraming::Close => {}
    }
    if let Some(proto) = rw.upgrade {
        out.field(b"connection", b"upgrade");
        out.field(b"upgrade", proto);
    }
    rw.edits.for_each_add(|name, value| {
        if !name.eq_ignore_ascii_case(b"host") {
            out.field(name, value);
        }
    });
    out.end();
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
    edits.for_each_add(|name, value| {
        encode::header(dst, name, value);
    });
}

fn write_via(dst: &mut BytesMut, via: &str) {
    dst.extend_from_slice(b"via: 1.1 ");
    dst.extend_from_slice(via.as_bytes());
    dst.extend_from_slice(b"\r\n");
}

/// A peer's address as text (no port), formatted without allocating.
struct IpText {
    buf: [u8; IP_TEXT],
}

/// Room for the longest IPv6 address in text (45 bytes).
const IP_TEXT: usize = 48;

impl Default for IpText {
    fn default() -> Self {
        Self { buf: [0; IP_TEXT] }
    }
}

impl IpText {
    fn of(&mut self, peer: SocketAddr) -> &[u8] {
        let mut w = &mut self.buf[..];
        match peer.ip() {
            // The common case, written without the formatting machinery (it is on every
            // request).
            std::net::IpAddr::V4(ip) => {
                let mut n = itoa::Buffer::new();
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        let _ = w.write_all(b".");
                    }
                    let _ = w.write_all(n.format(octet).as_bytes());
                }
            }
            ip @ std::net::IpAddr::V6(_) => {
                let _ = write!(w, "{ip}");
            }
        }
        let len = IP_TEXT - w.len();
        &self.buf[..len]
    }
}

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
        let mut ip = IpText::default();
        assert_eq!(ip.of("[::1]:9000".parse().unwrap()), b"::1");
        assert_eq!(ip.of("10.0.0.1:80".parse().unwrap()), b"10.0.0.1");
        assert_eq!(ip.of("255.255.0.9:1".parse().unwrap()), b"255.255.0.9");
        let long = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:1";
        assert_eq!(
            ip.of(long.parse().unwrap()),
            b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
    }
}
