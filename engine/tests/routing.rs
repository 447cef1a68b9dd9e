//! L7 routing end to end, one test per behaviour: virtual host selection by authority, route
//! matchers (prefix, exact path, regex, headers, query, first match wins), the actions
//! (cluster, weighted clusters, redirect, direct response), header changes on the way up and
//! down, `prefix_rewrite`, hop-by-hop fields and the forwarding headers (`x-forwarded-for`,
//! `x-request-id`, `via`).
//!
//! Requests are written raw over loopback so every header is exactly what the test says; the
//! backends are the harness's hyper echo server or a raw std backend defined here. Which route
//! answered is told by direct-response bodies or by the echo backend's `x-echo-*` headers.
//! docs/config.md "virtual hosts", "routes"; DESIGN.md "L7 routing".

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::*;

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 client helpers (test code: trusts the proxy to send sane framing, but bounded).
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
    /// The first value of `name`.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parse one response from `buf` (which must hold it completely). `head_only`: the request
/// was HEAD, so there is no body whatever the framing says. Returns the response and the
/// number of bytes it used, or `None` when `buf` does not hold a whole response yet.
fn parse_response(buf: &[u8], head_only: bool) -> Option<(Resp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let no_body = head_only || status / 100 == 1 || status == 204 || status == 304;
    let rest = &buf[end..];
    let (body, used) = if no_body {
        (Vec::new(), 0)
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().ok()?;
        if rest.len() < len {
            return None;
        }
        (rest[..len].to_vec(), len)
    } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)?
    } else {
        // Delimited by close: only complete once the peer closed (the caller knows).
        (rest.to_vec(), rest.len())
    };
    Some((
        Resp {
            status,
            headers,
            body,
            head,
        },
        end + used,
    ))
}

/// Decode a chunked body; `None` when incomplete. Returns (body, bytes used).
fn dechunk(mut s: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start_len = s.len();
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let line_end = s.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&s[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let n = usize::from_str_radix(size_text, 16).ok()?;
        s = &s[line_end + 2..];
        if n == 0 {
            // No trailers expected: the final CRLF.
            if s.len() < 2 {
                return None;
            }
            return Some((out, start_len - s.len() + 2));
        }
        if s.len() < n + 2 {
            return None;
        }
        out.extend_from_slice(&s[..n]);
        s = &s[n + 2..];
    }
    None
}

