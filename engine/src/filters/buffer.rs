//! `buffer`: Envoy's buffer filter. The router sees the request only once its whole body has
//! arrived, so the upstream is not tied up by a slow client and gets a complete request (and
//! a request wholly in memory can be sent again). A body larger than `max_request_bytes` is
//! answered with 413 before anything goes upstream: at once when `content-length` says so,
//! else as soon as the collected bytes pass the limit.
//!
//! Per route, `[listeners.virtual_hosts.routes.filters.buffer]` turns it off (`disabled =
//! true`) or sets another `max_request_bytes`.

use protocols::http::{BodyFraming, RequestHead};

use super::{AnswerKind, FilterState, Flow, LocalAnswer};
use crate::router::Route;

/// The answer to a body over the limit.
pub(crate) const TOO_LARGE: LocalAnswer<'static> = LocalAnswer {
    status: 413,
    body: b"request body too large\n",
    kind: AnswerKind::TooLarge,
};

pub(super) fn decode_headers(
    max: u64,
    route: Option<&Route>,
    req: &RequestHead,
    st: &mut FilterState,
) -> Flow<'static> {
    let limit = match route.and_then(|r| r.filters.buffer) {
        Some(None) => return Flow::Continue,
        Some(Some(n)) => n,
        None => max,
    };
    match req.framing() {
        BodyFraming::None => Flow::Continue,
        BodyFraming::Length(n) if n > limit => Flow::Respond(TOO_LARGE),
        _ => {
            st.buffer_limit = Some(limit);
            Flow::StopAndBuffer { limit }
        }
    }
}

pub(super) fn decode_data(st: &FilterState) -> Flow<'static> {
    match st.buffer_limit {
        Some(limit) if st.buffered > limit => Flow::Respond(TOO_LARGE),
        _ => Flow::Continue,
    }
}
