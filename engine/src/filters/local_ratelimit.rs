//! `local_ratelimit`: Envoy's local rate limit filter. Each request takes a token from a
//! token bucket; a request that finds the bucket empty is answered 429 `local_rate_limited`
//! (a gRPC request: `UNAVAILABLE`, access-log flag `RL`) and never reaches the router.
//!
//! The buckets are process-wide ([`crate::shared_state`], looked up by name for each config
//! snapshot, so a reload keeps their levels): `max_tokens` per `fill_interval` holds for the
//! whole proxy, whatever the number of workers. Which bucket: the route's own, else its
//! virtual host's, else the listener's (`[listeners.virtual_hosts.routes.filters.
//! local_ratelimit]`, `[listeners.virtual_hosts.filters.local_ratelimit]`; `disabled = true`
//! exempts a route). Descriptors add a bucket per value of a request header or per client
//! address, kept in a bounded table ([`crate::shared_state::KeyedBuckets`]); a request
//! takes a token from each descriptor bucket it has a value for, then from the route's bucket,
//! and is limited by the first that is empty.
//!
//! `filter_enabled` and `filter_enforced` are percentages (default 100, unlike Envoy's 0):
//! a request not enabled is not looked at; one over the limit and not enforced is counted
//! and let through. Stats (`http.<listener>.http_local_rate_limit.{enabled,enforced,
//! rate_limited,ok}`) are counted in the log phase. With `enable_x_ratelimit_headers`, the
//! response carries `x-ratelimit-limit`, `-remaining` and `-reset` of the most constrained
//! bucket the request used.

use std::net::IpAddr;
use std::time::Instant;

use protocols::http::RequestHead;

use super::fault::hit;
use super::{AnswerKind, Done, FilterState, Flow, LocalAnswer};
use crate::config::route::RateLimitOverride;
use crate::config::{BucketParams, DescriptorKey, LocalRateLimit};
use crate::router::Route;
use crate::shared::HttpRateLimits;
use crate::shared_state::TokenBucket;
use crate::stats::HttpStats;

/// The answer over the limit (Envoy's body).
pub(crate) const RATE_LIMITED: LocalAnswer<'static> = LocalAnswer {
    status: 429,
    body: b"local_rate_limited",
    kind: AnswerKind::RateLimited,
};

/// What the filter did with one request, for its log phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The filter looked at the request (`filter_enabled`).
    pub(crate) enabled: bool,
    /// A bucket was empty.
    pub(crate) limited: bool,
    /// ... and the request was refused (`filter_enforced`).
    pub(crate) enforced: bool,
}

/// `x-ratelimit-*` values of one response (draft 03 of the IETF RateLimit fields, as Envoy
/// sends them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitHeaders {
    /// `x-ratelimit-limit`: the bucket's `max_tokens`.
    pub(crate) limit: u32,
    /// `x-ratelimit-remaining`: tokens left (at most `limit`).
    pub(crate) remaining: u32,
    /// `x-ratelimit-reset`: seconds until the bucket is full again (rounded up).
    pub(crate) reset: u32,
}

impl RateLimitHeaders {
    pub(crate) const NAMES: [&'static [u8]; 3] = [
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
    ];

    fn of(bucket: &TokenBucket, params: &BucketParams, now: Instant) -> Self {
        Self {
            limit: params.max_tokens,
            remaining: u32::try_from(bucket.available(now)).unwrap_or(u32::MAX),
            reset: Self::reset_secs(bucket.until_full(now)),
        }
    }

    /// `x-ratelimit-reset` for a limit that resets in `until`: whole seconds, rounded up.
    pub(crate) fn reset_secs(until: std::time::Duration) -> u32 {
        let reset = until.as_secs() + u64::from(until.subsec_nanos() > 0);
        u32::try_from(reset).unwrap_or(u32::MAX)
    }

    /// Each field as (name, decimal value), the value written into `buf`.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        let mut buf = itoa::Buffer::new();
        f(Self::NAMES[0], buf.format(self.limit).as_bytes());
        f(Self::NAMES[1], buf.format(self.remaining).as_bytes());
        f(Self::NAMES[2], buf.format(self.reset).as_bytes());
    }
}

