//! Configuration: TOML text -> [`raw::RawConfig`] (serde, unknown fields refused) ->
//! [`validate()`] -> the typed, immutable [`Config`] that the workers run on.
//!
//! Everything after validation is typed: addresses are `SocketAddr`, times are `Duration`,
//! references between sections are resolved to indices ([`ClusterId`]). Errors carry the file,
//! line, column and the path of the offending field (`clusters[2].endpoints[0]`).
//!
//! This module owns parsing and validation only, route tables included (compiled in [`route`],
//! matched by `crate::router`), and the consistent-hash tables of `ring_hash` and `maglev`
//! clusters ([`lb_table`], looked up by `crate::cluster`); nothing here touches sockets.

pub mod duration;
pub mod error;
pub mod health;
pub mod lb_table;
pub mod ratelimit;
pub mod raw;
pub mod route;
pub mod tls;
pub mod upstream_tls;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{ConfigError, FieldError};
pub use health::{HealthCheck, HealthCheckKind, OutlierDetection};
pub use validate::{load_file, parse_str, parse_str_in, validate, validate_in};

use route::{HeaderToAdd, RouteTable};

/// The configuration embedded in the binary: `ringway` with no arguments serves this.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config.toml");

/// Index of a cluster in [`Config::clusters`].
pub type ClusterId = usize;

/// A validated configuration. Built once per load or reload, then shared read-only.
#[derive(Debug)]
pub struct Config {
    /// Worker threads (one monoio runtime each, pinned to a core).
    pub workers: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub drain_timeout: Duration,
    /// The admin listener; `None` disables the admin API.
    pub admin: Option<AdminConfig>,
    /// HTTP listeners, in configuration order.
    pub listeners: Vec<ListenerConfig>,
    /// Upstream clusters; a [`ClusterId`] indexes this list.
    pub clusters: Vec<ClusterConfig>,
    /// The raw configuration as parsed, for `/config_dump`.
    pub raw: raw::RawConfig,
}

/// The admin API listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where the admin API listens.
    pub address: SocketAddr,
}

/// One listening socket (bound per worker with SO_REUSEPORT) and its routes.
#[derive(Debug)]
pub struct ListenerConfig {
    /// Unique name; the stats prefix (`listener.<name>.`, `http.<name>.`).
    pub name: String,
    /// Where to listen.
    pub address: SocketAddr,
    /// What is spoken on accepted connections.
    pub protocol: ListenerProtocol,
    /// Virtual hosts and routes for this listener (HTTP listeners).
    pub routes: RouteTable,
    /// Downstream HTTP options (HTTP listeners).
    pub http: HttpOptions,
    /// TCP proxy options (TCP listeners).
    pub tcp: TcpOptions,
    /// Every connection must start with a PROXY protocol (v1 or v2) header.
    pub proxy_protocol: bool,
    /// TLS termination (`[listeners.tls]`): certificates loaded, rustls configs built.
    /// `None`: plaintext.
    pub tls: Option<crate::tls::ServerTls>,
    /// `None`: no access log.
    pub access_log: Option<AccessLogConfig>,
    /// Accept at most this many connections at once per worker; `None` means unlimited.
    pub max_connections_per_worker: Option<u32>,
    /// HTTP filters in order (`[[listeners.http_filters]]`); the router is implicit and last.
    pub http_filters: Vec<HttpFilterConfig>,
    /// The network filter chain of a tcp listener, in order; the TCP proxy is the implicit
    /// last filter. Empty on http listeners.
    pub network_filters: Vec<NetworkFilterConfig>,
}

/// One configured HTTP filter.
#[derive(Debug, Clone)]
pub enum HttpFilterConfig {
    /// `buffer`: collect the whole request body before the router forwards it.
    Buffer {
        /// Largest request body buffered; larger ones are answered with 413.
        max_request_bytes: u64,
    },
    /// `header_mutation`: header changes on every request and response.
    HeaderMutation(HeaderMutation),
    /// `fault`: delays and aborts injected into a share of requests.
    Fault(FaultConfig),
    /// `custom_response`: upstream responses with some statuses replaced by a local answer.
    CustomResponse(CustomResponse),
    /// `local_ratelimit`: a token bucket for the whole process; requests over it get 429.
    LocalRateLimit(LocalRateLimit),
    /// `ratelimit`: each request's descriptors (its route's `rate_limits`) are sent to a rate
    /// limit service, which says whether it is over a limit (429).
    RateLimit(GlobalRateLimit),
}

