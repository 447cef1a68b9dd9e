//! Client certificates (mTLS) on TLS listeners and certificate reload, end to end on loopback:
//! tokio-rustls clients -> ringway -> a plaintext echo backend (which answers the request
//! headers it got as `x-echo-h-<name>`). Certificates are made by rcgen per test.
//!
//! Covers: no certificate, a certificate from another CA and a name not allowed are refused
//! and counted (`ssl.fail_verify_*`); a good certificate reaches the backend with
//! `x-forwarded-client-cert` (Hash, Subject, URI, DNS) replacing the one the client sent;
//! `client_auth = "optional"` without a certificate passes with no XFCC (`ssl.no_certificate`);
//! plaintext listeners strip XFCC; certificate files replaced on disk are served to new
//! handshakes while an open connection goes on, and a broken replacement keeps the old ones.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    SanType,
};
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous bound for one step on a loaded CI machine.
const STEP: Duration = Duration::from_secs(30);

static N: AtomicUsize = AtomicUsize::new(0);

/// A private directory, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ringway-mtls-{}-{test}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA.
struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A certificate and its key, as DER and PEM.
struct Leaf {
    der: CertificateDer<'static>,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// A leaf with subject `CN=<cn>,O=Ringway Test`, these DNS names and URIs.
    fn leaf(&self, cn: &str, dns: &[&str], uris: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Ringway Test");
        params.distinguished_name.push(DnType::CommonName, cn);
        for u in uris {
            params
                .subject_alt_names
                .push(SanType::URI((*u).try_into().unwrap()));
        }
        let cert = params.signed_by(&key, &self.0).unwrap();
        Leaf {
            der: cert.der().clone(),
            pem: cert.pem(),
            key,
        }
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.0.pem()).unwrap();
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.0.der().clone()).unwrap();
        roots
    }
}

impl Leaf {
    /// Writes `<name>.pem` and `<name>-key.pem` in `dir` by rename (each file appears whole).
    fn write(&self, dir: &Dir, name: &str) {
        let tmp = dir.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, self.key.serialize_pem()).unwrap();
        std::fs::rename(&tmp, dir.path(&format!("{name}-key.pem"))).unwrap();
        std::fs::write(&tmp, &self.pem).unwrap();
        std::fs::rename(&tmp, dir.path(&format!("{name}.pem"))).unwrap();
    }
}

/// A listener `main` with TLS (`server.pem`, `server-key.pem` and `client-ca.pem` in `dir`,
/// plus `tls_extra`) routing everything to `backend`.
fn config(dir: &Dir, backend: SocketAddr, tls_extra: &str) -> String {
    format!(
        r#"workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [listeners.tls]
  certificates = [{{ cert = {:?}, key = {:?} }}]
  {tls_extra}
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    cluster = "backend"

[[clusters]]
name = "backend"
endpoints = ["{backend}"]
"#,
        dir.path("server.pem"),
        dir.path("server-key.pem"),
    )
}

fn client_ca_line(dir: &Dir) -> String {
    format!("client_ca = {:?}", dir.path("client-ca.pem"))
}

/// A client trusting `server_ca`, presenting `cert` if given, offering `alpn`.
fn client_config(server_ca: &Ca, cert: Option<&Leaf>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(server_ca.roots());
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der())),
            )
            .unwrap(),
    };
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(config)
}

type ClientStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<ClientStream> {
    let tcp = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(addr)).await??;
    let name = ServerName::try_from("a.example").unwrap();
    tokio::time::timeout(
        STEP,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await?
}

/// Whether the connection is refused: the handshake fails, or (TLS 1.3, where the client
/// finishes before the server has checked its certificate) a request gets no response but an
/// error or the end of the stream.
async fn refused(addr: SocketAddr, config: Arc<ClientConfig>) -> bool {
    let Ok(mut tls) = connect(addr, config).await else {
        return true;
    };
    if tls
        .write_all(b"GET /x HTTP/1.1\r\nhost: a.example\r\n\r\n")
        .await
        .is_err()
    {
        return true;
    }
    let mut got = Vec::new();
    match tokio::time::timeout(STEP, tls.read_to_end(&mut got)).await {
        Ok(Ok(_)) | Ok(Err(_)) => !got.starts_with(b"HTTP/1.1"),
        Err(_) => panic!("neither refused nor answered in time"),
    }
}

/// An HTTP/1.1 client connection over `tls`.
async fn h1(tls: ClientStream) -> hyper::client::conn::http1::SendRequest<Body> {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http/1.1 handshake");
    tokio::spawn(conn);
    send
}

