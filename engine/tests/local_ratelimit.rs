//! Local rate limits end to end on loopback: the `local_ratelimit` HTTP filter (the bucket
//! holds for the whole process across two workers, per virtual host and route buckets,
//! descriptors by header and client address, 429 body, `RL` flag, stats, `x-ratelimit-*`
//! headers, gRPC `UNAVAILABLE`, a reload keeps the level) and the `local_ratelimit` network
//! filter of a tcp listener, plus the config errors.
//!
//! Every bucket refills one token per hour, so nothing refills while a test runs: counts
//! are exact, whatever the machine's speed, and nothing is timed.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use support::*;
// One request on a fresh connection, so the kernel spreads them over both workers.
use support::{get_on_new_connection as get, header_in as header};

/// One token an hour: no refill during a test.
fn bucket(max: u32) -> String {
    format!("{{ max_tokens = {max}, tokens_per_fill = 1, fill_interval = \"1h\" }}")
}

fn config(backend: SocketAddr, filter: &str, routes: &str) -> String {
    format!(
        r#"
workers = 2
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
[[listeners.http_filters]]
name = "local_ratelimit"
{filter}
{routes}
[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#
    )
}

const ONE_ROUTE: &str = r#"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
"#;

#[test]
fn a_burst_over_two_workers_gets_exactly_the_bucket() {
    let backend = Backend::fixed(200, "ok");
    let filter = format!("token_bucket = {}", bucket(20));
    let log = TempLog::new("ratelimit");
    let proxy = Proxy::start(&with_access_log(
        &config(backend.addr, &filter, ONE_ROUTE),
        &log,
    ));
    let addr = proxy.addr();
    // 4 clients x 15 requests, each on its own connection, at once.
    let clients: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || (0..15).map(|_| get(addr, "/", "")).collect::<Vec<_>>()))
        .collect();
    let answers: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let ok = answers.iter().filter(|(s, ..)| *s == 200).count();
    let limited: Vec<_> = answers.iter().filter(|(s, ..)| *s == 429).collect();
    assert_eq!(ok, 20, "the whole process shares one bucket of 20");
    assert_eq!(limited.len(), 40, "the rest are refused");
    for (_, _, body) in &limited {
        assert_eq!(body, "local_rate_limited");
    }
    assert_eq!(
        backend.request_count(),
        20,
        "refused requests never go upstream"
    );
    let stat = |s: &str| proxy.stat(&format!("http.main.http_local_rate_limit.{s}"));
    assert_eq!(stat("enabled"), 60);
    assert_eq!(stat("ok"), 20);
    assert_eq!(stat("rate_limited"), 40);
    assert_eq!(stat("enforced"), 40);
    assert_eq!(proxy.stat("http.main.downstream_rq_4xx"), 40);
    drop(proxy);
    let lines = log.lines();
    let flagged = lines.iter().filter(|l| l.contains(" 429 RL ")).count();
    assert_eq!(flagged, 40, "{lines:#?}");
}

#[test]
fn virtual_hosts_and_routes_have_their_own_buckets_or_none() {
    let backend = Backend::fixed(200, "ok");
    let filter = format!("token_bucket = {}", bucket(3));
    let routes = format!(
        r#"
  [[listeners.virtual_hosts]]
  name = "shop"
  domains = ["shop.test"]
    [listeners.virtual_hosts.filters.local_ratelimit]
    token_bucket = {vhost}
    [[listeners.virtual_hosts.routes]]
    prefix = "/a"
    cluster = "backend"
    [[listeners.virtual_hosts.routes]]
    prefix = "/b"
    cluster = "backend"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/special"
    cluster = "backend"
      [listeners.virtual_hosts.routes.filters.local_ratelimit]
      token_bucket = {route}
    [[listeners.virtual_hosts.routes]]
    prefix = "/off"
    cluster = "backend"
      [listeners.virtual_hosts.routes.filters.local_ratelimit]
      disabled = true
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
"#,
        vhost = bucket(1),
        route = bucket(2),
    );
    let proxy = Proxy::start(&config(backend.addr, &filter, &routes));
    let addr = proxy.addr();
    let statuses = |path: &str, n: usize, headers: &str| -> Vec<u16> {
        (0..n).map(|_| get(addr, path, headers).0).collect()
    };
    assert_eq!(
        statuses("/special", 3, ""),
        [200, 200, 429],
        "route's bucket of 2"
    );
    assert_eq!(
        statuses("/", 4, ""),
        [200, 200, 200, 429],
        "listener's bucket of 3"
    );
    assert_eq!(statuses("/off", 5, ""), [200; 5], "disabled on this route");
    // The virtual host's bucket of 1 is shared by its routes.
    let shop = "Host: shop.test\r\n";
    let raw = |path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\n{shop}Connection: close\r\n\r\n");
        status_of(&raw_exchange(addr, req.as_bytes()))
    };
    assert_eq!([raw("/a"), raw("/b")], [200, 429]);
}

