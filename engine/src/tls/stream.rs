//! A server-side TLS connection over a monoio [`TcpStream`], with monoio's owned-buffer IO
//! traits, so the HTTP and TCP code can run over it unchanged.
//!
//! The rustls session lives in an `Rc<RefCell<Session>>` shared by the whole stream or by its
//! two halves after [`TlsStream::into_split`]. Every borrow of it is synchronous: a socket
//! read or write never happens while the session is borrowed, so a read half and a write half
//! can run concurrently in two futures on one thread.
//!
//! Data path: ciphertext is read from the socket into a pooled buffer (taken only while a read
//! is in flight, so an idle connection holds none of ours), handed to rustls, and plaintext is
//! copied straight into the caller's buffer. Writes encrypt the caller's bytes into rustls's
//! queue, which is drained into a pooled buffer for the socket write; a write returns once its
//! ciphertext is in the kernel. rustls's buffered API costs one copy of the ciphertext each
//! way compared with its unbuffered API.
//!
//! Post-handshake messages are handled by rustls while reading: TLS 1.3 key updates are
//! answered (the answer goes out before the next record written), new session tickets are
//! sent right after the handshake. `close_notify` from the client ends reads (`Ok(0)`);
//! [`AsyncWriteRent::shutdown`] sends ours and half-closes the socket, and reads keep working
//! after it; a stream dropped without it still sends close_notify, best effort (see the `Drop`
//! of `Session`). A TCP end of stream without `close_notify` is reported as `UnexpectedEof`.

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use rustls::pki_types::CertificateDer;
use rustls::{
    Connection, HandshakeKind, ProtocolVersion, ServerConfig, ServerConnection,
    SupportedCipherSuite,
};

use super::error::TlsError;
use crate::rt::{buffers, timer};
use crate::sys::buf as iobuf;

/// First byte of a TLS handshake record (content type 22).
const HANDSHAKE_RECORD: u8 = 0x16;
/// Most plaintext encrypted by one write: three full records, whose ciphertext still fits a
/// pooled buffer after one growth.
const MAX_WRITE: usize = 3 * 16 * 1024;

/// The rustls session and what the stream knows beyond it.
struct Session {
    /// The server side (accepted) or the client side ([`super::client`]).
    conn: Connection,
    /// Ciphertext read from the socket that rustls could not take yet because its plaintext
    /// queue was full; fed before the socket is read again. Empty, without capacity, otherwise.
    backlog: BytesMut,
    /// A fatal TLS error seen while reading; later reads report it again.
    failed: Option<rustls::Error>,
    /// `close_notify` was queued: no more writes.
    write_closed: bool,
    /// The `x-forwarded-client-cert` value of the client's verified certificate (mTLS), made
    /// once after the handshake.
    client_identity: Option<Rc<[u8]>>,
    /// The socket, for the close_notify sent when the session is dropped. Every owner of the
    /// session (the stream or its halves) declares the session before the socket, so the
    /// session drops first and the descriptor is still open then.
    fd: RawFd,
}

type Shared = Rc<RefCell<Session>>;

impl Drop for Session {
    /// A connection dropped without [`AsyncWriteRent::shutdown`] (ringway closing an HTTP
    /// connection, a pooled upstream connection let go) still ends its TLS stream cleanly: the
    /// close_notify alert is sent with one non-blocking `send`, best effort, so the peer can
    /// tell our close from a truncation (RFC 8446 section 6.1). Skipped when the handshake did
    /// not finish, a TLS error was seen, close_notify was already sent, or ciphertext is still
    /// queued (the alert must not overtake it); a full socket buffer or a gone peer drops it.
    fn drop(&mut self) {
        if self.write_closed
            || self.failed.is_some()
            || self.conn.is_handshaking()
            || self.conn.wants_write()
        {
            return;
        }
        self.conn.send_close_notify();
        let mut alert = Vec::with_capacity(64);
        if self.conn.write_tls(&mut alert).is_ok() && !alert.is_empty() {
            let _ = crate::sys::send_nonblocking(self.fd, &alert);
        }
    }
}

