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

/// The validated configuration of one replication job.
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

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
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
    parse(text, path)
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
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
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
mod tests {
    use super::fields::*;
    use super::*;

    const OLD: &str = "\
repliqate:
  name: processes
  statsd_addr: localhost:8125
  redis_addr: localhost:6379
  replication:
    poll_interval_sec: 10
    sql_source:
      uri: sqlite:////var/lib/app/metrics.db
      table: processes
      primary_key: id
      limit: 100
      fields: [pid, name, user, command]
    kafka_target:
      topic: repliqate-processes
      brokers: [127.0.0.1:9092]
";

    fn parse_str(text: &str) -> Result<Config, String> {
        parse(text, Path::new("/etc/repliqate/job.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn redis_timeout_has_its_own_setting_only_beside_redis_addr() {
        let with = OLD.replace(
            "  redis_addr: localhost:6379\n",
            "  redis_addr: localhost:6379\n  redis_timeout_sec: 2.5\n",
        );
        let c = parse_str(&with).expect("redis_timeout_sec parses");
        assert_eq!(
            c.position_store,
            PositionStoreConfig::Redis {
                addr: "localhost:6379".into(),
                timeout: Duration::from_millis(2500),
                tls: None,
                password: None,
            }
        );
        // The Kafka request timeout no longer sets it.
        assert_eq!(c.kafka.producer.request_timeout, Duration::from_secs(30));
        let without = OLD.replace("  redis_addr: localhost:6379\n", "  redis_timeout_sec: 2\n");
        let err = parse_str(&without)
            .expect_err("no Redis to time out")
            .to_string();
        assert!(
            err.contains("`redis_timeout_sec` is set without `redis_url` (or `redis_addr`)"),
            "{err}"
        );
    }

    #[test]
    fn metrics_addr_and_its_probe_thresholds() {
        let c = parse_str(OLD).unwrap();
        assert_eq!(c.metrics_addr, None);
        // The default stall timeout adds up the longest healthy step: 2 × (10 + 3 × 30) + 120
        // + 30 + 3 × 5.
        assert_eq!(c.health.stall_timeout, Duration::from_secs(365));
        assert_eq!(c.health.ready_lag, Duration::from_secs(60));

        let with = |extra: &str| {
            parse_str(&OLD.replace(
                "  redis_addr: localhost:6379\n",
                &format!("  redis_addr: localhost:6379\n{extra}"),
            ))
        };
        let c = with("  metrics_addr: 127.0.0.1:0\n  stall_timeout_sec: 90\n  ready_lag_sec: 5\n")
            .unwrap();
        assert_eq!(c.metrics_addr.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(c.health.stall_timeout, Duration::from_secs(90));
        assert_eq!(c.health.ready_lag, Duration::from_secs(5));
        let err = with("  metrics_addr: 9464\n").unwrap_err();
        assert!(
            err.contains("repliqate.metrics_addr: `9464` has no port"),
            "{err}"
        );
        let err = with("  ready_lag_sec: 5\n").unwrap_err();
        assert!(
            err.contains("`ready_lag_sec` is set without `metrics_addr`"),
            "{err}"
        );
        let err = with("  metrics_addr: 127.0.0.1:9464\n  stall_timeout_sec: 0\n").unwrap_err();
        assert!(err.contains("repliqate.stall_timeout_sec:"), "{err}");
    }

    #[test]
    fn old_tool_config_parses_with_defaults_for_new_keys() {
        let c = parse_str(OLD).expect("old config must parse");
        assert_eq!(c.name, "processes");
        assert_eq!(c.statsd_addr.as_deref(), Some("localhost:8125"));
        assert_eq!(
            c.position_store,
            PositionStoreConfig::Redis {
                addr: "localhost:6379".into(),
                timeout: Duration::from_secs(5),
                tls: None,
                password: None,
            }
        );
        assert_eq!(c.poll_interval, Duration::from_secs(10));
        assert_eq!(c.source.limit, 100);
        assert_eq!(
            c.source.spec.fields,
            Some(vec![
                "pid".into(),
                "name".into(),
                "user".into(),
                "command".into()
            ])
        );
        assert_eq!(c.kafka.producer.bootstrap, vec!["127.0.0.1:9092"]);
        assert_eq!(c.kafka.key, KeyMode::PrimaryKey);
        assert_eq!(c.kafka.producer.acks, Acks::All);
        assert_eq!(c.kafka.producer.compression, Compression::None);
        assert!(c.kafka.producer.idempotent);
        assert_eq!(c.kafka.producer.delivery_timeout, Duration::from_secs(120));
        assert_eq!(c.kafka.producer.client_id, "repliqate");
        assert_eq!(c.retry_backoff_max, Duration::from_secs(5));
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn omitted_optional_keys_get_defaults() {
        let text = OLD
            .replace("  statsd_addr: localhost:8125\n", "")
            .replace("  redis_addr: localhost:6379\n", "")
            .replace("      limit: 100\n", "")
            .replace("      fields: [pid, name, user, command]\n", "")
            .replace("      brokers: [127.0.0.1:9092]\n", "")
            .replace("poll_interval_sec: 10", "poll_interval_sec: 0.25");
        let c = parse_str(&text).expect("minimal config must parse");
        assert_eq!(c.statsd_addr, None);
        assert_eq!(
            c.position_store,
            PositionStoreConfig::File {
                path: PathBuf::from("/etc/repliqate/repliqate-processes.offset")
            }
        );
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(c.source.limit, 10_000);
        assert_eq!(c.source.spec.fields, None);
        assert_eq!(c.kafka.producer.bootstrap, vec!["localhost:9092"]);
    }

    #[test]
    fn errors_name_the_dotted_path_and_line() {
        let err = parse_str(&OLD.replace("      table: processes\n", "")).unwrap_err();
        assert!(
            err.contains("repliqate.replication.sql_source.table: missing required key"),
            "{err}"
        );
        assert!(err.starts_with("/etc/repliqate/job.yaml: "), "{err}");
        let err = parse_str(&OLD.replace("limit: 100", "limit: 0")).unwrap_err();
        assert!(
            err.contains("repliqate.replication.sql_source.limit: 0 is out of range")
                && err.contains("at line 11"),
            "{err}"
        );
    }

    #[test]
    fn env_vars_are_expanded_in_strings() {
        std::env::set_var("REPLIQATE_CONFIG_TEST_PW", "s3cr=t");
        let c = parse_str(&OLD.replace(
            "sqlite:////var/lib/app/metrics.db",
            "postgresql://u:${REPLIQATE_CONFIG_TEST_PW}@h/db",
        ))
        .expect("expanded");
        assert_eq!(c.source.spec.uri, "postgresql://u:s3cr=t@h/db");
        assert!(!format!("{c:?}").contains("s3cr=t"), "Debug must redact");
    }

    #[test]
    fn the_database_password_may_come_from_a_file() {
        let c = parse_str(&OLD.replace(
            "      uri: sqlite:////var/lib/app/metrics.db\n",
            "      uri: postgresql://u@h/db\n      password_file: /run/secrets/db\n",
        ))
        .expect("password_file parses");
        assert_eq!(
            c.source.spec.password,
            Some(Secret::File("/run/secrets/db".into()))
        );
        assert_eq!(parse_str(OLD).unwrap().source.spec.password, None);
        let err = parse_str(&OLD.replace(
            "      table: processes\n",
            "      table: processes\n      password_file: ''\n",
        ))
        .unwrap_err();
        assert!(
            err.contains("repliqate.replication.sql_source.password_file: the value is empty"),
            "{err}"
        );
    }

    #[test]
    fn env_expansion_rules() {
        std::env::set_var("REPLIQATE_CONFIG_TEST_X", "x");
        assert_eq!(expand_env("a${REPLIQATE_CONFIG_TEST_X}b").unwrap(), "axb");
        assert_eq!(
            expand_env("$${REPLIQATE_CONFIG_TEST_X}").unwrap(),
            "${REPLIQATE_CONFIG_TEST_X}"
        );
        assert_eq!(expand_env("cost $5").unwrap(), "cost $5");
        assert!(expand_env("${REPLIQATE_CONFIG_TEST_UNSET}")
            .unwrap_err()
            .contains("`REPLIQATE_CONFIG_TEST_UNSET` is not set"));
        assert!(expand_env("${oops").is_err());
        assert!(expand_env("${}").is_err());
    }

    #[test]
    fn host_port_rules() {
        for ok in [
            "localhost:9092",
            "10.0.0.1:1",
            "[::1]:9092",
            "kafka-1.example:65535",
        ] {
            assert_eq!(check_host_port(ok, Port::Required), Ok(()), "{ok}");
        }
        for bad in [
            "localhost",
            ":9092",
            "h:0",
            "h:70000",
            "h:x",
            "::1:9092",
            "[::1]",
            "a b:1",
        ] {
            assert!(check_host_port(bad, Port::Required).is_err(), "{bad}");
        }
    }

    #[test]
    fn redis_url_tls_and_password_file() {
        let with = |extra: &str| {
            parse_str(&OLD.replace("  redis_addr: localhost:6379\n", extra))
                .map(|c| c.position_store)
        };
        let store = with(
            "  redis_url: rediss://app@redis.internal:6380/2\n  redis_password_file: /run/pw\n  \
             redis_tls:\n    ca_file: /etc/ca.pem\n    cert_file: /etc/c.pem\n    key_file: /etc/k.pem\n",
        )
        .unwrap();
        let PositionStoreConfig::Redis {
            addr,
            tls,
            password,
            ..
        } = store
        else {
            panic!("{store:?}")
        };
        assert_eq!(addr, "rediss://app@redis.internal:6380/2");
        assert_eq!(password, Some(Secret::File("/run/pw".into())));
        let tls = tls.unwrap();
        assert!(
            matches!(&tls.ca, Some(Trust::Pem(Pem::File(f))) if f.setting == "repliqate.redis_tls.ca_file"),
            "{tls:?}"
        );
        assert!(tls.client.is_some() && tls.verify_hostname);

        for (extra, expected) in [
            ("  redis_url: redis://h:1\n  redis_addr: h:1\n", "both set"),
            (
                "  redis_url: redis://h:1\n  redis_tls: {ca_file: /ca.pem}\n",
                "not a rediss:// URL",
            ),
            (
                "  redis_tls: {ca_file: /ca.pem}\n",
                "`redis_tls` is set without `redis_url`",
            ),
            (
                "  redis_url: rediss://h:1\n  redis_tls: {cert_file: /c.pem}\n",
                "go together",
            ),
            (
                "  redis_url: rediss://h:1\n  redis_tls: {ca: /c.pem}\n",
                "unknown field `ca`",
            ),
        ] {
            let e = with(extra).unwrap_err().to_string();
            assert!(e.contains(expected), "{extra}: {e}");
        }
    }

    #[test]
    fn redis_uri_rules() {
        for ok in [
            "redis://h",
            "redis://:pw@h:6379/2",
            "redis://u:p@ss@h:1",
            "h:6379",
        ] {
            assert_eq!(RedisAddr::check(ok), Ok(()), "{ok}");
        }
        assert_eq!(RedisAddr::check("rediss://u:p@h:6380/1"), Ok(()));
        assert_eq!(RedisUrl::check("rediss://u:p@h:6380/1"), Ok(()));
        let err = RedisUrl::check("h:6379").unwrap_err();
        assert!(err.contains("unsupported scheme"), "{err}");
        let err = RedisAddr::check("http://:hunter2@h").unwrap_err();
        assert!(
            !err.contains("hunter2") && err.contains("unsupported scheme"),
            "{err}"
        );
        let err = RedisAddr::check("redis://:hunter2@h/x").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn codecs_not_compiled_in_are_refused() {
        let with = |codec: &str| {
            parse_str(&OLD.replace(
                "      brokers:",
                &format!("      compression: {codec}\n      brokers:"),
            ))
        };
        assert_eq!(
            with("snappy").unwrap().kafka.producer.compression,
            Compression::Snappy
        );
        for (codec, built) in [
            ("lz4", cfg!(feature = "lz4")),
            ("zstd", cfg!(feature = "zstd")),
        ] {
            match with(codec) {
                Ok(_) => assert!(built, "{codec} accepted without its feature"),
                Err(e) => {
                    assert!(!built, "{codec} refused with its feature: {e}");
                    assert!(
                        e.contains(&format!("rebuild with --features {codec}")),
                        "{e}"
                    );
                }
            }
        }
    }

    #[test]
    fn tab_indentation_is_named() {
        assert_eq!(tab_indented_line("a:\n  b: 1\n\tc: 2\n"), Some(3));
        assert_eq!(tab_indented_line("a:\n  b: \"x\ty\"\n \t\n"), None);
    }
}
