//! One worker's connections to one cluster's endpoints (shared-nothing: no other worker
//! touches them): the HTTP/1 pool, the HTTP/2 connections ([`super::http2`]), the connect
//! path, and the per-endpoint in-flight counts attempts keep (the least-request input the
//! cluster's balancer reads). Choosing an endpoint is not done here: that is
//! [`crate::cluster`], which holds one [`Pool`] per cluster and worker.
//!
//! Pooled connections are kept per endpoint, most recently used first, and expire after the
//! cluster's idle timeout (checked on checkout and by the worker's periodic sweep). Beyond
//! `max_idle_per_endpoint` a released connection is kept too, and closed by the sweep once it
//! has been idle for [`TRIM_AFTER`]: a burst's connections serve the next burst.
//!
//! New connections (pooled HTTP ones from [`Pool::checkout`], unpooled TCP proxy ones
//! from [`Pool::connect`]) share one connect path: limits, timeout, accounting, and the
//! PROXY protocol header when the cluster sends one (HAProxy `proxy-protocol.txt` 2.1/2.2). A
//! cluster that sends PROXY headers never pools: each connection speaks for one client.
//!
//! Every new connection first takes its slots in the cluster's process-wide circuit breakers
//! (`max_connections`, `per_host_max_connections`: [`crate::shared::ClusterShared`]), held
//! with the connection, pooled or in use, until it closes. A request that needs a new
//! connection when they are full waits in the pending queue (`max_pending_requests`, process
//! wide; [`Pool::checkout`], [`Pool::h2_checkout`]) until this worker has a connection it can
//! use or a slot is free: this worker's own releases wake it at once, slots freed by other
//! workers are seen within [`PENDING_RECHECK`] by one polling waiter per worker, which wakes
//! the others. While requests wait, idle connections that
//! could give their slot (to other endpoints on this worker, to anything on a worker without
//! waiters) are closed instead of kept. The admission costs the occupancy atomics, no lock.
//!
//! A cluster with a `tls` table talks TLS to its endpoints ([`crate::tls::connect`]): the
//! handshake is part of connecting (after the PROXY header, which precedes TLS on the wire)
//! and must finish within the connect timeout; pooled TLS connections are reused like plain
//! ones. A failed handshake counts as a connect failure and in the cluster's `ssl.*` stats.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;
use monoio::net::tcp::MultiRecv;
use protocols::proxy_protocol::{self as pp, Addresses};

use super::http2::H2Conn;
use crate::codec::h2::far_future;
use crate::config::{ClusterConfig, ProxyProtocolVersion, UpstreamProtocol};
use crate::net::{Io, multishot};
use crate::rt::event::Event;
use crate::rt::timer;
use crate::shared::ClusterShared;
use crate::shared_state::OccupancyGuard;
use crate::stats::{ClusterStats, EndpointStats, LocalHistogram};
use crate::tls::{ClientFailure, ClientTls, TlsError};

/// How often a request waiting for a connection looks again for a slot another worker freed
/// (this worker's own releases wake it at once). One waiting request per worker polls; the
/// others sleep until something is freed.
pub(crate) const PENDING_RECHECK: Duration = Duration::from_millis(5);

/// How long a pooled connection past the cluster's `max_idle_per_endpoint` stays idle before
/// the sweep closes it: long enough for the next burst of requests to reuse what the last one
/// opened, instead of closing connections as a burst ends and opening them again as the next
/// begins.
pub(crate) const TRIM_AFTER: Duration = Duration::from_secs(1);

