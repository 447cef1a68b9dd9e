//! The engine's only unsafe code: thin, safe wrappers over the few system calls the runtime
//! does not offer. Each `unsafe` block states the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod alloc;
pub(crate) mod buf;
pub(crate) mod gather;
pub(crate) mod pool;
pub(crate) mod splice;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A private epoll instance (one per worker) used to watch parked idle connections.
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative return is a new fd we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Report `fd` once when it becomes readable (or hung up); then it is disarmed.
    pub(crate) fn add_oneshot(&self, fd: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: key,
        };
        // SAFETY: both fds are valid for the call (owned/borrowed), `ev` outlives the call.
        let r = unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Stop watching `fd`.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: both fds are valid for the call; DEL ignores the event pointer (may be null
        // since Linux 2.6.9).
        let r = unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Keys of the fds that are ready now (does not block). Appends to `out`.
    pub(crate) fn ready(&self, out: &mut Vec<u64>) -> io::Result<()> {
        const BATCH: usize = 256;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        loop {
            // SAFETY: `events` is a writable array of BATCH entries, as the call is told.
            let n = unsafe {
                libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), BATCH as i32, 0)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            out.extend(events[..n].iter().map(|e| e.u64));
            if n < BATCH {
                return Ok(());
            }
        }
    }

    /// A duplicate of the epoll fd, to wait on it with the runtime's readiness machinery.
    pub(crate) fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }
}

/// Duplicate a raw socket fd that the caller keeps open for the duration of the call.
pub(crate) fn dup_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: the caller holds the object that owns `fd` across this call, so it is open and
    // stays valid while borrowed; `try_clone_to_owned` makes an independent fd (dup).
    unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
}

/// One `send(2)` of `data` on the socket `fd` that never blocks and never raises SIGPIPE:
/// for a few bytes that must go out from a place that cannot wait (a destructor). Returns the
/// bytes taken, which may be fewer than `data.len()` when the socket buffer is nearly full.
/// The caller keeps `fd` open across the call (a closed and reused number would get the bytes).
pub(crate) fn send_nonblocking(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is a valid readable slice for its length for the duration of the call;
    // send does not keep the pointer, and takes any descriptor number (a bad one is EBADF).
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.unsigned_abs())
}

/// Ask the allocator to give back memory this thread freed: free pages go back to their arena
/// and are purged (returned to the OS). mimalloc otherwise purges only from inside later
/// allocations, so a worker gone quiet after a burst would keep the burst's pages resident.
/// Forced, so it does not depend on the purge delay having passed; called by each worker once a
/// second, which under load costs a few page faults per second. A no-op for threads whose
/// allocations never went through mimalloc (the library's tests use the system allocator).
pub(crate) fn allocator_collect() {
    // SAFETY: mi_collect takes no pointers and only touches the calling thread's own heap and
    // the arenas' atomic state; it is safe to call at any time from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn oneshot_reports_readable_once() {
        let ep = Epoll::new().unwrap();
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        ep.add_oneshot(b.as_fd(), 7).unwrap();
        let mut keys = Vec::new();
        ep.ready(&mut keys).unwrap();
        assert!(keys.is_empty(), "nothing to read yet");
        a.write_all(b"x").unwrap();
        ep.ready(&mut keys).unwrap();
        assert_eq!(keys, [7]);
        keys.clear();
        a.write_all(b"y").unwrap();
        ep.ready(&mut keys).unwrap();
        assert!(keys.is_empty(), "one-shot: disarmed after the first report");
    }

    #[test]
    fn dup_outlives_the_original() {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let copy = dup_fd(b.as_raw_fd()).unwrap();
        drop(b);
        let mut b2 = std::os::unix::net::UnixStream::from(copy);
        a.write_all(b"z").unwrap();
        let mut buf = [0u8; 1];
        io::Read::read_exact(&mut b2, &mut buf).unwrap();
        assert_eq!(&buf, b"z");
    }
}
