//! Starting and stopping the proxy: bind listeners, publish the config snapshot, start one
//! worker per core and the admin server; drain on request.
//!
//! The control side (this module, the admin thread, signal handling in `main.rs`) builds an
//! immutable `Snapshot` and publishes it through an `ArcSwap`; workers pick it up between
//! requests. Nothing here touches a worker's connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::admin;
use crate::config::Config;
use crate::control::{Control, ControlHandle};
use crate::listener;
pub use crate::rt::driver::IoDriver;
use crate::shared::{AdminState, Shared, Snapshot};
use crate::shared_state::Registry;
use crate::stats::Store;
use crate::worker;

/// Options that are not part of the configuration file.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub driver: IoDriver,
    /// Pin worker `i` to core `i % cores` (default on; tests running many servers turn it off).
    pub no_pinning: bool,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address} (listener {name}): {source}")]
    Bind {
        name: String,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the admin server on {address}: {source}")]
    Admin {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open access log: {0}")]
    AccessLog(std::io::Error),
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot start the control runtime: {0}")]
    Control(std::io::Error),
}

/// A running server.
pub struct Handle {
    listeners: Vec<(String, SocketAddr)>,
    admin: Option<SocketAddr>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// The control runtime (health checks, config watches, span export); stopped after the
    /// workers in [`Handle::join`].
    control: Control,
}

/// Bind every listener, start the workers and the admin server.
pub fn start(config: Config, opts: StartOptions) -> Result<Handle, StartError> {
    let workers = config.workers;
    let config = Arc::new(config);
    let stats = Store::new(workers);
    let state = Registry::new();
    let snapshot =
        Snapshot::build(config.clone(), &stats, &state).map_err(StartError::AccessLog)?;

    // Bind all sockets before starting anything, so a bad address fails the start cleanly.
    let mut per_worker: Vec<Vec<(usize, std::net::TcpListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for (i, l) in config.listeners.iter().enumerate() {
        let (sockets, addr) =
            listener::bind_reuseport(l.address, workers).map_err(|source| StartError::Bind {
                name: l.name.clone(),
                address: l.address,
                source,
            })?;
        for (w, s) in sockets.into_iter().enumerate() {
            per_worker[w].push((i, s));
        }
        bound.push((l.name.clone(), addr));
    }

    let admin_state = Arc::new(AdminState {
        stats,
        config: Arc::new(ArcSwap::new(config.clone())),
        health_failed: Default::default(),
        draining: Default::default(),
        started: Instant::now(),
        registry: Arc::clone(&state),
    });
    let admin = match &config.admin {
        Some(a) => Some(
            admin::spawn(a.address, admin_state.clone()).map_err(|source| StartError::Admin {
                address: a.address,
                source,
            })?,
        ),
        None => None,
    };

    let shared = Arc::new(Shared {
        snapshot: ArcSwap::from_pointee(snapshot),
        generation: AtomicU64::new(1),
        admin: admin_state,
        state,
    });
    // The control runtime serves a few connections to other services, not traffic: it runs on
    // epoll whatever the workers use. That also keeps it from holding a thread in
    // io_uring_enter, which tools that serialise threads (valgrind) cannot see as blocking.
    let control = Control::start(IoDriver::Legacy).map_err(StartError::Control)?;
    // Active health checks and outlier un-ejection, once for the process.
    let health = Arc::clone(&shared);
    control
        .handle()
        .spawn(move || crate::control::health::run(health))
        .map_err(|e| StartError::Control(std::io::Error::other(e)))?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::with_capacity(workers);
    for (index, sockets) in per_worker.into_iter().enumerate() {
        let core = (!opts.no_pinning && !cores.is_empty()).then(|| cores[index % cores.len()]);
        let shared = shared.clone();
        let driver = opts.driver;
        let handle = std::thread::Builder::new()
            .name(format!("ringway-w{index}"))
            .spawn(move || worker::run(index, core, driver, shared, sockets))
            .map_err(StartError::Thread)?;
        handles.push(handle);
    }
    Ok(Handle {
        listeners: bound,
        admin,
        shared,
        workers: handles,
        control,
    })
}

impl Handle {
    /// The address each listener is bound to, by name, in config order.
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    /// The bound address of the listener with this name.
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    pub fn admin(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Spawns work on the control runtime (off the workers) from any thread.
    pub fn control(&self) -> ControlHandle {
        self.control.handle()
    }

    /// Publish a new configuration: new requests use it, requests in flight finish on the old
    /// one. Listeners must be the same (same names and addresses); changing them needs a restart.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let old = self.shared.snapshot.load();
        let same_listeners = old.config.listeners.len() == config.listeners.len()
            && old
                .config
                .listeners
                .iter()
                .zip(&config.listeners)
                .all(|(a, b)| a.name == b.name && a.address == b.address);
        if !same_listeners {
            return Err(
                "listeners changed: adding, removing or moving a listener needs a restart".into(),
            );
        }
        if config.workers != old.config.workers {
            return Err("workers changed: changing the worker count needs a restart".into());
        }
        let config = Arc::new(config);
        let snapshot =
            Snapshot::build(config.clone(), &self.shared.admin.stats, &self.shared.state)
                .map_err(|e| e.to_string())?;
        self.shared.admin.config.store(config);
        self.shared.snapshot.store(Arc::new(snapshot));
        self.shared.generation.fetch_add(1, Ordering::Release);
        // State the old snapshot alone still holds survives until a later reload finds it
        // unreferenced (its last requests are done by then).
        self.shared.state.prune();
        Ok(())
    }

    /// Stop accepting, let in-flight requests finish (up to the drain timeout), stop workers.
    pub fn drain(&self) {
        self.shared.admin.draining.store(true, Ordering::Relaxed);
    }

    /// Wait for every worker to finish (after [`Handle::drain`]).
    pub fn join(self) {
        for w in self.workers {
            let _ = w.join();
        }
        self.control.shutdown();
    }

    /// Drain and wait.
    pub fn shutdown(self) {
        self.drain();
        self.join();
    }
}
