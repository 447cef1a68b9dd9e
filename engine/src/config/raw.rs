//! The serde layer of the config: the TOML schema exactly as users write it.
//!
//! Every table refuses unknown fields; optional settings are `Option`s whose defaults live in
//! [`validate`](mod@super::validate) (`DEFAULT_*`). Nothing here is checked beyond TOML types:
//! addresses, durations, names and references are plain strings until [`super::validate()`]
//! turns them into a [`super::Config`]. `Serialize` exists so `/config_dump` can print the
//! config as JSON.
//! The schema is documented field by field in `docs/config.md`.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `"auto"` or a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<RawWorkers>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<String>,
    /// `[admin]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<RawAdmin>,
    /// `[[listeners]]`.
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    /// `[[clusters]]`.
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
}

/// `workers = "auto"` or `workers = 4`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawWorkers {
    /// A number as written (range-checked by validation).
    Count(i64),
    /// A word; only `"auto"` is valid.
    Word(String),
}

impl<'de> Deserialize<'de> for RawWorkers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawWorkers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a number of workers")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawWorkers, E> {
                Ok(RawWorkers::Count(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawWorkers, E> {
                Ok(RawWorkers::Count(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawWorkers, E> {
                Ok(RawWorkers::Word(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `false` turns the admin API off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `ip:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `[[listeners]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Unique, `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// `ip:port`.
    pub address: String,
    /// `"http"` (default) or `"tcp"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<RawListenerProtocol>,
    /// The cluster a `tcp` listener forwards to (required for tcp, refused for http).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Expect a PROXY protocol v1 or v2 header at the start of every connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<bool>,
    /// Per-worker connection cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_worker: Option<u32>,
    /// `{ path, format }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log: Option<RawAccessLog>,
    /// `[listeners.http]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<RawHttpOptions>,
    /// `[listeners.tcp]` (tcp listeners only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<RawTcpOptions>,
    /// `[listeners.tls]`: terminate TLS on accepted connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RawTls>,
    /// `[[listeners.virtual_hosts]]`.
    #[serde(default)]
    pub virtual_hosts: Vec<RawVirtualHost>,
    /// `[[listeners.http_filters]]`: HTTP filters in order; the router is implicit and last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_filters: Vec<RawHttpFilter>,
    /// `[[listeners.network_filters]]` (tcp listeners only), in chain order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_filters: Vec<RawNetworkFilter>,
}

/// `[[listeners.http_filters]]`: one HTTP filter, chosen by `name`, with its settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum RawHttpFilter {
    /// Envoy's buffer filter: the upstream sees the request only once it is complete.
    Buffer(RawBufferFilter),
    /// Header changes on every request and response of the listener.
    HeaderMutation(RawHeaderMutation),
    /// Envoy's fault injection: delay requests, abort them with a status.
    Fault(RawFaultFilter),
    /// Envoy's custom response: replace upstream responses with some statuses.
    CustomResponse(RawCustomResponse),
    /// Envoy's local rate limit: a token bucket for the whole process, 429 over it.
    LocalRatelimit(RawLocalRateLimit),
    /// Envoy's (global) rate limit: ask a rate limit service for each request's descriptors.
    Ratelimit(RawGlobalRateLimit),
}

/// `name = "ratelimit"`: Envoy's rate limit filter, speaking Envoy's rate limit service API
/// (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`) over gRPC.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobalRateLimit {
    /// The rate limit service's domain for this listener's requests.
    pub domain: String,
    /// The cluster of the rate limit service (`protocol = "http2"`).
    pub cluster: String,
    /// Duration string: how long to wait for the service's answer (default `"20ms"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `true`: a request whose answer did not come (error, timeout) is refused with 500;
    /// `false` (default): it is let through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_mode_deny: Option<bool>,
    /// `"OFF"` (default) or `"DRAFT_VERSION_03"`: add `x-ratelimit-*` response headers from
    /// the service's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_x_ratelimit_headers: Option<String>,
}

/// One `rate_limits` entry of a route or virtual host: its actions make one descriptor.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimitPolicy {
    /// Each adds one entry to the descriptor, in order.
    pub actions: Vec<RawRateLimitAction>,
}

/// One rate limit action: exactly one of its fields (Envoy's names).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimitAction {
    /// `true`: entry `remote_address` = the client's IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<bool>,
    /// Entry `descriptor_key` = this request header's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<RawRequestHeadersAction>,
    /// A fixed entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generic_key: Option<RawGenericKeyAction>,
}

/// `request_headers = { header_name, descriptor_key, skip_if_absent }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestHeadersAction {
    pub header_name: String,
    pub descriptor_key: String,
    /// `true`: a request without the header leaves this entry out; `false` (default): the
    /// whole descriptor is left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_if_absent: Option<bool>,
}

/// `generic_key = { descriptor_value, descriptor_key }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenericKeyAction {
    pub descriptor_value: String,
    /// Default `"generic_key"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptor_key: Option<String>,
}

/// `{ max_tokens, tokens_per_fill, fill_interval }` (Envoy's `token_bucket`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenBucket {
    /// Burst: most tokens held (and held at start), at least 1.
    pub max_tokens: u32,
    /// Tokens added every `fill_interval`, at least 1 (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_fill: Option<u32>,
    /// Duration string, greater than 0.
    pub fill_interval: String,
}

/// `name = "local_ratelimit"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalRateLimit {
    /// The listener's bucket.
    pub token_bucket: RawTokenBucket,
    /// Percentage of requests the filter looks at, 0..=100 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_enabled: Option<u32>,
    /// Percentage of limited requests actually refused, 0..=100 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_enforced: Option<u32>,
    /// `"OFF"` (default) or `"DRAFT_VERSION_03"`: add `x-ratelimit-*` response headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_x_ratelimit_headers: Option<String>,
    /// Buckets per value of a request header or per client address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<RawRateLimitDescriptor>,
    /// Most distinct values each descriptor keeps a bucket for (default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_descriptors: Option<u32>,
}

