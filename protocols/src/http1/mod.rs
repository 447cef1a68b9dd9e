//! HTTP/1.1 (RFC 9112): request/response head parsing, body framing, chunked coding.
