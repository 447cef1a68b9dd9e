//! ringway's engine: workers, listeners, filters, router, clusters, upstream pools, stats, admin.
//!
//! Data path: `listener` (one SO_REUSEPORT socket per worker) -> `tcp` (network filters, TCP
//! proxy) or `proxy` (HTTP connection manager: codec adapters, the exchange) -> `filters`
//! (HTTP filters) -> [`router`] (route tables) -> `cluster` (membership, load balancing: where)
//! -> `upstream` (connect, TLS origination, PROXY out, HTTP/1 pool, HTTP/2 connections, the
//! attempt: how) -> `protocols` (the sans-IO codecs). Workers share nothing but the immutable
//! config snapshot and the atomics in [`stats`] and [`shared_state`].
//!
//! Imports flow one way, down that path: a module imports only modules after it, never one
//! before it or beside it. Below the path sit leaves anyone may import, which import none of
//! the path, `worker` or `server`:
//!
//! - `rt`: per-worker runtime utilities (read buffers, coarse timer, rng, parking lot, drain)
//! - `net`: the `Io` stream type (plain | TLS) of both directions
//! - `codec`: sans-IO machine <-> monoio glue shared by both sides (the HTTP/2 session)
//! - `shared`: per-snapshot handles (listener and cluster stats, access logs)
//! - [`stats`], [`config`], [`tls`], `sys`
//!
//! `worker` (one runtime per core) and [`server`] sit on top: they build and spawn all of it.
//! A unit test (`layers.rs`) reads `src/` and fails on an import against this order.

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
