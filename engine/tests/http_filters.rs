//! HTTP filters configured through TOML (`[[listeners.http_filters]]`): `header_mutation`,
//! `buffer`, `fault` and `custom_response`, on HTTP/1 and HTTP/2 clients and upstreams,
//! against real hyper backends and clients: every filter phase (decode and encode headers,
//! data and trailers, log) and route re-resolution after a filter changed the request.

mod support;

use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;

async fn h2(addr: SocketAddr) -> SendRequest<Body> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

/// Each `(filters, want)`: the config with these filters is refused, the error names `want`
/// and is located in the file.
fn assert_refused(backend: SocketAddr, cases: &[(&str, &str)]) {
    for (filters, want) in cases {
        let text = config(backend, filters);
        let msg = engine::config::parse_str(&text, "f.toml")
            .expect_err(filters)
            .to_string();
        assert!(msg.contains(want), "{msg}");
        assert!(msg.contains("f.toml:"), "located: {msg}");
    }
}

fn config(backend: SocketAddr, filters: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
{filters}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    path = "/local"
    direct_response = {{ status = 200, body = "local" }}
    [[listeners.virtual_hosts.routes]]
    prefix = "/stream"
    cluster = "backend"
      [listeners.virtual_hosts.routes.filters.buffer]
      disabled = true
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"

[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#
    )
}

const MUTATION: &str = r#"
[[listeners.http_filters]]
name = "header_mutation"
request_headers_to_add = [{ name = "x-env", value = "prod" }]
request_headers_to_remove = ["x-secret"]
response_headers_to_add = [{ name = "x-served-by", value = "ringway", append = false }]
response_headers_to_remove = ["server", "x-echo-method"]
"#;

fn req(addr: SocketAddr, path: &str, body_bytes: Bytes) -> Request<Body> {
    Request::post(format!("http://{addr}{path}"))
        .header("x-secret", "s3cr3t")
        .body(body(body_bytes))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_mutation_changes_requests_and_responses_on_both_protocols() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(backend.addr, MUTATION));
    let mut h2c = h2(proxy.addr()).await;
    let h1 = client();
    for via_h2 in [false, true] {
        let r = req(proxy.addr(), "/x", Bytes::from_static(b"hello"));
        let resp = if via_h2 {
            h2c.send_request(r).await.unwrap()
        } else {
            h1.request(r).await.unwrap()
        };
        assert_eq!(resp.status(), 200, "h2: {via_h2}");
        let h = resp.headers().clone();
        assert_eq!(h["x-echo-h-x-env"], "prod", "added upstream (h2: {via_h2})");
        assert!(!h.contains_key("x-echo-h-x-secret"), "removed upstream");
        assert_eq!(h["x-served-by"], "ringway");
        assert!(!h.contains_key("x-echo-method"), "removed downstream");
        assert_eq!(read_body(resp).await, "hello");

        // Local answers get the response changes too.
        let r = Request::get(format!("http://{}/local", proxy.addr()))
            .body(body(Bytes::new()))
            .unwrap();
        let resp = if via_h2 {
            h2c.send_request(r).await.unwrap()
        } else {
            h1.request(r).await.unwrap()
        };
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-served-by"], "ringway");
        assert!(!resp.headers().contains_key("server"), "h2: {via_h2}");
        assert_eq!(read_body(resp).await, "local");
    }
}

const BUFFER_1M: &str = r#"
[[listeners.http_filters]]
name = "buffer"
max_request_bytes = 1048576
"#;

/// A backend that echoes the body and says, in `x-started-ms`, when (ms after `epoch`) it saw
/// the request head.
fn timing_backend(epoch: Instant) -> Backend {
    Backend::start(move |r: Request<hyper::body::Incoming>| async move {
        let started = epoch.elapsed().as_millis();
        let got = r.into_body().collect().await.unwrap().to_bytes();
        let mut resp = full(200, got);
        resp.headers_mut()
            .insert("x-started-ms", started.to_string().parse().unwrap());
        resp
    })
}

