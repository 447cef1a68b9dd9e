//! A connection read through a multishot receive ([`MultiRecv`], io_uring only): armed once,
//! it takes each arrival into a buffer of the ring's provided buffers, so a connection that
//! waits for the next message of a busy exchange costs no submission, no failed receive and
//! no poll arming per message. The HTTP connection manager arms one on a busy HTTP/1 client
//! connection ([`crate::proxy`]'s `read_busy`).
//!
//! While one is armed nothing else may read the socket (both would take bytes): a reader that
//! needs the socket itself (a request head in parts, a body, a tunnel, a lingering close,
//! parking) first ends it with [`end`], which keeps what it received.

use bytes::BytesMut;
use monoio::net::tcp::MultiRecv;

use crate::rt::buffers;

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
