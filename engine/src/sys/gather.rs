//! A message sent as parts of two buffers with one vectored write (`writev`): an HTTP/1
//! upstream request whose untouched field lines stay in the client's head buffer and whose
//! edits (request line, changed and added fields, a small body) are written into an output
//! buffer (`proxy::head::H1Parts` decides which is which).
//!
//! Owns: [`Gather`], the parts as offsets into the two buffers plus the `iovec` array handed
//! to the kernel, both kept in a per-worker pool so a request allocates neither. Does not:
//! decide what goes where, or own the sockets.

use std::cell::RefCell;
use std::io;
use std::ops::Range;

use bytes::Bytes;
use monoio::buf::IoVecBuf;
use monoio::io::AsyncWriteRent;

use super::pool::FreeList;

/// Which buffer a part is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    /// The client's head as received.
    Head,
    /// The output buffer the edits were written to.
    Out,
}

#[derive(Debug, Clone, Copy)]
struct Part {
    src: Src,
    // Not `u32`: the output buffer may hold a whole collected body after the head.
    start: usize,
    end: usize,
}

/// The most `iovec`s one `writev` takes (Linux `UIO_MAXIOV`; more is `EINVAL`). A head with
/// more parts (hundreds of fields, kept and dropped in turn) goes in several writes.
const MAX_IOVECS: usize = 1024;

/// Gathers kept per worker (one per HTTP/1 request in flight, so more than the read buffers'
/// pool: each is a few hundred bytes); more are simply freed.
const POOL_MAX: usize = 256;
/// A gather whose part list grew beyond this (a head with very many fields) is freed rather
/// than pooled, so one such request does not pin its memory.
const POOL_MAX_PARTS: usize = 64;

thread_local! {
    static POOL: RefCell<FreeList<Gather>> = const { RefCell::new(FreeList::new(POOL_MAX)) };
}

/// Let go of the pooled gathers an idle spell did not use ([`FreeList::trim`]).
pub(crate) fn trim() {
    POOL.with(|p| p.borrow_mut().trim());
}

/// The parts of one message in order, then (once both buffers are frozen) the `iovec`s over
/// them. Adjacent parts of the same buffer are one part. Boxed: it moves into the write
/// operation and back, through every future on the way, as one pointer.
#[derive(Default)]
pub(crate) struct Gather(Box<Inner>);

#[derive(Default)]
struct Inner {
    parts: Vec<Part>,
    head: Bytes,
    out: Bytes,
    iovs: Vec<libc::iovec>,
    /// The first `iovec` not yet written.
    first: usize,
}

impl Gather {
    /// An empty gather, from the pool when it has one.
    pub(crate) fn take() -> Self {
        POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default()
    }

    /// Return `self` to the pool, releasing the buffers (so the output buffer's allocation can
    /// be reclaimed once its other handles are gone).
    pub(crate) fn give_back(mut self) {
        let g = &mut *self.0;
        if g.parts.capacity() > POOL_MAX_PARTS {
            return;
        }
        g.parts.clear();
        g.iovs.clear();
        g.head = Bytes::new();
        g.out = Bytes::new();
        g.first = 0;
        POOL.with(|p| p.borrow_mut().push(self));
    }

    /// Append `range` of `src` to the message.
    pub(crate) fn push(&mut self, src: Src, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        let (start, end) = (range.start, range.end);
        let parts = &mut self.0.parts;
        if let Some(last) = parts.last_mut() {
            if last.src == src && last.end == start {
                last.end = end;
                return;
            }
        }
        parts.push(Part { src, start, end });
    }

    /// The message is one part of the output buffer (nothing to gather).
    pub(crate) fn is_out_only(&self) -> bool {
        matches!(self.0.parts.as_slice(), [Part { src: Src::Out, .. }] | [])
    }

