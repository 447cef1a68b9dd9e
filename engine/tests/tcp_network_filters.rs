//! Network filters on tcp listeners (`[[listeners.network_filters]]`) end to end on loopback:
//! `byte_counter` counts both ways while the relay keeps splicing, and the config errors.
//! The copy path (a filter that needs to see the bytes) is covered by the engine's unit tests
//! (`tcp::filter::tests`), whose probe filters exist only in test builds. Peers are plain std
//! sockets. `RINGWAY_TEST_DRIVER=legacy` runs them on the epoll driver.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::{Proxy, pattern};

/// FNV-1a over a stream, and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

fn read_sum(r: &mut TcpStream) -> Sum {
    let mut buf = vec![0u8; 256 * 1024];
    let mut sum = Sum::new();
    loop {
        match r.read(&mut buf) {
            Ok(0) => return sum,
            Ok(n) => sum.update(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A backend that reads the client's stream while sending `reply`, then reports what it got.
fn backend(reply: Vec<u8>) -> (SocketAddr, mpsc::Receiver<Sum>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            let (tx, reply) = (tx.clone(), reply.clone());
            thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut r = s.try_clone().unwrap();
                let reader = thread::spawn(move || read_sum(&mut r));
                let mut w = s;
                w.write_all(&reply).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
                let _ = tx.send(reader.join().unwrap());
            });
        }
    });
    (addr, rx)
}

fn tcp_config(endpoint: SocketAddr, filters: &str) -> String {
    format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "l"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "c"
{filters}
[[clusters]]
name = "c"
endpoints = ["{endpoint}"]
connect_timeout = "2s"
"#
    )
}

#[test]
fn byte_counter_counts_both_ways_and_the_relay_keeps_splicing() {
    // Different sizes each way, so a swapped direction shows.
    const UP: usize = (5 << 20) + 13;
    const DOWN: usize = (3 << 20) + 101;
    let up_data = pattern(UP, 3);
    let down_data = pattern(DOWN, 4);
    let (be, got_rx) = backend(down_data.clone());
    let proxy = Proxy::start(&tcp_config(
        be,
        "[[listeners.network_filters]]\nname = \"byte_counter\"\n",
    ));
    let mut sums = Vec::new();
    for _ in 0..2 {
        let s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut w = s.try_clone().unwrap();
        let data = up_data.clone();
        let writer = thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut r = s;
        let down = read_sum(&mut r);
        writer.join().unwrap();
        let up = got_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        sums.push((up, down));
    }
    let (mut up_sent, mut down_sent) = (Sum::new(), Sum::new());
    up_sent.update(&up_data);
    down_sent.update(&down_data);
    for (up, down) in sums {
        assert_eq!(up, up_sent, "client -> backend: every byte, in order");
        assert_eq!(down, down_sent, "backend -> client: every byte, in order");
    }
    proxy.eventually("both connections counted", |p| {
        p.stat("tcp.l.byte_counter.rx_bytes") == 2 * UP as i64
            && p.stat("tcp.l.byte_counter.tx_bytes") == 2 * DOWN as i64
            && p.stat("tcp.l.downstream_cx_active") == 0
    });
    assert_eq!(
        proxy.stat("tcp.l.downstream_cx_rx_bytes_total"),
        2 * UP as i64
    );
    assert_eq!(
        proxy.stat("tcp.l.downstream_cx_tx_bytes_total"),
        2 * DOWN as i64
    );
    // Counting needs no bytes in user space: both connections were spliced, none copied.
    assert_eq!(proxy.stat("tcp.l.splice_cx_total"), 2);
    assert_eq!(proxy.stat("tcp.l.network_filter_copy_cx"), 0);
    assert_eq!(proxy.stat("tcp.l.network_filter_copy_bytes"), 0);
}

#[test]
fn a_listener_without_filters_has_zero_filter_stats() {
    let (be, got_rx) = backend(b"pong".to_vec());
    let proxy = Proxy::start(&tcp_config(be, ""));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"ping").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"pong");
    assert_eq!(got_rx.recv_timeout(Duration::from_secs(10)).unwrap().1, 4);
    proxy.eventually("closed", |p| p.stat("tcp.l.downstream_cx_active") == 0);
    assert_eq!(proxy.stat("tcp.l.splice_cx_total"), 1);
    assert_eq!(proxy.stat("tcp.l.byte_counter.rx_bytes"), 0);
    assert_eq!(proxy.stat("tcp.l.network_filter_copy_cx"), 0);
}

fn config_error(toml: &str) -> String {
    match engine::config::parse_str(toml, "f.toml") {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_errors_name_the_place() {
    let ep = "127.0.0.1:9";
    let unknown = tcp_config(
        ep.parse().unwrap(),
        "[[listeners.network_filters]]\nname = \"byte_counter\"\n\
         [[listeners.network_filters]]\nname = \"mongo_proxyy\"\n",
    );
    assert_eq!(
        config_error(&unknown),
        "f.toml:12:8: listeners[0].network_filters[1].name: unknown network filter \
         \"mongo_proxyy\" (known: \"byte_counter\", \"local_ratelimit\")"
    );
    let extra = tcp_config(
        ep.parse().unwrap(),
        "[[listeners.network_filters]]\nname = \"byte_counter\"\nmax_bytes = 1\n",
    );
    let e = config_error(&extra);
    assert!(
        e.starts_with("f.toml:11:1: listeners[0].network_filters[0].max_bytes: unknown field"),
        "{e}"
    );
    // Another filter's setting is refused for this one.
    let other = tcp_config(
        ep.parse().unwrap(),
        "[[listeners.network_filters]]\nname = \"byte_counter\"\nstat_prefix = \"x\"\n",
    );
    assert_eq!(
        config_error(&other),
        "f.toml:11:15: listeners[0].network_filters[0].stat_prefix: the \"byte_counter\" \
         network filter has no `stat_prefix`"
    );
    let http = format!(
        "[[listeners]]\nname = \"h\"\naddress = \"127.0.0.1:0\"\n\
         [[listeners.network_filters]]\nname = \"byte_counter\"\n\
         [[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"*\"]\n\
         [[clusters]]\nname = \"c\"\nendpoints = [\"{ep}\"]\n"
    );
    assert_eq!(
        config_error(&http),
        "f.toml:4:1: listeners[0].network_filters: network_filters are only for \
         protocol = \"tcp\" listeners"
    );
}
