//! Endpoint health on the control thread, once for the process: active health checks (HTTP
//! over [`super::http`], TCP) and the outlier-detection tick (un-ejection when an ejection's
//! time is over, the decay of ejection multipliers), and the health gauges.
//!
//! One task ([`run`]) follows the published snapshot: each tick it looks at every cluster
//! of the current config, starts the checks that are due (each its own task on this
//! runtime) and applies their results to the cluster's process-wide `EndpointHealth`
//! flags, which every worker's load balancer reads. State kept here (when each check is
//! due next) is keyed by cluster name, endpoint address and check index, so a reload keeps
//! the schedule of what stays and drops what went.
//!
//! Checks of a cluster that originates TLS go over TLS with its settings, as its requests do.
//! gRPC checks (`grpc.health.v1.Health/Check`) go over HTTP/2 with the project's own HTTP/2
//! connection machine (`protocols::http2::conn`); the two protobuf messages are prost's, framed
//! by `protocols::grpc`.
//!
//! Does not: decide ejections (the workers' `Attempt::end` does, `crate::shared::health`).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use prost::Message as _;
use protocols::grpc::{Decoder, encode_header};

use super::http;
use crate::config::{ClusterConfig, HealthCheck, HealthCheckKind};
use crate::net::Io;
use crate::rt::rng;
use crate::shared::{ClusterShared, Shared};
use crate::shared_state::{EndpointHealth, FAILED_ACTIVE_HC, FAILED_OUTLIER_CHECK};
use crate::tls::ClientTls;

/// Granularity of due checks and un-ejection while some cluster needs them.
const TICK: Duration = Duration::from_millis(50);
/// The tick when no cluster has health checks or outlier detection.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// Most bytes read looking for a TCP check's `receive`.
const MAX_TCP_RECEIVE: usize = 64 * 1024;

/// One check of one endpoint: `(cluster, address, check index)`.
type CheckKey = (String, SocketAddr, usize);

#[derive(Default)]
struct CheckState {
    /// When the next check starts; `None` while one runs.
    due: Option<Instant>,
}

/// Per cluster: the last outlier-interval decay and the traffic count last seen.
struct ClusterState {
    last_decay: Instant,
    /// Per endpoint address: (requests, failed requests) ended so far, at the last interval.
    outcomes: HashMap<SocketAddr, (u64, u64)>,
    requests_seen: u64,
    traffic_at: Instant,
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    /// Answered, but not as expected (status, bytes).
    Fail,
    /// Connect failure, reset or timeout.
    NetworkFail,
}

