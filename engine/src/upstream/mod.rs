//! How a request reaches an endpoint, on one worker: connecting (limits, timeout, TLS
//! origination, the PROXY protocol header), the HTTP/1 pool of idle connections per endpoint
//! and the multiplexed HTTP/2 connections ([`pool`], [`http2`]), and the accounting of one
//! request to one endpoint ([`Attempt`]) with the [`crate::error::ProxyError`] it ends in when
//! it fails.
//!
//! Which endpoint is [`crate::cluster`]'s decision; this layer imports neither it nor the
//! router, filters or connection managers above. It builds on `net` (the stream type),
//! `codec` (the HTTP/2 session), `tls`, `rt`, `stats` and `shared`.

mod attempt;
pub(crate) mod http2;
mod pool;
pub(crate) mod unary;

pub(crate) use attempt::{Attempt, count_failure, read_response_head};
pub(crate) use pool::{ConnectError, Origin, Pool, Upstream};
