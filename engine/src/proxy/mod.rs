//! The HTTP connection manager: one task per downstream connection. HTTP/1 requests are served
//! in order (pipelined requests wait in the read buffer), each through routing to a local reply
//! or an upstream. A connection that opens with the HTTP/2 preface (prior-knowledge h2c) is
//! handed to [`h2`], as is a TLS connection whose ALPN chose `h2`. The connection's bytes
//! come through [`Io`](crate::net::Io): plain TCP, or TLS terminated by the listener.
//!
//! A busy plain HTTP/1 keep-alive connection reads its next request straight away after a
//! response ([`read_busy`]), holding a pooled buffer only for [`BUSY_QUIET`]. An idle
//! keep-alive connection holds no read buffer and only a small future: it waits for
//! readiness, and the per-request state lives in a boxed future that exists only while a
//! request is being served.

mod body;
mod exchange;
mod grpc;
mod h1;
pub(crate) mod h2;
mod head;
mod message;
mod relay;
mod reply;
mod retry;

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use monoio::io::{CancelableAsyncReadRent, Canceller};

use crate::local::Worker;
use crate::net::Io;
use crate::rt::{buffers, park, timer};

/// A downstream connection between requests.
pub(crate) struct Downstream {
    pub(crate) stream: Io,
    /// Bytes read but not yet consumed (pipelined requests); no capacity while idle.
    pub(crate) buf: BytesMut,
    pub(crate) peer: SocketAddr,
}

/// Which codec a downstream connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Nothing read yet.
    Unknown,
    Http1,
    Http2,
}

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Closed,
    /// Handed to the worker's parking lot; the connection is still open.
    Parked,
}

