//! Prometheus metrics: a small process-wide registry of labelled counters and histograms,
//! rendered in the text exposition format. Names follow `postwire_<thing>_<unit>_total`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

/// A gauge computed at scrape time: name, help, labels, value.
pub type Gauge = (&'static str, &'static str, Labels, f64);

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    help: BTreeMap<&'static str, &'static str>,
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Adds one to a counter.
pub fn inc(name: &'static str, help: &'static str, pairs: &[(&'static str, &str)]) {
    add(name, help, pairs, 1);
}

/// Adds `n` to a counter.
pub fn add(name: &'static str, help: &'static str, pairs: &[(&'static str, &str)], n: u64) {
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.help.insert(name, help);
    *r.counters.entry((name, labels(pairs))).or_default() += n;
}

/// Records a duration in a histogram.
pub fn observe(
    name: &'static str,
    help: &'static str,
    pairs: &[(&'static str, &str)],
    d: Duration,
) {
    let secs = d.as_secs_f64();
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.help.insert(name, help);
    let h = r.histograms.entry((name, labels(pairs))).or_default();
    for (i, b) in BUCKETS.iter().enumerate() {
        if secs <= *b {
            h.counts[i] += 1;
        }
    }
    h.count += 1;
    h.sum += secs;
}

fn render_labels(l: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text exposition of everything recorded so far, plus `gauges` computed by the caller
/// at scrape time (name, help, labels, value).
pub fn render(gauges: &[Gauge]) -> String {
    let r = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    let mut last = "";
    for ((name, l), v) in &r.counters {
        if *name != last {
            let _ = writeln!(
                out,
                "# HELP {name} {}\n# TYPE {name} counter",
                r.help.get(name).unwrap_or(&"")
            );
            last = name;
        }
        let _ = writeln!(out, "{name}{} {v}", render_labels(l, None));
    }
    last = "";
    for ((name, l), h) in &r.histograms {
        if *name != last {
            let _ = writeln!(
                out,
                "# HELP {name} {}\n# TYPE {name} histogram",
                r.help.get(name).unwrap_or(&"")
            );
            last = name;
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                render_labels(l, Some(("le", b.to_string()))),
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            render_labels(l, Some(("le", "+Inf".into()))),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", render_labels(l, None), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", render_labels(l, None), h.count);
    }
    last = "";
    for (name, help, l, v) in gauges {
        if *name != last {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            last = name;
        }
        let _ = writeln!(out, "{name}{} {v}", render_labels(l, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        inc("postwire_test_things_total", "Things.", &[("kind", "a\"b")]);
        inc("postwire_test_things_total", "Things.", &[("kind", "a\"b")]);
        observe(
            "postwire_test_seconds",
            "Time.",
            &[("stage", "x")],
            Duration::from_millis(3),
        );
        let text = render(&[(
            "postwire_test_depth",
            "Depth.",
            vec![("stream", "DLQ".into())],
            4.0,
        )]);
        assert!(text.contains("# TYPE postwire_test_things_total counter"));
        assert!(
            text.contains("postwire_test_things_total{kind=\"a\\\"b\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("postwire_test_seconds_bucket{stage=\"x\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("postwire_test_seconds_bucket{stage=\"x\",le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("postwire_test_depth{stream=\"DLQ\"} 4"),
            "{text}"
        );
    }
}
