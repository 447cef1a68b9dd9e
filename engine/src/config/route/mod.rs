//! The compiled route table of a listener: virtual hosts, routes, their matchers and actions,
//! as `compile_routes` builds them from `[[listeners.virtual_hosts]]`.
//!
//! Data only: matching a request against a table is `crate::router`'s job (its `impl` blocks
//! on these types), so the config can hold a compiled table without importing the router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::ClusterId;

mod compile;
pub(crate) mod matcher;

pub use compile::{
    DEFAULT_RETRY_BASE_INTERVAL, DEFAULT_RETRY_BUFFER_LIMIT, MAX_DOMAIN_LEN, MAX_NUM_RETRIES,
    REGEX_SIZE_LIMIT,
};
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
    /// Whole-response timeout (from the start of the request until the response is complete,
    /// across all tries); `None` disables.
    pub timeout: Option<Duration>,
    /// The stream idle timeout of this route's requests (zero: none); `None`: the listener's
    /// `stream_idle_timeout`.
    pub idle_timeout: Option<Duration>,
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
    /// The route's retry policy, or its virtual host's; `None`: no retries (a request is sent
    /// again only when its pooled connection turns out closed before anything came back).
    pub retry_policy: Option<Arc<RetryPolicy>>,
    /// What `ring_hash` and `maglev` clusters hash, in order: the first that yields a value.
    pub hash_policy: Vec<HashPolicy>,
    /// The descriptors the `ratelimit` filter asks about for this route's requests: the
    /// route's own `rate_limits`, or its virtual host's.
    pub rate_limits: Arc<[RateLimitPolicy]>,
    pub(crate) matcher: matcher::RouteMatch,
}

/// One `rate_limits` entry: its actions make one descriptor of the rate limit service
/// request, an entry each, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    pub actions: Vec<RateLimitAction>,
}

/// One rate limit action (Envoy's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitAction {
    /// Entry `remote_address` = the client's IP address.
    RemoteAddress,
    /// Entry `key` = the value of request header `name` (lowercase). A request without it
    /// leaves the entry out when `skip_if_absent`, else the whole descriptor.
    RequestHeader {
        name: Bytes,
        key: String,
        skip_if_absent: bool,
    },
    /// A fixed entry.
    GenericKey { key: String, value: String },
}

/// When and how often a request is tried again ([`Route::retry_policy`]): Envoy's route retry
/// policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The conditions that retry.
    pub retry_on: RetryOn,
    /// The statuses `retriable-status-codes` retries.
    pub retriable_status_codes: Vec<u16>,
    /// Tries after the first.
    pub num_retries: u32,
    /// Each try ends after this long without a response head; `None`: only the route timeout.
    pub per_try_timeout: Option<Duration>,
    /// Back-off before the first retry (full jitter: a random wait up to this, doubled for
    /// each retry after it).
    pub base_interval: Duration,
    /// The longest back-off.
    pub max_interval: Duration,
    /// A request with a body larger than this is not retried.
    pub per_request_buffer_limit_bytes: u64,
}

/// A set of `retry_on` conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn(u16);

impl RetryOn {
    /// Any 5xx response, a reset, a connect failure or a per-try timeout.
    pub const FIVE_XX: Self = Self(1 << 0);
    /// 502, 503 or 504, a connect failure or a per-try timeout.
    pub const GATEWAY_ERROR: Self = Self(1 << 1);
    /// The upstream reset, closed or timed out before a response head (connect failures too).
    pub const RESET: Self = Self(1 << 2);
    /// The upstream reset before the request was sent.
    pub const RESET_BEFORE_REQUEST: Self = Self(1 << 3);
    /// Connecting failed or timed out.
    pub const CONNECT_FAILURE: Self = Self(1 << 4);
    /// 409.
    pub const RETRIABLE_4XX: Self = Self(1 << 5);
    /// An HTTP/2 upstream refused the stream (`REFUSED_STREAM`).
    pub const REFUSED_STREAM: Self = Self(1 << 6);
    /// The statuses of `retriable_status_codes`.
    pub const RETRIABLE_STATUS_CODES: Self = Self(1 << 7);
    /// gRPC status `CANCELLED`.
    pub const GRPC_CANCELLED: Self = Self(1 << 8);
    /// gRPC status `DEADLINE_EXCEEDED`.
    pub const GRPC_DEADLINE_EXCEEDED: Self = Self(1 << 9);
    /// gRPC status `INTERNAL`.
    pub const GRPC_INTERNAL: Self = Self(1 << 10);
    /// gRPC status `RESOURCE_EXHAUSTED`.
    pub const GRPC_RESOURCE_EXHAUSTED: Self = Self(1 << 11);
    /// gRPC status `UNAVAILABLE`.
    pub const GRPC_UNAVAILABLE: Self = Self(1 << 12);

    /// The configuration names, as Envoy spells them.
    pub const NAMES: [(&'static str, Self); 13] = [
        ("5xx", Self::FIVE_XX),
        ("gateway-error", Self::GATEWAY_ERROR),
        ("reset", Self::RESET),
        ("reset-before-request", Self::RESET_BEFORE_REQUEST),
        ("connect-failure", Self::CONNECT_FAILURE),
        ("retriable-4xx", Self::RETRIABLE_4XX),
        ("refused-stream", Self::REFUSED_STREAM),
        ("retriable-status-codes", Self::RETRIABLE_STATUS_CODES),
        ("cancelled", Self::GRPC_CANCELLED),
        ("deadline-exceeded", Self::GRPC_DEADLINE_EXCEEDED),
        ("internal", Self::GRPC_INTERNAL),
        ("resource-exhausted", Self::GRPC_RESOURCE_EXHAUSTED),
        ("unavailable", Self::GRPC_UNAVAILABLE),
    ];

    /// Some condition of `other` is in the set.
    pub fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for RetryOn {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for RetryOn {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// Per-route HTTP filter settings; each is read by its filter, never by the exchange.
#[derive(Debug, Clone, Default)]
pub struct RouteFilters {
    /// The buffer filter on this route: `Some(None)` turns it off, `Some(Some(n))` sets the
    /// limit to `n` bytes, `None` keeps the listener's setting.
    pub buffer: Option<Option<u64>>,
    /// The local rate limit filter on this route (its own or its virtual host's setting);
    /// `None` keeps the listener's bucket.
    pub local_ratelimit: Option<RateLimitOverride>,
}

/// One way to hash a request for consistent-hash load balancing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashPolicy {
    /// The value of this request header (lowercase name).
    Header(Bytes),
    /// The value of this cookie.
    Cookie {
        /// Cookie name.
        name: Bytes,
        /// Set a generated cookie with this `Max-Age` when the request has none; `None`:
        /// only hash a cookie the request has.
        ttl: Option<Duration>,
        /// `Path` of a generated cookie.
        path: Option<Bytes>,
    },
    /// The client's IP address.
    SourceIp,
    /// The value of this query parameter.
    QueryParameter(Bytes),
}

/// A virtual host's or route's local rate limit setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitOverride {
    /// Not limited (descriptors included).
    Disabled,
    /// A bucket of its own: every route of a virtual host with one shares it.
    Bucket {
        /// Index of the bucket among the listener's (0 is the listener's own), assigned
        /// when the routes are compiled.
        slot: usize,
        /// Name within the listener (`vhost:<name>`, `route:<vhost>/<route>`): with the
        /// listener's, the bucket's process-wide name, so it survives reloads.
        name: String,
        /// Burst and rate.
        token_bucket: crate::shared_state::BucketParams,
    },
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
