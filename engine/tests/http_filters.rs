//! HTTP filters configured through TOML (`[[listeners.http_filters]]`): `header_mutation` and
//! `buffer`, on HTTP/1 and HTTP/2 clients, against real hyper backends and clients.

mod support;

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
    for (filters, want) in cases {
        let text = config(backend, filters);
        let err = engine::config::parse_str(&text, "f.toml").expect_err(filters);
        let msg = err.to_string();
        assert!(msg.contains(want), "{msg}");
        assert!(msg.contains("f.toml:"), "located: {msg}");
    }
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
    ];
    for (filters, want) in cases {
        let text = config(backend, filters);
        let msg = engine::config::parse_str(&text, "f.toml")
            .expect_err(filters)
            .to_string();
        assert!(msg.contains(want), "{msg}");
        assert!(msg.contains("f.toml:"), "located: {msg}");
    }
}
