//! Per-snapshot handles that every layer may hold: the stats slots and access log of a
//! listener, the stats of a cluster and its endpoints. Resolved by name once, when the control
//! side builds a config snapshot ([`crate::server`]); workers only read them.
//!
//! Also the snapshot itself ([`Snapshot`]), the state the workers share with the control side
//! ([`Shared`]: the published snapshot, the lifecycle flags and stats in [`AdminState`], the
//! cross-core [`Registry`]).
//!
//! Also each cluster's endpoint health ([`ClusterHealth`]: flags, panic threshold, outlier
//! detection).
//!
//! A leaf: imports `config`, `stats`, `access_log`, `rt` (its rng) and `shared_state` only, so workers,
//! clusters, upstreams and connection managers can hold these without importing the server
//! that builds them or the admin API that reads them.

mod health;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::access_log::AccessLog;
use crate::config::route::RateLimitOverride;
use crate::config::{
    Config, HttpFilterConfig, ListenerConfig, ListenerProtocol, NetworkFilterConfig, RetryBudget,
};
use crate::shared_state::{KeyedBuckets, Occupancy, Registry, TokenBucket};
use crate::stats::{
    BreakerSource, CircuitBreakerStats, ClusterScope, EndpointStats, HttpScope, ListenerStats,
    LocalRateLimitStats, PerCore, Store, TcpStats,
};
pub(crate) use health::{ClusterHealth, Outcome, endpoint_health};

/// Stats handles and process-wide buckets of one listener, resolved by name when the
/// snapshot is built.
pub(crate) struct ListenerShared {
    pub(crate) stats: Arc<PerCore<ListenerStats>>,
    pub(crate) http: Arc<HttpScope>,
    /// `tcp.<name>.*`, for TCP proxy listeners only.
    pub(crate) tcp: Option<Arc<PerCore<TcpStats>>>,
    pub(crate) access_log: Option<Arc<AccessLog>>,
    /// The buckets of the listener's `local_ratelimit` HTTP filter, if it has one.
    pub(crate) http_ratelimit: Option<HttpRateLimits>,
    /// Per network filter, in chain order: the `local_ratelimit` ones' bucket and stats.
    pub(crate) network_ratelimits: Vec<Option<NetworkRateLimit>>,
}

/// The process-wide buckets of a listener's `local_ratelimit` HTTP filter.
pub(crate) struct HttpRateLimits {
    /// Index 0: the listener's; then one per virtual host or route with its own, by its
    /// [`RateLimitOverride::Bucket`] `slot`.
    pub(crate) buckets: Vec<Arc<TokenBucket>>,
    /// One table per descriptor, in configuration order.
    pub(crate) descriptors: Vec<Arc<KeyedBuckets>>,
}

/// A tcp listener's `local_ratelimit` network filter: its bucket and stats.
pub(crate) struct NetworkRateLimit {
    pub(crate) bucket: Arc<TokenBucket>,
    pub(crate) stats: Arc<PerCore<LocalRateLimitStats>>,
}

/// Registry kinds of the rate limit buckets.
const HTTP_BUCKET: &str = "http.local_ratelimit";
const HTTP_DESCRIPTOR: &str = "http.local_ratelimit.descriptor";
const NETWORK_BUCKET: &str = "network.local_ratelimit";

