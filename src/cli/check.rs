//! `repliqate check`: every check the daemon makes at start-up, made with the same steps
//! (`startup`), each reported as a line, and a few looks an operator wants besides (the highest
//! id, the row count, the lease holder, each broker's handshake, how far behind the position
//! is). Nothing is written: no position, no lease, nothing to Kafka.
//!
//! A check that needs one that failed is not run: it is reported as skipped, naming what it
//! needs, so that every check the daemon makes appears in every report.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::{self, Config};
use crate::kafka::{BrokerReport, Producer};
use crate::replicator::startup::{self, Start};
use crate::replicator::{Error, Options, BEFORE_ANY_ID};
use crate::source::{RowCount, Source};
use crate::store::{LeaseHolder, Store};
use crate::value::Id;

/// What `check` found, in the order it looked.
pub struct Report {
    pub checks: Vec<Check>,
}

/// One line of the report.
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    /// What it found, for `--json` (numbers as numbers).
    pub fields: Map<String, Value>,
}

pub enum Outcome {
    Passed(String),
    /// The error the daemon would stop with.
    Failed(Error),
    /// Not run: it needs the check named here, which failed.
    Skipped(&'static str),
}

/// Runs every check of the job configured at `path`, one report per pipeline (see the module
/// documentation): a job of one table has one report, unnamed; a job of several, one named
/// (`table → topic`) per pipeline. A config that cannot be read is one report, unnamed.
pub fn check(path: &Path, options: &Options) -> Vec<(Option<String>, Report)> {
    let job = match config::load_job(path) {
        Ok(job) => job,
        Err(e) => {
            let mut report = Report { checks: Vec::new() };
            report.failed("config", Error::Config(e));
            return vec![(None, report)];
        }
    };
    let several = job.is_several();
    let (pipelines, errors) = crate::supervisor::resolve(&job);
    let lookups = errors.into_iter().map(|e| {
        let mut report = Report { checks: Vec::new() };
        report.failed("tables", Error::Source(e));
        (Some("pattern".to_owned()), report)
    });
    let checked: Vec<(Option<String>, Report)> = pipelines
        .iter()
        .map(|config| {
            let mut report = Report { checks: Vec::new() };
            // What the daemon would warn about at start-up is part of the line.
            let warnings = config.warnings();
            let mut detail = format!("{} (job {})", path.display(), config.name);
            for w in &warnings {
                detail.push_str("; warning: ");
                detail.push_str(w);
            }
            report.passed(
                "config",
                detail,
                Map::from_iter([
                    ("job".into(), json!(config.name)),
                    ("warnings".into(), json!(warnings)),
                ]),
            );
            report.job(config, options);
            (several.then(|| config.pipeline()), report)
        })
        .collect();
    checked.into_iter().chain(lookups).collect()
}

impl Report {
    /// Every check after the config's, in the daemon's order (statsd, source, store, Kafka,
    /// where the job starts), then how far behind it is.
    fn job(&mut self, config: &Config, options: &Options) {
        if let Some(addr) = &config.statsd_addr {
            match startup::metrics(config) {
                Ok(_) => self.passed("statsd", addr.clone(), Map::new()),
                Err(e) => self.failed("statsd", e),
            }
        }
        let size = self.source(config);
        let store = self.position_store(config);
        // The daemon's own producer, with a stop flag nobody sets.
        let mut producer = startup::producer(config, Arc::new(AtomicBool::new(false)));
        let topic_checked = self.kafka(&mut producer, config);
        let start = match store {
            Some((store, stored)) => {
                let needs_topic = stored.is_none() && options.initial_position.is_none();
                if needs_topic && !topic_checked {
                    self.skipped("start", "kafka topic");
                    None
                } else {
                    let start = startup::start(
                        &mut producer,
                        config,
                        &store,
                        stored,
                        options.initial_position,
                    );
                    self.start(start)
                }
            }
            None => {
                self.skipped("start", "position store");
                None
            }
        };
        match (size, start) {
            (Some(size), Some(start)) => self.rows_behind(size, start),
            (None, _) => self.skipped("rows behind", "source rows"),
            (_, None) => self.skipped("rows behind", "start"),
        }
    }

    /// The source and its size: `None` unless both could be read.
    fn source(&mut self, config: &Config) -> Option<(Option<Id>, RowCount)> {
        match startup::source(config) {
            Ok((mut source, policy)) => {
                self.passed(
                    "source",
                    format!(
                        "{}; columns {}; id step {}",
                        source.describe(),
                        source.columns().join(", "),
                        policy.step
                    ),
                    Map::from_iter([("columns".into(), json!(source.columns()))]),
                );
                self.table_size(&mut source)
            }
            Err(e) => {
                self.failed("source", e);
                self.skipped("source rows", "source");
                None
            }
        }
    }

