//! The admin endpoints: method check, query parsing and rendering. Cold path.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::{AdminState, Response};
use crate::config::Config;
use crate::shared::endpoint_health;
use crate::shared_state::{FAILED_ACTIVE_HC, FAILED_OUTLIER_CHECK};
use crate::stats::{EndpointStats, ExtraGauge, PerCore, StatSet};

/// Which methods an endpoint takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Methods {
    /// GET and HEAD: reads.
    Read,
    /// POST: changes state (Envoy requires POST for these).
    Mutate,
}

/// Every endpoint: path, methods, help (shown by `/`).
const ENDPOINTS: &[(&str, Methods, &str)] = &[
    ("/", Methods::Read, "this list"),
    (
        "/clusters",
        Methods::Read,
        "upstream clusters and endpoint stats (?format=json)",
    ),
    (
        "/config_dump",
        Methods::Read,
        "the running configuration as JSON",
    ),
    (
        "/healthcheck/fail",
        Methods::Mutate,
        "fail /ready so load balancers stop sending (POST)",
    ),
    (
        "/healthcheck/ok",
        Methods::Mutate,
        "pass /ready again (POST)",
    ),
    (
        "/ready",
        Methods::Read,
        "200 LIVE when serving, 503 when draining or health check failed",
    ),
    (
        "/server_info",
        Methods::Read,
        "version, state, uptime and workers as JSON",
    ),
    (
        "/stats",
        Methods::Read,
        "all stats (?filter=<regex>, ?format=json)",
    ),
    (
        "/stats/prometheus",
        Methods::Read,
        "all stats in Prometheus text format 0.0.4",
    ),
];

/// Dispatches one request.
pub(super) fn route(state: &AdminState, method: &[u8], path: &[u8], query: &[u8]) -> Response {
    let Some(&(p, methods, _)) = ENDPOINTS.iter().find(|(p, _, _)| p.as_bytes() == path) else {
        return Response::text(404, "not found; GET / lists the endpoints\n");
    };
    let allowed = match methods {
        Methods::Read => method == b"GET" || method == b"HEAD",
        Methods::Mutate => method == b"POST",
    };
    if !allowed {
        let allow = if methods == Methods::Read {
            "GET, HEAD"
        } else {
            "POST"
        };
        let mut r = Response::text(405, format!("method not allowed; use {allow}\n"));
        r.extra = Some(("allow", allow.to_owned()));
        return r;
    }
    let q = match Query::parse(query) {
        Ok(q) => q,
        Err(e) => return Response::text(400, format!("{e}\n")),
    };
    match p {
        "/" => index(),
        "/stats" => stats(state, &q),
        "/stats/prometheus" => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            state.stats.render_prometheus_with(&server_gauges(state)),
        ),
        "/clusters" => clusters(state, &q),
        "/config_dump" => config_dump(state),
        "/ready" => ready(state),
        "/server_info" => server_info(state),
        "/healthcheck/fail" => {
            state.health_failed.store(true, Ordering::Relaxed);
            log::warn!("admin: health check set to failing");
            Response::text(200, "OK\n")
        }
        "/healthcheck/ok" => {
            state.health_failed.store(false, Ordering::Relaxed);
            log::info!("admin: health check set to passing");
            Response::text(200, "OK\n")
        }
        _ => Response::text(404, "not found\n"),
    }
}

fn index() -> Response {
    let mut s = String::from("ringway admin\n\n");
    for (p, m, help) in ENDPOINTS {
        let m = if *m == Methods::Read { "GET " } else { "POST" };
        let _ = writeln!(s, "{m} {p:<20} {help}");
    }
    Response::text(200, s)
}

/// `state` as Envoy names it, for `/ready` and `/server_info`.
fn state_name(state: &AdminState) -> &'static str {
    if state.draining.load(Ordering::Relaxed) {
        "DRAINING"
    } else if state.health_failed.load(Ordering::Relaxed) {
        "HEALTH_CHECK_FAILED"
    } else {
        "LIVE"
    }
}

fn ready(state: &AdminState) -> Response {
    match state_name(state) {
        "LIVE" => Response::text(200, "LIVE\n"),
        s => Response::text(503, format!("{s}\n")),
    }
}