/// Runs until the control runtime stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let checks: Rc<RefCell<HashMap<CheckKey, CheckState>>> = Rc::default();
    let mut clusters: HashMap<String, ClusterState> = HashMap::new();
    loop {
        let snap = shared.snapshot.load_full();
        let now = Instant::now();
        let mut busy = false;
        let mut keep = HashSet::new();
        for (cfg, c) in snap.config.clusters.iter().zip(&snap.clusters) {
            let od = c.health.outlier.as_ref();
            busy |= od.is_some() || !cfg.health_checks.is_empty();
            let st = clusters
                .entry(cfg.name.clone())
                .or_insert_with(|| ClusterState {
                    last_decay: now,
                    outcomes: HashMap::new(),
                    requests_seen: 0,
                    traffic_at: now,
                });
            let requests: u64 = c
                .scope
                .stats
                .iter()
                .map(|s| s.upstream_rq_total.get())
                .sum();
            if requests != st.requests_seen {
                st.requests_seen = requests;
                st.traffic_at = now;
            }
            if let Some(od) = od {
                c.health.uneject_expired(now);
                if now.duration_since(st.last_decay) >= od.interval {
                    st.last_decay = now;
                    for h in &c.health.endpoints {
                        if h.flags() & FAILED_OUTLIER_CHECK == 0 {
                            h.decay_ejections();
                        }
                    }
                    // The endpoints' own request counters (per core, summed here): the
                    // interval detectors add nothing to the request path.
                    let window: Vec<(u64, u64)> = cfg
                        .endpoints
                        .iter()
                        .zip(&c.endpoints)
                        .map(|(e, s)| {
                            let (ok, failed) = s.iter().fold((0, 0), |(o, f), s| {
                                (o + s.rq_success.get(), f + s.rq_error.get())
                            });
                            let now = (ok + failed, failed);
                            let before = st.outcomes.insert(e.address, now).unwrap_or(now);
                            (
                                now.0.saturating_sub(before.0),
                                now.1.saturating_sub(before.1),
                            )
                        })
                        .collect();
                    c.health.judge_interval(&window, c.scope.stats.core(0));
                }
            }
            let idle = now.duration_since(st.traffic_at);
            for (j, hc) in cfg.health_checks.iter().enumerate() {
                for (i, e) in cfg.endpoints.iter().enumerate() {
                    let key = (cfg.name.clone(), e.address, j);
                    keep.insert(key.clone());
                    let mut map = checks.borrow_mut();
                    // A new endpoint is checked at once.
                    let state = map
                        .entry(key.clone())
                        .or_insert(CheckState { due: Some(now) });
                    if state.due.is_none_or(|d| d > now) {
                        continue;
                    }
                    state.due = None;
                    drop(map);
                    let interval = match hc.no_traffic_interval {
                        Some(d) if idle >= hc.interval.max(d) => d,
                        _ => hc.interval,
                    };
                    let (hc, name) = (hc.clone(), cfg.name.clone());
                    let (c, checks) = (Arc::clone(c), Rc::clone(&checks));
                    let addr = e.address;
                    let tls = cfg.tls.clone();
                    monoio::spawn(async move {
                        let verdict = check(&hc, &name, addr, tls.as_ref()).await;
                        apply(&c, i, &hc, verdict);
                        if let Some(s) = checks.borrow_mut().get_mut(&key) {
                            s.due = Some(Instant::now() + interval + jitter(hc.interval_jitter));
                        }
                    });
                }
            }
            gauges(cfg, c);
        }
        checks.borrow_mut().retain(|k, _| keep.contains(k));
        clusters.retain(|n, _| snap.config.clusters.iter().any(|c| &c.name == n));
        drop(snap);
        monoio::time::sleep(if busy { TICK } else { IDLE_TICK }).await;
    }
}

/// Up to `max` more, at random.
fn jitter(max: Duration) -> Duration {
    let ms = u32::try_from(max.as_millis()).unwrap_or(u32::MAX);
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(u64::from(rng::below(ms)))
}

/// The health gauges of `c`, on one slot (readers sum).
fn gauges(cfg: &ClusterConfig, c: &ClusterShared) {
    let s = c.scope.stats.core(0);
    s.membership_healthy.set(c.health.healthy_count() as i64);
    s.outlier_ejections_active
        .set(c.health.ejected_count() as i64);
    if !cfg.health_checks.is_empty() {
        let passing = c
            .health
            .endpoints
            .iter()
            .filter(|h| h.flags() & FAILED_ACTIVE_HC == 0)
            .count();
        s.health_check_healthy.set(passing as i64);
    }
}

/// Applies one check's verdict to endpoint `i`: `unhealthy_threshold` failures in a row set
/// `FAILED_ACTIVE_HC`, `healthy_threshold` passes in a row clear it and un-eject an endpoint
/// outlier detection ejected (Envoy's `successful_active_health_check_uneject_host`).
fn apply(c: &ClusterShared, i: usize, hc: &HealthCheck, verdict: Verdict) {
    let stats = c.scope.stats.core(0);
    stats.health_check_attempt.inc();
    match verdict {
        Verdict::Pass => stats.health_check_success.inc(),
        Verdict::Fail => stats.health_check_failure.inc(),
        Verdict::NetworkFail => {
            stats.health_check_failure.inc();
            stats.health_check_network_failure.inc();
        }
    }
    let h: &EndpointHealth = &c.health.endpoints[i];
    let streak = h.hc_result(verdict == Verdict::Pass);
    if streak >= hc.healthy_threshold as i32 {
        if h.clear(FAILED_ACTIVE_HC) {
            log::info!("health check: endpoint {i} is healthy again");
        }
        h.clear(FAILED_OUTLIER_CHECK);
    } else if -streak >= hc.unhealthy_threshold as i32 && h.set(FAILED_ACTIVE_HC) {
        log::info!("health check: endpoint {i} is unhealthy");
    }
}

