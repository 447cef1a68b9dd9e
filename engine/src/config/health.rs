//! Endpoint health settings of a cluster: `healthy_panic_threshold`, active
//! `[[clusters.health_checks]]` and `[clusters.outlier_detection]`, with Envoy's names and
//! defaults except where noted (every configured outlier detector enforces).
//!
//! Validation only: the health state is process-wide (`crate::shared_state::EndpointHealth`),
//! the checks run on the control thread and the detectors in `crate::shared::health`.

use std::time::Duration;

use super::error::FieldError;
use super::raw::{RawHealthCheck, RawHealthCheckType, RawInitialHealth, RawOutlierDetection};
use super::validate::parse_duration;

/// `healthy_panic_threshold` (Envoy's default), percent.
pub const DEFAULT_HEALTHY_PANIC_THRESHOLD: f64 = 50.0;
/// `health_checks.interval`.
pub const DEFAULT_HC_INTERVAL: Duration = Duration::from_secs(5);
/// `health_checks.timeout`.
pub const DEFAULT_HC_TIMEOUT: Duration = Duration::from_secs(1);
/// `health_checks.unhealthy_threshold` and `healthy_threshold`.
pub const DEFAULT_HC_THRESHOLD: u32 = 2;
/// `outlier_detection.consecutive_5xx` (Envoy's default; on whenever the section is there).
pub const DEFAULT_CONSECUTIVE_5XX: u32 = 5;
/// `outlier_detection.interval`.
pub const DEFAULT_OUTLIER_INTERVAL: Duration = Duration::from_secs(10);
/// `outlier_detection.base_ejection_time`.
pub const DEFAULT_BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
/// `outlier_detection.max_ejection_time`.
pub const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
/// `outlier_detection.max_ejection_percent`.
pub const DEFAULT_MAX_EJECTION_PERCENT: f64 = 10.0;
/// `outlier_detection.enforcing_*` (Envoy's is 100 for `consecutive_5xx` only).
pub const DEFAULT_ENFORCING: u32 = 100;

/// Methods an HTTP health check may use (Envoy's, bar CONNECT).
pub const HC_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
];

/// One active health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// What is checked.
    pub kind: HealthCheckKind,
    /// Time between checks of one endpoint.
    pub interval: Duration,
    /// Up to this much is added to each interval, at random.
    pub interval_jitter: Duration,
    /// A check not done within this fails.
    pub timeout: Duration,
    /// The interval while the cluster has had no traffic; `None`: `interval`.
    pub no_traffic_interval: Option<Duration>,
    /// Failures in a row that mark an endpoint unhealthy (at least 1).
    pub unhealthy_threshold: u32,
    /// Passes in a row that mark it healthy again (at least 1).
    pub healthy_threshold: u32,
    /// A new endpoint starts unhealthy (until `healthy_threshold` passes).
    pub initially_unhealthy: bool,
}

/// The kinds of active health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// An HTTP/1.1 request; passes with a status in one of `expected`.
    Http {
        path: String,
        /// `None`: the cluster's name.
        host: Option<String>,
        /// One of [`HC_METHODS`].
        method: &'static str,
        /// `[start, end)` ranges.
        expected: Vec<(u16, u16)>,
    },
    /// A TCP connect; with `send`, those bytes are written and the answer must contain
    /// `receive`.
    Tcp {
        send: Option<Vec<u8>>,
        receive: Option<Vec<u8>>,
    },
    /// `grpc.health.v1.Health/Check` over h2c; passes when the answer is `SERVING`.
    Grpc {
        /// Empty: the server as a whole.
        service_name: String,
        /// `None`: the cluster's name.
        authority: Option<String>,
    },
}