/// The buckets of `l`'s rate limit filters, looked up by name in `state`: a reload finds the
/// same buckets (levels kept, new rates applied).
fn rate_limits(
    l: &ListenerConfig,
    stats: &Store,
    state: &Registry,
) -> (Option<HttpRateLimits>, Vec<Option<NetworkRateLimit>>) {
    let now = Instant::now();
    let http = l.http_filters.iter().find_map(|f| match f {
        HttpFilterConfig::LocalRateLimit(rl) => Some(rl),
        _ => None,
    });
    let http = http.map(|rl| {
        let mut buckets = vec![state.token_bucket(HTTP_BUCKET, &l.name, rl.token_bucket, now)];
        let overrides = l.routes.virtual_hosts.iter().flat_map(|v| &v.routes);
        for r in overrides {
            if let Some(RateLimitOverride::Bucket {
                slot,
                name,
                token_bucket,
            }) = &r.filters.local_ratelimit
            {
                if buckets.len() <= *slot {
                    let listener = Arc::clone(&buckets[0]);
                    buckets.resize_with(*slot + 1, || Arc::clone(&listener));
                }
                let name = format!("{}/{name}", l.name);
                buckets[*slot] = state.token_bucket(HTTP_BUCKET, &name, *token_bucket, now);
            }
        }
        let descriptors = rl
            .descriptors
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let name = format!("{}/{i}", l.name);
                state.keyed_buckets(
                    HTTP_DESCRIPTOR,
                    &name,
                    rl.max_descriptors,
                    d.token_bucket,
                    now,
                )
            })
            .collect();
        HttpRateLimits {
            buckets,
            descriptors,
        }
    });
    let network = l
        .network_filters
        .iter()
        .enumerate()
        .map(|(i, f)| match f {
            NetworkFilterConfig::LocalRateLimit {
                token_bucket,
                stat_prefix,
            } => Some(NetworkRateLimit {
                bucket: state.token_bucket(
                    NETWORK_BUCKET,
                    &format!("{}/{i}", l.name),
                    *token_bucket,
                    now,
                ),
                stats: stats.local_rate_limit(stat_prefix),
            }),
            _ => None,
        })
        .collect();
    (http, network)
}

/// Stats handles of one cluster and its endpoints, and its circuit breakers: process-wide
/// occupancies from the [`Registry`], looked up by the cluster's name (and an endpoint's
/// address) so what is held carries over a reload. Limits come from the cluster's
/// `circuit_breakers` ([`crate::config::CircuitBreakers`]).
pub(crate) struct ClusterShared {
    pub(crate) scope: Arc<ClusterScope>,
    pub(crate) endpoints: Vec<Arc<PerCore<EndpointStats>>>,
    /// `max_connections`: upstream connections open on all workers (kind `cluster.cx`).
    pub(crate) connections: Arc<Occupancy>,
    /// `max_pending_requests`: requests waiting for a connection (kind `cluster.pending`).
    pub(crate) pending: Arc<Occupancy>,
    /// `max_requests`: requests in flight upstream (kind `cluster.rq`).
    pub(crate) requests: Arc<Occupancy>,
    /// `max_retries`: retries in flight (kind `cluster.retries`). With a retry budget the
    /// limit is computed per retry ([`Occupancy::try_acquire_within`]).
    pub(crate) retries: Arc<Occupancy>,
    /// `per_host_max_connections`: connections open to each endpoint, by endpoint index
    /// (kind `cluster.host_cx`, named `<cluster>/<address>`).
    pub(crate) host_connections: Vec<Arc<Occupancy>>,
    /// Replaces `max_retries` as the limit of `retries` when set.
    pub(crate) retry_budget: Option<RetryBudget>,
    /// Endpoint health flags (by endpoint index), panic threshold, outlier detection.
    pub(crate) health: ClusterHealth,
}

impl ClusterShared {
    /// The retries allowed in flight now: the retry budget's share of the requests in
    /// flight and pending, or `max_retries`. (`requests` counts both: a request holds its
    /// slot from the start of its attempt, waiting in the pending queue included.)
    pub(crate) fn retry_limit(&self) -> u64 {
        match &self.retry_budget {
            Some(b) => b.max_retries(self.requests.current()),
            None => self.retries.limit().unwrap_or(u64::MAX),
        }
    }
}

/// The circuit-breaker gauges, computed from the occupancies when the stats are read.
impl BreakerSource for ClusterShared {
    fn read(&self, out: &CircuitBreakerStats) {
        let remaining = |o: &Occupancy| i64::try_from(o.remaining()).unwrap_or(i64::MAX);
        let open = |o: &Occupancy| i64::from(o.limit().is_some() && o.remaining() == 0);
        out.cx_open.set(open(&self.connections));
        out.cx_pool_open.set(0);
        out.rq_pending_open.set(open(&self.pending));
        out.rq_open.set(open(&self.requests));
        let (limit, held) = (self.retry_limit(), self.retries.current());
        out.rq_retry_open.set(i64::from(held >= limit));
        out.remaining_cx.set(remaining(&self.connections));
        out.remaining_pending.set(remaining(&self.pending));
        out.remaining_rq.set(remaining(&self.requests));
        let left = limit.saturating_sub(held);
        out.remaining_retries
            .set(i64::try_from(left).unwrap_or(i64::MAX));
    }
}

