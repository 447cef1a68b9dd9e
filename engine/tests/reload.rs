//! Configuration reload diffs clusters by name, end to end on loopback: a cluster whose
//! configuration is unchanged keeps each worker's pooled HTTP/1 and HTTP/2 connections and its
//! load-balancer position across a reload that changes other things (routes, other clusters,
//! the order of the clusters); a changed cluster starts with fresh connections; a removed
//! cluster's in-flight request finishes on the configuration it started with, and its
//! connection is closed after it.
//!
//! One worker throughout, so "the pool" is one pool. DESIGN.md "Config reload diffs by name";
//! README.md and docs/config.md (reload).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use support::*;

/// One worker; listener `main` with `/a` -> cluster `a`, `/b` -> cluster `b`, then `routes`
/// (more route tables), then each of `clusters` (the body of a `[[clusters]]` table) in order.
fn config(routes: &str, clusters: &[&str]) -> String {
    let mut text = format!(
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
    prefix = "/a"
    cluster = "a"
    [[listeners.virtual_hosts.routes]]
    prefix = "/b"
    cluster = "b"
{routes}
"#
    );
    for c in clusters {
        text.push_str("\n[[clusters]]\n");
        text.push_str(c);
        text.push('\n');
    }
    text
}

/// A route answering `/new` locally: proof that the worker runs the reloaded configuration.
const NEW_ROUTE: &str = r#"
    [[listeners.virtual_hosts]]
    name = "new"
    domains = ["new.example"]
      [[listeners.virtual_hosts.routes]]
      prefix = "/"
      direct_response = { status = 200, body = "new" }
"#;

fn cluster(name: &str, endpoints: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        "name = \"{name}\"\nendpoints = [{}]\n{extra}",
        list.join(", ")
    )
}

fn start(text: &str) -> Proxy {
    Proxy::start(text)
}

/// `Proxy::reload` puts its own `[admin]` first, which would push `workers` into that table:
/// reload the complete text instead.
fn reload(proxy: &Proxy, text: &str) {
    let cfg = engine::config::parse_str(text, "<test>").unwrap_or_else(|e| panic!("{e}"));
    proxy.handle().reload(cfg).unwrap();
}

/// GET `path` with `Host: host` on a fresh downstream connection: (status, body).
fn get_host(proxy: &Proxy, host: &str, path: &str) -> (u16, String) {
    let resp = raw_exchange(
        proxy.addr(),
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let text = String::from_utf8_lossy(&resp).into_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status_of(&resp), body.unwrap_or_default())
}

fn get(proxy: &Proxy, path: &str) -> (u16, String) {
    get_host(proxy, "test", path)
}

/// The reloaded configuration is the one serving (the worker picks it up on its next request).
fn assert_reloaded(proxy: &Proxy) {
    assert_eq!(get_host(proxy, "new.example", "/"), (200, "new".into()));
}

#[test]
fn an_unchanged_cluster_keeps_its_pool_and_balancer_across_a_reload() {
    let (a1, a2, b) = (
        Backend::fixed(200, "a1"),
        Backend::fixed(200, "a2"),
        Backend::fixed(200, "b"),
    );
    let a = cluster("a", &[a1.addr, a2.addr], "");
    let proxy = start(&config("", &[&a, &cluster("b", &[b.addr], "")]));
    let (status, first) = get(&proxy, "/a/1");
    assert_eq!(status, 200);
    assert_eq!(get(&proxy, "/b/1"), (200, "b".into()));

    // A new route, cluster `b` changed, the clusters in the other order (so `a` has another
    // index), and `a` spelling out two of its defaults: `a` is unchanged.
    let a_again = cluster(
        "a",
        &[a1.addr, a2.addr],
        "lb = \"round_robin\"\nconnect_timeout = \"5s\"",
    );
    let b_changed = cluster("b", &[b.addr], "connect_timeout = \"2s\"");
    reload(&proxy, &config(NEW_ROUTE, &[&b_changed, &a_again]));
    assert_reloaded(&proxy);

    // Round robin goes on where it was: the other endpoint, then the first one again on its
    // pooled connection.
    let (status, second) = get(&proxy, "/a/2");
    assert_eq!(status, 200);
    assert_ne!(second, first, "the balancer's position was kept");
    assert_eq!(get(&proxy, "/a/3"), (200, first));
    assert_eq!(a1.connection_count(), 1, "pooled connection to a1 kept");
    assert_eq!(a2.connection_count(), 1, "pooled connection to a2 kept");
    assert_eq!(proxy.stat("cluster.a.upstream_cx_total"), 2);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_pool_reuse"), 1);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_destroy"), 0);

    // The changed cluster started fresh; its old pooled connection was closed.
    assert_eq!(get(&proxy, "/b/2"), (200, "b".into()));
    assert_eq!(
        b.connection_count(),
        2,
        "a changed cluster opens a new connection"
    );
    assert_eq!(proxy.stat("cluster.b.upstream_cx_total"), 2);
    assert_eq!(proxy.stat("cluster.b.upstream_cx_destroy_local"), 1);
    assert_eq!(proxy.stat("cluster.b.upstream_cx_active"), 1);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_active"), 2);
}

