//! `ratelimit`: Envoy's (global) rate limit filter. A request whose route has `rate_limits`
//! is held while the rate limit service is asked about its descriptors
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, gRPC over the service's
//! HTTP/2 cluster and this worker's pooled connections to it, [`crate::upstream::unary`]);
//! over a limit it is answered 429 with `x-envoy-ratelimited: true` (a gRPC request:
//! `UNAVAILABLE`; access-log flag `RL`). Users keep the rate limit service they run for Envoy.
//!
//! Descriptors come from the route's `rate_limits` (or its virtual host's): each entry's
//! actions make one descriptor, an entry each — `remote_address`, `request_headers` (a
//! request without the header drops the descriptor, or with `skip_if_absent` only the entry),
//! `generic_key`. A request with no descriptor is not asked about.
//!
//! No answer within `timeout` (or an error, or a service not reachable): the request goes on
//! (`failure_mode_allowed`), or with `failure_mode_deny` it is answered 500 (flag `RLSE`).
//! With `enable_x_ratelimit_headers`, the response carries `x-ratelimit-limit`,
//! `-remaining` and `-reset` of the most constrained descriptor the service reported. Stats
//! (`http.<listener>.ratelimit.{ok,over_limit,error,failure_mode_allowed}`) are counted in the
//! log phase.
//!
//! The messages are written by hand with prost ([`proto`]): no protoc, no generated code.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;

use super::local_ratelimit::RateLimitHeaders;
use super::{AnswerKind, Done, FilterState, Flow, LocalAnswer, Wait};
use crate::cluster::ClusterLocal;
use crate::config::GlobalRateLimit;
use crate::config::route::RateLimitAction;
use crate::router::{RequestInfo, Route};
use crate::stats::HttpStats;
use crate::upstream::unary::{self, Call};

/// The service's method.
const SHOULD_RATE_LIMIT: &[u8] = b"/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

/// The answer over a limit (Envoy's: no body).
pub(crate) const OVER_LIMIT: LocalAnswer<'static> = LocalAnswer {
    status: 429,
    body: b"",
    kind: AnswerKind::RateLimited,
};

/// The answer when the service did not answer and `failure_mode_deny` is set.
pub(crate) const SERVICE_ERROR: LocalAnswer<'static> = LocalAnswer {
    status: 500,
    body: b"rate limit service error",
    kind: AnswerKind::RateLimitServiceError,
};

/// What the rate limit service said of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not asked yet.
    #[default]
    NotAsked,
    /// Nothing to ask: no descriptor (not counted).
    Nothing,
    /// Within the limits.
    Ok,
    /// Over a limit.
    OverLimit,
    /// No answer: an error, a timeout, or the service could not be reached.
    Error,
}

/// The decode-headers phase: ask (pause) once, then act on the answer.
pub(super) fn decode_headers(
    cfg: &GlobalRateLimit,
    route: Option<&Route>,
    st: &mut FilterState,
) -> Flow<'static> {
    match st.rls {
        Verdict::NotAsked if route.is_some_and(|r| !r.rate_limits.is_empty()) => {
            Flow::Pause(Wait::RateLimitService)
        }
        Verdict::NotAsked | Verdict::Nothing | Verdict::Ok => Flow::Continue,
        Verdict::OverLimit => {
            st.envoy_ratelimited = true;
            Flow::Respond(OVER_LIMIT)
        }
        Verdict::Error if cfg.failure_mode_deny => Flow::Respond(SERVICE_ERROR),
        Verdict::Error => Flow::Continue,
    }
}

/// Ask the rate limit service about the request's descriptors by its route's `rate_limits`;
/// the verdict (and any `x-ratelimit-*` fields) lands in `st`.
pub(super) async fn ask<R: RequestInfo + ?Sized>(
    cfg: &GlobalRateLimit,
    route: &Route,
    req: &R,
    client: IpAddr,
    clusters: &[Rc<ClusterLocal>],
    st: &mut FilterState,
) {
    let request = proto::RateLimitRequest {
        domain: cfg.domain.clone(),
        descriptors: descriptors(route, req, client),
        hits_addend: 0,
    };
    if request.descriptors.is_empty() {
        st.rls = Verdict::Nothing;
        return;
    }
    let cluster = &clusters[cfg.cluster];
    let Some(ep) = cluster.pick(None) else {
        st.rls = Verdict::Error;
        return;
    };
    let call = Call {
        path: SHOULD_RATE_LIMIT,
        authority: cfg.authority.as_bytes(),
        message: Bytes::from(request.encode_to_vec()),
        deadline: Instant::now() + cfg.timeout,
    };
    let answer = unary::call(Rc::clone(cluster), ep, call).await;
    let Some(resp) = answer
        .ok()
        .and_then(|b| proto::RateLimitResponse::decode(b).ok())
    else {
        st.rls = Verdict::Error;
        return;
    };
    // Envoy's reading: only OVER_LIMIT limits; any other code lets the request through.
    st.rls = if resp.overall_code == proto::Code::OverLimit as i32 {
        Verdict::OverLimit
    } else {
        Verdict::Ok
    };
    if cfg.x_ratelimit_headers {
        st.ratelimit_headers = x_ratelimit(&resp);
    }
}