/// `server.*` gauges that live in the admin state rather than the store.
pub(super) fn server_gauges(state: &AdminState) -> [ExtraGauge; 5] {
    let draining = state.draining.load(Ordering::Relaxed);
    let failed = state.health_failed.load(Ordering::Relaxed);
    let uptime = i64::try_from(state.started.elapsed().as_secs()).unwrap_or(i64::MAX);
    let workers = i64::try_from(state.config.load().workers).unwrap_or(i64::MAX);
    [
        ExtraGauge {
            name: "live",
            help: "1 when serving: not draining and health check not failed",
            value: i64::from(!draining && !failed),
        },
        ExtraGauge {
            name: "draining",
            help: "1 while draining",
            value: i64::from(draining),
        },
        ExtraGauge {
            name: "health_check_failed",
            help: "1 after POST /healthcheck/fail",
            value: i64::from(failed),
        },
        ExtraGauge {
            name: "uptime",
            help: "seconds since start",
            value: uptime,
        },
        ExtraGauge {
            name: "concurrency",
            help: "worker threads",
            value: workers,
        },
    ]
}

fn stats(state: &AdminState, q: &Query) -> Response {
    let filter = match q.get("filter") {
        None | Some("") => None,
        Some(f) => match regex::RegexBuilder::new(f).size_limit(1 << 20).build() {
            Ok(r) => Some(r),
            Err(e) => return Response::text(400, format!("invalid filter regex: {e}\n")),
        },
    };
    let extra = server_gauges(state);
    match q.get("format") {
        None | Some("text") => {
            Response::text(200, state.stats.render_text_with(filter.as_ref(), &extra))
        }
        Some("json") => Response::json(state.stats.render_json(filter.as_ref(), &extra)),
        Some("prometheus") => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            state.stats.render_prometheus_with(&extra),
        ),
        Some(f) => Response::text(
            400,
            format!("unknown format {f:?}; use text, json or prometheus\n"),
        ),
    }
}

/// Endpoint stat values, zeros for an endpoint no worker has used yet.
fn endpoint_values(ep: Option<&PerCore<EndpointStats>>) -> Vec<(&'static str, &'static str, i128)> {
    let totals = ep.map(PerCore::totals);
    EndpointStats::DESCS
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let v = totals
                .as_ref()
                .and_then(|t| t.get(i))
                .map_or(0, |(_, v)| *v);
            (d.name, d.kind.as_str(), v)
        })
        .collect()
}

