//! Every stat set ringway exports, in one file: names (Envoy's where the concept matches),
//! kinds and help text. Scopes and prefixes are assigned by [`super::Store`]; histograms are
//! listed on the scope types there.

stats! {
    /// `server.*`: process-wide stats written by the workers.
    pub struct ServerStats {
        total_connections: Gauge "downstream connections open on all listeners",
        config_updates_total: Counter "configuration snapshots picked up by workers",
        io_uring_provided_buffers: Gauge "4 KiB buffers the workers' io_uring rings provide for multishot receives: 16 per worker at first, doubled whenever more than half are in use, up to 256 (read once a second)",
    }
}

stats! {
    /// `listener.<name>.*`: accept-side stats of one listener.
    pub struct ListenerStats {
        downstream_cx_total: Counter "downstream connections accepted",
        downstream_cx_active: Gauge "downstream connections open",
        downstream_cx_destroy: Counter "downstream connections closed",
        downstream_cx_overflow: Counter "downstream connections refused because the listener's connection limit was reached",
        downstream_cx_accept_error: Counter "accept() calls that failed (e.g. out of file descriptors)",
        downstream_cx_proxy_proto_error: Counter "connections closed because their PROXY protocol header was malformed, late or missing",
        downstream_cx_transport_socket_connect_timeout: Counter "connections closed because their TLS handshake was not done within handshake_timeout",
        ssl_handshake: Counter as "ssl.handshake" "TLS handshakes completed",
        ssl_connection_error: Counter as "ssl.connection_error" "TLS handshakes that failed: TLS protocol errors (no shared version, cipher suite or ALPN protocol, bad messages, alerts), clients not speaking TLS, socket errors",
        ssl_not_tls: Counter as "ssl.not_tls" "connections to a TLS listener whose first byte was not a TLS handshake record (such as plain HTTP); also in ssl.connection_error",
        ssl_session_reused: Counter as "ssl.session_reused" "TLS handshakes that resumed an earlier session (ticket or session ID)",
        ssl_versions_tls12: Counter as "ssl.versions.TLSv1.2" "TLS handshakes completed with TLS 1.2",
        ssl_versions_tls13: Counter as "ssl.versions.TLSv1.3" "TLS handshakes completed with TLS 1.3",
        ssl_fail_verify_no_cert: Counter as "ssl.fail_verify_no_cert" "TLS handshakes refused because the client sent no certificate (client_auth = \"required\"); also in ssl.connection_error",
        ssl_fail_verify_error: Counter as "ssl.fail_verify_error" "TLS handshakes refused because the client certificate did not verify against client_ca (unknown CA, expired, bad signature); also in ssl.connection_error",
        ssl_fail_verify_san: Counter as "ssl.fail_verify_san" "TLS handshakes refused because the client certificate names none of client_allowed_names; also in ssl.connection_error",
        ssl_no_certificate: Counter as "ssl.no_certificate" "TLS handshakes completed without a client certificate on a listener that asks for one (client_auth = \"optional\")",
        ssl_certificate_reload: Counter as "ssl.certificate_reload" "times the listener's certificates were reloaded because their files changed",
        ssl_certificate_reload_error: Counter as "ssl.certificate_reload_error" "times changed certificate files failed to load (the old certificates stay)",
    }
}

