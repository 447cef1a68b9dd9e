//! A worker: one thread, one monoio runtime (io_uring, or epoll where io_uring is refused),
//! pinned to one core. It owns its listening sockets, its connections and its upstream pools;
//! it shares only the config snapshot and the stats atomics with other threads.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use monoio::net::{TcpListener, TcpStream};

use crate::access_log::AccessLogWriter;
use crate::cluster::ClusterLocal;
use crate::config::ListenerConfig;
use crate::rt::driver::IoDriver;
use crate::rt::{drain, park, timer};
use crate::shared::{ListenerShared, Shared, Snapshot};
use crate::stats::{HttpStats, ListenerStats, LocalHistogram};

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
        // Completions from other CPUs (the peer's softirq on loopback) queue task work on this
        // thread. COOP_TASKRUN lets it run at our next ring entry instead of interrupting us
        // with an IPI and a signal-style wakeup; we enter the ring constantly anyway. Kernels
        // before 5.19 refuse the flags: fall back to a plain ring.
        let mut defer = io_uring::IoUring::builder();
        defer.setup_single_issuer().setup_defer_taskrun();
        let mut coop = io_uring::IoUring::builder();
        coop.setup_coop_taskrun().setup_taskrun_flag();
        let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(defer)
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build()
            .or_else(|_| {
                monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .uring_builder(coop)
                    .with_entries(RING_ENTRIES)
                    .enable_timer()
                    .build()
            })
            .or_else(|_| {
                monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .with_entries(RING_ENTRIES)
                    .enable_timer()
                    .build()
            });
        match built {
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

/// Per-worker state shared by all of this worker's tasks.
pub(crate) struct Worker {
    pub(crate) core: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) drain: drain::Drain,
    local: RefCell<Rc<Local>>,
    generation: Cell<u64>,
    /// Open downstream connections, parked ones included.
    pub(crate) connections: Cell<usize>,
    /// Cold keep-alive connections, held outside any task.
    pub(crate) lot: park::ParkingLot,
}

/// One worker's instance of a snapshot: stats slots, histograms, access-log writer, pools.
/// Requests hold an `Rc<Local>`, so a request finishes on the snapshot it started with.
///
/// A reload diffs clusters by name: a cluster whose
/// [`ClusterConfig`](crate::config::ClusterConfig) equals the one of the same name in the
/// worker's current `Local` is carried into the new one (the same `Rc<ClusterLocal>`: pooled
/// HTTP/1 and HTTP/2 connections, balancer position, open-connection count); a changed or new
/// cluster starts fresh, and the pool of a changed or removed one is closed when the last
/// `Local` holding it is dropped (its in-flight requests hold that `Local`).
pub(crate) struct Local {
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) listeners: Vec<ListenerLocal>,
    pub(crate) clusters: Vec<Rc<ClusterLocal>>,
    /// Per cluster: how many of this worker's `Local`s hold it (more than one once carried
    /// over); the last one dropped closes its pooled connections.
    holders: Vec<Rc<Cell<u32>>>,
}

pub(crate) struct ListenerLocal {
    core: usize,
    shared: Arc<ListenerShared>,
    pub(crate) rq_time: LocalHistogram,
    pub(crate) access_log: Option<AccessLogWriter>,
}

impl ListenerLocal {
    pub(crate) fn shared(&self) -> &Arc<ListenerShared> {
        &self.shared
    }

    pub(crate) fn stats(&self) -> &ListenerStats {
        self.shared.stats.core(self.core)
    }

    pub(crate) fn http(&self) -> &HttpStats {
        self.shared.http.stats.core(self.core)
    }
}

impl Local {
    /// This worker's instance of `snapshot`; unchanged clusters are carried over from
    /// `previous`, the worker's current instance (`None` at start).
    fn new(snapshot: Arc<Snapshot>, core: usize, previous: Option<&Self>) -> Self {
        let listeners = snapshot
            .listeners
            .iter()
            .map(|l| ListenerLocal {
                core,
                rq_time: l.http.downstream_rq_time.local(),
                access_log: l.access_log.as_ref().map(|a| a.writer()),
                shared: l.clone(),
            })
            .collect();
        // Cluster ids may differ between snapshots: match by name.
        let before: HashMap<&str, usize> = previous
            .map(|p| {
                let clusters = p.snapshot.config.clusters.iter().enumerate();
                clusters.map(|(i, c)| (c.name.as_str(), i)).collect()
            })
            .unwrap_or_default();
        let n = snapshot.config.clusters.len();
        let (mut clusters, mut holders) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (cfg, shared) in snapshot.config.clusters.iter().zip(&snapshot.clusters) {
            let same = previous
                .zip(before.get(cfg.name.as_str()))
                .filter(|(p, i)| p.snapshot.config.clusters[**i] == *cfg);
            if let Some((p, &i)) = same {
                // Its stats handles too: the store resolves them by name (and endpoint address,
                // equal here), so the old `ClusterShared` names the same counters.
                let held = p.holders[i].clone();
                held.set(held.get() + 1);
                clusters.push(p.clusters[i].clone());
                holders.push(held);
            } else {
                clusters.push(Rc::new(ClusterLocal::new(cfg, shared.clone(), core)));
                holders.push(Rc::new(Cell::new(1)));
            }
        }
        if previous.is_some() {
            let kept = holders.iter().filter(|h| h.get() > 1).count();
            log::debug!("worker {core}: new configuration, {kept} of {n} clusters unchanged");
        }
        Self {
            snapshot,
            listeners,
            clusters,
            holders,
        }
    }

    pub(crate) fn listener_config(&self, i: usize) -> &ListenerConfig {
        &self.snapshot.config.listeners[i]
    }

    fn flush(&self) {
        for l in &self.listeners {
            l.rq_time.flush();
            if let Some(a) = &l.access_log {
                a.flush();
            }
        }
        for c in &self.clusters {
            c.flush();
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.flush();
        for (c, held) in self.clusters.iter().zip(&self.holders) {
            held.set(held.get() - 1);
            if held.get() == 0 {
                c.close_idle();
            }
        }
    }
}

impl Worker {
    /// The newest snapshot, built for this worker on first use after a publish.
    pub(crate) fn local(&self) -> Rc<Local> {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation.get() {
            let snapshot = self.shared.snapshot.load_full();
            let fresh = Rc::new(Local::new(snapshot, self.core, Some(&self.local.borrow())));
            let old = self.local.replace(fresh);
            old.flush();
            self.shared
                .admin
                .stats
                .server()
                .core(self.core)
                .config_updates_total
                .inc();
            self.generation.set(generation);
        }
        self.local.borrow().clone()
    }
}

async fn worker_main(
    core: usize,
    shared: Arc<Shared>,
    sockets: Vec<(usize, std::net::TcpListener)>,
) {
    let generation = shared.generation.load(Ordering::Acquire);
    let local = Rc::new(Local::new(shared.snapshot.load_full(), core, None));
    let worker = Rc::new(Worker {
        core,
        shared,
        drain: drain::Drain::new(),
        local: RefCell::new(local),
        generation: Cell::new(generation),
        connections: Cell::new(0),
        lot: match park::ParkingLot::new() {
            Ok(lot) => lot,
            Err(e) => {
                log::error!("worker {core}: cannot create the idle-connection epoll set: {e}");
                return;
            }
        },
    });
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
    monoio::spawn(async {
        loop {
            monoio::time::sleep(timer::TICK).await;
            timer::tick(Instant::now());
        }
    });

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
        crate::listener::tune_accepted(&stream);
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
    loop {
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
        crate::sys::allocator_collect();
    }
}
