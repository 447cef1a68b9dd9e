//! Rate limit settings. Local: Envoy's `token_bucket`, the `local_ratelimit` HTTP filter, its
//! per-virtual-host and per-route overrides, and the `local_ratelimit` network filter. Global:
//! the `ratelimit` HTTP filter (which rate limit service, its domain and failure mode) and the
//! `rate_limits` of routes and virtual hosts (the descriptors it asks about).
//!
//! Validation only: the buckets are process-wide state (`crate::shared_state`), looked up by
//! name when a snapshot is built; the filters that use them live in `crate::filters` and
//! `crate::tcp`.

use std::collections::HashMap;
use std::time::Duration;

use super::error::FieldError;
use super::raw::{
    RawGlobalRateLimit, RawLocalRateLimit, RawLocalRateLimitPerRoute, RawNetworkFilter,
    RawRateLimitPolicy, RawTokenBucket,
};
use super::route::{RateLimitAction, RateLimitOverride, RateLimitPolicy};
use super::validate::{check_header_value, check_name, header_name, parse_duration};
use super::{
    BucketParams, ClusterConfig, ClusterId, DescriptorKey, GlobalRateLimit, LocalRateLimit,
    NetworkFilterConfig, RateLimitDescriptor, UpstreamProtocol,
};

/// `timeout` of the `ratelimit` filter (Envoy's default).
pub const DEFAULT_RATELIMIT_TIMEOUT: Duration = Duration::from_millis(20);
/// `descriptor_key` of a `generic_key` action (Envoy's default).
pub const DEFAULT_GENERIC_KEY: &str = "generic_key";

/// `token_bucket.tokens_per_fill` (Envoy's default).
pub const DEFAULT_TOKENS_PER_FILL: u32 = 1;
/// `max_descriptors`: distinct values each descriptor keeps a bucket for.
pub const DEFAULT_MAX_DESCRIPTORS: usize = 1024;
/// Largest `max_descriptors` (about 3 MiB of buckets per descriptor).
pub const MAX_DESCRIPTORS: usize = 65_536;
/// `filter_enabled` and `filter_enforced` (Envoy's are 0 %: a configured limit that does
/// nothing until told to surprises more than it helps).
pub const DEFAULT_PERCENT: u32 = 100;

/// `{ max_tokens, tokens_per_fill, fill_interval }`: every number at least 1, the interval
/// greater than 0.
pub(crate) fn token_bucket(raw: &RawTokenBucket, at: &str) -> Result<BucketParams, FieldError> {
    if raw.max_tokens == 0 {
        return Err(FieldError::new(
            format!("{at}.max_tokens"),
            "must be at least 1",
        ));
    }
    let tokens_per_fill = raw.tokens_per_fill.unwrap_or(DEFAULT_TOKENS_PER_FILL);
    if tokens_per_fill == 0 {
        return Err(FieldError::new(
            format!("{at}.tokens_per_fill"),
            "must be at least 1",
        ));
    }
    let field = format!("{at}.fill_interval");
    let fill_interval = parse_duration(&raw.fill_interval, &field)?;
    if fill_interval < Duration::from_millis(1) {
        return Err(FieldError::new(field, "must be at least 1ms"));
    }
    Ok(BucketParams {
        max_tokens: raw.max_tokens,
        tokens_per_fill,
        fill_interval,
    })
}

fn percent(v: Option<u32>, at: &str) -> Result<u32, FieldError> {
    match v {
        None => Ok(DEFAULT_PERCENT),
        Some(p @ 0..=100) => Ok(p),
        Some(p) => Err(FieldError::new(
            at,
            format!("{p} is not a percentage (0..=100)"),
        )),
    }
}

/// `enable_x_ratelimit_headers`: `"OFF"` (default) or `"DRAFT_VERSION_03"`.
fn x_ratelimit_headers(v: Option<&str>, at: &str) -> Result<bool, FieldError> {
    match v {
        None | Some("OFF") => Ok(false),
        Some("DRAFT_VERSION_03") => Ok(true),
        Some(other) => Err(FieldError::new(
            format!("{at}.enable_x_ratelimit_headers"),
            format!("expected \"OFF\" or \"DRAFT_VERSION_03\", not {other:?}"),
        )),
    }
}

