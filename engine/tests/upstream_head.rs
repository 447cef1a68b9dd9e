//! The exact bytes an HTTP/1 upstream receives for an HTTP/1 request: field lines ringway
//! keeps leave as the client sent them (sent from the client's head buffer, `H1Parts`), the
//! rest of the head is written as before (request line, rewritten and added fields), and a
//! small body follows in the same write.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use support::*;

/// A backend on its own thread: reads one request per connection (head, then a
/// `content-length` body), sends it on the channel byte for byte, answers `200` and closes.
fn recording_backend() -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().take(100) {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 16 * 1024];
            let complete = |got: &[u8]| {
                let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return false;
                };
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len = head
                    .split("\r\n")
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                got.len() >= end + 4 + len
            };
            while !complete(&got) {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&b[..n]),
                }
            }
            let _ = tx.send(got);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, rx)
}

fn proxy_to(backend: SocketAddr) -> Proxy {
    Proxy::start(&format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [listeners.http]
  via = "edge"
  max_request_headers_count = 4000
  max_request_headers_bytes = 1048576
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
    request_headers_to_add = [{{ name = "x-added", value = "yes" }}]
    request_headers_to_remove = ["x-secret"]

[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#
    ))
}

/// Send `request` through the proxy and return what the backend received.
fn upstream_bytes(proxy: &Proxy, rx: &mpsc::Receiver<Vec<u8>>, request: &str) -> String {
    let resp = raw_exchange(proxy.addr(), request.as_bytes());
    assert_eq!(status_of(&resp), 200, "{}", String::from_utf8_lossy(&resp));
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("backend got it");
    String::from_utf8(got).unwrap()
}

/// What ringway appends after the client's fields with this listener and route (no
/// `x-forwarded-for` in the request, so it is added; the request sends its own `x-request-id`).
const ADDED: &str =
    "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nvia: 1.1 edge\r\nx-added: yes\r\n";

/// Kept lines in runs around removed ones: hop-by-hop fields, fields the Connection field
/// lists and a field the route removes drop out of the middle; Host is rewritten in place;
/// the forwarding fields and the route's field are added after the last one. These are the
/// bytes the text writer produced before kept lines were sent from the client's buffer.
#[test]
fn kept_lines_around_removed_and_added_fields() {
    let (backend, rx) = recording_backend();
    let proxy = proxy_to(backend);
    let got = upstream_bytes(
        &proxy,
        &rx,
        "GET /a?q=1 HTTP/1.1\r\n\
         Host: example.test\r\n\
         User-Agent: t/1\r\n\
         Accept: */*\r\n\
         Keep-Alive: timeout=5\r\n\
         X-Mid: 1\r\n\
         Connection: X-Listed, close\r\n\
         X-Listed: gone\r\n\
         X-Secret: s\r\n\
         Proxy-Connection: keep-alive\r\n\
         X-Request-Id: rid-1\r\n\
         TE: trailers, deflate\r\n\
         X-Last: z\r\n\
         \r\n",
    );
    assert_eq!(
        got,
        format!(
            "GET /a?q=1 HTTP/1.1\r\n\
             host: example.test\r\n\
             User-Agent: t/1\r\n\
             Accept: */*\r\n\
             X-Mid: 1\r\n\
             X-Request-Id: rid-1\r\n\
             te: trailers\r\n\
             X-Last: z\r\n\
             {ADDED}\r\n"
        )
    );
}

/// An absolute-form target: the request line carries the path only and Host becomes the
/// target's authority; a body small enough to be read with the head follows it in the same
/// request.
#[test]
fn absolute_form_and_a_small_body() {
    let (backend, rx) = recording_backend();
    let proxy = proxy_to(backend);
    let got = upstream_bytes(
        &proxy,
        &rx,
        "POST http://other.test/p HTTP/1.1\r\n\
         X-First: 1\r\n\
         Host: example.test\r\n\
         Content-Length: 5\r\n\
         X-Request-Id: rid-2\r\n\
         Connection: close\r\n\
         \r\n\
         hello",
    );
    assert_eq!(
        got,
        format!(
            "POST /p HTTP/1.1\r\n\
             X-First: 1\r\n\
             host: other.test\r\n\
             Content-Length: 5\r\n\
             X-Request-Id: rid-2\r\n\
             {ADDED}\r\n\
             hello"
        )
    );
}

/// A kept field line leaves exactly as received, optional whitespace around its value
/// included (RFC 9112 section 5: OWS is not part of the value; a proxy may forward the line
/// as it is). The text writer used to send `name: value` trimmed; the value is the same.
#[test]
fn a_kept_line_keeps_its_whitespace() {
    let (backend, rx) = recording_backend();
    let proxy = proxy_to(backend);
    let got = upstream_bytes(
        &proxy,
        &rx,
        "GET / HTTP/1.1\r\n\
         Host: example.test\r\n\
         X-Ows:   v  \r\n\
         X-Tab:\tw\t\r\n\
         X-None:x\r\n\
         X-Request-Id: rid-3\r\n\
         Connection: close\r\n\
         \r\n",
    );
    assert_eq!(
        got,
        format!(
            "GET / HTTP/1.1\r\n\
             host: example.test\r\n\
             X-Ows:   v  \r\n\
             X-Tab:\tw\t\r\n\
             X-None:x\r\n\
             X-Request-Id: rid-3\r\n\
             {ADDED}\r\n"
        )
    );
}

/// More parts than one `writev` takes (1024 `iovec`s on Linux): 1100 kept lines, each followed
/// by a dropped one, go in several writes, in order.
#[test]
fn more_parts_than_one_write_takes() {
    let (backend, rx) = recording_backend();
    let proxy = proxy_to(backend);
    let mut request = String::from("GET / HTTP/1.1\r\nHost: example.test\r\nX-Request-Id: r\r\n");
    let mut want = String::from("GET / HTTP/1.1\r\nhost: example.test\r\nX-Request-Id: r\r\n");
    for i in 0..1100 {
        request.push_str(&format!("X-K{i}:  {i}\r\nX-Secret: {i}\r\n"));
        want.push_str(&format!("X-K{i}:  {i}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    want.push_str(ADDED);
    want.push_str("\r\n");
    assert_eq!(upstream_bytes(&proxy, &rx, &request), want);
}

/// A route that sets `host` replaces the client's: one Host upstream, HTTP/1 and HTTP/2
/// clients alike, kept or appended in the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_sets_host_sends_one_host() {
    for append in [false, true] {
        let (backend, rx) = recording_backend();
        let cfg = format!(
            r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
    request_headers_to_add = [{{ name = "host", value = "api.example", append = {append} }}]

[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#
        );
        let proxy = Proxy::start(&cfg);
        let addr = proxy.addr();
        let from_h1 = tokio::task::spawn_blocking(move || {
            raw_exchange(
                addr,
                b"GET /a HTTP/1.1\r\nHost: inside\r\nConnection: close\r\n\r\n",
            )
        })
        .await
        .unwrap();
        assert_eq!(status_of(&from_h1), 200);
        let mut h2 = h2c(addr).await;
        let req = hyper::Request::get(format!("http://{addr}/b"))
            .body(body(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(h2.send_request(req).await.unwrap().status(), 200);
        for _ in 0..2 {
            let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
            let hosts: Vec<&str> = head
                .split("\r\n")
                .filter(|l| l.starts_with("host:"))
                .collect();
            assert_eq!(hosts, ["host: api.example"], "append = {append}: {head}");
        }
    }
}
