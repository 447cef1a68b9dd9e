//! TLS origination to upstream clusters (`tls = { ... }` on a cluster) end to end on loopback:
//! plain HTTP client -> ringway -> TLS backend (tokio-rustls + hyper, HTTP/1.1 or HTTP/2 by
//! ALPN). Certificates are made by rcgen per test. Covers verification against the cluster's
//! CA, pooled reuse of TLS connections, a wrong CA and a wrong name (503 UF and the cluster's
//! `ssl.*` stats), the SNI sent, a client certificate the backend requires, an `http2`
//! cluster over TLS (h2 by ALPN), and a TCP proxy listener to a TLS cluster.
//! `RINGWAY_TEST_DRIVER=legacy` runs them on the epoll driver.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use support::*;

// ---------------------------------------------------------------- certificates

/// A CA whose certificate is written to `<dir>/<name>-ca.pem`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: PathBuf,
}

/// A leaf signed by a [`Ca`]: PEM files and the DER forms for a rustls server.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

/// A private directory of PEM files, removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(test: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringway-tls-upstream-{}-{test}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn ca(&self, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = self.dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, pem }
    }

    /// A leaf for `sans` (DNS names or IP addresses) signed by `ca`.
    fn leaf(&self, ca: &Ca, name: &str, sans: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &ca.issuer)
            .unwrap();
        let cert_path = self.dir.join(format!("{name}.pem"));
        let key_path = self.dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.issuer.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Leaf {
            cert: cert_path,
            key: key_path,
            chain: vec![cert.der().clone(), ca.issuer.der().clone()],
            key_der: key.serialize_der(),
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- TLS backend

/// What the backend saw.
#[derive(Default)]
struct Seen {
    /// TLS connections accepted (handshakes done).
    connections: AtomicUsize,
    /// The SNI of each handshake (`None`: no SNI).
    sni: Mutex<Vec<Option<String>>>,
    /// Whether each handshake had a client certificate.
    client_cert: Mutex<Vec<bool>>,
    /// The ALPN protocol of each handshake.
    alpn: Mutex<Vec<Option<Vec<u8>>>>,
}

/// A TLS HTTP backend on its own thread; answers `tls <version> <path>` and stops on drop.
struct Backend {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a backend serving `leaf`; `client_ca`: client certificates from that CA are
/// required; `alpn`: offered protocols (`h2` is served as HTTP/2).
fn backend(leaf: &Leaf, client_ca: Option<&Ca>, alpn: &[&[u8]]) -> Backend {
    backend_versions(leaf, client_ca, alpn, rustls::DEFAULT_VERSIONS)
}

/// [`backend`] with only these TLS versions.
fn backend_versions(
    leaf: &Leaf,
    client_ca: Option<&Ca>,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Backend {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    let mut config = builder.with_single_cert(leaf.chain.clone(), key).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let tcp = tokio::select! {
                    r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
                    _ = &mut stopped => break,
                };
                let acceptor = acceptor.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let (_, conn) = tls.get_ref();
                    let version = match conn.protocol_version() {
                        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
                        _ => "1.2",
                    };
                    let h2 = conn.alpn_protocol() == Some(b"h2");
                    seen.sni
                        .lock()
                        .unwrap()
                        .push(conn.server_name().map(str::to_owned));
                    seen.client_cert
                        .lock()
                        .unwrap()
                        .push(conn.peer_certificates().is_some());
                    seen.alpn
                        .lock()
                        .unwrap()
                        .push(conn.alpn_protocol().map(<[u8]>::to_vec));
                    seen.connections.fetch_add(1, Ordering::SeqCst);
                    let svc = hyper::service::service_fn(move |req: Request<_>| async move {
                        let body = format!(
                            "tls {version} {:?} {} {}",
                            req.version(),
                            req.uri().path(),
                            req.uri().scheme_str().unwrap_or("-")
                        );
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    });
                    let io = TokioIo::new(tls);
                    if h2 {
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, svc)
                            .await;
                    } else {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, svc)
                            .await;
                    }
                });
            }
        });
    });
    Backend {
        addr,
        seen,
        stop: Some(stop),
        thread: Some(thread),
    }
}

// ---------------------------------------------------------------- configs

