//! Route retry policies against upstreams that misbehave on purpose: each `retry_on`
//! condition (refused connects, resets before the head, 5xx and listed statuses, per-try
//! timeouts, gRPC statuses in a trailers-only answer), which endpoint served each try, the
//! retry limit (`URX`), the retry buffer (a POST replayed byte-exact; a larger body never
//! replayed), HTTP/1 and HTTP/2 on both sides, and an endpoint killed under a bounded load
//! with no request failing.
//!
//! Misbehaving upstreams are [`Script`]: a std listener that answers the n-th request it
//! reads as the test's function says (bytes, a close, a stall).
//! docs/config.md "retry_policy"; issue "Retries, the full set of timeouts…".

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use support::*;

/// What a [`Script`] does with a request it read.
enum Act {
    /// Write these bytes (a whole response) and keep the connection.
    Answer(Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Wait this long, then answer 200 `late`.
    Stall(Duration),
    /// Write these bytes (a response cut short), then close.
    Cut(Vec<u8>),
}

fn answer(status: u16, body: &str) -> Act {
    Act::Answer(
        format!(
            "HTTP/1.1 {status} x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// A raw HTTP/1.1 upstream run by a function of (request number from 0, request bytes).
struct Script {
    addr: SocketAddr,
    seen: Arc<AtomicUsize>,
    /// The bodies of the requests read, in order.
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl Script {
    fn start(act: impl Fn(usize, &[u8]) -> Act + Send + Sync + 'static) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let act = Arc::new(act);
        let (s, b, st) = (seen.clone(), bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        let (s, b, act) = (s.clone(), b.clone(), act.clone());
                        std::thread::spawn(move || serve(c, &s, &b, &*act));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self {
            addr,
            seen,
            bodies,
            stop,
        }
    }

    fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serve requests on one connection until it closes or the script closes it.
fn serve(
    mut c: TcpStream,
    seen: &AtomicUsize,
    bodies: &Mutex<Vec<Vec<u8>>>,
    act: &(dyn Fn(usize, &[u8]) -> Act + Send + Sync),
) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // One whole request: head, then a content-length or chunked body (no trailers).
        let (head_end, len, body) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                if head.contains("transfer-encoding: chunked") {
                    if let Some(body) = dechunk(&buf[end + 4..]) {
                        break (end + 4, body.1, body.0);
                    }
                } else {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if buf.len() >= end + 4 + len {
                        break (end + 4, len, buf[end + 4..end + 4 + len].to_vec());
                    }
                }
            }
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let mut req: Vec<u8> = buf.drain(..head_end + len).collect();
        // What the script sees: the head and the decoded body.
        req.truncate(head_end);
        req.extend_from_slice(&body);
        bodies.lock().unwrap().push(body);
        let n = seen.fetch_add(1, Ordering::SeqCst);
        match act(n, &req) {
            Act::Answer(bytes) => {
                if c.write_all(&bytes).is_err() {
                    return;
                }
            }
            Act::Close => return,
            Act::Cut(bytes) => {
                let _ = c.write_all(&bytes);
                return;
            }
            Act::Stall(d) => {
                std::thread::sleep(d);
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate");
                return;
            }
        }
    }
}

/// A whole chunked body at the front of `buf` (no trailers): (decoded, bytes used).
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line = buf[at..].windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&buf[at..at + line]).ok()?, 16).ok()?;
        at += line + 2;
        if size == 0 {
            return (buf.len() >= at + 2).then_some((body, at + 2));
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

/// One POST with a chunked body sent in pieces of `piece` bytes; (status, body).
fn chunked_post(addr: SocketAddr, body: &[u8], piece: usize) -> (u16, Vec<u8>) {
    let mut req =
        b"POST /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for p in body.chunks(piece) {
        req.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        req.extend_from_slice(p);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_exchange(addr, &req);
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |p| p + 4);
    (status_of(&resp), resp[at..].to_vec())
}

/// One listener, one route to cluster `c` over `endpoints`, with `policy` as the route's
/// `retry_policy` table body (empty: none) and a JSON access log at `log`.
fn config(endpoints: &[SocketAddr], policy: &str, log: Option<&TempLog>) -> String {
    let eps: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
    let log = log.map_or(String::new(), |p| {
        format!(
            "access_log = {{ path = \"{}\", format = \"json\" }}\n",
            p.path()
        )
    });
    let policy = if policy.is_empty() {
        String::new()
    } else {
        format!("      [listeners.virtual_hosts.routes.retry_policy]\n{policy}\n")
    };
    format!(
        r#"
workers = 2
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "main"
address = "127.0.0.1:0"
{log}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "c"
{policy}
[[clusters]]
name = "c"
endpoints = [{}]
"#,
        eps.join(", ")
    )
}

/// One HTTP/1.1 request over a fresh connection; (status, body).
fn request(addr: SocketAddr, method: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut req = format!(
        "{method} /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let resp = raw_exchange(addr, &req);
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |p| p + 4);
    (status_of(&resp), resp[at..].to_vec())
}

fn get(addr: SocketAddr) -> u16 {
    raw_get(addr, "/x").0
}

/// The access log's `n` lines, parsed.
fn log_lines(proxy: &Proxy, log: &TempLog, n: usize) -> Vec<serde_json::Value> {
    log.wait_lines(proxy, n)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn settled(proxy: &Proxy, stat: &str, want: i64) {
    proxy.eventually(&format!("{stat} == {want}"), |p| p.stat(stat) == want);
}

#[test]
fn refused_connects_are_retried_on_another_endpoint() {
    let up = Backend::fixed(200, "ok");
    let dead = closed_port();
    // Without a policy, every other request fails: the test can tell.
    let proxy = Proxy::start(&config(&[dead, up.addr], "", None));
    let statuses: Vec<u16> = (0..8).map(|_| get(proxy.addr())).collect();
    assert!(statuses.contains(&502), "{statuses:?}");
    drop(proxy);

    let log = TempLog::new("retries");
    let policy = "retry_on = [\"connect-failure\"]\nnum_retries = 1";
    let proxy = Proxy::start(&config(&[dead, up.addr], policy, Some(&log)));
    for _ in 0..12 {
        assert_eq!(get(proxy.addr()), 200);
    }
    let retried = proxy.stat("cluster.c.upstream_rq_retry");
    assert!(retried >= 1, "round robin met the dead endpoint");
    settled(&proxy, "cluster.c.upstream_rq_retry_success", retried);
    assert_eq!(
        proxy.stat("cluster.c.upstream_rq_retry_backoff_exponential"),
        retried
    );
    let lines = log_lines(&proxy, &log, 12);
    let tries: Vec<u64> = lines
        .iter()
        .map(|l| l["upstream_request_attempt_count"].as_u64().unwrap())
        .collect();
    assert_eq!(
        tries.iter().filter(|&&t| t == 2).count() as i64,
        retried,
        "{tries:?}"
    );
    for l in &lines {
        assert_eq!(
            l["upstream_host"],
            up.addr.to_string(),
            "the live endpoint answered"
        );
        assert_eq!(l["response_flags"], "-");
    }
}

#[test]
fn a_5xx_is_retried_and_the_next_answer_relayed() {
    let up = Script::start(|n, _| {
        if n == 0 {
            answer(503, "busy")
        } else {
            answer(200, "fine")
        }
    });
    let proxy = Proxy::start(&config(&[up.addr], "retry_on = [\"5xx\"]", None));
    let (status, body) = request(proxy.addr(), "GET", b"");
    assert_eq!((status, &body[..]), (200, &b"fine"[..]));
    assert_eq!(up.seen(), 2);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 1);
    // The retried try counts as a 5xx of the endpoint; the client saw a 2xx.
    settled(&proxy, "cluster.c.upstream_rq_5xx", 1);
    settled(&proxy, "cluster.c.upstream_rq_2xx", 1);
    settled(&proxy, "http.main.downstream_rq_2xx", 1);
}

#[test]
fn retries_used_up_relay_the_last_answer_flagged_urx() {
    let up = Script::start(|n, _| answer(503, &format!("try {n}")));
    let log = TempLog::new("retries");
    let policy = "retry_on = [\"gateway-error\"]\nnum_retries = 2\n\
                  retry_back_off = { base_interval = \"1ms\", max_interval = \"2ms\" }";
    let proxy = Proxy::start(&config(&[up.addr], policy, Some(&log)));
    let (status, body) = request(proxy.addr(), "GET", b"");
    assert_eq!(
        (status, &body[..]),
        (503, &b"try 2"[..]),
        "the third answer"
    );
    assert_eq!(up.seen(), 3);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 2);
    settled(&proxy, "cluster.c.upstream_rq_retry_limit_exceeded", 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry_success"), 0);
    let line = &log_lines(&proxy, &log, 1)[0];
    assert_eq!(line["response_flags"], "URX");
    assert_eq!(line["upstream_request_attempt_count"], 3);
}

#[test]
fn listed_statuses_retry_and_others_do_not() {
    let up = Script::start(|n, req| {
        let path = String::from_utf8_lossy(req);
        let first = n.is_multiple_of(2);
        match () {
            _ if path.starts_with("GET /409") && first => answer(409, "conflict"),
            _ if path.starts_with("GET /418") && first => answer(418, "teapot"),
            _ if path.starts_with("GET /404") => answer(404, "missing"),
            _ => answer(200, "ok"),
        }
    });
    let policy = "retry_on = [\"retriable-4xx\", \"retriable-status-codes\"]\n\
                  retriable_status_codes = [418]";
    let proxy = Proxy::start(&config(&[up.addr], policy, None));
    assert_eq!(raw_get(proxy.addr(), "/409").0, 200);
    assert_eq!(up.seen(), 2);
    assert_eq!(raw_get(proxy.addr(), "/418").0, 200);
    assert_eq!(up.seen(), 4);
    assert_eq!(raw_get(proxy.addr(), "/404").0, 404, "not listed");
    assert_eq!(up.seen(), 5);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 2);
}

#[test]
fn a_reset_before_the_head_is_retried_only_under_reset() {
    let script = |n: usize, _: &[u8]| {
        if n.is_multiple_of(2) {
            Act::Close
        } else {
            answer(200, "second")
        }
    };
    let up = Script::start(script);
    let proxy = Proxy::start(&config(
        &[up.addr],
        "retry_on = [\"connect-failure\"]",
        None,
    ));
    assert_eq!(get(proxy.addr()), 502, "a reset is not a connect failure");
    drop(proxy);
    let up = Script::start(script);
    let proxy = Proxy::start(&config(&[up.addr], "retry_on = [\"reset\"]", None));
    let (status, body) = request(proxy.addr(), "GET", b"");
    assert_eq!((status, &body[..]), (200, &b"second"[..]));
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 1);
}

