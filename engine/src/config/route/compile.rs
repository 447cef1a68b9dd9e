//! Compiles a listener's raw virtual hosts and routes into a [`RouteTable`].
//!
//! Validates everything route-related on the way (domains, matchers, regexes, actions, header
//! names and values, cluster references) and reports the first problem as a [`FieldError`]
//! with its field path, e.g. `listeners[0].virtual_hosts[1].routes[2].regex`. Cluster names are
//! resolved to [`ClusterId`]s here; cluster definitions themselves are validated elsewhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use regex::bytes::{Regex, RegexBuilder};

use super::matcher::{HeaderMatcher, PathMatch, QueryMatcher, RouteMatch, ValueMatch};
use super::{
    Action, HashPolicy, HeaderToAdd, Redirect, RetryOn, RetryPolicy, Route, RouteFilters,
    RouteTable, VirtualHost, WeightedClusters,
};
use crate::config::ClusterId;
use crate::config::error::FieldError;
use crate::config::ratelimit;
use crate::config::raw::{
    RawHeaderToAdd, RawRetryPolicy, RawRoute, RawRouteFilters, RawVirtualHost,
};
use crate::config::validate::{
    DEFAULT_REDIRECT_STATUS, DEFAULT_ROUTE_TIMEOUT, check_header_value, check_name, header_name,
    parse_duration,
};

/// Upper bound on a compiled regex (bytes of program), against pathological patterns.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Longest domain accepted in `domains` (a DNS name is at most 253 characters, plus `:port`).
pub const MAX_DOMAIN_LEN: usize = 320;

/// Builds the route table of one listener. `at` is the listener's path (`listeners[0]`).
pub(crate) fn compile_routes(
    vhosts: &[RawVirtualHost],
    at: &str,
    clusters: &HashMap<&str, ClusterId>,
) -> Result<RouteTable, FieldError> {
    let mut table = RouteTable::default();
    // Local rate limit buckets of virtual hosts and routes: slot 0 is the listener's.
    let mut slots = 0;
    let mut names: HashMap<&str, usize> = HashMap::new();
    // Lowercased domain -> where it was first declared.
    let mut domains: HashMap<String, String> = HashMap::new();
    for (vi, vh) in vhosts.iter().enumerate() {
        let vat = format!("{at}.virtual_hosts[{vi}]");
        check_name(&vh.name, &format!("{vat}.name"))?;
        if let Some(first) = names.insert(&vh.name, vi) {
            return Err(FieldError::new(
                format!("{vat}.name"),
                format!(
                    "duplicate virtual host name {:?} (also {at}.virtual_hosts[{first}])",
                    vh.name
                ),
            ));
        }
        if vh.domains.is_empty() {
            return Err(FieldError::new(
                format!("{vat}.domains"),
                "at least one domain is required (\"*\" matches any)",
            ));
        }
        for (di, domain) in vh.domains.iter().enumerate() {
            let dat = format!("{vat}.domains[{di}]");
            let lower = domain.to_ascii_lowercase();
            check_domain(&lower).map_err(|reason| FieldError::new(&dat, reason))?;
            if let Some(first) = domains.insert(lower.clone(), dat.clone()) {
                return Err(FieldError::new(
                    dat,
                    format!("duplicate domain {domain:?} in this listener (also {first})"),
                ));
            }
            if lower == "*" {
                table.any_domain = Some(vi);
            } else if let Some(suffix) = lower.strip_prefix('*') {
                table.suffix_domains.push((suffix.as_bytes().into(), vi));
            } else {
                table.exact_domains.insert(lower.as_bytes().into(), vi);
            }
        }
        let vh_retry = vh
            .retry_policy
            .as_ref()
            .map(|p| retry_policy(p, &format!("{vat}.retry_policy")).map(Arc::new))
            .transpose()?;
        let vh_rate_limits: Arc<[_]> =
            ratelimit::rate_limit_policies(&vh.rate_limits, &vat)?.into();
        let vh_ratelimit = ratelimit::per_route(
            vh.filters.as_ref().and_then(|f| f.local_ratelimit.as_ref()),
            &format!("{vat}.filters"),
            || format!("vhost:{}", vh.name),
            &mut slots,
        )?;
        let mut routes = Vec::with_capacity(vh.routes.len());
        for (ri, route) in vh.routes.iter().enumerate() {
            let rat = format!("{vat}.routes[{ri}]");
            let name = route
                .name
                .clone()
                .unwrap_or_else(|| format!("{}/{ri}", vh.name));
            let mut compiled = compile_route(route, name, &rat, clusters)?;
            if compiled.retry_policy.is_none() {
                compiled.retry_policy = vh_retry.clone();
            }
            let own = ratelimit::per_route(
                route
                    .filters
                    .as_ref()
                    .and_then(|f| f.local_ratelimit.as_ref()),
                &format!("{rat}.filters"),
                || format!("route:{}/{}", vh.name, compiled.name),
                &mut slots,
            )?;
            compiled.filters.local_ratelimit = own.or_else(|| vh_ratelimit.clone());
            if route.rate_limits.is_empty() {
                compiled.rate_limits = vh_rate_limits.clone();
            }
            routes.push(compiled);
        }
        table.virtual_hosts.push(VirtualHost {
            name: vh.name.clone(),
            routes,
        });
    }
    // Longest suffix first: the most specific wildcard wins.
    table
        .suffix_domains
        .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
    Ok(table)
}

