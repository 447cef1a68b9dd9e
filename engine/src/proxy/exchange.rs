//! One request/response exchange on a downstream HTTP/1 connection: read the head, route it,
//! answer locally or forward it to an upstream, relay the response, log and count it.
//!
//! Bodies stream in both directions. When the request body is already complete in the read
//! buffer (the common case) the exchange is sequential: write, then relay. Otherwise the
//! request body and the response are relayed concurrently, so an upstream that answers early
//! or echoes while it reads never deadlocks against us.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, Splitable};
use protocols::http1::{
    self, BodyDecoder, BodyEvent, BodyFraming, Limits, MethodKind, RequestHead, ResponseHead,
    Version,
};

use crate::access_log::{Entry, ResponseFlags};
use crate::cluster::Upstream;
use crate::config::{ClusterId, HttpOptions, ListenerConfig, UpstreamProtocol};
use crate::filters::{BufferedBody, Chain, FilterState, Flow, LocalAnswer};
use crate::proxy::body::{self, PumpError, read_into};
use crate::proxy::fault::Fault;
use crate::proxy::head::{self, OutFraming, RequestRewrite, ResponseRewrite};
use crate::proxy::reply::LocalReply;
use crate::proxy::upstream::{self, Attempt};
use crate::proxy::{Downstream, tunnel};
use crate::router::{Action, Route, Routed};
use crate::worker::{ListenerLocal, Local, Worker, buffers, rng};

#[path = "exchange_h2.rs"]
mod h2_upstream;

/// The outcome of one exchange for the downstream connection.
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
        }
    }
}

/// Serve one request from `conn`. The caller has seen the connection become readable.
pub(crate) async fn handle(
    worker: &Worker,
    local: &Rc<Local>,
    li: usize,
    mut conn: Downstream,
) -> Next {
    let cfg = local.listener_config(li);
    let ll = &local.listeners[li];
    let opts = &cfg.http;
    let start = Instant::now();
    if conn.buf.capacity() == 0 {
        conn.buf = buffers::take();
    }
    let limits = Limits {
        max_request_line: opts.max_request_line_bytes,
        max_head: opts.max_request_headers_bytes,
        max_headers: opts.max_request_headers_count,
    };
    let header_deadline = start + opts.request_header_timeout;
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
        match read_into(&mut conn.stream, &mut conn.buf, Some(header_deadline)).await {
            Ok(0) => {
                if !conn.buf.is_empty() {
                    ll.http().downstream_rq_rx_reset.inc();
                }
                return Next::PeerGone;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let http = ll.http();
                if !partial {
                    // A connection that became readable but sent nothing: just close it.
                    return Next::Close;
                }
                http.downstream_rq_timeout.inc();
                return reject(&mut conn, ll, opts, 408, b"request header timeout\n").await;
            }
            Err(_) => return Next::PeerGone,
        }
    };

    let http = ll.http();
    http.downstream_rq_total.inc();
    http.downstream_rq_http1_total.inc();
    http.downstream_rq_active.inc();
    // Wall-clock time is only needed for the access log.
    let start_time = ll.access_log.as_ref().map(|_| SystemTime::now());
    let mut ex = Exchange {
        worker,
        local,
        cfg,
        ll,
        head,
        rec: Record::new(start),
        request_id: None,
        xfcc: None,
        route_name: "",
        peer: conn.peer,
        body_unread: false,
        chain: Chain::new(&cfg.http_filters, None),
        filter_state: FilterState::default(),
        buffered: None,
        continue_sent: false,
    };
    let next = ex.run(conn).await;
    http.downstream_rq_active.dec();
    if ex.rec.completed {
        http.downstream_rq_completed.inc();
    }
    http.downstream_cx_rx_bytes_total
        .add(ex.head.raw().len() as u64 + ex.rec.bytes_received);
    http.downstream_cx_tx_bytes_total
        .add(ex.rec.head_tx + ex.rec.bytes_sent);
    if ex.rec.status != 0 {
        count_status(ll.http(), ex.rec.status);
    } else {
        ll.http().downstream_rq_rx_reset.inc();
    }
    ll.rq_time.record(ex.rec.start.elapsed().as_micros() as u64);
    if let (Some(log), Some(start_time)) = (&ll.access_log, start_time) {
        ex.log(log, start_time);
    }
    next
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
    let _ = body::write_bytes(&mut conn.stream, out.freeze()).await;
    Next::Close
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

