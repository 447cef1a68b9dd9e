//! The global rate limit end to end on loopback: the `ratelimit` HTTP filter asking a rate
//! limit service written here with tonic (Envoy's `envoy.service.ratelimit.v3` API, messages
//! by hand with prost) over h2c. Allow then deny with a real count per descriptor over two
//! workers, the descriptors a request makes (remote address, request header, generic key,
//! the virtual host's), `x-envoy-ratelimited` and `x-ratelimit-*`, `RL` and `RLSE` flags,
//! stats, a gRPC client answered `UNAVAILABLE`, the service down, failing or too slow with
//! both failure modes, and the config errors.
//!
//! Limits never reset while a test runs, so counts are exact whatever the machine's speed.
// reason: tonic's API fixes `Result<_, tonic::Status>`, a large error type.
#![allow(clippy::result_large_err)]

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use support::header_in as header;
use support::*;
use tonic::body::Body as GrpcBody;
use tonic::codec::ProstCodec;
use tonic::codegen::{BoxFuture, Service};
use tonic::{Request, Response, Status};

// ---- Envoy's rate limit service messages, as the service sees them ----

#[derive(Clone, PartialEq, prost::Message)]
struct RateLimitRequest {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(message, repeated, tag = "2")]
    descriptors: Vec<RateLimitDescriptor>,
    #[prost(uint32, tag = "3")]
    hits_addend: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RateLimitDescriptor {
    #[prost(message, repeated, tag = "1")]
    entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RateLimitResponse {
    /// 1 OK, 2 OVER_LIMIT.
    #[prost(int32, tag = "1")]
    overall_code: i32,
    #[prost(message, repeated, tag = "2")]
    statuses: Vec<DescriptorStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DescriptorStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(message, optional, tag = "2")]
    current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    duration_until_reset: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RateLimit {
    #[prost(uint32, tag = "1")]
    requests_per_unit: u32,
    /// 2: minute.
    #[prost(int32, tag = "2")]
    unit: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

// ---- the rate limit service ----

/// A request as the service saw it: its domain, and each descriptor as (key, value) pairs.
type Seen = (String, Vec<Vec<(String, String)>>);

/// How the service answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Count hits per descriptor; over `limit` hits a descriptor is over the limit.
    Count { limit: u32 },
    /// Answer UNAVAILABLE.
    Fail,
    /// Answer OK after this long.
    Slow(Duration),
}

struct State {
    mode: Mode,
    hits: HashMap<Vec<(String, String)>, u32>,
    /// Every request's (domain, descriptors as (key, value) lists).
    seen: Vec<Seen>,
    /// The `:authority` and `grpc-timeout` of the last call.
    last_meta: (String, String),
}

#[derive(Clone)]
struct Rls(Arc<Mutex<State>>);

impl tonic::server::UnaryService<RateLimitRequest> for Rls {
    type Response = RateLimitResponse;
    type Future = BoxFuture<Response<RateLimitResponse>, Status>;

    fn call(&mut self, req: Request<RateLimitRequest>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            let timeout = req
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let req = req.into_inner();
            let descriptors: Vec<Vec<(String, String)>> = req
                .descriptors
                .iter()
                .map(|d| {
                    d.entries
                        .iter()
                        .map(|e| (e.key.clone(), e.value.clone()))
                        .collect()
                })
                .collect();
            let mode = {
                let mut st = state.lock().unwrap();
                st.seen.push((req.domain.clone(), descriptors.clone()));
                st.last_meta.1 = timeout;
                st.mode
            };
            let limit = match mode {
                Mode::Fail => return Err(Status::unavailable("down for the test")),
                Mode::Slow(d) => {
                    tokio::time::sleep(d).await;
                    return Ok(Response::new(RateLimitResponse {
                        overall_code: 1,
                        statuses: Vec::new(),
                    }));
                }
                Mode::Count { limit } => limit,
            };
            let mut st = state.lock().unwrap();
            let mut over = false;
            let statuses = descriptors
                .into_iter()
                .map(|d| {
                    let hits = st.hits.entry(d).or_default();
                    *hits += 1;
                    over |= *hits > limit;
                    DescriptorStatus {
                        code: if *hits > limit { 2 } else { 1 },
                        current_limit: Some(RateLimit {
                            requests_per_unit: limit,
                            unit: 2,
                        }),
                        limit_remaining: limit.saturating_sub(*hits),
                        duration_until_reset: Some(ProtoDuration {
                            seconds: 42,
                            nanos: 0,
                        }),
                    }
                })
                .collect();
            Ok(Response::new(RateLimitResponse {
                overall_code: if over { 2 } else { 1 },
                statuses,
            }))
        })
    }
}

