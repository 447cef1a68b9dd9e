//! The HTTP connection manager: one task per downstream connection. HTTP/1 requests are served
//! in order (pipelined requests wait in the read buffer), each through routing to a local reply
//! or an upstream. A connection that opens with the HTTP/2 preface (prior-knowledge h2c) is
//! handed to [`h2`], as is a TLS connection whose ALPN chose `h2`. The connection's bytes
//! come through [`Io`](crate::net::Io): plain TCP, or TLS terminated by the listener.
//!
//! A busy plain HTTP/1 keep-alive connection reads its next request straight away after a
//! response ([`read_busy`]): on io_uring with a multishot receive armed once and kept across
//! requests and through pauses until the connection is parked, which holds no buffer of its
//! own ([`Downstream::multi`]); elsewhere with a receive holding a pooled buffer, for
//! [`BUSY_QUIET`] at most. An idle keep-alive connection holds no read buffer and only a
//! small future: it waits on that receive or for readiness, and the per-request state lives
//! in a boxed future that exists only while a request is being served.

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
use monoio::net::tcp::MultiRecv;

use crate::local::Worker;
use crate::net::{Io, multishot};
use crate::rt::{buffers, park, timer};
use crate::stats::HttpStats;

/// A downstream connection between requests.
pub(crate) struct Downstream {
    pub(crate) stream: Io,
    /// Bytes read but not yet consumed (pipelined requests); no capacity while idle.
    pub(crate) buf: BytesMut,
    pub(crate) peer: SocketAddr,
    /// A multishot receive armed on a busy plain HTTP/1 connection (io_uring only): it waits
    /// for the next request without a submission, a failed receive and a poll arming per
    /// request, and takes a buffer from the ring only when bytes come. While it is armed
    /// nothing else reads [`Self::stream`]: an exchange that will (a request head in parts, a
    /// body not all in [`Self::buf`], an upgrade, a lingering close) ends it first with
    /// [`Self::end_multi`]; the bytes it took then are in [`Self::buf`].
    pub(crate) multi: Option<MultiRecv>,
}

impl Downstream {
    pub(crate) fn new(stream: Io, buf: BytesMut, peer: SocketAddr) -> Self {
        Self {
            stream,
            buf,
            peer,
            multi: None,
        }
    }

    /// Ends the multishot receive, if one is armed, keeping what it received in
    /// [`Self::buf`] ([`multishot::end`]).
    pub(crate) async fn end_multi(&mut self) {
        multishot::end(&mut self.multi, &mut self.buf).await;
    }

    /// The next bytes of the armed multishot receive, appended to [`Self::buf`]
    /// ([`multishot::next`]). `None`: none is armed.
    async fn recv_multi(&mut self) -> Option<std::io::Result<usize>> {
        multishot::next(&mut self.multi, &mut self.buf).await
    }
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

