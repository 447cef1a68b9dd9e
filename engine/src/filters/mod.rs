//! HTTP filters: Envoy's filter model without a boxed future per filter per request.
//!
//! The set of filters is closed (an enum, [`HttpFilterConfig`], matched in a loop), so a
//! listener without filters costs nothing and one with filters costs a few branches. Each
//! phase returns a [`Flow`]: go on, collect the request body first, answer locally, or pause
//! on one small awaitable ([`Wait`]) and then run the same filter again. The router is the
//! terminal filter and is not listed: the exchange runs it after every phase said
//! [`Flow::Continue`].
//!
//! Phases, in the order an exchange runs them:
//! - **decode headers** ([`Chain::decode_headers`]): once the request head is read and the route
//!   resolved (a filter reads its per-route settings from [`Route::filters`]). A filter that
//!   changes what routing sees sets [`FilterState::route_dirty`] (Envoy's `clearRouteCache`):
//!   the exchange resolves the route again ([`RoutingView`]) before the next filter runs;
//! - **decode data** ([`Chain::decode_data`]) and **decode trailers**
//!   ([`Chain::decode_trailers`]): each piece of the request body and its trailers. A body
//!   collected for [`Flow::StopAndBuffer`] always passes them; a streamed body only when a
//!   filter of the chain has them ([`Phases::decode_body`]);
//! - **encode headers** ([`Chain::encode_headers`]): the upstream's final response head before
//!   anything of it goes downstream; a filter may replace the response with a local answer;
//! - **encode data** ([`Chain::encode_data`]) and **encode trailers**
//!   ([`Chain::encode_trailers`]): each piece of the response body and its trailers, when a
//!   filter has them ([`Phases::encode_body`]);
//! - **log** ([`Chain::log`]): once per exchange, after its access-log record is known (the
//!   filters' own stats);
//! - **header edits** ([`Chain::request_edits`], [`Chain::response_edits`]): header changes
//!   the codecs apply while they write a head, so no head is copied to be changed.
//!
//! Per-request state lives in [`FilterState`], one small struct per exchange. [`Phases`] says
//! which phases some filter of a chain has, so the exchange does no work per body piece for
//! a chain that has none.
//!
//! Not here: request ids, the client identity (XFCC) and gRPC handling, which the connection
//! manager drives from the listener's `[listeners.http]` options; the router (`router/`,
//! `proxy/`).

pub(crate) mod buffer;
pub(crate) mod custom_response;
pub(crate) mod fault;
pub(crate) mod header_mutation;
pub(crate) mod local_ratelimit;
pub(crate) mod ratelimit;

use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use protocols::http::RequestHead;

use crate::cluster::ClusterLocal;
pub(crate) use crate::codec::BufferedBody;
use crate::codec::h2::convert::Fields;
use crate::config::HttpFilterConfig;
use crate::router::{HeaderToAdd, RequestInfo, Route, SetCookie};
use crate::shared::HttpRateLimits;
use crate::stats::HttpStats;
use local_ratelimit::RateLimitHeaders;

/// What a filter phase tells the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow<'a> {
    /// Go on to the next filter, and after the last to the router (or the client).
    Continue,
    /// Collect the whole request body, at most `limit` bytes, before the router sees it
    /// (decode headers only; other phases treat it as [`Flow::Continue`]).
    StopAndBuffer { limit: u64 },
    /// Answer locally; the router is not reached (decode phases), or the upstream's response
    /// is replaced (encode headers). Once the response head went downstream no answer can be
    /// given: the response is cut short instead.
    Respond(LocalAnswer<'a>),
    /// Wait, then run the same filter's phase again (its state says it already waited).
    Pause(Wait),
}

/// What a paused exchange waits for before it resumes at the filter that paused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A fixed delay (the fault filter).
    Delay(Duration),
    /// The rate limit service's answer (the `ratelimit` filter, decode headers only:
    /// [`Chain::wait`] asks it).
    RateLimitService,
}