/// The descriptors of a request by its route's `rate_limits`.
fn descriptors<R: RequestInfo + ?Sized>(
    route: &Route,
    req: &R,
    client: IpAddr,
) -> Vec<proto::RateLimitDescriptor> {
    let mut out = Vec::with_capacity(route.rate_limits.len());
    'policies: for policy in route.rate_limits.iter() {
        let mut entries = Vec::with_capacity(policy.actions.len());
        for action in &policy.actions {
            let (key, value) = match action {
                RateLimitAction::RemoteAddress => {
                    let mut v = String::with_capacity(39);
                    let _ = write!(v, "{client}");
                    ("remote_address".to_owned(), v)
                }
                RateLimitAction::RequestHeader {
                    name,
                    key,
                    skip_if_absent,
                } => match req.header(name) {
                    Some(v) => (key.clone(), String::from_utf8_lossy(v).into_owned()),
                    None if *skip_if_absent => continue,
                    None => continue 'policies,
                },
                RateLimitAction::GenericKey { key, value } => (key.clone(), value.clone()),
            };
            entries.push(proto::Entry { key, value });
        }
        if !entries.is_empty() {
            out.push(proto::RateLimitDescriptor { entries });
        }
    }
    out
}

/// `x-ratelimit-*` of the most constrained descriptor the service reported a limit for
/// (fewest requests remaining).
fn x_ratelimit(resp: &proto::RateLimitResponse) -> Option<RateLimitHeaders> {
    resp.statuses
        .iter()
        .filter_map(|s| Some((s, s.current_limit.as_ref()?)))
        .min_by_key(|(s, _)| s.limit_remaining)
        .map(|(s, limit)| {
            let until = s.duration_until_reset.as_ref().map_or(Duration::ZERO, |d| {
                Duration::new(
                    u64::try_from(d.seconds).unwrap_or(0),
                    u32::try_from(d.nanos).unwrap_or(0),
                )
            });
            RateLimitHeaders {
                limit: limit.requests_per_unit,
                remaining: s.limit_remaining.min(limit.requests_per_unit),
                reset: RateLimitHeaders::reset_secs(until),
            }
        })
}

/// The log phase: count what the service said of this request.
pub(super) fn log(_done: &Done, stats: &HttpStats, st: &FilterState, cfg: &GlobalRateLimit) {
    match st.rls {
        Verdict::NotAsked | Verdict::Nothing => {}
        Verdict::Ok => stats.ratelimit_ok.inc(),
        Verdict::OverLimit => stats.ratelimit_over_limit.inc(),
        Verdict::Error => {
            stats.ratelimit_error.inc();
            if !cfg.failure_mode_deny {
                stats.ratelimit_failure_mode_allowed.inc();
            }
        }
    }
}