#[test]
fn a_stalled_try_ends_at_the_per_try_timeout_and_the_next_one_answers() {
    let up = Script::start(|n, _| {
        if n == 0 {
            Act::Stall(Duration::from_secs(3))
        } else {
            answer(200, "quick")
        }
    });
    let policy = "retry_on = [\"5xx\"]\nper_try_timeout = \"200ms\"";
    let proxy = Proxy::start(&config(&[up.addr], policy, None));
    let (status, body) = request(proxy.addr(), "GET", b"");
    assert_eq!((status, &body[..]), (200, &b"quick"[..]));
    assert_eq!(proxy.stat("cluster.c.upstream_rq_per_try_timeout"), 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 1);

    // Every try stalls: the per-try timeouts use up the retries, 504 UT.
    let up = Script::start(|_, _| Act::Stall(Duration::from_secs(3)));
    let log = TempLog::new("retries");
    let policy = "retry_on = [\"5xx\"]\nper_try_timeout = \"100ms\"\nnum_retries = 1";
    let proxy = Proxy::start(&config(&[up.addr], policy, Some(&log)));
    assert_eq!(get(proxy.addr()), 504);
    assert_eq!(up.seen(), 2);
    let line = &log_lines(&proxy, &log, 1)[0];
    assert_eq!(line["response_flags"], "URX,UT");
}

