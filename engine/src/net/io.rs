//! The byte stream of a connection, either direction: plain TCP, or TLS — terminated by
//! ringway for a client ([`crate::tls::accept`]), originated by ringway to an upstream
//! ([`crate::tls::connect`]). The HTTP/1 and HTTP/2 connection managers, upgrade tunnels,
//! upstream HTTP/2 connections and the TCP proxy run over [`Io`] through monoio's
//! owned-buffer traits and never look at which one it is; only the idle path does, because
//! only plain sockets can be parked ([`crate::rt::park`] keeps a bare socket, not a TLS
//! session).
//!
//! Plain TCP pays one branch per IO call for this: each call forwards to the `TcpStream` (or
//! its split half) unchanged.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use crate::rt::timer;
use crate::tls::{ServerTls, TlsReadHalf, TlsStream, TlsWriteHalf};

/// A connection's stream.
#[derive(Debug)]
pub(crate) enum Io {
    /// Plaintext TCP.
    Plain(TcpStream),
    /// TLS terminated or originated here (the handshake is done).
    Tls(TlsStream),
}

/// The read half of a split [`Io`].
#[derive(Debug)]
pub(crate) enum ReadHalf {
    /// Of a plaintext connection.
    Plain(OwnedReadHalf<TcpStream>),
    /// Of a TLS connection.
    Tls(TlsReadHalf),
}

/// The write half of a split [`Io`].
#[derive(Debug)]
pub(crate) enum WriteHalf {
    /// Of a plaintext connection.
    Plain(OwnedWriteHalf<TcpStream>),
    /// Of a TLS connection.
    Tls(TlsWriteHalf),
}

/// [`ReadHalf::reunite`] was given halves of two different streams (both are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatched;

impl Io {
    /// Waits until a read would make progress, holding no buffer (for TLS: at once when
    /// decrypted bytes are already buffered).
    pub(crate) async fn readable(&self, relaxed: bool) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.readable(relaxed).await,
            Self::Tls(s) => s.readable(relaxed).await,
        }
    }

    /// Registers the socket in this worker's io_uring file table, for a connection that will
    /// carry many operations (a keep-alive connection at its second request, a pooled
    /// upstream connection reused, an HTTP/2 connection): each later operation skips the
    /// kernel's file lookup and reference count. No-op where it cannot be (the epoll driver,
    /// a full table), or when already done.
    pub(crate) fn use_fixed_file(&self) {
        let _ = match self {
            Self::Plain(s) => s.use_fixed_file(),
            Self::Tls(s) => s.tcp().use_fixed_file(),
        };
    }

    /// The address the client connected to.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Plain(s) => s.local_addr(),
            Self::Tls(s) => s.tcp().local_addr(),
        }
    }

    /// The TLS session, if this connection is TLS.
    pub(crate) fn tls(&self) -> Option<&TlsStream> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(s) => Some(s),
        }
    }

    /// The `x-forwarded-client-cert` value of the client's verified certificate, when `tls`
    /// (the listener's) asks for client certificates and the client sent one. Made once, at
    /// the handshake ([`crate::listener`]); this only shares it.
    pub(crate) fn forwarded_client_cert(&self, tls: Option<&ServerTls>) -> Option<Rc<[u8]>> {
        let (Self::Tls(s), Some(tls)) = (self, tls) else {
            return None;
        };
        if !tls.client_auth() {
            return None;
        }
        s.client_identity()
    }

    /// Whether TLS's ALPN chose HTTP/2 (never for plaintext: h2c is found by its preface).
    pub(crate) fn is_h2(&self) -> bool {
        self.tls().is_some_and(TlsStream::is_h2)
    }
}

/// The plain TCP socket under a stream, when it is one and is not split: what moving bytes
/// from socket to socket without reading them (a splice, [`super::pipe`]) needs. `None` for
/// TLS, and for split halves (an HTTP/1 body upload beside its response is not spliced).
pub(crate) trait PlainSocket {
    fn plain_socket(&self) -> Option<&TcpStream>;
}

