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
    let len: usize = header_in(&head, "content-length")
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    format!("{head}{}", String::from_utf8_lossy(&body))
}

/// The client pauses for `pause`, then closes `s`: ringway notices, counts a close by the
/// client, and has no connection left.
fn leaves_after(proxy: &Proxy, s: TcpStream, pause: Duration) {
    std::thread::sleep(pause);
    drop(s);
    proxy.eventually("closed by the client", |p| {
        p.stat("http.main.downstream_cx_destroy_remote") == 1
    });
    assert_eq!(proxy.stat("http.main.downstream_cx_active"), 0);
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
    leaves_after(&proxy, s, Duration::from_millis(1600));
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

/// A connection that pauses between requests, longer than the busy read's quiet time but
/// shorter than the parking delay, keeps its one multishot receive (io_uring): no cancel, no
/// readiness poll and no new receive per pause. Parked after a longer pause, it arms one
/// again once it is busy. Every request is served, and the client's close during a pause is
/// seen by the armed receive.
#[test]
fn a_pausing_connection_keeps_its_receive_until_it_is_parked() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let uring = !matches!(driver(), engine::IoDriver::Legacy) && monoio::utils::detect_uring();
    let armed = || proxy.stat("http.main.downstream_rx_multishot_armed");
    for (i, ms) in [0, 0, 250, 300, 400, 250].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(ms));
        let path = format!("/pause{i}");
        assert!(get(&mut s, &path).contains(&format!("x-echo-uri: {path}\r\n")));
    }
    assert_eq!(armed(), i64::from(uring), "one receive through every pause");
    // A head split across a pause, its first part taken by the armed receive (the exchange
    // then ends it to read the rest, and the next busy read arms another).
    s.write_all(b"GET /split HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"st: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).contains("x-echo-uri: /split\r\n"));
    // Parked, back, busy again: one more.
    std::thread::sleep(Duration::from_millis(1600));
    for i in 0..3 {
        let path = format!("/after{i}");
        assert!(get(&mut s, &path).contains(&format!("x-echo-uri: {path}\r\n")));
    }
    assert_eq!(armed(), 3 * i64::from(uring));
    // Pauses around the parking delay: the receive ends as bytes may be arriving.
    for (i, ms) in [1000, 1050].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(ms));
        let path = format!("/around{i}");
        assert!(get(&mut s, &path).contains(&format!("x-echo-uri: {path}\r\n")));
    }
    assert_eq!(proxy.stat("http.main.downstream_rq_total"), 12);
    assert_eq!(proxy.stat("http.main.downstream_cx_total"), 1);
    assert_eq!(proxy.stat("http.main.downstream_rx_multishot_no_buffer"), 0);
    // The client leaves during a pause (its receive armed): noticed, counted as its close.
    leaves_after(&proxy, s, Duration::from_millis(250));
}

/// A client that pauses before every request: the receive armed after its first request
/// ends when it goes quiet (a connection that carries one request holds none while it idles);
/// the one armed after its second is kept and brings every later request.
#[test]
fn a_client_pausing_before_every_request_keeps_one_receive_from_its_second() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        let path = format!("/think{i}");
        assert!(get(&mut s, &path).contains(&format!("x-echo-uri: {path}\r\n")));
    }
    let uring = !matches!(driver(), engine::IoDriver::Legacy) && monoio::utils::detect_uring();
    assert_eq!(
        proxy.stat("http.main.downstream_rx_multishot_armed"),
        2 * i64::from(uring)
    );
    assert_eq!(proxy.stat("http.main.downstream_rq_total"), 5);
}

/// A connection that carried `requests` requests, then paused for `pause`, closes on drain,
/// and the close is counted as the drain's.
fn drain_closes_after(requests: usize, pause: Duration) {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..requests {
        get(&mut s, "/");
    }
    std::thread::sleep(pause);
    proxy.handle().drain();
    let mut byte = [0u8; 1];
    assert_eq!(s.read(&mut byte).unwrap_or(0), 0, "closed on drain");
    proxy.eventually("drain close counted", |p| {
        p.stat("http.main.downstream_cx_drain_close") == 1
    });
}

/// A connection paused with its multishot receive armed (after two requests) closes on drain.
#[test]
fn drain_closes_a_paused_connection_with_its_receive_armed() {
    drain_closes_after(2, Duration::from_millis(300));
}

/// A connection that has just been answered (its next read in flight) closes on drain.
#[test]
fn drain_closes_a_connection_waiting_in_its_busy_read() {
    drain_closes_after(1, Duration::ZERO);
}

