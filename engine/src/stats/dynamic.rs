//! Stats whose names come from traffic, under a cap: DynamoDB per operation and per table,
//! MongoDB per command and per collection (Envoy's `http.<prefix>.dynamodb.operation.<op>.*`,
//! `mongo.<prefix>.collection.<name>.*`).
//!
//! Owns [`DynamicScope`] (one per `(kind, scope name)`, held by the [`Store`](super::Store) and
//! rendered with every other stat) and [`DynamicLocal`], one worker's lookup cache for it.
//!
//! - Each name gets a whole [`StatSet`] (defined with `stats!` like every other set), stored
//!   [`PerCore`]: a worker writes only its own cache-line-padded slot with relaxed atomics.
//! - A worker asks [`DynamicLocal::get`] for the slot of a name it saw (`&[u8]` from the wire).
//!   The name is sanitised into a stack buffer (Envoy- and Prometheus-safe: `[A-Za-z0-9_-]`,
//!   anything else becomes `_`; at most [`MAX_NAME_LEN`] bytes, longer names are cut) and looked
//!   up in the worker's own hash map: no lock, no allocation. Only the first sight of a name
//!   on a worker takes the scope's mutex (registering it if no worker has).
//! - After `max` distinct names the scope is full for good: later names all count in one
//!   overflow set, rendered under the name [`OVERFLOW_NAME`]. A worker that finds the scope full
//!   copies the registered names into its cache once; from then on every miss is the overflow
//!   set without a lock. Memory is bounded by `max` sets per scope and `max` cache entries per
//!   worker, whatever the traffic sends. Names that sanitise or truncate to the same string
//!   share a set; a name that sanitises to [`OVERFLOW_NAME`] counts as overflow.
//! - The map is keyed by names chosen by clients: std's randomly seeded SipHash keeps it safe
//!   from collision flooding.
//!
//! Does not: forget names (a scope lives as long as the store, like every scope; a reload keeps
//! its names), keep histograms per name (yet), or decide what is counted (the filters do).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{PerCore, StatDesc, StatSet};

/// Longest name kept, in bytes after sanitising; longer names are cut to this.
pub const MAX_NAME_LEN: usize = 64;
/// The name the overflow set is rendered under (`...operation._overflow.upstream_rq_total`).
pub const OVERFLOW_NAME: &str = "_overflow";
/// The name an empty name is counted under.
pub const EMPTY_NAME: &str = "_empty";

/// Where a family of dynamic stats is rendered: `<scope>.<scope name>.<sub>.<name>.<stat>` in
/// `/stats`, `ringway_<scope>_<sub>_<stat>{<scope>_name="..",<label>="<name>"}` in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicKind {
    /// The scope it belongs to (`http`, `mongo`).
    pub scope: &'static str,
    /// The dotted part between the scope name and the dynamic name (`dynamodb.operation`).
    pub sub: &'static str,
    /// The Prometheus label carrying the dynamic name (`operation`): `[a-z_]+`.
    pub label: &'static str,
}

/// Writes `raw` sanitised into `buf` and returns it: `[A-Za-z0-9_-]` kept, any other byte
/// becomes `_`, cut at [`MAX_NAME_LEN`]; empty becomes [`EMPTY_NAME`].
pub fn sanitize<'b>(raw: &[u8], buf: &'b mut [u8; MAX_NAME_LEN]) -> &'b [u8] {
    if raw.is_empty() {
        return EMPTY_NAME.as_bytes();
    }
    let n = raw.len().min(MAX_NAME_LEN);
    for (d, &s) in buf.iter_mut().zip(raw) {
        *d = if s.is_ascii_alphanumeric() || s == b'_' || s == b'-' {
            s
        } else {
            b'_'
        };
    }
    buf.get(..n).unwrap_or_default()
}

/// One registered name and its stats.
#[derive(Debug)]
struct Entry<T> {
    name: Box<str>,
    stats: PerCore<T>,
}

