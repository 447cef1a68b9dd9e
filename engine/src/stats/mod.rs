//! Per-core stats: counters, gauges and latency histograms, and the [`Store`] that names them.
//!
//! Owns the stat primitives ([`Counter`], [`Gauge`], [`Histogram`]), the per-core layout
//! ([`PerCore`]: one cache-line-padded slot per worker, written only by that worker with
//! `Relaxed` atomics, summed by readers), the `stats!` macro that defines a stat set once
//! (field, name, help, kind), every stat set ringway exports ([`names`]), stat sets per name
//! seen in traffic under a cap ([`dynamic`]) and the renderers for the admin API (Envoy's
//! `/stats` text and JSON, Prometheus text exposition 0.0.4).
//!
//! It does not serve HTTP (see [`crate::admin`]) and does not decide when a stat moves: the
//! workers do. DESIGN.md "Stats"; names follow Envoy's (`cluster.<name>.upstream_rq_total`).

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub use dynamic::{DynamicKind, DynamicLocal, DynamicScope, MAX_NAME_LEN, OVERFLOW_NAME};
pub use histogram::{Histogram, HistogramSnapshot, LocalHistogram, PROMETHEUS_BUCKETS_MS};
pub use names::{
    CircuitBreakerStats, ClusterStats, EndpointStats, HttpStats, ListenerStats,
    LocalRateLimitStats, ServerStats, TcpStats,
};
pub use render::ExtraGauge;
pub use store::{BreakerSource, ClusterScope, HttpScope, Store};

/// A monotonically increasing count, written by one worker with `Relaxed` atomics.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value of this slot.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (open connections, requests in flight).
///
/// Per-core slots may go negative when an object is opened on one core and closed on another;
/// only the sum across cores is meaningful.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `n` (which may be negative).
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets this slot to `v` (for values only one core owns, such as `membership_total`).
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value of this slot.
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The kind of a stat, as rendered (`# TYPE` in Prometheus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic [`Counter`].
    Counter,
    /// Up-and-down [`Gauge`].
    Gauge,
}

impl Kind {
    /// The Prometheus `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// A stat primitive that can be summed across cores. Implemented by [`Counter`] and [`Gauge`].
pub trait Stat {
    /// The type of the sum across cores.
    type Total: Copy + Default + std::iter::Sum + Into<i128> + fmt::Display;
    /// The [`Kind`] rendered for this primitive.
    const KIND: Kind;
    /// This slot's value.
    fn read(&self) -> Self::Total;
}

impl Stat for Counter {
    type Total = u64;
    const KIND: Kind = Kind::Counter;
    fn read(&self) -> u64 {
        self.get()
    }
}

impl Stat for Gauge {
    type Total = i64;
    const KIND: Kind = Kind::Gauge;
    fn read(&self) -> i64 {
        self.get()
    }
}

/// Name, help text and kind of one stat in a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatDesc {
    /// The stat's name inside its scope (`upstream_rq_total`).
    pub name: &'static str,
    /// One line for `# HELP`.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
}

/// A set of stats defined by the crate-internal `stats!` macro: its descriptors and a way to read one slot's values.
pub trait StatSet: Default + Send + Sync + 'static {
    /// Every stat in declaration order.
    const DESCS: &'static [StatDesc];
    /// Adds this slot's values to `acc` (same order as [`Self::DESCS`]).
    fn accumulate(&self, acc: &mut [i128]);
}

/// One cache-line-padded slot (128 bytes: two lines, against adjacent-line prefetch).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One `T` per worker, each in its own cache lines. Worker `i` writes only [`PerCore::core`]`(i)`.
#[derive(Debug)]
pub struct PerCore<T> {
    slots: Box<[Padded<T>]>,
}

impl<T: Default> PerCore<T> {
    /// `cores` slots (at least one).
    pub fn new(cores: usize) -> Self {
        let slots = (0..cores.max(1)).map(|_| Padded(T::default())).collect();
        Self { slots }
    }
}