/// The client address as descriptor bytes (4 or 16).
fn ip_bytes(ip: IpAddr, buf: &mut [u8; 16]) -> &[u8] {
    match ip {
        IpAddr::V4(a) => {
            buf[..4].copy_from_slice(&a.octets());
            &buf[..4]
        }
        IpAddr::V6(a) => {
            *buf = a.octets();
            &buf[..]
        }
    }
}

pub(super) fn decode_headers(
    cfg: &LocalRateLimit,
    limits: Option<&HttpRateLimits>,
    route: Option<&Route>,
    req: &RequestHead,
    client: IpAddr,
    st: &mut FilterState,
) -> Flow<'static> {
    let Some(limits) = limits else {
        return Flow::Continue;
    };
    let (slot, params) = match route.and_then(|r| r.filters.local_ratelimit.as_ref()) {
        Some(RateLimitOverride::Disabled) => return Flow::Continue,
        Some(RateLimitOverride::Bucket {
            slot, token_bucket, ..
        }) => (*slot, token_bucket),
        None => (0, &cfg.token_bucket),
    };
    if st.ratelimit.enabled || !hit(cfg.filter_enabled) {
        return Flow::Continue;
    }
    st.ratelimit.enabled = true;
    let now = Instant::now();
    // The most constrained bucket the request used: the one that refused it, else the one
    // with the fewest tokens left.
    let mut shown: Option<(&TokenBucket, &BucketParams)> = None;
    let mut limited = false;
    let mut ip = [0u8; 16];
    for (d, table) in cfg.descriptors.iter().zip(&limits.descriptors) {
        let value = match &d.key {
            DescriptorKey::Header(name) => req.header(name),
            DescriptorKey::RemoteAddress => Some(ip_bytes(client, &mut ip)),
        };
        let Some(value) = value else { continue };
        let bucket = table.bucket(value, now);
        let fewer =
            |b: &TokenBucket| shown.is_none_or(|(s, _)| b.available(now) < s.available(now));
        if !bucket.try_take(now) {
            shown = Some((bucket, &d.token_bucket));
            limited = true;
            break;
        }
        if cfg.x_ratelimit_headers && fewer(bucket) {
            shown = Some((bucket, &d.token_bucket));
        }
    }
    if !limited {
        let bucket = &limits.buckets[slot.min(limits.buckets.len() - 1)];
        if !bucket.try_take(now) {
            limited = true;
            shown = Some((bucket, params));
        } else if cfg.x_ratelimit_headers
            && shown.is_none_or(|(s, _)| bucket.available(now) < s.available(now))
        {
            shown = Some((bucket, params));
        }
    }
    if cfg.x_ratelimit_headers {
        st.ratelimit_headers = shown.map(|(b, p)| RateLimitHeaders::of(b, p, now));
    }
    if !limited {
        return Flow::Continue;
    }
    st.ratelimit.limited = true;
    if !hit(cfg.filter_enforced) {
        return Flow::Continue;
    }
    st.ratelimit.enforced = true;
    Flow::Respond(RATE_LIMITED)
}

