//! One request/response exchange, for every protocol pairing: the client's codec (an HTTP/1
//! connection or an HTTP/2 stream, [`Down`]) and the upstream's (a pooled HTTP/1 connection or
//! an HTTP/2 stream) are adapters; the exchange itself is written once.
//!
//! In order: checks the connection manager owns (unsupported codings, CONNECT, request id,
//! the client identity), the route, the HTTP filters' decode phase ([`crate::filters`]; the
//! route is resolved again when a filter changed what routing sees), then the route's action:
//! a local answer, or the router, which collects the body when a filter asked, picks an
//! endpoint, opens the upstream request and relays (the encode phases run in the relay). The
//! request body and the response move through [`super::message::pump`] and
//! [`super::relay::relay`]: sequentially when the request is wholly in memory (the common
//! case; it may then be sent again on a fresh connection when a pooled one turns out closed),
//! otherwise at the same time, so an upstream that answers early or echoes while it reads
//! never deadlocks against us.
//!
//! Every exchange ends in one access-log record and one set of stats, then the filters' log
//! phase.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use protocols::http2::frame::Reason;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use monoio::io::Splitable;
use protocols::grpc::Code;
use protocols::http::{BodyFraming, Limits, RequestHead, Version};
use protocols::http1::{self, BodyDecoder, BodyEvent};

use super::Downstream;
use super::body::{self, Patience, PumpError, read_into};
use super::grpc::{self, GrpcCall};
use super::h1::{H1Client, H1Response, H1Sink, H1Source};
use super::h2::adapt::{ClientBody, ClientResponse, UpstreamBody, UpstreamResponse};
use super::h2::convert::{self, Fields};
use super::h2::stream::ConnCtx;
use super::head::{self, H1Parts, H2Request, OutFraming, RequestRewrite};
use super::message::{
    BodySink, BodySource, Decode, Filters, MemorySource, Moved, Prefixed, pump, pump_with,
};
use super::relay::{
    Progress, Relayed, ReqFacts, ResponseSink, ResponseSource, client_gone, filter_stopped, relay,
};
use super::reply::LocalReply;
use super::retry::Retry;
use crate::access_log::{Entry, ResponseFlags};
use crate::codec::h2::session::{Recv, StreamSlot};
use crate::config::{ClusterId, HttpOptions, LbPolicy, ListenerConfig, UpstreamProtocol};
use crate::error::{Kind, Phase, ProxyError, Side};
use crate::filters::{AnswerKind, BufferedBody, Chain, Done, FilterState, Flow, LocalAnswer, Wait};
use crate::local::{ListenerLocal, Local, Worker};
use crate::net::multishot;
use crate::router::{Action, RequestHash, Route, Routed};
use crate::rt::{buffers, rng, timer};
use crate::sys::gather::{self, Gather, Src};
use crate::upstream::http2::open_request;
use crate::upstream::{self, Attempt, Upstream};

/// Room for what the upstream request head from an HTTP/2 client adds to the client's fields:
/// the request line and `Host`, `x-forwarded-for`, `x-forwarded-proto`, `x-request-id`.
const H2_HEAD_ROOM: usize = 256;

/// The outcome of one HTTP/1 exchange for the downstream connection.
pub(crate) enum Next {
    KeepAlive(Downstream),
    /// ringway closes the connection.
    Close,
    /// ringway closes the connection, but the client may still be sending a request body it
    /// will not read: drain it briefly first, or the kernel's reset could destroy the response
    /// before the client reads it (a lingering close, as nginx does).
    Linger(Downstream),
    /// The client closed or reset the connection.
    PeerGone,
}

/// What an HTTP/1 connection does after the exchange, decided as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
    Linger,
    PeerGone,
}

/// What the access log and stats need to know about an exchange.
pub(crate) struct Record {
    pub(crate) start: Instant,
    pub(crate) status: u16,
    pub(crate) flags: ResponseFlags,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) upstream_time: Option<Duration>,
    /// Bytes of response heads sent downstream (the body is in `bytes_sent`).
    pub(crate) head_tx: u64,
    /// A complete response reached the client.
    pub(crate) completed: bool,
    /// Bytes of the response received from the upstream (head and body payload).
    pub(crate) up_rx: u64,
    /// The upstream's status when a filter replaced its response (`status` is the answer's).
    pub(crate) up_status: Option<u16>,
    /// Tries made upstream (retries included).
    pub(crate) attempts: u32,
    /// Bytes of the response body spliced from the upstream's socket to the client's (also in
    /// `bytes_sent`).
    pub(crate) spliced: u64,
}

impl Record {
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            start,
            status: 0,
            flags: ResponseFlags::default(),
            bytes_received: 0,
            bytes_sent: 0,
            upstream: None,
            upstream_time: None,
            head_tx: 0,
            completed: false,
            up_rx: 0,
            up_status: None,
            attempts: 0,
            spliced: 0,
        }
    }
}

/// Count a response status sent downstream.
pub(crate) fn count_status(http: &crate::stats::HttpStats, status: u16) {
    match status / 100 {
        1 => http.downstream_rq_1xx.inc(),
        2 => http.downstream_rq_2xx.inc(),
        3 => http.downstream_rq_3xx.inc(),
        4 => http.downstream_rq_4xx.inc(),
        _ => http.downstream_rq_5xx.inc(),
    }
}

/// The client's side of an exchange.
pub(crate) enum Down<'a> {
    /// An HTTP/1 connection, owned by the exchange while it runs (`None` only while split).
    H1(Option<Downstream>),
    /// A stream of an HTTP/2 connection.
    H2 {
        ctx: &'a ConnCtx,
        slot: &'a StreamSlot,
    },
}

/// Serve one request from an HTTP/1 connection. The caller has read bytes into `conn.buf` or
/// seen the connection become readable.
pub(crate) async fn handle(
    worker: &Worker,
    local: &Rc<Local>,
    li: usize,
    mut conn: Downstream,
) -> Next {
    let cfg = local.listener_config(li);
    let ll = &local.listeners[li];
    let opts = &cfg.http;
    let start = timer::turn_now();
    if conn.buf.capacity() == 0 {
        conn.buf = buffers::take();
    }
    let limits = Limits {
        max_request_line: opts.max_request_line_bytes,
        max_head: opts.max_request_headers_bytes,
        max_headers: opts.max_request_headers_count,
    };
    // The head is bounded by `request_timeout` and `max_stream_duration` too.
    let header_deadline = [opts.request_timeout, opts.max_stream_duration]
        .into_iter()
        .flatten()
        .fold(opts.request_header_timeout, Duration::min);
    let header_deadline = start + header_deadline;
    // Incremental: a head arriving in many small reads is scanned once, not once per read.
    let mut parser = http1::RequestParser::new();
    let head = loop {
        match parser.parse(&mut conn.buf, &limits) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => {
                let status = e.status();
                let http = ll.http();
                http.downstream_rq_bad.inc();
                http.downstream_cx_protocol_error.inc();
                if matches!(status, 414 | 431) {
                    http.downstream_rq_too_large.inc();
                }
                return reject(&mut conn, ll, opts, status, format!("{e}\n").as_bytes()).await;
            }
        }
        // A read that times out is cancelled with the buffer inside it, so note now whether
        // part of a head had arrived.
        let partial = !conn.buf.is_empty();
        // A head in parts: the rest is read from the socket, so a multishot receive ends
        // first; bytes it took may complete the head.
        let had = conn.buf.len();
        conn.end_multi().await;
        if conn.buf.len() > had {
            continue;
        }
        match read_into(&mut conn.stream, &mut conn.buf, Some(header_deadline)).await {
            Ok(0) => {
                if !conn.buf.is_empty() {
                    ll.http().downstream_rq_rx_reset.inc();
                }
                return Next::PeerGone;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                if !partial {
                    // A connection that became readable but sent nothing: just close it.
                    return Next::Close;
                }
                ll.http().downstream_rq_timeout.inc();
                return reject(&mut conn, ll, opts, 408, b"request header timeout\n").await;
            }
            Err(_) => return Next::PeerGone,
        }
    };
    let http = ll.http();
    http.downstream_rq_total.inc();
    http.downstream_rq_http1_total.inc();
    http.downstream_rq_active.inc();
    if conn.multi.is_some() && reads_client_again(&head, conn.buf.len()) {
        conn.end_multi().await;
    }
    let xfcc = conn.stream.forwarded_client_cert(cfg.tls.as_ref());
    let peer = conn.peer;
    let mut ex = Exchange::new(worker, local, li, head, Down::H1(Some(conn)), start);
    ex.xfcc = xfcc;
    ex.peer = peer;
    ex.run().await;
    ex.account(false);
    let after = ex.after;
    match (after, ex.down) {
        (After::KeepAlive, Down::H1(Some(c))) => Next::KeepAlive(c),
        (After::Linger, Down::H1(Some(c))) => Next::Linger(c),
        (After::PeerGone, _) => Next::PeerGone,
        _ => Next::Close,
    }
}

