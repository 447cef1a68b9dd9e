//! A worker: one thread, one monoio runtime (io_uring, or epoll where io_uring is refused),
//! pinned to one core. It owns its listening sockets, its connections and its upstream pools;
//! it shares only the config snapshot and the stats atomics with other threads.
//!
//! This module builds and drives a worker: the runtime, the accept loops, the parking-lot
//! waiter and housekeeping. The state its tasks share lives in `local` ([`Worker`], [`Local`]),
//! so the connection managers it spawns read that without importing this module.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::{TcpListener, TcpStream};

use crate::local::{Local, Worker};
use crate::rt::driver::IoDriver;
use crate::rt::{park, timer};
use crate::shared::Shared;

/// How often a worker flushes histograms and access logs and sweeps idle upstream connections.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// How often a worker looks at the process-wide drain flag.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// io_uring submission queue size.
const RING_ENTRIES: u32 = 4096;

/// Entry point of a worker thread.
pub(crate) fn run(
    index: usize,
    core: Option<core_affinity::CoreId>,
    driver: IoDriver,
    shared: Arc<Shared>,
    sockets: Vec<(usize, std::net::TcpListener)>,
) {
    if let Some(core) = core {
        if !core_affinity::set_for_current(core) {
            log::warn!("worker {index}: could not pin to core {}", core.id);
        }
    }
    let main = worker_main(index, shared, sockets);
    let use_uring = match driver {
        IoDriver::Legacy => false,
        IoDriver::IoUring => true,
        IoDriver::Auto => monoio::utils::detect_uring(),
    };
    if use_uring {
        match crate::rt::driver::uring_runtime(RING_ENTRIES) {
            Ok(mut rt) => {
                log::info!("worker {index}: io_uring driver");
                return rt.block_on(main);
            }
            Err(e) if driver == IoDriver::IoUring => {
                log::error!("worker {index}: io_uring unavailable: {e}");
                return;
            }
            Err(e) => log::warn!("worker {index}: io_uring unavailable ({e}), using epoll"),
        }
    }
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => {
            log::info!("worker {index}: epoll (legacy) driver");
            rt.block_on(main)
        }
        Err(e) => log::error!("worker {index}: cannot build runtime: {e}"),
    }
}

async fn worker_main(
    core: usize,
    shared: Arc<Shared>,
    sockets: Vec<(usize, std::net::TcpListener)>,
) {
    let lot = match park::ParkingLot::new() {
        Ok(lot) => lot,
        Err(e) => {
            log::error!("worker {core}: cannot create the idle-connection epoll set: {e}");
            return;
        }
    };
    let worker = Rc::new(Worker::new(core, shared, lot));
    match worker
        .lot
        .waiter()
        .and_then(monoio::net::UnixStream::from_std)
    {
        Ok(waiter) => {
            monoio::spawn(unpark_loop(worker.clone(), waiter));
        }
        Err(e) => log::error!("worker {core}: cannot watch parked connections: {e}"),
    }
    for (index, socket) in sockets {
        match TcpListener::from_std(socket) {
            Ok(l) => {
                monoio::spawn(accept_loop(worker.clone(), index, l));
            }
            Err(e) => log::error!("worker {core}: cannot adopt listener socket: {e}"),
        }
    }
    monoio::spawn(housekeeping(worker.clone()));
    // Runs until the runtime ends with this function: every timeout depends on it.
    monoio::spawn(timer::ticker());

    while !worker.shared.is_draining() {
        monoio::time::sleep(DRAIN_POLL).await;
    }
    worker.drain.fire();
    let drain_timeout = worker.local().snapshot.config.drain_timeout;
    let deadline = Instant::now() + drain_timeout;
    while worker.connections.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(DRAIN_POLL).await;
    }
    if worker.connections.get() > 0 {
        log::warn!(
            "worker {core}: drain timeout, closing {} connections",
            worker.connections.get()
        );
    }
    worker.local().flush();
}

async fn accept_loop(worker: Rc<Worker>, index: usize, listener: TcpListener) {
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = worker.drain.wait() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE/ENFILE and friends: back off briefly instead of spinning.
                log::warn!("accept failed: {e}");
                worker.local().listeners[index]
                    .stats()
                    .downstream_cx_accept_error
                    .inc();
                monoio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let local = worker.local();
        let limit = local.listener_config(index).max_connections_per_worker;
        if limit.is_some_and(|max| worker.connections.get() >= max as usize) {
            local.listeners[index].stats().downstream_cx_overflow.inc();
            drop(stream);
            continue;
        }
        drop(local);
        worker.connections.set(worker.connections.get() + 1);
        monoio::spawn(connection(worker.clone(), index, stream, peer, true));
    }
}

