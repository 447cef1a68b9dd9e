//! One cluster's endpoint health as every layer sees it: the process-wide
//! [`EndpointHealth`] of each endpoint (looked up by cluster name and address, so it survives
//! reloads), the panic threshold, and outlier detection's consecutive detectors fed by each
//! request's outcome ([`ClusterHealth::report`], from `upstream::Attempt::end`).
//!
//! Hot path: [`ClusterHealth::is_healthy`] is one relaxed load; a successful request writes
//! nothing shared unless a failure run came before it. Cold path: an ejection decision takes
//! the cluster's ejection lock (process-wide, by name) so `max_ejection_percent` holds
//! across workers. Un-ejection by time and active checks run on the control thread
//! (`crate::cluster::health`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::access_log::ResponseFlags;
use crate::config::{ClusterConfig, OutlierDetection};
use crate::rt::rng;
use crate::shared_state::{
    EndpointHealth, FAILED_ACTIVE_HC, FAILED_OUTLIER_CHECK, Registry, clock_ms,
};
use crate::stats::ClusterStats;

/// Detector indices into [`EndpointHealth`]'s counters and [`OutlierDetection::enforcing`].
const D_5XX: usize = 0;
const D_GATEWAY: usize = 1;
const D_LOCAL: usize = 2;
/// The failure percentage detector (no counter of its own: it reads the endpoint stats).
const D_FAILURE_PCT: usize = 3;
/// The success rate detector (reads the endpoint stats too).
const D_SUCCESS_RATE: usize = 4;

/// Registry kinds.
const ENDPOINT_HEALTH: &str = "cluster.endpoint_health";
const EJECTION_LOCK: &str = "cluster.ejection_lock";

/// What one request says about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A response below 500.
    Success,
    /// A 5xx response from the endpoint.
    Status(u16),
    /// No response: connect failure, reset, timeout, protocol error.
    LocalFailure,
    /// Nothing about the endpoint (refused by a breaker, the client went away).
    Unknown,
}

impl Outcome {
    /// The outcome of a request that ended with `status` (0: no response) and `flags`.
    pub(crate) fn of(status: u16, flags: ResponseFlags) -> Self {
        let any = |f: &[ResponseFlags]| f.iter().any(|&f| flags.contains(f));
        if any(&[
            ResponseFlags::UF,
            ResponseFlags::UT,
            ResponseFlags::UC,
            ResponseFlags::UPE,
        ]) {
            Self::LocalFailure
        } else if status == 0 || any(&[ResponseFlags::UO, ResponseFlags::DC]) {
            Self::Unknown
        } else if status >= 500 {
            Self::Status(status)
        } else {
            Self::Success
        }
    }
}

/// A cluster's endpoint health; part of `ClusterShared`.
pub(crate) struct ClusterHealth {
    /// By endpoint index.
    pub(crate) endpoints: Vec<Arc<EndpointHealth>>,
    /// Percent.
    panic_threshold: f64,
    pub(crate) outlier: Option<OutlierDetection>,
    /// Serialises ejection decisions across workers (cold path).
    ejection_lock: Arc<Mutex<()>>,
}

impl ClusterHealth {
    pub(crate) fn new(c: &ClusterConfig, state: &Registry) -> Self {
        let initial = if c.health_checks.iter().any(|h| h.initially_unhealthy) {
            FAILED_ACTIVE_HC
        } else {
            0
        };
        let endpoints: Vec<Arc<EndpointHealth>> = c
            .endpoints
            .iter()
            .map(|e| state.endpoint_health(ENDPOINT_HEALTH, &key(&c.name, e.address), initial))
            .collect();
        // A flag nothing would clear any more: its checks or detection were configured away.
        for h in &endpoints {
            if c.health_checks.is_empty() {
                h.clear(FAILED_ACTIVE_HC);
            }
            if c.outlier_detection.is_none() {
                h.clear(FAILED_OUTLIER_CHECK);
            }
        }
        Self {
            endpoints,
            panic_threshold: c.healthy_panic_threshold,
            outlier: c.outlier_detection.clone(),
            ejection_lock: state.get_or_insert_with(EJECTION_LOCK, &c.name, || Mutex::new(())),
        }
    }

    /// Endpoint `i` may be chosen. One relaxed load.
    #[inline]
    pub(crate) fn is_healthy(&self, i: usize) -> bool {
        self.endpoints[i].is_healthy()
    }

    /// Endpoints with no flag set.
    pub(crate) fn healthy_count(&self) -> usize {
        self.endpoints.iter().filter(|e| e.is_healthy()).count()
    }

