//! What the HTTP endpoint (`metrics_addr`) serves: Prometheus metrics, liveness (`/healthz`)
//! and readiness (`/readyz`) of every pipeline of the process.
//!
//! Each pipeline's loop reports to its own `Status` (`pipeline.rs`); the `Registry` holds the
//! process's pipelines and answers for all of them: `/metrics` has each family once with every
//! pipeline's samples (labelled `name`, `table`, `topic`), and process-wide series labelled
//! `name` alone; a probe passes when it passes for every pipeline, and otherwise says which
//! pipelines fail it and why. With one pipeline, a probe's answer is that pipeline's own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

mod exposition;
mod http;
mod pipeline;

use exposition::Exposition;
pub use http::Server;
pub use pipeline::Status;

/// What the probes are judged by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// No step for this long: not alive.
    pub stall_timeout: Duration,
    /// The active instance behind for this long: not ready.
    pub ready_lag: Duration,
}

/// A probe's answer: 200 or 503, and one line saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub ok: bool,
    pub reason: String,
}

/// The pipelines of this process, for the endpoint. Shared (`Arc`) with the endpoint's thread;
/// pipelines come and go as they start and stop.
pub struct Registry {
    /// The job's name, the label of the process-wide series.
    name: String,
    pipelines: RwLock<Vec<Arc<Status>>>,
    /// Every pipeline known at start-up has been added: none left is a job whose patterns
    /// match no table yet, alive and ready, not one still starting.
    started: AtomicBool,
}

impl Registry {
    pub fn new(name: &str) -> Registry {
        Registry {
            name: name.to_owned(),
            pipelines: RwLock::new(Vec::new()),
            started: AtomicBool::new(false),
        }
    }

    /// Every pipeline known at start-up has been added (`supervisor`).
    pub fn started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }

    /// Adds a pipeline's status: from now on it is served.
    pub fn add(&self, status: Arc<Status>) {
        self.pipelines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(status);
    }

    /// Stops serving a pipeline's status.
    pub fn remove(&self, status: &Arc<Status>) {
        self.pipelines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| !Arc::ptr_eq(s, status));
    }

    fn pipelines(&self) -> Vec<Arc<Status>> {
        self.pipelines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `/metrics`, in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let pipelines = self.pipelines();
        let mut e = Exposition::new(&[]);
        for status in &pipelines {
            status.render(&mut e);
        }
        e.labels(&[("name", &self.name)]);
        let count = |f: fn(&Status) -> bool| pipelines.iter().filter(|s| f(s)).count() as f64;
        e.by_label(
            (
                "repliqate_pipelines",
                "gauge",
                "Pipelines of this process: known, owned (this instance publishes them), failing \
                 (a dependency failing).",
            ),
            "state",
            &[
                ("known", pipelines.len() as f64),
                ("owned", count(Status::is_active)),
                ("failing", count(Status::is_failing)),
            ],
        );
        e.family(
            "repliqate_build_info",
            "gauge",
            "Always 1; the labels say which build runs.",
        );
        e.sample(
            "repliqate_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("sources", &sources()),
                ("target_env", TARGET_ENV),
            ],
            1.0,
        );
        e.finish()
    }

    /// The longest any pipeline's loop has gone without a heartbeat (zero with none): what
    /// systemd's watchdog is fed by when the process runs several.
    pub fn longest_quiet(&self) -> Duration {
        self.pipelines()
            .iter()
            .map(|s| s.since_beat())
            .max()
            .unwrap_or_default()
    }

    /// `/healthz`: every pipeline's loop alive.
    pub fn liveness(&self) -> Probe {
        self.every(Status::liveness, "alive")
    }

    /// `/readyz`: every pipeline ready.
    pub fn readiness(&self) -> Probe {
        self.every(Status::readiness, "ready")
    }

    /// `probe` passed for every pipeline: one pipeline's answer as it is; for several, either
    /// `all N pipelines <passed>`, or the ones that fail it, each named with its reason.
    fn every(&self, probe: fn(&Status) -> Probe, passed: &str) -> Probe {
        every(
            &self.pipelines(),
            probe,
            passed,
            self.started.load(Ordering::Relaxed),
        )
    }
}

/// `Registry::every` over `pipelines`; `started`: every pipeline known at start-up was added.
fn every(
    pipelines: &[Arc<Status>],
    probe: fn(&Status) -> Probe,
    passed: &str,
    started: bool,
) -> Probe {
    match pipelines {
        [] if started => Probe {
            ok: true,
            reason: format!("{passed}: no pipeline: no table matches the job's patterns yet"),
        },
        [] => Probe {
            ok: false,
            reason: "starting: no pipeline started yet".into(),
        },
        [one] => probe(one),
        all => {
            let failing: Vec<String> = all
                .iter()
                .filter_map(|s| {
                    let p = probe(s);
                    (!p.ok).then(|| format!("{}: {}", s.describe(), p.reason))
                })
                .collect();
            if failing.is_empty() {
                Probe {
                    ok: true,
                    reason: format!("all {} pipelines {passed}", all.len()),
                }
            } else {
                Probe {
                    ok: false,
                    reason: format!(
                        "{} of {} pipelines not {passed}: {}",
                        failing.len(),
                        all.len(),
                        failing.join("; ")
                    ),
                }
            }
        }
    }
}

