//! Load-balancing policies over one cluster's endpoints, per worker.
//!
//! Each worker balances with its own state (cursor, active-request counts): no shared cache
//! lines. Weighted round robin is precomputed into a smooth schedule (nginx's algorithm) so a
//! pick is O(1); least request is power-of-two-choices (or `choice_count` draws) on
//! `weight / (active + 1) ^ active_request_bias`; random is
//! weighted by cumulative weights. Ring hash and Maglev look the request's hash up in the
//! cluster's [`Table`], compiled with the config and shared by every worker; a request
//! without a hash goes to a weighted random endpoint (as in Envoy).

use std::cell::Cell;
use std::sync::Arc;

use crate::config::lb_table::Table;
use crate::config::{Endpoint, LbPolicy, LeastRequest};
use crate::rt::rng;

/// Longest precomputed round-robin schedule; beyond it weights are scaled down.
const MAX_SCHEDULE: usize = 1 << 16;

#[derive(Debug)]
pub(crate) struct Balancer {
    policy: LbPolicy,
    weights: Vec<u32>,
    /// Smooth weighted round-robin order of endpoint indices.
    schedule: Vec<u32>,
    cursor: Cell<usize>,
    /// Cumulative weights for weighted random.
    cumulative: Vec<u32>,
    /// Ring hash and Maglev: the cluster's lookup table.
    table: Option<Arc<Table>>,
    /// Least request's draws and bias.
    least: LeastRequest,
}

impl Balancer {
    /// `table`: the cluster's consistent-hash table (ring hash, Maglev), shared.
    pub(crate) fn new(policy: LbPolicy, endpoints: &[Endpoint], table: Option<Arc<Table>>) -> Self {
        let weights: Vec<u32> = endpoints.iter().map(|e| e.weight.max(1)).collect();
        let schedule = if policy == LbPolicy::RoundRobin {
            smooth_schedule(&weights)
        } else {
            Vec::new()
        };
        let mut total = 0;
        let cumulative = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        // Start every worker at a different place so they do not all hit endpoint 0 first.
        let cursor = if schedule.is_empty() {
            0
        } else {
            rng::below(schedule.len() as u32) as usize
        };
        Self {
            policy,
            weights,
            schedule,
            cursor: Cell::new(cursor),
            cumulative,
            table,
            least: LeastRequest::default(),
        }
    }

    /// The same balancer with least request's settings.
    pub(crate) fn with_least_request(mut self, least: LeastRequest) -> Self {
        self.least = least;
        self
    }

    /// Pick an endpoint index; `active(i)` is this worker's in-flight request count for `i`,
    /// `hash` the request's hash (ring hash and Maglev; other policies ignore it). `None` only
    /// when the cluster has no endpoints.
    pub(crate) fn pick(&self, active: impl Fn(usize) -> u32, hash: Option<u64>) -> Option<usize> {
        let n = self.weights.len();
        if n <= 1 {
            return (n == 1).then_some(0);
        }
        match self.policy {
            LbPolicy::RoundRobin => {
                let c = self.cursor.get();
                self.cursor.set(if c + 1 == self.schedule.len() {
                    0
                } else {
                    c + 1
                });
                self.schedule.get(c).map(|&i| i as usize)
            }
            LbPolicy::Random => Some(self.weighted_random()),
            LbPolicy::RingHash | LbPolicy::Maglev => Some(match (&self.table, hash) {
                (Some(t), Some(h)) => t.pick(h),
                _ => self.weighted_random(),
            }),
            LbPolicy::LeastRequest => {
                // The first two draws are distinct endpoints (power of two choices).
                let a = rng::below(n as u32) as usize;
                let mut b = rng::below(n as u32 - 1) as usize;
                if b >= a {
                    b += 1;
                }
                let mut best = if self.less_loaded(b, a, &active) {
                    b
                } else {
                    a
                };
                for _ in 2..self.least.choice_count {
                    let c = rng::below(n as u32) as usize;
                    if self.less_loaded(c, best, &active) {
                        best = c;
                    }
                }
                Some(best)
            }
        }
    }

