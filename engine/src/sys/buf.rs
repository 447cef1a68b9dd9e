//! Safe views of monoio's owned IO buffers for code that fills or drains them in memory (the
//! TLS layer copies plaintext in and out of its callers' buffers instead of handing them to
//! the kernel).
//!
//! monoio's buffer traits are `unsafe` to implement: an implementation promises that the
//! pointer it returns is valid for the lengths it reports for as long as the buffer lives and
//! is not otherwise borrowed. The functions here rely on exactly that promise.
#![cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "used by the TLS stream, which the listeners use from phase 2 of issue #5"
    )
)]

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};

/// The initialized bytes of `buf` (what a write would send).
pub(crate) fn filled<T: IoBuf>(buf: &T) -> &[u8] {
    let (ptr, len) = (buf.read_ptr(), buf.bytes_init());
    if len == 0 {
        return &[];
    }
    // SAFETY: `IoBuf` implementations guarantee `read_ptr` is valid for `bytes_init` initialized
    // bytes while `buf` is alive; the slice borrows `buf`, so it cannot outlive or alias a
    // mutable use of it.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// Copies as much of `src` as fits into `buf` starting `at` bytes from its start (monoio reads
/// fill a buffer from its start), marks `at + copied` bytes initialized and returns `copied`.
/// `at` must not exceed what is already initialized by earlier calls; it is clamped to the
/// buffer's capacity.
pub(crate) fn fill_at<T: IoBufMut>(buf: &mut T, at: usize, src: &[u8]) -> usize {
    let total = buf.bytes_total();
    let at = at.min(total);
    let n = src.len().min(total - at);
    if n == 0 {
        return 0;
    }
    // SAFETY: `IoBufMut` implementations guarantee `write_ptr` is valid for writes of
    // `bytes_total` bytes; `at + n <= total`, and `src` is a shared borrow that cannot overlap
    // the exclusively borrowed `buf`. `set_init` is told only about bytes written here or
    // (below `at`) by earlier calls.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), buf.write_ptr().add(at), n);
        buf.set_init(at + n);
    }
    n
}

/// The initialized parts of a vectored buffer, in order (what a `writev` would send).
pub(crate) fn filled_vec<T: IoVecBuf>(buf: &T) -> impl Iterator<Item = &[u8]> {
    let (ptr, len) = (buf.read_iovec_ptr(), buf.read_iovec_len());
    (0..len).filter_map(move |i| {
        // SAFETY: `IoVecBuf` implementations guarantee `read_iovec_ptr` points to
        // `read_iovec_len` iovecs, each valid for `iov_len` bytes, while `buf` is alive and
        // borrowed (the iterator borrows `buf`).
        let iov = unsafe { *ptr.add(i) };
        if iov.iov_len == 0 {
            return None;
        }
        // SAFETY: as above; the bytes are initialized (they are what a writev would send).
        Some(unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len) })
    })
}

/// Copies as much of `src` as fits into the parts of a vectored buffer, in order, marks the
/// copied bytes initialized and returns how many were copied.
pub(crate) fn fill_vec<T: IoVecBufMut>(buf: &mut T, src: &[u8]) -> usize {
    let (ptr, len) = (buf.write_iovec_ptr(), buf.write_iovec_len());
    let mut copied = 0;
    for i in 0..len {
        if copied == src.len() {
            break;
        }
        // SAFETY: `IoVecBufMut` implementations guarantee `write_iovec_ptr` points to
        // `write_iovec_len` iovecs while `buf` is exclusively borrowed.
        let iov = unsafe { *ptr.add(i) };
        let n = iov.iov_len.min(src.len() - copied);
        if n == 0 {
            continue;
        }
        // SAFETY: each iovec is valid for writes of `iov_len` bytes (`n <= iov_len`) and does
        // not overlap `src`, a shared borrow of other memory.
        unsafe {
            std::ptr::copy_nonoverlapping(src[copied..].as_ptr(), iov.iov_base as *mut u8, n);
        }
        copied += n;
    }
    // SAFETY: exactly the first `copied` bytes (in iovec order) were written above.
    unsafe { buf.set_init(copied) };
    copied
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use monoio::buf::VecBuf;

    use super::*;

    #[test]
    fn fills_and_views_plain_buffers() {
        let mut b = BytesMut::with_capacity(8);
        assert_eq!(fill_at(&mut b, 0, b"hello"), 5);
        assert_eq!(fill_at(&mut b, 5, b"world"), 3);
        assert_eq!(&b[..], b"hellowor");
        assert_eq!(filled(&b), b"hellowor");
        assert_eq!(fill_at(&mut b, 8, b"x"), 0);
        assert_eq!(filled(&Vec::<u8>::new()), b"");
    }

    #[test]
    fn fills_and_views_vectored_buffers() {
        // A VecBuf's parts are as long as its vectors (zeroed here) and refilled in place.
        let mut v = VecBuf::from(vec![vec![0; 3], Vec::new(), vec![0; 4]]);
        assert_eq!(fill_vec(&mut v, b"abcdefghij"), 7);
        let parts: Vec<&[u8]> = filled_vec(&v).collect();
        assert_eq!(parts, vec![&b"abc"[..], &b"defg"[..]]);
    }
}
