use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;

#[test]
fn per_core_counters_sum_and_gauges_go_both_ways() {
    let s = PerCore::<ClusterStats>::new(4);
    assert_eq!(s.cores(), 4);
    s.core(0).upstream_rq_total.inc();
    s.core(1).upstream_rq_total.add(5);
    s.core(3).upstream_rq_total.inc();
    assert_eq!(s.upstream_rq_total(), 7);
    assert_eq!(s.core(1).upstream_rq_total.get(), 5);

    s.core(0).upstream_rq_active.inc();
    s.core(0).upstream_rq_active.inc();
    s.core(2).upstream_rq_active.dec();
    s.core(1).upstream_rq_active.add(-3);
    assert_eq!(s.upstream_rq_active(), -2);
    assert_eq!(s.core(2).upstream_rq_active.get(), -1);
}

#[test]
fn slots_do_not_share_cache_lines() {
    let s = PerCore::<ListenerStats>::new(2);
    let a = std::ptr::from_ref(s.core(0)) as usize;
    let b = std::ptr::from_ref(s.core(1)) as usize;
    assert!(b - a >= 128, "slots {a:#x} and {b:#x} are too close");
    assert_eq!(a % 128, 0);
}

#[test]
fn counting_from_many_threads_is_exact() {
    let s = Arc::new(PerCore::<HttpStats>::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    s.core(i).downstream_rq_total.inc();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.downstream_rq_total(), 40_000);
}

#[test]
fn macro_records_names_help_and_kinds() {
    let d = ClusterStats::DESCS;
    let total = d.iter().find(|d| d.name == "upstream_rq_total").unwrap();
    assert_eq!(total.kind, Kind::Counter);
    assert_eq!(total.help, "requests sent upstream");
    let active = d.iter().find(|d| d.name == "upstream_rq_active").unwrap();
    assert_eq!(active.kind, Kind::Gauge);
    // Every stat has help and names are unique.
    for set in [
        ServerStats::DESCS,
        ListenerStats::DESCS,
        HttpStats::DESCS,
        ClusterStats::DESCS,
        EndpointStats::DESCS,
    ] {
        let names: BTreeSet<_> = set.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), set.len());
        assert!(set.iter().all(|d| !d.help.is_empty()));
    }
    // totals() follows the declaration order and sums.
    let s = PerCore::<ListenerStats>::new(2);
    s.core(1).downstream_cx_overflow.add(9);
    let t = s.totals();
    assert_eq!(t.len(), ListenerStats::DESCS.len());
    let (desc, v) = t
        .iter()
        .find(|(d, _)| d.name == "downstream_cx_overflow")
        .unwrap();
    assert_eq!(desc.kind, Kind::Counter);
    assert_eq!(*v, 9);
}

#[test]
fn out_of_range_core_wraps_in_release() {
    // Only meaningful without debug assertions; with them, the debug_assert fires.
    if cfg!(debug_assertions) {
        return;
    }
    let s = PerCore::<ServerStats>::new(2);
    s.core(3).total_connections.inc();
    assert_eq!(s.total_connections(), 1);
}

#[test]
fn histogram_merges_local_recorders_on_flush() {
    let h = Histogram::new();
    let a = h.local();
    let b = h.local();
    for v in 1..=100 {
        a.record(v * 1000); // 1..=100 ms
    }
    b.record(1_000_000); // 1 s
    assert_eq!(h.snapshot().count(), 0, "nothing is visible before a flush");
    a.flush();
    assert_eq!(h.snapshot().count(), 100);
    drop(b); // dropping flushes
    let s = h.snapshot();
    assert_eq!(s.count(), 101);
    let p50 = s.quantile_ms(0.5).unwrap();
    assert!((50.0..=51.5).contains(&p50), "p50 = {p50}");
    let p100 = s.quantile_ms(1.0).unwrap();
    assert!((1000.0..=1010.0).contains(&p100), "max = {p100}");
    let expected_sum = (1..=100).sum::<u64>() as f64 + 1000.0;
    assert!(
        (s.sum_ms() - expected_sum).abs() < 1e-9,
        "sum = {}",
        s.sum_ms()
    );
    // A second flush of an emptied recorder adds nothing.
    a.flush();
    assert_eq!(h.snapshot().count(), 101);
    // Values past an hour are clamped, not lost.
    a.record(u64::MAX);
    a.flush();
    assert_eq!(h.snapshot().count(), 102);
}