/// The service on 127.0.0.1:0 (h2c, a [`Backend`]); stopped on drop.
struct RlsServer {
    backend: Backend,
    state: Arc<Mutex<State>>,
}

impl RlsServer {
    fn start(mode: Mode) -> Self {
        let state = Arc::new(Mutex::new(State {
            mode,
            hits: HashMap::new(),
            seen: Vec::new(),
            last_meta: Default::default(),
        }));
        let st = state.clone();
        let backend = Backend::start_h2(move |req: http::Request<Incoming>| {
            let rls = Rls(st.clone());
            async move {
                let resp = RlsService(rls).call(req.map(GrpcBody::new)).await;
                let (parts, body) = resp.unwrap_or_else(|never| match never {}).into_parts();
                // A unary answer is small: collected, then sent as data and trailers.
                let mut frames = Vec::new();
                if let Ok(all) = body.collect().await {
                    let trailers = all.trailers().cloned();
                    frames.push(Frame::data(all.to_bytes()));
                    frames.extend(trailers.map(Frame::trailers));
                }
                let frames = futures_util::stream::iter(frames.into_iter().map(Ok));
                Ok(http::Response::from_parts(
                    parts,
                    StreamBody::new(frames).boxed(),
                ))
            }
        });
        Self { backend, state }
    }

    fn addr(&self) -> SocketAddr {
        self.backend.addr
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn calls(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }
}

/// Route by path as tonic's generated servers do; records the `:authority`.
struct RlsService(Rls);

impl Service<http::Request<GrpcBody>> for RlsService {
    type Response = http::Response<GrpcBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<GrpcBody>) -> Self::Future {
        let rls = self.0.clone();
        Box::pin(async move {
            let authority = req
                .uri()
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default();
            rls.0.lock().unwrap().last_meta.0 = authority;
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<
                RateLimitResponse,
                RateLimitRequest,
            >::default());
            let resp = match req.uri().path() {
                "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit" => {
                    grpc.unary(rls, req).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(resp)
        })
    }
}

// ---- the proxy ----

/// Two workers; the `ratelimit` filter (`filter` lines added) asking the service at `rls`;
/// one virtual host (`vhost` lines added) with one route (`route` lines added).
fn config(backend: SocketAddr, rls: SocketAddr, filter: &str, vhost: &str, route: &str) -> String {
    format!(
        r#"
workers = 2
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
[[listeners.http_filters]]
name = "ratelimit"
domain = "edge"
cluster = "rls"
timeout = "2s"
{filter}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
  {vhost}
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"
    {route}
[[clusters]]
name = "backend"
endpoints = ["{backend}"]
[[clusters]]
name = "rls"
protocol = "http2"
endpoints = ["{rls}"]
"#
    )
}

const BY_USER: &str = r#"rate_limits = [{ actions = [{ request_headers = { header_name = "x-user", descriptor_key = "user" } }, { generic_key = { descriptor_value = "api" } }] }]"#;

/// One request on a fresh connection (so the kernel spreads them over both workers).
fn get(addr: SocketAddr, headers: &str) -> (u16, String, String) {
    get_on_new_connection(addr, "/", headers)
}

fn entries(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_service_allows_then_denies_each_descriptor_apart() {
    let backend = Backend::fixed(200, "ok");
    let rls = RlsServer::start(Mode::Count { limit: 3 });
    let log = TempLog::new("global-ratelimit");
    let proxy = Proxy::start(&with_access_log(
        &config(backend.addr, rls.addr(), "", "", BY_USER),
        &log,
    ));
    let addr = proxy.addr();
    let ann: Vec<_> = (0..5).map(|_| get(addr, "x-user: ann\r\n")).collect();
    let statuses: Vec<u16> = ann.iter().map(|(s, ..)| *s).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    for (_, head, body) in &ann[3..] {
        assert_eq!(header(head, "x-envoy-ratelimited"), Some("true"));
        assert_eq!(body, "", "Envoy's over-limit answer has no body");
    }
    assert_eq!(header(&ann[0].1, "x-envoy-ratelimited"), None);
    assert_eq!(get(addr, "x-user: bob\r\n").0, 200, "bob counts apart");
    assert_eq!(
        backend.request_count(),
        4,
        "refused requests never go upstream"
    );
    let seen = rls.seen();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0].0, "edge");
    assert_eq!(
        seen[0].1,
        [entries(&[("user", "ann"), ("generic_key", "api")])]
    );
    let (authority, timeout) = rls.state.lock().unwrap().last_meta.clone();
    assert_eq!(authority, "rls", "the cluster's name, as Envoy sends it");
    assert!(timeout.ends_with('m'), "grpc-timeout {timeout:?}");
    let stat = |s: &str| proxy.stat(&format!("http.main.ratelimit.{s}"));
    assert_eq!((stat("ok"), stat("over_limit"), stat("error")), (4, 2, 0));
    assert_eq!(proxy.stat("cluster.rls.upstream_rq_2xx"), 6);
    drop(proxy);
    let flagged = log
        .lines()
        .iter()
        .filter(|l| l.contains(" 429 RL "))
        .count();
    assert_eq!(flagged, 2);
}