/// Send one raw request (must carry `Connection: close`) and parse the single response.
fn exchange(addr: SocketAddr, raw: &str) -> Resp {
    let bytes = raw_exchange(addr, raw.as_bytes());
    let head_only = raw.starts_with("HEAD ");
    match parse_response(&bytes, head_only) {
        Some((r, _)) => r,
        None => panic!(
            "no complete response to {raw:?}: {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// `GET path` with `Host: host`, extra header lines (`"Name: value"`) and `Connection: close`.
fn get(addr: SocketAddr, host: &str, path: &str, headers: &[&str]) -> Resp {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    exchange(addr, &req)
}

/// A keep-alive raw client connection: requests one at a time, responses parsed by framing.
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

    fn request(&mut self, raw: &str) -> Resp {
        self.stream.write_all(raw.as_bytes()).expect("write");
        let head_only = raw.starts_with("HEAD ");
        let mut tmp = [0u8; 16 * 1024];
        for _ in 0..10_000 {
            if let Some((r, used)) = parse_response(&self.buf, head_only) {
                // A close-delimited body is complete only at EOF; these tests never use one.
                self.buf.drain(..used);
                return r;
            }
            match self.stream.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) => panic!("read: {e}; have {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
        panic!(
            "connection ended without a response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A raw backend: answers each request head with bytes the test chooses, exactly.
// ---------------------------------------------------------------------------------------------

/// A std-socket backend that reads request heads (no bodies) and writes `reply` verbatim on a
/// keep-alive connection. Stops accepting on drop.
struct RawBackend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawBackend {
    fn start(reply: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    for _ in 0..10_000 {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            if s.write_all(reply).is_err() {
                                return;
                            }
                            continue;
                        }
                        match s.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                });
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Config helpers
// ---------------------------------------------------------------------------------------------

/// A listener named `main` with `vhosts` (TOML for `[[listeners.virtual_hosts]]` tables) and
/// one cluster `backend` at `backend` (routes may name it).
fn listener_with(vhosts: &str, backend: SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
{vhosts}

[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#
    )
}

/// An address nothing listens on (direct-response-only configs still need a cluster).
fn unused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A vhost answering every path with a direct response `body`.
fn answering_vhost(name: &str, domains: &str, body: &str) -> String {
    format!(
        r#"
  [[listeners.virtual_hosts]]
  name = "{name}"
  domains = {domains}
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    direct_response = {{ status = 200, body = "{body}" }}
"#
    )
}

fn vhost_proxy() -> Proxy {
    let vhosts = [
        answering_vhost("exact", r#"["api.example.com"]"#, "exact"),
        answering_vhost("port", r#"["api.example.com:8443"]"#, "port"),
        answering_vhost("short", r#"["*.example.com"]"#, "short-suffix"),
        answering_vhost("long", r#"["*.eu.example.com"]"#, "long-suffix"),
        answering_vhost("any", r#"["*"]"#, "any"),
    ]
    .concat();
    Proxy::start(&listener_with(&vhosts, unused_addr()))
}

// ---------------------------------------------------------------------------------------------
// Virtual hosts
// ---------------------------------------------------------------------------------------------

#[test]
fn vhost_exact_domain_wins_over_suffix_and_any() {
    let proxy = vhost_proxy();
    let r = get(proxy.addr(), "api.example.com", "/", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body_str(), "exact");
}

#[test]
fn vhost_longest_suffix_wins_and_needs_a_label() {
    let proxy = vhost_proxy();
    let a = proxy.addr();
    assert_eq!(
        get(a, "web.example.com", "/", &[]).body_str(),
        "short-suffix"
    );
    assert_eq!(
        get(a, "a.b.example.com", "/", &[]).body_str(),
        "short-suffix"
    );
    assert_eq!(
        get(a, "x.eu.example.com", "/", &[]).body_str(),
        "long-suffix"
    );
    // `*.example.com` needs at least one character before `.example.com`.
    assert_eq!(get(a, "example.com", "/", &[]).body_str(), "any");
    assert_eq!(
        get(a, "eu.example.com", "/", &[]).body_str(),
        "short-suffix"
    );
}

#[test]
fn vhost_star_catches_everything_else() {
    let proxy = vhost_proxy();
    assert_eq!(get(proxy.addr(), "other.test", "/", &[]).body_str(), "any");
    assert_eq!(
        get(proxy.addr(), "127.0.0.1:80", "/", &[]).body_str(),
        "any"
    );
}

#[test]
fn vhost_host_with_port() {
    let proxy = vhost_proxy();
    let a = proxy.addr();
    // The `host:port` domain matches only that port...
    assert_eq!(get(a, "api.example.com:8443", "/", &[]).body_str(), "port");
    // ...other ports fall back to the exact domain without the port.
    assert_eq!(get(a, "api.example.com:9000", "/", &[]).body_str(), "exact");
    // A suffix match ignores the port.
    assert_eq!(
        get(a, "web.example.com:8080", "/", &[]).body_str(),
        "short-suffix"
    );
}

#[test]
fn vhost_selection_ignores_case() {
    let proxy = vhost_proxy();
    let a = proxy.addr();
    assert_eq!(get(a, "API.Example.COM", "/", &[]).body_str(), "exact");
    assert_eq!(get(a, "API.EXAMPLE.COM:8443", "/", &[]).body_str(), "port");
    assert_eq!(
        get(a, "Web.EU.Example.Com", "/", &[]).body_str(),
        "long-suffix"
    );
}

#[test]
fn no_vhost_or_no_route_is_404_and_counted() {
    let vhosts = r#"
  [[listeners.virtual_hosts]]
  name = "only"
  domains = ["only.test"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/yes"
    direct_response = { status = 200, body = "yes" }
"#;
    let proxy = Proxy::start(&listener_with(vhosts, unused_addr()));
    let a = proxy.addr();
    assert_eq!(proxy.stat("http.main.no_route"), 0);
    let r = get(a, "elsewhere.test", "/yes", &[]);
    assert_eq!(r.status, 404, "no vhost: {}", r.head);
    let r = get(a, "only.test", "/no", &[]);
    assert_eq!(r.status, 404, "no route: {}", r.head);
    let r = get(a, "only.test", "/yes", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    proxy.eventually("two no_route", |p| p.stat("http.main.no_route") == 2);
    proxy.eventually("two 4xx", |p| p.stat("http.main.downstream_rq_4xx") == 2);
}

// ---------------------------------------------------------------------------------------------
// Route matchers
// ---------------------------------------------------------------------------------------------

/// One `*` vhost whose routes are `routes` (TOML route tables).
fn routes_proxy(routes: &str, backend: SocketAddr) -> Proxy {
    let vhosts = format!(
        r#"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
{routes}"#
    );
    Proxy::start(&listener_with(&vhosts, backend))
}

/// A route table entry: `matchers` (TOML key = value lines) answered with `body`.
fn route(matchers: &str, body: &str) -> String {
    format!(
        r#"
    [[listeners.virtual_hosts.routes]]
    {matchers}
    direct_response = {{ status = 200, body = "{body}" }}
"#
    )
}

fn fallback() -> String {
    route(r#"prefix = "/""#, "fallback")
}

#[test]
fn route_by_prefix() {
    let routes = [route(r#"prefix = "/api""#, "api"), fallback()].concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/api", &[]).body_str(), "api");
    assert_eq!(get(a, "h", "/api/users?x=1", &[]).body_str(), "api");
    assert_eq!(
        get(a, "h", "/apix", &[]).body_str(),
        "api",
        "a plain string prefix"
    );
    assert_eq!(get(a, "h", "/ap", &[]).body_str(), "fallback");
    assert_eq!(
        get(a, "h", "/API", &[]).body_str(),
        "fallback",
        "case-sensitive"
    );
}

#[test]
fn route_by_exact_path() {
    let routes = [route(r#"path = "/exact""#, "exact"), fallback()].concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/exact", &[]).body_str(), "exact");
    assert_eq!(
        get(a, "h", "/exact?q=1", &[]).body_str(),
        "exact",
        "query ignored"
    );
    assert_eq!(get(a, "h", "/exact/", &[]).body_str(), "fallback");
    assert_eq!(get(a, "h", "/exactly", &[]).body_str(), "fallback");
}

#[test]
fn route_by_regex_matches_the_whole_path() {
    let routes = [route(r#"regex = "/items/[0-9]+""#, "item"), fallback()].concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/items/42", &[]).body_str(), "item");
    assert_eq!(get(a, "h", "/items/42?x=y", &[]).body_str(), "item");
    assert_eq!(
        get(a, "h", "/items/42/x", &[]).body_str(),
        "fallback",
        "anchored end"
    );
    assert_eq!(
        get(a, "h", "/v1/items/42", &[]).body_str(),
        "fallback",
        "anchored start"
    );
    assert_eq!(get(a, "h", "/items/abc", &[]).body_str(), "fallback");
}

#[test]
fn route_case_insensitive_when_configured() {
    let routes = [
        route("prefix = \"/api\"\n    case_sensitive = false", "api"),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/API/x", &[]).body_str(), "api");
    assert_eq!(get(a, "h", "/Api", &[]).body_str(), "api");
}

#[test]
fn route_by_header_exact() {
    let routes = [
        route(
            r#"prefix = "/"
    headers = [ { name = "x-canary", exact = "1" } ]"#,
            "canary",
        ),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/", &["X-Canary: 1"]).body_str(), "canary");
    assert_eq!(get(a, "h", "/", &["x-canary: 1"]).body_str(), "canary");
    assert_eq!(get(a, "h", "/", &["X-Canary: 10"]).body_str(), "fallback");
    assert_eq!(get(a, "h", "/", &[]).body_str(), "fallback");
    // Only the first field with the name is examined.
    assert_eq!(
        get(a, "h", "/", &["X-Canary: 0", "X-Canary: 1"]).body_str(),
        "fallback"
    );
}

#[test]
fn route_by_header_present_and_absent() {
    let routes = [
        route(
            r#"prefix = "/"
    headers = [ { name = "x-debug", present = true } ]"#,
            "debug",
        ),
        route(
            r#"prefix = "/"
    headers = [ { name = "x-user", present = false } ]"#,
            "anonymous",
        ),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/", &["X-Debug: anything"]).body_str(), "debug");
    assert_eq!(
        get(a, "h", "/", &["X-Debug:"]).body_str(),
        "debug",
        "empty value"
    );
    assert_eq!(get(a, "h", "/", &[]).body_str(), "anonymous");
    assert_eq!(get(a, "h", "/", &["X-User: bob"]).body_str(), "fallback");
}

#[test]
fn route_by_header_inverted() {
    let routes = [
        route(
            r#"prefix = "/"
    headers = [ { name = "x-env", exact = "prod", invert = true } ]"#,
            "not-prod",
        ),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/", &["X-Env: staging"]).body_str(), "not-prod");
    assert_eq!(get(a, "h", "/", &["X-Env: prod"]).body_str(), "fallback");
    // As in Envoy: an absent header never satisfies a value matcher, inverted or not.
    assert_eq!(get(a, "h", "/", &[]).body_str(), "fallback");
}

#[test]
fn route_by_header_prefix_suffix_regex() {
    let routes = [
        route(
            r#"prefix = "/"
    headers = [ { name = "x-a", prefix = "ab" }, { name = "x-b", suffix = "yz" }, { name = "x-c", regex = "[0-9]{3}" } ]"#,
            "all",
        ),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    let all = ["X-A: abc", "X-B: xyz", "X-C: 123"];
    assert_eq!(get(a, "h", "/", &all).body_str(), "all");
    // Every matcher must hold.
    assert_eq!(get(a, "h", "/", &all[..2]).body_str(), "fallback");
    assert_eq!(
        get(a, "h", "/", &["X-A: abc", "X-B: xyz", "X-C: 1234"]).body_str(),
        "fallback",
        "header regex is anchored"
    );
    assert_eq!(
        get(a, "h", "/", &["X-A: cab", "X-B: xyz", "X-C: 123"]).body_str(),
        "fallback"
    );
}

#[test]
fn route_by_query() {
    let routes = [
        route(
            r#"prefix = "/"
    query = [ { name = "debug", exact = "1" } ]"#,
            "debug",
        ),
        route(
            r#"prefix = "/"
    query = [ { name = "trace", present = true } ]"#,
            "trace",
        ),
        route(
            r#"prefix = "/"
    query = [ { name = "v", prefix = "2." } ]"#,
            "v2",
        ),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/p?debug=1", &[]).body_str(), "debug");
    assert_eq!(get(a, "h", "/p?a=b&debug=1&c", &[]).body_str(), "debug");
    assert_eq!(get(a, "h", "/p?debug=10", &[]).body_str(), "fallback");
    assert_eq!(get(a, "h", "/p?trace", &[]).body_str(), "trace", "no `=`");
    assert_eq!(get(a, "h", "/p?trace=", &[]).body_str(), "trace");
    assert_eq!(get(a, "h", "/p?v=2.1", &[]).body_str(), "v2");
    assert_eq!(get(a, "h", "/p?v=3.0", &[]).body_str(), "fallback");
    assert_eq!(get(a, "h", "/p", &[]).body_str(), "fallback");
    // The first parameter with the name is examined.
    assert_eq!(
        get(a, "h", "/p?debug=0&debug=1", &[]).body_str(),
        "fallback"
    );
}

#[test]
fn first_matching_route_wins() {
    let routes = [
        route(r#"prefix = "/a""#, "first"),
        route(r#"path = "/a/b""#, "second"),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    assert_eq!(get(proxy.addr(), "h", "/a/b", &[]).body_str(), "first");
    // Order, not specificity: the same routes the other way round.
    let routes = [
        route(r#"path = "/a/b""#, "second"),
        route(r#"prefix = "/a""#, "first"),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    assert_eq!(get(proxy.addr(), "h", "/a/b", &[]).body_str(), "second");
    assert_eq!(get(proxy.addr(), "h", "/a/c", &[]).body_str(), "first");
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

#[test]
fn route_to_cluster_reaches_the_backend() {
    let backend = Backend::echo();
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    prefix = "/up"
    cluster = "backend"
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    direct_response = { status = 200, body = "local" }
"#;
    let proxy = routes_proxy(routes, backend.addr);
    let r = get(proxy.addr(), "h", "/up/x?y=1", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("x-echo-uri"), Some("/up/x?y=1"), "{}", r.head);
    assert_eq!(get(proxy.addr(), "h", "/other", &[]).body_str(), "local");
    assert_eq!(backend.request_count(), 1);
}

#[test]
fn weighted_clusters_split_by_weight() {
    let a = Backend::fixed(200, "a");
    let b = Backend::fixed(200, "b");
    let config = format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    weighted_clusters = [ {{ cluster = "a", weight = 70 }}, {{ cluster = "b", weight = 30 }} ]

[[clusters]]
name = "a"
endpoints = ["{}"]

[[clusters]]
name = "b"
endpoints = ["{}"]
"#,
        a.addr, b.addr
    );
    let proxy = Proxy::start(&config);
    const N: usize = 2000;
    let mut conn = Conn::open(proxy.addr());
    let (mut to_a, mut to_b) = (0usize, 0usize);
    for _ in 0..N {
        let r = conn.request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.head);
        match r.body.as_slice() {
            b"a" => to_a += 1,
            b"b" => to_b += 1,
            other => panic!("unexpected body {other:?}"),
        }
    }
    assert_eq!(to_a + to_b, N);
    assert_eq!(a.request_count(), to_a);
    assert_eq!(b.request_count(), to_b);
    let share_a = to_a as f64 / N as f64;
    let share_b = to_b as f64 / N as f64;
    assert!((share_a - 0.70).abs() <= 0.05, "a got {to_a} of {N}");
    assert!((share_b - 0.30).abs() <= 0.05, "b got {to_b} of {N}");
    proxy.eventually("upstream counts", |p| {
        p.stat("cluster.a.upstream_rq_total") == to_a as i64
            && p.stat("cluster.b.upstream_rq_total") == to_b as i64
    });
}

fn redirect_proxy() -> Proxy {
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    prefix = "/to-https"
    redirect = { scheme = "https" }
    [[listeners.virtual_hosts.routes]]
    prefix = "/to-host"
    redirect = { host = "new.example.com", status = 302 }
    [[listeners.virtual_hosts.routes]]
    prefix = "/to-path"
    redirect = { path = "/landing", status = 307 }
    [[listeners.virtual_hosts.routes]]
    prefix = "/strip"
    redirect = { scheme = "https", host = "s.example.com:8443", path = "/clean", strip_query = true, status = 308 }
    [[listeners.virtual_hosts.routes]]
    prefix = "/own-query"
    redirect = { path = "/q?fixed=1", status = 303 }
"#;
    routes_proxy(routes, unused_addr())
}

#[test]
fn redirect_scheme_keeps_host_path_and_query() {
    let proxy = redirect_proxy();
    let r = get(proxy.addr(), "www.test:8080", "/to-https/a?b=c", &[]);
    assert_eq!(r.status, 301, "default status: {}", r.head);
    assert_eq!(
        r.header("location"),
        Some("https://www.test:8080/to-https/a?b=c")
    );
    proxy.eventually("rq_redirect", |p| p.stat("http.main.rq_redirect") == 1);
}

#[test]
fn redirect_host_replaces_the_authority() {
    let proxy = redirect_proxy();
    let r = get(proxy.addr(), "www.test:8080", "/to-host/x?y=1", &[]);
    assert_eq!(r.status, 302, "{}", r.head);
    assert_eq!(
        r.header("location"),
        Some("http://new.example.com/to-host/x?y=1")
    );
}

#[test]
fn redirect_path_replaces_the_path_and_keeps_the_query() {
    let proxy = redirect_proxy();
    let r = get(proxy.addr(), "www.test", "/to-path/deep?k=v", &[]);
    assert_eq!(r.status, 307, "{}", r.head);
    assert_eq!(r.header("location"), Some("http://www.test/landing?k=v"));
    let r = get(proxy.addr(), "www.test", "/to-path", &[]);
    assert_eq!(
        r.header("location"),
        Some("http://www.test/landing"),
        "no `?` without a query"
    );
}

#[test]
fn redirect_strip_query_and_configured_query() {
    let proxy = redirect_proxy();
    let r = get(proxy.addr(), "www.test", "/strip/me?secret=1", &[]);
    assert_eq!(r.status, 308, "{}", r.head);
    assert_eq!(
        r.header("location"),
        Some("https://s.example.com:8443/clean")
    );
    // A configured path with its own `?` replaces the request's query.
    let r = get(proxy.addr(), "www.test", "/own-query?dropped=1", &[]);
    assert_eq!(r.status, 303, "{}", r.head);
    assert_eq!(r.header("location"), Some("http://www.test/q?fixed=1"));
}

#[test]
fn direct_response_status_body_length_and_head() {
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    path = "/teapot"
    direct_response = { status = 418, body = "short and stout" }
    [[listeners.virtual_hosts.routes]]
    path = "/empty"
    direct_response = { status = 204 }
"#;
    let proxy = routes_proxy(routes, unused_addr());
    let a = proxy.addr();
    let r = get(a, "h", "/teapot", &[]);
    assert_eq!(r.status, 418, "{}", r.head);
    assert_eq!(r.body_str(), "short and stout");
    assert_eq!(r.header("content-length"), Some("15"));
    assert!(r.header("content-type").is_some(), "{}", r.head);

    // HEAD: same head, no body bytes on the wire. Followed by a GET on the same connection so
    // a stray body byte would corrupt the second response.
    let mut conn = Conn::open(a);
    let h = conn.request("HEAD /teapot HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(h.status, 418, "{}", h.head);
    assert_eq!(h.header("content-length"), Some("15"));
    let g = conn.request("GET /teapot HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(g.status, 418, "{}", g.head);
    assert_eq!(g.body_str(), "short and stout");
    let e = conn.request("GET /empty HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(e.status, 204, "{}", e.head);
    assert!(e.body.is_empty());
    proxy.eventually("direct responses", |p| {
        p.stat("http.main.rq_direct_response") == 4
    });
}

// ---------------------------------------------------------------------------------------------
// Header changes
// ---------------------------------------------------------------------------------------------

#[test]
fn request_headers_added_replaced_and_removed() {
    let backend = Backend::echo();
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
    request_headers_to_add = [
      { name = "x-env", value = "prod" },
      { name = "x-tag", value = "added", append = true },
      { name = "x-mode", value = "forced", append = false },
    ]
    request_headers_to_remove = ["x-debug", "user-agent"]
"#;
    let proxy = routes_proxy(routes, backend.addr);
    let r = get(
        proxy.addr(),
        "h",
        "/",
        &[
            "X-Tag: original",
            "X-Mode: client",
            "X-Debug: secret",
            "User-Agent: test",
            "X-Keep: yes",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("x-echo-h-x-env"), Some("prod"), "{}", r.head);
    assert_eq!(
        r.header("x-echo-h-x-tag"),
        Some("original, added"),
        "{}",
        r.head
    );
    assert_eq!(r.header("x-echo-h-x-mode"), Some("forced"), "{}", r.head);
    assert_eq!(r.header("x-echo-h-x-debug"), None, "{}", r.head);
    assert_eq!(r.header("x-echo-h-user-agent"), None, "{}", r.head);
    assert_eq!(r.header("x-echo-h-x-keep"), Some("yes"), "{}", r.head);
}

#[test]
fn response_headers_added_and_removed() {
    let backend = Backend::start(|_req| async {
        let mut r = full(200, "body");
        let h = r.headers_mut();
        h.insert("x-internal", "secret".parse().unwrap());
        h.insert("x-served-by", "backend".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        r
    });
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
    response_headers_to_add = [
      { name = "x-served-by", value = "ringway", append = false },
      { name = "x-extra", value = "a" },
      { name = "x-extra", value = "b" },
    ]
    response_headers_to_remove = ["x-internal"]
"#;
    let proxy = routes_proxy(routes, backend.addr);
    let r = get(proxy.addr(), "h", "/", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("x-internal"), None, "{}", r.head);
    assert_eq!(r.all("x-served-by"), ["ringway"], "{}", r.head);
    assert_eq!(r.all("x-extra"), ["a", "b"], "{}", r.head);
    assert_eq!(r.header("x-kept"), Some("1"), "{}", r.head);
    assert_eq!(r.body_str(), "body");
}

#[test]
fn response_headers_added_to_local_replies() {
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    direct_response = { status = 200, body = "ok" }
    response_headers_to_add = [ { name = "x-local", value = "yes" } ]
"#;
    let proxy = routes_proxy(routes, unused_addr());
    let r = get(proxy.addr(), "h", "/", &[]);
    assert_eq!(r.header("x-local"), Some("yes"), "{}", r.head);
}

#[test]
fn prefix_rewrite_replaces_the_matched_prefix() {
    let backend = Backend::echo();
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    prefix = "/api/"
    prefix_rewrite = "/v2/"
    cluster = "backend"
    [[listeners.virtual_hosts.routes]]
    prefix = "/old"
    prefix_rewrite = "/new"
    cluster = "backend"
"#;
    let proxy = routes_proxy(routes, backend.addr);
    let a = proxy.addr();
    let r = get(a, "h", "/api/users/7?full=1", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("x-echo-uri"),
        Some("/v2/users/7?full=1"),
        "{}",
        r.head
    );
    let r = get(a, "h", "/old/thing", &[]);
    assert_eq!(r.header("x-echo-uri"), Some("/new/thing"), "{}", r.head);
    let r = get(a, "h", "/old", &[]);
    assert_eq!(r.header("x-echo-uri"), Some("/new"), "{}", r.head);
    // Only the prefix is rewritten, not a later occurrence.
    let r = get(a, "h", "/oldies/old", &[]);
    assert_eq!(r.header("x-echo-uri"), Some("/newies/old"), "{}", r.head);
}

// ---------------------------------------------------------------------------------------------
// Hop-by-hop and forwarding headers
// ---------------------------------------------------------------------------------------------

#[test]
fn hop_by_hop_request_headers_are_not_forwarded() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let headers = [
        "Connection: X-Custom-Hop, Keep-Alive",
        "X-Custom-Hop: 1",
        "Keep-Alive: timeout=5",
        "TE: trailers, deflate;q=0.5",
        "Proxy-Connection: keep-alive",
        "X-End-To-End: yes",
        "Cache-Control: no-cache",
    ];
    // Control: sent straight to the echo backend, every field shows up, so an absence below
    // means the proxy dropped it.
    let direct = get(backend.addr, "h", "/", &headers);
    for name in ["x-custom-hop", "keep-alive", "te", "proxy-connection"] {
        assert!(
            direct.header(&format!("x-echo-h-{name}")).is_some(),
            "echo shows {name}: {}",
            direct.head
        );
    }
    let r = get(proxy.addr(), "h", "/", &headers);
    assert_eq!(r.status, 200, "{}", r.head);
    // TE is reduced to its `trailers` token, which says the client takes trailers (as Envoy).
    assert_eq!(r.header("x-echo-h-te"), Some("trailers"), "{}", r.head);
    for hop in ["x-custom-hop", "keep-alive", "proxy-connection"] {
        assert_eq!(
            r.header(&format!("x-echo-h-{hop}")),
            None,
            "{hop} forwarded: {}",
            r.head
        );
    }
    // The client's Connection field is not forwarded (the proxy may send its own).
    if let Some(c) = r.header("x-echo-h-connection") {
        assert!(
            !c.to_ascii_lowercase().contains("x-custom-hop"),
            "{}",
            r.head
        );
    }
    assert_eq!(r.header("x-echo-h-x-end-to-end"), Some("yes"), "{}", r.head);
    assert_eq!(
        r.header("x-echo-h-cache-control"),
        Some("no-cache"),
        "{}",
        r.head
    );
}

#[test]
fn hop_by_hop_response_headers_are_not_forwarded() {
    let backend = RawBackend::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Resp-E2E: yes\r\n\r\nok",
    );
    let proxy = Proxy::start(&one_route(backend.addr));
    let mut conn = Conn::open(proxy.addr());
    let r = conn.request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body_str(), "ok");
    for hop in ["x-resp-hop", "keep-alive", "proxy-connection"] {
        assert_eq!(r.header(hop), None, "{hop} forwarded: {}", r.head);
    }
    if let Some(c) = r.header("connection") {
        assert!(!c.to_ascii_lowercase().contains("x-resp-hop"), "{}", r.head);
    }
    assert_eq!(r.header("x-resp-e2e"), Some("yes"), "{}", r.head);
    // The upstream's hop-by-hop fields did not end the client's keep-alive connection.
    let r = conn.request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.head);
}

#[test]
fn x_forwarded_for_is_appended() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let r = get(proxy.addr(), "h", "/", &["X-Forwarded-For: 10.1.2.3"]);
    assert_eq!(
        r.header("x-echo-h-x-forwarded-for"),
        Some("10.1.2.3, 127.0.0.1"),
        "{}",
        r.head
    );
    let r = get(
        proxy.addr(),
        "h",
        "/",
        &["X-Forwarded-For: 10.0.0.1", "X-Forwarded-For: 10.0.0.2"],
    );
    // Two fields are one list: the peer goes at the end.
    assert_eq!(
        r.header("x-echo-h-x-forwarded-for"),
        Some("10.0.0.1, 10.0.0.2, 127.0.0.1"),
        "{}",
        r.head
    );
    let r = get(proxy.addr(), "h", "/", &[]);
    assert_eq!(r.header("x-echo-h-x-forwarded-for"), Some("127.0.0.1"));
}

#[test]
fn x_forwarded_proto_is_set_not_trusted() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let r = get(proxy.addr(), "h", "/", &["X-Forwarded-Proto: https"]);
    assert_eq!(
        r.header("x-echo-h-x-forwarded-proto"),
        Some("http"),
        "{}",
        r.head
    );
}

#[test]
fn x_request_id_is_kept_when_present_and_generated_otherwise() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let r = get(proxy.addr(), "h", "/", &["X-Request-Id: my-id-123"]);
    assert_eq!(
        r.header("x-echo-h-x-request-id"),
        Some("my-id-123"),
        "{}",
        r.head
    );
    let r = get(proxy.addr(), "h", "/", &[]);
    let id = r.header("x-echo-h-x-request-id").expect("generated id");
    // A UUID: 8-4-4-4-12 hex digits.
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
    assert!(
        id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "{id}"
    );
    let other = get(proxy.addr(), "h", "/", &[]);
    assert_ne!(
        other.header("x-echo-h-x-request-id"),
        Some(id),
        "ids are unique"
    );
}

#[test]
fn via_is_added_when_configured() {
    let backend = Backend::echo();
    let with_via = one_route(backend.addr).replace(
        "address = \"127.0.0.1:0\"\n",
        "address = \"127.0.0.1:0\"\n  [listeners.http]\n  via = \"edge-1\"\n",
    );
    assert!(with_via.contains("via = "), "config edited: {with_via}");
    let proxy = Proxy::start(&with_via);
    let r = get(proxy.addr(), "h", "/", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("x-echo-h-via"),
        Some("1.1 edge-1"),
        "request: {}",
        r.head
    );
    assert_eq!(r.header("via"), Some("1.1 edge-1"), "response: {}", r.head);
    // An existing Via is kept, ours appended.
    let r = get(proxy.addr(), "h", "/", &["Via: 1.0 client-proxy"]);
    assert_eq!(
        r.header("x-echo-h-via"),
        Some("1.0 client-proxy, 1.1 edge-1"),
        "{}",
        r.head
    );
    drop(proxy);

    // Not configured: no Via either way.
    let proxy = Proxy::start(&one_route(backend.addr));
    let r = get(proxy.addr(), "h", "/", &[]);
    assert_eq!(r.header("x-echo-h-via"), None, "{}", r.head);
    assert_eq!(r.header("via"), None, "{}", r.head);
}

#[test]
fn absolute_form_target_chooses_the_vhost_and_the_upstream_host() {
    let backend = Backend::echo();
    let vhosts = r#"
  [[listeners.virtual_hosts]]
  name = "api"
  domains = ["api.example.com"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
  [[listeners.virtual_hosts]]
  name = "any"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    direct_response = { status = 200, body = "any" }
"#;
    let proxy = Proxy::start(&listener_with(vhosts, backend.addr));
    // RFC 9112 3.2.2: the target's authority wins over Host.
    let r = exchange(
        proxy.addr(),
        "GET http://api.example.com/p?q=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("x-echo-h-host"),
        Some("api.example.com"),
        "{}",
        r.head
    );
    assert_eq!(
        r.header("x-echo-uri"),
        Some("/p?q=1"),
        "origin-form upstream: {}",
        r.head
    );
}

#[test]
fn forwarded_headers_off_leaves_them_alone() {
    let backend = Backend::echo();
    let config = one_route(backend.addr).replace(
        "address = \"127.0.0.1:0\"\n",
        "address = \"127.0.0.1:0\"\n  [listeners.http]\n  use_forwarded_headers = false\n  generate_request_id = false\n",
    );
    assert!(config.contains("use_forwarded_headers"), "{config}");
    let proxy = Proxy::start(&config);
    let r = get(proxy.addr(), "h", "/", &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("x-echo-h-x-forwarded-for"), None, "{}", r.head);
    assert_eq!(r.header("x-echo-h-x-forwarded-proto"), None, "{}", r.head);
    assert_eq!(r.header("x-echo-h-x-request-id"), None, "{}", r.head);
    // What the client sent passes through untouched.
    let r = get(
        proxy.addr(),
        "h",
        "/",
        &[
            "X-Forwarded-For: 10.0.0.1",
            "X-Forwarded-Proto: https",
            "X-Request-Id: r1",
        ],
    );
    assert_eq!(
        r.header("x-echo-h-x-forwarded-for"),
        Some("10.0.0.1"),
        "{}",
        r.head
    );
    assert_eq!(
        r.header("x-echo-h-x-forwarded-proto"),
        Some("https"),
        "{}",
        r.head
    );
    assert_eq!(r.header("x-echo-h-x-request-id"), Some("r1"), "{}", r.head);
}

#[test]
fn route_by_query_regex_is_raw_and_anchored() {
    let routes = [
        route(
            r#"prefix = "/"
    query = [ { name = "id", regex = "[0-9]+" } ]"#,
            "numeric",
        ),
        route(
            r#"prefix = "/"
    query = [ { name = "name", exact = "a%20b" } ]"#,
            "raw",
        ),
        fallback(),
    ]
    .concat();
    let proxy = routes_proxy(&routes, unused_addr());
    let a = proxy.addr();
    assert_eq!(get(a, "h", "/?id=123", &[]).body_str(), "numeric");
    assert_eq!(get(a, "h", "/?id=123x", &[]).body_str(), "fallback");
    // No percent-decoding: the raw bytes are compared.
    assert_eq!(get(a, "h", "/?name=a%20b", &[]).body_str(), "raw");
    assert_eq!(get(a, "h", "/?name=a+b", &[]).body_str(), "fallback");
}

#[test]
fn redirect_answers_head_without_a_body() {
    let proxy = redirect_proxy();
    let mut conn = Conn::open(proxy.addr());
    let r = conn.request("HEAD /to-https/x HTTP/1.1\r\nHost: www.test\r\n\r\n");
    assert_eq!(r.status, 301, "{}", r.head);
    assert_eq!(r.header("location"), Some("https://www.test/to-https/x"));
    // The connection is still in sync: the next response parses.
    let r = conn.request("GET /to-host HTTP/1.1\r\nHost: www.test\r\n\r\n");
    assert_eq!(r.status, 302, "{}", r.head);
}
