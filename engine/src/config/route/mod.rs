//! The compiled route table of a listener: virtual hosts, routes, their matchers and actions,
//! as `compile_routes` builds them from `[[listeners.virtual_hosts]]`.
//!
//! Data only: matching a request against a table is `crate::router`'s job (its `impl` blocks
//! on these types), so the config can hold a compiled table without importing the router.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use crate::config::ClusterId;

mod compile;
pub(crate) mod matcher;

pub use compile::{MAX_DOMAIN_LEN, REGEX_SIZE_LIMIT};
pub(crate) use compile::{compile_routes, headers_to_add, headers_to_remove};

/// The compiled routes of one listener.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub(crate) virtual_hosts: Vec<VirtualHost>,
    /// Lowercase exact domains (possibly with `:port`) -> index in `virtual_hosts`.
    pub(crate) exact_domains: HashMap<Box<[u8]>, usize>,
    /// `*.suffix` domains stored as `.suffix`, longest first -> index in `virtual_hosts`.
    pub(crate) suffix_domains: Vec<(Box<[u8]>, usize)>,
    /// The vhost with domain `*`.
    pub(crate) any_domain: Option<usize>,
}

/// A set of domains and the routes tried for requests to them.
#[derive(Debug)]
pub struct VirtualHost {
    /// Unique within the listener.
    pub name: String,
    /// Tried in order; the first match wins.
    pub routes: Vec<Route>,
}

/// One route: matchers (private to the router) and what to do with a match.
#[derive(Debug)]
pub struct Route {
    /// `virtual_host/index` or the route's configured name; used in stats and logs.
    pub name: String,
    /// What to do with a matching request.
    pub action: Action,
    /// Whole-request timeout (until the response head... and body are complete); `None` disables.
    pub timeout: Option<Duration>,
    /// Added to the upstream request.
    pub request_headers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names.
    pub request_headers_to_remove: Vec<Bytes>,
    /// Added to the downstream response.
    pub response_headers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names.
    pub response_headers_to_remove: Vec<Bytes>,
    /// Replace the matched path prefix with this before forwarding (prefix routes only).
    pub prefix_rewrite: Option<Bytes>,
    /// Per-route settings of HTTP filters (`[listeners.virtual_hosts.routes.filters]`).
    pub filters: RouteFilters,
    pub(crate) matcher: matcher::RouteMatch,
}

/// Per-route HTTP filter settings; each is read by its filter, never by the exchange.
#[derive(Debug, Clone, Default)]
pub struct RouteFilters {
    /// The buffer filter on this route: `Some(None)` turns it off, `Some(Some(n))` sets the
    /// limit to `n` bytes, `None` keeps the listener's setting.
    pub buffer: Option<Option<u64>>,
}

/// A header to add to a request or response.
#[derive(Debug, Clone)]
pub struct HeaderToAdd {
    /// Lowercase name.
    pub name: Bytes,
    /// Value (no CR, LF or NUL).
    pub value: Bytes,
    /// `true`: add beside existing fields of that name; `false`: replace them.
    pub append: bool,
}

/// What a route does with a request.
#[derive(Debug)]
pub enum Action {
    /// Forward to this cluster.
    Cluster(ClusterId),
    /// Forward to one of several clusters, by weight ([`WeightedClusters::pick`]).
    WeightedClusters(WeightedClusters),
    /// Answer with a redirect ([`Redirect::location`]).
    Redirect(Redirect),
    /// Answer locally with this status and body.
    DirectResponse {
        /// 100..=599.
        status: u16,
        /// Response body.
        body: Bytes,
    },
}

/// Clusters with weights; see [`WeightedClusters::pick`].
#[derive(Debug)]
pub struct WeightedClusters {
    /// `(cluster, cumulative weight)`, ascending.
    pub(crate) entries: Vec<(ClusterId, u32)>,
    pub(crate) total: u32,
}

/// A redirect answer; see [`Redirect::location`].
#[derive(Debug)]
pub struct Redirect {
    /// `None` keeps the request's scheme.
    pub scheme: Option<Bytes>,
    /// `None` keeps the request's authority.
    pub host: Option<Bytes>,
    /// `None` keeps the request's path (and query unless `strip_query`).
    pub path: Option<Bytes>,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// Drop the request's query string.
    pub strip_query: bool,
}
