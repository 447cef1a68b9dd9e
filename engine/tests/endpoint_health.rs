//! Endpoint health: outlier detection ejecting after consecutive failures seen by two
//! workers and un-ejecting by time, `max_ejection_percent` with one ejection always allowed,
//! the panic threshold, HTTP, TCP and gRPC active health checks taking an endpoint out and back in
//! (thresholds honoured, state kept across a reload), `/clusters` flags, and an endpoint
//! killed under load with retries and health together (no request fails; it serves again
//! once back) and with outlier detection alone (only the first few requests fail); the
//! failure percentage and success rate detectors.
//!
//! Upstreams are [`Up`]: a std listener answering each request with the status its test
//! sets (`/healthz` apart), which can be killed (listener and connections closed) and
//! started again on the same port; the gRPC health server is hyper's h2c.
//! docs/config.md "Endpoint health"; issue #13.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;
use support::*;

/// A raw HTTP/1.1 upstream: answers `status` (body: its name), `/healthz` with `hc_status`.
struct Up {
    addr: SocketAddr,
    name: &'static str,
    status: Arc<AtomicU16>,
    hc_status: Arc<AtomicU16>,
    /// Requests answered, `/healthz` apart.
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Up {
    fn start(name: &'static str, status: u16) -> Self {
        Self::start_at(name, "127.0.0.1:0".parse().unwrap(), status)
    }

    fn start_at(name: &'static str, addr: SocketAddr, status: u16) -> Self {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(status));
        let hc_status = Arc::new(AtomicU16::new(200));
        let served: Arc<AtomicUsize> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (st, hc, sv, stp, cs) = (
            status.clone(),
            hc_status.clone(),
            served.clone(),
            stop.clone(),
            conns.clone(),
        );
        let thread = std::thread::spawn(move || {
            while !stp.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        cs.lock().unwrap().push(c.try_clone().unwrap());
                        let (st, hc, sv) = (st.clone(), hc.clone(), sv.clone());
                        std::thread::spawn(move || serve(c, name, &st, &hc, &sv));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self {
            addr,
            name,
            status,
            hc_status,
            served,
            stop,
            conns,
            thread: Some(thread),
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection: new connections are refused.
    fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Started again on the same port.
    fn revive(&self) -> Self {
        let up = Self::start_at(self.name, self.addr, self.status.load(Ordering::SeqCst));
        up.served.store(self.served(), Ordering::SeqCst);
        up
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(mut c: TcpStream, name: &str, status: &AtomicU16, hc: &AtomicU16, served: &AtomicUsize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head: Vec<u8> = buf.drain(..end + 4).collect();
        let s = if head.starts_with(b"GET /healthz ") {
            hc.load(Ordering::SeqCst)
        } else {
            served.fetch_add(1, Ordering::SeqCst);
            status.load(Ordering::SeqCst)
        };
        let resp = format!(
            "HTTP/1.1 {s} x\r\ncontent-length: {}\r\n\r\n{name}",
            name.len()
        );
        if c.write_all(resp.as_bytes()).is_err() {
            return;
        }
        if String::from_utf8_lossy(&head)
            .to_ascii_lowercase()
            .contains("connection: close")
        {
            // `Up::conns` holds a clone: dropping this one would not close the socket.
            let _ = c.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Two workers, one route to cluster `c` with `extra` lines in it (and `route` lines in
/// the route).
fn config(endpoints: &[SocketAddr], extra: &str, route: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"
workers = 2
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "c"
{route}
[[clusters]]
name = "c"
endpoints = [{}]
{extra}
"#,
        eps.join(", ")
    )
}

fn reload(proxy: &Proxy, toml: &str) {
    let cfg = engine::config::parse_str(toml, "<test>").unwrap();
    proxy.handle().reload(cfg).unwrap();
}

/// One GET over a fresh connection (so the kernel spreads them over both workers).
fn get(proxy: &Proxy) -> (u16, String) {
    raw_get(proxy.addr(), "/x")
}

/// `health_flags` of endpoint `a` in `/clusters`.
fn flags(proxy: &Proxy, a: SocketAddr) -> String {
    let (_, text) = proxy.admin_get("/clusters");
    let key = format!("c::{a}::health_flags::");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .to_owned()
}

const OUTLIER: &str = r#"
  [clusters.outlier_detection]
  consecutive_5xx = 4
  interval = "100ms"
  base_ejection_time = "1s"
  max_ejection_percent = 50.0
"#;

#[test]
fn consecutive_5xx_over_two_workers_eject_then_time_un_ejects() {
    let good = Up::start("good", 200);
    let bad = Up::start("bad", 503);
    let proxy = Proxy::start(&config(&[good.addr, bad.addr], OUTLIER, ""));
    let mut errors = 0;
    for _ in 0..40 {
        if get(&proxy).0 == 503 {
            errors += 1;
        }
        if proxy.stat("cluster.c.outlier_detection.ejections_enforced_total") == 1 {
            break;
        }
    }
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_consecutive_5xx"),
        1
    );
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_detected_consecutive_5xx"),
        1
    );
    // The fourth failure ejects; a request may have been on its way meanwhile.
    assert!(
        (4..=5).contains(&errors),
        "{errors} errors before the ejection"
    );
    assert_eq!(flags(&proxy, bad.addr), "/failed_outlier_check");
    assert_eq!(flags(&proxy, good.addr), "healthy");
    let (_, json) = proxy.admin_get("/clusters?format=json");
    assert!(json.contains("\"failed_outlier_check\":true"), "{json}");
    proxy.eventually("gauges follow", |p| {
        p.stat("cluster.c.outlier_detection.ejections_active") == 1
            && p.stat("cluster.c.membership_healthy") == 1
    });
    let before = bad.served();
    for _ in 0..10 {
        assert_eq!(get(&proxy), (200, "good".to_owned()));
    }
    assert_eq!(bad.served(), before, "an ejected endpoint gets nothing");
    // Back after base_ejection_time.
    bad.status.store(200, Ordering::SeqCst);
    proxy.eventually("un-ejected", |p| flags(p, bad.addr) == "healthy");
    proxy.eventually("it serves again", |p| {
        get(p);
        bad.served() > before
    });
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_active"),
        0
    );
}

#[test]
fn max_ejection_percent_still_ejects_one() {
    let good = Up::start("good", 200);
    let bad1 = Up::start("bad1", 503);
    let bad2 = Up::start("bad2", 503);
    // 10 % of 3 endpoints rounds to none: one may be ejected all the same.
    let od = OUTLIER.replace("50.0", "10.0").replace("\"1s\"", "\"30s\"");
    let proxy = Proxy::start(&config(&[good.addr, bad1.addr, bad2.addr], &od, ""));
    proxy.eventually("one ejected, one refused", |p| {
        get(p);
        p.stat("cluster.c.outlier_detection.ejections_overflow") >= 1
    });
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_total"),
        1
    );
    let f = [flags(&proxy, bad1.addr), flags(&proxy, bad2.addr)];
    assert!(
        f.contains(&"healthy".to_owned()) && f.contains(&"/failed_outlier_check".to_owned()),
        "{f:?}"
    );
}

#[test]
fn below_the_panic_threshold_every_endpoint_is_used() {
    let good = Up::start("good", 200);
    let bad1 = Up::start("bad1", 503);
    let bad2 = Up::start("bad2", 503);
    let od = OUTLIER
        .replace("50.0", "100.0")
        .replace("\"1s\"", "\"30s\"");
    // Two of three ejected leaves 33 % healthy, below 50 %: all are used.
    let proxy = Proxy::start(&config(&[good.addr, bad1.addr, bad2.addr], &od, ""));
    proxy.eventually("both bad ones ejected", |p| {
        get(p);
        p.stat("cluster.c.outlier_detection.ejections_enforced_total") == 2
    });
    let before = bad1.served() + bad2.served();
    for _ in 0..12 {
        get(&proxy);
    }
    assert!(
        bad1.served() + bad2.served() > before,
        "panic mode uses all"
    );
    // With the threshold off, ejected endpoints get nothing.
    let cfg = config(&[good.addr, bad1.addr, bad2.addr], &od, "").replace(
        "name = \"c\"\n",
        "name = \"c\"\nhealthy_panic_threshold = 0.0\n",
    );
    reload(&proxy, &cfg);
    assert_eq!(flags(&proxy, bad1.addr), "/failed_outlier_check", "kept");
    for _ in 0..12 {
        assert_eq!(get(&proxy), (200, "good".to_owned()));
    }
}

const HTTP_HC: &str = r#"
  [[clusters.health_checks]]
  type = "http"
  path = "/healthz"
  expected_statuses = [[200, 300]]
  interval = "50ms"
  interval_jitter = "10ms"
  timeout = "1s"
  unhealthy_threshold = 3
  healthy_threshold = 2
"#;

#[test]
fn an_http_health_check_takes_an_endpoint_out_and_back_in() {
    let a = Up::start("a", 200);
    let b = Up::start("b", 200);
    let proxy = Proxy::start(&config(&[a.addr, b.addr], HTTP_HC, ""));
    proxy.eventually("checks pass", |p| {
        p.stat("cluster.c.health_check.success") >= 4
            && p.stat("cluster.c.health_check.healthy") == 2
    });
    assert_eq!(flags(&proxy, b.addr), "healthy");
    b.hc_status.store(503, Ordering::SeqCst);
    proxy.eventually("b failed its checks", |p| {
        flags(p, b.addr) == "/failed_active_hc"
    });
    // Three failures in a row were needed.
    assert!(proxy.stat("cluster.c.health_check.failure") >= 3);
    assert_eq!(proxy.stat("cluster.c.health_check.network_failure"), 0);
    proxy.eventually("gauges follow", |p| {
        p.stat("cluster.c.membership_healthy") == 1 && p.stat("cluster.c.health_check.healthy") == 1
    });
    let before = b.served();
    for _ in 0..10 {
        assert_eq!(get(&proxy), (200, "a".to_owned()));
    }
    assert_eq!(b.served(), before);
    let (_, json) = proxy.admin_get("/clusters?format=json");
    assert!(
        json.contains("\"failed_active_health_check\":true"),
        "{json}"
    );

    // Kept across a reload (a third endpoint added, starting unhealthy as configured).
    let c = Up::start("c", 200);
    let cfg = config(
        &[a.addr, b.addr, c.addr],
        &format!("{HTTP_HC}  initial_health = \"unhealthy\"\n"),
        "",
    );
    reload(&proxy, &cfg);
    assert_eq!(
        flags(&proxy, b.addr),
        "/failed_active_hc",
        "b kept its state"
    );
    assert_eq!(flags(&proxy, a.addr), "healthy", "a kept its state");
    proxy.eventually("c passes its first checks", |p| {
        flags(p, c.addr) == "healthy"
    });

    b.hc_status.store(200, Ordering::SeqCst);
    proxy.eventually("b healthy again", |p| flags(p, b.addr) == "healthy");
    proxy.eventually("b serves again", |p| {
        get(p);
        b.served() > before
    });
}

#[test]
fn a_tcp_health_check_follows_a_killed_and_revived_endpoint() {
    let a = Up::start("a", 200);
    let mut b = Up::start("b", 200);
    let hc = r#"
  [[clusters.health_checks]]
  type = "tcp"
  interval = "50ms"
  timeout = "500ms"
  unhealthy_threshold = 2
  healthy_threshold = 2
"#;
    let proxy = Proxy::start(&config(&[a.addr, b.addr], hc, ""));
    proxy.eventually("checks pass", |p| {
        p.stat("cluster.c.health_check.success") >= 4
    });
    b.kill();
    proxy.eventually("b failed its checks", |p| {
        flags(p, b.addr) == "/failed_active_hc"
    });
    assert!(proxy.stat("cluster.c.health_check.network_failure") >= 2);
    for _ in 0..10 {
        assert_eq!(get(&proxy), (200, "a".to_owned()));
    }
    let b2 = b.revive();
    proxy.eventually("b healthy again", |p| flags(p, b2.addr) == "healthy");
    let before = b2.served();
    proxy.eventually("b serves again", |p| {
        get(p);
        b2.served() > before
    });
}

/// Retries and health together: one of three endpoints killed under load, then revived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_endpoint_with_retries_and_health_fails_nothing_and_comes_back() {
    let a = Up::start("a", 200);
    let mut b = Up::start("b", 200);
    let c = Up::start("c", 200);
    let extra = format!(
        "{}{HTTP_HC}",
        OUTLIER
            .replace("consecutive_5xx = 4", "consecutive_gateway_failure = 3")
            .replace("\"1s\"", "\"500ms\"")
    );
    let route = "      [listeners.virtual_hosts.routes.retry_policy]\n\
                 retry_on = [\"5xx\", \"reset\", \"connect-failure\"]\nnum_retries = 2\n";
    let cfg = config(&[a.addr, b.addr, c.addr], &extra, route).replace(
        "name = \"c\"\n",
        "name = \"c\"\ncircuit_breakers = { max_retries = 100 }\n",
    );
    let proxy = Arc::new(Proxy::start(&cfg));
    let addr = proxy.addr();
    let loaded = tokio::spawn(fixed_rate_load(addr, 3));
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.kill();
    let p = proxy.clone();
    let ejected = tokio::task::spawn_blocking(move || {
        p.eventually("b ejected or failing its checks", |p| {
            flags(p, b.addr) != "healthy"
        });
        b
    });
    let b = ejected.await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let b2 = b.revive();
    let (n, failures) = loaded.await.unwrap();
    assert!(n > 500, "the load ran ({n} requests)");
    assert_eq!(failures, 0, "of {n} requests");
    let p = proxy.clone();
    let before = b2.served();
    tokio::task::spawn_blocking(move || {
        p.eventually("b serves again", |p| {
            get(p);
            b2.served() > before
        });
    })
    .await
    .unwrap();
    assert!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_total") >= 1
            || proxy.stat("cluster.c.health_check.failure") >= 3
    );
}

/// Outlier detection alone, no retries: only the first requests to the dead endpoint fail.
#[test]
fn without_retries_only_the_first_requests_to_a_dead_endpoint_fail() {
    let a = Up::start("a", 200);
    let mut b = Up::start("b", 200);
    let c = Up::start("c", 200);
    let od = OUTLIER
        .replace("consecutive_5xx = 4", "consecutive_gateway_failure = 3")
        .replace("\"1s\"", "\"30s\"");
    let proxy = Proxy::start(&config(&[a.addr, b.addr, c.addr], &od, ""));
    for _ in 0..6 {
        assert_eq!(get(&proxy).0, 200);
    }
    b.kill();
    let mut failed = 0;
    for _ in 0..60 {
        if get(&proxy).0 != 200 {
            failed += 1;
        }
    }
    assert_eq!(flags(&proxy, b.addr), "/failed_outlier_check");
    // Three in a row eject; unsplit, each failure also counts toward consecutive_5xx
    // (default 5), which the gateway detector reaches first.
    assert!(failed <= 4, "{failed} failed");
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_consecutive_gateway_failure"),
        1
    );
}

#[test]
fn bad_health_settings_are_refused_with_their_place() {
    let up = closed_port();
    for (extra, path, what) in [
        (
            "  [clusters.outlier_detection]\n  max_ejection_percent = 120.0\n",
            "clusters[0].outlier_detection.max_ejection_percent",
            "0..=100",
        ),
        (
            "  [clusters.outlier_detection]\n  consecutive_local_origin_failure = 2\n",
            "clusters[0].outlier_detection.consecutive_local_origin_failure",
            "split_external_local_origin_errors",
        ),
        (
            "  [[clusters.health_checks]]\n  type = \"grpc\"\n  path = \"/h\"\n",
            "clusters[0].health_checks[0].path",
            "only applies to type = \"http\"",
        ),
        (
            "  [[clusters.health_checks]]\n  type = \"http\"\n  path = \"/h\"\n  expected_statuses = [[300, 200]]\n",
            "clusters[0].health_checks[0].expected_statuses[0]",
            "no range",
        ),
        (
            "  [[clusters.health_checks]]\n  type = \"tcp\"\n  unhealthy_threshold = 0\n",
            "clusters[0].health_checks[0].unhealthy_threshold",
            "at least 1",
        ),
        (
            "lb = \"maglev\"\nslow_start = { window = \"5s\" }\n",
            "clusters[0].slow_start",
            "only with lb",
        ),
        (
            "slow_start = { window = \"0s\" }\n",
            "clusters[0].slow_start.window",
            "greater than 0",
        ),
        (
            "least_request = { choice_count = 2 }\n",
            "clusters[0].least_request",
            "only with lb = \"least_request\"",
        ),
        (
            "lb = \"least_request\"\nleast_request = { choice_count = 1 }\n",
            "clusters[0].least_request.choice_count",
            "2..=100",
        ),
    ] {
        let text = config(&[up], extra, "");
        let err = engine::config::parse_str(&text, "h.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("h.toml:"), "{err}");
        assert!(err.contains(path), "{err}");
        assert!(err.contains(what), "{err}");
    }
}

/// The TCP proxy skips ejected endpoints and feeds outlier detection with its connects.
#[test]
fn the_tcp_proxy_ejects_an_endpoint_that_refuses_connections() {
    let a = Up::start("a", 200);
    let dead = closed_port();
    let cfg = format!(
        r#"workers = 2
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "l"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "c"

[[clusters]]
name = "c"
endpoints = ["{dead}", "{}"]
  [clusters.outlier_detection]
  consecutive_5xx = 2
  base_ejection_time = "30s"
  max_ejection_percent = 50.0
"#,
        a.addr
    );
    let proxy = Proxy::start(&cfg);
    let mut failed = Vec::new();
    for i in 0..30 {
        if raw_get(proxy.addr(), "/x").0 != 200 {
            failed.push(i);
        }
    }
    let failed = failed.len();
    assert_eq!(flags(&proxy, dead), "/failed_outlier_check");
    assert!((2..=3).contains(&failed), "{failed} failed");
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_total"),
        1
    );
}

/// A gRPC health server (h2c) answering `status` (1 SERVING, 2 NOT_SERVING) for the
/// service `svc` only (another name: NOT_FOUND, grpc-status 5).
fn grpc_health_server(status: Arc<AtomicU16>) -> Backend {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    Backend::start_h2(move |req: Request<hyper::body::Incoming>| {
        let status = status.clone();
        async move {
            let path = req.uri().path().to_owned();
            let msg = req.into_body().collect().await?.to_bytes();
            let mut trailers = hyper::HeaderMap::new();
            let known = path == "/grpc.health.v1.Health/Check" && msg[5..] == b"\x0a\x03svc"[..];
            trailers.insert(
                "grpc-status",
                if known { "0" } else { "5" }.parse().unwrap(),
            );
            let s = status.load(Ordering::SeqCst) as u8;
            let mut frames: Vec<Result<Frame<Bytes>, hyper::Error>> = Vec::new();
            if known {
                frames.push(Ok(Frame::data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, s]))));
            }
            frames.push(Ok(Frame::trailers(trailers)));
            Ok(hyper::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
                    frames,
                ))))
                .unwrap())
        }
    })
}

