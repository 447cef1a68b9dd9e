//! gRPC over HTTP/2: the pieces a proxy needs to read and write gRPC without a gRPC stack.
//!
//! Owns: length-prefixed message framing ([`Decoder`], [`Message::encode`], [`encode_header`]),
//! the `grpc-timeout` header ([`parse_timeout`], [`format_timeout`]), status codes ([`Code`],
//! with the HTTP status mapping of [`Code::from_http_status`]), content-type detection
//! ([`is_grpc_content_type`]) and the percent-encoding of `grpc-message`
//! ([`encode_message`], [`decode_message`]).
//!
//! Does not: compress or decompress messages (a compressed message is passed through as
//! bytes with its flag), decode protobuf, own HTTP/2 streams, or keep time. Deadlines are the
//! engine's: this module only turns a header into a [`Duration`](std::time::Duration) and back.
//!
//! Spec: gRPC `doc/PROTOCOL-HTTP2.md` ("gRPC over HTTP2": Requests, Responses,
//! Length-Prefixed-Message, Timeout, Status-Message) and `doc/statuscodes.md`,
//! `doc/http-grpc-status-mapping.md`.

mod framing;
mod percent;
mod status;
mod timeout;

#[cfg(test)]
mod tests;

pub use framing::{
    DEFAULT_MAX_MESSAGE_SIZE, Decoder, Error as FrameError, HEADER_LEN, Message, encode_header,
};
pub use percent::{decode_message, encode_message};
pub use status::{Code, is_grpc_content_type};
pub use timeout::{
    Error as TimeoutError, FormattedTimeout, MAX_TIMEOUT_DIGITS, format_timeout, parse_timeout,
};