    /// The store, its position and the lease: the store and what it holds (`None`: nothing
    /// stored), or `None` if it could not be read.
    fn position_store(&mut self, config: &Config) -> Option<(Store, Option<Id>)> {
        let read = startup::store(config)
            .and_then(|mut store| Ok((startup::stored_position(&mut store)?, store)));
        match read {
            Ok((stored, mut store)) => {
                let detail = match stored {
                    Some(p) => format!("position {p} in {}", store.describe()),
                    None => format!("no position stored in {}", store.describe()),
                };
                let fields = [
                    ("store".into(), json!(store.describe())),
                    ("position".into(), stored.map_or(Value::Null, number)),
                ];
                self.passed("position store", detail, Map::from_iter(fields));
                self.lease(&mut store, config.lease);
                Some((store, stored))
            }
            Err(e) => {
                self.failed("position store", e);
                self.skipped("lease", "position store");
                None
            }
        }
    }

    /// Each broker and the topic; whether the topic was found.
    fn kafka(&mut self, producer: &mut Producer, config: &Config) -> bool {
        let topic = startup::topic(producer, config);
        let brokers = producer.brokers();
        if brokers.is_empty() {
            if let Err(e) = topic {
                // No metadata: the bootstrap brokers are what failed.
                self.failed("kafka brokers", e);
                self.skipped("kafka topic", "kafka brokers");
                return false;
            }
        }
        for broker in brokers {
            self.broker(broker);
        }
        match topic {
            Ok(partitions) => {
                self.passed(
                    "kafka topic",
                    format!("{}: {partitions} partitions", config.kafka.topic),
                    Map::from_iter([
                        ("topic".into(), json!(config.kafka.topic)),
                        ("partitions".into(), json!(partitions)),
                    ]),
                );
                true
            }
            Err(e) => {
                self.failed("kafka topic", e);
                false
            }
        }
    }

    fn start(&mut self, start: Result<Start, Error>) -> Option<Start> {
        match start {
            Ok(start) => {
                let after = match start.position() {
                    BEFORE_ANY_ID => Value::Null,
                    p => number(p),
                };
                self.passed(
                    "start",
                    start.describe(),
                    Map::from_iter([("start_after".into(), after)]),
                );
                Some(start)
            }
            Err(e) => {
                self.failed("start", e);
                None
            }
        }
    }

    /// The highest id and the row count; `None` if either could not be read.
    fn table_size(&mut self, source: &mut Source) -> Option<(Option<Id>, RowCount)> {
        let read = source
            .max_id()
            .and_then(|max| Ok((max, source.estimated_rows()?)));
        match read {
            Ok((max, count)) => {
                let rows = match (count.rows, count.exact) {
                    (Some(n), true) => format!("{n} rows ({})", count.source),
                    (Some(n), false) => format!("about {n} rows (estimate: {})", count.source),
                    (None, _) => format!(
                        "row count unknown ({} has none: the table was never analyzed)",
                        count.source
                    ),
                };
                let highest = max.map_or("the table is empty".to_string(), |m| {
                    format!("highest id {m}")
                });
                let fields = [
                    ("highest_id".into(), max.map_or(Value::Null, number)),
                    ("rows".into(), json!(count.rows)),
                    ("rows_exact".into(), json!(count.exact)),
                ];
                self.passed(
                    "source rows",
                    format!("{highest}; {rows}"),
                    Map::from_iter(fields),
                );
                Some((max, count))
            }
            Err(e) => {
                self.failed("source rows", Error::Source(e));
                None
            }
        }
    }

    fn lease(&mut self, store: &mut Store, lease: Duration) {
        match store.lease_holder() {
            Ok(holder) => {
                let detail = describe_holder(holder.as_ref(), store.has_lease(), lease);
                let fields = match &holder {
                    None => [("holder".into(), Value::Null)].into_iter().collect(),
                    Some(h) => holder_fields(h, lease),
                };
                self.passed("lease", detail, fields);
            }
            Err(e) => self.failed("lease", Error::Store(e)),
        }
    }

    fn broker(&mut self, broker: BrokerReport) {
        let name = format!("kafka broker {} ({})", broker.node, broker.addr);
        match broker.result {
            Ok(info) => {
                let versions: Vec<String> = info
                    .versions
                    .iter()
                    .map(|(api, v)| match v {
                        Some(v) => format!("{api} v{v}"),
                        None => format!("{api} none (producing without idempotence)"),
                    })
                    .collect();
                let fields = [
                    ("node".into(), json!(broker.node)),
                    ("addr".into(), json!(broker.addr)),
                    ("security".into(), json!(info.security)),
                    (
                        "versions".into(),
                        Value::Object(
                            info.versions
                                .iter()
                                .map(|(api, v)| (api.to_string(), json!(v)))
                                .collect(),
                        ),
                    ),
                ];
                self.passed(
                    &name,
                    format!("{}; {}", info.security, versions.join(", ")),
                    Map::from_iter(fields),
                );
            }
            Err(e) => self.failed(&name, Error::Kafka(e)),
        }
    }

