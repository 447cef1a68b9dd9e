//! Per-worker runtime utilities: the read-buffer pool, the coarse timer, the fast rng, the
//! parking lot for cold keep-alive sockets and the drain signal; and the io driver choice.
//!
//! A leaf layer: everything here is thread-local (or owned by one worker) and knows nothing of
//! listeners, connections, clusters or workers; callers pass in what it needs (a parked socket
//! carries its listener as a plain index). Imports only `sys` and the standard runtime crates.

pub(crate) mod buffers;
pub(crate) mod drain;
pub(crate) mod driver;
pub(crate) mod event;
pub(crate) mod park;
pub(crate) mod rng;
pub(crate) mod timer;

use std::future::Future;
use std::pin::Pin;

/// The future `make` returns, pinned in a box it is built in.
///
/// `Box::pin(f())` builds the future on the stack and then copies all of it (a request's task
/// future is kilobytes) into the allocation; allocating first lets the compiler write the
/// future's few initial fields straight into the box.
#[inline(always)]
pub(crate) fn boxed<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}