/// `{ header | remote_address, token_bucket }`: one bucket per distinct value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimitDescriptor {
    /// Key by this request header's value (requests without it are not counted here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `true`: key by the client's IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<bool>,
    /// Each value's bucket.
    pub token_bucket: RawTokenBucket,
}

/// `[listeners.virtual_hosts.filters.local_ratelimit]` and the same on a route: this virtual
/// host's or route's own bucket, or no limit.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalRateLimitPerRoute {
    /// `true`: not limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// A bucket of its own instead of the listener's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_bucket: Option<RawTokenBucket>,
}

/// `[listeners.virtual_hosts.filters]`: per-virtual-host settings of HTTP filters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualHostFilters {
    /// `[listeners.virtual_hosts.filters.local_ratelimit]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ratelimit: Option<RawLocalRateLimitPerRoute>,
}

/// `name = "custom_response"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomResponse {
    /// Upstream response statuses replaced (final statuses, 200..=599).
    pub status_codes: Vec<u16>,
    /// The status sent instead (200..=599); default: the upstream's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The body sent instead.
    #[serde(default)]
    pub body: String,
}

/// `name = "fault"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFaultFilter {
    /// Duration string: hold matching requests this long before going on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// Percentage of requests delayed, 0..=100 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_percent: Option<u32>,
    /// Answer matching requests with this status (200..=599) instead of forwarding them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_status: Option<u16>,
    /// Percentage of requests aborted, 0..=100 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_percent: Option<u32>,
    /// Send matching responses' bodies at most this many KiB per second (Envoy's
    /// `response_rate_limit.fixed_limit.limit_kbps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_rate_limit_kbps: Option<u64>,
    /// Percentage of requests whose response is rate limited, 0..=100 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_rate_limit_percent: Option<u32>,
}

/// `name = "buffer"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBufferFilter {
    /// Largest request body buffered; a larger one is answered with 413.
    pub max_request_bytes: u64,
}

/// `name = "header_mutation"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMutation {
    /// Headers added to every request sent upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<RawHeaderToAdd>,
    /// Header names removed from every request sent upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
    /// Headers added to every response sent downstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<RawHeaderToAdd>,
    /// Header names removed from every response sent downstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_remove: Vec<String>,
    /// Fields added to the trailers of requests that have trailers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_trailers_to_add: Vec<RawHeaderToAdd>,
    /// Field names removed from request trailers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_trailers_to_remove: Vec<String>,
    /// Fields added to the trailers of responses that have trailers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_trailers_to_add: Vec<RawHeaderToAdd>,
    /// Field names removed from response trailers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_trailers_to_remove: Vec<String>,
}

