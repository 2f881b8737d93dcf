//! The config file as written: field names are the YAML keys, and `deny_unknown_fields` turns
//! typos into errors naming the key. The field types check themselves as serde reads them
//! (`fields.rs`), so their errors carry the line; `build.rs` turns this into a `Config`.

use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::fields::*;
use super::properties::Properties;
use super::{Acks, Compression, KeyMode, LogFormat, MAX_SECONDS, MIN_SECONDS};

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with a top-level `repliqate:` key"
)]
pub(super) struct RawFile {
    pub repliqate: RawRepliqate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of repliqate settings")]
pub(super) struct RawRepliqate {
    pub name: Checked<JobName>,
    pub statsd_addr: Option<Checked<HostPort>>,
    pub metrics_addr: Option<Checked<ListenAddr>>,
    pub stall_timeout_sec: Option<Seconds>,
    pub ready_lag_sec: Option<Seconds>,
    pub redis_addr: Option<Checked<RedisAddr>>,
    pub redis_url: Option<Checked<RedisUrl>>,
    pub redis_tls: Option<RawRedisTls>,
    pub redis_password_file: Option<Checked<NonEmpty>>,
    pub state_file: Option<Checked<NonEmpty>>,
    pub redis_timeout_sec: Option<Seconds>,
    pub lease_sec: Option<Seconds>,
    pub log_format: Option<LogFormat>,
    pub replication: RawReplication,
    /// Many tables in one job: each entry a pipeline, over `replication`'s shared settings.
    pub pipelines: Option<Vec<RawPipeline>>,
}

/// One entry of `pipelines`: a table, its topic, and the shared settings it overrides.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with table and topic, and sql_source or kafka_target settings that \
                 override the shared ones"
)]
pub(super) struct RawPipeline {
    /// One table; or `tables`, not both.
    pub table: Option<Checked<TableName>>,
    /// A SQL `LIKE` pattern (tables discovered as they appear), or a list of names.
    pub tables: Option<RawTables>,
    /// With a `tables` pattern: `LIKE` patterns of tables to leave out.
    pub exclude: Option<List<Checked<NonEmpty>>>,
    pub topic: Checked<TopicTemplate>,
    pub sql_source: Option<RawSourceOverride>,
    pub kafka_target: Option<RawKafkaOverride>,
}

/// `redis_tls`: a private CA and a client certificate for `rediss://`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with ca_file, cert_file, key_file and key_password (or \
                 key_password_file)"
)]
pub(super) struct RawRedisTls {
    pub ca_file: Option<Checked<NonEmpty>>,
    pub cert_file: Option<Checked<NonEmpty>>,
    pub key_file: Option<Checked<NonEmpty>>,
    /// The password of an encrypted PKCS#8 `key_file`.
    pub key_password: Option<Checked<NonEmpty>>,
    pub key_password_file: Option<Checked<NonEmpty>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of replication settings")]
pub(super) struct RawReplication {
    pub poll_interval_sec: Seconds,
    pub retry_backoff_max_sec: Option<Seconds>,
    /// How often `tables` patterns are looked up again.
    pub discover_interval_sec: Option<Seconds>,
    pub sql_source: RawSource,
    pub kafka_target: RawKafka,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of sql_source settings")]
pub(super) struct RawSource {
    pub uri: Checked<Uri>,
    pub password_file: Option<Checked<NonEmpty>>,
    /// The password of an encrypted PostgreSQL `sslkey`, from a file (libpq's `sslpassword`).
    pub sslpassword_file: Option<Checked<NonEmpty>>,
    /// Required without `pipelines`, refused with them (each pipeline names its table).
    pub table: Option<Checked<TableName>>,
    pub primary_key: Checked<NonEmpty>,
    pub limit: Option<Limit>,
    pub fields: Option<List<Checked<NonEmpty>>>,
    pub query_timeout_sec: Option<Seconds>,
    pub connect_timeout_sec: Option<Seconds>,
    pub gap_timeout_sec: Option<GapTimeout>,
    pub id_step: Option<IdStep>,
}

/// `gap_timeout_sec`: like `Seconds`, but 0 is allowed (it turns gap holding off).
#[derive(Clone, Copy)]
pub(super) struct GapTimeout(pub Duration);

impl<'de> Deserialize<'de> for GapTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v == 0.0 || (v.is_finite() && (MIN_SECONDS..=MAX_SECONDS).contains(&v)) {
            Ok(GapTimeout(Duration::from_secs_f64(v)))
        } else {
            Err(de::Error::custom(format!(
                "{v:?} is out of range; expected 0 (never hold rows at id gaps) or a number of \
                 seconds from {MIN_SECONDS} to {MAX_SECONDS}"
            )))
        }
    }
}

