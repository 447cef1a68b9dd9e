//! Sans-IO protocol codecs for ringway.
//!
//! Bytes in, events out: nothing here owns a socket, a runtime or a clock. Time, where a
//! protocol needs it, is an argument. Every decoder returns a typed error for bad input and
//! never panics; each has a fuzz target in `fuzz/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::panic)]
#![warn(clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod grpc;
pub mod http;
pub mod http1;
pub mod http2;
pub mod proxy_protocol;
pub mod tls;
