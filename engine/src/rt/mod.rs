//! Per-worker runtime utilities: the read-buffer pool, the coarse timer, the fast rng, the
//! parking lot for cold keep-alive sockets and the drain signal; and the io driver choice.
//!
//! A leaf layer: everything here is thread-local (or owned by one worker) and knows nothing of
//! listeners, connections, clusters or workers; callers pass in what it needs (a parked socket
//! carries its listener as a plain index). Imports only `sys` and the standard runtime crates.

pub(crate) mod buffers;
pub(crate) mod drain;
pub(crate) mod driver;
pub(crate) mod park;
pub(crate) mod rng;
pub(crate) mod timer;