/// One worker's connections to one cluster.
pub(crate) struct Pool {
    core: usize,
    shared: Arc<ClusterShared>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_connections: Option<u32>,
    max_idle: usize,
    proxy_protocol: Option<ProxyProtocolVersion>,
    /// TLS to the endpoints; `None`: plaintext.
    tls: Option<ClientTls>,
    pub(crate) protocol: UpstreamProtocol,
    /// HTTP/2 keep-alive: (PING interval, answer timeout); `None`: off.
    pub(crate) h2_keepalive: Option<(Duration, Duration)>,
    pub(crate) endpoints: Vec<EndpointLocal>,
    /// Upstream connections this worker holds open to the cluster (pooled or in use).
    open: Cell<u32>,
    /// Requests of this worker waiting in the pending queue.
    waiting: Cell<u32>,
    /// Wakes them when a connection here is released or closed.
    freed: Event,
    /// One of them polls for slots freed on other workers.
    polling: Cell<bool>,
    pub(crate) rq_time: LocalHistogram,
    connect_time: LocalHistogram,
}

pub(crate) struct EndpointLocal {
    pub(crate) address: SocketAddr,
    /// Requests this worker has in flight to the endpoint (least-request input).
    pub(crate) active: Cell<u32>,
    idle: RefCell<Vec<Idle>>,
    /// HTTP/2 connections (clusters with `protocol = "http2"`), each shared by many requests.
    h2: RefCell<Vec<Rc<H2Conn>>>,
}

struct Idle {
    stream: Io,
    since: Instant,
    slots: Slots,
    /// Its multishot receive, still armed while it waits ([`Upstream::multi`]).
    multi: Option<MultiRecv>,
    multi_ok: bool,
}

/// The circuit-breaker slots one open connection holds (cluster-wide and per endpoint);
/// dropping them (the connection closed) frees them for any worker.
pub(crate) struct Slots {
    _cluster: OccupancyGuard,
    _host: OccupancyGuard,
}

/// Why no new connection may be opened now.
enum Full {
    /// This worker's `max_connections_per_worker`: refused at once, as before the breakers.
    Worker,
    /// The process-wide `max_connections` or `per_host_max_connections`: wait.
    Breaker,
}

/// An upstream connection checked out of the pool. Dropping it closes the connection;
/// [`Pool::release`] puts it back for reuse.
pub(crate) struct Upstream {
    pub(crate) stream: Io,
    pub(crate) endpoint: usize,
    /// Came from the pool (may have been closed by the peer while idle).
    pub(crate) reused: bool,
    guard: OpenGuard,
    slots: Slots,
    /// A multishot receive armed on a plain HTTP/1 connection whose responses come whole with
    /// their heads ([`crate::net::multishot`]): kept while the connection is pooled, it takes
    /// the next response without a submission or a poll arming. Ended before anything else
    /// reads the socket ([`Self::end_multi`]).
    pub(crate) multi: Option<MultiRecv>,
    /// The last response came whole in the receive that brought its head: arm one for the
    /// next (a connection whose bodies are long keeps them in the socket, for splice).
    pub(crate) multi_ok: bool,
}

/// The downstream connection an upstream connection is opened for: what a PROXY protocol
/// header tells the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The client (the socket peer, or the source a PROXY header in front of it named).
    pub(crate) client: SocketAddr,
    /// ringway's address the client connected to; `None` if the socket could not say.
    pub(crate) local: Option<SocketAddr>,
}

impl Origin {
    /// The PROXY protocol address block: TCP4 when both are IPv4, else TCP6 (IPv4-mapped).
    pub(crate) fn addresses(&self) -> Addresses {
        let Some(local) = self.local else {
            return Addresses::Unknown;
        };
        match (self.client, local) {
            (SocketAddr::V4(src), SocketAddr::V4(dst)) => Addresses::Tcp4 { src, dst },
            (src, dst) => {
                let v6 = |a: SocketAddr| match a {
                    SocketAddr::V4(a) => {
                        std::net::SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0)
                    }
                    SocketAddr::V6(a) => std::net::SocketAddrV6::new(*a.ip(), a.port(), 0, 0),
                };
                Addresses::Tcp6 {
                    src: v6(src),
                    dst: v6(dst),
                }
            }
        }
    }
}