#[test]
fn a_held_post_is_replayed_byte_exact_and_a_larger_body_is_not() {
    // Every other request's connection is closed unanswered.
    let up = Script::start(|n, req| {
        if n.is_multiple_of(2) {
            return Act::Close;
        }
        let at = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &req[at..];
        let mut resp =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        resp.extend_from_slice(body);
        Act::Answer(resp)
    });
    let policy = "retry_on = [\"reset\"]\nper_request_buffer_limit_bytes = 20000";
    let proxy = Proxy::start(&config(&[up.addr], policy, None));
    let payload: Vec<u8> = (0..16_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, echoed) = request(proxy.addr(), "POST", &payload);
    assert_eq!(status, 200);
    assert!(echoed == payload, "the replayed body is the one sent");
    let bodies = up.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0] == payload && bodies[1] == payload);

    // Over the retry buffer: sent once, not held, not retried.
    let big: Vec<u8> = vec![b'x'; 30_000];
    let (status, _) = request(proxy.addr(), "POST", &big);
    assert_eq!(status, 502);
    assert_eq!(up.seen(), 3, "sent once");
    assert_eq!(proxy.stat("cluster.c.retry_or_shadow_abandoned"), 1);

    assert_eq!(
        get(proxy.addr()),
        200,
        "the next one's connection is closed again"
    );
    // A chunked body of unknown length is held while it fits.
    let (status, echoed) = chunked_post(proxy.addr(), &payload, 1000);
    assert_eq!(status, 200);
    assert!(echoed == payload);
    assert_eq!(up.seen(), 6, "replayed");
    // One that outgrows the buffer: what was read of it goes first, then the rest; the
    // upstream gets it whole, once.
    let big: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let (status, _) = chunked_post(proxy.addr(), &big, 3000);
    assert_eq!(status, 502, "the first try fails, and is not retried");
    assert_eq!(up.seen(), 7);
    let (status, echoed) = chunked_post(proxy.addr(), &big, 3000);
    assert_eq!(status, 200);
    assert!(
        echoed == big,
        "the held start and the streamed rest, in order"
    );
    assert_eq!(up.seen(), 8);
    assert_eq!(proxy.stat("cluster.c.retry_or_shadow_abandoned"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_is_retried_to_an_http1_upstream() {
    let up = Script::start(|n, _| {
        if n == 0 {
            Act::Close
        } else {
            answer(200, "over h1")
        }
    });
    let proxy = Proxy::start(&config(&[up.addr], "retry_on = [\"reset\"]", None));
    let mut h2 = h2c(proxy.addr()).await;
    let req = Request::post(format!("http://{}/x", proxy.addr()))
        .header("content-length", "5")
        .body(body("hello"))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(read_body(resp).await, "over h1");
    let bodies = up.bodies.lock().unwrap().clone();
    assert_eq!(bodies, vec![b"hello".to_vec(), b"hello".to_vec()]);
}

/// An h2c upstream config (`protocol = "http2"`).
fn h2_upstream(cfg: String) -> String {
    cfg.replace("name = \"c\"\n", "name = \"c\"\nprotocol = \"http2\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_upstream_503_is_retried_for_an_http1_client() {
    let tries = Arc::new(AtomicUsize::new(0));
    let t = tries.clone();
    let up = Backend::start_h2(move |_req| {
        let n = t.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok(if n == 0 {
                full(503, "busy")
            } else {
                full(200, "over h2")
            })
        }
    });
    let proxy = Proxy::start(&h2_upstream(config(
        &[up.addr],
        "retry_on = [\"5xx\"]",
        None,
    )));
    let resp = client()
        .request(
            Request::get(format!("http://{}/x", proxy.addr()))
                .body(body(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(read_body(resp).await, "over h2");
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_unavailable_answer_is_retried() {
    let tries = Arc::new(AtomicUsize::new(0));
    let t = tries.clone();
    // A trailers-only gRPC answer (`grpc-status` in the head), then a real one.
    let up = Backend::start_h2(move |_req| {
        let n = t.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut resp = full(200, if n == 0 { "" } else { "\0\0\0\0\x02hi" });
            resp.headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            if n == 0 {
                resp.headers_mut()
                    .insert("grpc-status", "14".parse().unwrap());
            }
            Ok(resp)
        }
    });
    let policy = "retry_on = [\"unavailable\"]";
    let proxy = Proxy::start(&h2_upstream(config(&[up.addr], policy, None)));
    let mut h2 = h2c(proxy.addr()).await;
    // As gRPC clients send it: no content-length, the message in a DATA frame of its own.
    let pieces: Vec<Result<Frame<Bytes>, hyper::Error>> =
        vec![Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0")))];
    let req = Request::post(format!("http://{}/svc/Call", proxy.addr()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
            pieces,
        ))))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("grpc-status").is_none(),
        "not the first answer"
    );
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&got[..], b"\0\0\0\0\x02hi");
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}

/// Three endpoints, one killed while a fixed-rate client runs (idempotent GETs over
/// keep-alive connections, retries on): no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_endpoints_under_load_fails_no_request() {
    let a = Backend::fixed(200, "a");
    let b = Backend::fixed(200, "b");
    let c = Backend::fixed(200, "c");
    let policy = "retry_on = [\"5xx\", \"reset\", \"connect-failure\"]\nnum_retries = 2";
    // About 530 retries a second, each holding a retry slot for its back-off (up to 25 ms)
    // and its try: more than Envoy's default of 3 retries in flight.
    let cfg = config(&[a.addr, b.addr, c.addr], policy, None).replace(
        "name = \"c\"\n",
        "name = \"c\"\ncircuit_breakers = { max_retries = 100 }\n",
    );
    let proxy = Proxy::start(&cfg);
    let addr = proxy.addr();
    // 8 clients, one request each every 5 ms, for 2 s: about 3,000 requests.
    let loaded = tokio::spawn(fixed_rate_load(addr, 2));
    tokio::time::sleep(Duration::from_millis(700)).await;
    drop(b); // killed: its connections close, new ones are refused
    let (n, failures) = loaded.await.unwrap();
    assert!(n > 500, "the load ran ({n} requests)");
    assert_eq!(failures, 0, "of {n} requests");
    assert!(proxy.stat("cluster.c.upstream_rq_retry") >= 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry_overflow"), 0);
}

#[test]
fn the_retry_circuit_breaker_bounds_retries_in_flight() {
    let up = Script::start(|_, _| answer(503, "no"));
    let cfg = config(&[up.addr], "retry_on = [\"5xx\"]", None).replace(
        "name = \"c\"\n",
        "name = \"c\"\ncircuit_breakers = { max_retries = 0 }\n",
    );
    let proxy = Proxy::start(&cfg);
    assert_eq!(get(proxy.addr()), 503, "the answer, not retried");
    assert_eq!(up.seen(), 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry_overflow"), 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 0);
}

#[test]
fn a_bad_retry_policy_is_refused_with_its_place() {
    let up = closed_port();
    let text = config(&[up], "retry_on = [\"5xx\", \"sometimes\"]", None);
    let err = engine::config::parse_str(&text, "r.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("r.toml:"), "{err}");
    assert!(err.contains("retry_on[1]"), "{err}");
    assert!(
        err.contains("unknown retry condition \"sometimes\""),
        "{err}"
    );
    for (policy, what) in [
        ("num_retries = 1", "at least one `retry_on`"),
        (
            "retry_on = [\"5xx\"]\nnum_retries = 99",
            "at most 10 retries",
        ),
        (
            "retry_on = [\"5xx\"]\nretry_back_off = { base_interval = \"50ms\", max_interval = \"10ms\" }",
            "not be less than `base_interval`",
        ),
        (
            "retry_on = [\"5xx\"]\nper_try_timeout = \"soon\"",
            "invalid duration",
        ),
    ] {
        let text = config(&[up], policy, None);
        let err = engine::config::parse_str(&text, "r.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(what), "{policy}: {err}");
    }
}

/// An HTTP/2 client's body of unknown length larger than the retry buffer (and than the
/// stream window): its start is held, then the rest streams; both upstream protocols get it
/// whole, and flow control keeps crediting the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_body_over_the_retry_buffer_streams_whole() {
    let h1 = Backend::echo();
    let h2 = Backend::start_h2(|req: Request<hyper::body::Incoming>| async move {
        Ok(hyper::Response::new(req.into_body().boxed()))
    });
    let policy = "retry_on = [\"reset\"]\nper_request_buffer_limit_bytes = 20000";
    for (cfg, what) in [
        (config(&[h1.addr], policy, None), "http1 upstream"),
        (
            h2_upstream(config(&[h2.addr], policy, None)),
            "http2 upstream",
        ),
    ] {
        let proxy = Proxy::start(&cfg);
        let mut client = h2c(proxy.addr()).await;
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let pieces: Vec<Result<Frame<Bytes>, hyper::Error>> = data
            .chunks(16_000)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let req = Request::post(format!("http://{}/x", proxy.addr()))
            .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
                pieces,
            ))))
            .unwrap();
        let resp = client.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "{what}");
        let got = read_body(resp).await;
        assert!(got == data, "{what}: {} bytes back", got.len());
        assert_eq!(
            proxy.stat("cluster.c.retry_or_shadow_abandoned"),
            1,
            "{what}"
        );
        // Counted once: the held start is not counted again as it is sent.
        settled(&proxy, "http.main.downstream_cx_rx_bytes_total", 200_000);
    }
}