/// Whether serving an HTTP/1 request with `buffered` bytes after its head may read the client's
/// socket: a body not all here yet, or a tunnel (CONNECT, an upgrade). Nothing else does
/// until the next request.
fn reads_client_again(head: &RequestHead, buffered: usize) -> bool {
    let body_here = match head.framing() {
        BodyFraming::None => true,
        BodyFraming::Length(n) => buffered as u64 >= n,
        BodyFraming::Chunked | BodyFraming::Close => false,
    };
    !body_here || head.is_connect() || head.upgrade().is_some()
}

/// Serve the request that opened an HTTP/2 stream (its fields already decoded, at `start`),
/// account for it, then settle the stream. This is the stream's task: one future, so spawning
/// it moves no nested future (the exchange borrows the task's own `ctx` and `slot`; the fields
/// become the head's buffer, or stay with a refused request for its log line).
pub(crate) async fn handle_stream(
    ctx: Rc<ConnCtx>,
    slot: Rc<StreamSlot>,
    fields: Fields,
    end_stream: bool,
    start: Instant,
) {
    let (ctx, slot) = (&*ctx, &*slot);
    'serve: {
        let local = ctx.worker.local();
        let http = ctx.http();
        http.downstream_rq_total.inc();
        http.downstream_rq_http2_total.inc();
        http.downstream_rq_active.inc();
        let cfg = local.listener_config(ctx.li);
        let opts = &cfg.http;
        let limits = Limits {
            max_request_line: opts.max_request_line_bytes,
            max_head: opts.max_request_headers_bytes,
            max_headers: opts.max_request_headers_count,
        };
        let head = match protocols::http2::request_head(fields, end_stream, &limits) {
            Ok(h) => Ok(h),
            Err((e, fields)) => {
                http.downstream_rq_bad.inc();
                if matches!(e.status(), 414 | 431) {
                    http.downstream_rq_too_large.inc();
                }
                Err((e, fields))
            }
        };
        // An unparseable request still gets an exchange (for its answer, stats and log line),
        // over a placeholder head.
        let (head, bad, refused) = match head {
            Ok(h) => (h, None, None),
            Err((e, fields)) => match placeholder_head() {
                Some(h) => (h, Some(e), Some(fields)),
                None => break 'serve,
            },
        };
        let mut ex = Exchange::new(
            &ctx.worker,
            &local,
            ctx.li,
            head,
            Down::H2 { ctx, slot },
            start,
        );
        ex.xfcc = ctx.xfcc.clone();
        ex.peer = ctx.peer;
        ex.refused_fields = refused.as_ref();
        let cancelled = monoio::select! {
            () = async {
                match bad {
                    None => {
                        ex.grpc = GrpcCall::of(&ex.head);
                        ex.run().await;
                    }
                    Some(e) => {
                        ex.rec.flags |= ResponseFlags::DPE;
                        let text = format!("{e}\n");
                        ex.reply_error(e.status(), text.as_bytes(), None).await;
                    }
                }
            } => false,
            () = slot.cancel.wait() => true,
        };
        if cancelled {
            ex.rec.flags |= ResponseFlags::DC;
        }
        ex.account(cancelled);
    }
    // An unfinished response is an error; an unfinished request after a complete response
    // is not (RFC 9113 8.1).
    ctx.sess
        .settle(slot, Reason::INTERNAL_ERROR, Reason::NO_ERROR);
}

/// A minimal parsed head standing in for a request that could not be read (its log line
/// takes method and path from the HTTP/2 fields).
fn placeholder_head() -> Option<RequestHead> {
    let fields = [(":method", "GET"), (":path", "/"), (":authority", "-")];
    protocols::http2::request_head(fields.into_iter().collect(), true, &Limits::default()).ok()
}

/// Answer a request whose head could not be read (malformed, too large, too slow) and close.
async fn reject(
    conn: &mut Downstream,
    ll: &ListenerLocal,
    opts: &HttpOptions,
    status: u16,
    text: &[u8],
) -> Next {
    count_status(ll.http(), status);
    let mut reply = LocalReply::new(status, text);
    reply.close = true;
    let mut out = BytesMut::with_capacity(256);
    reply.write(&mut out, opts);
    let idle = timer::zero_is_never(opts.stream_idle_timeout);
    let _ = body::write_out(&mut conn.stream, out.freeze(), idle, true).await;
    Next::Close
}

/// Why collecting a request body stopped short of a [`BufferedBody`].
enum Collect<'a> {
    /// The body outgrew the limit it was collected under (held for retries): what was read
    /// of it, and (HTTP/1) the decoder to read the rest with. Not an end of the exchange.
    Over(Held),
    /// A filter answers (413 over its limit).
    Answer(LocalAnswer<'a>),
    /// The body's framing is broken.
    Invalid,
    /// The body stalled past the stream idle timeout ([`Kind::Idle`]), or outlasted
    /// `request_timeout` or `max_stream_duration` ([`Kind::Timeout`]).
    TimedOut(Kind),
    /// The client closed, reset or went quiet.
    Gone,
}

/// The start of a request body that outgrew the retry buffer: it goes upstream first, then the
/// rest as it arrives ([`Prefixed`]).
struct Held {
    data: Bytes,
    /// Where an HTTP/1 client's body framing stands after `data`.
    decoder: BodyDecoder,
}

pub(crate) struct Exchange<'a> {
    worker: &'a Worker,
    local: &'a Rc<Local>,
    cfg: &'a ListenerConfig,
    ll: &'a ListenerLocal,
    head: RequestHead,
    down: Down<'a>,
    rec: Record,
    /// Generated when the request had none.
    request_id: Option<[u8; 36]>,
    /// The client's verified certificate identity (mTLS): what routes match as
    /// `x-forwarded-client-cert` and what goes upstream in it.
    xfcc: Option<Rc<[u8]>>,
    route_name: &'a str,
    peer: SocketAddr,
    /// The listener's HTTP filters, with the route once it is known.
    chain: Chain<'a>,
    /// The request's hash for a consistent-hash cluster, and the cookie to set with it.
    lb_hash: RequestHash<'a>,
    /// Shared by the upload and the relay while both run ([`Filters`]).
    filter_state: RefCell<FilterState>,
    /// The whole request body, when a filter had it collected before forwarding.
    buffered: Option<BufferedBody>,
    /// The start of a request body collected to be held for retries that turned out larger
    /// than the retry buffer; the rest is still to be read.
    held: Option<Held>,
    /// The stream idle timeout: the longest wait for the next bytes of a body in flight,
    /// either direction (the route's `idle_timeout`, else the listener's).
    stream_idle: Duration,
    /// The listener's `max_stream_duration`, from the start of the request.
    ends_by: Option<Instant>,
    /// When the whole request must have arrived: `request_timeout`, `max_stream_duration`.
    request_ends_by: Option<Instant>,
    /// When the whole response must be complete (once the router knows its route).
    response_by: Option<Instant>,
    /// `100 Continue` went to the client already (HTTP/1).
    continue_sent: bool,
    /// HTTP/1: what the connection does next.
    after: After,
    /// Set for gRPC requests (HTTP/2).
    grpc: Option<GrpcCall>,
    /// The gRPC call's final status, once known.
    grpc_status: Option<Code>,
    /// A refused HTTP/2 request's fields as received: its head is a placeholder, so the
    /// access log takes the method and path from these.
    refused_fields: Option<&'a Fields>,
    start_time: Option<SystemTime>,
}

impl<'a> Exchange<'a> {
    fn new(
        worker: &'a Worker,
        local: &'a Rc<Local>,
        li: usize,
        head: RequestHead,
        down: Down<'a>,
        start: Instant,
    ) -> Self {
        let cfg = local.listener_config(li);
        let ll = &local.listeners[li];
        let ends_by = cfg.http.max_stream_duration.map(|t| start + t);
        Self {
            worker,
            local,
            cfg,
            ll,
            head,
            down,
            rec: Record::new(start),
            request_id: None,
            xfcc: None,
            route_name: "",
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            chain: Chain::new(&cfg.http_filters, None),
            lb_hash: RequestHash::default(),
            filter_state: RefCell::default(),
            buffered: None,
            held: None,
            stream_idle: timer::zero_is_never(cfg.http.stream_idle_timeout),
            ends_by,
            request_ends_by: earliest(cfg.http.request_timeout.map(|t| start + t), ends_by),
            response_by: None,
            continue_sent: false,
            after: After::Close,
            grpc: None,
            grpc_status: None,
            refused_fields: None,
            // Wall-clock time is only needed for the access log.
            start_time: ll.access_log.as_ref().map(|_| SystemTime::now()),
        }
    }

    /// The address the client connected to, for a PROXY header sent upstream: asked of the
    /// socket only when a cluster sends one (an HTTP/2 connection asked once).
    fn local_addr(&self) -> Option<SocketAddr> {
        match &self.down {
            Down::H1(Some(conn)) => conn.stream.local_addr().ok(),
            Down::H1(None) => None,
            Down::H2 { ctx, .. } => ctx.local_addr,
        }
    }