#[test]
fn a_grpc_health_check_follows_the_serving_status() {
    let a = Up::start("a", 200);
    let serving = Arc::new(AtomicU16::new(1));
    let grpc = grpc_health_server(serving.clone());
    // `a` speaks HTTP/1 only, so its gRPC checks fail; the gRPC server's pass while it
    // answers SERVING.
    let hc = r#"
  [[clusters.health_checks]]
  type = "grpc"
  service_name = "svc"
  interval = "50ms"
  timeout = "1s"
  unhealthy_threshold = 2
  healthy_threshold = 2
"#;
    let proxy = Proxy::start(&config(&[a.addr, grpc.addr], hc, ""));
    proxy.eventually(
        "a fails (it speaks no HTTP/2), the gRPC server passes",
        |p| {
            flags(p, a.addr) == "/failed_active_hc" && p.stat("cluster.c.health_check.success") >= 2
        },
    );
    assert_eq!(flags(&proxy, grpc.addr), "healthy");
    serving.store(2, Ordering::SeqCst);
    proxy.eventually("NOT_SERVING fails", |p| {
        flags(p, grpc.addr) == "/failed_active_hc"
    });
    serving.store(1, Ordering::SeqCst);
    proxy.eventually("SERVING again", |p| flags(p, grpc.addr) == "healthy");
    // Another service name is NOT_FOUND: failing.
    let other = config(&[grpc.addr], &hc.replace("\"svc\"", "\"other\""), "");
    let proxy2 = Proxy::start(&other);
    proxy2.eventually("unknown service fails", |p| {
        flags(p, grpc.addr) == "/failed_active_hc"
    });
}