stats! {
    /// `tcp.<name>.*`: the TCP proxy of one `protocol = "tcp"` listener (Envoy's tcp_proxy).
    pub struct TcpStats {
        downstream_cx_total: Counter "TCP proxy connections accepted",
        downstream_cx_active: Gauge "TCP proxy connections open",
        downstream_cx_rx_bytes_total: Counter "bytes received from clients (forwarded upstream)",
        downstream_cx_tx_bytes_total: Counter "bytes sent to clients (received from upstream)",
        downstream_cx_no_route: Counter "connections closed because no SNI route matched and the listener has no cluster, or the cluster had no endpoint to pick",
        upstream_connect_fail: Counter "connections closed because the upstream connection failed, timed out or overflowed",
        idle_timeout: Counter "connections closed after the idle timeout passed with no byte either way",
        splice_cx_total: Counter "connections relayed with zero-copy splice (client and upstream both plain TCP)",
        splice_fallback: Counter "plain TCP connections copied through a buffer instead because no pipe could be created (out of file descriptors)",
        splice_pipes_created: Counter "pipes created for splicing (each worker keeps up to 64 empty ones for reuse, two fds each)",
        network_filter_copy_cx: Counter "spliceable connections whose bytes were copied through a buffer in at least one direction, for a while, because a network filter needed to see them",
        network_filter_copy_bytes: Counter "bytes of spliceable connections copied through a buffer instead of spliced because a network filter needed to see them",
        byte_counter_rx_bytes: Counter as "byte_counter.rx_bytes" "bytes from clients seen by the byte_counter network filter (listeners that have it)",
        byte_counter_tx_bytes: Counter as "byte_counter.tx_bytes" "bytes to clients seen by the byte_counter network filter (listeners that have it)",
        tls_inspector_tls_found: Counter as "tls_inspector.tls_found" "connections whose ClientHello was read for SNI routing (without terminating TLS)",
        tls_inspector_tls_not_found: Counter as "tls_inspector.tls_not_found" "connections on an SNI-routing listener whose first bytes were not TLS (sent to the listener's cluster)",
        tls_inspector_sni_found: Counter as "tls_inspector.sni_found" "ClientHellos read for SNI routing that named a server",
        tls_inspector_sni_not_found: Counter as "tls_inspector.sni_not_found" "ClientHellos read for SNI routing without a server name",
        tls_inspector_client_hello_too_large: Counter as "tls_inspector.client_hello_too_large" "connections closed because their ClientHello was too large or split across too many records",
        tls_inspector_invalid_client_hello: Counter as "tls_inspector.invalid_client_hello" "connections closed because their first bytes were a malformed TLS ClientHello",
        tls_inspector_connection_closed: Counter as "tls_inspector.connection_closed" "connections closed by the client before its ClientHello was complete",
        tls_inspector_read_error: Counter as "tls_inspector.read_error" "connections closed because reading the ClientHello failed (a reset)",
        tls_inspector_timeout: Counter as "tls_inspector.timeout" "connections closed because no complete ClientHello arrived within inspect_timeout",
    }
}

stats! {
    /// `local_rate_limit.<stat_prefix>.*`: the `local_ratelimit` network filter of a tcp
    /// listener (Envoy's network local rate limit filter).
    pub struct LocalRateLimitStats {
        rate_limited: Counter "connections closed at once because the local rate limit's bucket was empty",
    }
}