/// A client that closes right after its response is noticed by the busy read.
#[test]
fn client_close_during_the_busy_read_is_noticed() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    get(&mut s, "/");
    leaves_after(&proxy, s, Duration::ZERO);
}

/// Reads one response, framed by Content-Length or chunked (returned de-chunked: the head,
/// then the body's data).
fn read_any_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    let head = read_head(s, buf).expect("a response head");
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let mut more = |buf: &mut Vec<u8>| {
        let mut b = [0u8; 4096];
        let n = s.read(&mut b).expect("read body");
        assert!(n > 0, "closed in a body");
        buf.extend_from_slice(&b[..n]);
    };
    let mut body = Vec::new();
    if let Some(len) = header_in(&head, "content-length").and_then(|v| v.trim().parse().ok()) {
        while buf.len() < len {
            more(buf);
        }
        body.extend(buf.drain(..len));
    } else {
        assert_eq!(
            header_in(&head, "transfer-encoding"),
            Some("chunked"),
            "{head}"
        );
        loop {
            while !buf.windows(2).any(|w| w == b"\r\n") {
                more(buf);
            }
            let eol = buf.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&buf[..eol]).unwrap(), 16)
                .expect("chunk size");
            while buf.len() < eol + 2 + size + 2 {
                more(buf);
            }
            body.extend_from_slice(&buf[eol + 2..eol + 2 + size]);
            buf.drain(..eol + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    }
    format!("{head}{}", String::from_utf8_lossy(&body))
}

