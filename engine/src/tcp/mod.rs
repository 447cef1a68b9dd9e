//! The TCP proxy (Envoy's `tcp_proxy` network filter): each connection accepted on a
//! `protocol = "tcp"` listener is forwarded, byte for byte, to an endpoint of a cluster: the
//! listener's `cluster`, or the one its SNI routes (`[[listeners.tcp.sni]]`) pick by the
//! client's TLS server name.
//!
//! Per connection: pick the cluster (SNI routes: the name rustls saw when the listener
//! terminates TLS, else the ClientHello peeked without terminating it, [`inspect`]; exact
//! names, then `*.suffix` wildcards, then the listener's `cluster`), pick an endpoint with the
//! cluster's load balancer, open a NEW upstream connection (never the HTTP pool; a PROXY
//! protocol header goes first when the cluster sends one), then relay both ways ([`relay`], shared with HTTP Upgrade tunnels;
//! peeked bytes go first) until both directions are done, either side resets, or the
//! listener's idle timeout passes without a byte. No route, no endpoint or a failed connect
//! closes the client. Stats: `tcp.<listener>.*` ([`crate::stats::TcpStats`], the inspector's
//! under `tls_inspector.`), the listener's `listener.<name>.*`, and the cluster's own
//! `upstream_cx_*` through the shared connect path. With an access log, one line per
//! connection when it ends (Envoy's tcp_proxy fields: `"- - -" 0`, response flags `NR`, `UH`,
//! `UF`, `UO`, bytes both ways, the upstream host and the requested server name).
//!
//! The listener's network filters ([`filter`], `[[listeners.network_filters]]`) run in front
//! of the proxy: they are told of the connection, see or count its bytes both ways (the relay
//! splices while none needs to see them) and are told when it closes.
//!
//! The client side may be TLS terminated by the listener ([`crate::listener::tls`]): the
//! relay then carries the decrypted bytes, and the client's `close_notify` is its half-close.
//! Does not read PROXY headers from clients ([`crate::listener::proxy_protocol`] does, before
//! this runs).

pub(crate) mod filter;
pub(crate) mod inspect;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;

use crate::access_log::{Entry, ResponseFlags};
use crate::config::ClusterId;
use crate::local::{Local, Worker};
use crate::net::Io;
use crate::net::relay;
use crate::rt::timer;
use crate::shared::Outcome;
use crate::stats::TcpStats;
use crate::upstream::ConnectError;
use filter::Chain;
use inspect::{Failure, Inspected, ServerName};

/// Serve one TCP proxy connection until it is done. `peer` is the client (the PROXY header's
/// source when the listener reads one); `first` holds client bytes already read.
pub(crate) async fn serve(
    worker: &Rc<Worker>,
    li: usize,
    mut stream: Io,
    peer: SocketAddr,
    mut first: BytesMut,
) {
    let local = worker.local();
    let ll = &local.listeners[li];
    let cfg = local.listener_config(li);
    let Some(tcp) = ll.shared().tcp.as_ref() else {
        return;
    };
    let ts = tcp.core(worker.core);
    let ls = ll.stats();
    let started = ll
        .access_log
        .as_ref()
        .map(|_| (SystemTime::now(), Instant::now()));

    // The server name the client asked for: needed to route, or to log.
    let mut requested: Option<ServerName> = None;
    let route = match (&cfg.tcp.sni, &mut stream) {
        (None, Io::Tls(s)) if started.is_some() => {
            requested = s.sni().and_then(|n| ServerName::new(n.as_bytes()));
            cfg.tcp.cluster
        }
        (None, _) => cfg.tcp.cluster,
        (Some(routes), io) => {
            match io {
                Io::Tls(s) => {
                    requested = s.sni().and_then(|n| ServerName::new(n.as_bytes()));
                }
                Io::Plain(s) => {
                    let deadline = timer::coarse_now() + cfg.tcp.inspect_timeout;
                    match inspect::client_hello(s, &mut first, deadline).await {
                        Ok(Inspected::Tls(name)) => {
                            ts.tls_inspector_tls_found.inc();
                            match name {
                                Some(_) => ts.tls_inspector_sni_found.inc(),
                                None => ts.tls_inspector_sni_not_found.inc(),
                            }
                            requested = name;
                        }
                        Ok(Inspected::NotTls) => ts.tls_inspector_tls_not_found.inc(),
                        Err(f) => {
                            log::debug!("tcp {peer}: no ClientHello: {f:?}");
                            count_inspect_failure(ts, f);
                            ls.downstream_cx_total.inc();
                            ls.downstream_cx_destroy.inc();
                            return;
                        }
                    }
                }
            }
            requested
                .as_ref()
                .and_then(|n| routes.get(n.as_str()))
                .copied()
                .or(cfg.tcp.cluster)
        }
    };

    ls.downstream_cx_total.inc();
    ls.downstream_cx_active.inc();
    ts.downstream_cx_total.inc();
    ts.downstream_cx_active.inc();
    let idle = cfg.tcp.idle_timeout;
    let limits = &ll.shared().network_ratelimits;
    let chain = Chain::new(&cfg.network_filters, ts, limits, worker.core);
    let done = if chain.on_new_connection() {
        forward(&local, ts, idle, route, stream, peer, first, &chain).await
    } else {
        // A rate limit filter refused it: closed at once, nothing sent upstream.
        Forwarded {
            flags: ResponseFlags::RL,
            upstream: None,
            rx: 0,
            tx: 0,
        }
    };
    chain.on_close();
    ts.downstream_cx_active.dec();
    ls.downstream_cx_active.dec();
    ls.downstream_cx_destroy.inc();

    if let (Some(log), Some((start, t0))) = (&ll.access_log, started) {
        log.log(&Entry {
            start,
            method: b"-",
            path: b"-",
            protocol: "-",
            status: 0,
            flags: done.flags,
            bytes_received: done.rx,
            bytes_sent: done.tx,
            duration: t0.elapsed(),
            upstream_service_time: None,
            forwarded_for: None,
            user_agent: None,
            request_id: None,
            authority: b"",
            upstream_host: done.upstream,
            downstream_remote: peer,
            route_name: "",
            requested_server_name: requested.as_ref().map(ServerName::as_bytes),
            upstream_request_attempt_count: u32::from(done.upstream.is_some()),
        });
    }
}

