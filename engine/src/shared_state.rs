//! Process-wide state keyed by name that outlives config reloads: the cross-core atomics of
//! DESIGN.md "Threads" (circuit-breaker occupancy, retry budgets, connection limits, rate-limit
//! token buckets, outlier counts).
//!
//! Owns the [`Registry`] (one per server, process lifetime) and two primitives:
//!
//! - [`Occupancy`]: a count of things in progress under a limit, with RAII admission
//!   ([`Occupancy::try_acquire`] returns an [`OccupancyGuard`] whose drop releases). Circuit
//!   breakers (connections, pending, requests, retries per cluster) and connection limits.
//! - [`TokenBucket`]: a lock-free token bucket (burst, refill rate) answering
//!   [`TokenBucket::try_take`] at an explicit `now`. Local rate limits.
//! - [`KeyedBuckets`]: token buckets by a key clients choose (a header's value, a client
//!   address) in a table of fixed capacity. Local rate limit descriptors.
//! - [`EndpointHealth`]: one endpoint's health flags ([`FAILED_ACTIVE_HC`],
//!   [`FAILED_OUTLIER_CHECK`]), consecutive-failure counters and ejection record, one cache
//!   line per endpoint. Active health checks and outlier detection write it; every load
//!   balancer reads its flags.
//!
//! Any other `Send + Sync` type (outlier counters, a retry budget's parameters) can be kept
//! with [`Registry::get_or_insert_with`].
//!
//! Two paths, two costs:
//!
//! - **Cold** (building a config snapshot, on the control side): [`Registry::occupancy`],
//!   [`Registry::token_bucket`], [`Registry::get_or_insert_with`] take a mutex and return an
//!   `Arc` to the entry named `(kind, name)`, creating it on first use. Asking again by the same
//!   name after a reload returns the *same* object, so counts in flight and bucket levels carry
//!   over; a new limit or rate from the new config is applied to it.
//! - **Hot** (the request path on any worker): only the atomics behind that `Arc`. No lock, no
//!   allocation, no syscall.
//!
//! Entries are removed only by [`Registry::prune`], which drops those that nothing but the
//! registry references any more (no snapshot holds them and no [`OccupancyGuard`] is alive,
//! since a guard owns an `Arc` to its entry). The server prunes after each reload is
//! published: a cluster that disappeared from the config loses its state once the last
//! request of the old config is done with it, and one that is still configured keeps it.
//! Pruning never loses occupancy that is still held.
//!
//! Does not: decide limits or react to overflow (the cluster and filters do, and count it in
//! their stats), expose anything on the admin API, or know about workers, clusters or the
//! proxy: this is a leaf module.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// An entry's key: its Rust type (so two kinds of state can never be confused), the kind of
/// limit (`"cluster.cx"`, `"route.rate_limit"`) and the name of the thing it limits.
type Key = (TypeId, &'static str, String);

/// Every piece of process-wide state, by `(kind, name)`. One per server; see the module docs.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<Key, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("entries", &self.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Arc<dyn Any + Send + Sync>>> {
        // Entries are inserted whole: a panic elsewhere cannot leave the map inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of type `T` named `(kind, name)`, created by `init` on first use. Cold path.
    pub fn get_or_insert_with<T, F>(&self, kind: &'static str, name: &str, init: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> T,
    {
        let mut g = self.lock();
        let key = (TypeId::of::<T>(), kind, name.to_owned());
        if let Some(e) = g.get(&key) {
            if let Ok(t) = Arc::clone(e).downcast::<T>() {
                return t;
            }
        }
        let t = Arc::new(init());
        g.insert(key, Arc::clone(&t) as Arc<dyn Any + Send + Sync>);
        t
    }

    /// The [`Occupancy`] named `(kind, name)`, created empty on first use; `limit` (`None`:
    /// unlimited) replaces the limit it had. What is in flight is kept.
    pub fn occupancy(&self, kind: &'static str, name: &str, limit: Option<u64>) -> Arc<Occupancy> {
        let o = self.get_or_insert_with(kind, name, || Occupancy::new(limit));
        o.set_limit(limit);
        o
    }

    /// The [`TokenBucket`] named `(kind, name)`, created full on first use (at `now`);
    /// `params` replace the burst and rate it had, keeping its level.
    pub fn token_bucket(
        &self,
        kind: &'static str,
        name: &str,
        params: BucketParams,
        now: Instant,
    ) -> Arc<TokenBucket> {
        let b = self.get_or_insert_with(kind, name, || TokenBucket::new(params, now));
        b.set_params(params, now);
        b
    }

    /// The [`KeyedBuckets`] named `(kind, name)` with this capacity, created on first use
    /// (at `now`); `params` replace the burst and rate of its buckets, keeping their levels.
    /// Another capacity is another table (the capacity is part of the name).
    pub fn keyed_buckets(
        &self,
        kind: &'static str,
        name: &str,
        capacity: usize,
        params: BucketParams,
        now: Instant,
    ) -> Arc<KeyedBuckets> {
        let name = format!("{name}#{capacity}");
        let t = self.get_or_insert_with(kind, &name, || KeyedBuckets::new(capacity, params, now));
        t.set_params(params, now);
        t
    }

    /// The entry of type `T` named `(kind, name)` if there is one; never creates it (the
    /// admin API reads with this). Cold path.
    pub fn get<T: Send + Sync + 'static>(&self, kind: &'static str, name: &str) -> Option<Arc<T>> {
        let key = (TypeId::of::<T>(), kind, name.to_owned());
        let e = self.lock().get(&key).map(Arc::clone)?;
        e.downcast::<T>().ok()
    }

    /// The [`EndpointHealth`] named `(kind, name)`, created with `initial` flags on first
    /// use; one found again (an endpoint kept across a reload) keeps its flags and counts.
    pub fn endpoint_health(
        &self,
        kind: &'static str,
        name: &str,
        initial: u32,
    ) -> Arc<EndpointHealth> {
        self.get_or_insert_with(kind, name, || EndpointHealth::new(initial))
    }

    /// Drops the entries nothing outside the registry references; returns how many.
    pub fn prune(&self) -> usize {
        let mut g = self.lock();
        let before = g.len();
        // The registry holds one reference; no snapshot and no guard holds another.
        g.retain(|_, e| Arc::strong_count(e) > 1);
        before - g.len()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`EndpointHealth`] flag: the endpoint failed its active health checks.
pub const FAILED_ACTIVE_HC: u32 = 1;
/// [`EndpointHealth`] flag: outlier detection ejected the endpoint.
pub const FAILED_OUTLIER_CHECK: u32 = 2;

/// Milliseconds since the first call in this process: the clock of ejection times, so they
/// fit an atomic and compare across threads.
pub fn clock_ms(now: Instant) -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(now.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
}

/// One endpoint's health across all cores: flags any load balancer reads with one relaxed
/// load, the consecutive-failure counters of outlier detection (by detector index), and
/// its ejection record. Aligned to a cache line: endpoints do not share one.
///
/// The hot path only reads `flags`, and a request that succeeds writes nothing here unless a
/// failure came before it ([`reset`](Self::reset) loads first).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct EndpointHealth {
    flags: AtomicU32,
    consecutive: [AtomicU32; 3],
    times_ejected: AtomicU32,
    /// [`clock_ms`] of the last ejection.
    ejected_at: AtomicU64,
    /// Active health checks in a row with the same result: positive passes, negative
    /// failures. Written by the control thread only.
    hc_streak: AtomicI32,
    /// The success rate outlier detection last worked out, in thousandths of a percent
    /// plus one (0: none yet, or too few requests). Written by the control thread only.
    success_rate: AtomicU32,
    /// [`clock_ms`] + 1 of when the endpoint last became healthy again (its last flag
    /// cleared); 0: not since it was created, or its slow start is over.
    healthy_since: AtomicU64,
}

