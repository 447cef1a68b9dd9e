//! HTTP/1 response bodies moved from the upstream's socket to the client's with splice (plain
//! TCP both sides, a Content-Length body with 16 KiB or more left after what came with the
//! head, no filter reading it): every byte arrives in order, both connections serve the next
//! request afterwards (their sockets are back in the runtime's mode), the timeouts and an
//! upstream that closes mid-body end the response as on the copied path, and a filter that
//! reads the body, or a chunked body, keeps the copy. Counted in
//! `http.<listener>.splice_rs_total` and `splice_rs_bytes`. `RINGWAY_TEST_DRIVER=legacy` runs
//! them on the epoll driver. docs/architecture.md "Zero-copy bodies".

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::*;

/// An upstream that reads request heads and answers each with `answer(n)` for the nth request
/// on the connection (from 0), on its own thread per connection; keeps the connection.
fn upstream(answer: impl Fn(usize, &mut TcpStream) + Send + Sync + 'static) -> SocketAddr {
    tcp_backend(move |mut c| {
        c.set_nodelay(true).unwrap();
        let mut buf = Vec::new();
        for n in 0.. {
            if read_head(&mut c, &mut buf).is_none() {
                return;
            }
            answer(n, &mut c);
        }
    })
}

fn config(backend: SocketAddr, filters: &str, route: &str, log: &TempLog) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
access_log = {{ path = "{}", format = "json" }}
{filters}
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

/// One response read from `r`: status, lowercase head, body (by content-length, or chunked
/// and de-chunked).
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed in the head");
        head.push_str(&line.to_ascii_lowercase());
        if line == "\r\n" {
            break;
        }
    }
    let status = head[9..12].parse().unwrap();
    let mut body = Vec::new();
    if let Some(len) = header_in(&head, "content-length") {
        body.resize(len.parse().unwrap(), 0);
        r.read_exact(&mut body).unwrap();
    } else if header_in(&head, "transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    (status, head, body)
}

