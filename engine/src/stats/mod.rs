//! Per-core stats.
