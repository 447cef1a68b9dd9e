//! Upstream HTTP/2 connections (prior-knowledge h2c, or h2 over TLS agreed by ALPN for
//! clusters with `tls`, see [`super::pool`]): each carries many concurrent streams,
//! lives in its cluster's per-worker pool ([`Pool::h2_checkout`]) and
//! is driven by a task of its own until the upstream closes it, it fails, or it sits idle
//! past the cluster's idle timeout.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::Splitable;
use protocols::http2::conn::{self, Role};
use protocols::http2::frame::Reason;

use super::pool::Slots;
use super::{ConnectError, Pool};
use crate::codec::h2::convert::Fields;
use crate::codec::h2::far_future;
use crate::codec::h2::session::{self, Gone, ReadEnd, Recv, SendError, Session, StreamSlot};
use crate::rt::timer;

/// Settings ringway's client side advertises.
fn client_config() -> conn::Config {
    conn::Config {
        // Responses of many streams at full speed without waiting on our WINDOW_UPDATEs.
        initial_window_size: 1 << 20,
        connection_window_size: 8 << 20,
        ..conn::Config::default()
    }
}

/// One upstream HTTP/2 connection.
pub(crate) struct H2Conn {
    sess: Rc<Session>,
    /// Why connecting failed; its streams were ended.
    connect_error: Cell<Option<ConnectError>>,
}

/// Why a stream could not be opened on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// At the upstream's concurrent stream limit, going away, or failed: use another.
    Unavailable,
}

/// A stream opened upstream. Dropping it resets the stream if it is still open.
pub(crate) struct UpstreamStream {
    pub(crate) sess: Rc<Session>,
    pub(crate) slot: Rc<StreamSlot>,
}

impl UpstreamStream {
    /// The next part of the response, waiting at most `idle`.
    pub(crate) async fn recv(&self, idle: Duration) -> Recv {
        self.slot.recv(idle).await
    }

    /// The whole response has arrived (possibly not consumed yet).
    pub(crate) fn is_complete(&self) -> bool {
        self.slot.ended()
    }

    /// `n` bytes of response data were passed on: the upstream may send as much again.
    pub(crate) fn release(&self, n: usize) {
        self.slot.release(&self.sess, n);
    }

    /// Send request body bytes (`end_stream` on the last), as flow control allows.
    pub(crate) async fn send_data(
        &self,
        data: Bytes,
        end_stream: bool,
        idle: Duration,
    ) -> Result<(), SendError> {
        self.slot
            .send_data(&self.sess, data, end_stream, idle)
            .await
    }

    /// End the request with trailers.
    pub(crate) fn send_trailers(&self, fields: &Fields) -> Result<(), Gone> {
        self.slot.send_trailers(&self.sess, fields)
    }
}

/// Open a stream to endpoint `ep` of `cluster` for `up_head`, the request head already
/// rewritten for the upstream (`proxy::head::rewrite_request`). Returns the connection
/// too: if the stream fails before a response, [`H2Conn::connect_error`] tells whether
/// connecting was the reason. Fails when no connection can be had: the circuit breakers'
/// pending queue is full, or the request waited in it until `deadline`.
pub(crate) async fn open_request(
    cluster: &Rc<Pool>,
    ep: usize,
    up_head: &Fields,
    end_stream: bool,
    deadline: Option<Instant>,
) -> Result<(Rc<H2Conn>, Result<UpstreamStream, OpenError>), ConnectError> {
    let conn = cluster.h2_checkout(ep, deadline).await?;
    let opened = conn.open(up_head, end_stream);
    Ok((conn, opened))
}

impl Drop for UpstreamStream {
    fn drop(&mut self) {
        self.sess.settle(&self.slot, Reason::CANCEL, Reason::CANCEL);
    }
}

impl H2Conn {
    /// A connection to endpoint `ep` of `cluster`, admitted with `slots`: its task connects
    /// at once, and streams may be opened before that finishes (their frames wait in the
    /// session).
    pub(crate) fn start(cluster: Rc<Pool>, ep: usize, slots: Slots) -> Rc<Self> {
        let conn = Rc::new(Self {
            sess: Session::new(Role::Client, client_config()),
            connect_error: Cell::new(None),
        });
        monoio::spawn(drive(conn.clone(), cluster, ep, slots));
        conn
    }

    /// Why connecting failed, if it did.
    pub(crate) fn connect_error(&self) -> Option<ConnectError> {
        self.connect_error.get()
    }

    /// A new stream could be opened now.
    pub(crate) fn can_open(&self) -> bool {
        !self.sess.closing.get() && self.sess.conn.borrow().can_open_stream()
    }

