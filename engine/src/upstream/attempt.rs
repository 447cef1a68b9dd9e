//! The upstream side of a request shared by the HTTP/1 and HTTP/2 downstream codecs: the
//! accounting of one request to one endpoint, the pool checkout mapped to errors, and reading
//! an HTTP/1 response head.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::AsyncReadRent;
use monoio::net::tcp::MultiRecv;
use protocols::http1::{self, Limits, MethodKind, ResponseHead};

use super::{ConnectError, Origin, Pool, Upstream};
use crate::access_log::ResponseFlags;
use crate::error::{Kind, Phase, ProxyError, Side};
use crate::net::multishot;
use crate::rt::buffers::read_into;
use crate::shared::Outcome;
use crate::shared_state::OccupancyGuard;

/// One request sent to one endpoint: counted active from [`Attempt::begin`] to
/// [`Attempt::end`], or to its drop when the request is abandoned (an HTTP/2 stream the client
/// reset drops its request mid-way). Holds its slot of the cluster's `max_requests` circuit
/// breaker as long.
pub(crate) struct Attempt {
    /// The pool of the cluster the request goes to.
    pub(crate) cluster: Rc<Pool>,
    pub(crate) endpoint: usize,
    started: Instant,
    ended: bool,
    _admitted: OccupancyGuard,
}

impl Attempt {
    /// Count a request to endpoint `ep` of `cluster`, started (by the client) at `started`.
    /// `cluster` is whatever holds the cluster's pool on this worker (`cluster::ClusterLocal`,
    /// a layer above this one). Refused (503 `UO`, counted as Envoy does in
    /// `upstream_rq_pending_overflow`) when the cluster has `max_requests` in flight on all
    /// workers.
    pub(crate) fn begin(
        cluster: Rc<impl AsRef<Rc<Pool>>>,
        ep: usize,
        started: Instant,
    ) -> Result<Self, ProxyError> {
        let cluster = Rc::clone((*cluster).as_ref());
        let Some(admitted) = cluster.shared().requests.try_acquire() else {
            cluster.stats().upstream_rq_pending_overflow.inc();
            return Err(ProxyError::internal(Kind::Overflow));
        };
        let stats = cluster.stats();
        stats.upstream_rq_total.inc();
        stats.upstream_rq_active.inc();
        let ep_stats = cluster.endpoint_stats(ep);
        ep_stats.rq_total.inc();
        ep_stats.rq_active.inc();
        let endpoint = &cluster.endpoints[ep];
        endpoint.active.set(endpoint.active.get() + 1);
        Ok(Self {
            cluster,
            endpoint: ep,
            started,
            ended: false,
            _admitted: admitted,
        })
    }

    /// The request ended with `status` (0: no response) and `flags`, after `up_rx` bytes of
    /// response; the outcome feeds the cluster's outlier detection. Returns the time since
    /// the request started.
    pub(crate) fn end(mut self, status: u16, flags: ResponseFlags, up_rx: u64) -> Duration {
        self.leave();
        let cluster = &self.cluster;
        let stats = cluster.stats();
        let ep_stats = cluster.endpoint_stats(self.endpoint);
        let elapsed = crate::rt::timer::turn_elapsed(self.started);
        cluster.rq_time.record(elapsed.as_micros() as u64);
        stats.upstream_cx_rx_bytes_total.add(up_rx);
        match status / 100 {
            1 => stats.upstream_rq_1xx.inc(),
            2 => stats.upstream_rq_2xx.inc(),
            3 => stats.upstream_rq_3xx.inc(),
            4 => stats.upstream_rq_4xx.inc(),
            5 => stats.upstream_rq_5xx.inc(),
            _ => {}
        }
        // What the request says of the endpoint: a refusal by ringway's own limits or a
        // client that left says nothing, and counts neither way (the interval detectors of
        // outlier detection read these counters).
        let outcome = Outcome::of(status, flags);
        match outcome {
            Outcome::Success => ep_stats.rq_success.inc(),
            Outcome::Status(_) | Outcome::LocalFailure => ep_stats.rq_error.inc(),
            Outcome::Unknown => {}
        }
        if flags.contains(ResponseFlags::UT) {
            ep_stats.rq_timeout.inc();
        }
        // Outlier detection: a success only reads the endpoint's counters (no shared write)
        // unless a run of failures came before it.
        cluster
            .shared()
            .health
            .report(self.endpoint, outcome, stats);
        elapsed
    }

