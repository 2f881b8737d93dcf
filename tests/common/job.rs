//! A job's config file as a typed value: [`JobConfig`] holds the settings the tests use, in the
//! shape of the file (`repliqate:` → `replication:` → `sql_source:` / `kafka_target:`, see
//! src/config.rs), and writes the YAML through serde, so no test splices YAML text. Settings
//! left `None` are left out of the file (repliqate's default applies); [`JobConfig::set`] and
//! [`JobConfig::remove`] change any key by its dotted path, for the rare settings and for the
//! tests that feed repliqate a wrong file on purpose.
//!
//! This file depends on nothing else in tests/common (the bench includes it with `#[path]`);
//! `common::env::job` fills in the test stack's defaults.
#![allow(dead_code)] // each test binary, and the bench, uses a subset

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

/// A replication job's config file.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// `repliqate.name`: the job's name, part of its position key.
    pub name: String,
    /// Where the position is kept: `redis_addr` or `state_file` (neither: repliqate's default).
    pub store: Option<Store>,
    /// `lease_sec`: how long an active instance's lease lasts.
    pub lease: Option<Duration>,
    /// `replication.poll_interval_sec`.
    pub poll_interval: Duration,
    /// `replication.sql_source`.
    pub source: SqlSource,
    /// `replication.kafka_target`.
    pub kafka: KafkaTarget,
    /// `pipelines`, each entry as written (`pipeline`): when any, `sql_source.table` and
    /// `kafka_target.topic` are left out of `replication`.
    pub pipelines: Vec<Value>,
    /// Keys set (`Some`) or removed (`None`) after the typed settings are written, by dotted path
    /// below `repliqate` (e.g. `replication.sql_source.limit`), in order.
    edits: Vec<(String, Option<Value>)>,
}

/// Where a job keeps its position.
#[derive(Clone, Debug)]
pub enum Store {
    /// `redis_addr`: `host:port`, or a `redis://` URL.
    Redis(String),
    /// `state_file`: a file of the job's own.
    StateFile(PathBuf),
}

/// `replication.sql_source`: the keys are the YAML keys.
#[derive(Clone, Debug, Serialize)]
pub struct SqlSource {
    pub uri: String,
    pub table: String,
    pub primary_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "seconds")]
    pub query_timeout_sec: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "seconds")]
    pub connect_timeout_sec: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "seconds")]
    pub gap_timeout_sec: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_step: Option<u64>,
}

/// `replication.kafka_target`: the keys are the YAML keys.
#[derive(Clone, Debug, Serialize)]
pub struct KafkaTarget {
    pub topic: String,
    /// Bootstrap brokers, `host:port` each (empty: left out, repliqate's default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "seconds")]
    pub connect_timeout_sec: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "seconds")]
    pub request_timeout_sec: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "seconds")]
    pub delivery_timeout_sec: Option<Duration>,
}

/// A duration as the file writes it: a number of seconds.
fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// The Redis key of a job's position, spelled out as docs/messages.md ("Redis position") defines
/// it (not through repliqate's own code).
pub fn position_key(name: &str, table: &str, topic: &str) -> String {
    format!("repliqate:replication:offset:name={name}&table={table}&topic={topic}")
}

impl JobConfig {
    /// Job `name` replicating `table` (primary key `id`) of the database at `uri` to `topic`,
    /// polling every second; no store, brokers or optional settings yet.
    pub fn new(name: &str, uri: &str, table: &str, topic: &str) -> JobConfig {
        JobConfig {
            name: name.to_string(),
            store: None,
            lease: None,
            poll_interval: Duration::from_secs(1),
            source: SqlSource {
                uri: uri.to_string(),
                table: table.to_string(),
                primary_key: "id".to_string(),
                limit: None,
                fields: None,
                query_timeout_sec: None,
                connect_timeout_sec: None,
                gap_timeout_sec: None,
                id_step: None,
            },
            kafka: KafkaTarget {
                topic: topic.to_string(),
                brokers: Vec::new(),
                connect_timeout_sec: None,
                request_timeout_sec: None,
                delivery_timeout_sec: None,
            },
            pipelines: Vec::new(),
            edits: Vec::new(),
        }
    }

    /// A pipeline of `table` to `topic`, with `overrides` (`sql_source`, `kafka_target`
    /// mappings, or `null`) over the shared settings.
    pub fn pipeline(self, table: &str, topic: &str, overrides: Value) -> JobConfig {
        let mut entry = json!({ "table": table, "topic": topic });
        if let Value::Object(keys) = overrides {
            entry.as_object_mut().unwrap().extend(keys);
        }
        self.pipeline_entry(entry)
    }

    /// A `pipelines` entry as written (a `tables` pattern, say).
    pub fn pipeline_entry(mut self, entry: Value) -> JobConfig {
        self.pipelines.push(entry);
        self
    }

    /// The position kept in Redis at `addr` (`host:port` or a `redis://` URL).
    pub fn redis(mut self, addr: &str) -> JobConfig {
        self.store = Some(Store::Redis(addr.to_string()));
        self
    }

