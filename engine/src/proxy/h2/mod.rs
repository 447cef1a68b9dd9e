//! The HTTP/2 connection manager: one downstream connection speaking HTTP/2 (prior-knowledge
//! h2c today; h2 over TLS by ALPN plugs in here), its streams each served by a task of their
//! own through the same router, clusters and upstream HTTP/1 codec as HTTP/1 requests.
//!
//! The connection task owns the socket. Its reader feeds bytes to the sans-IO
//! [`Connection`] and hands each event to its stream; its writer sends whatever the
//! connection has queued. Stream tasks talk to the connection only through [`Shared`]: they
//! borrow it briefly, never across an await, and wake the writer. All of it lives on one
//! worker thread, so nothing here is `Send` and nothing takes a lock.

mod convert;
mod signal;
mod stream;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt, Splitable};
use protocols::http2::conn::{self, Connection, Counters, Event, Role};
use protocols::http2::frame::{Reason, StreamId};

use crate::proxy::Downstream;
use crate::proxy::body::read_into;
use crate::worker::{Worker, buffers, timer};
use signal::Signal;

/// The HTTP/2 connection preface a client sends first (RFC 9113 3.4).
pub(crate) const PREFACE: &[u8] = conn::PREFACE;

/// Written pieces smaller than this are gathered into one buffer per write.
const GATHER_BELOW: usize = 16 * 1024;

/// Settings ringway's server side advertises.
fn server_config() -> conn::Config {
    conn::Config {
        // Envoy's default; a request that waits on a slow upstream holds one stream.
        max_concurrent_streams: 100,
        // Enough for a fast upload of one stream without a round trip per 64 KiB.
        initial_window_size: 256 * 1024,
        connection_window_size: 1 << 20,
        ..conn::Config::default()
    }
}

/// State shared by the connection task and its stream tasks.
struct Shared {
    conn: RefCell<Connection>,
    /// Streams with a task, by id.
    streams: RefCell<HashMap<u32, Rc<StreamSlot>>>,
    /// Wakes the writer: output was queued, or a stream task ended.
    writer: Signal,
    /// Stop taking streams; close once the last stream task ended and all is written.
    closing: Cell<bool>,
    /// When the last stream task ended (for the idle timeout).
    idle_since: Cell<Instant>,
}

impl Shared {
    fn tasks(&self) -> usize {
        self.streams.borrow().len()
    }
}

/// What a stream task receives from the client.
#[derive(Default)]
struct Rx {
    data: std::collections::VecDeque<Bytes>,
    trailers: Option<convert::Fields>,
    end: bool,
    /// Reset by the client, by the codec after a stream error, or the connection is gone.
    reset: Option<Reason>,
}

/// One stream's mailbox.
struct StreamSlot {
    id: StreamId,
    rx: RefCell<Rx>,
    /// Body data, trailers, end or reset arrived.
    rx_ready: Signal,
    /// Send window opened, or the stream is gone.
    tx_ready: Signal,
    /// The stream is gone: the task stops whatever it is doing.
    cancel: Signal,
}

impl StreamSlot {
    fn new(id: StreamId) -> Self {
        Self {
            id,
            rx: RefCell::new(Rx::default()),
            rx_ready: Signal::default(),
            tx_ready: Signal::default(),
            cancel: Signal::default(),
        }
    }

    fn kill(&self, reason: Reason) {
        self.rx.borrow_mut().reset.get_or_insert(reason);
        self.rx_ready.notify();
        self.tx_ready.notify();
        self.cancel.notify();
    }
}

/// Why the reader stopped.
enum ReadEnd {
    /// The client closed or reset the connection.
    PeerGone,
    /// A connection error: GOAWAY is queued.
    Protocol,
}

