//! The network filter chain of a `protocol = "tcp"` listener (Envoy's network filters):
//! `[[listeners.network_filters]]` in order, then the TCP proxy as the implicit terminal filter.
//!
//! Phases per connection: [`Chain::on_new_connection`], bytes downstream -> upstream (Envoy's
//! `onData`, [`Dir::ToUpstream`], filters in list order), bytes upstream -> downstream (Envoy's
//! `onWrite`, [`Dir::ToDownstream`], in reverse order, as Envoy runs write filters) and
//! [`Chain::on_close`]. Filters are a closed set ([`Filter`], an enum matched in a loop: no
//! trait objects, no boxed future per filter); a connection's filter state is the enum's
//! payload. Filters are read-only for now: they see or count the bytes, they do not change,
//! hold back or inject any; one may refuse a new connection ([`Chain::on_new_connection`],
//! the `local_ratelimit` filter), which is then closed at once.
//!
//! Each filter says, per direction, what it [`Need`]s of the next bytes; the chain folds the
//! needs into the relay's [`Path`]: while every filter needs at most [`Need::Counts`] (or skips)
//! the relay keeps splicing (the bytes never enter user space; filters are told how many
//! passed), and only while some filter needs [`Need::Bytes`] does it copy through a pooled
//! buffer (`tcp.<listener>.network_filter_copy_cx`). A wire-protocol decoder (the MongoDB
//! filter to come) reads message headers as `Bytes` and answers `Skip(body length)` for the
//! bodies it does not decode, so bodies keep the zero-copy path (bodies shorter than a copy
//! buffer are copied along: cheaper than two more splices).
//!
//! Does not move bytes (the relay does, [`crate::net::relay`], which sees the chain as its
//! [`Filters`]) or pick upstreams ([`super`]).

pub(crate) mod byte_counter;
#[cfg(test)]
pub(crate) mod probe;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::time::Instant;

use crate::config::NetworkFilterConfig;
use crate::net::relay::Filters;
pub(crate) use crate::net::relay::{Dir, Path};
use crate::rt::buffers;
use crate::shared::NetworkRateLimit;
use crate::shared_state::TokenBucket;
use crate::stats::{LocalRateLimitStats, TcpStats};

/// The shortest skip worth splicing: bytes that fit the copy buffer cost less to copy along
/// (one read, one write) than a detour through the pipe (two splices more).
const MIN_SPLICED_SKIP: u64 = buffers::BUF_SIZE as u64;

/// What a filter needs of the next bytes one way. Asked again after every delivery, so a
/// filter changes its need by changing its state when it is told of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the shipped byte_counter needs only Counts; the tests' probes and the MongoDB \
                  filter to come need the others"
    )
)]
pub(crate) enum Need {
    /// Nothing: the bytes pass without the filter hearing of them.
    Nothing,
    /// Told how many bytes passed ([`Filter::on_passed`]), never the bytes.
    Counts,
    /// Shown the bytes, read-only ([`Filter::on_bytes`]), before they are written on.
    Bytes,
    /// Not interested in the next `n` bytes (a message body it does not decode): told of them
    /// as counts as they pass, then asked again. `Skip(0)` is taken as `Bytes`.
    ///
    /// A filter that wants the bytes after the next `n` says `Skip(n)`, not `Counts`: a switch
    /// from `Counts` (or `Nothing`) to `Bytes` applies only to bytes the relay reads after
    /// the bytes it is splicing now.
    Skip(u64),
}

/// One filter of a connection's chain, with its per-connection state.
#[derive(Debug)]
pub(crate) enum Filter<'a> {
    /// `byte_counter`.
    ByteCounter(byte_counter::ByteCounter<'a>),
    /// `local_ratelimit`: decides once, when the connection is new; then needs nothing.
    LocalRateLimit {
        bucket: &'a TokenBucket,
        stats: &'a LocalRateLimitStats,
    },
    /// `test_checksum`, `test_frames`.
    #[cfg(test)]
    Probe(probe::Probe),
}

impl<'a> Filter<'a> {
    /// `limit`: the filter's bucket and stats when it is a `local_ratelimit` (a snapshot
    /// builds one for each); without them such a filter is left out.
    fn new(
        config: &NetworkFilterConfig,
        ts: &'a TcpStats,
        limit: Option<&'a NetworkRateLimit>,
        core: usize,
    ) -> Option<Self> {
        Some(match config {
            NetworkFilterConfig::ByteCounter => {
                Self::ByteCounter(byte_counter::ByteCounter::new(ts))
            }
            NetworkFilterConfig::LocalRateLimit { .. } => {
                let limit = limit?;
                Self::LocalRateLimit {
                    bucket: &limit.bucket,
                    stats: limit.stats.core(core),
                }
            }
            #[cfg(test)]
            NetworkFilterConfig::TestChecksum => Self::Probe(probe::Probe::checksum()),
            #[cfg(test)]
            NetworkFilterConfig::TestFrames => Self::Probe(probe::Probe::frames()),
        })
    }

    fn need(&self, dir: Dir) -> Need {
        match self {
            Self::ByteCounter(f) => f.need(dir),
            Self::LocalRateLimit { .. } => Need::Nothing,
            #[cfg(test)]
            Self::Probe(f) => f.need(dir),
        }
    }

    /// Bytes going `dir` (the filter needs `Bytes`). Returns how many it used: all of them,
    /// unless its need changed part way (a header read, a body to skip); the rest is offered
    /// again under the new need. 0 ends the delivery of these bytes to this filter.
    fn on_bytes(&mut self, dir: Dir, bytes: &[u8]) -> usize {
        match self {
            Self::ByteCounter(f) => {
                f.on_passed(dir, bytes.len() as u64);
                bytes.len()
            }
            Self::LocalRateLimit { .. } => 0,
            #[cfg(test)]
            Self::Probe(f) => f.on_bytes(dir, bytes),
        }
    }