/// `*` only as the whole domain or as a `*.` prefix; no whitespace or controls.
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("empty domain".into());
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(format!("domain longer than {MAX_DOMAIN_LEN} bytes"));
    }
    if domain
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/')
    {
        return Err(format!("invalid domain {domain:?}"));
    }
    if domain == "*" {
        return Ok(());
    }
    let rest = domain.strip_prefix("*.").unwrap_or(domain);
    if rest.is_empty() || rest.contains('*') {
        return Err(format!(
            "invalid domain {domain:?}: `*` is only allowed as the whole domain or as a `*.` prefix (\"*.example.com\")"
        ));
    }
    Ok(())
}

fn compile_route(
    route: &RawRoute,
    name: String,
    at: &str,
    clusters: &HashMap<&str, ClusterId>,
) -> Result<Route, FieldError> {
    let case_sensitive = route.case_sensitive.unwrap_or(true);
    let path = match (&route.prefix, &route.path, &route.regex) {
        (Some(p), None, None) => {
            check_path(p, &format!("{at}.prefix"))?;
            PathMatch::Prefix {
                value: Bytes::from(p.clone()),
                case_sensitive,
            }
        }
        (None, Some(p), None) => {
            check_path(p, &format!("{at}.path"))?;
            PathMatch::Exact {
                value: Bytes::from(p.clone()),
                case_sensitive,
            }
        }
        (None, None, Some(re)) => {
            PathMatch::Regex(compile_regex(re, case_sensitive, &format!("{at}.regex"))?)
        }
        _ => {
            return Err(FieldError::new(
                at,
                "a route needs exactly one of `prefix`, `path` or `regex`",
            ));
        }
    };
    let mut headers = Vec::with_capacity(route.headers.len());
    for (i, h) in route.headers.iter().enumerate() {
        let hat = format!("{at}.headers[{i}]");
        let name = header_name(&h.name, &format!("{hat}.name"))?;
        let value = value_match(
            &hat,
            [
                ("exact", h.exact.as_deref()),
                ("prefix", h.prefix.as_deref()),
                ("suffix", h.suffix.as_deref()),
                ("regex", h.regex.as_deref()),
            ],
            h.present,
            "`exact`, `prefix`, `suffix`, `regex` or `present`",
        )?;
        headers.push(HeaderMatcher {
            name,
            value,
            invert: h.invert.unwrap_or(false),
        });
    }
    let mut query = Vec::with_capacity(route.query.len());
    for (i, q) in route.query.iter().enumerate() {
        let qat = format!("{at}.query[{i}]");
        if q.name.is_empty() || q.name.contains(['&', '=', '#', ' ']) {
            return Err(FieldError::new(
                format!("{qat}.name"),
                format!("invalid query parameter name {:?}", q.name),
            ));
        }
        let value = value_match(
            &qat,
            [
                ("exact", q.exact.as_deref()),
                ("prefix", q.prefix.as_deref()),
                ("suffix", None),
                ("regex", q.regex.as_deref()),
            ],
            q.present,
            "`exact`, `prefix`, `regex` or `present`",
        )?;
        query.push(QueryMatcher {
            name: Bytes::from(q.name.clone()),
            value,
        });
    }
    let action = compile_action(route, at, clusters)?;
    let timeout = match &route.timeout {
        Some(t) => parse_duration(t, &format!("{at}.timeout"))?,
        None => DEFAULT_ROUTE_TIMEOUT,
    };
    let prefix_rewrite = match &route.prefix_rewrite {
        None => None,
        Some(_) if route.prefix.is_none() => {
            return Err(FieldError::new(
                format!("{at}.prefix_rewrite"),
                "`prefix_rewrite` needs a `prefix` match",
            ));
        }
        Some(p) => {
            check_path(p, &format!("{at}.prefix_rewrite"))?;
            Some(Bytes::from(p.clone()))
        }
    };
    let idle_timeout = match &route.idle_timeout {
        Some(t) => Some(parse_duration(t, &format!("{at}.idle_timeout"))?),
        None => None,
    };
    Ok(Route {
        name,
        action,
        timeout: (!timeout.is_zero()).then_some(timeout),
        idle_timeout,
        request_headers_to_add: headers_to_add(
            &route.request_headers_to_add,
            &format!("{at}.request_headers_to_add"),
        )?,
        request_headers_to_remove: headers_to_remove(
            &route.request_headers_to_remove,
            &format!("{at}.request_headers_to_remove"),
        )?,
        response_headers_to_add: headers_to_add(
            &route.response_headers_to_add,
            &format!("{at}.response_headers_to_add"),
        )?,
        response_headers_to_remove: headers_to_remove(
            &route.response_headers_to_remove,
            &format!("{at}.response_headers_to_remove"),
        )?,
        prefix_rewrite,
        filters: route_filters(route.filters.as_ref(), &format!("{at}.filters"))?,
        retry_policy: route
            .retry_policy
            .as_ref()
            .map(|p| retry_policy(p, &format!("{at}.retry_policy")).map(Arc::new))
            .transpose()?,
        hash_policy: hash_policy(route, at)?,
        rate_limits: ratelimit::rate_limit_policies(&route.rate_limits, at)?.into(),
        matcher: RouteMatch {
            path,
            headers,
            query,
        },
    })
}