/// Runs the server side of a TLS handshake on `tcp`. `first` holds the bytes already read
/// from it (those after a PROXY protocol header; usually none): they are the start of the
/// client's first flight. Fails with [`TlsError::Timeout`] if it is not done by `deadline`
/// (checked on the worker's coarse timer). On success, session tickets (if any) have been sent
/// too.
pub(crate) async fn accept(
    tcp: TcpStream,
    first: BytesMut,
    config: Arc<ServerConfig>,
    deadline: Instant,
) -> Result<TlsStream, TlsError> {
    let conn = ServerConnection::new(config).map_err(|reason| TlsError::Handshake { reason })?;
    start(tcp, Connection::Server(conn), first, deadline).await
}

/// Runs the handshake of `conn` (either side) on `tcp` until done or `deadline`.
pub(super) async fn start(
    tcp: TcpStream,
    conn: Connection,
    first: BytesMut,
    deadline: Instant,
) -> Result<TlsStream, TlsError> {
    let mut stream = TlsStream {
        session: Rc::new(RefCell::new(Session {
            conn,
            backlog: BytesMut::new(),
            failed: None,
            write_closed: false,
            client_identity: None,
            fd: tcp.as_raw_fd(),
        })),
        io: tcp,
    };
    monoio::select! {
        r = handshake(&mut stream.io, &stream.session, first) => r?,
        _ = timer::sleep_until(deadline) => return Err(TlsError::Timeout),
    }
    Ok(stream)
}

async fn handshake(io: &mut TcpStream, session: &Shared, first: BytesMut) -> Result<(), TlsError> {
    let mut pending = if first.is_empty() {
        buffers::give_back(first);
        None
    } else {
        Some(first)
    };
    // A client must start with a handshake record; a server may answer with an alert.
    let mut checked = matches!(session.borrow().conn, Connection::Client(_));
    loop {
        flush(io, session).await?;
        if !session.borrow().conn.is_handshaking() {
            return Ok(());
        }
        let (mut rx, n) = match pending.take() {
            Some(rx) => {
                let n = rx.len();
                (rx, n)
            }
            None => {
                let (res, rx) = io.read(buffers::take()).await;
                match res {
                    Ok(0) => return Err(TlsError::Closed),
                    Ok(n) => (rx, n),
                    Err(e) => return Err(TlsError::Io(e)),
                }
            }
        };
        if !std::mem::replace(&mut checked, true) && rx[0] != HANDSHAKE_RECORD {
            return Err(TlsError::NotTls { first_byte: rx[0] });
        }
        let fed = session.borrow_mut().absorb(&mut rx, n);
        buffers::give_back(rx);
        match fed {
            Ok(()) => {}
            Err(Fault::Tls(reason)) => {
                // rustls queued the alert that tells the client why; send it if we can.
                let _ = flush(io, session).await;
                return Err(TlsError::Handshake { reason });
            }
            Err(Fault::Io(e)) => return Err(TlsError::Io(e)),
        }
    }
}

/// Why feeding ciphertext to rustls failed.
enum Fault {
    Tls(rustls::Error),
    Io(io::Error),
}

impl From<Fault> for io::Error {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Tls(e) => Self::new(io::ErrorKind::InvalidData, e),
            Fault::Io(e) => e,
        }
    }
}

impl Session {
    /// Hands `rx[..n]` (just read from the socket; `n == 0` is the socket's end of stream) to
    /// rustls. What rustls cannot take now stays in the backlog; `rx` is left empty.
    fn absorb(&mut self, rx: &mut BytesMut, n: usize) -> Result<(), Fault> {
        if n == 0 {
            // Tells rustls the transport ended: reads then end with UnexpectedEof unless
            // close_notify came first.
            let _ = self.conn.read_tls(&mut io::empty());
            rx.clear();
            return Ok(());
        }
        rx.truncate(n);
        let used = self.feed(&rx[..])?;
        if used < rx.len() {
            let _ = rx.split_to(used);
            self.backlog = rx.split();
        } else {
            rx.clear();
        }
        Ok(())
    }