struct Exchange<'a> {
    worker: &'a Worker,
    local: &'a Rc<Local>,
    cfg: &'a ListenerConfig,
    ll: &'a ListenerLocal,
    head: RequestHead,
    rec: Record,
    /// Generated when the request had none.
    request_id: Option<[u8; 36]>,
    /// The client's verified certificate identity (mTLS), found once at routing: what routes
    /// match as `x-forwarded-client-cert` and what goes upstream in it.
    xfcc: Option<Rc<[u8]>>,
    route_name: &'a str,
    peer: SocketAddr,
    /// The request body was not read to its end (the response came first).
    body_unread: bool,
    /// The listener's HTTP filters, with the route once it is known.
    chain: Chain<'a>,
    filter_state: FilterState,
    /// The whole request body, when a filter had it collected before forwarding.
    buffered: Option<BufferedBody>,
    /// `100 Continue` went to the client already.
    continue_sent: bool,
}

/// Why collecting a request body ended the exchange.
enum Collect {
    /// A filter answers (413 over its limit).
    Answer(LocalAnswer),
    /// The body's framing is broken.
    Invalid,
    /// The client closed, reset or went quiet.
    Gone,
}

/// Where a relay stands, shared with the request body upload running beside it.
#[derive(Default)]
struct Progress {
    /// The response head went downstream (a failure can no longer be answered locally).
    head_sent: Cell<bool>,
    /// The request body is still being read: a response already complete when its head is
    /// written says `Connection: close` (its upstream did not wait for the body).
    body_pending: Cell<bool>,
}

/// How the upstream part of an exchange ended.
enum Relayed {
    /// Response complete. `upstream_reusable`: the upstream connection may serve another request.
    Done {
        upstream_reusable: bool,
        downstream_keep_alive: bool,
    },
    /// 101 Switching Protocols was relayed; both connections now carry the tunnel.
    Upgraded,
    /// Failed before any response byte went downstream: answer locally.
    Fault(Fault),
    /// Failed after the response started (or the client went away): close.
    Broken(ResponseFlags),
}

