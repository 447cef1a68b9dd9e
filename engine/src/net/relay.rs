//! Copying bytes both ways between a downstream and an upstream connection until both
//! directions are done, passing each half-close (`shutdown(SHUT_WR)`) on to the other side:
//! the TCP proxy's relay ([`crate::tcp`]) and the HTTP/1 Upgrade tunnel after `101 Switching
//! Protocols` ([`tunnel`]) are this one relay.
//!
//! Owns the copy loops, their byte counters and the shared idle deadline (no byte either way
//! for `idle` closes both sides). Does not connect, pick endpoints, read PROXY headers or parse
//! HTTP (its callers do), and knows no network filter: a caller's filters are behind
//! [`Filters`] (the TCP proxy's chain; [`NoFilters`] for a tunnel). Each direction reuses one
//! owned buffer: monoio reads into the start of a `Vec`'s capacity, so the buffer is emptied
//! before each read. A reset (read or write error, not an orderly end of stream) on either
//! side ends both directions at once.
//!
//! When both sides are plain TCP the bytes take the zero-copy path instead ([`splice`]:
//! socket -> pipe -> socket with `splice(2)`, or a pooled buffer while a filter needs to see
//! them); TLS on either side, or no pipe to be had, keeps the buffered copy here. Both paths
//! share [`drive`] (the idle deadline and how the two directions end the relay), and both show
//! the caller's [`Filters`] every byte they move or count, before it is written on.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};

// A child of the relay (`net/relay/splice.rs`): the zero-copy path is a part of it.
mod splice;

use super::Io;
use crate::rt::timer;
use crate::stats::Counter;

/// Bytes read per direction per call (one buffer of this size per direction).
pub(crate) const CHUNK: usize = 64 * 1024;

/// Which way bytes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Downstream -> upstream (Envoy's `onData`).
    ToUpstream,
    /// Upstream -> downstream (Envoy's `onWrite`).
    ToDownstream,
}

/// How the relay moves the next bytes of one direction, decided by the caller's [`Filters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Zero copy (splice), at most this many bytes before asking again (`u64::MAX`: no limit).
    Splice(u64),
    /// Through a pooled buffer, so that filters see the bytes.
    Copy,
}

/// What watches the bytes a relay moves (the TCP proxy's network filter chain). Both
/// directions share it; the relay never holds a call across an await.
pub(crate) trait Filters {
    /// How the next bytes going `dir` move.
    fn path(&self, dir: Dir) -> Path;
    /// Bytes going `dir` that the relay holds in memory (copied, or read before the relay
    /// began), before they are written on.
    fn on_bytes(&self, dir: Dir, bytes: &[u8]);
    /// `n` bytes spliced `dir` (none needed to be seen, by [`Self::path`]).
    fn on_passed(&self, dir: Dir, n: u64);
}

/// No filter: every byte may be spliced, and nobody is told of any.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoFilters;

impl Filters for NoFilters {
    fn path(&self, _dir: Dir) -> Path {
        Path::Splice(u64::MAX)
    }

    fn on_bytes(&self, _dir: Dir, _bytes: &[u8]) {}

    fn on_passed(&self, _dir: Dir, _n: u64) {}
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Both directions reached end of stream and were half-closed in turn.
    Done,
    /// A read or write failed (reset); both sides are closed.
    Reset {
        /// The upstream side failed (else the downstream side).
        upstream: bool,
    },
    /// No byte moved either way for the idle timeout.
    IdleTimeout,
}