    let mut conn = Downstream::new(stream, first, peer);
    // Cancels the read in flight while a busy connection waits for its next request.
    let mut canceller = None;
    // Requests the connection has carried (one back from parking has carried some).
    let mut carried: u32 = if fresh { 0 } else { 1 };
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
            // Busy: read the next request straight away (no readiness wait per request), for
            // BUSY_QUIET at most: on io_uring with a multishot receive once it spoke HTTP/1.
            let c = canceller.get_or_insert_with(Canceller::new);
            let armable = (codec == Codec::Http1).then_some(http);
            // From its second request on, its multishot receive is kept through pauses.
            let keep = carried > 1;
            match read_busy(worker, &mut conn, c, armable, keep).await {
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
            // Idle: the armed receive or a readiness wait, a timer slot and a drain slot; no
            // buffer, no runtime timer.
            loop {
                let woke = monoio::select! {
                    w = wait_idle(&mut conn) => Some(w),
                    _ = timer::sleep_until(park_at.unwrap_or(idle_at)) => None,
                    _ = worker.drain.wait() => {
                        http.downstream_cx_drain_close.inc();
                        break 'conn false;
                    }
                };
                match woke {
                    Some(Woke::Ready) => break,
                    Some(Woke::PeerGone) => break 'conn true,
                    // The ring had no buffer: wait for readiness instead.
                    Some(Woke::NoBuffer) => http.downstream_rx_multishot_no_buffer.inc(),
                    None if park_at.is_some() => {
                        // The lot watches the socket itself: the receive ends first, and
                        // bytes it took meanwhile are served here instead.
                        conn.end_multi().await;
                        if !conn.buf.is_empty() {
                            break;
                        }
                        if let Io::Plain(s) = &conn.stream
                            && worker.lot.park(s, li, conn.peer, idle_at).is_ok()
                        {
                            return Ended::Parked;
                        }
                        park_at = None;
                    }
                    None => {
                        http.downstream_cx_idle_timeout.inc();
                        break 'conn false;
                    }
                }
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
                carried = carried.saturating_add(1);
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
    /// Nothing came for [`BUSY_QUIET`]: the connection is idle and its buffer empty. A
    /// receive into a buffer was cancelled, nothing lost; a multishot receive stays armed.
    Quiet,
    /// The client closed or reset the connection.
    PeerGone,
    /// The worker drains: close.
    Drain,
}

/// Wait for the next request of a plain HTTP/1 keep-alive connection with a read already in
/// flight, so a busy connection costs one receive per request instead of a readiness wait and
/// a receive. After [`BUSY_QUIET`] without bytes the read is cancelled (and awaited, so bytes
/// it took are kept) and the caller falls back to the readiness wait, where an idle
/// connection holds no buffer and may be parked.
///
/// `armable` (a connection that has spoken HTTP/1; its listener's stats): on io_uring the
/// read is a multishot receive ([`Downstream::multi`]), armed by the first call and still
/// armed for the next request, so a busy connection costs no submission at all per request;
/// with `keep` (the connection has carried two requests) it stays armed through a pause
/// ([`wait_idle`]) and ends when the connection is parked; without, it ends when the
/// connection goes quiet, as a receive into a buffer does, so thousands of connections that
/// carry a single request and then idle hold no armed receive.
/// Otherwise (the legacy driver, a kernel without buffer rings, a ring out of buffers) the read
/// is a receive into a pooled buffer.
async fn read_busy(
    worker: &Worker,
    conn: &mut Downstream,
    canceller: &mut Canceller,
    armable: Option<&HttpStats>,
    keep: bool,
) -> Busy {
    let Io::Plain(s) = &mut conn.stream else {
        return Busy::Quiet;
    };
    let quiet_at = timer::coarse_now() + BUSY_QUIET;
    if let (Some(http), None) = (armable, &conn.multi) {
        conn.multi = s.recv_multishot();
        if conn.multi.is_some() {
            http.downstream_rx_multishot_armed.inc();
        }
    }
    if conn.multi.is_some() {
        let got = monoio::select! {
            r = conn.recv_multi() => r,
            _ = timer::sleep_until(quiet_at) => None,
            _ = worker.drain.wait() => return Busy::Drain,
        };
        match got {
            Some(Ok(0)) => return Busy::PeerGone,
            Some(Ok(_)) => return Busy::Bytes,
            // Out of ring buffers (nothing was taken): read this time with a buffer below.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                if let Some(http) = armable {
                    http.downstream_rx_multishot_no_buffer.inc();
                }
            }
            Some(Err(_)) => return Busy::PeerGone,
            // Still armed: the idle wait goes on with it ([`wait_idle`]).
            None if keep => return Busy::Quiet,
            None => {
                conn.end_multi().await;
                return if conn.buf.is_empty() {
                    Busy::Quiet
                } else {
                    Busy::Bytes
                };
            }
        }
    }
    let Io::Plain(s) = &mut conn.stream else {
        return Busy::Quiet;
    };
    buffers::give_back(std::mem::take(&mut conn.buf));
    let buf = buffers::take();
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

/// What ended an idle connection's wait ([`wait_idle`]).
enum Woke {
    /// The socket is readable, or bytes are in the connection's buffer.
    Ready,
    /// The client closed or reset the connection.
    PeerGone,
    /// The multishot receive found the ring out of buffers and ended, nothing taken.
    NoBuffer,
}

/// Wait for an idle connection's next bytes: with its multishot receive while one is armed
/// (kept from the busy read, so a pause between requests costs no cancel, no readiness poll
/// and no new receive; the bytes land in [`Downstream::buf`], which takes a pooled buffer only
/// then), else for readiness, holding no buffer.
async fn wait_idle(conn: &mut Downstream) -> Woke {
    match conn.recv_multi().await {
        None => match conn.stream.readable(false).await {
            Ok(()) => Woke::Ready,
            Err(_) => Woke::PeerGone,
        },
        Some(Ok(0)) => Woke::PeerGone,
        Some(Ok(_)) => Woke::Ready,
        Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => Woke::NoBuffer,
        Some(Err(_)) => Woke::PeerGone,
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
    conn.end_multi().await;
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use monoio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::rt::driver::joined;

    /// Bytes `0, 1, …` modulo a prime, so a lost or repeated piece shows.
    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| ((i + seed) % 251) as u8).collect()
    }

