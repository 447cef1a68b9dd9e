//! Upstream failures and what operators see of them: the status each failure maps to (502
//! connect refused, 504 route timeout, 502 upstream closed, 502 bad response, 503 connection
//! limit), the transparent retry of a request sent on a stale pooled connection, exact stat
//! values after a known request sequence, the admin API (`/stats`, `/stats/prometheus`,
//! `/clusters`, `/config_dump`, `/ready`, `/healthcheck/fail`) and the access log in both
//! formats, with Envoy's response flags.
//!
//! Backends are the harness's hyper servers or a raw std backend defined here that writes
//! exactly the bytes a test needs (nothing, garbage, a response then a close).
//! DESIGN.md "Errors and bad input", "observability"; docs/config.md.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 client helpers
// ---------------------------------------------------------------------------------------------

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    /// `(lowercase name, value)` in wire order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The whole head as text, for failure messages.
    head: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parse one complete response (content-length or no body) from the front of `buf`; `None`
/// when `buf` does not hold a whole one yet. Returns the response and the bytes it used.
fn parse_response(buf: &[u8]) -> Option<(Resp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.get(9..12)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(Some(0), |(_, v)| v.parse::<usize>().ok())?;
    let len = if status == 204 || status == 304 {
        0
    } else {
        len
    };
    let body = buf.get(end..end + len)?.to_vec();
    Some((
        Resp {
            status,
            headers,
            body,
            head,
        },
        end + len,
    ))
}