#[test]
fn a_retry_budget_replaces_max_retries() {
    let up = Script::start(|_, _| answer(503, "no"));
    // A budget of nothing, however high max_retries is.
    let budget = "circuit_breakers = { max_retries = 100, retry_budget = \
                  { budget_percent = 0.0, min_retry_concurrency = 0 } }";
    let cfg = config(&[up.addr], "retry_on = [\"5xx\"]", None)
        .replace("name = \"c\"\n", &format!("name = \"c\"\n{budget}\n"));
    let proxy = Proxy::start(&cfg);
    assert_eq!(get(proxy.addr()), 503);
    assert_eq!(up.seen(), 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry_overflow"), 1);
    drop(proxy);
    // A floor of one retry in flight admits it.
    let up = Script::start(|n, _| {
        if n == 0 {
            answer(503, "no")
        } else {
            answer(200, "yes")
        }
    });
    let cfg = config(&[up.addr], "retry_on = [\"5xx\"]", None).replace(
        "name = \"c\"\n",
        "name = \"c\"\ncircuit_breakers = { max_retries = 0, retry_budget = \
         { budget_percent = 0.0, min_retry_concurrency = 1 } }\n",
    );
    let proxy = Proxy::start(&cfg);
    assert_eq!(get(proxy.addr()), 200);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 1);
}