#[test]
fn descriptors_limit_each_header_value_and_client_apart_with_headers() {
    let backend = Backend::fixed(200, "ok");
    let filter = format!(
        r#"token_bucket = {listener}
enable_x_ratelimit_headers = "DRAFT_VERSION_03"
max_descriptors = 64
descriptors = [
  {{ header = "x-user", token_bucket = {user} }},
]"#,
        listener = bucket(100),
        user = bucket(2),
    );
    let proxy = Proxy::start(&config(backend.addr, &filter, ONE_ROUTE));
    let addr = proxy.addr();
    let alice = "x-user: alice\r\n";
    let (s, head, _) = get(addr, "/", alice);
    assert_eq!(s, 200);
    assert_eq!(header(&head, "x-ratelimit-limit"), Some("2"), "{head}");
    assert_eq!(header(&head, "x-ratelimit-remaining"), Some("1"), "{head}");
    let reset: u64 = header(&head, "x-ratelimit-reset").unwrap().parse().unwrap();
    assert!((1..=7200).contains(&reset), "{reset}");
    assert_eq!(get(addr, "/", alice).0, 200);
    let (s, head, body) = get(addr, "/", alice);
    assert_eq!((s, body.as_str()), (429, "local_rate_limited"));
    assert_eq!(header(&head, "x-ratelimit-remaining"), Some("0"), "{head}");
    // Bob has his own bucket; a request without the header only the listener's.
    assert_eq!(get(addr, "/", "x-user: bob\r\n").0, 200);
    let (s, head, _) = get(addr, "/", "");
    assert_eq!(s, 200);
    assert_eq!(header(&head, "x-ratelimit-limit"), Some("100"), "{head}");
    assert_eq!(header(&head, "x-ratelimit-remaining"), Some("96"), "{head}");

    // By client address: every request here comes from 127.0.0.1.
    let backend = Backend::fixed(200, "ok");
    let filter = format!(
        "token_bucket = {}\ndescriptors = [{{ remote_address = true, token_bucket = {} }}]",
        bucket(100),
        bucket(2)
    );
    let proxy = Proxy::start(&config(backend.addr, &filter, ONE_ROUTE));
    let statuses: Vec<u16> = (0..3).map(|_| get(proxy.addr(), "/", "").0).collect();
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_request_over_the_limit_gets_unavailable() {
    let backend = Backend::fixed(200, "ok");
    let filter = format!("token_bucket = {}", bucket(1));
    let proxy = Proxy::start(&config(backend.addr, &filter, ONE_ROUTE));
    let addr = proxy.addr();
    let (s, ..) = tokio::task::spawn_blocking(move || get(addr, "/", ""))
        .await
        .unwrap();
    assert_eq!(s, 200, "the one token");
    let mut send = h2c(addr).await;
    let req = hyper::Request::post(format!("http://{addr}/pkg.Svc/Call"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), send.send_request(req))
        .await
        .expect("answer in time")
        .unwrap();
    assert_eq!(resp.status(), 200, "gRPC errors ride on HTTP 200");
    let h = resp.headers().clone();
    assert_eq!(h["grpc-status"], "14", "UNAVAILABLE: {h:?}");
    assert_eq!(h["grpc-message"], "local_rate_limited");
    let rest = resp.into_body().collect().await.unwrap();
    assert!(
        rest.trailers().is_none() && rest.to_bytes().is_empty(),
        "trailers-only"
    );
    assert_eq!(
        proxy.stat("http.main.http_local_rate_limit.rate_limited"),
        1
    );
}

#[test]
fn a_reload_keeps_the_level_and_applies_the_new_rate() {
    let backend = Backend::fixed(200, "ok");
    let filter = |max| format!("token_bucket = {}", bucket(max));
    let proxy = Proxy::start(&config(backend.addr, &filter(2), ONE_ROUTE));
    let addr = proxy.addr();
    let statuses = |n| -> Vec<u16> { (0..n).map(|_| get(addr, "/", "").0).collect() };
    assert_eq!(statuses(3), [200, 200, 429]);
    // Same bucket after a reload: still empty, though the burst is now 5.
    let text = config(backend.addr, &filter(5), ONE_ROUTE);
    let cfg = engine::config::parse_str(&text, "reload.toml").unwrap();
    proxy.handle().reload(cfg).unwrap();
    // Each new connection runs on the newest snapshot.
    assert_eq!(statuses(2), [429, 429], "the level is kept");
}

/// A TCP backend that echoes every connection until it closes.
fn echo_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_tcp_listener_closes_new_connections_over_the_bucket() {
    let backend = echo_backend();
    let log = TempLog::new("ratelimit-tcp");
    let proxy = Proxy::start(&format!(
        r#"
workers = 2
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "db"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "backend"
access_log = {{ path = "{log}" }}
  [[listeners.network_filters]]
  name = "local_ratelimit"
  stat_prefix = "db_limit"
  token_bucket = {}
  [[listeners.network_filters]]
  name = "byte_counter"
[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#,
        bucket(2),
        log = log.path(),
    ));
    let echoed = |addr| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if s.write_all(b"ping").is_err() {
            return false;
        }
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).is_ok() && &buf == b"ping"
    };
    let got: Vec<bool> = (0..4).map(|_| echoed(proxy.addr())).collect();
    assert_eq!(got, [true, true, false, false]);
    assert_eq!(proxy.stat("local_rate_limit.db_limit.rate_limited"), 2);
    assert_eq!(
        proxy.stat("tcp.db.byte_counter.rx_bytes"),
        8,
        "limited ones never relayed"
    );
    drop(proxy);
    let lines = log.lines();
    assert_eq!(
        lines.iter().filter(|l| l.contains(" RL ")).count(),
        2,
        "{lines:#?}"
    );
}