/// Envoy's rate limit filter, as configured: which rate limit service to ask
/// (`envoy.service.ratelimit.v3.RateLimitService` over gRPC), about which domain, and what to
/// do when it does not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRateLimit {
    pub domain: String,
    /// The service's cluster (HTTP/2).
    pub cluster: ClusterId,
    /// The `:authority` of the calls: the cluster's name, as Envoy sends it.
    pub authority: String,
    /// How long to wait for an answer.
    pub timeout: Duration,
    /// No answer (error or timeout): refuse the request with 500 (`true`) or let it through.
    pub failure_mode_deny: bool,
    /// Add `x-ratelimit-limit`, `-remaining` and `-reset` from the service's answer.
    pub x_ratelimit_headers: bool,
}

/// Envoy's local rate limit filter, as configured. The buckets themselves are process-wide
/// state, looked up by name when a snapshot is built (`crate::shared`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRateLimit {
    /// The listener's bucket (routes and virtual hosts may have their own,
    /// [`route::RouteFilters::local_ratelimit`]).
    pub token_bucket: BucketParams,
    /// Percentage (0..=100) of requests the filter looks at.
    pub filter_enabled: u32,
    /// Percentage (0..=100) of requests over the limit that are refused (the rest are only
    /// counted).
    pub filter_enforced: u32,
    /// Add `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` to responses.
    pub x_ratelimit_headers: bool,
    /// Buckets per value of a key, each checked before the listener's (or route's) bucket.
    pub descriptors: Vec<RateLimitDescriptor>,
    /// Most distinct values each descriptor keeps a bucket for.
    pub max_descriptors: usize,
}

/// One descriptor of a [`LocalRateLimit`]: a bucket per distinct value of `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitDescriptor {
    /// What a request's value is.
    pub key: DescriptorKey,
    /// Each value's burst and rate.
    pub token_bucket: BucketParams,
}

/// What a [`RateLimitDescriptor`] is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptorKey {
    /// The value of this request header (lowercase name); requests without it are not
    /// counted by the descriptor.
    Header(bytes::Bytes),
    /// The client's IP address (the PROXY header's source when the listener reads one).
    RemoteAddress,
}

pub use crate::shared_state::BucketParams;

/// Envoy's custom response filter with one local-response policy, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomResponse {
    /// Upstream statuses (100..=599) whose response is replaced.
    pub status_codes: Vec<u16>,
    /// The status sent instead; `None` keeps the upstream's.
    pub status: Option<u16>,
    /// The body sent instead.
    pub body: bytes::Bytes,
}

/// Envoy's fault injection filter, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultConfig {
    /// Hold a request this long before going on; `None`: no delay.
    pub delay: Option<Duration>,
    /// Percentage (0..=100) of requests delayed.
    pub delay_percent: u32,
    /// Answer with this status instead of forwarding; `None`: no abort.
    pub abort_status: Option<u16>,
    /// Percentage (0..=100) of requests aborted.
    pub abort_percent: u32,
    /// Send response bodies at most this many bytes per second; `None`: no limit.
    pub response_rate_limit: Option<u64>,
    /// Percentage (0..=100) of requests whose response is rate limited.
    pub response_rate_limit_percent: u32,
}

/// Header changes, in the shape routes use for theirs.
#[derive(Debug, Clone, Default)]
pub struct HeaderMutation {
    /// Added to the request sent upstream.
    pub request_headers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names removed from the request sent upstream.
    pub request_headers_to_remove: Vec<bytes::Bytes>,
    /// Added to the response sent downstream.
    pub response_headers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names removed from the response sent downstream.
    pub response_headers_to_remove: Vec<bytes::Bytes>,
    /// Added to request trailers (when the request has trailers).
    pub request_trailers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names removed from request trailers.
    pub request_trailers_to_remove: Vec<bytes::Bytes>,
    /// Added to response trailers (when the response has trailers).
    pub response_trailers_to_add: Vec<HeaderToAdd>,
    /// Lowercase names removed from response trailers.
    pub response_trailers_to_remove: Vec<bytes::Bytes>,
    /// Some route of the listener matches on a request header this filter adds or removes
    /// (or `host`): the filter clears the route cache, and the route is resolved again with
    /// its changes (computed from the route table, not configured).
    pub affects_routing: bool,
}

/// One network filter of a tcp listener's chain (`[[listeners.network_filters]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkFilterConfig {
    /// `byte_counter`: counts the bytes passing each way (`tcp.<name>.byte_counter.*`).
    ByteCounter,
    /// `local_ratelimit`: a new connection takes a token from a process-wide bucket or is
    /// closed at once (`local_rate_limit.<stat_prefix>.rate_limited`).
    LocalRateLimit {
        /// The bucket's burst and rate.
        token_bucket: BucketParams,
        /// Stats prefix (`local_rate_limit.<stat_prefix>.`).
        stat_prefix: String,
    },
    /// Test only (`test_checksum`): sees every byte both ways, so the relay copies them.
    #[cfg(test)]
    TestChecksum,
    /// Test only (`test_frames`): reads 4-byte length-prefixed frame headers and skips their
    /// bodies, the shape of a wire-protocol decoder (MongoDB's message headers).
    #[cfg(test)]
    TestFrames,
}