/// The log phase: count what the filter did with this request.
pub(super) fn log(_done: &Done, stats: &HttpStats, st: &FilterState) {
    let o = st.ratelimit;
    if !o.enabled {
        return;
    }
    stats.http_local_rate_limit_enabled.inc();
    if o.limited {
        stats.http_local_rate_limit_rate_limited.inc();
    } else {
        stats.http_local_rate_limit_ok.inc();
    }
    if o.enforced {
        stats.http_local_rate_limit_enforced.inc();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::RateLimitDescriptor;
    use crate::shared_state::KeyedBuckets;

    fn params(max: u32) -> BucketParams {
        BucketParams {
            max_tokens: max,
            tokens_per_fill: 1,
            fill_interval: Duration::from_secs(3600),
        }
    }

    fn cfg(descriptors: Vec<RateLimitDescriptor>) -> LocalRateLimit {
        LocalRateLimit {
            token_bucket: params(3),
            filter_enabled: 100,
            filter_enforced: 100,
            x_ratelimit_headers: true,
            descriptors,
            max_descriptors: 16,
        }
    }

    fn limits(cfg: &LocalRateLimit) -> HttpRateLimits {
        let now = Instant::now();
        HttpRateLimits {
            buckets: vec![Arc::new(TokenBucket::new(cfg.token_bucket, now))],
            descriptors: cfg
                .descriptors
                .iter()
                .map(|d| Arc::new(KeyedBuckets::new(16, d.token_bucket, now)))
                .collect(),
        }
    }

    fn request(head: &'static [u8]) -> RequestHead {
        let mut b = bytes::BytesMut::from(head);
        protocols::http1::parse_request(&mut b, &Default::default())
            .unwrap()
            .unwrap()
    }

    fn run(
        cfg: &LocalRateLimit,
        l: &HttpRateLimits,
        req: &RequestHead,
    ) -> (Flow<'static>, FilterState) {
        let mut st = FilterState::default();
        let flow = decode_headers(
            cfg,
            Some(l),
            None,
            req,
            IpAddr::from([10, 0, 0, 1]),
            &mut st,
        );
        (flow, st)
    }

    #[test]
    fn the_bucket_admits_its_burst_then_answers_429_with_headers() {
        let c = cfg(Vec::new());
        let l = limits(&c);
        let req = request(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        for left in [2, 1, 0] {
            let (flow, st) = run(&c, &l, &req);
            assert_eq!(flow, Flow::Continue);
            assert!(st.ratelimit.enabled && !st.ratelimit.limited);
            let h = st.ratelimit_headers.unwrap();
            assert_eq!((h.limit, h.remaining), (3, left));
        }
        let (flow, st) = run(&c, &l, &req);
        assert_eq!(flow, Flow::Respond(RATE_LIMITED));
        assert!(st.ratelimit.limited && st.ratelimit.enforced);
        let h = st.ratelimit_headers.unwrap();
        assert_eq!(h.remaining, 0);
        assert!(h.reset > 0 && h.reset <= 3 * 3600, "{h:?}");
    }

    #[test]
    fn not_enforced_counts_but_lets_through_and_not_enabled_skips() {
        let mut c = cfg(Vec::new());
        c.filter_enforced = 0;
        let l = limits(&c);
        let req = request(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        for _ in 0..3 {
            run(&c, &l, &req);
        }
        let (flow, st) = run(&c, &l, &req);
        assert_eq!(flow, Flow::Continue);
        assert!(st.ratelimit.limited && !st.ratelimit.enforced);
        c.filter_enabled = 0;
        let (flow, st) = run(&c, &l, &req);
        assert_eq!(flow, Flow::Continue);
        assert_eq!(st.ratelimit, Outcome::default());
    }

    #[test]
    fn a_header_descriptor_limits_each_value_apart() {
        let c = LocalRateLimit {
            token_bucket: params(100),
            ..cfg(vec![RateLimitDescriptor {
                key: DescriptorKey::Header(bytes::Bytes::from_static(b"x-user")),
                token_bucket: params(1),
            }])
        };
        let l = limits(&c);
        let alice = request(b"GET / HTTP/1.1\r\nhost: a\r\nx-user: alice\r\n\r\n");
        let bob = request(b"GET / HTTP/1.1\r\nhost: a\r\nx-user: bob\r\n\r\n");
        let anon = request(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        assert_eq!(run(&c, &l, &alice).0, Flow::Continue);
        let (flow, st) = run(&c, &l, &alice);
        assert_eq!(flow, Flow::Respond(RATE_LIMITED));
        assert_eq!(
            st.ratelimit_headers.unwrap().limit,
            1,
            "the descriptor's bucket"
        );
        assert_eq!(run(&c, &l, &bob).0, Flow::Continue);
        assert_eq!(
            run(&c, &l, &anon).0,
            Flow::Continue,
            "no value: listener's only"
        );
        // The listener's bucket paid for alice's first, bob's and anon's.
        assert_eq!(l.buckets[0].available(Instant::now()), 97);
    }
}