    /// Ejected endpoints.
    pub(crate) fn ejected_count(&self) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.flags() & FAILED_OUTLIER_CHECK != 0)
            .count()
    }

    /// Too few endpoints are healthy: every endpoint is used (Envoy's panic mode), as is
    /// the case when none is healthy whatever the threshold.
    pub(crate) fn in_panic(&self) -> bool {
        let healthy = self.healthy_count();
        healthy == 0
            || (healthy as f64) * 100.0 < self.panic_threshold * self.endpoints.len() as f64
    }

    /// Feeds outlier detection with one request's outcome on endpoint `ep`; may eject it.
    /// `stats` is the reporting worker's slot.
    pub(crate) fn report(&self, ep: usize, outcome: Outcome, stats: &ClusterStats) {
        let Some(od) = &self.outlier else { return };
        let h = &self.endpoints[ep];
        let split = od.split_external_local_origin_errors;
        let (is_5xx, is_gateway, is_local) = match outcome {
            Outcome::Unknown => return,
            Outcome::Success => {
                h.reset(D_5XX);
                h.reset(D_GATEWAY);
                h.reset(D_LOCAL);
                return;
            }
            Outcome::Status(s) => (true, matches!(s, 502..=504), false),
            // Unsplit, a local-origin failure counts as a gateway error (Envoy maps it to
            // 503); split, it counts on its own and says nothing of the upstream's answers.
            Outcome::LocalFailure if split => (false, false, true),
            Outcome::LocalFailure => (true, true, false),
        };
        if split && !is_local {
            h.reset(D_LOCAL);
        }
        let mut hit = None;
        let mut check = |d: usize, on: bool, threshold: Option<u32>| {
            if !on {
                h.reset(d);
                return;
            }
            let n = h.fail(d);
            // Exactly at the threshold: one worker makes the decision.
            if threshold == Some(n) && hit.is_none() {
                hit = Some(d);
            }
        };
        if is_local {
            // Split: the upstream's answers' runs are left as they are.
            check(D_LOCAL, true, od.consecutive_local_origin_failure);
        } else {
            check(D_5XX, is_5xx, od.consecutive_5xx);
            check(D_GATEWAY, is_gateway, od.consecutive_gateway_failure);
        }
        if let Some(d) = hit {
            self.detected(ep, d, od, stats);
        }
    }

    /// Detector `d` fired for `ep`: eject it if enforced and allowed.
    #[cold]
    fn detected(&self, ep: usize, d: usize, od: &OutlierDetection, stats: &ClusterStats) {
        match d {
            D_5XX => stats.outlier_ejections_detected_consecutive_5xx.inc(),
            D_GATEWAY => stats
                .outlier_ejections_detected_consecutive_gateway_failure
                .inc(),
            D_FAILURE_PCT => stats.outlier_ejections_detected_failure_percentage.inc(),
            D_SUCCESS_RATE => stats.outlier_ejections_detected_success_rate.inc(),
            _ => stats
                .outlier_ejections_detected_consecutive_local_origin_failure
                .inc(),
        }
        if od.enforcing[d] < 100 && rng::below(100) >= od.enforcing[d] {
            return;
        }
        let _g = self
            .ejection_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = &self.endpoints[ep];
        if h.flags() & FAILED_OUTLIER_CHECK != 0 {
            return;
        }
        let ejected = self.ejected_count();
        // Envoy's always_eject_one_host: the first ejection is always allowed.
        let allowed = od.max_ejection_percent * self.endpoints.len() as f64 / 100.0;
        if ejected > 0 && (ejected + 1) as f64 > allowed {
            stats.outlier_ejections_overflow.inc();
            return;
        }
        h.record_ejection(clock_ms(Instant::now()));
        h.set(FAILED_OUTLIER_CHECK);
        stats.outlier_ejections_enforced_total.inc();
        match d {
            D_5XX => stats.outlier_ejections_enforced_consecutive_5xx.inc(),
            D_GATEWAY => stats
                .outlier_ejections_enforced_consecutive_gateway_failure
                .inc(),
            D_FAILURE_PCT => stats.outlier_ejections_enforced_failure_percentage.inc(),
            D_SUCCESS_RATE => stats.outlier_ejections_enforced_success_rate.inc(),
            _ => stats
                .outlier_ejections_enforced_consecutive_local_origin_failure
                .inc(),
        }
        log::info!("outlier detection ejected endpoint {ep}");
    }

    /// The interval detectors, run by the control thread once per `interval`: `window[i]`
    /// is endpoint `i`'s (requests, failed requests) in the interval, from the endpoints'
    /// own counters (so they add nothing to the request path).
    ///
    /// - **Success rate** (Envoy's): with at least `minimum_hosts` endpoints of
    ///   `request_volume` requests, each whose success rate is below the mean of theirs minus
    ///   `stdev_factor` / 1000 standard deviations is ejected. Each judged endpoint's rate is
    ///   kept for the admin API.
    /// - **Failure percentage**, when configured: with at least `minimum_hosts` endpoints of
    ///   `request_volume` requests, each failing `threshold` percent or more is ejected.
    ///
    /// Both within `max_ejection_percent`.
    pub(crate) fn judge_interval(&self, window: &[(u64, u64)], stats: &ClusterStats) {
        let Some(od) = &self.outlier else { return };
        // Endpoints with at least `volume` requests in the window, with theirs.
        let judged = |volume: u64| {
            window
                .iter()
                .take(self.endpoints.len())
                .enumerate()
                .filter(move |(_, (rq, _))| *rq >= volume.max(1))
        };
        let sr = &od.success_rate;
        // (endpoint, success rate in percent), each worked out once.
        let rates: Vec<(usize, f64)> = judged(sr.request_volume)
            .map(|(i, &(rq, failed))| (i, 100.0 * rq.saturating_sub(failed) as f64 / rq as f64))
            .collect();
        // Kept for the admin API; `None` for an endpoint not judged (`rates` is in order).
        let mut judged_rates = rates.iter().peekable();
        for (i, h) in self.endpoints.iter().enumerate() {
            h.set_success_rate(judged_rates.next_if(|(j, _)| *j == i).map(|&(_, r)| r));
        }
        if !rates.is_empty() && rates.len() >= sr.minimum_hosts {
            let count = rates.len() as f64;
            let mean = rates.iter().map(|(_, r)| r).sum::<f64>() / count;
            let variance = rates.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / count;
            let threshold = mean - variance.sqrt() * f64::from(sr.stdev_factor) / 1000.0;
            for &(i, r) in &rates {
                if r < threshold && self.endpoints[i].flags() & FAILED_OUTLIER_CHECK == 0 {
                    self.detected(i, D_SUCCESS_RATE, od, stats);
                }
            }
        }
        let Some(fp) = &od.failure_percentage else {
            return;
        };
        if judged(fp.request_volume).count() < fp.minimum_hosts {
            return;
        }
        for (i, &(rq, failed)) in judged(fp.request_volume) {
            if (failed as f64) * 100.0 >= fp.threshold * rq as f64
                && self.endpoints[i].flags() & FAILED_OUTLIER_CHECK == 0
            {
                self.detected(i, D_FAILURE_PCT, od, stats);
            }
        }
    }

    /// Un-ejects the endpoints whose ejection time is over at `now`: `base_ejection_time`
    /// times the times ejected, at most `max_ejection_time`. Control thread.
    pub(crate) fn uneject_expired(&self, now: Instant) -> usize {
        let Some(od) = &self.outlier else { return 0 };
        let now = clock_ms(now);
        let mut n = 0;
        for h in &self.endpoints {
            if h.flags() & FAILED_OUTLIER_CHECK == 0 {
                continue;
            }
            if now
                >= h.ejected_at()
                    .saturating_add(ejection_ms(od, h.times_ejected()))
                && h.clear(FAILED_OUTLIER_CHECK)
            {
                n += 1;
            }
        }
        n
    }
}