/// Serve an HTTP/2 connection whose first bytes (the preface, at least in part) are in
/// `conn.buf`. Returns true when the client closed the connection.
pub(crate) async fn serve(worker: &Rc<Worker>, li: usize, conn: Downstream) -> bool {
    let Downstream { stream, buf, peer } = conn;
    let shared = Rc::new(Shared {
        conn: RefCell::new(Connection::new(Role::Server, server_config())),
        streams: RefCell::new(HashMap::new()),
        writer: Signal::default(),
        closing: Cell::new(false),
        idle_since: Cell::new(timer::coarse_now()),
    });
    let ctx = stream::ConnCtx {
        worker: worker.clone(),
        li,
        peer,
        local_addr: stream.local_addr().ok(),
        shared: shared.clone(),
        listener: worker.local().listeners[li].shared().clone(),
        tasks_changed: Signal::default(),
    };
    let ctx = Rc::new(ctx);
    let (mut rd, wr) = stream.into_split();
    let mut reported = Counters::default();

    let reader = read_loop(&ctx, &mut rd, buf);
    let writer = write_loop(&shared, wr);
    let mut reader = std::pin::pin!(reader);
    let mut writer = std::pin::pin!(writer);
    let mut reader_done = false;
    let mut draining = false;
    let by_peer = loop {
        let idle = worker.local().listener_config(li).http.idle_timeout;
        let idle_at = (shared.tasks() == 0).then(|| shared.idle_since.get() + idle);
        monoio::select! {
            end = &mut reader, if !reader_done => {
                reader_done = true;
                match end {
                    ReadEnd::PeerGone => break true,
                    ReadEnd::Protocol => {
                        ctx.http().downstream_cx_protocol_error.inc();
                        ctx.http().http2_goaway_sent.inc();
                        shutdown(&shared, Reason::PROTOCOL_ERROR);
                    }
                }
            }
            _ = &mut writer => break false,
            _ = worker.drain.wait(), if !draining => {
                draining = true;
                ctx.http().downstream_cx_drain_close.inc();
                go_away(&ctx);
            }
            _ = timer::sleep_until(idle_at.unwrap_or_else(far_future)), if idle_at.is_some() => {
                if shared.tasks() == 0 && timer::coarse_now() >= shared.idle_since.get() + idle {
                    ctx.http().downstream_cx_idle_timeout.inc();
                    go_away(&ctx);
                }
            }
            // The writer wakes us when a stream task ends, so the idle timer is re-armed.
            _ = ctx.tasks_changed.wait() => {}
        }
        count_codec(&ctx, &mut reported);
    };
    count_codec(&ctx, &mut reported);
    // Whatever is still running stops: the streams are gone with the connection.
    shared.closing.set(true);
    let slots: Vec<_> = shared.streams.borrow().values().cloned().collect();
    for s in slots {
        s.kill(Reason::CANCEL);
    }
    by_peer
}

fn far_future() -> Instant {
    timer::coarse_now() + Duration::from_secs(3600)
}

/// Graceful close: GOAWAY(NO_ERROR) naming the last stream taken; open streams finish.
fn go_away(ctx: &stream::ConnCtx) {
    let sh = &ctx.shared;
    if !sh.closing.replace(true) {
        sh.conn.borrow_mut().go_away(Reason::NO_ERROR);
        ctx.http().http2_goaway_sent.inc();
    }
    sh.writer.notify();
}

/// After a connection error: every stream stops, the queued GOAWAY is flushed, then close.
fn shutdown(sh: &Shared, _reason: Reason) {
    sh.closing.set(true);
    let slots: Vec<_> = sh.streams.borrow().values().cloned().collect();
    for s in slots {
        s.kill(Reason::CANCEL);
    }
    sh.writer.notify();
}

