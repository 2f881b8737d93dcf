//! The HTTP endpoint of `metrics_addr`, read by independent clients: curl for HTTP, and the
//! Prometheus Python client's parser for the text format.
#![allow(dead_code)] // each test binary uses a subset

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value as J;

use super::daemon::Daemon;

pub const SERVING: &str = "serving /metrics, /healthz and /readyz on http://";

/// The endpoint's address, from the daemon's log (`-vv`).
pub fn endpoint(daemon: &mut Daemon) -> String {
    daemon.expect_log(SERVING, Duration::from_secs(30));
    let text = daemon.log_text();
    let line = text.lines().find(|l| l.contains(SERVING)).unwrap();
    let at = line.find(SERVING).unwrap() + SERVING.len();
    line[at..].split_whitespace().next().unwrap().to_string()
}

/// GET `path` with curl: the status code and the body.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("running curl (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 body");
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// One sample as the Prometheus client's parser read it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// `/metrics`, parsed by `prometheus_client.parser`: Debian's python3-prometheus-client, so
/// Debian's python3 (another python3 may come first on PATH).
pub fn scrape(addr: &str) -> Vec<Sample> {
    let (code, body) = get(addr, "/metrics");
    assert_eq!(code, 200, "/metrics: {body}");
    const PARSE: &str = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for fam in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in fam.samples:\n\
        \x20       out.append({'name': s.name, 'type': fam.type, 'labels': s.labels, 'value': s.value})\n\
        print(json.dumps(out))\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running /usr/bin/python3 (apt-get install python3-prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics (needs python3-prometheus-client: apt-get \
         install python3-prometheus-client): {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<J> = serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .into_iter()
        .map(|s| Sample {
            name: s["name"].as_str().unwrap().to_string(),
            labels: serde_json::from_value(s["labels"].clone()).unwrap(),
            value: s["value"].as_f64().unwrap(),
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().map(|s| s.value)
}
