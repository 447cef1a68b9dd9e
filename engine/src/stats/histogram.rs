//! Latency histograms: one shared [`Histogram`] per scope and one [`LocalHistogram`] per
//! worker that records without locks or atomics and is merged into the shared one by
//! [`LocalHistogram::flush`] (about once a second and at worker exit). Values are
//! microseconds; rendering is in milliseconds, as Envoy's `*_rq_time` histograms are.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

/// Lowest discernible value: 1 us.
const LOW_US: u64 = 1;
/// Highest trackable value: one hour; larger values are clamped.
const HIGH_US: u64 = 3_600_000_000;
/// Significant decimal digits kept (1 % error).
const SIGFIG: u8 = 2;

/// Upper bounds (ms) of the Prometheus buckets: Envoy's default histogram buckets.
pub const PROMETHEUS_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Quantiles shown by `/stats` (Envoy's set).
pub(crate) const QUANTILES: [f64; 10] = [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0];
/// [`QUANTILES`] as percentiles, for labels.
pub(crate) const PERCENTILES: [f64; 10] =
    [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0];

#[derive(Debug, Clone)]
struct Inner {
    hist: hdrhistogram::Histogram<u64>,
    /// Exact sum of recorded values (us), for Prometheus `_sum`.
    sum_us: u64,
}

impl Inner {
    fn new() -> Self {
        #[allow(
            clippy::expect_used,
            reason = "constant bounds, valid by construction (tested)"
        )]
        let hist = hdrhistogram::Histogram::new_with_bounds(LOW_US, HIGH_US, SIGFIG)
            .expect("valid histogram bounds");
        Self { hist, sum_us: 0 }
    }
}

/// A latency histogram shared by every worker of one scope (e.g. `cluster.b.upstream_rq_time`).
/// Workers never record here directly: they record into a [`LocalHistogram`].
#[derive(Debug)]
pub struct Histogram {
    inner: Mutex<Inner>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::new()),
        }
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A per-worker recorder that flushes into this histogram.
    pub fn local(self: &Arc<Self>) -> LocalHistogram {
        LocalHistogram {
            shared: Arc::clone(self),
            local: RefCell::new(Inner::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the histogram inconsistent enough to
        // matter for stats; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of everything flushed so far, for rendering.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let g = self.lock();
        HistogramSnapshot {
            hist: g.hist.clone(),
            sum_us: g.sum_us,
        }
    }
}

/// One worker's recorder for a [`Histogram`]. Not `Sync`: [`record`](Self::record) takes no
/// lock and no atomic. Dropping it flushes.
#[derive(Debug)]
pub struct LocalHistogram {
    shared: Arc<Histogram>,
    local: RefCell<Inner>,
}

impl LocalHistogram {
    /// Records one value in microseconds (clamped to one hour).
    #[inline]
    pub fn record(&self, micros: u64) {
        let mut l = self.local.borrow_mut();
        l.hist.saturating_record(micros);
        l.sum_us = l.sum_us.saturating_add(micros.min(HIGH_US));
    }

    /// Records a [`std::time::Duration`].
    #[inline]
    pub fn record_duration(&self, d: std::time::Duration) {
        self.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Merges what was recorded since the last flush into the shared histogram (a brief
    /// mutex) and starts again empty. Cheap when nothing was recorded.
    pub fn flush(&self) {
        let mut l = self.local.borrow_mut();
        if l.hist.is_empty() {
            return;
        }
        let mut g = self.shared.lock();
        // Same bounds on both sides, so adding cannot fail; a failure would only lose samples.
        let _ = g.hist.add(&l.hist);
        g.sum_us = g.sum_us.saturating_add(l.sum_us);
        drop(g);
        l.hist.reset();
        l.sum_us = 0;
    }
}

impl Drop for LocalHistogram {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A point-in-time copy of a [`Histogram`], in the units renderers need.
#[derive(Debug, Clone)]
pub struct HistogramSnapshot {
    hist: hdrhistogram::Histogram<u64>,
    sum_us: u64,
}

impl HistogramSnapshot {
    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Exact sum of samples, in milliseconds.
    pub fn sum_ms(&self) -> f64 {
        self.sum_us as f64 / 1000.0
    }

    /// The value at quantile `q` (0.0..=1.0) in milliseconds (the middle of its 1 % bucket);
    /// `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.hist.is_empty() {
            return None;
        }
        let v = self.hist.median_equivalent(self.hist.value_at_quantile(q));
        Some(v as f64 / 1000.0)
    }

    /// Cumulative counts for each of [`PROMETHEUS_BUCKETS_MS`] (the `+Inf` bucket is
    /// [`count`](Self::count)). A sample falls in the first bucket whose bound is at least
    /// the lowest value it is indistinguishable from (1 % precision).
    pub fn cumulative_buckets(&self) -> [u64; PROMETHEUS_BUCKETS_MS.len()] {
        let mut per = [0u64; PROMETHEUS_BUCKETS_MS.len()];
        for v in self.hist.iter_recorded() {
            let us = self.hist.lowest_equivalent(v.value_iterated_to());
            let ms = us as f64 / 1000.0;
            if let Some(i) = PROMETHEUS_BUCKETS_MS.iter().position(|&b| ms <= b) {
                per[i] += v.count_at_value();
            }
        }
        let mut run = 0;
        for c in &mut per {
            run += *c;
            *c = run;
        }
        per
    }
}