/// `GET path` with `Connection: close` and extra header lines; the single response.
fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Resp {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    let bytes = raw_exchange(addr, req.as_bytes());
    match parse_response(&bytes) {
        Some((r, _)) => r,
        None => panic!(
            "no complete response to {path}: {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// A keep-alive raw client connection: one request at a time.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    fn get(&mut self, path: &str) -> Resp {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        self.stream.write_all(req.as_bytes()).expect("write");
        let mut tmp = [0u8; 16 * 1024];
        for _ in 0..10_000 {
            if let Some((r, used)) = parse_response(&self.buf) {
                self.buf.drain(..used);
                return r;
            }
            match self.stream.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
        panic!(
            "no response to {path}: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }
}

/// POST to an admin path; (status, body).
fn admin_post(proxy: &Proxy, path: &str) -> (u16, String) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let bytes = raw_exchange(proxy.admin(), req.as_bytes());
    let r = parse_response(&bytes).expect("admin response").0;
    (r.status, r.body_str())
}

/// Bounded wait (5 s) for a condition outside the proxy (backend counters).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for: {what}");
}

/// Wait until every stat has its expected value; on time-out, fail listing the actual values.
fn expect_stats(proxy: &Proxy, expected: &[(&str, i64)]) {
    let mut ok = false;
    for _ in 0..200 {
        if expected.iter().all(|(n, v)| proxy.stat(n) == *v) {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if !ok {
        let actual: Vec<String> = expected
            .iter()
            .map(|(n, v)| format!("{n}: expected {v}, got {}", proxy.stat(n)))
            .collect();
        panic!("stats differ:\n{}", actual.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// A raw backend
// ---------------------------------------------------------------------------------------------

/// What a [`RawBackend`] does with each request head it reads.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Read the head, then close without a byte of response.
    CloseWithoutAnswer,
    /// Write these bytes (whatever they are) and close.
    AnswerThenClose(&'static [u8]),
}

/// A std-socket backend that reads request heads (no bodies) and behaves as told. Counts
/// connections accepted and closed; stops accepting on drop.
struct RawBackend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawBackend {
    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (stop2, conns2, closed2) = (stop.clone(), connections.clone(), closed.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                conns2.fetch_add(1, Ordering::SeqCst);
                let closed = closed2.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    for _ in 0..1000 {
                        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            if let Behaviour::AnswerThenClose(bytes) = behaviour {
                                let _ = s.write_all(bytes);
                            }
                            break;
                        }
                        match s.read(&mut tmp) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    drop(s);
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            connections,
            closed,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Access log helpers
// ---------------------------------------------------------------------------------------------

/// Add `access_log` (JSON) to the first listener of `config` (apply before [`one_worker`]).
fn with_json_log(config: &str, log: &TempLog) -> String {
    with_log(config, log, "json")
}

fn with_log(config: &str, log: &TempLog, format: &str) -> String {
    let anchor = "address = \"127.0.0.1:0\"\n";
    assert!(config.contains(anchor), "{config}");
    config.replacen(
        anchor,
        &format!(
            "{anchor}access_log = {{ path = \"{}\", format = \"{format}\" }}\n",
            log.path()
        ),
        1,
    )
}

/// `workers = 1` (so pooling and per-worker limits are deterministic) before `config`. The
/// `[admin]` table comes with it: top-level keys must precede every table, and the harness
/// only adds its own `[admin]` when the config has none.
fn one_worker(config: &str) -> String {
    format!("workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n{config}")
}

/// One listener `main`, `*` vhost, route `/` to cluster `backend` at `backend` with `timeout`.
fn route_with_timeout(backend: SocketAddr, timeout: &str) -> String {
    one_route(backend).replace(
        "cluster = \"backend\"\n",
        &format!("cluster = \"backend\"\n    timeout = \"{timeout}\"\n"),
    )
}

// ---------------------------------------------------------------------------------------------
// Upstream failures
// ---------------------------------------------------------------------------------------------

#[test]
fn connect_refused_is_502_uf_and_counted() {
    let log = TempLog::new("refused");
    let down = closed_port();
    let proxy = Proxy::start(&with_json_log(&one_route(down), &log));
    let r = get(proxy.addr(), "/x", &[]);
    assert_eq!(r.status, 502, "{}", r.head);
    assert_eq!(r.body_str(), "upstream connect error\n");
    assert_eq!(r.header("server"), Some("ringway"), "{}", r.head);
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_cx_connect_fail", 1),
            ("cluster.backend.upstream_cx_total", 1),
            ("cluster.backend.upstream_cx_active", 0),
            ("http.main.downstream_rq_5xx", 1),
        ],
    );
    let entries = log.json_by_path(&proxy, 1);
    let e = &entries["/x"];
    assert_eq!(e["response_code"], 502, "{e}");
    assert_eq!(e["response_flags"], "UF", "{e}");
    assert_eq!(e["upstream_host"], down.to_string(), "{e}");
}

#[test]
fn route_timeout_is_504_ut_and_counted() {
    let log = TempLog::new("timeout");
    // Answers only after far longer than the route timeout (the runtime is dropped, and the
    // sleep with it, when the backend is).
    let backend = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        full(200, "too late")
    });
    let proxy = Proxy::start(&with_json_log(
        &route_with_timeout(backend.addr, "200ms"),
        &log,
    ));
    let r = get(proxy.addr(), "/slow", &[]);
    assert_eq!(r.status, 504, "{}", r.head);
    assert_eq!(r.body_str(), "upstream request timeout\n");
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_rq_timeout", 1),
            ("cluster.backend.upstream_rq_total", 1),
            ("cluster.backend.upstream_rq_active", 0),
            ("http.main.downstream_rq_5xx", 1),
        ],
    );
    let entries = log.json_by_path(&proxy, 1);
    assert_eq!(
        entries["/slow"]["response_flags"], "UT",
        "{}",
        entries["/slow"]
    );
}

#[test]
fn upstream_close_before_response_is_502_uc() {
    let log = TempLog::new("uc");
    let backend = RawBackend::start(Behaviour::CloseWithoutAnswer);
    let proxy = Proxy::start(&with_json_log(&one_route(backend.addr), &log));
    let r = get(proxy.addr(), "/gone", &[]);
    assert_eq!(r.status, 502, "{}", r.head);
    assert_eq!(r.body_str(), "upstream reset before response\n");
    // A fresh connection is not retried: the upstream saw the request and said nothing.
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1);
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_rq_retry", 0),
            ("cluster.backend.upstream_cx_active", 0),
            ("http.main.downstream_rq_5xx", 1),
        ],
    );
    let entries = log.json_by_path(&proxy, 1);
    assert_eq!(
        entries["/gone"]["response_flags"], "UC",
        "{}",
        entries["/gone"]
    );
}

#[test]
fn garbage_upstream_response_is_502_upe() {
    let log = TempLog::new("upe");
    let backend = RawBackend::start(Behaviour::AnswerThenClose(
        b"this is not http at all\r\n\r\n",
    ));
    let proxy = Proxy::start(&with_json_log(&one_route(backend.addr), &log));
    let r = get(proxy.addr(), "/bad", &[]);
    assert_eq!(r.status, 502, "{}", r.head);
    assert_eq!(r.body_str(), "upstream protocol error\n");
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_cx_protocol_error", 1),
            ("http.main.downstream_rq_5xx", 1),
        ],
    );
    let entries = log.json_by_path(&proxy, 1);
    assert_eq!(
        entries["/bad"]["response_flags"], "UPE",
        "{}",
        entries["/bad"]
    );
}