/// `id_step`: the increment between consecutive ids, 1 to 1,000,000.
#[derive(Clone, Copy)]
pub(super) struct IdStep(pub u64);

impl<'de> Deserialize<'de> for IdStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if (1..=1_000_000).contains(&v) {
            Ok(IdStep(v as u64))
        } else {
            Err(de::Error::custom(format!(
                "{v} is out of range; expected an integer step from 1 to 1000000"
            )))
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of kafka_target settings")]
pub(super) struct RawKafka {
    /// Required without `pipelines`, refused with them (each pipeline names its topic).
    pub topic: Option<Checked<Topic>>,
    pub brokers: Option<List<Checked<HostPort>>>,
    pub key: Option<KeyMode>,
    pub compression: Option<Compression>,
    pub acks: Option<Acks>,
    pub idempotence: Option<bool>,
    pub request_timeout_sec: Option<Seconds>,
    pub delivery_timeout_sec: Option<Seconds>,
    pub connect_timeout_sec: Option<Seconds>,
    pub max_request_size: Option<RequestSize>,
    pub client_id: Option<Checked<NonEmpty>>,
    pub properties: Option<Properties>,
    /// A Java `.properties` file of Kafka client properties, merged with `properties`.
    pub properties_file: Option<Checked<NonEmpty>>,
}

/// `tables`: a pattern, or a list of names.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a SQL LIKE pattern of table names (e.g. \"audit_%\"), or a list of table names"
)]
pub(super) enum RawTables {
    Pattern(Checked<NonEmpty>),
    List(List<Checked<TableName>>),
}

/// A pipeline's `sql_source`: any shared `sql_source` key but `table`, overriding it.
#[derive(Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of sql_source settings (the pipeline names its table)"
)]
pub(super) struct RawSourceOverride {
    pub uri: Option<Checked<Uri>>,
    pub password_file: Option<Checked<NonEmpty>>,
    pub sslpassword_file: Option<Checked<NonEmpty>>,
    pub primary_key: Option<Checked<NonEmpty>>,
    pub limit: Option<Limit>,
    pub fields: Option<List<Checked<NonEmpty>>>,
    pub query_timeout_sec: Option<Seconds>,
    pub connect_timeout_sec: Option<Seconds>,
    pub gap_timeout_sec: Option<GapTimeout>,
    pub id_step: Option<IdStep>,
}

/// A pipeline's `kafka_target`: any shared `kafka_target` key but `topic`, overriding it.
/// `properties` are merged per property over the shared ones.
#[derive(Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of kafka_target settings (the pipeline names its topic)"
)]
pub(super) struct RawKafkaOverride {
    pub brokers: Option<List<Checked<HostPort>>>,
    pub key: Option<KeyMode>,
    pub compression: Option<Compression>,
    pub acks: Option<Acks>,
    pub idempotence: Option<bool>,
    pub request_timeout_sec: Option<Seconds>,
    pub delivery_timeout_sec: Option<Seconds>,
    pub connect_timeout_sec: Option<Seconds>,
    pub max_request_size: Option<RequestSize>,
    pub client_id: Option<Checked<NonEmpty>>,
    pub properties: Option<Properties>,
    pub properties_file: Option<Checked<NonEmpty>>,
}