impl Wait {
    /// Wait out a delay (a phase that has no request at hand; [`Chain::wait`] otherwise).
    pub(crate) async fn elapse(self) {
        match self {
            // From the precise clock: the coarse one may lag by a tick, and an injected delay
            // must not be shorter than configured (it may be up to a tick longer).
            Self::Delay(d) => crate::rt::timer::sleep_until(std::time::Instant::now() + d).await,
            // Asked for in decode headers only, which waits through `Chain::wait`.
            Self::RateLimitService => {}
        }
    }
}

/// A response a filter answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalAnswer<'a> {
    pub(crate) status: u16,
    /// Borrowed from the configuration (or static).
    pub(crate) body: &'a [u8],
    /// Why: the exchange maps it to a stat and an access-log flag.
    pub(crate) kind: AnswerKind,
}

/// Why a filter answered locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    /// The request is larger than a limit (`downstream_rq_too_large`).
    TooLarge,
    /// An injected fault (flag `FI`; counted by the fault filter's log phase).
    FaultAbort,
    /// The upstream's response was replaced (`custom_response`).
    CustomResponse,
    /// Over a local or global rate limit (flag `RL`; a gRPC request is answered
    /// `UNAVAILABLE`).
    RateLimited,
    /// The rate limit service did not answer and the filter fails closed (flag `RLSE`).
    RateLimitServiceError,
}

/// A response head as the encode phases see it, whichever codec read it.
pub(crate) trait ResponseInfo {
    /// The final status (never 1xx: interim responses pass no filter).
    fn status(&self) -> u16;
    /// The first field with this lowercase name, as the upstream sent it.
    #[allow(dead_code)] // reason: part of what encode headers shows; no filter reads a field yet
    fn header(&self, name: &[u8]) -> Option<&[u8]>;
}

/// What the log phase knows of a finished exchange.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // reason: what the log phase shows; today's filters count from their state
pub(crate) struct Done {
    /// The status sent downstream (0: none).
    pub(crate) status: u16,
    /// A complete response reached the client.
    pub(crate) completed: bool,
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
    /// A filter changed what routing sees (Envoy's `clearRouteCache`): the exchange resolves
    /// the route again before the next filter runs, and clears this.
    pub(crate) route_dirty: bool,
    /// The fault filter's delay is over (it paused once).
    pub(crate) fault_delayed: bool,
    /// The fault filter delayed this request (counted by its log phase).
    pub(crate) fault_delay_hit: bool,
    /// The fault filter aborted this request (counted by its log phase).
    pub(crate) fault_aborted: bool,
    /// The fault filter limits this response's body to so many bytes per second.
    pub(crate) fault_rate_limit: Option<u64>,
    /// The fault filter waited for the piece of response body now passing.
    pub(crate) fault_rate_paid: bool,
    /// What the local rate limit filter did (counted by its log phase).
    pub(crate) ratelimit: local_ratelimit::Outcome,
    /// The local or global rate limit filter's `x-ratelimit-*` response fields.
    pub(crate) ratelimit_headers: Option<RateLimitHeaders>,
    /// What the rate limit service said (the `ratelimit` filter).
    pub(crate) rls: ratelimit::Verdict,
    /// The request is refused over a global limit: the answer says `x-envoy-ratelimited`.
    pub(crate) envoy_ratelimited: bool,
}

/// Which phases some filter of a chain has. Worked out once per chain, so the exchange does
/// no work per body piece, and calls no log phase, for a chain without them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Phases {
    /// A streamed request body passes decode data and decode trailers (a collected body
    /// always does).
    pub(crate) decode_body: bool,
    /// The response head passes encode headers.
    pub(crate) encode_headers: bool,
    /// The response body passes encode data and encode trailers.
    pub(crate) encode_body: bool,
    /// The exchange calls the log phase.
    pub(crate) log: bool,
}

