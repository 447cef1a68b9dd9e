#![allow(
    unreachable_pub,
    reason = "stats! makes the fields of the test stat set pub"
)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::stats::Store;
use crate::stats::tests::check_prometheus;

crate::stats::stats! {
    /// A stand-in for the DynamoDB filter's per-operation set.
    pub struct OpStats {
        upstream_rq_total: Counter "requests for this operation",
        upstream_rq_active: Gauge "requests for this operation in flight",
    }
}

const OPS: DynamicKind = DynamicKind {
    scope: "http",
    sub: "dynamodb.operation",
    label: "operation",
};

const TABLES: DynamicKind = DynamicKind {
    scope: "http",
    sub: "dynamodb.table",
    label: "table",
};

fn clean(raw: &[u8]) -> String {
    let mut buf = [0u8; MAX_NAME_LEN];
    String::from_utf8(sanitize(raw, &mut buf).to_vec()).unwrap()
}

#[test]
fn names_are_sanitised_and_bounded() {
    assert_eq!(clean(b"GetItem"), "GetItem");
    assert_eq!(clean(b"my-table_2"), "my-table_2");
    assert_eq!(clean(b"a.b:c d/e\"f{g}\n"), "a_b_c_d_e_f_g__");
    assert_eq!(clean(b"caf\xc3\xa9\xff"), "caf___");
    assert_eq!(clean(b""), EMPTY_NAME);
    let long = [b'x'; 200];
    assert_eq!(clean(&long).len(), MAX_NAME_LEN);
}

#[test]
fn first_sight_registers_later_sights_hit_the_same_slot() {
    let st = Store::new(2);
    let scope = st.dynamic::<OpStats>(OPS, "ingress", 8);
    let (w0, w1) = (scope.local(0), scope.local(1));
    w0.get(b"GetItem").upstream_rq_total.inc();
    w0.get(b"GetItem").upstream_rq_total.inc();
    w1.get(b"GetItem").upstream_rq_total.inc();
    w1.get(b"PutItem").upstream_rq_active.inc();
    // Each worker wrote its own slot; readers sum.
    let get_item = scope.stats_of("GetItem").unwrap();
    assert_eq!(get_item.core(0).upstream_rq_total.get(), 2);
    assert_eq!(get_item.core(1).upstream_rq_total.get(), 1);
    assert_eq!(get_item.upstream_rq_total(), 3);
    assert_eq!(scope.stats_of("PutItem").unwrap().upstream_rq_active(), 1);
    assert_eq!(scope.len(), 2);
    // Names that sanitise alike share a set; the store hands out the same scope again.
    w0.get(b"a.b").upstream_rq_total.inc();
    w1.get(b"a:b").upstream_rq_total.inc();
    assert_eq!(scope.stats_of("a_b").unwrap().upstream_rq_total(), 2);
    let again = st.dynamic::<OpStats>(OPS, "ingress", 100);
    assert!(Arc::ptr_eq(&scope, &again));
    assert_eq!(again.max(), 8, "the first max stays");
    // Other kinds and scope names are other scopes.
    assert!(!Arc::ptr_eq(
        &scope,
        &st.dynamic::<OpStats>(TABLES, "ingress", 8)
    ));
    assert!(!Arc::ptr_eq(
        &scope,
        &st.dynamic::<OpStats>(OPS, "egress", 8)
    ));
}