    /// Feeds ciphertext to rustls and processes it; returns how much was taken (all of it
    /// unless rustls's plaintext queue filled up; everything after a close_notify is dropped).
    fn feed(&mut self, mut src: &[u8]) -> Result<usize, Fault> {
        let len = src.len();
        while !src.is_empty() {
            match self.conn.read_tls(&mut src) {
                // After close_notify rustls takes nothing more; the rest is ignored.
                Ok(0) => return Ok(len),
                Ok(_) => {}
                // "received plaintext buffer full": deliver plaintext first.
                Err(e) if e.kind() == io::ErrorKind::Other => break,
                Err(e) => return Err(Fault::Io(e)),
            }
            if let Err(e) = self.conn.process_new_packets() {
                self.failed = Some(e.clone());
                return Err(Fault::Tls(e));
            }
        }
        Ok(len - src.len())
    }

    /// Copies decrypted bytes into `buf`. `None`: none yet (read the socket). `Some(Ok(0))`:
    /// the client sent close_notify and everything before it was read.
    fn take_plaintext<T: IoBufMut>(&mut self, buf: &mut T) -> Option<io::Result<usize>> {
        let mut copied = 0;
        loop {
            if let Some(e) = &self.failed {
                return Some(Err(io::Error::new(io::ErrorKind::InvalidData, e.clone())));
            }
            let mut reader = self.conn.reader();
            match reader.fill_buf() {
                Ok([]) => return Some(Ok(copied)),
                Ok(chunk) => {
                    let n = iobuf::fill_at(buf, copied, chunk);
                    reader.consume(n);
                    copied += n;
                    if n == 0 || buf.bytes_total() == copied {
                        return Some(Ok(copied));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if copied > 0 {
                        return Some(Ok(copied));
                    }
                    if self.backlog.is_empty() {
                        return None;
                    }
                    let mut backlog = std::mem::take(&mut self.backlog);
                    let fed = self.feed(&backlog);
                    match fed {
                        Ok(used) if used < backlog.len() => {
                            let _ = backlog.split_to(used);
                            self.backlog = backlog;
                        }
                        Ok(_) => {
                            backlog.clear();
                            buffers::give_back(backlog);
                        }
                        Err(f) => return Some(Err(f.into())),
                    }
                }
                // Report the end (UnexpectedEof) on the next read.
                Err(_) if copied > 0 => return Some(Ok(copied)),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Whether a read would complete without waiting for the socket.
    fn has_input(&mut self) -> bool {
        if self.failed.is_some() || !self.backlog.is_empty() {
            return true;
        }
        !matches!(self.conn.reader().fill_buf(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Moves rustls's queued ciphertext into a buffer for the socket; `None` if nothing waits.
    fn outgoing(&mut self) -> Option<BytesMut> {
        if !self.conn.wants_write() {
            return None;
        }
        let mut tx = buffers::take();
        let mut w = (&mut tx).writer();
        while self.conn.wants_write() {
            // Writing into memory cannot fail.
            if self.conn.write_tls(&mut w).is_err() {
                break;
            }
        }
        Some(tx)
    }

    fn encrypt(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.write_closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "TLS stream already shut down for writing",
            ));
        }
        let data = &data[..data.len().min(MAX_WRITE)];
        self.conn.writer().write(data)
    }
}

/// Reads plaintext into `buf`, reading and decrypting from `io` as needed.
async fn read_plain<R: AsyncReadRent, T: IoBufMut>(
    io: &mut R,
    session: &Shared,
    mut buf: T,
) -> BufResult<usize, T> {
    if buf.bytes_total() == 0 {
        return (Ok(0), buf);
    }
    loop {
        if let Some(r) = session.borrow_mut().take_plaintext(&mut buf) {
            return (r, buf);
        }
        let rx = buffers::take();
        let (res, mut rx) = io.read(rx).await;
        let fed = match res {
            Ok(n) => session.borrow_mut().absorb(&mut rx, n),
            Err(e) => Err(Fault::Io(e)),
        };
        buffers::give_back(rx);
        if let Err(f) = fed {
            return (Err(f.into()), buf);
        }
    }
}

/// Writes everything rustls has queued to `io`.
async fn flush<W: AsyncWriteRent>(io: &mut W, session: &Shared) -> io::Result<()> {
    loop {
        let Some(tx) = session.borrow_mut().outgoing() else {
            return Ok(());
        };
        let (res, mut tx) = io.write_all(tx).await;
        tx.clear();
        buffers::give_back(tx);
        res?;
    }
}

/// Encrypts (a prefix of) `data`, sends it and returns its length.
async fn write_plain<W: AsyncWriteRent>(
    io: &mut W,
    session: &Shared,
    data: &[u8],
) -> io::Result<usize> {
    flush(io, session).await?;
    if data.is_empty() {
        return Ok(0);
    }
    let n = session.borrow_mut().encrypt(data)?;
    flush(io, session).await?;
    Ok(n)
}

/// Sends close_notify (once), then half-closes the socket.
async fn shutdown_write<W: AsyncWriteRent>(io: &mut W, session: &Shared) -> io::Result<()> {
    {
        let mut s = session.borrow_mut();
        if !s.write_closed {
            s.write_closed = true;
            s.conn.send_close_notify();
        }
    }
    flush(io, session).await?;
    io.shutdown().await
}

/// A TLS connection accepted by [`accept`]. Use it through [`AsyncReadRent`] and
/// [`AsyncWriteRent`]; [`readable`](Self::readable) waits for input without a buffer.
pub(crate) struct TlsStream {
    // The session before the socket: see `Session::fd`.
    session: Shared,
    io: TcpStream,
}

impl TlsStream {
    /// Waits until a read would make progress: at once if decrypted (or undelivered) bytes are
    /// buffered or the stream has ended, else until the socket is readable. Holds no buffer
    /// while waiting. A readable socket may still carry only part of a record, in which case
    /// the next read waits for the rest.
    pub(crate) async fn readable(&self, relaxed: bool) -> io::Result<()> {
        if self.session.borrow_mut().has_input() {
            return Ok(());
        }
        self.io.readable(relaxed).await
    }

    /// The underlying socket (for addresses and socket options; reading or writing it
    /// directly would corrupt the TLS stream).
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.io
    }

    /// The server name the client asked for (SNI), lowercase.
    pub(crate) fn sni(&self) -> Option<String> {
        match &self.session.borrow().conn {
            Connection::Server(c) => c.server_name().map(str::to_owned),
            Connection::Client(_) => None,
        }
    }

    /// The ALPN protocol agreed on, if any (`b"h2"`, `b"http/1.1"`, ...).
    pub(crate) fn alpn(&self) -> Option<Vec<u8>> {
        self.session
            .borrow()
            .conn
            .alpn_protocol()
            .map(<[u8]>::to_vec)
    }

    /// Whether HTTP/2 was agreed on by ALPN.
    pub(crate) fn is_h2(&self) -> bool {
        self.session.borrow().conn.alpn_protocol() == Some(super::ALPN_H2)
    }

    /// The TLS version in use.
    pub(crate) fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.session.borrow().conn.protocol_version()
    }

    /// The cipher suite in use.
    pub(crate) fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.session.borrow().conn.negotiated_cipher_suite()
    }

    /// Whether the handshake resumed an earlier session (ticket or session ID).
    pub(crate) fn is_resumed(&self) -> bool {
        self.session.borrow().conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// Remembers the `x-forwarded-client-cert` value of the client's certificate (shared by
    /// the split halves and kept when they are reunited).
    pub(crate) fn set_client_identity(&self, xfcc: Option<Rc<[u8]>>) {
        self.session.borrow_mut().client_identity = xfcc;
    }

    /// What [`set_client_identity`](Self::set_client_identity) remembered.
    pub(crate) fn client_identity(&self) -> Option<Rc<[u8]>> {
        self.session.borrow().client_identity.clone()
    }

    /// The peer's certificate chain, leaf first (a client's only with client authentication).
    pub(crate) fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.session
            .borrow()
            .conn
            .peer_certificates()
            .map(<[CertificateDer<'static>]>::to_vec)
    }

    /// Splits into a read half and a write half that can be used at the same time (from two
    /// futures on this thread); [`TlsReadHalf::reunite`] puts them back together.
    pub(crate) fn into_split(self) -> (TlsReadHalf, TlsWriteHalf) {
        let (r, w) = self.io.into_split();
        (
            TlsReadHalf {
                io: r,
                session: self.session.clone(),
            },
            TlsWriteHalf {
                io: w,
                session: self.session,
            },
        )
    }
}

impl AsyncReadRent for TlsStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        let (res, buf) = read_plain(&mut self.io, &self.session, buf).await;
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::InvalidData) {
            // A TLS error: send the alert rustls queued, best effort (nobody else writes).
            let _ = flush(&mut self.io, &self.session).await;
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        readv_via(self, buf).await
    }
}

impl AsyncWriteRent for TlsStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let res = write_plain(&mut self.io, &self.session, iobuf::filled(&buf)).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let res = writev_plain(&mut self.io, &self.session, &buf).await;
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        flush(&mut self.io, &self.session).await?;
        self.io.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        shutdown_write(&mut self.io, &self.session).await
    }
}

