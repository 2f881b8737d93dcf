//! The configuration file, read once at start-up into typed, validated settings.
//!
//! The YAML schema is the old Python tool's (docs/messages.md, "Config file"), so existing files
//! keep working; every key we added has a default. Everything that can be checked without
//! touching the network is checked here, so the rest of the program takes a `Config` and never
//! re-checks an `Option`.
//!
//! Errors are one line: `<file>: <dotted.path>: <what is wrong> at line L column C`. To keep
//! serde_yaml's path and position on our own errors, each check runs inside a serde `Visitor`
//! (errors raised there get the scalar's position); checks made after deserializing name the
//! dotted path without a line.
//!
//! `${VAR}` in any string value is replaced by the environment variable `VAR`, so that passwords
//! need not live in the file; `$${` stands for a literal `${`. A missing variable is an error.
//! What this module does not know: which URI schemes have a source compiled in (the source
//! module decides), and whether hosts resolve (that is a run-time, retriable matter).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod build;
mod fields;
mod known_properties;
mod properties;
mod raw;

use crate::secret::Secret;
use crate::tls::{ClientCert, Password, Pem, TlsFile, TlsSettings, Trust};

/// Largest config file we read. Real files are a few hundred bytes; this bounds memory when the
/// path points at something that is not a config file.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Largest accepted `limit` (rows per batch). A batch is held in memory and published as one
/// unit, so the cap bounds memory use.
pub const MAX_LIMIT: u64 = 1_000_000;

/// Default `gap_timeout_sec`. Holes that the database can prove final (rolled back, or every
/// transaction that could fill them has ended) are released within a poll; the timeout only
/// bounds the wait where no proof is possible (missing privilege, cached sequences, SQLite never
/// needs it). A minute covers ordinary OLTP write transactions many times over while keeping the
/// worst-case added latency of an unprovable hole at one minute.
const DEFAULT_GAP_TIMEOUT: Duration = Duration::from_secs(60);

/// The defaults of the settings that are not the producer's (those are `ProducerConfig::default`).
const DEFAULT_LIMIT: usize = 10_000;
const DEFAULT_KEY: KeyMode = KeyMode::PrimaryKey;
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);
const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// `discover_interval_sec`: a minute between looks for tables a `tables` pattern matches.
const DEFAULT_DISCOVER_INTERVAL: Duration = Duration::from_secs(60);
/// `redis_timeout_sec`: connecting to Redis, and each command. Redis answers in microseconds;
/// a few seconds tell a hung server from a slow one, well within the 15 s lease.
const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// `ready_lag_sec`: an active instance fetching full batches for longer than this is not ready.
/// A minute of catching up is a backlog of millions of rows at the rates we measure; longer
/// means it is not keeping up.
const DEFAULT_READY_LAG: Duration = Duration::from_secs(60);
/// `log_format`: env_logger's text lines, as before the key existed.
const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Text;

/// Longest accepted duration setting: one year. `Duration::from_secs_f64` panics on overflow,
/// and nothing sensible waits longer.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// Shortest accepted duration setting: one millisecond.
const MIN_SECONDS: f64 = 0.001;

/// A job as configured: its pipelines, each a table replicated to a topic. The old single-table
/// form (`replication` names the table and the topic) is a job of one pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The pipelines named in the file (`table`, a `tables` list, or the old form), in its
    /// order; each complete, with the job's settings.
    pub pipelines: Vec<Config>,
    /// `tables` patterns: pipelines of the tables found as they appear.
    pub patterns: Vec<Pattern>,
    /// How often the patterns are looked up again (`discover_interval_sec`).
    pub discover_interval: Duration,
}

/// The pipelines of `table` and `topic` (`None`: any) among `pipelines`, in order; none is an
/// error naming them all.
pub fn select<'c>(
    pipelines: &'c [Config],
    table: Option<&str>,
    topic: Option<&str>,
) -> Result<Vec<&'c Config>, String> {
    let chosen: Vec<&Config> = pipelines
        .iter()
        .filter(|c| table.is_none_or(|t| c.source.spec.table == t))
        .filter(|c| topic.is_none_or(|t| c.kafka.topic == t))
        .collect();
    if chosen.is_empty() {
        let asked: Vec<String> = [("table", table), ("topic", topic)]
            .iter()
            .filter_map(|(what, v)| v.map(|v| format!("{what} {v}")))
            .collect();
        return Err(format!(
            "no pipeline of this job has {}; its pipelines: {}",
            asked.join(" and "),
            describe(pipelines)
        ));
    }
    Ok(chosen)
}

/// `table → topic` of each of `pipelines`, comma-separated.
pub fn describe(pipelines: &[Config]) -> String {
    let all: Vec<String> = pipelines.iter().map(Config::pipeline).collect();
    all.join(", ")
}