/// One check of `addr`, within the check's timeout, over the kind of connection the
/// cluster's requests use: TLS (the cluster's `tls`: SNI, CA, client certificate, ALPN) when
/// it originates TLS, so a check sees what a request would. A failed connect or handshake is
/// a network failure.
async fn check(
    hc: &HealthCheck,
    cluster: &str,
    addr: SocketAddr,
    tls: Option<&ClientTls>,
) -> Verdict {
    let probe = async {
        let io = match open(addr, tls).await {
            Ok(io) => io,
            Err(v) => return v,
        };
        match &hc.kind {
            HealthCheckKind::Http {
                path,
                host,
                method,
                expected,
            } => {
                let req = http::Request {
                    method,
                    host: Some(host.clone().unwrap_or_else(|| cluster.to_owned())),
                    ..http::Request::get(path.clone())
                }
                .header("user-agent", "ringway-health-check");
                match http::request_on(io, addr, &req).await {
                    Ok(r) if expected.iter().any(|&(a, b)| (a..b).contains(&r.status)) => {
                        Verdict::Pass
                    }
                    Ok(_) | Err(http::Error::Head(_) | http::Error::Body(_)) => Verdict::Fail,
                    Err(_) => Verdict::NetworkFail,
                }
            }
            HealthCheckKind::Grpc {
                service_name,
                authority,
            } => grpc(io, authority.as_deref().unwrap_or(cluster), service_name).await,
            HealthCheckKind::Tcp { send, receive } => {
                tcp(io, send.as_deref(), receive.as_deref()).await
            }
        }
    };
    match monoio::time::timeout(hc.timeout, probe).await {
        Ok(v) => v,
        Err(_) => Verdict::NetworkFail,
    }
}

/// A connection to `addr`: plain, or TLS with the cluster's settings. The check's timeout
/// bounds the handshake (the control thread has no worker timer).
async fn open(addr: SocketAddr, tls: Option<&ClientTls>) -> Result<Io, Verdict> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|_| Verdict::NetworkFail)?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Io::Plain(tcp));
    };
    let never = Instant::now() + Duration::from_secs(24 * 3600);
    crate::tls::connect(tcp, tls, addr.ip(), never)
        .await
        .map(Io::Tls)
        .map_err(|_| Verdict::NetworkFail)
}

async fn tcp(mut s: Io, send: Option<&[u8]>, receive: Option<&[u8]>) -> Verdict {
    let Some(send) = send else {
        return Verdict::Pass;
    };
    let (r, _) = s.write_all(send.to_vec()).await;
    if r.is_err() {
        return Verdict::NetworkFail;
    }
    let Some(want) = receive else {
        return Verdict::Pass;
    };
    let mut got = Vec::new();
    loop {
        let (r, buf) = s.read(Vec::with_capacity(4096)).await;
        match r {
            Ok(0) => return Verdict::Fail,
            Ok(_) => got.extend_from_slice(&buf),
            Err(_) => return Verdict::NetworkFail,
        }
        if got.windows(want.len().max(1)).any(|w| w == want) {
            return Verdict::Pass;
        }
        if got.len() > MAX_TCP_RECEIVE {
            return Verdict::Fail;
        }
    }
}

