//! The timeouts of a request in progress, each against an upstream or a client that stalls on
//! purpose: the route `timeout` over the whole response (not only its head), the stream idle
//! timeout (the listener's `stream_idle_timeout`, a route's `idle_timeout`) both ways, also
//! against a client that stops reading (HTTP/1 copied and spliced, an HTTP/2 stream without
//! window, an HTTP/2 connection that reads nothing and offered a 2 GiB window), the
//! listener's `request_timeout` and `max_stream_duration`, and `grpc-timeout` after the
//! response head went out (trailers `grpc-status: 4`). Each fires with its flag and stat; a
//! response that keeps moving within its limits is not cut early.
//! docs/config.md "[listeners.http]", "[[listeners.virtual_hosts.routes]]", "HTTP/2 and gRPC
//! behaviour".

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use support::h2raw::{H2, setting};
use support::*;

/// An upstream that reads one request head and then runs `write` on the connection.
fn upstream(write: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> SocketAddr {
    tcp_backend(move |mut c| {
        if read_head(&mut c, &mut Vec::new()).is_some() {
            write(&mut c);
        }
    })
}

/// One listener with `http` options, one route with `route` options, to `backend`; a JSON
/// access log.
fn config(backend: SocketAddr, http: &str, route: &str, log: &TempLog) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
access_log = {{ path = "{}", format = "json" }}
  [listeners.http]
{http}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "c"
{route}

[[clusters]]
name = "c"
endpoints = ["{backend}"]
"#,
        log.path()
    )
}

/// Send `req`, read until the proxy closes (at most 5 s); (bytes, time it took).
fn exchange(addr: SocketAddr, req: &[u8]) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let resp = raw_exchange(addr, req);
    (resp, t0.elapsed())
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n";

fn flags(proxy: &Proxy, log: &TempLog) -> String {
    let line = &log.wait_lines(proxy, 1)[0];
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["response_flags"].as_str().unwrap().to_owned()
}

#[test]
fn the_route_timeout_bounds_the_whole_response_not_only_its_head() {
    // The head and part of the body, then nothing (the stream idle timeout is 5 minutes).
    let up = upstream(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
        std::thread::sleep(Duration::from_secs(4));
    });
    let log = TempLog::new("timeouts");
    let proxy = Proxy::start(&config(up, "", "    timeout = \"500ms\"", &log));
    let (resp, took) = exchange(proxy.addr(), GET);
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("0123456789"),
        "cut short after what arrived: {text}"
    );
    assert!(
        took < Duration::from_secs(3),
        "not the upstream's close: {took:?}"
    );
    assert_eq!(flags(&proxy, &log), "UT");
    assert_eq!(proxy.stat("cluster.c.upstream_rq_timeout"), 1);
    assert_eq!(proxy.stat("http.main.downstream_rq_tx_reset"), 1);
}

#[test]
fn a_routes_idle_timeout_ends_a_stalled_response() {
    let up = upstream(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nab");
        std::thread::sleep(Duration::from_secs(4));
    });
    let log = TempLog::new("timeouts");
    let route = "    timeout = \"10s\"\n    idle_timeout = \"300ms\"";
    let proxy = Proxy::start(&config(up, "", route, &log));
    let (resp, took) = exchange(proxy.addr(), GET);
    assert!(String::from_utf8_lossy(&resp).ends_with("ab"));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(flags(&proxy, &log), "SI");
    assert_eq!(proxy.stat("http.main.downstream_rq_idle_timeout"), 1);
    assert_eq!(
        proxy.stat("cluster.c.upstream_rq_timeout"),
        0,
        "not the route timeout"
    );
}

