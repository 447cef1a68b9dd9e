//! A minimal HTTP/1.1 client for the control runtime: one request on a fresh connection to a
//! `SocketAddr`, the whole exchange under one timeout, the response read to the end.
//!
//! Owns the exchange: encode the head with `protocols::http1::encode` (`Connection: close`,
//! `Content-Length` when there is a body), parse the response head and body with the project's
//! sans-IO codec (Content-Length, chunked and close-delimited bodies; 1xx heads skipped) and
//! collect the body up to [`MAX_RESPONSE_BODY`].
//!
//! Does not: pool or reuse connections, open TLS itself ([`request_on`] runs over a stream the
//! caller opened, TLS included) or speak HTTP/2, follow redirects, stream bodies
//! (an etcd watch's endless response needs a streaming variant) or resolve names: the caller
//! passes an address. Runs on any monoio runtime; meant for the control thread, never a worker.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use protocols::http1::{
    self, BodyDecoder, BodyError, BodyEvent, Limits, ResponseError, ResponseHead, encode,
};

/// Largest response body collected; a larger one fails with [`Error::BodyTooLarge`].
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Bytes asked of each read.
const READ_SIZE: usize = 16 * 1024;

/// A request to send. Method, path and header fields must be free of CR, LF and NUL (checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// Origin-form target: `/v3/kv/range`, with any query.
    pub path: String,
    /// `Host` value; `None`: the address connected to.
    pub host: Option<String>,
    /// Extra fields, sent as given (no `Host`, `Content-Length` or `Connection`: those are set).
    pub headers: Vec<(String, String)>,
    /// The body; sent with `Content-Length` when not empty or the method is POST or PUT.
    pub body: Bytes,
}

impl Request {
    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            host: None,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `POST path` with a body of `content_type`.
    pub fn post(path: impl Into<String>, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            method: "POST",
            body: body.into(),
            ..Self::get(path)
        }
        .header("content-type", content_type)
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The final status (1xx heads are skipped).
    pub status: u16,
    /// The head, for its fields.
    pub head: ResponseHead,
    /// The whole body, de-chunked.
    pub body: Bytes,
}

impl Response {
    /// The first value of a field (lowercase name).
    pub fn header(&self, lowercase_name: &[u8]) -> Option<&[u8]> {
        self.head.header(lowercase_name)
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A method, path or field held CR, LF or NUL (or the method or path was empty).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The connection could not be opened.
    #[error("connect failed: {0}")]
    Connect(io::Error),
    /// Writing the request or reading the response failed.
    #[error("i/o error: {0}")]
    Io(io::Error),
    /// No complete response within the timeout (connect included).
    #[error("timed out")]
    Timeout,
    /// The response head did not parse.
    #[error("bad response head: {0}")]
    Head(ResponseError),
    /// The response body did not decode (bad chunking, cut short).
    #[error("bad response body: {0}")]
    Body(BodyError),
    /// The body is larger than [`MAX_RESPONSE_BODY`].
    #[error("response body larger than {MAX_RESPONSE_BODY} bytes")]
    BodyTooLarge,
    /// The peer closed before a complete head.
    #[error("connection closed before the response head")]
    Closed,
}

/// Sends `req` to `addr` and reads the whole response, all within `timeout`.
pub async fn request(
    addr: SocketAddr,
    req: &Request,
    timeout: Duration,
) -> Result<Response, Error> {
    let head = encode_head(addr, req)?;
    match monoio::time::timeout(timeout, exchange(addr, head, req)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout),
    }
}