/// `name = "ratelimit"` on `[[listeners.http_filters]]`: its cluster must exist and speak
/// HTTP/2 (gRPC).
pub(crate) fn global_ratelimit(
    raw: &RawGlobalRateLimit,
    at: &str,
    cluster_ids: &HashMap<&str, ClusterId>,
    clusters: &[ClusterConfig],
) -> Result<GlobalRateLimit, FieldError> {
    if raw.domain.is_empty() {
        return Err(FieldError::new(format!("{at}.domain"), "must not be empty"));
    }
    let Some(&cluster) = cluster_ids.get(raw.cluster.as_str()) else {
        return Err(FieldError::new(
            format!("{at}.cluster"),
            format!("unknown cluster {:?}", raw.cluster),
        ));
    };
    if clusters[cluster].protocol != UpstreamProtocol::Http2 {
        return Err(FieldError::new(
            format!("{at}.cluster"),
            format!(
                "the rate limit service speaks gRPC: cluster {:?} needs protocol = \"http2\"",
                raw.cluster
            ),
        ));
    }
    let timeout = match &raw.timeout {
        Some(t) => parse_duration(t, &format!("{at}.timeout"))?,
        None => DEFAULT_RATELIMIT_TIMEOUT,
    };
    if timeout.is_zero() {
        return Err(FieldError::new(
            format!("{at}.timeout"),
            "must be greater than 0",
        ));
    }
    Ok(GlobalRateLimit {
        domain: raw.domain.clone(),
        cluster,
        authority: raw.cluster.clone(),
        timeout,
        failure_mode_deny: raw.failure_mode_deny.unwrap_or(false),
        x_ratelimit_headers: x_ratelimit_headers(raw.enable_x_ratelimit_headers.as_deref(), at)?,
    })
}

/// `rate_limits = [{ actions = [...] }]` of a route or virtual host: each action exactly one
/// kind, header names tokens, keys and values non-empty and printable.
pub(crate) fn rate_limit_policies(
    raw: &[RawRateLimitPolicy],
    at: &str,
) -> Result<Vec<RateLimitPolicy>, FieldError> {
    let text = |v: &str, at: String| -> Result<String, FieldError> {
        if v.is_empty() {
            return Err(FieldError::new(at, "must not be empty"));
        }
        check_header_value(v, &at)?;
        Ok(v.to_owned())
    };
    let mut out = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let pat = format!("{at}.rate_limits[{i}]");
        if p.actions.is_empty() {
            return Err(FieldError::new(
                format!("{pat}.actions"),
                "give at least one action",
            ));
        }
        let mut actions = Vec::with_capacity(p.actions.len());
        for (j, a) in p.actions.iter().enumerate() {
            let aat = format!("{pat}.actions[{j}]");
            let action = match (a.remote_address, &a.request_headers, &a.generic_key) {
                (Some(true), None, None) => RateLimitAction::RemoteAddress,
                (None, Some(h), None) => RateLimitAction::RequestHeader {
                    name: header_name(
                        &h.header_name,
                        &format!("{aat}.request_headers.header_name"),
                    )?,
                    key: text(
                        &h.descriptor_key,
                        format!("{aat}.request_headers.descriptor_key"),
                    )?,
                    skip_if_absent: h.skip_if_absent.unwrap_or(false),
                },
                (None, None, Some(g)) => RateLimitAction::GenericKey {
                    key: text(
                        g.descriptor_key.as_deref().unwrap_or(DEFAULT_GENERIC_KEY),
                        format!("{aat}.generic_key.descriptor_key"),
                    )?,
                    value: text(
                        &g.descriptor_value,
                        format!("{aat}.generic_key.descriptor_value"),
                    )?,
                },
                _ => {
                    return Err(FieldError::new(
                        aat,
                        "give exactly one of `remote_address = true`, `request_headers = { \
                         header_name, descriptor_key }` or `generic_key = { descriptor_value }`",
                    ));
                }
            };
            actions.push(action);
        }
        out.push(RateLimitPolicy { actions });
    }
    Ok(out)
}

