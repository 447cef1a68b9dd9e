//! HTTP/2 downstream (prior-knowledge h2c) end to end: the h2 crate's client (through hyper)
//! -> ringway -> HTTP/1.1 backends, on loopback.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;

/// An h2c connection with prior knowledge. `window`: the client's stream receive window.
async fn h2(addr: SocketAddr, window: u32) -> SendRequest<Body> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(window)
        .initial_connection_window_size(window)
        .handshake(TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

/// Stats counted when a request ends may trail the response the client already has.
fn settled(proxy: &Proxy, stat: &str, want: i64) {
    proxy.eventually(&format!("{stat} == {want}"), |p| p.stat(stat) == want);
}

fn get(addr: SocketAddr, path: &str) -> Request<Body> {
    Request::get(format!("http://{addr}{path}"))
        .body(body(Bytes::new()))
        .unwrap()
}

const DIRECT: &str = r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    path = "/hello"
    direct_response = { status = 200, body = "hi over h2" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_post_are_proxied_to_an_http1_backend() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;

    let resp = h2
        .send_request(get(proxy.addr(), "/a/b?x=1"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let h = resp.headers();
    assert_eq!(h["x-echo-method"], "GET");
    assert_eq!(h["x-echo-uri"], "/a/b?x=1");
    assert_eq!(
        h["x-echo-h-host"],
        proxy.addr().to_string(),
        ":authority is the Host"
    );
    assert_eq!(h["x-echo-h-x-forwarded-for"], "127.0.0.1");
    assert!(h.contains_key("x-echo-h-x-request-id"));
    assert!(
        !h.contains_key("connection"),
        "no connection-specific fields over h2"
    );

    let req = Request::post(format!("http://{}/up", proxy.addr()))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(body("ping"))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-echo-method"], "POST");
    assert_eq!(
        resp.headers()["x-echo-h-cookie"],
        "a=1; b=2",
        "cookie crumbs joined for HTTP/1.1"
    );
    assert_eq!(read_body(resp).await, "ping");

    assert_eq!(proxy.stat("http.main.downstream_cx_http2_total"), 1);
    assert_eq!(proxy.stat("http.main.downstream_rq_http2_total"), 2);
    settled(&proxy, "http.main.downstream_rq_2xx", 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_replies_and_missing_routes_are_answered_on_the_stream() {
    let proxy = Proxy::start(DIRECT);
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let resp = h2.send_request(get(proxy.addr(), "/hello")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "10");
    assert_eq!(read_body(resp).await, "hi over h2");

    let resp = h2.send_request(get(proxy.addr(), "/nope")).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(read_body(resp).await, "no route\n");

    let head = Request::head(format!("http://{}/hello", proxy.addr()))
        .body(body(Bytes::new()))
        .unwrap();
    let resp = h2.send_request(head).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(read_body(resp).await, "", "HEAD has no body");
    // The connection is still good after all of it.
    let resp = h2.send_request(get(proxy.addr(), "/hello")).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_streams_share_one_connection() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let h2 = h2(proxy.addr(), 65_535).await;
    let addr = proxy.addr();
    let mut tasks = Vec::new();
    // More than the 100 concurrent streams ringway allows: the client queues the rest.
    for i in 0..300 {
        let mut h2 = h2.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::post(format!("http://{addr}/s/{i}"))
                .body(body(format!("stream {i}")))
                .unwrap();
            let resp = h2.send_request(req).await.expect("response");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["x-echo-uri"], format!("/s/{i}"));
            assert_eq!(read_body(resp).await, format!("stream {i}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(proxy.stat("http.main.downstream_cx_http2_total"), 1);
    assert_eq!(proxy.stat("http.main.downstream_rq_http2_total"), 300);
}

/// 16 MiB each way through a 64 KiB client window: ringway's sends wait for WINDOW_UPDATE,
/// and its own window only reopens as the upload is written upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_flow_both_ways_under_flow_control() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    const LEN: usize = 16 << 20;
    let data: Bytes = (0..LEN)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    // Sent in pieces, without content-length: the upstream request is chunked.
    let pieces: Vec<Result<Frame<Bytes>, hyper::Error>> = data
        .chunks(100_000)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let stream = futures_util::stream::iter(pieces);
    let req = Request::post(format!("http://{}/big", proxy.addr()))
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-echo-h-transfer-encoding"], "chunked");
    let got = read_body(resp).await;
    assert_eq!(got.len(), LEN);
    assert!(got == data, "body corrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailers_pass_both_ways() {
    // The backend answers with the request's trailers echoed back as response trailers.
    let backend = Backend::start(|req: Request<hyper::body::Incoming>| async move {
        let te = req.headers().get("te").map(|v| v.as_bytes().to_vec());
        let collected = req.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let sum = trailers
            .get("x-sum")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = collected.to_bytes();
        let mut out = hyper::HeaderMap::new();
        out.insert("x-sum-back", sum.parse().unwrap());
        out.insert(
            "x-te",
            String::from_utf8_lossy(&te.unwrap_or_default())
                .parse()
                .unwrap(),
        );
        let frames: Vec<Result<Frame<Bytes>, hyper::Error>> =
            vec![Ok(Frame::data(body)), Ok(Frame::trailers(out))];
        hyper::Response::builder()
            .status(200)
            // hyper sends only the trailer fields the head announces.
            .header("trailer", "x-sum-back, x-te")
            .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
                frames,
            ))))
            .unwrap()
    });
    let proxy = Proxy::start(&one_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("x-sum", "42".parse().unwrap());
    let frames: Vec<Result<Frame<Bytes>, hyper::Error>> = vec![
        Ok(Frame::data(Bytes::from_static(b"payload"))),
        Ok(Frame::trailers(trailers)),
    ];
    let req = Request::post(format!("http://{}/t", proxy.addr()))
        .header("te", "trailers")
        .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
            frames,
        ))))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("response trailers");
    assert_eq!(
        trailers["x-sum-back"], "42",
        "request trailers reached the backend"
    );
    assert_eq!(trailers["x-te"], "trailers", "TE: trailers is forwarded");
    assert_eq!(collected.to_bytes(), "payload");
}