#[test]
fn connection_limit_is_503_uo() {
    let log = TempLog::new("uo");
    let release = Arc::new(AtomicBool::new(false));
    let gate = release.clone();
    // Holds each request until released (bounded: 10 s).
    let backend = Backend::start(move |_req| {
        let gate = gate.clone();
        async move {
            for _ in 0..1000 {
                if gate.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            full(200, "slow")
        }
    });
    let config = one_route(backend.addr).replace(
        "endpoints = [",
        "max_connections_per_worker = 1\nendpoints = [",
    );
    let proxy = Proxy::start(&one_worker(&with_json_log(&config, &log)));
    let addr = proxy.addr();
    let first = std::thread::spawn(move || get(addr, "/first", &[]));
    wait_for("first request at the backend", || {
        backend.request_count() == 1
    });
    let second = get(addr, "/second", &[]);
    release.store(true, Ordering::SeqCst);
    let first = first.join().expect("first request");
    assert_eq!(second.status, 503, "{}", second.head);
    assert_eq!(second.body_str(), "upstream connection limit reached\n");
    assert_eq!(first.status, 200, "{}", first.head);
    assert_eq!(first.body_str(), "slow");
    assert_eq!(backend.connection_count(), 1);
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_cx_overflow", 1),
            ("cluster.backend.upstream_cx_total", 1),
            ("http.main.downstream_rq_2xx", 1),
            ("http.main.downstream_rq_5xx", 1),
        ],
    );
    let entries = log.json_by_path(&proxy, 2);
    assert_eq!(
        entries["/second"]["response_flags"], "UO",
        "{}",
        entries["/second"]
    );
    assert_eq!(
        entries["/first"]["response_flags"], "-",
        "{}",
        entries["/first"]
    );
}

#[test]
fn stale_pooled_connection_is_retried_for_get() {
    // Answers with a length-delimited keep-alive response, then closes: the proxy pools a
    // connection the upstream has already closed.
    let backend = RawBackend::start(Behaviour::AnswerThenClose(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ));
    let proxy = Proxy::start(&one_worker(&one_route(backend.addr)));
    let r = get(proxy.addr(), "/one", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body_str(), "ok");
    wait_for("backend closed the first connection", || {
        backend.closed.load(Ordering::SeqCst) == 1
    });
    let r = get(proxy.addr(), "/two", &[]);
    assert_eq!(r.status, 200, "retried transparently: {}", r.head);
    assert_eq!(r.body_str(), "ok");
    assert_eq!(backend.connections.load(Ordering::SeqCst), 2);
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_rq_retry", 1),
            ("cluster.backend.upstream_rq_total", 2),
            ("cluster.backend.upstream_cx_total", 2),
            ("http.main.downstream_rq_2xx", 2),
            ("http.main.downstream_rq_5xx", 0),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------------

fn two_cluster_config(ok: SocketAddr, failing: SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/ok"
    cluster = "backend"
    [[listeners.virtual_hosts.routes]]
    prefix = "/fail"
    cluster = "failing"

[[clusters]]
name = "backend"
endpoints = ["{ok}"]

[[clusters]]
name = "failing"
endpoints = ["{failing}"]
"#
    )
}

#[test]
fn stats_after_a_known_sequence_are_exact() {
    let ok = Backend::fixed(200, "fine");
    let failing = Backend::fixed(500, "broken");
    let proxy = Proxy::start(&two_cluster_config(ok.addr, failing.addr));
    expect_stats(
        &proxy,
        &[
            ("http.main.downstream_rq_total", 0),
            ("listener.main.downstream_cx_total", 0),
        ],
    );
    {
        let mut conn = Conn::open(proxy.addr());
        for _ in 0..3 {
            assert_eq!(conn.get("/ok").status, 200);
        }
        for _ in 0..2 {
            assert_eq!(conn.get("/nowhere").status, 404);
        }
        assert_eq!(conn.get("/fail").status, 500);
        expect_stats(
            &proxy,
            &[
                ("http.main.downstream_rq_total", 6),
                ("http.main.downstream_rq_2xx", 3),
                ("http.main.downstream_rq_4xx", 2),
                ("http.main.downstream_rq_5xx", 1),
                ("http.main.downstream_rq_3xx", 0),
                ("http.main.no_route", 2),
                ("http.main.downstream_rq_active", 0),
                ("http.main.downstream_cx_total", 1),
                ("http.main.downstream_cx_active", 1),
                ("listener.main.downstream_cx_total", 1),
                ("listener.main.downstream_cx_active", 1),
                ("cluster.backend.upstream_rq_total", 3),
                ("cluster.backend.upstream_rq_2xx", 3),
                ("cluster.backend.upstream_rq_5xx", 0),
                ("cluster.backend.upstream_cx_total", 1),
                ("cluster.backend.upstream_cx_active", 1),
                ("cluster.failing.upstream_rq_total", 1),
                ("cluster.failing.upstream_rq_5xx", 1),
                ("cluster.failing.upstream_cx_total", 1),
            ],
        );
    }
    // The client closed: the downstream connection is gone, the pooled upstream ones stay.
    expect_stats(
        &proxy,
        &[
            ("listener.main.downstream_cx_active", 0),
            ("listener.main.downstream_cx_destroy", 1),
            ("http.main.downstream_cx_active", 0),
            ("cluster.backend.upstream_cx_active", 1),
        ],
    );
    assert_eq!(ok.connection_count(), 1);
    assert_eq!(ok.request_count(), 3);
    assert_eq!(failing.request_count(), 1);
}