    fn rows_behind(&mut self, (max, count): (Option<Id>, RowCount), start: Start) {
        let (behind, detail) = match (start.position(), max) {
            (_, None) => (Some(0), "0: the table is empty".to_string()),
            (BEFORE_ANY_ID, Some(_)) => (
                count.rows.map(Id::from),
                match count.rows {
                    Some(n) => format!("the whole table, {n} rows (a new job)"),
                    None => "the whole table (a new job; its row count is unknown)".to_string(),
                },
            ),
            (position, Some(max)) => {
                let behind = (max - position).max(0);
                (
                    Some(behind),
                    format!(
                        "{behind} (highest id {max} − position {position}; holes in the ids make \
                         fewer rows)"
                    ),
                )
            }
        };
        let fields = [("rows_behind".into(), behind.map_or(Value::Null, number))];
        self.passed("rows behind", detail, Map::from_iter(fields));
    }

    fn passed(&mut self, name: &str, detail: String, fields: Map<String, Value>) {
        self.push(name, Outcome::Passed(detail), fields);
    }

    fn failed(&mut self, name: &str, e: Error) {
        self.push(name, Outcome::Failed(e), Map::new());
    }

    fn skipped(&mut self, name: &str, needs: &'static str) {
        self.push(name, Outcome::Skipped(needs), Map::new());
    }

    fn push(&mut self, name: &str, outcome: Outcome, fields: Map<String, Value>) {
        self.checks.push(Check {
            name: name.to_string(),
            outcome,
            fields,
        });
    }

    /// The errors of the failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Error> {
        self.checks.iter().filter_map(|c| match &c.outcome {
            Outcome::Failed(e) => Some(e),
            _ => None,
        })
    }

    /// One line per check: `✓ name: detail`, `✗ name: reason`, `- name: skipped (needs …)`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let line = match &c.outcome {
                Outcome::Passed(detail) => format!("✓ {}: {detail}", c.name),
                Outcome::Failed(e) => format!("✗ {}: {e}", c.name),
                Outcome::Skipped(needs) => format!("- {}: skipped (needs {needs})", c.name),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The report as one JSON document: `ok`, the `exit_code` given, every check (`name`,
    /// `status` ok/failed/skipped, `ok`, `detail` or `reason`, and its fields), and `summary`,
    /// the fields of all checks in one object (the brokers' as the list `brokers`).
    pub fn json(&self, exit_code: u8) -> Value {
        let mut summary = Map::new();
        let mut brokers = Vec::new();
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                let mut o = Map::new();
                o.insert("name".into(), json!(c.name));
                let (status, key, text) = match &c.outcome {
                    Outcome::Passed(d) => ("ok", "detail", d.clone()),
                    Outcome::Failed(e) => ("failed", "reason", e.to_string()),
                    Outcome::Skipped(needs) => ("skipped", "reason", format!("needs {needs}")),
                };
                o.insert("status".into(), json!(status));
                o.insert("ok".into(), json!(status == "ok"));
                o.insert(key.into(), json!(text));
                o.extend(c.fields.clone());
                if c.name.starts_with("kafka broker ") {
                    let mut b = c.fields.clone();
                    b.insert("ok".into(), json!(status == "ok"));
                    if let Outcome::Failed(e) = &c.outcome {
                        b.insert("reason".into(), json!(e.to_string()));
                    }
                    brokers.push(Value::Object(b));
                } else {
                    summary.extend(c.fields.clone());
                }
                Value::Object(o)
            })
            .collect();
        summary.insert("brokers".into(), Value::Array(brokers));
        json!({
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "checks": checks,
            "summary": summary,
        })
    }
}

/// The lease line of `check` and `position show`.
pub(super) fn describe_holder(
    holder: Option<&LeaseHolder>,
    has_lease: bool,
    lease: Duration,
) -> String {
    match (holder, has_lease) {
        (None, true) => "nobody holds it".to_string(),
        (None, false) => "no instance runs on this state file (its lock is free)".to_string(),
        (Some(h), _) => match h.expires_in {
            Some(left) => format!(
                "held by {}, renewed about {:.1}s ago (lease_sec {:.0}; it lapses in {:.1}s \
                 unless renewed)",
                h.owner,
                lease.saturating_sub(left).as_secs_f64(),
                lease.as_secs_f64(),
                left.as_secs_f64()
            ),
            None => format!("state file locked by a running instance, {}", h.owner),
        },
    }
}

