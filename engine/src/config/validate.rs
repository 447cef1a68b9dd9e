//! [`RawConfig`] -> [`Config`]: defaults, bounds, references, and the entry points that read,
//! parse and validate a file ([`load_file`], [`parse_str`]).
//!
//! All defaults are the `DEFAULT_*` consts below (Envoy's where a concept matches). A config is
//! accepted whole or refused with the first error, located at file:line:column with its field
//! path (DESIGN.md "Errors and bad input", STYLE.md §5). Route compilation is delegated to
//! [`super::route`]; nothing here opens sockets. Besides the config, the only files
//! read are the certificates and keys `[listeners.tls]` names (by [`super::tls`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use super::error::{FieldError, locate_field, locate_toml};
use super::raw::{
    RawAccessLogFormat, RawCircuitBreakers, RawCluster, RawConfig, RawCustomResponse, RawEndpoint,
    RawFaultFilter, RawHeaderMutation, RawHttpFilter, RawHttpOptions, RawLbPolicy, RawListener,
    RawListenerProtocol, RawProxyProtocolVersion, RawUpstreamProtocol, RawWorkers,
};
use super::route::{RouteTable, compile_routes, headers_to_add, headers_to_remove};
use super::{
    AccessLogConfig, AccessLogFormat, AdminConfig, CircuitBreakers, ClusterConfig, ClusterId,
    Config, ConfigError, CustomResponse, Endpoint, FaultConfig, HeaderMutation, HttpFilterConfig,
    HttpOptions, LbPolicy, LeastRequest, ListenerConfig, ListenerProtocol, NetworkFilterConfig,
    ProxyProtocolVersion, RetryBudget, SlowStart, TcpOptions, UpstreamProtocol, duration,
};
use crate::tls::{ServerNames, check_server_name};

/// `circuit_breakers.max_connections` (Envoy's default threshold).
pub const DEFAULT_MAX_CONNECTIONS: u64 = 1024;
/// `circuit_breakers.max_pending_requests` (Envoy's default threshold).
pub const DEFAULT_MAX_PENDING_REQUESTS: u64 = 1024;
/// `circuit_breakers.max_requests` (Envoy's default threshold).
pub const DEFAULT_MAX_REQUESTS: u64 = 1024;
/// `circuit_breakers.max_retries` (Envoy's default threshold).
pub const DEFAULT_MAX_RETRIES: u64 = 3;
/// `circuit_breakers.retry_budget.budget_percent` (Envoy's default).
pub const DEFAULT_RETRY_BUDGET_PERCENT: f64 = 20.0;
/// `circuit_breakers.retry_budget.min_retry_concurrency` (Envoy's default).
pub const DEFAULT_MIN_RETRY_CONCURRENCY: u64 = 3;
/// `http2_keepalive_timeout` (Envoy's `connection_keepalive.timeout` default).
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// `drain_timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for `workers`.
pub const MAX_WORKERS: usize = 1024;
/// `[admin] address` (Envoy's customary admin port).
pub const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:9901";
/// `[listeners.http] request_header_timeout`.
pub const DEFAULT_REQUEST_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `[listeners.http] idle_timeout`.
pub const DEFAULT_HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// `[listeners.http] stream_idle_timeout` (Envoy: 5 minutes).
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// `[listeners.http] max_request_line_bytes`.
pub const DEFAULT_MAX_REQUEST_LINE_BYTES: usize = 8192;
/// `[listeners.http] max_request_headers_bytes` (Envoy: 60 KiB; we use 64 KiB).
pub const DEFAULT_MAX_REQUEST_HEADERS_BYTES: usize = 65536;
/// `[listeners.http] max_request_headers_count` (Envoy: 100).
pub const DEFAULT_MAX_REQUEST_HEADERS_COUNT: usize = 100;
/// `[listeners.http] use_forwarded_headers`.
pub const DEFAULT_USE_FORWARDED_HEADERS: bool = true;
/// `[listeners.http] generate_request_id`.
pub const DEFAULT_GENERATE_REQUEST_ID: bool = true;
/// `[listeners.http] server_name`.
pub const DEFAULT_SERVER_NAME: &str = "ringway";
/// `[listeners.tcp] idle_timeout` (Envoy's tcp_proxy default: 1 hour).
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// `[listeners.tcp] inspect_timeout` (Envoy's `listener_filters_timeout` default: 15s).
pub const DEFAULT_TCP_INSPECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Listener `proxy_protocol`.
pub const DEFAULT_PROXY_PROTOCOL: bool = false;
/// Route `timeout` (Envoy: 15s).
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Redirect `status`.
pub const DEFAULT_REDIRECT_STATUS: u16 = 301;
/// Cluster `connect_timeout` (Envoy: 5s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Cluster `idle_timeout` for pooled upstream connections.
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Cluster `max_idle_per_endpoint`.
pub const DEFAULT_MAX_IDLE_PER_ENDPOINT: usize = 64;
/// Endpoint `weight`.
pub const DEFAULT_ENDPOINT_WEIGHT: u32 = 1;
/// Largest endpoint `weight`.
pub const MAX_ENDPOINT_WEIGHT: u32 = 128;

/// Reads, parses and validates a config file; errors name the file. Relative paths in it
/// (TLS certificates and keys) are taken from the file's directory.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    parse_str_in(&text, &path.display().to_string(), dir)
}

/// Parses and validates config text. `origin` names the text in errors (a file name,
/// `"<embedded>"`, ...). Relative paths in it are taken from the current directory; use
/// [`parse_str_in`] for text read from a file.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_str_in(text, origin, Path::new(""))
}

/// [`parse_str`] for text read from a file in `dir`: relative paths in it (TLS certificates
/// and keys) are taken from `dir`.
pub fn parse_str_in(text: &str, origin: &str, dir: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| locate_toml(text, origin, &e))?;
    validate_in(raw, dir).map_err(|e| locate_field(text, origin, e))
}

/// Validates an already parsed config (no text, so errors carry only the field path).
/// Relative paths are taken from the current directory.
pub fn validate(raw: RawConfig) -> Result<Config, FieldError> {
    validate_in(raw, Path::new(""))
}

/// [`validate`], with relative paths (TLS certificates and keys) taken from `dir`. Reads the
/// files the config names (certificates and keys).
pub fn validate_in(raw: RawConfig, dir: &Path) -> Result<Config, FieldError> {
    let workers = match &raw.workers {
        None => auto_workers(),
        Some(RawWorkers::Word(w)) if w == "auto" => auto_workers(),
        Some(RawWorkers::Word(w)) => {
            return Err(FieldError::new(
                "workers",
                format!("expected \"auto\" or a number, not {w:?}"),
            ));
        }
        Some(RawWorkers::Count(n)) => match usize::try_from(*n) {
            Ok(n @ 1..=MAX_WORKERS) => n,
            _ => {
                return Err(FieldError::new(
                    "workers",
                    format!("must be 1..={MAX_WORKERS} or \"auto\", not {n}"),
                ));
            }
        },
    };
    let drain_timeout = match &raw.drain_timeout {
        Some(d) => parse_duration(d, "drain_timeout")?,
        None => DEFAULT_DRAIN_TIMEOUT,
    };
    let admin = match &raw.admin {
        Some(a) if a.enabled == Some(false) => None,
        Some(a) => Some(AdminConfig {
            address: parse_addr(
                a.address.as_deref().unwrap_or(DEFAULT_ADMIN_ADDRESS),
                "admin.address",
            )?,
        }),
        None => Some(AdminConfig {
            address: parse_addr(DEFAULT_ADMIN_ADDRESS, "admin.address")?,
        }),
    };

    let mut clusters = Vec::with_capacity(raw.clusters.len());
    let mut cluster_ids: HashMap<&str, ClusterId> = HashMap::new();
    for (i, c) in raw.clusters.iter().enumerate() {
        let at = format!("clusters[{i}]");
        check_name(&c.name, &format!("{at}.name"))?;
        if let Some(first) = cluster_ids.insert(&c.name, i) {
            return Err(FieldError::new(
                format!("{at}.name"),
                format!(
                    "duplicate cluster name {:?} (also clusters[{first}])",
                    c.name
                ),
            ));
        }
        clusters.push(cluster(c, &at, dir)?);
    }

    let mut listeners = Vec::with_capacity(raw.listeners.len());
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut addresses: HashMap<SocketAddr, String> = HashMap::new();
    if let Some(a) = &admin {
        addresses.insert(a.address, "admin.address".into());
    }
    for (i, l) in raw.listeners.iter().enumerate() {
        let at = format!("listeners[{i}]");
        check_name(&l.name, &format!("{at}.name"))?;
        if let Some(first) = names.insert(&l.name, i) {
            return Err(FieldError::new(
                format!("{at}.name"),
                format!(
                    "duplicate listener name {:?} (also listeners[{first}])",
                    l.name
                ),
            ));
        }
        let listener = listener(l, &at, &cluster_ids, &clusters, dir)?;
        // Port 0 asks the kernel for a free port, so two of them never collide.
        let fixed_port = listener.address.port() != 0;
        if let Some(first) = addresses
            .insert(listener.address, format!("{at}.address"))
            .filter(|_| fixed_port)
        {
            return Err(FieldError::new(
                format!("{at}.address"),
                format!("address {} is already used by {first}", listener.address),
            ));
        }
        listeners.push(listener);
    }

    Ok(Config {
        workers,
        drain_timeout,
        admin,
        listeners,
        clusters,
        raw,
    })
}

fn auto_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
}

