//! The [`Store`]: get-or-create stat scopes by name, so stats survive config reloads.
//! The mutex here is taken only when a config is built and by the admin API, never on the
//! request path (workers keep the `Arc`s they were handed).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{
    CircuitBreakerStats, ClusterStats, EndpointStats, Histogram, HttpStats, ListenerStats,
    LocalRateLimitStats, PerCore, ServerStats, TcpStats,
};

/// `http.<name>.*`: the HTTP connection manager stats of one listener.
#[derive(Debug)]
pub struct HttpScope {
    /// Counters and gauges.
    pub stats: PerCore<HttpStats>,
    /// `http.<name>.downstream_rq_time`: first request byte to last response byte.
    pub downstream_rq_time: Arc<Histogram>,
}

/// `cluster.<name>.*`: the upstream stats of one cluster.
#[derive(Debug)]
pub struct ClusterScope {
    /// Counters and gauges.
    pub stats: PerCore<ClusterStats>,
    /// `cluster.<name>.upstream_rq_time`: request sent to response complete.
    pub upstream_rq_time: Arc<Histogram>,
    /// `cluster.<name>.upstream_cx_connect_ms`: TCP connect time.
    pub upstream_cx_connect_ms: Arc<Histogram>,
    /// Where `cluster.<name>.circuit_breakers.default.*` are read from: the cluster of the
    /// newest config snapshot, while one holds it (rendered only then).
    pub breakers: Mutex<Option<Weak<dyn BreakerSource>>>,
}

impl ClusterScope {
    /// Read the circuit-breaker gauges from `source` from now on.
    pub fn set_breakers(&self, source: Weak<dyn BreakerSource>) {
        *self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(source);
    }

    /// The circuit-breaker gauges now, if a live cluster provides them.
    pub(super) fn read_breakers(&self) -> Option<PerCore<CircuitBreakerStats>> {
        let source = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()?
            .upgrade()?;
        let out = PerCore::new(1);
        source.read(out.core(0));
        Some(out)
    }
}

/// Computes a cluster's circuit-breaker gauges when the stats are read, from state that
/// lives elsewhere (the breakers' process-wide occupancies), so workers write nothing for
/// them.
pub trait BreakerSource: Send + Sync {
    /// Set every gauge of `out`.
    fn read(&self, out: &CircuitBreakerStats);
}

impl std::fmt::Debug for dyn BreakerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BreakerSource")
    }
}

#[derive(Debug, Default)]
pub(super) struct Scopes {
    pub(super) listeners: BTreeMap<String, Arc<PerCore<ListenerStats>>>,
    pub(super) http: BTreeMap<String, Arc<HttpScope>>,
    pub(super) tcp: BTreeMap<String, Arc<PerCore<TcpStats>>>,
    pub(super) local_rate_limit: BTreeMap<String, Arc<PerCore<LocalRateLimitStats>>>,
    pub(super) clusters: BTreeMap<String, Arc<ClusterScope>>,
    pub(super) endpoints: BTreeMap<(String, SocketAddr), Arc<PerCore<EndpointStats>>>,
    /// Dynamic scopes by their text prefix (`http.ingress.dynamodb.operation`).
    pub(super) dynamic: BTreeMap<String, Arc<dyn super::dynamic::DynamicStats>>,
}

/// Every stat of the process, by scope. One per process, shared by workers and admin.
#[derive(Debug)]
pub struct Store {
    cores: usize,
    server: PerCore<ServerStats>,
    pub(super) scopes: Mutex<Scopes>,
}

impl Store {
    /// A store whose per-core stats have `cores` slots (the number of workers).
    pub fn new(cores: usize) -> Arc<Self> {
        Arc::new(Self {
            cores: cores.max(1),
            server: PerCore::new(cores),
            scopes: Mutex::new(Scopes::default()),
        })
    }

    /// Number of per-core slots.
    pub fn cores(&self) -> usize {
        self.cores
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Scopes> {
        self.scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `server.*`.
    pub fn server(&self) -> &PerCore<ServerStats> {
        &self.server
    }

    /// `listener.<name>.*`, created on first use.
    pub fn listener(&self, name: &str) -> Arc<PerCore<ListenerStats>> {
        let mut g = self.lock();
        if let Some(s) = g.listeners.get(name) {
            return Arc::clone(s);
        }
        let s = Arc::new(PerCore::new(self.cores));
        g.listeners.insert(name.to_owned(), Arc::clone(&s));
        s
    }

    /// `http.<name>.*`, created on first use.
    pub fn http(&self, name: &str) -> Arc<HttpScope> {
        let mut g = self.lock();
        if let Some(s) = g.http.get(name) {
            return Arc::clone(s);
        }
        let s = Arc::new(HttpScope {
            stats: PerCore::new(self.cores),
            downstream_rq_time: Histogram::new(),
        });
        g.http.insert(name.to_owned(), Arc::clone(&s));
        s
    }

    /// `tcp.<name>.*` (a TCP proxy listener), created on first use.
    pub fn tcp(&self, name: &str) -> Arc<PerCore<TcpStats>> {
        let mut g = self.lock();
        if let Some(s) = g.tcp.get(name) {
            return Arc::clone(s);
        }
        let s = Arc::new(PerCore::new(self.cores));
        g.tcp.insert(name.to_owned(), Arc::clone(&s));
        s
    }

    /// `local_rate_limit.<prefix>.*` (a tcp listener's rate limit filter), created on first
    /// use.
    pub fn local_rate_limit(&self, prefix: &str) -> Arc<PerCore<LocalRateLimitStats>> {
        let mut g = self.lock();
        if let Some(s) = g.local_rate_limit.get(prefix) {
            return Arc::clone(s);
        }
        let s = Arc::new(PerCore::new(self.cores));
        g.local_rate_limit.insert(prefix.to_owned(), Arc::clone(&s));
        s
    }

    /// `cluster.<name>.*`, created on first use.
    pub fn cluster(&self, name: &str) -> Arc<ClusterScope> {
        let mut g = self.lock();
        if let Some(s) = g.clusters.get(name) {
            return Arc::clone(s);
        }
        let s = Arc::new(ClusterScope {
            stats: PerCore::new(self.cores),
            upstream_rq_time: Histogram::new(),
            upstream_cx_connect_ms: Histogram::new(),
            breakers: Mutex::new(None),
        });
        g.clusters.insert(name.to_owned(), Arc::clone(&s));
        s
    }

    /// The stats of endpoint `addr` of `cluster` (shown by `/clusters`), created on first use.
    pub fn endpoint(&self, cluster: &str, addr: SocketAddr) -> Arc<PerCore<EndpointStats>> {
        let mut g = self.lock();
        let key = (cluster.to_owned(), addr);
        if let Some(s) = g.endpoints.get(&key) {
            return Arc::clone(s);
        }
        let s = Arc::new(PerCore::new(self.cores));
        g.endpoints.insert(key, Arc::clone(&s));
        s
    }

    /// The endpoint stats of `cluster` if any were created, without creating any.
    pub fn existing_endpoint(
        &self,
        cluster: &str,
        addr: SocketAddr,
    ) -> Option<Arc<PerCore<EndpointStats>>> {
        self.lock()
            .endpoints
            .get(&(cluster.to_owned(), addr))
            .cloned()
    }
}