/// Outlier detection: Envoy's consecutive detectors.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// `None`: off.
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_failure: Option<u32>,
    pub consecutive_local_origin_failure: Option<u32>,
    pub split_external_local_origin_errors: bool,
    /// The failure percentage detector, run each `interval`.
    pub failure_percentage: Option<FailurePercentage>,
    /// The success rate detector, run each `interval`.
    pub success_rate: SuccessRate,
    /// Percent of detections that eject, per detector (same order as above).
    pub enforcing: [u32; 5],
    /// How often ejection multipliers decay.
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    /// Percent of the endpoints that may be ejected at once (one always may).
    pub max_ejection_percent: f64,
}

/// Envoy's failure percentage detector.
#[derive(Debug, Clone, PartialEq)]
pub struct FailurePercentage {
    /// Percent of failed requests in an interval at or above which an endpoint is ejected.
    pub threshold: f64,
    /// Endpoints with `request_volume` requests in the interval needed for it to run.
    pub minimum_hosts: usize,
    /// Requests an endpoint needs in the interval to be judged.
    pub request_volume: u64,
}

/// Envoy's success rate detector: each interval, the endpoints with `request_volume`
/// requests are judged together (when there are `minimum_hosts` of them), and one whose
/// success rate is below mean − stdev × `stdev_factor` / 1000 is ejected.
#[derive(Debug, Clone, PartialEq)]
pub struct SuccessRate {
    pub minimum_hosts: usize,
    pub request_volume: u64,
    /// Thousandths of a standard deviation.
    pub stdev_factor: u32,
}

/// `success_rate_minimum_hosts` (Envoy's default).
pub const DEFAULT_SUCCESS_RATE_MINIMUM_HOSTS: u32 = 5;
/// `success_rate_request_volume` (Envoy's default).
pub const DEFAULT_SUCCESS_RATE_REQUEST_VOLUME: u32 = 100;
/// `success_rate_stdev_factor` (Envoy's default: 1.9 standard deviations).
pub const DEFAULT_SUCCESS_RATE_STDEV_FACTOR: u32 = 1900;

/// `failure_percentage_minimum_hosts` (Envoy's default).
pub const DEFAULT_FAILURE_PERCENTAGE_MINIMUM_HOSTS: u32 = 5;
/// `failure_percentage_request_volume` (Envoy's default).
pub const DEFAULT_FAILURE_PERCENTAGE_REQUEST_VOLUME: u32 = 50;

/// `healthy_panic_threshold`: a percentage.
pub(crate) fn panic_threshold(v: Option<f64>, at: &str) -> Result<f64, FieldError> {
    let v = v.unwrap_or(DEFAULT_HEALTHY_PANIC_THRESHOLD);
    percent(v, &format!("{at}.healthy_panic_threshold"))
}

fn percent(v: f64, at: &str) -> Result<f64, FieldError> {
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(FieldError::new(
            at,
            format!("must be 0..=100 (a percentage), not {v}"),
        ))
    }
}

fn duration_or(v: &Option<String>, at: &str, default: Duration) -> Result<Duration, FieldError> {
    v.as_deref().map_or(Ok(default), |d| parse_duration(d, at))
}

fn nonzero_duration(
    v: &Option<String>,
    at: &str,
    default: Duration,
) -> Result<Duration, FieldError> {
    let d = duration_or(v, at, default)?;
    if d.is_zero() {
        return Err(FieldError::new(at, "must be greater than 0s"));
    }
    Ok(d)
}