/// Serve a downstream connection until it closes, times out idle, is parked, or the worker
/// drains. `fresh`: just accepted (count it); otherwise it is coming back from parking.
/// `first`: client bytes already read (after a PROXY protocol header), parsed first.
pub(crate) async fn serve(
    worker: &Rc<Worker>,
    li: usize,
    stream: Io,
    peer: SocketAddr,
    fresh: bool,
    first: BytesMut,
) -> Ended {
    let counters = worker.local().listeners[li].shared().clone();
    let core = worker.core;
    let (ls, http) = (counters.stats.core(core), counters.http.stats.core(core));
    if fresh {
        ls.downstream_cx_total.inc();
        ls.downstream_cx_active.inc();
        http.downstream_cx_total.inc();
        http.downstream_cx_active.inc();
    }
    // Only connections that served HTTP/1 are parked, so one coming back speaks HTTP/1.
    let mut codec = if fresh { Codec::Unknown } else { Codec::Http1 };

    let mut conn = Downstream {
        stream,
        buf: first,
        peer,
    };
    // Cancels the read in flight while a busy connection waits for its next request.
    let mut canceller = None;
    let closed_by_peer = 'conn: loop {
        // A fresh connection's client has almost always sent its request by now, so it is read
        // straight away too (one receive, not a readiness wait then a receive), but only with
        // a buffer the pool has free: connections that open and stay silent, many at once,
        // cost no buffers beyond the pool's.
        let first_read = codec == Codec::Unknown && fresh && buffers::has_free();
        if conn.buf.is_empty()
            && (codec == Codec::Http1 || first_read)
            && matches!(conn.stream, Io::Plain(_))
        {
            // Busy: read the next request straight away (no readiness wait per request),
            // holding a pooled buffer for at most BUSY_QUIET.
            let c = canceller.get_or_insert_with(Canceller::new);
            match read_busy(worker, &mut conn, c).await {
                Busy::Bytes | Busy::Quiet => {}
                Busy::PeerGone => break true,
                Busy::Drain => {
                    http.downstream_cx_drain_close.inc();
                    break false;
                }
            }
        }
        if conn.buf.is_empty() {
            canceller = None;
            buffers::give_back(std::mem::take(&mut conn.buf));
            let idle = worker.local().listener_config(li).http.idle_timeout;
            let now = timer::coarse_now();
            let idle_at = now + idle;
            // Park when idle for a while; parked connections' timeouts are swept once a
            // second, so only long idle timeouts qualify. A TLS session cannot be parked
            // (the lot keeps a bare socket): TLS connections stay in their task.
            let plain = matches!(conn.stream, Io::Plain(_));
            let mut park_at = (idle > 2 * park::PARK_AFTER && codec == Codec::Http1 && plain)
                .then(|| now + park::PARK_AFTER);
            // Idle: a readiness wait, a timer slot and a drain slot; no buffer, no runtime timer.
            let ready = loop {
                let woke = monoio::select! {
                    r = conn.stream.readable(false) => Some(r),
                    _ = timer::sleep_until(park_at.unwrap_or(idle_at)) => None,
                    _ = worker.drain.wait() => {
                        http.downstream_cx_drain_close.inc();
                        break 'conn false;
                    }
                };
                match woke {
                    Some(r) => break r,
                    None if park_at.is_some() => {
                        if let Io::Plain(s) = &conn.stream {
                            if worker.lot.park(s, li, conn.peer, idle_at).is_ok() {
                                return Ended::Parked;
                            }
                        }
                        park_at = None;
                    }
                    None => {
                        http.downstream_cx_idle_timeout.inc();
                        break 'conn false;
                    }
                }
            };
            if ready.is_err() {
                break true;
            }
        }
        if codec == Codec::Unknown {
            let deadline = timer::coarse_now()
                + worker
                    .local()
                    .listener_config(li)
                    .http
                    .request_header_timeout;
            // ALPN's choice wins; without it (or on plaintext), the first bytes tell.
            let sniffed = if conn.stream.is_h2() {
                Some(Codec::Http2)
            } else {
                sniff(&mut conn, deadline).await
            };
            match sniffed {
                None => break true,
                Some(Codec::Http2) => {
                    http.downstream_cx_http2_total.inc();
                    http.downstream_cx_http2_active.inc();
                    let by_peer = crate::rt::boxed(|| h2::serve(worker, li, conn)).await;
                    account_close(worker, li, by_peer, false, Codec::Http2);
                    return Ended::Closed;
                }
                Some(_) => {
                    http.downstream_cx_http1_total.inc();
                    http.downstream_cx_http1_active.inc();
                    codec = Codec::Http1;
                }
            }
        }
        let local = worker.local();
        // Built in its box (`rt::boxed`), not built on the stack and copied in: the
        // exchange's future is kilobytes, and there is one per request.
        match crate::rt::boxed(|| exchange::handle(worker, &local, li, conn)).await {
            exchange::Next::KeepAlive(c) => {
                // A second request: a keep-alive connection, worth a registered file (a
                // connection that carries one request never pays for the registration).
                c.stream.use_fixed_file();
                conn = c;
            }
            exchange::Next::Close => break false,
            exchange::Next::Linger(mut c) => {
                linger(&mut c).await;
                break false;
            }
            exchange::Next::PeerGone => break true,
        }
    };
    account_close(worker, li, closed_by_peer, false, codec);
    Ended::Closed
}

/// How long a keep-alive connection waits for its next request with a read in flight (holding
/// a pooled buffer) before it goes back to waiting for readiness without one. The deadline
/// fires on the timer's tick, so the wait is one to two ticks.
const BUSY_QUIET: std::time::Duration = timer::TICK;

/// How [`read_busy`] ended.
enum Busy {
    /// Bytes are in the connection's buffer.
    Bytes,
    /// Nothing came for [`BUSY_QUIET`]: the read was cancelled, nothing lost; the connection
    /// is idle and its buffer empty.
    Quiet,
    /// The client closed or reset the connection.
    PeerGone,
    /// The worker drains: close.
    Drain,
}