#[test]
fn past_max_names_go_to_the_overflow_set() {
    let st = Store::new(2);
    let scope = st.dynamic::<OpStats>(OPS, "ingress", 3);
    let (w0, w1) = (scope.local(0), scope.local(1));
    for name in [&b"a"[..], b"b", b"c", b"d", b"e", b"a"] {
        w0.get(name).upstream_rq_total.inc();
    }
    assert_eq!(scope.len(), 3);
    assert_eq!(scope.stats_of("a").unwrap().upstream_rq_total(), 2);
    assert!(scope.stats_of("d").is_none());
    assert_eq!(scope.overflow().upstream_rq_total(), 2);
    // Worker 1 finds a registered name, then learns the scope is full.
    w1.get(b"b").upstream_rq_total.inc();
    assert!(!w1.full.get());
    w1.get(b"zzz").upstream_rq_total.inc();
    assert!(w1.full.get());
    assert_eq!(w1.cache.borrow().len(), 3);
    w1.get(b"c").upstream_rq_total.inc();
    assert_eq!(scope.stats_of("b").unwrap().upstream_rq_total(), 2);
    assert_eq!(scope.stats_of("c").unwrap().upstream_rq_total(), 2);
    assert_eq!(scope.overflow().upstream_rq_total(), 3);
    // A thousand new names cost no memory: the caches hold only the registered ones.
    for i in 0..1000 {
        w0.get(format!("name-{i}").as_bytes())
            .upstream_rq_total
            .inc();
        w1.get(format!("name-{i}").as_bytes())
            .upstream_rq_total
            .inc();
    }
    assert_eq!(scope.overflow().upstream_rq_total(), 2003);
    assert_eq!(scope.len(), 3);
    assert!(w0.cache.borrow().len() <= 3 && w1.cache.borrow().len() <= 3);
    // The reserved name is the overflow set, never a registered one.
    let fresh = st.dynamic::<OpStats>(TABLES, "ingress", 3);
    fresh
        .local(0)
        .get(OVERFLOW_NAME.as_bytes())
        .upstream_rq_total
        .inc();
    assert!(fresh.is_empty());
    assert_eq!(fresh.overflow().upstream_rq_total(), 1);
}

/// Once a worker has seen a name (or learnt that the scope is full), its lookups take no
/// lock: they succeed while another thread holds the scope's mutex.
#[test]
fn known_names_and_overflow_take_no_lock() {
    let st = Store::new(1);
    let scope = st.dynamic::<OpStats>(OPS, "ingress", 2);
    let w = scope.local(0);
    w.get(b"a");
    w.get(b"b");
    w.get(b"c"); // full: learns a and b
    let held = scope.index.lock().unwrap();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        for name in [&b"a"[..], b"b", b"c", b"d", b"a"] {
            w.get(name).upstream_rq_total.inc();
        }
        tx.send(()).unwrap();
    });
    let done = rx.recv_timeout(Duration::from_secs(10));
    drop(held);
    worker.join().unwrap();
    assert!(done.is_ok(), "a lookup waited for the scope's mutex");
    assert_eq!(scope.stats_of("a").unwrap().upstream_rq_total(), 2);
    assert_eq!(scope.overflow().upstream_rq_total(), 2);
}