    /// Least request: `a` has more weight per active request than `b`, by
    /// weight / (active + 1) ^ `active_request_bias` (ties: `b`). The default bias of 1
    /// compares by cross-multiplication, with no floating point.
    #[inline]
    fn less_loaded(&self, a: usize, b: usize, active: &impl Fn(usize) -> u32) -> bool {
        let (wa, wb) = (u64::from(self.weights[a]), u64::from(self.weights[b]));
        let (aa, ab) = (u64::from(active(a)) + 1, u64::from(active(b)) + 1);
        let bias = self.least.active_request_bias;
        if bias == 1.0 {
            wa * ab > wb * aa
        } else {
            wa as f64 / (aa as f64).powf(bias) > wb as f64 / (ab as f64).powf(bias)
        }
    }

    /// Pick again after [`pick`](Self::pick) chose an endpoint `usable` refuses (unhealthy,
    /// ejected): the policy's next choice among the usable ones. Round robin moves on along
    /// its schedule; ring hash and Maglev walk their table on from the key's entry; random
    /// and least request draw among the usable ones. `None` when none is usable. Each
    /// candidate costs one `usable` call; nothing is rebuilt.
    #[cold]
    pub(crate) fn pick_usable(
        &self,
        active: impl Fn(usize) -> u32,
        hash: Option<u64>,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let n = self.weights.len();
        if n == 0 {
            return None;
        }
        // The first usable endpoint from a random place on.
        let from_random = |start: usize| (0..n).map(|k| (start + k) % n).find(|&i| usable(i));
        match (self.policy, &self.table, hash) {
            (LbPolicy::RoundRobin, ..) => {
                for _ in 0..self.schedule.len() {
                    let c = self.cursor.get();
                    self.cursor.set((c + 1) % self.schedule.len());
                    let i = self.schedule[c] as usize;
                    if usable(i) {
                        return Some(i);
                    }
                }
                None
            }
            (LbPolicy::RingHash | LbPolicy::Maglev, Some(t), Some(h)) => t.pick_usable(h, usable),
            (LbPolicy::LeastRequest, ..) => {
                let mut best = from_random(rng::below(n as u32) as usize)?;
                for _ in 1..self.least.choice_count {
                    let c = from_random(rng::below(n as u32) as usize)?;
                    if self.less_loaded(c, best, &active) {
                        best = c;
                    }
                }
                Some(best)
            }
            _ => {
                // Weighted draws first (they keep the weights), then a walk.
                for _ in 0..4 {
                    let i = self.weighted_random();
                    if usable(i) {
                        return Some(i);
                    }
                }
                from_random(rng::below(n as u32) as usize)
            }
        }
    }

