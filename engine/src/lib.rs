//! ringway's engine: workers, listeners, filters, router, clusters, upstream pools, stats, admin.
//!
//! Data path: `listener` (one SO_REUSEPORT socket per worker) -> `tcp` (network filters, TCP
//! proxy) or `proxy` (HTTP connection manager: codec adapters, the exchange) -> `filters`
//! (HTTP filters) -> [`router`] (route tables) -> `cluster` (membership, load balancing: where)
//! -> `upstream` (connect, TLS origination, PROXY out, HTTP/1 pool, HTTP/2 connections, the
//! attempt: how) -> `protocols` (the sans-IO codecs). Workers share nothing but the immutable
//! config snapshot and the atomics in [`stats`] and [`shared_state`].
//!
//! Imports flow one way, top to bottom: [`server`] (starts everything) -> `worker` (a worker's
//! runtime: accept loops, housekeeping), beside [`control`] and [`admin`] -> the data path,
//! with `local` (a worker's state: the `Worker` handle and its instance of the snapshot, which
//! holds the clusters) between `tcp` | `proxy` and `filters`. A module imports only modules
//! after it, never one before it or beside it. Below sit leaves anyone may import, which
//! import none of those and form no circle among themselves:
//!
//! - `rt`: per-worker runtime utilities (read buffers, coarse timer, rng, parking lot, drain)
//!   and the io driver choice
//! - `net`: the `Io` stream type (plain | TLS) of both directions
//! - `codec`: sans-IO machine <-> monoio glue shared by both sides (the HTTP/2 session)
//! - `shared`: per-snapshot handles (listener and cluster stats, access logs), the snapshot
//!   and the state workers share with the control side
//! - [`config`] (route tables included: the router only matches them), [`access_log`],
//!   [`shared_state`], [`stats`], [`tls`], `error`, `sys`
//!
//! A unit test (`layers.rs`) reads `src/` and fails on an import against this order, on a
//! module left out of it, and on a circle.

pub mod access_log;
pub mod admin;
pub mod config;
pub mod control;
pub mod router;
pub mod server;
pub mod shared_state;
pub mod stats;
pub mod tls;

mod cluster;
mod codec;
mod error;
mod filters;
mod listener;
mod local;
mod net;
mod proxy;
mod rt;
mod shared;
mod sys;
mod tcp;
mod upstream;
mod worker;

#[cfg(test)]
mod layers;

pub use server::{Handle, IoDriver, StartError, StartOptions, start};
pub use sys::alloc::Allocator;