impl Phases {
    fn of(filters: &[HttpFilterConfig]) -> Self {
        let mut p = Self::default();
        for f in filters {
            match f {
                // Acts only on a body it has collected.
                HttpFilterConfig::Buffer { .. } => {}
                HttpFilterConfig::HeaderMutation(m) => {
                    p.decode_body |= header_mutation::edits_request_trailers(m);
                    p.encode_body |= header_mutation::edits_response_trailers(m);
                }
                HttpFilterConfig::Fault(f) => {
                    p.log = true;
                    p.encode_body |= f.response_rate_limit.is_some();
                }
                HttpFilterConfig::CustomResponse(_) => p.encode_headers = true,
                HttpFilterConfig::LocalRateLimit(_) | HttpFilterConfig::RateLimit(_) => {
                    p.log = true;
                }
            }
        }
        p
    }
}

/// A listener's filters, as one request on one route sees them.
#[derive(Clone, Copy)]
pub(crate) struct Chain<'a> {
    filters: &'a [HttpFilterConfig],
    route: Option<&'a Route>,
    phases: Phases,
    /// The process-wide buckets of the listener's rate limit filter.
    ratelimits: Option<&'a HttpRateLimits>,
    /// The client's address (descriptors by client address).
    client: IpAddr,
}

impl<'a> Chain<'a> {
    pub(crate) fn new(filters: &'a [HttpFilterConfig], route: Option<&'a Route>) -> Self {
        Self {
            filters,
            route,
            phases: Phases::of(filters),
            ratelimits: None,
            client: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }

    /// The same filters with the listener's shared state and the request's client.
    pub(crate) fn with_request(
        self,
        ratelimits: Option<&'a HttpRateLimits>,
        client: IpAddr,
    ) -> Self {
        Self {
            ratelimits,
            client,
            ..self
        }
    }

    /// The same filters on another route (after the route was resolved again).
    pub(crate) fn with_route(self, route: Option<&'a Route>) -> Self {
        Self { route, ..self }
    }

    /// The route the filters see (`None`: none matched).
    pub(crate) fn route(&self) -> Option<&'a Route> {
        self.route
    }

    /// Which phases some filter has.
    pub(crate) fn phases(&self) -> Phases {
        self.phases
    }

    /// Run the decode-headers phase of the filters from index `from` on. A local answer
    /// stops at once; a pause returns with the index to resume at (the same filter, after the
    /// wait); a request to buffer is remembered in `st` (the largest limit asked) while later
    /// filters still run, and returned at the end. A filter that sets
    /// [`FilterState::route_dirty`] returns with the index of the next filter: the exchange
    /// resolves the route again ([`RoutingView`] over the filters before that index) and goes
    /// on from there.
    pub(crate) fn decode_headers(
        &self,
        from: usize,
        req: &RequestHead,
        st: &mut FilterState,
    ) -> (Flow<'a>, usize) {
        let mut flow = Flow::Continue;
        for (i, f) in self.filters.iter().enumerate().skip(from) {
            let step = match f {
                HttpFilterConfig::Buffer { max_request_bytes } => {
                    buffer::decode_headers(*max_request_bytes, self.route, req, st)
                }
                HttpFilterConfig::HeaderMutation(m) => header_mutation::decode_headers(m, st),
                HttpFilterConfig::Fault(cfg) => fault::decode_headers(cfg, st),
                HttpFilterConfig::CustomResponse(_) => Flow::Continue,
                HttpFilterConfig::LocalRateLimit(cfg) => local_ratelimit::decode_headers(
                    cfg,
                    self.ratelimits,
                    self.route,
                    req,
                    self.client,
                    st,
                ),
                HttpFilterConfig::RateLimit(cfg) => ratelimit::decode_headers(cfg, self.route, st),
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
            if st.route_dirty {
                return (flow, i + 1);
            }
        }
        (flow, self.filters.len())
    }

    /// Wait as filter `at` asked in decode headers: a delay, or the rate limit service's
    /// answer about `req` (as routing sees it), kept in `st` for the filter's second run.
    /// The service's cluster is one of `clusters` (this worker's).
    pub(crate) async fn wait<R: RequestInfo + ?Sized>(
        &self,
        at: usize,
        wait: Wait,
        req: &R,
        clusters: &[Rc<ClusterLocal>],
        st: &mut FilterState,
    ) {
        match (wait, self.filters.get(at), self.route) {
            (Wait::RateLimitService, Some(HttpFilterConfig::RateLimit(cfg)), Some(route)) => {
                // Boxed: only requests that ask carry the call's state.
                Box::pin(ratelimit::ask(cfg, route, req, self.client, clusters, st)).await;
            }
            (Wait::RateLimitService, ..) => st.rls = ratelimit::Verdict::Nothing,
            (Wait::Delay(_), ..) => wait.elapse().await,
        }
    }

    /// Run the decode-data phase for `len` more bytes of the request body.
    pub(crate) fn decode_data(&self, len: usize, st: &mut FilterState) -> Flow<'a> {
        st.buffered += len as u64;
        for f in self.filters {
            let step = match f {
                HttpFilterConfig::Buffer { .. } => buffer::decode_data(st),
                HttpFilterConfig::HeaderMutation(_)
                | HttpFilterConfig::Fault(_)
                | HttpFilterConfig::CustomResponse(_)
                | HttpFilterConfig::LocalRateLimit(_)
                | HttpFilterConfig::RateLimit(_) => Flow::Continue,
            };
            if !matches!(step, Flow::Continue | Flow::StopAndBuffer { .. }) {
                return step;
            }
        }
        Flow::Continue
    }