/// A raw h2c upstream: the first stream is refused (RST_STREAM REFUSED_STREAM), every later
/// one answered `:status 200` with no body. Returns its address and the streams it saw.
fn refusing_h2_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let streams = Arc::new(AtomicUsize::new(0));
    let seen = streams.clone();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = l.accept() else { return };
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let frame = |kind: u8, flags: u8, stream: u32, payload: &[u8]| {
            let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
            f.extend_from_slice(&[kind, flags]);
            f.extend_from_slice(&stream.to_be_bytes());
            f.extend_from_slice(payload);
            f
        };
        let mut preface = [0u8; 24];
        if c.read_exact(&mut preface).is_err() {
            return;
        }
        let _ = c.write_all(&frame(0x4, 0, 0, &[]));
        loop {
            let mut head = [0u8; 9];
            if c.read_exact(&mut head).is_err() {
                return;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let (kind, flags) = (head[3], head[4]);
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            if c.read_exact(&mut payload).is_err() {
                return;
            }
            let reply = match kind {
                0x4 if flags & 0x1 == 0 => frame(0x4, 0x1, 0, &[]),
                0x1 => {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    if n == 0 {
                        frame(0x3, 0, stream, &7u32.to_be_bytes())
                    } else {
                        // `:status: 200` (static table index 8), END_HEADERS | END_STREAM.
                        frame(0x1, 0x5, stream, &[0x88])
                    }
                }
                _ => continue,
            };
            if c.write_all(&reply).is_err() {
                return;
            }
        }
    });
    (addr, streams)
}

