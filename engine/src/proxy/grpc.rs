//! gRPC awareness in the proxy: requests are recognised by their content type, `grpc-timeout`
//! bounds the wait for the response like a route timeout, errors ringway generates itself are
//! answered the way a gRPC client understands them (HTTP 200, trailers-only, `grpc-status` and
//! `grpc-message`), and the final status of every gRPC call is counted.

use std::time::{Duration, Instant};

use protocols::grpc::{self, Code};
use protocols::http::RequestHead;
use protocols::http2::Fields;

use crate::stats::HttpStats;

/// The gRPC view of a request: `None` for anything that is not gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrpcCall {
    /// The client's deadline from `grpc-timeout`, if it sent one that parses.
    pub(crate) timeout: Option<Duration>,
}

impl GrpcCall {
    /// Recognise a gRPC request (`content-type: application/grpc[+...|;...]`).
    pub(crate) fn of(head: &RequestHead) -> Option<Self> {
        let ct = head.header(b"content-type")?;
        if !grpc::is_grpc_content_type(ct) {
            return None;
        }
        let timeout = head
            .header(b"grpc-timeout")
            .and_then(|v| grpc::parse_timeout(v).ok());
        Some(Self { timeout })
    }

    /// The earlier of the route's deadline and the client's.
    pub(crate) fn deadline(&self, start: Instant, route: Option<Instant>) -> Option<Instant> {
        let own = self.timeout.map(|t| start + t);
        match (route, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The trailers-only response (one HEADERS frame ending the stream) for a local error:
/// `:status 200`, the gRPC content type, `grpc-status` and the percent-encoded message.
pub(crate) fn error_fields(code: Code, message: &[u8], out: &mut Fields) {
    out.push(b":status", b"200");
    out.push(b"content-type", b"application/grpc");
    out.push(b"grpc-status", code.as_header_value());
    let text = message.trim_ascii();
    if !text.is_empty() {
        out.push(b"grpc-message", &grpc::encode_message(text));
    }
}

/// The `grpc-status` in a trailer section (or a trailers-only head).
pub(crate) fn status_in(fields: &Fields) -> Option<Code> {
    fields.value_of(b"grpc-status").and_then(Code::parse)
}

/// Count the final status of a gRPC call; `None`: the call ended without one.
pub(crate) fn count(http: &HttpStats, code: Option<Code>) {
    http.grpc_request_total.inc();
    match code {
        Some(Code::Ok) => http.grpc_success.inc(),
        Some(_) => http.grpc_failure.inc(),
        None => http.grpc_no_status.inc(),
    }
    let by_code = match code {
        Some(Code::Ok) => &http.grpc_status_ok,
        Some(Code::Cancelled) => &http.grpc_status_cancelled,
        Some(Code::Unknown) => &http.grpc_status_unknown,
        Some(Code::InvalidArgument) => &http.grpc_status_invalid_argument,
        Some(Code::DeadlineExceeded) => &http.grpc_status_deadline_exceeded,
        Some(Code::NotFound) => &http.grpc_status_not_found,
        Some(Code::AlreadyExists) => &http.grpc_status_already_exists,
        Some(Code::PermissionDenied) => &http.grpc_status_permission_denied,
        Some(Code::ResourceExhausted) => &http.grpc_status_resource_exhausted,
        Some(Code::FailedPrecondition) => &http.grpc_status_failed_precondition,
        Some(Code::Aborted) => &http.grpc_status_aborted,
        Some(Code::OutOfRange) => &http.grpc_status_out_of_range,
        Some(Code::Unimplemented) => &http.grpc_status_unimplemented,
        Some(Code::Internal) => &http.grpc_status_internal,
        Some(Code::Unavailable) => &http.grpc_status_unavailable,
        Some(Code::DataLoss) => &http.grpc_status_data_loss,
        Some(Code::Unauthenticated) => &http.grpc_status_unauthenticated,
        None => return,
    };
    by_code.inc();
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use protocols::http1::{Limits, parse_request};

    fn head(raw: &str) -> RequestHead {
        let mut b = BytesMut::from(raw.as_bytes());
        parse_request(&mut b, &Limits::default()).unwrap().unwrap()
    }

    #[test]
    fn grpc_requests_and_their_deadlines_are_recognised() {
        let h = head(
            "POST /s/M HTTP/1.1\r\nhost: a\r\ncontent-type: application/grpc+proto\r\ngrpc-timeout: 250m\r\n\r\n",
        );
        let call = GrpcCall::of(&h).expect("grpc");
        assert_eq!(call.timeout, Some(Duration::from_millis(250)));
        let start = Instant::now();
        let route = start + Duration::from_secs(15);
        assert_eq!(
            call.deadline(start, Some(route)),
            Some(start + Duration::from_millis(250))
        );
        assert_eq!(
            call.deadline(start, None),
            Some(start + Duration::from_millis(250))
        );
        let plain = head("POST / HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n\r\n");
        assert_eq!(GrpcCall::of(&plain), None);
        let bad = head(
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-type: application/grpc\r\ngrpc-timeout: soon\r\n\r\n",
        );
        assert_eq!(GrpcCall::of(&bad), Some(GrpcCall { timeout: None }));
    }

    #[test]
    fn local_errors_map_to_grpc_codes() {
        use crate::error::{Kind, Phase, ProxyError};
        let code = |e: ProxyError| e.grpc_code();
        assert_eq!(
            code(ProxyError::internal(Kind::NoRoute)),
            Code::Unimplemented
        );
        assert_eq!(
            code(ProxyError::internal(Kind::Overflow)),
            Code::Unavailable
        );
        let connect = ProxyError::upstream(Kind::ConnectFailure, Phase::BeforeRequest);
        assert_eq!(code(connect), Code::Unavailable);
        let timeout = ProxyError::upstream(Kind::Timeout, Phase::BeforeResponse);
        assert_eq!(code(timeout), Code::DeadlineExceeded);
        assert_eq!(Code::from_http_status(400), Code::Internal);
        let mut out = Fields::new();
        error_fields(Code::Unavailable, b"upstream connect error\n", &mut out);
        assert_eq!(status_in(&out), Some(Code::Unavailable));
        assert!(
            out.iter()
                .any(|(n, v)| n == b"grpc-message" && v == b"upstream connect error")
        );
    }
}