    /// Run the decode-trailers phase over the request's trailers (changed in place).
    pub(crate) fn decode_trailers(
        &self,
        from: usize,
        trailers: &mut Fields,
        _st: &mut FilterState,
    ) -> (Flow<'a>, usize) {
        self.each(from, |f| match f {
            HttpFilterConfig::HeaderMutation(m) => header_mutation::decode_trailers(m, trailers),
            HttpFilterConfig::Buffer { .. }
            | HttpFilterConfig::Fault(_)
            | HttpFilterConfig::CustomResponse(_)
            | HttpFilterConfig::LocalRateLimit(_)
            | HttpFilterConfig::RateLimit(_) => Flow::Continue,
        })
    }

    /// Run the encode-headers phase over the upstream's final response head, before any of it
    /// goes downstream. A [`Flow::Respond`] replaces the response.
    pub(crate) fn encode_headers<R: ResponseInfo + ?Sized>(
        &self,
        from: usize,
        resp: &R,
        _st: &mut FilterState,
    ) -> (Flow<'a>, usize) {
        self.each(from, |f| match f {
            HttpFilterConfig::CustomResponse(c) => custom_response::encode_headers(c, resp),
            HttpFilterConfig::Buffer { .. }
            | HttpFilterConfig::HeaderMutation(_)
            | HttpFilterConfig::Fault(_)
            | HttpFilterConfig::LocalRateLimit(_)
            | HttpFilterConfig::RateLimit(_) => Flow::Continue,
        })
    }

    /// Run the encode-data phase for `len` more bytes of the response body (the fault
    /// filter's rate limit pauses here).
    pub(crate) fn encode_data(
        &self,
        from: usize,
        len: usize,
        st: &mut FilterState,
    ) -> (Flow<'a>, usize) {
        self.each(from, |f| match f {
            HttpFilterConfig::Fault(_) => fault::encode_data(len, st),
            HttpFilterConfig::Buffer { .. }
            | HttpFilterConfig::HeaderMutation(_)
            | HttpFilterConfig::CustomResponse(_)
            | HttpFilterConfig::LocalRateLimit(_)
            | HttpFilterConfig::RateLimit(_) => Flow::Continue,
        })
    }

    /// Run the encode-trailers phase over the response's trailers (changed in place).
    pub(crate) fn encode_trailers(
        &self,
        from: usize,
        trailers: &mut Fields,
        _st: &mut FilterState,
    ) -> (Flow<'a>, usize) {
        self.each(from, |f| match f {
            HttpFilterConfig::HeaderMutation(m) => header_mutation::encode_trailers(m, trailers),
            HttpFilterConfig::Buffer { .. }
            | HttpFilterConfig::Fault(_)
            | HttpFilterConfig::CustomResponse(_)
            | HttpFilterConfig::LocalRateLimit(_)
            | HttpFilterConfig::RateLimit(_) => Flow::Continue,
        })
    }