/// `[listeners.virtual_hosts.routes.filters]`: per-route settings of HTTP filters, read by
/// the filter itself.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteFilters {
    /// `[listeners.virtual_hosts.routes.filters.buffer]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer: Option<RawBufferPerRoute>,
    /// `[listeners.virtual_hosts.routes.filters.local_ratelimit]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ratelimit: Option<RawLocalRateLimitPerRoute>,
}

/// Per-route buffer filter settings: off for this route, or another limit.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBufferPerRoute {
    /// `true`: the route's requests stream through unbuffered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// This route's limit instead of the listener's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u64>,
}

/// `[[listeners.network_filters]]`: one network filter, picked by `name`. A filter's own
/// settings are flat fields of this table, checked against `name` by validation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetworkFilter {
    /// The filter: `"byte_counter"` or `"local_ratelimit"`.
    pub name: String,
    /// `local_ratelimit`: the bucket new connections take a token from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_bucket: Option<RawTokenBucket>,
    /// `local_ratelimit`: stats under `local_rate_limit.<stat_prefix>.` (default: the
    /// listener's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat_prefix: Option<String>,
}

/// Listener protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawListenerProtocol {
    /// HTTP/1.1.
    Http,
    /// TCP proxy: bytes forwarded to one cluster.
    Tcp,
}

/// `[listeners.tcp]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpOptions {
    /// Duration string; `"0s"` disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Duration string: how long to wait for a ClientHello (SNI routing without TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspect_timeout: Option<String>,
    /// `[[listeners.tcp.sni]]`: routes by TLS server name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni: Vec<RawSniRoute>,
}

/// `[[listeners.tcp.sni]]`: connections whose TLS server name is in `server_names` go to
/// `cluster`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSniRoute {
    /// `"a.example"` or `"*.example"`; at least one.
    pub server_names: Vec<String>,
    /// Cluster name.
    pub cluster: String,
}

/// `[listeners.tls]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// At least one; the first is the default certificate.
    #[serde(default)]
    pub certificates: Vec<RawTlsCertificate>,
    /// ALPN protocol ids in preference order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<Vec<String>>,
    /// `"1.2"` or `"1.3"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// IANA cipher suite names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suites: Option<Vec<String>>,
    /// Issue stateless session tickets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_tickets: Option<bool>,
    /// Sessions kept for resumption by ID; 0 disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_cache_size: Option<u32>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_timeout: Option<String>,
    /// PEM file of the CAs that issue client certificates (mTLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
    /// `"required"` (default with `client_ca`) or `"optional"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
    /// Client certificate names let in (CN, SAN DNS or URI; exact or `*.suffix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_allowed_names: Option<Vec<String>>,
}

/// `{ cert, key, server_names }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsCertificate {
    /// PEM certificate chain file (relative to the config file's directory).
    pub cert: String,
    /// PEM private key file (relative to the config file's directory).
    pub key: String,
    /// `"a.example"` or `"*.example"`; default: the certificate's DNS subjectAltNames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_names: Option<Vec<String>>,
}

/// `access_log = { path, format }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// File to append to; absent or `"-"` is standard output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `default` or `json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<RawAccessLogFormat>,
}

/// Access log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawAccessLogFormat {
    /// Envoy's default text format.
    Default,
    /// One JSON object per line.
    Json,
}

/// `[listeners.http]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpOptions {
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_header_timeout: Option<String>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Duration string; `"0s"` disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<String>,
    /// Duration string; absent or `"0s"`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    /// Duration string; absent or `"0s"`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<String>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_line_bytes: Option<u32>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_headers_bytes: Option<u32>,
    /// Count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_headers_count: Option<u32>,
    /// Add `x-forwarded-for` / `x-forwarded-proto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_forwarded_headers: Option<bool>,
    /// Add `x-request-id` when missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_request_id: Option<bool>,
    /// `Via` value; absent adds none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Server name in local replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// `[[listeners.virtual_hosts]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualHost {
    /// Unique within the listener.
    pub name: String,
    /// `"api.example.com"`, `"host:port"`, `"*.example.com"` or `"*"`.
    pub domains: Vec<String>,
    /// `[[listeners.virtual_hosts.routes]]`, first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// `[listeners.virtual_hosts.retry_policy]`: for the routes that have none of their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RawRetryPolicy>,
    /// `rate_limits = [{ actions = [...] }]`: descriptors for the `ratelimit` filter, for the
    /// routes that have none of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RawRateLimitPolicy>,
    /// `[listeners.virtual_hosts.filters.<name>]`: settings of HTTP filters for every route
    /// of this virtual host (a route's own settings win).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<RawVirtualHostFilters>,
}