#[test]
fn stats_filter_selects_by_regex() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&one_route(backend.addr));
    assert_eq!(get(proxy.addr(), "/", &[]).status, 200);
    proxy.eventually("request counted", |p| {
        p.stat("cluster.backend.upstream_rq_total") == 1
    });

    let (status, body) = proxy.admin_get("/stats?filter=upstream_rq_total");
    assert_eq!(status, 200, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert!(!lines.is_empty());
    assert!(
        lines.iter().all(|l| l.contains("upstream_rq_total")),
        "{body}"
    );
    assert!(
        lines.contains(&"cluster.backend.upstream_rq_total: 1"),
        "{body}"
    );

    // `^listener\.` percent-encoded.
    let (status, body) = proxy.admin_get("/stats?filter=%5Elistener%5C.");
    assert_eq!(status, 200, "{body}");
    assert!(body.lines().count() > 0, "{body}");
    assert!(body.lines().all(|l| l.starts_with("listener.")), "{body}");
    assert!(
        body.contains("listener.main.downstream_cx_total: 1"),
        "{body}"
    );

    let (status, body) = proxy.admin_get("/stats?filter=no_such_stat_anywhere");
    assert_eq!(status, 200);
    assert_eq!(body.trim(), "");

    // An invalid regex is refused, not ignored.
    let (status, _) = proxy.admin_get("/stats?filter=%28");
    assert_eq!(status, 400);
}

/// A parsed Prometheus exposition: sample `name{labels}` (as written) -> value.
type Samples = BTreeMap<String, f64>;

/// Labels sorted by name, for comparing series.
type Labels = Vec<(String, String)>;

/// Checks text format 0.0.4 as ringway writes it: every non-comment line is
/// `name{labels} value` or `name value`; each family has exactly one `# HELP` and one `# TYPE`
/// before its samples; every sample belongs to a declared family; histogram buckets are
/// cumulative with ascending `le`, end in `+Inf`, `+Inf` equals `_count`, and `_sum` exists.
fn check_prometheus(text: &str) -> Result<Samples, String> {
    let mut help: BTreeMap<String, usize> = BTreeMap::new();
    let mut kind: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::new();
    // (metric name, labels) -> value, for _count / _sum lookups.
    let mut by_labels: BTreeMap<(String, Labels), f64> = BTreeMap::new();
    // (histogram family, labels without le) -> [(le, cumulative count)] in order.
    let mut buckets: BTreeMap<(String, Labels), Vec<(f64, f64)>> = BTreeMap::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for (no, line) in text.lines().enumerate() {
        let no = no + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.trim_start().splitn(3, ' ');
            let (word, name, arg) = (parts.next(), parts.next(), parts.next());
            match (word, name) {
                (Some("HELP"), Some(name)) => {
                    *help.entry(name.to_owned()).or_default() += 1;
                }
                (Some("TYPE"), Some(name)) => {
                    let k = arg.ok_or_else(|| format!("line {no}: TYPE without a type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&k) {
                        return Err(format!("line {no}: unknown type {k}"));
                    }
                    if kind.insert(name.to_owned(), k.to_owned()).is_some() {
                        return Err(format!("line {no}: second TYPE for {name}"));
                    }
                }
                _ => return Err(format!("line {no}: unexpected comment {line:?}")),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("line {no}: no value: {line:?}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .map_err(|_| format!("line {no}: bad value {v:?}"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (
                n,
                l.strip_suffix('}')
                    .ok_or_else(|| format!("line {no}: unclosed labels: {line:?}"))?,
            ),
            None => (series, ""),
        };
        if !valid_name(name) {
            return Err(format!("line {no}: bad metric name {name:?}"));
        }
        let mut labels = split_labels(labels).map_err(|e| format!("line {no}: {e}"))?;
        if let Some((k, _)) = labels.iter().find(|(k, _)| !valid_name(k)) {
            return Err(format!("line {no}: bad label name {k:?}"));
        }
        labels.sort();
        // Which family: the name itself, or a histogram's _bucket/_sum/_count.
        let family = if kind.contains_key(name) {
            name.to_owned()
        } else {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| kind.get(*f).is_some_and(|k| k == "histogram"))
                })
                .map(str::to_owned)
                .ok_or_else(|| format!("line {no}: sample {name} before/without its TYPE"))?
        };
        if help.get(&family).copied().unwrap_or(0) == 0 {
            return Err(format!("line {no}: sample of {family} before/without HELP"));
        }
        if kind[&family] == "histogram" && name.ends_with("_bucket") {
            let le = labels
                .iter()
                .find(|(k, _)| k == "le")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("line {no}: bucket without le"))?;
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse()
                    .map_err(|_| format!("line {no}: bad le {le:?}"))?
            };
            let rest: Labels = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            buckets
                .entry((family.clone(), rest))
                .or_default()
                .push((le, value));
        }
        if samples.insert(series.to_owned(), value).is_some() {
            return Err(format!("line {no}: duplicate series {series}"));
        }
        by_labels.insert((name.to_owned(), labels), value);
    }
    for (name, n) in &help {
        if *n != 1 {
            return Err(format!("{name}: {n} HELP lines"));
        }
        if !kind.contains_key(name) {
            return Err(format!("{name}: HELP without TYPE"));
        }
    }
    if let Some(name) = kind.keys().find(|k| !help.contains_key(*k)) {
        return Err(format!("{name}: TYPE without HELP"));
    }
    for ((family, labels), bs) in &buckets {
        let series = format!("{family}{labels:?}");
        for w in bs.windows(2) {
            if w[1].0 <= w[0].0 {
                return Err(format!("{series}: le not ascending"));
            }
            if w[1].1 < w[0].1 {
                return Err(format!("{series}: buckets not cumulative"));
            }
        }
        let Some(&(le, last)) = bs.last() else {
            continue;
        };
        if le != f64::INFINITY {
            return Err(format!("{series}: last bucket is not +Inf"));
        }
        let count = by_labels
            .get(&(format!("{family}_count"), labels.clone()))
            .ok_or_else(|| format!("{series}: no _count"))?;
        if *count != last {
            return Err(format!("{series}: +Inf bucket {last} != _count {count}"));
        }
        if !by_labels.contains_key(&(format!("{family}_sum"), labels.clone())) {
            return Err(format!("{series}: no _sum"));
        }
    }
    Ok(samples)
}