stats! {
    /// `http.<name>.*`: the HTTP connection manager of one listener.
    pub struct HttpStats {
        downstream_cx_total: Counter "HTTP connections opened",
        downstream_cx_active: Gauge "HTTP connections open",
        downstream_cx_http1_total: Counter "HTTP/1.1 connections opened",
        downstream_cx_http1_active: Gauge "HTTP/1.1 connections open",
        downstream_cx_http2_total: Counter "HTTP/2 connections opened",
        downstream_cx_http2_active: Gauge "HTTP/2 connections open",
        downstream_cx_destroy: Counter "HTTP connections closed",
        downstream_cx_destroy_remote: Counter "HTTP connections closed by the client",
        downstream_cx_destroy_local: Counter "HTTP connections closed by ringway",
        downstream_cx_rx_bytes_total: Counter "bytes received from clients",
        downstream_cx_tx_bytes_total: Counter "bytes sent to clients",
        downstream_cx_idle_timeout: Counter "keep-alive connections closed by the idle timeout",
        downstream_cx_drain_close: Counter "connections closed because of draining (Connection: close sent)",
        downstream_cx_protocol_error: Counter "connections closed after a protocol error",
        downstream_cx_upgrades_total: Counter "connections upgraded (WebSocket and other Upgrade tunnels)",
        downstream_cx_upgrades_active: Gauge "upgraded connections open",
        downstream_rq_total: Counter "requests received",
        downstream_rq_http1_total: Counter "HTTP/1.1 requests received",
        downstream_rq_http2_total: Counter "HTTP/2 requests (streams) received",
        downstream_rq_active: Gauge "requests in progress",
        downstream_rq_completed: Counter "requests that received a complete response",
        downstream_rq_1xx: Counter "responses with a 1xx status (final responses only)",
        downstream_rq_2xx: Counter "responses with a 2xx status",
        downstream_rq_3xx: Counter "responses with a 3xx status",
        downstream_rq_4xx: Counter "responses with a 4xx status",
        downstream_rq_5xx: Counter "responses with a 5xx status",
        downstream_rq_timeout: Counter "requests answered 408 because the head (request_header_timeout) or the whole request (request_timeout) did not arrive in time",
        downstream_rq_idle_timeout: Counter "requests ended because their stream moved no byte for the stream idle timeout (flag SI)",
        downstream_rq_max_duration_reached: Counter "requests ended at the listener's max_stream_duration (flag DT)",
        downstream_rq_rx_reset: Counter "requests abandoned because the client went away mid-request",
        downstream_rq_tx_reset: Counter "responses cut short by ringway (upstream reset after headers were sent)",
        downstream_rq_too_large: Counter "requests refused for size (413, 414, 431)",
        downstream_rq_bad: Counter "requests refused as malformed (400, 501, 505)",
        downstream_rx_multishot_armed: Counter "multishot receives armed on busy HTTP/1.1 keep-alive connections (io_uring): each waits for its connection's next requests until the connection goes quiet, needs its socket for something else, or closes",
        downstream_rx_multishot_no_buffer: Counter "multishot receives ended because the worker's ring of provided buffers was empty (clients sent more than was taken; that read used a buffer of its own)",
        splice_rs_total: Counter "responses whose body went from the upstream's socket to the client's with zero-copy splice (HTTP/1.1 both sides, plain TCP both sides, Content-Length, 16 KiB or more left after what came with the head, no filter reading the body)",
        splice_rs_bytes: Counter "response body bytes moved with zero-copy splice (also in downstream_cx_tx_bytes_total)",
        no_route: Counter "requests with no matching route (404)",
        rq_direct_response: Counter "requests answered with a direct response",
        rq_redirect: Counter "requests answered with a redirect",
        fault_delays_injected: Counter "requests delayed by the fault filter (Envoy: fault.delays_injected)",
        fault_aborts_injected: Counter "requests aborted by the fault filter (Envoy: fault.aborts_injected)",
        fault_response_rl_injected: Counter "responses rate limited by the fault filter (Envoy: fault.response_rl_injected)",
        http_local_rate_limit_enabled: Counter as "http_local_rate_limit.enabled" "requests the local_ratelimit filter looked at (filter_enabled)",
        http_local_rate_limit_enforced: Counter as "http_local_rate_limit.enforced" "requests over the local rate limit that were refused with 429 (filter_enforced)",
        http_local_rate_limit_rate_limited: Counter as "http_local_rate_limit.rate_limited" "requests over the local rate limit, refused or not",
        http_local_rate_limit_ok: Counter as "http_local_rate_limit.ok" "requests within the local rate limit",
        ratelimit_ok: Counter as "ratelimit.ok" "requests the rate limit service (ratelimit filter) let through",
        ratelimit_over_limit: Counter as "ratelimit.over_limit" "requests the rate limit service said are over a limit (answered 429)",
        ratelimit_error: Counter as "ratelimit.error" "requests the rate limit service gave no answer for (error, timeout, unreachable)",
        ratelimit_failure_mode_allowed: Counter as "ratelimit.failure_mode_allowed" "requests let through without an answer from the rate limit service (failure_mode_deny = false)",
        http2_rx_reset: Counter "HTTP/2 streams reset by the client (RST_STREAM received)",
        http2_tx_reset: Counter "HTTP/2 streams reset by ringway (RST_STREAM sent)",
        http2_streams_refused: Counter "HTTP/2 streams refused over the concurrent stream limit",
        http2_rx_messaging_error: Counter "HTTP/2 malformed messages (stream errors, RFC 9113 8.1.1)",
        http2_flow_control_error: Counter "HTTP/2 flow-control violations by the client",
        http2_header_overflow: Counter "HTTP/2 header lists over the limit (HPACK bomb)",
        http2_compression_error: Counter "HTTP/2 header blocks that failed to decode",
        http2_rapid_reset: Counter "HTTP/2 connections closed for rapid reset (CVE-2023-44487)",
        http2_continuation_flood: Counter "HTTP/2 connections closed for a CONTINUATION flood",
        http2_control_flood: Counter "HTTP/2 connections closed for a SETTINGS/PING flood",
        http2_empty_data_flood: Counter "HTTP/2 connections closed for an empty DATA frame flood",
        http2_goaway_sent: Counter "HTTP/2 GOAWAY frames sent (drain, idle, errors)",
        grpc_request_total: Counter "gRPC calls (content-type application/grpc) that ended",
        grpc_success: Counter "gRPC calls that ended with grpc-status 0 (OK)",
        grpc_failure: Counter "gRPC calls that ended with a non-zero grpc-status",
        grpc_no_status: Counter "gRPC calls that ended without a grpc-status (reset or cut short)",
        grpc_status_ok: Counter "gRPC calls that ended with grpc-status OK",
        grpc_status_cancelled: Counter "gRPC calls that ended with grpc-status CANCELLED",
        grpc_status_unknown: Counter "gRPC calls that ended with grpc-status UNKNOWN",
        grpc_status_invalid_argument: Counter "gRPC calls that ended with grpc-status INVALID_ARGUMENT",
        grpc_status_deadline_exceeded: Counter "gRPC calls that ended with grpc-status DEADLINE_EXCEEDED",
        grpc_status_not_found: Counter "gRPC calls that ended with grpc-status NOT_FOUND",
        grpc_status_already_exists: Counter "gRPC calls that ended with grpc-status ALREADY_EXISTS",
        grpc_status_permission_denied: Counter "gRPC calls that ended with grpc-status PERMISSION_DENIED",
        grpc_status_resource_exhausted: Counter "gRPC calls that ended with grpc-status RESOURCE_EXHAUSTED",
        grpc_status_failed_precondition: Counter "gRPC calls that ended with grpc-status FAILED_PRECONDITION",
        grpc_status_aborted: Counter "gRPC calls that ended with grpc-status ABORTED",
        grpc_status_out_of_range: Counter "gRPC calls that ended with grpc-status OUT_OF_RANGE",
        grpc_status_unimplemented: Counter "gRPC calls that ended with grpc-status UNIMPLEMENTED",
        grpc_status_internal: Counter "gRPC calls that ended with grpc-status INTERNAL",
        grpc_status_unavailable: Counter "gRPC calls that ended with grpc-status UNAVAILABLE",
        grpc_status_data_loss: Counter "gRPC calls that ended with grpc-status DATA_LOSS",
        grpc_status_unauthenticated: Counter "gRPC calls that ended with grpc-status UNAUTHENTICATED",
    }
}