/// A request body sent in 4 pieces 150 ms apart; records when the last piece was handed over.
fn slow_body(data: &Bytes, last_sent: Arc<Mutex<Option<Instant>>>) -> Body {
    let pieces: Vec<Bytes> = data
        .chunks(data.len() / 4)
        .map(Bytes::copy_from_slice)
        .collect();
    let n = pieces.len();
    let stream = futures_util::stream::iter(pieces.into_iter().enumerate()).then(move |(i, p)| {
        let last_sent = last_sent.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            if i + 1 == n {
                *last_sent.lock().unwrap() = Some(Instant::now());
            }
            Ok::<_, hyper::Error>(Frame::data(p))
        }
    });
    BodyExt::boxed(StreamBody::new(stream))
}

use futures_util::StreamExt as _;

/// The buffer filter holds a 512 KiB HTTP/2 upload (twice ringway's 256 KiB stream window)
/// until it is complete: the client is credited as ringway collects, and the upstream sees the
/// request only after the last byte. On a route that turns the filter off, the upstream sees
/// the request while the body still arrives. Same for an HTTP/1 client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_holds_the_request_until_complete_on_both_protocols() {
    let epoch = Instant::now();
    let backend = timing_backend(epoch);
    let proxy = Proxy::start(&config(backend.addr, BUFFER_1M));
    let data: Bytes = (0..512 * 1024)
        .map(|i| (i * 7 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let mut h2c = h2(proxy.addr()).await;
    let h1 = client();
    for via_h2 in [false, true] {
        for (path, buffered) in [("/up", true), ("/stream", false)] {
            let last_sent = Arc::new(Mutex::new(None));
            let r = Request::post(format!("http://{}{path}", proxy.addr()))
                .body(slow_body(&data, last_sent.clone()))
                .unwrap();
            let resp = if via_h2 {
                h2c.send_request(r).await.unwrap()
            } else {
                h1.request(r).await.unwrap()
            };
            assert_eq!(resp.status(), 200, "{path} h2: {via_h2}");
            let started: u128 = resp.headers()["x-started-ms"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let got = read_body(resp).await;
            assert!(got == data, "body intact ({path}, h2: {via_h2})");
            let last = last_sent.lock().unwrap().unwrap();
            let last_ms = last.duration_since(epoch).as_millis();
            if buffered {
                assert!(
                    started >= last_ms,
                    "upstream saw the head at {started} ms, before the body ended at {last_ms} ms"
                );
            } else {
                assert!(
                    started + 100 < last_ms,
                    "unbuffered route: head at {started} ms, body ended at {last_ms} ms"
                );
            }
        }
    }
}

fn raw_request(addr: SocketAddr, req: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"too large\n") {
                    break;
                }
            }
        }
    }
    (status_of(&out), String::from_utf8_lossy(&out).into_owned())
}

/// Over the limit: 413 before anything goes upstream, as soon as `content-length` says so, or
/// once a chunked or HTTP/2 body passes the limit; counted in `downstream_rq_too_large`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_answers_413_over_the_limit_without_reaching_the_upstream() {
    let backend = Backend::echo();
    let filters = r#"