/// The stats of one `(kind, scope name)`, by name, up to `max` names. Shared by every worker
/// (each through its own [`DynamicLocal`]) and the renderers.
pub struct DynamicScope<T: StatSet> {
    kind: DynamicKind,
    scope_name: String,
    cores: usize,
    /// `max` slots filled in order; an entry never moves or goes away.
    slots: Box<[OnceLock<Entry<T>>]>,
    /// Slots filled (published with `Release` after the slot is set).
    len: AtomicUsize,
    /// Registered name -> slot. Cold path only.
    index: Mutex<HashMap<Box<[u8]>, u32>>,
    overflow: PerCore<T>,
}

impl<T: StatSet> DynamicScope<T> {
    /// An empty scope of up to `max` names, `cores` slots each. Use
    /// [`Store::dynamic`](super::Store::dynamic), which also renders it.
    pub(super) fn new(kind: DynamicKind, scope_name: &str, max: usize, cores: usize) -> Self {
        let max = max.min(u32::MAX as usize);
        Self {
            kind,
            scope_name: scope_name.to_owned(),
            cores: cores.max(1),
            slots: (0..max).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            index: Mutex::new(HashMap::new()),
            overflow: PerCore::new(cores),
        }
    }

    /// Where it is rendered.
    pub fn kind(&self) -> &DynamicKind {
        &self.kind
    }

    /// The most names it keeps.
    pub fn max(&self) -> usize {
        self.slots.len()
    }

    /// Names registered so far.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// No name registered yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every registered entry, in registration order. Lock-free.
    fn entries(&self) -> impl Iterator<Item = &Entry<T>> {
        self.slots.iter().take(self.len()).filter_map(OnceLock::get)
    }

    /// The stats of a registered (sanitised) name, for readers.
    pub fn stats_of(&self, name: &str) -> Option<&PerCore<T>> {
        self.entries().find(|e| &*e.name == name).map(|e| &e.stats)
    }

    /// The stats of every name past `max`.
    pub fn overflow(&self) -> &PerCore<T> {
        &self.overflow
    }

    /// A worker's lookup cache (worker `core` writes slot `core`).
    pub fn local(self: &Arc<Self>, core: usize) -> DynamicLocal<T> {
        DynamicLocal {
            scope: Arc::clone(self),
            core,
            cache: RefCell::new(HashMap::new()),
            full: Cell::new(false),
        }
    }

    fn slot(&self, i: u32) -> &PerCore<T> {
        self.slots
            .get(i as usize)
            .and_then(OnceLock::get)
            .map_or(&self.overflow, |e| &e.stats)
    }

    /// The slot of sanitised `name`, registering it if there is room; `None`: full. Cold path.
    fn register(&self, name: &[u8]) -> Option<u32> {
        let mut index = self
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&i) = index.get(name) {
            return Some(i);
        }
        let i = self.len.load(Ordering::Relaxed);
        let slot = self.slots.get(i)?;
        let text = String::from_utf8_lossy(name).into();
        let _ = slot.set(Entry {
            name: text,
            stats: PerCore::new(self.cores),
        });
        let i = u32::try_from(i).ok()?;
        index.insert(name.into(), i);
        self.len.store(i as usize + 1, Ordering::Release);
        Some(i)
    }
}

/// One worker's view of a [`DynamicScope`]: a private name -> slot cache. Not `Sync`; build
/// one per worker (per snapshot is fine: a fresh cache relearns each name with one lock).
pub struct DynamicLocal<T: StatSet> {
    scope: Arc<DynamicScope<T>>,
    core: usize,
    cache: RefCell<HashMap<Box<[u8]>, u32>>,
    /// The scope was full and every registered name is in `cache`: a miss is overflow.
    full: Cell<bool>,
}

impl<T: StatSet> fmt::Debug for DynamicScope<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicScope")
            .field("kind", &self.kind)
            .field("scope_name", &self.scope_name)
            .field("len", &self.len())
            .field("max", &self.max())
            .finish_non_exhaustive()
    }
}