/// GET `/` with an `x-forwarded-client-cert` of the client's own; returns the status and the
/// XFCC the backend saw.
async fn get(send: &mut hyper::client::conn::http1::SendRequest<Body>) -> (u16, String) {
    let req = Request::builder()
        .uri("/echo")
        .header("host", "a.example")
        .header("x-forwarded-client-cert", "By=spoofed;Hash=00")
        .body(body(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(STEP, async {
        send.ready().await.expect("connection still open");
        send.send_request(req).await.expect("response")
    })
    .await
    .expect("response in time");
    let status = resp.status().as_u16();
    let xfcc = resp
        .headers()
        .get("x-echo-h-x-forwarded-client-cert")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    read_body(resp).await;
    (status, xfcc)
}

fn sha256_hex(data: &[u8]) -> String {
    let suite = ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .unwrap();
    suite
        .common
        .hash_provider
        .hash(data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits (bounded, generously) until `f` holds.
async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Server certificate, client CA, and a client CA that ringway does not trust.
struct Setup {
    dir: Dir,
    server_ca: Ca,
    client_ca: Ca,
    other_ca: Ca,
}

impl Setup {
    fn new(test: &str) -> Self {
        let dir = Dir::new(test);
        let server_ca = Ca::new("server ca");
        server_ca
            .leaf("a.example", &["a.example"], &[])
            .write(&dir, "server");
        let client_ca = Ca::new("client ca");
        client_ca.write(&dir.path("client-ca.pem"));
        Self {
            dir,
            server_ca,
            client_ca,
            other_ca: Ca::new("other ca"),
        }
    }
}

// ---------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_are_verified_and_forwarded() {
    let s = Setup::new("required");
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(&s.dir, backend.addr, &client_ca_line(&s.dir)));

    // No certificate.
    assert!(refused(proxy.addr(), client_config(&s.server_ca, None, &[])).await);
    wait_for("ssl.fail_verify_no_cert", async || {
        proxy.stat("listener.main.ssl.fail_verify_no_cert") == 1
    })
    .await;

    // A certificate from a CA ringway does not trust.
    let stranger = s.other_ca.leaf("stranger", &[], &[]);
    assert!(
        refused(
            proxy.addr(),
            client_config(&s.server_ca, Some(&stranger), &[])
        )
        .await
    );
    wait_for("ssl.fail_verify_error", async || {
        proxy.stat("listener.main.ssl.fail_verify_error") == 1
    })
    .await;
    assert_eq!(backend.request_count(), 0);

    // A good one: the backend sees who it is, not what the client claimed.
    let client = s.client_ca.leaf(
        "client one",
        &["client.example"],
        &["spiffe://ringway.test/client"],
    );
    let tls = connect(
        proxy.addr(),
        client_config(&s.server_ca, Some(&client), &[]),
    )
    .await
    .unwrap();
    let mut send = h1(tls).await;
    let want = format!(
        "Hash={};Subject=\"CN=client one,O=Ringway Test\";URI=spiffe://ringway.test/client;DNS=client.example",
        sha256_hex(&client.der)
    );
    for _ in 0..2 {
        let (status, xfcc) = get(&mut send).await;
        assert_eq!(status, 200);
        assert_eq!(xfcc, want);
    }
    assert_eq!(proxy.stat("listener.main.ssl.handshake"), 1);
    assert_eq!(proxy.stat("listener.main.ssl.fail_verify_san"), 0);
    assert_eq!(proxy.stat("listener.main.ssl.no_certificate"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_names_are_let_in() {
    let s = Setup::new("allowed");
    let backend = Backend::echo();
    let extra = format!(
        "{}\n  client_allowed_names = [\"*.allowed.test\", \"spiffe://ringway.test/ok\"]",
        client_ca_line(&s.dir)
    );
    let proxy = Proxy::start(&config(&s.dir, backend.addr, &extra));

    let by_dns = s.client_ca.leaf("whoever", &["x.allowed.test"], &[]);
    let by_uri = s
        .client_ca
        .leaf("whoever", &[], &["spiffe://ringway.test/ok"]);
    for (i, leaf) in [&by_dns, &by_uri].into_iter().enumerate() {
        let tls = connect(proxy.addr(), client_config(&s.server_ca, Some(leaf), &[]))
            .await
            .unwrap();
        let (status, xfcc) = get(&mut h1(tls).await).await;
        assert_eq!(status, 200, "client {i}");
        assert!(xfcc.contains(&sha256_hex(&leaf.der)), "{xfcc}");
    }

    let outsider = s
        .client_ca
        .leaf("allowed.test", &["allowed.test", "y.other.test"], &[]);
    assert!(
        refused(
            proxy.addr(),
            client_config(&s.server_ca, Some(&outsider), &[])
        )
        .await
    );
    wait_for("ssl.fail_verify_san", async || {
        proxy.stat("listener.main.ssl.fail_verify_san") == 1
    })
    .await;
    assert_eq!(proxy.stat("listener.main.ssl.fail_verify_error"), 0);
    assert_eq!(backend.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates() {
    let s = Setup::new("optional");
    let backend = Backend::echo();
    let extra = format!("{}\n  client_auth = \"optional\"", client_ca_line(&s.dir));
    let proxy = Proxy::start(&config(&s.dir, backend.addr, &extra));

    // Without a certificate: in, with no XFCC at all (the client's own is dropped).
    let tls = connect(proxy.addr(), client_config(&s.server_ca, None, &[]))
        .await
        .unwrap();
    let (status, xfcc) = get(&mut h1(tls).await).await;
    assert_eq!(status, 200);
    assert_eq!(xfcc, "");
    assert_eq!(proxy.stat("listener.main.ssl.no_certificate"), 1);

    // With one: it is still verified and forwarded.
    let client = s.client_ca.leaf("client two", &[], &[]);
    let tls = connect(
        proxy.addr(),
        client_config(&s.server_ca, Some(&client), &[]),
    )
    .await
    .unwrap();
    let (status, xfcc) = get(&mut h1(tls).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        xfcc,
        format!(
            "Hash={};Subject=\"CN=client two,O=Ringway Test\"",
            sha256_hex(&client.der)
        )
    );
    let stranger = s.other_ca.leaf("stranger", &[], &[]);
    assert!(
        refused(
            proxy.addr(),
            client_config(&s.server_ca, Some(&stranger), &[])
        )
        .await
    );
    wait_for("ssl.fail_verify_error", async || {
        proxy.stat("listener.main.ssl.fail_verify_error") == 1
    })
    .await;
    assert_eq!(proxy.stat("listener.main.ssl.no_certificate"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_without_client_certificates_strip_xfcc() {
    let backend = Backend::echo();
    // Plaintext.
    let proxy = Proxy::start(&one_route(backend.addr));
    let resp = raw_exchange(
        proxy.addr(),
        b"GET / HTTP/1.1\r\nhost: a\r\nx-forwarded-client-cert: Hash=00\r\nconnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&resp);
    assert_eq!(status_of(&resp), 200, "{text}");
    assert!(
        !text
            .to_ascii_lowercase()
            .contains("x-echo-h-x-forwarded-client-cert"),
        "{text}"
    );
    drop(proxy);

    // TLS without client_ca.
    let s = Setup::new("plain-tls");
    let proxy = Proxy::start(&config(&s.dir, backend.addr, ""));
    let tls = connect(proxy.addr(), client_config(&s.server_ca, None, &[]))
        .await
        .unwrap();
    let (status, xfcc) = get(&mut h1(tls).await).await;
    assert_eq!((status, xfcc.as_str()), (200, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_certificate_files_are_served_to_new_handshakes() {
    let s = Setup::new("reload");
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(&s.dir, backend.addr, ""));
    let served = async || {
        let tls = connect(proxy.addr(), client_config(&s.server_ca, None, &[]))
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    let old = served().await;
    let open = connect(proxy.addr(), client_config(&s.server_ca, None, &[]))
        .await
        .unwrap();
    let mut open = h1(open).await;
    assert_eq!(get(&mut open).await.0, 200);

    // Replaced on disk: new handshakes get the new certificate, the open connection goes on.
    let new = s.server_ca.leaf("a.example", &["a.example"], &[]);
    new.write(&s.dir, "server");
    wait_for("the new certificate served", async || {
        served().await == new.der
    })
    .await;
    assert_ne!(old, new.der);
    wait_for("ssl.certificate_reload", async || {
        proxy.stat("listener.main.ssl.certificate_reload") >= 1
    })
    .await;
    assert_eq!(get(&mut open).await.0, 200);

    // A broken replacement: counted, and the last good certificate stays.
    let errors = proxy.stat("listener.main.ssl.certificate_reload_error");
    let reloads = proxy.stat("listener.main.ssl.certificate_reload");
    std::fs::write(s.dir.path(".broken"), "not a certificate").unwrap();
    std::fs::rename(s.dir.path(".broken"), s.dir.path("server.pem")).unwrap();
    wait_for("the reload error", async || {
        proxy.stat("listener.main.ssl.certificate_reload_error") > errors
    })
    .await;
    assert_eq!(served().await, new.der);
    assert_eq!(proxy.stat("listener.main.ssl.certificate_reload"), reloads);
    assert_eq!(get(&mut open).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_reload_reads_certificates_and_client_ca_again() {
    let s = Setup::new("sighup");
    let backend = Backend::echo();
    // Proxy::reload puts its own [admin] first, so no top-level `workers` here.
    let proxy = Proxy::start(&config(&s.dir, backend.addr, "").replacen("workers = 1\n", "", 1));
    let anonymous = client_config(&s.server_ca, None, &[]);
    let served = async || {
        let tls = connect(proxy.addr(), anonymous.clone()).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    let old = served().await;

    // The same paths, new contents, and now client certificates are required.
    let new = s.server_ca.leaf("a.example", &["a.example"], &[]);
    new.write(&s.dir, "server");
    let reloaded = config(&s.dir, backend.addr, &client_ca_line(&s.dir));
    let reloaded = reloaded.replacen("workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n", "", 1);
    proxy.reload(&reloaded).unwrap();
    wait_for("client certificates required", async || {
        refused(proxy.addr(), anonymous.clone()).await
    })
    .await;
    let client = s.client_ca.leaf("client three", &[], &[]);
    let tls = connect(
        proxy.addr(),
        client_config(&s.server_ca, Some(&client), &[]),
    )
    .await
    .unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_ne!(presented, old);
    assert_eq!(presented, new.der);
    let (status, xfcc) = get(&mut h1(tls).await).await;
    assert_eq!(status, 200);
    assert!(xfcc.contains("CN=client three"), "{xfcc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_forwarded_with_their_identity() {
    let s = Setup::new("h2");
    let backend = Backend::echo();
    let proxy = Proxy::start(&config(&s.dir, backend.addr, &client_ca_line(&s.dir)));
    let client = s.client_ca.leaf("client h2", &[], &[]);
    let tls = connect(
        proxy.addr(),
        client_config(&s.server_ca, Some(&client), &[b"h2".as_slice()]),
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = Request::builder()
            .uri("https://a.example/echo")
            .header("x-forwarded-client-cert", "By=spoofed;Hash=00")
            .body(body(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(STEP, async {
            send.ready().await.unwrap();
            send.send_request(req).await.unwrap()
        })
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-echo-h-x-forwarded-client-cert"],
            format!(
                "Hash={};Subject=\"CN=client h2,O=Ringway Test\"",
                sha256_hex(&client.der)
            )
            .as_str()
        );
        read_body(resp).await;
    }
}

/// Routes see the verified identity as `x-forwarded-client-cert` (the value ringway forwards),
/// never a value the client sent: header matchers on it route by who the client proved to be,
/// over HTTP/1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_match_the_verified_client_identity() {
    let s = Setup::new("identity-routes");
    let backend = Backend::echo();
    let routes = r#"
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    headers = [ { name = "x-forwarded-client-cert", regex = '.*;Subject="CN=admin,.*' } ]
    direct_response = { status = 200, body = "admin" }
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    headers = [ { name = "x-forwarded-client-cert", present = true } ]
    direct_response = { status = 200, body = "verified" }
    [[listeners.virtual_hosts.routes]]
    prefix = "/"
    direct_response = { status = 200, body = "anonymous" }
"#;
    let extra = format!("{}\n  client_auth = \"optional\"", client_ca_line(&s.dir));
    let cfg = config(&s.dir, backend.addr, &extra).replacen(
        "    [[listeners.virtual_hosts.routes]]\n    prefix = \"/\"\n    cluster = \"backend\"\n",
        routes,
        1,
    );
    let proxy = Proxy::start(&cfg);
    let admin = s.client_ca.leaf("admin", &[], &[]);
    let other = s.client_ca.leaf("someone", &[], &[]);
    let spoof = "Hash=00;Subject=\"CN=admin,O=Ringway Test\"";
    for (cert, want) in [
        (Some(&admin), "admin"),
        (Some(&other), "verified"),
        (None, "anonymous"),
    ] {
        // HTTP/1.1, with a spoofed identity of the client's own.
        let tls = connect(proxy.addr(), client_config(&s.server_ca, cert, &[]))
            .await
            .unwrap();
        let mut send = h1(tls).await;
        let req = Request::builder()
            .uri("/")
            .header("host", "a.example")
            .header("x-forwarded-client-cert", spoof)
            .body(body(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(STEP, send.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_body(resp).await, want, "http/1.1");

        // HTTP/2.
        let tls = connect(
            proxy.addr(),
            client_config(&s.server_ca, cert, &[b"h2".as_slice()]),
        )
        .await
        .unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake(TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .uri("https://a.example/")
            .header("x-forwarded-client-cert", spoof)
            .body(body(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(STEP, send.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_body(resp).await, want, "h2");
    }
}
