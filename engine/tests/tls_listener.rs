//! TLS termination on listeners (`[listeners.tls]`) end to end on loopback: tokio-rustls
//! clients (with hyper for HTTP/1.1 and HTTP/2) -> ringway -> plaintext backends. Certificates
//! are made by rcgen per test. Covers HTTPS to an HTTP/1 backend (`x-forwarded-proto: https`,
//! https redirects), SNI certificate selection, ALPN `h2` served as HTTP/2, TLS 1.2, session
//! resumption, plain HTTP and silent clients refused and counted, PROXY protocol before TLS,
//! TLS in front of a TCP proxy listener, relative certificate paths with the real binary, and
//! (needing `openssl`) TLS 1.0/1.1 refused and ALPN seen by `openssl s_client`.
//! `RINGWAY_TEST_DRIVER=legacy` runs them on the epoll driver.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls::{SignatureScheme, SupportedProtocolVersion};
use support::pki::{Leaf, Pki};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous bound for one step on a loaded CI machine.
const STEP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- certificates

/// The `[listeners.tls]` table for these certificates (absolute paths), plus `extra` lines.
fn tls_table(leaves: &[&Leaf], extra: &str) -> String {
    let certs: Vec<String> = leaves
        .iter()
        .map(|l| format!("{{ cert = {:?}, key = {:?} }}", l.cert, l.key))
        .collect();
    format!(
        "  [listeners.tls]\n  certificates = [{}]\n  {extra}\n",
        certs.join(", ")
    )
}

/// One HTTP listener `main` with TLS: `/redirect` redirects, `/direct` answers itself,
/// everything else goes to `backend`.
fn https_config(backend: SocketAddr, tls: &str, listener_extra: &str) -> String {
    format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
{listener_extra}
{tls}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    path = "/redirect"
    redirect = {{ path = "/moved" }}
    [[listeners.virtual_hosts.routes]]
    path = "/direct"
    direct_response = {{ status = 200, body = "direct over tls" }}
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"

[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#
    )
}

// ---------------------------------------------------------------- clients

/// Accepts any server certificate, so a test can see which one was picked for any name.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration: verifying against `roots` (or accepting any certificate), with
/// these versions and ALPN ids.
fn client_config(
    roots: Option<RootCertStore>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let mut config = match roots {
        Some(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(config)
}

type ClientStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// TLS over a fresh connection to `addr` with SNI `name`.
async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<ClientStream> {
    let tcp = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(addr)).await??;
    tls_over(tcp, config, name).await
}

async fn tls_over(
    tcp: tokio::net::TcpStream,
    config: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<ClientStream> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio::time::timeout(
        STEP,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await?
}

/// An HTTP/1.1 client connection over `tls`.
async fn h1(tls: ClientStream) -> hyper::client::conn::http1::SendRequest<Body> {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http/1.1 handshake");
    tokio::spawn(conn);
    send
}

/// An HTTP/2 client connection over `tls`.
async fn h2(tls: ClientStream) -> hyper::client::conn::http2::SendRequest<Body> {
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tls))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

/// Sends `req` once the connection can take it (after the previous exchange finished).
async fn send1(
    send: &mut hyper::client::conn::http1::SendRequest<Body>,
    req: Request<Body>,
) -> hyper::Response<hyper::body::Incoming> {
    tokio::time::timeout(STEP, async {
        send.ready().await.expect("connection still open");
        send.send_request(req).await.expect("response")
    })
    .await
    .expect("response in time")
}

/// [`send1`] for HTTP/2.
async fn send2(
    send: &mut hyper::client::conn::http2::SendRequest<Body>,
    req: Request<Body>,
) -> hyper::Response<hyper::body::Incoming> {
    tokio::time::timeout(STEP, async {
        send.ready().await.expect("connection still open");
        send.send_request(req).await.expect("response")
    })
    .await
    .expect("response in time")
}

fn request(method: &str, uri: &str, data: impl Into<Bytes>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "a.example")
        .body(body(data))
        .unwrap()
}