    fn opts(&self) -> &'a HttpOptions {
        &self.cfg.http
    }

    fn is_h1(&self) -> bool {
        matches!(self.down, Down::H1(_))
    }

    /// What the client's codec needs to frame the response.
    fn facts(&self, upgrade_sent: bool) -> ReqFacts<'a> {
        ReqFacts {
            head_request: self.head.is_head(),
            http10: self.head.version() == Version::Http10,
            client_keep_alive: self.head.is_keep_alive(),
            drain: &self.worker.drain,
            opts: self.opts(),
            edits: self
                .chain
                .response_edits(&self.filter_state.borrow())
                .with_cookie(self.lb_hash.set_cookie),
            upgrade_sent,
            retry: None,
        }
    }

    /// `Transfer-Encoding: gzip, chunked` and the like: we decode and re-encode the chunked
    /// coding only, so forwarding would silently drop the other codings. Refuse (RFC 9112 6.1).
    fn has_unsupported_coding(&self) -> bool {
        self.head.framing() == BodyFraming::Chunked
            && self.head.headers().any(|(name, value)| {
                name.eq_ignore_ascii_case(b"transfer-encoding")
                    && value
                        .split(|&b| b == b',')
                        .any(|coding| !coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            })
    }

    async fn run(&mut self) {
        if self.is_h1() && self.has_unsupported_coding() {
            self.rec.flags |= ResponseFlags::DPE;
            let text = b"transfer codings other than chunked are not supported\n";
            return self.reply_error(501, text, None).await;
        }
        if self.head.is_connect() {
            return self
                .reply_error(501, b"CONNECT is not supported\n", None)
                .await;
        }
        if self.opts().generate_request_id && self.head.header(b"x-request-id").is_none() {
            let mut id = [0u8; 36];
            rng::uuid_v4(&mut id);
            self.request_id = Some(id);
        }
        let Some(route) = self.decode_headers().await else {
            return;
        };
        match &route.action {
            Action::DirectResponse { status, body } => {
                self.ll.http().rq_direct_response.inc();
                self.reply_local(LocalReply::new(*status, body)).await;
            }
            Action::Redirect(r) => {
                self.ll.http().rq_redirect.inc();
                let mut location = Vec::with_capacity(128);
                r.location(&self.head, self.opts().scheme(), &mut location);
                let mut reply = LocalReply::new(r.status, b"");
                reply.location = Some(&location);
                self.reply_local(reply).await;
            }
            Action::Cluster(id) => {
                self.hash_request(route, *id);
                self.forward(route, *id).await;
            }
            Action::WeightedClusters(w) => {
                let id = w.pick(rng::next_u64() as u32);
                self.hash_request(route, id);
                self.forward(route, id).await;
            }
        }
    }

    /// Resolve the route, then run the filters' decode-headers phase: a filter that pauses is
    /// run again after its wait; one that changes what routing sees has the route resolved
    /// again (with the changes of the filters that ran) before the next filter. `None`: the
    /// exchange was answered (no route, or a filter's answer).
    async fn decode_headers(&mut self) -> Option<&'a Route> {
        self.chain = Chain::new(&self.cfg.http_filters, self.resolve_route(0))
            .with_request(self.ll.shared().http_ratelimit.as_ref(), self.peer.ip());
        let mut from = 0;
        loop {
            let Some(route) = self.chain.route() else {
                self.ll.http().no_route.inc();
                self.fail(ProxyError::internal(Kind::NoRoute)).await;
                return None;
            };
            self.route_name = &route.name;
            let st = self.filter_state.get_mut();
            let (flow, at) = self.chain.decode_headers(from, &self.head, st);
            if std::mem::take(&mut st.route_dirty) {
                self.chain = self.chain.with_route(self.resolve_route(at));
            }
            match flow {
                Flow::Respond(answer) => {
                    self.reply_answer(answer).await;
                    return None;
                }
                Flow::Pause(Wait::RateLimitService) => {
                    let req = self.chain.routing_view(&self.head, at);
                    let st = self.filter_state.get_mut();
                    let wait =
                        self.chain
                            .wait(at, Wait::RateLimitService, &req, &self.local.clusters, st);
                    wait.await;
                    from = at;
                }
                Flow::Pause(wait) => {
                    self.pause(wait).await;
                    from = at;
                }
                // The router collects the body before it forwards
                // (`filter_state.collect_body`; a local answer needs none).
                Flow::Continue | Flow::StopAndBuffer { .. } if at < self.cfg.http_filters.len() => {
                    from = at;
                }
                Flow::Continue | Flow::StopAndBuffer { .. } => {
                    if self.chain.route().is_some() {
                        return self.chain.route();
                    }
                    from = at;
                }
            }
        }
    }

    /// Work out the request's hash by the route's `hash_policy`, for a cluster that balances
    /// by one (ring hash, Maglev).
    fn hash_request(&mut self, route: &'a Route, id: ClusterId) {
        let policy = self.local.snapshot.config.clusters[id].lb;
        if route.hash_policy.is_empty() || !matches!(policy, LbPolicy::RingHash | LbPolicy::Maglev)
        {
            return;
        }
        self.lb_hash = route.request_hash(&self.head, self.peer.ip(), rng::next_u64);
    }

    /// The route for the request as routing sees it after the first `ran` filters.
    fn resolve_route(&self, ran: usize) -> Option<&'a Route> {
        let cfg: &'a ListenerConfig = self.cfg;
        let routed = Routed {
            req: &self.chain.routing_view(&self.head, ran),
            xfcc: self.xfcc.as_deref(),
        };
        cfg.routes.route(&routed)
    }

    /// Send a locally generated response. An HTTP/1 connection stays open only when no request
    /// body is left unread and the client wants keep-alive.
    async fn reply_local(&mut self, mut reply: LocalReply<'_>) {
        reply.edits = self
            .chain
            .response_edits(self.filter_state.get_mut())
            .with_cookie(self.lb_hash.set_cookie);
        self.rec.status = reply.status;
        let head_request = self.head.is_head();
        match &mut self.down {
            Down::H1(conn) => {
                let Some(conn) = conn.as_mut() else { return };
                let body_pending =
                    self.head.framing() != BodyFraming::None && self.buffered.is_none();
                let keep =
                    self.head.is_keep_alive() && !self.worker.drain.is_draining() && !body_pending;
                reply.close = !keep;
                reply.keep_alive_10 = keep && self.head.version() == Version::Http10;
                reply.head_only = head_request;
                let mut out = BytesMut::with_capacity(256 + reply.body.len());
                let body_len = reply.write(&mut out, &self.cfg.http);
                let head_len = (out.len() - body_len) as u64;
                match body::write_out(&mut conn.stream, out.freeze(), self.stream_idle, !keep).await
                {
                    Ok(()) => {
                        self.rec.bytes_sent = body_len as u64;
                        self.rec.head_tx += head_len;
                        self.rec.completed = true;
                        self.after = if keep {
                            After::KeepAlive
                        } else if body_pending {
                            After::Linger
                        } else {
                            After::Close
                        };
                    }
                    Err(_) => {
                        self.rec.flags |= ResponseFlags::DC;
                        self.after = After::PeerGone;
                    }
                }
            }
            Down::H2 { ctx, slot } => {
                let mut fields = convert::head_fields();
                convert::local_reply_fields(&reply, &self.cfg.http, &mut fields);
                let no_body = reply.body.is_empty() || head_request;
                if slot
                    .send_headers(&ctx.sess, fields.iter(), no_body)
                    .is_err()
                {
                    return;
                }
                if !no_body {
                    let body = Bytes::copy_from_slice(reply.body);
                    let idle = self.stream_idle;
                    if slot.send_data(&ctx.sess, body, true, idle).await.is_err() {
                        return;
                    }
                    self.rec.bytes_sent = reply.body.len() as u64;
                }
                self.rec.completed = true;
            }
        }
    }

    /// The one place a failed exchange is settled, from the error's facts: its flag, then a
    /// local answer when nothing went downstream yet and the client is still there, a
    /// response cut short when the head went out, or nothing for a client that left.
    async fn fail(&mut self, err: ProxyError) {
        self.rec.flags |= match err.kind {
            Kind::Timeout | Kind::Idle => self.timed_out(&err),
            _ => err.flag(),
        };
        if err.is_answerable() {
            return self
                .reply_error(err.status(), err.body(), Some(err.grpc_code()))
                .await;
        }
        let late = matches!(err.kind, Kind::Timeout | Kind::Idle) && err.side == Side::Upstream;
        if late && self.end_grpc_late().await {
            return;
        }
        if err.side == Side::Downstream && err.kind != Kind::Protocol {
            self.after = After::PeerGone;
            return;
        }
        // The response had started: the client sees it cut short (an HTTP/2 stream is reset
        // when the exchange settles it).
        self.ll.http().downstream_rq_tx_reset.inc();
        self.after = After::Close;
    }

    /// Which limit a timeout ran into, counted: its response flag. `max_stream_duration` is
    /// told by the clock (it bounds every wait); the others by the error's facts.
    fn timed_out(&self, err: &ProxyError) -> ResponseFlags {
        let http = self.ll.http();
        if self.ends_by.is_some_and(|at| timer::coarse_now() >= at) {
            http.downstream_rq_max_duration_reached.inc();
            return ResponseFlags::DT;
        }
        match (err.side, err.kind) {
            (_, Kind::Idle) => http.downstream_rq_idle_timeout.inc(),
            (Side::Downstream, _) => http.downstream_rq_timeout.inc(),
            _ => {}
        }
        err.flag()
    }

    /// A gRPC call's response timed out after its head went downstream: end it with
    /// trailers `grpc-status: 4` (DEADLINE_EXCEEDED), as a gRPC client expects, instead of a
    /// reset. `false`: not a gRPC call on HTTP/2, or the stream is gone.
    async fn end_grpc_late(&mut self) -> bool {
        let (Some(_), Down::H2 { ctx, slot }) = (&self.grpc, &self.down) else {
            return false;
        };
        let mut fields = Fields::new();
        fields.push(b"grpc-status", Code::DeadlineExceeded.as_header_value());
        fields.push(b"grpc-message", b"upstream request timeout");
        if slot.send_headers(&ctx.sess, fields.iter(), true).is_err() {
            return false;
        }
        self.grpc_status = Some(Code::DeadlineExceeded);
        true
    }

    /// Answer an error ringway found itself: as an HTTP error, or for a gRPC request as a
    /// trailers-only gRPC status (HTTP 200) a gRPC client understands (`code`; by default
    /// the status's usual gRPC equivalent).
    async fn reply_error(&mut self, status: u16, text: &[u8], code: Option<Code>) {
        if let (Some(_), Down::H2 { ctx, slot }) = (&self.grpc, &self.down) {
            let code = code.unwrap_or_else(|| Code::from_http_status(status));
            let mut fields = Fields::new();
            grpc::error_fields(code, text, &mut fields);
            self.rec.status = 200;
            self.grpc_status = Some(code);
            if slot.send_headers(&ctx.sess, fields.iter(), true).is_ok() {
                self.rec.completed = true;
            }
            return;
        }
        self.reply_local(LocalReply::new(status, text)).await;
    }

    /// Answer for a filter.
    async fn reply_answer(&mut self, answer: LocalAnswer<'_>) {
        let http = self.ll.http();
        match answer.kind {
            AnswerKind::TooLarge => http.downstream_rq_too_large.inc(),
            // Counted by the fault filter's log phase.
            AnswerKind::FaultAbort => self.rec.flags |= ResponseFlags::FI,
            AnswerKind::CustomResponse => {}
            // Counted by the rate limit filters' log phases.
            AnswerKind::RateLimitServiceError => self.rec.flags |= ResponseFlags::RLSE,
            AnswerKind::RateLimited => {
                self.rec.flags |= ResponseFlags::RL;
                // Envoy's answer to a gRPC client over a local rate limit.
                let code = Some(Code::Unavailable);
                return self.reply_error(answer.status, answer.body, code).await;
            }
        }
        self.reply_error(answer.status, answer.body, None).await;
    }

    /// Wait as a filter asked, flagged (the filter counts it in its log phase).
    async fn pause(&mut self, wait: Wait) {
        match wait {
            Wait::Delay(_) => self.rec.flags |= ResponseFlags::DI,
            Wait::RateLimitService => {}
        }
        wait.elapse().await;
    }

    /// Tell an HTTP/1 client to send its body (`Expect: 100-continue`), once: like Envoy and
    /// nginx, ringway answers it itself and does not forward the expectation, so the client
    /// sends while the upstream is being connected. `Err`: the client left.
    async fn send_continue(&mut self) -> Result<(), ()> {
        let Down::H1(Some(conn)) = &mut self.down else {
            return Ok(());
        };
        let wanted = self.head.expects_continue()
            && self.head.framing() != BodyFraming::None
            && conn.buf.is_empty()
            && !self.continue_sent;
        if !wanted {
            return Ok(());
        }
        self.continue_sent = true;
        let go_on = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
        if body::write_bytes(&mut conn.stream, go_on).await.is_err() {
            self.rec.flags |= ResponseFlags::DC;
            return Err(());
        }
        Ok(())
    }

    /// Read the whole request body into memory for a filter that asked for it (bounded by its
    /// limit). An HTTP/2 client is credited for each DATA frame as it is collected, so a body
    /// larger than the stream window still arrives.
    async fn collect_body(&mut self, limit: Option<u64>) -> Result<BufferedBody, Collect<'a>> {
        let mut body = self.collect_body_data(limit).await?;
        let mut from = 0;
        while let Some(t) = body.trailers.as_mut() {
            let (flow, at) = self
                .chain
                .decode_trailers(from, t, self.filter_state.get_mut());
            match flow {
                Flow::Respond(a) => return Err(Collect::Answer(a)),
                Flow::Pause(wait) => {
                    self.pause(wait).await;
                    from = at;
                }
                Flow::Continue | Flow::StopAndBuffer { .. } => break,
            }
        }
        Ok(body)
    }

    /// The body and its trailers, each piece through the decode-data phase; with a `limit`,
    /// only while it is no larger ([`Collect::Over`] after).
    async fn collect_body_data(&mut self, limit: Option<u64>) -> Result<BufferedBody, Collect<'a>> {
        let limit = limit.unwrap_or(u64::MAX);
        if self.send_continue().await.is_err() {
            return Err(Collect::Gone);
        }
        let patience = self.request_patience();
        let mut data = BytesMut::new();
        match &mut self.down {
            Down::H1(conn) => {
                let Some(conn) = conn.as_mut() else {
                    return Err(Collect::Gone);
                };
                let mut decoder = BodyDecoder::new(self.head.framing());
                loop {
                    match decoder.decode(&mut conn.buf) {
                        Err(_) => return Err(Collect::Invalid),
                        Ok(BodyEvent::Data(d)) => {
                            self.rec.bytes_received += d.len() as u64;
                            if let Flow::Respond(a) =
                                self.chain.decode_data(d.len(), self.filter_state.get_mut())
                            {
                                return Err(Collect::Answer(a));
                            }
                            data.extend_from_slice(&d);
                            if data.len() as u64 > limit {
                                return Err(self.over(data, decoder));
                            }
                        }
                        Ok(BodyEvent::Trailers(block)) => {
                            let mut fields = Fields::new();
                            convert::trailer_fields(&block, &mut fields);
                            let _ = decoder.decode(&mut conn.buf);
                            return Ok(BufferedBody::new(data.freeze(), Some(fields)));
                        }
                        Ok(BodyEvent::End) => return Ok(BufferedBody::new(data.freeze(), None)),
                        Ok(BodyEvent::NeedMore) => {
                            let started = timer::coarse_now();
                            let deadline = patience.deadline();
                            match read_into(&mut conn.stream, &mut conn.buf, Some(deadline)).await {
                                Ok(0) => {
                                    if decoder.eof().is_err() {
                                        return Err(Collect::Gone);
                                    }
                                }
                                Ok(_) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                                    return Err(timed_out(&patience, started));
                                }
                                Err(_) => return Err(Collect::Gone),
                            }
                        }
                    }
                }
            }
            Down::H2 { ctx, slot } => loop {
                let Some(next) = slot.try_recv() else {
                    let started = timer::coarse_now();
                    if !slot.wait_until(patience.deadline()).await {
                        return Err(timed_out(&patience, started));
                    }
                    continue;
                };
                match next {
                    Recv::Data(d) => {
                        let n = d.len();
                        self.rec.bytes_received += n as u64;
                        if let Flow::Respond(a) =
                            self.chain.decode_data(n, self.filter_state.get_mut())
                        {
                            return Err(Collect::Answer(a));
                        }
                        data.extend_from_slice(&d);
                        slot.release(&ctx.sess, n);
                        if data.len() as u64 > limit {
                            return Err(self.over(data, BodyDecoder::new(BodyFraming::None)));
                        }
                    }
                    Recv::Trailers(t) => return Ok(BufferedBody::new(data.freeze(), Some(t))),
                    Recv::End => return Ok(BufferedBody::new(data.freeze(), None)),
                    Recv::Head(..) | Recv::Gone => return Err(Collect::Gone),
                }
            },
        }
    }

    /// The body collected so far outgrew its limit: hold it to be sent first. Its bytes are
    /// counted as received when they are passed on, like the rest.
    fn over(&mut self, data: BytesMut, decoder: BodyDecoder) -> Collect<'a> {
        self.rec.bytes_received -= data.len() as u64;
        Collect::Over(Held {
            data: data.freeze(),
            decoder,
        })
    }

    /// When the response must be complete, across all tries: the route's timeout, the gRPC
    /// client's deadline or the listener's `max_stream_duration`, whichever is earliest.
    fn response_deadline(&self, route: &Route) -> Option<Instant> {
        let by_route = route.timeout.map(|t| self.rec.start + t);
        let by_call = match &self.grpc {
            Some(call) => call.deadline(self.rec.start, by_route),
            None => by_route,
        };
        earliest(by_call, self.ends_by)
    }

    /// How long a read of the request body may wait.
    fn request_patience(&self) -> Patience {
        Patience {
            idle: self.stream_idle,
            ends_by: self.request_ends_by,
        }
    }

    /// How long a read of the response body may wait, given the response's `deadline`.
    fn response_patience(&self, deadline: Option<Instant>) -> Patience {
        Patience {
            idle: self.stream_idle,
            ends_by: deadline,
        }
    }

    /// Collect the whole request body into `buffered`, or with a `limit` at most that much
    /// (a larger one's start goes to `held`). `false`: the exchange was settled instead (a
    /// filter's answer, a broken body, a client that left).
    async fn collect_or_settle(&mut self, limit: Option<u64>) -> bool {
        match self.collect_body(limit).await {
            Ok(b) => {
                self.buffered = Some(b);
                true
            }
            Err(Collect::Over(held)) => {
                self.held = Some(held);
                true
            }
            // The answer lingers: the body is not read to its end (`reply_local`).
            Err(Collect::Answer(a)) => {
                self.reply_answer(a).await;
                false
            }
            Err(Collect::Invalid) => {
                let err = ProxyError::downstream(Kind::Protocol, Phase::BeforeRequest);
                self.fail(err).await;
                false
            }
            Err(Collect::Gone) => {
                self.fail(client_gone(Phase::BeforeRequest)).await;
                false
            }
            Err(Collect::TimedOut(kind)) => {
                let err = ProxyError::downstream(kind, Phase::BeforeRequest);
                self.fail(err).await;
                false
            }
        }
    }

    /// The router: collect the body if a filter asked (or to hold it for retries), then try
    /// endpoints until a try settles the exchange: the first, or more as the route's retry
    /// policy allows ([`Retry`]), each on an endpoint not tried before where there is one,
    /// after a back-off, all within the route's timeout.
    async fn forward(&mut self, route: &'a Route, id: ClusterId) {
        if let Some(t) = route.idle_timeout {
            self.stream_idle = timer::zero_is_never(t);
        }
        if self.filter_state.get_mut().collect_body && !self.collect_or_settle(None).await {
            return;
        }
        let cluster = self.local.clusters[id].clone();
        let mut policy = route.retry_policy.as_deref();
        if let Some(p) = policy {
            // A request is retried only while its whole body is held: one of unknown length
            // is collected up to the limit, and what was read of a larger one is sent first.
            if self.buffered.is_none() && self.head.framing() != BodyFraming::None {
                let limit = p.per_request_buffer_limit_bytes;
                let fits = match self.head.framing() {
                    BodyFraming::Length(n) => n <= limit,
                    _ => true,
                };
                if fits && !self.collect_or_settle(Some(limit)).await {
                    return;
                }
                if self.buffered.is_none() {
                    cluster.stats().retry_or_shadow_abandoned.inc();
                    policy = None;
                }
            }
        }
        let retry = policy.map(|p| Retry::new(p, cluster.retry_limits(), self.grpc.is_some()));
        let deadline = self.response_deadline(route);
        self.response_by = deadline;
        // Endpoints tried (index modulo 64): a retry prefers another.
        let mut tried = 0u64;
        loop {
            let Some(ep) = cluster.pick_avoiding(tried, self.lb_hash.hash) else {
                cluster.stats().upstream_cx_none_healthy.inc();
                return self
                    .fail(ProxyError::internal(Kind::NoHealthyUpstream))
                    .await;
            };
            tried |= 1 << (ep % 64);
            let attempt = match Attempt::begin(cluster.clone(), ep, self.rec.start) {
                Ok(a) => a,
                Err(err) => return self.fail(err).await,
            };
            self.rec.attempts += 1;
            self.rec.upstream = Some(attempt.cluster.endpoints[ep].address);
            let this = match &retry {
                Some(r) => {
                    let d = r.try_deadline(deadline);
                    Try {
                        retry: Some(r),
                        deadline: d,
                        response_by: deadline,
                        per_try: d != deadline,
                    }
                }
                None => Try {
                    retry: None,
                    deadline,
                    response_by: deadline,
                    per_try: false,
                },
            };
            let tried_out = match attempt.cluster.protocol {
                UpstreamProtocol::Http1 => self.forward_h1(route, &attempt, &this).await,
                UpstreamProtocol::Http2 => self.forward_h2(route, &attempt, &this).await,
            };
            let Tried::Again { status, flags } = tried_out else {
                let up_status = self.rec.up_status.unwrap_or(self.rec.status);
                self.rec.upstream_time =
                    Some(attempt.end(up_status, self.rec.flags, self.rec.up_rx));
                if let Some(r) = &retry {
                    if r.limit_exceeded() {
                        self.rec.flags |= ResponseFlags::URX;
                    }
                    r.finish(self.rec.completed && up_status < 500);
                }
                return;
            };
            attempt.end(status, flags, 0);
            let Some(r) = &retry else { return };
            let until = Instant::now() + r.back_off();
            if let Some(d) = deadline.filter(|&d| d <= until) {
                timer::sleep_until(d).await;
                let err = ProxyError::upstream(Kind::Timeout, Phase::BeforeResponse);
                return self.fail(err).await;
            }
            timer::sleep_until(until).await;
        }
    }

    /// Forward over a pooled HTTP/1 connection.
    async fn forward_h1(&mut self, route: &'a Route, attempt: &Attempt, this: &Try<'_>) -> Tried {
        let cluster = &attempt.cluster;
        let req_framing = self.head.framing();
        // Only an HTTP/1 client can upgrade, and only a request without a body.
        let upgrade = match self.down {
            Down::H1(_) => self
                .head
                .upgrade()
                .filter(|_| req_framing == BodyFraming::None),
            Down::H2 { .. } => None,
        };
        let out_framing = match req_framing {
            BodyFraming::Chunked => OutFraming::Chunked,
            _ => OutFraming::AsIs,
        };
        // The upstream request: head plus whatever body is already at hand. The field lines
        // kept from an HTTP/1 client's head are not copied (`H1Parts`): `parts` lists them
        // and what was written to `out` around them. An HTTP/2 client's head has no lines:
        // all of it is written to `out`.
        let mut parts = self.head.field_line(0).map(|_| Gather::take());
        let mut out = match self.down {
            // A pooled read-sized buffer: an HTTP/1 client's body may follow its head into it.
            Down::H1(_) => buffers::take(),
            // Only the head (and a buffered body, rarely): sized to it, not a 16 KiB pooled
            // buffer per stream. A connection's concurrent streams outnumber the pool, so
            // those would mostly be allocated and freed for each request, on the allocator's
            // slow path for blocks above 1 KiB; this is one small block, freed once sent.
            Down::H2 { .. } => BytesMut::with_capacity(self.head.raw().len() + H2_HEAD_ROOM),
        };
        let out_from = {
            let rw = RequestRewrite {
                route,
                opts: self.opts(),
                peer: self.peer,
                framing: out_framing,
                upgrade,
                request_id: self.request_id.as_ref(),
                edits: self.chain.request_edits(),
            };
            let xfcc = self.xfcc.as_deref();
            match &mut parts {
                Some(parts) => {
                    let mut writer = H1Parts {
                        req: &self.head,
                        out: &mut out,
                        parts,
                        from: 0,
                    };
                    head::rewrite_request(&self.head, &rw, xfcc, &mut writer);
                    writer.from
                }
                None => {
                    head::rewrite_request(&self.head, &rw, xfcc, &mut out);
                    0
                }
            }
        };
        let upgrade_sent = upgrade.is_some();
        if self.send_continue().await.is_err() {
            self.after = After::Close;
            return Tried::Done;
        }
        let mut decoder = BodyDecoder::new(req_framing);
        let complete = match (&self.buffered, &mut self.down) {
            (Some(b), _) => {
                body::frame_whole(&mut out, b, out_framing);
                Ok(true)
            }
            // The body's start was read (`held`): the upload sends it, then the rest.
            (None, _) if self.held.is_some() => Ok(false),
            // The body goes through the decode phases on its way (`pump_with`).
            (None, Down::H1(_)) if self.chain.phases().decode_body => {
                Ok(req_framing == BodyFraming::None)
            }
            (None, Down::H1(Some(conn))) => body::fill(
                &mut decoder,
                &mut conn.buf,
                &mut out,
                out_framing,
                &mut self.rec.bytes_received,
            ),
            (None, Down::H1(None)) => Ok(false),
            (None, Down::H2 { .. }) => Ok(req_framing == BodyFraming::None),
        };
        let Ok(complete) = complete else {
            gather::give_back(parts);
            buffers::give_back(out);
            let err = ProxyError::downstream(Kind::Protocol, Phase::BeforeRequest);
            self.fail(err).await;
            return Tried::Done;
        };
        let request_len = match &mut parts {
            Some(p) => {
                p.push(Src::Out, out_from..out.len());
                p.len()
            }
            None => out.len(),
        } as u64;
        // `out` goes back to the pool once `request_bytes` (and `parts`' handle on it) is
        // dropped, so the next request reuses its allocation.
        let request_bytes = out.split().freeze();
        let deadline = this.deadline;

        if !complete {
            // A body still arriving is never retried (`forward` collected any it may retry).
            let facts = self.facts(upgrade_sent);
            let origin = cluster.origin(self.peer, || self.local_addr());
            let up = match attempt.checkout(origin, deadline).await {
                Ok(up) => up,
                Err(err) => {
                    gather::give_back(parts);
                    self.fail(err).await;
                    return Tried::Done;
                }
            };
            cluster.stats().upstream_cx_tx_bytes_total.add(request_len);
            // The upload's output buffer starts with the whole request so far, in one piece.
            let mut first = BytesMut::with_capacity(request_len as usize);
            match parts {
                Some(p) => {
                    for part in p.slices(self.head.raw(), &request_bytes) {
                        first.extend_from_slice(part);
                    }
                    p.give_back();
                }
                None => first.extend_from_slice(&request_bytes),
            }
            drop(request_bytes);
            // Boxed: a body still arriving is the rarer case, and its upload beside the relay
            // (`both`) would otherwise size every request's future, copied at each await.
            Box::pin(self.stream_h1(up, first, out_framing, decoder, facts, deadline)).await;
            buffers::give_back(out);
            return Tried::Done;
        }
        let facts = ReqFacts {
            retry: this.retry,
            ..self.facts(upgrade_sent)
        };
        // Wholly in memory: it can be sent again once on a fresh connection when a pooled
        // connection turns out to have been closed by the upstream while idle.
        let mut tries = 0;
        loop {
            tries += 1;
            let origin = cluster.origin(self.peer, || self.local_addr());
            let mut up = match attempt.checkout(origin, deadline).await {
                Ok(up) => up,
                Err(err) => {
                    gather::give_back(parts);
                    buffers::give_back(out);
                    if this.again(&err) {
                        return Tried::again(&err);
                    }
                    self.fail(err).await;
                    return Tried::Done;
                }
            };
            cluster.stats().upstream_cx_tx_bytes_total.add(request_len);
            let mut upbuf = BytesMut::new();
            // A connection whose last response came whole with its head waits for this one
            // with a multishot receive, armed before the request leaves and kept after.
            if up.multi_ok && up.multi.is_none() {
                up.multi = multishot::arm(&up.stream);
                if up.multi.is_some() {
                    cluster.stats().upstream_rx_multishot_armed.inc();
                }
            }
            let write = async {
                match parts.take() {
                    Some(mut p) if !p.is_out_only() => {
                        p.arm(self.head.raw().clone(), request_bytes.clone());
                        let (res, back) = gather::write_all(&mut up.stream, p).await;
                        parts = Some(back);
                        res
                    }
                    p => {
                        parts = p;
                        body::write_bytes(&mut up.stream, request_bytes.clone()).await
                    }
                }
            };
            // An upstream that stopped reading leaves a large request's write waiting: the
            // route timeout bounds it. A small one goes into the socket buffers at once (the
            // reads that follow are bounded), so it arms no timer.
            let sent = match deadline {
                Some(d) if request_len > BOUNDED_WRITE_FROM => monoio::select! {
                    r = write => r,
                    _ = timer::sleep_until(d) => Err(std::io::ErrorKind::TimedOut.into()),
                },
                _ => write.await,
            };
            let relayed = match sent {
                Ok(()) => {
                    let patience = self.response_patience(this.response_by);
                    let armed = up.multi.is_some();
                    let mut src = H1Response::new(
                        &mut up.stream,
                        &mut upbuf,
                        facts.head_request,
                        patience,
                        Some(&mut up.multi),
                    );
                    let relayed = self
                        .relay_to_client(&mut src, &facts, deadline, &Progress::default())
                        .await;
                    // Armed: it stays armed only for a response that came whole. Not: arm one
                    // next time when this response's body was all there with its head.
                    let whole = if armed {
                        src.came_whole()
                    } else {
                        src.is_complete()
                    };
                    up.multi_ok = whole;
                    relayed
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    Relayed::Failed(ProxyError::upstream(Kind::Timeout, Phase::BeforeResponse))
                }
                Err(_) => Relayed::Failed(ProxyError::upstream(Kind::Reset, Phase::BeforeResponse)),
            };
            // A pooled connection closed by the upstream while idle: the request is sent once
            // more, on a fresh connection.
            let stale = matches!(relayed, Relayed::Failed(e)
                if e.side == Side::Upstream && e.kind == Kind::Reset && e.phase == Phase::BeforeResponse);
            if stale && up.reused && tries == 1 {
                cluster.stats().upstream_rq_retry.inc();
                continue;
            }
            gather::give_back(parts);
            drop(request_bytes);
            buffers::give_back(out);
            match relayed {
                Relayed::Failed(err) if this.again(&err) => {
                    upstream::count_failure(&mut up, &err);
                    buffers::give_back(upbuf);
                    return Tried::again(&err);
                }
                // Its body was not read: the connection is dropped.
                Relayed::Retry(status) => {
                    buffers::give_back(upbuf);
                    return Tried::Again {
                        status,
                        flags: ResponseFlags::NONE,
                    };
                }
                relayed => self.finish_h1(up, upbuf, relayed, true).await,
            }
            return Tried::Done;
        }
    }

    /// Relay one response to the client, whatever its codec.
    async fn relay_to_client<S: ResponseSource>(
        &mut self,
        src: &mut S,
        facts: &ReqFacts<'_>,
        deadline: Option<Instant>,
        progress: &Progress,
    ) -> Relayed<'a> {
        let idle = self.stream_idle;
        let filters = Filters {
            chain: self.chain,
            state: &self.filter_state,
        };
        let rec = &mut self.rec;
        match &mut self.down {
            Down::H1(conn) => {
                let Some(conn) = conn.as_mut() else {
                    return Relayed::Failed(client_gone(Phase::BeforeResponse));
                };
                let mut sink = H1Client::new(&mut conn.stream, facts, idle);
                relay(src, &mut sink, facts, deadline, progress, rec, filters).await
            }
            Down::H2 { ctx, slot } => {
                let mut sink = ClientResponse::new(slot, &ctx.sess, idle, facts);
                let r = relay(src, &mut sink, facts, deadline, progress, rec, filters).await;
                self.grpc_status = self.grpc_status.or_else(|| sink.grpc_status());
                r
            }
        }
    }

    /// The request body is still arriving: send it to the HTTP/1 upstream and relay the
    /// response at the same time.
    async fn stream_h1(
        &mut self,
        mut up: Upstream,
        first_out: BytesMut,
        framing: OutFraming,
        decoder: BodyDecoder,
        facts: ReqFacts<'a>,
        deadline: Option<Instant>,
    ) {
        let cluster = up.cluster().clone();
        let mut upbuf = BytesMut::new();
        up.end_multi(&mut upbuf).await;
        let (upstream, lease) = up.into_parts();
        let (mut ur, mut uw) = upstream.into_split();
        let patience = self.response_patience(deadline);
        let mut up_sink = H1Sink::new(&mut uw, first_out, framing, self.stream_idle);
        let mut up_src = H1Response::new(&mut ur, &mut upbuf, facts.head_request, patience, None);
        let (uploaded, relayed) = self
            .upload_and_relay(decoder, &mut up_sink, &mut up_src, &facts, deadline)
            .await;
        drop((up_sink, up_src));
        let body_done = matches!(uploaded, Some(Ok(_)));
        if let Some(Ok(n)) = uploaded {
            self.rec.bytes_received += n;
            cluster.stats().upstream_cx_tx_bytes_total.add(n);
        }
        let Ok(upstream) = ur.reunite(uw) else {
            self.after = After::Close;
            return;
        };
        let up = Upstream::from_parts(upstream, lease);
        self.finish_h1(up, upbuf, relayed, body_done).await;
    }

    /// Run the request body upload (client -> upstream) beside the relay of the response. The
    /// client's half comes from [`Down`]: split halves of an HTTP/1 connection (`decoder`
    /// continues its body), or the HTTP/2 stream; a buffered body comes from memory.
    async fn upload_and_relay<US: BodySink, UR: ResponseSource>(
        &mut self,
        decoder: BodyDecoder,
        up_sink: &mut US,
        up_src: &mut UR,
        facts: &ReqFacts<'_>,
        deadline: Option<Instant>,
    ) -> (Option<Result<u64, PumpError>>, Relayed<'a>) {
        let idle = self.stream_idle;
        let patience = self.request_patience();
        let progress = Progress::default();
        let buffered = self.buffered.take();
        let (prefix, decoder) = match self.held.take() {
            Some(Held { data, decoder }) => (data, decoder),
            None => (Bytes::new(), decoder),
        };
        let filters = Filters {
            chain: self.chain,
            state: &self.filter_state,
        };
        // A collected body passed the decode phases already.
        let decode = (buffered.is_none() && self.chain.phases().decode_body).then_some(filters);
        let out = match &mut self.down {
            Down::H1(slot) => {
                let Some(Downstream {
                    stream,
                    mut buf,
                    peer,
                    multi,
                }) = slot.take()
                else {
                    return (None, Relayed::Failed(client_gone(Phase::BeforeRequest)));
                };
                let (mut dr, mut dw) = stream.into_split();
                let out = {
                    let src = match &buffered {
                        Some(b) => ClientBodySource::Memory(MemorySource::new(b)),
                        None => {
                            let rest = H1Source::resume(&mut dr, &mut buf, decoder, patience);
                            ClientBodySource::H1(rest)
                        }
                    };
                    let mut src = Prefixed::new(prefix, src);
                    let mut sink = H1Client::new(&mut dw, facts, idle);
                    let rec = &mut self.rec;
                    let halves = (&mut src, up_sink, up_src, &mut sink);
                    both(halves, facts, deadline, &progress, rec, filters, decode).await
                };
                match dr.reunite(dw) {
                    Ok(stream) => {
                        *slot = Some(Downstream {
                            stream,
                            buf,
                            peer,
                            multi,
                        })
                    }
                    Err(_) => self.after = After::Close,
                }
                out
            }
            Down::H2 { ctx, slot } => {
                // An HTTP/2 client's body never comes from a connection of its own.
                let src: ClientBodySource<'_, crate::net::io::ReadHalf> = match &buffered {
                    Some(b) => ClientBodySource::Memory(MemorySource::new(b)),
                    None if self.head.framing() == BodyFraming::None => ClientBodySource::None,
                    None => ClientBodySource::H2(ClientBody {
                        slot,
                        sess: &ctx.sess,
                        patience,
                    }),
                };
                let mut src = Prefixed::new(prefix, src);
                let mut sink = ClientResponse::new(slot, &ctx.sess, idle, facts);
                let rec = &mut self.rec;
                let halves = (&mut src, up_sink, up_src, &mut sink);
                let out = both(halves, facts, deadline, &progress, rec, filters, decode).await;
                self.grpc_status = self.grpc_status.or_else(|| sink.grpc_status());
                out
            }
        };
        self.buffered = buffered;
        out
    }

    /// Settle both connections after an exchange with an HTTP/1 upstream ended.
    async fn finish_h1(
        &mut self,
        mut up: Upstream,
        mut upbuf: BytesMut,
        relayed: Relayed<'_>,
        body_done: bool,
    ) {
        match relayed {
            Relayed::Done {
                upstream_reusable,
                downstream_keep_alive,
            } => {
                self.rec.completed = true;
                up.cluster().stats().upstream_rq_completed.inc();
                if upstream_reusable && body_done && upbuf.is_empty() {
                    up.cluster().clone().release(up);
                }
                buffers::give_back(upbuf);
                self.settle_done(downstream_keep_alive && body_done, body_done);
            }
            Relayed::Upgraded => {
                let Down::H1(slot) = &mut self.down else {
                    return;
                };
                let Some(Downstream { stream, buf, .. }) = slot.take() else {
                    return;
                };
                let cluster = up.cluster().clone();
                let stats = self.ll.http();
                stats.downstream_cx_upgrades_total.inc();
                stats.downstream_cx_upgrades_active.inc();
                let idle = self.opts().idle_timeout;
                // The tunnel reads the upstream's socket: bytes a multishot receive took after
                // the 101 go first.
                up.end_multi(&mut upbuf).await;
                let (upstream, lease) = up.into_parts();
                // Boxed: upgrades are rare, and the tunnel's future would otherwise size
                // every request's.
                let (end, rx, tx) = Box::pin(crate::net::relay::tunnel(
                    stream, buf, upstream, upbuf, idle,
                ))
                .await;
                log::debug!("upgrade tunnel: {end:?} after {rx} bytes up, {tx} bytes down");
                self.rec.bytes_received += rx;
                self.rec.bytes_sent += tx;
                drop(lease);
                drop(cluster);
                stats.downstream_cx_upgrades_active.dec();
                self.rec.completed = true;
                self.after = After::Close;
            }
            // A dropped response to retry is taken by the router before it gets here; should
            // one come, it was lost before its head went downstream.
            Relayed::Retry(_) => {
                drop(up);
                buffers::give_back(upbuf);
                self.fail(ProxyError::upstream(Kind::Reset, Phase::BeforeResponse))
                    .await;
            }
            Relayed::Failed(err) => {
                upstream::count_failure(&mut up, &err);
                drop(up);
                self.fail(err).await;
                if !body_done {
                    self.after = self.after.min_close();
                }
            }
            Relayed::Answer(answer) => {
                // The response's body was not read: the connection closes.
                drop(up);
                buffers::give_back(upbuf);
                self.rec.up_status = Some(self.rec.status);
                self.reply_answer(answer).await;
                if !body_done {
                    self.after = self.after.min_close();
                }
            }
        }
    }

    /// After a complete response: what the client connection does.
    fn settle_done(&mut self, keep_alive: bool, body_done: bool) {
        self.after = if keep_alive {
            After::KeepAlive
        } else if !body_done {
            After::Linger
        } else {
            After::Close
        };
    }

    /// Forward over an HTTP/2 upstream connection: the request body and the response are
    /// relayed at the same time, each direction under both connections' flow control.
    async fn forward_h2(&mut self, route: &'a Route, attempt: &Attempt, this: &Try<'_>) -> Tried {
        let has_body = self.head.framing() != BodyFraming::None;
        let rw = RequestRewrite {
            route,
            opts: self.opts(),
            peer: self.peer,
            framing: OutFraming::AsIs,
            upgrade: None,
            request_id: self.request_id.as_ref(),
            edits: self.chain.request_edits(),
        };
        let cluster = &attempt.cluster;
        let mut up_head = convert::head_fields();
        let scheme: &'static [u8] = if cluster.is_tls() { b"https" } else { b"http" };
        let mut out = H2Request {
            fields: &mut up_head,
            scheme,
        };
        head::rewrite_request(&self.head, &rw, self.xfcc.as_deref(), &mut out);
        if self.send_continue().await.is_err() {
            self.after = After::Close;
            return Tried::Done;
        }
        cluster
            .stats()
            .upstream_cx_tx_bytes_total
            .add(up_head.byte_len() as u64);
        let opening = open_request(
            cluster,
            attempt.endpoint,
            &up_head,
            !has_body,
            this.deadline,
        );
        let (h2conn, opened) = match opening.await {
            Ok(o) => o,
            Err(e) => {
                let err = attempt.connect_fault(e);
                if this.again(&err) {
                    return Tried::again(&err);
                }
                self.fail(err).await;
                return Tried::Done;
            }
        };
        let Ok(up) = opened else {
            let err = ProxyError::upstream(Kind::Reset, Phase::BeforeRequest);
            if this.again(&err) {
                return Tried::again(&err);
            }
            self.fail(err).await;
            return Tried::Done;
        };
        let deadline = this.deadline;
        let idle = self.stream_idle;
        let patience = self.response_patience(this.response_by);
        let facts = ReqFacts {
            retry: this.retry,
            ..self.facts(false)
        };
        let (uploaded, relayed) = {
            let mut up_sink = UpstreamBody { up: &up, idle };
            let mut up_src = UpstreamResponse { up: &up, patience };
            if has_body {
                let decoder = BodyDecoder::new(self.head.framing());
                // Boxed, as in `forward_h1`: the upload beside the relay is the largest state
                // of an exchange, and only requests with a body need it.
                Box::pin(self.upload_and_relay(
                    decoder,
                    &mut up_sink,
                    &mut up_src,
                    &facts,
                    deadline,
                ))
                .await
            } else {
                let r = self
                    .relay_to_client(&mut up_src, &facts, deadline, &Progress::default())
                    .await;
                (Some(Ok(0)), r)
            }
        };
        drop(up);
        let body_done = matches!(uploaded, Some(Ok(_)));
        if let Some(Ok(n)) = uploaded {
            // A collected body was counted as it was read.
            if self.buffered.is_none() {
                self.rec.bytes_received += n;
            }
            cluster.stats().upstream_cx_tx_bytes_total.add(n);
        }
        match relayed {
            Relayed::Done {
                downstream_keep_alive,
                ..
            } => {
                self.rec.completed = true;
                cluster.stats().upstream_rq_completed.inc();
                self.settle_done(downstream_keep_alive && body_done, body_done);
            }
            Relayed::Failed(mut err) => {
                // A stream that failed because its connection never came up is a connect
                // failure.
                if let (Side::Upstream, Some(e)) = (err.side, h2conn.connect_error()) {
                    if err.phase < Phase::AfterHead {
                        err = attempt.connect_fault(e);
                    }
                }
                err.count(cluster.stats());
                if this.again(&err) {
                    return Tried::again(&err);
                }
                self.fail(err).await;
                if !body_done {
                    self.after = self.after.min_close();
                }
            }
            Relayed::Upgraded => self.after = After::Close,
            // The stream was reset when dropped above.
            Relayed::Answer(answer) => {
                self.rec.up_status = Some(self.rec.status);
                self.reply_answer(answer).await;
                if !body_done {
                    self.after = self.after.min_close();
                }
            }
            Relayed::Retry(status) => {
                return Tried::Again {
                    status,
                    flags: ResponseFlags::NONE,
                };
            }
        }
        Tried::Done
    }

    /// Stats and the access-log line for the finished exchange.
    fn account(&self, cancelled: bool) {
        let http = self.ll.http();
        http.downstream_rq_active.dec();
        if self.rec.completed {
            http.downstream_rq_completed.inc();
        }
        let head_rx = if self.is_h1() {
            self.head.raw().len() as u64
        } else {
            0
        };
        http.downstream_cx_rx_bytes_total
            .add(head_rx + self.rec.bytes_received);
        http.downstream_cx_tx_bytes_total
            .add(self.rec.head_tx + self.rec.bytes_sent);
        if self.rec.spliced > 0 {
            http.splice_rs_total.inc();
            http.splice_rs_bytes.add(self.rec.spliced);
        }
        if self.rec.status != 0 && !cancelled {
            count_status(http, self.rec.status);
        } else {
            http.downstream_rq_rx_reset.inc();
        }
        if self.grpc.is_some() {
            grpc::count(http, self.grpc_status.filter(|_| !cancelled));
        }
        self.ll
            .rq_time
            .record(timer::turn_elapsed(self.rec.start).as_micros() as u64);
        if let (Some(log), Some(start)) = (&self.ll.access_log, self.start_time) {
            self.log(log, start);
        }
        // The filters' log phase, once the record is final.
        if self.chain.phases().log {
            let done = Done {
                status: self.rec.status,
                completed: self.rec.completed,
            };
            self.chain.log(&done, http, &self.filter_state.borrow());
        }
    }

    /// The one access-log record of an HTTP exchange, for both protocols.
    fn log(&self, writer: &crate::access_log::AccessLogWriter, start: SystemTime) {
        let h = &self.head;
        let (method, path, protocol) = match self.down {
            Down::H1(_) => (
                h.method(),
                h.target(),
                match h.version() {
                    Version::Http10 => "HTTP/1.0",
                    Version::Http11 => "HTTP/1.1",
                },
            ),
            Down::H2 { .. } => match self.refused_fields {
                Some(f) => {
                    let pseudo = |name: &[u8]| f.value_of(name).unwrap_or_default();
                    (pseudo(b":method"), pseudo(b":path"), "HTTP/2")
                }
                // `:path` is the target; CONNECT has none (its target is `:authority`).
                None if h.is_connect() => (h.method(), &b""[..], "HTTP/2"),
                None => (h.method(), h.target(), "HTTP/2"),
            },
        };
        writer.log(&Entry {
            start,
            method,
            path,
            protocol,
            status: self.rec.status,
            flags: self.rec.flags,
            bytes_received: self.rec.bytes_received,
            bytes_sent: self.rec.bytes_sent,
            duration: timer::turn_elapsed(self.rec.start),
            upstream_service_time: self.rec.upstream_time,
            forwarded_for: h.header(b"x-forwarded-for"),
            user_agent: h.header(b"user-agent"),
            request_id: match &self.request_id {
                Some(id) => Some(&id[..]),
                None => h.header(b"x-request-id"),
            },
            authority: h.authority(),
            upstream_host: self.rec.upstream,
            downstream_remote: self.peer,
            route_name: self.route_name,
            // Not recorded for HTTP yet (tcp listeners log it).
            requested_server_name: None,
            upstream_request_attempt_count: self.rec.attempts,
        });
    }
}

