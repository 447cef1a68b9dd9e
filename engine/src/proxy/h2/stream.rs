//! One HTTP/2 stream: a request routed like any other and answered locally or by an HTTP/1
//! upstream, with the request body and the response relayed at the same time under HTTP/2
//! flow control (a byte of request body is credited back to the client only once it was
//! written upstream).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Splitable};
use protocols::grpc::Code;
use protocols::http1::{
    self, BodyDecoder, BodyEvent, BodyFraming, Limits, MethodKind, RequestHead,
};
use protocols::http2::frame::Reason;

use super::client::{UpstreamStream, open_request};
use super::convert::{self, Fields};
use super::session::{Gone, Recv, Session, StreamSlot};
use crate::access_log::{Entry, ResponseFlags};
use crate::cluster::Upstream;
use crate::config::{ClusterId, HttpOptions, ListenerConfig, UpstreamProtocol};
use crate::filters::{BufferedBody, Chain, FilterState, Flow, LocalAnswer};
use crate::proxy::body::{self, PumpError, read_into};
use crate::proxy::exchange::{Record, count_status};
use crate::proxy::fault::Fault;
use crate::proxy::grpc::{self, GrpcCall};
use crate::proxy::head::{self, OutFraming, RequestRewrite};
use crate::proxy::reply::LocalReply;
use crate::proxy::upstream::{self, Attempt};
use crate::router::{Action, Route, Routed};
use crate::server::ListenerShared;
use crate::stats::HttpStats;
use crate::worker::{Local, Worker, buffers, rng, timer};

/// What the stream tasks of one connection share besides [`Shared`].
pub(super) struct ConnCtx {
    pub(super) worker: Rc<Worker>,
    pub(super) li: usize,
    pub(super) peer: SocketAddr,
    /// `x-forwarded-client-cert` of the client's verified certificate (mTLS), made once.
    pub(super) xfcc: Option<Rc<[u8]>>,
    /// The address the client connected to (for PROXY headers sent upstream).
    pub(super) local_addr: Option<SocketAddr>,
    pub(super) sess: Rc<Session>,
    pub(super) listener: Arc<ListenerShared>,
}

impl ConnCtx {
    pub(super) fn http(&self) -> &HttpStats {
        self.listener.http.stats.core(self.worker.core)
    }
}

/// How the upstream part ended (as in the HTTP/1 exchange).
enum Relayed {
    Done {
        upstream_reusable: bool,
    },
    /// Failed before any response went to the client: answer locally.
    Fault(Fault),
    /// Failed after the response started, or the client went away.
    Broken(ResponseFlags),
}

/// Serve the request that opened `slot`'s stream, then settle the stream and account for it.
pub(super) async fn run(ctx: Rc<ConnCtx>, slot: Rc<StreamSlot>, fields: Fields, end_stream: bool) {
    let local = ctx.worker.local();
    let http = ctx.http();
    http.downstream_rq_total.inc();
    http.downstream_rq_http2_total.inc();
    http.downstream_rq_active.inc();
    let ll = &local.listeners[ctx.li];
    let start_time = ll.access_log.as_ref().map(|_| SystemTime::now());
    let mut ex = Exchange {
        ctx: &ctx,
        local: &local,
        cfg: local.listener_config(ctx.li),
        slot: &slot,
        head: None,
        rec: Record::new(Instant::now()),
        request_id: None,
        route_name: "",
        grpc: None,
        grpc_status: None,
        chain: Chain::new(&local.listener_config(ctx.li).http_filters, None),
        filter_state: FilterState::default(),
        buffered: None,
    };
    let cancelled = monoio::select! {
        () = ex.run(&fields, end_stream) => false,
        () = slot.cancel.wait() => true,
    };
    if cancelled {
        ex.rec.flags |= ResponseFlags::DC;
    }

    http.downstream_rq_active.dec();
    if ex.rec.completed {
        http.downstream_rq_completed.inc();
    }
    http.downstream_cx_rx_bytes_total.add(ex.rec.bytes_received);
    http.downstream_cx_tx_bytes_total.add(ex.rec.bytes_sent);
    if ex.rec.status != 0 && !cancelled {
        count_status(http, ex.rec.status);
    } else {
        http.downstream_rq_rx_reset.inc();
    }
    if ex.grpc.is_some() {
        grpc::count(http, ex.grpc_status.filter(|_| !cancelled));
    }
    ll.rq_time.record(ex.rec.start.elapsed().as_micros() as u64);
    if let (Some(log), Some(start_time)) = (&ll.access_log, start_time) {
        ex.log(log, start_time, &fields);
    }
    // An unfinished response is an error; an unfinished request after a complete response
    // is not (RFC 9113 8.1).
    ctx.sess
        .settle(&slot, Reason::INTERNAL_ERROR, Reason::NO_ERROR);
}