    /// `n` bytes passed `dir` that the filter did not see (it needs `Counts` or skips them).
    fn on_passed(&mut self, dir: Dir, n: u64) {
        match self {
            Self::ByteCounter(f) => f.on_passed(dir, n),
            Self::LocalRateLimit { .. } => {}
            #[cfg(test)]
            Self::Probe(f) => f.on_passed(dir, n),
        }
    }

    /// `false`: close the connection at once (Envoy's `StopIteration` and close).
    fn on_new_connection(&mut self) -> bool {
        match self {
            Self::ByteCounter(_) => true,
            Self::LocalRateLimit { bucket, stats } => {
                let admitted = bucket.try_take(Instant::now());
                if !admitted {
                    stats.rate_limited.inc();
                }
                admitted
            }
            #[cfg(test)]
            Self::Probe(f) => {
                f.on_new_connection();
                true
            }
        }
    }

    fn on_close(&mut self) {
        match self {
            Self::ByteCounter(_) | Self::LocalRateLimit { .. } => {}
            #[cfg(test)]
            Self::Probe(f) => f.on_close(),
        }
    }

    /// Hands `bytes` (going `dir`) to this filter by its need, which may change part way.
    fn deliver(&mut self, dir: Dir, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.need(dir) {
                Need::Nothing => return,
                Need::Counts => return self.on_passed(dir, bytes.len() as u64),
                Need::Skip(n) if n > 0 => {
                    let k = bytes.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    self.on_passed(dir, k as u64);
                    bytes = bytes.get(k..).unwrap_or_default();
                }
                Need::Bytes | Need::Skip(_) => {
                    let used = self.on_bytes(dir, bytes);
                    if used == 0 {
                        return;
                    }
                    bytes = bytes.get(used..).unwrap_or_default();
                }
            }
        }
    }
}

/// A connection's filters. The relay's two directions share it; it is never borrowed across
/// an await. No allocation for a listener without filters.
#[derive(Debug)]
pub(crate) struct Chain<'a> {
    filters: RefCell<Vec<Filter<'a>>>,
}

impl<'a> Chain<'a> {
    /// The chain for one connection of a listener with these filters, on worker `core`;
    /// `limits` are the rate limit filters' buckets and stats, by filter index.
    pub(crate) fn new(
        configs: &[NetworkFilterConfig],
        ts: &'a TcpStats,
        limits: &'a [Option<NetworkRateLimit>],
        core: usize,
    ) -> Self {
        let filters = configs
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Filter::new(c, ts, limits.get(i).and_then(Option::as_ref), core));
        Self {
            filters: RefCell::new(filters.collect()),
        }
    }

    /// No filter but the TCP proxy.
    #[cfg(test)]
    pub(crate) fn empty() -> Self {
        Self {
            filters: RefCell::new(Vec::new()),
        }
    }

    /// A connection was accepted and routed (before the upstream connect). `false`: a
    /// filter refused it (the filters after it are not told); close it at once.
    pub(crate) fn on_new_connection(&self) -> bool {
        self.filters
            .borrow_mut()
            .iter_mut()
            .all(Filter::on_new_connection)
    }

    /// How the relay moves the next bytes going `dir`: copy while any filter needs to see
    /// them (or skips fewer than a copy buffer holds), else splice, up to the shortest skip.
    pub(crate) fn path(&self, dir: Dir) -> Path {
        let mut limit = u64::MAX;
        for f in self.filters.borrow().iter() {
            match f.need(dir) {
                Need::Nothing | Need::Counts => {}
                Need::Skip(n) if n >= MIN_SPLICED_SKIP => limit = limit.min(n),
                Need::Bytes | Need::Skip(_) => return Path::Copy,
            }
        }
        Path::Splice(limit)
    }

    /// Bytes going `dir` that the relay holds in memory (copied, or read before the relay
    /// began), before they are written on: each filter sees them or is told of them, by its
    /// need.
    pub(crate) fn on_bytes(&self, dir: Dir, bytes: &[u8]) {
        let mut filters = self.filters.borrow_mut();
        match dir {
            Dir::ToUpstream => filters.iter_mut().for_each(|f| f.deliver(dir, bytes)),
            Dir::ToDownstream => filters.iter_mut().rev().for_each(|f| f.deliver(dir, bytes)),
        }
    }

    /// `n` bytes spliced `dir` (no filter needed to see them, by [`Self::path`]).
    pub(crate) fn on_passed(&self, dir: Dir, n: u64) {
        let mut filters = self.filters.borrow_mut();
        let tell = |f: &mut Filter<'_>| match f.need(dir) {
            Need::Nothing => {}
            Need::Counts | Need::Skip(_) => f.on_passed(dir, n),
            Need::Bytes => debug_assert!(false, "spliced bytes a filter needed to see"),
        };
        match dir {
            Dir::ToUpstream => filters.iter_mut().for_each(tell),
            Dir::ToDownstream => filters.iter_mut().rev().for_each(tell),
        }
    }

    /// The connection is done (relayed, or closed before: no route, failed connect).
    pub(crate) fn on_close(&self) {
        self.filters
            .borrow_mut()
            .iter_mut()
            .for_each(Filter::on_close);
    }
}

/// The relay's view of the chain.
impl Filters for Chain<'_> {
    fn path(&self, dir: Dir) -> Path {
        Chain::path(self, dir)
    }

    fn on_bytes(&self, dir: Dir, bytes: &[u8]) {
        Chain::on_bytes(self, dir, bytes);
    }

    fn on_passed(&self, dir: Dir, n: u64) {
        Chain::on_passed(self, dir, n);
    }
}