/// A read of a request body being collected timed out: which limit it ran into.
fn timed_out<'a>(patience: &Patience, started: Instant) -> Collect<'a> {
    Collect::TimedOut(match patience.timed_out(started) {
        PumpError::Idle => Kind::Idle,
        _ => Kind::Timeout,
    })
}

/// A request (head and body, wholly in memory) longer than this is written to the upstream
/// within the route timeout; a shorter one fits the socket buffers of a connection that reads
/// nothing (a 128 KiB receive buffer by default), so its write cannot hang.
const BOUNDED_WRITE_FROM: u64 = 64 * 1024;

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One try of the router: its retry state (`None`: the request is tried once) and when it
/// ends without a response head.
struct Try<'r> {
    retry: Option<&'r Retry<'r>>,
    deadline: Option<Instant>,
    /// When the whole response must be complete (all tries).
    response_by: Option<Instant>,
    /// `deadline` is the try's own (per-try timeout), earlier than the request's.
    per_try: bool,
}

impl Try<'_> {
    /// The try failed with `err` before anything went downstream: try again? (Admitted and
    /// counted when so.)
    fn again(&self, err: &ProxyError) -> bool {
        self.retry.is_some_and(|r| r.on_error(err, self.per_try))
    }
}

/// How a try ended.
enum Tried {
    /// The exchange is settled: relayed, answered, or failed for good.
    Done,
    /// The try failed in a way the retry policy retries and a retry was admitted; nothing
    /// went downstream. `status` (0: none) and `flags` describe the try for its endpoint's
    /// stats.
    Again { status: u16, flags: ResponseFlags },
}