/// How long the `times`th ejection lasts, in milliseconds.
fn ejection_ms(od: &OutlierDetection, times: u32) -> u64 {
    let d = od
        .base_ejection_time
        .saturating_mul(times.max(1))
        .min(od.max_ejection_time.max(od.base_ejection_time));
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The registry name of an endpoint's health.
fn key(cluster: &str, addr: std::net::SocketAddr) -> String {
    format!("{cluster}/{addr}")
}

/// The health entry of `cluster`'s endpoint at `addr`, if it has one (the admin API).
pub(crate) fn endpoint_health(
    state: &Registry,
    cluster: &str,
    addr: std::net::SocketAddr,
) -> Option<Arc<EndpointHealth>> {
    state.get(ENDPOINT_HEALTH, &key(cluster, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::stats::PerCore;

    fn cluster(od: &str) -> (ClusterHealth, Arc<Registry>) {
        let text = format!(
            "[[clusters]]\nname = \"c\"\n\
             endpoints = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\", \"127.0.0.1:4\"]\n\
             [clusters.outlier_detection]\n{od}\n"
        );
        let cfg = parse_str(&text, "t").unwrap();
        let state = Registry::new();
        (ClusterHealth::new(&cfg.clusters[0], &state), state)
    }

    fn stats() -> PerCore<ClusterStats> {
        PerCore::new(1)
    }

    #[test]
    fn outcomes_are_classified_by_flags_then_status() {
        assert_eq!(Outcome::of(200, ResponseFlags::NONE), Outcome::Success);
        assert_eq!(Outcome::of(404, ResponseFlags::NONE), Outcome::Success);
        assert_eq!(Outcome::of(503, ResponseFlags::NONE), Outcome::Status(503));
        assert_eq!(Outcome::of(503, ResponseFlags::UF), Outcome::LocalFailure);
        assert_eq!(Outcome::of(0, ResponseFlags::UC), Outcome::LocalFailure);
        assert_eq!(Outcome::of(504, ResponseFlags::UT), Outcome::LocalFailure);
        assert_eq!(Outcome::of(503, ResponseFlags::UO), Outcome::Unknown);
        assert_eq!(Outcome::of(0, ResponseFlags::NONE), Outcome::Unknown);
    }

    /// A success between failures restarts the run; the count that reaches the threshold
    /// ejects once.
    #[test]
    fn consecutive_5xx_ejects_at_the_threshold() {
        let (h, _state) = cluster("consecutive_5xx = 3");
        let st = stats();
        let s = st.core(0);
        h.report(0, Outcome::Status(500), s);
        h.report(0, Outcome::Status(500), s);
        h.report(0, Outcome::Success, s);
        h.report(0, Outcome::Status(500), s);
        h.report(0, Outcome::Status(500), s);
        assert!(h.is_healthy(0));
        h.report(0, Outcome::LocalFailure, s);
        assert!(!h.is_healthy(0));
        assert_eq!(s.outlier_ejections_enforced_consecutive_5xx.get(), 1);
        assert_eq!(h.endpoints[0].times_ejected(), 1);
        // Not yet over.
        assert_eq!(h.uneject_expired(Instant::now()), 0);
        let later = Instant::now() + std::time::Duration::from_secs(31);
        assert_eq!(h.uneject_expired(later), 1);
        assert!(h.is_healthy(0));
    }

    /// Split, local-origin failures count on their own, not as 5xx; any answer (a 500 too)
    /// shows the connection works and restarts their run.
    #[test]
    fn split_errors_count_apart() {
        let (h, _state) = cluster(
            "consecutive_5xx = 2\nsplit_external_local_origin_errors = true\n\
             consecutive_local_origin_failure = 3",
        );
        let st = stats();
        let s = st.core(0);
        h.report(1, Outcome::LocalFailure, s);
        h.report(1, Outcome::LocalFailure, s);
        h.report(1, Outcome::Status(500), s);
        h.report(1, Outcome::LocalFailure, s);
        h.report(1, Outcome::LocalFailure, s);
        assert!(h.is_healthy(1), "one 500 and two local failures in a row");
        h.report(1, Outcome::LocalFailure, s);
        assert!(!h.is_healthy(1));
        assert_eq!(
            s.outlier_ejections_enforced_consecutive_local_origin_failure
                .get(),
            1
        );
    }

    /// 25 % of four endpoints is one: the second ejection overflows; at 10 % one still may.
    #[test]
    fn max_ejection_percent_with_one_always_allowed() {
        for pct in ["25.0", "10.0", "0.0"] {
            let (h, _state) = cluster(&format!(
                "consecutive_5xx = 1\nmax_ejection_percent = {pct}"
            ));
            let st = stats();
            let s = st.core(0);
            h.report(0, Outcome::Status(500), s);
            h.report(1, Outcome::Status(500), s);
            assert_eq!(h.ejected_count(), 1, "{pct}");
            assert_eq!(s.outlier_ejections_overflow.get(), 1, "{pct}");
        }
        let (h, _state) = cluster("consecutive_5xx = 1\nmax_ejection_percent = 50.0");
        let st = stats();
        for ep in 0..4 {
            h.report(ep, Outcome::Status(500), st.core(0));
        }
        assert_eq!(h.ejected_count(), 2);
        // Half the endpoints healthy is not below the 50 % panic threshold.
        assert!(!h.in_panic());
    }

    /// Flags whose source is configured away are cleared when the snapshot is built.
    #[test]
    fn flags_without_a_source_are_cleared_on_rebuild() {
        let (h, state) = cluster("consecutive_5xx = 1");
        let st = stats();
        h.report(0, Outcome::Status(500), st.core(0));
        h.endpoints[1].set(FAILED_ACTIVE_HC);
        assert_eq!(h.healthy_count(), 2);
        let same = parse_str(
            "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n\
             [clusters.outlier_detection]\n",
            "t",
        )
        .unwrap();
        let kept = ClusterHealth::new(&same.clusters[0], &state);
        assert!(Arc::ptr_eq(&kept.endpoints[0], &h.endpoints[0]));
        assert!(!kept.is_healthy(0), "still ejected");
        assert!(kept.is_healthy(1), "no health checks any more");
        let none = parse_str(
            "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\"]\n",
            "t",
        )
        .unwrap();
        assert!(ClusterHealth::new(&none.clusters[0], &state).is_healthy(0));
    }

    /// Judged only with enough endpoints of enough requests; at or above the threshold.
    #[test]
    fn failure_percentage_needs_volume_and_hosts() {
        let (h, _state) = cluster(
            "consecutive_5xx = 0\nmax_ejection_percent = 50.0\n\
             failure_percentage_threshold = 50.0\nfailure_percentage_minimum_hosts = 3\n\
             failure_percentage_request_volume = 10",
        );
        let st = stats();
        let s = st.core(0);
        // Two endpoints with enough requests: not enough to judge.
        h.judge_interval(&[(10, 10), (10, 0), (9, 0), (0, 0)], s);
        assert_eq!(h.healthy_count(), 4);
        h.judge_interval(&[(10, 5), (10, 4), (10, 0), (0, 0)], s);
        assert!(!h.is_healthy(0), "50 % is at the threshold");
        assert!(h.is_healthy(1));
        assert_eq!(s.outlier_ejections_enforced_failure_percentage.get(), 1);
    }

    /// Below the mean by more than the configured deviations, with enough endpoints of
    /// enough requests; the rates are kept for the admin API.
    #[test]
    fn success_rate_ejects_below_mean_minus_deviations() {
        let (h, _state) = cluster(
            "consecutive_5xx = 0\nmax_ejection_percent = 50.0\n\
             success_rate_minimum_hosts = 3\nsuccess_rate_request_volume = 10\n\
             success_rate_stdev_factor = 1000",
        );
        let st = stats();
        let s = st.core(0);
        // Two endpoints with enough requests: not enough to judge, but their rates show.
        h.judge_interval(&[(10, 10), (10, 0), (9, 0), (0, 0)], s);
        assert_eq!(h.healthy_count(), 4);
        assert_eq!(h.endpoints[0].success_rate(), Some(0.0));
        assert_eq!(h.endpoints[1].success_rate(), Some(100.0));
        assert_eq!(h.endpoints[2].success_rate(), None, "too few requests");
        // Rates 100, 100, 100, 40: mean 85, stdev about 26; 40 is below 85 - 26.
        h.judge_interval(&[(10, 0), (10, 0), (10, 0), (10, 6)], s);
        assert!(!h.is_healthy(3));
        assert_eq!(h.healthy_count(), 3);
        assert_eq!(s.outlier_ejections_enforced_success_rate.get(), 1);
        // Equal rates: nobody is below the mean.
        let (h, _state) = cluster(
            "consecutive_5xx = 0\nsuccess_rate_minimum_hosts = 3\nsuccess_rate_request_volume = 10",
        );
        h.judge_interval(&[(10, 5), (10, 5), (10, 5), (10, 5)], s);
        assert_eq!(h.healthy_count(), 4);
        // Detected but not enforced.
        let (h, _state) = cluster(
            "consecutive_5xx = 0\nsuccess_rate_minimum_hosts = 3\n\
             success_rate_request_volume = 10\nsuccess_rate_stdev_factor = 1000\n\
             enforcing_success_rate = 0",
        );
        let detected = s.outlier_ejections_detected_success_rate.get();
        h.judge_interval(&[(10, 0), (10, 0), (10, 0), (10, 6)], s);
        assert_eq!(h.healthy_count(), 4);
        assert_eq!(
            s.outlier_ejections_detected_success_rate.get(),
            detected + 1
        );
    }

    /// The back-off doubles with each ejection and stops at max_ejection_time.
    #[test]
    fn ejection_time_grows_and_is_capped() {
        let (h, _state) = cluster("base_ejection_time = \"10s\"\nmax_ejection_time = \"25s\"");
        let od = h.outlier.as_ref().unwrap();
        assert_eq!(ejection_ms(od, 1), 10_000);
        assert_eq!(ejection_ms(od, 2), 20_000);
        assert_eq!(ejection_ms(od, 3), 25_000);
    }
}