/// A raw HTTP/1 backend that accepts one connection, reads a request head, and reports
/// whether the connection was then closed by the proxy (read returns 0) within 20 s.
fn closing_backend() -> (SocketAddr, std::sync::mpsc::Receiver<bool>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        if read_head(&mut s, &mut Vec::new()).is_none() {
            return;
        }
        let mut b = [0u8; 1024];
        let _ = tx.send(false);
        let closed = matches!(s.read(&mut b), Ok(0));
        let _ = tx.send(closed);
        let _ = s.write_all(b"");
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_stream_closes_its_upstream_request() {
    let (backend, seen) = closing_backend();
    let proxy = Proxy::start(&one_route(backend));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let pending = tokio::spawn(async move {
        let _ = h2.send_request(get(backend, "/hang")).await;
    });
    let seen = Arc::new(std::sync::Mutex::new(seen));
    let s = seen.clone();
    let arrived = tokio::task::spawn_blocking(move || {
        s.lock().unwrap().recv_timeout(Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert_eq!(arrived, Ok(false), "the request reached the backend");
    // Dropping the response future makes the client send RST_STREAM(CANCEL).
    pending.abort();
    let s = seen.clone();
    let closed = tokio::task::spawn_blocking(move || {
        s.lock().unwrap().recv_timeout(Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert_eq!(closed, Ok(true), "the upstream request was abandoned");
    proxy.eventually("the reset is counted", |p| {
        p.stat("http.main.http2_rx_reset") == 1 && p.stat("http.main.downstream_rq_active") == 0
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_sends_goaway_and_finishes_the_stream_in_flight() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let backend = Backend::start(move |_req| {
        let g = g.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(20), g.notified()).await;
            full(200, "finished while draining")
        }
    });
    let proxy = Proxy::start(&one_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let addr = proxy.addr();
    let mut first = h2.clone();
    let in_flight = tokio::spawn(async move {
        let resp = first
            .send_request(get(addr, "/slow"))
            .await
            .expect("response");
        (resp.status(), read_body(resp).await)
    });
    proxy.eventually("the request reaches the backend", |_| {
        backend.request_count() == 1
    });
    proxy.handle().drain();
    proxy.eventually("GOAWAY sent", |p| {
        p.stat("http.main.http2_goaway_sent") == 1
    });
    gate.notify_one();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "finished while draining");
    // After GOAWAY the client opens no new stream on this connection.
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        h2.ready().await?;
        h2.send_request(get(addr, "/late")).await
    })
    .await
    .expect("bounded");
    assert!(r.is_err(), "a stream after GOAWAY must not be served");
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 upstreams

async fn echo_h2(
    req: Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Body>, hyper::Error> {
    let mut resp = hyper::Response::builder()
        .status(200)
        .header("x-echo-method", req.method().as_str())
        .header("x-echo-uri", req.uri().path_and_query().unwrap().as_str())
        .header("x-echo-version", format!("{:?}", req.version()));
    for (name, value) in req.headers() {
        resp = resp.header(format!("x-echo-h-{name}"), value);
    }
    let collected = req.into_body().collect().await?;
    let trailers = collected.trailers().cloned();
    let mut frames: Vec<Result<Frame<Bytes>, hyper::Error>> =
        vec![Ok(Frame::data(collected.to_bytes()))];
    if let Some(t) = trailers {
        frames.push(Ok(Frame::trailers(t)));
    }
    let body = BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)));
    Ok(resp.body(body).unwrap())
}

/// An h2c (prior knowledge) backend echoing like [`Backend::echo`] (request trailers come back
/// as response trailers).
fn h2_backend() -> Backend {
    Backend::start_h2(echo_h2)
}

fn h2_route(backend: SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "h2"
    response_headers_to_add = [{{ name = "x-route", value = "h2" }}]

[[clusters]]
name = "h2"
protocol = "http2"
endpoints = ["{backend}"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_downstream_to_h2_upstream_multiplexes_streams() {
    let backend = h2_backend();
    let proxy = Proxy::start(&h2_route(backend.addr));
    let h2 = h2(proxy.addr(), 65_535).await;
    let addr = proxy.addr();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut h2 = h2.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::post(format!("http://{addr}/m/{i}"))
                .header("x-n", i.to_string())
                .body(body(format!("body {i}")))
                .unwrap();
            let resp = h2.send_request(req).await.expect("response");
            assert_eq!(resp.status(), 200);
            let h = resp.headers();
            assert_eq!(h["x-echo-version"], "HTTP/2.0");
            assert_eq!(h["x-echo-uri"], format!("/m/{i}"));
            assert_eq!(h["x-echo-h-x-n"], i.to_string());
            assert_eq!(h["x-echo-h-x-forwarded-for"], "127.0.0.1");
            assert_eq!(h["x-route"], "h2");
            assert_eq!(read_body(resp).await, format!("body {i}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let upstream = backend
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);
    // One connection per worker carries the streams (a handful at most while they start).
    assert!(
        (1..=8).contains(&upstream),
        "{upstream} upstream connections for 200 streams"
    );
    assert_eq!(proxy.stat("cluster.h2.upstream_rq_total"), 200);
    settled(&proxy, "cluster.h2.upstream_rq_2xx", 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_and_h2_clients_reach_an_h2_upstream_with_bodies_and_trailers() {
    let backend = h2_backend();
    let proxy = Proxy::start(&h2_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    const LEN: usize = 16 << 20;
    let data: Bytes = (0..LEN)
        .map(|i| (i * 7 % 253) as u8)
        .collect::<Vec<_>>()
        .into();
    let mut pieces: Vec<Result<Frame<Bytes>, hyper::Error>> = data
        .chunks(70_000)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("x-sum", "99".parse().unwrap());
    pieces.push(Ok(Frame::trailers(trailers)));
    let req = Request::post(format!("http://{}/big", proxy.addr()))
        .header("te", "trailers")
        .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
            pieces,
        ))))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-echo-h-te"], "trailers");
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["x-sum"], "99");
    let got = collected.to_bytes();
    assert_eq!(got.len(), LEN);
    assert!(got == data, "body corrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_upstream_that_is_down_is_a_502_with_its_flag() {
    let dead = closed_port();
    let proxy = Proxy::start(&h2_route(dead));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let resp = h2.send_request(get(proxy.addr(), "/x")).await.unwrap();
    assert_eq!(resp.status(), 502, "connect failure (UF)");
    assert_eq!(proxy.stat("cluster.h2.upstream_cx_connect_fail"), 1);
}

// ---------------------------------------------------------------------------------------------
// gRPC awareness

fn grpc_call(addr: SocketAddr, path: &str, timeout: Option<&str>) -> Request<Body> {
    let mut req = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = timeout {
        req = req.header("grpc-timeout", t);
    }
    // One empty length-prefixed message.
    req.body(body(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_errors_for_grpc_calls_are_trailers_only_grpc_statuses() {
    let dead = closed_port();
    let proxy = Proxy::start(&format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/pkg.Svc/"
    cluster = "down"

[[clusters]]
name = "down"
protocol = "http2"
endpoints = ["{dead}"]
"#
    ));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    for (path, code, message) in [
        ("/pkg.Svc/Call", "14", "upstream connect error"),
        ("/other.Svc/Call", "12", "no route"),
    ] {
        let resp = h2
            .send_request(grpc_call(proxy.addr(), path, None))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}: gRPC errors travel in a 200");
        let h = resp.headers().clone();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["grpc-status"], code, "{path}");
        assert_eq!(h["grpc-message"], message, "{path}");
        assert_eq!(read_body(resp).await, "", "trailers-only");
    }
    settled(&proxy, "http.main.grpc_request_total", 2);
    settled(&proxy, "http.main.grpc_status_unavailable", 1);
    settled(&proxy, "http.main.grpc_status_unimplemented", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_bounds_the_wait_for_the_upstream() {
    // An HTTP/1 backend that never answers within the test.
    let backend = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        full(200, "late")
    });
    let proxy = Proxy::start(&one_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let resp = h2
        .send_request(grpc_call(proxy.addr(), "/pkg.Svc/Slow", Some("300m")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["grpc-status"], "4", "DEADLINE_EXCEEDED");
    settled(&proxy, "http.main.grpc_status_deadline_exceeded", 1);
    assert_eq!(proxy.stat("cluster.backend.upstream_rq_timeout"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_clients_reach_an_h2_upstream() {
    let backend = h2_backend();
    let proxy = Proxy::start(&format!(
        "workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n{}",
        h2_route(backend.addr)
    ));
    let client = client();
    let resp = client
        .get(format!("http://{}/one?q=1", proxy.addr()).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), hyper::Version::HTTP_11);
    let h = resp.headers();
    assert_eq!(
        h["x-echo-version"], "HTTP/2.0",
        "the upstream hop is HTTP/2"
    );
    assert_eq!(h["x-echo-uri"], "/one?q=1");
    assert_eq!(h["x-route"], "h2");
    assert!(
        h.contains_key("content-length") || h.contains_key("transfer-encoding"),
        "HTTP/1 framing for the client: {h:?}"
    );
    assert_eq!(read_body(resp).await, "");

    // A 4 MiB chunked upload with trailers, echoed back chunked with the trailers.
    const LEN: usize = 4 << 20;
    let data: Bytes = (0..LEN)
        .map(|i| (i * 13 % 241) as u8)
        .collect::<Vec<_>>()
        .into();
    let mut pieces: Vec<Result<Frame<Bytes>, hyper::Error>> = data
        .chunks(50_000)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("x-sum", "7".parse().unwrap());
    pieces.push(Ok(Frame::trailers(trailers)));
    let req = Request::post(format!("http://{}/up", proxy.addr()))
        .header("te", "trailers")
        // hyper sends only the trailer fields the head announces.
        .header("trailer", "x-sum")
        .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
            pieces,
        ))))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    let collected = resp.into_body().collect().await.unwrap();
    assert_eq!(
        collected.trailers().map(|t| t["x-sum"].clone()),
        Some("7".parse().unwrap()),
        "trailers relayed to the HTTP/1 client"
    );
    let got = collected.to_bytes();
    assert_eq!(got.len(), LEN);
    assert!(got == data, "body corrupted");

    let resp = client
        .get(format!("http://{}/again", proxy.addr()).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // One worker's pool: one upstream connection carried everything (hyper's client may use
    // a second downstream connection while the first finishes its body).
    proxy.eventually("three responses counted", |p| {
        p.stat("http.main.downstream_rq_2xx") == 3
    });
    assert_eq!(
        backend
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_resets_its_h2_upstream_stream() {
    // The handler never answers; when the upstream stream is reset, hyper drops it.
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
    let dropped_tx = Arc::new(std::sync::Mutex::new(dropped_tx));
    let backend = Backend::start_h2(move |_req| {
        let tx = dropped_tx.clone();
        async move {
            struct Guard(Arc<std::sync::Mutex<std::sync::mpsc::Sender<()>>>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    let _ = self.0.lock().unwrap().send(());
                }
            }
            let _guard = Guard(tx);
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(full(200, "late"))
        }
    });
    let proxy = Proxy::start(&h2_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let addr = proxy.addr();
    let pending = tokio::spawn(async move {
        let _ = h2.send_request(get(addr, "/hang")).await;
    });
    proxy.eventually("the stream is open upstream", |p| {
        p.stat("cluster.h2.upstream_rq_active") == 1
    });
    pending.abort();
    let dropped =
        tokio::task::spawn_blocking(move || dropped_rx.recv_timeout(Duration::from_secs(20)))
            .await
            .unwrap();
    assert_eq!(dropped, Ok(()), "the upstream stream was reset");
    proxy.eventually("nothing left in flight", |p| {
        p.stat("cluster.h2.upstream_rq_active") == 0
            && p.stat("http.main.downstream_rq_active") == 0
            && p.stat("cluster.h2.upstream_rq_cancelled") == 1
    });
    // The upstream connection survives a stream reset.
    assert_eq!(
        backend
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

/// An upstream that answers before reading the request body ends the stream with
/// RST_STREAM(NO_ERROR) after its response; the response must still reach the client
/// (RFC 9113 8.1), whichever of the two ringway processes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_then_rst_no_error_still_reaches_the_client() {
    let backend = Backend::start_h2(|_req| async { Ok(full(413, "too big, did not read it")) });
    let proxy = Proxy::start(&h2_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let client = client();
    for i in 0..20 {
        let big = Bytes::from(vec![b'x'; 1 << 20]);
        let req = Request::post(format!("http://{}/upload/{i}", proxy.addr()))
            .body(body(big.clone()))
            .unwrap();
        let resp = h2.send_request(req).await.expect("h2 response");
        assert_eq!(resp.status(), 413, "h2 client, round {i}");
        assert_eq!(read_body(resp).await, "too big, did not read it");
        let req = Request::post(format!("http://{}/upload/{i}", proxy.addr()))
            .body(body(big))
            .unwrap();
        let resp = client.request(req).await.expect("h1 response");
        assert_eq!(resp.status(), 413, "h1 client, round {i}");
        assert_eq!(read_body(resp).await, "too big, did not read it");
    }
}

/// The route timeout (100 ms) always fires before the first PING is even sent (300 ms), and a
/// live upstream has 2 s to answer each PING, so neither half races on a loaded machine.
fn keepalive_route(backend: SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "h2"
    timeout = "100ms"

[[clusters]]
name = "h2"
protocol = "http2"
endpoints = ["{backend}"]
http2_keepalive_interval = "300ms"
http2_keepalive_timeout = "2s"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_keepalive_pings_keep_a_live_upstream_and_drop_a_dead_one() {
    // A live upstream answers the PINGs: the idle connection stays and is reused.
    let backend = h2_backend();
    let proxy = Proxy::start(&keepalive_route(backend.addr));
    let mut h2 = h2(proxy.addr(), 65_535).await;
    let resp = h2.send_request(get(proxy.addr(), "/a")).await.unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resp = h2.send_request(get(proxy.addr(), "/b")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(proxy.stat("cluster.h2.upstream_cx_keepalive_timeout"), 0);
    assert_eq!(
        backend
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    drop(proxy);

    // A dead one: it took the HTTP/2 handshake, then never says anything again.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap();
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        // Our SETTINGS and the ack of the client's.
        s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0])
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    let _ = closed_tx.send(true);
                    return;
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = closed_tx.send(false);
                    return;
                }
            }
        }
    });
    let proxy = Proxy::start(&keepalive_route(dead));
    let mut h2 = self::h2(proxy.addr(), 65_535).await;
    let resp = h2.send_request(get(proxy.addr(), "/x")).await.unwrap();
    assert_eq!(resp.status(), 504, "nothing answers the request");
    let closed =
        tokio::task::spawn_blocking(move || closed_rx.recv_timeout(Duration::from_secs(20)))
            .await
            .unwrap();
    assert_eq!(
        closed,
        Ok(true),
        "the unanswered PING closed the connection"
    );
    proxy.eventually("counted", |p| {
        p.stat("cluster.h2.upstream_cx_keepalive_timeout") == 1
    });
}

/// The upstream request as text: `:authority`, `:path`, then every field `name: value`
/// sorted, for comparing what two clients' requests became.
async fn fields_h2(
    req: Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Body>, hyper::Error> {
    let mut lines: Vec<String> = req
        .headers()
        .iter()
        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("<binary>")))
        .collect();
    lines.sort();
    let uri = req.uri();
    let text = format!(
        ":authority: {}\n:path: {}\n{}\n",
        uri.authority().map(|a| a.as_str()).unwrap_or("-"),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("-"),
        lines.join("\n")
    );
    Ok(hyper::Response::new(body(text)))
}

/// One rewrite serves both upstream codecs and both client protocols: an HTTP/1 client and an
/// HTTP/2 client sending the same request make the same HTTP/2 upstream request (forwarding
/// fields, Via, route header changes, a prefix rewrite keeping the query, connection-specific
/// fields dropped, names lowercased), and an HTTP/2 client's cookie crumbs arrive joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_client_protocols_make_the_same_h2_upstream_request() {
    let backend = Backend::start_h2(fields_h2);
    let proxy = Proxy::start(&format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [listeners.http]
  use_forwarded_headers = true
  via = "edge"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/old/"
    prefix_rewrite = "/new/"
    cluster = "h2"
    request_headers_to_add = [{{ name = "x-added", value = "yes" }}]
    request_headers_to_remove = ["x-secret"]

[[clusters]]
name = "h2"
protocol = "http2"
endpoints = ["{}"]
"#,
        backend.addr
    ));
    let addr = proxy.addr();
    let request = || {
        Request::get(format!("http://{addr}/old/a?q=1&r=2"))
            .header("X-Forwarded-For", "10.0.0.9")
            .header("X-Secret", "hidden")
            .header("X-Keep", "kept")
            .header("X-Request-Id", "id-1")
            .header("te", "trailers")
            .body(body(Bytes::new()))
            .unwrap()
    };
    let mut h1_req = request();
    h1_req
        .headers_mut()
        .insert("connection", "x-hop".parse().unwrap());
    h1_req
        .headers_mut()
        .insert("x-hop", "dropped".parse().unwrap());
    let resp = client().request(h1_req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let from_h1 = read_body(resp).await;
    let mut h2 = h2(addr, 65_535).await;
    let resp = h2.send_request(request()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let from_h2 = read_body(resp).await;
    let want = format!(
        ":authority: {addr}\n:path: /new/a?q=1&r=2\n\
         te: trailers\nvia: 1.1 edge\nx-added: yes\nx-forwarded-for: 10.0.0.9, 127.0.0.1\n\
         x-forwarded-proto: http\nx-keep: kept\nx-request-id: id-1\n"
    );
    assert_eq!(String::from_utf8_lossy(&from_h1), want, "HTTP/1 client");
    assert_eq!(String::from_utf8_lossy(&from_h2), want, "HTTP/2 client");

    // RFC 9113 8.2.3: an HTTP/2 client's cookie crumbs are one field again upstream.
    let mut req = request();
    req.headers_mut().append("cookie", "a=1".parse().unwrap());
    req.headers_mut().append("cookie", "b=2".parse().unwrap());
    let resp = h2.send_request(req).await.unwrap();
    let got = String::from_utf8_lossy(&read_body(resp).await).into_owned();
    assert!(got.contains("\ncookie: a=1; b=2\n"), "{got}");
}

/// An HTTP/2 request is held to the same head limits as an HTTP/1 one (RFC 9112 3 and RFC 6585
/// 5, measured on the equivalent HTTP/1.1 head): a path longer than the request line allows is
/// 414, more fields than allowed 431, both answered on the stream and counted, and the
/// connection goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_meet_the_http1_head_limits() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let addr = proxy.addr();
    let mut h2 = h2(addr, 65_535).await;

    let long = format!("/{}", "a".repeat(9000));
    let resp = h2.send_request(get(addr, &long)).await.unwrap();
    assert_eq!(resp.status(), 414);

    let mut many = get(addr, "/many");
    for i in 0..101 {
        many.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
            "v".parse().unwrap(),
        );
    }
    let resp = h2.send_request(many).await.unwrap();
    assert_eq!(resp.status(), 431);

    let resp = h2.send_request(get(addr, "/fine")).await.unwrap();
    assert_eq!(resp.status(), 200, "the connection still serves");
    settled(&proxy, "http.main.downstream_rq_too_large", 2);
    settled(&proxy, "http.main.downstream_rq_4xx", 2);
}

/// The access log of HTTP/2 requests: method and path from the request, protocol `HTTP/2`;
/// a refused request (its head could not be built) still logs what the client sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_are_logged_with_their_method_and_path() {
    let backend = Backend::echo();
    let log = std::env::temp_dir().join(format!("ringway-h2log-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let config = one_route(backend.addr).replacen(
        "address = \"127.0.0.1:0\"\n",
        &format!(
            "address = \"127.0.0.1:0\"\naccess_log = {{ path = \"{}\", format = \"json\" }}\n",
            log.display()
        ),
        1,
    );
    let proxy = Proxy::start(&config);
    let addr = proxy.addr();
    let mut h2 = h2(addr, 65_535).await;
    let resp = h2.send_request(get(addr, "/a?b=1")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let long = format!("/{}", "l".repeat(9000));
    let resp = h2.send_request(get(addr, &long)).await.unwrap();
    assert_eq!(resp.status(), 414);

    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    proxy.eventually("two log lines", |_| lines().len() == 2);
    let entries = lines();
    let by_path = |p: &str| {
        entries
            .iter()
            .find(|e| e["path"] == p)
            .unwrap_or_else(|| panic!("no line for {p}: {entries:?}"))
    };
    let ok = by_path("/a?b=1");
    assert_eq!(ok["method"], "GET", "{ok}");
    assert_eq!(ok["protocol"], "HTTP/2", "{ok}");
    assert_eq!(ok["response_code"], 200, "{ok}");
    let refused = by_path(&long);
    assert_eq!(refused["method"], "GET", "{refused}");
    assert_eq!(refused["response_code"], 414, "{refused}");
    assert_eq!(refused["response_flags"], "DPE", "{refused}");
    let _ = std::fs::remove_file(&log);
}
