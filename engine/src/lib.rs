//! ringway's engine: workers, listeners, filters, router, clusters, upstream pools, stats, admin.
//!
//! Data path: `listener` (one SO_REUSEPORT socket per worker) -> `proxy` (HTTP connection
//! manager: codec, filters, router) -> `cluster` (load balancing) -> `upstream` (per-core pools).
//! Workers share nothing but the immutable config snapshot and the atomics in `stats`.

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
mod net;
mod proxy;
mod rt;
mod shared;
mod sys;
mod tcp;
mod upstream;
mod worker;

pub use server::{Handle, IoDriver, StartError, StartOptions, start};