/// The PROXY protocol header for `origin` (`None`: the proxy has no client to speak for, so
/// v1 says `UNKNOWN` and v2 sends the `LOCAL` command).
pub(crate) fn proxy_header(version: ProxyProtocolVersion, origin: Option<&Origin>) -> BytesMut {
    let mut out = BytesMut::with_capacity(64);
    let addrs = origin.map_or(Addresses::Unknown, Origin::addresses);
    match version {
        ProxyProtocolVersion::V1 => pp::encode_v1(&addrs, &mut out),
        ProxyProtocolVersion::V2 => {
            let cmd = match origin {
                Some(_) => pp::Command::Proxy,
                None => pp::Command::Local,
            };
            // No TLVs: the header is a few dozen bytes, far below the 16-bit length limit.
            let _ = pp::encode_v2(cmd, &addrs, &[], &mut out);
        }
    }
    out
}

/// Why no connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// The per-worker connection limit is reached, or the cluster's circuit breakers are and
    /// the pending queue is full.
    Overflow,
    /// Waited in the pending queue until the request's deadline.
    PendingTimeout,
    Refused,
    Timeout,
    /// The TLS handshake failed (verification, alerts, no ALPN agreement, a reset, ...); one
    /// that did not finish within the connect timeout is [`Self::Timeout`].
    Tls,
}

impl Pool {
    pub(crate) fn new(cfg: &ClusterConfig, shared: Arc<ClusterShared>, core: usize) -> Self {
        let endpoints = cfg
            .endpoints
            .iter()
            .map(|e| EndpointLocal {
                address: e.address,
                active: Cell::new(0),
                idle: RefCell::new(Vec::new()),
                h2: RefCell::new(Vec::new()),
            })
            .collect();
        let rq_time = shared.scope.upstream_rq_time.local();
        let connect_time = shared.scope.upstream_cx_connect_ms.local();
        Self {
            core,
            connect_timeout: cfg.connect_timeout,
            idle_timeout: cfg.idle_timeout,
            max_connections: cfg.max_connections_per_worker,
            max_idle: cfg.max_idle_per_endpoint,
            proxy_protocol: cfg.proxy_protocol,
            tls: cfg.tls.clone(),
            protocol: cfg.protocol,
            h2_keepalive: cfg
                .http2_keepalive_interval
                .map(|every| (every, cfg.http2_keepalive_timeout)),
            endpoints,
            open: Cell::new(0),
            waiting: Cell::new(0),
            freed: Event::default(),
            polling: Cell::new(false),
            rq_time,
            connect_time,
            shared,
        }
    }

    pub(crate) fn stats(&self) -> &ClusterStats {
        self.shared.scope.stats.core(self.core)
    }

    /// The cluster's process-wide handles (stats, circuit breakers).
    pub(crate) fn shared(&self) -> &ClusterShared {
        &self.shared
    }

    pub(crate) fn endpoint_stats(&self, i: usize) -> &EndpointStats {
        self.shared.endpoints[i].core(self.core)
    }

    /// Whether connections to this cluster are TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// How long pooled connections may stay idle.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// An HTTP/2 connection to endpoint `ep` that can take another stream: a pooled one, or a
    /// new one that starts connecting now (streams opened meanwhile wait for it, so a burst of
    /// requests shares one new connection). When the circuit breakers allow no new one, the
    /// request waits in the pending queue until `deadline` at most.
    pub(crate) async fn h2_checkout(
        self: &Rc<Self>,
        ep: usize,
        deadline: Option<Instant>,
    ) -> Result<Rc<H2Conn>, ConnectError> {
        let ready = || {
            let pooled = self.endpoints[ep]
                .h2
                .borrow()
                .iter()
                .find(|c| c.can_open())
                .cloned();
            if let Some(c) = pooled {
                self.stats().upstream_cx_pool_reuse.inc();
                return Ok(c);
            }
            let slots = self.admit(ep)?;
            let conn = H2Conn::start(self.clone(), ep, slots);
            self.endpoints[ep].h2.borrow_mut().push(conn.clone());
            Ok(conn)
        };
        match ready() {
            Ok(c) => Ok(c),
            Err(Full::Worker) => {
                self.stats().upstream_cx_overflow.inc();
                Err(ConnectError::Overflow)
            }
            Err(Full::Breaker) => Box::pin(self.pending(ep, deadline, || ready().ok())).await,
        }
    }

