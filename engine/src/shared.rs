//! Per-snapshot handles that every layer may hold: the stats slots and access log of a
//! listener, the stats of a cluster and its endpoints. Resolved by name once, when the control
//! side builds a config snapshot ([`crate::server`]); workers only read them.
//!
//! A leaf: imports `stats` and `access_log` only, so clusters, upstreams and connection
//! managers can hold these without importing the server that builds them.

use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::stats::{ClusterScope, EndpointStats, HttpScope, ListenerStats, PerCore, TcpStats};

/// Stats handles of one listener, resolved by name when the snapshot is built.
pub(crate) struct ListenerShared {
    pub(crate) stats: Arc<PerCore<ListenerStats>>,
    pub(crate) http: Arc<HttpScope>,
    /// `tcp.<name>.*`, for TCP proxy listeners only.
    pub(crate) tcp: Option<Arc<PerCore<TcpStats>>>,
    pub(crate) access_log: Option<Arc<AccessLog>>,
}

/// Stats handles of one cluster and its endpoints.
pub(crate) struct ClusterShared {
    pub(crate) scope: Arc<ClusterScope>,
    pub(crate) endpoints: Vec<Arc<PerCore<EndpointStats>>>,
}