#[test]
fn a_response_that_keeps_moving_is_not_cut_by_the_idle_timeout() {
    // Ten pieces 100 ms apart: a second in all, never 300 ms without a byte.
    let up = upstream(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n");
        for i in 0..10u8 {
            std::thread::sleep(Duration::from_millis(100));
            if c.write_all(&[b'0' + i]).is_err() {
                return;
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    });
    let log = TempLog::new("timeouts");
    let http = "  stream_idle_timeout = \"300ms\"";
    let proxy = Proxy::start(&config(up, http, "    timeout = \"5s\"", &log));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(GET).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while !got.ends_with(b"0123456789") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    assert!(
        got.ends_with(b"0123456789"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(flags(&proxy, &log), "-");
    assert_eq!(proxy.stat("http.main.downstream_rq_idle_timeout"), 0);
}

/// Read what the proxy wrote until the connection ends (EOF or a reset), at most 5 s of
/// waiting for each read: the bytes read.
fn read_to_end_of_connection(s: &mut TcpStream) -> usize {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = vec![0u8; 256 * 1024];
    let mut got = 0usize;
    loop {
        match s.read(&mut b) {
            Ok(0) => return got,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("no end after {got} bytes: {e}"),
        }
    }
}

/// A client that sends GET and then reads nothing: the response fills its receive window and
/// the proxy's send buffer, and each write waits. The stream idle timeout ends the response
/// (`SI`, `downstream_rq_idle_timeout`), both connections close, and the client that reads
/// again finds the end of the connection; with the route timeout off, nothing else would.
fn a_client_that_stops_reading_is_cut_at_the_stream_idle_timeout(chunked: bool) {
    let (tx, closed) = std::sync::mpsc::channel();
    let up = endless_backend(chunked, tx);
    let log = TempLog::new("timeouts");
    let http = "  stream_idle_timeout = \"400ms\"";
    let proxy = Proxy::start(&config(up, http, "    timeout = \"0s\"", &log));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.write_all(GET).unwrap();
    let t0 = Instant::now();
    let by_proxy = closed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(by_proxy, "the proxy closed the upstream connection");
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t0.elapsed()
    );
    // What the proxy had written is there, then the end (EOF or a reset), not a wait.
    let got = read_to_end_of_connection(&mut s);
    assert!(got > 0 && got < 1 << 30, "{got}");
    assert_eq!(flags(&proxy, &log), "SI");
    assert_eq!(proxy.stat("http.main.downstream_rq_idle_timeout"), 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_timeout"), 0);
    let spliced = proxy.stat("http.main.splice_rs_total");
    assert_eq!(
        spliced,
        i64::from(!chunked),
        "copied when chunked, else spliced"
    );
}

#[test]
fn a_client_that_stops_reading_a_copied_body_is_cut_at_the_stream_idle_timeout() {
    a_client_that_stops_reading_is_cut_at_the_stream_idle_timeout(true);
}

#[test]
fn a_client_that_stops_reading_a_spliced_body_is_cut_at_the_stream_idle_timeout() {
    a_client_that_stops_reading_is_cut_at_the_stream_idle_timeout(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_that_opens_no_window_is_cut_at_the_stream_idle_timeout() {
    let (tx, closed) = std::sync::mpsc::channel();
    let up = endless_backend(true, tx);
    let log = TempLog::new("timeouts");
    let http = "  stream_idle_timeout = \"400ms\"";
    let proxy = Proxy::start(&config(up, http, "    timeout = \"0s\"", &log));
    let mut h2 = h2c(proxy.addr()).await;
    let req = Request::get(format!("http://{}/x", proxy.addr()))
        .body(body(Bytes::new()))
        .unwrap();
    let t0 = Instant::now();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    // The body is not read, so the client opens no window for it.
    let closed = tokio::task::spawn_blocking(move || closed.recv_timeout(Duration::from_secs(10)));
    let by_proxy = closed.await.unwrap().unwrap();
    assert!(by_proxy, "the proxy closed the upstream connection");
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let end = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect()).await;
    assert!(
        end.expect("an end, not a wait").is_err(),
        "reset, not ended"
    );
    assert_eq!(flags(&proxy, &log), "SI");
    assert_eq!(proxy.stat("http.main.downstream_rq_idle_timeout"), 1);
}

/// A client that opens an HTTP/2 connection with flow-control windows of 2 GiB, asks for an
/// endless body and never reads its socket: the proxy buffers about a megabyte for it (its
/// output limit), not the window, and closes the connection at the stream idle timeout.
#[test]
fn an_http2_client_that_reads_nothing_is_closed_at_the_stream_idle_timeout() {
    let (tx, closed) = std::sync::mpsc::channel();
    let up = endless_backend(true, tx);
    let log = TempLog::new("timeouts");
    let http = "  stream_idle_timeout = \"400ms\"";
    let proxy = Proxy::start(&config(up, http, "    timeout = \"0s\"", &log));
    let mut c = H2::handshake_with(proxy.addr(), &[(setting::INITIAL_WINDOW_SIZE, 0x7fff_ffff)]);
    // The connection's window to 2^31-1 as well.
    c.send_window_update(0, 0x7fff_ffff - 65_535);
    let t0 = Instant::now();
    let get = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "t"),
    ];
    c.send_request(1, &get, true);
    // Nothing is read from here on.
    let by_proxy = closed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(by_proxy, "the proxy closed the upstream connection");
    assert!(t0.elapsed() >= Duration::from_millis(400));
    // What the proxy had written is there, then the end of the connection.
    let got = c.expect_closed_raw().len();
    // The socket buffers on the way, and the proxy's output limit (1 MiB): far from the
    // window the client offered.
    assert!(got < 64 << 20, "{got}");
    // The stream's wait for room (`SI`) or the connection's write (the stream then goes with
    // the connection) ends first: either way the exchange did not end well.
    let f = flags(&proxy, &log);
    assert!(f != "-", "{f}");
}

/// An upstream that accepts the request and never reads it: the body fills its receive
/// window and the proxy's send buffer. The route timeout still answers 504 `UT` in time, for a
/// body streamed as it arrives and for one a `buffer` filter collected first.
fn an_upstream_that_stops_reading_the_request_gets_the_route_timeout(filters: &str) {
    let up = tcp_backend(|_c| std::thread::sleep(Duration::from_secs(6)));
    let log = TempLog::new("timeouts");
    let cfg = config(up, "", "    timeout = \"700ms\"", &log).replace(
        "  [listeners.http]\n",
        &format!("{filters}  [listeners.http]\n"),
    );
    let proxy = Proxy::start(&cfg);
    let body = vec![b'b'; 8 << 20];
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    let head = format!(
        "POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The proxy may stop reading the body once it is stuck: write from a thread.
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let resp = read_head(&mut s, &mut Vec::new()).unwrap_or_default();
    let took = t0.elapsed();
    assert_eq!(status_of(&resp), 504, "{}", String::from_utf8_lossy(&resp));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(flags(&proxy, &log), "UT");
    drop(s);
    let _ = writer.join();
}

#[test]
fn an_upstream_that_stops_reading_a_streamed_request_body_gets_the_route_timeout() {
    an_upstream_that_stops_reading_the_request_gets_the_route_timeout("");
}

#[test]
fn an_upstream_that_stops_reading_a_buffered_request_body_gets_the_route_timeout() {
    let filters = "[[listeners.http_filters]]\nname = \"buffer\"\nmax_request_bytes = 16777216\n";
    an_upstream_that_stops_reading_the_request_gets_the_route_timeout(filters);
}

#[test]
fn a_stalled_request_body_gets_408_at_the_stream_idle_timeout() {
    let up = upstream(|_| std::thread::sleep(Duration::from_secs(4)));
    let log = TempLog::new("timeouts");
    let http = "  stream_idle_timeout = \"300ms\"";
    let proxy = Proxy::start(&config(up, http, "", &log));
    let req = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n0123456789";
    let (resp, took) = exchange(proxy.addr(), req);
    assert_eq!(status_of(&resp), 408, "{}", String::from_utf8_lossy(&resp));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(flags(&proxy, &log), "SI");
    assert_eq!(proxy.stat("http.main.downstream_rq_idle_timeout"), 1);
}

#[test]
fn a_request_trickling_past_request_timeout_gets_408() {
    let up = upstream(|_| std::thread::sleep(Duration::from_secs(4)));
    let log = TempLog::new("timeouts");
    let http = "  request_timeout = \"500ms\"\n  stream_idle_timeout = \"300ms\"";
    let proxy = Proxy::start(&config(up, http, "", &log));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n")
        .unwrap();
    // A byte every 100 ms: never idle, but not done by 500 ms.
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..30 {
                std::thread::sleep(Duration::from_millis(100));
                if s.write_all(b"x").is_err() {
                    return;
                }
            }
        })
    };
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(status_of(&got), 408, "{}", String::from_utf8_lossy(&got));
    assert_eq!(flags(&proxy, &log), "-", "not an idle stream");
    assert_eq!(proxy.stat("http.main.downstream_rq_timeout"), 1);
    assert_eq!(proxy.stat("http.main.downstream_rq_idle_timeout"), 0);
    drop(s);
    writer.join().unwrap();
}