impl EndpointHealth {
    /// An endpoint with these flags (0: healthy).
    pub fn new(flags: u32) -> Self {
        Self {
            flags: AtomicU32::new(flags),
            ..Self::default()
        }
    }

    /// Its flags ([`FAILED_ACTIVE_HC`], [`FAILED_OUTLIER_CHECK`]).
    #[inline]
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// No flag set: load balancers may choose it.
    #[inline]
    pub fn is_healthy(&self) -> bool {
        self.flags() == 0
    }

    /// Sets `flag`; true if this call set it (it was clear).
    pub fn set(&self, flag: u32) -> bool {
        self.flags.fetch_or(flag, Ordering::Relaxed) & flag == 0
    }

    /// Clears `flag`; true if this call cleared it (it was set). Clearing the last flag
    /// starts the endpoint's slow start ([`EndpointHealth::healthy_since`]).
    pub fn clear(&self, flag: u32) -> bool {
        let before = self.flags.fetch_and(!flag, Ordering::Relaxed);
        if before & flag != 0 && before & !flag == 0 {
            let now = clock_ms(Instant::now()).saturating_add(1);
            self.healthy_since.store(now, Ordering::Relaxed);
        }
        before & flag != 0
    }

    /// When ([`clock_ms`]) the endpoint last became healthy again, while that is recent
    /// (see [`EndpointHealth::end_slow_start`]).
    #[inline]
    pub fn healthy_since(&self) -> Option<u64> {
        match self.healthy_since.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t - 1),
        }
    }

    /// Its slow start is over: balancers stop looking at the time.
    pub fn end_slow_start(&self) {
        self.healthy_since.store(0, Ordering::Relaxed);
    }

    /// Counts one more failure for detector `i`; returns the count now.
    #[inline]
    pub fn fail(&self, i: usize) -> u32 {
        self.consecutive[i].fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Ends detector `i`'s run of failures. Writes only when there was one, so the success
    /// path leaves the line shared.
    #[inline]
    pub fn reset(&self, i: usize) {
        if self.consecutive[i].load(Ordering::Relaxed) != 0 {
            self.consecutive[i].store(0, Ordering::Relaxed);
        }
    }

    /// Records an ejection at `now_ms` ([`clock_ms`]); returns the times ejected so far.
    pub fn record_ejection(&self, now_ms: u64) -> u32 {
        self.ejected_at.store(now_ms, Ordering::Relaxed);
        for c in &self.consecutive {
            c.store(0, Ordering::Relaxed);
        }
        self.times_ejected.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// [`clock_ms`] of the last ejection.
    pub fn ejected_at(&self) -> u64 {
        self.ejected_at.load(Ordering::Relaxed)
    }

    /// Times ejected (decays by one per outlier-detection interval without an ejection).
    pub fn times_ejected(&self) -> u32 {
        self.times_ejected.load(Ordering::Relaxed)
    }

    /// One interval passed healthy: the back-off multiplier decays by one.
    pub fn decay_ejections(&self) {
        let t = self.times_ejected.load(Ordering::Relaxed);
        if t > 0 {
            self.times_ejected.store(t - 1, Ordering::Relaxed);
        }
    }

    /// The success rate (percent) outlier detection last worked out for the endpoint, if
    /// it had enough requests to be judged (the admin API's `success_rate`).
    pub fn success_rate(&self) -> Option<f64> {
        match self.success_rate.load(Ordering::Relaxed) {
            0 => None,
            v => Some(f64::from(v - 1) / 1000.0),
        }
    }

    /// Records the success rate worked out for the last interval (`None`: not judged).
    pub fn set_success_rate(&self, rate: Option<f64>) {
        let v = rate.map_or(0, |r| (r.clamp(0.0, 100.0) * 1000.0).round() as u32 + 1);
        self.success_rate.store(v, Ordering::Relaxed);
    }

    /// Records an active check's result; returns the streak (passes in a row if positive,
    /// failures if negative). Control thread only.
    pub fn hc_result(&self, pass: bool) -> i32 {
        let s = self.hc_streak.load(Ordering::Relaxed);
        let s = match (pass, s) {
            (true, s) if s > 0 => s.saturating_add(1),
            (true, _) => 1,
            (false, s) if s < 0 => s.saturating_sub(1),
            (false, _) => -1,
        };
        self.hc_streak.store(s, Ordering::Relaxed);
        s
    }
}

/// A limit of "no limit".
const UNLIMITED: u64 = u64::MAX;

/// Things in progress across all cores (open connections, pending requests, active retries),
/// under a limit that may change on reload.
///
/// Admission is exact: the count never exceeds the limit in force when each holder was
/// admitted (a compare-and-swap loop, so contention costs retries, never over-admission).
/// Lowering the limit below what is held refuses new admissions until enough are released.
#[derive(Debug)]
pub struct Occupancy {
    count: AtomicU64,
    limit: AtomicU64,
}

impl Occupancy {
    /// Nothing held; `limit` `None` admits everything (the count is still kept).
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            count: AtomicU64::new(0),
            limit: AtomicU64::new(limit.unwrap_or(UNLIMITED)),
        }
    }

    /// Replaces the limit (`None`: unlimited).
    pub fn set_limit(&self, limit: Option<u64>) {
        self.limit
            .store(limit.unwrap_or(UNLIMITED), Ordering::Relaxed);
    }

    /// The limit in force (`None`: unlimited).
    pub fn limit(&self) -> Option<u64> {
        match self.limit.load(Ordering::Relaxed) {
            UNLIMITED => None,
            l => Some(l),
        }
    }

    /// How many are held now, across all cores.
    pub fn current(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// How many more could be admitted now (`u64::MAX` when unlimited); Envoy's `remaining_*`.
    pub fn remaining(&self) -> u64 {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == UNLIMITED {
            return UNLIMITED;
        }
        limit.saturating_sub(self.current())
    }

    /// Admits one under the configured limit, or `None` when full (the caller counts the
    /// overflow). The guard releases on drop.
    #[inline]
    pub fn try_acquire(self: &Arc<Self>) -> Option<OccupancyGuard> {
        self.try_acquire_within(self.limit.load(Ordering::Relaxed))
    }

    /// Admits one if fewer than `limit` are held, whatever the configured limit: for limits
    /// computed per call, such as a retry budget (a share of the requests in flight).
    #[inline]
    pub fn try_acquire_within(self: &Arc<Self>, limit: u64) -> Option<OccupancyGuard> {
        let mut cur = self.count.load(Ordering::Relaxed);
        loop {
            if cur >= limit {
                return None;
            }
            // Relaxed is enough: the count orders nothing but itself.
            match self.count.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(OccupancyGuard(Arc::clone(self))),
                Err(now) => cur = now,
            }
        }
    }
}