struct Exchange<'a> {
    ctx: &'a ConnCtx,
    local: &'a Rc<Local>,
    cfg: &'a ListenerConfig,
    slot: &'a StreamSlot,
    /// The request as an HTTP/1.1 head (routing, the upstream request, the log).
    head: Option<RequestHead>,
    rec: Record,
    request_id: Option<[u8; 36]>,
    route_name: &'a str,
    /// Set for gRPC requests.
    grpc: Option<GrpcCall>,
    /// The gRPC call's final status, once known.
    grpc_status: Option<Code>,
    /// The listener's HTTP filters, with the route once it is known.
    chain: Chain<'a>,
    filter_state: FilterState,
    /// The whole request body, when a filter had it collected before forwarding.
    buffered: Option<BufferedBody>,
}

impl<'a> Exchange<'a> {
    fn opts(&self) -> &'a HttpOptions {
        &self.cfg.http
    }

    async fn run(&mut self, fields: &Fields, end_stream: bool) {
        let opts = self.opts();
        let limits = Limits {
            max_request_line: opts.max_request_line_bytes,
            max_head: opts.max_request_headers_bytes,
            max_headers: opts.max_request_headers_count,
        };
        let head = match convert::request_head(fields, end_stream, &limits) {
            Ok(h) => h,
            Err(e) => {
                let http = self.ctx.http();
                http.downstream_rq_bad.inc();
                if matches!(e.status(), 414 | 431) {
                    http.downstream_rq_too_large.inc();
                }
                self.rec.flags |= ResponseFlags::DPE;
                let text = format!("{e}\n");
                return self.reply_error(e.status(), text.as_bytes(), None).await;
            }
        };
        self.grpc = GrpcCall::of(&head);
        let head = self.head.insert(head);
        if head.is_connect() {
            return self
                .reply_error(501, b"CONNECT is not supported\n", None)
                .await;
        }
        if opts.generate_request_id && head.header(b"x-request-id").is_none() {
            let mut id = [0u8; 36];
            rng::uuid_v4(&mut id);
            self.request_id = Some(id);
        }
        let cfg: &'a ListenerConfig = self.cfg;
        let routed = Routed {
            req: head,
            xfcc: self.ctx.xfcc.as_deref(),
        };
        let Some(route) = cfg.routes.route(&routed) else {
            self.ctx.http().no_route.inc();
            return self.reply_fault(Fault::NoRoute).await;
        };
        self.route_name = &route.name;
        self.chain = Chain::new(&cfg.http_filters, Some(route));
        match self.chain.decode_headers(head, &mut self.filter_state) {
            Flow::Continue => {}
            Flow::Respond(answer) => return self.reply_answer(answer).await,
            // The router collects the body before it forwards (a local answer needs none).
            Flow::StopAndBuffer { .. } => {}
        }
        match &route.action {
            Action::DirectResponse { status, body } => {
                self.ctx.http().rq_direct_response.inc();
                self.reply_local(LocalReply::new(*status, body)).await;
            }
            Action::Redirect(r) => {
                self.ctx.http().rq_redirect.inc();
                let mut location = Vec::with_capacity(128);
                r.location(head, opts.scheme(), &mut location);
                let mut reply = LocalReply::new(r.status, b"");
                reply.location = Some(&location);
                self.reply_local(reply).await;
            }
            Action::Cluster(id) => self.forward(route, *id).await,
            Action::WeightedClusters(w) => {
                let id = w.pick(rng::next_u64() as u32);
                self.forward(route, id).await;
            }
        }
    }

    fn is_head(&self) -> bool {
        self.head.as_ref().is_some_and(RequestHead::is_head)
    }

    /// Send a locally generated response.
    async fn reply_local(&mut self, mut reply: LocalReply<'_>) {
        reply.edits = self.chain.response_edits();
        let mut fields = Fields::new();
        convert::local_reply_fields(&reply, self.opts(), &mut fields);
        let no_body = reply.body.is_empty() || self.is_head();
        self.rec.status = reply.status;
        if self.send_headers(&fields, no_body).is_err() {
            return;
        }
        if !no_body {
            let body = Bytes::copy_from_slice(reply.body);
            if self.send_data(body, true).await.is_err() {
                return;
            }
            self.rec.bytes_sent = reply.body.len() as u64;
        }
        self.rec.completed = true;
    }

    async fn reply_fault(&mut self, fault: Fault) {
        self.rec.flags |= fault.flag();
        self.reply_error(fault.status(), fault.body(), Some(fault))
            .await;
    }

    /// Answer for a filter.
    async fn reply_answer(&mut self, answer: LocalAnswer) {
        if answer.status == 413 {
            self.ctx.http().downstream_rq_too_large.inc();
        }
        self.reply_error(answer.status, answer.body, None).await;
    }

    /// Read the whole request body into memory for a filter that asked for it (bounded by its
    /// limit). The client is credited for each DATA frame as it is collected, so a body
    /// larger than the stream window still arrives. `None`: the exchange is over.
    async fn collect_body(&mut self) -> Option<BufferedBody> {
        let idle = self.opts().idle_timeout;
        let mut data = BytesMut::new();
        loop {
            match self.slot.recv(idle).await {
                Recv::Data(d) => {
                    let n = d.len();
                    self.rec.bytes_received += n as u64;
                    if let Flow::Respond(a) = self.chain.decode_data(n, &mut self.filter_state) {
                        self.reply_answer(a).await;
                        return None;
                    }
                    data.extend_from_slice(&d);
                    self.slot.release(&self.ctx.sess, n);
                }
                Recv::Trailers(t) => return Some(BufferedBody::new(data.freeze(), Some(t))),
                Recv::End => return Some(BufferedBody::new(data.freeze(), None)),
                Recv::Head(..) | Recv::Gone => {
                    self.rec.flags |= ResponseFlags::DC;
                    return None;
                }
            }
        }
    }

    /// Answer an error ringway found itself: as an HTTP error, or for a gRPC request as a
    /// trailers-only gRPC status (HTTP 200) a gRPC client understands.
    async fn reply_error(&mut self, status: u16, text: &[u8], fault: Option<Fault>) {
        if self.grpc.is_some() {
            let code = grpc::code_for(status, fault);
            let mut fields = Fields::new();
            grpc::error_fields(code, text, &mut fields);
            self.rec.status = 200;
            self.grpc_status = Some(code);
            if self.send_headers(&fields, true).is_ok() {
                self.rec.completed = true;
            }
            return;
        }
        self.reply_local(LocalReply::new(status, text)).await;
    }

    /// When the wait for the response head ends: the route's timeout, or the gRPC client's
    /// deadline if that is earlier.
    fn response_deadline(&self, route: &Route) -> Option<Instant> {
        let by_route = route.timeout.map(|t| self.rec.start + t);
        match &self.grpc {
            Some(call) => call.deadline(self.rec.start, by_route),
            None => by_route,
        }
    }

    fn send_headers(&self, fields: &Fields, end_stream: bool) -> Result<(), Gone> {
        self.slot.send_headers(&self.ctx.sess, fields, end_stream)
    }

    async fn send_data(&self, data: Bytes, end_stream: bool) -> Result<(), Gone> {
        let idle = self.opts().idle_timeout;
        self.slot
            .send_data(&self.ctx.sess, data, end_stream, idle)
            .await
    }

    /// Forward to a cluster: pick an endpoint, get a connection, relay.
    async fn forward(&mut self, route: &'a Route, id: ClusterId) {
        if self.filter_state.buffer_limit.is_some() {
            match self.collect_body().await {
                Some(b) => self.buffered = Some(b),
                None => return,
            }
        }
        let cluster = self.local.clusters[id].clone();
        let Some(ep) = cluster.pick() else {
            cluster.stats().upstream_cx_none_healthy.inc();
            return self.reply_fault(Fault::NoHealthyUpstream).await;
        };
        let attempt = Attempt::begin(cluster, ep, self.rec.start);
        self.rec.upstream = Some(attempt.cluster.endpoints[ep].address);
        match attempt.cluster.protocol {
            UpstreamProtocol::Http1 => self.forward_to(route, &attempt).await,
            UpstreamProtocol::Http2 => self.forward_h2(route, &attempt).await,
        }
        self.rec.upstream_time = Some(attempt.end(self.rec.status, self.rec.flags, self.rec.up_rx));
    }

    async fn forward_to(&mut self, route: &'a Route, attempt: &Attempt) {
        let Some(head) = &self.head else { return };
        let framing = head.framing();
        let out_framing = match framing {
            BodyFraming::Chunked => OutFraming::Chunked,
            _ => OutFraming::AsIs,
        };
        let mut out = buffers::take();
        head::write_request_xfcc(
            &mut out,
            head,
            &RequestRewrite {
                route,
                opts: self.opts(),
                peer: self.ctx.peer,
                framing: out_framing,
                upgrade: None,
                request_id: self.request_id.as_ref(),
                edits: self.chain.request_edits(),
            },
            self.ctx.xfcc.as_deref(),
        );
        let request_head = out.split().freeze();
        buffers::give_back(out);
        let has_body = framing != BodyFraming::None;
        let deadline = self.response_deadline(route);
        let cluster = &attempt.cluster;
        // A body held in memory can be sent again, like a request without one.
        let buffered = self.buffered.take();
        let replayable = !has_body || buffered.is_some();
        let mut tries = 0;
        loop {
            tries += 1;
            let origin = cluster.origin(self.ctx.peer, || self.ctx.local_addr);
            let up = match attempt.checkout(origin).await {
                Ok(up) => up,
                Err(fault) => return self.reply_fault(fault).await,
            };
            cluster
                .stats()
                .upstream_cx_tx_bytes_total
                .add(request_head.len() as u64);
            let reused = up.reused;
            let (upstream, lease) = up.into_parts();
            let (mut ur, mut uw) = upstream.into_split();
            let mut upbuf = BytesMut::new();
            let mut head_sent = false;
            let mut sent_up = 0u64;
            let (upload_done, relayed) = {
                let upload = upload(
                    self.ctx,
                    self.slot,
                    self.opts().idle_timeout,
                    &mut uw,
                    request_head.clone(),
                    out_framing,
                    has_body,
                    buffered.as_ref(),
                );
                let relay = self.relay(&mut ur, &mut upbuf, deadline, &mut head_sent);
                let mut upload = std::pin::pin!(upload);
                let mut relay = std::pin::pin!(relay);
                let mut upload_result = None;
                let relayed = loop {
                    monoio::select! {
                        r = &mut upload, if upload_result.is_none() => {
                            // A client that went away ends it; an upstream that stopped
                            // reading may still be answering.
                            let client_gone = matches!(r, Err(PumpError::Source(_)));
                            upload_result = Some(r);
                            if client_gone {
                                break Relayed::Broken(ResponseFlags::DC);
                            }
                        }
                        r = &mut relay => break r,
                    }
                };
                (upload_result, relayed)
            };
            let upload_done = match upload_done {
                Some(Ok(n)) => {
                    sent_up = n;
                    true
                }
                _ => false,
            };
            self.rec.bytes_received += sent_up;
            cluster.stats().upstream_cx_tx_bytes_total.add(sent_up);
            let Ok(stream) = ur.reunite(uw) else { return };
            let mut up = Upstream::from_parts(stream, lease);
            match relayed {
                Relayed::Done { upstream_reusable } => {
                    self.rec.completed = true;
                    cluster.stats().upstream_rq_completed.inc();
                    if upstream_reusable && upload_done && upbuf.is_empty() {
                        cluster.clone().release(up);
                    }
                    buffers::give_back(upbuf);
                    return;
                }
                Relayed::Fault(Fault::UpstreamReset) if reused && tries == 1 && replayable => {
                    // A pooled connection the upstream closed while idle: one more try.
                    cluster.stats().upstream_rq_retry.inc();
                }
                Relayed::Fault(fault) => {
                    upstream::count_failure(&mut up, fault.flag());
                    drop(up);
                    return self.reply_fault(fault).await;
                }
                Relayed::Broken(flags) => {
                    upstream::count_failure(&mut up, flags);
                    self.rec.flags |= flags;
                    if head_sent {
                        self.ctx.http().downstream_rq_tx_reset.inc();
                    } else if !flags.contains(ResponseFlags::DC) {
                        self.rec.flags |= ResponseFlags::UC;
                        return self.reply_fault(Fault::UpstreamReset).await;
                    }
                    return;
                }
            }
        }
    }

    /// Forward over an HTTP/2 upstream connection: the request body and the response are
    /// relayed stream to stream, each direction under both connections' flow control.
    async fn forward_h2(&mut self, route: &'a Route, attempt: &Attempt) {
        let Some(head) = &self.head else { return };
        let has_body = head.framing() != BodyFraming::None;
        // The same rewrites as for an HTTP/1 upstream, read back as fields.
        let rw = RequestRewrite {
            route,
            opts: self.opts(),
            peer: self.ctx.peer,
            framing: OutFraming::AsIs,
            upgrade: None,
            request_id: self.request_id.as_ref(),
            edits: self.chain.request_edits(),
        };
        let Some(up_head) = head::rewrite_request_xfcc(head, &rw, self.ctx.xfcc.as_deref()) else {
            return self.reply_fault(Fault::UpstreamProtocol).await;
        };
        let cluster = &attempt.cluster;
        cluster
            .stats()
            .upstream_cx_tx_bytes_total
            .add(up_head.raw().len() as u64);
        let (conn, opened) = open_request(cluster, attempt.endpoint, &up_head, !has_body);
        let Ok(up) = opened else {
            return self.reply_fault(Fault::UpstreamReset).await;
        };
        let deadline = self.response_deadline(route);
        let idle = self.opts().idle_timeout;
        let buffered = self.buffered.take();
        let mut head_sent = false;
        let mut received = 0;
        let relayed = {
            let upload = upload_h2(self.ctx, self.slot, &up, idle, has_body, buffered.as_ref());
            let relay = self.relay_h2(&up, deadline, &mut head_sent);
            let mut upload = std::pin::pin!(upload);
            let mut relay = std::pin::pin!(relay);
            let mut uploaded = !has_body;
            loop {
                monoio::select! {
                    r = &mut upload, if !uploaded => {
                        uploaded = true;
                        match r {
                            Ok(n) => received = n,
                            Err(PumpError::Source(_)) => break Relayed::Broken(ResponseFlags::DC),
                            // The upstream stopped taking the body: its answer may follow.
                            Err(_) => {}
                        }
                    }
                    r = &mut relay => break r,
                }
            }
        };
        drop(up);
        self.rec.bytes_received += received;
        match relayed {
            Relayed::Done { .. } => {
                self.rec.completed = true;
                cluster.stats().upstream_rq_completed.inc();
            }
            Relayed::Fault(fault) => {
                let fault = match conn.connect_error() {
                    Some(e) => attempt.connect_fault(e),
                    None => {
                        cluster.stats().upstream_rq_rx_reset.inc();
                        fault
                    }
                };
                self.reply_fault(fault).await;
            }
            Relayed::Broken(flags) => {
                self.rec.flags |= flags;
                if flags.contains(ResponseFlags::UT) {
                    cluster.stats().upstream_rq_timeout.inc();
                }
                if head_sent {
                    self.ctx.http().downstream_rq_tx_reset.inc();
                }
            }
        }
    }

    /// Relay the response of an upstream HTTP/2 stream: head (after any 1xx), data, trailers.
    async fn relay_h2(
        &mut self,
        up: &UpstreamStream,
        deadline: Option<Instant>,
        head_sent: &mut bool,
    ) -> Relayed {
        let idle = self.opts().idle_timeout;
        let (fields, end) = match up.response_head(idle, deadline).await {
            Ok(head) => head,
            Err(fault) => return Relayed::Fault(fault),
        };
        self.rec.status = convert::status_of(&fields);
        if end {
            // Trailers-only: the status is in the head.
            self.grpc_status = grpc::status_in(&fields);
        }
        let mut out = Fields::new();
        convert::upstream_response_fields(
            fields,
            self.chain.response_edits(),
            self.opts(),
            &mut out,
        );
        if self.send_headers(&out, end).is_err() {
            return Relayed::Broken(ResponseFlags::DC);
        }
        *head_sent = true;
        if end {
            return Relayed::Done {
                upstream_reusable: true,
            };
        }
        loop {
            match up.slot.recv(idle).await {
                Recv::Data(d) => {
                    let n = d.len();
                    if self.send_data(d, false).await.is_err() {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                    // Passed on downstream: the upstream may send this much more.
                    up.slot.release(&up.sess, n);
                    self.rec.bytes_sent += n as u64;
                    self.rec.up_rx += n as u64;
                }
                Recv::Trailers(t) => {
                    self.grpc_status = grpc::status_in(&t);
                    if self.slot.send_trailers(&self.ctx.sess, &t).is_err() {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                    return Relayed::Done {
                        upstream_reusable: true,
                    };
                }
                Recv::End => {
                    if self.send_data(Bytes::new(), true).await.is_err() {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                    return Relayed::Done {
                        upstream_reusable: true,
                    };
                }
                Recv::Head(..) => return Relayed::Broken(ResponseFlags::UPE),
                Recv::Gone if self.slot.is_gone() => return Relayed::Broken(ResponseFlags::DC),
                Recv::Gone => return Relayed::Broken(ResponseFlags::UC),
            }
        }
    }

    /// Read the upstream's HTTP/1 response and send it on the stream: head, body, trailers.
    async fn relay<R: AsyncReadRent>(
        &mut self,
        ur: &mut R,
        upbuf: &mut BytesMut,
        deadline: Option<Instant>,
        head_sent: &mut bool,
    ) -> Relayed {
        if upbuf.capacity() == 0 {
            *upbuf = buffers::take();
        }
        let method = if self.is_head() {
            MethodKind::Head
        } else {
            MethodKind::Other
        };
        let mut parser = http1::ResponseParser::new();
        let resp = loop {
            match upstream::read_response_head(ur, upbuf, &mut parser, method, deadline).await {
                // No Upgrade is ever sent upstream for an HTTP/2 request.
                Ok(r) if r.status() == 101 => return Relayed::Fault(Fault::UpstreamProtocol),
                // Interim responses are not relayed over HTTP/2 yet.
                Ok(r) if r.is_informational() => {}
                Ok(r) => break r,
                Err(fault) => return Relayed::Fault(fault),
            }
        };
        self.rec.status = resp.status();
        self.rec.up_rx += resp.raw().len() as u64;
        let resp_framing = resp.framing();
        let upstream_reusable = resp.is_keep_alive() && resp_framing != BodyFraming::Close;
        let no_body = matches!(resp_framing, BodyFraming::None | BodyFraming::Length(0));
        let mut fields = Fields::new();
        convert::response_fields(&resp, self.chain.response_edits(), self.opts(), &mut fields);
        if self.send_headers(&fields, no_body).is_err() {
            return Relayed::Broken(ResponseFlags::DC);
        }
        *head_sent = true;
        if no_body {
            return Relayed::Done { upstream_reusable };
        }
        let mut decoder = BodyDecoder::new(resp_framing);
        let idle = self.opts().idle_timeout;
        loop {
            let Ok(event) = decoder.decode(upbuf) else {
                return Relayed::Broken(ResponseFlags::UPE);
            };
            match event {
                BodyEvent::Data(d) => {
                    let n = d.len() as u64;
                    if self.send_data(d, false).await.is_err() {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                    self.rec.bytes_sent += n;
                    self.rec.up_rx += n;
                }
                BodyEvent::Trailers(block) => {
                    let mut trailers = Fields::new();
                    convert::trailer_fields(&block, &mut trailers);
                    self.grpc_status = grpc::status_in(&trailers);
                    if self.slot.send_trailers(&self.ctx.sess, &trailers).is_err() {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                    // The decoder reports End next.
                    let _ = decoder.decode(upbuf);
                    return Relayed::Done { upstream_reusable };
                }
                BodyEvent::End => {
                    if self.send_data(Bytes::new(), true).await.is_err() {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                    return Relayed::Done { upstream_reusable };
                }
                BodyEvent::NeedMore => {
                    let deadline = timer::coarse_now() + idle;
                    match read_into(ur, upbuf, Some(deadline)).await {
                        Ok(0) => {
                            if decoder.eof().is_err() {
                                return Relayed::Broken(ResponseFlags::UC);
                            }
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                            return Relayed::Broken(ResponseFlags::UT);
                        }
                        Err(_) => return Relayed::Broken(ResponseFlags::UC),
                    }
                }
            }
        }
    }

    fn log(&self, writer: &crate::access_log::AccessLogWriter, start: SystemTime, fields: &Fields) {
        let pseudo = |name: &[u8]| {
            fields
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map_or(&b""[..], |(_, v)| &v[..])
        };
        let h = self.head.as_ref();
        let header = |name: &[u8]| h.and_then(|h| h.header(name));
        writer.log(&Entry {
            start,
            method: pseudo(b":method"),
            path: pseudo(b":path"),
            protocol: "HTTP/2",
            status: self.rec.status,
            flags: self.rec.flags,
            bytes_received: self.rec.bytes_received,
            bytes_sent: self.rec.bytes_sent,
            duration: self.rec.start.elapsed(),
            upstream_service_time: self.rec.upstream_time,
            forwarded_for: header(b"x-forwarded-for"),
            user_agent: header(b"user-agent"),
            request_id: match &self.request_id {
                Some(id) => Some(&id[..]),
                None => header(b"x-request-id"),
            },
            authority: h.map_or(&b""[..], RequestHead::authority),
            upstream_host: self.rec.upstream,
            downstream_remote: self.ctx.peer,
            route_name: self.route_name,
            // Not recorded for HTTP yet (tcp listeners log it).
            requested_server_name: None,
        });
    }
}

/// Write the request head and then the body as it arrives from the client (or as a filter
/// collected it); returns the body bytes sent.
#[allow(clippy::too_many_arguments)] // reason: the pieces of one upload, passed once
async fn upload<W: AsyncWriteRent>(
    ctx: &ConnCtx,
    slot: &StreamSlot,
    idle: Duration,
    uw: &mut W,
    request_head: Bytes,
    framing: OutFraming,
    has_body: bool,
    buffered: Option<&BufferedBody>,
) -> Result<u64, PumpError> {
    let sink = |_: std::io::Error| PumpError::Sink;
    if let Some(b) = buffered {
        // Collected already: head and body leave in one write.
        let mut out = BytesMut::with_capacity(request_head.len() + b.data.len() + 64);
        out.extend_from_slice(&request_head);
        body::frame_whole(&mut out, b, framing);
        body::write_bytes(uw, out.freeze()).await.map_err(sink)?;
        return Ok(b.data.len() as u64);
    }
    body::write_bytes(uw, request_head).await.map_err(sink)?;
    if !has_body {
        return Ok(0);
    }
    let chunked = framing == OutFraming::Chunked;
    let mut sent = 0u64;
    let mut out = BytesMut::new();
    loop {
        match slot.recv(idle).await {
            Recv::Data(d) => {
                let n = d.len();
                if chunked {
                    http1::encode::chunk_head(&mut out, n);
                    out.extend_from_slice(&d);
                    out.extend_from_slice(http1::encode::CHUNK_END);
                    body::flush_out(uw, &mut out).await.map_err(sink)?;
                } else {
                    body::write_bytes(uw, d).await.map_err(sink)?;
                }
                sent += n as u64;
                // Written upstream: the client may send this much more.
                slot.release(&ctx.sess, n);
            }
            Recv::Trailers(t) => {
                if chunked {
                    out.extend_from_slice(b"0\r\n");
                    convert::write_trailers(&t, &mut out);
                    out.extend_from_slice(b"\r\n");
                    body::flush_out(uw, &mut out).await.map_err(sink)?;
                }
                return Ok(sent);
            }
            Recv::End => {
                if chunked {
                    out.extend_from_slice(http1::encode::LAST_CHUNK);
                    body::flush_out(uw, &mut out).await.map_err(sink)?;
                }
                return Ok(sent);
            }
            // No second head comes from a client.
            Recv::Head(..) | Recv::Gone => {
                return Err(PumpError::Source(std::io::ErrorKind::ConnectionReset));
            }
        }
    }
}

/// Pass the client's request body (and trailers) to an upstream HTTP/2 stream, crediting the
/// client only for what the upstream took. Returns the body bytes sent.
async fn upload_h2(
    ctx: &ConnCtx,
    slot: &StreamSlot,
    up: &UpstreamStream,
    idle: Duration,
    has_body: bool,
    buffered: Option<&BufferedBody>,
) -> Result<u64, PumpError> {
    if let Some(b) = buffered {
        up.send_buffered(b, idle)
            .await
            .map_err(|Gone| PumpError::Sink)?;
        return Ok(b.data.len() as u64);
    }
    if !has_body {
        return Ok(0);
    }
    let mut sent = 0u64;
    loop {
        match slot.recv(idle).await {
            Recv::Data(d) => {
                let n = d.len();
                up.slot
                    .send_data(&up.sess, d, false, idle)
                    .await
                    .map_err(|Gone| PumpError::Sink)?;
                slot.release(&ctx.sess, n);
                sent += n as u64;
            }
            Recv::Trailers(t) => {
                up.slot
                    .send_trailers(&up.sess, &t)
                    .map_err(|Gone| PumpError::Sink)?;
                return Ok(sent);
            }
            Recv::End => {
                up.slot
                    .send_data(&up.sess, Bytes::new(), true, idle)
                    .await
                    .map_err(|Gone| PumpError::Sink)?;
                return Ok(sent);
            }
            Recv::Head(..) | Recv::Gone => {
                return Err(PumpError::Source(std::io::ErrorKind::ConnectionReset));
            }
        }
    }
}