/// Paths start with `/` and contain no whitespace, controls, `?` or `#`.
fn check_path(p: &str, at: &str) -> Result<(), FieldError> {
    if !p.starts_with('/')
        || p.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?' || b == b'#')
    {
        return Err(FieldError::new(
            at,
            format!("invalid path {p:?}: must start with `/`, no spaces, `?` or `#`"),
        ));
    }
    Ok(())
}

fn compile_regex(re: &str, case_sensitive: bool, at: &str) -> Result<Regex, FieldError> {
    RegexBuilder::new(&format!("^(?:{re})$"))
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let why = match e {
                regex::Error::CompiledTooBig(_) => {
                    format!("regex too large (compiled size limit {REGEX_SIZE_LIMIT} bytes)")
                }
                other => {
                    // The syntax error is multi-line with a caret; keep its last line.
                    let text = other.to_string();
                    let last = text.lines().rev().find(|l| !l.trim().is_empty());
                    last.unwrap_or("bad syntax")
                        .trim()
                        .trim_start_matches("error: ")
                        .to_owned()
                }
            };
            FieldError::new(at, format!("invalid regex {re:?}: {why}"))
        })
}

/// Exactly one of the string matchers or `present`.
fn value_match(
    at: &str,
    strings: [(&str, Option<&str>); 4],
    present: Option<bool>,
    expected: &str,
) -> Result<ValueMatch, FieldError> {
    let mut chosen = present.map(ValueMatch::Present);
    let mut count = usize::from(present.is_some());
    for (kind, value) in strings {
        let Some(v) = value else { continue };
        count += 1;
        let bytes = Bytes::from(v.to_owned());
        chosen = Some(match kind {
            "exact" => ValueMatch::Exact(bytes),
            "prefix" => ValueMatch::Prefix(bytes),
            "suffix" => ValueMatch::Suffix(bytes),
            _ => ValueMatch::Regex(compile_regex(v, true, &format!("{at}.regex"))?),
        });
    }
    match chosen {
        Some(m) if count == 1 => Ok(m),
        _ => Err(FieldError::new(
            at,
            format!("needs exactly one of {expected}"),
        )),
    }
}

