//! TLS record peeking: read SNI and ALPN from a ClientHello without terminating TLS.