/// Everything a worker needs from one configuration, immutable once published.
pub(crate) struct Snapshot {
    pub(crate) config: Arc<Config>,
    pub(crate) listeners: Vec<Arc<ListenerShared>>,
    pub(crate) clusters: Vec<Arc<ClusterShared>>,
}

impl Snapshot {
    /// Resolves every handle of `config` by name: stats in `stats`, cross-core state in
    /// `state` (whose limits take the new config's values).
    pub(crate) fn build(
        config: Arc<Config>,
        stats: &Store,
        state: &Registry,
    ) -> std::io::Result<Self> {
        // What can fail first: a build that fails must not have touched the buckets (their
        // lookup applies the new rates to the live ones).
        let access_logs = config
            .listeners
            .iter()
            .map(|l| l.access_log.as_ref().map(AccessLog::open).transpose())
            .collect::<std::io::Result<Vec<_>>>()?;
        let listeners = config
            .listeners
            .iter()
            .zip(access_logs)
            .map(|(l, access_log)| {
                let (http_ratelimit, network_ratelimits) = rate_limits(l, stats, state);
                Arc::new(ListenerShared {
                    stats: stats.listener(&l.name),
                    http: stats.http(&l.name),
                    tcp: (l.protocol == ListenerProtocol::Tcp).then(|| stats.tcp(&l.name)),
                    access_log,
                    http_ratelimit,
                    network_ratelimits,
                })
            })
            .collect();
        let clusters = config
            .clusters
            .iter()
            .map(|c| {
                let scope = stats.cluster(&c.name);
                let n = c.endpoints.len() as i64;
                // Set on one slot only: readers sum the slots.
                scope.stats.core(0).membership_total.set(n);
                let health = ClusterHealth::new(c, state);
                // Kept current by the control thread's health tick.
                let core0 = scope.stats.core(0);
                core0.membership_healthy.set(health.healthy_count() as i64);
                core0
                    .outlier_ejections_active
                    .set(health.ejected_count() as i64);
                let cb = &c.circuit_breakers;
                let shared = Arc::new(ClusterShared {
                    scope,
                    endpoints: c
                        .endpoints
                        .iter()
                        .map(|e| stats.endpoint(&c.name, e.address))
                        .collect(),
                    connections: state.occupancy("cluster.cx", &c.name, Some(cb.max_connections)),
                    pending: state.occupancy(
                        "cluster.pending",
                        &c.name,
                        Some(cb.max_pending_requests),
                    ),
                    requests: state.occupancy("cluster.rq", &c.name, Some(cb.max_requests)),
                    retries: state.occupancy("cluster.retries", &c.name, Some(cb.max_retries)),
                    host_connections: c
                        .endpoints
                        .iter()
                        .map(|e| {
                            let name = format!("{}/{}", c.name, e.address);
                            state.occupancy("cluster.host_cx", &name, cb.per_host_max_connections)
                        })
                        .collect(),
                    retry_budget: cb.retry_budget,
                    health,
                });
                // The newest snapshot's cluster answers for the gauges.
                let source: std::sync::Weak<dyn BreakerSource> = Arc::downgrade(&shared) as _;
                shared.scope.set_breakers(source);
                shared
            })
            .collect();
        Ok(Self {
            config,
            listeners,
            clusters,
        })
    }
}

/// State shared by the workers and the control thread.
pub(crate) struct Shared {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Bumped after each publish; workers compare it to notice a new snapshot cheaply.
    pub(crate) generation: AtomicU64,
    pub(crate) admin: Arc<AdminState>,
    /// Cross-core limits and buckets by name (circuit breakers, rate limits), for the process
    /// lifetime: snapshot builds look their entries up here, so they survive reloads.
    pub(crate) state: Arc<Registry>,
}

impl Shared {
    pub(crate) fn is_draining(&self) -> bool {
        self.admin.draining.load(Ordering::Relaxed)
    }
}

/// What the admin API reads and flips. Shared with the workers and the control thread.
#[derive(Debug)]
pub struct AdminState {
    /// Every stat.
    pub stats: Arc<Store>,
    /// The config snapshot the workers run on.
    pub config: Arc<ArcSwap<Config>>,
    /// Set by `POST /healthcheck/fail`: `/ready` answers 503 so load balancers stop sending.
    pub health_failed: AtomicBool,
    /// Set when draining (SIGTERM): `/ready` answers 503 `DRAINING`.
    pub draining: AtomicBool,
    /// Process start, for uptime.
    pub started: Instant,
    /// The process-wide state (endpoint health flags for `/clusters`).
    pub registry: Arc<Registry>,
}