/// `grpc.health.v1.Health/Check` on a fresh HTTP/2 connection (h2c, or h2 over the
/// cluster's TLS), with the project's own HTTP/2 connection machine: passes on HTTP 200,
/// `grpc-status: 0` and a `SERVING` answer.
async fn grpc(mut s: Io, authority: &str, service: &str) -> Verdict {
    use protocols::http2::conn::{Config, Connection, Event, Role};
    let mut conn = Connection::new(Role::Client, Config::default());
    let Ok(id) = conn.open_stream() else {
        return Verdict::Fail;
    };
    let head: [(&[u8], &[u8]); 6] = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/grpc.health.v1.Health/Check"),
        (b":authority", authority.as_bytes()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ];
    if conn.send_headers(id, head, false).is_err() {
        return Verdict::Fail;
    }
    let mut msg = Bytes::from(grpc_request(service));
    if conn.send_data(id, &mut msg, true).is_err() || !msg.is_empty() {
        return Verdict::Fail;
    }
    let (mut status_ok, mut grpc_ok, mut done) = (false, false, false);
    let mut body = Vec::new();
    loop {
        let mut out = BytesMut::new();
        conn.poll_transmit(&mut out);
        if !out.is_empty() {
            let (r, _) = s.write_all(out.to_vec()).await;
            if r.is_err() {
                return Verdict::NetworkFail;
            }
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Headers {
                    stream,
                    fields,
                    end_stream,
                } if stream == id => {
                    if let Some(st) = fields.value_of(b":status") {
                        status_ok |= st == b"200";
                    }
                    // Trailers-only: grpc-status in the head.
                    if let Some(g) = fields.value_of(b"grpc-status") {
                        grpc_ok = g == b"0";
                    }
                    done |= end_stream;
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } if stream == id => {
                    conn.release_capacity(id, u32::try_from(data.len()).unwrap_or(u32::MAX));
                    if body.len() < MAX_TCP_RECEIVE {
                        body.extend_from_slice(&data);
                    }
                    done |= end_stream;
                }
                Event::Trailers { stream, fields } if stream == id => {
                    grpc_ok = fields.value_of(b"grpc-status") == Some(b"0");
                    done = true;
                }
                Event::Reset { stream, .. } if stream == id => return Verdict::Fail,
                Event::GoAway { .. } if !done => return Verdict::Fail,
                _ => {}
            }
        }
        if done {
            break;
        }
        let (r, buf) = s.read(Vec::with_capacity(16 * 1024)).await;
        match r {
            Ok(0) | Err(_) => return Verdict::NetworkFail,
            Ok(_) => {
                if conn.handle_bytes(&mut BytesMut::from(&buf[..])).is_err() {
                    return Verdict::Fail;
                }
            }
        }
    }
    if status_ok && grpc_ok && grpc_serving(&body) {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse` (`status`: 1 is `SERVING`).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// A length-prefixed (gRPC-framed) `HealthCheckRequest`.
fn grpc_request(service: &str) -> Vec<u8> {
    let msg = HealthCheckRequest {
        service: service.to_owned(),
    }
    .encode_to_vec();
    let mut out = Vec::with_capacity(5 + msg.len());
    // A health check request is a few bytes: far below the framing's 4 GiB bound.
    out.extend_from_slice(&encode_header(false, msg.len()).unwrap_or_default());
    out.extend_from_slice(&msg);
    out
}

/// The first message of a gRPC body is an uncompressed `HealthCheckResponse` whose status is
/// `SERVING`. Unknown fields are skipped.
fn grpc_serving(body: &[u8]) -> bool {
    let mut body = BytesMut::from(body);
    match Decoder::new(MAX_TCP_RECEIVE).decode(&mut body) {
        Ok(Some(m)) if !m.compressed => {
            HealthCheckResponse::decode(m.payload).is_ok_and(|r| r.status == 1)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_by_hand() {
        assert_eq!(grpc_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(grpc_request("a.B"), b"\0\0\0\0\x05\x0a\x03a.B".to_vec());
        assert!(grpc_serving(b"\0\0\0\0\x02\x08\x01"));
        assert!(!grpc_serving(b"\0\0\0\0\x02\x08\x02"), "NOT_SERVING");
        assert!(!grpc_serving(b"\0\0\0\0\0"), "UNKNOWN by default");
        // An unknown string field before the status is skipped.
        assert!(grpc_serving(b"\0\0\0\0\x06\x12\x02hi\x08\x01"));
        assert!(!grpc_serving(b"\0\0\0\0\x09\x08"), "cut short");
        assert!(!grpc_serving(b"\x01\0\0\0\x02\x08\x01"), "compressed");
    }
}