stats! {
    /// `cluster.<name>.*`: upstream stats of one cluster.
    pub struct ClusterStats {
        upstream_cx_total: Counter "upstream connections opened",
        upstream_cx_active: Gauge "upstream connections open",
        upstream_cx_http1_total: Counter "HTTP/1.1 upstream connections opened",
        upstream_cx_http2_total: Counter "HTTP/2 upstream connections opened",
        upstream_cx_connect_fail: Counter "upstream connection attempts that failed",
        upstream_cx_connect_timeout: Counter "upstream connection attempts that timed out",
        upstream_cx_destroy: Counter "upstream connections closed",
        upstream_cx_destroy_local: Counter "upstream connections closed by ringway",
        upstream_cx_destroy_remote: Counter "upstream connections closed by the upstream",
        upstream_cx_idle_timeout: Counter "pooled upstream connections closed by the idle timeout",
        upstream_cx_keepalive_timeout: Counter "HTTP/2 upstream connections closed because a keep-alive PING went unanswered",
        upstream_cx_overflow: Counter "times a new upstream connection was needed beyond a connection limit (circuit breakers max_connections or per_host_max_connections, or max_connections_per_worker)",
        upstream_cx_protocol_error: Counter "upstream connections closed after a protocol error",
        upstream_cx_rx_bytes_total: Counter "bytes received from upstreams",
        upstream_cx_tx_bytes_total: Counter "bytes sent to upstreams",
        upstream_cx_pool_reuse: Counter "requests sent on a pooled (reused) connection",
        upstream_rx_multishot_armed: Counter "multishot receives armed on pooled HTTP/1.1 connections (io_uring) whose last response came whole with its head: each takes the connection's next responses until one does not",
        upstream_rq_total: Counter "requests sent upstream",
        upstream_rq_active: Gauge "upstream requests in flight",
        upstream_rq_completed: Counter "upstream requests that received a complete response",
        upstream_rq_cancelled: Counter "requests abandoned while in flight (the client reset its HTTP/2 stream)",
        upstream_rq_1xx: Counter "upstream responses with a 1xx status (final responses only)",
        upstream_rq_2xx: Counter "upstream responses with a 2xx status",
        upstream_rq_3xx: Counter "upstream responses with a 3xx status",
        upstream_rq_4xx: Counter "upstream responses with a 4xx status",
        upstream_rq_5xx: Counter "upstream responses with a 5xx status",
        upstream_rq_timeout: Counter "upstream requests that timed out (504)",
        upstream_rq_rx_reset: Counter "upstream requests reset by the upstream",
        upstream_rq_tx_reset: Counter "upstream requests reset by ringway (client went away)",
        upstream_rq_retry: Counter "requests retried (by a route's retry policy, or once on a reused connection the upstream had closed)",
        upstream_rq_retry_success: Counter "retried requests whose last try succeeded",
        upstream_rq_retry_overflow: Counter "retries not made because the cluster's max_retries (or retry budget) was reached",
        upstream_rq_retry_limit_exceeded: Counter "requests not retried again because num_retries was used up",
        upstream_rq_retry_backoff_exponential: Counter "retries that waited an exponential back-off",
        upstream_rq_per_try_timeout: Counter "tries that ended at the per-try timeout",
        retry_or_shadow_abandoned: Counter "requests not retryable because their body was larger than the retry buffer",
        upstream_rq_pending_total: Counter "requests that waited in the pending queue for an upstream connection (circuit breakers max_connections reached)",
        upstream_rq_pending_active: Gauge "requests waiting in the pending queue now",
        upstream_rq_pending_overflow: Counter "requests refused by a circuit breaker or connection limit: pending queue full, max_requests, max_connections_per_worker (503, UO)",
        upstream_cx_none_healthy: Counter "requests with no healthy endpoint to send to (503, UH)",
        membership_total: Gauge "endpoints in the cluster",
        membership_healthy: Gauge "endpoints in the cluster currently healthy (neither failing active health checks nor ejected)",
        outlier_ejections_active: Gauge as "outlier_detection.ejections_active" "endpoints ejected by outlier detection now",
        outlier_ejections_enforced_total: Counter as "outlier_detection.ejections_enforced_total" "ejections made, by any detector",
        outlier_ejections_overflow: Counter as "outlier_detection.ejections_overflow" "ejections not made because max_ejection_percent was reached",
        outlier_ejections_detected_consecutive_5xx: Counter as "outlier_detection.ejections_detected_consecutive_5xx" "times an endpoint reached consecutive_5xx (ejected or not)",
        outlier_ejections_enforced_consecutive_5xx: Counter as "outlier_detection.ejections_enforced_consecutive_5xx" "ejections by consecutive_5xx",
        outlier_ejections_detected_consecutive_gateway_failure: Counter as "outlier_detection.ejections_detected_consecutive_gateway_failure" "times an endpoint reached consecutive_gateway_failure (ejected or not)",
        outlier_ejections_enforced_consecutive_gateway_failure: Counter as "outlier_detection.ejections_enforced_consecutive_gateway_failure" "ejections by consecutive_gateway_failure",
        outlier_ejections_detected_consecutive_local_origin_failure: Counter as "outlier_detection.ejections_detected_consecutive_local_origin_failure" "times an endpoint reached consecutive_local_origin_failure (ejected or not)",
        outlier_ejections_enforced_consecutive_local_origin_failure: Counter as "outlier_detection.ejections_enforced_consecutive_local_origin_failure" "ejections by consecutive_local_origin_failure",
        outlier_ejections_detected_failure_percentage: Counter as "outlier_detection.ejections_detected_failure_percentage" "times an endpoint's failure percentage in an interval reached failure_percentage_threshold (ejected or not)",
        outlier_ejections_enforced_failure_percentage: Counter as "outlier_detection.ejections_enforced_failure_percentage" "ejections by failure percentage",
        outlier_ejections_detected_success_rate: Counter as "outlier_detection.ejections_detected_success_rate" "times an endpoint's success rate in an interval fell below the cluster's mean by success_rate_stdev_factor (ejected or not)",
        outlier_ejections_enforced_success_rate: Counter as "outlier_detection.ejections_enforced_success_rate" "ejections by success rate",
        health_check_attempt: Counter as "health_check.attempt" "active health checks started",
        health_check_success: Counter as "health_check.success" "active health checks passed",
        health_check_failure: Counter as "health_check.failure" "active health checks failed (wrong status or bytes, or network failure)",
        health_check_network_failure: Counter as "health_check.network_failure" "active health checks failed by connect failure, reset or timeout",
        health_check_verify_cluster: Counter as "health_check.verify_cluster" "always 0: ringway does not verify the cluster name (kept for Envoy dashboards)",
        health_check_healthy: Gauge as "health_check.healthy" "endpoints passing active health checks now",
        ssl_handshake: Counter as "ssl.handshake" "TLS handshakes with upstreams completed (clusters with tls)",
        ssl_connection_error: Counter as "ssl.connection_error" "TLS handshakes with upstreams that failed (verification, alerts, no shared parameters or ALPN protocol, timeouts, resets); also in upstream_cx_connect_fail",
        ssl_fail_verify_error: Counter as "ssl.fail_verify_error" "upstream TLS handshakes that failed because the certificate chain did not verify (unknown CA, expired, bad signature)",
        ssl_fail_verify_san: Counter as "ssl.fail_verify_san" "upstream TLS handshakes that failed because the certificate does not name the server (sni, or the endpoint's IP)",
        ssl_session_reused: Counter as "ssl.session_reused" "upstream TLS handshakes that resumed an earlier session",
        ssl_versions_tls12: Counter as "ssl.versions.TLSv1.2" "upstream TLS handshakes completed with TLS 1.2",
        ssl_versions_tls13: Counter as "ssl.versions.TLSv1.3" "upstream TLS handshakes completed with TLS 1.3",
    }
}