/// `retry_policy`: Envoy's route retry policy.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryPolicy {
    /// Conditions: `5xx`, `gateway-error`, `reset`, `reset-before-request`, `connect-failure`,
    /// `retriable-4xx`, `refused-stream`, `retriable-status-codes`, and for gRPC `cancelled`,
    /// `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_on: Vec<String>,
    /// Statuses `retriable-status-codes` retries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u16>,
    /// Tries after the first (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    /// Duration string: the timeout of each try; default none (the route timeout only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    /// `{ base_interval, max_interval }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_back_off: Option<RawRetryBackOff>,
    /// A request whose body is larger than this is not retried (default 65536).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_request_buffer_limit_bytes: Option<u64>,
}

/// `retry_back_off = { base_interval = "25ms", max_interval = "250ms" }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryBackOff {
    /// Duration string (default 25ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_interval: Option<String>,
    /// Duration string (default 10 × `base_interval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
}

/// `[[listeners.virtual_hosts.routes]]`: exactly one of `prefix|path|regex` and exactly one of
/// `cluster|weighted_clusters|redirect|direct_response`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Name for stats/logs; default `<virtual host>/<index>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Path prefix match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Exact path match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Whole-path regex match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Header matchers, all must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<RawHeaderMatch>,
    /// Query parameter matchers, all must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<RawQueryMatch>,
    /// Path comparison case sensitivity (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    /// Forward to this cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Split between clusters by weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weighted_clusters: Option<Vec<RawWeightedCluster>>,
    /// Answer with a redirect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RawRedirect>,
    /// Answer locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<RawDirectResponse>,
    /// Duration string; `"0s"` disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Duration string: the stream idle timeout of this route's requests; `"0s"` disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// `[listeners.virtual_hosts.routes.retry_policy]`: replaces the virtual host's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RawRetryPolicy>,
    /// Replacement for the matched prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_rewrite: Option<String>,
    /// What a `ring_hash` or `maglev` cluster hashes; the first that yields a value wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hash_policy: Vec<RawHashPolicy>,
    /// `rate_limits = [{ actions = [...] }]`: descriptors the `ratelimit` filter sends for
    /// this route's requests (replacing the virtual host's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RawRateLimitPolicy>,
    /// `[listeners.virtual_hosts.routes.filters.<name>]`: per-route HTTP filter settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<RawRouteFilters>,
    /// Headers added to the upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<RawHeaderToAdd>,
    /// Header names removed from the upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
    /// Headers added to the downstream response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<RawHeaderToAdd>,
    /// Header names removed from the downstream response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_remove: Vec<String>,
}

/// One `hash_policy` entry: exactly one of its fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHashPolicy {
    /// Hash this request header's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Hash this cookie's value; with a `ttl`, set one when the request has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<RawHashCookie>,
    /// `true`: hash the client's IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<bool>,
    /// Hash this query parameter's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_parameter: Option<String>,
}

/// `cookie = { name, ttl, path }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHashCookie {
    /// Cookie name.
    pub name: String,
    /// Duration string: generate the cookie when absent, with this `Max-Age`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// `Path` attribute of a generated cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `{ name, exact | prefix | suffix | regex | present, invert }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    /// Header name.
    pub name: String,
    /// Value equals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Value starts with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Value ends with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Whole value matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Header is (true) / is not (false) present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// Negate the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invert: Option<bool>,
}

/// `{ name, exact | prefix | regex | present }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueryMatch {
    /// Parameter name (raw, not percent-decoded).
    pub name: String,
    /// Value equals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Value starts with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Whole value matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Parameter is (true) / is not (false) present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// `{ cluster, weight }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeightedCluster {
    /// Cluster name.
    pub cluster: String,
    /// Relative weight, > 0.
    pub weight: u32,
}