    /// An HTTP/2 connection's task ended: it leaves the pool.
    pub(crate) fn h2_gone(&self, ep: usize, conn: &Rc<H2Conn>) {
        self.endpoints[ep]
            .h2
            .borrow_mut()
            .retain(|c| !Rc::ptr_eq(c, conn));
    }

    /// What a PROXY protocol header for a connection opened on behalf of `client` says; `local`
    /// gives the address the client connected to. `None` when this cluster sends no header, so
    /// the local address is only looked up (a system call) when it is needed.
    pub(crate) fn origin(
        &self,
        client: SocketAddr,
        local: impl FnOnce() -> Option<SocketAddr>,
    ) -> Option<Origin> {
        self.proxy_protocol.is_some().then(|| Origin {
            client,
            local: local(),
        })
    }

    /// An HTTP/1 connection to endpoint `ep`: a pooled one if a fresh one is idle, else a new
    /// connection. `origin` is the client a PROXY header speaks for (only read when the
    /// cluster sends one; then nothing is pooled).
    /// When the circuit breakers allow no new connection, the request waits in the pending
    /// queue for a pooled one or a free slot until `deadline` at most.
    pub(crate) async fn checkout(
        self: &Rc<Self>,
        ep: usize,
        origin: Option<Origin>,
        deadline: Option<Instant>,
    ) -> Result<Upstream, ConnectError> {
        if let Some(up) = self.pop_idle(ep) {
            return Ok(up);
        }
        let slots = match self.admit(ep) {
            Ok(slots) => slots,
            Err(Full::Worker) => {
                self.stats().upstream_cx_overflow.inc();
                return Err(ConnectError::Overflow);
            }
            Err(Full::Breaker) => {
                let ready = || {
                    if let Some(up) = self.pop_idle(ep) {
                        return Some(Ok(up));
                    }
                    self.admit(ep).ok().map(Err)
                };
                match Box::pin(self.pending(ep, deadline, ready)).await? {
                    Ok(up) => return Ok(up),
                    Err(slots) => slots,
                }
            }
        };
        // Boxed: a new connection is the rare path, and its future (connect, TLS handshake,
        // PROXY header; about 3 KiB) would otherwise be part of every request's future, which
        // is moved into a fresh allocation for each request.
        Box::pin(self.open_new(ep, origin.as_ref(), true, slots)).await
    }

    /// A fresh pooled connection to endpoint `ep`, if one is idle (expired ones are closed).
    fn pop_idle(self: &Rc<Self>, ep: usize) -> Option<Upstream> {
        let now = timer::coarse_now();
        loop {
            let idle = self.endpoints[ep].idle.borrow_mut().pop()?;
            if now.duration_since(idle.since) < self.idle_timeout {
                self.stats().upstream_cx_pool_reuse.inc();
                // Reused: a keep-alive connection, worth a registered file.
                idle.stream.use_fixed_file();
                let mut up = self.wrap(idle.stream, ep, true, idle.slots);
                (up.multi, up.multi_ok) = (idle.multi, idle.multi_ok);
                return Some(up);
            }
            self.stats().upstream_cx_idle_timeout.inc();
            drop(idle);
            self.closed(ep, false);
        }
    }

    /// The slots of a new connection to endpoint `ep`, if this worker's limit and the
    /// cluster's circuit breakers allow one more (the breaker's overflow is counted).
    fn admit(&self, ep: usize) -> Result<Slots, Full> {
        if self
            .max_connections
            .is_some_and(|max| self.open.get() >= max)
        {
            return Err(Full::Worker);
        }
        let shared = &self.shared;
        let admitted = shared.connections.try_acquire().and_then(|cluster| {
            Some(Slots {
                _host: shared.host_connections[ep].try_acquire()?,
                _cluster: cluster,
            })
        });
        admitted.ok_or(Full::Breaker)
    }

