//! A connection read through a multishot receive ([`MultiRecv`], io_uring only): armed once,
//! it takes each arrival into a buffer of the ring's provided buffers, so a connection that
//! waits for the next message of a busy exchange costs no submission, no failed receive and
//! no poll arming per message. The HTTP connection manager arms one on a busy HTTP/1 client
//! connection, the router on a pooled HTTP/1 upstream connection whose responses come whole
//! with their heads.
//!
//! While one is armed nothing else may read the socket (both would take bytes): a reader that
//! needs the socket itself (a body to splice, a tunnel, a split for a concurrent upload, a
//! lingering close, parking) first ends it with [`end`], which keeps what it received.

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use monoio::net::tcp::MultiRecv;

use super::Io;
use crate::rt::{buffers, timer};

/// Arms a multishot receive on a plain connection; `None` on TLS, the legacy driver, or a ring
/// without provided buffers.
pub(crate) fn arm(io: &Io) -> Option<MultiRecv> {
    match io {
        Io::Plain(s) => s.recv_multishot(),
        Io::Tls(_) => None,
    }
}

/// Appends `d`, bytes a multishot receive took, to `buf`. Into an empty buffer they go at the
/// start of a pooled one, as a receive's would (the buffer given back and taken again: the same
/// one, its space reclaimed), not after the messages already consumed from it.
pub(crate) fn take_bytes(buf: &mut BytesMut, d: &[u8]) {
    if buf.is_empty() {
        buffers::give_back(std::mem::take(buf));
        *buf = buffers::take();
    }
    buf.extend_from_slice(d);
}

/// The next bytes of the receive armed in `slot`, appended to `buf`; `Ok(0)` at the end of
/// the stream, `ENOBUFS` when the ring ran out of buffers (nothing taken). `None`: no receive
/// is armed. A receive that ended (the peer's close, an error) is taken out of `slot`.
/// Dropped before it is ready, it loses nothing: the receive stays armed.
pub(crate) async fn next(
    slot: &mut Option<MultiRecv>,
    buf: &mut BytesMut,
) -> Option<io::Result<usize>> {
    let m = slot.as_mut()?;
    let got = m.recv(|d| take_bytes(buf, d)).await;
    if m.is_ended() {
        *slot = None;
    }
    Some(got)
}

/// [`next`], waiting until `deadline` at most (`TimedOut`; nothing is lost, the receive stays
/// armed). `None` also when the ring ran out of buffers: read the socket instead.
pub(crate) async fn recv(
    slot: &mut Option<MultiRecv>,
    buf: &mut BytesMut,
    deadline: Option<Instant>,
) -> Option<io::Result<usize>> {
    slot.as_ref()?;
    let got = match deadline {
        Some(at) => monoio::select! {
            r = next(slot, buf) => r?,
            _ = timer::sleep_until(at) => Err(io::ErrorKind::TimedOut.into()),
        },
        None => next(slot, buf).await?,
    };
    match got {
        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => None,
        r => Some(r),
    }
}

/// Ends the receive armed in `slot`, if any: cancels it and appends what it received up to its
/// end to `buf`, so the socket can be read (or spliced, split, parked) with nothing lost. A
/// peer's close or reset it saw is seen again by the next read of the socket.
pub(crate) async fn end(slot: &mut Option<MultiRecv>, buf: &mut BytesMut) {
    let Some(mut m) = slot.take() else {
        return;
    };
    m.cancel();
    while !m.is_ended() {
        let _ = m.recv(|d| take_bytes(buf, d)).await;
    }
}