#[test]
fn histogram_buckets_are_cumulative() {
    let h = Histogram::new();
    let l = h.local();
    l.record(500); // 0.5 ms: in le=0.5
    l.record(900); // in le=1
    l.record(7_000); // le=10
    l.record(4_000_000_000); // past an hour: only in +Inf
    l.flush();
    let snap = h.snapshot();
    assert_eq!(snap.count(), 4);
    let b = snap.cumulative_buckets();
    assert_eq!(b[0], 1);
    assert_eq!(b[1], 2);
    assert_eq!(b[2], 2);
    assert_eq!(b[3], 3);
    assert_eq!(*b.last().unwrap(), 3);
    assert!(b.windows(2).all(|w| w[0] <= w[1]));
}

fn populated_store() -> Arc<Store> {
    let st = Store::new(2);
    let c = st.cluster("backend");
    c.stats.core(0).upstream_rq_total.add(3);
    c.stats.core(1).upstream_rq_total.add(4);
    c.stats.core(1).upstream_rq_active.inc();
    let l = c.upstream_rq_time.local();
    l.record(2_000);
    l.record(30_000);
    l.flush();
    let h = st.http("ingress");
    h.stats.core(0).downstream_rq_2xx.inc();
    st.listener("ingress").core(1).downstream_cx_total.add(2);
    st.server().core(0).total_connections.inc();
    st
}

#[test]
fn scopes_are_get_or_create() {
    let st = Store::new(2);
    let a = st.cluster("x");
    a.stats.core(0).upstream_cx_total.inc();
    let b = st.cluster("x");
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(b.stats.upstream_cx_total(), 1);
    assert!(Arc::ptr_eq(&st.http("h"), &st.http("h")));
    assert!(Arc::ptr_eq(&st.listener("l"), &st.listener("l")));
    let addr = "127.0.0.1:1".parse().unwrap();
    assert!(st.existing_endpoint("x", addr).is_none());
    let e = st.endpoint("x", addr);
    assert!(Arc::ptr_eq(&e, &st.existing_endpoint("x", addr).unwrap()));
}

#[test]
fn text_render_is_sorted_and_filtered() {
    let st = populated_store();
    let t = st.render_text(None);
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines.contains(&"cluster.backend.upstream_rq_total: 7"),
        "{t}"
    );
    assert!(lines.contains(&"cluster.backend.upstream_rq_active: 1"));
    assert!(lines.contains(&"http.ingress.downstream_rq_2xx: 1"));
    assert!(lines.contains(&"listener.ingress.downstream_cx_total: 2"));
    assert!(lines.contains(&"server.total_connections: 1"));
    let plain: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.contains(" P0("))
        .collect();
    let plain: Vec<&str> = plain
        .into_iter()
        .filter(|l| !l.ends_with("No recorded values"))
        .collect();
    let mut sorted = plain.clone();
    sorted.sort_unstable();
    assert_eq!(plain, sorted);
    let hl = lines
        .iter()
        .find(|l| l.starts_with("cluster.backend.upstream_rq_time:"))
        .unwrap();
    let q = |p: &str| -> f64 {
        let v = hl
            .split(&format!(" {p}(nan,"))
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap();
        v.parse().unwrap()
    };
    assert!((q("P0") - 2.0).abs() <= 0.02, "{hl}");
    assert!((q("P100") - 30.0).abs() <= 0.3, "{hl}");
    assert!(hl.contains(" P99.9(nan,"), "{hl}");
    assert!(lines.contains(&"cluster.backend.upstream_cx_connect_ms: No recorded values"));

    let f = regex::Regex::new("upstream_rq_(total|time)$").unwrap();
    let t = st.render_text(Some(&f));
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert_eq!(lines[0], "cluster.backend.upstream_rq_total: 7");
    assert!(lines[1].starts_with("cluster.backend.upstream_rq_time: P0("));

    let extra = [ExtraGauge {
        name: "live",
        help: "1 when serving",
        value: 1,
    }];
    assert!(
        st.render_text_with(None, &extra)
            .lines()
            .any(|l| l == "server.live: 1")
    );
}

#[test]
fn json_render_is_envoy_shaped() {
    let st = populated_store();
    let v: serde_json::Value = serde_json::from_str(&st.render_json(None, &[])).unwrap();
    let arr = v["stats"].as_array().unwrap();
    assert!(
        arr.iter()
            .any(|s| s["name"] == "cluster.backend.upstream_rq_total" && s["value"] == 7)
    );
    let h = &arr.last().unwrap()["histograms"];
    assert_eq!(h["supported_quantiles"].as_array().unwrap().len(), 10);
    let cq = h["computed_quantiles"].as_array().unwrap();
    assert!(
        cq.iter()
            .any(|q| q["name"] == "cluster.backend.upstream_rq_time")
    );
}