/// One admission into an [`Occupancy`]; dropping it releases the slot. Owns an `Arc` to the
/// entry, so it may outlive the snapshot that admitted it (and keeps the entry from being
/// pruned while held). The price is one more atomic add and subtract (the `Arc`'s count) per
/// admission, on the line the entry's own count already contends for.
#[derive(Debug)]
#[must_use = "dropping the guard releases the slot at once"]
pub struct OccupancyGuard(Arc<Occupancy>);

impl OccupancyGuard {
    /// The occupancy this guard holds a slot of.
    pub fn occupancy(&self) -> &Arc<Occupancy> {
        &self.0
    }
}

impl Drop for OccupancyGuard {
    #[inline]
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Burst and refill rate of a [`TokenBucket`], in Envoy's terms (`max_tokens`,
/// `tokens_per_fill`, `fill_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketParams {
    /// Most tokens the bucket holds (and starts with); at least one is used.
    pub max_tokens: u32,
    /// Tokens added every `fill_interval`; at least one is used.
    pub tokens_per_fill: u32,
    /// The refill period; at least one nanosecond is used.
    pub fill_interval: Duration,
}

impl BucketParams {
    /// Nanoseconds per token (at least 1).
    fn interval_ns(&self) -> u64 {
        let per_fill = u64::try_from(self.fill_interval.as_nanos()).unwrap_or(u64::MAX);
        (per_fill / u64::from(self.tokens_per_fill.max(1))).max(1)
    }