    /// The position kept in the file `path`.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> JobConfig {
        self.store = Some(Store::StateFile(path.into()));
        self
    }

    /// Bootstrap brokers, comma-separated `host:port`s (as `REPLIQATE_TEST_KAFKA_CLUSTER` has
    /// them).
    pub fn brokers(mut self, list: &str) -> JobConfig {
        self.kafka.brokers = list.split(',').map(str::to_string).collect();
        self
    }

    pub fn lease(mut self, lease: Duration) -> JobConfig {
        self.lease = Some(lease);
        self
    }

    pub fn poll_interval(mut self, interval: Duration) -> JobConfig {
        self.poll_interval = interval;
        self
    }

    /// `limit`: rows per batch.
    pub fn limit(mut self, rows: u64) -> JobConfig {
        self.source.limit = Some(rows);
        self
    }

    pub fn query_timeout(mut self, timeout: Duration) -> JobConfig {
        self.source.query_timeout_sec = Some(timeout);
        self
    }

    pub fn gap_timeout(mut self, timeout: Duration) -> JobConfig {
        self.source.gap_timeout_sec = Some(timeout);
        self
    }

    pub fn id_step(mut self, step: u64) -> JobConfig {
        self.source.id_step = Some(step);
        self
    }

    /// `connect_timeout_sec` of both the source and the Kafka target.
    pub fn connect_timeouts(mut self, timeout: Duration) -> JobConfig {
        self.source.connect_timeout_sec = Some(timeout);
        self.kafka.connect_timeout_sec = Some(timeout);
        self
    }

    /// The Kafka target's `request_timeout_sec` and `delivery_timeout_sec`.
    pub fn kafka_timeouts(mut self, request: Duration, delivery: Duration) -> JobConfig {
        self.kafka.request_timeout_sec = Some(request);
        self.kafka.delivery_timeout_sec = Some(delivery);
        self
    }

    /// Sets the key at `path` (dotted, below `repliqate`; its parent must exist) to `value`,
    /// whatever the typed settings say: for keys this type does not know, and for wrong values.
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> JobConfig {
        self.edits.push((path.to_string(), Some(value.into())));
        self
    }

    /// Leaves the key at `path` (dotted, below `repliqate`) out of the file; it must be there.
    pub fn remove(mut self, path: &str) -> JobConfig {
        self.edits.push((path.to_string(), None));
        self
    }

    /// The key of the job's position in Redis.
    pub fn key(&self) -> String {
        position_key(&self.name, &self.source.table, &self.kafka.topic)
    }

    /// The file's document, edits applied.
    pub fn document(&self) -> Value {
        let mut top = Map::new();
        top.insert("name".into(), json!(self.name));
        match &self.store {
            Some(Store::Redis(addr)) => {
                top.insert("redis_addr".into(), json!(addr));
            }
            Some(Store::StateFile(path)) => {
                top.insert("state_file".into(), json!(path.display().to_string()));
            }
            None => {}
        }
        if let Some(lease) = self.lease {
            top.insert("lease_sec".into(), json!(lease.as_secs_f64()));
        }
        top.insert(
            "replication".into(),
            json!({
                "poll_interval_sec": self.poll_interval.as_secs_f64(),
                "sql_source": self.source,
                "kafka_target": self.kafka,
            }),
        );
        if !self.pipelines.is_empty() {
            let replication = top["replication"].as_object_mut().unwrap();
            replication["sql_source"]
                .as_object_mut()
                .unwrap()
                .remove("table");
            replication["kafka_target"]
                .as_object_mut()
                .unwrap()
                .remove("topic");
            top.insert("pipelines".into(), Value::Array(self.pipelines.clone()));
        }
        let mut doc = json!({ "repliqate": top });
        for (path, value) in &self.edits {
            edit(&mut doc["repliqate"], path, value.clone());
        }
        doc
    }

    /// The config file's text.
    pub fn yaml(&self) -> String {
        serde_yaml::to_string(&self.document()).expect("a JSON value serializes as YAML")
    }
}

/// Sets (`Some`) or removes (`None`) the key at the dotted `path` below `node`.
fn edit(node: &mut Value, path: &str, value: Option<Value>) {
    let (parents, key) = path.rsplit_once('.').map_or(("", path), |(p, k)| (p, k));
    let mut node = node;
    for name in parents.split('.').filter(|n| !n.is_empty()) {
        node = node
            .get_mut(name)
            .unwrap_or_else(|| panic!("no {name:?} in the config, to edit {path:?}"));
    }
    let map = node
        .as_object_mut()
        .unwrap_or_else(|| panic!("{path:?}: its parent is not a mapping"));
    match value {
        Some(value) => {
            map.insert(key.to_string(), value);
        }
        None => {
            assert!(
                map.shift_remove(key).is_some(),
                "no {path:?} in the config to remove"
            );
        }
    }
}