/// One plain HTTP listener routing everything to cluster `up`, whose extra lines (its `tls`
/// table, protocol) are `cluster_extra`.
fn config(backend: SocketAddr, cluster_extra: &str) -> String {
    format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "up"

[[clusters]]
name = "up"
endpoints = ["{backend}"]
{cluster_extra}
"#
    )
}

/// GET `path` through the proxy on a fresh connection: (status, body).
fn get(proxy: &Proxy, path: &str) -> (u16, String) {
    raw_get(proxy.addr(), path)
}

// ---------------------------------------------------------------- tests

#[test]
fn http1_to_a_tls_backend_verified_and_pooled() {
    let pki = Pki::new("pooled");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let tls = format!("tls = {{ sni = \"api.example\", ca = {:?} }}", ca.pem);
    let proxy = Proxy::start(&config(be.addr, &tls));
    for i in 0..3 {
        let (status, body) = get(&proxy, &format!("/r{i}"));
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("tls 1.3 HTTP/1.1 /r"), "{body}");
    }
    // Three sequential requests, one TLS connection: the pooled one was reused.
    assert_eq!(be.seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.stat("cluster.up.ssl.handshake"), 1);
    assert_eq!(proxy.stat("cluster.up.upstream_cx_pool_reuse"), 2);
    assert_eq!(proxy.stat("cluster.up.ssl.connection_error"), 0);
    // The configured SNI was sent, and ALPN agreed on HTTP/1.1.
    assert_eq!(
        *be.seen.sni.lock().unwrap(),
        vec![Some("api.example".to_owned())]
    );
    assert_eq!(
        *be.seen.alpn.lock().unwrap(),
        vec![Some(b"http/1.1".to_vec())]
    );
}

#[test]
fn tls12_backend() {
    let pki = Pki::new("tls12");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend_versions(&leaf, None, &[b"http/1.1"], &[&rustls::version::TLS12]);
    let tls = format!("tls = {{ sni = \"api.example\", ca = {:?} }}", ca.pem);
    let proxy = Proxy::start(&config(be.addr, &tls));
    for i in 0..2 {
        let (status, body) = get(&proxy, &format!("/v{i}"));
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("tls 1.2 HTTP/1.1 /v"), "{body}");
    }
    assert_eq!(be.seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.stat("cluster.up.ssl.versions.TLSv1.2"), 1);
    assert_eq!(proxy.stat("cluster.up.ssl.versions.TLSv1.3"), 0);
}