#[test]
fn a_changed_cluster_gets_fresh_connections() {
    let (a, b) = (Backend::fixed(200, "a"), Backend::fixed(200, "b"));
    let b_cluster = cluster("b", &[b.addr], "");
    let proxy = start(&config("", &[&cluster("a", &[a.addr], ""), &b_cluster]));
    assert_eq!(get(&proxy, "/a/1"), (200, "a".into()));
    assert_eq!(get(&proxy, "/a/2"), (200, "a".into()));
    assert_eq!(a.connection_count(), 1);

    // Another endpoint weight is a different cluster: fresh state.
    let heavier = format!(
        "name = \"a\"\nendpoints = [{{ address = \"{}\", weight = 2 }}]",
        a.addr
    );
    reload(&proxy, &config(NEW_ROUTE, &[&heavier, &b_cluster]));
    assert_reloaded(&proxy);
    assert_eq!(get(&proxy, "/a/3"), (200, "a".into()));
    assert_eq!(a.connection_count(), 2, "a new connection after the change");
    assert_eq!(proxy.stat("cluster.a.upstream_cx_destroy_local"), 1);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_active"), 1);

    // A changed timeout is a change too.
    let slower = format!("{heavier}\nconnect_timeout = \"2s\"");
    reload(&proxy, &config("", &[&slower, &b_cluster]));
    assert_eq!(get(&proxy, "/a/4"), (200, "a".into()));
    assert_eq!(a.connection_count(), 3);
    assert_eq!(proxy.stat("cluster.a.upstream_cx_destroy_local"), 2);
    // `b` was never used, and unchanged throughout.
    assert_eq!(proxy.stat("cluster.b.upstream_cx_total"), 0);
}

#[test]
fn a_removed_cluster_finishes_its_request_in_flight_then_closes() {
    let slow = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        full(200, "slow")
    });
    let b = Backend::fixed(200, "b");
    let text = config(
        "",
        &[
            &cluster("a", &[slow.addr], ""),
            &cluster("b", &[b.addr], ""),
        ],
    );
    let proxy = Arc::new(start(&text));
    let p = proxy.clone();
    let in_flight = std::thread::spawn(move || get(&p, "/a/slow"));
    proxy.eventually("the request reached the backend", |_| {
        slow.request_count() == 1
    });

    // `/a` now falls through to `/` -> b; cluster `a` is gone.
    let without_a = config(NEW_ROUTE, &[&cluster("b", &[b.addr], "")]).replace(
        "prefix = \"/a\"\n    cluster = \"a\"",
        "prefix = \"/\"\n    cluster = \"b\"",
    );
    reload(&proxy, &without_a);
    assert_reloaded(&proxy);
    assert_eq!(get(&proxy, "/a/after"), (200, "b".into()));

    assert_eq!(in_flight.join().unwrap(), (200, "slow".into()));
    // Its connection went back to the old cluster's pool, which closed with the old snapshot.
    proxy.eventually("the removed cluster's connection is closed", |p| {
        p.stat("cluster.a.upstream_cx_destroy_local") == 1
    });
    assert_eq!(proxy.stat("cluster.a.upstream_cx_active"), 0);
    assert_eq!(proxy.stat("cluster.b.upstream_cx_active"), 1);
}

#[test]
fn an_unchanged_http2_cluster_keeps_its_connection_across_a_reload() {
    let h2 = Backend::start_h2(|_req| async { Ok::<_, hyper::Error>(full(200, "h2")) });
    let b = Backend::fixed(200, "b");
    let a = cluster("a", &[h2.addr], "protocol = \"http2\"");
    let proxy = start(&config("", &[&a, &cluster("b", &[b.addr], "")]));
    assert_eq!(get(&proxy, "/a/1"), (200, "h2".into()));

    // A new route and a changed `b`: `a` keeps its HTTP/2 connection.
    let b_changed = cluster("b", &[b.addr], "idle_timeout = \"30s\"");
    reload(&proxy, &config(NEW_ROUTE, &[&a, &b_changed]));
    assert_reloaded(&proxy);
    assert_eq!(get(&proxy, "/a/2"), (200, "h2".into()));
    assert_eq!(h2.connection_count(), 1, "the HTTP/2 connection was kept");
    assert_eq!(proxy.stat("cluster.a.upstream_cx_http2_total"), 1);

    // `a` changed: a new connection; the old one is told to go away and closes.
    let a_changed = cluster(
        "a",
        &[h2.addr],
        "protocol = \"http2\"\nidle_timeout = \"30s\"",
    );
    reload(&proxy, &config("", &[&a_changed, &b_changed]));
    assert_eq!(get(&proxy, "/a/3"), (200, "h2".into()));
    assert_eq!(
        h2.connection_count(),
        2,
        "a changed cluster opens a new connection"
    );
    proxy.eventually("the old HTTP/2 connection closes", |p| {
        p.stat("cluster.a.upstream_cx_active") == 1
    });
}

#[test]
fn a_cluster_carried_over_then_changed_closes_after_its_last_request() {
    let slow = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        full(200, "slow")
    });
    let b = Backend::fixed(200, "b");
    let a = cluster("a", &[slow.addr], "");
    let proxy = Arc::new(start(&config("", &[&a, &cluster("b", &[b.addr], "")])));
    let p = proxy.clone();
    let in_flight = std::thread::spawn(move || get(&p, "/a/slow"));
    proxy.eventually("the request reached the backend", |_| {
        slow.request_count() == 1
    });

    // First `b` changes (`a` is carried into the new snapshot), then `a` changes: the middle
    // snapshot is gone before the request on the first one ends.
    let b_changed = cluster("b", &[b.addr], "idle_timeout = \"30s\"");
    reload(&proxy, &config(NEW_ROUTE, &[&a, &b_changed]));
    assert_reloaded(&proxy);
    let a_changed = cluster("a", &[slow.addr], "idle_timeout = \"30s\"");
    reload(&proxy, &config(NEW_ROUTE, &[&a_changed, &b_changed]));
    assert_reloaded(&proxy);

    assert_eq!(in_flight.join().unwrap(), (200, "slow".into()));
    proxy.eventually(
        "the old pool closes with the last snapshot holding it",
        |p| p.stat("cluster.a.upstream_cx_destroy_local") == 1,
    );
    assert_eq!(proxy.stat("cluster.a.upstream_cx_active"), 0);
}