stats! {
    /// `cluster.<name>.circuit_breakers.default.*`: the state of a cluster's process-wide
    /// circuit breakers (Envoy's names). Not written by workers: computed from the breakers'
    /// occupancies each time the stats are read ([`super::BreakerSource`]).
    pub struct CircuitBreakerStats {
        cx_open: Gauge as "circuit_breakers.default.cx_open" "1 while upstream connections are at max_connections (new ones wait), else 0",
        cx_pool_open: Gauge as "circuit_breakers.default.cx_pool_open" "always 0: ringway has no max_connection_pools limit (kept for Envoy dashboards)",
        rq_pending_open: Gauge as "circuit_breakers.default.rq_pending_open" "1 while the pending queue is at max_pending_requests (new ones get 503 UO), else 0",
        rq_open: Gauge as "circuit_breakers.default.rq_open" "1 while requests in flight are at max_requests (new ones get 503 UO), else 0",
        rq_retry_open: Gauge as "circuit_breakers.default.rq_retry_open" "1 while retries in flight are at max_retries (or the retry budget), else 0",
        remaining_cx: Gauge as "circuit_breakers.default.remaining_cx" "upstream connections that may still open before max_connections",
        remaining_pending: Gauge as "circuit_breakers.default.remaining_pending" "requests that may still wait before max_pending_requests",
        remaining_rq: Gauge as "circuit_breakers.default.remaining_rq" "requests that may still start before max_requests",
        remaining_retries: Gauge as "circuit_breakers.default.remaining_retries" "retries that may still start before max_retries (or the retry budget)",
    }
}

stats! {
    /// One endpoint of a cluster; shown by `/clusters` (not in `/stats`, to bound cardinality).
    pub struct EndpointStats {
        cx_total: Counter "connections opened to this endpoint",
        cx_active: Gauge "connections open to this endpoint",
        cx_connect_fail: Counter "failed connection attempts to this endpoint",
        rq_total: Counter "requests sent to this endpoint",
        rq_active: Gauge "requests in flight to this endpoint",
        rq_success: Counter "requests to this endpoint answered with a non-5xx status (what outlier detection counts as success)",
        rq_error: Counter "requests to this endpoint answered with a 5xx status or failed at the endpoint (connect failure, reset, timeout); not those ringway's own limits refused or the client abandoned",
        rq_timeout: Counter "requests to this endpoint that timed out",
    }
}