impl PlainSocket for Io {
    fn plain_socket(&self) -> Option<&TcpStream> {
        match self {
            Self::Plain(s) => Some(s),
            Self::Tls(_) => None,
        }
    }
}

impl PlainSocket for ReadHalf {
    fn plain_socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl PlainSocket for WriteHalf {
    fn plain_socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl Splitable for Io {
    type OwnedRead = ReadHalf;
    type OwnedWrite = WriteHalf;

    /// Splits into halves usable at the same time (from two futures on this thread).
    fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Self::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Self::Tls(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

impl ReadHalf {
    /// Joins the halves of one stream again.
    pub(crate) fn reunite(self, write: WriteHalf) -> Result<Io, Mismatched> {
        match (self, write) {
            (Self::Plain(r), WriteHalf::Plain(w)) => {
                r.reunite(w).map(Io::Plain).map_err(|_| Mismatched)
            }
            (Self::Tls(r), WriteHalf::Tls(w)) => r.reunite(w).map(Io::Tls).map_err(|_| Mismatched),
            _ => Err(Mismatched),
        }
    }
}

/// Forwards the read methods of an enum to the variant's stream.
macro_rules! forward_read {
    ($ty:ident) => {
        impl AsyncReadRent for $ty {
            #[inline]
            async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(s) => s.read(buf).await,
                    Self::Tls(s) => s.read(buf).await,
                }
            }

            #[inline]
            async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(s) => s.readv(buf).await,
                    Self::Tls(s) => s.readv(buf).await,
                }
            }
        }
    };
}

/// Forwards the write methods of an enum to the variant's stream.
macro_rules! forward_write {
    ($ty:ident) => {
        impl AsyncWriteRent for $ty {
            #[inline]
            async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(s) => s.write(buf).await,
                    Self::Tls(s) => s.write(buf).await,
                }
            }

            #[inline]
            async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(s) => s.writev(buf).await,
                    Self::Tls(s) => s.writev(buf).await,
                }
            }

            #[inline]
            async fn flush(&mut self) -> io::Result<()> {
                match self {
                    Self::Plain(s) => s.flush().await,
                    Self::Tls(s) => s.flush().await,
                }
            }

            #[inline]
            async fn shutdown(&mut self) -> io::Result<()> {
                match self {
                    Self::Plain(s) => s.shutdown().await,
                    Self::Tls(s) => s.shutdown().await,
                }
            }
        }
    };
}

forward_read!(Io);
forward_read!(ReadHalf);
forward_write!(Io);
forward_write!(WriteHalf);

/// Write all of `data`, giving up with [`io::ErrorKind::TimedOut`] when the peer takes no byte
/// for `idle` (it stopped reading, and its receive window and our send buffer are full). Each
/// write that makes progress starts the wait again, so a slow reader is not cut, only one that
/// stalls. What was written when it gives up is unknown: the caller closes the connection.
pub(crate) async fn write_within<W: AsyncWriteRent>(
    io: &mut W,
    data: Bytes,
    idle: Duration,
) -> io::Result<()> {
    write_each(data, idle, async |d| io.write(d).await).await
}

/// The bytes of a message to a connection ([`write_within`]); when `last` (the connection
/// is closed or shut after them) and it is plain TCP, held for the FIN ([`write_last_within`]).
pub(crate) async fn write_out<W: AsyncWriteRent + PlainSocket>(
    io: &mut W,
    data: Bytes,
    idle: Duration,
    last: bool,
) -> io::Result<()> {
    if last && let Some(socket) = io.plain_socket() {
        return write_last_within(socket, data, idle).await;
    }
    write_within(io, data, idle).await
}

/// [`write_within`] for the last bytes of a plain connection that is closed or shut after
/// them, sent with `MSG_MORE` ([`TcpStream::write_last`]): a partial last segment with nothing
/// else in flight (all of a short response) waits for the FIN of that close and leaves in the
/// same packet (a long response's tail leaves with the acknowledgements of its earlier
/// segments). So the client cannot read a short response and close before ringway does (on
/// loopback the side that closes second runs, in its own send path, the other's TIME_WAIT and
/// its own socket's teardown: with a new connection per request ringway did so for about a
/// tenth of its connections), and it sees the response once the exchange was accounted, as
/// with nginx's `close(2)` after its log. The kernel sends a held segment after about 200 ms
/// if no FIN comes.
async fn write_last_within(socket: &TcpStream, data: Bytes, idle: Duration) -> io::Result<()> {
    write_each(data, idle, async |d| socket.write_last(d).await).await
}