/// Reads into the parts of a vectored buffer, through a pooled buffer when the plaintext is
/// not already decrypted (monoio's `readv` is rare on this path; `read` is the fast one).
async fn readv_via<R: AsyncReadRent, T: IoVecBufMut>(
    io: &mut R,
    mut buf: T,
) -> BufResult<usize, T> {
    let tmp = buffers::take();
    let (res, mut tmp) = io.read(tmp).await;
    let res = res.map(|n| iobuf::fill_vec(&mut buf, &tmp[..n]));
    tmp.clear();
    buffers::give_back(tmp);
    (res, buf)
}

/// Encrypts the parts of a vectored buffer in order (up to [`MAX_WRITE`] bytes), sends them
/// and returns how many bytes were taken.
async fn writev_plain<W: AsyncWriteRent, T: IoVecBuf>(
    io: &mut W,
    session: &Shared,
    buf: &T,
) -> io::Result<usize> {
    flush(io, session).await?;
    let mut taken = 0;
    {
        let mut s = session.borrow_mut();
        for part in iobuf::filled_vec(buf) {
            if taken >= MAX_WRITE {
                break;
            }
            let part = &part[..part.len().min(MAX_WRITE - taken)];
            let n = s.encrypt(part)?;
            taken += n;
            if n < part.len() {
                break;
            }
        }
    }
    flush(io, session).await?;
    Ok(taken)
}