    /// Nanoseconds of credit a full bucket represents.
    fn tolerance_ns(&self) -> u64 {
        self.interval_ns()
            .saturating_mul(u64::from(self.max_tokens.max(1)))
    }
}

/// A token bucket shared by all cores, lock-free: one compare-and-swap per
/// [`try_take`](Self::try_take).
///
/// Kept as the GCRA "theoretical arrival time": the instant at which the bucket would be full
/// again, in nanoseconds since the bucket's creation. Taking a token pushes it one token's
/// interval later; a take is refused when that would put it more than a full bucket's worth
/// of intervals past `now`. This is exactly a token bucket of `max_tokens` refilled
/// continuously at `tokens_per_fill / fill_interval` (Envoy refills in steps once per
/// interval; over any interval both admit the same number).
///
/// Time is an argument (`now`), so tests are deterministic; the caller passes the worker's
/// clock. A `now` earlier than the bucket's creation counts as its creation.
#[derive(Debug)]
pub struct TokenBucket {
    epoch: Instant,
    /// Nanoseconds since `epoch` at which the bucket is full again.
    tat: AtomicU64,
    interval_ns: AtomicU64,
    tolerance_ns: AtomicU64,
}

impl TokenBucket {
    /// A full bucket created at `now`.
    pub fn new(params: BucketParams, now: Instant) -> Self {
        Self {
            epoch: now,
            tat: AtomicU64::new(0),
            interval_ns: AtomicU64::new(params.interval_ns()),
            tolerance_ns: AtomicU64::new(params.tolerance_ns()),
        }
    }