impl Tried {
    fn again(err: &ProxyError) -> Self {
        Self::Again {
            status: 0,
            flags: err.flag(),
        }
    }
}

impl After {
    /// A connection whose request body was not read cannot be kept.
    fn min_close(self) -> Self {
        match self {
            Self::KeepAlive => Self::Linger,
            other => other,
        }
    }
}

/// Where the request body of an exchange comes from: the client's HTTP/1 connection, its
/// HTTP/2 stream, memory (a filter collected it), or nowhere (no body).
enum ClientBodySource<'b, R> {
    H1(H1Source<'b, R>),
    H2(ClientBody<'b>),
    Memory(MemorySource<'b>),
    None,
}

impl<R: monoio::io::AsyncReadRent + crate::net::io::PlainSocket> BodySource
    for ClientBodySource<'_, R>
{
    fn next(&mut self) -> Result<super::message::Chunk, PumpError> {
        match self {
            Self::H1(s) => s.next(),
            Self::H2(s) => s.next(),
            Self::Memory(s) => s.next(),
            Self::None => Ok(super::message::Chunk::End),
        }
    }

    async fn fill(&mut self) -> Result<(), PumpError> {
        match self {
            Self::H1(s) => s.fill().await,
            Self::H2(s) => s.fill().await,
            Self::Memory(_) | Self::None => Ok(()),
        }
    }

    fn release(&self, n: usize) {
        if let Self::H2(s) = self {
            s.release(n);
        }
    }
}

/// Run the upload (`down_src` -> `up_sink`) and the relay (`up_src` -> `down_sink`) together.
/// A client that leaves or breaks its body's framing ends both; an upstream that stops taking
/// the body may still be answering, so the relay goes on. `decode`: the request body passes
/// the filters' decode phases on its way (only when a filter has them).
#[allow(clippy::too_many_arguments)] // reason: the four halves of one exchange and its state
async fn both<'a, DS: BodySource, US: BodySink, UR: ResponseSource, DK: ResponseSink>(
    (down_src, up_sink, up_src, down_sink): (&mut DS, &mut US, &mut UR, &mut DK),
    facts: &ReqFacts<'_>,
    deadline: Option<Instant>,
    progress: &Progress,
    rec: &mut Record,
    filters: Filters<'_, 'a>,
    decode: Option<Filters<'_, 'a>>,
) -> (Option<Result<u64, PumpError>>, Relayed<'a>) {
    progress.body_pending.set(true);
    let upload = async {
        let mut n = Moved::default();
        let r = match decode {
            Some(f) => pump_with(down_src, up_sink, &mut n, &Decode(f)).await,
            None => pump(down_src, up_sink, &mut n).await,
        }
        .map(|()| n.bytes);
        // Only a body read to its end frees the connection for another request.
        progress.body_pending.set(r.is_err());
        r
    };
    let relay = relay(up_src, down_sink, facts, deadline, progress, rec, filters);
    let mut upload = std::pin::pin!(upload);
    let mut relay = std::pin::pin!(relay);
    let mut uploaded = None;
    let relayed = loop {
        monoio::select! {
            r = &mut upload, if uploaded.is_none() => {
                let phase = if progress.head_sent.get() {
                    Phase::AfterHead
                } else {
                    Phase::BeforeResponse
                };
                let failed = match &r {
                    Err(PumpError::Source(std::io::ErrorKind::TimedOut)) => {
                        Some(ProxyError::downstream(Kind::Timeout, phase))
                    }
                    Err(PumpError::Idle) => Some(ProxyError::downstream(Kind::Idle, phase)),
                    Err(PumpError::Source(_)) => Some(client_gone(phase)),
                    Err(PumpError::Framing) => Some(ProxyError::downstream(Kind::Protocol, phase)),
                    Err(PumpError::Filter) => Some(filter_stopped(phase)),
                    // An upstream that stopped taking the body may still be answering.
                    _ => None,
                };
                uploaded = Some(r);
                if let Some(e) = failed {
                    break Relayed::Failed(e);
                }
            }
            r = &mut relay => break r,
        }
    };
    let relayed = match relayed {
        Relayed::Done {
            upstream_reusable,
            downstream_keep_alive,
        } => {
            let body_done = matches!(uploaded, Some(Ok(_)));
            Relayed::Done {
                upstream_reusable: upstream_reusable && body_done,
                downstream_keep_alive: downstream_keep_alive && body_done,
            }
        }
        other => other,
    };
    (uploaded, relayed)
}

impl crate::router::RequestInfo for RequestHead {
    fn authority(&self) -> &[u8] {
        Self::authority(self)
    }
    fn path(&self) -> &[u8] {
        Self::path(self)
    }
    fn query(&self) -> &[u8] {
        Self::query(self)
    }
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        Self::header(self, name)
    }
    fn method(&self) -> &[u8] {
        Self::method(self)
    }
}