/// A small checker for the Prometheus text exposition format 0.0.4.
pub(super) fn check_prometheus(text: &str) -> BTreeMap<String, f64> {
    let sample = regex::Regex::new(
        r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? (\S+)$"#,
    )
    .unwrap();
    let mut help = BTreeSet::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut values = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(help.insert(name.clone()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_owned();
            let ty = it.next().unwrap().to_owned();
            assert!(
                ["counter", "gauge", "histogram"].contains(&ty.as_str()),
                "{line}"
            );
            assert!(help.contains(&name), "TYPE before HELP for {name}");
            assert!(
                types.insert(name.clone(), ty).is_none(),
                "TYPE twice for {name}"
            );
            continue;
        }
        let c = sample
            .captures(line)
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let name = &c[1];
        let v = &c[7];
        let value: f64 = if v == "+Inf" {
            f64::INFINITY
        } else {
            v.parse().unwrap()
        };
        let family = types
            .keys()
            .find(|f| {
                name == f.as_str()
                    || (types[*f] == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name.strip_suffix(s) == Some(f.as_str())))
            })
            .unwrap_or_else(|| panic!("sample {name} without TYPE"));
        assert!(help.contains(family));
        values.insert(line.rsplit_once(' ').unwrap().0.to_owned(), value);
    }
    // Histogram buckets: cumulative, ending in +Inf equal to _count.
    for (fam, ty) in &types {
        if ty != "histogram" {
            continue;
        }
        let bucket_prefix = format!("{fam}_bucket{{");
        let mut by_series: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for line in text.lines().filter(|l| l.starts_with(&bucket_prefix)) {
            let (series, v) = line.rsplit_once(' ').unwrap();
            let (labels, le) = series.rsplit_once(",le=").unwrap();
            by_series
                .entry(labels.to_owned())
                .or_default()
                .push((le.to_owned(), v.parse().unwrap()));
        }
        assert!(!by_series.is_empty(), "{fam} has no buckets");
        for (labels, buckets) in by_series {
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{fam} not cumulative"
            );
            let les: Vec<f64> = buckets
                .iter()
                .map(|(le, _)| {
                    let le = le.trim_end_matches('}').trim_matches('"');
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    }
                })
                .collect();
            assert!(
                les.windows(2).all(|w| w[0] < w[1]),
                "{fam} le not increasing"
            );
            assert_eq!(*les.last().unwrap(), f64::INFINITY);
            let lbl = labels.trim_start_matches(&bucket_prefix);
            let count = values[&format!("{fam}_count{{{lbl}}}")];
            assert_eq!(buckets.last().unwrap().1, count, "{fam} +Inf != _count");
            assert!(values.contains_key(&format!("{fam}_sum{{{lbl}}}")));
        }
    }
    values
}

#[test]
fn prometheus_output_is_valid_exposition() {
    let st = populated_store();
    st.cluster("we\"ird\\name");
    let extra = [ExtraGauge {
        name: "live",
        help: "1 when serving",
        value: 1,
    }];
    let text = st.render_prometheus_with(&extra);
    let v = check_prometheus(&text);
    assert_eq!(
        v[r#"ringway_cluster_upstream_rq_total{cluster_name="backend"}"#],
        7.0
    );
    assert_eq!(
        v[r#"ringway_http_downstream_rq_2xx{http_name="ingress"}"#],
        1.0
    );
    assert_eq!(
        v[r#"ringway_listener_downstream_cx_total{listener_name="ingress"}"#],
        2.0
    );
    assert_eq!(v["ringway_server_total_connections"], 1.0);
    assert_eq!(v["ringway_server_live"], 1.0);
    assert_eq!(
        v[r#"ringway_cluster_upstream_rq_time_count{cluster_name="backend"}"#],
        2.0
    );
    assert_eq!(
        v[r#"ringway_cluster_upstream_rq_time_bucket{cluster_name="backend",le="1"}"#],
        0.0
    );
    assert_eq!(
        v[r#"ringway_cluster_upstream_rq_time_bucket{cluster_name="backend",le="5"}"#],
        1.0
    );
    assert_eq!(
        v[r#"ringway_cluster_upstream_rq_time_bucket{cluster_name="backend",le="50"}"#],
        2.0
    );
    assert_eq!(
        v[r#"ringway_cluster_upstream_rq_time_sum{cluster_name="backend"}"#],
        32.0
    );
    assert!(text.contains(r#"cluster_name="we\"ird\\name""#), "{text}");
    assert!(text.contains("# TYPE ringway_cluster_upstream_rq_time histogram\n"));
    assert!(text.contains("# TYPE ringway_cluster_upstream_rq_total counter\n"));
    assert!(text.contains("# TYPE ringway_cluster_upstream_rq_active gauge\n"));
    // The checker itself rejects broken output.
    assert!(std::panic::catch_unwind(|| check_prometheus("foo 1\n")).is_err());
    assert!(
        std::panic::catch_unwind(|| check_prometheus(
            "# HELP a x\n# TYPE a counter\n# HELP a x\n# TYPE a counter\na 1\n"
        ))
        .is_err()
    );
}