    /// The message's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.parts.iter().map(|p| p.end - p.start).sum()
    }

    /// The message's parts as slices of `head` and `out`.
    pub(crate) fn slices<'b>(
        &'b self,
        head: &'b [u8],
        out: &'b [u8],
    ) -> impl Iterator<Item = &'b [u8]> + 'b {
        self.0.parts.iter().map(move |p| {
            let buf = match p.src {
                Src::Head => head,
                Src::Out => out,
            };
            buf.get(p.start..p.end).unwrap_or_default()
        })
    }

    /// Hold the two buffers the parts point into and lay out the `iovec`s over them, from the
    /// first byte (a message is sent again from its start).
    ///
    /// # Panics
    /// If a part lies outside its buffer.
    pub(crate) fn arm(&mut self, head: Bytes, out: Bytes) {
        let g = &mut *self.0;
        g.head = head;
        g.out = out;
        g.iovs.clear();
        g.first = 0;
        for p in &g.parts {
            let buf = match p.src {
                Src::Head => &g.head,
                Src::Out => &g.out,
            };
            let part = &buf[p.start..p.end];
            g.iovs.push(libc::iovec {
                iov_base: part.as_ptr() as *mut libc::c_void,
                iov_len: part.len(),
            });
        }
    }

    /// Mark `n` more bytes written. Returns whether the whole message is.
    fn consume(&mut self, mut n: usize) -> bool {
        let g = &mut *self.0;
        while let Some(iov) = g.iovs.get_mut(g.first) {
            if n < iov.iov_len {
                // SAFETY: `n < iov_len`, so the advanced pointer stays inside the part, which
                // lies in `g.head` or `g.out`, held for as long as the `iovec`s are.
                iov.iov_base = unsafe { iov.iov_base.cast::<u8>().add(n) }.cast();
                iov.iov_len -= n;
                return false;
            }
            n -= iov.iov_len;
            g.first += 1;
        }
        true
    }
}

// SAFETY: the `iovec`s point into `head` and `out`, `Bytes` whose memory does not move or
// change while they are held; the `iovec` array is a `Vec` on the heap, so moving the `Gather`
// moves neither. Both are only changed through `&mut self` (`arm`, `consume`), which is not
// possible while the runtime owns the value. `iovs[first..]` holds at least `read_iovec_len`
// valid `iovec`s.
unsafe impl IoVecBuf for Gather {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.0.iovs[self.0.first..].as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        (self.0.iovs.len() - self.0.first).min(MAX_IOVECS)
    }
}

/// [`Gather::give_back`] for a gather that may not have been taken.
pub(crate) fn give_back(g: Option<Gather>) {
    if let Some(g) = g {
        g.give_back();
    }
}

/// Write all of an armed `g`; it is handed back whatever happened.
pub(crate) async fn write_all<W: AsyncWriteRent>(
    io: &mut W,
    mut g: Gather,
) -> (io::Result<()>, Gather) {
    while g.0.first < g.0.iovs.len() {
        let (res, back) = io.writev(g).await;
        g = back;
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), g),
            Ok(n) => {
                g.consume(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), g),
        }
    }
    (Ok(()), g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(g: &Gather) -> Vec<u8> {
        crate::sys::buf::filled_vec(g).flatten().copied().collect()
    }

    #[test]
    fn adjacent_parts_are_one_and_partial_writes_advance() {
        let mut g = Gather::default();
        g.push(Src::Out, 0..4);
        g.push(Src::Head, 6..10);
        g.push(Src::Head, 10..12);
        g.push(Src::Out, 4..4);
        g.push(Src::Out, 4..6);
        assert_eq!(g.0.parts.len(), 3);
        assert_eq!(g.len(), 12);
        g.arm(
            Bytes::from_static(b"GET / abcdef\r\n"),
            Bytes::from_static(b"LINE\r\n"),
        );
        assert_eq!(sent(&g), b"LINEabcdef\r\n");
        assert!(!g.consume(5));
        assert_eq!(sent(&g), b"bcdef\r\n");
        assert!(!g.consume(5));
        assert_eq!(sent(&g), b"\r\n");
        assert!(g.consume(2));
        assert_eq!(g.read_iovec_len(), 0);
    }

    #[test]
    fn one_write_takes_at_most_max_iovecs() {
        let head = Bytes::from(vec![b'h'; 2000]);
        let mut g = Gather::default();
        for i in 0..1000 {
            g.push(Src::Head, 2 * i..2 * i + 1);
            g.push(Src::Out, i..i + 1);
        }
        g.arm(head, Bytes::from(vec![b'o'; 1000]));
        assert_eq!(g.read_iovec_len(), MAX_IOVECS);
        assert!(!g.consume(MAX_IOVECS));
        assert_eq!(g.read_iovec_len(), 2000 - MAX_IOVECS);
        assert!(g.consume(2000 - MAX_IOVECS));
    }
}
