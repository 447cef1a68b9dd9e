//! What both ends of ringway's HTTP/2 connections share: the sans-IO [`Connection`] behind a
//! `RefCell`, a mailbox per stream, and the reader and writer loops that move bytes between
//! the socket and the codec.
//!
//! A connection task runs [`read_loop`] and [`write_loop`]; stream tasks (downstream requests,
//! or upstream requests made on behalf of any downstream) use the stream methods here. Nobody
//! holds a borrow across an await, and every change that queues output wakes the writer.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use protocols::http2::conn::{self, Connection, Event, Role, StreamIdMap, StreamState};
use protocols::http2::frame::{Reason, StreamId};

use super::convert::Fields;
use super::signal::Signal;
use crate::net::io::write_within;
use crate::rt::buffers::read_into;
use crate::rt::{buffers, timer};

/// Written pieces smaller than this are gathered into one buffer per write.
const GATHER_BELOW: usize = 16 * 1024;

/// One HTTP/2 connection as its tasks share it.
pub(crate) struct Session {
    pub(crate) conn: RefCell<Connection>,
    /// Streams someone is still using, by id.
    streams: RefCell<StreamIdMap<Rc<StreamSlot>>>,
    /// Wakes the writer: output was queued, or a stream ended.
    pub(crate) writer: Signal,
    /// Stop taking streams; the writer returns once no stream is left and all is written.
    pub(crate) closing: Cell<bool>,
    /// When the last stream ended (for idle timeouts).
    pub(crate) idle_since: Cell<Instant>,
    /// A stream ended: the connection task re-arms its idle timer.
    pub(crate) streams_changed: Signal,
    /// The peer answered one of our PINGs.
    pub(crate) pong: Signal,
    /// Octets the writer took from the connection and has not written yet.
    unsent: Cell<usize>,
    /// A stream waits for the output to fall below [`SEND_BUFFER_LIMIT`].
    backed_up: Cell<bool>,
}

/// Output (queued or being written) past which streams queue no more data until the writer
/// catches up: a peer that reads slowly, or not at all, would otherwise make the connection
/// hold up to the whole flow-control window it advertised. Envoy's default
/// `per_connection_buffer_limit_bytes`.
pub(crate) const SEND_BUFFER_LIMIT: usize = 1024 * 1024;

impl Session {
    pub(crate) fn new(role: Role, config: conn::Config) -> Rc<Self> {
        Rc::new(Self {
            conn: RefCell::new(Connection::new(role, config)),
            streams: RefCell::new(StreamIdMap::default()),
            writer: Signal::default(),
            closing: Cell::new(false),
            idle_since: Cell::new(timer::coarse_now()),
            streams_changed: Signal::default(),
            pong: Signal::default(),
            unsent: Cell::new(0),
            backed_up: Cell::new(false),
        })
    }

    /// The output is at [`SEND_BUFFER_LIMIT`]: a stream with data to send waits (its
    /// `tx_ready` is notified once the writer has written what it held).
    fn is_backed_up(&self) -> bool {
        let full = self.conn.borrow().buffered() + self.unsent.get() >= SEND_BUFFER_LIMIT;
        if full {
            self.backed_up.set(true);
        }
        full
    }

    /// The writer wrote what it held: streams that waited for room may queue again.
    fn drained(&self) {
        self.unsent.set(0);
        if self.backed_up.replace(false) {
            for s in self.streams.borrow().values() {
                s.tx_ready.notify();
            }
        }
    }

    /// Streams in use.
    pub(crate) fn streams(&self) -> usize {
        self.streams.borrow().len()
    }

    pub(crate) fn insert(&self, slot: Rc<StreamSlot>) {
        self.streams.borrow_mut().insert(slot.id.get(), slot);
    }

    fn slot(&self, id: StreamId) -> Option<Rc<StreamSlot>> {
        self.streams.borrow().get(&id.get()).cloned()
    }

    /// Every stream stops: the connection is going away without them.
    pub(crate) fn kill_all(&self, reason: Reason) {
        let slots: Vec<_> = self.streams.borrow().values().cloned().collect();
        for s in slots {
            s.kill(reason);
        }
    }

    /// Start closing: GOAWAY(NO_ERROR) naming the last peer stream taken; open streams finish.
    /// Returns false if it was closing already.
    pub(crate) fn go_away(&self) -> bool {
        let first = !self.closing.replace(true);
        if first {
            self.conn.borrow_mut().go_away(Reason::NO_ERROR);
        }
        self.writer.notify();
        first
    }

