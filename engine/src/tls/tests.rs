//! TLS termination over real loopback sockets: a monoio runtime in a thread accepts with
//! [`accept`] and serves over [`TlsStream`]; tokio-rustls is the independent client.
//! Certificates are generated with rcgen in each test (a CA and leaves it signs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore};
use rustls::{ServerConfig, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::rt::timer;

/// Generous bound for any single step on a loaded CI machine.
const STEP: Duration = Duration::from_secs(60);
/// Client version lists.
static V12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
static V13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

// ---------------------------------------------------------------- certificates and settings

/// A CA and leaf certificates written as PEM files in a private directory.
struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// One leaf: its files and DER (to recognise it on the client side).
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new(test: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringway-tls-{}-{test}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { dir, ca }
    }

    /// A leaf for `sans`, signed by the CA, written as `<name>.pem` / `<name>-key.pem`.
    fn leaf(&self, name: &str, sans: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}-key.pem")),
        );
        // The chain: leaf then CA.
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.ca.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Leaf {
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn source(leaf: &Leaf, names: Option<&[&str]>) -> CertificateSource {
    CertificateSource {
        cert: leaf.cert.clone(),
        key: leaf.key.clone(),
        server_names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
    }
}

fn settings(certificates: Vec<CertificateSource>) -> TlsSettings {
    TlsSettings {
        certificates,
        alpn: vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
        min_version: TlsVersion::Tls12,
        cipher_suites: None,
        session_tickets: true,
        session_cache_size: DEFAULT_SESSION_CACHE_SIZE,
        handshake_timeout: STEP,
        client_ca: None,
        client_cert_required: false,
        client_allowed_names: Vec::new(),
    }
}

// ---------------------------------------------------------------- the monoio server side

/// What a served connection does after the handshake.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Echo until the client's close_notify, then send ours.
    Echo,
    /// Read 1 byte, check that `readable` is ready at once (the rest of the record is
    /// decrypted already), then echo.
    SmallReadThenEcho,
    /// Through split halves at the same time: read everything (checksum) and send `n` bytes
    /// of the test pattern, then close_notify; then reunite.
    Duplex(usize),
}

/// How a served connection went.
#[derive(Debug)]
struct Served {
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    version: Option<ProtocolVersion>,
    cipher: Option<rustls::CipherSuite>,
    resumed: bool,
    /// How reading ended: `Ok(bytes read)` after close_notify, or the error kind.
    end: Result<u64, std::io::ErrorKind>,
    /// Checksum of everything read (Duplex).
    checksum: u64,
    reunited: bool,
    readable_at_once: bool,
}

type Outcome = Result<Served, TlsError>;

/// A monoio runtime in a thread that accepts `conns` connections and serves each in `mode`.
struct Server {
    addr: SocketAddr,
    outcomes: mpsc::Receiver<Outcome>,
}

#[derive(Clone, Copy)]
enum Driver {
    /// io_uring where the kernel allows it, else epoll (what the workers do).
    Fusion,
    /// The epoll driver (some containers block io_uring).
    Legacy,
}

impl Server {
    fn start(config: Arc<ServerConfig>, timeout: Duration, mode: Mode, conns: usize) -> Self {
        Self::start_on(Driver::Fusion, config, timeout, mode, conns, 0)
    }

    /// `prefetch > 0`: read up to that many bytes from each connection before the handshake
    /// and hand them to [`accept`] (as the listener does with bytes after a PROXY header).
    fn start_on(
        driver: Driver,
        config: Arc<ServerConfig>,
        timeout: Duration,
        mode: Mode,
        conns: usize,
        prefetch: usize,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::channel();
        std::thread::spawn(move || {
            let serve = serve(listener, config, timeout, mode, conns, prefetch, tx);
            match driver {
                Driver::Fusion => monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap()
                    .block_on(serve),
                Driver::Legacy => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap()
                    .block_on(serve),
            }
        });
        Self { addr, outcomes }
    }

    /// The next connection's outcome.
    fn outcome(&self) -> Outcome {
        self.outcomes
            .recv_timeout(STEP)
            .expect("the server reports every connection")
    }