/// Envoy's rate limit service messages (`envoy/service/ratelimit/v3/rls.proto`,
/// `envoy/extensions/common/ratelimit/v3/ratelimit.proto`), the fields ringway reads or
/// writes, written by hand for prost. Unknown fields of an answer are skipped by prost.
pub(crate) mod proto {
    /// `RateLimitRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct RateLimitRequest {
        #[prost(string, tag = "1")]
        pub(crate) domain: String,
        #[prost(message, repeated, tag = "2")]
        pub(crate) descriptors: Vec<RateLimitDescriptor>,
        /// 0: the service counts one hit.
        #[prost(uint32, tag = "3")]
        pub(crate) hits_addend: u32,
    }

    /// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct RateLimitDescriptor {
        #[prost(message, repeated, tag = "1")]
        pub(crate) entries: Vec<Entry>,
    }

    /// `RateLimitDescriptor.Entry`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Entry {
        #[prost(string, tag = "1")]
        pub(crate) key: String,
        #[prost(string, tag = "2")]
        pub(crate) value: String,
    }

    /// `RateLimitResponse.Code`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
    #[repr(i32)]
    pub(crate) enum Code {
        Unknown = 0,
        Ok = 1,
        OverLimit = 2,
    }

    /// `RateLimitResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct RateLimitResponse {
        #[prost(enumeration = "Code", tag = "1")]
        pub(crate) overall_code: i32,
        #[prost(message, repeated, tag = "2")]
        pub(crate) statuses: Vec<DescriptorStatus>,
    }

    /// `RateLimitResponse.DescriptorStatus`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct DescriptorStatus {
        #[prost(enumeration = "Code", tag = "1")]
        pub(crate) code: i32,
        #[prost(message, optional, tag = "2")]
        pub(crate) current_limit: Option<RateLimit>,
        #[prost(uint32, tag = "3")]
        pub(crate) limit_remaining: u32,
        #[prost(message, optional, tag = "4")]
        pub(crate) duration_until_reset: Option<Duration>,
    }

    /// `RateLimitResponse.RateLimit`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct RateLimit {
        #[prost(uint32, tag = "1")]
        pub(crate) requests_per_unit: u32,
        /// `Unit`: 1 second, 2 minute, 3 hour, 4 day, ...
        #[prost(int32, tag = "2")]
        pub(crate) unit: i32,
        #[prost(string, tag = "3")]
        pub(crate) name: String,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Duration {
        #[prost(int64, tag = "1")]
        pub(crate) seconds: i64,
        #[prost(int32, tag = "2")]
        pub(crate) nanos: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn route(rate_limits: &str) -> crate::config::Config {
        let text = format!(
            "[[clusters]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\"]\n\
             [[clusters]]\nname = \"rls\"\nendpoints = [\"127.0.0.1:2\"]\nprotocol = \"http2\"\n\
             [[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n\
             [[listeners.http_filters]]\nname = \"ratelimit\"\ndomain = \"d\"\ncluster = \"rls\"\n\
             [[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"*\"]\n\
             [[listeners.virtual_hosts.routes]]\nprefix = \"/\"\ncluster = \"c\"\n\
             rate_limits = {rate_limits}\n"
        );
        parse_str(&text, "t").unwrap()
    }

    fn request(head: &'static [u8]) -> protocols::http::RequestHead {
        let mut b = bytes::BytesMut::from(head);
        protocols::http1::parse_request(&mut b, &Default::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn descriptors_follow_the_actions_and_drop_what_has_no_value() {
        let cfg = route(
            r#"[
            { actions = [{ remote_address = true }, { generic_key = { descriptor_value = "api" } }] },
            { actions = [{ request_headers = { header_name = "x-user", descriptor_key = "user" } }] },
            { actions = [{ request_headers = { header_name = "x-team", descriptor_key = "team", skip_if_absent = true } }, { generic_key = { descriptor_key = "k", descriptor_value = "v" } }] },
            { actions = [{ request_headers = { header_name = "x-none", descriptor_key = "n", skip_if_absent = true } }] },
        ]"#,
        );
        let route = &cfg.listeners[0].routes.virtual_hosts[0].routes[0];
        let client: IpAddr = "10.1.2.3".parse().unwrap();
        let req = request(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        let d = descriptors(route, &req, client);
        let entries: Vec<Vec<(&str, &str)>> = d
            .iter()
            .map(|d| {
                d.entries
                    .iter()
                    .map(|e| (e.key.as_str(), e.value.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            entries,
            [
                vec![("remote_address", "10.1.2.3"), ("generic_key", "api")],
                vec![("k", "v")],
            ],
            "no x-user: its descriptor dropped; no x-team: only its entry; nothing left: none"
        );
        let req = request(b"GET / HTTP/1.1\r\nhost: a\r\nx-user: ann\r\n\r\n");
        let d = descriptors(route, &req, client);
        assert_eq!(d.len(), 3);
        assert_eq!(d[1].entries[0].key, "user");
        assert_eq!(d[1].entries[0].value, "ann");
    }

    #[test]
    fn the_most_constrained_status_gives_the_headers() {
        let status = |remaining, limit, secs| proto::DescriptorStatus {
            code: 1,
            current_limit: Some(proto::RateLimit {
                requests_per_unit: limit,
                unit: 1,
                name: String::new(),
            }),
            limit_remaining: remaining,
            duration_until_reset: Some(proto::Duration {
                seconds: secs,
                nanos: 5,
            }),
        };
        let resp = proto::RateLimitResponse {
            overall_code: 1,
            statuses: vec![status(7, 10, 1), status(2, 5, 30)],
        };
        assert_eq!(
            x_ratelimit(&resp),
            Some(RateLimitHeaders {
                limit: 5,
                remaining: 2,
                reset: 31
            })
        );
        let none = proto::RateLimitResponse {
            overall_code: 1,
            statuses: vec![proto::DescriptorStatus::default()],
        };
        assert_eq!(x_ratelimit(&none), None, "no limit reported");
    }

    /// The encoding a real service decodes: field numbers and wire types by hand.
    #[test]
    fn the_request_encodes_with_envoys_field_numbers() {
        let req = proto::RateLimitRequest {
            domain: "d".into(),
            descriptors: vec![proto::RateLimitDescriptor {
                entries: vec![proto::Entry {
                    key: "k".into(),
                    value: "v".into(),
                }],
            }],
            hits_addend: 0,
        };
        assert_eq!(
            req.encode_to_vec(),
            b"\x0a\x01d\x12\x08\x0a\x06\x0a\x01k\x12\x01v".to_vec()
        );
        let resp = proto::RateLimitResponse::decode(&b"\x08\x02\x12\x00\x2a\x03xyz"[..]).unwrap();
        assert_eq!(resp.overall_code, proto::Code::OverLimit as i32);
        assert_eq!(resp.statuses.len(), 1, "unknown field 5 skipped");
    }
}
