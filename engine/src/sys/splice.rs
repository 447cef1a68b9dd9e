//! Pipes and the non-blocking `splice(2)` system call, for the zero-copy relay of the TCP proxy
//! and HTTP Upgrade tunnels (`net/relay/splice.rs`): socket -> pipe -> socket, the bytes never
//! enter user space.
//!
//! Every call here is non-blocking (`SPLICE_F_NONBLOCK`, `O_NONBLOCK` pipes and sockets) and
//! answers [`std::io::ErrorKind::WouldBlock`] instead of waiting; the caller waits for
//! readiness with the runtime and calls again. Does not own the sockets (it borrows them).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A pipe (read end, write end), both ends non-blocking and close-on-exec.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
}

impl Pipe {
    /// A new pipe, asking the kernel for a buffer of `size` bytes (`F_SETPIPE_SZ`). A refused
    /// size (over `/proc/sys/fs/pipe-max-size` or the user's pipe page limit) keeps the
    /// kernel's default; [`Self::size`] says what it got.
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        let mut fds = [-1 as libc::c_int; 2];
        // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both fds are new and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let got = match libc::c_int::try_from(size) {
            // SAFETY: fcntl on an fd we own; F_SETPIPE_SZ takes an int and no pointer.
            Ok(want) => unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, want) },
            Err(_) => -1, // more than the kernel's limit (2 GiB) in any case
        };
        let size = if got > 0 {
            got as usize
        } else {
            // SAFETY: fcntl on an fd we own; F_GETPIPE_SZ takes no argument.
            let cur = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
            usize::try_from(cur).unwrap_or(0).max(4096)
        };
        Ok(Self { read, write, size })
    }

    /// The pipe's buffer size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Moves up to `len` bytes from the socket `from` into the pipe. `Ok(0)`: end of stream
    /// (or `len == 0`). `WouldBlock`: the socket has nothing, or the pipe is full.
    pub(crate) fn fill(&self, from: &impl AsRawFd, len: usize) -> io::Result<usize> {
        // SAFETY: `from` is borrowed for the call, so the object owning its fd keeps it open.
        unsafe { splice(from.as_raw_fd(), self.write.as_raw_fd(), len) }
    }

    /// Moves up to `len` bytes from the pipe into the socket `to`. `WouldBlock`: the socket's
    /// send buffer is full (or the pipe is empty).
    pub(crate) fn drain(&self, to: &impl AsRawFd, len: usize) -> io::Result<usize> {
        // SAFETY: `to` is borrowed for the call, so the object owning its fd keeps it open.
        unsafe { splice(self.read.as_raw_fd(), to.as_raw_fd(), len) }
    }
}

/// One non-blocking `splice(2)` between two fds, one of which is a pipe.
///
/// # Safety
/// Both fds must stay open for the call (a closed and reused fd number would move bytes of
/// an unrelated file).
unsafe fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: the caller keeps both fds open for the call; null offsets mean "the file
    // position" (required for pipes and sockets); no memory is passed.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Makes the socket `fd` non-blocking (a TCP splice waits on the socket's own `O_NONBLOCK`,
/// not on `SPLICE_F_NONBLOCK`), for good: the TCP relay's sockets are closed after it.
pub(crate) fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    switch_nonblocking(fd).map(|_| ())
}

/// A socket in the non-blocking mode direct splices need, for a while: [`NonBlocking::new`]
/// switches it when it was blocking (the io_uring driver's sockets are: the runtime's
/// operations on them wait in the kernel, where a non-blocking socket would answer `EAGAIN`),
/// and dropping the guard switches it back. The epoll driver's sockets are non-blocking
/// already and stay so.
pub(crate) struct NonBlocking<'a, F: AsRawFd> {
    fd: &'a F,
    /// The flags to put back, when they were changed.
    restore: Option<libc::c_int>,
}

impl<'a, F: AsRawFd> NonBlocking<'a, F> {
    pub(crate) fn new(fd: &'a F) -> io::Result<Self> {
        Ok(Self {
            fd,
            restore: switch_nonblocking(fd)?,
        })
    }
}

impl<F: AsRawFd> Drop for NonBlocking<'_, F> {
    fn drop(&mut self) {
        if let Some(flags) = self.restore {
            // SAFETY: the guard borrows the socket, so its fd is open; F_SETFL takes an int
            // flag set. A failure leaves the socket non-blocking: its next runtime operation
            // fails with EAGAIN and the connection is closed, nothing is lost silently.
            if unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
                log::debug!(
                    "splice: restoring blocking mode: {}",
                    io::Error::last_os_error()
                );
            }
        }
    }
}