fn header<'r>(resp: &'r hyper::Response<hyper::body::Incoming>, name: &str) -> &'r str {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// A deterministic byte pattern (xorshift), so corruption or reordering is seen.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requests_reach_an_http1_backend_with_forwarded_proto_https() {
    let pki = Pki::new("h1");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(backend.addr, &tls_table(&[&a], ""), ""));
    let config = client_config(
        Some(pki.roots()),
        rustls::ALL_VERSIONS,
        &[b"http/1.1".as_slice()],
    );
    let tls = connect(proxy.addr(), config, "a.example").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut send = h1(tls).await;

    // Several requests on one keep-alive connection.
    for i in 0..3 {
        let resp = send1(
            &mut send,
            request("GET", &format!("/get/{i}"), Bytes::new()),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-echo-uri"), format!("/get/{i}"));
        assert_eq!(header(&resp, "x-echo-h-x-forwarded-proto"), "https");
        assert!(header(&resp, "x-echo-h-x-forwarded-for").starts_with("127.0.0.1"));
        assert!(read_body(resp).await.is_empty());
    }
    // A body larger than one TLS record and one read buffer, streamed both ways.
    let data = pattern(3 << 20, 7);
    let resp = send1(&mut send, request("POST", "/post", data.clone())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-echo-method"), "POST");
    assert_eq!(read_body(resp).await, data);
    // Local replies go out over TLS too; redirects keep the https scheme.
    let resp = send1(&mut send, request("GET", "/direct", Bytes::new())).await;
    assert_eq!(read_body(resp).await, "direct over tls");
    let resp = send1(&mut send, request("GET", "/redirect", Bytes::new())).await;
    assert_eq!(resp.status(), 301);
    assert_eq!(header(&resp, "location"), "https://a.example/moved");
    drop(send);

    assert_eq!(proxy.stat("listener.main.ssl.handshake"), 1);
    assert_eq!(proxy.stat("listener.main.ssl.versions.TLSv1.3"), 1);
    assert_eq!(proxy.stat("listener.main.ssl.connection_error"), 0);
    assert_eq!(proxy.stat("http.main.downstream_rq_http1_total"), 6);
    // The Prometheus names turn the dots into underscores.
    let (_, prom) = proxy.admin_get("/stats/prometheus");
    assert!(
        prom.contains("ringway_listener_ssl_versions_TLSv1_3{listener_name=\"main\"} 1"),
        "{prom}"
    );
}

/// When ringway closes an HTTPS connection (the client asked for `Connection: close`, or the
/// idle timeout passed), the TLS stream ends with close_notify: rustls clients report a
/// connection closed without one as an error (truncation attack, RFC 8446 section 6.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringway_ends_tls_connections_it_closes_with_close_notify() {
    let pki = Pki::new("close-notify");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(
        backend.addr,
        &tls_table(&[&a], ""),
        "  [listeners.http]\n  idle_timeout = \"300ms\"",
    ));
    let config = client_config(Some(pki.roots()), rustls::ALL_VERSIONS, &[]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client_config(Some(pki.roots()), &[version], &[]);
        // Connection: close, answered by ringway itself and by the backend.
        for path in ["/direct", "/echo"] {
            let mut tls = connect(proxy.addr(), config.clone(), "a.example")
                .await
                .unwrap();
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n");
            tls.write_all(req.as_bytes()).await.unwrap();
            let mut got = Vec::new();
            tokio::time::timeout(STEP, tls.read_to_end(&mut got))
                .await
                .expect("closed in time")
                .unwrap_or_else(|e| panic!("{version:?} {path}: unclean close: {e}"));
            assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
        }
    }
    // The idle timeout closes a keep-alive connection that sent nothing more.
    let mut tls = connect(proxy.addr(), config, "a.example").await.unwrap();
    tls.write_all(b"GET /direct HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(STEP, tls.read_to_end(&mut got))
        .await
        .expect("closed by the idle timeout")
        .expect("close_notify before the end of the TCP stream");
    assert!(got.ends_with(b"direct over tls"), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_the_certificate_and_unknown_names_get_the_default() {
    let pki = Pki::new("sni");
    let a = pki.leaf("a", &["a.example"]);
    let b = pki.leaf("b", &["b.example", "*.b.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(backend.addr, &tls_table(&[&a, &b], ""), ""));
    let verifying = client_config(Some(pki.roots()), rustls::ALL_VERSIONS, &[]);
    let any = client_config(None, rustls::ALL_VERSIONS, &[]);
    for (name, config, want) in [
        ("a.example", &verifying, &a),
        ("b.example", &verifying, &b),
        ("x.b.example", &verifying, &b),
        ("unknown.example", &any, &a),
    ] {
        let tls = connect(proxy.addr(), config.clone(), name).await.unwrap();
        let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert_eq!(presented, want.der, "certificate for {name}");
        let mut send = h1(tls).await;
        let resp = send1(&mut send, request("GET", "/direct", Bytes::new())).await;
        assert_eq!(resp.status(), 200, "{name}");
    }
    assert_eq!(proxy.stat("listener.main.ssl.handshake"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_h2_is_served_as_http2() {
    let pki = Pki::new("h2");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(backend.addr, &tls_table(&[&a], ""), ""));
    let config = client_config(
        Some(pki.roots()),
        rustls::ALL_VERSIONS,
        &[b"h2".as_slice(), b"http/1.1".as_slice()],
    );
    let tls = connect(proxy.addr(), config, "a.example").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut send = h2(tls).await;
    let resp = send2(
        &mut send,
        request("GET", "https://a.example/h2/get", Bytes::new()),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(header(&resp, "x-echo-uri"), "/h2/get");
    assert_eq!(header(&resp, "x-echo-h-x-forwarded-proto"), "https");
    read_body(resp).await;
    // Concurrent streams with bodies on the one connection.
    let mut calls = Vec::new();
    for i in 0..4u64 {
        let mut send = send.clone();
        calls.push(tokio::spawn(async move {
            let data = pattern(200_000, i + 1);
            let resp = send2(
                &mut send,
                request("POST", "https://a.example/h2/post", data.clone()),
            )
            .await;
            assert_eq!(resp.status(), 200);
            assert_eq!(read_body(resp).await, data);
        }));
    }
    for c in calls {
        tokio::time::timeout(STEP, c).await.unwrap().unwrap();
    }
    drop(send);
    assert_eq!(proxy.stat("http.main.downstream_cx_http2_total"), 1);
    assert_eq!(proxy.stat("http.main.downstream_rq_http2_total"), 5);
    assert_eq!(proxy.stat("listener.main.ssl.handshake"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_clients_are_served_and_sessions_resume() {
    let pki = Pki::new("v12");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(backend.addr, &tls_table(&[&a], ""), ""));
    for versions in [
        &[&rustls::version::TLS12][..],
        &[&rustls::version::TLS13][..],
    ] {
        // One client configuration keeps the session (ticket) from its first handshake.
        let config = client_config(Some(pki.roots()), versions, &[]);
        for _ in 0..2 {
            let tls = connect(proxy.addr(), config.clone(), "a.example")
                .await
                .unwrap();
            let mut send = h1(tls).await;
            let resp = send1(&mut send, request("GET", "/direct", Bytes::new())).await;
            assert_eq!(read_body(resp).await, "direct over tls");
        }
    }
    assert_eq!(proxy.stat("listener.main.ssl.handshake"), 4);
    assert_eq!(proxy.stat("listener.main.ssl.versions.TLSv1.2"), 2);
    assert_eq!(proxy.stat("listener.main.ssl.versions.TLSv1.3"), 2);
    // Each second connection resumed (TLS 1.2 ticket, TLS 1.3 ticket).
    assert_eq!(proxy.stat("listener.main.ssl.session_reused"), 2);
}

#[test]
fn plain_http_to_a_tls_port_is_refused_and_counted() {
    let pki = Pki::new("plain");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(backend.addr, &tls_table(&[&a], ""), ""));
    let got = raw_exchange(
        proxy.addr(),
        b"GET /direct HTTP/1.1\r\nHost: a.example\r\n\r\n",
    );
    // Closed without an HTTP answer (nothing, or at most a TLS alert record).
    assert!(!got.starts_with(b"HTTP"), "{got:?}");
    proxy.eventually("the refusal is counted", |p| {
        p.stat("listener.main.ssl.not_tls") == 1
            && p.stat("listener.main.ssl.connection_error") == 1
            && p.stat("listener.main.downstream_cx_destroy") == 1
    });
    assert_eq!(proxy.stat("listener.main.ssl.handshake"), 0);
    assert_eq!(proxy.stat("http.main.downstream_rq_total"), 0);
    assert_eq!(backend.request_count(), 0);
}

#[test]
fn handshake_timeout_closes_silent_clients() {
    let pki = Pki::new("timeout");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let tls = tls_table(&[&a], "handshake_timeout = \"300ms\"");
    let proxy = Proxy::start(&https_config(backend.addr, &tls, ""));
    let mut silent = std::net::TcpStream::connect(proxy.addr()).unwrap();
    silent.set_read_timeout(Some(STEP)).unwrap();
    let mut sink = Vec::new();
    // Closed by ringway (end of stream), not ended by our read timeout (an error).
    silent.read_to_end(&mut sink).expect("closed by ringway");
    assert!(sink.is_empty());
    proxy.eventually("the timeout is counted", |p| {
        p.stat("listener.main.downstream_cx_transport_socket_connect_timeout") == 1
    });
    assert_eq!(proxy.stat("listener.main.ssl.connection_error"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_header_comes_before_tls() {
    let pki = Pki::new("pp");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(
        backend.addr,
        &tls_table(&[&a], ""),
        "proxy_protocol = true",
    ));
    let config = client_config(Some(pki.roots()), rustls::ALL_VERSIONS, &[]);
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    tcp.write_all(b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 443\r\n")
        .await
        .unwrap();
    let tls = tls_over(tcp, config, "a.example").await.unwrap();
    let mut send = h1(tls).await;
    let resp = send1(&mut send, request("GET", "/pp", Bytes::new())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-echo-h-x-forwarded-for"), "192.0.2.7");
    assert_eq!(header(&resp, "x-echo-h-x-forwarded-proto"), "https");
}

/// Echo until end of stream, then half-close (a plaintext TCP backend).
fn echo_backend() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// An HTTPS client that asks for an endless body and stops reading: the stream idle timeout
/// cuts it over TLS as over plain TCP (the response `SI`, the upstream connection closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_client_that_stops_reading_is_cut_at_the_stream_idle_timeout() {
    let pki = Pki::new("stall");
    let a = pki.leaf("a", &["a.example"]);
    let (tx, closed) = std::sync::mpsc::channel();
    let backend = endless_backend(true, tx);
    let http = "  [listeners.http]\n  stream_idle_timeout = \"400ms\"";
    let proxy = Proxy::start(&https_config(backend, &tls_table(&[&a], ""), http));
    let config = client_config(Some(pki.roots()), rustls::ALL_VERSIONS, &[]);
    let mut tls = connect(proxy.addr(), config, "a.example").await.unwrap();
    let t0 = Instant::now();
    tls.write_all(b"GET /endless HTTP/1.1\r\nhost: a.example\r\n\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    // Nothing is read from here on.
    let by_proxy = tokio::task::spawn_blocking(move || closed.recv_timeout(STEP))
        .await
        .unwrap()
        .unwrap();
    assert!(by_proxy, "the proxy closed the upstream connection");
    assert!(t0.elapsed() >= Duration::from_millis(400));
    assert_eq!(proxy.stat("http.main.downstream_rq_idle_timeout"), 1);
    // What was written arrives, then the end of the connection.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(STEP, tls.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "an end, not a wait");
    assert!(rest.starts_with(b"HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_listener_terminates_tls_and_relays_plaintext() {
    let pki = Pki::new("tcp");
    let a = pki.leaf("a", &["a.example"]);
    let backend = echo_backend();
    let proxy = Proxy::start(&format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "t"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "echo"
{}
[[clusters]]
name = "echo"
endpoints = ["{backend}"]
"#,
        tls_table(&[&a], "")
    ));
    let config = client_config(Some(pki.roots()), rustls::ALL_VERSIONS, &[]);
    let tls = connect(proxy.addr(), config, "a.example").await.unwrap();
    // No ALPN is offered on tcp listeners unless configured.
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let (mut rd, mut wr) = tokio::io::split(tls);
    let data = pattern(8 << 20, 3);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await.unwrap();
        // close_notify: ringway half-closes the upstream, the backend ends its echo.
        wr.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    tokio::time::timeout(STEP, rd.read_to_end(&mut back))
        .await
        .expect("echo in time")
        .expect("clean end (close_notify) after the echo");
    writer.await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echo differs");
    proxy.eventually("bytes are counted", |p| {
        p.stat("tcp.t.downstream_cx_rx_bytes_total") == data.len() as i64
            && p.stat("tcp.t.downstream_cx_tx_bytes_total") == data.len() as i64
    });
    assert_eq!(proxy.stat("listener.t.ssl.handshake"), 1);
}

// ---------------------------------------------------------------- the real binary

/// A `ringway` child process; killed and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ringway -c <config>` from `cwd`; returns it and the address of listener `main`
/// from its start-up banner, which must name it with `https://`.
fn spawn_ringway(config: &Path, cwd: &Path) -> (Running, SocketAddr) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway"));
    cmd.arg("-c")
        .arg(config)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("RINGWAY_LOG", "warn");
    match std::env::var("RINGWAY_TEST_DRIVER").as_deref() {
        Ok("legacy") => cmd.env("RINGWAY_IO_DRIVER", "legacy"),
        Ok("io_uring") => cmd.env("RINGWAY_IO_DRIVER", "io_uring"),
        _ => cmd.env_remove("RINGWAY_IO_DRIVER"),
    };
    let mut child = Running(cmd.spawn().expect("spawn ringway"));
    let out = child.0.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("ringway start-up banner");
        if let Some(url) = line.strip_prefix("ringway: listener main on ") {
            let addr = url.strip_prefix("https://").expect("an https listener");
            return (child, addr.parse().expect("listener address"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_certificate_paths_are_taken_from_the_config_files_directory() {
    let pki = Pki::new("binary");
    let a = pki.leaf("a", &["a.example"]);
    let conf_dir = pki.dir.join("conf");
    std::fs::create_dir_all(conf_dir.join("certs")).unwrap();
    std::fs::copy(&a.cert, conf_dir.join("certs/a.pem")).unwrap();
    std::fs::copy(&a.key, conf_dir.join("certs/a-key.pem")).unwrap();
    let config = conf_dir.join("config.toml");
    std::fs::write(
        &config,
        r#"workers = 1
[admin]
enabled = false
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [listeners.tls]
  certificates = [{ cert = "certs/a.pem", key = "certs/a-key.pem" }]
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    direct_response = { status = 200, body = "from the binary" }
"#,
    )
    .unwrap();
    // Started from another directory (where `certs/` does not exist).
    let elsewhere = pki.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let (_ringway, addr) = spawn_ringway(&config, &elsewhere);

    let roots = client_config(Some(pki.roots()), rustls::ALL_VERSIONS, &[]);
    let tls = connect(addr, roots, "a.example").await.unwrap();
    let mut send = h1(tls).await;
    let resp = send1(&mut send, request("GET", "/", Bytes::new())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(read_body(resp).await, "from the binary");
}

// ---------------------------------------------------------------- openssl s_client

/// Runs `openssl s_client` against `addr` with `args`, stdin closed; (exit success, stdout).
fn s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("openssl s_client did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.success(), format!("{out}\n{err}"))
}

#[test]
#[ignore = "needs openssl"]
fn tls10_and_tls11_are_refused() {
    let pki = Pki::new("old");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(backend.addr, &tls_table(&[&a], ""), ""));
    // SECLEVEL=0 lets OpenSSL 3 offer the old versions at all; the refusal is ringway's.
    for (n, version) in ["-tls1", "-tls1_1"].into_iter().enumerate() {
        let (ok, out) = s_client(
            proxy.addr(),
            &[
                version,
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
                "-servername",
                "a.example",
            ],
        );
        assert!(!ok, "{version} was accepted: {out}");
        assert!(!out.contains("BEGIN CERTIFICATE"), "{out}");
        proxy.eventually("the refusal is counted", |p| {
            p.stat("listener.main.ssl.connection_error") == n as i64 + 1
        });
    }
    // The same client with TLS 1.2 gets through (so the refusals were about the version).
    let (ok, out) = s_client(proxy.addr(), &["-tls1_2", "-servername", "a.example"]);
    assert!(ok, "{out}");
    assert!(out.contains("TLSv1.2"), "{out}");
    assert_eq!(proxy.stat("listener.main.ssl.handshake"), 1);
}

#[test]
#[ignore = "needs openssl"]
fn openssl_negotiates_h2_by_alpn() {
    let pki = Pki::new("s-h2");
    let a = pki.leaf("a", &["a.example"]);
    let backend = Backend::echo();
    let proxy = Proxy::start(&https_config(backend.addr, &tls_table(&[&a], ""), ""));
    let (ok, out) = s_client(
        proxy.addr(),
        &["-alpn", "h2,http/1.1", "-servername", "a.example"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    let (ok, out) = s_client(
        proxy.addr(),
        &["-alpn", "http/1.1", "-servername", "a.example"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    // A client whose ALPN list shares nothing is refused (no_application_protocol).
    let (ok, out) = s_client(
        proxy.addr(),
        &["-alpn", "spdy/3", "-servername", "a.example"],
    );
    assert!(!ok, "{out}");
}