    fn served(&self) -> Served {
        self.outcome()
            .unwrap_or_else(|e| panic!("accept failed: {e}"))
    }
}

async fn serve(
    listener: std::net::TcpListener,
    config: Arc<ServerConfig>,
    timeout: Duration,
    mode: Mode,
    conns: usize,
    prefetch: usize,
    tx: mpsc::Sender<Outcome>,
) {
    listener.set_nonblocking(true).unwrap();
    let listener = monoio::net::TcpListener::from_std(listener).unwrap();
    // The workers' coarse timer needs its ticker (the worker runs one per runtime).
    let ticker = monoio::spawn(timer::ticker());
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let (config, tx) = (config.clone(), tx.clone());
        tasks.push(monoio::spawn(async move {
            let deadline = Instant::now() + timeout;
            let mut first = bytes::BytesMut::new();
            if prefetch > 0 {
                let (res, buf) = tcp.read(bytes::BytesMut::with_capacity(prefetch)).await;
                res.unwrap();
                first = buf;
            }
            let outcome = match accept(tcp, first, config, deadline).await {
                Ok(stream) => Ok(serve_one(stream, mode).await),
                Err(e) => Err(e),
            };
            let _ = tx.send(outcome);
        }));
    }
    for t in tasks {
        t.await;
    }
    drop(ticker);
}

async fn serve_one(mut stream: TlsStream, mode: Mode) -> Served {
    let mut served = Served {
        sni: stream.sni(),
        alpn: stream.alpn(),
        version: stream.protocol_version(),
        cipher: stream.cipher_suite().map(|s| s.suite()),
        resumed: stream.is_resumed(),
        end: Ok(0),
        checksum: 0,
        reunited: false,
        readable_at_once: false,
    };
    assert_eq!(stream.is_h2(), served.alpn.as_deref() == Some(ALPN_H2));
    assert!(stream.peer_certificates().is_none());
    assert!(stream.tcp().peer_addr().is_ok());
    match mode {
        Mode::Echo => served.end = echo(&mut stream, 0).await,
        Mode::SmallReadThenEcho => {
            stream.readable(false).await.unwrap();
            let (r, one) = stream.read(Vec::with_capacity(1)).await;
            assert_eq!(r.unwrap(), 1);
            served.readable_at_once = ready_now(stream.readable(false));
            let (r, _) = stream.write_all(one).await;
            r.unwrap();
            served.end = echo(&mut stream, 1).await;
        }
        Mode::Duplex(n) => {
            let (mut r, mut w) = stream.into_split();
            let reading = async {
                let mut sum = Checksum::default();
                let mut total = 0u64;
                let mut buf = bytes::BytesMut::with_capacity(16 * 1024);
                loop {
                    buf.clear();
                    let (res, b) = r.read(buf).await;
                    buf = b;
                    match res {
                        Ok(0) => return (Ok(total), sum.0),
                        Ok(k) => {
                            sum.add(&buf[..k]);
                            total += k as u64;
                        }
                        Err(e) => return (Err(e.kind()), sum.0),
                    }
                }
            };
            let writing = async {
                let mut pattern = Pattern::default();
                let mut left = n;
                while left > 0 {
                    let k = left.min(40_000);
                    let (res, _) = w.write_all(pattern.next(k)).await;
                    res.unwrap();
                    left -= k;
                }
                w.shutdown().await.unwrap();
            };
            let ((end, sum), ()) = monoio::join!(reading, writing);
            served.end = end;
            served.checksum = sum;
            served.reunited = r.reunite(w).is_ok();
        }
    }
    served
}

/// Echoes until the end of the stream; on close_notify sends ours. Returns the bytes read.
async fn echo(stream: &mut TlsStream, mut total: u64) -> Result<u64, std::io::ErrorKind> {
    loop {
        // Idle like the HTTP code: no buffer until readable.
        if let Err(e) = stream.readable(false).await {
            return Err(e.kind());
        }
        let (r, buf) = stream.read(Vec::with_capacity(7000)).await;
        match r {
            Ok(0) => {
                stream.shutdown().await.map_err(|e| e.kind())?;
                return Ok(total);
            }
            Ok(n) => {
                total += n as u64;
                let (r, _) = stream.write_all(buf).await;
                r.map_err(|e| e.kind())?;
            }
            Err(e) => return Err(e.kind()),
        }
    }
}

