//! The zero-copy relay for a plain TCP client and a plain TCP upstream: each direction moves
//! bytes socket -> pipe -> socket with `splice(2)`, so they never enter user space (what
//! HAProxy and nginx's `splice` do). [`super`] (the relay) picks this path when neither side is
//! TLS and pipes can be had; it keeps the buffered copy otherwise.
//!
//! Each splice is a direct non-blocking system call made after the runtime reports readiness
//! (`readable()` / `writable()`: a poll op on io_uring, the epoll state on the legacy driver).
//! io_uring's own SPLICE op is not used: the kernel always runs it on an io-wq worker thread,
//! which blocks there on an empty socket (one kernel thread per idle connection) and costs a
//! thread hop per call even when bytes are waiting.
//!
//! Pipes come from a small per-worker pool ([`PipePool`]): a direction holds one only while
//! bytes are moving, and gives it back (empty) when its source runs dry, so an idle relayed
//! connection holds no pipe (no fds, no kernel buffer) and a burst of connections reuses pipes
//! instead of creating and closing them. A pipe that cannot be created when a connection starts
//! sends the connection to the buffered copy; later, the direction waits and tries again.
//!
//! The caller's filters ([`Filters`]: the TCP proxy's network filters) decide, per direction and step, how the next bytes move
//! ([`Path`]): spliced while no filter needs to see them (filters that count are told how many
//! passed; a skip bounds the step), else copied through one pooled buffer
//! ([`crate::rt::buffers`], taken only while bytes are waiting) with the same
//! readiness-driven non-blocking calls, so a direction can go from one to the other between
//! any two steps, with nothing in flight. The first copy of a connection counts
//! `network_filter_copy_cx`; the first splice counts `splice_cx_total`.
//!
//! Keeps the buffered relay's behaviour: `first` bytes go upstream (and `up_first` bytes
//! downstream) before anything else, byte
//! counters ([`Meter`]) count what was written, every move renews the shared idle deadline, an
//! end of stream is passed on as `shutdown(SHUT_WR)` once the pipe is drained, and a failed
//! call on either socket ends the relay as a reset.

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use bytes::BytesMut;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::{Dir, End, Filters, Meter, Path, Side, Tally, drive};
use crate::net::pipe::{PipePool, YIELD_AFTER, take_pipe, yield_now};
use crate::rt::{buffers, timer};
use crate::sys::send_nonblocking;
use crate::sys::splice::{Pipe, recv_into, set_nonblocking, shutdown_write};

/// The pipes a relay starts with, one per direction: taking them first is how the caller
/// learns whether splice is possible at all (pipe creation fails when fds run out).
pub(crate) struct Pipes([Pipe; 2]);

impl Pipes {
    /// Two pipes, or why not.
    pub(crate) fn take(meter: Meter<'_>) -> io::Result<Self> {
        let created = meter.splice.pipes_created;
        let a = PipePool::take(Some(created))?;
        match PipePool::take(Some(created)) {
            Ok(b) => Ok(Self([a, b])),
            Err(e) => {
                PipePool::give(a);
                Err(e)
            }
        }
    }
}

/// Relay between two plain TCP sockets with splice (same contract as [`super::run`]).
#[allow(
    clippy::too_many_arguments,
    reason = "super::run's arguments plus the pipes it took; a struct would only rename them"
)]
pub(crate) async fn run(
    mut down: TcpStream,
    first: BytesMut,
    mut up: TcpStream,
    up_first: BytesMut,
    pipes: Pipes,
    idle: Option<Duration>,
    meter: Meter<'_>,
    filters: &dyn Filters,
) -> (End, u64, u64) {
    let last = Cell::new(timer::coarse_now());
    let (to_up_n, to_down_n) = (Cell::new(0u64), Cell::new(0u64));
    let up_tally = Tally {
        dir: Dir::ToUpstream,
        filters,
        meter: meter.down_rx,
        last: &last,
        moved: &to_up_n,
    };
    let down_tally = Tally {
        dir: Dir::ToDownstream,
        filters,
        meter: meter.up_rx,
        last: &last,
        moved: &to_down_n,
    };
    if !first.is_empty() {
        let n = first.len();
        filters.on_bytes(Dir::ToUpstream, &first);
        // The runtime's write, before the socket is switched to the non-blocking mode the
        // direct splices need.
        if up.write_all(first).await.0.is_err() {
            return (End::Reset { upstream: true }, 0, 0);
        }
        up_tally.count(n);
    }
    if !up_first.is_empty() {
        // At most one read buffer's worth (what came past an HTTP head): it fits the socket's
        // send buffer, so writing it before splicing the other way does not wait on the peer.
        let n = up_first.len();
        filters.on_bytes(Dir::ToDownstream, &up_first);
        if down.write_all(up_first).await.0.is_err() {
            return (End::Reset { upstream: false }, to_up_n.get(), 0);
        }
        down_tally.count(n);
    }
    if let Err(e) = set_nonblocking(&down) {
        log::debug!("relay: client socket: {e}");
        return (End::Reset { upstream: false }, to_up_n.get(), 0);
    }
    if let Err(e) = set_nonblocking(&up) {
        log::debug!("relay: upstream socket: {e}");
        return (End::Reset { upstream: true }, to_up_n.get(), 0);
    }
    let [p_up, p_down] = pipes.0;
    let once = Once::default();
    let to_up = Pump {
        src: &down,
        dst: &up,
        tally: up_tally,
        meter,
        once: &once,
    };
    let to_down = Pump {
        src: &up,
        dst: &down,
        tally: down_tally,
        meter,
        once: &once,
    };
    let end = drive(to_up.run(p_up), to_down.run(p_down), &last, idle).await;
    (end, to_up_n.get(), to_down_n.get())
}