    /// A stream's user is done with it: forget it, return unread flow-control credit, and
    /// reset it if it is still open: `unfinished` when our side is not done, `peer_unfinished`
    /// when only the peer's side is (RFC 9113 8.1 lets a server say NO_ERROR there).
    pub(crate) fn settle(&self, slot: &StreamSlot, unfinished: Reason, peer_unfinished: Reason) {
        let now_idle = {
            let mut streams = self.streams.borrow_mut();
            streams.remove(&slot.id.get());
            streams.is_empty()
        };
        let unread: usize = slot.rx.borrow_mut().data.drain(..).map(|d| d.len()).sum();
        let mut conn = self.conn.borrow_mut();
        if unread > 0 {
            conn.release_capacity(slot.id, u32::try_from(unread).unwrap_or(u32::MAX));
        }
        let reason = match conn.stream_state(slot.id) {
            None | Some(StreamState::Idle) => None,
            Some(StreamState::HalfClosedLocal) => Some(peer_unfinished),
            Some(StreamState::Open | StreamState::HalfClosedRemote) => Some(unfinished),
        };
        if let Some(reason) = reason {
            let _ = conn.reset(slot.id, reason);
        }
        drop(conn);
        if now_idle {
            self.idle_since.set(timer::coarse_now());
        }
        self.streams_changed.notify();
        self.writer.notify();
    }
}

/// The stream is gone (reset, or the connection closed).
#[derive(Debug)]
pub(crate) struct Gone;

/// Why [`StreamSlot::send_data`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The stream is gone ([`Gone`]).
    Gone,
    /// The peer opened no flow-control window for the stream idle timeout: it stopped reading.
    Stalled,
}

/// What the peer sent next on a stream.
pub(crate) enum Recv {
    /// A response head (client side; 1xx heads come first, each with `false`).
    Head(Fields, bool),
    Data(Bytes),
    Trailers(Fields),
    End,
    Gone,
}

/// What arrived on a stream and was not consumed yet.
#[derive(Default)]
struct Rx {
    heads: VecDeque<(Fields, bool)>,
    data: VecDeque<Bytes>,
    trailers: Option<Fields>,
    end: bool,
    /// Reset by the peer, by the codec after a stream error, or the connection is gone.
    reset: Option<Reason>,
}

/// One stream's mailbox.
pub(crate) struct StreamSlot {
    pub(crate) id: StreamId,
    rx: RefCell<Rx>,
    /// A head, data, trailers, end or reset arrived.
    rx_ready: Signal,
    /// Send window opened, or the stream is gone.
    tx_ready: Signal,
    /// The stream is gone: its user stops whatever it is doing.
    pub(crate) cancel: Signal,
}

impl StreamSlot {
    pub(crate) fn new(id: StreamId) -> Rc<Self> {
        Rc::new(Self {
            id,
            rx: RefCell::new(Rx::default()),
            rx_ready: Signal::default(),
            tx_ready: Signal::default(),
            cancel: Signal::default(),
        })
    }

    pub(crate) fn kill(&self, reason: Reason) {
        self.rx.borrow_mut().reset.get_or_insert(reason);
        self.rx_ready.notify();
        self.tx_ready.notify();
        self.cancel.notify();
    }

    /// The peer ended its side of the stream (what it sent may not be consumed yet).
    pub(crate) fn ended(&self) -> bool {
        self.rx.borrow().end
    }

    /// Why the stream was reset, if it was.
    pub(crate) fn reset_reason(&self) -> Option<Reason> {
        self.rx.borrow().reset
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.rx.borrow().reset.is_some()
    }

    /// The next thing the peer sent, waiting at most `idle` for it.
    pub(crate) async fn recv(&self, idle: Duration) -> Recv {
        loop {
            if let Some(r) = self.try_recv() {
                return r;
            }
            if !self.wait(idle).await {
                return Recv::Gone;
            }
        }
    }