/// The database backends compiled in, comma-separated.
fn sources() -> String {
    [
        (cfg!(feature = "sqlite"), "sqlite"),
        (cfg!(feature = "postgres"), "postgres"),
        (cfg!(feature = "mysql"), "mysql"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

const TARGET_ENV: &str = if cfg!(target_env = "musl") {
    "musl"
} else if cfg!(target_env = "gnu") {
    "gnu"
} else {
    "other"
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn pipeline(table: &str) -> Arc<Status> {
        let thresholds = Thresholds {
            stall_timeout: Duration::from_secs(60),
            ready_lag: Duration::from_secs(60),
        };
        Arc::new(Status::new(
            "shop",
            table,
            &format!("t.{table}"),
            thresholds,
        ))
    }

    fn caught_up(status: &Status) {
        status.record(&Event::Beat);
        status.record(&Event::Active(true));
        status.record(&Event::Committed(7));
        status.record(&Event::BatchRead {
            took: Duration::from_millis(3),
            behind: false,
        });
    }

    #[test]
    fn one_pipeline_answers_the_probes_as_it_is() {
        let registry = Registry::new("shop");
        assert!(!registry.readiness().ok, "no pipeline yet");
        // A job whose patterns match no table yet is alive and ready, once started.
        registry.started();
        for probe in [registry.liveness(), registry.readiness()] {
            assert!(probe.ok, "{probe:?}");
            assert!(probe
                .reason
                .ends_with("no table matches the job's patterns yet"));
        }
        let orders = pipeline("orders");
        registry.add(orders.clone());
        caught_up(&orders);
        assert_eq!(registry.readiness(), orders.readiness());
        assert_eq!(
            registry.readiness().reason,
            "active: caught up at position 7"
        );
    }

    #[test]
    fn several_pipelines_are_ready_when_each_is_and_the_probe_names_those_that_are_not() {
        let registry = Registry::new("shop");
        let (orders, audit) = (pipeline("orders"), pipeline("audit"));
        registry.add(orders.clone());
        registry.add(audit.clone());
        caught_up(&orders);
        let probe = registry.readiness();
        assert!(!probe.ok);
        assert_eq!(
            probe.reason,
            "1 of 2 pipelines not ready: audit → t.audit: starting: start-up checks running"
        );
        caught_up(&audit);
        assert_eq!(
            registry.readiness(),
            Probe {
                ok: true,
                reason: "all 2 pipelines ready".into()
            }
        );
        audit.record(&Event::Failed {
            component: "source",
            error: "table audit: no such table",
        });
        let probe = registry.readiness();
        assert!(!probe.ok);
        assert!(
            probe
                .reason
                .starts_with("1 of 2 pipelines not ready: audit → t.audit: source failing"),
            "{}",
            probe.reason
        );
        assert!(
            probe.reason.ends_with("table audit: no such table"),
            "{}",
            probe.reason
        );
        registry.remove(&audit);
        assert!(registry.readiness().ok, "the failing pipeline is gone");
    }

    #[test]
    fn metrics_have_each_family_once_with_every_pipelines_samples_and_process_series() {
        let registry = Registry::new("shop");
        let (orders, audit) = (pipeline("orders"), pipeline("audit"));
        registry.add(orders.clone());
        registry.add(audit.clone());
        caught_up(&orders);
        audit.record(&Event::Active(false));
        audit.record(&Event::Failed {
            component: "kafka",
            error: "down",
        });
        let text = registry.render_metrics();
        for family in [
            "repliqate_active",
            "repliqate_publish_seconds",
            "repliqate_pipelines",
        ] {
            let head = format!("# TYPE {family} ");
            assert_eq!(text.matches(&head).count(), 1, "{family}:\n{text}");
        }
        // A family's samples follow its head, the two pipelines' together.
        let active: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("# TYPE repliqate_active "))
            .skip(1)
            .take_while(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(
            active,
            [
                r#"repliqate_active{name="shop",table="orders",topic="t.orders"} 1"#,
                r#"repliqate_active{name="shop",table="audit",topic="t.audit"} 0"#,
            ]
        );
        for line in [
            r#"repliqate_pipelines{name="shop",state="known"} 2"#,
            r#"repliqate_pipelines{name="shop",state="owned"} 1"#,
            r#"repliqate_pipelines{name="shop",state="failing"} 1"#,
            r#"repliqate_position{name="shop",table="orders",topic="t.orders"} 7"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        assert_eq!(text.matches("repliqate_build_info{").count(), 1, "{text}");
    }
}