    /// Replaces burst and rate at `now`, keeping the level: the tokens available stay
    /// available (up to the new `max_tokens`) and refill at the new rate. A take racing the
    /// change may see one old and one new value: one token more or less, once.
    pub fn set_params(&self, params: BucketParams, now: Instant) {
        let (new_i, new_t) = (params.interval_ns(), params.tolerance_ns());
        let old_i = self.interval_ns.swap(new_i, Ordering::Relaxed);
        let old_t = self.tolerance_ns.swap(new_t, Ordering::Relaxed);
        if (old_i, old_t) == (new_i, new_t) {
            return;
        }
        let now = self.nanos(now);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            // The level in the old units, rescaled to the new interval.
            let level_old = old_t.saturating_sub(tat.saturating_sub(now));
            let level_new = u128::from(level_old) * u128::from(new_i) / u128::from(old_i.max(1));
            let debt = u128::from(new_t).saturating_sub(level_new);
            let next = now.saturating_add(u64::try_from(debt).unwrap_or(u64::MAX));
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(seen) => tat = seen,
            }
        }
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes one token if there is one at `now`.
    #[inline]
    pub fn try_take(&self, now: Instant) -> bool {
        let now = self.nanos(now);
        let interval = self.interval_ns.load(Ordering::Relaxed);
        let tolerance = self.tolerance_ns.load(Ordering::Relaxed);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(interval);
            if next - now > tolerance {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }

    /// Whole tokens available at `now` (for stats and tests; racy by nature).
    pub fn available(&self, now: Instant) -> u64 {
        let now = self.nanos(now);
        let interval = self.interval_ns.load(Ordering::Relaxed);
        let tolerance = self.tolerance_ns.load(Ordering::Relaxed);
        let used = self.tat.load(Ordering::Relaxed).saturating_sub(now);
        tolerance.saturating_sub(used) / interval
    }

    /// How long until the bucket is full again at `now` (zero when it is).
    pub fn until_full(&self, now: Instant) -> Duration {
        let now = self.nanos(now);
        Duration::from_nanos(self.tat.load(Ordering::Relaxed).saturating_sub(now))
    }

    /// The bucket is full at `now`: it is then indistinguishable from a new one.
    #[inline]
    pub fn is_full(&self, now: Instant) -> bool {
        self.tat.load(Ordering::Relaxed) <= self.nanos(now)
    }
}

/// Slots probed for a key, from the one its hash names: bounds the work per lookup.
const PROBE: usize = 8;

/// Token buckets by key (a header's value, a client address), all with the same burst and
/// rate, in a table of fixed capacity shared by all cores, lock-free: a bounded number of
/// [`TokenBucket`]s for keys chosen by clients.
///
/// A key is hashed (std's randomly seeded SipHash, so clients cannot aim keys at one slot)
/// to a 64-bit tag and looked for in 8 slots from the one the tag names. A key not
/// found takes a free slot there, or one whose bucket is full again: a full bucket is the
/// same as a new one, so a key idle long enough to refill loses nothing by giving its slot
/// up. When every probed slot holds a key still refilling, the key shares one overflow
/// bucket (same burst and rate) with every other key in that position: the table never
/// grows, and a flood of new keys is limited together instead of each getting a fresh burst.
///
/// Races cost at most a token: two cores claiming a slot for the same new key at once may
/// each take one slot (the key then has two buckets until one refills), and a token taken
/// just as a slot changes hands is taken from the new key's bucket. Tags are 64 bits wide;
/// two keys sharing one share a bucket.
#[derive(Debug)]
pub struct KeyedBuckets {
    hasher: std::hash::RandomState,
    slots: Box<[Slot]>,
    overflow: TokenBucket,
}