    /// The next thing the peer sent, if something is there.
    pub(crate) fn try_recv(&self) -> Option<Recv> {
        let mut rx = self.rx.borrow_mut();
        // RST_STREAM(NO_ERROR) after a complete response (a server that answered before
        // reading the whole request) must not discard it (RFC 9113 8.1): what arrived is
        // delivered first. Any other reset ends the stream at once.
        let graceful = rx.reset == Some(Reason::NO_ERROR);
        if rx.reset.is_some() && !graceful {
            return Some(Recv::Gone);
        }
        if let Some((fields, end)) = rx.heads.pop_front() {
            return Some(Recv::Head(fields, end));
        }
        if let Some(d) = rx.data.pop_front() {
            return Some(Recv::Data(d));
        }
        if let Some(t) = rx.trailers.take() {
            return Some(Recv::Trailers(t));
        }
        if rx.end {
            return Some(Recv::End);
        }
        graceful.then_some(Recv::Gone)
    }

    /// Wait until something arrives, at most `idle`; `false` when the time ran out.
    pub(crate) async fn wait(&self, idle: Duration) -> bool {
        self.wait_until(timer::coarse_now() + idle).await
    }

    /// Wait until something arrives (`true`) or `deadline` passes (`false`).
    pub(crate) async fn wait_until(&self, deadline: Instant) -> bool {
        monoio::select! {
            () = self.rx_ready.wait() => true,
            () = timer::sleep_until(deadline) => false,
        }
    }

    /// `n` bytes of received data were consumed: the peer may send as much again.
    pub(crate) fn release(&self, sess: &Session, n: usize) {
        sess.conn
            .borrow_mut()
            .release_capacity(self.id, u32::try_from(n).unwrap_or(u32::MAX));
        sess.writer.notify();
    }

    pub(crate) fn send_headers<'f>(
        &self,
        sess: &Session,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
    ) -> Result<(), Gone> {
        self.send_head(sess, |c, id| c.send_headers(id, fields, end_stream))
    }

    /// [`Self::send_headers`] for names that may not be lowercase yet (an HTTP/1 head's): the
    /// codec lowercases them as it encodes them.
    pub(crate) fn send_headers_lowercasing<'f>(
        &self,
        sess: &Session,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
    ) -> Result<(), Gone> {
        self.send_head(sess, |c, id| {
            c.send_headers_lowercasing(id, fields, end_stream)
        })
    }

    /// Queue a head on this stream with `send`, and wake the writer.
    fn send_head<E>(
        &self,
        sess: &Session,
        send: impl FnOnce(&mut Connection, StreamId) -> Result<(), E>,
    ) -> Result<(), Gone> {
        let sent = send(&mut sess.conn.borrow_mut(), self.id);
        sess.writer.notify();
        sent.map_err(|_| Gone)
    }

    /// Trailers end the stream; an empty list ends it with an empty DATA frame instead.
    pub(crate) fn send_trailers(&self, sess: &Session, fields: &Fields) -> Result<(), Gone> {
        let mut conn = sess.conn.borrow_mut();
        let sent = if fields.is_empty() {
            conn.send_data(self.id, &mut Bytes::new(), true).map(|_| ())
        } else {
            conn.send_trailers(self.id, fields.iter())
        };
        drop(conn);
        sess.writer.notify();
        sent.map_err(|_| Gone)
    }

    /// Send all of `data` as flow control allows, waiting for window updates (at most `idle`
    /// each).
    pub(crate) async fn send_data(
        &self,
        sess: &Session,
        mut data: Bytes,
        end_stream: bool,
        idle: Duration,
    ) -> Result<(), SendError> {
        loop {
            if self.is_gone() {
                return Err(SendError::Gone);
            }
            if sess.is_backed_up() {
                sess.writer.notify();
            } else {
                let sent = sess
                    .conn
                    .borrow_mut()
                    .send_data(self.id, &mut data, end_stream);
                sess.writer.notify();
                match sent {
                    Ok(_) if data.is_empty() => return Ok(()),
                    Ok(_) => {}
                    Err(_) => return Err(SendError::Gone),
                }
            }
            let deadline = timer::coarse_now() + idle;
            monoio::select! {
                () = self.tx_ready.wait() => {}
                () = timer::sleep_until(deadline) => return Err(SendError::Stalled),
            }
        }
    }
}

/// Why the reader stopped.
pub(crate) enum ReadEnd {
    /// The peer closed or reset the connection.
    PeerGone,
    /// A connection error: GOAWAY is queued.
    Protocol,
}