fn compile_action(
    route: &RawRoute,
    at: &str,
    clusters: &HashMap<&str, ClusterId>,
) -> Result<Action, FieldError> {
    let count = usize::from(route.cluster.is_some())
        + usize::from(route.weighted_clusters.is_some())
        + usize::from(route.redirect.is_some())
        + usize::from(route.direct_response.is_some());
    if count != 1 {
        return Err(FieldError::new(
            at,
            "a route needs exactly one of `cluster`, `weighted_clusters`, `redirect` or `direct_response`",
        ));
    }
    let lookup = |name: &str, at: String| {
        clusters
            .get(name)
            .copied()
            .ok_or_else(|| FieldError::new(at, format!("unknown cluster {name:?}")))
    };
    if let Some(c) = &route.cluster {
        return Ok(Action::Cluster(lookup(c, format!("{at}.cluster"))?));
    }
    if let Some(wc) = &route.weighted_clusters {
        let wat = format!("{at}.weighted_clusters");
        if wc.is_empty() {
            return Err(FieldError::new(wat, "at least one cluster is required"));
        }
        let mut entries = Vec::with_capacity(wc.len());
        let mut total: u32 = 0;
        for (i, w) in wc.iter().enumerate() {
            let id = lookup(&w.cluster, format!("{wat}[{i}].cluster"))?;
            if w.weight == 0 {
                return Err(FieldError::new(
                    format!("{wat}[{i}].weight"),
                    "weight must be greater than 0",
                ));
            }
            total = total.checked_add(w.weight).ok_or_else(|| {
                FieldError::new(format!("{wat}[{i}].weight"), "total weight overflows u32")
            })?;
            entries.push((id, total));
        }
        return Ok(Action::WeightedClusters(WeightedClusters {
            entries,
            total,
        }));
    }
    if let Some(r) = &route.redirect {
        let rat = format!("{at}.redirect");
        let status = r.status.unwrap_or(DEFAULT_REDIRECT_STATUS);
        if ![301, 302, 303, 307, 308].contains(&status) {
            return Err(FieldError::new(
                format!("{rat}.status"),
                format!("redirect status must be 301, 302, 303, 307 or 308, not {status}"),
            ));
        }
        if let Some(s) = &r.scheme {
            let ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
            if !ok {
                return Err(FieldError::new(
                    format!("{rat}.scheme"),
                    format!("invalid scheme {s:?}"),
                ));
            }
        }
        if let Some(h) = &r.host
            && (h.is_empty()
                || h.bytes().any(|b| {
                    b.is_ascii_whitespace() || b.is_ascii_control() || b"/?#@".contains(&b)
                }))
        {
            return Err(FieldError::new(
                format!("{rat}.host"),
                format!("invalid host {h:?}"),
            ));
        }
        if let Some(p) = &r.path {
            let ok = p.starts_with('/')
                && !p
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'#');
            if !ok {
                return Err(FieldError::new(
                    format!("{rat}.path"),
                    format!("invalid path {p:?}: must start with `/`, no spaces or `#`"),
                ));
            }
        }
        return Ok(Action::Redirect(Redirect {
            scheme: r
                .scheme
                .as_ref()
                .map(|s| Bytes::from(s.to_ascii_lowercase())),
            host: r.host.as_ref().map(|h| Bytes::from(h.clone())),
            path: r.path.as_ref().map(|p| Bytes::from(p.clone())),
            status,
            strip_query: r.strip_query.unwrap_or(false),
        }));
    }
    let Some(d) = &route.direct_response else {
        return Err(FieldError::new(at, "a route needs an action"));
    };
    if !(100..=599).contains(&d.status) {
        return Err(FieldError::new(
            format!("{at}.direct_response.status"),
            format!("status must be 100..=599, not {}", d.status),
        ));
    }
    Ok(Action::DirectResponse {
        status: d.status,
        body: Bytes::from(d.body.clone().unwrap_or_default()),
    })
}