#[derive(Debug)]
struct Slot {
    /// The key's tag; 0: free.
    tag: AtomicU64,
    bucket: TokenBucket,
}

impl KeyedBuckets {
    /// A table of `capacity` buckets (at least one), all full at `now`.
    pub fn new(capacity: usize, params: BucketParams, now: Instant) -> Self {
        Self {
            hasher: std::hash::RandomState::new(),
            slots: (0..capacity.max(1))
                .map(|_| Slot {
                    tag: AtomicU64::new(0),
                    bucket: TokenBucket::new(params, now),
                })
                .collect(),
            overflow: TokenBucket::new(params, now),
        }
    }

    /// How many keys it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Replaces burst and rate of every bucket, keeping their levels
    /// ([`TokenBucket::set_params`]).
    pub fn set_params(&self, params: BucketParams, now: Instant) {
        for s in &self.slots {
            s.bucket.set_params(params, now);
        }
        self.overflow.set_params(params, now);
    }

    /// The bucket of `key` at `now`: its own, or the shared overflow bucket when the table
    /// has no room for it.
    pub fn bucket(&self, key: &[u8], now: Instant) -> &TokenBucket {
        use std::hash::BuildHasher;
        let tag = self.hasher.hash_one(key) | 1;
        let n = self.slots.len();
        let start = (tag % n as u64) as usize;
        let window = || (0..PROBE.min(n)).map(move |i| &self.slots[(start + i) % n]);
        if let Some(s) = window().find(|s| s.tag.load(Ordering::Relaxed) == tag) {
            return &s.bucket;
        }
        for s in window() {
            let seen = s.tag.load(Ordering::Relaxed);
            if seen != 0 && !s.bucket.is_full(now) {
                continue;
            }
            match s
                .tag
                .compare_exchange(seen, tag, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return &s.bucket,
                // Another core took it, perhaps for this very key.
                Err(now_tag) if now_tag == tag => return &s.bucket,
                Err(_) => {}
            }
        }
        &self.overflow
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    fn params(max: u32, per_fill: u32, ms: u64) -> BucketParams {
        BucketParams {
            max_tokens: max,
            tokens_per_fill: per_fill,
            fill_interval: Duration::from_millis(ms),
        }
    }

    #[test]
    fn occupancy_admits_up_to_the_limit_and_guards_release() {
        let o = Arc::new(Occupancy::new(Some(2)));
        let a = o.try_acquire().unwrap();
        let b = o.try_acquire().unwrap();
        assert!(o.try_acquire().is_none());
        assert_eq!((o.current(), o.remaining()), (2, 0));
        drop(a);
        assert_eq!(o.current(), 1);
        let c = o.try_acquire().unwrap();
        // Lowering the limit below what is held refuses until enough are released.
        o.set_limit(Some(1));
        assert!(o.try_acquire().is_none());
        drop(b);
        assert!(o.try_acquire().is_none());
        drop(c);
        let d = o.try_acquire().unwrap();
        assert!(Arc::ptr_eq(d.occupancy(), &o));
        // A computed limit (retry budget) overrides the configured one.
        assert!(o.try_acquire_within(1).is_none());
        let e = o.try_acquire_within(5).unwrap();
        assert_eq!(o.current(), 2);
        drop((d, e));
        o.set_limit(None);
        assert_eq!(o.limit(), None);
        assert_eq!(o.remaining(), u64::MAX);
        let many: Vec<_> = (0..1000).map(|_| o.try_acquire().unwrap()).collect();
        assert_eq!(o.current(), 1000);
        drop(many);
        assert_eq!(o.current(), 0);
    }

    /// Many threads hammer one occupancy: the number held at once never exceeds the limit,
    /// every admission is released, and the limit is actually reached.
    #[test]
    fn occupancy_limit_holds_across_threads_and_nothing_leaks() {
        const THREADS: usize = 8;
        const LIMIT: u64 = 5;
        let o = Arc::new(Occupancy::new(Some(LIMIT)));
        let held = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let admitted = Arc::new(AtomicU64::new(0));
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (o, held, peak, admitted, barrier) = (
                    Arc::clone(&o),
                    Arc::clone(&held),
                    Arc::clone(&peak),
                    Arc::clone(&admitted),
                    Arc::clone(&barrier),
                );
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..20_000u32 {
                        let Some(g) = o.try_acquire() else { continue };
                        // Counted after admission and uncounted before release, so `held`
                        // is at most the number of live guards.
                        let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        admitted.fetch_add(1, Ordering::Relaxed);
                        if i % 7 == 0 {
                            std::thread::yield_now();
                        }
                        held.fetch_sub(1, Ordering::SeqCst);
                        drop(g);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= LIMIT);
        assert!(admitted.load(Ordering::Relaxed) > 0);
        assert_eq!(o.current(), 0, "a slot leaked");
        // Full capacity is still there.
        let all: Vec<_> = (0..LIMIT).map(|_| o.try_acquire().unwrap()).collect();
        assert!(o.try_acquire().is_none());
        drop(all);
    }

    #[test]
    fn bucket_starts_full_refills_at_rate_and_caps_at_burst() {
        let t0 = Instant::now();
        // 3 tokens of burst, 1 token per 100 ms.
        let b = TokenBucket::new(params(3, 1, 100), t0);
        assert_eq!(b.available(t0), 3);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert_eq!(b.available(t0), 0);
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(!b.try_take(ms(99)));
        assert!(b.try_take(ms(100)));
        assert!(!b.try_take(ms(150)));
        assert!(b.try_take(ms(200)));
        // A long idle time refills to the burst, no further.
        assert_eq!(b.available(ms(10_000)), 3);
        for _ in 0..3 {
            assert!(b.try_take(ms(10_000)));
        }
        assert!(!b.try_take(ms(10_000)));
        // A clock before the epoch counts as the epoch.
        let early = TokenBucket::new(params(1, 1, 100), ms(500));
        assert!(early.try_take(t0));
        assert!(!early.try_take(t0));
    }

    #[test]
    fn bucket_rate_is_tokens_per_fill_over_fill_interval() {
        let t0 = Instant::now();
        // Envoy-style: 10 tokens every second, burst 10.
        let b = TokenBucket::new(params(10, 10, 1000), t0);
        let mut granted = 0;
        // Ask every millisecond for 5 s: burst + 5 s * 10/s.
        for ms in 0..5000 {
            if b.try_take(t0 + Duration::from_millis(ms)) {
                granted += 1;
            }
        }
        assert_eq!(granted, 10 + 49);
        // New params keep the level (one token, refilled at 5000 ms) and refill at the new
        // rate up to the new burst.
        let now = t0 + Duration::from_millis(5000);
        assert_eq!(b.available(now), 1);
        b.set_params(params(100, 1, 1), now);
        assert_eq!(b.available(now), 1);
        assert_eq!(b.available(now + Duration::from_millis(50)), 51);
        assert_eq!(b.available(now + Duration::from_secs(60)), 100);
        // A smaller burst caps the level.
        b.set_params(params(5, 1, 1), now + Duration::from_secs(60));
        assert_eq!(b.available(now + Duration::from_secs(60)), 5);
    }

    /// Threads racing for tokens are granted exactly what the bucket holds at a frozen time.
    #[test]
    fn bucket_grants_exactly_its_tokens_across_threads() {
        const THREADS: usize = 8;
        let t0 = Instant::now();
        let b = Arc::new(TokenBucket::new(params(1000, 1, 1000), t0));
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (b, barrier) = (Arc::clone(&b), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..500).filter(|_| b.try_take(t0)).count()
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
        // One more second: exactly one more token for everyone together.
        let later = t0 + Duration::from_secs(1);
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || (0..100).filter(|_| b.try_take(later)).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1);
    }

