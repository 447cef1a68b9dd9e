//! `byte_counter`: counts the bytes passing the chain each way, into
//! `tcp.<listener>.byte_counter.rx_bytes` (from clients) and `.tx_bytes` (to clients).
//!
//! The smallest real filter: it needs only [`Need::Counts`] both ways, so a listener with it
//! keeps the zero-copy splice path. The counts equal the TCP proxy's own
//! `downstream_cx_rx_bytes_total` / `downstream_cx_tx_bytes_total` on a listener whose other
//! filters do not stop bytes (none do yet); it is the reference for the `Counts` contract.

use super::{Dir, Need};
use crate::stats::TcpStats;

/// Per connection: only where to count (this worker's slot).
#[derive(Debug)]
pub(crate) struct ByteCounter<'a> {
    stats: &'a TcpStats,
}

impl<'a> ByteCounter<'a> {
    pub(crate) fn new(stats: &'a TcpStats) -> Self {
        Self { stats }
    }

    pub(crate) fn need(&self, _dir: Dir) -> Need {
        Need::Counts
    }

    pub(crate) fn on_passed(&mut self, dir: Dir, n: u64) {
        match dir {
            Dir::ToUpstream => self.stats.byte_counter_rx_bytes.add(n),
            Dir::ToDownstream => self.stats.byte_counter_tx_bytes.add(n),
        }
    }
}