/// `[[clusters.health_checks]]` entry `i`.
pub(crate) fn health_check(h: &RawHealthCheck, at: &str) -> Result<HealthCheck, FieldError> {
    let only = |v: bool, field: &str, kind: &str| {
        if v {
            Err(FieldError::new(
                format!("{at}.{field}"),
                format!("only applies to type = \"{kind}\""),
            ))
        } else {
            Ok(())
        }
    };
    if let Some(host) = &h.host {
        if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(FieldError::new(
                format!("{at}.host"),
                "must be a non-empty host without spaces or control characters",
            ));
        }
    }
    let kind = match h.kind {
        RawHealthCheckType::Http => {
            only(h.service_name.is_some(), "service_name", "grpc")?;
            only(h.send.is_some(), "send", "tcp")?;
            only(h.receive.is_some(), "receive", "tcp")?;
            let Some(path) = h.path.clone() else {
                return Err(FieldError::new(
                    format!("{at}.path"),
                    "an http health check needs a path",
                ));
            };
            if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                return Err(FieldError::new(
                    format!("{at}.path"),
                    "must start with '/' and hold no spaces or control characters",
                ));
            }
            let method = h.method.as_deref().unwrap_or("GET");
            let Some(&method) = HC_METHODS.iter().find(|&&m| m == method) else {
                return Err(FieldError::new(
                    format!("{at}.method"),
                    format!("must be one of {}", HC_METHODS.join(", ")),
                ));
            };
            let mut expected = Vec::new();
            for (i, [start, end]) in h
                .expected_statuses
                .clone()
                .unwrap_or_else(|| vec![[200, 201]])
                .into_iter()
                .enumerate()
            {
                if !(100..=600).contains(&start) || !(101..=600).contains(&end) || start >= end {
                    return Err(FieldError::new(
                        format!("{at}.expected_statuses[{i}]"),
                        format!(
                            "[{start}, {end}] is no range [start, end) of statuses within 100..600"
                        ),
                    ));
                }
                expected.push((start, end));
            }
            HealthCheckKind::Http {
                path,
                host: h.host.clone(),
                method,
                expected,
            }
        }
        RawHealthCheckType::Tcp => {
            only(h.service_name.is_some(), "service_name", "grpc")?;
            only(h.path.is_some(), "path", "http")?;
            only(h.host.is_some(), "host", "http")?;
            only(h.method.is_some(), "method", "http")?;
            only(h.expected_statuses.is_some(), "expected_statuses", "http")?;
            if h.receive.is_some() && h.send.is_none() {
                return Err(FieldError::new(
                    format!("{at}.receive"),
                    "needs send (the bytes that ask for it)",
                ));
            }
            HealthCheckKind::Tcp {
                send: h.send.as_ref().map(|s| s.as_bytes().to_vec()),
                receive: h.receive.as_ref().map(|s| s.as_bytes().to_vec()),
            }
        }
        RawHealthCheckType::Grpc => {
            only(h.path.is_some(), "path", "http")?;
            only(h.method.is_some(), "method", "http")?;
            only(h.expected_statuses.is_some(), "expected_statuses", "http")?;
            only(h.send.is_some(), "send", "tcp")?;
            only(h.receive.is_some(), "receive", "tcp")?;
            HealthCheckKind::Grpc {
                service_name: h.service_name.clone().unwrap_or_default(),
                authority: h.host.clone(),
            }
        }
    };
    let threshold = |v: Option<u32>, field: &str| match v {
        Some(0) => Err(FieldError::new(
            format!("{at}.{field}"),
            "must be at least 1",
        )),
        v => Ok(v.unwrap_or(DEFAULT_HC_THRESHOLD)),
    };
    let no_traffic_interval = match &h.no_traffic_interval {
        None => None,
        v => Some(nonzero_duration(
            v,
            &format!("{at}.no_traffic_interval"),
            DEFAULT_HC_INTERVAL,
        )?),
    };
    Ok(HealthCheck {
        kind,
        interval: nonzero_duration(&h.interval, &format!("{at}.interval"), DEFAULT_HC_INTERVAL)?,
        interval_jitter: duration_or(
            &h.interval_jitter,
            &format!("{at}.interval_jitter"),
            Duration::ZERO,
        )?,
        timeout: nonzero_duration(&h.timeout, &format!("{at}.timeout"), DEFAULT_HC_TIMEOUT)?,
        no_traffic_interval,
        unhealthy_threshold: threshold(h.unhealthy_threshold, "unhealthy_threshold")?,
        healthy_threshold: threshold(h.healthy_threshold, "healthy_threshold")?,
        initially_unhealthy: h.initial_health == Some(RawInitialHealth::Unhealthy),
    })
}