/// Whether a future completes on its first poll.
fn ready_now<F: Future>(f: F) -> bool {
    let mut f = pin!(f);
    matches!(
        f.as_mut().poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(_)
    )
}

/// Deterministic test bytes.
#[derive(Default)]
struct Pattern(u64);

impl Pattern {
    fn next(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (self.0 >> 56) as u8
            })
            .collect()
    }
}

/// FNV-1a over a byte stream (order-sensitive, so reordering or loss shows).
struct Checksum(u64);

impl Default for Checksum {
    fn default() -> Self {
        Self(0xcbf29ce484222325)
    }
}

impl Checksum {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
}

// ---------------------------------------------------------------- the tokio-rustls client side

/// Accepts any server certificate (so a test can see which one was picked for any name).
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

/// Client knobs.
struct Client {
    roots: Option<RootCertStore>,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
    alpn: Vec<Vec<u8>>,
    sni: bool,
}

impl Client {
    fn verifying(pki: &Pki) -> Self {
        Self {
            roots: Some(pki.roots()),
            ..Self::any()
        }
    }

    fn any() -> Self {
        Self {
            roots: None,
            versions: rustls::ALL_VERSIONS,
            alpn: Vec::new(),
            sni: true,
        }
    }

    fn config(self) -> Arc<ClientConfig> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(self.versions)
            .unwrap();
        let mut config = match self.roots {
            Some(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                .with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        config.enable_sni = self.sni;
        Arc::new(config)
    }
}

type ClientStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<ClientStream> {
    let tcp = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(addr)).await??;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio::time::timeout(
        STEP,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await?
}

/// Sends `msg`, reads its echo, then closes with close_notify and reads to the server's.
async fn ping(stream: &mut ClientStream, msg: &[u8]) {
    tokio::time::timeout(STEP, async {
        stream.write_all(msg).await.unwrap();
        let mut back = vec![0; msg.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    })
    .await
    .unwrap();
}

/// The leaf certificate the server presented.
fn presented(stream: &ClientStream) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

// ---------------------------------------------------------------- the tests

#[test]
fn sni_picks_exact_wildcard_and_default_certificates() {
    let pki = Pki::new("sni");
    let default = pki.leaf("default", &["default.example"]);
    let a = pki.leaf("a", &["a.example"]);
    let b = pki.leaf("b", &["*.b.example"]);
    let c = pki.leaf("c", &["c.example"]);
    let tls = ServerTls::build(&settings(vec![
        source(&default, None),
        source(&a, None),
        source(&b, None),
        // Explicit names replace the certificate's own.
        source(&c, Some(&["c.example", "*.c.example", "other.example"])),
    ]))
    .unwrap();
    let cases: &[(&str, bool, &Leaf)] = &[
        ("a.example", true, &a),
        ("A.Example", true, &a),
        ("x.b.example", true, &b),
        ("deep.x.b.example", true, &b),
        ("b.example", true, &default),
        ("c.example", true, &c),
        ("y.c.example", true, &c),
        ("other.example", true, &c),
        ("unknown.example", true, &default),
        ("a.example", false, &default),
    ];
    let server = Server::start(
        tls.server_config(true).clone(),
        STEP,
        Mode::Echo,
        cases.len(),
    );
    let rt = runtime();
    for (name, sni, want) in cases {
        let config = Client {
            sni: *sni,
            ..Client::any()
        }
        .config();
        rt.block_on(async {
            let mut s = connect(server.addr, config, name).await.unwrap();
            assert_eq!(presented(&s), want.der, "{name} (sni {sni})");
            ping(&mut s, b"hello").await;
        });
        let served = server.served();
        let want_sni = sni.then(|| name.to_ascii_lowercase());
        assert_eq!(served.sni, want_sni);
        assert_eq!(served.end, Ok(5));
    }
}

#[test]
fn verifying_client_accepts_the_chain_for_exact_and_wildcard_names() {
    let pki = Pki::new("verify");
    let a = pki.leaf("a", &["a.example"]);
    let b = pki.leaf("b", &["*.b.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None), source(&b, None)])).unwrap();
    let server = Server::start(tls.server_config(false).clone(), STEP, Mode::Echo, 2);
    let rt = runtime();
    for name in ["a.example", "www.b.example"] {
        rt.block_on(async {
            let mut s = connect(server.addr, Client::verifying(&pki).config(), name)
                .await
                .unwrap();
            ping(&mut s, b"verified").await;
        });
        assert_eq!(server.served().end, Ok(8));
    }
}

#[test]
fn alpn_offers_h2_only_when_the_caller_serves_it() {
    let pki = Pki::new("alpn");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let both = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // (serve_h2, client offer, negotiated: Some(protocol) or None for a refused handshake)
    type Case = (bool, Vec<Vec<u8>>, Option<Option<&'static [u8]>>);
    let cases: Vec<Case> = vec![
        (true, both.clone(), Some(Some(b"h2"))),
        (false, both, Some(Some(b"http/1.1"))),
        (true, vec![b"http/1.1".to_vec()], Some(Some(b"http/1.1"))),
        (true, Vec::new(), Some(None)),
        (false, vec![b"h2".to_vec()], None),
    ];
    let rt = runtime();
    for (serve_h2, offer, want) in cases {
        let server = Server::start(tls.server_config(serve_h2).clone(), STEP, Mode::Echo, 1);
        let config = Client {
            alpn: offer.clone(),
            ..Client::verifying(&pki)
        }
        .config();
        let client = rt.block_on(async {
            let mut s = connect(server.addr, config, "a.example").await?;
            assert_eq!(s.get_ref().1.alpn_protocol(), want.flatten());
            ping(&mut s, b"x").await;
            Ok::<_, std::io::Error>(())
        });
        match want {
            Some(protocol) => {
                client.unwrap();
                assert_eq!(server.served().alpn.as_deref(), protocol);
            }
            None => {
                assert!(client.is_err(), "{offer:?} must be refused");
                match server.outcome() {
                    Err(TlsError::Handshake {
                        reason: rustls::Error::NoApplicationProtocol,
                    }) => {}
                    other => panic!("expected no_application_protocol, got {other:?}"),
                }
            }
        }
    }
}

#[test]
fn tls12_and_tls13_both_work_and_min_version_13_refuses_12() {
    let pki = Pki::new("versions");
    let a = pki.leaf("a", &["a.example"]);
    let any = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let only13 = ServerTls::build(&TlsSettings {
        min_version: TlsVersion::Tls13,
        ..settings(vec![source(&a, None)])
    })
    .unwrap();
    let rt = runtime();
    for (versions, want) in [
        (V12, ProtocolVersion::TLSv1_2),
        (V13, ProtocolVersion::TLSv1_3),
        (rustls::ALL_VERSIONS, ProtocolVersion::TLSv1_3),
    ] {
        let server = Server::start(any.server_config(false).clone(), STEP, Mode::Echo, 1);
        let config = Client {
            versions,
            ..Client::verifying(&pki)
        }
        .config();
        rt.block_on(async {
            let mut s = connect(server.addr, config, "a.example").await.unwrap();
            assert_eq!(s.get_ref().1.protocol_version(), Some(want));
            ping(&mut s, b"v").await;
        });
        let served = server.served();
        assert_eq!(served.version, Some(want));
        assert!(served.cipher.is_some());
    }

    let server = Server::start(only13.server_config(false).clone(), STEP, Mode::Echo, 1);
    let config = Client {
        versions: V12,
        ..Client::verifying(&pki)
    }
    .config();
    let client = rt.block_on(connect(server.addr, config, "a.example"));
    assert!(client.is_err(), "a TLS 1.2-only client must be refused");
    match server.outcome() {
        Err(TlsError::Handshake { reason }) => {
            assert!(
                matches!(reason, rustls::Error::PeerIncompatible(_)),
                "{reason:?}"
            );
        }
        other => panic!("expected a handshake failure, got {other:?}"),
    }
}

#[test]
fn cipher_suite_list_limits_what_is_negotiated() {
    let pki = Pki::new("ciphers");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&TlsSettings {
        cipher_suites: Some(vec![
            "TLS13_CHACHA20_POLY1305_SHA256".into(),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        ]),
        ..settings(vec![source(&a, None)])
    })
    .unwrap();
    let rt = runtime();
    for (versions, want) in [
        (V13, rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
        (
            V12,
            rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ] {
        let server = Server::start(tls.server_config(false).clone(), STEP, Mode::Echo, 1);
        let config = Client {
            versions,
            ..Client::verifying(&pki)
        }
        .config();
        rt.block_on(async {
            let mut s = connect(server.addr, config, "a.example").await.unwrap();
            ping(&mut s, b"c").await;
        });
        assert_eq!(server.served().cipher, Some(want));
    }
}

#[test]
fn non_tls_clients_are_refused_with_typed_errors() {
    let pki = Pki::new("garbage");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let server = Server::start(tls.server_config(false).clone(), STEP, Mode::Echo, 3);
    let rt = runtime();
    let send = |bytes: &'static [u8]| {
        rt.block_on(async {
            let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            tcp.write_all(bytes).await.unwrap();
            // Whatever the server answers (an alert or nothing), it then closes.
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut sink)).await;
        })
    };

    send(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
    match server.outcome() {
        Err(TlsError::NotTls { first_byte: b'G' }) => {}
        other => panic!("expected NotTls, got {other:?}"),
    }
    // A handshake record header followed by nonsense.
    send(b"\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff");
    match server.outcome() {
        Err(e @ TlsError::Handshake { .. }) => assert!(e.alert_received().is_none()),
        other => panic!("expected a handshake failure, got {other:?}"),
    }
    // Connected and closed at once.
    rt.block_on(async {
        drop(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    });
    match server.outcome() {
        Err(TlsError::Closed | TlsError::Io(_)) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn bytes_read_before_the_handshake_are_fed_to_it() {
    let pki = Pki::new("prefetch");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let config = tls.server_config(false).clone();
    // Part of the record header, a whole first read, and a plaintext first byte.
    for prefetch in [3, 16 * 1024] {
        let server = Server::start_on(
            Driver::Fusion,
            config.clone(),
            STEP,
            Mode::Echo,
            1,
            prefetch,
        );
        let rt = runtime();
        rt.block_on(async {
            let mut s = connect(server.addr, Client::verifying(&pki).config(), "a.example")
                .await
                .unwrap();
            ping(&mut s, b"after a prefetch").await;
        });
        assert_eq!(server.served().end, Ok(16), "prefetch {prefetch}");
    }
    let server = Server::start_on(Driver::Fusion, config, STEP, Mode::Echo, 1, 4);
    let rt = runtime();
    rt.block_on(async {
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut sink)).await;
    });
    match server.outcome() {
        Err(TlsError::NotTls { first_byte: b'G' }) => {}
        other => panic!("expected NotTls, got {other:?}"),
    }
}

#[test]
fn handshake_timeout_fires() {
    let pki = Pki::new("timeout");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let server = Server::start(
        tls.server_config(false).clone(),
        Duration::from_millis(200),
        Mode::Echo,
        2,
    );
    let rt = runtime();
    rt.block_on(async {
        // Silent client.
        let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        assert!(matches!(server.outcome(), Err(TlsError::Timeout)));
        // Half a ClientHello record, then silence.
        let mut partial = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        partial
            .write_all(b"\x16\x03\x01\x02\x00\x01")
            .await
            .unwrap();
        assert!(matches!(server.outcome(), Err(TlsError::Timeout)));
    });
}

#[test]
fn sessions_resume_by_ticket_and_by_cache() {
    let pki = Pki::new("resume");
    let a = pki.leaf("a", &["a.example"]);
    let tickets = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let cache_only = ServerTls::build(&TlsSettings {
        session_tickets: false,
        ..settings(vec![source(&a, None)])
    })
    .unwrap();
    let neither = ServerTls::build(&TlsSettings {
        session_tickets: false,
        session_cache_size: 0,
        ..settings(vec![source(&a, None)])
    })
    .unwrap();
    let rt = runtime();
    for (tls, resumes) in [(&tickets, true), (&cache_only, true), (&neither, false)] {
        for versions in [V12, V13] {
            let server = Server::start(tls.server_config(false).clone(), STEP, Mode::Echo, 2);
            // One client config: it keeps the session it was given for the second connection.
            let config = Client {
                versions,
                ..Client::verifying(&pki)
            }
            .config();
            for round in 0..2 {
                rt.block_on(async {
                    let mut s = connect(server.addr, config.clone(), "a.example")
                        .await
                        .unwrap();
                    ping(&mut s, b"resume me").await;
                });
                let served = server.served();
                let want = round == 1 && resumes;
                assert_eq!(served.resumed, want, "round {round}, {versions:?}");
            }
        }
    }
}

#[test]
fn large_transfer_through_split_halves_both_ways() {
    for driver in [Driver::Fusion, Driver::Legacy] {
        let pki = Pki::new("large");
        let a = pki.leaf("a", &["a.example"]);
        let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
        const N: usize = 16 * 1024 * 1024 + 12345;
        let server = Server::start_on(
            driver,
            tls.server_config(false).clone(),
            STEP,
            Mode::Duplex(N),
            1,
            0,
        );
        let rt = runtime();
        let (sent, received) = rt.block_on(async {
            let s = connect(server.addr, Client::verifying(&pki).config(), "a.example")
                .await
                .unwrap();
            let (mut r, mut w) = tokio::io::split(s);
            let writing = async {
                let mut pattern = Pattern::default();
                let mut sum = Checksum::default();
                let mut left = N;
                while left > 0 {
                    let chunk = pattern.next(left.min(50_000));
                    sum.add(&chunk);
                    w.write_all(&chunk).await.unwrap();
                    left -= chunk.len();
                }
                w.shutdown().await.unwrap();
                sum.0
            };
            let reading = async {
                let mut sum = Checksum::default();
                let mut total = 0;
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = r.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return (total, sum.0);
                    }
                    sum.add(&buf[..n]);
                    total += n;
                }
            };
            tokio::time::timeout(Duration::from_secs(300), async {
                tokio::join!(writing, reading)
            })
            .await
            .unwrap()
        });
        let mut expected = Checksum::default();
        expected.add(&Pattern::default().next(N));
        assert_eq!(received, (N, expected.0), "server -> client");
        let served = server.served();
        assert_eq!(served.end, Ok(N as u64));
        assert_eq!(served.checksum, sent, "client -> server");
        assert!(served.reunited);
    }
}

#[test]
fn close_notify_half_close_and_unclean_end() {
    let pki = Pki::new("close");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let server = Server::start(tls.server_config(false).clone(), STEP, Mode::Echo, 2);
    let rt = runtime();
    rt.block_on(async {
        // Half-close: the client sends close_notify + FIN first and still reads the echo and
        // then the server's close_notify.
        let mut s = connect(server.addr, Client::verifying(&pki).config(), "a.example")
            .await
            .unwrap();
        s.write_all(b"last words").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        tokio::time::timeout(STEP, s.read_to_end(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, b"last words");
        assert!(!s.get_ref().1.is_handshaking());
    });
    assert_eq!(server.served().end, Ok(10));
    rt.block_on(async {
        // Unclean: TCP FIN without close_notify.
        let s = connect(server.addr, Client::verifying(&pki).config(), "a.example")
            .await
            .unwrap();
        let (mut tcp, _) = s.into_inner();
        tcp.shutdown().await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut sink)).await;
    });
    assert_eq!(server.served().end, Err(std::io::ErrorKind::UnexpectedEof));
}

#[test]
fn readable_is_ready_at_once_when_plaintext_is_buffered() {
    let pki = Pki::new("readable");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let server = Server::start(
        tls.server_config(false).clone(),
        STEP,
        Mode::SmallReadThenEcho,
        1,
    );
    const MSG: &[u8] = b"one record, read one byte first";
    runtime().block_on(async {
        let mut s = connect(server.addr, Client::verifying(&pki).config(), "a.example")
            .await
            .unwrap();
        ping(&mut s, MSG).await;
    });
    let served = server.served();
    assert!(served.readable_at_once);
    assert_eq!(served.end, Ok(MSG.len() as u64));
}

#[test]
fn key_updates_from_the_client_are_answered() {
    let pki = Pki::new("keyupdate");
    let a = pki.leaf("a", &["a.example"]);
    let tls = ServerTls::build(&settings(vec![source(&a, None)])).unwrap();
    let server = Server::start(tls.server_config(false).clone(), STEP, Mode::Echo, 1);
    runtime().block_on(async {
        let mut s = connect(server.addr, Client::verifying(&pki).config(), "a.example")
            .await
            .unwrap();
        for i in 0..5u8 {
            s.get_mut().1.refresh_traffic_keys().unwrap();
            let msg = [i; 3000];
            s.write_all(&msg).await.unwrap();
            let mut back = [0; 3000];
            tokio::time::timeout(STEP, s.read_exact(&mut back))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(back, msg);
        }
        ping(&mut s, b"done").await;
    });
    assert_eq!(server.served().end, Ok(5 * 3000 + 4));
}

#[test]
fn settings_errors_name_the_field_and_the_file() {
    let pki = Pki::new("errors");
    let a = pki.leaf("a", &["a.example"]);
    let b = pki.leaf("b", &["b.example"]);
    let build = |s: TlsSettings| ServerTls::build(&s).unwrap_err();

    let missing = pki.dir.join("missing.pem");
    let e = build(settings(vec![CertificateSource {
        cert: missing,
        ..source(&a, None)
    }]));
    assert_eq!(e.field, "certificates[0].cert");
    assert!(
        e.reason.contains("missing.pem") && e.reason.contains("cannot read"),
        "{e}"
    );

    let e = build(settings(vec![
        source(&a, None),
        CertificateSource {
            key: a.cert.clone(),
            ..source(&b, None)
        },
    ]));
    assert_eq!(e.field, "certificates[1].key");
    assert!(e.reason.contains("a.pem"), "{e}");

    // A key that is not the certificate's.
    let e = build(settings(vec![CertificateSource {
        key: b.key.clone(),
        ..source(&a, None)
    }]));
    assert_eq!(e.field, "certificates[0].key");
    assert!(e.reason.contains("does not fit"), "{e}");

    let garbage = pki.dir.join("garbage.pem");
    std::fs::write(&garbage, "not pem at all").unwrap();
    let e = build(settings(vec![CertificateSource {
        cert: garbage,
        ..source(&a, None)
    }]));
    assert_eq!(e.field, "certificates[0].cert");

    let e = build(settings(vec![
        source(&a, Some(&["x.example"])),
        source(&b, Some(&["y.example", "x.example"])),
    ]));
    assert_eq!(e.field, "certificates[1].server_names[1]");
    assert!(e.reason.contains("certificates[0]"), "{e}");

    let e = build(TlsSettings {
        cipher_suites: Some(vec!["TLS13_AES_128_GCM_SHA256".into(), "RC4".into()]),
        ..settings(vec![source(&a, None)])
    });
    assert_eq!(e.field, "cipher_suites[1]");

    // Only TLS 1.2 suites with TLS 1.3 required: nothing usable.
    let e = build(TlsSettings {
        cipher_suites: Some(vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()]),
        min_version: TlsVersion::Tls13,
        ..settings(vec![source(&a, None)])
    });
    assert_eq!(e.field, "cipher_suites");

    let e = build(settings(Vec::new()));
    assert_eq!(e.field, "certificates");
}

#[test]
fn server_names_are_checked() {
    assert_eq!(check_server_name("A.Example").unwrap(), "a.example");
    assert_eq!(check_server_name("*.b.example").unwrap(), "*.b.example");
    for bad in [
        "*",
        "a.*.example",
        "*a.example",
        "",
        "exa mple.com",
        "127.0.0.1",
    ] {
        assert!(check_server_name(bad).is_err(), "{bad:?}");
    }
}