/// `k="v",k2="v2"` -> pairs, unescaping `\\`, `\"` and `\n`.
fn split_labels(s: &str) -> Result<Labels, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    for _ in 0..1000 {
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next() != Some('"') {
            return Err(format!("label {key}: value not quoted"));
        }
        let mut value = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                '"' => {
                    closed = true;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return Err(format!("label {key}: unterminated value"));
        }
        out.push((key.trim().to_owned(), value));
        match chars.next() {
            None => return Ok(out),
            Some(',') => {}
            Some(c) => return Err(format!("unexpected {c:?} after a label")),
        }
    }
    Err("too many labels".into())
}

#[test]
fn prometheus_checker_rejects_malformed_output() {
    let good = "# HELP a_total things\n# TYPE a_total counter\na_total{x=\"1\"} 3\n\
        # HELP h hist\n# TYPE h histogram\nh_bucket{x=\"1\",le=\"1\"} 1\nh_bucket{x=\"1\",le=\"+Inf\"} 2\nh_sum{x=\"1\"} 5\nh_count{x=\"1\"} 2\n";
    let samples = check_prometheus(good).expect("well-formed");
    assert_eq!(samples["a_total{x=\"1\"}"], 3.0);
    let bad = [
        // No TYPE.
        "# HELP a x\na 1\n",
        // Two HELP lines.
        "# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n",
        // Not a number.
        "# HELP a x\n# TYPE a gauge\na one\n",
        // Buckets not cumulative.
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        // +Inf != _count.
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        // No +Inf bucket.
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        // Unterminated label.
        "# HELP a x\n# TYPE a gauge\na{x=\"1} 1\n",
        // Sample of an undeclared family.
        "# HELP a x\n# TYPE a gauge\nb 1\n",
    ];
    for b in bad {
        assert!(check_prometheus(b).is_err(), "accepted: {b:?}");
    }
}

#[test]
fn prometheus_output_parses_and_has_cluster_and_listener_metrics() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&one_route(backend.addr));
    assert_eq!(get(proxy.addr(), "/", &[]).status, 200);
    // Histograms are merged from the workers about once a second.
    let mut samples = Samples::new();
    proxy.eventually("histograms merged", |p| {
        let (status, body) = p.admin_get("/stats/prometheus");
        assert_eq!(status, 200);
        samples = check_prometheus(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        samples
            .get("ringway_cluster_upstream_rq_time_count{cluster_name=\"backend\"}")
            .copied()
            == Some(1.0)
    });
    let expect = [
        (
            "ringway_cluster_upstream_rq_total{cluster_name=\"backend\"}",
            1.0,
        ),
        (
            "ringway_cluster_upstream_rq_2xx{cluster_name=\"backend\"}",
            1.0,
        ),
        (
            "ringway_cluster_upstream_cx_total{cluster_name=\"backend\"}",
            1.0,
        ),
        (
            "ringway_listener_downstream_cx_total{listener_name=\"main\"}",
            1.0,
        ),
        ("ringway_http_downstream_rq_total{http_name=\"main\"}", 1.0),
        ("ringway_http_downstream_rq_2xx{http_name=\"main\"}", 1.0),
        (
            "ringway_http_downstream_rq_time_count{http_name=\"main\"}",
            1.0,
        ),
    ];
    for (series, v) in expect {
        assert_eq!(samples.get(series).copied(), Some(v), "{series}");
    }
}