[[listeners.http_filters]]
name = "buffer"
max_request_bytes = 1000
"#;
    let proxy = Proxy::start(&config(backend.addr, filters));
    let addr = proxy.addr();

    // Declared too large: answered from the head alone.
    let (status, text) = tokio::task::spawn_blocking(move || {
        raw_request(
            addr,
            b"POST /up HTTP/1.1\r\nhost: a\r\ncontent-length: 5000\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 413, "{text}");

    // Chunked, passing the limit as it arrives.
    let mut chunked =
        b"POST /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'x'; 512]);
        chunked.extend_from_slice(b"\r\n");
    }
    let (status, text) = tokio::task::spawn_blocking(move || raw_request(addr, &chunked))
        .await
        .unwrap();
    assert_eq!(status, 413, "{text}");

    // HTTP/2.
    let mut h2c = h2(addr).await;
    let resp = h2c
        .send_request(req(addr, "/up", Bytes::from(vec![b'y'; 4000])))
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Within the limit: through, whole.
    let resp = h2c
        .send_request(req(addr, "/up", Bytes::from(vec![b'z'; 900])))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(read_body(resp).await.len(), 900);

    assert_eq!(
        backend.request_count(),
        1,
        "only the small request went upstream"
    );
    proxy.eventually("3 counted too large", |p| {
        p.stat("http.main.downstream_rq_too_large") == 3
    });
}

/// `Expect: 100-continue` on a buffered route: ringway answers it, collects, then forwards.
#[test]
fn buffer_answers_expect_100_continue_itself() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(backend.addr, BUFFER_1M));
    let mut s = std::net::TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"POST /up HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{:?}",
        &buf[..n]
    );
    s.write_all(b"ping").unwrap();
    let mut out = Vec::new();
    while !out.ends_with(b"ping") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(status_of(&out), 200);
    assert!(
        !String::from_utf8_lossy(&out)
            .to_ascii_lowercase()
            .contains("x-echo-h-expect")
    );
}

#[test]
fn bad_filter_configs_are_refused_with_their_place() {
    let backend = "127.0.0.1:1".parse().unwrap();
    let cases = [
        (
            "[[listeners.http_filters]]\nname = \"gzip\"\n",
            "unknown variant",
        ),
        (
            "[[listeners.http_filters]]\nname = \"buffer\"\nmax_request_bytes = 0\n",
            "listeners[0].http_filters[0].max_request_bytes",
        ),
        (
            "[[listeners.http_filters]]\nname = \"buffer\"\nmax_request_bytes = 10\nextra = 1\n",
            "extra",
        ),
        (
            "[[listeners.http_filters]]\nname = \"header_mutation\"\nrequest_headers_to_add = [{ name = \"bad name\", value = \"1\" }]\n",
            "listeners[0].http_filters[0].request_headers_to_add[0].name",
        ),
    ];
    assert_refused(backend, &cases);
    let tcp = "[[listeners]]\nname = \"t\"\naddress = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"c\"\n[[listeners.http_filters]]\nname = \"buffer\"\nmax_request_bytes = 10\n[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\"]\n";
    let msg = engine::config::parse_str(tcp, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("listeners[0].http_filters"), "{msg}");
}