impl<T: StatSet> fmt::Debug for DynamicLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicLocal")
            .field("scope", &self.scope)
            .field("core", &self.core)
            .field("cached", &self.cache.borrow().len())
            .field("full", &self.full.get())
            .finish()
    }
}

impl<T: StatSet> DynamicLocal<T> {
    /// The scope this caches.
    pub fn scope(&self) -> &Arc<DynamicScope<T>> {
        &self.scope
    }

    /// This worker's slot of the stats for `name` as seen in traffic (raw bytes; sanitised
    /// here). After the first sight on this worker: a hash lookup, no lock, no allocation.
    #[inline]
    pub fn get(&self, name: &[u8]) -> &T {
        let mut buf = [0u8; MAX_NAME_LEN];
        let name = sanitize(name, &mut buf);
        if let Some(&i) = self.cache.borrow().get(name) {
            return self.scope.slot(i).core(self.core);
        }
        if self.full.get() || name == OVERFLOW_NAME.as_bytes() {
            return self.scope.overflow.core(self.core);
        }
        self.miss(name)
    }

    #[cold]
    fn miss(&self, name: &[u8]) -> &T {
        if let Some(i) = self.scope.register(name) {
            self.cache.borrow_mut().insert(name.into(), i);
            return self.scope.slot(i).core(self.core);
        }
        // Full for good: learn every name once, so later misses need no lock.
        let mut cache = self.cache.borrow_mut();
        for (i, e) in self.scope.entries().enumerate() {
            if let Ok(i) = u32::try_from(i) {
                cache.insert(e.name.as_bytes().into(), i);
            }
        }
        self.full.set(true);
        self.scope.overflow.core(self.core)
    }
}

impl super::Store {
    /// The dynamic scope of `kind` for `scope_name` (`http` listener `ingress`), created with
    /// room for `max` names on first use; rendered by `/stats` and `/stats/prometheus` from
    /// then on. Later calls return the same scope (same names and counts; the first `max`
    /// stays). Cold path: takes the store's mutex.
    ///
    /// Asking for the same `kind` and `scope_name` with another stat set type is a bug: it is
    /// logged and answered with a scope that is not rendered.
    pub fn dynamic<T: StatSet>(
        &self,
        kind: DynamicKind,
        scope_name: &str,
        max: usize,
    ) -> Arc<DynamicScope<T>> {
        let key = format!("{}.{scope_name}.{}", kind.scope, kind.sub);
        let mut g = self.lock();
        if let Some(s) = g.dynamic.get(&key) {
            match Arc::clone(s).as_any().downcast::<DynamicScope<T>>() {
                Ok(s) => return s,
                Err(_) => {
                    log::error!("dynamic stats {key}: asked for with two stat set types");
                    return Arc::new(DynamicScope::new(kind, scope_name, max, self.cores()));
                }
            }
        }
        let s = Arc::new(DynamicScope::new(kind, scope_name, max, self.cores()));
        g.dynamic
            .insert(key, Arc::clone(&s) as Arc<dyn DynamicStats>);
        s
    }
}

/// The sums of one name's stats, in declaration order.
pub(super) type NameTotals = (String, Vec<(&'static StatDesc, i128)>);

/// What the renderers need of a [`DynamicScope`] of any set type.
pub(super) trait DynamicStats: Send + Sync + fmt::Debug {
    fn kind(&self) -> DynamicKind;
    fn scope_name(&self) -> &str;
    /// Every registered name's totals, then the overflow set's under [`OVERFLOW_NAME`].
    fn totals(&self) -> Vec<NameTotals>;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: StatSet> DynamicStats for DynamicScope<T> {
    fn kind(&self) -> DynamicKind {
        self.kind
    }

    fn scope_name(&self) -> &str {
        &self.scope_name
    }

    fn totals(&self) -> Vec<NameTotals> {
        self.entries()
            .map(|e| (e.name.to_string(), e.stats.totals()))
            .chain([(OVERFLOW_NAME.to_owned(), self.overflow.totals())])
            .collect()
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

#[cfg(test)]
mod tests;