#[test]
fn clusters_lists_the_endpoints() {
    let a = Backend::fixed(200, "a");
    let b = Backend::fixed(200, "b");
    let config = one_route(a.addr).replace(
        &format!("endpoints = [\"{}\"]", a.addr),
        &format!(
            "endpoints = [\"{}\", {{ address = \"{}\", weight = 3 }}]",
            a.addr, b.addr
        ),
    );
    assert!(config.contains("weight = 3"), "{config}");
    let proxy = Proxy::start(&config);
    let mut conn = Conn::open(proxy.addr());
    for _ in 0..8 {
        assert_eq!(conn.get("/").status, 200);
    }
    drop(conn);
    proxy.eventually("requests counted", |p| {
        p.stat("cluster.backend.upstream_rq_total") == 8
    });
    let (status, text) = proxy.admin_get("/clusters");
    assert_eq!(status, 200, "{text}");
    for (addr, weight) in [(a.addr, 1), (b.addr, 3)] {
        assert!(
            text.contains(&format!("backend::{addr}::weight::{weight}\n")),
            "{addr}: {text}"
        );
        assert!(
            text.contains(&format!("backend::{addr}::health_flags::healthy\n")),
            "{text}"
        );
    }
    let rq = |addr: SocketAddr| -> i64 {
        let prefix = format!("backend::{addr}::rq_total::");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no rq_total for {addr}: {text}"))
    };
    assert_eq!(rq(a.addr) + rq(b.addr), 8, "{text}");
    assert_eq!(rq(a.addr) as usize, a.request_count());
    assert_eq!(rq(b.addr) as usize, b.request_count());

    let (status, json) = proxy.admin_get("/clusters?format=json");
    assert_eq!(status, 200, "{json}");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let cluster = &v["cluster_statuses"][0];
    assert_eq!(cluster["name"], "backend", "{v}");
    let ports: Vec<u64> = cluster["host_statuses"]
        .as_array()
        .expect("host_statuses")
        .iter()
        .map(|h| {
            h["address"]["socket_address"]["port_value"]
                .as_u64()
                .expect("port")
        })
        .collect();
    assert_eq!(
        ports,
        [u64::from(a.addr.port()), u64::from(b.addr.port())],
        "{v}"
    );
}

/// Does any string in `v` (recursively) satisfy `f`?
fn any_string(v: &Value, f: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().any(|x| any_string(x, f)),
        Value::Object(o) => o.iter().any(|(k, x)| f(k) || any_string(x, f)),
        _ => false,
    }
}

#[test]
fn config_dump_is_json_with_the_cluster() {
    let backend = Backend::fixed(200, "ok");
    let config = one_route(backend.addr).replace("name = \"backend\"", "name = \"orders-svc\"");
    let config = config.replace("cluster = \"backend\"", "cluster = \"orders-svc\"");
    let proxy = Proxy::start(&config);
    let (status, body) = proxy.admin_get("/config_dump");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(any_string(&v, &|s| s == "orders-svc"), "{v}");
    let ep = backend.addr.to_string();
    assert!(any_string(&v, &|s| s == ep), "endpoint {ep}: {v}");
    assert!(!any_string(&v, &|s| s == "backend"), "{v}");
}

#[test]
fn ready_and_healthcheck_fail() {
    let backend = Backend::fixed(200, "ok");
    let proxy = Proxy::start(&one_route(backend.addr));
    assert_eq!(proxy.admin_get("/ready"), (200, "LIVE\n".to_owned()));
    // Mutations need POST.
    assert_eq!(proxy.admin_get("/healthcheck/fail").0, 405);
    assert_eq!(proxy.admin_get("/ready").0, 200);

    assert_eq!(admin_post(&proxy, "/healthcheck/fail").0, 200);
    let (status, body) = proxy.admin_get("/ready");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body.trim(), "HEALTH_CHECK_FAILED");
    // Traffic is still served: the switch only tells load balancers to stop sending.
    assert_eq!(get(proxy.addr(), "/", &[]).status, 200);

    assert_eq!(admin_post(&proxy, "/healthcheck/ok").0, 200);
    assert_eq!(proxy.admin_get("/ready").0, 200);
}

// ---------------------------------------------------------------------------------------------
// Access log
// ---------------------------------------------------------------------------------------------