    /// The log phase: once per exchange, after its access-log record is known. Filters count
    /// their own stats here, in this worker's slot.
    pub(crate) fn log(&self, done: &Done, stats: &HttpStats, st: &FilterState) {
        for f in self.filters {
            match f {
                HttpFilterConfig::Fault(_) => fault::log(done, stats, st),
                HttpFilterConfig::LocalRateLimit(_) => local_ratelimit::log(done, stats, st),
                HttpFilterConfig::RateLimit(cfg) => ratelimit::log(done, stats, st, cfg),
                HttpFilterConfig::Buffer { .. }
                | HttpFilterConfig::HeaderMutation(_)
                | HttpFilterConfig::CustomResponse(_) => {}
            }
        }
    }

    /// Run one phase from filter `from` on: the first flow other than continue stops it, with
    /// the filter's index (to resume at after a pause).
    fn each(
        &self,
        from: usize,
        mut phase: impl FnMut(&'a HttpFilterConfig) -> Flow<'a>,
    ) -> (Flow<'a>, usize) {
        for (i, f) in self.filters.iter().enumerate().skip(from) {
            match phase(f) {
                Flow::Continue | Flow::StopAndBuffer { .. } => {}
                step => return (step, i),
            }
        }
        (Flow::Continue, self.filters.len())
    }

    /// The header changes for the request sent upstream: the route's, then the filters'.
    pub(crate) fn request_edits(&self) -> Edits<'a> {
        Edits::new(self.route, self.filters, false)
    }

    /// The header changes for the response sent downstream (local answers included), with
    /// the fields the filters worked out for this request (`st`).
    pub(crate) fn response_edits(&self, st: &FilterState) -> Edits<'a> {
        let mut edits = Edits::new(self.route, self.filters, true);
        edits.ratelimit = st.ratelimit_headers;
        edits.envoy_ratelimited = st.envoy_ratelimited;
        edits.any |= edits.ratelimit.is_some() || edits.envoy_ratelimited;
        edits
    }

    /// The request as routing sees it once the filters before index `ran` have run.
    pub(crate) fn routing_view<'r, R: RequestInfo + ?Sized>(
        &self,
        req: &'r R,
        ran: usize,
    ) -> RoutingView<'r, R>
    where
        'a: 'r,
    {
        let ran = &self.filters[..ran.min(self.filters.len())];
        RoutingView {
            req,
            edits: Edits::new(None, ran, false),
        }
    }
}

/// A request as routing sees it after filters changed it: the request header edits of the
/// filters that ran are applied as the upstream will see them (a removed or replaced field is
/// gone, an added one is there); the route's own edits are not (they apply on the way out,
/// as in Envoy).
pub(crate) struct RoutingView<'r, R: ?Sized> {
    req: &'r R,
    edits: Edits<'r>,
}

impl<R: RequestInfo + ?Sized> RequestInfo for RoutingView<'_, R> {
    fn authority(&self) -> &[u8] {
        if self.edits.drops(b"host") {
            if let Some(host) = self.edits.first_add(b"host") {
                return host;
            }
        }
        self.req.authority()
    }
    fn path(&self) -> &[u8] {
        self.req.path()
    }
    fn query(&self) -> &[u8] {
        self.req.query()
    }
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        if !self.edits.drops(name) {
            if let Some(v) = self.req.header(name) {
                return Some(v);
            }
        }
        self.edits.first_add(name)
    }
    fn method(&self) -> &[u8] {
        self.req.method()
    }
}