fn listener(
    l: &RawListener,
    at: &str,
    clusters: &HashMap<&str, ClusterId>,
    cluster_cfgs: &[ClusterConfig],
    dir: &Path,
) -> Result<ListenerConfig, FieldError> {
    let address = parse_addr(&l.address, &format!("{at}.address"))?;
    let protocol = match l.protocol.unwrap_or(RawListenerProtocol::Http) {
        RawListenerProtocol::Http => ListenerProtocol::Http,
        RawListenerProtocol::Tcp => ListenerProtocol::Tcp,
    };
    let tcp = tcp_options(l, at, protocol, clusters)?;
    let network_filters = network_filters(l, at, protocol)?;
    let max_connections_per_worker = positive(
        l.max_connections_per_worker,
        &format!("{at}.max_connections_per_worker"),
    )?;
    let access_log = l.access_log.as_ref().map(|a| AccessLogConfig {
        path: a
            .path
            .as_deref()
            .filter(|p| *p != "-" && !p.is_empty())
            .map(PathBuf::from),
        format: match a.format.unwrap_or(RawAccessLogFormat::Default) {
            RawAccessLogFormat::Default => AccessLogFormat::Default,
            RawAccessLogFormat::Json => AccessLogFormat::Json,
        },
    });
    let mut http = http_options(l.http.as_ref(), &format!("{at}.http"))?;
    let routes = compile_routes(&l.virtual_hosts, at, clusters)?;
    let tls = match &l.tls {
        Some(t) => Some(super::tls::server_tls(t, at, protocol, dir)?),
        None => None,
    };
    http.https = tls.is_some();
    let http_filters = http_filters(l, at, protocol, &routes, clusters, cluster_cfgs)?;
    Ok(ListenerConfig {
        name: l.name.clone(),
        address,
        protocol,
        routes,
        http,
        tcp,
        proxy_protocol: l.proxy_protocol.unwrap_or(DEFAULT_PROXY_PROTOCOL),
        tls,
        access_log,
        max_connections_per_worker,
        network_filters,
        http_filters,
    })
}

/// `[[listeners.http_filters]]`: HTTP listeners only; each filter's settings checked.
fn http_filters(
    l: &RawListener,
    at: &str,
    protocol: ListenerProtocol,
    routes: &RouteTable,
    cluster_ids: &HashMap<&str, ClusterId>,
    clusters: &[ClusterConfig],
) -> Result<Vec<HttpFilterConfig>, FieldError> {
    if protocol != ListenerProtocol::Http && !l.http_filters.is_empty() {
        return Err(FieldError::new(
            format!("{at}.http_filters"),
            "HTTP filters are only for protocol = \"http\" listeners",
        ));
    }
    let mut out = Vec::with_capacity(l.http_filters.len());
    for (i, f) in l.http_filters.iter().enumerate() {
        let fat = format!("{at}.http_filters[{i}]");
        out.push(match f {
            RawHttpFilter::Buffer(b) => {
                if b.max_request_bytes == 0 {
                    return Err(FieldError::new(
                        format!("{fat}.max_request_bytes"),
                        "must be at least 1",
                    ));
                }
                HttpFilterConfig::Buffer {
                    max_request_bytes: b.max_request_bytes,
                }
            }
            RawHttpFilter::Fault(f) => HttpFilterConfig::Fault(fault_filter(f, &fat)?),
            RawHttpFilter::HeaderMutation(m) => {
                HttpFilterConfig::HeaderMutation(header_mutation(m, &fat, routes)?)
            }
            RawHttpFilter::CustomResponse(c) => {
                HttpFilterConfig::CustomResponse(custom_response(c, &fat)?)
            }
            RawHttpFilter::LocalRatelimit(r) => {
                if out
                    .iter()
                    .any(|f| matches!(f, HttpFilterConfig::LocalRateLimit(_)))
                {
                    return Err(FieldError::new(
                        format!("{fat}.name"),
                        "a listener has at most one local_ratelimit filter (use descriptors \
                         and per-route buckets for more limits)",
                    ));
                }
                HttpFilterConfig::LocalRateLimit(super::ratelimit::local_ratelimit(r, &fat)?)
            }
            RawHttpFilter::Ratelimit(r) => {
                if out
                    .iter()
                    .any(|f| matches!(f, HttpFilterConfig::RateLimit(_)))
                {
                    return Err(FieldError::new(
                        format!("{fat}.name"),
                        "a listener has at most one ratelimit filter (one request asks one \
                         rate limit service, about all its descriptors)",
                    ));
                }
                HttpFilterConfig::RateLimit(super::ratelimit::global_ratelimit(
                    r,
                    &fat,
                    cluster_ids,
                    clusters,
                )?)
            }
        });
    }
    if !out
        .iter()
        .any(|f| matches!(f, HttpFilterConfig::RateLimit(_)))
    {
        // Descriptors nobody asks about would silently limit nothing.
        for (vi, vh) in l.virtual_hosts.iter().enumerate() {
            let vat = format!("{at}.virtual_hosts[{vi}]");
            let route = vh
                .routes
                .iter()
                .position(|r| !r.rate_limits.is_empty())
                .map(|ri| format!("{vat}.routes[{ri}].rate_limits"));
            if let Some(field) = (!vh.rate_limits.is_empty())
                .then(|| format!("{vat}.rate_limits"))
                .or(route)
            {
                return Err(FieldError::new(
                    field,
                    "the listener has no ratelimit filter in [[listeners.http_filters]] to ask \
                     a rate limit service about these descriptors",
                ));
            }
        }
    }
    let limited = out
        .iter()
        .any(|f| matches!(f, HttpFilterConfig::LocalRateLimit(_)));
    if !limited {
        // A per-route setting of a filter the listener does not run would silently do nothing.
        for (vi, vh) in l.virtual_hosts.iter().enumerate() {
            let vat = format!("{at}.virtual_hosts[{vi}]");
            if vh
                .filters
                .as_ref()
                .is_some_and(|f| f.local_ratelimit.is_some())
            {
                return Err(no_ratelimit_filter(format!(
                    "{vat}.filters.local_ratelimit"
                )));
            }
            for (ri, r) in vh.routes.iter().enumerate() {
                if r.filters
                    .as_ref()
                    .is_some_and(|f| f.local_ratelimit.is_some())
                {
                    return Err(no_ratelimit_filter(format!(
                        "{vat}.routes[{ri}].filters.local_ratelimit"
                    )));
                }
            }
        }
    }
    Ok(out)
}

fn no_ratelimit_filter(at: String) -> FieldError {
    FieldError::new(
        at,
        "the listener has no local_ratelimit filter in [[listeners.http_filters]] for this \
         setting to apply to",
    )
}

/// `name = "header_mutation"`: header and trailer lists checked like a route's; whether a
/// route matches on a request header it changes is worked out here, once.
fn header_mutation(
    m: &RawHeaderMutation,
    at: &str,
    routes: &RouteTable,
) -> Result<HeaderMutation, FieldError> {
    let add = |list, field: &str| headers_to_add(list, &format!("{at}.{field}"));
    let remove = |list, field: &str| headers_to_remove(list, &format!("{at}.{field}"));
    let mut out = HeaderMutation {
        request_headers_to_add: add(&m.request_headers_to_add, "request_headers_to_add")?,
        request_headers_to_remove: remove(
            &m.request_headers_to_remove,
            "request_headers_to_remove",
        )?,
        response_headers_to_add: add(&m.response_headers_to_add, "response_headers_to_add")?,
        response_headers_to_remove: remove(
            &m.response_headers_to_remove,
            "response_headers_to_remove",
        )?,
        request_trailers_to_add: add(&m.request_trailers_to_add, "request_trailers_to_add")?,
        request_trailers_to_remove: remove(
            &m.request_trailers_to_remove,
            "request_trailers_to_remove",
        )?,
        response_trailers_to_add: add(&m.response_trailers_to_add, "response_trailers_to_add")?,
        response_trailers_to_remove: remove(
            &m.response_trailers_to_remove,
            "response_trailers_to_remove",
        )?,
        affects_routing: false,
    };
    let routed = |name: &Bytes| name.as_ref() == b"host" || routes.reads_header(name);
    out.affects_routing = out.request_headers_to_add.iter().any(|h| routed(&h.name))
        || out.request_headers_to_remove.iter().any(routed);
    Ok(out)
}

/// `name = "custom_response"`: at least one final status to replace; the status sent a
/// final one too.
fn custom_response(c: &RawCustomResponse, at: &str) -> Result<CustomResponse, FieldError> {
    if c.status_codes.is_empty() {
        return Err(FieldError::new(
            format!("{at}.status_codes"),
            "list at least one upstream status to replace",
        ));
    }
    for (i, s) in c.status_codes.iter().enumerate() {
        if !(200..=599).contains(s) {
            return Err(FieldError::new(
                format!("{at}.status_codes[{i}]"),
                format!("{s} is not a final status (200..=599)"),
            ));
        }
    }
    if let Some(s) = c.status.filter(|s| !(200..=599).contains(s)) {
        return Err(FieldError::new(
            format!("{at}.status"),
            format!("{s} is not a status to answer with (200..=599)"),
        ));
    }
    Ok(CustomResponse {
        status_codes: c.status_codes.clone(),
        status: c.status,
        body: Bytes::from(c.body.clone()),
    })
}