/// Letters, so a body compares as text.
fn letters(len: usize) -> String {
    (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

/// Once a connection has served a request, its next ones are waited for with the read already
/// armed (on io_uring one multishot receive, kept across requests). Whatever shape a later
/// request takes, no byte is lost or read twice: a Content-Length body and a chunked one in
/// pieces, a head in three pieces, a short body in the same write as its head with the next
/// request behind it, and hundreds of pipelined requests in one write (more than one receive
/// buffer's worth).
#[test]
fn a_busy_connection_serves_requests_of_every_shape() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(backend.addr, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut sent = 0;
    let request = |s: &mut TcpStream, pieces: &[&[u8]]| {
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(30));
            }
            s.write_all(p).unwrap();
        }
    };
    for i in 0..3 {
        request(
            &mut s,
            &[format!("GET /warm{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()],
        );
        sent += 1;
        assert!(read_any_response(&mut s, &mut buf).contains(&format!("x-echo-uri: /warm{i}")));
    }

    let body = letters(20_000);
    let head = format!(
        "POST /length HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let b = body.as_bytes();
    request(
        &mut s,
        &[
            &[head.as_bytes(), &b[..100]].concat(),
            &b[100..9000],
            &b[9000..],
        ],
    );
    sent += 1;
    let r = read_any_response(&mut s, &mut buf);
    assert!(
        r.contains("x-echo-uri: /length") && r.ends_with(&body),
        "{r:.300}"
    );
    // The same with the body's next piece right behind the head, while the proxy is still
    // at the head (before it reads the body).
    for _ in 0..5 {
        s.write_all(&[head.as_bytes(), &b[..100]].concat()).unwrap();
        s.write_all(&b[100..]).unwrap();
        sent += 1;
        let r = read_any_response(&mut s, &mut buf);
        assert!(
            r.contains("x-echo-uri: /length") && r.ends_with(&body),
            "{r:.300}"
        );
    }

    request(
        &mut s,
        &[
            b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n6\r\n world\r\n",
            b"0\r\n\r\n",
        ],
    );
    sent += 1;
    let r = read_any_response(&mut s, &mut buf);
    assert!(
        r.contains("x-echo-uri: /chunked") && r.ends_with("hello world"),
        "{r}"
    );

    request(
        &mut s,
        &[b"GET /th", b"ree-pieces HTTP/1.1\r\nHo", b"st: x\r\n\r\n"],
    );
    sent += 1;
    assert!(read_any_response(&mut s, &mut buf).contains("x-echo-uri: /three-pieces"));

    request(
        &mut s,
        &[
            b"POST /short HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nshort\
            GET /behind HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
    );
    sent += 2;
    let r = read_any_response(&mut s, &mut buf);
    assert!(
        r.contains("x-echo-uri: /short") && r.ends_with("short"),
        "{r}"
    );
    assert!(read_any_response(&mut s, &mut buf).contains("x-echo-uri: /behind"));

    let burst: String = (0..300)
        .map(|i| format!("GET /burst{i} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    assert!(burst.len() > 8192);
    request(&mut s, &[burst.as_bytes()]);
    sent += 300;
    for i in 0..300 {
        let r = read_any_response(&mut s, &mut buf);
        assert!(
            r.contains(&format!("x-echo-uri: /burst{i}\r\n")),
            "{i}: {r}"
        );
    }
    assert!(buf.is_empty());
    assert_eq!(proxy.stat("http.main.downstream_rq_total"), sent);
    assert_eq!(proxy.stat("http.main.downstream_cx_total"), 1);
    // On io_uring the busy read is a multishot receive: armed at the second request, ended by
    // each request that reads the socket again, armed again for the next one.
    let armed = proxy.stat("http.main.downstream_rx_multishot_armed");
    if !matches!(driver(), engine::IoDriver::Legacy) && monoio::utils::detect_uring() {
        assert!(armed >= 5, "armed {armed} times");
    } else {
        assert_eq!(armed, 0);
    }
    assert_eq!(proxy.stat("http.main.downstream_rx_multishot_no_buffer"), 0);
}

/// An upgrade after requests without bodies (the busy reads of both connections armed): the
/// tunnel carries every byte both ways, those the client sent right behind the upgrade request
/// and before the backend's answer included, and those the backend sent right behind its 101.
#[test]
fn an_upgrade_on_a_busy_connection_tunnels_every_byte() {
    let backend = tcp_backend(|mut c| {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        while let Some(head) = read_head(&mut c, &mut buf) {
            if !String::from_utf8_lossy(&head)
                .to_lowercase()
                .contains("upgrade: websocket")
            {
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
                continue;
            }
            // The client sends more meanwhile. The tunnel's first bytes right behind the 101,
            // in a packet of their own.
            std::thread::sleep(Duration::from_millis(100));
            c.set_nodelay(true).unwrap();
            c.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            )
            .unwrap();
            c.write_all(b"hello").unwrap();
            // Echo the tunnel's bytes until the client's end.
            c.write_all(&buf).unwrap();
            let mut b = [0u8; 16384];
            loop {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => c.write_all(&b[..n]).unwrap(),
                }
            }
            let _ = c.shutdown(std::net::Shutdown::Write);
            return;
        }
    });
    let proxy = Proxy::start(&config(backend, "30s"));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    for i in 0..3 {
        s.write_all(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        assert!(read_any_response(&mut s, &mut buf).ends_with("ok"));
    }
    let data = letters(1 << 20).into_bytes();
    let mut first =
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            .to_vec();
    first.extend_from_slice(&data[..1000]);
    s.write_all(&first).unwrap();
    // More while the proxy waits for the backend's answer.
    std::thread::sleep(Duration::from_millis(20));
    s.write_all(&data[1000..2000]).unwrap();
    let head = read_head(&mut s, &mut buf).expect("the 101");
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
    let mut w = s.try_clone().unwrap();
    let rest = data[2000..].to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&rest).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got = std::mem::take(&mut buf);
    s.read_to_end(&mut got)
        .expect("the tunnel's bytes, then its end");
    writer.join().unwrap();
    assert!(got.starts_with(b"hello"), "{:?}", &got[..got.len().min(20)]);
    assert!(
        got[5..] == data,
        "{} bytes of {}",
        got.len() - 5,
        data.len()
    );
}

/// A request delayed by the fault filter after its head (on a busy connection, the read
/// armed): the rest of its body, sent meanwhile, is forwarded whole, and so is the request
/// behind it.
#[test]
fn a_body_sent_while_its_request_waits_is_forwarded_whole() {
    let backend = Backend::echo();
    let toml = config(backend.addr, "30s").replace(
        "  [[listeners.virtual_hosts]]",
        "  [[listeners.http_filters]]\n  name = \"fault\"\n  delay = \"100ms\"\n  [[listeners.virtual_hosts]]",
    );
    let proxy = Proxy::start(&toml);
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    for i in 0..2 {
        s.write_all(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        assert!(read_any_response(&mut s, &mut buf).contains(&format!("x-echo-uri: /{i}")));
    }
    let body = letters(50_000);
    let b = body.as_bytes();
    let head = format!(
        "POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(&[head.as_bytes(), &b[..100]].concat()).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    s.write_all(&b[100..]).unwrap();
    s.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = read_any_response(&mut s, &mut buf);
    assert!(
        r.contains("x-echo-uri: /late") && r.ends_with(&body),
        "{r:.300}"
    );
    assert!(read_any_response(&mut s, &mut buf).contains("x-echo-uri: /next"));
    assert_eq!(proxy.stat("http.main.downstream_rq_total"), 4);
}
