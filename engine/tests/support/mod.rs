//! Shared harness for the integration tests: ringway started in-process on loopback with a
//! TOML config, independent hyper backends and clients, raw sockets, admin helpers.
//!
//! Every test file does `mod support;` and uses what it needs.
#![allow(dead_code, unreachable_pub)] // reason: each test binary uses a different subset

pub mod h2raw;
pub mod pki;

use std::convert::Infallible;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// The io driver tests run the proxy on: `RINGWAY_TEST_DRIVER=legacy` selects epoll, so CI
/// runs the whole suite on both drivers.
pub fn driver() -> engine::IoDriver {
    match std::env::var("RINGWAY_TEST_DRIVER").as_deref() {
        Ok("legacy") => engine::IoDriver::Legacy,
        Ok("io_uring") => engine::IoDriver::IoUring,
        _ => engine::IoDriver::Auto,
    }
}

/// A running proxy; shut down (drained) on drop.
pub struct Proxy {
    handle: Option<engine::Handle>,
}

impl Proxy {
    /// Start ringway with this TOML (listeners may use port 0; `admin` defaults to port 0).
    pub fn start(toml: &str) -> Self {
        let toml = if toml.contains("[admin]") {
            toml.to_owned()
        } else {
            format!("[admin]\naddress = \"127.0.0.1:0\"\n{toml}")
        };
        let cfg = engine::config::parse_str(&toml, "<test>").unwrap_or_else(|e| panic!("{e}"));
        let handle = engine::start(
            cfg,
            engine::StartOptions {
                driver: driver(),
                no_pinning: true,
            },
        )
        .expect("start ringway");
        Self {
            handle: Some(handle),
        }
    }

    pub fn handle(&self) -> &engine::Handle {
        self.handle.as_ref().expect("running")
    }

    /// Address of the first listener.
    pub fn addr(&self) -> SocketAddr {
        self.handle().listeners()[0].1
    }

    pub fn listener(&self, name: &str) -> SocketAddr {
        self.handle().listener(name).expect("listener")
    }

    pub fn admin(&self) -> SocketAddr {
        self.handle().admin().expect("admin enabled")
    }

    /// Fetch an admin path with a blocking GET; returns (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        raw_get(self.admin(), path)
    }

    /// Value of one stat from `/stats` (0 when absent). Stats are summed across workers;
    /// counters are updated before a response is written, so they are exact once it arrived.
    pub fn stat(&self, name: &str) -> i64 {
        let (_, body) = self.admin_get("/stats");
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .map(|v| v.trim().parse().expect("numeric stat"))
            .unwrap_or(0)
    }

    /// Wait (bounded) until `f` holds: for stats updated after the response was sent.
    pub fn eventually(&self, what: &str, mut f: impl FnMut(&Self) -> bool) {
        for _ in 0..200 {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("timed out waiting for: {what}");
    }

    pub fn reload(&self, toml: &str) -> Result<(), String> {
        let toml = format!("[admin]\naddress = \"127.0.0.1:0\"\n{toml}");
        let cfg = engine::config::parse_str(&toml, "<test>").map_err(|e| e.to_string())?;
        self.handle().reload(cfg)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

/// One GET over a fresh blocking connection with `Connection: close`; (status, body).
pub fn raw_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let resp = raw_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Send raw bytes, read until the peer closes (or 5 s pass), return everything read.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Status code of the first response in raw bytes (0 when there is none).
pub fn status_of(resp: &[u8]) -> u16 {
    std::str::from_utf8(resp.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A hyper backend (HTTP/1.1, or h2c with [`Backend::start_h2`]) on its own thread and tokio
/// runtime. Counts accepted connections and requests.
pub struct Backend {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    /// Serve every request with `handler`, over HTTP/1.1.
    pub fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        Self::serve(false, move |req| {
            let h = handler.clone();
            async move { Ok::<_, Infallible>(h(req).await) }
        })
    }

    /// Serve every request with `handler`, over h2c (prior knowledge). An error from the
    /// handler resets the stream.
    pub fn start_h2<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = Result<Response<Body>, hyper::Error>> + Send + 'static,
    {
        Self::serve(true, handler)
    }

    fn serve<F, Fut, E>(http2: bool, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = Result<Response<Body>, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let (conns, reqs) = (connections.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                        _ = &mut rx => break,
                    };
                    conns.fetch_add(1, Ordering::SeqCst);
                    let handler = handler.clone();
                    let reqs = reqs.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            reqs.fetch_add(1, Ordering::SeqCst);
                            handler(req)
                        });
                        let io = TokioIo::new(stream);
                        let _ = if http2 {
                            hyper::server::conn::http2::Builder::new(
                                hyper_util::rt::TokioExecutor::new(),
                            )
                            .serve_connection(io, svc)
                            .await
                        } else {
                            hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, svc)
                                .with_upgrades()
                                .await
                        };
                    });
                }
            });
        });
        Self {
            addr,
            connections,
            requests,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Echo: status 200, `x-echo-method`, `x-echo-uri` and every request header as
    /// `x-echo-h-<name>` (comma-joined), and the request body streamed back.
    pub fn echo() -> Self {
        Self::start(|req: Request<Incoming>| async move {
            let mut resp = Response::builder()
                .status(200)
                .header("x-echo-method", req.method().as_str())
                .header("x-echo-uri", req.uri().to_string());
            let mut names: Vec<_> = req.headers().keys().collect();
            names.dedup();
            for name in names {
                let joined: Vec<_> = req
                    .headers()
                    .get_all(name)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                resp = resp.header(format!("x-echo-h-{name}"), joined.join(", "));
            }
            resp.body(req.into_body().boxed()).unwrap()
        })
    }

    /// Always answer `status` with `body`.
    pub fn fixed(status: u16, body: &'static str) -> Self {
        Self::start(move |_req| async move { full(status, body) })
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A complete response body.
pub fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(
            Full::new(body.into())
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap()
}

/// An h2c client connection (prior knowledge) to `addr`, hyper's; its connection task runs on
/// the test's runtime.
pub async fn h2c(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Body> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

/// A hyper client (HTTP/1.1, pooled keep-alive) for requests through the proxy.
pub fn client()
-> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Body> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// A request body from bytes.
pub fn body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// Collect a response body.
pub async fn read_body(resp: Response<Incoming>) -> Bytes {
    resp.into_body().collect().await.expect("body").to_bytes()
}

/// `GET path` with extra `headers` (CRLF-terminated lines) on a fresh connection, so the
/// kernel spreads a series of them over the workers: (status, lowercased head, body).
pub fn get_on_new_connection(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let resp = raw_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n")
            .as_bytes(),
    );
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status_of(&resp), head.to_ascii_lowercase(), body.to_owned())
}

/// The value of header `name` (lowercase) in a lowercased head.
pub fn header_in<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// `cfg` with an access log at `log` on its listener named `main` (the first line after its
/// name must be `address = "127.0.0.1:0"`).
pub fn with_access_log(cfg: &str, log: &TempLog) -> String {
    cfg.replacen(
        "name = \"main\"\naddress = \"127.0.0.1:0\"\n",
        &format!(
            "name = \"main\"\naddress = \"127.0.0.1:0\"\naccess_log = {{ path = \"{}\" }}\n",
            log.path()
        ),
        1,
    )
}

/// A loopback address whose port was just free and is now closed (connect is refused).
/// A raw TCP backend on loopback: `handle` runs on each accepted connection, on a thread of
/// its own.
pub fn tcp_backend(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            let h = Arc::clone(&handle);
            std::thread::spawn(move || h(s));
        }
    });
    addr
}