/// `name = "fault"`: a delay, an abort, or both; percentages within 0..=100.
fn fault_filter(f: &RawFaultFilter, at: &str) -> Result<FaultConfig, FieldError> {
    if f.delay.is_none() && f.abort_status.is_none() && f.response_rate_limit_kbps.is_none() {
        return Err(FieldError::new(
            at,
            "a fault filter needs `delay`, `abort_status`, `response_rate_limit_kbps`, or some of them",
        ));
    }
    if f.response_rate_limit_kbps == Some(0) {
        return Err(FieldError::new(
            format!("{at}.response_rate_limit_kbps"),
            "must be at least 1",
        ));
    }
    let percent = |v: Option<u32>, field: &str| match v {
        None => Ok(100),
        Some(p @ 0..=100) => Ok(p),
        Some(p) => Err(FieldError::new(
            format!("{at}.{field}"),
            format!("{p} is not a percentage (0..=100)"),
        )),
    };
    let delay = match &f.delay {
        Some(d) => Some(parse_duration(d, &format!("{at}.delay"))?),
        None => None,
    };
    if let Some(s) = f.abort_status {
        if !(200..=599).contains(&s) {
            return Err(FieldError::new(
                format!("{at}.abort_status"),
                format!("{s} is not a status to answer with (200..=599)"),
            ));
        }
    }
    Ok(FaultConfig {
        delay,
        delay_percent: percent(f.delay_percent, "delay_percent")?,
        abort_status: f.abort_status,
        abort_percent: percent(f.abort_percent, "abort_percent")?,
        response_rate_limit: f.response_rate_limit_kbps.map(|k| k.saturating_mul(1024)),
        response_rate_limit_percent: percent(
            f.response_rate_limit_percent,
            "response_rate_limit_percent",
        )?,
    })
}

/// `[[listeners.network_filters]]`: tcp listeners only, every name a known filter.
fn network_filters(
    l: &RawListener,
    at: &str,
    protocol: ListenerProtocol,
) -> Result<Vec<NetworkFilterConfig>, FieldError> {
    if protocol == ListenerProtocol::Http && !l.network_filters.is_empty() {
        return Err(FieldError::new(
            format!("{at}.network_filters"),
            "network_filters are only for protocol = \"tcp\" listeners",
        ));
    }
    l.network_filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let fat = format!("{at}.network_filters[{i}]");
            if f.name != "local_ratelimit" {
                // Settings of the rate limit only.
                let extra = [
                    ("token_bucket", f.token_bucket.is_some()),
                    ("stat_prefix", f.stat_prefix.is_some()),
                ];
                if let Some((field, _)) = extra.iter().find(|(_, set)| *set) {
                    return Err(FieldError::new(
                        format!("{fat}.{field}"),
                        format!("the {:?} network filter has no `{field}`", f.name),
                    ));
                }
            }
            match f.name.as_str() {
                "byte_counter" => Ok(NetworkFilterConfig::ByteCounter),
                "local_ratelimit" => super::ratelimit::network_filter(f, &fat, &l.name),
                #[cfg(test)]
                "test_checksum" => Ok(NetworkFilterConfig::TestChecksum),
                #[cfg(test)]
                "test_frames" => Ok(NetworkFilterConfig::TestFrames),
                other => Err(FieldError::new(
                    format!("{fat}.name"),
                    format!(
                        "unknown network filter {other:?} (known: \"byte_counter\", \
                         \"local_ratelimit\")"
                    ),
                )),
            }
        })
        .collect()
}

/// The tcp-only fields: required and allowed for `protocol = "tcp"`, refused for http.
fn tcp_options(
    l: &RawListener,
    at: &str,
    protocol: ListenerProtocol,
    clusters: &HashMap<&str, ClusterId>,
) -> Result<TcpOptions, FieldError> {
    if protocol == ListenerProtocol::Http {
        if l.cluster.is_some() {
            return Err(FieldError::new(
                format!("{at}.cluster"),
                "only tcp listeners name a cluster; http listeners route with virtual_hosts",
            ));
        }
        if l.tcp.as_ref().is_some_and(|t| !t.sni.is_empty()) {
            return Err(FieldError::new(
                format!("{at}.tcp.sni"),
                "SNI routes are only for protocol = \"tcp\" listeners; http listeners route by \
                 virtual_hosts domains",
            ));
        }
        if l.tcp.is_some() {
            return Err(FieldError::new(
                format!("{at}.tcp"),
                "[listeners.tcp] is only for protocol = \"tcp\"",
            ));
        }
        return Ok(TcpOptions {
            cluster: None,
            idle_timeout: None,
            sni: None,
            inspect_timeout: DEFAULT_TCP_INSPECT_TIMEOUT,
        });
    }
    let refuse = |field: &str, why: &str| Err(FieldError::new(format!("{at}.{field}"), why));
    if !l.virtual_hosts.is_empty() {
        return refuse(
            "virtual_hosts",
            "tcp listeners forward to `cluster` and have no virtual_hosts",
        );
    }
    if l.http.is_some() {
        return refuse("http", "[listeners.http] is only for protocol = \"http\"");
    }
    let sni = sni_routes(l, at, clusters)?;
    let cluster = match &l.cluster {
        Some(name) => match clusters.get(name.as_str()) {
            Some(&c) => Some(c),
            None => return refuse("cluster", &format!("unknown cluster {name:?}")),
        },
        None if sni.is_some() => None,
        None => {
            return Err(FieldError::new(
                at,
                "a tcp listener needs `cluster = \"<name>\"` or [[listeners.tcp.sni]] routes",
            ));
        }
    };
    let idle_timeout = match l.tcp.as_ref().and_then(|t| t.idle_timeout.as_ref()) {
        Some(d) => parse_duration(d, &format!("{at}.tcp.idle_timeout"))?,
        None => DEFAULT_TCP_IDLE_TIMEOUT,
    };
    let inspect_timeout = match l.tcp.as_ref().and_then(|t| t.inspect_timeout.as_ref()) {
        Some(d) => {
            let field = format!("{at}.tcp.inspect_timeout");
            let d = parse_duration(d, &field)?;
            if d.is_zero() {
                return Err(FieldError::new(field, "must be greater than 0s"));
            }
            d
        }
        None => DEFAULT_TCP_INSPECT_TIMEOUT,
    };
    Ok(TcpOptions {
        cluster,
        idle_timeout: (!idle_timeout.is_zero()).then_some(idle_timeout),
        sni,
        inspect_timeout,
    })
}

/// `[[listeners.tcp.sni]]`: every name valid and in one route only, every cluster known.
/// `None` when the listener has no SNI routes.
fn sni_routes(
    l: &RawListener,
    at: &str,
    clusters: &HashMap<&str, ClusterId>,
) -> Result<Option<ServerNames<ClusterId>>, FieldError> {
    let routes = l.tcp.as_ref().map(|t| t.sni.as_slice()).unwrap_or_default();
    if routes.is_empty() {
        return Ok(None);
    }
    let mut names = ServerNames::new();
    // Which route each (lowercase) name came from, for the duplicate error.
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        let rat = format!("{at}.tcp.sni[{i}]");
        let Some(&cluster) = clusters.get(r.cluster.as_str()) else {
            return Err(FieldError::new(
                format!("{rat}.cluster"),
                format!("unknown cluster {:?}", r.cluster),
            ));
        };
        if r.server_names.is_empty() {
            return Err(FieldError::new(
                format!("{rat}.server_names"),
                "must name at least one server (\"a.example\" or \"*.example\")",
            ));
        }
        for (j, n) in r.server_names.iter().enumerate() {
            let field = format!("{rat}.server_names[{j}]");
            let name = check_server_name(n).map_err(|why| FieldError::new(&field, why))?;
            if let Some(first) = owner.insert(name.clone(), i) {
                let also = if first == i {
                    "listed twice in this route".to_owned()
                } else {
                    format!("also in {at}.tcp.sni[{first}]")
                };
                return Err(FieldError::new(
                    field,
                    format!("duplicate server name {name:?} ({also})"),
                ));
            }
            names.insert(&name, cluster);
        }
    }
    Ok(Some(names))
}

fn http_options(h: Option<&RawHttpOptions>, at: &str) -> Result<HttpOptions, FieldError> {
    let default = RawHttpOptions::default();
    let h = h.unwrap_or(&default);
    let duration_or = |v: &Option<String>, field: &str, default: Duration| match v {
        Some(d) => parse_duration(d, &format!("{at}.{field}")),
        None => Ok(default),
    };
    let size_or = |v: Option<u32>, field: &str, default: usize| match v {
        Some(0) => Err(FieldError::new(
            format!("{at}.{field}"),
            "must be greater than 0",
        )),
        Some(n) => Ok(n as usize),
        None => Ok(default),
    };
    let via = match &h.via {
        Some(v) => {
            check_header_value(v, &format!("{at}.via"))?;
            (!v.is_empty()).then(|| v.clone())
        }
        None => None,
    };
    let server_name = match &h.server_name {
        Some(s) => {
            check_header_value(s, &format!("{at}.server_name"))?;
            s.clone()
        }
        None => DEFAULT_SERVER_NAME.to_owned(),
    };
    Ok(HttpOptions {
        request_header_timeout: duration_or(
            &h.request_header_timeout,
            "request_header_timeout",
            DEFAULT_REQUEST_HEADER_TIMEOUT,
        )?,
        idle_timeout: duration_or(&h.idle_timeout, "idle_timeout", DEFAULT_HTTP_IDLE_TIMEOUT)?,
        stream_idle_timeout: duration_or(
            &h.stream_idle_timeout,
            "stream_idle_timeout",
            DEFAULT_STREAM_IDLE_TIMEOUT,
        )?,
        request_timeout: Some(duration_or(
            &h.request_timeout,
            "request_timeout",
            Duration::ZERO,
        )?)
        .filter(|t| !t.is_zero()),
        max_stream_duration: Some(duration_or(
            &h.max_stream_duration,
            "max_stream_duration",
            Duration::ZERO,
        )?)
        .filter(|t| !t.is_zero()),
        max_request_line_bytes: size_or(
            h.max_request_line_bytes,
            "max_request_line_bytes",
            DEFAULT_MAX_REQUEST_LINE_BYTES,
        )?,
        max_request_headers_bytes: size_or(
            h.max_request_headers_bytes,
            "max_request_headers_bytes",
            DEFAULT_MAX_REQUEST_HEADERS_BYTES,
        )?,
        max_request_headers_count: size_or(
            h.max_request_headers_count,
            "max_request_headers_count",
            DEFAULT_MAX_REQUEST_HEADERS_COUNT,
        )?,
        use_forwarded_headers: h
            .use_forwarded_headers
            .unwrap_or(DEFAULT_USE_FORWARDED_HEADERS),
        generate_request_id: h.generate_request_id.unwrap_or(DEFAULT_GENERATE_REQUEST_ID),
        via,
        server_name,
        https: false,
    })
}