/// `fault`: a delay holds the request, then it goes on to the upstream; an abort answers with
/// the configured status without reaching it. Both are counted and flagged in the access log,
/// on HTTP/1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_delays_and_aborts_requests_on_both_protocols() {
    let backend = Backend::echo();
    let log = std::env::temp_dir().join(format!("ringway-fault-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let delay = format!(
        r#"
access_log = {{ path = "{}", format = "json" }}
[[listeners.http_filters]]
name = "fault"
delay = "300ms"
"#,
        log.display()
    );
    let abort = r#"
[[listeners.http_filters]]
name = "fault"
abort_status = 418
"#;
    for (filters, delayed) in [(delay.as_str(), true), (abort, false)] {
        let proxy = Proxy::start(&config(backend.addr, filters));
        let before = backend.request_count();
        let mut h2c = h2(proxy.addr()).await;
        let h1 = client();
        for via_h2 in [false, true] {
            let started = Instant::now();
            let r = req(proxy.addr(), "/x", Bytes::from_static(b"hi"));
            let resp = if via_h2 {
                h2c.send_request(r).await.unwrap()
            } else {
                h1.request(r).await.unwrap()
            };
            let took = started.elapsed();
            if delayed {
                assert_eq!(resp.status(), 200, "h2: {via_h2}");
                assert!(took >= Duration::from_millis(300), "took {took:?}");
                assert_eq!(read_body(resp).await, "hi");
            } else {
                assert_eq!(resp.status(), 418, "h2: {via_h2}");
                assert_eq!(read_body(resp).await, "fault filter abort");
            }
        }
        if delayed {
            assert_eq!(backend.request_count(), before + 2);
            proxy.eventually("2 delays", |p| {
                p.stat("http.main.fault_delays_injected") == 2
            });
            proxy.eventually("2 log lines flagged DI", |_| {
                std::fs::read_to_string(&log)
                    .map(|t| t.matches(r#""response_flags":"DI""#).count() == 2)
                    .unwrap_or(false)
            });
        } else {
            assert_eq!(
                backend.request_count(),
                before,
                "aborts never reach the upstream"
            );
            proxy.eventually("2 aborts", |p| {
                p.stat("http.main.fault_aborts_injected") == 2
            });
        }
    }
    let _ = std::fs::remove_file(&log);
}

#[test]
fn bad_fault_configs_are_refused_with_their_place() {
    let backend = "127.0.0.1:1".parse().unwrap();
    let cases = [
        (
            "[[listeners.http_filters]]\nname = \"fault\"\n",
            "needs `delay`",
        ),
        (
            "[[listeners.http_filters]]\nname = \"fault\"\nabort_status = 503\nabort_percent = 101\n",
            "listeners[0].http_filters[0].abort_percent",
        ),
        (
            "[[listeners.http_filters]]\nname = \"fault\"\nabort_status = 100\n",
            "listeners[0].http_filters[0].abort_status",
        ),
        (
            "[[listeners.http_filters]]\nname = \"fault\"\ndelay = \"soon\"\n",
            "listeners[0].http_filters[0].delay",
        ),
        (
            "[[listeners.http_filters]]\nname = \"fault\"\nresponse_rate_limit_kbps = 0\n",
            "listeners[0].http_filters[0].response_rate_limit_kbps",
        ),
        (
            "[[listeners.http_filters]]\nname = \"fault\"\nresponse_rate_limit_kbps = 8\nresponse_rate_limit_percent = 101\n",
            "listeners[0].http_filters[0].response_rate_limit_percent",
        ),
    ];
    assert_refused(backend, &cases);
}

/// An h2c backend serving every request with `handler` (which cannot fail).
fn h2_backend<F, Fut>(handler: F) -> Backend
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = hyper::Response<Body>> + Send + 'static,
{
    Backend::start_h2(move |req| {
        let h = handler.clone();
        async move { Ok::<_, hyper::Error>(h(req).await) }
    })
}

/// `/down...` answers 503 "upstream down", anything else 200 "fine"; for both backends.
async fn status_by_path(req: Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let down = req.uri().path().starts_with("/down");
    let _ = req.into_body().collect().await;
    if down {
        full(503, "upstream down")
    } else {
        full(200, "fine")
    }
}

/// Listener `main` forwards to an HTTP/1 cluster, listener `h2up` to an HTTP/2 one; both with
/// `filters`.
fn two_upstreams(h1: SocketAddr, h2: SocketAddr, filters: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
{filters}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "h1"

[[listeners]]
name = "h2up"
address = "127.0.0.1:0"
{filters}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "h2"

[[clusters]]
name = "h1"
endpoints = ["{h1}"]

[[clusters]]
name = "h2"
protocol = "http2"
endpoints = ["{h2}"]
"#
    )
}

const CUSTOM_503: &str = r#"
[[listeners.http_filters]]
name = "custom_response"
status_codes = [502, 503]
status = 200
body = "we are on it\n"
[[listeners.http_filters]]
name = "header_mutation"
response_headers_to_add = [{ name = "x-served-by", value = "ringway", append = false }]
"#;

/// Encode headers: `custom_response` sees the upstream's 503 before anything of it goes
/// downstream and answers in its place (the configured status and body, the response header
/// edits applied); other statuses pass. For HTTP/1 and HTTP/2 clients, over HTTP/1 and
/// HTTP/2 upstreams; each replaced request did reach the upstream, whose stats keep its own
/// status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_response_replaces_upstream_statuses_for_every_protocol_pair() {
    let h1_backend = Backend::start(status_by_path);
    let h2_backend = h2_backend(status_by_path);
    let proxy = Proxy::start(&two_upstreams(h1_backend.addr, h2_backend.addr, CUSTOM_503));
    let h1 = client();
    for listener in ["main", "h2up"] {
        let addr = proxy.listener(listener);
        let mut h2c = h2(addr).await;
        for via_h2 in [false, true] {
            for (path, status, text) in [("/down", 200, "we are on it\n"), ("/ok", 200, "fine")] {
                let r = Request::post(format!("http://{addr}{path}"))
                    .body(body(Bytes::from_static(b"payload")))
                    .unwrap();
                let resp = if via_h2 {
                    h2c.send_request(r).await.unwrap()
                } else {
                    h1.request(r).await.unwrap()
                };
                let what = format!("{listener} {path} h2 client: {via_h2}");
                assert_eq!(resp.status(), status, "{what}");
                assert_eq!(resp.headers()["x-served-by"], "ringway", "{what}");
                assert_eq!(read_body(resp).await, text, "{what}");
            }
        }
    }
    assert_eq!(
        h1_backend.request_count(),
        4,
        "every request reached its upstream"
    );
    assert_eq!(h2_backend.request_count(), 4);
    // The upstream's stats keep the status it sent, not the one the client got.
    proxy.eventually("upstream statuses counted", |p| {
        ["h1", "h2"].iter().all(|c| {
            p.stat(&format!("cluster.{c}.upstream_rq_5xx")) == 2
                && p.stat(&format!("cluster.{c}.upstream_rq_2xx")) == 2
        })
    });
}