#[test]
fn a_refused_http2_stream_is_retried_under_refused_stream() {
    let (addr, streams) = refusing_h2_upstream();
    let cfg = h2_upstream(config(&[addr], "retry_on = [\"refused-stream\"]", None))
        .replace("workers = 2", "workers = 1");
    let proxy = Proxy::start(&cfg);
    assert_eq!(get(proxy.addr()), 200);
    assert_eq!(streams.load(Ordering::SeqCst), 2, "refused, then answered");
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 1);
}

#[test]
fn a_reset_after_the_head_went_downstream_is_never_retried() {
    // The head and part of the body, then the connection closes.
    let up = Script::start(|_, _| {
        Act::Cut(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial".to_vec())
    });
    let log = TempLog::new("retries");
    let policy = "retry_on = [\"reset\", \"5xx\"]\nnum_retries = 2";
    let proxy = Proxy::start(&config(&[up.addr], policy, Some(&log)));
    let (status, body) = request(proxy.addr(), "GET", b"");
    assert_eq!(
        (status, &body[..]),
        (200, &b"partial"[..]),
        "cut short, as it came"
    );
    assert_eq!(up.seen(), 1);
    let line = &log_lines(&proxy, &log, 1)[0];
    assert_eq!(line["response_flags"], "UC");
    assert_eq!(line["upstream_request_attempt_count"], 1);
    assert_eq!(proxy.stat("cluster.c.upstream_rq_retry"), 0);
}