    /// Wait in the pending queue until `ready` gives something (a connection or slots) or
    /// `deadline` passes. Refused at once when `max_pending_requests` are waiting already.
    async fn pending<T>(
        &self,
        ep: usize,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Result<T, ConnectError> {
        let stats = self.stats();
        stats.upstream_cx_overflow.inc();
        let Some(_queued) = self.shared.pending.try_acquire() else {
            return Err(ConnectError::Overflow);
        };
        stats.upstream_rq_pending_total.inc();
        stats.upstream_rq_pending_active.inc();
        let mut waiting = Waiting::new(self);
        loop {
            // Slots another endpoint's idle connections here hold are better used by us.
            self.shed_idle(Some(ep));
            if deadline.is_some_and(|at| at <= Instant::now()) {
                return Err(ConnectError::PendingTimeout);
            }
            // One waiter per worker polls for slots other workers free; the rest sleep
            // until this worker frees something, the poller sees room, or their deadline.
            let polling = waiting.poll_role();
            let freed = self.freed.wait();
            let until = timer::sleep_until(deadline.unwrap_or_else(far_future));
            let mut ticked = false;
            monoio::select! {
                _ = freed => {}
                _ = until => {}
                _ = monoio::time::sleep(PENDING_RECHECK), if polling => ticked = true,
            }
            if let Some(t) = ready() {
                return Ok(t);
            }
            if ticked && self.shared.connections.remaining() > 0 {
                // Room appeared elsewhere (or an endpoint's own limit is what holds some
                // back): every waiter here looks again.
                self.freed.notify_all();
            }
        }
    }

    /// Close idle connections whose slots requests in the pending queue wait for: those to
    /// endpoints other than `keep` (`None`: all). HTTP/2 ones without streams get GOAWAY and
    /// close. Cheap when nothing waits.
    fn shed_idle(&self, keep: Option<usize>) {
        if self.shared.pending.current() == 0 {
            return;
        }
        for (ep, endpoint) in self.endpoints.iter().enumerate() {
            if Some(ep) == keep {
                continue;
            }
            for c in endpoint.h2.borrow().iter().filter(|c| c.is_idle()) {
                c.retire();
            }
            let n = endpoint.idle.borrow_mut().drain(..).count();
            for _ in 0..n {
                self.closed(ep, false);
            }
        }
    }

    /// Requests wait in the pending queue on other workers only: whatever this worker keeps
    /// idle holds slots they need.
    fn others_wait(&self) -> bool {
        self.shared.pending.current() > u64::from(self.waiting.get())
    }

    /// A new connection to endpoint `ep`, never from or for the pool (the TCP proxy). Counted
    /// like pooled ones; a PROXY header for `origin` is written first if the cluster sends one.
    /// Does not wait: over a limit it fails at once.
    pub(crate) async fn connect(
        self: &Rc<Self>,
        ep: usize,
        origin: Option<Origin>,
    ) -> Result<Upstream, ConnectError> {
        let Ok(slots) = self.admit(ep) else {
            self.stats().upstream_cx_overflow.inc();
            return Err(ConnectError::Overflow);
        };
        self.open_new(ep, origin.as_ref(), false, slots).await
    }

    /// A new HTTP/2 connection to endpoint `ep`, with the slots [`Pool::h2_checkout`] took.
    pub(crate) async fn connect_h2(
        self: &Rc<Self>,
        ep: usize,
        slots: Slots,
    ) -> Result<Upstream, ConnectError> {
        self.open_new(ep, None, false, slots).await
    }

    /// The one connect path: stats, connect timeout, then the PROXY header. `slots` are the
    /// connection's admission ([`Pool::admit`]); a failed connect frees them.
    async fn open_new(
        self: &Rc<Self>,
        ep: usize,
        origin: Option<&Origin>,
        http1: bool,
        slots: Slots,
    ) -> Result<Upstream, ConnectError> {
        let endpoint = &self.endpoints[ep];
        let stats = self.stats();
        let ep_stats = self.endpoint_stats(ep);
        stats.upstream_cx_total.inc();
        if http1 {
            stats.upstream_cx_http1_total.inc();
        }
        ep_stats.cx_total.inc();
        let started = Instant::now();
        let connect = TcpStream::connect_addr(endpoint.address);
        let stream = match monoio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                stats.upstream_cx_connect_fail.inc();
                ep_stats.cx_connect_fail.inc();
                log::debug!("connect to {} failed: {e}", endpoint.address);
                return Err(ConnectError::Refused);
            }
            Err(_) => {
                stats.upstream_cx_connect_fail.inc();
                stats.upstream_cx_connect_timeout.inc();
                ep_stats.cx_connect_fail.inc();
                return Err(ConnectError::Timeout);
            }
        };
        self.connect_time
            .record(started.elapsed().as_millis() as u64);
        let _ = stream.set_nodelay(true);
        self.open.set(self.open.get() + 1);
        stats.upstream_cx_active.inc();
        ep_stats.cx_active.inc();
        let mut up = self.wrap(Io::Plain(stream), ep, false, slots);
        if let Some(version) = self.proxy_protocol {
            let header = proxy_header(version, origin);
            stats.upstream_cx_tx_bytes_total.add(header.len() as u64);
            if up.stream.write_all(header).await.0.is_err() {
                // Reset before the first byte went out: as good as a failed connect.
                stats.upstream_cx_connect_fail.inc();
                ep_stats.cx_connect_fail.inc();
                up.closed_by_peer();
                return Err(ConnectError::Refused);
            }
        }
        if let Some(tls) = &self.tls {
            let (io, mut lease) = up.into_parts();
            let tcp = match io {
                Io::Plain(tcp) => tcp,
                done @ Io::Tls(_) => return Ok(Upstream::from_parts(done, lease)),
            };
            let deadline = started + self.connect_timeout;
            return match self.handshake(tcp, tls, ep, deadline).await {
                Ok(s) => Ok(Upstream::from_parts(Io::Tls(s), lease)),
                Err((e, by_peer)) => {
                    if by_peer {
                        lease.closed_by_peer();
                    }
                    Err(e)
                }
            };
        }
        Ok(up)
    }

    /// The TLS handshake on the fresh connection `tcp` to endpoint `ep`, by `deadline`. On
    /// failure: why, and whether the upstream closed the connection.
    async fn handshake(
        &self,
        tcp: TcpStream,
        tls: &ClientTls,
        ep: usize,
        deadline: Instant,
    ) -> Result<crate::tls::TlsStream, (ConnectError, bool)> {
        let stats = self.stats();
        let address = self.endpoints[ep].address;
        match crate::tls::connect(tcp, tls, address.ip(), deadline).await {
            Ok(s) => {
                stats.ssl_handshake.inc();
                if s.is_resumed() {
                    stats.ssl_session_reused.inc();
                }
                match s.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_2) => stats.ssl_versions_tls12.inc(),
                    Some(rustls::ProtocolVersion::TLSv1_3) => stats.ssl_versions_tls13.inc(),
                    _ => {}
                }
                Ok(s)
            }
            Err(e) => {
                log::debug!("TLS handshake with {address} failed: {e}");
                stats.ssl_connection_error.inc();
                match ClientFailure::of(&e) {
                    ClientFailure::Name => stats.ssl_fail_verify_san.inc(),
                    ClientFailure::Verify => stats.ssl_fail_verify_error.inc(),
                    ClientFailure::Other => {}
                }
                stats.upstream_cx_connect_fail.inc();
                self.endpoint_stats(ep).cx_connect_fail.inc();
                if matches!(e, TlsError::Timeout) {
                    stats.upstream_cx_connect_timeout.inc();
                    return Err((ConnectError::Timeout, false));
                }
                let by_peer = matches!(e, TlsError::Closed | TlsError::Io(_));
                Err((ConnectError::Tls, by_peer))
            }
        }
    }

    fn wrap(self: &Rc<Self>, stream: Io, endpoint: usize, reused: bool, slots: Slots) -> Upstream {
        let guard = OpenGuard {
            cluster: self.clone(),
            endpoint,
            armed: true,
            remote: false,
        };
        Upstream {
            stream,
            endpoint,
            reused,
            guard,
            slots,
            multi: None,
            multi_ok: false,
        }
    }

    /// Return a connection whose last exchange ended cleanly, for reuse. A connection that
    /// started with a PROXY header speaks for one client only, so it is closed instead.
    pub(crate) fn release(&self, mut up: Upstream) {
        if self.proxy_protocol.is_some() {
            return;
        }
        let ep = up.endpoint;
        let (multi, multi_ok) = (up.multi.take(), up.multi_ok);
        let (stream, slots) = up.into_stream();
        let mut idle = self.endpoints[ep].idle.borrow_mut();
        // Requests waiting on other workers need the slot more than this pool needs the
        // connection. Past `max_idle` it is kept all the same: the end of a burst returns
        // many connections at once, and the next burst would open them again; the sweep
        // closes what stays unused ([`Pool::sweep`]). A cluster with `max_idle = 0` pools
        // nothing.
        if self.max_idle == 0 || self.others_wait() {
            drop(idle);
            drop((stream, slots));
            self.closed(ep, false);
            return;
        }
        idle.push(Idle {
            stream,
            since: timer::coarse_now(),
            slots,
            multi,
            multi_ok,
        });
        drop(idle);
        self.freed.notify_all();
    }

    /// Close pooled connections idle for longer than the idle timeout, and those past
    /// `max_idle` per endpoint that have been idle for [`TRIM_AFTER`] (least recently used
    /// first). Called once a second by the worker's housekeeping.
    pub(crate) fn sweep(&self, now: Instant) {
        if self.others_wait() {
            self.shed_idle(None);
        }
        for (ep, endpoint) in self.endpoints.iter().enumerate() {
            let mut expired = 0;
            let mut idle = endpoint.idle.borrow_mut();
            idle.retain(|i| {
                let keep = now.duration_since(i.since) < self.idle_timeout;
                expired += usize::from(!keep);
                keep
            });
            // Least recently used first: checkout takes from the end.
            let excess = idle.len().saturating_sub(self.max_idle);
            let unused = idle[..excess]
                .iter()
                .take_while(|i| now.duration_since(i.since) >= TRIM_AFTER)
                .count();
            idle.drain(..unused);
            drop(idle);
            for _ in 0..expired {
                self.stats().upstream_cx_idle_timeout.inc();
                self.closed(ep, false);
            }
            for _ in 0..unused {
                self.closed(ep, false);
            }
        }
    }

    /// Drop every pooled connection (the worker is draining or the cluster was replaced);
    /// HTTP/2 connections close once their open streams are done.
    pub(crate) fn close_idle(&self) {
        for (ep, endpoint) in self.endpoints.iter().enumerate() {
            for c in endpoint.h2.borrow().iter() {
                c.retire();
            }
            let n = endpoint.idle.borrow_mut().drain(..).count();
            for _ in 0..n {
                self.closed(ep, false);
            }
        }
    }

    /// Accounting for a connection that is gone; `remote`: the upstream closed or reset it.
    fn closed(&self, ep: usize, remote: bool) {
        self.open.set(self.open.get().saturating_sub(1));
        // Waiters run after this task yields, when the connection's slots are dropped too.
        self.freed.notify_all();
        let stats = self.stats();
        stats.upstream_cx_active.dec();
        stats.upstream_cx_destroy.inc();
        if remote {
            stats.upstream_cx_destroy_remote.inc();
        } else {
            stats.upstream_cx_destroy_local.inc();
        }
        self.endpoint_stats(ep).cx_active.dec();
    }

    pub(crate) fn flush(&self) {
        self.rq_time.flush();
        self.connect_time.flush();
    }
}

