//! The router's retry state for one request: which outcomes of a try its route's
//! [`RetryPolicy`] retries, whether a retry may be made (tries left, the cluster's retry
//! circuit breaker or retry budget), the back-off before it, and the stats of all that.
//!
//! One [`Retry`] lives for the request's whole forwarding, across its tries. A try's outcome
//! reaches it at the two places one can be judged before anything goes downstream: a failure
//! (connect, reset, per-try timeout; [`Retry::on_error`]) and a final response head
//! ([`Retry::on_head`], asked by the relay). Each answers whether the exchange tries again;
//! when it does, the retry is already admitted and counted.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocols::grpc::Code;
use protocols::http2::frame::Reason;

use super::message::RespHead;
use crate::cluster::RetryLimits;
use crate::config::RetryBudget;
use crate::config::route::{RetryOn, RetryPolicy};
use crate::error::{Kind, Phase, ProxyError, Side};
use crate::filters::ResponseInfo;
use crate::rt::rng;
use crate::shared_state::{Occupancy, OccupancyGuard};
use crate::stats::ClusterStats;

/// The retry state of one request; see the module docs.
pub(crate) struct Retry<'p> {
    policy: &'p RetryPolicy,
    stats: &'p ClusterStats,
    /// The cluster's retries in flight across all workers (`max_retries`).
    breaker: &'p Arc<Occupancy>,
    /// With a retry budget: the budget and the requests in flight it is a share of.
    budget: Option<(&'p RetryBudget, &'p Occupancy)>,
    grpc: bool,
    /// Retries left.
    left: Cell<u32>,
    /// Retries made so far.
    made: Cell<u32>,
    /// A retriable outcome found no retry left.
    limit_exceeded: Cell<bool>,
    /// This request's admission in the retry breaker, held while its retry is in flight.
    held: RefCell<Option<OccupancyGuard>>,
}

impl<'p> Retry<'p> {
    pub(crate) fn new(policy: &'p RetryPolicy, limits: RetryLimits<'p>, grpc: bool) -> Self {
        Self {
            policy,
            stats: limits.stats,
            breaker: limits.breaker,
            budget: limits.budget,
            grpc,
            left: Cell::new(policy.num_retries),
            made: Cell::new(0),
            limit_exceeded: Cell::new(false),
            held: RefCell::new(None),
        }
    }

    /// Retries made so far.
    #[cfg(test)]
    fn made(&self) -> u32 {
        self.made.get()
    }

    /// A retriable outcome was left as it was because no retry was left (flag `URX`).
    pub(crate) fn limit_exceeded(&self) -> bool {
        self.limit_exceeded.get()
    }

    /// When the try starting now ends without a response head: its per-try timeout, or the
    /// request's `deadline` if that is earlier.
    pub(crate) fn try_deadline(&self, deadline: Option<Instant>) -> Option<Instant> {
        let Some(per_try) = self.policy.per_try_timeout else {
            return deadline;
        };
        let by_try = Instant::now() + per_try;
        Some(deadline.map_or(by_try, |d| d.min(by_try)))
    }

    /// A try failed with `err` before anything went downstream (`per_try`: it was the per-try
    /// timeout that ended it, not the request's). `true`: try again, admitted and counted.
    pub(crate) fn on_error(&self, err: &ProxyError, per_try: bool) -> bool {
        if per_try && err.kind == Kind::Timeout {
            self.stats.upstream_rq_per_try_timeout.inc();
        }
        self.retries_error(err, per_try) && self.admit()
    }

    /// A final response head arrived; nothing of it went downstream yet. `true`: drop it and
    /// try again, admitted and counted.
    pub(crate) fn on_head(&self, resp: &RespHead) -> bool {
        self.retries_head(resp) && self.admit()
    }

