//! HTTP filters: Envoy's filter model without a boxed future per filter per request.
//!
//! The set of filters is closed (an enum, [`HttpFilterConfig`], matched in a loop), so a
//! listener without filters costs nothing and one with filters costs a few branches. Each
//! phase returns a [`Flow`]: go on, collect the request body first, or answer locally. The
//! router is the terminal filter and is not listed: the exchange runs it after every phase
//! said [`Flow::Continue`].
//!
//! Phases, in the order an exchange runs them:
//! - **decode headers** ([`Chain::decode_headers`]): once the request head is read and the route
//!   resolved (a filter reads its per-route settings from [`Route::filters`]);
//! - **decode data** ([`Chain::decode_data`]): for each piece of a request body being collected
//!   because a filter asked for [`Flow::StopAndBuffer`];
//! - **header edits** ([`Chain::request_edits`], [`Chain::response_edits`]): header changes
//!   the codecs apply while they write a head, so no head is copied to be changed.
//!
//! Per-request state lives in [`FilterState`], one small struct per exchange.
//!
//! Not here: request ids, the client identity (XFCC) and gRPC handling, which the connection
//! manager drives from the listener's `[listeners.http]` options; the router (`router/`,
//! `proxy/`).

pub(crate) mod buffer;
pub(crate) mod fault;

use std::time::Duration;

use bytes::Bytes;
use protocols::http::RequestHead;

pub(crate) use crate::codec::BufferedBody;
use crate::config::HttpFilterConfig;
use crate::router::{HeaderToAdd, Route};

/// What a filter phase tells the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on to the next filter, and after the last to the router.
    Continue,
    /// Collect the whole request body, at most `limit` bytes, before the router sees it.
    StopAndBuffer { limit: u64 },
    /// Answer locally; the router is not reached.
    Respond(LocalAnswer),
    /// Wait, then run the same filter's phase again (its state says it already waited).
    Pause(Wait),
}

/// What a paused exchange waits for before it resumes at the filter that paused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A fixed delay (the fault filter).
    Delay(Duration),
}

/// A response a filter answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalAnswer {
    pub(crate) status: u16,
    pub(crate) body: &'static [u8],
    /// Why: the exchange maps it to a stat and an access-log flag.
    pub(crate) kind: AnswerKind,
}

/// Why a filter answered locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    /// The request is larger than a limit (`downstream_rq_too_large`).
    TooLarge,
    /// An injected fault (`fault_aborts_injected`, flag `FI`).
    FaultAbort,
}

/// The filters' state for one request.
#[derive(Debug, Default)]
pub(crate) struct FilterState {
    /// Request body bytes collected so far (while a filter buffers).
    pub(crate) buffered: u64,
    /// The buffer filter's limit for this request, once its decode-headers phase ran.
    pub(crate) buffer_limit: Option<u64>,
    /// A filter asked for the whole request body ([`Flow::StopAndBuffer`]): the router
    /// collects it before forwarding.
    pub(crate) collect_body: bool,
    /// The fault filter's delay is over (it paused once).
    pub(crate) fault_delayed: bool,
}

/// A listener's filters, as one request on one route sees them.
#[derive(Clone, Copy)]
pub(crate) struct Chain<'a> {
    filters: &'a [HttpFilterConfig],
    route: Option<&'a Route>,
}

impl<'a> Chain<'a> {
    pub(crate) fn new(filters: &'a [HttpFilterConfig], route: Option<&'a Route>) -> Self {
        Self { filters, route }
    }

    /// Run the decode-headers phase of the filters from index `from` on. A local answer
    /// stops at once; a pause returns with the index to resume at (the same filter, after the
    /// wait); a request to buffer is remembered in `st` (the largest limit asked) while later
    /// filters still run, and returned at the end.
    pub(crate) fn decode_headers(
        &self,
        from: usize,
        req: &RequestHead,
        st: &mut FilterState,
    ) -> (Flow, usize) {
        let mut flow = Flow::Continue;
        for (i, f) in self.filters.iter().enumerate().skip(from) {
            let step = match f {
                HttpFilterConfig::Buffer { max_request_bytes } => {
                    buffer::decode_headers(*max_request_bytes, self.route, req, st)
                }
                HttpFilterConfig::HeaderMutation(_) => Flow::Continue,
                HttpFilterConfig::Fault(cfg) => fault::decode_headers(cfg, st),
            };
            match step {
                Flow::Continue => {}
                Flow::Respond(_) | Flow::Pause(_) => return (step, i),
                Flow::StopAndBuffer { limit } => {
                    st.collect_body = true;
                    flow = match flow {
                        Flow::StopAndBuffer { limit: l } => Flow::StopAndBuffer {
                            limit: l.max(limit),
                        },
                        _ => step,
                    };
                }
            }
        }
        (flow, self.filters.len())
    }

    /// Run the decode-data phase for `len` more bytes of a request body being collected.
    pub(crate) fn decode_data(&self, len: usize, st: &mut FilterState) -> Flow {
        st.buffered += len as u64;
        for f in self.filters {
            let step = match f {
                HttpFilterConfig::Buffer { .. } => buffer::decode_data(st),
                HttpFilterConfig::HeaderMutation(_) | HttpFilterConfig::Fault(_) => Flow::Continue,
            };
            if step != Flow::Continue {
                return step;
            }
        }
        Flow::Continue
    }

