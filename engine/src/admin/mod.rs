//! Admin API: Envoy's operator endpoints over HTTP/1.1 on their own thread.
//!
//! Owns the admin listener and its connections (thread `ringway-admin`, blocking `std::net`, one
//! short-lived thread per connection, at most [`MAX_CONNECTIONS`]), request parsing with the
//! project's HTTP/1 codec and the endpoints: `/`, `/stats` (`?filter=<regex>`,
//! `?format=json`), `/stats/prometheus`, `/clusters` (`?format=json`), `/config_dump`,
//! `/ready`, `/server_info`, and `POST /healthcheck/fail|ok`.
//!
//! It does not touch worker connections or the request path: it reads the stats
//! [`Store`](crate::stats::Store), the published config snapshot and the lifecycle flags in
//! [`AdminState`]; the workers and the control thread act on those flags. DESIGN.md "Threads"
//! (control thread) and "observability".

mod handlers;
#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use protocols::http1::{self, BodyFraming, Limits, encode};

pub use crate::shared::AdminState;

/// Most admin connections served at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 64;
/// An admin connection idle (or stalled mid-request) this long is closed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body accepted (and discarded); admin endpoints take no body.
pub const MAX_BODY: u64 = 64 * 1024;

/// Binds `addr` (port 0 picks a free port), then serves on a new thread `ringway-admin`;
/// returns the bound address. Bind errors are returned; errors after that are logged.
pub fn spawn(addr: SocketAddr, state: Arc<AdminState>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("ringway-admin".into())
        .spawn(move || accept_loop(&listener, &state))?;
    log::info!("admin listening on {bound}");
    Ok(bound)
}

fn accept_loop(listener: &TcpListener, state: &Arc<AdminState>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                log::warn!("admin accept failed: {e}");
                // Out of descriptors and similar: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            log::warn!("admin: connection limit reached, closing {peer}");
            continue;
        }
        let state = Arc::clone(state);
        let guard = ConnGuard(Arc::clone(&open));
        let spawned = std::thread::Builder::new()
            .name("ringway-admin-conn".into())
            .spawn(move || {
                let _guard = guard;
                if let Err(e) = serve(stream, &state) {
                    log::debug!("admin connection from {peer}: {e}");
                }
            });
        if let Err(e) = spawned {
            log::warn!("admin: cannot spawn a connection thread: {e}");
        }
    }
}

/// Releases a connection slot when the connection thread ends (or fails to start).
struct ConnGuard(Arc<AtomicUsize>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response from an endpoint.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    /// Extra header (e.g. `Allow` on 405).
    pub(crate) extra: Option<(&'static str, String)>,
    /// Close the connection after this response.
    pub(crate) close: bool,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            extra: None,
            close: false,
        }
    }

    pub(crate) fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain; charset=UTF-8", body)
    }

    pub(crate) fn json(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, "application/json", body)
    }

    fn error(status: u16, msg: &str) -> Self {
        Self {
            close: true,
            ..Self::text(status, format!("{msg}\n"))
        }
    }
}

/// One connection: requests in order (keep-alive), until close, error or timeout.
fn serve(mut stream: TcpStream, state: &AdminState) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let limits = Limits::default();
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = BytesMut::with_capacity(4096);
    loop {
        let head = match http1::parse_request(&mut buf, &limits) {
            Ok(Some(head)) => head,
            Ok(None) => {
                if read_more(&mut stream, &mut buf)? == 0 {
                    return Ok(());
                }
                continue;
            }
            Err(e) => {
                let resp = Response::error(e.status(), "bad request");
                write_response(&mut stream, &mut out, &resp, true, false)?;
                return Ok(());
            }
        };
        // Discard any body: no endpoint takes one.
        let resp = match head.framing() {
            BodyFraming::None | BodyFraming::Length(0) => None,
            BodyFraming::Length(n) if n <= MAX_BODY => {
                if head.expects_continue() {
                    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                }
                let mut left = n;
                while left > 0 {
                    if buf.is_empty() && read_more(&mut stream, &mut buf)? == 0 {
                        return Ok(());
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    buf.advance(take);
                    left -= take as u64;
                }
                None
            }
            BodyFraming::Length(_) => Some(Response::error(413, "request body too large")),
            BodyFraming::Chunked | BodyFraming::Close => Some(Response::error(
                411,
                "chunked request bodies are not accepted",
            )),
        };
        let resp = resp
            .unwrap_or_else(|| handlers::route(state, head.method(), head.path(), head.query()));
        let close = resp.close || !head.is_keep_alive();
        write_response(
            &mut stream,
            &mut out,
            &resp,
            close,
            head.is_head() && !resp.close,
        )?;
        if close {
            return Ok(());
        }
    }
}

fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = match stream.read(&mut chunk) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(1),
        Err(e) => return Err(e),
    };
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

/// Writes head and (unless `head_only`) body. Content-Length is always set; `close` adds
/// `Connection: close`.
fn write_response(
    stream: &mut TcpStream,
    out: &mut BytesMut,
    resp: &Response,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    out.clear();
    encode::status_line(out, resp.status, b"");
    encode::header(out, b"content-type", resp.content_type.as_bytes());
    encode::header(
        out,
        b"content-length",
        resp.body.len().to_string().as_bytes(),
    );
    encode::header(out, b"cache-control", b"no-cache, max-age=0");
    encode::header(out, b"x-content-type-options", b"nosniff");
    if let Some((name, value)) = &resp.extra {
        encode::header(out, name.as_bytes(), value.as_bytes());
    }
    if close {
        encode::header(out, b"connection", b"close");
    }
    encode::end_head(out);
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    stream.write_all(out)?;
    stream.flush()
}