/// A gRPC-style backend: answers 200 `application/grpc` with the request body, then trailers:
/// `grpc-status: 0`, `x-secret-t`, and each request trailer echoed as `x-echo-t-<name>`.
async fn grpc_echo(req: Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let collected = req.into_body().collect().await.unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    trailers.insert("x-secret-t", "s".parse().unwrap());
    if let Some(t) = collected.trailers() {
        for (name, value) in t {
            let echo: http::HeaderName = format!("x-echo-t-{name}").parse().unwrap();
            trailers.insert(echo, value.clone());
        }
    }
    let frames: Vec<Result<Frame<Bytes>, hyper::Error>> = vec![
        Ok(Frame::data(collected.to_bytes())),
        Ok(Frame::trailers(trailers)),
    ];
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
            frames,
        ))))
        .unwrap()
}

/// Decode and encode trailers, gRPC style over HTTP/2 on both hops: `header_mutation` adds and
/// removes request trailers (the backend echoes what it got) and response trailers (the client
/// sees them), on a streamed body and on one the buffer filter collected first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_mutation_changes_request_and_response_trailers_grpc_style() {
    let backend = h2_backend(grpc_echo);
    let filters = r#"
[[listeners.http_filters]]
name = "buffer"
max_request_bytes = 65536
[[listeners.http_filters]]
name = "header_mutation"
request_trailers_to_add = [{ name = "x-req-t", value = "added" }]
request_trailers_to_remove = ["x-drop"]
response_trailers_to_add = [{ name = "x-resp-t", value = "added" }]
response_trailers_to_remove = ["x-secret-t"]
"#;
    let text = config(backend.addr, filters).replace(
        "name = \"backend\"\n",
        "name = \"backend\"\nprotocol = \"http2\"\n",
    );
    let proxy = Proxy::start(&text);
    let addr = proxy.addr();
    let mut h2c = h2(addr).await;
    // `/stream` turns the buffer filter off: the body streams through the decode phases.
    for path in ["/up", "/stream"] {
        let mut req_trailers = http::HeaderMap::new();
        req_trailers.insert("x-keep", "1".parse().unwrap());
        req_trailers.insert("x-drop", "2".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, hyper::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi"))),
            Ok(Frame::trailers(req_trailers)),
        ];
        let r = Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
                frames,
            ))))
            .unwrap();
        let resp = h2c.send_request(r).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let collected = resp.into_body().collect().await.unwrap();
        let t = collected.trailers().cloned().expect("response trailers");
        assert_eq!(collected.to_bytes(), &b"\0\0\0\0\x02hi"[..], "{path}");
        assert_eq!(t["grpc-status"], "0", "{path}");
        assert_eq!(t["x-resp-t"], "added", "response trailer added ({path})");
        assert!(
            !t.contains_key("x-secret-t"),
            "response trailer removed ({path})"
        );
        assert_eq!(t["x-echo-t-x-keep"], "1", "request trailer kept ({path})");
        assert_eq!(
            t["x-echo-t-x-req-t"], "added",
            "request trailer added ({path})"
        );
        assert!(
            !t.contains_key("x-echo-t-x-drop"),
            "request trailer removed ({path})"
        );
    }
    assert_eq!(backend.request_count(), 2);
}