#[test]
fn descriptors_from_address_header_and_the_virtual_host() {
    let backend = Backend::fixed(200, "ok");
    let rls = RlsServer::start(Mode::Count { limit: 100 });
    let vhost = r#"rate_limits = [{ actions = [{ remote_address = true }] }, { actions = [{ request_headers = { header_name = "x-team", descriptor_key = "team", skip_if_absent = true } }, { generic_key = { descriptor_key = "tier", descriptor_value = "free" } }] }]"#;
    let proxy = Proxy::start(&config(backend.addr, rls.addr(), "", vhost, ""));
    assert_eq!(get(proxy.addr(), "x-team: red\r\n").0, 200);
    assert_eq!(get(proxy.addr(), "").0, 200);
    let seen = rls.seen();
    assert_eq!(
        seen[0].1,
        [
            entries(&[("remote_address", "127.0.0.1")]),
            entries(&[("team", "red"), ("tier", "free")]),
        ]
    );
    assert_eq!(
        seen[1].1,
        [
            entries(&[("remote_address", "127.0.0.1")]),
            entries(&[("tier", "free")]),
        ],
        "skip_if_absent leaves only the entry out"
    );

    // A route of its own replaces the virtual host's; a request without the header has no
    // descriptor and is not asked about.
    let proxy = Proxy::start(&config(backend.addr, rls.addr(), "", vhost, BY_USER));
    let before = rls.calls();
    assert_eq!(get(proxy.addr(), "").0, 200);
    assert_eq!(rls.calls(), before, "nothing to ask");
    assert_eq!(proxy.stat("http.main.ratelimit.ok"), 0);
    assert_eq!(get(proxy.addr(), "x-user: cy\r\n").0, 200);
    assert_eq!(rls.calls(), before + 1);
}

#[test]
fn x_ratelimit_headers_come_from_the_most_constrained_descriptor() {
    let backend = Backend::fixed(200, "ok");
    let rls = RlsServer::start(Mode::Count { limit: 2 });
    let filter = r#"enable_x_ratelimit_headers = "DRAFT_VERSION_03""#;
    let proxy = Proxy::start(&config(backend.addr, rls.addr(), filter, "", BY_USER));
    let (s, head, _) = get(proxy.addr(), "x-user: ann\r\n");
    assert_eq!(s, 200);
    assert_eq!(header(&head, "x-ratelimit-limit"), Some("2"));
    assert_eq!(header(&head, "x-ratelimit-remaining"), Some("1"));
    assert_eq!(header(&head, "x-ratelimit-reset"), Some("42"));
    get(proxy.addr(), "x-user: ann\r\n");
    let (s, head, _) = get(proxy.addr(), "x-user: ann\r\n");
    assert_eq!(s, 429);
    assert_eq!(header(&head, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&head, "x-envoy-ratelimited"), Some("true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_client_over_the_limit_gets_unavailable() {
    let backend = Backend::fixed(200, "ok");
    let rls = RlsServer::start(Mode::Count { limit: 0 });
    let proxy = Proxy::start(&config(backend.addr, rls.addr(), "", "", BY_USER));
    let mut h2 = h2c(proxy.addr()).await;
    let req = http::Request::post(format!("http://{}/pkg.Svc/Call", proxy.addr()))
        .header("content-type", "application/grpc")
        .header("x-user", "ann")
        .body(body(Vec::<u8>::new()))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"14"[..])
    );
    assert_eq!(backend.request_count(), 0);
}

