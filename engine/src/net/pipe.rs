//! Pipes for moving bytes between two plain TCP sockets without copying them into user space
//! (socket -> pipe -> socket with `splice(2)`, what HAProxy's splicing does): each worker's
//! pool of empty pipes ([`PipePool`]), shared by the TCP relay ([`super::relay`]) and HTTP/1
//! bodies, and [`move_exact`], the move of a known number of bytes that the rest of an HTTP/1
//! body with a Content-Length is.
//!
//! Each splice is a direct non-blocking system call made after the runtime reports readiness
//! (`readable()` / `writable()`: a poll op on io_uring, the epoll state on the legacy driver).
//! io_uring's own SPLICE op is not used: the kernel always runs it on an io-wq worker thread,
//! which blocks there on an empty socket (one kernel thread per idle connection) and costs a
//! thread hop per call even when bytes are waiting.
//!
//! A connection holds a pipe only while bytes are moving and gives it back empty, so an idle
//! connection holds no pipe (no fds, no kernel buffer) and a burst of connections reuses pipes
//! instead of creating and closing them.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::task::Poll;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::rt::timer;
use crate::stats::Counter;
use crate::sys::splice::{NonBlocking, Pipe};

/// Buffer size asked for each pipe (`F_SETPIPE_SZ`); the kernel's default (64 KiB) is kept
/// when it refuses (unprivileged users over `/proc/sys/fs/pipe-user-pages-soft`).
pub(crate) const PIPE_SIZE: usize = 256 * 1024;

/// Empty pipes a worker keeps for reuse (two fds each).
const POOL_MAX: usize = 64;

/// How long a waiting mover waits before asking again for a pipe it could not get (out of
/// fds).
const PIPE_RETRY: Duration = Duration::from_millis(20);

/// Bytes a move passes before it lets other tasks of the worker run: splices that never wait
/// would otherwise never return to the runtime.
pub(crate) const YIELD_AFTER: usize = 1 << 20;

thread_local! {
    /// This worker's pipes (workers are threads; a pipe never leaves its worker).
    static POOL: PipePool = const {
        PipePool { free: RefCell::new(Vec::new()), created: Cell::new(0), taken: Cell::new(0) }
    };
}

/// Empty pipes kept for reuse by one worker.
pub(crate) struct PipePool {
    free: RefCell<Vec<Pipe>>,
    created: Cell<u64>,
    taken: Cell<u64>,
}

impl PipePool {
    /// An empty pipe: a pooled one, else a new one (counted in `created`, when given).
    pub(crate) fn take(created: Option<&Counter>) -> io::Result<Pipe> {
        let pipe = match POOL.with(|pool| pool.free.borrow_mut().pop()) {
            Some(p) => p,
            None => {
                let p = Pipe::new(PIPE_SIZE)?;
                if let Some(c) = created {
                    c.inc();
                }
                POOL.with(|pool| pool.created.set(pool.created.get() + 1));
                p
            }
        };
        POOL.with(|pool| pool.taken.set(pool.taken.get() + 1));
        Ok(pipe)
    }

    /// Returns an EMPTY pipe for reuse (closes it when the pool is full).
    pub(crate) fn give(pipe: Pipe) {
        POOL.with(|pool| {
            let mut free = pool.free.borrow_mut();
            if free.len() < POOL_MAX {
                free.push(pipe);
            }
        });
    }

    /// Pipes this worker created so far (pooled pipes are reused, not created again).
    #[cfg(test)]
    pub(crate) fn created() -> u64 {
        POOL.with(|pool| pool.created.get())
    }

    /// Pipes this worker handed out so far (pooled or new).
    #[cfg(test)]
    pub(crate) fn taken() -> u64 {
        POOL.with(|pool| pool.taken.get())
    }

    /// Empty pipes this worker keeps now.
    #[cfg(test)]
    pub(crate) fn free() -> usize {
        POOL.with(|pool| pool.free.borrow().len())
    }
}

/// A pipe, waiting and trying again while none can be created (out of fds).
pub(crate) async fn take_pipe(created: &Counter) -> Pipe {
    loop {
        match PipePool::take(Some(created)) {
            Ok(p) => return p,
            Err(e) => {
                log::debug!("splice: no pipe: {e}");
                timer::sleep_until(Instant::now() + PIPE_RETRY).await;
            }
        }
    }
}

