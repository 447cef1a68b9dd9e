//! Idle keep-alive connections: right after a response a plain connection reads straight away
//! for a short while; then it waits for readiness without a buffer, and after about a second it
//! leaves its task and waits in the worker's parking lot (an epoll set). It must behave exactly
//! like a connection that never parked.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

/// Parking only applies when the idle timeout is longer than two parking delays.
fn config(backend: std::net::SocketAddr, idle: &str) -> String {
    one_route(backend).replace(
        "address = \"127.0.0.1:0\"\n",
        &format!("address = \"127.0.0.1:0\"\n  [listeners.http]\n  idle_timeout = \"{idle}\"\n"),
    )
}

/// Read one response with a content-length body from a keep-alive connection.
fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).expect("read head"),
            1,
            "closed early: {buf:?}"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    format!("{head}{}", String::from_utf8_lossy(&body))
}

fn get(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    read_response(s)
}

#[test]
fn parked_connection_serves_the_next_request() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(get(&mut s, "/first").contains("x-echo-uri: /first"));
    // Long enough to be parked (after ~1 s) and for the parking to settle.
    std::thread::sleep(Duration::from_millis(1600));
    assert!(get(&mut s, "/second").contains("x-echo-uri: /second"));
    // A request split across a park: half the head, a pause, the rest.
    std::thread::sleep(Duration::from_millis(1600));
    s.write_all(b"GET /third HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(b"st: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).contains("x-echo-uri: /third"));
    assert_eq!(proxy.stat("http.main.downstream_cx_active"), 1);
    assert_eq!(proxy.stat("http.main.downstream_cx_total"), 1);
}

#[test]
fn parked_connection_still_times_out() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&config(backend.addr, "2500ms"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    get(&mut s, "/");
    let idle_since = Instant::now();
    let mut byte = [0u8; 1];
    assert_eq!(
        s.read(&mut byte).unwrap(),
        0,
        "the proxy closes the idle connection"
    );
    let waited = idle_since.elapsed();
    // Not a timing assertion on the proxy's speed: the connection must not close before its
    // idle timeout (parked connections are swept about once a second after it).
    assert!(
        waited >= Duration::from_millis(2400),
        "closed after {waited:?}"
    );
    proxy.eventually("idle timeout counted", |p| {
        p.stat("http.main.downstream_cx_idle_timeout") == 1
    });
    proxy.eventually("connection gone", |p| {
        p.stat("http.main.downstream_cx_active") == 0
    });
}

#[test]
fn client_close_while_parked_is_noticed() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    get(&mut s, "/");
    std::thread::sleep(Duration::from_millis(1600));
    drop(s);
    proxy.eventually("closed by the client", |p| {
        p.stat("http.main.downstream_cx_destroy_remote") == 1
    });
    assert_eq!(proxy.stat("http.main.downstream_cx_active"), 0);
}

#[test]
fn drain_closes_parked_connections() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut conns: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(proxy.addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            get(&mut s, "/");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1600));
    proxy.handle().drain();
    for s in &mut conns {
        let mut byte = [0u8; 1];
        assert_eq!(
            s.read(&mut byte).unwrap_or(0),
            0,
            "parked connection closed on drain"
        );
    }
}

/// After a response a plain keep-alive connection reads straight away for a short while (a
/// read in flight, holding a buffer), then cancels that read and waits for readiness without a
/// buffer. A request arriving at any point of that (before, around or after the cancel, then
/// while parked) is served, none lost; pauses around the switch (one or two timer ticks of
/// 50 ms) are the race the cancel must win without dropping bytes.
#[test]
fn requests_around_the_end_of_the_busy_read_are_served() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let pauses_ms = [
        0, 0, 10, 40, 50, 60, 90, 100, 110, 140, 160, 200, 1600, 0, 0,
    ];
    for (i, ms) in pauses_ms.into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(ms));
        let path = format!("/r{i}");
        assert!(
            get(&mut s, &path).contains(&format!("x-echo-uri: {path}")),
            "request {i} after {ms} ms"
        );
    }
    // Pipelined requests right after a response, and a head split across two writes.
    s.write_all(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut s).contains("x-echo-uri: /p1"));
    assert!(read_response(&mut s).contains("x-echo-uri: /p2"));
    s.write_all(b"GET /split HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(120));
    s.write_all(b"st: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).contains("x-echo-uri: /split"));
    assert_eq!(proxy.stat("http.main.downstream_cx_total"), 1);
    assert_eq!(proxy.stat("http.main.downstream_rq_total"), 18);
}

/// A connection that has just been answered (its next read in flight) closes on drain.
#[test]
fn drain_closes_a_connection_waiting_in_its_busy_read() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    get(&mut s, "/");
    proxy.handle().drain();
    let mut byte = [0u8; 1];
    assert_eq!(s.read(&mut byte).unwrap_or(0), 0, "closed on drain");
    proxy.eventually("drain close counted", |p| {
        p.stat("http.main.downstream_cx_drain_close") == 1
    });
}

/// A client that closes right after its response is noticed by the busy read.
#[test]
fn client_close_during_the_busy_read_is_noticed() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    get(&mut s, "/");
    drop(s);
    proxy.eventually("closed by the client", |p| {
        p.stat("http.main.downstream_cx_destroy_remote") == 1
    });
    assert_eq!(proxy.stat("http.main.downstream_cx_active"), 0);
}