/// `[clusters.outlier_detection]`.
pub(crate) fn outlier_detection(
    o: &RawOutlierDetection,
    at: &str,
) -> Result<OutlierDetection, FieldError> {
    let split = o.split_external_local_origin_errors.unwrap_or(false);
    if o.consecutive_local_origin_failure.is_some() && !split {
        return Err(FieldError::new(
            format!("{at}.consecutive_local_origin_failure"),
            "needs split_external_local_origin_errors = true (otherwise local-origin failures count as 5xx)",
        ));
    }
    let on = |v: Option<u32>| v.filter(|&n| n > 0);
    let enforcing = |v: Option<u32>, field: &str| match v {
        Some(p) if p > 100 => Err(FieldError::new(
            format!("{at}.{field}"),
            format!("must be 0..=100 (a percentage), not {p}"),
        )),
        v => Ok(v.unwrap_or(DEFAULT_ENFORCING)),
    };
    let base_ejection_time = nonzero_duration(
        &o.base_ejection_time,
        &format!("{at}.base_ejection_time"),
        DEFAULT_BASE_EJECTION_TIME,
    )?;
    let max_ejection_time = nonzero_duration(
        &o.max_ejection_time,
        &format!("{at}.max_ejection_time"),
        DEFAULT_MAX_EJECTION_TIME,
    )?;
    if max_ejection_time < base_ejection_time {
        return Err(FieldError::new(
            format!("{at}.max_ejection_time"),
            "must be at least base_ejection_time",
        ));
    }
    Ok(OutlierDetection {
        consecutive_5xx: on(Some(o.consecutive_5xx.unwrap_or(DEFAULT_CONSECUTIVE_5XX))),
        consecutive_gateway_failure: on(o.consecutive_gateway_failure),
        consecutive_local_origin_failure: on(o.consecutive_local_origin_failure),
        split_external_local_origin_errors: split,
        failure_percentage: match o.failure_percentage_threshold {
            None => None,
            Some(t) => Some(FailurePercentage {
                threshold: percent(t, &format!("{at}.failure_percentage_threshold"))?,
                minimum_hosts: o
                    .failure_percentage_minimum_hosts
                    .unwrap_or(DEFAULT_FAILURE_PERCENTAGE_MINIMUM_HOSTS)
                    as usize,
                request_volume: u64::from(
                    o.failure_percentage_request_volume
                        .unwrap_or(DEFAULT_FAILURE_PERCENTAGE_REQUEST_VOLUME),
                ),
            }),
        },
        success_rate: SuccessRate {
            minimum_hosts: o
                .success_rate_minimum_hosts
                .unwrap_or(DEFAULT_SUCCESS_RATE_MINIMUM_HOSTS) as usize,
            request_volume: u64::from(
                o.success_rate_request_volume
                    .unwrap_or(DEFAULT_SUCCESS_RATE_REQUEST_VOLUME),
            ),
            stdev_factor: o
                .success_rate_stdev_factor
                .unwrap_or(DEFAULT_SUCCESS_RATE_STDEV_FACTOR),
        },
        enforcing: [
            enforcing(o.enforcing_consecutive_5xx, "enforcing_consecutive_5xx")?,
            enforcing(
                o.enforcing_consecutive_gateway_failure,
                "enforcing_consecutive_gateway_failure",
            )?,
            enforcing(
                o.enforcing_consecutive_local_origin_failure,
                "enforcing_consecutive_local_origin_failure",
            )?,
            enforcing(
                o.enforcing_failure_percentage,
                "enforcing_failure_percentage",
            )?,
            enforcing(o.enforcing_success_rate, "enforcing_success_rate")?,
        ],
        interval: nonzero_duration(
            &o.interval,
            &format!("{at}.interval"),
            DEFAULT_OUTLIER_INTERVAL,
        )?,
        base_ejection_time,
        max_ejection_time,
        max_ejection_percent: percent(
            o.max_ejection_percent
                .unwrap_or(DEFAULT_MAX_EJECTION_PERCENT),
            &format!("{at}.max_ejection_percent"),
        )?,
    })
}