impl AdminState {
    /// A live (not draining, health check passing) state starting now.
    pub fn new(stats: Arc<Store>, config: Arc<ArcSwap<Config>>) -> Arc<Self> {
        Arc::new(Self {
            stats,
            config,
            health_failed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            started: Instant::now(),
            registry: Registry::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    /// A reload looks the breakers up again by name: the same occupancies (what is held
    /// carries over) with the new config's limits.
    #[test]
    fn breakers_survive_a_rebuild_and_take_new_limits() {
        let text = |n: u64| {
            format!(
                "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n\
                 circuit_breakers = {{ max_connections = {n}, per_host_max_connections = 1 }}\n"
            )
        };
        let (stats, state) = (Store::new(2), Registry::new());
        let one = Arc::new(parse_str(&text(5), "t").unwrap());
        let a = Snapshot::build(one, &stats, &state).unwrap();
        let c = &a.clusters[0];
        let held = c.connections.try_acquire().unwrap();
        assert_eq!(c.connections.limit(), Some(5));
        assert_eq!(c.pending.limit(), Some(1024));
        assert_eq!(c.requests.limit(), Some(1024));
        assert_eq!(c.retries.limit(), Some(3));
        assert_eq!(c.host_connections[0].limit(), Some(1));
        assert!(!Arc::ptr_eq(&c.host_connections[0], &c.host_connections[1]));
        let two = Arc::new(parse_str(&text(7), "t").unwrap());
        let b = Snapshot::build(two, &stats, &state).unwrap();
        let d = &b.clusters[0];
        assert!(Arc::ptr_eq(&c.connections, &d.connections));
        assert_eq!(
            (d.connections.current(), d.connections.limit()),
            (1, Some(7))
        );
        drop(held);
    }

    /// The gauges read the occupancies: open at the limit, remaining = limit - held; a retry
    /// budget's limit follows the requests in flight and pending.
    #[test]
    fn breaker_gauges_are_computed_from_the_occupancies() {
        let text = "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\"]\n\
                    circuit_breakers = { max_requests = 20, max_pending_requests = 1, \
                    retry_budget = { budget_percent = 25.0, min_retry_concurrency = 1 } }\n";
        let (stats, state) = (Store::new(1), Registry::new());
        let snap =
            Snapshot::build(Arc::new(parse_str(text, "t").unwrap()), &stats, &state).unwrap();
        let c = &snap.clusters[0];
        let read = || {
            let out = CircuitBreakerStats::default();
            c.read(&out);
            out
        };
        let g = read();
        assert_eq!((g.rq_open.get(), g.remaining_rq.get()), (0, 20));
        assert_eq!((g.rq_retry_open.get(), g.remaining_retries.get()), (0, 1));
        assert_eq!((g.cx_open.get(), g.remaining_cx.get()), (0, 1024));
        let rq: Vec<_> = (0..8).map(|_| c.requests.try_acquire().unwrap()).collect();
        let pending = c.pending.try_acquire().unwrap();
        let retry = c.retries.try_acquire().unwrap();
        let g = read();
        assert_eq!(g.remaining_rq.get(), 12);
        assert_eq!((g.rq_pending_open.get(), g.remaining_pending.get()), (1, 0));
        // 25 % of the 8 requests (a waiting one holds a request slot too): 2, one held.
        assert_eq!(c.retry_limit(), 2);
        assert_eq!((g.rq_retry_open.get(), g.remaining_retries.get()), (0, 1));
        let retry2 = c.retries.try_acquire_within(c.retry_limit()).unwrap();
        assert!(c.retries.try_acquire_within(c.retry_limit()).is_none());
        assert_eq!(read().rq_retry_open.get(), 1);
        // The scope renders them while the snapshot lives.
        let text = stats.render_text_with(None, &[]);
        assert!(
            text.contains("cluster.c.circuit_breakers.default.remaining_rq: 12"),
            "{text}"
        );
        drop((rq, pending, retry, retry2));
        drop(snap);
        let text = stats.render_text_with(None, &[]);
        assert!(!text.contains("circuit_breakers"), "{text}");
    }
}
