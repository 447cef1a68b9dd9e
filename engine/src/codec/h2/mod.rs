//! HTTP/2 over monoio for both roles: the [`session`] (a sans-IO connection behind a
//! `RefCell`, per-stream mailboxes, the reader and writer loops), the [`signal`] its tasks wake
//! each other with, and the field conversions ([`convert`]) both sides need.
//!
//! The downstream server (`proxy::h2`) and the upstream connections
//! (`upstream::http2`) each run a connection task over a session; neither is here.

pub(crate) mod convert;
pub(crate) mod session;
mod signal;

use std::time::{Duration, Instant};

use crate::rt::timer;

/// A deadline that never comes in practice: for `select!` arms that are switched off.
pub(crate) fn far_future() -> Instant {
    timer::coarse_now() + Duration::from_secs(3600)
}