fn clusters(state: &AdminState, q: &Query) -> Response {
    let cfg: arc_swap::Guard<std::sync::Arc<Config>> = state.config.load();
    let json = match q.get("format") {
        None | Some("text") => false,
        Some("json") => true,
        Some(f) => return Response::text(400, format!("unknown format {f:?}; use text or json\n")),
    };
    if json {
        let statuses: Vec<Value> = cfg
            .clusters
            .iter()
            .map(|c| {
                let hosts: Vec<Value> = c
                    .endpoints
                    .iter()
                    .map(|e| {
                        let st = state.stats.existing_endpoint(&c.name, e.address);
                        let stats: Vec<Value> = endpoint_values(st.as_deref())
                            .into_iter()
                            .map(|(n, k, v)| {
                                json!({ "name": n, "value": v.to_string(), "type": k.to_ascii_uppercase() })
                            })
                            .collect();
                        let health_entry = endpoint_health(&state.registry, &c.name, e.address);
                        let flags = health_entry.as_ref().map_or(0, |h| h.flags());
                        let mut health = json!({ "eds_health_status": "HEALTHY" });
                        if flags & FAILED_ACTIVE_HC != 0 {
                            health["failed_active_health_check"] = json!(true);
                        }
                        if flags & FAILED_OUTLIER_CHECK != 0 {
                            health["failed_outlier_check"] = json!(true);
                        }
                        let mut host = json!({
                            "address": { "socket_address": {
                                "address": e.address.ip().to_string(),
                                "port_value": e.address.port(),
                            }},
                            "stats": stats,
                            "health_status": health,
                            "weight": e.weight,
                        });
                        if let Some(r) = health_entry.and_then(|h| h.success_rate()) {
                            host["success_rate"] = json!({ "value": r });
                        }
                        host
                    })
                    .collect();
                json!({
                    "name": c.name,
                    "observability_name": c.name,
                    "added_via_api": false,
                    "host_statuses": hosts,
                })
            })
            .collect();
        return Response::json(json!({ "cluster_statuses": statuses }).to_string());
    }
    let mut s = String::new();
    for c in &cfg.clusters {
        let n = &c.name;
        let _ = writeln!(s, "{n}::observability_name::{n}");
        let max = c
            .max_connections_per_worker
            .map_or_else(|| "unlimited".to_owned(), |m| m.to_string());
        let _ = writeln!(
            s,
            "{n}::default_priority::max_connections_per_worker::{max}"
        );
        let _ = writeln!(s, "{n}::added_via_api::false");
        for e in &c.endpoints {
            let a = e.address;
            let st = state.stats.existing_endpoint(n, a);
            for (stat, _, v) in endpoint_values(st.as_deref()) {
                let _ = writeln!(s, "{n}::{a}::{stat}::{v}");
            }
            let _ = writeln!(s, "{n}::{a}::hostname::");
            let flags = health_flags(state, n, a);
            let mut text = String::new();
            if flags & FAILED_ACTIVE_HC != 0 {
                text.push_str("/failed_active_hc");
            }
            if flags & FAILED_OUTLIER_CHECK != 0 {
                text.push_str("/failed_outlier_check");
            }
            if text.is_empty() {
                text.push_str("healthy");
            }
            let _ = writeln!(s, "{n}::{a}::health_flags::{text}");
            let _ = writeln!(s, "{n}::{a}::weight::{}", e.weight);
            let _ = writeln!(s, "{n}::{a}::region::");
            let _ = writeln!(s, "{n}::{a}::zone::");
            let _ = writeln!(s, "{n}::{a}::sub_zone::");
            let _ = writeln!(s, "{n}::{a}::canary::false");
            let _ = writeln!(s, "{n}::{a}::priority::0");
            let rate = endpoint_health(&state.registry, n, a).and_then(|h| h.success_rate());
            let _ = writeln!(s, "{n}::{a}::success_rate::{}", rate.unwrap_or(-1.0));
        }
    }
    Response::text(200, s)
}

/// The health flags of `cluster`'s endpoint at `addr` (0 when it has no entry yet).
fn health_flags(state: &AdminState, cluster: &str, addr: std::net::SocketAddr) -> u32 {
    endpoint_health(&state.registry, cluster, addr).map_or(0, |h| h.flags())
}

fn config_dump(state: &AdminState) -> Response {
    let cfg = state.config.load();
    match serde_json::to_string_pretty(&cfg.raw) {
        Ok(mut s) => {
            s.push('\n');
            Response::json(s)
        }
        Err(e) => Response::text(500, format!("cannot serialize the config: {e}\n")),
    }
}

fn server_info(state: &AdminState) -> Response {
    let cfg = state.config.load();
    let up = state.started.elapsed().as_secs();
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "state": state_name(state),
        "uptime_seconds": up,
        "uptime_current_epoch": format!("{up}s"),
        "workers": cfg.workers,
        "stats_cores": state.stats.cores(),
        "listeners": cfg.listeners.iter().map(|l| json!({ "name": l.name, "address": l.address.to_string() })).collect::<Vec<_>>(),
        "admin": cfg.admin.as_ref().map(|a| a.address.to_string()),
    });
    Response::json(body.to_string())
}

/// A parsed query string: `key=value` pairs split on `&`, percent-decoded (`+` is kept: it is a
/// regex operator in `filter`).
#[derive(Debug, Default)]
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(q: &[u8]) -> Result<Self, &'static str> {
        let mut out = Vec::new();
        for pair in q.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (
                    pair.get(..i).unwrap_or_default(),
                    pair.get(i + 1..).unwrap_or_default(),
                ),
                None => (pair, &[][..]),
            };
            out.push((percent_decode(k)?, percent_decode(v)?));
        }
        Ok(Self(out))
    }

    /// The first value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
pub(super) fn percent_decode(v: &[u8]) -> Result<String, &'static str> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(v.len());
    let mut it = v.iter();
    while let Some(&b) = it.next() {
        if b == b'%' {
            let hi = it.next().copied().and_then(hex);
            let lo = it.next().copied().and_then(hex);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err("bad percent-escape in the query"),
            }
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| "the query is not UTF-8 after percent-decoding")
}
