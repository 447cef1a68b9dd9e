use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::handlers::{Query, percent_decode};
use super::*;
use crate::config::{DEFAULT_CONFIG, parse_str};
use crate::stats::Store;

const TEXT: &str = r#"
workers = 2

[admin]
address = "127.0.0.1:9901"

[[listeners]]
name = "ingress"
address = "127.0.0.1:0"

  [[listeners.virtual_hosts]]
  name = "default"
  domains = ["*"]

    [[listeners.virtual_hosts.routes]]
    name = "all"
    prefix = "/"
    cluster = "backend"

[[clusters]]
name = "backend"
endpoints = ["127.0.0.1:8081", "127.0.0.1:8082"]
"#;

fn start(text: &str) -> (SocketAddr, Arc<AdminState>) {
    let cfg = parse_str(text, "<test>").unwrap();
    let store = Store::new(cfg.workers);
    let state = AdminState::new(store, Arc::new(ArcSwap::from_pointee(cfg)));
    let addr = spawn("127.0.0.1:0".parse().unwrap(), Arc::clone(&state)).unwrap();
    assert_ne!(addr.port(), 0);
    (addr, state)
}

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (Content-Length framed; no body for HEAD).
fn read_response(s: &mut TcpStream, head_request: bool) -> Resp {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "eof in head: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .expect("content-length always set")
        .1
        .parse()
        .unwrap();
    let mut body = vec![0u8; if head_request { 0 } else { len }];
    s.read_exact(&mut body).unwrap();
    Resp {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn request(addr: SocketAddr, method: &str, target: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let r = read_response(&mut s, method == "HEAD");
    assert_eq!(r.header("connection"), Some("close"));
    // The server closes after a Connection: close request.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "trailing bytes {rest:?}");
    r
}

fn get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target)
}

#[test]
fn index_lists_endpoints() {
    let (addr, _) = start(TEXT);
    let r = get(addr, "/");
    assert_eq!(r.status, 200);
    for p in [
        "/stats",
        "/stats/prometheus",
        "/clusters",
        "/config_dump",
        "/ready",
        "/server_info",
    ] {
        assert!(r.body.contains(p), "{p} missing from {}", r.body);
    }
    assert!(r.body.contains("POST /healthcheck/fail"));
    assert_eq!(get(addr, "/nope").status, 404);
}

#[test]
fn stats_text_filter_and_json() {
    let (addr, state) = start(TEXT);
    let c = state.stats.cluster("backend");
    c.stats.core(0).upstream_rq_total.add(2);
    c.stats.core(1).upstream_rq_total.inc();
    let l = c.upstream_rq_time.local();
    l.record(1500);
    l.flush();

    let r = get(addr, "/stats");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        r.body
            .lines()
            .any(|l| l == "cluster.backend.upstream_rq_total: 3"),
        "{}",
        r.body
    );
    assert!(r.body.lines().any(|l| l == "server.live: 1"));
    assert!(r.body.lines().any(|l| l == "server.concurrency: 2"));

    // `filter` is percent-decoded: "upstream_rq_(total|time)$".
    let r = get(addr, "/stats?filter=upstream_rq_%28total%7Ctime%29%24");
    assert_eq!(r.status, 200);
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.body);
    assert_eq!(lines[0], "cluster.backend.upstream_rq_total: 3");
    let p50 = lines[1]
        .split(" P50(nan,")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let p50: f64 = p50.parse().unwrap();
    assert!((p50 - 1.5).abs() <= 0.015, "{}", lines[1]);

    let r = get(addr, "/stats?format=json&filter=rq_total");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["stats"][0]["name"], "cluster.backend.upstream_rq_total");
    assert_eq!(v["stats"][0]["value"], 3);

    assert_eq!(get(addr, "/stats?filter=%28").status, 400, "bad regex");
    assert_eq!(get(addr, "/stats?filter=%zz").status, 400, "bad escape");
    assert_eq!(get(addr, "/stats?format=xml").status, 400);
}

#[test]
fn prometheus_endpoint() {
    let (addr, state) = start(TEXT);
    state
        .stats
        .http("ingress")
        .stats
        .core(1)
        .downstream_rq_5xx
        .inc();
    let r = get(addr, "/stats/prometheus");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        r.body
            .contains("# TYPE ringway_http_downstream_rq_5xx counter\n")
    );
    assert!(
        r.body
            .contains("ringway_http_downstream_rq_5xx{http_name=\"ingress\"} 1\n")
    );
    assert!(r.body.contains("ringway_server_live 1\n"));
}