#[test]
fn unpooled_connections_resume_the_session() {
    let pki = Pki::new("resume");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    // No idle connection is kept: every request makes a new TLS connection.
    let tls = format!(
        "max_idle_per_endpoint = 0\ntls = {{ sni = \"api.example\", ca = {:?} }}",
        ca.pem
    );
    let proxy = Proxy::start(&config(be.addr, &tls));
    for i in 0..3 {
        let (status, body) = get(&proxy, &format!("/s{i}"));
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(be.seen.connections.load(Ordering::SeqCst), 3);
    assert_eq!(proxy.stat("cluster.up.ssl.handshake"), 3);
    assert!(proxy.stat("cluster.up.ssl.session_reused") >= 1);
}

#[test]
fn a_silent_upstream_times_out_the_handshake() {
    // Accepts TCP connections (the kernel does) but never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let tls = "connect_timeout = \"300ms\"\ntls = { sni = \"api.example\", verify = false }";
    let proxy = Proxy::start(&config(addr, tls));
    let (status, body) = get(&proxy, "/slow");
    assert_eq!(status, 504, "{body}");
    assert_eq!(proxy.stat("cluster.up.ssl.connection_error"), 1);
    assert_eq!(proxy.stat("cluster.up.upstream_cx_connect_timeout"), 1);
    drop(silent);
}

#[test]
fn wrong_ca_is_503_uf_and_counted() {
    let pki = Pki::new("wrong-ca");
    let ca = pki.ca("good");
    let other = pki.ca("other");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let tls = format!("tls = {{ sni = \"api.example\", ca = {:?} }}", other.pem);
    let proxy = Proxy::start(&config(be.addr, &tls));
    let (status, body) = get(&proxy, "/x");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TLS error"), "{body}");
    assert_eq!(proxy.stat("cluster.up.ssl.connection_error"), 1);
    assert_eq!(proxy.stat("cluster.up.ssl.fail_verify_error"), 1);
    assert_eq!(proxy.stat("cluster.up.ssl.handshake"), 0);
    assert_eq!(proxy.stat("cluster.up.upstream_cx_connect_fail"), 1);
    assert_eq!(be.seen.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn a_reload_applies_new_tls_settings() {
    let pki = Pki::new("reload");
    let ca = pki.ca("good");
    let other = pki.ca("other");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let with_ca = |ca: &Ca| format!("tls = {{ sni = \"api.example\", ca = {:?} }}", ca.pem);
    let proxy = Proxy::start(&config(be.addr, &with_ca(&other)));
    assert_eq!(get(&proxy, "/before").0, 503);
    let cfg = engine::config::parse_str(&config(be.addr, &with_ca(&ca)), "<test>")
        .unwrap_or_else(|e| panic!("{e}"));
    proxy.handle().reload(cfg).unwrap();
    // Workers pick the new snapshot up between events.
    proxy.eventually("the reloaded CA is used", |p| get(p, "/after").0 == 200);
}

#[test]
fn a_reload_keeps_an_unchanged_tls_cluster_pooled_connection() {
    let pki = Pki::new("reload-kept");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let tls = format!("tls = {{ sni = \"api.example\", ca = {:?} }}", ca.pem);
    let text = config(be.addr, &tls);
    let proxy = Proxy::start(&text);
    assert_eq!(get(&proxy, "/before").0, 200);
    // The same text, so the same files with the same contents: nothing changed for `up`.
    let cfg = engine::config::parse_str(&text, "<test>").unwrap_or_else(|e| panic!("{e}"));
    proxy.handle().reload(cfg).unwrap();
    assert_eq!(get(&proxy, "/after").0, 200);
    assert_eq!(be.seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.stat("cluster.up.ssl.handshake"), 1);
    assert_eq!(proxy.stat("cluster.up.upstream_cx_pool_reuse"), 1);
}

#[test]
fn a_reload_reads_a_ca_file_replaced_under_the_same_name() {
    let pki = Pki::new("reload-same-path");
    let ca = pki.ca("good");
    let other = pki.ca("other");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let path = pki.dir.join("trusted.pem");
    std::fs::copy(&other.pem, &path).unwrap();
    let text = config(
        be.addr,
        &format!("tls = {{ sni = \"api.example\", ca = {path:?} }}"),
    );
    let proxy = Proxy::start(&text);
    assert_eq!(get(&proxy, "/before").0, 503);
    // Same configuration text, new file contents: the cluster is not "unchanged".
    std::fs::copy(&ca.pem, &path).unwrap();
    let cfg = engine::config::parse_str(&text, "<test>").unwrap_or_else(|e| panic!("{e}"));
    proxy.handle().reload(cfg).unwrap();
    proxy.eventually("the replaced CA is used", |p| get(p, "/after").0 == 200);
}

#[test]
fn without_ca_the_public_roots_are_used() {
    let pki = Pki::new("public-roots");
    let ca = pki.ca("private");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    // Mozilla's CA list does not know the test CA.
    let proxy = Proxy::start(&config(be.addr, "tls = { sni = \"api.example\" }"));
    assert_eq!(get(&proxy, "/x").0, 503);
    assert_eq!(proxy.stat("cluster.up.ssl.fail_verify_error"), 1);
}

#[test]
fn name_mismatch_is_503_and_counted() {
    let pki = Pki::new("wrong-name");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let tls = format!("tls = {{ sni = \"other.example\", ca = {:?} }}", ca.pem);
    let proxy = Proxy::start(&config(be.addr, &tls));
    let (status, _) = get(&proxy, "/x");
    assert_eq!(status, 503);
    assert_eq!(proxy.stat("cluster.up.ssl.fail_verify_san"), 1);
    assert_eq!(proxy.stat("cluster.up.ssl.connection_error"), 1);
}

#[test]
fn without_sni_the_endpoint_ip_is_verified() {
    let pki = Pki::new("ip-san");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["127.0.0.1"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let tls = format!("tls = {{ ca = {:?} }}", ca.pem);
    let proxy = Proxy::start(&config(be.addr, &tls));
    let (status, body) = get(&proxy, "/ip");
    assert_eq!(status, 200, "{body}");
    // No SNI for an IP address (RFC 6066 section 3).
    assert_eq!(*be.seen.sni.lock().unwrap(), vec![None]);
}

#[test]
fn verify_false_accepts_any_certificate() {
    let pki = Pki::new("no-verify");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let proxy = Proxy::start(&config(
        be.addr,
        "tls = { sni = \"whatever.example\", verify = false }",
    ));
    let (status, body) = get(&proxy, "/nv");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        *be.seen.sni.lock().unwrap(),
        vec![Some("whatever.example".to_owned())]
    );
}

#[test]
fn client_certificate_is_presented() {
    let pki = Pki::new("mtls");
    let ca = pki.ca("good");
    let clients = pki.ca("clients");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let client = pki.leaf(&clients, "client", &["ringway.example"]);
    let be = backend(&leaf, Some(&clients), &[b"http/1.1"]);

    // Without a client certificate the backend refuses the handshake. With TLS 1.3 the
    // client's side of the handshake is done before the server checks the certificate, so
    // the refusal (an alert) can arrive as the answer to the request: 502 then, not 503.
    let tls = format!("tls = {{ sni = \"api.example\", ca = {:?} }}", ca.pem);
    let proxy = Proxy::start(&config(be.addr, &tls));
    let (status, _) = get(&proxy, "/no-cert");
    assert!(status == 502 || status == 503, "{status}");
    assert_eq!(be.seen.connections.load(Ordering::SeqCst), 0);
    drop(proxy);

    let tls = format!(
        "tls = {{ sni = \"api.example\", ca = {:?}, cert = {:?}, key = {:?} }}",
        ca.pem, client.cert, client.key
    );
    let proxy = Proxy::start(&config(be.addr, &tls));
    let (status, body) = get(&proxy, "/cert");
    assert_eq!(status, 200, "{body}");
    assert_eq!(be.seen.client_cert.lock().unwrap().last(), Some(&true));
}

#[test]
fn http2_cluster_over_tls_by_alpn() {
    let pki = Pki::new("h2");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"h2", b"http/1.1"]);
    let tls = format!(
        "protocol = \"http2\"\ntls = {{ sni = \"api.example\", ca = {:?} }}",
        ca.pem
    );
    let proxy = Proxy::start(&config(be.addr, &tls));
    for i in 0..3 {
        let (status, body) = get(&proxy, &format!("/h{i}"));
        assert_eq!(status, 200, "{body}");
        // HTTP/2 requests to a TLS cluster say `:scheme https`.
        assert_eq!(body, format!("tls 1.3 HTTP/2.0 /h{i} https"));
    }
    assert_eq!(be.seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(*be.seen.alpn.lock().unwrap(), vec![Some(b"h2".to_vec())]);
    assert_eq!(proxy.stat("cluster.up.upstream_cx_http2_total"), 1);
}

#[test]
fn http2_cluster_needs_h2_from_alpn() {
    let pki = Pki::new("h2-refused");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    // The backend speaks HTTP/1.1 only: rustls refuses a handshake without a common protocol,
    // or the handshake ends without h2; either way no HTTP/2 connection is made.
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let tls = format!(
        "protocol = \"http2\"\ntls = {{ sni = \"api.example\", ca = {:?} }}",
        ca.pem
    );
    let proxy = Proxy::start(&config(be.addr, &tls));
    let (status, _) = get(&proxy, "/x");
    assert!(status == 503 || status == 502, "{status}");
    assert_eq!(proxy.stat("cluster.up.ssl.connection_error"), 1);
    assert_eq!(proxy.stat("cluster.up.upstream_cx_http2_total"), 0);
}

#[test]
fn tcp_proxy_to_a_tls_cluster() {
    let pki = Pki::new("tcp");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let toml = format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "tcp"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "up"

[[clusters]]
name = "up"
endpoints = ["{}"]
tls = {{ sni = "api.example", ca = {:?} }}
"#,
        be.addr, ca.pem
    );
    let proxy = Proxy::start(&toml);
    let (status, body) = get(&proxy, "/tcp");
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("tls 1.3 HTTP/1.1 /tcp"), "{body}");
    assert_eq!(proxy.stat("cluster.up.ssl.handshake"), 1);
}