/// Per-connection stats counted the first time either direction does something.
#[derive(Default)]
struct Once {
    spliced: Cell<bool>,
    copied: Cell<bool>,
}

/// Whether a step ended the direction (end of stream, passed on) or the path is to be decided
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Eof,
    Again,
}

/// One direction: `src` -> `dst`, a step at a time by the filters' [`Path`].
struct Pump<'a> {
    src: &'a TcpStream,
    dst: &'a TcpStream,
    tally: Tally<'a>,
    meter: Meter<'a>,
    once: &'a Once,
}

impl Pump<'_> {
    /// Until end of stream, then half-close `dst`. `Err` names the side that failed.
    async fn run(self, pipe: Pipe) -> Result<(), Side> {
        let mut pipe = Some(pipe);
        loop {
            let step = match self.tally.filters.path(self.tally.dir) {
                Path::Splice(limit) => {
                    if !self.once.spliced.replace(true) {
                        self.meter.splice.relayed.inc();
                    }
                    self.splice(&mut pipe, limit).await?
                }
                Path::Copy => {
                    if !self.once.copied.replace(true) {
                        self.meter.splice.filter_copy.inc();
                    }
                    // Copying needs no pipe; an empty one goes back for others to use.
                    if let Some(p) = pipe.take() {
                        PipePool::give(p);
                    }
                    self.copy().await?
                }
            };
            if step == Step::Eof {
                break;
            }
        }
        if let Some(p) = pipe.take() {
            PipePool::give(p);
        }
        // Pass the half-close on: the other direction may still be sending.
        shutdown_write(self.dst).map_err(|_| Side::Dst)
    }

    /// Splice `src` -> pipe -> `dst` until end of stream, `limit` bytes, a wait for `src`, or
    /// a filter needing to see the bytes (checked whenever the pipe is empty). Returns with
    /// the pipe empty.
    async fn splice(&self, pipe: &mut Option<Pipe>, limit: u64) -> Result<Step, Side> {
        let (src, dst, tally) = (self.src, self.dst, self.tally);
        let mut in_pipe = 0usize;
        let mut read = 0u64;
        let mut eof = false;
        let mut budget = YIELD_AFTER;
        loop {
            if in_pipe == 0 {
                if eof {
                    return Ok(Step::Eof);
                }
                if read >= limit {
                    return Ok(Step::Again);
                }
            }
            if !eof {
                let Some(p) = pipe.as_ref() else {
                    *pipe = Some(take_pipe(self.meter.splice.pipes_created).await);
                    continue;
                };
                let left = usize::try_from(limit - read).unwrap_or(usize::MAX);
                let room = p.size().saturating_sub(in_pipe).min(left);
                if room > 0 {
                    match p.fill(src, room) {
                        Ok(0) => eof = true,
                        Ok(n) => {
                            in_pipe += n;
                            read += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if in_pipe == 0 {
                                // Nothing to send and nothing to read: wait holding no pipe,
                                // then let the filters decide the path again.
                                if let Some(p) = pipe.take() {
                                    PipePool::give(p);
                                }
                                src.readable(false).await.map_err(|_| Side::Src)?;
                                return Ok(Step::Again);
                            }
                            // Else the pipe is full (by slots, before bytes): drain it.
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => return Err(Side::Src),
                    }
                }
            }
            if in_pipe > 0 {
                let Some(p) = pipe.as_ref() else {
                    // Unreachable: bytes in a pipe mean the pipe is held.
                    return Err(Side::Src);
                };
                match p.drain(dst, in_pipe) {
                    Ok(n) => {
                        in_pipe -= n;
                        tally.filters.on_passed(tally.dir, n as u64);
                        tally.count(n);
                        if n >= budget {
                            yield_now().await;
                            budget = YIELD_AFTER;
                        } else {
                            budget -= n;
                        }
                        if in_pipe == 0 && !eof && tally.filters.path(tally.dir) == Path::Copy {
                            return Ok(Step::Again);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        dst.writable(false).await.map_err(|_| Side::Dst)?;
                        budget = YIELD_AFTER;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(Side::Dst),
                }
            }
        }
    }

    /// Copy `src` -> `dst` through one pooled buffer, showing the filters each chunk before it
    /// is written, until end of stream, a wait for `src`, or no filter needing the bytes. The
    /// buffer is held only while bytes are waiting.
    async fn copy(&self) -> Result<Step, Side> {
        let (src, dst, tally) = (self.src, self.dst, self.tally);
        let mut buf = buffers::take();
        let mut budget = YIELD_AFTER;
        let step = loop {
            buf.clear();
            match recv_into(src, &mut buf) {
                Ok(0) => break Step::Eof,
                Ok(n) => {
                    tally.filters.on_bytes(tally.dir, &buf);
                    let mut sent = 0;
                    while sent < n {
                        match send_nonblocking(dst.as_raw_fd(), &buf[sent..]) {
                            Ok(k) => sent += k,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                dst.writable(false).await.map_err(|_| Side::Dst)?;
                                budget = YIELD_AFTER;
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return Err(Side::Dst),
                        }
                    }
                    tally.count(n);
                    self.meter.splice.filter_copy_bytes.add(n as u64);
                    if n >= budget {
                        yield_now().await;
                        budget = YIELD_AFTER;
                    } else {
                        budget -= n;
                    }
                    if tally.filters.path(tally.dir) != Path::Copy {
                        break Step::Again;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing to read: wait holding no buffer.
                    buf.clear();
                    buffers::give_back(buf);
                    src.readable(false).await.map_err(|_| Side::Src)?;
                    return Ok(Step::Again);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Side::Src),
            }
        };
        buf.clear();
        buffers::give_back(buf);
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::thread;

    use monoio::net::TcpListener;

    use super::super::{NoFilters, SpliceMeter, run as relay};
    use super::*;
    use crate::net::Io;
    use crate::stats::Counter;

    /// A plain client and a plain backend (std sockets on threads), relayed by `relay::run`
    /// on a runtime of `driver`: bytes both ways, `first` first, half-closes passed on,
    /// counters and pipes (taken from this thread's pool and given back empty).
    async fn plain_relay_goes_through_pipes() {
        let taken = PipePool::taken();
        let created_before = PipePool::created();
        let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let backend_addr = backend.local_addr().unwrap();
        let backend = thread::spawn(move || {
            let (mut s, _) = backend.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(&vec![b'b'; 300_000]).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            got
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(front_addr).unwrap();
            s.write_all(&vec![b'c'; 500_000]).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        let (down, _) = front.accept().await.unwrap();
        let up = TcpStream::connect(backend_addr).await.unwrap();
        let counters: [Counter; 9] = Default::default();
        let meter = Meter {
            down_rx: [&counters[0], &counters[1]],
            up_rx: [&counters[2], &counters[3]],
            splice: SpliceMeter {
                relayed: &counters[4],
                fallback: &counters[5],
                pipes_created: &counters[6],
                filter_copy: &counters[7],
                filter_copy_bytes: &counters[8],
            },
        };
        let (end, to_up, to_down) = relay(
            Io::Plain(down),
            BytesMut::from(&b"first:"[..]),
            Io::Plain(up),
            BytesMut::new(),
            Some(Duration::from_secs(30)),
            meter,
            &NoFilters,
        )
        .await;
        assert_eq!(end, End::Done);
        assert_eq!((to_up, to_down), (500_006, 300_000));
        let got_up = backend.join().unwrap();
        assert!(got_up.starts_with(b"first:c"));
        assert_eq!(got_up.len(), 500_006);
        assert_eq!(client.join().unwrap(), vec![b'b'; 300_000]);
        let moved: Vec<u64> = counters[..4].iter().map(Counter::get).collect();
        assert_eq!(moved, [500_006, 500_006, 300_000, 300_000]);
        assert_eq!(counters[4].get(), 1, "relayed with splice");
        assert_eq!(counters[5].get(), 0, "no fallback");
        assert_eq!(counters[7].get(), 0, "no filter made it copy");
        assert_eq!(counters[6].get(), PipePool::created() - created_before);
        assert!(PipePool::taken() >= taken + 2, "spliced through pipes");
        assert!(PipePool::free() >= 2, "pipes given back for reuse");
    }

    #[test]
    fn plain_relay_goes_through_pipes_on_both_drivers() {
        let mut created = Vec::new();
        crate::rt::driver::on_both_drivers(|| {
            created.push(PipePool::created());
            plain_relay_goes_through_pipes()
        });
        if let [_, before_second] = created[..] {
            assert_eq!(
                PipePool::created(),
                before_second,
                "the second relay reused the pooled pipes"
            );
        }
    }
}