/// `{ scheme, host, path, status, strip_query }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    /// Replacement scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Replacement authority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Replacement path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 301 (default), 302, 303, 307 or 308.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Drop the request's query string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip_query: Option<bool>,
}

/// `{ status, body }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectResponse {
    /// 100..=599.
    pub status: u16,
    /// Response body; default empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// `{ name, value, append }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderToAdd {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
    /// Add beside existing fields (default true) or replace them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// `[[clusters]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// Unique, `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// At least one.
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    /// Load-balancing policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb: Option<RawLbPolicy>,
    /// `least_request = { choice_count, active_request_bias }` (`lb = "least_request"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub least_request: Option<RawLeastRequest>,
    /// `slow_start = { window, aggression, min_weight_percent }`: a returning endpoint's
    /// share of requests ramps up over `window`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<RawSlowStart>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Per-worker connection cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_worker: Option<u32>,
    /// Per-worker idle connections kept per endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_idle_per_endpoint: Option<u32>,
    /// `"http1"` (default) or `"http2"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<RawUpstreamProtocol>,
    /// `"v1"` or `"v2"`: send a PROXY protocol header on each new upstream connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<RawProxyProtocolVersion>,
    /// TLS to the endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RawClusterTls>,
    /// Duration string: PING an HTTP/2 upstream connection this long after the last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_keepalive_interval: Option<String>,
    /// Duration string: close it when a PING is not answered within this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_keepalive_timeout: Option<String>,
    /// `[clusters.circuit_breakers]`: process-wide limits (Envoy's thresholds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<RawCircuitBreakers>,
    /// Percent of healthy endpoints below which every endpoint is used (0..=100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_panic_threshold: Option<f64>,
    /// `[[clusters.health_checks]]`: active health checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<RawHealthCheck>,
    /// `[clusters.outlier_detection]`: passive health from the responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<RawOutlierDetection>,
}

/// Health check kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawHealthCheckType {
    /// An HTTP/1.1 request; the status decides.
    Http,
    /// A TCP connect (and optional bytes exchanged).
    Tcp,
    /// `grpc.health.v1.Health/Check` over HTTP/2 (h2c).
    Grpc,
}

/// `[[clusters.health_checks]]`, Envoy's names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// `http`, `tcp` or `grpc`.
    #[serde(rename = "type")]
    pub kind: RawHealthCheckType,
    /// HTTP: request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// HTTP: `Host` header; gRPC: `:authority` (default: the cluster's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// gRPC: the service asked about (default: empty, the whole server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// HTTP: request method (default `GET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// HTTP: `[start, end)` status ranges that pass (default `[[200, 201]]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_statuses: Option<Vec<[u16; 2]>>,
    /// TCP: bytes to send after connecting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// TCP: bytes the answer must contain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive: Option<String>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_jitter: Option<String>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_traffic_interval: Option<String>,
    /// Failures in a row that mark an endpoint unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
    /// Passes in a row that mark it healthy again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// `healthy` (default) or `unhealthy`: how a new endpoint starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_health: Option<RawInitialHealth>,
}

/// How a new endpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawInitialHealth {
    /// Used until a check fails.
    Healthy,
    /// Unused until checks pass.
    Unhealthy,
}

/// `[clusters.outlier_detection]`, Envoy's names.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlierDetection {
    /// 5xx (and, unsplit, local-origin failures) in a row that eject; 0 turns it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx: Option<u32>,
    /// 502/503/504 (and, unsplit, local-origin failures) in a row that eject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_failure: Option<u32>,
    /// With `split_external_local_origin_errors`: connect failures, resets and timeouts in
    /// a row that eject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_local_origin_failure: Option<u32>,
    /// Count local-origin failures apart from the upstream's 5xx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_external_local_origin_errors: Option<bool>,
    /// Percent of detections that eject (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_5xx: Option<u32>,
    /// Percent of detections that eject (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_gateway_failure: Option<u32>,
    /// Percent of detections that eject (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcing_consecutive_local_origin_failure: Option<u32>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Failure percentage (0..=100) at or above which an endpoint is ejected, checked
    /// each `interval`; the detector is on when this is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_percentage_threshold: Option<f64>,
    /// Endpoints with enough requests needed for the failure percentage detector to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_percentage_minimum_hosts: Option<u32>,
    /// Requests in an interval an endpoint needs to be judged by failure percentage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_percentage_request_volume: Option<u32>,
    /// Percent of failure percentage detections that eject (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcing_failure_percentage: Option<u32>,
    /// Endpoints with enough requests needed for the success rate detector to run
    /// (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate_minimum_hosts: Option<u32>,
    /// Requests in an interval an endpoint needs to be judged by success rate (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate_request_volume: Option<u32>,
    /// An endpoint is ejected below mean − stdev × this / 1000 (default 1900).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate_stdev_factor: Option<u32>,
    /// Percent of success rate detections that eject (default 100; 0 only reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcing_success_rate: Option<u32>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<String>,
    /// Duration string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ejection_time: Option<String>,
    /// Percent of the endpoints that may be ejected at once (one always may).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<f64>,
}

