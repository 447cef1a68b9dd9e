//! One gRPC unary call made by ringway itself (the rate limit service's `ShouldRateLimit`):
//! a request message to an endpoint of an HTTP/2 cluster over this worker's pooled
//! connections ([`open_request`]), the answer's one message back, the whole call under a
//! deadline.
//!
//! The call is an [`Attempt`] like a proxied request, so the service's cluster counts it in
//! its stats, its circuit breakers admit it and outlier detection hears how it went. gRPC
//! framing is `protocols::grpc`; the message bytes are the caller's (prost).

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use protocols::grpc::{Code, Decoder, encode_header};
use protocols::http2::Fields;

use super::http2::open_request;
use super::{Attempt, Pool};
use crate::access_log::ResponseFlags;
use crate::codec::h2::convert::status_of;
use crate::codec::h2::session::Recv;
use crate::rt::timer;

/// Largest answer accepted (a rate limit service's answer is a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

/// A call to make.
pub(crate) struct Call<'a> {
    /// `/package.Service/Method`.
    pub(crate) path: &'a [u8],
    /// `:authority` (Envoy sends the cluster's name).
    pub(crate) authority: &'a [u8],
    /// The request message, encoded.
    pub(crate) message: Bytes,
    /// When the answer must have arrived (sent as `grpc-timeout` too).
    pub(crate) deadline: Instant,
}

/// Why a call has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The cluster's circuit breakers refused it.
    Overflow,
    /// No connection to the endpoint.
    Connect,
    /// The stream or connection ended before the answer was complete.
    Reset,
    /// The deadline passed.
    Timeout,
    /// The answer was not a gRPC success: HTTP status, then `grpc-status`.
    Status(u16, Option<Code>),
    /// The answer's framing or message was malformed or too large.
    Malformed,
}

/// Make `call` to endpoint `ep` of `cluster` (an HTTP/2 cluster); the answer's message.
pub(crate) async fn call(
    cluster: Rc<impl AsRef<Rc<Pool>>>,
    ep: usize,
    call: Call<'_>,
) -> Result<Bytes, CallError> {
    let attempt = Attempt::begin(cluster, ep, Instant::now()).map_err(|_| CallError::Overflow)?;
    let (status, flags, rx, answer) = exchange(&attempt, call).await;
    attempt.end(status, flags, rx);
    answer
}

/// The call on an admitted attempt: (HTTP status, flags, bytes received, the answer).
async fn exchange(
    attempt: &Attempt,
    call: Call<'_>,
) -> (u16, ResponseFlags, u64, Result<Bytes, CallError>) {
    let cluster = &attempt.cluster;
    let left = |now: Instant| call.deadline.saturating_duration_since(now);
    let mut head = Fields::with_capacity(256, 7);
    head.push(b":method", b"POST");
    head.push(
        b":scheme",
        if cluster.is_tls() { b"https" } else { b"http" },
    );
    head.push(b":path", call.path);
    head.push(b":authority", call.authority);
    head.push(b"content-type", b"application/grpc");
    head.push(b"te", b"trailers");
    let millis = left(Instant::now()).as_millis().clamp(1, 99_999_999);
    let mut timeout = itoa::Buffer::new().format(millis).as_bytes().to_vec();
    timeout.push(b'm');
    head.push(b"grpc-timeout", &timeout);
    let fail = |flags, e| (0, flags, 0, Err(e));
    let opened = open_request(cluster, attempt.endpoint, &head, false, Some(call.deadline));
    let up = match opened.await {
        Ok((_, Ok(up))) => up,
        Ok((conn, Err(_))) if conn.connect_error().is_some() => {
            return fail(ResponseFlags::UF, CallError::Connect);
        }
        Ok((_, Err(_))) => return fail(ResponseFlags::UC, CallError::Reset),
        Err(_) => return fail(ResponseFlags::UO, CallError::Overflow),
    };
    let Ok(prefix) = encode_header(false, call.message.len()) else {
        return fail(ResponseFlags::NONE, CallError::Malformed);
    };
    let mut body = BytesMut::with_capacity(prefix.len() + call.message.len());
    body.extend_from_slice(&prefix);
    body.extend_from_slice(&call.message);
    if up
        .send_data(body.freeze(), true, left(Instant::now()))
        .await
        .is_err()
    {
        return fail(ResponseFlags::UC, CallError::Reset);
    }
    let (mut status, mut grpc, mut rx) = (0u16, None, 0u64);
    let mut data = BytesMut::new();
    loop {
        let wait = left(timer::coarse_now()).max(Duration::from_millis(1));
        match up.recv(wait).await {
            Recv::Head(fields, end) => {
                let s = status_of(&fields);
                if (100..200).contains(&s) {
                    continue;
                }
                status = s;
                rx += fields.byte_len() as u64;
                if end {
                    // Trailers-only: the status is in the head.
                    grpc = fields.value_of(b"grpc-status").and_then(Code::parse);
                    break;
                }
            }
            Recv::Data(d) => {
                rx += d.len() as u64;
                up.release(d.len());
                if data.len() + d.len() > MAX_ANSWER + 5 {
                    return (status, ResponseFlags::NONE, rx, Err(CallError::Malformed));
                }
                data.extend_from_slice(&d);
            }
            Recv::Trailers(t) => {
                grpc = t.value_of(b"grpc-status").and_then(Code::parse);
                break;
            }
            Recv::End => break,
            Recv::Gone if Instant::now() >= call.deadline => {
                return (status, ResponseFlags::UT, rx, Err(CallError::Timeout));
            }
            Recv::Gone => return (status, ResponseFlags::UC, rx, Err(CallError::Reset)),
        }
    }
    if status != 200 || grpc != Some(Code::Ok) {
        return (
            status,
            ResponseFlags::NONE,
            rx,
            Err(CallError::Status(status, grpc)),
        );
    }
    let answer = match Decoder::new(MAX_ANSWER).decode(&mut data) {
        Ok(Some(m)) if !m.compressed && data.is_empty() => Ok(m.payload),
        _ => Err(CallError::Malformed),
    };
    (status, ResponseFlags::NONE, rx, answer)
}