/// Header changes applied by the codec that writes a head: fields to drop, fields to add.
/// Copy-sized; borrows the configuration, so it allocates nothing per request.
#[derive(Clone, Copy)]
pub(crate) struct Edits<'a> {
    /// Its lists for this direction ([`Edits::route_lists`]). Every field is small: edits
    /// ride by value on every head written, and a larger struct is copied with `memcpy`.
    route: Option<&'a Route>,
    filters: &'a [HttpFilterConfig],
    response: bool,
    /// The rate limit filter's `x-ratelimit-*` fields (responses only); they replace any the
    /// upstream sent.
    ratelimit: Option<RateLimitHeaders>,
    /// A generated hash-policy cookie (responses only), added beside the upstream's.
    set_cookie: Option<SetCookie<'a>>,
    /// `x-envoy-ratelimited: true` (the answer over a global rate limit).
    envoy_ratelimited: bool,
    /// Some layer has a change: without one (the common case) every check is one branch.
    any: bool,
}

impl<'a> Edits<'a> {
    /// No changes.
    pub(crate) const NONE: Edits<'static> = Edits {
        route: None,
        filters: &[],
        response: true,
        ratelimit: None,
        set_cookie: None,
        envoy_ratelimited: false,
        any: false,
    };

    fn new(route: Option<&'a Route>, filters: &'a [HttpFilterConfig], response: bool) -> Self {
        let mut edits = Self {
            route,
            filters,
            response,
            ratelimit: None,
            set_cookie: None,
            envoy_ratelimited: false,
            any: false,
        };
        edits.any = edits
            .route_lists()
            .is_some_and(|(a, r)| !a.is_empty() || !r.is_empty())
            || filters.iter().any(|f| {
                edits
                    .mutation(f)
                    .is_some_and(|(a, r)| !a.is_empty() || !r.is_empty())
            });
        edits
    }

    /// The route's lists for this direction.
    fn route_lists(&self) -> Option<(&'a [HeaderToAdd], &'a [Bytes])> {
        self.route.map(|r| {
            if self.response {
                (
                    &r.response_headers_to_add[..],
                    &r.response_headers_to_remove[..],
                )
            } else {
                (
                    &r.request_headers_to_add[..],
                    &r.request_headers_to_remove[..],
                )
            }
        })
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
            HttpFilterConfig::Buffer { .. }
            | HttpFilterConfig::Fault(_)
            | HttpFilterConfig::CustomResponse(_)
            | HttpFilterConfig::LocalRateLimit(_)
            | HttpFilterConfig::RateLimit(_) => None,
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
        if let Some((adds, removes)) = self.route_lists() {
            if layer(adds, removes, name) {
                return true;
            }
        }
        if self.ratelimit.is_some()
            && RateLimitHeaders::NAMES
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
        {
            return true;
        }
        self.filters.iter().any(|f| {
            self.mutation(f)
                .is_some_and(|(adds, removes)| layer(adds, removes, name))
        })
    }

    /// The value of the first field named `name` (lowercase) to add, if any.
    pub(crate) fn first_add(&self, name: &[u8]) -> Option<&'a [u8]> {
        if !self.any {
            return None;
        }
        let layers = self
            .route_lists()
            .into_iter()
            .chain(self.filters.iter().filter_map(|f| self.mutation(f)));
        for (adds, _) in layers {
            if let Some(h) = adds.iter().find(|h| h.name.as_ref() == name) {
                return Some(&h.value);
            }
        }
        None
    }

    /// Call `f` with each field to add as (name, value), in order: the route's, then each
    /// filter's.
    #[inline]
    pub(crate) fn for_each_add(&self, mut f: impl FnMut(&[u8], &[u8])) {
        if !self.any {
            return;
        }
        let mut add = |h: &HeaderToAdd| f(&h.name, &h.value);
        if let Some((adds, _)) = self.route_lists() {
            adds.iter().for_each(&mut add);
        }
        for filter in self.filters {
            if let Some((adds, _)) = self.mutation(filter) {
                adds.iter().for_each(&mut add);
            }
        }
        if let Some(h) = &self.ratelimit {
            h.for_each(&mut f);
        }
        if self.envoy_ratelimited {
            f(b"x-envoy-ratelimited", b"true");
        }
        if let Some(c) = &self.set_cookie {
            // Only on the response that hands a client its new cookie.
            let mut value = Vec::with_capacity(64);
            c.write(&mut value);
            f(b"set-cookie", &value);
        }
    }

    /// No layer removes, replaces or adds a field: the head passes as it is.
    pub(crate) fn is_none(&self) -> bool {
        !self.any && self.ratelimit.is_none()
    }

    /// The same edits, with a generated hash-policy cookie to set (responses).
    pub(crate) fn with_cookie(mut self, cookie: Option<SetCookie<'a>>) -> Self {
        self.set_cookie = cookie;
        self.any |= cookie.is_some();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HeaderMutation;

    /// A header to add, for the filters' tests.
    pub(super) fn add(name: &'static str, value: &'static str, append: bool) -> HeaderToAdd {
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
                ..HeaderMutation::default()
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
        req.for_each_add(|name, _| names.push(name.to_vec()));
        assert_eq!(names, [&b"x-env"[..], &b"x-second"[..]]);
        let resp = chain.response_edits(&FilterState::default());
        assert!(resp.drops(b"Server"));
        assert!(resp.drops(b"x-served-by"), "replaced by the filter's own");
        let mut n = 0;
        resp.for_each_add(|_, _| n += 1);
        assert_eq!(n, 1);
        assert!(!Edits::NONE.drops(b"server"));
        Edits::NONE.for_each_add(|_, _| panic!("no adds"));
    }

    fn request(head: &'static [u8]) -> RequestHead {
        let mut b = bytes::BytesMut::from(head);
        protocols::http1::parse_request(&mut b, &Default::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn routing_sees_the_request_edits_of_the_filters_that_ran() {
        let filters = [
            HttpFilterConfig::HeaderMutation(HeaderMutation {
                request_headers_to_add: vec![add("x-canary", "1", false), add("host", "b", false)],
                request_headers_to_remove: vec![Bytes::from_static(b"x-gone")],
                affects_routing: true,
                ..HeaderMutation::default()
            }),
            HttpFilterConfig::HeaderMutation(HeaderMutation {
                request_headers_to_add: vec![add("x-late", "1", true)],
                ..HeaderMutation::default()
            }),
        ];
        let req = request(b"GET / HTTP/1.1\r\nhost: a\r\nx-canary: 0\r\nx-gone: 1\r\n\r\n");
        let chain = Chain::new(&filters, None);
        let none = chain.routing_view(&req, 0);
        assert_eq!(none.header(b"x-canary"), Some(&b"0"[..]));
        assert_eq!(none.authority(), b"a");
        let first = chain.routing_view(&req, 1);
        assert_eq!(first.header(b"x-canary"), Some(&b"1"[..]), "replaced");
        assert_eq!(first.header(b"x-gone"), None, "removed");
        assert_eq!(
            first.header(b"x-late"),
            None,
            "the second filter has not run"
        );
        assert_eq!(first.authority(), b"b");
        assert_eq!(
            chain.routing_view(&req, 2).header(b"x-late"),
            Some(&b"1"[..])
        );

        // The filter that clears the route cache hands back before the next one runs.
        let mut st = FilterState::default();
        assert_eq!(chain.decode_headers(0, &req, &mut st), (Flow::Continue, 1));
        assert!(st.route_dirty);
    }

    #[test]
    fn phases_are_only_those_some_filter_has() {
        assert_eq!(Chain::new(&[], None).phases(), Phases::default());
        let filters = [
            HttpFilterConfig::Buffer {
                max_request_bytes: 1,
            },
            HttpFilterConfig::HeaderMutation(HeaderMutation {
                request_headers_to_add: vec![add("x", "1", true)],
                ..HeaderMutation::default()
            }),
        ];
        assert_eq!(
            Chain::new(&filters, None).phases(),
            Phases::default(),
            "head edits and a collecting buffer need no body phases"
        );
        let filters = [HttpFilterConfig::HeaderMutation(HeaderMutation {
            response_trailers_to_remove: vec![Bytes::from_static(b"x")],
            ..HeaderMutation::default()
        })];
        let p = Chain::new(&filters, None).phases();
        assert!(p.encode_body && !p.decode_body && !p.encode_headers && !p.log);
    }
}