#[test]
fn workers_registering_at_once_stay_exact_and_bounded() {
    const THREADS: usize = 4;
    let st = Store::new(THREADS);
    let scope = st.dynamic::<OpStats>(OPS, "ingress", 16);
    let handles: Vec<_> = (0..THREADS)
        .map(|core| {
            let scope = Arc::clone(&scope);
            std::thread::spawn(move || {
                let w = scope.local(core);
                for i in 0..10_000u32 {
                    w.get(format!("op{}", i % 40).as_bytes())
                        .upstream_rq_total
                        .inc();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(scope.len(), 16);
    let named: u64 = scope.entries().map(|e| e.stats.upstream_rq_total()).sum();
    assert_eq!(named + scope.overflow().upstream_rq_total(), 40_000);
    // Every registered name counted all of its traffic on every worker: 250 per worker.
    for e in scope.entries() {
        assert_eq!(e.stats.upstream_rq_total(), 1000, "{}", e.name);
    }
}

fn populated() -> Arc<Store> {
    let st = Store::new(2);
    st.http("ingress").stats.core(0).downstream_rq_total.inc();
    let ops = st.dynamic::<OpStats>(OPS, "ingress", 2);
    let (w0, w1) = (ops.local(0), ops.local(1));
    w0.get(b"GetItem").upstream_rq_total.add(2);
    w1.get(b"GetItem").upstream_rq_total.inc();
    w1.get(b"Query").upstream_rq_active.inc();
    w0.get(b"Scan").upstream_rq_total.inc();
    let tables = st.dynamic::<OpStats>(TABLES, "ingress", 4);
    tables.local(0).get(b"my.table").upstream_rq_total.inc();
    st
}

#[test]
fn text_and_json_render_dynamic_stats() {
    let st = populated();
    let t = st.render_text(None);
    for line in [
        "http.ingress.dynamodb.operation.GetItem.upstream_rq_total: 3\n",
        "http.ingress.dynamodb.operation.GetItem.upstream_rq_active: 0\n",
        "http.ingress.dynamodb.operation.Query.upstream_rq_active: 1\n",
        "http.ingress.dynamodb.operation._overflow.upstream_rq_total: 1\n",
        "http.ingress.dynamodb.table.my_table.upstream_rq_total: 1\n",
        "http.ingress.dynamodb.table._overflow.upstream_rq_total: 0\n",
        "http.ingress.downstream_rq_total: 1\n",
    ] {
        assert!(t.contains(line), "missing {line:?} in\n{t}");
    }
    // Counters and gauges (histograms follow them) are sorted, dynamic ones among the rest.
    let names: Vec<&str> = t
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(_, v)| v.parse::<i64>().is_ok())
        .map(|(n, _)| n)
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let f = regex::Regex::new(r"dynamodb\.table").unwrap();
    let only = st.render_text(Some(&f));
    assert_eq!(only.lines().count(), 2 * 2, "{only}");
    let v: serde_json::Value = serde_json::from_str(&st.render_json(None, &[])).unwrap();
    assert!(v["stats"].as_array().unwrap().iter().any(|s| {
        s["name"] == "http.ingress.dynamodb.operation.GetItem.upstream_rq_total" && s["value"] == 3
    }));
}

#[test]
fn prometheus_renders_dynamic_names_as_labels() {
    let st = populated();
    let text = st.render_prometheus();
    let v = check_prometheus(&text);
    assert_eq!(
        v[r#"ringway_http_dynamodb_operation_upstream_rq_total{http_name="ingress",operation="GetItem"}"#],
        3.0
    );
    assert_eq!(
        v[r#"ringway_http_dynamodb_operation_upstream_rq_total{http_name="ingress",operation="_overflow"}"#],
        1.0
    );
    assert_eq!(
        v[r#"ringway_http_dynamodb_table_upstream_rq_total{http_name="ingress",table="my_table"}"#],
        1.0
    );
    assert!(text.contains("# TYPE ringway_http_dynamodb_operation_upstream_rq_total counter\n"));
    assert!(text.contains("# TYPE ringway_http_dynamodb_operation_upstream_rq_active gauge\n"));
}

#[test]
fn another_set_type_under_the_same_name_is_not_rendered() {
    crate::stats::stats! {
        /// Another set.
        pub struct OtherStats { other_total: Counter "other" }
    }
    let st = populated();
    let other = st.dynamic::<OtherStats>(OPS, "ingress", 2);
    other.local(0).get(b"GetItem").other_total.inc();
    assert!(!st.render_text(None).contains("other_total"));
    assert!(
        st.render_text(None)
            .contains("operation.GetItem.upstream_rq_total: 3")
    );
}

/// The admin API serves what the store renders.
#[test]
fn admin_endpoints_show_dynamic_stats() {
    let cfg = crate::config::parse_str(crate::config::DEFAULT_CONFIG, "<default>").unwrap();
    let st = populated();
    let state = crate::admin::AdminState::new(st, Arc::new(arc_swap::ArcSwap::from_pointee(cfg)));
    let addr = crate::admin::spawn("127.0.0.1:0".parse().unwrap(), state).unwrap();
    let get = |target: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let text = get("/stats?filter=dynamodb");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("http.ingress.dynamodb.operation.GetItem.upstream_rq_total: 3\n"));
    let prom = get("/stats/prometheus");
    assert!(prom.contains(
        "ringway_http_dynamodb_operation_upstream_rq_total{http_name=\"ingress\",operation=\"GetItem\"} 3\n"
    ));
}