#[test]
fn relative_paths_are_taken_from_the_config_files_directory() {
    let pki = Pki::new("relative");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let _client = pki.leaf(&ca, "client", &["ringway.example"]);
    let be = backend(&leaf, Some(&ca), &[b"http/1.1"]);
    let file = pki.dir.join("ringway.toml");
    let tls = "tls = { sni = \"api.example\", ca = \"good-ca.pem\", cert = \"client.pem\", key = \"client-key.pem\" }";
    std::fs::write(&file, config(be.addr, tls)).unwrap();
    let cfg = engine::config::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.clusters[0].tls.is_some());
    let handle = engine::start(
        cfg,
        engine::StartOptions {
            driver: driver(),
            no_pinning: true,
        },
    )
    .expect("start ringway");
    let (status, body) = raw_get(handle.listeners()[0].1, "/rel");
    handle.shutdown();
    assert_eq!(status, 200, "{body}");
    assert_eq!(be.seen.client_cert.lock().unwrap().last(), Some(&true));
}

#[test]
fn config_errors_name_the_field() {
    let check = |tls: &str, field: &str| {
        let toml = config("127.0.0.1:1".parse().unwrap(), tls);
        let e = engine::config::parse_str(&toml, "<test>").unwrap_err();
        assert!(e.to_string().contains(field), "{e} should name {field}");
    };
    check("tls = { ca = \"\" }", "clusters[0].tls.ca");
    check(
        "tls = { ca = \"/nonexistent/ca.pem\" }",
        "clusters[0].tls.ca",
    );
    check(
        "tls = { verify = false, cert = \"c.pem\" }",
        "clusters[0].tls.key",
    );
    check(
        "tls = { verify = false, alpn = [\"h2\"] }",
        "clusters[0].tls.alpn[0]",
    );
    check(
        "protocol = \"http2\"\ntls = { verify = false, alpn = [\"http/1.1\"] }",
        "clusters[0].tls.alpn",
    );
    check(
        "tls = { verify = false, sni = \"*.a.example\" }",
        "clusters[0].tls.sni",
    );
    check("tls = { verify = false, bogus = 1 }", "bogus");
}