/// Sets `O_NONBLOCK` on `fd`; the flags before, when they lacked it.
fn switch_nonblocking(fd: &impl AsRawFd) -> io::Result<Option<libc::c_int>> {
    // SAFETY: `fd` is borrowed, so the object owning it keeps it open; F_GETFL takes no
    // argument.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(None);
    }
    // SAFETY: as above; F_SETFL takes an int flag set.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some(flags))
}

/// One non-blocking `recv(2)` from the socket `from` into the spare capacity of `buf`,
/// appended after its bytes: the relay's copy step, between splices, for sockets already in
/// the non-blocking mode splicing needs. `Ok(0)`: end of stream (or no spare capacity).
/// `WouldBlock`: nothing to read.
pub(crate) fn recv_into(from: &impl AsRawFd, buf: &mut bytes::BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    if spare.is_empty() {
        return Ok(0);
    }
    // SAFETY: `spare` is writable memory of `spare.len()` bytes owned by `buf` for the call;
    // recv writes at most that many bytes and keeps no pointer; `from` is borrowed, so its
    // fd stays open for the call.
    let n = unsafe {
        libc::recv(
            from.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n.unsigned_abs();
    // SAFETY: recv initialized the first `n` (<= spare.len()) bytes after `buf.len()`.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `shutdown(SHUT_WR)` on the socket `fd`: sends FIN after the queued bytes.
pub(crate) fn shutdown_write(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: `fd` is borrowed, so the object owning it keeps it open; no memory is passed.
    if unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    fn is_nonblocking(fd: &impl AsRawFd) -> bool {
        // SAFETY: the socket is borrowed and open; F_GETFL takes no argument.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        assert!(flags >= 0);
        flags & libc::O_NONBLOCK != 0
    }

    #[test]
    fn a_blocking_socket_is_non_blocking_while_guarded_and_a_non_blocking_one_stays_so() {
        let (a, b) = pair();
        assert!(!is_nonblocking(&a));
        {
            let _guard = NonBlocking::new(&a).unwrap();
            assert!(is_nonblocking(&a));
        }
        assert!(!is_nonblocking(&a), "switched back");
        set_nonblocking(&b).unwrap();
        drop(NonBlocking::new(&b).unwrap());
        assert!(is_nonblocking(&b), "the epoll driver's mode is left alone");
    }

    #[test]
    fn a_refused_pipe_size_keeps_the_default_and_the_pipe_works() {
        let (mut a, b) = pair();
        let (c, mut d) = pair();
        set_nonblocking(&b).unwrap();
        // Past any limit: the pipe keeps its default size.
        let pipe = Pipe::new(usize::MAX).unwrap();
        assert!(
            pipe.size() >= 4096 && pipe.size() < 1 << 30,
            "{}",
            pipe.size()
        );
        a.write_all(b"x").unwrap();
        drop(a);
        let mut n = 0;
        for _ in 0..1000 {
            match pipe.fill(&b, pipe.size()) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(n, 1);
        assert_eq!(pipe.drain(&c, n).unwrap(), 1);
        drop(c);
        let mut got = Vec::new();
        d.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"x");
    }

    #[test]
    fn bytes_pass_socket_to_pipe_to_socket_and_would_block_when_empty() {
        let (mut a, b) = pair();
        let (c, mut d) = pair();
        set_nonblocking(&b).unwrap();
        set_nonblocking(&c).unwrap();
        let pipe = Pipe::new(256 * 1024).unwrap();
        assert!(pipe.size() >= 4096);
        let err = pipe.fill(&b, 1 << 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "empty socket");
        let err = pipe.drain(&c, 1 << 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "empty pipe");
        a.write_all(b"hello splice").unwrap();
        let mut n = 0;
        for _ in 0..1000 {
            match pipe.fill(&b, 1 << 16) {
                Ok(k) => {
                    n += k;
                    if n == 12 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(n, 12);
        assert_eq!(pipe.drain(&c, n).unwrap(), 12);
        shutdown_write(&c).unwrap();
        let mut got = String::new();
        d.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello splice");
        drop(a);
        let mut eof = None;
        for _ in 0..1000 {
            match pipe.fill(&b, 1 << 16) {
                Ok(k) => {
                    eof = Some(k);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(eof, Some(0), "end of stream");
    }
}