impl<T> PerCore<T> {
    /// Worker `i`'s slot. An index past the number of cores wraps around (still correct, the
    /// slot is just shared), so a worker count that grew on reload cannot panic here.
    #[inline]
    pub fn core(&self, i: usize) -> &T {
        debug_assert!(i < self.slots.len(), "core {i} of {}", self.slots.len());
        &self.slots[i % self.slots.len()].0
    }

    /// Number of slots.
    pub fn cores(&self) -> usize {
        self.slots.len()
    }

    /// Every slot, for readers.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|p| &p.0)
    }
}

impl<T: StatSet> PerCore<T> {
    /// Every stat of the set with its sum across cores, in declaration order.
    pub fn totals(&self) -> Vec<(&'static StatDesc, i128)> {
        let mut acc = vec![0i128; T::DESCS.len()];
        for slot in self.iter() {
            slot.accumulate(&mut acc);
        }
        T::DESCS.iter().zip(acc).collect()
    }
}

/// Defines a stat set once: the struct (one [`Counter`] or [`Gauge`] per field, documented by
/// its help text), its [`StatSet`] descriptors, and one summing reader per field on
/// [`PerCore`]`<Set>` (`per_core.upstream_rq_total()` sums every core's slot).
///
/// Crate-internal (the readers are inherent methods of [`PerCore`]); use it as
/// `crate::stats::stats!`:
///
/// ```text
/// stats! { pub struct DemoStats {
///     demo_total: Counter "things done",
///     demo_active: Gauge "things in progress",
///     demo_tls_v13: Counter as "demo.versions.TLSv1.3" "things done over TLS 1.3",
/// } }
/// let s = PerCore::<DemoStats>::new(2);
/// s.core(0).demo_total.inc();
/// assert_eq!(s.demo_total(), 1);
/// ```
///
/// A stat is exported under its field name unless `as "name"` gives another (Envoy's dotted
/// sub-scopes such as `ssl.handshake`; Prometheus names turn the dots into `_`).
macro_rules! stats {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($field:ident : $kind:ident $(as $export:literal)? $help:literal),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $name {
            $(#[doc = $help] pub $field: $crate::stats::$kind,)*
        }

        impl $crate::stats::StatSet for $name {
            const DESCS: &'static [$crate::stats::StatDesc] = &[$(
                $crate::stats::StatDesc {
                    name: $crate::stats::stat_name!($field $(, $export)?),
                    help: $help,
                    kind: <$crate::stats::$kind as $crate::stats::Stat>::KIND,
                },
            )*];

            fn accumulate(&self, acc: &mut [i128]) {
                let mut it = acc.iter_mut();
                $(
                    if let Some(a) = it.next() {
                        *a += ::core::convert::Into::<i128>::into(
                            $crate::stats::Stat::read(&self.$field),
                        );
                    }
                )*
            }
        }

        impl $crate::stats::PerCore<$name> {
            $(
                #[doc = concat!("Sum across cores of `", stringify!($field), "`: ", $help, ".")]
                #[allow(dead_code, reason = "readers exist for every stat; not all are read in-crate")]
                pub fn $field(&self) -> <$crate::stats::$kind as $crate::stats::Stat>::Total {
                    self.iter().map(|s| $crate::stats::Stat::read(&s.$field)).sum()
                }
            )*
        }
    };
}

/// The exported name of a `stats!` field: its `as "name"`, else the field name.
macro_rules! stat_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $export:literal) => {
        $export
    };
}

#[allow(unused_imports, reason = "used by the expansion of `stats!`")]
pub(crate) use stat_name;
#[allow(
    unused_imports,
    reason = "the path other modules define their stat sets with"
)]
pub(crate) use stats;

pub mod dynamic;
mod histogram;
pub mod names;
mod render;
mod store;

#[cfg(test)]
mod tests;