    /// A client thread connected to `listener`'s address that writes `pieces` (pausing
    /// `pause` after each) and shuts its write side, then reads until the end of the stream or
    /// an error (at most 10 s) and returns whether the stream ended.
    fn client(
        listener: &TcpListener,
        pieces: Vec<Vec<u8>>,
        pause: Duration,
    ) -> std::thread::JoinHandle<bool> {
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            for p in &pieces {
                c.write_all(p).unwrap();
                std::thread::sleep(pause);
            }
            let _ = c.shutdown(std::net::Shutdown::Write);
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut sink = [0u8; 4096];
            loop {
                match c.read(&mut sink) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
                }
            }
        })
    }

    /// A connection accepted from a [`client`] that writes `pieces`.
    async fn accepted(
        pieces: Vec<Vec<u8>>,
        pause: Duration,
    ) -> (TcpStream, std::thread::JoinHandle<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = client(&listener, pieces, pause);
        let (s, _) = listener.accept().await.unwrap();
        (s, c)
    }

    /// The worker's io_uring runtime, or `None` where this machine has no io_uring.
    fn uring() -> Option<monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>> {
        monoio::utils::detect_uring().then(|| crate::rt::driver::uring_runtime(256).unwrap())
    }

    /// [`uring`] where it defers its task work, which giving the ring's pages back needs.
    fn deferred_uring() -> Option<monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>>
    {
        uring().filter(|_| crate::rt::driver::task_work_deferred())
    }

    /// What `conn` holds in its buffer, then what its socket gives until the end of the stream.
    async fn read_to_end(conn: &mut Downstream) -> Vec<u8> {
        let mut got = conn.buf.to_vec();
        let mut buf = BytesMut::new();
        loop {
            buf.clear();
            match buffers::read_into(&mut conn.stream, &mut buf, None).await {
                Ok(0) => return got,
                Ok(_) => got.extend_from_slice(&buf),
                Err(e) => panic!("after {} bytes: {e}", got.len()),
            }
        }
    }

    /// `len` bytes from `m`, which must not end before.
    async fn receive(m: &mut MultiRecv, len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < len {
            match m.recv(|d| got.extend_from_slice(d)).await {
                Ok(n) if n > 0 => {}
                end => panic!("after {} bytes: {end:?}", got.len()),
            }
        }
        got
    }

    fn downstream(s: TcpStream) -> Downstream {
        let peer = s.peer_addr().unwrap();
        Downstream::new(Io::Plain(s), BytesMut::new(), peer)
    }

    /// The legacy driver has no multishot receive: the busy read keeps its pooled buffer.
    #[test]
    fn the_legacy_driver_arms_no_multishot_receive() {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(async {
                let (s, c) = accepted(vec![], Duration::ZERO).await;
                assert!(s.recv_multishot().is_none());
                drop(s);
                assert!(joined(c).await);
            });
    }

    /// Writes of every size up to more than two ring buffers, some back to back and some
    /// apart, come out of one armed receive whole and in order, then the end of the stream
    /// (0), after which it has ended.
    #[test]
    fn a_multishot_receive_hands_out_every_byte_in_order_then_the_end() {
        let Some(mut rt) = uring() else { return };
        rt.block_on(async {
            let sizes = [1, 17, 4095, 4096, 4097, 9000, 300, 12_000, 2, 65_536];
            let pieces: Vec<_> = sizes.iter().map(|&n| pattern(n, n)).collect();
            let want = pieces.concat();
            let (s, c) = accepted(pieces, Duration::from_millis(2)).await;
            let mut m = s.recv_multishot().expect("armed");
            let mut got = Vec::new();
            loop {
                match m.recv(|d| got.extend_from_slice(d)).await {
                    Ok(0) => break,
                    Ok(n) => assert!(n <= 4096, "one buffer at a time: {n}"),
                    Err(e) => panic!("after {} bytes: {e}", got.len()),
                }
            }
            assert!(m.is_ended());
            assert!(got == want, "{} bytes of {}", got.len(), want.len());
            let again = m.recv(|_| panic!("no bytes after the end")).await;
            assert_eq!(again.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
            drop((m, s));
            assert!(joined(c).await, "the client sees the end");
        });
    }

    /// Ending the receive at any point keeps every byte it took (in the connection's buffer)
    /// and leaves the rest to ordinary reads: together, all of them in order.
    #[test]
    fn ending_a_multishot_receive_loses_no_bytes() {
        let Some(mut rt) = uring() else { return };
        rt.block_on(async {
            for taken_first in [0, 1, 3, 8] {
                let pieces: Vec<_> = (0..40).map(|i| pattern(1000 + 97 * i, i)).collect();
                let want = pieces.concat();
                let (s, c) = accepted(pieces, Duration::from_micros(300)).await;
                let mut conn = downstream(s);
                let Io::Plain(s) = &conn.stream else {
                    unreachable!()
                };
                conn.multi = s.recv_multishot();
                let m = conn.multi.as_mut().expect("armed");
                let buf = &mut conn.buf;
                for _ in 0..taken_first {
                    assert!(m.recv(|d| multishot::take_bytes(buf, d)).await.unwrap() > 0);
                }
                conn.end_multi().await;
                assert!(conn.multi.is_none());
                let got = read_to_end(&mut conn).await;
                assert!(
                    got == want,
                    "{taken_first} taken first: {} bytes of {}",
                    got.len(),
                    want.len()
                );
                drop(conn);
                assert!(joined(c).await);
            }
        });
    }

    /// A peer that sends more than the ring holds while nothing takes it: the receive ends
    /// with `ENOBUFS` after the bytes that fit, none lost (ordinary reads get the rest), and
    /// the buffers it used come back as they are taken. The ring provides 16 buffers at
    /// first and twice as many each time more than half are out, so each round fills at
    /// least as many as the one before, and by the fifth the ring has grown to its 256.
    #[test]
    fn a_ring_out_of_buffers_ends_the_receive_loses_no_bytes_and_grows() {
        let Some(mut rt) = uring() else { return };
        rt.block_on(async {
            let provided = monoio::net::tcp::provided_buffers;
            assert_eq!(provided(), Some(16), "a fresh ring's first buffers");
            let mut before = 0;
            for round in 0..5 {
                let want = pattern(3 << 20, round);
                let (s, c) = accepted(vec![want.clone()], Duration::ZERO).await;
                let mut conn = downstream(s);
                let Io::Plain(s) = &conn.stream else {
                    unreachable!()
                };
                conn.multi = s.recv_multishot();
                // The peer's 3 MiB arrive while nothing is taken.
                monoio::time::sleep(Duration::from_millis(300)).await;
                let m = conn.multi.as_mut().expect("armed");
                let buf = &mut conn.buf;
                let mut completions = 0;
                let end = loop {
                    match m.recv(|d| multishot::take_bytes(buf, d)).await {
                        Ok(0) => break None,
                        Ok(_) => completions += 1,
                        Err(e) => break e.raw_os_error(),
                    }
                };
                assert_eq!(end, Some(libc::ENOBUFS), "round {round}");
                assert!(
                    completions >= before,
                    "round {round}: {completions} buffers before the end, {before} the round before"
                );
                before = completions;
                if round == 4 {
                    assert!(completions >= 128, "the ring grew to {completions} buffers");
                }
                assert!(
                    provided() > Some(16),
                    "round {round}: the ring did not grow"
                );
                conn.multi = None;
                let got = read_to_end(&mut conn).await;
                assert!(got == want, "{} bytes of {}", got.len(), want.len());
                drop(conn);
                assert!(joined(c).await);
            }
        });
    }

    /// Arrivals taken as they come never pile up: the ring keeps its first 16 buffers, so a
    /// worker that is never flooded touches 64 KiB of its ring's memory, not 1 MiB. The peer
    /// sends each piece after the one before was answered, so at most one is out at a time.
    #[test]
    fn a_ring_whose_arrivals_are_taken_as_they_come_stays_small() {
        use monoio::io::AsyncWriteRentExt;
        let Some(mut rt) = uring() else { return };
        rt.block_on(async {
            let pieces: Vec<Vec<u8>> = (0..200).map(|i| pattern(100, i)).collect();
            let want = pieces.concat();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let c = std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                pieces.iter().all(|p| {
                    let mut ack = [0u8; 1];
                    c.write_all(p).is_ok() && c.read_exact(&mut ack).is_ok()
                })
            });
            let (mut s, _) = listener.accept().await.unwrap();
            let mut m = s.recv_multishot().expect("armed");
            let mut got = Vec::new();
            while got.len() < want.len() {
                got.extend(receive(&mut m, 100).await);
                let (res, _) = s.write_all(vec![1u8]).await;
                res.unwrap();
            }
            assert!(got == want, "{} bytes of {}", got.len(), want.len());
            assert_eq!(monoio::net::tcp::provided_buffers(), Some(16));
            drop((m, s));
            assert!(joined(c).await);
        });
    }

    /// The pages of the ring's buffers go back to the system after a quiet second (one call
    /// to end the second bytes came in, one to find it quiet), and bytes that come later land
    /// in fresh pages intact.
    #[test]
    fn a_quiet_ring_gives_its_pages_back_and_fills_them_again_intact() {
        let Some(mut rt) = deferred_uring() else {
            return;
        };
        rt.block_on(async {
            let release = monoio::net::tcp::release_idle_buffers;
            for round in 0..3 {
                let want = pattern(40_000, round);
                let (s, c) = accepted(vec![want.clone()], Duration::ZERO).await;
                let mut m = s.recv_multishot().expect("armed");
                let got = receive(&mut m, want.len()).await;
                assert!(got == want, "round {round}: the bytes changed");
                assert!(
                    !release(),
                    "round {round}: released in the second bytes came"
                );
                assert!(
                    release(),
                    "round {round}: not released after a quiet second"
                );
                assert!(!release(), "round {round}: released twice");
                drop((m, s));
                assert!(joined(c).await);
            }
        });
    }

    /// Buffers holding bytes nobody has taken yet keep their pages, however quiet the ring.
    #[test]
    fn a_ring_holding_bytes_not_taken_keeps_its_pages() {
        let Some(mut rt) = deferred_uring() else {
            return;
        };
        rt.block_on(async {
            let release = monoio::net::tcp::release_idle_buffers;
            let want = pattern(3 * 4096, 9);
            let (s, c) = accepted(vec![want.clone()], Duration::ZERO).await;
            let mut m = s.recv_multishot().expect("armed");
            // The bytes land in the ring while nothing takes them.
            monoio::time::sleep(Duration::from_millis(100)).await;
            release();
            assert!(!release(), "released while bytes were waiting in the ring");
            let got = receive(&mut m, want.len()).await;
            assert!(got == want, "the bytes changed");
            drop((m, s));
            assert!(joined(c).await);
        });
    }

    /// A receive dropped with completions nobody took gives their buffers back (a second one
    /// then has the whole ring again), and its socket closes once the cancel is done.
    #[test]
    fn a_dropped_multishot_receive_gives_its_buffers_back_and_closes_its_socket() {
        let Some(mut rt) = uring() else { return };
        rt.block_on(async {
            for _ in 0..3 {
                // About 180 of the ring's 256 buffers.
                let want = pattern(180 * 4096, 7);
                let (s, c) = accepted(vec![want.clone()], Duration::ZERO).await;
                let mut m = s.recv_multishot().expect("armed");
                let mut got = Vec::new();
                while got.len() < want.len() {
                    match m.recv(|d| got.extend_from_slice(d)).await {
                        Ok(n) => assert!(n > 0),
                        Err(e) => panic!("after {} bytes: {e} (buffers kept?)", got.len()),
                    }
                    if got.len() == 4096 {
                        // The rest lands in the ring while nothing takes it; this round's
                        // receive then goes, holding it.
                        monoio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
                drop((m, s));
                assert!(joined(c).await, "the client sees its socket closed");
            }
        });
    }
}