    /// A connection to the endpoint from the pool (or a new one, waiting in the circuit
    /// breakers' pending queue until `deadline` at most), or the fault to answer.
    pub(crate) async fn checkout(
        &self,
        origin: Option<Origin>,
        deadline: Option<Instant>,
    ) -> Result<Upstream, ProxyError> {
        self.cluster
            .checkout(self.endpoint, origin, deadline)
            .await
            .map_err(|e| self.connect_fault(e))
    }

    /// The fault to answer when connecting to the endpoint failed.
    pub(crate) fn connect_fault(&self, e: ConnectError) -> ProxyError {
        let kind = match e {
            ConnectError::Overflow => {
                self.cluster.stats().upstream_rq_pending_overflow.inc();
                return ProxyError::internal(Kind::Overflow);
            }
            ConnectError::PendingTimeout => {
                self.cluster.stats().upstream_rq_timeout.inc();
                return ProxyError::upstream(Kind::Timeout, Phase::BeforeRequest);
            }
            ConnectError::Refused => Kind::ConnectFailure,
            ConnectError::Timeout => Kind::ConnectTimeout,
            ConnectError::Tls => Kind::UpstreamTls,
        };
        ProxyError::upstream(kind, Phase::BeforeRequest)
    }
}

impl Attempt {
    /// The request is no longer in flight.
    fn leave(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let cluster = &self.cluster;
        let endpoint = &cluster.endpoints[self.endpoint];
        endpoint.active.set(endpoint.active.get() - 1);
        cluster.stats().upstream_rq_active.dec();
        cluster.endpoint_stats(self.endpoint).rq_active.dec();
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.ended {
            self.cluster.stats().upstream_rq_cancelled.inc();
        }
        self.leave();
    }
}

/// Count an upstream request's failure, and what it says about its connection.
pub(crate) fn count_failure(up: &mut Upstream, err: &ProxyError) {
    err.count(up.cluster().stats());
    if err.side == Side::Upstream && err.kind == Kind::Reset {
        up.closed_by_peer();
    }
}

/// Read the next response head from `up` (an interim 1xx one included), waiting until
/// `deadline` at most. Bytes after the head stay in `upbuf`. `multi`: the connection's
/// multishot receive, read instead of the socket while it is armed.
pub(crate) async fn read_response_head<R: AsyncReadRent>(
    up: &mut R,
    upbuf: &mut BytesMut,
    parser: &mut http1::ResponseParser,
    method: MethodKind,
    deadline: Option<Instant>,
    mut multi: Option<&mut Option<MultiRecv>>,
) -> Result<ResponseHead, ProxyError> {
    let fail = |kind| ProxyError::upstream(kind, Phase::BeforeResponse);
    let limits = Limits::default();
    loop {
        match parser.parse(upbuf, method, &limits) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {}
            Err(_) => return Err(fail(Kind::Protocol)),
        }
        let got = match multi.as_deref_mut() {
            Some(slot) => multishot::recv(slot, upbuf, deadline).await,
            None => None,
        };
        let got = match got {
            Some(r) => r,
            None => read_into(up, upbuf, deadline).await,
        };
        match got {
            Ok(0) => return Err(fail(Kind::Reset)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(fail(Kind::Timeout));
            }
            Err(_) => return Err(fail(Kind::Reset)),
        }
    }
}