/// Reads from `c` until `buf` holds a whole message head (a request's or a response's), and
/// takes that head out of `buf` (bytes after it stay). `None`: the peer closed, or the read
/// failed (a read timeout), first.
pub fn read_head(c: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut b = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(buf.drain(..end + 4).collect());
        }
        match c.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// An upstream that reads one request head and answers with a body that does not end (chunked, or a Content-Length of
/// 1 GiB) and writes it until the proxy closes the connection (then sends `true` on `closed`)
/// or all of it went (`false`).
pub fn endless_backend(chunked: bool, closed: std::sync::mpsc::Sender<bool>) -> SocketAddr {
    let closed = std::sync::Mutex::new(closed);
    tcp_backend(move |mut c| {
        if read_head(&mut c, &mut Vec::new()).is_none() {
            return;
        }
        let head: &[u8] = if chunked {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n"
        };
        let piece = vec![b'x'; 64 * 1024];
        let mut ok = c.write_all(head).is_ok();
        // At most 1 GiB: far more than every buffer on the way holds.
        for _ in 0..16 * 1024 {
            if !ok {
                break;
            }
            ok = if chunked {
                c.write_all(b"10000\r\n").is_ok()
                    && c.write_all(&piece).is_ok()
                    && c.write_all(b"\r\n").is_ok()
            } else {
                c.write_all(&piece).is_ok()
            };
        }
        let _ = closed.lock().unwrap().send(!ok);
    })
}

/// A deterministic byte stream (xorshift), so a lost, repeated or reordered piece shows.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// Config for one listener routing everything to one cluster at `backend`.
pub fn one_route(backend: SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"

[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#
    )
}

/// A log file path unique to this test run; removed on drop.
pub struct TempLog(std::path::PathBuf);

impl TempLog {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "ringway-test-{}-{tag}-{nanos}.log",
            std::process::id()
        )))
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }

    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Wait (bounded) for the workers' periodic flush to have written `n` lines.
    pub fn wait_lines(&self, proxy: &Proxy, n: usize) -> Vec<String> {
        proxy.eventually(&format!("{n} access log lines"), |_| {
            self.lines().len() >= n
        });
        let lines = self.lines();
        assert_eq!(lines.len(), n, "{lines:#?}");
        lines
    }

    /// Parse the JSON lines; index them by `path`.
    pub fn json_by_path(
        &self,
        proxy: &Proxy,
        n: usize,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        self.wait_lines(proxy, n)
            .iter()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                let path = v["path"].as_str().expect("path").to_owned();
                (path, v)
            })
            .collect()
    }
}

impl Drop for TempLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fixed-rate load (8 clients, a request every 5 ms each) for `secs` over keep-alive
/// connections; returns (requests, failures).
pub async fn fixed_rate_load(addr: SocketAddr, secs: u64) -> (usize, usize) {
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (failures, done) = (failures.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let client = client();
            let until = std::time::Instant::now() + Duration::from_secs(secs);
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while std::time::Instant::now() < until {
                tick.tick().await;
                let req = Request::get(format!("http://{addr}/x"))
                    .body(body(Bytes::new()))
                    .unwrap();
                let ok = match client.request(req).await {
                    Ok(r) => r.status() == 200 && r.into_body().collect().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (done.load(Ordering::SeqCst), failures.load(Ordering::SeqCst))
}