#[test]
fn max_stream_duration_ends_a_response_that_never_stops() {
    // A byte every 50 ms, chunked, without end.
    let up = upstream(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(50));
            if c.write_all(b"1\r\nx\r\n").is_err() {
                return;
            }
        }
    });
    let log = TempLog::new("timeouts");
    let http = "  max_stream_duration = \"500ms\"";
    let proxy = Proxy::start(&config(up, http, "    timeout = \"0s\"", &log));
    let (resp, took) = exchange(proxy.addr(), GET);
    assert_eq!(status_of(&resp), 200);
    assert!(!resp.ends_with(b"0\r\n\r\n"), "cut short, not ended");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(flags(&proxy, &log), "DT");
    assert_eq!(
        proxy.stat("http.main.downstream_rq_max_duration_reached"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_deadline_after_the_head_ends_the_call_with_deadline_exceeded() {
    // The head and one message, then the stream stays open without more.
    let up = Backend::start_h2(|_req| async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(4);
        tx.send(Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\x01a"))))
            .await
            .unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            drop(tx);
        });
        let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|f| (f, rx))
        }));
        let mut resp = hyper::Response::new(BodyExt::boxed(body));
        resp.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        Ok(resp)
    });
    let log = TempLog::new("timeouts");
    let cfg = config(up.addr, "", "", &log)
        .replace("name = \"c\"\n", "name = \"c\"\nprotocol = \"http2\"\n");
    let proxy = Proxy::start(&cfg);
    let mut h2 = h2c(proxy.addr()).await;
    let req = Request::post(format!("http://{}/svc/Call", proxy.addr()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "400m")
        .body(body(&b"\0\0\0\0\0"[..]))
        .unwrap();
    let t0 = Instant::now();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let collected = resp.into_body().collect().await.expect("ended, not reset");
    assert!(t0.elapsed() < Duration::from_secs(3));
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "4");
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x01a");
    assert_eq!(flags(&proxy, &log), "UT");
    assert_eq!(proxy.stat("http.main.grpc_status_deadline_exceeded"), 1);
}

#[test]
fn bad_timeouts_are_refused_with_their_place() {
    let up = closed_port();
    let log = TempLog::new("timeouts");
    for (http, route, what) in [
        (
            "  stream_idle_timeout = \"soon\"",
            "",
            "stream_idle_timeout",
        ),
        ("  request_timeout = \"-1s\"", "", "request_timeout"),
        ("  max_stream_duration = \"x\"", "", "max_stream_duration"),
        ("", "    idle_timeout = \"1 minute\"", "idle_timeout"),
    ] {
        let text = format!(
            "[admin]\naddress = \"127.0.0.1:0\"\n{}",
            config(up, http, route, &log)
        );
        let err = engine::config::parse_str(&text, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.toml:") && err.contains(what), "{err}");
        assert!(err.contains("invalid duration"), "{err}");
    }
}