/// Counters a direction adds its bytes to (each worker writes only its own slots).
#[derive(Clone, Copy)]
pub(crate) struct Meter<'a> {
    /// Bytes read from the downstream side (sent upstream).
    pub(crate) down_rx: [&'a Counter; 2],
    /// Bytes read from the upstream side (sent downstream).
    pub(crate) up_rx: [&'a Counter; 2],
    /// How the zero-copy path was used.
    pub(crate) splice: SpliceMeter<'a>,
}

/// Counters of the zero-copy path ([`splice`]).
#[derive(Clone, Copy)]
pub(crate) struct SpliceMeter<'a> {
    /// Connections relayed with splice.
    pub(crate) relayed: &'a Counter,
    /// Plain connections copied through a buffer because no pipe could be created.
    pub(crate) fallback: &'a Counter,
    /// Pipes created (not taken from the worker's pool).
    pub(crate) pipes_created: &'a Counter,
    /// Spliceable connections that copied for a while because a network filter needed the
    /// bytes.
    pub(crate) filter_copy: &'a Counter,
    /// Bytes those connections copied.
    pub(crate) filter_copy_bytes: &'a Counter,
}

/// Relay until both directions are done, one fails, or `idle` passes without a byte.
/// `first` holds downstream bytes already read (after a PROXY header, or past an HTTP head):
/// they go upstream first; `up_first` likewise holds upstream bytes already read, which go
/// downstream first. Returns how it ended and the bytes moved (downstream -> upstream,
/// upstream -> downstream).
pub(crate) async fn run(
    down: Io,
    first: BytesMut,
    up: Io,
    up_first: BytesMut,
    idle: Option<Duration>,
    meter: Meter<'_>,
    filters: &dyn Filters,
) -> (End, u64, u64) {
    let (down, up) = match (down, up) {
        (Io::Plain(d), Io::Plain(u)) => match splice::Pipes::take(meter) {
            Ok(pipes) => {
                return splice::run(d, first, u, up_first, pipes, idle, meter, filters).await;
            }
            Err(e) => {
                log::debug!("relay: no pipes ({e}), copying through a buffer");
                meter.splice.fallback.inc();
                (Io::Plain(d), Io::Plain(u))
            }
        },
        other => other,
    };
    buffered(down, first, up, up_first, idle, meter, filters).await
}

/// The tunnel of an upgraded HTTP/1 connection (after `101 Switching Protocols`: WebSocket
/// and other Upgrades): [`run`] with no filters, `down_buf` and `up_buf` holding the bytes
/// each side sent past its head, and the listener's HTTP idle timeout. Plain TCP both sides
/// splices; TLS on either side copies. The caller counts the bytes from the totals returned
/// (the exchange's access-log record feeds `http.<listener>.downstream_cx_*_bytes_total`), so
/// the relay's own counters here count nothing anyone reads.
pub(crate) async fn tunnel(
    down: Io,
    down_buf: BytesMut,
    up: Io,
    up_buf: BytesMut,
    idle: Duration,
) -> (End, u64, u64) {
    let unread: [Counter; 7] = Default::default();
    let [a, b, c, d, e, f, g] = &unread;
    let meter = Meter {
        down_rx: [a, a],
        up_rx: [b, b],
        splice: SpliceMeter {
            relayed: c,
            fallback: d,
            pipes_created: e,
            filter_copy: f,
            filter_copy_bytes: g,
        },
    };
    run(down, down_buf, up, up_buf, Some(idle), meter, &NoFilters).await
}

/// [`run`] through a buffer per direction (any stream, TLS included).
async fn buffered(
    down: Io,
    first: BytesMut,
    up: Io,
    up_first: BytesMut,
    idle: Option<Duration>,
    meter: Meter<'_>,
    filters: &dyn Filters,
) -> (End, u64, u64) {
    let (mut dr, mut dw) = down.into_split();
    let (mut ur, mut uw) = up.into_split();
    let last = Cell::new(timer::coarse_now());
    let (to_up_n, to_down_n) = (Cell::new(0u64), Cell::new(0u64));
    let up_side = Tally {
        dir: Dir::ToUpstream,
        filters,
        meter: meter.down_rx,
        last: &last,
        moved: &to_up_n,
    };
    let down_side = Tally {
        dir: Dir::ToDownstream,
        filters,
        meter: meter.up_rx,
        last: &last,
        moved: &to_down_n,
    };
    let to_up = copy(&mut dr, first, &mut uw, up_side);
    let to_down = copy(&mut ur, up_first, &mut dw, down_side);
    let end = drive(to_up, to_down, &last, idle).await;
    (end, to_up_n.get(), to_down_n.get())
}