/// Hand `data` to `write` until all of it went; each wait at most `idle`.
async fn write_each(
    mut data: Bytes,
    idle: Duration,
    mut write: impl AsyncFnMut(Bytes) -> BufResult<usize, Bytes>,
) -> io::Result<()> {
    while !data.is_empty() {
        let at = timer::coarse_now() + idle;
        let (res, rest) = monoio::select! {
            r = write(data) => r,
            _ = timer::sleep_until(at) => return Err(io::ErrorKind::TimedOut.into()),
        };
        data = rest;
        match res? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => data.advance(n),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::mpsc;

    use monoio::net::TcpListener;

    use super::*;
    use crate::rt::driver::{joined, on_both_drivers};

    fn bytes(len: usize) -> Bytes {
        (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
    }

    /// A client on a thread: connects to `addr`, waits for `go`, then reads to the end of the
    /// stream (at most 10 s).
    fn reader(addr: SocketAddr, go: mpsc::Receiver<()>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            go.recv().unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got)
                .expect("the end of the stream, in time");
            got
        })
    }

    /// The last bytes wait for the close: the client reads none of a short response before
    /// ringway closes (its read times out), then all of it and the end. A long one's full
    /// segments go at once (and its tail with the acknowledgements of those): all of it, then
    /// the end.
    async fn the_last_bytes_leave_with_the_close() {
        for len in [180, 300_000] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (go, wait) = mpsc::channel::<()>();
            let client = std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let mut early = vec![0; 1 << 20];
                let mut got = Vec::new();
                // Before the close: reads until one times out.
                while let Ok(n) = c.read(&mut early) {
                    assert!(n > 0, "no end of stream before the close");
                    got.extend_from_slice(&early[..n]);
                }
                let before_close = got.len();
                wait.recv().unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.read_to_end(&mut got)
                    .expect("the rest and the end, in time");
                (before_close, got)
            });
            let (s, _) = listener.accept().await.unwrap();
            let data = bytes(len);
            write_last_within(&s, data.clone(), Duration::from_secs(10))
                .await
                .unwrap();
            // Past the client's first read timeout, with the socket still open.
            monoio::time::sleep(Duration::from_millis(150)).await;
            drop(s);
            go.send(()).unwrap();
            let (before_close, got) = joined(client).await;
            assert!(got == data, "the bytes as written, then the end");
            if len < 1000 {
                assert_eq!(before_close, 0, "a short response waits for the close");
            } else {
                assert!(before_close > 0, "full segments go at once");
            }
        }
    }

    #[test]
    fn the_last_bytes_leave_with_the_close_on_both_drivers() {
        on_both_drivers(the_last_bytes_leave_with_the_close);
    }

    /// A client that reads nothing: the last write gives up after `idle` without progress,
    /// and what it had not written is taken back (on io_uring the SEND is cancelled): once the
    /// socket is closed, the client reads what had gone, less than all, then the end.
    async fn a_stalled_last_write_gives_up_and_writes_no_more() {
        let len = 64 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (go, wait) = mpsc::channel();
        let client = reader(listener.local_addr().unwrap(), wait);
        let (s, _) = listener.accept().await.unwrap();
        monoio::spawn(timer::ticker());
        let res = write_last_within(&s, bytes(len), Duration::from_millis(300)).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::TimedOut);
        drop(s);
        go.send(()).unwrap();
        let got = joined(client).await;
        assert!(!got.is_empty() && got.len() < len, "{} bytes", got.len());
    }

    #[test]
    fn a_stalled_last_write_gives_up_on_both_drivers() {
        on_both_drivers(a_stalled_last_write_gives_up_and_writes_no_more);
    }
}
