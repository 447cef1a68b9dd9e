//! SNI routing on tcp listeners (`[[listeners.tcp.sni]]`) and access logs on tcp listeners,
//! end to end on loopback.
//!
//! Passthrough: TLS backends (tokio-rustls servers, each with its own rcgen certificate)
//! behind one tcp listener that peeks at the ClientHello without terminating TLS; tokio-rustls
//! clients see the certificate of the backend their SNI picked and get their bytes echoed.
//! Covers exact, wildcard and unknown names (the fallback `cluster`, or a close when there is
//! none), plain bytes (to the fallback), a ClientHello split across two writes after a PROXY
//! header (a synchronous rustls client over a std socket), the inspect timeout, malformed and
//! oversized ClientHellos. Terminated: `[listeners.tls]` with two certificates, the SNI rustls
//! saw picks the plaintext backend. Access logs: JSON and the default format, byte counts,
//! upstream host, `UF` for a refused upstream. Config errors: each SNI validation case with its
//! line. `RINGWAY_TEST_DRIVER=legacy` runs them on the epoll driver.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use support::pki::{Leaf, Pki};
use support::{Proxy, closed_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous bound for one step on a loaded CI machine.
const STEP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- certificates

/// A client trusting `pki`'s CA.
fn client(pki: &Pki) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(pki.roots())
            .with_no_client_auth(),
    )
}

// ---------------------------------------------------------------- backends