    fn weighted_random(&self) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let r = rng::below(total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

/// nginx's smooth weighted round robin, unrolled into one period of the schedule.
fn smooth_schedule(weights: &[u32]) -> Vec<u32> {
    let mut weights = weights.to_vec();
    let mut total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    while total as usize > MAX_SCHEDULE {
        for w in &mut weights {
            *w = (*w / 2).max(1);
        }
        total = weights.iter().map(|&w| u64::from(w)).sum();
    }
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            current[i] += i64::from(w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total as i64;
        out.push(best as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(weights: &[u32]) -> Vec<Endpoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Endpoint {
                address: format!("127.0.0.1:{}", 1000 + i).parse().unwrap(),
                weight: w,
            })
            .collect()
    }

    #[test]
    fn smooth_schedule_interleaves_by_weight() {
        assert_eq!(smooth_schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[1, 1]), vec![0, 1]);
    }

    #[test]
    fn round_robin_honours_weights_exactly_per_period() {
        let b = Balancer::new(LbPolicy::RoundRobin, &eps(&[3, 1]), None);
        let mut counts = [0; 2];
        for _ in 0..400 {
            counts[b.pick(|_| 0, None).unwrap()] += 1;
        }
        assert_eq!(counts, [300, 100]);
    }

    #[test]
    fn random_is_weighted() {
        let b = Balancer::new(LbPolicy::Random, &eps(&[1, 9]), None);
        let mut counts = [0; 2];
        for _ in 0..20_000 {
            counts[b.pick(|_| 0, None).unwrap()] += 1;
        }
        assert!((16_000..20_000).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn least_request_avoids_busy_endpoint() {
        let b = Balancer::new(LbPolicy::LeastRequest, &eps(&[1, 1, 1]), None);
        let mut counts = [0; 3];
        for _ in 0..3_000 {
            counts[b.pick(|i| if i == 0 { 100 } else { 0 }, None).unwrap()] += 1;
        }
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1] > 1000 && counts[2] > 1000, "{counts:?}");
    }

    /// A bias of 0 ignores the load (weights alone decide); more draws find the idle one
    /// more often.
    #[test]
    fn least_request_bias_and_choice_count() {
        let busy = |i: usize| if i == 0 { 0 } else { 100 };
        let count_idle = |least: LeastRequest| {
            let b = Balancer::new(LbPolicy::LeastRequest, &eps(&[1, 1, 1, 1]), None)
                .with_least_request(least);
            (0..4_000).filter(|_| b.pick(busy, None) == Some(0)).count()
        };
        let two = count_idle(LeastRequest::default());
        // Two distinct draws of four include the idle one half the time.
        assert!((1_700..2_300).contains(&two), "{two}");
        let five = count_idle(LeastRequest {
            choice_count: 5,
            active_request_bias: 1.0,
        });
        assert!(five > 3_000, "{five}");
        let blind = count_idle(LeastRequest {
            choice_count: 2,
            active_request_bias: 0.0,
        });
        // Ties go to the first draw: a uniform pick, a quarter to the idle one.
        assert!((700..1_300).contains(&blind), "{blind}");
        let soft = count_idle(LeastRequest {
            choice_count: 2,
            active_request_bias: 0.5,
        });
        assert!((1_700..2_300).contains(&soft), "still load-aware: {soft}");
    }

    #[test]
    fn every_policy_skips_unusable_endpoints() {
        let e = eps(&[1, 2, 1]);
        for policy in [
            LbPolicy::RoundRobin,
            LbPolicy::LeastRequest,
            LbPolicy::Random,
            LbPolicy::RingHash,
            LbPolicy::Maglev,
        ] {
            let table = Table::build(policy, &e).map(Arc::new);
            let b = Balancer::new(policy, &e, table);
            let mut counts = [0; 3];
            for k in 0..3_000u64 {
                let h = Some(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let i = b.pick_usable(|_| 0, h, |i| i != 1).unwrap();
                counts[i] += 1;
            }
            assert_eq!(counts[1], 0, "{policy:?} {counts:?}");
            assert!(counts[0] > 500 && counts[2] > 500, "{policy:?} {counts:?}");
            assert_eq!(b.pick_usable(|_| 0, Some(7), |_| false), None);
        }
    }

    /// A key whose endpoint is unusable goes to the same stand-in every time; keys of the
    /// usable endpoints stay where they were.
    #[test]
    fn hash_tables_walk_to_a_stable_stand_in() {
        let e = eps(&[1, 1, 1, 1]);
        for policy in [LbPolicy::RingHash, LbPolicy::Maglev] {
            let t = Arc::new(Table::build(policy, &e).unwrap());
            let b = Balancer::new(policy, &e, Some(Arc::clone(&t)));
            for k in 0..500u64 {
                let h = k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let first = t.pick(h);
                let again = b.pick_usable(|_| 0, Some(h), |i| i != 2).unwrap();
                if first != 2 {
                    assert_eq!(again, first);
                } else {
                    assert_eq!(b.pick_usable(|_| 0, Some(h), |i| i != 2), Some(again));
                }
            }
        }
    }

    #[test]
    fn single_and_empty() {
        assert_eq!(
            Balancer::new(LbPolicy::Random, &eps(&[1]), None).pick(|_| 0, None),
            Some(0)
        );
        assert_eq!(
            Balancer::new(LbPolicy::RoundRobin, &[], None).pick(|_| 0, None),
            None
        );
    }
}