/// `hash_policy = [...]`: each entry exactly one kind; names are tokens, cookie values and
/// paths safe in a `Set-Cookie` field.
fn hash_policy(route: &RawRoute, at: &str) -> Result<Vec<HashPolicy>, FieldError> {
    let mut out = Vec::with_capacity(route.hash_policy.len());
    for (i, p) in route.hash_policy.iter().enumerate() {
        let pat = format!("{at}.hash_policy[{i}]");
        let kinds = [
            p.header.is_some(),
            p.cookie.is_some(),
            p.source_ip.is_some(),
            p.query_parameter.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 || p.source_ip == Some(false) {
            return Err(FieldError::new(
                pat,
                "exactly one of `header`, `cookie`, `source_ip = true` or `query_parameter`",
            ));
        }
        out.push(if let Some(h) = &p.header {
            HashPolicy::Header(header_name(h, &format!("{pat}.header"))?)
        } else if let Some(c) = &p.cookie {
            // A cookie name is a token (RFC 6265 4.1.1).
            let name = header_name(&c.name, &format!("{pat}.cookie.name"))?;
            let ttl = match &c.ttl {
                Some(t) => {
                    let field = format!("{pat}.cookie.ttl");
                    let ttl = parse_duration(t, &field)?;
                    if ttl.is_zero() {
                        return Err(FieldError::new(field, "must be greater than 0s"));
                    }
                    Some(ttl)
                }
                None => None,
            };
            let path = match &c.path {
                Some(path) => {
                    check_path(path, &format!("{pat}.cookie.path"))?;
                    if path.contains(';') {
                        return Err(FieldError::new(
                            format!("{pat}.cookie.path"),
                            "a cookie path has no `;`",
                        ));
                    }
                    Some(Bytes::from(path.clone()))
                }
                None => None,
            };
            HashPolicy::Cookie { name, ttl, path }
        } else if let Some(q) = &p.query_parameter {
            if q.is_empty() || q.contains(['&', '=', '#', ' ']) {
                return Err(FieldError::new(
                    format!("{pat}.query_parameter"),
                    format!("invalid query parameter name {q:?}"),
                ));
            }
            HashPolicy::QueryParameter(Bytes::from(q.clone()))
        } else {
            HashPolicy::SourceIp
        });
    }
    Ok(out)
}

fn route_filters(raw: Option<&RawRouteFilters>, at: &str) -> Result<RouteFilters, FieldError> {
    let Some(raw) = raw else {
        return Ok(RouteFilters::default());
    };
    let buffer = match &raw.buffer {
        None => None,
        Some(b) if b.disabled == Some(true) => {
            if b.max_request_bytes.is_some() {
                return Err(FieldError::new(
                    format!("{at}.buffer"),
                    "`disabled = true` and `max_request_bytes` exclude each other",
                ));
            }
            Some(None)
        }
        Some(b) => match b.max_request_bytes {
            Some(0) => {
                return Err(FieldError::new(
                    format!("{at}.buffer.max_request_bytes"),
                    "must be at least 1",
                ));
            }
            Some(n) => Some(Some(n)),
            None => {
                return Err(FieldError::new(
                    format!("{at}.buffer"),
                    "give `max_request_bytes` or `disabled = true`",
                ));
            }
        },
    };
    Ok(RouteFilters {
        buffer,
        local_ratelimit: None,
    })
}

pub(crate) fn headers_to_add(
    list: &[RawHeaderToAdd],
    at: &str,
) -> Result<Vec<HeaderToAdd>, FieldError> {
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            let name = header_name(&h.name, &format!("{at}[{i}].name"))?;
            check_header_value(&h.value, &format!("{at}[{i}].value"))?;
            Ok(HeaderToAdd {
                name,
                value: Bytes::from(h.value.clone()),
                append: h.append.unwrap_or(true),
            })
        })
        .collect()
}