/// `/ok` -> backend, `/down` -> cluster `down` (refused), anything else: no route.
fn log_config(ok: SocketAddr, down: SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    name = "ok-route"
    prefix = "/ok"
    cluster = "backend"
    [[listeners.virtual_hosts.routes]]
    prefix = "/down"
    cluster = "down"

[[clusters]]
name = "backend"
endpoints = ["{ok}"]

[[clusters]]
name = "down"
endpoints = ["{down}"]
"#
    )
}

#[test]
fn access_log_json_fields() {
    let log = TempLog::new("json");
    let backend = Backend::fixed(200, "hello");
    let down = closed_port();
    let proxy = Proxy::start(&with_json_log(&log_config(backend.addr, down), &log));
    let a = proxy.addr();
    let ok = get(
        a,
        "/ok?x=1",
        &[
            "User-Agent: agent/1.0",
            "X-Request-Id: rid-1",
            "X-Forwarded-For: 10.9.8.7",
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.head);
    assert_eq!(get(a, "/missing", &[]).status, 404);
    assert_eq!(get(a, "/down", &[]).status, 502);

    let e = log.json_by_path(&proxy, 3);
    let ok = &e["/ok?x=1"];
    assert_eq!(ok["method"], "GET", "{ok}");
    assert_eq!(ok["protocol"], "HTTP/1.1", "{ok}");
    assert_eq!(ok["response_code"], 200, "{ok}");
    assert_eq!(ok["response_flags"], "-", "{ok}");
    assert_eq!(ok["bytes_sent"], 5, "{ok}");
    assert_eq!(ok["bytes_received"], 0, "{ok}");
    assert_eq!(ok["upstream_host"], backend.addr.to_string(), "{ok}");
    assert_eq!(ok["user_agent"], "agent/1.0", "{ok}");
    assert_eq!(ok["request_id"], "rid-1", "{ok}");
    assert_eq!(ok["x_forwarded_for"], "10.9.8.7", "{ok}");
    assert_eq!(ok["authority"], "test", "{ok}");
    assert_eq!(ok["route_name"], "ok-route", "{ok}");
    assert!(ok["upstream_service_time_ms"].is_u64(), "{ok}");
    assert!(ok["duration_ms"].is_u64(), "{ok}");
    let start = ok["start_time"].as_str().expect("start_time");
    assert!(
        start.len() == 24 && start.ends_with('Z') && start.contains('T'),
        "{start}"
    );

    let nr = &e["/missing"];
    assert_eq!(nr["response_code"], 404, "{nr}");
    assert_eq!(nr["response_flags"], "NR", "{nr}");
    assert_eq!(nr["upstream_host"], Value::Null, "{nr}");
    assert_eq!(nr["upstream_service_time_ms"], Value::Null, "{nr}");
    assert_eq!(nr["route_name"], "", "{nr}");
    // A generated request id is logged.
    assert_eq!(nr["request_id"].as_str().map(str::len), Some(36), "{nr}");

    let uf = &e["/down"];
    assert_eq!(uf["response_code"], 502, "{uf}");
    assert_eq!(uf["response_flags"], "UF", "{uf}");
    assert_eq!(uf["upstream_host"], down.to_string(), "{uf}");
    assert_eq!(uf["route_name"], "all/1", "default route name: {uf}");
}

#[test]
fn access_log_default_text_format() {
    let log = TempLog::new("text");
    let backend = Backend::fixed(200, "hello");
    let down = closed_port();
    let proxy = Proxy::start(&with_log(&log_config(backend.addr, down), &log, "default"));
    let a = proxy.addr();
    assert_eq!(
        get(
            a,
            "/ok?x=1",
            &["User-Agent: agent/1.0", "X-Request-Id: rid-1"]
        )
        .status,
        200
    );
    assert_eq!(get(a, "/missing", &[]).status, 404);
    let lines = log.wait_lines(&proxy, 2);
    let ok_re = regex::Regex::new(&format!(
        r#"^\[\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\] "GET /ok\?x=1 HTTP/1\.1" 200 - 0 5 \d+ \d+ "-" "agent/1\.0" "rid-1" "test" "{}"$"#,
        regex::escape(&backend.addr.to_string())
    ))
    .unwrap();
    let nr_re = regex::Regex::new(
        r#"^\[[0-9T:.Z-]+\] "GET /missing HTTP/1\.1" 404 NR 0 9 \d+ - "-" "-" "[0-9a-f-]{36}" "test" "-"$"#,
    )
    .unwrap();
    assert!(lines.iter().any(|l| ok_re.is_match(l)), "{lines:#?}");
    assert!(lines.iter().any(|l| nr_re.is_match(l)), "{lines:#?}");
}

#[test]
fn access_log_has_the_request_id_sent_upstream() {
    let log = TempLog::new("rid");
    let backend = Backend::echo();
    let proxy = Proxy::start(&with_json_log(&one_route(backend.addr), &log));
    let r = get(proxy.addr(), "/rid", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    let sent = r
        .header("x-echo-h-x-request-id")
        .expect("generated id reached the backend")
        .to_owned();
    let e = log.json_by_path(&proxy, 1);
    assert_eq!(e["/rid"]["request_id"], sent.as_str(), "{}", e["/rid"]);
}

#[test]
fn access_log_counts_request_body_bytes() {
    let log = TempLog::new("body");
    let backend = Backend::echo();
    let proxy = Proxy::start(&with_json_log(&one_route(backend.addr), &log));
    let resp = raw_exchange(
        proxy.addr(),
        b"POST /up HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
    );
    let r = parse_response(&resp).expect("response").0;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body_str(), "hello world");
    let e = log.json_by_path(&proxy, 1);
    assert_eq!(e["/up"]["method"], "POST", "{}", e["/up"]);
    assert_eq!(e["/up"]["bytes_received"], 11, "{}", e["/up"]);
    assert_eq!(e["/up"]["bytes_sent"], 11, "{}", e["/up"]);
}

/// A listener whose accept queue is full: SYNs to it are dropped, so connecting hangs.
/// Returns the listener (keep it alive) and the connection filling its queue.
fn blackhole() -> (socket2::Socket, TcpStream, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    // Backlog 0: the kernel queues one connection, then drops further SYNs.
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    (s, filler, addr)
}

#[test]
fn connect_timeout_is_504_uf() {
    let log = TempLog::new("cto");
    let (_listener, _filler, addr) = blackhole();
    // Make sure the queue really is full on this kernel: a second connect must not finish.
    let probe = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    if probe.is_ok() {
        panic!("the kernel accepted past a full backlog; cannot provoke a connect timeout");
    }
    let config = one_route(addr).replace(
        "endpoints = [",
        "connect_timeout = \"200ms\"\nendpoints = [",
    );
    let proxy = Proxy::start(&with_json_log(&config, &log));
    let r = get(proxy.addr(), "/cto", &[]);
    assert_eq!(r.status, 504, "{}", r.head);
    assert_eq!(r.body_str(), "upstream connect timeout\n");
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_cx_connect_timeout", 1),
            ("cluster.backend.upstream_cx_connect_fail", 1),
            ("cluster.backend.upstream_cx_active", 0),
        ],
    );
    let e = log.json_by_path(&proxy, 1);
    assert_eq!(e["/cto"]["response_flags"], "UF", "{}", e["/cto"]);
}