/// Lets the worker's other tasks run once.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Why [`move_exact`] stopped before moving every byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// No pipe could be had, or a socket's mode could not be switched: nothing was moved, and
    /// the caller copies instead.
    Unavailable,
    /// Reading the source failed; `UnexpectedEof`: it closed first.
    Src(io::ErrorKind),
    /// The source sent nothing until the deadline asked when this wait began.
    SrcTimedOut(Instant),
    /// Writing to the destination failed.
    Dst,
    /// The destination took no byte for the `dst_idle` of [`move_exact`].
    DstStalled,
}

/// Moves exactly `len` bytes from `src` to `dst` through a pooled pipe, reading no byte past
/// them (what follows on `src` stays there for its next reader). Both sockets are non-blocking
/// only while it runs ([`NonBlocking`]). Each wait for `src` ends at `deadline()` (asked when
/// it begins); each wait for `dst` to take bytes lasts `dst_idle` at most.
/// Returns the bytes moved: all of them, or those before it stopped. The pipe goes back to
/// the worker's pool empty; one that still holds bytes (a failed move) is closed.
pub(crate) async fn move_exact(
    src: &TcpStream,
    dst: &TcpStream,
    len: u64,
    deadline: impl Fn() -> Instant,
    dst_idle: Duration,
) -> (u64, Result<(), Stopped>) {
    let pipe = match PipePool::take(None) {
        Ok(p) => p,
        Err(e) => {
            log::debug!("splice: no pipe: {e}");
            return (0, Err(Stopped::Unavailable));
        }
    };
    let modes = NonBlocking::new(src).and_then(|s| Ok((s, NonBlocking::new(dst)?)));
    let Ok(_modes) = modes else {
        PipePool::give(pipe);
        return (0, Err(Stopped::Unavailable));
    };
    let mut moved = Mover {
        pipe: &pipe,
        in_pipe: 0,
        read: 0,
        written: 0,
    };
    let res = moved.run(src, dst, len, deadline, dst_idle).await;
    let (in_pipe, written) = (moved.in_pipe, moved.written);
    if in_pipe == 0 {
        PipePool::give(pipe);
    }
    (written, res)
}

/// Where a [`move_exact`] stands.
struct Mover<'p> {
    pipe: &'p Pipe,
    in_pipe: usize,
    read: u64,
    written: u64,
}

impl Mover<'_> {
    async fn run(
        &mut self,
        src: &TcpStream,
        dst: &TcpStream,
        len: u64,
        deadline: impl Fn() -> Instant,
        dst_idle: Duration,
    ) -> Result<(), Stopped> {
        let mut budget = YIELD_AFTER;
        while self.written < len {
            if self.read < len {
                let left = usize::try_from(len - self.read).unwrap_or(usize::MAX);
                let room = self.pipe.size().saturating_sub(self.in_pipe).min(left);
                if room > 0 {
                    match self.pipe.fill(src, room) {
                        Ok(0) => return Err(Stopped::Src(io::ErrorKind::UnexpectedEof)),
                        Ok(n) => {
                            self.in_pipe += n;
                            self.read += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if self.in_pipe == 0 {
                                let started = timer::coarse_now();
                                monoio::select! {
                                    r = src.readable(false) => r.map_err(|e| Stopped::Src(e.kind()))?,
                                    _ = timer::sleep_until(deadline()) => return Err(Stopped::SrcTimedOut(started)),
                                }
                                continue;
                            }
                            // Else the pipe is full (by slots, before bytes): drain it.
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Stopped::Src(e.kind())),
                    }
                }
            }
            if self.in_pipe > 0 {
                match self.pipe.drain(dst, self.in_pipe) {
                    Ok(n) => {
                        self.in_pipe -= n;
                        self.written += n as u64;
                        if n >= budget {
                            yield_now().await;
                            budget = YIELD_AFTER;
                        } else {
                            budget -= n;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let until = timer::coarse_now() + dst_idle;
                        monoio::select! {
                            r = dst.writable(false) => r.map_err(|_| Stopped::Dst)?,
                            _ = timer::sleep_until(until) => return Err(Stopped::DstStalled),
                        }
                        budget = YIELD_AFTER;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(Stopped::Dst),
                }
            }
        }
        Ok(())
    }
}
