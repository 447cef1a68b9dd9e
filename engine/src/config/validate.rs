//! [`RawConfig`] -> [`Config`]: defaults, bounds, references, and the entry points that read,
//! parse and validate a file ([`load_file`], [`parse_str`]).
//!
//! All defaults are the `DEFAULT_*` consts below (Envoy's where a concept matches). A config is
//! accepted whole or refused with the first error, located at file:line:column with its field
//! path (DESIGN.md "Errors and bad input", STYLE.md §5). Route compilation is delegated to
//! [`crate::router`]; nothing here opens sockets or files other than the config itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use super::error::{FieldError, locate_field, locate_toml};
use super::raw::{
    RawAccessLogFormat, RawCluster, RawConfig, RawEndpoint, RawHttpOptions, RawLbPolicy,
    RawListener, RawListenerProtocol, RawUpstreamProtocol, RawWorkers,
};
use super::{
    AccessLogConfig, AccessLogFormat, AdminConfig, ClusterConfig, ClusterId, Config, ConfigError,
    Endpoint, HttpOptions, LbPolicy, ListenerConfig, ListenerProtocol, UpstreamProtocol, duration,
};
use crate::router::compile_routes;

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

/// Reads, parses and validates a config file; errors name the file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, &path.display().to_string())
}

/// Parses and validates config text. `origin` names the text in errors (a file name,
/// `"<embedded>"`, ...).
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| locate_toml(text, origin, &e))?;
    validate(raw).map_err(|e| locate_field(text, origin, e))
}

/// Validates an already parsed config (no text, so errors carry only the field path).
pub fn validate(raw: RawConfig) -> Result<Config, FieldError> {
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
        clusters.push(cluster(c, &at)?);
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
        let listener = listener(l, &at, &cluster_ids)?;
        if let Some(first) = addresses.insert(listener.address, format!("{at}.address")) {
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
) -> Result<ListenerConfig, FieldError> {
    let address = parse_addr(&l.address, &format!("{at}.address"))?;
    let protocol = match l.protocol.unwrap_or(RawListenerProtocol::Http) {
        RawListenerProtocol::Http => ListenerProtocol::Http,
    };
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
    let http = http_options(l.http.as_ref(), &format!("{at}.http"))?;
    let routes = compile_routes(&l.virtual_hosts, at, clusters)?;
    Ok(ListenerConfig {
        name: l.name.clone(),
        address,
        protocol,
        routes,
        http,
        access_log,
        max_connections_per_worker,
    })
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
    })
}

fn cluster(c: &RawCluster, at: &str) -> Result<ClusterConfig, FieldError> {
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
    Ok(ClusterConfig {
        name: c.name.clone(),
        endpoints,
        lb: match c.lb.unwrap_or(RawLbPolicy::RoundRobin) {
            RawLbPolicy::RoundRobin => LbPolicy::RoundRobin,
            RawLbPolicy::LeastRequest => LbPolicy::LeastRequest,
            RawLbPolicy::Random => LbPolicy::Random,
        },
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
        protocol: match c.protocol.unwrap_or(RawUpstreamProtocol::Http1) {
            RawUpstreamProtocol::Http1 => UpstreamProtocol::Http1,
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