/// A `tables` pattern of `pipelines`: a pipeline for each table whose name matches it, found
/// in the database at start-up and every `discover_interval_sec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// The SQL `LIKE` pattern, and those of the tables left out (`exclude`).
    pub like: String,
    pub exclude: Vec<String>,
    /// The pipelines' topic, where `{table}` stands for each table's name.
    pub topic: String,
    /// Each pipeline's settings but its table and topic (which are empty here).
    pub template: Config,
    /// Where it is in the file (`repliqate.pipelines[i]`), for messages.
    pub at: String,
}

impl Pattern {
    /// The pipeline of `table`, found by this pattern; a topic that comes out as no topic name
    /// is an error naming the table.
    pub fn pipeline(&self, table: &str) -> Result<Config, String> {
        let topic = fields::TopicTemplate::topic(&self.topic, table)
            .map_err(|e| format!("{}.topic, for table {table}: {e}", self.at))?;
        let mut config = self.template.clone();
        config.source.spec.table = table.to_owned();
        config.kafka.topic = topic;
        Ok(config)
    }
}

impl Job {
    /// The job's own settings (name, store, endpoint, logging), the same in every pipeline's
    /// config: the first pipeline's, or the first pattern's.
    pub fn settings(&self) -> &Config {
        self.pipelines
            .first()
            .unwrap_or_else(|| &self.patterns[0].template)
    }

    /// Whether it runs several pipelines (or may: a pattern).
    pub fn is_several(&self) -> bool {
        self.pipelines.len() > 1 || !self.patterns.is_empty()
    }

    /// The one pipeline of a single-table job; for a job of several, an error naming `what`
    /// cannot take them yet.
    pub fn into_single(mut self, what: &str) -> Result<Config, String> {
        if self.pipelines.len() == 1 && self.patterns.is_empty() {
            return Ok(self.pipelines.remove(0));
        }
        Err(format!(
            "repliqate.pipelines: {} pipelines{}; {what} takes a job of one table for now",
            self.pipelines.len(),
            if self.patterns.is_empty() {
                ""
            } else {
                " and tables by pattern"
            }
        ))
    }
}

/// The validated configuration of one pipeline of a replication job: one table to one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub name: String,
    /// `host:port` of the statsd daemon; `None` = no metrics.
    pub statsd_addr: Option<String>,
    /// `host:port` the HTTP endpoint (`/metrics`, `/healthz`, `/readyz`) listens on; `None` =
    /// none.
    pub metrics_addr: Option<String>,
    /// What `/healthz` and `/readyz` are judged by.
    pub health: Thresholds,
    pub position_store: PositionStoreConfig,
    /// Sleep between polls once caught up.
    pub poll_interval: Duration,
    /// Cap of the main loop's exponential backoff after errors.
    pub retry_backoff_max: Duration,
    /// Lifetime of the active instance's lease in Redis (active/standby); a standby takes over
    /// within this time after the active instance dies.
    pub lease: Duration,
    pub source: SourceSettings,
    pub kafka: KafkaSettings,
    /// How log lines are written (text, or one JSON object per line).
    pub log_format: LogFormat,
}

impl Config {
    /// `table → topic`: how log lines, probes, reports and errors name this pipeline.
    pub fn pipeline(&self) -> String {
        format!("{} → {}", self.source.spec.table, self.kafka.topic)
    }

    /// What the operator should hear about this configuration: settings that are accepted but
    /// weaken something. `load` logs nothing itself (the log format comes from this file, so the
    /// logger starts after it); the caller logs these once it has.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.kafka.property_warnings.clone();
        warnings.extend(properties::warnings(&self.kafka.producer.security));
        let longest = self.longest_step();
        if self.health.stall_timeout < longest {
            warnings.push(format!(
                "repliqate.stall_timeout_sec: {}s is less than a healthy step may take with these \
                 timeouts ({}s): /healthz may report a slow but working loop as stalled",
                self.health.stall_timeout.as_secs_f64(),
                longest.as_secs_f64()
            ));
        }
        warnings
    }

    /// The default `stall_timeout_sec` of these settings: see `longest_step`.
    pub fn longest_step(&self) -> Duration {
        let redis_timeout = match &self.position_store {
            PositionStoreConfig::Redis { timeout, .. } => Some(*timeout),
            PositionStoreConfig::File { .. } => None,
        };
        let spec = &self.source.spec;
        build::longest_step(
            &self.kafka.producer,
            spec.connect_timeout,
            spec.query_timeout,
            redis_timeout,
        )
    }
}

/// The SQL table to replicate, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSettings {
    /// What the source module connects to (its own type, built here).
    pub spec: SourceSpec,
    /// Rows per batch, 1..=MAX_LIMIT.
    pub limit: usize,
    /// How long rows above a hole in the id sequence are held while a transaction that could
    /// fill the hole may still be running. Zero: never hold (the old tool's behaviour).
    pub gap_timeout: Duration,
    /// The id sequence's step, when the config overrides what the database says.
    pub id_step: Option<u64>,
}

