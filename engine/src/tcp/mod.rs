//! The TCP proxy (Envoy's `tcp_proxy` network filter): each connection accepted on a
//! `protocol = "tcp"` listener is forwarded, byte for byte, to an endpoint of the listener's
//! cluster.
//!
//! Per connection: pick an endpoint with the cluster's load balancer, open a NEW upstream
//! connection (never the HTTP pool; a PROXY protocol header goes first when the cluster sends
//! one), then relay both ways ([`relay`]) until both directions are done, either side resets,
//! or the listener's idle timeout passes without a byte. No endpoint or a failed connect
//! closes the client. Stats: `tcp.<listener>.*` ([`crate::stats::TcpStats`]), the listener's
//! `listener.<name>.*`, and the cluster's own `upstream_cx_*` through the shared connect path.
//!
//! The client side may be TLS terminated by the listener ([`crate::listener::tls`]): the
//! relay then carries the decrypted bytes, and the client's `close_notify` is its half-close.
//! Does not read PROXY headers from clients ([`crate::listener::proxy_protocol`] does, before
//! this runs) and does not log access (not supported on tcp listeners yet).

pub(crate) mod relay;

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;

use crate::proxy::DownstreamIo;
use crate::worker::Worker;

/// Serve one TCP proxy connection until it is done. `peer` is the client (the PROXY header's
/// source when the listener reads one); `first` holds client bytes already read.
pub(crate) async fn serve(
    worker: &Rc<Worker>,
    li: usize,
    stream: DownstreamIo,
    peer: SocketAddr,
    first: BytesMut,
) {
    let local = worker.local();
    let ll = &local.listeners[li];
    let cfg = local.listener_config(li);
    let (Some(tcp), Some(ci)) = (ll.shared().tcp.as_ref(), cfg.tcp.cluster) else {
        return;
    };
    let ts = tcp.core(worker.core);
    let ls = ll.stats();
    ls.downstream_cx_total.inc();
    ls.downstream_cx_active.inc();
    ts.downstream_cx_total.inc();
    ts.downstream_cx_active.inc();

    let cluster = &local.clusters[ci];
    if let Some(ep) = cluster.pick() {
        let origin = cluster.origin(peer, || stream.local_addr().ok());
        match cluster.connect(ep, origin).await {
            Ok(up) => {
                let active = &cluster.endpoints[ep].active;
                active.set(active.get() + 1);
                let cs = cluster.stats();
                let meter = relay::Meter {
                    down_rx: [
                        &ts.downstream_cx_rx_bytes_total,
                        &cs.upstream_cx_tx_bytes_total,
                    ],
                    up_rx: [
                        &ts.downstream_cx_tx_bytes_total,
                        &cs.upstream_cx_rx_bytes_total,
                    ],
                };
                let idle = cfg.tcp.idle_timeout;
                let (upstream, mut lease) = up.into_parts();
                let (end, rx, tx) = relay::run(stream, first, upstream, idle, meter).await;
                log::debug!("tcp {peer}: {end:?} after {rx} bytes up, {tx} bytes down");
                match end {
                    relay::End::Done | relay::End::Reset { upstream: true } => {
                        lease.closed_by_peer();
                    }
                    relay::End::Reset { upstream: false } => {}
                    relay::End::IdleTimeout => ts.idle_timeout.inc(),
                }
                active.set(active.get().saturating_sub(1));
            }
            Err(e) => {
                log::debug!("tcp {peer}: upstream connect failed: {e:?}");
                ts.upstream_connect_fail.inc();
            }
        }
    } else {
        ts.downstream_cx_no_route.inc();
    }
    ts.downstream_cx_active.dec();
    ls.downstream_cx_active.dec();
    ls.downstream_cx_destroy.inc();
}
