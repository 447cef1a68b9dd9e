//! Consistent-hash load balancing end to end on loopback: `ring_hash` and `maglev` clusters
//! of three backends, routes with `hash_policy` (header, cookie with a generated
//! `Set-Cookie`, query parameter), over two workers: a key always reaches the same backend,
//! and different keys spread over the backends. The tables' own properties (weights,
//! disruption when an endpoint goes) are unit tests in `cluster::hash`.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use support::get_on_new_connection as get;
use support::*;

fn config(lb: &str, backends: &[SocketAddr]) -> String {
    let endpoints = backends
        .iter()
        .map(|b| format!("\"{b}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
workers = 2
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "main"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/cart"
    cluster = "api"
    hash_policy = [{{ header = "x-user" }}, {{ cookie = {{ name = "sid", ttl = "1h", path = "/" }} }}]
    [[listeners.virtual_hosts.routes]]
    prefix = "/q"
    cluster = "api"
    hash_policy = [{{ query_parameter = "u" }}]
[[clusters]]
name = "api"
lb = "{lb}"
endpoints = [{endpoints}]
"#
    )
}

fn backends() -> Vec<Backend> {
    ["a", "b", "c"].map(|name| Backend::fixed(200, name)).into()
}

fn keys_stick_and_spread(lb: &str) {
    let backs = backends();
    let addrs: Vec<_> = backs.iter().map(|b| b.addr).collect();
    let proxy = Proxy::start(&config(lb, &addrs));
    let addr = proxy.addr();
    let mut served: HashMap<String, String> = HashMap::new();
    for user in 0..24 {
        let header = format!("x-user: user-{user}\r\n");
        let first = get(addr, "/cart", &header);
        assert_eq!(first.0, 200);
        assert!(
            !first.1.contains("set-cookie"),
            "a header key needs no cookie"
        );
        for _ in 0..4 {
            // Fresh connections: both workers answer, with the same table.
            assert_eq!(
                get(addr, "/cart", &header).2,
                first.2,
                "user-{user} moved ({lb})"
            );
        }
        served.insert(format!("user-{user}"), first.2);
    }
    let used: HashSet<_> = served.values().collect();
    assert!(
        used.len() >= 2,
        "24 keys all on one backend ({lb}): {served:?}"
    );

    // The query parameter policy.
    let q = get(addr, "/q?u=42", "").2;
    for _ in 0..4 {
        assert_eq!(get(addr, "/q?x=1&u=42", "").2, q);
    }

    // No header: a cookie is made up, and sticks when sent back.
    let (s, head, body) = get(addr, "/cart", "");
    assert_eq!(s, 200);
    let set = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no set-cookie: {head}"));
    assert!(
        set.starts_with("sid=") && set.contains("max-age=3600"),
        "{set}"
    );
    assert!(set.contains("path=/") && set.contains("httponly"), "{set}");
    let value = set.split(';').next().unwrap().to_owned();
    for _ in 0..4 {
        let (_, head, again) = get(addr, "/cart", &format!("cookie: a=1; {value}\r\n"));
        assert_eq!(again, body, "the cookie sticks ({lb})");
        assert!(!head.contains("set-cookie"), "no new cookie when one came");
    }
}

#[test]
fn ring_hash_keys_stick_to_one_backend() {
    keys_stick_and_spread("ring_hash");
}

#[test]
fn maglev_keys_stick_to_one_backend() {
    keys_stick_and_spread("maglev");
}

#[test]
fn bad_hash_policies_are_refused_with_their_place() {
    let backend = closed_port();
    let with = |policy: &str| {
        format!(
            "[[listeners]]\nname = \"main\"\naddress = \"127.0.0.1:0\"\n\
             [[listeners.virtual_hosts]]\nname = \"v\"\ndomains = [\"*\"]\n\
             [[listeners.virtual_hosts.routes]]\nprefix = \"/\"\ncluster = \"c\"\n\
             hash_policy = [{policy}]\n\
             [[clusters]]\nname = \"c\"\nlb = \"maglev\"\nendpoints = [\"{backend}\"]\n"
        )
    };
    let err = |policy: &str| {
        engine::config::parse_str(&with(policy), "f.toml")
            .unwrap_err()
            .to_string()
    };
    let e = err("{ header = \"x\", source_ip = true }");
    assert!(
        e.starts_with(
            "f.toml:10:16: listeners[0].virtual_hosts[0].routes[0].hash_policy[0]: exactly one of"
        ),
        "{e}"
    );
    let e = err("{ cookie = { name = \"a b\" } }");
    assert!(
        e.contains("hash_policy[0].cookie.name: invalid header name"),
        "{e}"
    );
    let e = err("{ cookie = { name = \"sid\", ttl = \"0s\" } }");
    assert!(
        e.contains("hash_policy[0].cookie.ttl: must be greater than 0s"),
        "{e}"
    );
    let e = err("{ source_ip = false }");
    assert!(e.contains("exactly one of"), "{e}");
    assert!(engine::config::parse_str(&with("{ source_ip = true }"), "f.toml").is_ok());
}