impl Upstream {
    /// The pool of the cluster this connection goes to.
    pub(crate) fn cluster(&self) -> &Rc<Pool> {
        &self.guard.cluster
    }

    /// Record that the upstream closed or reset this connection (for the destroy stats).
    pub(crate) fn closed_by_peer(&mut self) {
        self.guard.remote = true;
    }

    /// Ends the multishot receive, if one is armed, appending what it received to `buf`
    /// ([`multishot::end`]); the next use of the connection reads the socket.
    pub(crate) async fn end_multi(&mut self, buf: &mut BytesMut) {
        self.multi_ok = false;
        multishot::end(&mut self.multi, buf).await;
    }

    /// Split into the stream and the lease that keeps the connection accounted for. No
    /// multishot receive may be armed ([`Self::end_multi`]): the halves read the socket.
    pub(crate) fn into_parts(self) -> (Io, Lease) {
        let Self {
            stream,
            endpoint,
            reused,
            guard,
            slots,
            multi,
            ..
        } = self;
        debug_assert!(
            multi.is_none(),
            "a multishot receive armed on a split connection"
        );
        (
            stream,
            Lease {
                endpoint,
                reused,
                guard,
                slots,
            },
        )
    }

    pub(crate) fn from_parts(stream: Io, lease: Lease) -> Self {
        let Lease {
            endpoint,
            reused,
            guard,
            slots,
        } = lease;
        Self {
            stream,
            endpoint,
            reused,
            guard,
            slots,
            multi: None,
            multi_ok: false,
        }
    }