/// Protocols a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// HTTP/1.1.
    Http,
    /// TCP proxy: every connection is forwarded, byte for byte, to an endpoint of one cluster.
    Tcp,
}

/// TCP proxy listener options (Envoy's `tcp_proxy` filter where they match).
#[derive(Debug, Clone)]
pub struct TcpOptions {
    /// The cluster connections are forwarded to (with SNI routes: those whose server name
    /// matches none, or that send none); `None` on http listeners and on tcp listeners that
    /// only route by SNI.
    pub cluster: Option<ClusterId>,
    /// Both sides are closed after this long without a byte either way; `None` disables.
    pub idle_timeout: Option<Duration>,
    /// SNI routes (`[[listeners.tcp.sni]]`): server name -> cluster. `None` when there are
    /// none, so such a listener never looks at the first bytes.
    pub sni: Option<crate::tls::ServerNames<ClusterId>>,
    /// How long to wait for a complete ClientHello when routing by SNI without terminating TLS.
    pub inspect_timeout: Duration,
}

/// Downstream HTTP connection options (Envoy's HttpConnectionManager fields where they match).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time allowed from the first byte of a request until its head is complete (408 after).
    pub request_header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// A request in progress whose stream moves no byte for this long ends (flag `SI`);
    /// zero: never. A route's `idle_timeout` replaces it.
    pub stream_idle_timeout: Duration,
    /// The whole request (head and body) must have arrived within this (408); `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// A request ends this long after it started, whatever it is doing (flag `DT`); `None`:
    /// no limit.
    pub max_stream_duration: Option<Duration>,
    /// Longest request line (method + target + version) before 414.
    pub max_request_line_bytes: usize,
    /// Largest request head (request line + headers) before 431.
    pub max_request_headers_bytes: usize,
    /// Most header fields in one request before 431.
    pub max_request_headers_count: usize,
    /// Add `x-forwarded-for` (append the peer address) and `x-forwarded-proto`.
    pub use_forwarded_headers: bool,
    /// Generate `x-request-id` when the request has none.
    pub generate_request_id: bool,
    /// Value of the `via` header to add to requests and responses; `None` adds none.
    pub via: Option<String>,
    /// Server name sent in locally generated responses.
    pub server_name: String,
    /// Not a config field: the listener terminates TLS (`[listeners.tls]`), so its requests
    /// came over `https` (`x-forwarded-proto`, redirects).
    pub https: bool,
}

impl HttpOptions {
    /// The scheme clients used to reach the listener: `https` or `http`.
    pub fn scheme(&self) -> &'static [u8] {
        if self.https { b"https" } else { b"http" }
    }
}

/// Where and how a listener logs requests.
#[derive(Debug, Clone)]
pub struct AccessLogConfig {
    /// `None` means standard output.
    pub path: Option<PathBuf>,
    /// Line format.
    pub format: AccessLogFormat,
}

/// Access log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// Envoy's default text format.
    Default,
    /// One JSON object per line.
    Json,
}

/// A set of upstream endpoints with a load-balancing policy.
///
/// `PartialEq` is what a reload diffs by: a cluster equal to the one of the same name in the
/// running configuration keeps each worker's pools and balancer state.
#[derive(Debug, PartialEq)]
pub struct ClusterConfig {
    /// Unique name; the stats prefix (`cluster.<name>.`).
    pub name: String,
    /// At least one.
    pub endpoints: Vec<Endpoint>,
    /// How endpoints are chosen.
    pub lb: LbPolicy,
    /// `ring_hash` and `maglev`: the lookup table, compiled with the config and shared by
    /// every worker.
    pub lb_table: Option<std::sync::Arc<lb_table::Table>>,
    /// `least_request`'s settings.
    pub least_request: LeastRequest,
    /// A returning endpoint's share ramps up (`round_robin`, `least_request`, `random`).
    pub slow_start: Option<SlowStart>,
    /// Upstream TCP connect timeout (non-zero).
    pub connect_timeout: Duration,
    /// Pooled upstream connections idle longer than this are closed.
    pub idle_timeout: Duration,
    /// Per-worker cap on upstream connections to this cluster; `None` means unlimited.
    pub max_connections_per_worker: Option<u32>,
    /// Per-worker cap on idle connections kept in the pool, per endpoint.
    pub max_idle_per_endpoint: usize,
    /// Upstream protocol.
    pub protocol: UpstreamProtocol,
    /// Send this PROXY protocol header first on each new upstream connection; `None`: none.
    /// HTTP connections to such a cluster are not pooled (each carries one client's address).
    pub proxy_protocol: Option<ProxyProtocolVersion>,
    /// TLS origination (`tls = { ... }`): files read, rustls client config built. `None`:
    /// plaintext.
    pub tls: Option<crate::tls::ClientTls>,
    /// HTTP/2 connection keep-alive: PING after this long without one answered; `None`: off.
    pub http2_keepalive_interval: Option<Duration>,
    /// A PING not answered within this closes the HTTP/2 connection.
    pub http2_keepalive_timeout: Duration,
    /// Process-wide limits on connections, pending and active requests and retries.
    pub circuit_breakers: CircuitBreakers,
    /// Percent of endpoints that must be healthy for unhealthy ones to be skipped; below it
    /// every endpoint is used (Envoy's panic mode). 0 turns panic mode off.
    pub healthy_panic_threshold: f64,
    /// Active health checks, run on the control thread.
    pub health_checks: Vec<HealthCheck>,
    /// Passive health: ejection by the responses' outcomes.
    pub outlier_detection: Option<OutlierDetection>,
}