/// Read, decode, and hand events to streams until the peer goes away or breaks the protocol.
/// `buf` may hold bytes already read. `on_new` is called for each stream the peer opens, with
/// when its head was decoded: the clock is read once for all the streams one read opened.
pub(crate) async fn read_loop<R: AsyncReadRent>(
    sess: &Session,
    rd: &mut R,
    mut buf: BytesMut,
    mut on_new: impl FnMut(StreamId, Fields, bool, Instant),
) -> ReadEnd {
    if buf.capacity() == 0 {
        buf = buffers::take();
    }
    loop {
        if !buf.is_empty() {
            let res = sess.conn.borrow_mut().handle_bytes(&mut buf);
            dispatch(sess, &mut on_new);
            sess.writer.notify();
            if res.is_err() {
                return ReadEnd::Protocol;
            }
        }
        match read_into(rd, &mut buf, None).await {
            Ok(0) | Err(_) => return ReadEnd::PeerGone,
            Ok(_) => {}
        }
    }
}

/// Deliver the connection's events to their streams.
fn dispatch(sess: &Session, on_new: &mut impl FnMut(StreamId, Fields, bool, Instant)) {
    let mut now = None;
    loop {
        let Some(event) = sess.conn.borrow_mut().poll_event() else {
            return;
        };
        match event {
            Event::Headers {
                stream,
                fields,
                end_stream,
            } => match sess.slot(stream) {
                Some(s) => {
                    let mut rx = s.rx.borrow_mut();
                    rx.heads.push_back((fields, end_stream));
                    rx.end |= end_stream;
                    drop(rx);
                    s.rx_ready.notify();
                }
                None if sess.conn.borrow().role() == Role::Server => {
                    let at = *now.get_or_insert_with(timer::turn_now);
                    on_new(stream, fields, end_stream, at);
                }
                None => {}
            },
            Event::Data {
                stream,
                data,
                end_stream,
            } => match sess.slot(stream) {
                Some(s) => {
                    let mut rx = s.rx.borrow_mut();
                    if !data.is_empty() {
                        rx.data.push_back(data);
                    }
                    rx.end |= end_stream;
                    drop(rx);
                    s.rx_ready.notify();
                }
                // Nobody reads it: give the flow-control credit back at once.
                None => {
                    let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
                    sess.conn.borrow_mut().release_capacity(stream, n);
                }
            },
            Event::Trailers { stream, fields } => {
                if let Some(s) = sess.slot(stream) {
                    let mut rx = s.rx.borrow_mut();
                    rx.trailers = Some(fields);
                    rx.end = true;
                    drop(rx);
                    s.rx_ready.notify();
                }
            }
            Event::Reset { stream, reason, .. } => {
                if let Some(s) = sess.slot(stream) {
                    s.kill(reason);
                }
            }
            Event::WindowOpened(stream) if stream == StreamId::ZERO => {
                for s in sess.streams.borrow().values() {
                    s.tx_ready.notify();
                }
            }
            Event::WindowOpened(stream) => {
                if let Some(s) = sess.slot(stream) {
                    s.tx_ready.notify();
                }
            }
            Event::Ping { ack: true, .. } => sess.pong.notify(),
            Event::GoAway { .. } | Event::SettingsChanged | Event::Ping { .. } => {}
        }
    }
}

/// Send what the connection queued, until closing with no stream left (or failed) and
/// nothing left to write. A peer that takes no byte of a write for `stall` (it stopped
/// reading the connection) fails it with [`io::ErrorKind::TimedOut`].
pub(crate) async fn write_loop<W: AsyncWriteRent>(
    sess: &Session,
    mut wr: W,
    stall: Duration,
) -> io::Result<()> {
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut gather = BytesMut::new();
    loop {
        let taken = sess.conn.borrow_mut().poll_transmit_vectored(&mut pieces);
        sess.unsent.set(taken);
        if pieces.is_empty() {
            let failed = sess.conn.borrow().error().is_some();
            if sess.closing.get() && (sess.streams() == 0 || failed) {
                return Ok(());
            }
            sess.writer.wait().await;
            continue;
        }
        for piece in pieces.drain(..) {
            if piece.len() < GATHER_BELOW {
                gather.extend_from_slice(&piece);
                continue;
            }
            if !gather.is_empty() {
                write_within(&mut wr, gather.split().freeze(), stall).await?;
            }
            write_within(&mut wr, piece, stall).await?;
        }
        if !gather.is_empty() {
            write_within(&mut wr, gather.split().freeze(), stall).await?;
        }
        sess.drained();
    }
}
