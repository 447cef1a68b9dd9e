//! Renderers for the admin API: Envoy's `/stats` text and JSON, and Prometheus text
//! exposition format 0.0.4. Cold path: allocation is fine here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::histogram::{HistogramSnapshot, PERCENTILES, PROMETHEUS_BUCKETS_MS, QUANTILES};
use super::{Histogram, Kind, PerCore, StatSet, Store};

/// A `server.*` gauge known only to the caller (e.g. `server.live` from the admin state),
/// rendered with the store's stats.
#[derive(Debug, Clone, Copy)]
pub struct ExtraGauge {
    /// Name inside the `server` scope (`live` renders as `server.live`).
    pub name: &'static str,
    /// One line for `# HELP`.
    pub help: &'static str,
    /// The value.
    pub value: i64,
}

/// One counter or gauge, summed.
struct Sample {
    scope: &'static str,
    scope_name: Option<String>,
    stat: &'static str,
    help: &'static str,
    kind: Kind,
    value: i128,
    /// Set for a stat of a dynamic scope (a name seen in traffic).
    dynamic: Option<DynamicName>,
}

/// Where a dynamic stat sits: `<scope>.<scope_name>.<sub>.<name>.<stat>`, and in Prometheus
/// `ringway_<scope>_<sub>_<stat>{<scope>_name=..,<label>="<name>"}`.
struct DynamicName {
    sub: &'static str,
    label: &'static str,
    name: String,
}

impl Sample {
    /// The `/stats` name.
    fn text_name(&self) -> String {
        match &self.dynamic {
            Some(d) => format!(
                "{}.{}.{}.{}.{}",
                self.scope,
                self.scope_name.as_deref().unwrap_or_default(),
                d.sub,
                d.name,
                self.stat
            ),
            None => text_name(self.scope, self.scope_name.as_deref(), self.stat),
        }
    }
}

/// One histogram.
struct HistSample {
    scope: &'static str,
    scope_name: String,
    stat: &'static str,
    help: &'static str,
    snap: HistogramSnapshot,
}

fn text_name(scope: &str, scope_name: Option<&str>, stat: &str) -> String {
    match scope_name {
        Some(n) => format!("{scope}.{n}.{stat}"),
        None => format!("{scope}.{stat}"),
    }
}

fn push_set<T: StatSet>(
    out: &mut Vec<Sample>,
    scope: &'static str,
    name: Option<&str>,
    set: &PerCore<T>,
) {
    for (d, v) in set.totals() {
        out.push(Sample {
            scope,
            scope_name: name.map(str::to_owned),
            stat: d.name,
            help: d.help,
            kind: d.kind,
            value: v,
            dynamic: None,
        });
    }
}

fn hist(
    scope: &'static str,
    name: &str,
    stat: &'static str,
    help: &'static str,
    h: &Arc<Histogram>,
) -> HistSample {
    HistSample {
        scope,
        scope_name: name.to_owned(),
        stat,
        help,
        snap: h.snapshot(),
    }
}