/// How a forwarded connection went, for the access log.
struct Forwarded {
    flags: ResponseFlags,
    upstream: Option<SocketAddr>,
    /// Bytes from the client sent upstream.
    rx: u64,
    /// Bytes from upstream sent to the client.
    tx: u64,
}

/// Connect to an endpoint of cluster `route` and relay until done, through the listener's
/// network filters. `None`: no route.
// reason: one call site; the arguments are the connection's parts, a struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn forward(
    local: &Local,
    ts: &TcpStats,
    idle: Option<Duration>,
    route: Option<ClusterId>,
    stream: Io,
    peer: SocketAddr,
    first: BytesMut,
    chain: &Chain<'_>,
) -> Forwarded {
    let mut out = Forwarded {
        flags: ResponseFlags::NONE,
        upstream: None,
        rx: 0,
        tx: 0,
    };
    let Some(ci) = route else {
        ts.downstream_cx_no_route.inc();
        out.flags = ResponseFlags::NR;
        return out;
    };
    let cluster = &local.clusters[ci];
    let Some(ep) = cluster.pick(None) else {
        ts.downstream_cx_no_route.inc();
        out.flags = ResponseFlags::UH;
        return out;
    };
    let pool = cluster.pool();
    out.upstream = Some(pool.endpoints[ep].address);
    let origin = pool.origin(peer, || stream.local_addr().ok());
    match pool.connect(ep, origin).await {
        Ok(up) => {
            cluster.report(ep, Outcome::Success);
            let active = &pool.endpoints[ep].active;
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
                splice: relay::SpliceMeter {
                    relayed: &ts.splice_cx_total,
                    fallback: &ts.splice_fallback,
                    pipes_created: &ts.splice_pipes_created,
                    filter_copy: &ts.network_filter_copy_cx,
                    filter_copy_bytes: &ts.network_filter_copy_bytes,
                },
            };
            let (upstream, mut lease) = up.into_parts();
            let (end, rx, tx) =
                relay::run(stream, first, upstream, BytesMut::new(), idle, meter, chain).await;
            log::debug!("tcp {peer}: {end:?} after {rx} bytes up, {tx} bytes down");
            match end {
                relay::End::Done | relay::End::Reset { upstream: true } => {
                    lease.closed_by_peer();
                }
                relay::End::Reset { upstream: false } => {}
                relay::End::IdleTimeout => ts.idle_timeout.inc(),
            }
            active.set(active.get().saturating_sub(1));
            out.rx = rx;
            out.tx = tx;
        }
        Err(e) => {
            log::debug!("tcp {peer}: upstream connect failed: {e:?}");
            ts.upstream_connect_fail.inc();
            // Envoy's tcp_proxy: overflow is UO; refused, timed out or a failed TLS
            // handshake is UF.
            out.flags = match e {
                ConnectError::Overflow => ResponseFlags::UO,
                ConnectError::Refused
                | ConnectError::Timeout
                | ConnectError::PendingTimeout
                | ConnectError::Tls => ResponseFlags::UF,
            };
            // Waiting for a breaker says nothing about the endpoint.
            if matches!(
                e,
                ConnectError::Refused | ConnectError::Timeout | ConnectError::Tls
            ) {
                cluster.report(ep, Outcome::LocalFailure);
            }
        }
    }
    out
}

/// Counts why the ClientHello could not be read (`tcp.<listener>.tls_inspector.*`).
fn count_inspect_failure(ts: &TcpStats, f: Failure) {
    match f {
        Failure::TooLarge => ts.tls_inspector_client_hello_too_large.inc(),
        Failure::Invalid(_) => ts.tls_inspector_invalid_client_hello.inc(),
        Failure::Closed => ts.tls_inspector_connection_closed.inc(),
        Failure::ReadError => ts.tls_inspector_read_error.inc(),
        Failure::Timeout => ts.tls_inspector_timeout.inc(),
    }
}
