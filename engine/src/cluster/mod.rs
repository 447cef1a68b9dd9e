//! A cluster as one worker sees it: its membership (the endpoints of its config), this
//! worker's load-balancer state ([`lb`]) and this worker's [`Pool`] of connections to it.
//! Everything that decides *where* a request goes lives here (health, outlier detection and
//! circuit breakers will too); *how* it gets there — connecting, TLS, PROXY protocol, pooled
//! HTTP/1 and HTTP/2 connections, the per-request attempt — is [`crate::upstream`].
//!
//! Imports `upstream`, never the layers above it (router, filters, connection managers).

pub(crate) mod lb;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::config::ClusterConfig;
use crate::shared::ClusterShared;
use crate::stats::ClusterStats;
use crate::upstream::Pool;

/// One worker's view of a cluster.
pub(crate) struct ClusterLocal {
    balancer: lb::Balancer,
    /// This worker's connections to the cluster; attempts and HTTP/2 connections hold it too.
    pool: Rc<Pool>,
}

impl ClusterLocal {
    pub(crate) fn new(cfg: &ClusterConfig, shared: Arc<ClusterShared>, core: usize) -> Self {
        Self {
            balancer: lb::Balancer::new(cfg.lb, &cfg.endpoints),
            pool: Rc::new(Pool::new(cfg, shared, core)),
        }
    }

    /// This worker's connections to the cluster.
    pub(crate) fn pool(&self) -> &Rc<Pool> {
        &self.pool
    }

    pub(crate) fn stats(&self) -> &ClusterStats {
        self.pool.stats()
    }

    /// Choose an endpoint for a new request.
    pub(crate) fn pick(&self) -> Option<usize> {
        self.balancer.pick(|i| self.pool.endpoints[i].active.get())
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