impl Store {
    /// Sums every counter and gauge and snapshots every histogram (endpoint stats excluded).
    fn collect(&self, extra: &[ExtraGauge]) -> (Vec<Sample>, Vec<HistSample>) {
        let (listeners, http, tcp, rl, clusters, dynamic) = {
            let g = self.lock();
            let l: Vec<_> = g
                .listeners
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect();
            let h: Vec<_> = g
                .http
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect();
            let t: Vec<_> = g
                .tcp
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect();
            let rl: Vec<_> = g
                .local_rate_limit
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect();
            let c: Vec<_> = g
                .clusters
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect();
            let d: Vec<_> = g.dynamic.values().map(Arc::clone).collect();
            (l, h, t, rl, c, d)
        };
        let mut samples = Vec::new();
        let mut hists = Vec::new();
        push_set(&mut samples, "server", None, self.server());
        for e in extra {
            samples.push(Sample {
                scope: "server",
                scope_name: None,
                stat: e.name,
                help: e.help,
                kind: Kind::Gauge,
                value: e.value.into(),
                dynamic: None,
            });
        }
        for (n, s) in &listeners {
            push_set(&mut samples, "listener", Some(n), s);
        }
        for (n, s) in &http {
            push_set(&mut samples, "http", Some(n), &s.stats);
            hists.push(hist(
                "http",
                n,
                "downstream_rq_time",
                "request time from first byte received to last byte sent (ms)",
                &s.downstream_rq_time,
            ));
        }
        for (n, s) in &tcp {
            push_set(&mut samples, "tcp", Some(n), s);
        }
        for (n, s) in &rl {
            push_set(&mut samples, "local_rate_limit", Some(n), s);
        }
        for (n, s) in &clusters {
            push_set(&mut samples, "cluster", Some(n), &s.stats);
            if let Some(b) = s.read_breakers() {
                push_set(&mut samples, "cluster", Some(n), &b);
            }
            hists.push(hist(
                "cluster",
                n,
                "upstream_rq_time",
                "upstream request time from request sent to response complete (ms)",
                &s.upstream_rq_time,
            ));
            hists.push(hist(
                "cluster",
                n,
                "upstream_cx_connect_ms",
                "upstream connection establishment time (ms)",
                &s.upstream_cx_connect_ms,
            ));
        }
        for d in &dynamic {
            let kind = d.kind();
            for (name, totals) in d.totals() {
                for (desc, value) in totals {
                    samples.push(Sample {
                        scope: kind.scope,
                        scope_name: Some(d.scope_name().to_owned()),
                        stat: desc.name,
                        help: desc.help,
                        kind: desc.kind,
                        value,
                        dynamic: Some(DynamicName {
                            sub: kind.sub,
                            label: kind.label,
                            name: name.clone(),
                        }),
                    });
                }
            }
        }
        (samples, hists)
    }

    /// Envoy's `/stats` text: `name: value` lines sorted by name, then histograms as
    /// `name: P0(nan,v) P25(nan,v) ... P100(nan,v)` (interval, cumulative; ms; ringway keeps
    /// only cumulative). Only names matching `filter` are shown.
    pub fn render_text(&self, filter: Option<&regex::Regex>) -> String {
        self.render_text_with(filter, &[])
    }

    /// [`render_text`](Self::render_text) plus caller-supplied `server.*` gauges.
    pub fn render_text_with(&self, filter: Option<&regex::Regex>, extra: &[ExtraGauge]) -> String {
        let keep = |n: &str| filter.is_none_or(|f| f.is_match(n));
        let (samples, hists) = self.collect(extra);
        let mut lines: Vec<(String, i128)> = samples
            .into_iter()
            .map(|s| (s.text_name(), s.value))
            .filter(|(n, _)| keep(n))
            .collect();
        lines.sort();
        let mut out = String::new();
        for (n, v) in lines {
            let _ = writeln!(out, "{n}: {v}");
        }
        let mut hlines: Vec<(String, &HistSample)> = hists
            .iter()
            .map(|h| (text_name(h.scope, Some(&h.scope_name), h.stat), h))
            .filter(|(n, _)| keep(n))
            .collect();
        hlines.sort_by(|a, b| a.0.cmp(&b.0));
        for (n, h) in hlines {
            out.push_str(&n);
            out.push(':');
            if h.snap.count() == 0 {
                out.push_str(" No recorded values\n");
                continue;
            }
            for (q, p) in QUANTILES.iter().zip(PERCENTILES) {
                let v = h.snap.quantile_ms(*q).unwrap_or(f64::NAN);
                let _ = write!(out, " P{p}(nan,{v})");
            }
            out.push('\n');
        }
        out
    }

