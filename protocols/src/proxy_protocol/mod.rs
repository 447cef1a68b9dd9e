//! PROXY protocol v1 and v2 (haproxy.org proxy-protocol.txt): parse and encode.