    /// Carries no stream and still takes new ones: closing it costs nothing in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.sess.streams() == 0 && !self.sess.closing.get()
    }

    /// Stop taking streams; close once the open ones finished.
    pub(crate) fn retire(&self) {
        self.sess.go_away();
    }

    /// Open a stream sending the request head `fields`.
    fn open(&self, fields: &Fields, end_stream: bool) -> Result<UpstreamStream, OpenError> {
        if !self.can_open() {
            return Err(OpenError::Unavailable);
        }
        let id = self
            .sess
            .conn
            .borrow_mut()
            .open_stream()
            .map_err(|_| OpenError::Unavailable)?;
        let slot = StreamSlot::new(id);
        self.sess.insert(slot.clone());
        let stream = UpstreamStream {
            sess: self.sess.clone(),
            slot,
        };
        stream
            .slot
            .send_headers(&self.sess, fields.iter(), end_stream)
            .map_err(|_| OpenError::Unavailable)?;
        Ok(stream)
    }
}

/// The connection task: connect, then read and write until the upstream goes away, the
/// connection fails, or it is idle too long; then leave the pool.
async fn drive(conn: Rc<H2Conn>, cluster: Rc<Pool>, ep: usize, slots: Slots) {
    let sess = conn.sess.clone();
    let up = match cluster.connect_h2(ep, slots).await {
        Ok(up) => up,
        Err(e) => {
            conn.connect_error.set(Some(e));
            sess.closing.set(true);
            sess.kill_all(Reason::CANCEL);
            cluster.h2_gone(ep, &conn);
            return;
        }
    };
    cluster.stats().upstream_cx_http2_total.inc();
    let (stream, mut lease) = up.into_parts();
    // Many streams, many operations: a registered file.
    stream.use_fixed_file();
    let (mut rd, wr) = stream.into_split();
    let reader = session::read_loop(&sess, &mut rd, BytesMut::new(), |_, _, _, _| {});
    let idle = cluster.idle_timeout();
    // An upstream that takes nothing of a write for as long as a stream may stall (Envoy's
    // default stream idle timeout), or as an unused connection is kept if that is longer, is
    // gone: its streams have ended by their own timeouts, and the connection could not even
    // send its GOAWAY. Not less: a busy upstream may hold back for seconds.
    let stall =
        timer::zero_is_never(idle).max(crate::config::validate::DEFAULT_STREAM_IDLE_TIMEOUT);
    let writer = session::write_loop(&sess, wr, stall);
    let mut reader = std::pin::pin!(reader);
    let mut writer = std::pin::pin!(writer);
    // Keep-alive: a PING once `every` passed since the last answer; no answer within
    // `timeout` means the upstream (or the path to it) is gone.
    let keepalive = cluster.h2_keepalive;
    let mut next_ping = keepalive.map(|(every, _)| timer::coarse_now() + every);
    let mut pong_due: Option<Instant> = None;
    let by_peer = loop {
        // After the upstream's GOAWAY: finish the open streams, then close.
        if sess.conn.borrow().is_going_away() && !sess.closing.get() {
            sess.closing.set(true);
            sess.writer.notify();
        }
        let idle_at = (sess.streams() == 0).then(|| sess.idle_since.get() + idle);
        monoio::select! {
            end = &mut reader => match end {
                ReadEnd::PeerGone => break true,
                ReadEnd::Protocol => {
                    cluster.stats().upstream_cx_protocol_error.inc();
                    sess.closing.set(true);
                    sess.kill_all(Reason::CANCEL);
                    // Flush the GOAWAY the codec queued, briefly.
                    let flushed = monoio::time::timeout(Duration::from_secs(1), &mut writer);
                    let _ = flushed.await;
                    break false;
                }
            },
            _ = &mut writer => break false,
            _ = timer::sleep_until(idle_at.unwrap_or_else(far_future)), if idle_at.is_some() => {
                if sess.streams() == 0 && timer::coarse_now() >= sess.idle_since.get() + idle {
                    cluster.stats().upstream_cx_idle_timeout.inc();
                    sess.go_away();
                }
            }
            _ = sess.streams_changed.wait() => {}
            _ = timer::sleep_until(pong_due.or(next_ping).unwrap_or_else(far_future)), if next_ping.is_some() => {
                let now = timer::coarse_now();
                if let Some(due) = pong_due {
                    if now >= due {
                        cluster.stats().upstream_cx_keepalive_timeout.inc();
                        sess.closing.set(true);
                        sess.kill_all(Reason::CANCEL);
                        break false;
                    }
                } else if next_ping.is_some_and(|at| now >= at) {
                    sess.conn.borrow_mut().ping(*b"ringway\0");
                    sess.writer.notify();
                    pong_due = keepalive.map(|(_, timeout)| now + timeout);
                }
            }
            _ = sess.pong.wait() => {
                pong_due = None;
                next_ping = keepalive.map(|(every, _)| timer::coarse_now() + every);
            }
        }
    };
    sess.closing.set(true);
    sess.kill_all(Reason::CANCEL);
    cluster.h2_gone(ep, &conn);
    if by_peer {
        lease.closed_by_peer();
    }
    drop(lease);
}