/// The failure percentage detector ejects an endpoint failing most of its requests over an
/// interval, with the consecutive detectors off.
#[test]
fn failure_percentage_ejects_the_failing_endpoint() {
    let a = Up::start("a", 200);
    let b = Up::start("b", 503);
    let c = Up::start("c", 200);
    let od = r#"
  [clusters.outlier_detection]
  consecutive_5xx = 0
  failure_percentage_threshold = 50.0
  failure_percentage_minimum_hosts = 3
  failure_percentage_request_volume = 5
  interval = "200ms"
  base_ejection_time = "30s"
"#;
    let proxy = Proxy::start(&config(&[a.addr, b.addr, c.addr], od, ""));
    proxy.eventually("b ejected", |p| {
        for _ in 0..10 {
            get(p);
        }
        flags(p, b.addr) == "/failed_outlier_check"
    });
    assert_eq!(flags(&proxy, a.addr), "healthy");
    assert_eq!(flags(&proxy, c.addr), "healthy");
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_failure_percentage"),
        1
    );
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_detected_consecutive_5xx"),
        0
    );
}

/// The success rate detector (on by default, as in Envoy) ejects the endpoint whose success
/// rate is far below the others', and `/clusters` shows each judged endpoint's rate.
#[test]
fn success_rate_ejects_the_outlier_and_shows_the_rates() {
    let ups: Vec<Up> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| Up::start(n, if *n == "b" { 503 } else { 200 }))
        .collect();
    let addrs: Vec<SocketAddr> = ups.iter().map(|u| u.addr).collect();
    let od = r#"
  [clusters.outlier_detection]
  consecutive_5xx = 0
  success_rate_minimum_hosts = 5
  success_rate_request_volume = 4
  interval = "300ms"
  base_ejection_time = "30s"
  max_ejection_percent = 20.0
