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
//! Does not: decide ejections (the workers' `Attempt::end` does, `crate::shared::health`),
//! or speak gRPC health checks (refused by the config).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::http;
use crate::config::{ClusterConfig, HealthCheck, HealthCheckKind};
use crate::rt::rng;
use crate::shared::{ClusterShared, Shared};
use crate::shared_state::{EndpointHealth, FAILED_ACTIVE_HC, FAILED_OUTLIER_CHECK};

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
                    monoio::spawn(async move {
                        let verdict = check(&hc, &name, addr).await;
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

/// One check of `addr`, within the check's timeout.
async fn check(hc: &HealthCheck, cluster: &str, addr: SocketAddr) -> Verdict {
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
            match http::request(addr, &req, hc.timeout).await {
                Ok(r) if expected.iter().any(|&(a, b)| (a..b).contains(&r.status)) => Verdict::Pass,
                Ok(_) | Err(http::Error::Head(_) | http::Error::Body(_)) => Verdict::Fail,
                Err(_) => Verdict::NetworkFail,
            }
        }
        HealthCheckKind::Tcp { send, receive } => {
            match monoio::time::timeout(hc.timeout, tcp(addr, send.as_deref(), receive.as_deref()))
                .await
            {
                Ok(v) => v,
                Err(_) => Verdict::NetworkFail,
            }
        }
    }
}

async fn tcp(addr: SocketAddr, send: Option<&[u8]>, receive: Option<&[u8]>) -> Verdict {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return Verdict::NetworkFail;
    };
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