/// The log phase runs once per exchange: the fault filter counts its delays and aborts there,
/// so three exchanges (HTTP/1, HTTP/2, HTTP/1 again), each delayed and aborted, count three of
/// each, and the counts stay there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_phase_counts_each_exchange_once() {
    let backend = Backend::echo();
    let filters = r#"
[[listeners.http_filters]]
name = "fault"
delay = "10ms"
abort_status = 503
"#;
    let proxy = Proxy::start(&config(backend.addr, filters));
    let addr = proxy.addr();
    let mut h2c = h2(addr).await;
    let h1 = client();
    for via_h2 in [false, true, false] {
        let r = req(addr, "/x", Bytes::from_static(b"hi"));
        let resp = if via_h2 {
            h2c.send_request(r).await.unwrap()
        } else {
            h1.request(r).await.unwrap()
        };
        assert_eq!(resp.status(), 503);
        assert_eq!(read_body(resp).await, "fault filter abort");
    }
    proxy.eventually("3 of each", |p| {
        p.stat("http.main.fault_delays_injected") == 3
            && p.stat("http.main.fault_aborts_injected") == 3
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(proxy.stat("http.main.fault_delays_injected"), 3);
    assert_eq!(proxy.stat("http.main.fault_aborts_injected"), 3);
    assert_eq!(backend.request_count(), 0);
}

/// Encode data with a pause: the fault filter's response rate limit holds each piece of a
/// 64 KiB response body for its share of 64 KiB/s, so the response takes about a second on
/// HTTP/1 and HTTP/2 clients, over HTTP/1 and HTTP/2 upstreams, and arrives whole; counted
/// once per exchange (`fault_response_rl_injected`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rate_limits_response_bodies_for_every_protocol_pair() {
    let data: Bytes = (0..64 * 1024)
        .map(|i| (i * 13 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let (d1, d2) = (data.clone(), data.clone());
    let h1_backend = Backend::start(move |_req| {
        let d = d1.clone();
        async move { full(200, d) }
    });
    let h2_backend = h2_backend(move |_req| {
        let d = d2.clone();
        async move { full(200, d) }
    });
    let filters = r#"
[[listeners.http_filters]]
name = "fault"
response_rate_limit_kbps = 64
"#;
    let proxy = Proxy::start(&two_upstreams(h1_backend.addr, h2_backend.addr, filters));
    let h1 = client();
    for listener in ["main", "h2up"] {
        let addr = proxy.listener(listener);
        let mut h2c = h2(addr).await;
        for via_h2 in [false, true] {
            let started = Instant::now();
            let r = Request::get(format!("http://{addr}/big"))
                .body(body(Bytes::new()))
                .unwrap();
            let resp = if via_h2 {
                h2c.send_request(r).await.unwrap()
            } else {
                h1.request(r).await.unwrap()
            };
            assert_eq!(resp.status(), 200);
            let got = read_body(resp).await;
            let took = started.elapsed();
            let what = format!("{listener} h2 client: {via_h2}");
            assert!(got == data, "body intact ({what})");
            assert!(took >= Duration::from_millis(900), "{what}: took {took:?}");
        }
    }
    proxy.eventually("4 rate limited", |p| {
        p.stat("http.main.fault_response_rl_injected") == 2
            && p.stat("http.h2up.fault_response_rl_injected") == 2
    });
}

/// Route re-resolution: a listener-level `header_mutation` adds `x-canary: 1`, which a route
/// matches on, so the route is resolved again with the change and the request goes to the
/// canary route; a mutation removing the header sends a client's `x-canary: 1` to the main
/// route. On HTTP/1 and HTTP/2 clients. The upstream sees the header it was routed by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_added_by_a_filter_selects_another_route() {
    let backend = Backend::echo();
    let routes = |filters: &str| {
        format!(
            r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
{filters}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    headers = [ {{ name = "x-canary", exact = "1" }} ]
    cluster = "backend"
    response_headers_to_add = [{{ name = "x-route", value = "canary" }}]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
    response_headers_to_add = [{{ name = "x-route", value = "main" }}]

[[clusters]]
name = "backend"
endpoints = ["{}"]
"#,
            backend.addr
        )
    };
    let add = r#"
[[listeners.http_filters]]
name = "header_mutation"
request_headers_to_add = [{ name = "x-canary", value = "1", append = false }]
"#;
    let remove = r#"
[[listeners.http_filters]]
name = "header_mutation"
request_headers_to_remove = ["x-canary"]
"#;
    for (filters, client_sends, want, upstream_sees) in [
        (add, None, "canary", Some("1")),
        (add, Some("0"), "canary", Some("1")),
        (remove, Some("1"), "main", None),
        ("", Some("1"), "canary", Some("1")),
    ] {
        let proxy = Proxy::start(&routes(filters));
        let addr = proxy.addr();
        let mut h2c = h2(addr).await;
        let h1 = client();
        for via_h2 in [false, true] {
            let mut r = Request::get(format!("http://{addr}/x"));
            if let Some(v) = client_sends {
                r = r.header("x-canary", v);
            }
            let r = r.body(body(Bytes::new())).unwrap();
            let resp = if via_h2 {
                h2c.send_request(r).await.unwrap()
            } else {
                h1.request(r).await.unwrap()
            };
            let what = format!("{filters} sends {client_sends:?} h2: {via_h2}");
            assert_eq!(resp.status(), 200, "{what}");
            assert_eq!(resp.headers()["x-route"], want, "{what}");
            assert_eq!(
                resp.headers()
                    .get("x-echo-h-x-canary")
                    .map(|v| v.to_str().unwrap()),
                upstream_sees,
                "{what}"
            );
        }
    }
}

#[test]
fn bad_custom_response_and_trailer_configs_are_refused_with_their_place() {
    let backend = "127.0.0.1:1".parse().unwrap();
    let cases = [
        (
            "[[listeners.http_filters]]\nname = \"custom_response\"\nstatus_codes = []\n",
            "listeners[0].http_filters[0].status_codes",
        ),
        (
            "[[listeners.http_filters]]\nname = \"custom_response\"\nstatus_codes = [503, 101]\n",
            "listeners[0].http_filters[0].status_codes[1]",
        ),
        (
            "[[listeners.http_filters]]\nname = \"custom_response\"\nstatus_codes = [503]\nstatus = 700\n",
            "listeners[0].http_filters[0].status",
        ),
        (
            "[[listeners.http_filters]]\nname = \"header_mutation\"\nresponse_trailers_to_add = [{ name = \"a b\", value = \"1\" }]\n",
            "listeners[0].http_filters[0].response_trailers_to_add[0].name",
        ),
    ];
    assert_refused(backend, &cases);
}