/// The read half of a split [`TlsStream`].
pub(crate) struct TlsReadHalf {
    // The session before the socket: see `Session::fd`.
    session: Shared,
    io: OwnedReadHalf<TcpStream>,
}

/// The write half of a split [`TlsStream`]. Dropping it half-closes the socket without a
/// close_notify (unless the read half is gone too); [`AsyncWriteRent::shutdown`] sends one
/// first.
pub(crate) struct TlsWriteHalf {
    // The session before the socket: see `Session::fd`.
    session: Shared,
    io: OwnedWriteHalf<TcpStream>,
}

/// [`TlsReadHalf::reunite`] was given halves of two different streams; here they are back.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "the halves are handed back for the caller to recover"
)]
pub(crate) struct ReuniteError(pub(crate) TlsReadHalf, pub(crate) TlsWriteHalf);

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.session.borrow();
        f.debug_struct("TlsStream")
            .field("version", &s.conn.protocol_version())
            .field("sni", &self.sni())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TlsReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsReadHalf")
    }
}

impl std::fmt::Debug for TlsWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsWriteHalf")
    }
}

impl TlsReadHalf {
    /// Joins the halves of one stream again.
    pub(crate) fn reunite(self, write: TlsWriteHalf) -> Result<TlsStream, ReuniteError> {
        if !Rc::ptr_eq(&self.session, &write.session) {
            return Err(ReuniteError(self, write));
        }
        let Self { io: r, session } = self;
        let TlsWriteHalf { io: w, session: _ } = write;
        match r.reunite(w) {
            Ok(io) => Ok(TlsStream { io, session }),
            // Same session means same socket; monoio only refuses different sockets.
            Err(e) => Err(ReuniteError(
                Self {
                    io: e.0,
                    session: session.clone(),
                },
                TlsWriteHalf { io: e.1, session },
            )),
        }
    }
}

impl AsyncReadRent for TlsReadHalf {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        read_plain(&mut self.io, &self.session, buf).await
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        readv_via(self, buf).await
    }
}

impl AsyncWriteRent for TlsWriteHalf {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let res = write_plain(&mut self.io, &self.session, iobuf::filled(&buf)).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let res = writev_plain(&mut self.io, &self.session, &buf).await;
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        flush(&mut self.io, &self.session).await?;
        self.io.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        shutdown_write(&mut self.io, &self.session).await
    }
}
