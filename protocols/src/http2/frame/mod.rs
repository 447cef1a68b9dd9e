//! HTTP/2 frames (RFC 9113 section 6): one file per frame type.