/// A lease holder's fields for `--json`.
pub(super) fn holder_fields(h: &LeaseHolder, lease: Duration) -> Map<String, Value> {
    let secs = |d: Duration| json!((d.as_secs_f64() * 10.0).round() / 10.0);
    Map::from_iter([
        ("holder".into(), json!(h.owner)),
        (
            "age_sec".into(),
            h.expires_in
                .map_or(Value::Null, |left| secs(lease.saturating_sub(left))),
        ),
        (
            "expires_in_sec".into(),
            h.expires_in.map_or(Value::Null, secs),
        ),
    ])
}

/// An id as a JSON number (ids run from i64::MIN to u64::MAX; anything wider, as a string).
pub(super) fn number(id: Id) -> Value {
    serde_json::Number::from_i128(id).map_or_else(|| json!(id.to_string()), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(rows: Option<u64>) -> RowCount {
        RowCount {
            rows,
            exact: false,
            source: "pg_class.reltuples",
        }
    }

    /// The rows-behind check alone: its detail and its number.
    fn behind(max: Option<Id>, rows: Option<u64>, start: Start) -> (String, Value) {
        let mut report = Report { checks: Vec::new() };
        report.rows_behind((max, count(rows)), start);
        let check = &report.checks[0];
        let Outcome::Passed(detail) = &check.outcome else {
            panic!("rows behind always passes")
        };
        (detail.clone(), check.fields["rows_behind"].clone())
    }

    #[test]
    fn rows_behind_is_the_highest_id_minus_the_position() {
        let (detail, n) = behind(Some(10), Some(9), Start::Stored(4));
        assert_eq!(n, json!(6));
        assert!(
            detail.starts_with("6 (highest id 10 − position 4;"),
            "{detail}"
        );
        // A position above the highest id (rows deleted, or set ahead by hand) is not behind.
        assert_eq!(behind(Some(10), None, Start::Initial(50)).1, json!(0));
        assert_eq!(behind(None, Some(0), Start::Stored(3)).1, json!(0));
        // A new job has the whole table ahead of it, as far as the count is known.
        assert_eq!(behind(Some(10), Some(8), Start::NewJob).1, json!(8));
        assert_eq!(
            behind(Some(10), Some(8), Start::Initial(BEFORE_ANY_ID)).1,
            json!(8)
        );
        let (detail, n) = behind(Some(10), None, Start::NewJob);
        assert_eq!(n, Value::Null);
        assert!(detail.contains("unknown"), "{detail}");
        // Wider than any JSON number: a string of its digits.
        let widest = Id::from(u64::MAX) - Id::from(i64::MIN);
        assert_eq!(
            behind(
                Some(Id::from(u64::MAX)),
                None,
                Start::Stored(Id::from(i64::MIN))
            )
            .1,
            json!(widest.to_string())
        );
    }

    #[test]
    fn the_report_reads_as_lines_and_as_json() {
        let mut report = Report { checks: Vec::new() };
        report.passed(
            "kafka topic",
            "t: 3 partitions".into(),
            Map::from_iter([("partitions".into(), json!(3))]),
        );
        report.passed(
            "kafka broker 1 (b:9092)",
            "TCP".into(),
            Map::from_iter([("node".into(), json!(1))]),
        );
        let lost = Error::PositionLost {
            store: "state file /s".into(),
            topic: "t".into(),
        };
        let reason = lost.to_string();
        report.failed("start", lost);
        report.skipped("rows behind", "start");
        assert_eq!(
            report.text(),
            format!(
                "✓ kafka topic: t: 3 partitions\n✓ kafka broker 1 (b:9092): TCP\n✗ start: \
                 {reason}\n- rows behind: skipped (needs start)\n"
            )
        );
        assert_eq!(report.failures().count(), 1);
        let doc = report.json(2);
        assert_eq!(doc["ok"], json!(false));
        assert_eq!(doc["exit_code"], json!(2));
        assert_eq!(doc["checks"][2]["status"], json!("failed"));
        assert_eq!(doc["checks"][2]["reason"], json!(reason));
        assert_eq!(doc["checks"][3]["status"], json!("skipped"));
        assert_eq!(doc["checks"][3]["ok"], json!(false));
        assert_eq!(doc["summary"]["partitions"], json!(3));
        assert_eq!(doc["summary"]["brokers"], json!([{"node": 1, "ok": true}]));
    }

    #[test]
    fn ids_beyond_json_numbers_become_strings() {
        assert_eq!(number(-5), json!(-5));
        assert_eq!(number(Id::from(u64::MAX)), json!(u64::MAX));
        assert_eq!(number(Id::MAX), json!(Id::MAX.to_string()));
    }
}