/// Runs both directions (downstream -> upstream, upstream -> downstream) until both are
/// done, one fails (a reset ends both at once), or `idle` passes since `last`.
pub(crate) async fn drive(
    to_up: impl Future<Output = Result<(), Side>>,
    to_down: impl Future<Output = Result<(), Side>>,
    last: &Cell<Instant>,
    idle: Option<Duration>,
) -> End {
    let mut to_up = pin!(to_up);
    let mut to_down = pin!(to_down);
    let mut watch = pin!(idle_watch(last, idle));
    let (mut up_done, mut down_done) = (false, false);
    poll_fn(|cx| {
        if !up_done {
            if let Poll::Ready(r) = to_up.as_mut().poll(cx) {
                up_done = true;
                if let Err(side) = r {
                    return Poll::Ready(End::Reset {
                        upstream: side == Side::Dst,
                    });
                }
            }
        }
        if !down_done {
            if let Poll::Ready(r) = to_down.as_mut().poll(cx) {
                down_done = true;
                if let Err(side) = r {
                    return Poll::Ready(End::Reset {
                        upstream: side == Side::Src,
                    });
                }
            }
        }
        if up_done && down_done {
            return Poll::Ready(End::Done);
        }
        if watch.as_mut().poll(cx).is_ready() {
            return Poll::Ready(End::IdleTimeout);
        }
        Poll::Pending
    })
    .await
}

/// Which end of a direction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The socket bytes are read from.
    Src,
    /// The socket bytes are written to.
    Dst,
}

/// Where one direction reports the bytes it moves: the filters, the byte counters, the
/// direction's total and the shared idle clock.
#[derive(Clone, Copy)]
pub(crate) struct Tally<'a> {
    pub(crate) dir: Dir,
    pub(crate) filters: &'a dyn Filters,
    pub(crate) meter: [&'a Counter; 2],
    pub(crate) last: &'a Cell<Instant>,
    pub(crate) moved: &'a Cell<u64>,
}

impl Tally<'_> {
    /// `n` bytes written on.
    pub(crate) fn count(&self, n: usize) {
        for c in self.meter {
            c.add(n as u64);
        }
        self.moved.set(self.moved.get() + n as u64);
        self.last.set(timer::coarse_now());
    }
}

/// One direction: write `first`, then read and write until end of stream, then half-close
/// `dst`. Filters see each chunk before it is written. `Err` names the side that failed.
async fn copy<R: AsyncReadRent, W: AsyncWriteRent>(
    src: &mut R,
    first: BytesMut,
    dst: &mut W,
    tally: Tally<'_>,
) -> Result<(), Side> {
    if !first.is_empty() {
        let n = first.len();
        tally.filters.on_bytes(tally.dir, &first);
        dst.write_all(first).await.0.map_err(|_| Side::Dst)?;
        tally.count(n);
    }
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        buf.clear();
        let (res, b) = src.read(buf).await;
        buf = b;
        match res {
            Ok(0) => break,
            Ok(n) => {
                tally.filters.on_bytes(tally.dir, &buf);
                let (res, b) = dst.write_all(buf).await;
                buf = b;
                res.map_err(|_| Side::Dst)?;
                tally.count(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Side::Src),
        }
    }
    // Pass the half-close on: the other direction may still be sending.
    dst.shutdown().await.map_err(|_| Side::Dst)
}

/// Completes once `idle` has passed since the last byte moved; never with `None`.
async fn idle_watch(last: &Cell<Instant>, idle: Option<Duration>) {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    loop {
        let at = last.get() + idle;
        timer::sleep_until(at).await;
        // The real clock: a deadline already past completes at once, before the next tick
        // moves `coarse_now`, and must not spin.
        if last.get() + idle <= Instant::now() {
            return;
        }
    }
}
