//! A worker's state, shared by all of its tasks: [`Worker`] (the drain signal, the parking
//! lot, the open-connection count) and [`Local`], its instance of the newest config snapshot
//! (listener stats slots, histograms, access-log writers, cluster pools).
//!
//! Built and driven by `worker` (the runtime, accept loops, housekeeping); read by the
//! connection managers below it (`listener`, `tcp`, `proxy`). It sits on the path between those
//! and the `cluster`s it holds, so it imports no stage above `cluster` and nothing from `worker`
//! or `server`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::access_log::AccessLogWriter;
use crate::cluster::ClusterLocal;
use crate::config::ListenerConfig;
use crate::rt::{drain, park};
use crate::shared::{ListenerShared, Shared, Snapshot};
use crate::stats::{HttpStats, ListenerStats, LocalHistogram};

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

    pub(crate) fn flush(&self) {
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
    /// Worker `core`'s state, on the newest published snapshot.
    pub(crate) fn new(core: usize, shared: Arc<Shared>, lot: park::ParkingLot) -> Self {
        let generation = shared.generation.load(Ordering::Acquire);
        let local = Rc::new(Local::new(shared.snapshot.load_full(), core, None));
        Self {
            core,
            shared,
            drain: drain::Drain::new(),
            local: RefCell::new(local),
            generation: Cell::new(generation),
            connections: Cell::new(0),
            lot,
        }
    }

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
