//! Per-core pool of read buffers.
//!
//! An idle connection holds no buffer: it waits for readiness, takes a buffer from this pool
//! when bytes arrive and gives it back when its request is done. (A busy HTTP/1 keep-alive
//! connection reads its next request with a pooled buffer for a short while before it waits
//! like that: `proxy::read_busy`.) The pool is thread-local (one
//! per worker), so taking and returning a buffer is a `Vec` push/pop with no atomics.

use std::cell::RefCell;

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

use crate::rt::timer;
use crate::sys::pool::FreeList;

/// Capacity of a pooled read buffer: large enough for nearly every request head and a small
/// body in one read.
pub(crate) const BUF_SIZE: usize = 16 * 1024;
/// Buffers kept per worker (1 MiB); beyond that they go back to the allocator, so a burst of
/// concurrent requests does not pin its peak memory for the life of the process.
const POOL_MAX: usize = 64;

thread_local! {
    static POOL: RefCell<FreeList<BytesMut>> = const { RefCell::new(FreeList::new(POOL_MAX)) };
}

/// Let go of the pooled buffers an idle spell did not use ([`FreeList::trim`]), so a burst of
/// requests does not pin its peak after it is over.
pub(crate) fn trim() {
    POOL.with(|p| p.borrow_mut().trim());
}

/// Whether this worker has a pooled buffer free now: [`take`] would allocate none.
pub(crate) fn has_free() -> bool {
    POOL.with(|p| !p.borrow().is_empty())
}

/// An empty buffer with at least [`BUF_SIZE`] bytes of capacity.
pub(crate) fn take() -> BytesMut {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
}

/// Return a buffer. It is pooled only when empty and its whole allocation is reclaimable
/// (no `Bytes` split from it is still alive); otherwise it is simply dropped.
pub(crate) fn give_back(mut buf: BytesMut) {
    if !buf.is_empty() {
        return;
    }
    if !buf.try_reclaim(BUF_SIZE) || buf.capacity() > 4 * BUF_SIZE {
        return;
    }
    POOL.with(|p| p.borrow_mut().push(buf));
}

/// Make sure `buf` has room for a read of a useful size.
pub(crate) fn reserve_for_read(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(BUF_SIZE);
    }
}

/// Read more bytes into `buf`. `Ok(0)` is end of stream. A deadline turns into `TimedOut`.
///
/// When the deadline wins the race, the read is dropped with `buf`: whatever it had read is
/// gone, and `buf` is left empty. So `TimedOut` ends the connection at every caller (a request
/// head or body that came too slowly, an upstream that answered too slowly): nobody is left to
/// read those bytes. monoio's cancelable read would give them back, but its canceller hashes
/// every read it guards (SipHash, into a `HashSet`): measured, about 1,900 more instructions per
/// proxied HTTP/1 request. A caller that must survive a timer without ending the connection
/// waits for readiness (`Io::readable`) against the timer and reads only once bytes are there,
/// as an idle keep-alive connection does, or uses a cancelable read and cancels it instead of
/// dropping it, as a busy one does (`proxy::read_busy`: one association with a monoio
/// `Canceller` per request; the patched monoio under `vendor/` keeps it in a `Vec`, not a
/// SipHash `HashSet`).
pub(crate) async fn read_into<R: AsyncReadRent>(
    io: &mut R,
    buf: &mut BytesMut,
    deadline: Option<Instant>,
) -> io::Result<usize> {
    reserve_for_read(buf);
    // monoio reads at the buffer's start; a slice over the spare capacity appends instead.
    let start = buf.len();
    let spare = std::mem::take(buf).slice_mut(start..);
    let (res, spare) = match deadline {
        Some(d) => monoio::select! {
            r = io.read(spare) => r,
            _ = timer::sleep_until(d) => return Err(io::ErrorKind::TimedOut.into()),
        },
        None => io.read(spare).await,
    };
    *buf = spare.into_inner();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimed_buffer_is_reused() {
        let mut b = take();
        let ptr = b.as_ptr();
        b.extend_from_slice(b"hello");
        let frozen = b.split_to(5).freeze();
        drop(frozen);
        give_back(b);
        let again = take();
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.capacity() >= BUF_SIZE);
    }

    #[test]
    fn buffer_with_live_slice_is_not_pooled() {
        let mut b = take();
        b.extend_from_slice(b"hello");
        let frozen = b.split_to(5).freeze();
        give_back(b);
        let other = take();
        // The pool could not have handed back memory `frozen` still uses.
        assert_ne!(other.as_ptr(), frozen.as_ptr());
        assert_eq!(&frozen[..], b"hello");
    }
}
