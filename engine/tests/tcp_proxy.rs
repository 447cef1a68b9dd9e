//! TCP proxy listeners (`protocol = "tcp"`) end to end on loopback: a large echo with a
//! checksum both ways, half-close passed through, the idle timeout, connect failure, round
//! robin, and the `tcp.<listener>.*` stats. Peers are plain blocking std sockets on threads.
//! `RINGWAY_TEST_DRIVER=legacy` runs them on the epoll driver.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::Proxy;

/// A backend that runs `handle` on each accepted connection, on its own thread.
fn backend(handle: fn(TcpStream)) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            thread::spawn(move || handle(s));
        }
    });
    addr
}

/// Echo until end of stream, then half-close.
fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = s.shutdown(Shutdown::Write);
}

fn tcp_config(endpoints: &[SocketAddr], extra: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "l"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "c"
{extra}

[[clusters]]
name = "c"
endpoints = [{}]
connect_timeout = "1s"
"#,
        eps.join(", ")
    )
}

/// A deterministic byte stream (xorshift) so corruption or reordering changes the checksum.
fn pattern(seed: u64, buf: &mut [u8]) -> u64 {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    x
}

/// FNV-1a over a stream, 8 bytes at a time where possible (fast in debug builds).
#[derive(Clone, Copy)]
struct Sum(u64, u64);
impl Sum {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325, 0)
    }
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.1 += data.len() as u64;
    }
}

#[test]
fn large_echo_both_ways_with_checksum() {
    // 256 MiB each way. The checksum is over every byte in order.
    const TOTAL: usize = 256 << 20;
    let proxy = Proxy::start(&tcp_config(&[backend(echo)], ""));
    let started = Instant::now();
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let mut chunk = vec![0u8; 1 << 20];
        let mut seed = 7;
        let mut sum = Sum::new();
        let mut sent = 0;
        while sent < TOTAL {
            seed = pattern(seed, &mut chunk);
            sum.update(&chunk);
            w.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        w.shutdown(Shutdown::Write).unwrap();
        sum
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut got = Sum::new();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    loop {
        match s.read(&mut buf).unwrap() {
            0 => break,
            n => got.update(&buf[..n]),
        }
    }
    let sent = writer.join().unwrap();
    assert_eq!(got.1, TOTAL as u64, "every byte came back");
    assert_eq!(got.0, sent.0, "in order and unchanged");
    eprintln!("256 MiB each way in {:?}", started.elapsed());
    proxy.eventually("bytes counted", |p| {
        p.stat("tcp.l.downstream_cx_rx_bytes_total") == TOTAL as i64
            && p.stat("tcp.l.downstream_cx_tx_bytes_total") == TOTAL as i64
            && p.stat("tcp.l.downstream_cx_active") == 0
    });
}

#[test]
fn half_close_reaches_the_backend_and_the_answer_still_comes_back() {
    // The backend answers only after it sees the client's end of stream.
    fn count_then_answer(mut s: TcpStream) {
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        thread::sleep(Duration::from_millis(100));
        s.write_all(format!("got {} bytes", all.len()).as_bytes())
            .unwrap();
    }
    let proxy = Proxy::start(&tcp_config(&[backend(count_then_answer)], ""));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[b'x'; 100_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "got 100000 bytes");
}

#[test]
fn idle_timeout_closes_both_sides() {
    fn echo_and_report(s: TcpStream) {
        let started = Instant::now();
        echo(s);
        // Tell the test when the proxy closed our side.
        let ms = started.elapsed().as_millis();
        IDLE_BACKEND_SAW_EOF.store(ms as u64 + 1, std::sync::atomic::Ordering::SeqCst);
    }
    static IDLE_BACKEND_SAW_EOF: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0);
    let proxy = Proxy::start(&tcp_config(
        &[backend(echo_and_report)],
        "[listeners.tcp]\nidle_timeout = \"400ms\"",
    ));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Traffic keeps the connection open past the timeout.
    for _ in 0..6 {
        thread::sleep(Duration::from_millis(150));
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
    }
    let quiet = Instant::now();
    let mut b = [0u8; 1];
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "closed by the proxy");
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    proxy.eventually("backend closed and stat counted", |p| {
        IDLE_BACKEND_SAW_EOF.load(std::sync::atomic::Ordering::SeqCst) > 0
            && p.stat("tcp.l.idle_timeout") == 1
    });
}

#[test]
fn connect_failure_closes_the_client() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = Proxy::start(&tcp_config(&[dead], ""));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 16];
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0);
    proxy.eventually("connect failure counted", |p| {
        p.stat("tcp.l.upstream_connect_fail") == 1
            && p.stat("cluster.c.upstream_cx_connect_fail") == 1
            && p.stat("tcp.l.downstream_cx_active") == 0
            && p.stat("listener.l.downstream_cx_destroy") == 1
    });
}

#[test]
fn round_robin_across_two_backends() {
    fn a(mut s: TcpStream) {
        let _ = s.write_all(b"A");
    }
    fn b(mut s: TcpStream) {
        let _ = s.write_all(b"B");
    }
    let proxy = Proxy::start(&tcp_config(&[backend(a), backend(b)], ""));
    let mut seen = String::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.read_to_string(&mut seen).unwrap();
    }
    assert!(
        seen == "ABABAB" || seen == "BABABA",
        "alternates between the endpoints: {seen}"
    );
}

#[test]
fn stats_count_connections_and_bytes() {
    let proxy = Proxy::start(&tcp_config(&[backend(echo)], ""));
    for i in 1..=3usize {
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&vec![b'z'; 1000 * i]).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 1000 * i);
    }
    proxy.eventually("stats settle", |p| {
        p.stat("tcp.l.downstream_cx_active") == 0 && p.stat("cluster.c.upstream_cx_active") == 0
    });
    let expect = [
        ("tcp.l.downstream_cx_total", 3),
        ("tcp.l.downstream_cx_rx_bytes_total", 6000),
        ("tcp.l.downstream_cx_tx_bytes_total", 6000),
        ("tcp.l.idle_timeout", 0),
        ("tcp.l.upstream_connect_fail", 0),
        ("listener.l.downstream_cx_total", 3),
        ("listener.l.downstream_cx_destroy", 3),
        ("cluster.c.upstream_cx_total", 3),
        ("cluster.c.upstream_cx_http1_total", 0),
        ("cluster.c.upstream_cx_destroy", 3),
        ("cluster.c.upstream_cx_tx_bytes_total", 6000),
        ("cluster.c.upstream_cx_rx_bytes_total", 6000),
    ];
    for (name, want) in expect {
        assert_eq!(proxy.stat(name), want, "{name}");
    }
    let (_, prom) = proxy.admin_get("/stats/prometheus");
    assert!(
        prom.contains("ringway_tcp_downstream_cx_total{tcp_name=\"l\"} 3"),
        "{prom}"
    );
}
