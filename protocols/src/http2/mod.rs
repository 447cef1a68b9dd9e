//! HTTP/2 (RFC 9113) frames and connection state machines, and HPACK (RFC 7541).

pub mod conn;
mod fields;
pub mod frame;
pub mod hpack;
mod request;

pub use fields::Fields;
pub use request::request_head;