/// Wait for the next request of a plain HTTP/1 keep-alive connection with a read already in
/// flight, so a busy connection costs one receive per request instead of a readiness wait and
/// a receive. The read holds a pooled buffer; after [`BUSY_QUIET`] without bytes it is
/// cancelled (and awaited, so bytes it took are kept) and the caller falls back to the
/// readiness wait, where an idle connection holds no buffer and may be parked.
async fn read_busy(worker: &Worker, conn: &mut Downstream, canceller: &mut Canceller) -> Busy {
    let Io::Plain(s) = &mut conn.stream else {
        return Busy::Quiet;
    };
    buffers::give_back(std::mem::take(&mut conn.buf));
    let buf = buffers::take();
    let quiet_at = timer::coarse_now() + BUSY_QUIET;
    let mut read = std::pin::pin!(s.cancelable_read(buf, canceller.handle()));
    let done = monoio::select! {
        r = &mut read => Some(r),
        _ = timer::sleep_until(quiet_at) => None,
        // Dropping the read cancels it; bytes it took are lost, but the connection closes.
        _ = worker.drain.wait() => return Busy::Drain,
    };
    let (res, buf) = match done {
        Some(r) => r,
        None => {
            // Cancel, then take the read's outcome: it may have completed meanwhile.
            *canceller = std::mem::take(canceller).cancel();
            read.await
        }
    };
    conn.buf = buf;
    match res {
        Ok(0) => Busy::PeerGone,
        Ok(_) => Busy::Bytes,
        Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => Busy::Quiet,
        Err(_) => Busy::PeerGone,
    }
}

/// How long a lingering close waits for the client to finish sending, at most.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(5);
/// How many unread request bytes a lingering close discards, at most.
const LINGER_BYTES: usize = 16 << 20;

/// Close our side, then read and discard what the client still sends (until it closes, for
/// [`LINGER_TIME`] or [`LINGER_BYTES`] at most), so the response we sent is not destroyed by a
/// reset while the client is still writing its request body.
async fn linger(conn: &mut Downstream) {
    use monoio::io::AsyncWriteRent;
    if conn.stream.shutdown().await.is_err() {
        return;
    }
    let deadline = timer::coarse_now() + LINGER_TIME;
    let mut buf = std::mem::take(&mut conn.buf);
    if buf.capacity() == 0 {
        buf = buffers::take();
    }
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        buf.clear();
        match buffers::read_into(&mut conn.stream, &mut buf, Some(deadline)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
    buf.clear();
    buffers::give_back(buf);
}

/// Read the first bytes of a fresh connection until they tell HTTP/2's preface (RFC 9113
/// 3.4) from anything else, which is left to the HTTP/1 codec. `None`: the client left.
async fn sniff(conn: &mut Downstream, deadline: std::time::Instant) -> Option<Codec> {
    if conn.buf.capacity() == 0 {
        conn.buf = buffers::take();
    }
    loop {
        let n = conn.buf.len().min(h2::PREFACE.len());
        if n > 0 && conn.buf[..n] != h2::PREFACE[..n] {
            return Some(Codec::Http1);
        }
        if n == h2::PREFACE.len() {
            return Some(Codec::Http2);
        }
        match buffers::read_into(&mut conn.stream, &mut conn.buf, Some(deadline)).await {
            Ok(0) if conn.buf.is_empty() => return None,
            // A partial preface then silence or EOF: the HTTP/1 codec answers it.
            Ok(0) => return Some(Codec::Http1),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && !conn.buf.is_empty() => {
                return Some(Codec::Http1);
            }
            Err(_) => return None,
        }
    }
}

/// Stats for a downstream connection that is gone (closed by its task or in the parking lot).
pub(crate) fn account_close(
    worker: &Worker,
    li: usize,
    by_peer: bool,
    idle_timeout: bool,
    codec: Codec,
) {
    let local = worker.local();
    let l = &local.listeners[li];
    let (ls, http) = (l.stats(), l.http());
    if idle_timeout {
        http.downstream_cx_idle_timeout.inc();
    }
    ls.downstream_cx_active.dec();
    ls.downstream_cx_destroy.inc();
    http.downstream_cx_active.dec();
    match codec {
        Codec::Http1 => http.downstream_cx_http1_active.dec(),
        Codec::Http2 => http.downstream_cx_http2_active.dec(),
        Codec::Unknown => {}
    }
    http.downstream_cx_destroy.inc();
    if by_peer {
        http.downstream_cx_destroy_remote.inc();
    } else {
        http.downstream_cx_destroy_local.inc();
    }
}