/// Read, decode, and hand events to streams until the client goes away or breaks the protocol.
async fn read_loop<R: monoio::io::AsyncReadRent>(
    ctx: &Rc<stream::ConnCtx>,
    rd: &mut R,
    mut buf: BytesMut,
) -> ReadEnd {
    if buf.capacity() == 0 {
        buf = buffers::take();
    }
    loop {
        if !buf.is_empty() {
            let res = ctx.shared.conn.borrow_mut().handle_bytes(&mut buf);
            dispatch(ctx);
            ctx.shared.writer.notify();
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

/// Deliver the connection's events to their streams; start a task for each new request.
fn dispatch(ctx: &Rc<stream::ConnCtx>) {
    let sh = &ctx.shared;
    loop {
        let Some(event) = sh.conn.borrow_mut().poll_event() else {
            return;
        };
        match event {
            Event::Headers {
                stream,
                fields,
                end_stream,
            } => {
                if sh.closing.get() {
                    // Past our GOAWAY: the codec ignores newer streams; refuse any other.
                    let _ = sh.conn.borrow_mut().reset(stream, Reason::REFUSED_STREAM);
                    continue;
                }
                let slot = Rc::new(StreamSlot::new(stream));
                sh.streams.borrow_mut().insert(stream.get(), slot.clone());
                monoio::spawn(stream::run(ctx.clone(), slot, fields, end_stream));
            }
            Event::Data {
                stream,
                data,
                end_stream,
            } => match slot(sh, stream) {
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
                    sh.conn.borrow_mut().release_capacity(stream, n);
                }
            },
            Event::Trailers { stream, fields } => {
                if let Some(s) = slot(sh, stream) {
                    let mut rx = s.rx.borrow_mut();
                    rx.trailers = Some(fields);
                    rx.end = true;
                    drop(rx);
                    s.rx_ready.notify();
                }
            }
            Event::Reset { stream, reason, .. } => {
                if let Some(s) = slot(sh, stream) {
                    s.kill(reason);
                }
            }
            Event::WindowOpened(stream) if stream == StreamId::ZERO => {
                for s in sh.streams.borrow().values() {
                    s.tx_ready.notify();
                }
            }
            Event::WindowOpened(stream) => {
                if let Some(s) = slot(sh, stream) {
                    s.tx_ready.notify();
                }
            }
            Event::GoAway { .. } | Event::SettingsChanged | Event::Ping { .. } => {}
        }
    }
}

fn slot(sh: &Shared, id: StreamId) -> Option<Rc<StreamSlot>> {
    sh.streams.borrow().get(&id.get()).cloned()
}

/// Send what the connection queued, until closing and nothing is left to do.
async fn write_loop<W: AsyncWriteRent>(sh: &Shared, mut wr: W) -> io::Result<()> {
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut gather = BytesMut::new();
    loop {
        sh.conn.borrow_mut().poll_transmit_vectored(&mut pieces);
        if pieces.is_empty() {
            let conn_failed = sh.conn.borrow().error().is_some();
            if sh.closing.get() && (sh.tasks() == 0 || conn_failed) {
                return Ok(());
            }
            sh.writer.wait().await;
            continue;
        }
        for piece in pieces.drain(..) {
            if piece.len() < GATHER_BELOW {
                gather.extend_from_slice(&piece);
                continue;
            }
            if !gather.is_empty() {
                wr.write_all(gather.split().freeze()).await.0?;
            }
            wr.write_all(piece).await.0?;
        }
        if !gather.is_empty() {
            wr.write_all(gather.split().freeze()).await.0?;
        }
    }
}

/// Add the codec's counters that moved since the last call to the listener's stats.
fn count_codec(ctx: &stream::ConnCtx, seen: &mut Counters) {
    let now = ctx.shared.conn.borrow().counters();
    let http = ctx.http();
    let add = |c: &crate::stats::Counter, new: u64, old: u64| {
        if new > old {
            c.add(new - old);
        }
    };
    add(
        &http.http2_rx_reset,
        now.resets_received,
        seen.resets_received,
    );
    add(&http.http2_tx_reset, now.resets_sent, seen.resets_sent);
    add(
        &http.http2_streams_refused,
        now.streams_refused,
        seen.streams_refused,
    );
    add(
        &http.http2_rx_messaging_error,
        now.malformed,
        seen.malformed,
    );
    add(
        &http.http2_flow_control_error,
        now.flow_control_errors,
        seen.flow_control_errors,
    );
    add(
        &http.http2_header_overflow,
        now.header_list_too_large,
        seen.header_list_too_large,
    );
    add(
        &http.http2_compression_error,
        now.compression_errors,
        seen.compression_errors,
    );
    add(&http.http2_rapid_reset, now.rapid_reset, seen.rapid_reset);
    add(
        &http.http2_continuation_flood,
        now.continuation_flood,
        seen.continuation_flood,
    );
    add(&http.http2_control_flood, now.ack_flood, seen.ack_flood);
    add(
        &http.http2_empty_data_flood,
        now.empty_data_flood,
        seen.empty_data_flood,
    );
    *seen = now;
}