impl<'a> Exchange<'a> {
    fn opts(&self) -> &'a HttpOptions {
        &self.cfg.http
    }

    fn keep_alive_wanted(&self) -> bool {
        self.head.is_keep_alive() && !self.worker.drain.is_draining()
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

    async fn run(&mut self, conn: Downstream) -> Next {
        if self.has_unsupported_coding() {
            self.rec.flags |= ResponseFlags::DPE;
            let reply = LocalReply::new(
                501,
                b"transfer codings other than chunked are not supported\n",
            );
            return self.reply_local(conn, reply).await;
        }
        if self.head.is_connect() {
            return self
                .reply_local(conn, LocalReply::new(501, b"CONNECT is not supported\n"))
                .await;
        }
        if self.opts().generate_request_id && self.head.header(b"x-request-id").is_none() {
            let mut id = [0u8; 36];
            rng::uuid_v4(&mut id);
            self.request_id = Some(id);
        }
        let cfg: &'a ListenerConfig = self.cfg;
        self.xfcc = conn.stream.forwarded_client_cert(cfg.tls.as_ref());
        let routed = Routed {
            req: &self.head,
            xfcc: self.xfcc.as_deref(),
        };
        let Some(route) = cfg.routes.route(&routed) else {
            self.ll.http().no_route.inc();
            return self.reply_fault(conn, Fault::NoRoute).await;
        };
        self.route_name = &route.name;
        self.chain = Chain::new(&cfg.http_filters, Some(route));
        match self
            .chain
            .decode_headers(&self.head, &mut self.filter_state)
        {
            Flow::Continue => {}
            Flow::Respond(answer) => return self.reply_answer(conn, answer).await,
            // The router collects the body before it forwards (a local answer needs none).
            Flow::StopAndBuffer { .. } => {}
        }
        match &route.action {
            Action::DirectResponse { status, body } => {
                self.ll.http().rq_direct_response.inc();
                self.reply_local(conn, LocalReply::new(*status, body)).await
            }
            Action::Redirect(r) => {
                self.ll.http().rq_redirect.inc();
                let mut location = Vec::with_capacity(128);
                r.location(&self.head, self.opts().scheme(), &mut location);
                let mut reply = LocalReply::new(r.status, b"");
                reply.location = Some(&location);
                self.reply_local(conn, reply).await
            }
            Action::Cluster(id) => self.forward(conn, route, *id).await,
            Action::WeightedClusters(w) => {
                let id = w.pick(rng::next_u64() as u32);
                self.forward(conn, route, id).await
            }
        }
    }

    /// Send a locally generated response. The connection stays open only when no request body
    /// is left unread and the client wants keep-alive.
    async fn reply_local(&mut self, mut conn: Downstream, mut reply: LocalReply<'_>) -> Next {
        let body_pending = self.head.framing() != BodyFraming::None;
        let keep = self.keep_alive_wanted() && !body_pending;
        reply.close = !keep;
        reply.keep_alive_10 = keep && self.head.version() == Version::Http10;
        reply.head_only = self.head.is_head();
        reply.edits = self.chain.response_edits();
        let mut out = BytesMut::with_capacity(256 + reply.body.len());
        let body_len = reply.write(&mut out, self.opts());
        let head_len = (out.len() - body_len) as u64;
        self.rec.status = reply.status;
        match body::write_bytes(&mut conn.stream, out.freeze()).await {
            Ok(()) => {
                self.rec.bytes_sent = body_len as u64;
                self.rec.head_tx += head_len;
                self.rec.completed = true;
                if keep {
                    Next::KeepAlive(conn)
                } else if body_pending {
                    Next::Linger(conn)
                } else {
                    Next::Close
                }
            }
            Err(_) => {
                self.rec.flags |= ResponseFlags::DC;
                Next::PeerGone
            }
        }
    }

    /// Answer for a filter.
    async fn reply_answer(&mut self, conn: Downstream, answer: LocalAnswer) -> Next {
        if answer.status == 413 {
            self.ll.http().downstream_rq_too_large.inc();
        }
        self.reply_local(conn, LocalReply::new(answer.status, answer.body))
            .await
    }

    /// Tell the client to send its body (`Expect: 100-continue`), once; like Envoy and nginx
    /// ringway answers it itself and does not forward the expectation. Err: the client left.
    async fn send_continue(&mut self, conn: &mut Downstream) -> Result<(), ()> {
        let wanted = self.head.expects_continue()
            && self.head.framing() != BodyFraming::None
            && conn.buf.is_empty()
            && !self.continue_sent;
        if !wanted {
            return Ok(());
        }
        self.continue_sent = true;
        let go_on = bytes::Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
        if body::write_bytes(&mut conn.stream, go_on).await.is_err() {
            self.rec.flags |= ResponseFlags::DC;
            return Err(());
        }
        Ok(())
    }

    /// Read the whole request body into memory for a filter that asked for it (bounded by
    /// its limit). `Err`: the exchange is over (a local answer went out, or the client left).
    async fn collect_body(&mut self, conn: &mut Downstream) -> Result<BufferedBody, Collect> {
        if self.send_continue(conn).await.is_err() {
            return Err(Collect::Gone);
        }
        let mut decoder = BodyDecoder::new(self.head.framing());
        let mut data = BytesMut::new();
        let idle = self.opts().idle_timeout;
        loop {
            match decoder.decode(&mut conn.buf) {
                Err(_) => return Err(Collect::Invalid),
                Ok(BodyEvent::Data(d)) => {
                    self.rec.bytes_received += d.len() as u64;
                    if let Flow::Respond(a) =
                        self.chain.decode_data(d.len(), &mut self.filter_state)
                    {
                        return Err(Collect::Answer(a));
                    }
                    data.extend_from_slice(&d);
                }
                Ok(BodyEvent::Trailers(block)) => {
                    let mut fields = Vec::new();
                    crate::proxy::h2::convert::trailer_fields(&block, &mut fields);
                    let _ = decoder.decode(&mut conn.buf);
                    return Ok(BufferedBody::new(data.freeze(), Some(fields)));
                }
                Ok(BodyEvent::End) => return Ok(BufferedBody::new(data.freeze(), None)),
                Ok(BodyEvent::NeedMore) => {
                    let deadline = crate::worker::timer::coarse_now() + idle;
                    match read_into(&mut conn.stream, &mut conn.buf, Some(deadline)).await {
                        Ok(0) => {
                            if decoder.eof().is_err() {
                                return Err(Collect::Gone);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return Err(Collect::Gone),
                    }
                }
            }
        }
    }

    async fn reply_fault(&mut self, conn: Downstream, fault: Fault) -> Next {
        self.rec.flags |= fault.flag();
        let reply = LocalReply::new(fault.status(), fault.body());
        self.reply_local(conn, reply).await
    }

    /// Forward to a cluster: pick an endpoint, get a connection, relay.
    async fn forward(&mut self, mut conn: Downstream, route: &'a Route, id: ClusterId) -> Next {
        if self.filter_state.buffer_limit.is_some() {
            match self.collect_body(&mut conn).await {
                Ok(b) => self.buffered = Some(b),
                Err(Collect::Answer(a)) => {
                    self.body_unread = true;
                    return self.reply_answer(conn, a).await;
                }
                Err(Collect::Invalid) => {
                    self.rec.flags |= ResponseFlags::DPE;
                    let reply = LocalReply::new(400, b"invalid request body\n");
                    return self.reply_local(conn, reply).await;
                }
                Err(Collect::Gone) => {
                    self.rec.flags |= ResponseFlags::DC;
                    return Next::PeerGone;
                }
            }
        }
        let cluster = self.local.clusters[id].clone();
        let Some(ep) = cluster.pick() else {
            cluster.stats().upstream_cx_none_healthy.inc();
            return self.reply_fault(conn, Fault::NoHealthyUpstream).await;
        };
        let attempt = Attempt::begin(cluster, ep, self.rec.start);
        self.rec.upstream = Some(attempt.cluster.endpoints[ep].address);
        let next = match attempt.cluster.protocol {
            UpstreamProtocol::Http1 => self.forward_to(conn, route, &attempt).await,
            UpstreamProtocol::Http2 => self.forward_to_h2(conn, route, &attempt).await,
        };
        self.rec.upstream_time = Some(attempt.end(self.rec.status, self.rec.flags, self.rec.up_rx));
        next
    }

    async fn forward_to(
        &mut self,
        mut conn: Downstream,
        route: &'a Route,
        attempt: &Attempt,
    ) -> Next {
        let cluster = &attempt.cluster;
        let opts = self.opts();
        let req_framing = self.head.framing();
        let upgrade = self
            .head
            .upgrade()
            .filter(|_| req_framing == BodyFraming::None);
        let out_framing = match req_framing {
            BodyFraming::Chunked => OutFraming::Chunked,
            _ => OutFraming::AsIs,
        };
        // The upstream request: head plus whatever body is already buffered.
        let mut out = buffers::take();
        let request_id = self.request_id;
        head::write_request_xfcc(
            &mut out,
            &self.head,
            &RequestRewrite {
                route,
                opts,
                peer: conn.peer,
                framing: out_framing,
                upgrade,
                request_id: request_id.as_ref(),
                edits: self.chain.request_edits(),
            },
            self.xfcc.as_deref(),
        );
        // Answered by ringway so the client sends its body while we connect upstream.
        if self.send_continue(&mut conn).await.is_err() {
            return Next::Close;
        }
        let mut decoder = BodyDecoder::new(req_framing);
        let filled = match &self.buffered {
            Some(b) => {
                body::frame_whole(&mut out, b, out_framing);
                Ok(true)
            }
            None => body::fill(
                &mut decoder,
                &mut conn.buf,
                &mut out,
                out_framing,
                &mut self.rec.bytes_received,
            ),
        };
        let Ok(body_complete) = filled else {
            self.rec.flags |= ResponseFlags::DPE;
            let reply = LocalReply::new(400, b"invalid request body\n");
            return self.reply_local(conn, reply).await;
        };
        let request_bytes = out.split().freeze();
        buffers::give_back(out);
        let timeout = route.timeout;

        // A request that is wholly in memory can be replayed once on a fresh connection when
        // a pooled connection turns out to have been closed by the upstream while idle.
        let mut tries = 0;
        loop {
            tries += 1;
            let origin = cluster.origin(conn.peer, || conn.stream.local_addr().ok());
            let mut up = match attempt.checkout(origin).await {
                Ok(up) => up,
                Err(fault) => return self.reply_fault(conn, fault).await,
            };
            let mut upbuf = BytesMut::new();
            let up_stats = cluster.stats();
            up_stats
                .upstream_cx_tx_bytes_total
                .add(request_bytes.len() as u64);
            if body_complete {
                let written = body::write_bytes(&mut up.stream, request_bytes.clone()).await;
                let relayed = match written {
                    Ok(()) => {
                        // The route timeout counts from the start of the request.
                        let deadline = timeout.map(|t| self.rec.start + t);
                        self.relay(
                            &mut up.stream,
                            &mut upbuf,
                            &mut conn.stream,
                            deadline,
                            &Progress::default(),
                        )
                        .await
                    }
                    Err(_) => Relayed::Fault(Fault::UpstreamReset),
                };
                if matches!(relayed, Relayed::Fault(Fault::UpstreamReset))
                    && up.reused
                    && tries == 1
                {
                    cluster.stats().upstream_rq_retry.inc();
                    continue;
                }
                return self.finish(conn, up, upbuf, relayed).await;
            }
            return self
                .forward_streaming(conn, up, upbuf, request_bytes, decoder, out_framing, route)
                .await;
        }
    }

    /// The request body is still arriving: send it and relay the response at the same time.
    #[allow(clippy::too_many_arguments)] // reason: the pieces of one exchange, moved in once
    async fn forward_streaming(
        &mut self,
        conn: Downstream,
        up: Upstream,
        mut upbuf: BytesMut,
        first: bytes::Bytes,
        mut decoder: BodyDecoder,
        framing: OutFraming,
        route: &'a Route,
    ) -> Next {
        let Downstream {
            stream,
            mut buf,
            peer,
        } = conn;
        let (upstream, lease) = up.into_parts();
        let (mut dr, mut dw) = stream.into_split();
        let (mut ur, mut uw) = upstream.into_split();
        let idle = self.opts().idle_timeout;
        let deadline = route.timeout.map(|t| self.rec.start + t);
        let mut received = 0u64;
        let progress = Progress::default();
        progress.body_pending.set(true);
        let (body_result, relayed) = {
            let send_body = async {
                let sent = async {
                    body::write_bytes(&mut uw, first)
                        .await
                        .map_err(|_| PumpError::Sink)?;
                    let mut out = BytesMut::new();
                    body::pump(
                        &mut dr,
                        &mut buf,
                        &mut decoder,
                        &mut uw,
                        &mut out,
                        framing,
                        idle,
                        &mut received,
                    )
                    .await
                }
                .await;
                // Only a body read to its end frees the connection for another request.
                progress.body_pending.set(sent.is_err());
                sent
            };
            let relay = self.relay(&mut ur, &mut upbuf, &mut dw, deadline, &progress);
            let mut send_body = std::pin::pin!(send_body);
            let mut relay = std::pin::pin!(relay);
            let mut body_result = None;
            let relayed = loop {
                monoio::select! {
                    r = &mut send_body, if body_result.is_none() => {
                        let client_gone = matches!(r, Err(PumpError::Source(_) | PumpError::Framing));
                        body_result = Some(r);
                        if client_gone {
                            break Relayed::Broken(ResponseFlags::DC);
                        }
                    }
                    r = &mut relay => break r,
                }
            };
            (body_result, relayed)
        };
        self.rec.bytes_received += received;
        let body_done = matches!(body_result, Some(Ok(())));
        self.body_unread = !body_done;
        let (Ok(stream), Ok(upstream)) = (dr.reunite(dw), ur.reunite(uw)) else {
            return Next::Close;
        };
        let conn = Downstream { stream, buf, peer };
        let up = Upstream::from_parts(upstream, lease);
        let relayed = match relayed {
            Relayed::Done {
                upstream_reusable,
                downstream_keep_alive,
            } => Relayed::Done {
                upstream_reusable: upstream_reusable && body_done,
                downstream_keep_alive: downstream_keep_alive && body_done,
            },
            other => other,
        };
        let bad_body = matches!(body_result, Some(Err(PumpError::Framing)));
        if bad_body && !progress.head_sent.get() {
            // The request body broke its framing before any response went out: 400 and close
            // (a request with a body never keeps the connection after a local reply).
            drop(up);
            self.rec.flags |= ResponseFlags::DPE;
            let reply = LocalReply::new(400, b"invalid request body\n");
            return self.reply_local(conn, reply).await;
        }
        if bad_body {
            self.rec.flags |= ResponseFlags::DPE;
        }
        // A `Fault` means nothing went downstream yet: `finish` answers it locally (and the
        // connection then closes, since the request body is not consumed).
        self.finish(conn, up, upbuf, relayed).await
    }

    /// Settle both connections after the upstream part ended.
    async fn finish(
        &mut self,
        conn: Downstream,
        up: Upstream,
        upbuf: BytesMut,
        relayed: Relayed,
    ) -> Next {
        match relayed {
            Relayed::Done {
                upstream_reusable,
                downstream_keep_alive,
            } => {
                self.rec.completed = true;
                up.cluster().stats().upstream_rq_completed.inc();
                if upstream_reusable && upbuf.is_empty() {
                    up.cluster().clone().release(up);
                }
                buffers::give_back(upbuf);
                if downstream_keep_alive {
                    Next::KeepAlive(conn)
                } else if self.body_unread {
                    Next::Linger(conn)
                } else {
                    Next::Close
                }
            }
            Relayed::Upgraded => {
                let cluster = up.cluster().clone();
                let stats = self.ll.http();
                stats.downstream_cx_upgrades_total.inc();
                stats.downstream_cx_upgrades_active.inc();
                let idle = self.opts().idle_timeout;
                let Downstream { stream, buf, .. } = conn;
                let (upstream, lease) = up.into_parts();
                // Boxed: upgrades are rare, and the tunnel's future would otherwise size
                // every request's.
                let (rx, tx) = Box::pin(tunnel::run(stream, buf, upstream, upbuf, idle)).await;
                self.rec.bytes_received += rx;
                self.rec.bytes_sent += tx;
                drop(lease);
                drop(cluster);
                stats.downstream_cx_upgrades_active.dec();
                self.rec.completed = true;
                Next::Close
            }
            Relayed::Fault(fault) => {
                let mut up = up;
                upstream::count_failure(&mut up, fault.flag());
                drop(up);
                self.reply_fault(conn, fault).await
            }
            Relayed::Broken(flags) => {
                let mut up = up;
                upstream::count_failure(&mut up, flags);
                self.rec.flags |= flags;
                if flags.contains(ResponseFlags::DC) {
                    up.cluster().stats().upstream_rq_tx_reset.inc();
                    return Next::PeerGone;
                }
                // The response had started: the client sees it cut short.
                self.ll.http().downstream_rq_tx_reset.inc();
                Next::Close
            }
        }
    }

    /// Read the upstream response and relay it downstream: interim 1xx, the head, the body.
    async fn relay<R: AsyncReadRent, W: AsyncWriteRent>(
        &mut self,
        up: &mut R,
        upbuf: &mut BytesMut,
        down: &mut W,
        deadline: Option<Instant>,
        progress: &Progress,
    ) -> Relayed {
        if upbuf.capacity() == 0 {
            *upbuf = buffers::take();
        }
        let method = if self.head.is_head() {
            MethodKind::Head
        } else {
            MethodKind::Other
        };
        let mut parser = http1::ResponseParser::new();
        let resp: ResponseHead = loop {
            match upstream::read_response_head(up, upbuf, &mut parser, method, deadline).await {
                Ok(r) if r.status() == 101 => {
                    if self.head.upgrade().is_none() {
                        return Relayed::Fault(Fault::UpstreamProtocol);
                    }
                    break r;
                }
                Ok(r) if r.is_informational() => {
                    // 100 Continue was answered by us; other interim responses pass through.
                    if r.status() != 100 && body::write_bytes(down, r.raw().clone()).await.is_err()
                    {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                }
                Ok(r) => break r,
                Err(fault) => return Relayed::Fault(fault),
            }
        };
        let status = resp.status();
        self.rec.status = status;
        let upgrade = status == 101;
        let down_10 = self.head.version() == Version::Http10;
        let resp_framing = resp.framing();
        let out_framing = match resp_framing {
            BodyFraming::Chunked if !down_10 => OutFraming::Chunked,
            BodyFraming::Close if !down_10 => OutFraming::Chunked,
            BodyFraming::Close | BodyFraming::Chunked => OutFraming::Close,
            BodyFraming::None | BodyFraming::Length(_) => OutFraming::AsIs,
        };
        // An upstream that answered in full while the request body is still arriving did not
        // wait for it: the rest may never be read, so the client is told this is the last
        // response. (A streaming answer, such as an echo, keeps the connection.)
        let answered_early = progress.body_pending.get()
            && match resp_framing {
                BodyFraming::None => true,
                BodyFraming::Length(n) => upbuf.len() as u64 >= n,
                BodyFraming::Chunked | BodyFraming::Close => false,
            };
        let keep = self.keep_alive_wanted()
            && out_framing != OutFraming::Close
            && !upgrade
            && !answered_early;
        let upstream_reusable =
            resp.is_keep_alive() && resp_framing != BodyFraming::Close && !upgrade;
        let mut out = BytesMut::with_capacity(upbuf.len().min(64 * 1024) + 512);
        head::write_response(
            &mut out,
            &resp,
            &ResponseRewrite {
                edits: self.chain.response_edits(),
                opts: self.opts(),
                framing: out_framing,
                close: !keep,
                keep_alive_10: keep && down_10,
                upgrade,
            },
        );
        progress.head_sent.set(true);
        self.rec.head_tx += out.len() as u64;
        if upgrade {
            return match body::flush_out(down, &mut out).await {
                Ok(()) => Relayed::Upgraded,
                Err(_) => Relayed::Broken(ResponseFlags::DC),
            };
        }
        let mut decoder = BodyDecoder::new(resp_framing);
        let idle = self.opts().idle_timeout;
        let mut sent = 0;
        let result = body::pump(
            up,
            upbuf,
            &mut decoder,
            down,
            &mut out,
            out_framing,
            idle,
            &mut sent,
        )
        .await;
        self.rec.bytes_sent += sent;
        self.rec.up_rx += resp.raw().len() as u64 + sent;
        match result {
            Ok(()) => Relayed::Done {
                upstream_reusable,
                downstream_keep_alive: keep,
            },
            Err(PumpError::Sink) => Relayed::Broken(ResponseFlags::DC),
            Err(PumpError::Source(std::io::ErrorKind::TimedOut)) => {
                Relayed::Broken(ResponseFlags::UT)
            }
            Err(PumpError::Source(_)) => Relayed::Broken(ResponseFlags::UC),
            Err(PumpError::Framing) => Relayed::Broken(ResponseFlags::UPE),
        }
    }

    fn log(&self, writer: &crate::access_log::AccessLogWriter, start: SystemTime) {
        let h = &self.head;
        writer.log(&Entry {
            start,
            method: h.method(),
            path: h.target(),
            protocol: match h.version() {
                Version::Http10 => "HTTP/1.0",
                Version::Http11 => "HTTP/1.1",
            },
            status: self.rec.status,
            flags: self.rec.flags,
            bytes_received: self.rec.bytes_received,
            bytes_sent: self.rec.bytes_sent,
            duration: self.rec.start.elapsed(),
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
        });
    }
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