/// A TLS echo server (tokio-rustls) presenting `leaf`: echoes until the client's
/// close_notify, then closes cleanly.
async fn tls_echo(leaf: &Leaf) -> SocketAddr {
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                let (mut r, mut w) = tokio::io::split(tls);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A plaintext backend (std threads) that writes `tag` and then echoes until end of stream.
fn tagged_echo(tag: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            thread::spawn(move || {
                if s.write_all(tag.as_bytes()).is_err() {
                    return;
                }
                let mut buf = [0u8; 16 * 1024];
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

// ---------------------------------------------------------------- clients

type ClientStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection through the proxy with SNI `name`.
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

/// The leaf certificate the server presented.
fn presented(tls: &ClientStream) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Sends `data`, half-closes (close_notify) and reads everything back.
async fn echo_round(mut tls: ClientStream, data: &[u8]) -> Vec<u8> {
    tls.write_all(data).await.unwrap();
    tls.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(STEP, tls.read_to_end(&mut back))
        .await
        .expect("echo in time")
        .expect("clean end");
    back
}

/// Waits (bounded) until the server closes `s`: a read gives 0 bytes or an error.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut b = [0u8; 64];
    for _ in 0..1000 {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
    false
}

/// The raw first flight (a ClientHello) a rustls client sends for `name`, with the client
/// to finish the handshake.
fn client_hello(config: Arc<ClientConfig>, name: &str) -> (rustls::ClientConnection, Vec<u8>) {
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from(name.to_owned()).unwrap())
            .unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    (conn, hello)
}

// ---------------------------------------------------------------- configs

/// One tcp listener `edge` (plus `extra` lines in it) and clusters `name -> endpoint`.
fn config(listener: &str, clusters: &[(&str, SocketAddr)]) -> String {
    let mut c = format!(
        "workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n[[listeners]]\nname = \"edge\"\n\
         address = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n{listener}\n"
    );
    for (name, ep) in clusters {
        c.push_str(&format!(
            "[[clusters]]\nname = \"{name}\"\nendpoints = [\"{ep}\"]\nconnect_timeout = \"5s\"\n"
        ));
    }
    c
}

const ROUTES: &str = r#"  [[listeners.tcp.sni]]
  server_names = ["a.example"]
  cluster = "a"
  [[listeners.tcp.sni]]
  server_names = ["b.example", "*.w.example"]
  cluster = "b"
  [[listeners.tcp.sni]]
  server_names = ["*.example"]
  cluster = "wild"
"#;

// ---------------------------------------------------------------- passthrough

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_routes_each_server_name_to_its_backend() {
    let pki = Pki::new("pass");
    let a = pki.leaf("a", &["a.example"]);
    let b = pki.leaf("b", &["b.example", "*.w.example"]);
    let wild = pki.leaf("wild", &["zz.example"]); // webpki refuses a certificate for *.example
    let fallback = pki.leaf("fallback", &["other.test"]);
    let (ea, eb, ew, ef) = (
        tls_echo(&a).await,
        tls_echo(&b).await,
        tls_echo(&wild).await,
        tls_echo(&fallback).await,
    );
    let proxy = Proxy::start(&config(
        &format!("cluster = \"fallback\"\n{ROUTES}"),
        &[("a", ea), ("b", eb), ("wild", ew), ("fallback", ef)],
    ));
    let client = client(&pki);
    // (server name sent, the backend certificate expected)
    let cases = [
        ("a.example", &a),
        ("b.example", &b),
        ("x.w.example", &b),   // *.w.example beats *.example (longer suffix)
        ("zz.example", &wild), // a wildcard
        ("A.EXAMPLE", &a),     // any case
        ("other.test", &fallback),
    ];
    for (i, (name, leaf)) in cases.iter().enumerate() {
        let tls = connect(proxy.addr(), client.clone(), name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            presented(&tls) == leaf.der,
            "{name} reached the wrong backend"
        );
        let data = format!("hello {name} {i} ").repeat(1000);
        assert_eq!(echo_round(tls, data.as_bytes()).await, data.as_bytes());
    }
    proxy.eventually("connections counted", |p| {
        p.stat("tcp.edge.downstream_cx_active") == 0
            && p.stat("listener.edge.downstream_cx_destroy") == 6
    });
    for (stat, want) in [
        ("tcp.edge.tls_inspector.tls_found", 6),
        ("tcp.edge.tls_inspector.sni_found", 6),
        ("tcp.edge.tls_inspector.tls_not_found", 0),
        ("tcp.edge.downstream_cx_total", 6),
        ("tcp.edge.downstream_cx_no_route", 0),
        ("cluster.a.upstream_cx_total", 2),
        ("cluster.b.upstream_cx_total", 2),
        ("cluster.wild.upstream_cx_total", 1),
        ("cluster.fallback.upstream_cx_total", 1),
        ("listener.edge.downstream_cx_destroy", 6),
    ] {
        assert_eq!(proxy.stat(stat), want, "{stat}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fallback_unknown_names_and_plain_bytes_are_closed_and_counted() {
    let pki = Pki::new("nofallback");
    let a = pki.leaf("a", &["a.example"]);
    let ea = tls_echo(&a).await;
    let proxy = Proxy::start(&config(
        "  [[listeners.tcp.sni]]\n  server_names = [\"a.example\"]\n  cluster = \"a\"\n",
        &[("a", ea)],
    ));
    assert!(
        connect(proxy.addr(), client(&pki), "b.example")
            .await
            .is_err(),
        "no route: the handshake cannot finish"
    );
    let mut plain = TcpStream::connect(proxy.addr()).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed_by_server(&mut plain));
    // A client that sends no SNI at all.
    let (_, hello) = client_hello(client(&pki), "127.0.0.1");
    let mut raw = TcpStream::connect(proxy.addr()).unwrap();
    raw.write_all(&hello).unwrap();
    assert!(closed_by_server(&mut raw));
    proxy.eventually("no route counted", |p| {
        p.stat("tcp.edge.downstream_cx_no_route") == 3
            && p.stat("tcp.edge.downstream_cx_active") == 0
    });
    assert_eq!(proxy.stat("tcp.edge.tls_inspector.tls_not_found"), 1);
    assert_eq!(proxy.stat("tcp.edge.tls_inspector.sni_found"), 1);
    assert_eq!(proxy.stat("tcp.edge.tls_inspector.sni_not_found"), 1);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_total"), 0);
    // The route still works.
    let tls = connect(proxy.addr(), client(&pki), "a.example")
        .await
        .unwrap();
    assert_eq!(echo_round(tls, b"still there").await, b"still there");
}

#[test]
fn plain_bytes_go_to_the_fallback_cluster() {
    let pki = Pki::new("plain");
    let proxy = Proxy::start(&config(
        &format!("cluster = \"fallback\"\n{ROUTES}"),
        &[
            ("a", closed_port()),
            ("b", closed_port()),
            ("wild", closed_port()),
            ("fallback", tagged_echo("fallback:")),
        ],
    ));
    drop(pki);
    // Shorter than a TLS record header, and not TLS from the first byte.
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(b"hi").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    s.read_to_string(&mut back).unwrap();
    assert_eq!(back, "fallback:hi");
    proxy.eventually("counted", |p| {
        p.stat("tcp.edge.tls_inspector.tls_not_found") == 1
            && p.stat("cluster.fallback.upstream_cx_total") == 1
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_split_across_two_writes_after_a_proxy_header_still_routes() {
    let pki = Pki::new("split");
    let a = pki.leaf("a", &["a.example"]);
    let b = pki.leaf("b", &["b.example"]);
    let (ea, eb) = (tls_echo(&a).await, tls_echo(&b).await);
    let proxy = Proxy::start(&config(
        "proxy_protocol = true\n  [[listeners.tcp.sni]]\n  server_names = [\"a.example\"]\n  cluster = \"a\"\n\
         \x20 [[listeners.tcp.sni]]\n  server_names = [\"b.example\"]\n  cluster = \"b\"\n",
        &[("a", ea), ("b", eb)],
    ));
    let addr = proxy.addr();
    let client = client(&pki);
    let b_der = b.der.clone();
    tokio::task::spawn_blocking(move || {
        let (mut conn, hello) = client_hello(client, "b.example");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        let cut = hello.len() / 2;
        let mut first = b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 443\r\n".to_vec();
        first.extend_from_slice(&hello[..cut]);
        s.write_all(&first).unwrap();
        thread::sleep(Duration::from_millis(300));
        s.write_all(&hello[cut..]).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut s).unwrap();
        }
        assert!(conn.peer_certificates().unwrap()[0] == b_der, "reached b");
        let mut tls = rustls::Stream::new(&mut conn, &mut s);
        tls.write_all(b"split hello").unwrap();
        let mut back = [0u8; 11];
        tls.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"split hello");
    })
    .await
    .unwrap();
    assert_eq!(proxy.stat("cluster.b.upstream_cx_total"), 1);
    assert_eq!(proxy.stat("tcp.edge.tls_inspector.sni_found"), 1);
}

#[test]
fn a_late_client_hello_times_out_and_bad_ones_are_closed() {
    let pki = Pki::new("bad");
    let proxy = Proxy::start(&config(
        "cluster = \"a\"\n  [listeners.tcp]\n  inspect_timeout = \"200ms\"\n  \
         [[listeners.tcp.sni]]\n  server_names = [\"a.example\"]\n  cluster = \"a\"\n",
        &[("a", tagged_echo("never"))],
    ));
    // Half a ClientHello, then silence: closed after inspect_timeout.
    let (_, hello) = client_hello(client(&pki), "a.example");
    let mut late = TcpStream::connect(proxy.addr()).unwrap();
    late.write_all(&hello[..hello.len() / 2]).unwrap();
    assert!(
        closed_by_server(&mut late),
        "closed after the inspect timeout"
    );
    // A handshake record holding a ServerHello, not a ClientHello.
    let mut wrong = TcpStream::connect(proxy.addr()).unwrap();
    wrong
        .write_all(&[22, 3, 1, 0, 6, 2, 0, 0, 2, 3, 3])
        .unwrap();
    assert!(closed_by_server(&mut wrong));
    // A bad record version.
    let mut version = TcpStream::connect(proxy.addr()).unwrap();
    version.write_all(&[22, 9, 9, 0, 6]).unwrap();
    assert!(closed_by_server(&mut version));
    // A ClientHello announcing 64 KiB: refused before buffering it.
    let mut big = TcpStream::connect(proxy.addr()).unwrap();
    big.write_all(&[22, 3, 1, 0x40, 0, 1, 1, 0, 0]).unwrap();
    assert!(closed_by_server(&mut big));
    // A client that leaves in the middle.
    let mut gone = TcpStream::connect(proxy.addr()).unwrap();
    gone.write_all(&hello[..10]).unwrap();
    gone.shutdown(Shutdown::Write).unwrap();
    assert!(closed_by_server(&mut gone));
    proxy.eventually("each failure counted", |p| {
        p.stat("tcp.edge.tls_inspector.timeout") == 1
            && p.stat("tcp.edge.tls_inspector.invalid_client_hello") == 2
            && p.stat("tcp.edge.tls_inspector.client_hello_too_large") == 1
            && p.stat("tcp.edge.tls_inspector.connection_closed") == 1
            && p.stat("listener.edge.downstream_cx_destroy") == 5
    });
    // None reached the tcp proxy or the cluster.
    assert_eq!(proxy.stat("tcp.edge.downstream_cx_total"), 0);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_total"), 0);
}

// ---------------------------------------------------------------- terminated

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_tls_routes_by_the_sni_rustls_saw() {
    let pki = Pki::new("term");
    let a = pki.leaf("a", &["a.example"]);
    let b = pki.leaf("b", &["b.example", "*.b.example"]);
    let tls = format!(
        "  [listeners.tls]\n  certificates = [{{ cert = {:?}, key = {:?} }}, {{ cert = {:?}, key = {:?} }}]\n",
        a.cert, a.key, b.cert, b.key
    );
    let proxy = Proxy::start(&config(
        &format!(
            "cluster = \"a\"\n{tls}  [[listeners.tcp.sni]]\n  server_names = [\"*.b.example\", \"b.example\"]\n  cluster = \"b\"\n"
        ),
        &[("a", tagged_echo("A:")), ("b", tagged_echo("B:"))],
    ));
    for (name, leaf, tag) in [
        ("b.example", &b, "B:"),
        ("x.b.example", &b, "B:"),
        ("a.example", &a, "A:"),
    ] {
        let tls = connect(proxy.addr(), client(&pki), name).await.unwrap();
        assert!(presented(&tls) == leaf.der, "{name}: certificate");
        let back = echo_round(tls, b"decrypted").await;
        assert_eq!(
            String::from_utf8(back).unwrap(),
            format!("{tag}decrypted"),
            "{name}"
        );
    }
    proxy.eventually("counted", |p| {
        p.stat("listener.edge.downstream_cx_destroy") == 3
    });
    assert_eq!(proxy.stat("cluster.b.upstream_cx_total"), 2);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_total"), 1);
    assert_eq!(proxy.stat("listener.edge.ssl.handshake"), 3);
    // Terminated connections are not inspected.
    assert_eq!(proxy.stat("tcp.edge.tls_inspector.tls_found"), 0);
}

// ---------------------------------------------------------------- access logs

/// The log's lines once it holds `n` (bounded wait: the workers flush about once a second).
fn log_lines(proxy: &Proxy, path: &std::path::Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    proxy.eventually("access log lines", |_| {
        lines = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.len() >= n
    });
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_log_has_one_line_per_connection_with_sni_bytes_and_flags() {
    let pki = Pki::new("logjson");
    let a = pki.leaf("a", &["a.example"]);
    let ea = tls_echo(&a).await;
    let dead = closed_port();
    let log = pki.path("access.log");
    let proxy = Proxy::start(&config(
        &format!(
            "access_log = {{ path = {log:?}, format = \"json\" }}\n  [[listeners.tcp.sni]]\n  \
             server_names = [\"a.example\"]\n  cluster = \"a\"\n  [[listeners.tcp.sni]]\n  \
             server_names = [\"dead.example\"]\n  cluster = \"dead\"\n"
        ),
        &[("a", ea), ("dead", dead)],
    ));
    let tls = connect(proxy.addr(), client(&pki), "a.example")
        .await
        .unwrap();
    assert_eq!(echo_round(tls, &[7u8; 5000]).await.len(), 5000);
    proxy.eventually("first connection done", |p| {
        p.stat("listener.edge.downstream_cx_destroy") == 1
    });
    assert!(
        connect(proxy.addr(), client(&pki), "dead.example")
            .await
            .is_err()
    );
    let mut plain = TcpStream::connect(proxy.addr()).unwrap();
    plain.write_all(b"no tls here").unwrap();
    assert!(closed_by_server(&mut plain));

    let lines = log_lines(&proxy, &log, 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_sni = |name: Option<&str>| {
        v.iter()
            .find(|e| e["requested_server_name"].as_str() == name)
            .unwrap_or_else(|| panic!("no line for {name:?}: {lines:?}"))
    };
    let ok = by_sni(Some("a.example"));
    assert_eq!(ok["response_flags"], "-");
    assert_eq!(ok["method"], "-");
    assert_eq!(ok["protocol"], "-");
    assert_eq!(ok["response_code"], 0);
    assert_eq!(ok["upstream_host"], ea.to_string());
    assert!(ok["bytes_received"].as_u64().unwrap() > 5000, "{ok}");
    assert!(ok["bytes_sent"].as_u64().unwrap() > 5000, "{ok}");
    assert!(
        ok["downstream_remote_address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let uf = by_sni(Some("dead.example"));
    assert_eq!(uf["response_flags"], "UF");
    assert_eq!(uf["upstream_host"], dead.to_string());
    assert_eq!(uf["bytes_sent"], 0);
    let nr = by_sni(None);
    assert_eq!(nr["response_flags"], "NR");
    assert!(nr["upstream_host"].is_null());
    assert!(lines.iter().all(|l| !l.contains('\n')));
}

#[test]
fn default_format_access_log_on_a_plain_tcp_listener() {
    let pki = Pki::new("logtext");
    let backend = tagged_echo("");
    let log = pki.path("access.log");
    let proxy = Proxy::start(&config(
        &format!("cluster = \"c\"\naccess_log = {{ path = {log:?} }}\n"),
        &[("c", backend)],
    ));
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(b"hello").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"hello");
    let lines = log_lines(&proxy, &log, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert!(l.starts_with('['), "{l}");
    // Envoy's default format for a TCP connection: no method, path or status; 5 bytes each
    // way; the duration; no upstream service time or HTTP fields; the upstream host.
    assert!(l.contains("] \"- - -\" 0 - 5 5 "), "{l}");
    assert!(
        l.ends_with(&format!(" - \"-\" \"-\" \"-\" \"-\" \"{backend}\"")),
        "{l}"
    );
}

// ---------------------------------------------------------------- config errors

#[test]
fn sni_config_errors_name_the_line_and_the_reason() {
    let head = "[[listeners]]\nname = \"edge\"\naddress = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n";
    let clusters = "[[clusters]]\nname = \"a\"\nendpoints = [\"127.0.0.1:1\"]\n";
    let route = |names: &str, cluster: &str| {
        format!("[[listeners.tcp.sni]]\nserver_names = {names}\ncluster = \"{cluster}\"\n")
    };
    // (listener body after `head`, line, message)
    let cases: Vec<(String, usize, &str)> = vec![
        (
            route("[\"a.example\"]", "nope"),
            7,
            "listeners[0].tcp.sni[0].cluster: unknown cluster \"nope\"",
        ),
        (
            route("[]", "a"),
            6,
            "listeners[0].tcp.sni[0].server_names: must name at least one server",
        ),
        (
            route("[\"a.example\", \"bad name\"]", "a"),
            6,
            "listeners[0].tcp.sni[0].server_names[1]: \"bad name\" is not a DNS name",
        ),
        (
            route("[\"a.*.example\"]", "a"),
            6,
            "listeners[0].tcp.sni[0].server_names[0]: \"a.*.example\": a wildcard is only allowed",
        ),
        (
            format!(
                "{}{}",
                route("[\"a.example\"]", "a"),
                route("[\"b.example\", \"A.Example\"]", "a")
            ),
            9,
            "listeners[0].tcp.sni[1].server_names[1]: duplicate server name \"a.example\" (also in listeners[0].tcp.sni[0])",
        ),
        (
            String::new(),
            1,
            "listeners[0]: a tcp listener needs `cluster = \"<name>\"` or [[listeners.tcp.sni]] routes",
        ),
        (
            format!(
                "cluster = \"a\"\n[listeners.tcp]\ninspect_timeout = \"0s\"\n{}",
                route("[\"a.example\"]", "a")
            ),
            7,
            "listeners[0].tcp.inspect_timeout: must be greater than 0s",
        ),
    ];
    for (body, line, want) in cases {
        let text = format!("{head}{body}{clusters}");
        let e = engine::config::parse_str(&text, "t.toml")
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{text}"))
            .to_string();
        assert!(e.starts_with(&format!("t.toml:{line}:")), "{e}\n{text}");
        assert!(e.contains(want), "{e:?} lacks {want:?}\n{text}");
    }
    // SNI routes on an http listener.
    let http = format!(
        "[[listeners]]\nname = \"h\"\naddress = \"127.0.0.1:0\"\n{}{clusters}",
        route("[\"a.example\"]", "a")
    );
    let e = engine::config::parse_str(&http, "t.toml")
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("t.toml:4:"), "{e}");
    assert!(
        e.contains("listeners[0].tcp.sni: SNI routes are only for protocol = \"tcp\" listeners"),
        "{e}"
    );
    // Valid: SNI routes only (no cluster), access logs on tcp listeners, inspect_timeout.
    let ok = format!(
        "{head}access_log = {{ format = \"json\" }}\n[listeners.tcp]\ninspect_timeout = \"2s\"\n{}{clusters}",
        route("[\"a.example\", \"*.b.example\"]", "a")
    );
    let cfg = engine::config::parse_str(&ok, "t.toml").unwrap();
    let tcp = &cfg.listeners[0].tcp;
    assert_eq!(tcp.cluster, None);
    assert_eq!(tcp.inspect_timeout, Duration::from_secs(2));
    let sni = tcp.sni.as_ref().unwrap();
    assert_eq!(sni.get("x.B.example."), Some(&0));
    assert_eq!(sni.get("c.example"), None);
    assert!(cfg.listeners[0].access_log.is_some());
}