/// `least_request`'s settings (Envoy's `least_request_lb_config`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeastRequest {
    /// Endpoints drawn per pick (at least 2); the one with the most weight per active
    /// request wins.
    pub choice_count: u32,
    /// An endpoint's score is weight / (active + 1) ^ bias.
    pub active_request_bias: f64,
}

impl Default for LeastRequest {
    fn default() -> Self {
        Self {
            choice_count: 2,
            active_request_bias: 1.0,
        }
    }
}

/// Slow start (Envoy's `slow_start_config`): for `window` after an endpoint becomes healthy
/// again (its active checks pass again, or its ejection ends), it gets a share of its
/// weight that grows as (time since / window) ^ (1 / aggression), at least
/// `min_weight_percent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    pub window: Duration,
    pub aggression: f64,
    pub min_weight_percent: f64,
}

/// A cluster's circuit breakers (Envoy's `thresholds` of the default priority): limits that
/// hold across all workers together. Defaults are Envoy's ([`Default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakers {
    /// Upstream connections open at once (HTTP/1 pooled or in use, HTTP/2, TCP proxy); a
    /// request that needs a new one beyond it waits in the pending queue.
    pub max_connections: u64,
    /// Requests waiting for a connection at once; beyond it a request gets 503 `UO`.
    pub max_pending_requests: u64,
    /// Requests in flight upstream at once; beyond it a request gets 503 `UO`.
    pub max_requests: u64,
    /// Retries in flight at once (when `retry_budget` is `None`).
    pub max_retries: u64,
    /// Retries in flight as a share of the requests in flight; overrides `max_retries`.
    pub retry_budget: Option<RetryBudget>,
    /// Connections open at once to each endpoint; `None`: no per-endpoint limit.
    pub per_host_max_connections: Option<u64>,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        use validate::{
            DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PENDING_REQUESTS, DEFAULT_MAX_REQUESTS,
            DEFAULT_MAX_RETRIES,
        };
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending_requests: DEFAULT_MAX_PENDING_REQUESTS,
            max_requests: DEFAULT_MAX_REQUESTS,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_budget: None,
            per_host_max_connections: None,
        }
    }
}

/// Envoy's retry budget: the retries allowed in flight are `budget_percent` of the requests
/// in flight and pending, and never fewer than `min_retry_concurrency`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// 0..=100.
    pub budget_percent: f64,
    /// The floor of the computed limit.
    pub min_retry_concurrency: u64,
}

impl RetryBudget {
    /// The retries allowed in flight while `outstanding` requests are in flight or pending.
    pub fn max_retries(&self, outstanding: u64) -> u64 {
        // Exact enough: f64 holds every count below 2^53.
        let share = (outstanding as f64 * self.budget_percent / 100.0) as u64;
        share.max(self.min_retry_concurrency)
    }
}

/// PROXY protocol header versions sent upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocolVersion {
    /// Text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// Binary header.
    V2,
}

/// One upstream address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// `ip:port` to connect to.
    pub address: SocketAddr,
    /// Relative weight (1..=128), used by every LB policy.
    pub weight: u32,
}

/// Load-balancing policies (all respect endpoint weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// Weighted round robin.
    RoundRobin,
    /// Power of two choices over active requests.
    LeastRequest,
    /// Weighted random.
    Random,
    /// Consistent hashing on a ring by the route's `hash_policy` (Envoy's `RING_HASH`);
    /// requests without a hash go to a weighted random endpoint.
    RingHash,
    /// Consistent hashing with a Maglev lookup table by the route's `hash_policy` (Envoy's
    /// `MAGLEV`); requests without a hash go to a weighted random endpoint.
    Maglev,
}

/// Upstream protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 with prior knowledge (h2c): many streams share each pooled connection.
    Http2,
}
