//! HTTP/2 downstream: a connection that opened with the HTTP/2 preface (prior-knowledge h2c)
//! or chose `h2` by TLS's ALPN, each stream served by a task of its own through the same
//! router and clusters as HTTP/1 requests. Upstream HTTP/2 connections are
//! [`crate::upstream::http2`]; the session both sides run on is [`crate::codec::h2`].
//!
//! Connection tasks own the sockets and run [`session`]'s reader and writer; stream tasks
//! talk to a connection only through its [`session::Session`]. All of it lives on one worker
//! thread, so nothing here is `Send` and nothing takes a lock.

pub(crate) mod adapt;
pub(crate) mod convert;
pub(crate) mod stream;

use std::rc::Rc;

use monoio::io::Splitable;
use protocols::http2::conn::{self, Counters, Role};
use protocols::http2::frame::Reason;

use crate::codec::h2::far_future;
use crate::codec::h2::session::{self, ReadEnd, Session, StreamSlot};
use crate::local::Worker;
use crate::proxy::Downstream;
use crate::rt::timer;
use crate::stats::HttpStats;

/// The HTTP/2 connection preface a client sends first (RFC 9113 3.4).
pub(crate) const PREFACE: &[u8] = conn::PREFACE;

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

/// Serve an HTTP/2 connection whose first bytes (the preface, at least in part) are in
/// `conn.buf`. Returns true when the client closed the connection.
pub(crate) async fn serve(worker: &Rc<Worker>, li: usize, conn: Downstream) -> bool {
    // Only a connection that has spoken HTTP/1 arms a multishot receive: none here.
    let Downstream {
        stream, buf, peer, ..
    } = conn;
    // Many streams, many operations: a registered file.
    stream.use_fixed_file();
    let sess = Session::new(Role::Server, server_config());
    let ctx = Rc::new(stream::ConnCtx {
        worker: worker.clone(),
        li,
        peer,
        xfcc: stream.forwarded_client_cert(worker.local().listener_config(li).tls.as_ref()),
        local_addr: stream.local_addr().ok(),
        sess: sess.clone(),
        listener: worker.local().listeners[li].shared().clone(),
    });
    let (mut rd, wr) = stream.into_split();
    let mut reported = Counters::default();

    let spawn_ctx = ctx.clone();
    let reader = session::read_loop(&sess, &mut rd, buf, move |id, fields, end_stream, start| {
        let sess = &spawn_ctx.sess;
        if sess.closing.get() {
            // Past our GOAWAY: the codec ignores newer streams; refuse any other.
            let _ = sess.conn.borrow_mut().reset(id, Reason::REFUSED_STREAM);
            return;
        }
        let slot = StreamSlot::new(id);
        sess.insert(slot.clone());
        // Boxed first: the task then holds a pointer, and the stream future (kilobytes) is
        // built in its box, instead of on the stack and then moved.
        monoio::spawn(crate::rt::boxed(|| {
            crate::proxy::exchange::handle_stream(
                spawn_ctx.clone(),
                slot,
                fields,
                end_stream,
                start,
            )
        }));
    });
    // A client that reads nothing for the stream idle timeout stalls every stream it has.
    let stall = timer::zero_is_never(worker.local().listener_config(li).http.stream_idle_timeout);
    let writer = session::write_loop(&sess, wr, stall);
    let mut reader = std::pin::pin!(reader);
    let mut writer = std::pin::pin!(writer);
    let mut reader_done = false;
    let by_peer = loop {
        let idle = worker.local().listener_config(li).http.idle_timeout;
        let idle_at = (sess.streams() == 0).then(|| sess.idle_since.get() + idle);
        monoio::select! {
            end = &mut reader, if !reader_done => {
                reader_done = true;
                match end {
                    ReadEnd::PeerGone => break true,
                    ReadEnd::Protocol => {
                        ctx.http().downstream_cx_protocol_error.inc();
                        ctx.http().http2_goaway_sent.inc();
                        sess.closing.set(true);
                        sess.kill_all(Reason::CANCEL);
                        sess.writer.notify();
                    }
                }
            }
            _ = &mut writer => break false,
            _ = worker.drain.wait(), if !sess.closing.get() => {
                ctx.http().downstream_cx_drain_close.inc();
                if sess.go_away() {
                    ctx.http().http2_goaway_sent.inc();
                }
            }
            _ = timer::sleep_until(idle_at.unwrap_or_else(far_future)), if idle_at.is_some() => {
                if sess.streams() == 0 && timer::coarse_now() >= sess.idle_since.get() + idle {
                    ctx.http().downstream_cx_idle_timeout.inc();
                    if sess.go_away() {
                        ctx.http().http2_goaway_sent.inc();
                    }
                }
            }
            // A stream ended: re-arm the idle timer.
            _ = sess.streams_changed.wait() => {}
        }
        count_codec(ctx.http(), &sess, &mut reported);
    };
    count_codec(ctx.http(), &sess, &mut reported);
    // Whatever still runs stops: its streams are gone with the connection.
    sess.closing.set(true);
    sess.kill_all(Reason::CANCEL);
    by_peer
}

/// Add the codec's counters that moved since the last call to the listener's stats.
fn count_codec(http: &HttpStats, sess: &Session, seen: &mut Counters) {
    let now = sess.conn.borrow().counters();
    if now == *seen {
        return;
    }
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