    /// The header changes for the request sent upstream: the route's, then the filters'.
    pub(crate) fn request_edits(&self) -> Edits<'a> {
        Edits::new(
            self.route.map(|r| {
                (
                    &r.request_headers_to_add[..],
                    &r.request_headers_to_remove[..],
                )
            }),
            self.filters,
            false,
        )
    }

    /// The header changes for the response sent downstream (local answers included).
    pub(crate) fn response_edits(&self) -> Edits<'a> {
        Edits::new(
            self.route.map(|r| {
                (
                    &r.response_headers_to_add[..],
                    &r.response_headers_to_remove[..],
                )
            }),
            self.filters,
            true,
        )
    }
}

/// Header changes applied by the codec that writes a head: fields to drop, fields to add.
/// Copy-sized; borrows the configuration, so it allocates nothing per request.
#[derive(Clone, Copy)]
pub(crate) struct Edits<'a> {
    route: Option<(&'a [HeaderToAdd], &'a [Bytes])>,
    filters: &'a [HttpFilterConfig],
    response: bool,
    /// Some layer has a change: without one (the common case) every check is one branch.
    any: bool,
}

impl<'a> Edits<'a> {
    /// No changes.
    pub(crate) const NONE: Edits<'static> = Edits {
        route: None,
        filters: &[],
        response: true,
        any: false,
    };

    fn new(
        route: Option<(&'a [HeaderToAdd], &'a [Bytes])>,
        filters: &'a [HttpFilterConfig],
        response: bool,
    ) -> Self {
        let mut edits = Self {
            route,
            filters,
            response,
            any: false,
        };
        edits.any = route.is_some_and(|(a, r)| !a.is_empty() || !r.is_empty())
            || filters.iter().any(|f| {
                edits
                    .mutation(f)
                    .is_some_and(|(a, r)| !a.is_empty() || !r.is_empty())
            });
        edits
    }

    /// A header mutation filter's lists for this direction.
    fn mutation(&self, f: &'a HttpFilterConfig) -> Option<(&'a [HeaderToAdd], &'a [Bytes])> {
        match f {
            HttpFilterConfig::HeaderMutation(m) if self.response => Some((
                &m.response_headers_to_add[..],
                &m.response_headers_to_remove[..],
            )),
            HttpFilterConfig::HeaderMutation(m) => Some((
                &m.request_headers_to_add[..],
                &m.request_headers_to_remove[..],
            )),
            HttpFilterConfig::Buffer { .. } | HttpFilterConfig::Fault(_) => None,
        }
    }

    /// The field `name` is not passed on: a layer removes it, or replaces it with its own.
    /// Called for every field of every head, so written as plain loops: a route without
    /// header changes and a listener without filters cost two length checks.
    #[inline]
    pub(crate) fn drops(&self, name: &[u8]) -> bool {
        if !self.any {
            return false;
        }
        #[inline]
        fn layer(adds: &[HeaderToAdd], removes: &[Bytes], name: &[u8]) -> bool {
            removes.iter().any(|n| n.eq_ignore_ascii_case(name))
                || adds
                    .iter()
                    .any(|h| !h.append && h.name.eq_ignore_ascii_case(name))
        }
        if let Some((adds, removes)) = self.route {
            if layer(adds, removes, name) {
                return true;
            }
        }
        self.filters.iter().any(|f| {
            self.mutation(f)
                .is_some_and(|(adds, removes)| layer(adds, removes, name))
        })
    }

    /// Call `f` with each field to add, in order: the route's, then each filter's.
    #[inline]
    pub(crate) fn for_each_add(&self, mut f: impl FnMut(&'a HeaderToAdd)) {
        if !self.any {
            return;
        }
        if let Some((adds, _)) = self.route {
            adds.iter().for_each(&mut f);
        }
        for filter in self.filters {
            if let Some((adds, _)) = self.mutation(filter) {
                adds.iter().for_each(&mut f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HeaderMutation;

    fn add(name: &'static str, value: &'static str, append: bool) -> HeaderToAdd {
        HeaderToAdd {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
            append,
        }
    }

    #[test]
    fn edits_combine_filters_in_order_and_keep_directions_apart() {
        let filters = [
            HttpFilterConfig::HeaderMutation(HeaderMutation {
                request_headers_to_add: vec![add("x-env", "prod", true)],
                request_headers_to_remove: vec![Bytes::from_static(b"x-secret")],
                response_headers_to_add: vec![add("x-served-by", "ringway", false)],
                response_headers_to_remove: vec![Bytes::from_static(b"server")],
            }),
            HttpFilterConfig::Buffer {
                max_request_bytes: 10,
            },
            HttpFilterConfig::HeaderMutation(HeaderMutation {
                request_headers_to_add: vec![add("x-second", "2", true)],
                ..HeaderMutation::default()
            }),
        ];
        let chain = Chain::new(&filters, None);
        let req = chain.request_edits();
        assert!(req.drops(b"X-Secret"));
        assert!(!req.drops(b"server"), "response removals stay on responses");
        assert!(!req.drops(b"x-env"), "an appended field does not replace");
        let mut names = Vec::new();
        req.for_each_add(|h| names.push(h.name.clone()));
        assert_eq!(names, [&b"x-env"[..], &b"x-second"[..]]);
        let resp = chain.response_edits();
        assert!(resp.drops(b"Server"));
        assert!(resp.drops(b"x-served-by"), "replaced by the filter's own");
        let mut n = 0;
        resp.for_each_add(|_| n += 1);
        assert_eq!(n, 1);
        assert!(!Edits::NONE.drops(b"server"));
        Edits::NONE.for_each_add(|_| panic!("no adds"));
    }
}
