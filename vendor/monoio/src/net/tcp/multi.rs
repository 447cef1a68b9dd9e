//! ringway patch: a multishot receive on a TCP stream ([`MultiRecv`]).

use std::{
    future::poll_fn,
    io,
    task::{Context, Poll},
};

use super::TcpStream;
use crate::driver::shared_fd::SharedFd;

/// A multishot receive armed on a [`TcpStream`] (io_uring only): armed once, it receives
/// whatever arrives into the ring's provided buffers, one completion per arrival, until the
/// peer closes, an error, the ring running out of buffers, or [`cancel`](Self::cancel).
/// Bytes it received are handed out by [`recv`](Self::recv), in order. Dropping it cancels
/// it; bytes it received and nobody took are lost, so a caller that still needs the
/// connection's bytes cancels it and takes them first.
pub struct MultiRecv {
    #[cfg(all(target_os = "linux", feature = "iouring"))]
    driver: std::rc::Rc<std::cell::UnsafeCell<crate::driver::UringInner>>,
    index: usize,
    /// Keeps the socket open while the receive may still use it.
    fd: Option<SharedFd>,
    /// Its last completion was taken.
    ended: bool,
}

impl std::fmt::Debug for MultiRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiRecv")
            .field("index", &self.index)
            .field("ended", &self.ended)
            .finish()
    }
}

/// `f` given the current thread's io_uring driver; `None` where the runtime is not io_uring.
#[cfg(all(target_os = "linux", feature = "iouring"))]
fn with_uring<T>(
    f: impl FnOnce(&std::rc::Rc<std::cell::UnsafeCell<crate::driver::UringInner>>) -> Option<T>,
) -> Option<T> {
    crate::driver::CURRENT.with(|inner| match inner {
        crate::driver::Inner::Uring(r) => f(r),
        #[cfg(feature = "legacy")]
        crate::driver::Inner::Legacy(_) => None,
    })
}

/// ringway patch: how many provided buffers the current thread's ring has in circulation for
/// multishot receives (a few at first, more as arrivals pile up); `None` where the runtime is
/// not io_uring or has no buffer ring.
pub fn provided_buffers() -> Option<usize> {
    #[cfg(all(target_os = "linux", feature = "iouring"))]
    return with_uring(crate::driver::UringInner::provided_buffers);
    #[cfg(not(all(target_os = "linux", feature = "iouring")))]
    None
}

/// ringway patch: gives the pages of the current thread's provided buffers back to the system
/// if none was filled since the last call and none holds bytes not yet taken (call it about
/// once a second: a worker gone quiet then holds none of them); whether it did. `false` where
/// the runtime is not io_uring or has no buffer ring.
///
/// Only for a ring set up with `IORING_SETUP_DEFER_TASKRUN`: the kernel then fills buffers
/// only inside `io_uring_enter`. Otherwise its task work may run on any return to user space
/// (an interrupt), and could fill a buffer between this function's checks and the release.
pub fn release_idle_buffers() -> bool {
    #[cfg(all(target_os = "linux", feature = "iouring"))]
    return with_uring(|r| Some(crate::driver::UringInner::release_idle_buffers(r)))
        .unwrap_or(false);
    #[cfg(not(all(target_os = "linux", feature = "iouring")))]
    false
}

impl TcpStream {
    /// ringway patch: arms a multishot receive on this stream; `None` where the runtime is not
    /// io_uring or the ring has no provided buffers (kernels before 5.19, or refused). The
    /// stream's other reads must wait until it has ended: both would take the same bytes.
    pub fn recv_multishot(&self) -> Option<MultiRecv> {
        #[cfg(all(target_os = "linux", feature = "iouring"))]
        return with_uring(|r| {
            let index = crate::driver::UringInner::submit_recv_multi(r, &self.fd)?;
            Some(MultiRecv {
                driver: r.clone(),
                index,
                fd: Some(self.fd.clone()),
                ended: false,
            })
        });
        #[cfg(not(all(target_os = "linux", feature = "iouring")))]
        None
    }
}

impl MultiRecv {
    /// Whether its last completion was taken: it receives nothing more.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The next bytes it received, given to `data` (at most one provided buffer's worth);
    /// their count, 0 when the peer closed. An error ends it (`ENOBUFS`: the ring ran out of
    /// buffers; `ECANCELED`: cancelled); after the end, `ECANCELED`.
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        data: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if self.ended {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ECANCELED)));
        }
        #[cfg(all(target_os = "linux", feature = "iouring"))]
        {
            let (res, last) = match crate::driver::UringInner::poll_recv_multi(
                &self.driver,
                self.index,
                cx,
                data,
            ) {
                Poll::Ready(c) => c,
                Poll::Pending => return Poll::Pending,
            };
            self.ended = last;
            Poll::Ready(res.map(|n| n as usize))
        }
        #[cfg(not(all(target_os = "linux", feature = "iouring")))]
        {
            let _ = (cx, data);
            unreachable!("no multishot receive without io_uring")
        }
    }

    /// [`poll_recv`](Self::poll_recv) as a future.
    pub async fn recv(&mut self, mut data: impl FnMut(&[u8])) -> io::Result<usize> {
        poll_fn(|cx| self.poll_recv(cx, &mut data)).await
    }

    /// Asks the kernel to stop it. Completions that raced with the cancel still come; take
    /// them with [`recv`](Self::recv) until it has ended.
    pub fn cancel(&self) {
        #[cfg(all(target_os = "linux", feature = "iouring"))]
        if !self.ended {
            unsafe { crate::driver::UringInner::cancel_op(&self.driver, self.index) };
        }
    }
}

impl Drop for MultiRecv {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", feature = "iouring"))]
        crate::driver::UringInner::drop_recv_multi(
            &self.driver,
            self.index,
            self.ended,
            Box::new(self.fd.take()),
        );
    }
}