/// `name = "local_ratelimit"` on `[[listeners.http_filters]]`.
pub(crate) fn local_ratelimit(
    raw: &RawLocalRateLimit,
    at: &str,
) -> Result<LocalRateLimit, FieldError> {
    let x_ratelimit_headers = x_ratelimit_headers(raw.enable_x_ratelimit_headers.as_deref(), at)?;
    let max_descriptors = match raw.max_descriptors {
        None => DEFAULT_MAX_DESCRIPTORS,
        Some(n @ 1..) if n as usize <= MAX_DESCRIPTORS => n as usize,
        Some(n) => {
            return Err(FieldError::new(
                format!("{at}.max_descriptors"),
                format!("must be 1..={MAX_DESCRIPTORS}, not {n}"),
            ));
        }
    };
    let mut descriptors = Vec::with_capacity(raw.descriptors.len());
    for (i, d) in raw.descriptors.iter().enumerate() {
        let dat = format!("{at}.descriptors[{i}]");
        let key = match (&d.header, d.remote_address) {
            (Some(h), None) => DescriptorKey::Header(header_name(h, &format!("{dat}.header"))?),
            (None, Some(true)) => DescriptorKey::RemoteAddress,
            _ => {
                return Err(FieldError::new(
                    dat,
                    "a descriptor needs exactly one of `header = \"<name>\"` or \
                     `remote_address = true`",
                ));
            }
        };
        descriptors.push(RateLimitDescriptor {
            key,
            token_bucket: token_bucket(&d.token_bucket, &format!("{dat}.token_bucket"))?,
        });
    }
    Ok(LocalRateLimit {
        token_bucket: token_bucket(&raw.token_bucket, &format!("{at}.token_bucket"))?,
        filter_enabled: percent(raw.filter_enabled, &format!("{at}.filter_enabled"))?,
        filter_enforced: percent(raw.filter_enforced, &format!("{at}.filter_enforced"))?,
        x_ratelimit_headers,
        descriptors,
        max_descriptors,
    })
}

/// A virtual host's or route's `filters.local_ratelimit`: `disabled = true` or a
/// `token_bucket` of its own, which takes the next free `slot` of the listener's buckets.
pub(crate) fn per_route(
    raw: Option<&RawLocalRateLimitPerRoute>,
    at: &str,
    name: impl FnOnce() -> String,
    slots: &mut usize,
) -> Result<Option<RateLimitOverride>, FieldError> {
    let Some(raw) = raw else { return Ok(None) };
    let at = format!("{at}.local_ratelimit");
    match (raw.disabled, &raw.token_bucket) {
        (Some(true), None) => Ok(Some(RateLimitOverride::Disabled)),
        (None | Some(false), Some(b)) => {
            let token_bucket = token_bucket(b, &format!("{at}.token_bucket"))?;
            *slots += 1;
            Ok(Some(RateLimitOverride::Bucket {
                slot: *slots,
                name: name(),
                token_bucket,
            }))
        }
        (Some(true), Some(_)) => Err(FieldError::new(
            at,
            "`disabled = true` and `token_bucket` exclude each other",
        )),
        _ => Err(FieldError::new(
            at,
            "give `token_bucket = { ... }` or `disabled = true`",
        )),
    }
}

/// `name = "local_ratelimit"` on `[[listeners.network_filters]]`.
pub(crate) fn network_filter(
    raw: &RawNetworkFilter,
    at: &str,
    listener: &str,
) -> Result<NetworkFilterConfig, FieldError> {
    let Some(b) = &raw.token_bucket else {
        return Err(FieldError::new(
            at,
            "the local_ratelimit network filter needs `token_bucket = { max_tokens, \
             tokens_per_fill, fill_interval }`",
        ));
    };
    let stat_prefix = match &raw.stat_prefix {
        Some(p) => {
            check_name(p, &format!("{at}.stat_prefix"))?;
            p.clone()
        }
        None => listener.to_owned(),
    };
    Ok(NetworkFilterConfig::LocalRateLimit {
        token_bucket: token_bucket(b, &format!("{at}.token_bucket"))?,
        stat_prefix,
    })
}