#[test]
fn connection_limit_counts_pending_overflow() {
    let release = Arc::new(AtomicBool::new(false));
    let gate = release.clone();
    let backend = Backend::start(move |_req| {
        let gate = gate.clone();
        async move {
            for _ in 0..1000 {
                if gate.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            full(200, "slow")
        }
    });
    let config = one_route(backend.addr).replace(
        "endpoints = [",
        "max_connections_per_worker = 1\nendpoints = [",
    );
    let proxy = Proxy::start(&one_worker(&config));
    let addr = proxy.addr();
    let first = std::thread::spawn(move || get(addr, "/first", &[]));
    wait_for("first request at the backend", || {
        backend.request_count() == 1
    });
    let second = get(addr, "/second", &[]);
    release.store(true, Ordering::SeqCst);
    assert_eq!(first.join().expect("first").status, 200);
    assert_eq!(second.status, 503, "{}", second.head);
    expect_stats(
        &proxy,
        &[("cluster.backend.upstream_rq_pending_overflow", 1)],
    );
}

#[test]
fn completion_and_reuse_counters() {
    let ok = Backend::fixed(200, "fine");
    let failing = Backend::fixed(500, "broken");
    let proxy = Proxy::start(&two_cluster_config(ok.addr, failing.addr));
    let mut conn = Conn::open(proxy.addr());
    for _ in 0..3 {
        assert_eq!(conn.get("/ok").status, 200);
    }
    assert_eq!(conn.get("/nowhere").status, 404);
    expect_stats(
        &proxy,
        &[
            ("http.main.downstream_rq_completed", 4),
            ("cluster.backend.upstream_rq_completed", 3),
            ("cluster.backend.upstream_cx_pool_reuse", 2),
        ],
    );
}

#[test]
fn upstream_close_counts_reset_and_remote_destroy() {
    let backend = RawBackend::start(Behaviour::CloseWithoutAnswer);
    let proxy = Proxy::start(&one_route(backend.addr));
    assert_eq!(get(proxy.addr(), "/gone", &[]).status, 502);
    expect_stats(
        &proxy,
        &[
            ("cluster.backend.upstream_rq_rx_reset", 1),
            ("cluster.backend.upstream_cx_destroy_remote", 1),
        ],
    );
}
