//! `custom_response`: Envoy's custom response filter, with one local-response policy. An
//! upstream response whose status is listed is replaced by a local answer (the configured
//! body, and status or the upstream's), in the encode-headers phase: before anything of the
//! upstream's response went downstream. The upstream's body is not read (its HTTP/1
//! connection is closed, its HTTP/2 stream reset).
//!
//! The answer goes the way of every local answer: the response header edits apply, and a gRPC
//! call gets a trailers-only status instead. Local answers ringway makes itself (direct
//! responses, errors) are not replaced. Not here: Envoy's redirect policy and matching on
//! anything but the status.

use super::{AnswerKind, Flow, LocalAnswer, ResponseInfo};
use crate::config::CustomResponse;

pub(super) fn encode_headers<'a, R: ResponseInfo + ?Sized>(
    cfg: &'a CustomResponse,
    resp: &R,
) -> Flow<'a> {
    let status = resp.status();
    if !cfg.status_codes.contains(&status) {
        return Flow::Continue;
    }
    Flow::Respond(LocalAnswer {
        status: cfg.status.unwrap_or(status),
        body: &cfg.body,
        kind: AnswerKind::CustomResponse,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    struct Status(u16);
    impl ResponseInfo for Status {
        fn status(&self) -> u16 {
            self.0
        }
        fn header(&self, _: &[u8]) -> Option<&[u8]> {
            None
        }
    }

    #[test]
    fn listed_statuses_are_replaced_others_pass() {
        let cfg = CustomResponse {
            status_codes: vec![502, 503],
            status: None,
            body: Bytes::from_static(b"later"),
        };
        assert_eq!(encode_headers(&cfg, &Status(200)), Flow::Continue);
        match encode_headers(&cfg, &Status(503)) {
            Flow::Respond(a) => assert_eq!((a.status, a.body), (503, &b"later"[..])),
            other => panic!("{other:?}"),
        }
        let cfg = CustomResponse {
            status: Some(200),
            ..cfg
        };
        match encode_headers(&cfg, &Status(502)) {
            Flow::Respond(a) => assert_eq!(a.status, 200),
            other => panic!("{other:?}"),
        }
    }
}