/// `least_request = { choice_count >= 2, active_request_bias >= 0 }`, with that policy only.
fn least_request(c: &RawCluster, lb: LbPolicy, at: &str) -> Result<LeastRequest, FieldError> {
    let Some(raw) = &c.least_request else {
        return Ok(LeastRequest::default());
    };
    let at = format!("{at}.least_request");
    if lb != LbPolicy::LeastRequest {
        return Err(FieldError::new(at, "only with lb = \"least_request\""));
    }
    let d = LeastRequest::default();
    let choice_count = raw.choice_count.unwrap_or(d.choice_count);
    if !(2..=100).contains(&choice_count) {
        return Err(FieldError::new(
            format!("{at}.choice_count"),
            format!("must be 2..=100, not {choice_count}"),
        ));
    }
    let bias = raw.active_request_bias.unwrap_or(d.active_request_bias);
    if !(0.0..=100.0).contains(&bias) {
        return Err(FieldError::new(
            format!("{at}.active_request_bias"),
            format!("must be 0..=100, not {bias}"),
        ));
    }
    Ok(LeastRequest {
        choice_count,
        active_request_bias: bias,
    })
}

/// `slow_start = { window > 0, aggression > 0, min_weight_percent 0..=100 }`; not with the
/// hashing policies (a key's endpoint is not a share to ramp).
fn slow_start(c: &RawCluster, lb: LbPolicy, at: &str) -> Result<Option<SlowStart>, FieldError> {
    let Some(raw) = &c.slow_start else {
        return Ok(None);
    };
    let at = format!("{at}.slow_start");
    if matches!(lb, LbPolicy::RingHash | LbPolicy::Maglev) {
        return Err(FieldError::new(
            at,
            "only with lb = \"round_robin\", \"least_request\" or \"random\"",
        ));
    }
    let window = parse_duration(&raw.window, &format!("{at}.window"))?;
    if window.is_zero() {
        return Err(FieldError::new(
            format!("{at}.window"),
            "must be greater than 0",
        ));
    }
    let aggression = raw.aggression.unwrap_or(1.0);
    if !(aggression > 0.0 && aggression <= 100.0) {
        return Err(FieldError::new(
            format!("{at}.aggression"),
            format!("must be greater than 0 (at most 100), not {aggression}"),
        ));
    }
    let min_weight_percent = raw.min_weight_percent.unwrap_or(10.0);
    if !(0.0..=100.0).contains(&min_weight_percent) {
        return Err(FieldError::new(
            format!("{at}.min_weight_percent"),
            format!("must be 0..=100, not {min_weight_percent}"),
        ));
    }
    Ok(Some(SlowStart {
        window,
        aggression,
        min_weight_percent,
    }))
}

fn cluster(c: &RawCluster, at: &str, dir: &Path) -> Result<ClusterConfig, FieldError> {
    if c.endpoints.is_empty() {
        return Err(FieldError::new(
            format!("{at}.endpoints"),
            "a cluster needs at least one endpoint",
        ));
    }
    let mut endpoints = Vec::with_capacity(c.endpoints.len());
    for (i, e) in c.endpoints.iter().enumerate() {
        let eat = format!("{at}.endpoints[{i}]");
        let (address, weight) = match e {
            RawEndpoint::Address(a) => (parse_addr(a, &eat)?, DEFAULT_ENDPOINT_WEIGHT),
            RawEndpoint::Weighted(w) => (
                parse_addr(&w.address, &format!("{eat}.address"))?,
                w.weight.unwrap_or(DEFAULT_ENDPOINT_WEIGHT),
            ),
        };
        if !(1..=MAX_ENDPOINT_WEIGHT).contains(&weight) {
            return Err(FieldError::new(
                format!("{eat}.weight"),
                format!("weight must be 1..={MAX_ENDPOINT_WEIGHT}, not {weight}"),
            ));
        }
        endpoints.push(Endpoint { address, weight });
    }
    let duration_or = |v: &Option<String>, field: &str, default: Duration| match v {
        Some(d) => parse_duration(d, &format!("{at}.{field}")),
        None => Ok(default),
    };
    let connect_timeout = duration_or(
        &c.connect_timeout,
        "connect_timeout",
        DEFAULT_CONNECT_TIMEOUT,
    )?;
    if connect_timeout.is_zero() {
        return Err(FieldError::new(
            format!("{at}.connect_timeout"),
            "must be greater than 0s",
        ));
    }
    let protocol = match c.protocol.unwrap_or(RawUpstreamProtocol::Http1) {
        RawUpstreamProtocol::Http1 => UpstreamProtocol::Http1,
        RawUpstreamProtocol::Http2 => UpstreamProtocol::Http2,
    };
    if protocol == UpstreamProtocol::Http2 && c.proxy_protocol.is_some() {
        // A PROXY header speaks for one client; an HTTP/2 connection carries many.
        return Err(FieldError::new(
            format!("{at}.proxy_protocol"),
            "cannot be combined with protocol = \"http2\" (a PROXY header speaks for one client, an HTTP/2 connection carries many)",
        ));
    }
    let http2_keepalive_interval = match &c.http2_keepalive_interval {
        Some(d) => {
            let at = format!("{at}.http2_keepalive_interval");
            let d = parse_duration(d, &at)?;
            if d.is_zero() {
                return Err(FieldError::new(
                    at,
                    "must be greater than 0s (omit it to turn keep-alive off)",
                ));
            }
            Some(d)
        }
        None => None,
    };
    let http2_keepalive_timeout = duration_or(
        &c.http2_keepalive_timeout,
        "http2_keepalive_timeout",
        DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
    )?;
    if http2_keepalive_timeout.is_zero() {
        return Err(FieldError::new(
            format!("{at}.http2_keepalive_timeout"),
            "must be greater than 0s",
        ));
    }
    let lb = match c.lb.unwrap_or(RawLbPolicy::RoundRobin) {
        RawLbPolicy::RoundRobin => LbPolicy::RoundRobin,
        RawLbPolicy::LeastRequest => LbPolicy::LeastRequest,
        RawLbPolicy::Random => LbPolicy::Random,
        RawLbPolicy::RingHash => LbPolicy::RingHash,
        RawLbPolicy::Maglev => LbPolicy::Maglev,
    };
    Ok(ClusterConfig {
        name: c.name.clone(),
        lb_table: super::lb_table::Table::build(lb, &endpoints).map(std::sync::Arc::new),
        least_request: least_request(c, lb, at)?,
        slow_start: slow_start(c, lb, at)?,
        endpoints,
        lb,
        connect_timeout,
        idle_timeout: duration_or(
            &c.idle_timeout,
            "idle_timeout",
            DEFAULT_UPSTREAM_IDLE_TIMEOUT,
        )?,
        max_connections_per_worker: positive(
            c.max_connections_per_worker,
            &format!("{at}.max_connections_per_worker"),
        )?,
        max_idle_per_endpoint: c
            .max_idle_per_endpoint
            .map_or(DEFAULT_MAX_IDLE_PER_ENDPOINT, |n| n as usize),
        protocol,
        proxy_protocol: c.proxy_protocol.map(|v| match v {
            RawProxyProtocolVersion::V1 => ProxyProtocolVersion::V1,
            RawProxyProtocolVersion::V2 => ProxyProtocolVersion::V2,
        }),
        tls: match &c.tls {
            None => None,
            Some(t) => Some(super::upstream_tls::client_tls(t, at, protocol, dir)?),
        },
        http2_keepalive_interval,
        http2_keepalive_timeout,
        circuit_breakers: match &c.circuit_breakers {
            None => CircuitBreakers::default(),
            Some(cb) => circuit_breakers(cb, &format!("{at}.circuit_breakers"))?,
        },
        healthy_panic_threshold: super::health::panic_threshold(c.healthy_panic_threshold, at)?,
        health_checks: c
            .health_checks
            .iter()
            .enumerate()
            .map(|(i, h)| super::health::health_check(h, &format!("{at}.health_checks[{i}]")))
            .collect::<Result<_, _>>()?,
        outlier_detection: match &c.outlier_detection {
            None => None,
            Some(o) => Some(super::health::outlier_detection(
                o,
                &format!("{at}.outlier_detection"),
            )?),
        },
    })
}

