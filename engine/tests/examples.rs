//! The configurations in `examples/`, one per deployment role (DESIGN.md), as a user would
//! take them: each is valid as shipped (the front proxy with certificates made here), and the
//! ones that need no outside service serve real traffic with their addresses pointed at
//! loopback backends.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use support::*;

fn example(name: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    (path, text)
}

/// `text` with its listeners and admin on free loopback ports.
fn on_loopback(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("address = \"") {
            out.push_str("address = \"127.0.0.1:0\"\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn request(addr: SocketAddr, host: &str, extra: &str) -> (u16, String) {
    let resp = raw_exchange(
        addr,
        format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n").as_bytes(),
    );
    let text = String::from_utf8_lossy(&resp).into_owned();
    (status_of(&resp), text)
}

#[test]
fn every_example_is_valid_as_shipped() {
    for name in [
        "ingress-sidecar.toml",
        "egress-sidecar.toml",
        "external-egress.toml",
    ] {
        let (path, _) = example(name);
        if let Err(e) = engine::config::load_file(&path) {
            panic!("{name}: {e}");
        }
    }
    // The front proxy reads its certificates next to it: made here, in a copy's directory.
    let pki = pki::Pki::new("examples");
    let leaf = pki.leaf("edge", &["example.com"]);
    std::fs::create_dir_all(pki.path("certs")).unwrap();
    std::fs::copy(&leaf.cert, pki.path("certs/edge.pem")).unwrap();
    std::fs::copy(&leaf.key, pki.path("certs/edge-key.pem")).unwrap();
    let (_, text) = example("front-proxy.toml");
    std::fs::write(pki.path("front-proxy.toml"), text).unwrap();
    if let Err(e) = engine::config::load_file(&pki.path("front-proxy.toml")) {
        panic!("front-proxy.toml: {e}");
    }
}

#[test]
fn the_ingress_sidecar_serves_its_local_service() {
    let service = Backend::fixed(200, "local");
    let (_, text) = example("ingress-sidecar.toml");
    let cfg = on_loopback(&text).replace("127.0.0.1:8080", &service.addr.to_string());
    let proxy = Proxy::start(&cfg);
    let (status, text) = request(proxy.addr(), "svc", "");
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("local"));
    assert_eq!(
        proxy.stat("cluster.local_service.circuit_breakers.default.remaining_rq"),
        256
    );
}

#[test]
fn the_egress_sidecar_balances_and_sticks_by_user() {
    let carts = [
        Backend::fixed(200, "cart-a"),
        Backend::fixed(200, "cart-b"),
        Backend::fixed(200, "cart-c"),
    ];
    let users = Backend::start_h2(|_req| async { Ok(full(200, "users")) });
    let (_, text) = example("egress-sidecar.toml");
    let mut cfg = on_loopback(&text);
    for (i, b) in carts.iter().enumerate() {
        cfg = cfg.replace(&format!("10.0.1.1{i}:8080"), &b.addr.to_string());
    }
    cfg = cfg.replace(
        "\"10.0.2.10:8080\", \"10.0.2.11:8080\"",
        &format!("\"{}\"", users.addr),
    );
    let proxy = Proxy::start(&cfg);
    // One user's requests stick to one cart endpoint.
    let bodies: Vec<String> = (0..6)
        .map(|_| {
            let (status, text) = request(proxy.addr(), "cart", "x-user: alice\r\n");
            assert_eq!(status, 200, "{text}");
            text.rsplit("\r\n\r\n").next().unwrap().to_owned()
        })
        .collect();
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    let (status, text) = request(proxy.addr(), "users", "");
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("users"));
}

#[test]
fn the_front_proxys_plain_listener_redirects_to_https() {
    let pki = pki::Pki::new("examples-front");
    let leaf = pki.leaf("edge", &["example.com"]);
    let (_, text) = example("front-proxy.toml");
    let cfg = on_loopback(&text)
        .replace("certs/edge.pem", leaf.cert.to_str().unwrap())
        .replace("certs/edge-key.pem", leaf.key.to_str().unwrap());
    let proxy = Proxy::start(&cfg);
    let (status, text) = request(proxy.listener("http"), "example.com", "");
    assert_eq!(status, 301, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("location: https://example.com/x"),
        "{text}"
    );
}