/// Serve a connection: `fresh` when just accepted, `false` when it comes back from parking.
async fn connection(
    worker: Rc<Worker>,
    index: usize,
    stream: TcpStream,
    peer: SocketAddr,
    fresh: bool,
) {
    let server = worker.shared.admin.stats.server().core(worker.core);
    if fresh {
        server.total_connections.inc();
    }
    if crate::listener::serve(&worker, index, stream, peer, fresh).await
        == crate::proxy::Ended::Parked
    {
        return;
    }
    server.total_connections.dec();
    worker.connections.set(worker.connections.get() - 1);
}

/// Close a parked connection (idle timeout or drain).
fn close_parked(worker: &Worker, parked: park::Parked, idle_timeout: bool) {
    let listener = parked.listener;
    drop(parked);
    connection_gone(worker, listener, idle_timeout);
}

/// The accounting at the end of [`connection`], for a connection that ends outside its task.
fn connection_gone(worker: &Worker, listener: usize, idle_timeout: bool) {
    crate::proxy::account_close(
        worker,
        listener,
        false,
        idle_timeout,
        crate::proxy::Codec::Http1,
    );
    let server = worker.shared.admin.stats.server().core(worker.core);
    server.total_connections.dec();
    worker.connections.set(worker.connections.get() - 1);
}

/// Give parked connections back to a task when they become readable; close them all on drain.
async fn unpark_loop(worker: Rc<Worker>, waiter: monoio::net::UnixStream) {
    let (mut keys, mut ready) = (Vec::new(), Vec::new());
    loop {
        let woke = monoio::select! {
            r = waiter.readable(false) => r,
            _ = worker.drain.wait() => break,
        };
        if let Err(e) = woke.and_then(|()| worker.lot.take_ready(&mut keys, &mut ready)) {
            log::error!("worker {}: parked connections: {e}", worker.core);
            monoio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        for p in ready.drain(..) {
            match TcpStream::from_std(p.stream) {
                Ok(stream) => {
                    monoio::spawn(connection(
                        worker.clone(),
                        p.listener,
                        stream,
                        p.peer,
                        false,
                    ));
                }
                Err(e) => {
                    // `from_std` dropped (closed) the socket.
                    log::warn!("cannot resume a parked connection: {e}");
                    connection_gone(&worker, p.listener, false);
                }
            }
        }
    }
    let mut all = Vec::new();
    worker.lot.all(&mut all);
    for p in all {
        close_parked(&worker, p, false);
    }
}

/// Rereads the certificates of TLS listeners whose files changed (the listeners' settings are
/// shared by all workers; one of them does it, every few seconds).
fn reload_certificates(local: &Local, now: Instant) {
    for (li, l) in local.listeners.iter().enumerate() {
        let cfg = local.listener_config(li);
        let Some(result) = cfg.tls.as_ref().and_then(|t| t.reload_changed(now)) else {
            continue;
        };
        match result {
            Ok(()) => {
                log::info!("listener {}: certificates reloaded", cfg.name);
                l.stats().ssl_certificate_reload.inc();
            }
            Err(e) => {
                log::error!(
                    "listener {}: changed certificates not loaded, keeping the old ones: tls.{e}",
                    cfg.name
                );
                l.stats().ssl_certificate_reload_error.inc();
            }
        }
    }
}

async fn housekeeping(worker: Rc<Worker>) {
    let server = worker.shared.admin.stats.server().core(worker.core);
    loop {
        let provided = monoio::net::tcp::provided_buffers().unwrap_or(0);
        server.io_uring_provided_buffers.set(provided as i64);
        monoio::select! {
            _ = monoio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
            _ = worker.drain.wait() => break,
        }
        let local = worker.local();
        local.flush();
        let now = Instant::now();
        for c in &local.clusters {
            c.sweep(now);
        }
        reload_certificates(&local, now);
        let mut expired = Vec::new();
        worker.lot.expired(now, &mut expired);
        for p in expired {
            close_parked(&worker, p, true);
        }
        // Pooled buffers a quiet second did not use go back to the allocator, which the
        // collection then returns to the system; so do the pages of the io_uring ring's
        // provided buffers when nothing arrived in them for a second.
        crate::rt::buffers::trim();
        crate::sys::gather::trim();
        if crate::rt::driver::task_work_deferred() {
            monoio::net::tcp::release_idle_buffers();
        }
        crate::sys::allocator_collect();
    }
}