    #[test]
    fn keyed_buckets_give_each_key_its_own_bucket_within_capacity() {
        let t0 = Instant::now();
        let t = KeyedBuckets::new(64, params(2, 1, 1000), t0);
        assert!(t.bucket(b"a", t0).try_take(t0));
        assert!(t.bucket(b"a", t0).try_take(t0));
        assert!(!t.bucket(b"a", t0).try_take(t0), "a's burst of 2 is spent");
        assert!(t.bucket(b"b", t0).try_take(t0), "b has its own bucket");
        assert!(std::ptr::eq(t.bucket(b"a", t0), t.bucket(b"a", t0)));
        // New params keep the level.
        t.set_params(params(5, 1, 1000), t0);
        assert_eq!(t.bucket(b"a", t0).available(t0), 0);
        assert_eq!(t.bucket(b"b", t0).available(t0), 1);
    }

    #[test]
    fn keyed_buckets_are_bounded_and_reuse_slots_of_refilled_keys() {
        let t0 = Instant::now();
        // One slot: the first key in debt holds it, others share the overflow bucket.
        let t = KeyedBuckets::new(1, params(1, 1, 1000), t0);
        assert_eq!(t.capacity(), 1);
        assert!(t.bucket(b"a", t0).try_take(t0));
        let overflow = t.bucket(b"b", t0);
        assert!(std::ptr::eq(overflow, t.bucket(b"c", t0)), "b and c share");
        assert!(overflow.try_take(t0));
        assert!(
            !t.bucket(b"c", t0).try_take(t0),
            "the shared token is spent"
        );
        // Once a's bucket is full again, its slot goes to the next key that needs one.
        let later = t0 + Duration::from_secs(1);
        assert!(t.bucket(b"a", later).is_full(later));
        let b = t.bucket(b"b", later);
        assert!(!std::ptr::eq(b, overflow), "b took a's slot");
        assert!(b.try_take(later));
        assert!(
            std::ptr::eq(t.bucket(b"a", later), overflow),
            "a now overflows"
        );
        // Many distinct keys never grow the table.
        for i in 0..10_000u32 {
            t.bucket(&i.to_be_bytes(), later);
        }
        assert_eq!(t.capacity(), 1);
    }

