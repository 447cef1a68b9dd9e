//! PROXY protocol on loopback: headers in front of HTTP and TCP listeners (v1 and v2; the
//! source drives `x-forwarded-for` and the access log; malformed headers close), and headers
//! ringway sends to clusters with `proxy_protocol = "v1" | "v2"`, checked by a backend that
//! parses them with `protocols::proxy_protocol::parse` and, for v1, byte for byte.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use protocols::proxy_protocol::{self as pp, Addresses, Command};
use support::{Backend, Proxy, TempLog, raw_exchange, status_of};

fn http_in(backend: SocketAddr, log: &TempLog) -> String {
    format!(
        r#"
[[listeners]]
name = "in"
address = "127.0.0.1:0"
proxy_protocol = true
access_log = {{ path = "{}", format = "json" }}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "b"

[[clusters]]
name = "b"
endpoints = ["{backend}"]
"#,
        log.path()
    )
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn header_of(resp: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(resp).lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

#[test]
fn v1_in_drives_forwarded_for_and_the_access_log() {
    let backend = Backend::echo();
    let log = TempLog::new("pp-v1");
    let proxy = Proxy::start(&http_in(backend.addr, &log));
    let mut req = b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 80\r\n".to_vec();
    req.extend_from_slice(GET);
    let resp = raw_exchange(proxy.addr(), &req);
    assert_eq!(status_of(&resp), 200, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(
        header_of(&resp, "x-echo-h-x-forwarded-for").as_deref(),
        Some("192.0.2.7")
    );
    proxy.eventually("access log written", |_| {
        std::fs::read_to_string(log.path())
            .is_ok_and(|t| t.contains("\"downstream_remote_address\":\"192.0.2.7:40000\""))
    });
}

#[test]
fn v2_in_with_ipv6_source_and_a_request_in_the_same_packet() {
    let backend = Backend::echo();
    let log = TempLog::new("pp-v2");
    let proxy = Proxy::start(&http_in(backend.addr, &log));
    let mut req = BytesMut::new();
    let addrs = Addresses::Tcp6 {
        src: "[2001:db8::7]:5555".parse().unwrap(),
        dst: "[2001:db8::1]:443".parse().unwrap(),
    };
    pp::encode_v2(Command::Proxy, &addrs, &[(pp::Tlv::NOOP, b"pad")], &mut req).unwrap();
    req.extend_from_slice(GET);
    let resp = raw_exchange(proxy.addr(), &req);
    assert_eq!(status_of(&resp), 200);
    assert_eq!(
        header_of(&resp, "x-echo-h-x-forwarded-for").as_deref(),
        Some("2001:db8::7")
    );
    // LOCAL keeps the socket's own peer.
    let mut local = BytesMut::new();
    pp::encode_v2(Command::Local, &Addresses::Unknown, &[], &mut local).unwrap();
    local.extend_from_slice(GET);
    let resp = raw_exchange(proxy.addr(), &local);
    assert_eq!(
        header_of(&resp, "x-echo-h-x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
}

#[test]
fn malformed_or_missing_header_closes_without_an_answer() {
    let backend = Backend::echo();
    let log = TempLog::new("pp-bad");
    let proxy = Proxy::start(&http_in(backend.addr, &log));
    let bad_v1 = b"PROXY TCP4 192.0.2.7 192.0.2.1 040000 80\r\nGET / HTTP/1.1\r\n\r\n";
    assert!(raw_exchange(proxy.addr(), bad_v1).is_empty());
    // A plain HTTP request on a listener that requires the header.
    assert!(raw_exchange(proxy.addr(), GET).is_empty());
    proxy.eventually("errors counted", |p| {
        p.stat("listener.in.downstream_cx_proxy_proto_error") == 2
    });
    assert_eq!(backend.request_count(), 0);
}

/// A raw upstream: per connection, parse the PROXY header, then answer one HTTP request (or,
/// for TCP, echo). Sends (raw header bytes, parsed header) for each connection.
fn pp_backend(http: bool) -> (SocketAddr, mpsc::Receiver<(Vec<u8>, pp::Header)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let tx = tx.clone();
            thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = BytesMut::new();
                let mut chunk = [0u8; 4096];
                let header = loop {
                    let before = buf.clone();
                    match pp::parse(&mut buf) {
                        Ok(Some(h)) => {
                            let raw = before[..before.len() - buf.len()].to_vec();
                            let _ = tx.send((raw, h));
                            break true;
                        }
                        Ok(None) => {}
                        Err(_) => break false,
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break false,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                if !header {
                    return;
                }
                if http {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                    let _ = s.read(&mut chunk);
                } else {
                    let _ = s.write_all(&buf);
                    let mut all = Vec::new();
                    let _ = s.read_to_end(&mut all);
                    let _ = s.write_all(&all);
                }
            });
        }
    });
    (addr, rx)
}

fn http_out(backend: SocketAddr, version: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "h"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "pp"

[[clusters]]
name = "pp"
endpoints = ["{backend}"]
proxy_protocol = "{version}"
"#
    )
}

#[test]
fn v1_out_on_http_is_byte_exact_and_never_pooled() {
    let (backend, headers) = pp_backend(true);
    let proxy = Proxy::start(&http_out(backend, "v1"));
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let client = c.local_addr().unwrap();
    let keep = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    for _ in 0..2 {
        c.write_all(keep).unwrap();
        let mut resp = [0u8; 256];
        let mut got = Vec::new();
        while !got.ends_with(b"ok") {
            let n = c.read(&mut resp).unwrap();
            assert!(n > 0, "response");
            got.extend_from_slice(&resp[..n]);
        }
        assert_eq!(status_of(&got), 200);
    }
    let want = format!(
        "PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\n",
        client.port(),
        proxy.addr().port()
    );
    for _ in 0..2 {
        let (raw, h) = headers.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(String::from_utf8_lossy(&raw), want);
        assert_eq!(h.version, 1);
        assert_eq!(
            h.addresses,
            Addresses::Tcp4 {
                src: client.to_string().parse().unwrap(),
                dst: proxy.addr().to_string().parse().unwrap(),
            }
        );
    }
    assert_eq!(
        proxy.stat("cluster.pp.upstream_cx_total"),
        2,
        "one connection per request"
    );
    assert_eq!(proxy.stat("cluster.pp.upstream_cx_pool_reuse"), 0);
}

#[test]
fn v2_out_on_http_names_the_client() {
    let (backend, headers) = pp_backend(true);
    let proxy = Proxy::start(&http_out(backend, "v2"));
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let client = c.local_addr().unwrap();
    c.write_all(GET).unwrap();
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    assert_eq!(status_of(&resp), 200);
    let (raw, h) = headers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(&raw[..12], pp::V2_SIGNATURE);
    assert_eq!((h.version, h.command), (2, Command::Proxy));
    assert_eq!(
        h.addresses,
        Addresses::Tcp4 {
            src: client.to_string().parse().unwrap(),
            dst: proxy.addr().to_string().parse().unwrap(),
        }
    );
}

#[test]
fn tcp_listener_forwards_the_original_client_in_proxy_out() {
    let (backend, headers) = pp_backend(false);
    let proxy = Proxy::start(&format!(
        r#"
[[listeners]]
name = "t"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "pp"
proxy_protocol = true

[[clusters]]
name = "pp"
endpoints = ["{backend}"]
proxy_protocol = "v1"
"#
    ));
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"PROXY TCP4 203.0.113.9 198.51.100.1 5555 443\r\nhello")
        .unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"hello", "payload after the header, echoed");
    let (raw, h) = headers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&raw),
        format!(
            "PROXY TCP4 203.0.113.9 127.0.0.1 5555 {}\r\n",
            proxy.addr().port()
        )
    );
    assert_eq!(h.command, Command::Proxy);
}