#[test]
fn clusters_text_and_json() {
    let (addr, state) = start(TEXT);
    let e = state
        .stats
        .endpoint("backend", "127.0.0.1:8082".parse().unwrap());
    e.core(0).rq_total.add(4);
    e.core(1).cx_active.inc();
    let r = get(addr, "/clusters");
    assert_eq!(r.status, 200);
    let lines: Vec<&str> = r.body.lines().collect();
    for want in [
        "backend::observability_name::backend",
        "backend::127.0.0.1:8081::rq_total::0",
        "backend::127.0.0.1:8081::cx_active::0",
        "backend::127.0.0.1:8082::rq_total::4",
        "backend::127.0.0.1:8082::cx_active::1",
        "backend::127.0.0.1:8082::health_flags::healthy",
        "backend::127.0.0.1:8082::weight::1",
    ] {
        assert!(lines.contains(&want), "{want} missing from\n{}", r.body);
    }
    let r = get(addr, "/clusters?format=json");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let c = &v["cluster_statuses"][0];
    assert_eq!(c["name"], "backend");
    let h = &c["host_statuses"][1];
    assert_eq!(h["address"]["socket_address"]["port_value"], 8082);
    let rq = h["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rq_total")
        .unwrap();
    assert_eq!(rq["value"], "4");
    assert_eq!(rq["type"], "COUNTER");
    // Reading /clusters creates no endpoint stats.
    assert!(
        state
            .stats
            .existing_endpoint("backend", "127.0.0.1:8081".parse().unwrap())
            .is_none()
    );
}

#[test]
fn config_dump_and_server_info() {
    let (addr, _) = start(TEXT);
    let r = get(addr, "/config_dump");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["clusters"][0]["name"], "backend");
    assert_eq!(v["listeners"][0]["name"], "ingress");

    let r = get(addr, "/server_info");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["state"], "LIVE");
    assert_eq!(v["workers"], 2);
    assert!(v["uptime_seconds"].is_u64());
}

#[test]
fn default_config_is_served() {
    let (addr, _) = start(DEFAULT_CONFIG);
    let r = get(addr, "/config_dump");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["listeners"][0]["name"], "http");
    assert_eq!(get(addr, "/clusters").status, 200);
}

#[test]
fn ready_and_healthcheck_switch() {
    let (addr, state) = start(TEXT);
    let r = get(addr, "/ready");
    assert_eq!((r.status, r.body.as_str()), (200, "LIVE\n"));

    // Mutating endpoints are POST only.
    let r = get(addr, "/healthcheck/fail");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert!(!state.health_failed.load(Ordering::Relaxed));
    assert_eq!(request(addr, "POST", "/ready").status, 405);

    assert_eq!(request(addr, "POST", "/healthcheck/fail").status, 200);
    assert!(state.health_failed.load(Ordering::Relaxed));
    let r = get(addr, "/ready");
    assert_eq!((r.status, r.body.as_str()), (503, "HEALTH_CHECK_FAILED\n"));
    assert!(
        get(addr, "/stats")
            .body
            .lines()
            .any(|l| l == "server.live: 0")
    );
    let info: serde_json::Value = serde_json::from_str(&get(addr, "/server_info").body).unwrap();
    assert_eq!(info["state"], "HEALTH_CHECK_FAILED");

    state.draining.store(true, Ordering::Relaxed);
    let r = get(addr, "/ready");
    assert_eq!((r.status, r.body.as_str()), (503, "DRAINING\n"));
    state.draining.store(false, Ordering::Relaxed);

    assert_eq!(request(addr, "POST", "/healthcheck/ok").status, 200);
    assert_eq!(get(addr, "/ready").status, 200);
}

#[test]
fn keep_alive_head_and_bodies() {
    let (addr, _) = start(TEXT);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Two pipelined requests on one connection, then HEAD, then a POST with a body.
    s.write_all(
        b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\nGET /server_info HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    let r1 = read_response(&mut s, false);
    assert_eq!(r1.status, 200);
    assert_eq!(r1.header("connection"), None);
    let r2 = read_response(&mut s, false);
    assert!(r2.body.starts_with('{'));
    s.write_all(b"HEAD /stats HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let h = read_response(&mut s, true);
    assert_eq!(h.status, 200);
    assert!(
        h.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    s.write_all(b"POST /healthcheck/ok HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(read_response(&mut s, false).status, 200);
    s.write_all(b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, false).body, "LIVE\n");
}

#[test]
fn bad_requests_get_an_error_and_close() {
    let (addr, _) = start(TEXT);
    for (req, status) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], 400), // no Host
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (
            b"POST /healthcheck/ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            411,
        ),
        (
            b"POST /healthcheck/ok HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req).unwrap();
        let r = read_response(&mut s, false);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(req));
        assert_eq!(r.header("connection"), Some("close"));
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}

#[test]
fn query_parsing() {
    let q = Query::parse(b"filter=a%2Bb+c&format=json&flag&=x").unwrap();
    assert_eq!(q.get("filter"), Some("a+b+c"));
    assert_eq!(q.get("format"), Some("json"));
    assert_eq!(q.get("flag"), Some(""));
    assert_eq!(q.get("missing"), None);
    assert_eq!(percent_decode(b"%e2%9c%93").unwrap(), "\u{2713}");
    assert!(percent_decode(b"%4").is_err());
    assert!(percent_decode(b"%ff").is_err());
}