pub(crate) fn headers_to_remove(list: &[String], at: &str) -> Result<Vec<Bytes>, FieldError> {
    list.iter()
        .enumerate()
        .map(|(i, n)| header_name(n, &format!("{at}[{i}]")))
        .collect()
}

/// Envoy's default back-off base interval.
pub const DEFAULT_RETRY_BASE_INTERVAL: Duration = Duration::from_millis(25);
/// The retry buffer's default size.
pub const DEFAULT_RETRY_BUFFER_LIMIT: u64 = 64 * 1024;
/// Most retries a policy may ask for.
pub const MAX_NUM_RETRIES: u32 = 10;

fn retry_policy(raw: &RawRetryPolicy, at: &str) -> Result<RetryPolicy, FieldError> {
    let mut retry_on = RetryOn::default();
    for (i, name) in raw.retry_on.iter().enumerate() {
        let Some((_, on)) = RetryOn::NAMES.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = RetryOn::NAMES.iter().map(|(n, _)| *n).collect();
            return Err(FieldError::new(
                format!("{at}.retry_on[{i}]"),
                format!(
                    "unknown retry condition {name:?} (one of {})",
                    known.join(", ")
                ),
            ));
        };
        retry_on |= *on;
    }
    if raw.retry_on.is_empty() {
        return Err(FieldError::new(
            format!("{at}.retry_on"),
            "a retry policy needs at least one `retry_on` condition",
        ));
    }
    for (i, &code) in raw.retriable_status_codes.iter().enumerate() {
        if !(100..=599).contains(&code) {
            return Err(FieldError::new(
                format!("{at}.retriable_status_codes[{i}]"),
                format!("{code} is not an HTTP status (100..=599)"),
            ));
        }
    }
    let num_retries = raw.num_retries.unwrap_or(1);
    if num_retries > MAX_NUM_RETRIES {
        return Err(FieldError::new(
            format!("{at}.num_retries"),
            format!("at most {MAX_NUM_RETRIES} retries"),
        ));
    }
    let per_try_timeout = match &raw.per_try_timeout {
        Some(t) => Some(parse_duration(t, &format!("{at}.per_try_timeout"))?),
        None => None,
    }
    .filter(|t| !t.is_zero());
    let back_off = raw.retry_back_off.as_ref();
    let base_interval = match back_off.and_then(|b| b.base_interval.as_ref()) {
        Some(t) => parse_duration(t, &format!("{at}.retry_back_off.base_interval"))?,
        None => DEFAULT_RETRY_BASE_INTERVAL,
    };
    if base_interval.is_zero() {
        return Err(FieldError::new(
            format!("{at}.retry_back_off.base_interval"),
            "must be greater than zero",
        ));
    }
    let max_interval = match back_off.and_then(|b| b.max_interval.as_ref()) {
        Some(t) => {
            let max = parse_duration(t, &format!("{at}.retry_back_off.max_interval"))?;
            if max < base_interval {
                return Err(FieldError::new(
                    format!("{at}.retry_back_off.max_interval"),
                    "must not be less than `base_interval`",
                ));
            }
            max
        }
        None => base_interval * 10,
    };
    Ok(RetryPolicy {
        retry_on,
        retriable_status_codes: raw.retriable_status_codes.clone(),
        num_retries,
        per_try_timeout,
        base_interval,
        max_interval,
        per_request_buffer_limit_bytes: raw
            .per_request_buffer_limit_bytes
            .unwrap_or(DEFAULT_RETRY_BUFFER_LIMIT),
    })
}