/// Health checks of a cluster that originates TLS go over TLS with the cluster's settings
/// (SNI, CA), as its requests do: an endpoint that starts unhealthy passes its HTTP checks
/// and serves; one whose certificate the cluster does not trust fails them as network
/// failures and stays out.
#[test]
fn health_checks_speak_the_clusters_tls() {
    let pki = Pki::new("hc");
    let ca = pki.ca("good");
    let leaf = pki.leaf(&ca, "server", &["api.example"]);
    let be = backend(&leaf, None, &[b"http/1.1"]);
    let hc = "\n  [[clusters.health_checks]]\n  type = \"http\"\n  path = \"/healthz\"\n  \
              interval = \"50ms\"\n  timeout = \"2s\"\n  healthy_threshold = 1\n  \
              initial_health = \"unhealthy\"\n";
    let tls = format!("tls = {{ sni = \"api.example\", ca = {:?} }}{hc}", ca.pem);
    let proxy = Proxy::start(&config(be.addr, &tls));
    proxy.eventually("the TLS endpoint passes its checks", |p| {
        p.stat("cluster.up.health_check.healthy") == 1
    });
    assert_eq!(proxy.stat("cluster.up.health_check.network_failure"), 0);
    assert!(
        be.seen
            .sni
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.as_deref() == Some("api.example")),
        "checks send the cluster's SNI"
    );
    let (status, body) = get(&proxy, "/r");
    assert_eq!(status, 200, "{body}");

    let other = pki.ca("other");
    let tls = format!(
        "tls = {{ sni = \"api.example\", ca = {:?} }}{hc}",
        other.pem
    );
    let untrusted = Proxy::start(&config(be.addr, &tls));
    untrusted.eventually("checks fail on the handshake", |p| {
        p.stat("cluster.up.health_check.network_failure") >= 2
    });
    assert_eq!(untrusted.stat("cluster.up.health_check.healthy"), 0);
    assert_eq!(untrusted.stat("cluster.up.health_check.success"), 0);
}
