//! The HTTP/1 connection manager: one task per downstream connection, serving its requests in
//! order (pipelined requests wait in the read buffer), each through routing to a local reply
//! or an upstream.
//!
//! An idle keep-alive connection holds no read buffer and only a small future: it waits for
//! readiness, and the per-request state lives in a boxed future that exists only while a
//! request is being served.

mod body;
mod exchange;
mod fault;
mod head;
mod reply;
mod tunnel;

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;
use monoio::net::TcpStream;

use crate::worker::{Worker, buffers, timer};

/// A downstream connection between requests.
pub(crate) struct Downstream {
    pub(crate) stream: TcpStream,
    /// Bytes read but not yet consumed (pipelined requests); no capacity while idle.
    pub(crate) buf: BytesMut,
    pub(crate) peer: SocketAddr,
}

/// Serve a downstream connection until it closes, times out idle, or the worker drains.
pub(crate) async fn serve(worker: &Rc<Worker>, li: usize, stream: TcpStream, peer: SocketAddr) {
    let counters = worker.local().listeners[li].shared().clone();
    let core = worker.core;
    let (ls, http) = (counters.stats.core(core), counters.http.stats.core(core));
    ls.downstream_cx_total.inc();
    ls.downstream_cx_active.inc();
    http.downstream_cx_total.inc();
    http.downstream_cx_active.inc();
    http.downstream_cx_http1_total.inc();
    http.downstream_cx_http1_active.inc();

    let mut conn = Downstream {
        stream,
        buf: BytesMut::new(),
        peer,
    };
    let closed_by_peer = loop {
        if conn.buf.is_empty() {
            buffers::give_back(std::mem::take(&mut conn.buf));
            let idle = worker.local().listener_config(li).http.idle_timeout;
            // Idle: a readiness wait, a timer slot and a drain slot; no buffer, no runtime timer.
            let ready = monoio::select! {
                r = conn.stream.readable(false) => r,
                _ = timer::sleep_until(timer::coarse_now() + idle) => {
                    http.downstream_cx_idle_timeout.inc();
                    break false;
                }
                _ = worker.drain.wait() => {
                    http.downstream_cx_drain_close.inc();
                    break false;
                }
            };
            if ready.is_err() {
                break true;
            }
        }
        let local = worker.local();
        match Box::pin(exchange::handle(worker, &local, li, conn)).await {
            exchange::Next::KeepAlive(c) => conn = c,
            exchange::Next::Close => break false,
            exchange::Next::PeerGone => break true,
        }
    };
    ls.downstream_cx_active.dec();
    ls.downstream_cx_destroy.inc();
    http.downstream_cx_active.dec();
    http.downstream_cx_http1_active.dec();
    http.downstream_cx_destroy.inc();
    if closed_by_peer {
        http.downstream_cx_destroy_remote.inc();
    } else {
        http.downstream_cx_destroy_local.inc();
    }
}
