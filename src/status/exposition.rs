//! The Prometheus text exposition format (version 0.0.4), for the few metric families we serve.
//!
//! By hand: a fixed set of families, rendered on request from one snapshot; the format is a
//! stable, line-based specification, and its only subtleties are label-value escaping and
//! float spelling, both here and unit-tested (and the integration tests parse our output with
//! the Python client's parser).

use std::fmt::Write as _;

/// Writes metric families into one text body: each family's `# HELP` and `# TYPE` once, then
/// its samples, whichever pipeline (set of `common` labels) they came from.
pub(super) struct Exposition {
    /// In the order first declared: name, `# HELP`/`# TYPE` lines, samples.
    families: Vec<(String, String, String)>,
    /// The family samples go to (the last declared).
    current: usize,
    /// `name="…",table="…",topic="…"`, escaped once.
    common: String,
}

impl Exposition {
    pub(super) fn new(common: &[(&str, &str)]) -> Exposition {
        let mut e = Exposition {
            families: Vec::new(),
            current: 0,
            common: String::new(),
        };
        e.labels(common);
        e
    }

    /// The labels every sample from now on gets (another pipeline's).
    pub(super) fn labels(&mut self, common: &[(&str, &str)]) {
        self.common.clear();
        for (i, (k, v)) in common.iter().enumerate() {
            if i > 0 {
                self.common.push(',');
            }
            write_label(&mut self.common, k, v);
        }
    }

    /// `# HELP` and `# TYPE` of a family (once, however often declared); `kind` is counter,
    /// gauge or histogram. The samples that follow belong to it.
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        if let Some(i) = self.families.iter().position(|(n, _, _)| n == name) {
            self.current = i;
            return;
        }
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        let head = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        self.families.push((name.to_owned(), head, String::new()));
        self.current = self.families.len() - 1;
    }

    /// A family of one sample with only the common labels.
    pub(super) fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family of one sample per value of the label `label`.
    pub(super) fn by_label(
        &mut self,
        (name, kind, help): (&str, &str, &str),
        label: &str,
        samples: &[(&str, f64)],
    ) {
        self.family(name, kind, help);
        for (value, sample) in samples {
            self.sample(name, &[(label, value)], *sample);
        }
    }

    /// One sample of the current family, with the common labels and `extra` ones.
    pub(super) fn sample(&mut self, name: &str, extra: &[(&str, &str)], value: f64) {
        if self.families.is_empty() {
            self.families
                .push((name.to_owned(), String::new(), String::new()));
        }
        let out = &mut self.families[self.current].2;
        let _ = write!(out, "{name}{{{}", self.common);
        for (k, v) in extra {
            out.push(',');
            write_label(out, k, v);
        }
        out.push_str("} ");
        write_float(out, value);
        out.push('\n');
    }

    /// A histogram's `_bucket` (cumulative, ending with `+Inf`), `_sum` and `_count` samples.
    pub(super) fn histogram(&mut self, name: &str, h: &Histogram) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (bound, count) in BUCKETS.iter().zip(&h.counts) {
            cumulative += count;
            let le = float_text(*bound);
            self.sample(&bucket, &[("le", &le)], cumulative as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count as f64);
    }

    pub(super) fn finish(self) -> String {
        let mut out = String::with_capacity(4096);
        for (_, head, samples) in self.families {
            out.push_str(&head);
            out.push_str(&samples);
        }
        out
    }
}

/// Upper bounds of the latency histograms' buckets, in seconds: a millisecond (a local read)
/// to a minute (a publish retried until its delivery timeout).
pub(super) const BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Durations in seconds, bucketed by `BUCKETS` (not cumulative here; the exposition sums).
#[derive(Debug, Clone, Default)]
pub(super) struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub(super) fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

fn write_label(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_float(out: &mut String, v: f64) {
    out.push_str(&float_text(v));
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` spellings where they matter to parsers: `+Inf`,
/// `-Inf`, `NaN`; integers without a fraction; otherwise the shortest round-trip form.
fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_floats_spelled_as_prometheus_reads_them() {
        let mut e = Exposition::new(&[("name", "a\"b\\c\nd"), ("table", "t")]);
        e.family("x_total", "counter", "Line one\nwith \\ in it.");
        e.sample("x_total", &[("reason", "final")], 3.0);
        e.sample("x_seconds", &[], 0.25);
        e.sample("x_big", &[], 1.8446744073709552e19);
        e.sample("x_nan", &[], f64::NAN);
        assert_eq!(
            e.finish(),
            "# HELP x_total Line one\\nwith \\\\ in it.\n# TYPE x_total counter\n\
             x_total{name=\"a\\\"b\\\\c\\nd\",table=\"t\",reason=\"final\"} 3\n\
             x_seconds{name=\"a\\\"b\\\\c\\nd\",table=\"t\"} 0.25\n\
             x_big{name=\"a\\\"b\\\\c\\nd\",table=\"t\"} 18446744073709552000\n\
             x_nan{name=\"a\\\"b\\\\c\\nd\",table=\"t\"} NaN\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::default();
        for s in [0.0005, 0.003, 0.003, 120.0] {
            h.observe(s);
        }
        let mut e = Exposition::new(&[("name", "j")]);
        e.histogram("d_seconds", &h);
        let text = e.finish();
        let value = |le: &str| {
            let prefix = format!("d_seconds_bucket{{name=\"j\",le=\"{le}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
            line[prefix.len()..].to_string()
        };
        assert_eq!(value("0.001"), "1");
        assert_eq!(value("0.0025"), "1");
        assert_eq!(value("0.005"), "3");
        assert_eq!(value("60"), "3");
        assert_eq!(value("+Inf"), "4");
        assert!(
            text.contains("d_seconds_sum{name=\"j\"} 120.0065\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_count{name=\"j\"} 4\n"));
    }
}