/// The access log's lines once it has `total`, parsed.
fn log_lines(proxy: &Proxy, log: &TempLog, total: usize) -> Vec<serde_json::Value> {
    let lines = log.wait_lines(proxy, total);
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const BIG: usize = 3 * 1024 * 1024 + 7;

#[test]
fn a_long_body_is_spliced_intact_and_both_connections_serve_the_next_request() {
    let big = pattern(BIG, 7);
    let small = pattern(1000, 9);
    let (b2, s2) = (big.clone(), small.clone());
    let up = upstream(move |n, c| {
        // A long body (spliced), a short one (copied), a long one again.
        let body = if n == 1 { &s2 } else { &b2 };
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        c.write_all(head.as_bytes()).unwrap();
        // In pieces, so that most of it comes after the head.
        for piece in body.chunks(200_000) {
            c.write_all(piece).unwrap();
            c.flush().unwrap();
        }
    });
    let log = TempLog::new("splice");
    let proxy = Proxy::start(&config(up, "", "", &log));
    let c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    for (i, want) in [&big, &small, &big].into_iter().enumerate() {
        w.write_all(format!("GET /{i} HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes())
            .unwrap();
        let (status, head, body) = read_response(&mut r);
        assert_eq!(status, 200, "request {i}: {head}");
        assert_eq!(body.len(), want.len(), "request {i}");
        assert!(body == *want, "request {i}: the body arrived changed");
        assert_eq!(header_in(&head, "connection"), None, "kept: {head}");
    }
    drop((w, r));
    assert_eq!(proxy.stat("http.main.splice_rs_total"), 2);
    let spliced = proxy.stat("http.main.splice_rs_bytes");
    assert!(
        spliced > 0 && spliced <= 2 * BIG as i64,
        "spliced {spliced} of {}",
        2 * BIG
    );
    assert_eq!(
        proxy.stat("cluster.c.upstream_cx_total"),
        1,
        "upstream kept"
    );
    assert_eq!(
        proxy.stat("http.main.downstream_cx_total"),
        1,
        "client kept"
    );
    let head_and_body = proxy.stat("http.main.downstream_cx_tx_bytes_total");
    assert!(head_and_body > (2 * BIG + 1000) as i64, "{head_and_body}");
    let lines = log_lines(&proxy, &log, 3);
    let sent: Vec<_> = lines.iter().map(|l| l["bytes_sent"].as_u64()).collect();
    assert_eq!(sent, [Some(BIG as u64), Some(1000), Some(BIG as u64)]);
    assert!(
        lines.iter().all(|l| l["response_flags"] == "-"),
        "{lines:?}"
    );
}

#[test]
fn an_upstream_that_closes_mid_body_cuts_the_spliced_response_short() {
    let up = upstream(|_, c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n");
        let _ = c.write_all(&[b'x'; 300_000]);
        let _ = c.shutdown(std::net::Shutdown::Both);
    });
    let log = TempLog::new("splice");
    let proxy = Proxy::start(&config(up, "", "", &log));
    let resp = raw_exchange(proxy.addr(), b"GET / HTTP/1.1\r\nhost: t\r\n\r\n");
    let end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(status_of(&resp), 200);
    assert_eq!(resp.len() - end, 300_000, "what arrived, then the close");
    assert_eq!(log_lines(&proxy, &log, 1)[0]["response_flags"], "UC");
    assert_eq!(proxy.stat("http.main.downstream_rq_tx_reset"), 1);
    assert_eq!(proxy.stat("http.main.splice_rs_total"), 1);
}

#[test]
fn the_timeouts_end_a_spliced_body_that_stalls() {
    // The head, part of the body, then nothing for 4 s.
    let stall = || {
        upstream(|_, c| {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n");
            let _ = c.write_all(&[b'x'; 100_000]);
            std::thread::sleep(Duration::from_secs(4));
        })
    };
    for (route, flag) in [
        ("    timeout = \"600ms\"", "UT"),
        ("    idle_timeout = \"300ms\"", "SI"),
    ] {
        let log = TempLog::new("splice");
        let proxy = Proxy::start(&config(stall(), "", route, &log));
        let t0 = Instant::now();
        let resp = raw_exchange(proxy.addr(), b"GET / HTTP/1.1\r\nhost: t\r\n\r\n");
        let took = t0.elapsed();
        assert_eq!(status_of(&resp), 200, "{route}");
        assert!(resp.ends_with(&[b'x'; 1000]), "{route}");
        assert!(took < Duration::from_secs(3), "{route}: {took:?}");
        assert_eq!(log_lines(&proxy, &log, 1)[0]["response_flags"], flag);
        assert_eq!(proxy.stat("http.main.splice_rs_total"), 1, "{route}");
    }
}

#[test]
fn a_filter_that_reads_the_body_and_a_chunked_body_keep_the_copy() {
    let big = pattern(BIG, 3);
    let b2 = big.clone();
    let up = upstream(move |n, c| {
        if n == 0 {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", b2.len());
            c.write_all(head.as_bytes()).unwrap();
            c.write_all(&b2).unwrap();
        } else {
            c.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .unwrap();
            for piece in b2.chunks(100_000) {
                c.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .unwrap();
                c.write_all(piece).unwrap();
                c.write_all(b"\r\n").unwrap();
            }
            c.write_all(b"0\r\n\r\n").unwrap();
        }
    });
    // Editing response trailers gives the chain an encode data phase: every piece passes it.
    let filters = r#"
  [[listeners.http_filters]]
  name = "header_mutation"
  response_trailers_to_add = [ { name = "x-t", value = "1" } ]"#;
    for filters in [filters, ""] {
        let log = TempLog::new("splice");
        let proxy = Proxy::start(&config(up, filters, "", &log));
        let c = TcpStream::connect(proxy.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        for i in 0..2 {
            w.write_all(format!("GET /{i} HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes())
                .unwrap();
            let (status, head, body) = read_response(&mut r);
            assert_eq!(status, 200, "{head}");
            assert!(
                body == big,
                "{filters:?} request {i}: the body arrived changed"
            );
        }
        let spliced = proxy.stat("http.main.splice_rs_total");
        if filters.is_empty() {
            assert_eq!(spliced, 1, "the Content-Length body only");
        } else {
            assert_eq!(spliced, 0, "a filter reads every piece");
        }
    }
}

/// A pooled connection whose responses come whole with their heads waits for the next one
/// with a multishot receive (io_uring), kept while it is pooled; a response whose body comes
/// after its head ends it (what it took goes first), so a long body is still spliced and a
/// late one still read whole; the connection then reads with plain receives until a response
/// comes whole again. Every body arrives intact, on one upstream connection.
#[test]
fn a_pooled_connection_takes_whole_responses_in_a_multishot_receive_and_still_splices() {
    let big = pattern(BIG, 3);
    let small = pattern(700, 5);
    let (b2, s2) = (big.clone(), small.clone());
    // What each request on the connection gets.
    const SHAPES: [&str; 9] = [
        "small", "small", "small", "big", "small", "small", "late", "small", "small",
    ];
    let up = upstream(move |n, c| {
        let body = if SHAPES[n] == "big" { &b2 } else { &s2 };
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        match SHAPES[n] {
            "small" => c.write_all(&[head.as_bytes(), body].concat()).unwrap(),
            "late" => {
                c.write_all(head.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                c.write_all(body).unwrap();
            }
            _ => {
                c.write_all(head.as_bytes()).unwrap();
                for piece in body.chunks(200_000) {
                    c.write_all(piece).unwrap();
                }
            }
        }
    });
    let log = TempLog::new("multishot");
    let proxy = Proxy::start(&config(up, "", "", &log));
    let c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    for (i, shape) in SHAPES.into_iter().enumerate() {
        w.write_all(format!("GET /{i} HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes())
            .unwrap();
        let (status, head, body) = read_response(&mut r);
        assert_eq!(status, 200, "request {i}: {head}");
        let want = if shape == "big" { &big } else { &small };
        assert!(
            body == *want,
            "request {i} ({shape}): the body arrived changed"
        );
    }
    drop((w, r));
    assert_eq!(
        proxy.stat("cluster.c.upstream_cx_total"),
        1,
        "upstream kept"
    );
    assert_eq!(proxy.stat("http.main.splice_rs_total"), 1);
    // Armed for requests 1, 5 and 8, each after a response read from the socket came whole;
    // the big and the late responses ended it.
    let armed = proxy.stat("cluster.c.upstream_rx_multishot_armed");
    if !matches!(driver(), engine::IoDriver::Legacy) && monoio::utils::detect_uring() {
        assert_eq!(armed, 3, "armed for requests 1, 5 and 8");
    } else {
        assert_eq!(armed, 0);
    }
}