/// The Kafka topic and how to produce to it.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    pub topic: String,
    pub key: KeyMode,
    /// The producer's own settings, built here from `ProducerConfig::default()` and the file.
    pub producer: ProducerConfig,
    /// Kafka client properties ignored (each naming the property and why), and names given
    /// twice in `properties_file`: warnings for the log and `repliqate check`.
    pub property_warnings: Vec<String>,
}

/// What the Kafka message key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// The primary key as a decimal string (keeps per-row order within a partition).
    PrimaryKey,
    /// No key, as the old tool did.
    None,
}

// Each boundary's own config types: the file is parsed straight into them (one concept, not two).
pub use crate::kafka::{Acks, Compression, ProducerConfig};
pub use crate::logging::LogFormat;
pub use crate::source::SourceSpec;
pub use crate::status::Thresholds;
pub use crate::store::PositionStoreConfig;

/// Why the configuration could not be loaded. Never retriable: the file must be fixed.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The file was read but is not a valid configuration; `message` is one line.
    Invalid { path: PathBuf, message: String },
}

impl ConfigError {
    pub fn is_retriable(&self) -> bool {
        false
    }

    fn invalid(path: &Path, message: impl fmt::Display) -> ConfigError {
        // serde_yaml messages are one line already; make sure nothing we pass on breaks that.
        let message = message.to_string().replace(['\n', '\r'], " ");
        let message = name_missing_key(&message).unwrap_or(message);
        ConfigError::Invalid {
            path: path.to_owned(),
            message,
        }
    }
}

/// serde says `a.b: missing field `c` at line …`; docs/messages.md ("Config file") promises the
/// dotted path of the missing key itself: `a.b.c: missing required key at line …`.
fn name_missing_key(message: &str) -> Option<String> {
    let (path, rest) = message.split_once(": missing field `")?;
    let (key, tail) = rest.split_once('`')?;
    let dotted = if path.is_empty() || path.contains(' ') {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    };
    Some(format!("{dotted}: missing required key{tail}"))
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, cause } => {
                write!(f, "reading config file {}: {cause}", path.display())
            }
            ConfigError::Invalid { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { cause, .. } => Some(cause),
            ConfigError::Invalid { .. } => None,
        }
    }
}

/// Reads and validates the config file at `path`, of a job of one pipeline (see `load_job`).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    single(load_job(path)?, path)
}

/// `parse`, for a job of one pipeline.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    single(parse_job(text, origin)?, origin)
}

fn single(job: Job, origin: &Path) -> Result<Config, ConfigError> {
    job.into_single("this command")
        .map_err(|message| ConfigError::invalid(origin, message))
}

/// Reads and validates the config file at `path`: every pipeline of the job.
pub fn load_job(path: &Path) -> Result<Job, ConfigError> {
    let read_err = |cause| ConfigError::Read {
        path: path.to_owned(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > MAX_FILE_SIZE {
        return Err(too_large(path, size));
    }
    // The size can change between the check and the read (or be unknown for special files), so
    // the read itself is bounded too.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large(path, bytes.len() as u64));
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let offset = e.valid_up_to();
            let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(ConfigError::invalid(
                path,
                format!(
                    "the file is not valid UTF-8: invalid byte 0x{:02x} at byte offset {offset} \
                     (line {line}); save it as UTF-8",
                    bytes[offset]
                ),
            ));
        }
    };
    parse_job(text, path)
}

fn too_large(path: &Path, size: u64) -> ConfigError {
    ConfigError::invalid(
        path,
        format!(
            "the file is {size} bytes or more; a config file may be at most {MAX_FILE_SIZE} bytes \
             (1 MiB)"
        ),
    )
}

/// Parses and validates config text. `origin` is the file it came from: it prefixes errors and
/// its directory is the base of relative and default state file paths.
pub fn parse_job(text: &str, origin: &Path) -> Result<Job, ConfigError> {
    if let Some(line) = tab_indented_line(text) {
        return Err(ConfigError::invalid(
            origin,
            format!(
                "tab characters are not allowed for indentation in YAML (line {line}); indent \
                 with spaces"
            ),
        ));
    }
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(ConfigError::invalid(
            origin,
            "the file is empty; expected a mapping with a top-level `repliqate:` key",
        ));
    }
    let raw: raw::RawFile =
        serde_yaml::from_str(text).map_err(|e| ConfigError::invalid(origin, e))?;
    build::build(raw.repliqate, origin).map_err(|message| ConfigError::invalid(origin, message))
}

/// The 1-based number of the first line whose indentation holds a tab, if any.
fn tab_indented_line(text: &str) -> Option<usize> {
    text.lines().enumerate().find_map(|(i, line)| {
        let indent_len = line.len() - line.trim_start_matches([' ', '\t']).len();
        let has_content = indent_len < line.len();
        (has_content && line[..indent_len].contains('\t')).then_some(i + 1)
    })
}

#[cfg(test)]
mod tests;