/// `[clusters.circuit_breakers]`, Envoy's names; every field optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuitBreakers {
    /// Upstream connections open on all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
    /// Requests waiting for a connection on all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u64>,
    /// Requests in flight upstream on all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    /// Retries in flight on all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u64>,
    /// `{ budget_percent, min_retry_concurrency }`: overrides `max_retries`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RawRetryBudget>,
    /// Connections open to each endpoint on all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_host_max_connections: Option<u64>,
}

/// `retry_budget = { budget_percent, min_retry_concurrency }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryBudget {
    /// Percent of the requests in flight (and pending) that may be retries, 0..=100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_percent: Option<f64>,
    /// Retries always allowed in flight, whatever the percentage gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_retry_concurrency: Option<u64>,
}

/// A cluster's `tls = { sni, ca, cert, key, alpn, verify }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawClusterTls {
    /// Server name sent and verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// PEM trust anchors (relative to the config file's directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// PEM client certificate chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// PEM client private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// ALPN protocol ids in preference order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<Vec<String>>,
    /// Verify the upstream's certificate (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
}

/// PROXY protocol versions ringway can send upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawProxyProtocolVersion {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

/// `least_request = { ... }` (Envoy's `least_request_lb_config`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLeastRequest {
    /// Endpoints drawn per pick, the least loaded wins (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choice_count: Option<u32>,
    /// Weight / (active requests + 1) ^ this (default 1.0; 0 ignores the load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_request_bias: Option<f64>,
}

/// `slow_start = { ... }` (Envoy's `slow_start_config`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlowStart {
    /// Duration string: how long a returning endpoint's share ramps up.
    pub window: String,
    /// The ramp's shape: share = (time in window / window) ^ (1 / aggression) (default 1.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
    /// The least share during the window, percent of the endpoint's weight (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_weight_percent: Option<f64>,
}

/// Load-balancing policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawLbPolicy {
    /// Weighted round robin.
    RoundRobin,
    /// Power of two choices.
    LeastRequest,
    /// Weighted random.
    Random,
    /// Consistent hashing on a ring (Envoy's ring hash), by the route's `hash_policy`.
    RingHash,
    /// Consistent hashing with a Maglev lookup table, by the route's `hash_policy`.
    Maglev,
}

/// Upstream protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawUpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 with prior knowledge (h2c), streams multiplexed on pooled connections.
    Http2,
}

/// An endpoint: `"ip:port"` or `{ address = "ip:port", weight = 3 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawEndpoint {
    /// `"ip:port"`, weight 1.
    Address(String),
    /// `{ address, weight }`.
    Weighted(RawWeightedEndpoint),
}

/// `{ address, weight }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeightedEndpoint {
    /// `ip:port`.
    pub address: String,
    /// 1..=128, default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

impl RawEndpoint {
    /// The address as written.
    pub fn address(&self) -> &str {
        match self {
            Self::Address(a) => a,
            Self::Weighted(w) => &w.address,
        }
    }
}

impl<'de> Deserialize<'de> for RawEndpoint {
    // Hand-written instead of `untagged` so a bad table keeps serde's precise message
    // (unknown field, missing address) and location.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEndpoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"ip:port\" or { address = \"ip:port\", weight = N }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEndpoint, E> {
                Ok(RawEndpoint::Address(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEndpoint, A::Error> {
                RawWeightedEndpoint::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawEndpoint::Weighted)
            }
        }
        d.deserialize_any(V)
    }
}
