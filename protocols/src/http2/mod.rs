//! HTTP/2 (RFC 9113) frames and connection state machines, and HPACK (RFC 7541).

pub mod conn;
pub mod frame;
pub mod hpack;
mod request;

pub use request::request_head;