    /// The policy retries this failure.
    fn retries_error(&self, err: &ProxyError, per_try: bool) -> bool {
        let on = self.policy.retry_on;
        if err.side != Side::Upstream || err.phase == Phase::AfterHead {
            return false;
        }
        match err.kind {
            Kind::ConnectFailure | Kind::ConnectTimeout => on.intersects(
                RetryOn::CONNECT_FAILURE
                    | RetryOn::FIVE_XX
                    | RetryOn::GATEWAY_ERROR
                    | RetryOn::RESET,
            ),
            Kind::Reset if err.reset == Some(Reason::REFUSED_STREAM) => on.intersects(
                RetryOn::REFUSED_STREAM
                    | RetryOn::RESET
                    | RetryOn::FIVE_XX
                    | RetryOn::RESET_BEFORE_REQUEST,
            ),
            Kind::Reset if err.phase == Phase::BeforeRequest => {
                on.intersects(RetryOn::RESET_BEFORE_REQUEST | RetryOn::RESET | RetryOn::FIVE_XX)
            }
            Kind::Reset => on.intersects(RetryOn::RESET | RetryOn::FIVE_XX),
            // Only the try's own timeout: the request's is over for every try.
            Kind::Timeout => {
                per_try && on.intersects(RetryOn::RESET | RetryOn::FIVE_XX | RetryOn::GATEWAY_ERROR)
            }
            Kind::Protocol => on.intersects(RetryOn::FIVE_XX | RetryOn::RESET),
            // A body stalled: its response head went downstream already.
            Kind::Idle => false,
            Kind::NoRoute | Kind::NoHealthyUpstream | Kind::Overflow | Kind::UpstreamTls => false,
        }
    }

    /// The policy retries this response.
    fn retries_head(&self, resp: &RespHead) -> bool {
        let on = self.policy.retry_on;
        let status = resp.status();
        let by_status = match status {
            502..=504 if on.intersects(RetryOn::GATEWAY_ERROR) => true,
            500..=599 if on.intersects(RetryOn::FIVE_XX) => true,
            409 if on.intersects(RetryOn::RETRIABLE_4XX) => true,
            _ => {
                on.intersects(RetryOn::RETRIABLE_STATUS_CODES)
                    && self.policy.retriable_status_codes.contains(&status)
            }
        };
        if by_status {
            return true;
        }
        if !self.grpc {
            return false;
        }
        let Some(code) = resp.header(b"grpc-status").and_then(Code::parse) else {
            return false;
        };
        let wanted = match code {
            Code::Cancelled => RetryOn::GRPC_CANCELLED,
            Code::DeadlineExceeded => RetryOn::GRPC_DEADLINE_EXCEEDED,
            Code::Internal => RetryOn::GRPC_INTERNAL,
            Code::ResourceExhausted => RetryOn::GRPC_RESOURCE_EXHAUSTED,
            Code::Unavailable => RetryOn::GRPC_UNAVAILABLE,
            _ => return false,
        };
        on.intersects(wanted)
    }

    /// A retriable outcome: make the retry if one is left and the cluster admits it.
    fn admit(&self) -> bool {
        if self.left.get() == 0 {
            self.limit_exceeded.set(true);
            self.stats.upstream_rq_retry_limit_exceeded.inc();
            return false;
        }
        // The retry this request may already hold a slot for is over.
        drop(self.held.borrow_mut().take());
        let guard = match self.budget {
            Some((budget, in_flight)) => {
                let limit = budget.max_retries(in_flight.current());
                self.breaker.try_acquire_within(limit)
            }
            None => self.breaker.try_acquire(),
        };
        let Some(guard) = guard else {
            self.stats.upstream_rq_retry_overflow.inc();
            return false;
        };
        *self.held.borrow_mut() = Some(guard);
        self.left.set(self.left.get() - 1);
        self.made.set(self.made.get() + 1);
        self.stats.upstream_rq_retry.inc();
        true
    }

    /// The wait before the retry just admitted: a random time up to the base interval,
    /// doubled for each retry before it, at most the policy's maximum (full jitter).
    pub(crate) fn back_off(&self) -> Duration {
        self.stats.upstream_rq_retry_backoff_exponential.inc();
        let exp = self.made.get().saturating_sub(1).min(16);
        let ceiling = self
            .policy
            .base_interval
            .saturating_mul(1 << exp)
            .min(self.policy.max_interval);
        let ceiling_ns = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(rng::next_u64() % ceiling_ns)
    }