"#;
    let proxy = Proxy::start(&config(&addrs, od, ""));
    // Steady traffic (bounded: 8 s or 4,000 requests), so every interval judges.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, addr) = (stop.clone(), proxy.addr());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(8);
            for _ in 0..4_000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > until {
                    break;
                }
                raw_get(addr, "/x");
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let b = addrs[1];
    proxy.eventually("b ejected by success rate", |p| {
        flags(p, b) == "/failed_outlier_check"
    });
    let a_rate = format!("c::{}::success_rate::100\n", addrs[0]);
    proxy.eventually("a's rate shown", |p| {
        p.admin_get("/clusters").1.contains(&a_rate)
            && p.admin_get("/clusters?format=json")
                .1
                .contains(r#""success_rate":{"value":100.0}"#)
    });
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    for a in addrs.iter().filter(|a| **a != b) {
        assert_eq!(flags(&proxy, *a), "healthy");
    }
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_success_rate"),
        1
    );
    assert_eq!(
        proxy.stat("cluster.c.outlier_detection.ejections_enforced_failure_percentage"),
        0
    );
}

/// Slow start: an endpoint that passes its checks again gets a small share of requests at
/// first, and its full share once the window is over.
#[test]
fn a_returning_endpoint_ramps_up_over_the_slow_start_window() {
    let a = Up::start("a", 200);
    let b = Up::start("b", 200);
    let extra = format!("slow_start = {{ window = \"3s\", min_weight_percent = 5.0 }}\n{HTTP_HC}");
    let proxy = Proxy::start(&config(&[a.addr, b.addr], &extra, ""));
    proxy.eventually("checks pass", |p| {
        p.stat("cluster.c.health_check.healthy") == 2
    });
    let share_of_b = |n: usize| {
        let before = b.served();
        for _ in 0..n {
            assert_eq!(get(&proxy).0, 200);
        }
        (b.served() - before) * 100 / n
    };
    let start = share_of_b(200);
    assert!(
        (35..=65).contains(&start),
        "no slow start at first: {start} %"
    );
    b.hc_status.store(503, Ordering::SeqCst);
    proxy.eventually("b out", |p| flags(p, b.addr) == "/failed_active_hc");
    b.hc_status.store(200, Ordering::SeqCst);
    proxy.eventually("b back", |p| flags(p, b.addr) == "healthy");
    let back = Instant::now();
    let early = share_of_b(100);
    assert!(
        early < 30,
        "just back, b gets a small share: {early} % after {:?}",
        back.elapsed()
    );
    std::thread::sleep(Duration::from_millis(3_200).saturating_sub(back.elapsed()));
    let later = share_of_b(200);
    assert!((35..=65).contains(&later), "window over: {later} %");
}
