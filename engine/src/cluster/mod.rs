//! A cluster as one worker sees it: its membership (the endpoints of its config), this
//! worker's load-balancer state ([`lb`]) and this worker's [`Pool`] of connections to it.
//! Everything that decides *where* a request goes lives here: load balancers that skip
//! unhealthy and ejected endpoints (their flags and outlier detection's counters are the
//! cluster's process-wide `ClusterShared::health`, which the upstream layer feeds with each
//! request's outcome), the control thread runs active checks and un-ejection (`crate::control::health`);
//! the cluster's process-wide circuit breakers are its `ClusterShared`, whose admission the
//! upstream layer applies; *how* it gets there — connecting, TLS, PROXY protocol, pooled
//! HTTP/1 and HTTP/2 connections, the per-request attempt — is [`crate::upstream`].
//!
//! Imports `upstream`, never the layers above it (router, filters, connection managers).

pub(crate) mod lb;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{ClusterConfig, RetryBudget, SlowStart};
use crate::rt::{rng, timer};
use crate::shared::{ClusterShared, Outcome};
use crate::shared_state::{Occupancy, clock_ms};
use crate::stats::ClusterStats;
use crate::upstream::Pool;

/// What bounds the retries of one request ([`ClusterLocal::retry_limits`]).
pub(crate) struct RetryLimits<'p> {
    pub(crate) stats: &'p ClusterStats,
    /// The cluster's retries in flight across all workers (`max_retries`).
    pub(crate) breaker: &'p Arc<Occupancy>,
    /// With a retry budget, the retries in flight may be its share of the requests in
    /// flight (those waiting for a connection included).
    pub(crate) budget: Option<(&'p RetryBudget, &'p Occupancy)>,
}

/// One worker's view of a cluster.
pub(crate) struct ClusterLocal {
    balancer: lb::Balancer,
    /// The cluster's process-wide state (circuit breakers).
    shared: Arc<ClusterShared>,
    /// This worker's connections to the cluster; attempts and HTTP/2 connections hold it too.
    pool: Rc<Pool>,
    /// A returning endpoint's share ramps up.
    slow_start: Option<SlowStart>,
}

impl ClusterLocal {
    pub(crate) fn new(cfg: &ClusterConfig, shared: Arc<ClusterShared>, core: usize) -> Self {
        Self {
            balancer: lb::Balancer::new(cfg.lb, &cfg.endpoints, cfg.lb_table.clone())
                .with_least_request(cfg.least_request),
            pool: Rc::new(Pool::new(cfg, Arc::clone(&shared), core)),
            shared,
            slow_start: cfg.slow_start,
        }
    }

    /// This worker's connections to the cluster.
    pub(crate) fn pool(&self) -> &Rc<Pool> {
        &self.pool
    }

    pub(crate) fn stats(&self) -> &ClusterStats {
        self.pool.stats()
    }

    /// Choose an endpoint for a new request; `hash` is the request's hash by its route's
    /// `hash_policy` (used by `ring_hash` and `maglev` clusters). Endpoints failing active
    /// health checks or ejected by outlier detection are skipped, unless fewer than
    /// `healthy_panic_threshold` percent are healthy (then all are used). The balancer's
    /// choice costs one relaxed load of its health flags; only an unhealthy choice looks
    /// further.
    ///
    /// With `slow_start`, an endpoint that became healthy again within the window is taken
    /// with a probability of its ramped share, else the balancer is asked again (a few
    /// times): its share of requests grows over the window. Without it, nothing is read.
    pub(crate) fn pick(&self, hash: Option<u64>) -> Option<usize> {
        let ep = self.pick_healthy(hash)?;
        let Some(ss) = &self.slow_start else {
            return Some(ep);
        };
        let mut ep = ep;
        for _ in 0..4 {
            if self.ramped_in(ep, ss) {
                break;
            }
            ep = self.pick_healthy(hash)?;
        }
        Some(ep)
    }

    fn pick_healthy(&self, hash: Option<u64>) -> Option<usize> {
        let active = |i: usize| self.pool.endpoints[i].active.get();
        let ep = self.balancer.pick(active, hash)?;
        let health = &self.shared.health;
        if health.is_healthy(ep) || health.in_panic() {
            return Some(ep);
        }
        self.balancer
            .pick_usable(active, hash, |i| health.is_healthy(i))
            .or(Some(ep))
    }

    /// Slow start: take endpoint `ep` now? Always, unless it became healthy again within
    /// the window; then with the probability of its share,
    /// max(min_weight_percent, (time since / window) ^ (1 / aggression)).
    fn ramped_in(&self, ep: usize, ss: &SlowStart) -> bool {
        let h = &self.shared.health.endpoints[ep];
        let Some(since) = h.healthy_since() else {
            return true;
        };
        let now = clock_ms(timer::coarse_now());
        let window = ss.window.as_millis() as f64;
        let t = now.saturating_sub(since) as f64 / window;
        if t >= 1.0 {
            h.end_slow_start();
            return true;
        }
        let share = t
            .powf(1.0 / ss.aggression)
            .max(ss.min_weight_percent / 100.0);
        (rng::below(1 << 20) as f64) < share * f64::from(1u32 << 20)
    }

    /// Choose an endpoint for a try of a request that already tried those in `tried` (bit
    /// `i % 64` for endpoint `i`): the balancer's choice, asked again a few times while it
    /// names one tried before (a retry prefers another endpoint; with all tried, any). A
    /// request `hash` is varied for each new ask, so a hashing balancer moves on too, the
    /// same way for the same key.
    pub(crate) fn pick_avoiding(&self, tried: u64, hash: Option<u64>) -> Option<usize> {
        let mut ep = self.pick(hash)?;
        let n = self.pool.endpoints.len();
        for again in 1..n.min(4) as u64 {
            if tried & (1 << (ep % 64)) == 0 {
                break;
            }
            // Odd multiples of the golden ratio: distinct, well spread.
            let varied = hash.map(|h| h ^ again.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            ep = self.pick(varied)?;
        }
        Some(ep)
    }

    /// Feeds outlier detection with what a connection (not a request: the TCP proxy)
    /// showed of endpoint `ep`. HTTP requests report in `upstream::Attempt::end`.
    pub(crate) fn report(&self, ep: usize, outcome: Outcome) {
        self.shared.health.report(ep, outcome, self.stats());
    }

    /// What bounds the retries of requests to this cluster: its retry circuit breaker or
    /// retry budget, shared by all workers.
    pub(crate) fn retry_limits(&self) -> RetryLimits<'_> {
        RetryLimits {
            stats: self.stats(),
            breaker: &self.shared.retries,
            budget: self
                .shared
                .retry_budget
                .as_ref()
                .map(|b| (b, &*self.shared.requests)),
        }
    }

    /// Close pooled connections idle for longer than the idle timeout.
    pub(crate) fn sweep(&self, now: Instant) {
        self.pool.sweep(now);
    }

    /// Drop every pooled connection (the worker is draining or the cluster was replaced);
    /// HTTP/2 connections close once their open streams are done.
    pub(crate) fn close_idle(&self) {
        self.pool.close_idle();
    }

    pub(crate) fn flush(&self) {
        self.pool.flush();
    }
}

/// An attempt ([`crate::upstream::Attempt::begin`]) is made on the cluster's pool.
impl AsRef<Rc<Pool>> for ClusterLocal {
    fn as_ref(&self) -> &Rc<Pool> {
        &self.pool
    }
}