    /// The request is done: count a retried one that ended well (`ok`).
    pub(crate) fn finish(&self, ok: bool) {
        if ok && self.made.get() > 0 {
            self.stats.upstream_rq_retry_success.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::PerCore;

    fn policy(on: &[&str]) -> RetryPolicy {
        let mut retry_on = RetryOn::default();
        for name in on {
            retry_on |= RetryOn::NAMES.iter().find(|(n, _)| n == name).unwrap().1;
        }
        RetryPolicy {
            retry_on,
            retriable_status_codes: vec![418],
            num_retries: 2,
            per_try_timeout: None,
            base_interval: Duration::from_millis(25),
            max_interval: Duration::from_millis(250),
            per_request_buffer_limit_bytes: 1024,
        }
    }

    fn head(status: u16, grpc: Option<&str>) -> RespHead {
        let mut text = format!("HTTP/1.1 {status} x\r\ncontent-length: 0\r\n");
        if let Some(g) = grpc {
            text.push_str(&format!("grpc-status: {g}\r\n"));
        }
        text.push_str("\r\n");
        let mut buf = bytes::BytesMut::from(text.as_bytes());
        let mut p = protocols::http1::ResponseParser::new();
        let h = p
            .parse(
                &mut buf,
                protocols::http1::MethodKind::Other,
                &Default::default(),
            )
            .unwrap()
            .unwrap();
        RespHead::H1(h)
    }

    fn with<R>(p: &RetryPolicy, limit: u64, grpc: bool, f: impl FnOnce(&Retry<'_>) -> R) -> R {
        let stats = PerCore::<ClusterStats>::new(1);
        let breaker = Arc::new(Occupancy::new(Some(limit)));
        let limits = RetryLimits {
            stats: stats.core(0),
            breaker: &breaker,
            budget: None,
        };
        f(&Retry::new(p, limits, grpc))
    }

    #[test]
    fn conditions_match_envoys() {
        let up = |kind, phase| ProxyError::upstream(kind, phase);
        let refused = up(Kind::ConnectFailure, Phase::BeforeRequest);
        let reset = up(Kind::Reset, Phase::BeforeResponse);
        let cut = up(Kind::Reset, Phase::AfterHead);
        let timeout = up(Kind::Timeout, Phase::BeforeResponse);
        let p = policy(&["connect-failure"]);
        with(&p, 10, false, |r| {
            assert!(r.retries_error(&refused, false));
            assert!(!r.retries_error(&reset, false));
            assert!(!r.retries_head(&head(503, None)));
        });
        let p = policy(&["5xx"]);
        with(&p, 10, false, |r| {
            assert!(r.retries_error(&refused, false));
            assert!(r.retries_error(&reset, false));
            assert!(!r.retries_error(&cut, false), "the head went downstream");
            assert!(r.retries_error(&timeout, true), "a per-try timeout");
            assert!(!r.retries_error(&timeout, false), "the route's timeout");
            assert!(r.retries_head(&head(500, None)));
            assert!(!r.retries_head(&head(409, None)));
            let gone = ProxyError::downstream(Kind::Reset, Phase::BeforeResponse);
            assert!(!r.retries_error(&gone, false), "the client left");
        });
        let p = policy(&["gateway-error"]);
        with(&p, 10, false, |r| {
            assert!(r.retries_head(&head(502, None)));
            assert!(r.retries_head(&head(504, None)));
            assert!(!r.retries_head(&head(500, None)));
            assert!(!r.retries_error(&reset, false));
        });
        let p = policy(&["retriable-4xx", "retriable-status-codes"]);
        with(&p, 10, false, |r| {
            assert!(r.retries_head(&head(409, None)));
            assert!(r.retries_head(&head(418, None)));
            assert!(!r.retries_head(&head(404, None)));
        });
        let p = policy(&["refused-stream"]);
        with(&p, 10, false, |r| {
            let mut refused_stream = reset;
            refused_stream.reset = Some(Reason::REFUSED_STREAM);
            assert!(r.retries_error(&refused_stream, false));
            assert!(!r.retries_error(&reset, false));
        });
        let p = policy(&["unavailable", "cancelled"]);
        with(&p, 10, true, |r| {
            assert!(r.retries_head(&head(200, Some("14"))));
            assert!(r.retries_head(&head(200, Some("1"))));
            assert!(!r.retries_head(&head(200, Some("13"))));
            assert!(!r.retries_head(&head(200, None)));
        });
        with(&p, 10, false, |r| {
            assert!(!r.retries_head(&head(200, Some("14"))), "not a gRPC call");
        });
    }

    #[test]
    fn retries_are_bounded_by_the_policy_and_the_breaker() {
        let p = policy(&["5xx"]);
        with(&p, 10, false, |r| {
            assert!(r.on_head(&head(503, None)));
            assert!(r.on_head(&head(503, None)));
            assert!(!r.on_head(&head(503, None)), "num_retries = 2");
            assert!(r.limit_exceeded());
            assert_eq!(r.made(), 2);
            assert_eq!(r.stats.upstream_rq_retry.get(), 2);
            assert_eq!(r.stats.upstream_rq_retry_limit_exceeded.get(), 1);
        });
        with(&p, 0, false, |r| {
            assert!(!r.on_head(&head(503, None)), "max_retries = 0");
            assert!(!r.limit_exceeded());
            assert_eq!(r.stats.upstream_rq_retry_overflow.get(), 1);
        });
    }

    #[test]
    fn a_retry_holds_one_breaker_slot_until_the_request_is_done() {
        let p = policy(&["5xx"]);
        let stats = PerCore::<ClusterStats>::new(1);
        let breaker = Arc::new(Occupancy::new(Some(1)));
        let limits = || RetryLimits {
            stats: stats.core(0),
            breaker: &breaker,
            budget: None,
        };
        let a = Retry::new(&p, limits(), false);
        let b = Retry::new(&p, limits(), false);
        assert!(a.on_head(&head(503, None)));
        assert!(a.on_head(&head(503, None)), "its own slot is reused");
        assert_eq!(breaker.current(), 1);
        assert!(!b.on_head(&head(503, None)), "the other request overflows");
        drop(a);
        assert_eq!(breaker.current(), 0);
        assert!(b.on_head(&head(503, None)));
    }

    #[test]
    fn a_retry_budget_is_a_share_of_the_requests_in_flight() {
        let p = policy(&["5xx"]);
        let stats = PerCore::<ClusterStats>::new(1);
        let breaker = Arc::new(Occupancy::new(Some(3)));
        let in_flight = Arc::new(Occupancy::new(None));
        let held: Vec<_> = (0..20).map(|_| in_flight.try_acquire().unwrap()).collect();
        let budget = RetryBudget {
            budget_percent: 20.0,
            min_retry_concurrency: 2,
        };
        let retries: Vec<_> = (0..5)
            .map(|_| {
                let limits = RetryLimits {
                    stats: stats.core(0),
                    breaker: &breaker,
                    budget: Some((&budget, &*in_flight)),
                };
                Retry::new(&p, limits, false)
            })
            .collect();
        let admitted = retries
            .iter()
            .filter(|r| r.on_head(&head(503, None)))
            .count();
        assert_eq!(admitted, 4, "20 % of 20 in flight, above the floor of 2");
        drop(held);
    }

    #[test]
    fn back_off_is_jittered_under_an_exponential_ceiling() {
        let p = policy(&["5xx"]);
        with(&p, 10, false, |r| {
            assert!(r.on_head(&head(503, None)));
            for _ in 0..100 {
                assert!(r.back_off() < Duration::from_millis(25));
            }
            assert!(r.on_head(&head(503, None)));
            let waits: Vec<_> = (0..200).map(|_| r.back_off()).collect();
            assert!(waits.iter().all(|w| *w < Duration::from_millis(50)));
            assert!(
                waits.iter().any(|w| *w >= Duration::from_millis(25)),
                "the ceiling doubled"
            );
        });
    }
}