#[test]
fn bad_settings_are_refused_with_their_place() {
    let backend = closed_port();
    let cases: &[(&str, &str, &str)] = &[
        (
            "token_bucket = { max_tokens = 0, fill_interval = \"1s\" }",
            ONE_ROUTE,
            "f.toml:10:31: listeners[0].http_filters[0].token_bucket.max_tokens: must be at least 1",
        ),
        (
            "token_bucket = { max_tokens = 1, fill_interval = \"0s\" }",
            ONE_ROUTE,
            "listeners[0].http_filters[0].token_bucket.fill_interval: must be at least 1ms",
        ),
        (
            "token_bucket = { max_tokens = 1, fill_interval = \"1s\" }\nfilter_enforced = 101",
            ONE_ROUTE,
            "f.toml:11:19: listeners[0].http_filters[0].filter_enforced: 101 is not a percentage",
        ),
        (
            "token_bucket = { max_tokens = 1, fill_interval = \"1s\" }\nenable_x_ratelimit_headers = \"ON\"",
            ONE_ROUTE,
            "listeners[0].http_filters[0].enable_x_ratelimit_headers: expected \"OFF\" or \"DRAFT_VERSION_03\"",
        ),
        (
            "token_bucket = { max_tokens = 1, fill_interval = \"1s\" }\ndescriptors = [{ header = \"x\", remote_address = true, token_bucket = { max_tokens = 1, fill_interval = \"1s\" } }]",
            ONE_ROUTE,
            "listeners[0].http_filters[0].descriptors[0]: a descriptor needs exactly one of",
        ),
        (
            "token_bucket = { max_tokens = 1, fill_interval = \"1s\" }\nmax_descriptors = 0",
            ONE_ROUTE,
            "listeners[0].http_filters[0].max_descriptors: must be 1..=65536, not 0",
        ),
        (
            "token_bucket = { max_tokens = 1, fill_interval = \"1s\" }",
            &format!(
                "{ONE_ROUTE}      [listeners.virtual_hosts.routes.filters.local_ratelimit]\n      disabled = true\n      token_bucket = {}\n",
                bucket(1)
            ),
            "routes[0].filters.local_ratelimit: `disabled = true` and `token_bucket` exclude each other",
        ),
        (
            "token_bucket = { max_tokens = 1, fill_interval = \"1s\" }\n[[listeners.http_filters]]\nname = \"local_ratelimit\"\ntoken_bucket = { max_tokens = 1, fill_interval = \"1s\" }",
            ONE_ROUTE,
            "listeners[0].http_filters[1].name: a listener has at most one local_ratelimit filter",
        ),
    ];
    for (filter, routes, want) in cases {
        let text = config(backend, filter, routes);
        let msg = engine::config::parse_str(&text, "f.toml")
            .expect_err(filter)
            .to_string();
        assert!(msg.contains(want), "{msg}\nwanted: {want}");
        assert!(msg.starts_with("f.toml:"), "located: {msg}");
    }
    // A route setting without the listener's filter, and the tcp filter's fields.
    let text = format!(
        "[[listeners]]\nname = \"main\"\naddress = \"127.0.0.1:0\"\n{ONE_ROUTE}      [listeners.virtual_hosts.routes.filters.local_ratelimit]\n      disabled = true\n[[clusters]]\nname = \"backend\"\nendpoints = [\"{backend}\"]\n"
    );
    let msg = engine::config::parse_str(&text, "f.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("has no local_ratelimit filter"), "{msg}");
    let tcp = |filter: &str| {
        format!(
            "[[listeners]]\nname = \"db\"\naddress = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"backend\"\n[[listeners.network_filters]]\n{filter}\n[[clusters]]\nname = \"backend\"\nendpoints = [\"{backend}\"]\n"
        )
    };
    let msg = engine::config::parse_str(&tcp("name = \"local_ratelimit\""), "f.toml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("f.toml:6:1: listeners[0].network_filters[0]: the local_ratelimit network filter needs `token_bucket"),
        "{msg}"
    );
    let msg = engine::config::parse_str(
        &tcp("name = \"byte_counter\"\ntoken_bucket = { max_tokens = 1, fill_interval = \"1s\" }"),
        "f.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("network_filters[0].token_bucket: the \"byte_counter\" network filter has no `token_bucket`"),
        "{msg}"
    );
}