fn circuit_breakers(cb: &RawCircuitBreakers, at: &str) -> Result<CircuitBreakers, FieldError> {
    // A limit of 0 on connections or requests would refuse every request: surely a mistake.
    // 0 pending requests (no queue) and 0 retries are meaningful.
    let nonzero = |v: Option<u64>, field: &str, default: u64| match v {
        Some(0) => Err(FieldError::new(
            format!("{at}.{field}"),
            "must be greater than 0 (0 would refuse every request)",
        )),
        v => Ok(v.unwrap_or(default)),
    };
    let retry_budget = match &cb.retry_budget {
        None => None,
        Some(b) => {
            let budget_percent = b.budget_percent.unwrap_or(DEFAULT_RETRY_BUDGET_PERCENT);
            if !(0.0..=100.0).contains(&budget_percent) {
                return Err(FieldError::new(
                    format!("{at}.retry_budget.budget_percent"),
                    format!("must be 0..=100 (a percentage), not {budget_percent}"),
                ));
            }
            Some(RetryBudget {
                budget_percent,
                min_retry_concurrency: b
                    .min_retry_concurrency
                    .unwrap_or(DEFAULT_MIN_RETRY_CONCURRENCY),
            })
        }
    };
    Ok(CircuitBreakers {
        max_connections: nonzero(
            cb.max_connections,
            "max_connections",
            DEFAULT_MAX_CONNECTIONS,
        )?,
        max_pending_requests: cb
            .max_pending_requests
            .unwrap_or(DEFAULT_MAX_PENDING_REQUESTS),
        max_requests: nonzero(cb.max_requests, "max_requests", DEFAULT_MAX_REQUESTS)?,
        max_retries: cb.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        retry_budget,
        per_host_max_connections: match cb.per_host_max_connections {
            None => None,
            v => Some(nonzero(v, "per_host_max_connections", 0)?),
        },
    })
}

fn positive(v: Option<u32>, at: &str) -> Result<Option<u32>, FieldError> {
    match v {
        Some(0) => Err(FieldError::new(
            at,
            "must be greater than 0 (omit the field for no limit)",
        )),
        other => Ok(other),
    }
}

/// `ip:port` only (DNS names are not resolved yet).
pub(crate) fn parse_addr(s: &str, at: &str) -> Result<SocketAddr, FieldError> {
    s.parse().map_err(|_| {
        FieldError::new(
            at,
            format!(
                "invalid socket address {s:?}: expected ip:port such as 127.0.0.1:8080 or \
                 [::1]:8080 (hostnames are not supported yet)"
            ),
        )
    })
}

/// A duration string; see [`duration::parse`].
pub(crate) fn parse_duration(s: &str, at: &str) -> Result<Duration, FieldError> {
    duration::parse(s).map_err(|why| FieldError::new(at, format!("invalid duration {s:?}: {why}")))
}

/// Listener, cluster and virtual host names: `[A-Za-z0-9_.-]+` (they appear in stat names).
pub(crate) fn check_name(name: &str, at: &str) -> Result<(), FieldError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(FieldError::new(
            at,
            format!("invalid name {name:?}: use letters, digits, `_`, `.` and `-`"),
        ));
    }
    Ok(())
}

/// A header name must be an RFC 9110 token; returned lowercase.
pub(crate) fn header_name(name: &str, at: &str) -> Result<Bytes, FieldError> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(FieldError::new(
            at,
            format!("invalid header name {name:?}: must be a token (RFC 9110 section 5.1)"),
        ));
    }
    Ok(Bytes::from(name.to_ascii_lowercase()))
}