fn is_clean(v: &[u8]) -> bool {
    !v.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

fn encode_head(addr: SocketAddr, req: &Request) -> Result<BytesMut, Error> {
    let path = req.path.as_bytes();
    if req.method.is_empty() || !req.method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::InvalidRequest("method"));
    }
    if path.is_empty() || !is_clean(path) || path.contains(&b' ') {
        return Err(Error::InvalidRequest("path"));
    }
    let mut out = BytesMut::with_capacity(256 + req.headers.len() * 64);
    encode::request_line(&mut out, req.method.as_bytes(), path);
    let host = req.host.clone().unwrap_or_else(|| addr.to_string());
    if !is_clean(host.as_bytes()) {
        return Err(Error::InvalidRequest("host"));
    }
    encode::header(&mut out, b"host", host.as_bytes());
    for (n, v) in &req.headers {
        if n.is_empty() || !is_clean(n.as_bytes()) || n.contains(':') || !is_clean(v.as_bytes()) {
            return Err(Error::InvalidRequest("header field"));
        }
        encode::header(&mut out, n.as_bytes(), v.as_bytes());
    }
    if !req.body.is_empty() || matches!(req.method, "POST" | "PUT") {
        let mut len = BytesMut::new();
        encode::decimal(&mut len, req.body.len() as u64);
        encode::header(&mut out, b"content-length", &len);
    }
    encode::header(&mut out, b"connection", b"close");
    encode::end_head(&mut out);
    Ok(out)
}

async fn exchange(addr: SocketAddr, head: BytesMut, req: &Request) -> Result<Response, Error> {
    let stream = TcpStream::connect_addr(addr)
        .await
        .map_err(Error::Connect)?;
    let _ = stream.set_nodelay(true);
    exchange_on(stream, head, req).await
}

/// Sends `req` on a connection already open to `addr` (a TLS one, say) and reads the whole
/// response. Not bounded in time: the caller bounds it.
pub async fn request_on<S: AsyncReadRent + AsyncWriteRent>(
    stream: S,
    addr: SocketAddr,
    req: &Request,
) -> Result<Response, Error> {
    exchange_on(stream, encode_head(addr, req)?, req).await
}

async fn exchange_on<S: AsyncReadRent + AsyncWriteRent>(
    mut stream: S,
    head: BytesMut,
    req: &Request,
) -> Result<Response, Error> {
    stream.write_all(head).await.0.map_err(Error::Io)?;
    if !req.body.is_empty() {
        stream
            .write_all(req.body.clone())
            .await
            .0
            .map_err(Error::Io)?;
    }
    let limits = Limits::default();
    let is_head = req.method == "HEAD";
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let head = loop {
        match http1::parse_response(&mut buf, is_head, &limits).map_err(Error::Head)? {
            // Interim responses (100 Continue, 103 Early Hints): the final one follows.
            Some(h) if h.is_informational() && h.status() != 101 => continue,
            Some(h) => break h,
            None => {
                if read_more(&mut stream, &mut buf).await? == 0 {
                    return Err(Error::Closed);
                }
            }
        }
    };
    let mut decoder = BodyDecoder::new(head.framing());
    let mut body = BytesMut::new();
    loop {
        match decoder.decode(&mut buf).map_err(Error::Body)? {
            BodyEvent::Data(d) => {
                if body.len() + d.len() > MAX_RESPONSE_BODY {
                    return Err(Error::BodyTooLarge);
                }
                body.extend_from_slice(&d);
            }
            BodyEvent::Trailers(_) => {}
            BodyEvent::End => break,
            BodyEvent::NeedMore => {
                if read_more(&mut stream, &mut buf).await? == 0 {
                    decoder.eof().map_err(Error::Body)?;
                }
            }
        }
    }
    Ok(Response {
        status: head.status(),
        head,
        body: body.freeze(),
    })
}

/// Appends one read to `buf`; `Ok(0)` is end of stream.
async fn read_more<S: AsyncReadRent>(stream: &mut S, buf: &mut BytesMut) -> Result<usize, Error> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    // monoio reads at the buffer's start; a slice over the spare capacity appends instead.
    let start = buf.len();
    let spare = std::mem::take(buf).slice_mut(start..);
    let (res, spare) = stream.read(spare).await;
    *buf = spare.into_inner();
    res.map_err(Error::Io)
}