    /// A reload looks entries up again by name: same objects, counts and levels intact, new
    /// limits applied; kinds and types never collide.
    #[test]
    fn entries_survive_a_reload_and_take_new_limits() {
        let reg = Registry::new();
        let t0 = Instant::now();
        // Snapshot 1.
        let cx = reg.occupancy("cluster.cx", "backend", Some(2));
        let held = cx.try_acquire().unwrap();
        let rl = reg.token_bucket("route.rate_limit", "api", params(2, 1, 1000), t0);
        assert!(rl.try_take(t0));
        // Snapshot 2 (a reload): same names, one new limit.
        let cx2 = reg.occupancy("cluster.cx", "backend", Some(1));
        let rl2 = reg.token_bucket("route.rate_limit", "api", params(2, 1, 1000), t0);
        assert!(Arc::ptr_eq(&cx, &cx2));
        assert!(Arc::ptr_eq(&rl, &rl2));
        assert_eq!(cx2.current(), 1, "occupancy from before the reload is kept");
        assert!(cx2.try_acquire().is_none(), "new limit 1 applies");
        assert_eq!(rl2.available(t0), 1, "bucket level is kept");
        // Other kinds, names and types are other entries.
        let pending = reg.occupancy("cluster.pending", "backend", Some(2));
        assert!(!Arc::ptr_eq(&cx, &pending));
        assert!(!Arc::ptr_eq(
            &cx,
            &reg.occupancy("cluster.cx", "other", None)
        ));
        let custom = reg.get_or_insert_with("cluster.cx", "backend", || AtomicU64::new(7));
        assert_eq!(custom.load(Ordering::Relaxed), 7);
        assert_eq!(reg.len(), 5);
        drop(held);
    }

    #[test]
    fn prune_drops_only_entries_nothing_references() {
        let reg = Registry::new();
        let kept = reg.occupancy("cluster.cx", "kept", Some(10));
        let held = reg.occupancy("cluster.cx", "held", Some(10));
        let guard = held.try_acquire().unwrap();
        drop(held);
        let gone = reg.occupancy("cluster.cx", "gone", Some(10));
        let _g = gone.try_acquire().unwrap();
        drop(_g);
        drop(gone);
        assert_eq!(reg.len(), 3);
        // Only "gone" has no snapshot and no guard left.
        assert_eq!(reg.prune(), 1);
        assert_eq!(reg.len(), 2);
        // The guard kept "held" alive with its count.
        let again = reg.occupancy("cluster.cx", "held", Some(10));
        assert_eq!(again.current(), 1);
        assert!(Arc::ptr_eq(guard.occupancy(), &again));
        drop(guard);
        // A pruned name comes back fresh.
        assert_eq!(reg.occupancy("cluster.cx", "gone", None).current(), 0);
        drop((kept, again));
        assert_eq!(reg.prune(), 3);
        assert!(reg.is_empty());
    }
}