/// A header value must not contain CR, LF or NUL (they would split or end the header).
pub(crate) fn check_header_value(value: &str, at: &str) -> Result<(), FieldError> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(FieldError::new(
            at,
            format!("invalid header value {value:?}: CR, LF and NUL are not allowed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CONFIG;
    use crate::config::route::Action;

    /// The error for `text`, as (line, column, path, reason), and its Display.
    fn err(text: &str) -> (usize, usize, String, String) {
        match parse_str(text, "t.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(ConfigError::Invalid {
                origin,
                line,
                column,
                path,
                reason,
            }) => {
                assert_eq!(origin, "t.toml");
                (line, column, path, reason)
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }

    /// Asserts the error is at `line` with the path and a reason containing `reason`.
    #[track_caller]
    fn assert_err(text: &str, line: usize, path: &str, reason: &str) {
        let (l, _, p, r) = err(text);
        assert_eq!((l, p.as_str()), (line, path), "reason: {r}\n{text}");
        assert!(r.contains(reason), "{r:?} does not contain {reason:?}");
    }

    const LISTENER: &str = "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:8080\"\n";
    const CLUSTER: &str = "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:9000\"]\n";

    /// A listener with one `*` vhost whose single route body is `route` (lines 6.. of text).
    fn with_route(route: &str) -> String {
        format!(
            "{LISTENER}[[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"*\"]\n\
             [[listeners.virtual_hosts.routes]]\n{route}\n{CLUSTER}"
        )
    }
    const R: &str = "listeners[0].virtual_hosts[0].routes[0]";

    #[test]
    fn default_config_parses_and_serves_a_direct_response() {
        let cfg = parse_str(DEFAULT_CONFIG, "<embedded>").unwrap();
        assert!(cfg.workers >= 1);
        assert_eq!(cfg.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(
            cfg.admin.unwrap().address,
            "127.0.0.1:9901".parse().unwrap()
        );
        let l = &cfg.listeners[0];
        assert_eq!(l.name, "http");
        assert_eq!(l.address, "127.0.0.1:8080".parse().unwrap());
        let vh = l.routes.virtual_host(b"anything").unwrap();
        match &vh.routes[0].action {
            Action::DirectResponse { status, body } => {
                assert_eq!(*status, 200);
                assert_eq!(body.as_ref(), b"ringway is running\n");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(cfg.clusters.is_empty());
    }

    #[test]
    fn documented_example_parses() {
        let doc = include_str!("../../../docs/config.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + doc[start..].find("```").unwrap();
        let cfg = parse_str(&doc[start..end], "docs/config.md").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.listeners[0].name, "http");
        assert_eq!(cfg.clusters[0].endpoints.len(), 2);
    }

    /// Bad config text of any shape is an error, never a panic: every truncation of the
    /// documented example and every single-character replacement of the default config.
    #[test]
    fn mangled_text_never_panics() {
        let doc = include_str!("../../../docs/config.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &doc[start..start + doc[start..].find("```").unwrap()];
        let mut errors = 0;
        for (i, _) in example.char_indices() {
            if let Err(e) = parse_str(&example[..i], "t") {
                let text = e.to_string();
                assert!(text.starts_with("t:"), "{text}");
                errors += 1;
            }
        }
        assert!(errors > 100);
        for (i, c) in DEFAULT_CONFIG.char_indices() {
            for replacement in ["\"", "]", "[", "=", "\n", "é", "*", ""] {
                let mut text = DEFAULT_CONFIG.to_owned();
                text.replace_range(i..i + c.len_utf8(), replacement);
                let _ = parse_str(&text, "t");
            }
        }
    }

    #[test]
    fn empty_config_gets_defaults() {
        let cfg = parse_str("", "t.toml").unwrap();
        assert_eq!(
            cfg.admin.unwrap().address,
            DEFAULT_ADMIN_ADDRESS.parse().unwrap()
        );
        assert!(cfg.listeners.is_empty());
        let cfg = parse_str("[admin]\nenabled = false\n", "t.toml").unwrap();
        assert!(cfg.admin.is_none());
    }

    #[test]
    fn full_schema_example_parses_with_values() {
        let text = r#"
workers = 4
drain_timeout = "5s"
[admin]
address = "127.0.0.1:19901"
[[listeners]]
name = "http"
address = "[::1]:8080"
protocol = "http"
max_connections_per_worker = 10000
access_log = { path = "/var/log/ringway.log", format = "json" }
  [listeners.http]
  request_header_timeout = "2s"
  idle_timeout = "1m"
  max_request_line_bytes = 4096
  max_request_headers_bytes = 32768
  max_request_headers_count = 50
  use_forwarded_headers = false
  generate_request_id = false
  via = "1.1 ringway"
  server_name = "edge"
  [[listeners.virtual_hosts]]
  name = "backend"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    name = "api"
    prefix = "/"
    headers = [ { name = "x-canary", exact = "1" } ]
    query = [ { name = "debug", exact = "1" } ]
    case_sensitive = true
    cluster = "backend"
    timeout = "15s"
    prefix_rewrite = "/v2/"
    request_headers_to_add = [ { name = "x-env", value = "prod", append = true } ]
    request_headers_to_remove = ["x-debug"]
    response_headers_to_add = [ { name = "x-served-by", value = "ringway", append = false } ]
    response_headers_to_remove = ["server"]
[[clusters]]
name = "backend"
endpoints = ["127.0.0.1:8081", { address = "127.0.0.1:8082", weight = 3 }]
lb = "least_request"
connect_timeout = "250ms"
idle_timeout = "90s"
max_connections_per_worker = 1024
max_idle_per_endpoint = 8
protocol = "http1"
"#;
        let cfg = parse_str(text, "t.toml").unwrap();
        assert_eq!(cfg.workers, 4);
        assert_eq!(cfg.drain_timeout, Duration::from_secs(5));
        let l = &cfg.listeners[0];
        assert_eq!(l.address, "[::1]:8080".parse().unwrap());
        assert_eq!(l.max_connections_per_worker, Some(10000));
        let log = l.access_log.as_ref().unwrap();
        assert_eq!(log.path.as_deref(), Some(Path::new("/var/log/ringway.log")));
        assert_eq!(log.format, AccessLogFormat::Json);
        assert_eq!(l.http.request_header_timeout, Duration::from_secs(2));
        assert_eq!(l.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(l.http.max_request_line_bytes, 4096);
        assert_eq!(l.http.max_request_headers_bytes, 32768);
        assert_eq!(l.http.max_request_headers_count, 50);
        assert!(!l.http.use_forwarded_headers);
        assert!(!l.http.generate_request_id);
        assert_eq!(l.http.via.as_deref(), Some("1.1 ringway"));
        assert_eq!(l.http.server_name, "edge");
        let c = &cfg.clusters[0];
        assert_eq!(c.endpoints[1].weight, 3);
        assert_eq!(c.endpoints[0].weight, 1);
        assert_eq!(c.lb, LbPolicy::LeastRequest);
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.max_connections_per_worker, Some(1024));
        assert_eq!(c.max_idle_per_endpoint, 8);
        // The raw config round-trips to JSON for /config_dump.
        let json = serde_json::to_value(&cfg.raw).unwrap();
        assert_eq!(json["clusters"][0]["endpoints"][1]["weight"], 3);
        assert_eq!(json["clusters"][0]["endpoints"][0], "127.0.0.1:8081");
        assert_eq!(json["workers"], 4);
        assert_eq!(
            json["listeners"][0]["virtual_hosts"][0]["routes"][0]["prefix"],
            "/"
        );
    }

    #[test]
    fn defaults_apply() {
        let cfg = parse_str(&format!("{LISTENER}{CLUSTER}access_log = {{}}\n"), "t");
        // access_log is a listener field: placed after [[clusters]] it is a cluster field.
        assert!(cfg.is_err());
        let cfg = parse_str(
            &format!("{LISTENER}access_log = {{ path = \"-\" }}\n{CLUSTER}"),
            "t",
        )
        .unwrap();
        let l = &cfg.listeners[0];
        assert_eq!(l.protocol, ListenerProtocol::Http);
        assert!(l.access_log.as_ref().unwrap().path.is_none());
        assert_eq!(
            l.access_log.as_ref().unwrap().format,
            AccessLogFormat::Default
        );
        assert_eq!(l.max_connections_per_worker, None);
        assert_eq!(
            l.http.request_header_timeout,
            DEFAULT_REQUEST_HEADER_TIMEOUT
        );
        assert_eq!(l.http.max_request_headers_bytes, 65536);
        assert!(l.http.use_forwarded_headers && l.http.generate_request_id);
        assert_eq!(l.http.via, None);
        assert_eq!(l.http.server_name, "ringway");
        let c = &cfg.clusters[0];
        assert_eq!(c.lb, LbPolicy::RoundRobin);
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.idle_timeout, DEFAULT_UPSTREAM_IDLE_TIMEOUT);
        assert_eq!(c.max_connections_per_worker, None);
        assert_eq!(c.max_idle_per_endpoint, 64);
        assert_eq!(c.protocol, UpstreamProtocol::Http1);
    }

    #[test]
    fn display_points_at_file_line_column_and_path() {
        let text = "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\", \"127.0.0.1\"]\n";
        let e = parse_str(text, "config.toml").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "config.toml:3:29: clusters[0].endpoints[1]: invalid socket address \"127.0.0.1\""
            ),
            "{e}"
        );
        assert!(e.contains("hostnames are not supported"), "{e}");
    }

    #[test]
    fn hostname_endpoint_says_hostnames_unsupported() {
        let text = "[[clusters]]\nname = \"c\"\nendpoints = [{ address = \"backend:80\" }]\n";
        let (line, col, path, reason) = err(text);
        assert_eq!((line, col), (3, 26));
        assert_eq!(path, "clusters[0].endpoints[0].address");
        assert!(
            reason.contains("hostnames are not supported yet"),
            "{reason}"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_location() {
        let (line, col, path, reason) = err("workers = 1\nworkerz = 2\n");
        assert_eq!((line, col, path.as_str()), (2, 1, "workerz"));
        assert!(reason.contains("unknown field `workerz`"), "{reason}");

        let text = format!("{LISTENER}  adress = \"x\"\n");
        let (line, col, path, reason) = err(&text);
        assert_eq!((line, col), (4, 3));
        assert_eq!(path, "listeners[0].adress");
        assert!(reason.contains("unknown field `adress`"), "{reason}");

        let text = with_route(
            "prefix = \"/\"\ncluster = \"c\"\nheaders = [{ name = \"a\", exakt = \"1\" }]",
        );
        let (line, _, path, reason) = err(&text);
        assert_eq!(line, 10);
        assert_eq!(path, format!("{R}.headers[0].exakt"));
        assert!(reason.contains("unknown field `exakt`"), "{reason}");

        let text =
            "[[clusters]]\nname = \"c\"\nendpoints = [{ address = \"127.0.0.1:1\", wieght = 2 }]\n";
        let (line, _, path, reason) = err(text);
        assert_eq!(
            (line, path.as_str()),
            (3, "clusters[0].endpoints[0].wieght")
        );
        assert!(reason.contains("unknown field `wieght`"), "{reason}");

        let (line, _, path, reason) = err("[admin]\nenabled = true\nport = 1\n");
        assert_eq!((line, path.as_str()), (3, "admin.port"));
        assert!(reason.contains("unknown field"), "{reason}");
    }

    #[test]
    fn serde_type_errors_have_location() {
        let (line, col, path, reason) = err("workers = 1\ndrain_timeout = 30\n");
        assert_eq!((line, col, path.as_str()), (2, 17, "drain_timeout"));
        assert!(reason.contains("string"), "{reason}");
        let text = format!("{CLUSTER}lb = \"fastest\"\n");
        let (line, _, path, reason) = err(&text);
        assert_eq!((line, path.as_str()), (4, "clusters[0].lb"));
        assert!(reason.contains("unknown variant `fastest`"), "{reason}");
        // A missing required field points at the table's header.
        let (line, col, path, reason) = err("[[listeners]]\nname = \"l\"\n");
        assert_eq!((line, col, path.as_str()), (1, 1, "listeners[0]"));
        assert!(reason.contains("missing field `address`"), "{reason}");
    }

    #[test]
    fn toml_syntax_errors_have_location() {
        let (line, col, _, reason) = err("workers = 1\nadmin = [\n");
        assert_eq!(line, 2, "{reason} col {col}");
        let (line, col, _, _) = err("a = \"unterminated\n");
        assert_eq!((line, col >= 1), (1, true));
    }

    #[test]
    fn workers_bounds() {
        assert_eq!(parse_str("workers = 3", "t").unwrap().workers, 3);
        assert!(parse_str("workers = \"auto\"", "t").unwrap().workers >= 1);
        assert_err("workers = 0", 1, "workers", "must be 1..=1024");
        assert_err("\nworkers = 1025", 2, "workers", "must be 1..=1024");
        assert_err("workers = -1", 1, "workers", "must be 1..=1024");
        assert_err("workers = \"all\"", 1, "workers", "expected \"auto\"");
        let (_, col, _, _) = err("workers = 0");
        assert_eq!(col, 11);
    }

    #[test]
    fn durations_are_checked() {
        assert_err(
            "drain_timeout = \"30\"",
            1,
            "drain_timeout",
            "invalid duration \"30\"",
        );
        assert_err(
            &format!("{CLUSTER}connect_timeout = \"5 s\""),
            4,
            "clusters[0].connect_timeout",
            "invalid duration",
        );
        assert_err(
            &format!("{CLUSTER}connect_timeout = \"0s\""),
            4,
            "clusters[0].connect_timeout",
            "greater than 0s",
        );
        assert_err(
            &format!("{LISTENER}[listeners.http]\nidle_timeout = \"1d\"\n"),
            5,
            "listeners[0].http.idle_timeout",
            "unknown unit",
        );
        assert_err(
            &with_route("prefix = \"/\"\ncluster = \"c\"\ntimeout = \"fast\""),
            10,
            &format!("{R}.timeout"),
            "invalid duration \"fast\"",
        );
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let two_listeners =
            format!("{LISTENER}[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:8081\"\n");
        assert_err(
            &two_listeners,
            5,
            "listeners[1].name",
            "duplicate listener name \"l\"",
        );
        let (_, col, _, _) = err(&two_listeners);
        assert_eq!(col, 8);
        assert_err(
            &format!("{CLUSTER}{CLUSTER}"),
            5,
            "clusters[1].name",
            "duplicate cluster name \"c\" (also clusters[0])",
        );
        assert_err(
            "[[clusters]]\nname = \"a b\"\nendpoints = [\"127.0.0.1:1\"]",
            2,
            "clusters[0].name",
            "invalid name \"a b\"",
        );
        assert_err(
            "[[listeners]]\nname = \"\"\naddress = \"127.0.0.1:1\"",
            2,
            "listeners[0].name",
            "invalid name",
        );
        let vhosts = format!(
            "{LISTENER}[[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"a\"]\n\
             [[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"b\"]\n"
        );
        assert_err(
            &vhosts,
            8,
            "listeners[0].virtual_hosts[1].name",
            "duplicate virtual host name \"v\"",
        );
    }

    #[test]
    fn listener_addresses_are_unique_and_parse() {
        let dup = format!("{LISTENER}[[listeners]]\nname = \"m\"\naddress = \"127.0.0.1:8080\"\n");
        assert_err(
            &dup,
            6,
            "listeners[1].address",
            "already used by listeners[0].address",
        );
        assert_err(
            "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:9901\"\n",
            3,
            "listeners[0].address",
            "already used by admin.address",
        );
        assert_err(
            "[[listeners]]\nname = \"l\"\naddress = \"localhost:80\"\n",
            3,
            "listeners[0].address",
            "hostnames are not supported yet",
        );
        assert_err(
            "[admin]\naddress = \"9901\"\n",
            2,
            "admin.address",
            "invalid socket address \"9901\"",
        );
    }

    #[test]
    fn clusters_need_endpoints_with_sane_weights() {
        assert_err(
            "[[clusters]]\nname = \"c\"\n",
            1,
            "clusters[0].endpoints",
            "at least one endpoint",
        );
        assert_err(
            "[[clusters]]\nname = \"c\"\nendpoints = []\n",
            3,
            "clusters[0].endpoints",
            "at least one endpoint",
        );
        assert_err(
            "[[clusters]]\nname = \"c\"\nendpoints = [{ address = \"127.0.0.1:1\", weight = 0 }]\n",
            3,
            "clusters[0].endpoints[0].weight",
            "weight must be 1..=128, not 0",
        );
        assert_err(
            "[[clusters]]\nname = \"c\"\nendpoints = [{ address = \"127.0.0.1:1\", weight = 129 }]\n",
            3,
            "clusters[0].endpoints[0].weight",
            "not 129",
        );
        assert_err(
            &format!("{CLUSTER}max_connections_per_worker = 0\n"),
            4,
            "clusters[0].max_connections_per_worker",
            "greater than 0",
        );
    }

    #[test]
    fn circuit_breakers_parse_with_envoy_defaults() {
        let c = &parse_str(CLUSTER, "t").unwrap().clusters[0];
        assert_eq!(c.circuit_breakers, CircuitBreakers::default());
        assert_eq!(
            (
                c.circuit_breakers.max_connections,
                c.circuit_breakers.max_pending_requests,
                c.circuit_breakers.max_requests,
                c.circuit_breakers.max_retries,
                c.circuit_breakers.retry_budget,
                c.circuit_breakers.per_host_max_connections,
            ),
            (1024, 1024, 1024, 3, None, None)
        );
        let text = format!(
            "{CLUSTER}  [clusters.circuit_breakers]\n  max_connections = 10\n  \
             max_pending_requests = 0\n  max_requests = 20\n  max_retries = 0\n  \
             retry_budget = {{ budget_percent = 25.5, min_retry_concurrency = 1 }}\n  \
             per_host_max_connections = 4\n"
        );
        let cb = &parse_str(&text, "t").unwrap().clusters[0].circuit_breakers;
        assert_eq!(
            *cb,
            CircuitBreakers {
                max_connections: 10,
                max_pending_requests: 0,
                max_requests: 20,
                max_retries: 0,
                retry_budget: Some(RetryBudget {
                    budget_percent: 25.5,
                    min_retry_concurrency: 1
                }),
                per_host_max_connections: Some(4),
            }
        );
        // A budget's fields default to Envoy's.
        let text = format!("{CLUSTER}circuit_breakers = {{ retry_budget = {{}} }}\n");
        let budget = parse_str(&text, "t").unwrap().clusters[0]
            .circuit_breakers
            .retry_budget
            .unwrap();
        assert_eq!(
            (budget.budget_percent, budget.min_retry_concurrency),
            (20.0, 3)
        );
        assert_eq!(budget.max_retries(0), 3);
        assert_eq!(budget.max_retries(100), 20);
        let json = serde_json::to_value(&parse_str(&text, "t").unwrap().raw).unwrap();
        assert!(json["clusters"][0]["circuit_breakers"]["retry_budget"].is_object());
    }

    #[test]
    fn circuit_breakers_are_checked_with_location() {
        const CB: &str = "  [clusters.circuit_breakers]\n";
        let (line, col, path, reason) = err(&format!("{CLUSTER}{CB}  max_conections = 1\n"));
        assert_eq!(
            (line, col, path.as_str()),
            (5, 3, "clusters[0].circuit_breakers.max_conections")
        );
        assert!(
            reason.contains("unknown field `max_conections`"),
            "{reason}"
        );
        let (line, _, path, reason) = err(&format!(
            "{CLUSTER}{CB}  retry_budget = {{ budget_percent = 5.0, min_retry = 1 }}\n"
        ));
        assert_eq!(
            (line, path.as_str()),
            (5, "clusters[0].circuit_breakers.retry_budget.min_retry")
        );
        assert!(reason.contains("unknown field `min_retry`"), "{reason}");
        assert_err(
            &format!("{CLUSTER}{CB}  max_requests = -1\n"),
            5,
            "clusters[0].circuit_breakers.max_requests",
            "",
        );
        for field in [
            "max_connections",
            "max_requests",
            "per_host_max_connections",
        ] {
            assert_err(
                &format!("{CLUSTER}{CB}  max_retries = 2\n  {field} = 0\n"),
                6,
                &format!("clusters[0].circuit_breakers.{field}"),
                "greater than 0",
            );
        }
        for pct in ["100.5", "-1.0", "nan"] {
            assert_err(
                &format!("{CLUSTER}{CB}  retry_budget = {{ budget_percent = {pct} }}\n"),
                5,
                "clusters[0].circuit_breakers.retry_budget.budget_percent",
                "must be 0..=100",
            );
        }
    }

    #[test]
    fn route_cluster_references_must_exist() {
        assert_err(
            &with_route("prefix = \"/\"\ncluster = \"nope\""),
            9,
            &format!("{R}.cluster"),
            "unknown cluster \"nope\"",
        );
        let (_, col, _, _) = err(&with_route("prefix = \"/\"\ncluster = \"nope\""));
        assert_eq!(col, 11);
        assert_err(
            &with_route(
                "prefix = \"/\"\nweighted_clusters = [{ cluster = \"c\", weight = 1 }, { cluster = \"x\", weight = 1 }]",
            ),
            9,
            &format!("{R}.weighted_clusters[1].cluster"),
            "unknown cluster \"x\"",
        );
    }

    #[test]
    fn weighted_clusters_need_positive_weights() {
        assert_err(
            &with_route("prefix = \"/\"\nweighted_clusters = [{ cluster = \"c\", weight = 0 }]"),
            9,
            &format!("{R}.weighted_clusters[0].weight"),
            "greater than 0",
        );
        assert_err(
            &with_route("prefix = \"/\"\nweighted_clusters = []"),
            9,
            &format!("{R}.weighted_clusters"),
            "at least one cluster",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\nweighted_clusters = [{ cluster = \"c\", weight = 4294967295 }, { cluster = \"c\", weight = 1 }]",
            ),
            9,
            &format!("{R}.weighted_clusters[1].weight"),
            "overflows",
        );
    }

    #[test]
    fn routes_need_exactly_one_match_and_one_action() {
        assert_err(
            &with_route("cluster = \"c\""),
            7,
            R,
            "exactly one of `prefix`, `path` or `regex`",
        );
        assert_err(
            &with_route("prefix = \"/\"\npath = \"/a\"\ncluster = \"c\""),
            7,
            R,
            "exactly one of `prefix`, `path` or `regex`",
        );
        assert_err(
            &with_route("prefix = \"/\""),
            7,
            R,
            "exactly one of `cluster`",
        );
        assert_err(
            &with_route("prefix = \"/\"\ncluster = \"c\"\ndirect_response = { status = 200 }"),
            7,
            R,
            "exactly one of `cluster`",
        );
        assert_err(
            &with_route("prefix = \"api\"\ncluster = \"c\""),
            8,
            &format!("{R}.prefix"),
            "must start with `/`",
        );
        assert_err(
            &with_route("path = \"/a\"\ncluster = \"c\"\nprefix_rewrite = \"/b\""),
            10,
            &format!("{R}.prefix_rewrite"),
            "needs a `prefix` match",
        );
    }

    #[test]
    fn regexes_compile_within_limits() {
        assert_err(
            &with_route("regex = \"/a(\"\ncluster = \"c\""),
            8,
            &format!("{R}.regex"),
            "invalid regex \"/a(\"",
        );
        assert_err(
            &with_route("regex = \"(a{1000}){1000}\"\ncluster = \"c\""),
            8,
            &format!("{R}.regex"),
            "regex too large",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nheaders = [{ name = \"x\", regex = \"[\" }]",
            ),
            10,
            &format!("{R}.headers[0].regex"),
            "invalid regex \"[\"",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nquery = [{ name = \"x\", regex = \"*\" }]",
            ),
            10,
            &format!("{R}.query[0].regex"),
            "invalid regex",
        );
    }

    #[test]
    fn matchers_need_exactly_one_kind() {
        assert_err(
            &with_route("prefix = \"/\"\ncluster = \"c\"\nheaders = [{ name = \"x\" }]"),
            10,
            &format!("{R}.headers[0]"),
            "exactly one of `exact`, `prefix`, `suffix`, `regex` or `present`",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nheaders = [{ name = \"x\", exact = \"1\", present = true }]",
            ),
            10,
            &format!("{R}.headers[0]"),
            "exactly one of",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nquery = [{ name = \"q\", exact = \"1\", prefix = \"1\" }]",
            ),
            10,
            &format!("{R}.query[0]"),
            "exactly one of `exact`, `prefix`, `regex` or `present`",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nquery = [{ name = \"\", present = true }]",
            ),
            10,
            &format!("{R}.query[0].name"),
            "invalid query parameter name",
        );
    }

    #[test]
    fn a_header_mutation_affects_routing_only_when_a_route_reads_what_it_changes() {
        let with = |mutation: &str| {
            let text = format!(
                "{LISTENER}[[listeners.http_filters]]\nname = \"header_mutation\"\n{mutation}\n\
                 [[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"*\"]\n\
                 [[listeners.virtual_hosts.routes]]\nprefix = \"/\"\ncluster = \"c\"\n\
                 headers = [{{ name = \"x-canary\", present = true }}]\n{CLUSTER}"
            );
            match &parse_str(&text, "t.toml").unwrap().listeners[0].http_filters[0] {
                HttpFilterConfig::HeaderMutation(m) => m.affects_routing,
                other => panic!("{other:?}"),
            }
        };
        assert!(with(
            r#"request_headers_to_add = [{ name = "x-canary", value = "1" }]"#
        ));
        assert!(with(r#"request_headers_to_remove = ["x-canary"]"#));
        assert!(with(
            r#"request_headers_to_add = [{ name = "host", value = "b" }]"#
        ));
        assert!(!with(
            r#"request_headers_to_add = [{ name = "x-env", value = "1" }]"#
        ));
        assert!(!with(
            r#"response_headers_to_add = [{ name = "x-canary", value = "1" }]"#
        ));
    }

    #[test]
    fn header_names_are_tokens_and_values_clean() {
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nheaders = [{ name = \"bad name\", present = true }]",
            ),
            10,
            &format!("{R}.headers[0].name"),
            "invalid header name \"bad name\"",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nrequest_headers_to_add = [{ name = \"x:y\", value = \"1\" }]",
            ),
            10,
            &format!("{R}.request_headers_to_add[0].name"),
            "must be a token",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nresponse_headers_to_add = [{ name = \"x\", value = \"a\\r\\nb: c\" }]",
            ),
            10,
            &format!("{R}.response_headers_to_add[0].value"),
            "CR, LF and NUL are not allowed",
        );
        assert_err(
            &with_route(
                "prefix = \"/\"\ncluster = \"c\"\nresponse_headers_to_remove = [\"ok\", \"\"]",
            ),
            10,
            &format!("{R}.response_headers_to_remove[1]"),
            "invalid header name",
        );
        assert_err(
            &format!("{LISTENER}[listeners.http]\nvia = \"a\\u0000b\"\n"),
            5,
            "listeners[0].http.via",
            "not allowed",
        );
    }

    #[test]
    fn redirect_and_direct_response_statuses() {
        assert_err(
            &with_route("prefix = \"/\"\nredirect = { path = \"/x\", status = 200 }"),
            9,
            &format!("{R}.redirect.status"),
            "301, 302, 303, 307 or 308, not 200",
        );
        for ok in [301, 302, 303, 307, 308] {
            let text = with_route(&format!("prefix = \"/\"\nredirect = {{ status = {ok} }}"));
            assert!(parse_str(&text, "t").is_ok(), "{ok}");
        }
        assert_err(
            &with_route("prefix = \"/\"\ndirect_response = { status = 600 }"),
            9,
            &format!("{R}.direct_response.status"),
            "100..=599, not 600",
        );
        assert_err(
            &with_route("prefix = \"/\"\ndirect_response = { status = 99 }"),
            9,
            &format!("{R}.direct_response.status"),
            "not 99",
        );
        assert_err(
            &with_route("prefix = \"/\"\nredirect = { scheme = \"ht tp\" }"),
            9,
            &format!("{R}.redirect.scheme"),
            "invalid scheme",
        );
        assert_err(
            &with_route("prefix = \"/\"\nredirect = { path = \"x\" }"),
            9,
            &format!("{R}.redirect.path"),
            "must start with `/`",
        );
    }

    #[test]
    fn domains_wildcards_and_uniqueness() {
        let vhost = |domains: &str| {
            format!("{LISTENER}[[listeners.virtual_hosts]]\nname = \"v\"\ndomains = {domains}\n")
        };
        for ok in ["[\"*\"]", "[\"*.example.com\", \"example.com:8080\"]"] {
            assert!(parse_str(&vhost(ok), "t").is_ok(), "{ok}");
        }
        for bad in [
            "[\"a*.example.com\"]",
            "[\"*example.com\"]",
            "[\"*.\"]",
            "[\"api.*\"]",
            "[\"*.*.com\"]",
        ] {
            assert_err(
                &vhost(bad),
                6,
                "listeners[0].virtual_hosts[0].domains[0]",
                "`*` is only allowed as the whole domain or as a `*.` prefix",
            );
        }
        assert_err(
            &vhost("[]"),
            6,
            "listeners[0].virtual_hosts[0].domains",
            "at least one domain",
        );
        let long = format!("[\"{}\"]", "a".repeat(321));
        assert_err(
            &vhost(&long),
            6,
            "listeners[0].virtual_hosts[0].domains[0]",
            "domain longer than 320 bytes",
        );
        assert_err(
            &vhost("[\"\"]"),
            6,
            "listeners[0].virtual_hosts[0].domains[0]",
            "empty domain",
        );
        let two = format!(
            "{LISTENER}[[listeners.virtual_hosts]]\nname = \"a\"\ndomains = [\"x.com\"]\n\
             [[listeners.virtual_hosts]]\nname = \"b\"\ndomains = [\"*\", \"X.com\"]\n"
        );
        assert_err(
            &two,
            9,
            "listeners[0].virtual_hosts[1].domains[1]",
            "duplicate domain \"X.com\" in this listener (also listeners[0].virtual_hosts[0].domains[0])",
        );
        let (_, col, _, _) = err(&two);
        assert_eq!(col, 17);
    }

    #[test]
    fn tcp_listeners_need_a_cluster_and_refuse_http_fields() {
        let tcp = "[[listeners]]\nname = \"t\"\naddress = \"127.0.0.1:7000\"\nprotocol = \"tcp\"\n";
        let ok = parse_str(&format!("{tcp}cluster = \"c\"\n{CLUSTER}"), "t").unwrap();
        let l = &ok.listeners[0];
        assert_eq!(l.protocol, ListenerProtocol::Tcp);
        assert_eq!(l.tcp.cluster, Some(0));
        assert_eq!(l.tcp.idle_timeout, Some(DEFAULT_TCP_IDLE_TIMEOUT));
        assert!(!l.proxy_protocol);
        let off = format!(
            "{tcp}cluster = \"c\"\nproxy_protocol = true\n[listeners.tcp]\nidle_timeout = \"0s\"\n{CLUSTER}"
        );
        let off = parse_str(&off, "t").unwrap();
        assert_eq!(off.listeners[0].tcp.idle_timeout, None);
        assert!(off.listeners[0].proxy_protocol);
        assert_err(
            &format!("{tcp}{CLUSTER}"),
            1,
            "listeners[0]",
            "needs `cluster",
        );
        assert_err(
            &format!("{tcp}cluster = \"nope\"\n{CLUSTER}"),
            5,
            "listeners[0].cluster",
            "unknown cluster \"nope\"",
        );
        assert_err(
            &format!(
                "{tcp}cluster = \"c\"\n[[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"*\"]\n{CLUSTER}"
            ),
            6,
            "listeners[0].virtual_hosts",
            "no virtual_hosts",
        );
        assert_err(
            &format!("{tcp}cluster = \"c\"\n[listeners.http]\nvia = \"x\"\n{CLUSTER}"),
            6,
            "listeners[0].http",
            "only for protocol = \"http\"",
        );
        assert_err(
            &format!("{LISTENER}cluster = \"c\"\n{CLUSTER}"),
            4,
            "listeners[0].cluster",
            "only tcp listeners",
        );
        assert_err(
            &format!("{LISTENER}[listeners.tcp]\nidle_timeout = \"1s\"\n{CLUSTER}"),
            4,
            "listeners[0].tcp",
            "only for protocol = \"tcp\"",
        );
    }

    #[test]
    fn cluster_proxy_protocol_versions() {
        let v = |s: &str| parse_str(&format!("{CLUSTER}proxy_protocol = {s}\n"), "t");
        assert_eq!(
            v("\"v1\"").unwrap().clusters[0].proxy_protocol,
            Some(ProxyProtocolVersion::V1)
        );
        assert_eq!(
            v("\"v2\"").unwrap().clusters[0].proxy_protocol,
            Some(ProxyProtocolVersion::V2)
        );
        assert_eq!(
            parse_str(CLUSTER, "t").unwrap().clusters[0].proxy_protocol,
            None
        );
        assert!(v("\"v3\"").is_err());
    }

    #[test]
    fn http_limits_must_be_positive() {
        assert_err(
            &format!("{LISTENER}[listeners.http]\nmax_request_headers_count = 0\n"),
            5,
            "listeners[0].http.max_request_headers_count",
            "greater than 0",
        );
        assert_err(
            &format!("{LISTENER}max_connections_per_worker = 0\n"),
            4,
            "listeners[0].max_connections_per_worker",
            "greater than 0",
        );
    }

    #[test]
    fn load_file_reads_and_names_the_file() {
        let dir = std::env::temp_dir().join(format!("ringway-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, DEFAULT_CONFIG).unwrap();
        assert_eq!(load_file(&good).unwrap().listeners.len(), 1);
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "workers = 0\n").unwrap();
        let e = load_file(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}:1:11: workers: must be 1..=1024 or \"auto\", not 0",
                bad.display()
            )
        );
        let missing = dir.join("missing.toml");
        let e = load_file(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot read {}: ", missing.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validate_without_text_reports_the_path() {
        let raw = RawConfig {
            workers: Some(RawWorkers::Count(0)),
            ..RawConfig::default()
        };
        let e = validate(raw).unwrap_err();
        assert_eq!(e.path, "workers");
    }

    #[test]
    fn http2_cluster_options_are_checked() {
        assert_err(
            &format!("{CLUSTER}protocol = \"http2\"\nproxy_protocol = \"v1\"\n"),
            5,
            "clusters[0].proxy_protocol",
            "cannot be combined",
        );
        assert_err(
            &format!("{CLUSTER}protocol = \"http2\"\nhttp2_keepalive_interval = \"0s\"\n"),
            5,
            "clusters[0].http2_keepalive_interval",
            "greater than 0s",
        );
        let cfg = parse_str(
            &format!("{CLUSTER}protocol = \"http2\"\nhttp2_keepalive_interval = \"30s\"\n"),
            "t.toml",
        )
        .unwrap();
        let c = &cfg.clusters[0];
        assert_eq!(c.protocol, UpstreamProtocol::Http2);
        assert_eq!(c.http2_keepalive_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.http2_keepalive_timeout, DEFAULT_HTTP2_KEEPALIVE_TIMEOUT);
    }
}