    /// Take the stream out for pooling; the connection stays counted as open and keeps its
    /// slots.
    fn into_stream(self) -> (Io, Slots) {
        let Self {
            stream,
            guard,
            slots,
            ..
        } = self;
        guard.disarm();
        (stream, slots)
    }
}

/// An [`Upstream`] without its stream, while the stream is split for concurrent use.
pub(crate) struct Lease {
    endpoint: usize,
    reused: bool,
    guard: OpenGuard,
    slots: Slots,
}

impl Lease {
    /// Record that the upstream closed or reset this connection (for the destroy stats).
    pub(crate) fn closed_by_peer(&mut self) {
        self.guard.remote = true;
    }
}

/// Runs the close accounting when an [`Upstream`] is dropped instead of pooled.
struct OpenGuard {
    cluster: Rc<Pool>,
    endpoint: usize,
    armed: bool,
    remote: bool,
}

impl OpenGuard {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.armed {
            self.cluster.closed(self.endpoint, self.remote);
        }
    }
}

impl From<ConnectError> for io::ErrorKind {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Overflow => Self::WouldBlock,
            ConnectError::PendingTimeout => Self::TimedOut,
            ConnectError::Refused => Self::ConnectionRefused,
            ConnectError::Timeout => Self::TimedOut,
            ConnectError::Tls => Self::ConnectionAborted,
        }
    }
}

/// A request of this worker in the pending queue, counted until it leaves (served, timed
/// out, or dropped with its client).
struct Waiting<'a> {
    pool: &'a Pool,
    /// This one polls for slots freed on other workers ([`Pool::pending`]).
    poller: bool,
}

impl<'a> Waiting<'a> {
    fn new(pool: &'a Pool) -> Self {
        pool.waiting.set(pool.waiting.get() + 1);
        Self {
            pool,
            poller: false,
        }
    }

    /// Whether this waiter polls: it does if it did, or if no other waiter of the pool does.
    fn poll_role(&mut self) -> bool {
        if !self.poller && !self.pool.polling.get() {
            self.pool.polling.set(true);
            self.poller = true;
        }
        self.poller
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let pool = self.pool;
        pool.waiting.set(pool.waiting.get() - 1);
        pool.stats().upstream_rq_pending_active.dec();
        if self.poller {
            // Another waiter takes the role over.
            pool.polling.set(false);
            pool.freed.notify_all();
        }
    }
}