#[test]
fn without_an_answer_requests_pass_or_fail_by_failure_mode() {
    let backend = Backend::fixed(200, "ok");
    // Down: nothing listens where the service should be.
    let down = closed_port();
    let proxy = Proxy::start(&config(backend.addr, down, "", "", BY_USER));
    assert_eq!(get(proxy.addr(), "x-user: ann\r\n").0, 200, "fail open");
    let stat = |p: &Proxy, s: &str| p.stat(&format!("http.main.ratelimit.{s}"));
    assert_eq!(stat(&proxy, "error"), 1);
    assert_eq!(stat(&proxy, "failure_mode_allowed"), 1);

    let log = TempLog::new("global-ratelimit-deny");
    let deny = with_access_log(
        &config(backend.addr, down, "failure_mode_deny = true", "", BY_USER),
        &log,
    );
    let proxy = Proxy::start(&deny);
    let (s, _, body) = get(proxy.addr(), "x-user: ann\r\n");
    assert_eq!(s, 500);
    assert_eq!(body, "rate limit service error");
    assert_eq!(stat(&proxy, "error"), 1);
    assert_eq!(stat(&proxy, "failure_mode_allowed"), 0);
    drop(proxy);
    assert!(
        log.lines().iter().any(|l| l.contains(" 500 RLSE ")),
        "{:?}",
        log.lines()
    );

    // Failing (a gRPC error), then too slow for the filter's timeout.
    let rls = RlsServer::start(Mode::Fail);
    let cfg = config(backend.addr, rls.addr(), "", "", BY_USER).replace("\"2s\"", "\"100ms\"");
    let proxy = Proxy::start(&cfg);
    assert_eq!(get(proxy.addr(), "x-user: ann\r\n").0, 200);
    rls.set_mode(Mode::Slow(Duration::from_secs(1)));
    assert_eq!(get(proxy.addr(), "x-user: ann\r\n").0, 200);
    assert_eq!(stat(&proxy, "error"), 2);
    assert_eq!(stat(&proxy, "failure_mode_allowed"), 2);
    assert_eq!(rls.calls(), 2);
    let deny = cfg.replace(
        "timeout = \"100ms\"",
        "timeout = \"100ms\"\nfailure_mode_deny = true",
    );
    let proxy = Proxy::start(&deny);
    assert_eq!(
        get(proxy.addr(), "x-user: ann\r\n").0,
        500,
        "too slow, fail closed"
    );
}

#[test]
fn bad_settings_are_refused_with_their_place() {
    let backend = closed_port();
    let rls = closed_port();
    let refused = |cfg: String, field: &str, why: &str| {
        let err = engine::config::parse_str(&cfg, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(field) && err.contains(why), "{err}");
    };
    refused(
        config(backend, rls, "", "", "").replace("protocol = \"http2\"\n", ""),
        "http_filters[0].cluster",
        "needs protocol = \"http2\"",
    );
    refused(
        config(backend, rls, "", "", "").replace("cluster = \"rls\"", "cluster = \"nope\""),
        "http_filters[0].cluster",
        "unknown cluster",
    );
    refused(
        config(
            backend,
            rls,
            "",
            "",
            r#"rate_limits = [{ actions = [{ remote_address = true, generic_key = { descriptor_value = "x" } }] }]"#,
        ),
        "routes[0].rate_limits[0].actions[0]",
        "exactly one",
    );
    refused(
        config(backend, rls, "", "", "rate_limits = [{ actions = [] }]"),
        "rate_limits[0].actions",
        "at least one",
    );
    let without_filter = config(backend, rls, "", "", BY_USER).replace(
        "[[listeners.http_filters]]\nname = \"ratelimit\"\ndomain = \"edge\"\ncluster = \"rls\"\ntimeout = \"2s\"\n",
        "",
    );
    refused(
        without_filter,
        "routes[0].rate_limits",
        "no ratelimit filter",
    );
    refused(
        config(backend, rls, "", "", "").replace("\"2s\"", "\"0s\""),
        "http_filters[0].timeout",
        "greater than 0",
    );
}