    /// Envoy's `/stats?format=json`: `{"stats":[{"name":..,"value":..},..,
    /// {"histograms":{"supported_quantiles":[..],"computed_quantiles":[..]}}]}`.
    pub fn render_json(&self, filter: Option<&regex::Regex>, extra: &[ExtraGauge]) -> String {
        use serde_json::{Value, json};
        let keep = |n: &str| filter.is_none_or(|f| f.is_match(n));
        let (samples, hists) = self.collect(extra);
        let mut stats: Vec<(String, i128)> = samples
            .into_iter()
            .map(|s| (s.text_name(), s.value))
            .filter(|(n, _)| keep(n))
            .collect();
        stats.sort();
        let mut arr: Vec<Value> = stats
            .into_iter()
            .map(|(n, v)| json!({ "name": n, "value": i64::try_from(v).unwrap_or(i64::MAX) }))
            .collect();
        let mut computed: Vec<(String, Value)> = hists
            .iter()
            .map(|h| (text_name(h.scope, Some(&h.scope_name), h.stat), h))
            .filter(|(n, _)| keep(n))
            .map(|(n, h)| {
                let values: Vec<Value> = QUANTILES
                    .iter()
                    .map(|&q| json!({ "interval": null, "cumulative": h.snap.quantile_ms(q) }))
                    .collect();
                (n.clone(), json!({ "name": n, "values": values }))
            })
            .collect();
        computed.sort_by(|a, b| a.0.cmp(&b.0));
        if !computed.is_empty() {
            let supported = PERCENTILES;
            arr.push(json!({ "histograms": {
                "supported_quantiles": supported,
                "computed_quantiles": computed.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            }}));
        }
        json!({ "stats": arr }).to_string()
    }

    /// Prometheus text exposition format 0.0.4: one `# HELP` and `# TYPE` per family, names
    /// `ringway_<scope>_<stat>`, the scope's name as label `<scope>_name`, histograms in ms
    /// with Envoy's buckets, `_sum` and `_count`.
    pub fn render_prometheus(&self) -> String {
        self.render_prometheus_with(&[])
    }

    /// [`render_prometheus`](Self::render_prometheus) plus caller-supplied `server.*` gauges.
    pub fn render_prometheus_with(&self, extra: &[ExtraGauge]) -> String {
        struct Family {
            help: &'static str,
            kind: &'static str,
            lines: Vec<String>,
        }
        let (samples, hists) = self.collect(extra);
        let mut fams: BTreeMap<String, Family> = BTreeMap::new();
        let label = |scope: &str, name: Option<&str>| match name {
            Some(n) => format!("{{{scope}_name=\"{}\"}}", escape_label(n)),
            None => String::new(),
        };
        for s in samples {
            // Dotted sub-scopes (`ssl.versions.TLSv1.3`) are not legal in Prometheus names.
            let (fam, labels) = match &s.dynamic {
                Some(d) => (
                    format!(
                        "ringway_{}_{}_{}",
                        s.scope,
                        d.sub.replace('.', "_"),
                        s.stat.replace('.', "_")
                    ),
                    format!(
                        "{{{}_name=\"{}\",{}=\"{}\"}}",
                        s.scope,
                        escape_label(s.scope_name.as_deref().unwrap_or_default()),
                        d.label,
                        escape_label(&d.name)
                    ),
                ),
                None => (
                    format!("ringway_{}_{}", s.scope, s.stat.replace('.', "_")),
                    label(s.scope, s.scope_name.as_deref()),
                ),
            };
            let line = format!("{fam}{labels} {}", s.value);
            fams.entry(fam)
                .or_insert_with(|| Family {
                    help: s.help,
                    kind: s.kind.as_str(),
                    lines: vec![],
                })
                .lines
                .push(line);
        }
        for h in hists {
            let fam = format!("ringway_{}_{}", h.scope, h.stat);
            let lbl = format!("{}_name=\"{}\"", h.scope, escape_label(&h.scope_name));
            let f = fams.entry(fam.clone()).or_insert_with(|| Family {
                help: h.help,
                kind: "histogram",
                lines: vec![],
            });
            let buckets = h.snap.cumulative_buckets();
            for (b, c) in PROMETHEUS_BUCKETS_MS.iter().zip(buckets) {
                f.lines
                    .push(format!("{fam}_bucket{{{lbl},le=\"{b}\"}} {c}"));
            }
            let n = h.snap.count();
            f.lines
                .push(format!("{fam}_bucket{{{lbl},le=\"+Inf\"}} {n}"));
            f.lines
                .push(format!("{fam}_sum{{{lbl}}} {}", h.snap.sum_ms()));
            f.lines.push(format!("{fam}_count{{{lbl}}} {n}"));
        }
        let mut out = String::new();
        for (name, f) in fams {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(f.help));
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for l in f.lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

/// Label values escape `\`, `"` and newline (exposition format 0.0.4).
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help text escapes `\` and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}
