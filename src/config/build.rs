//! The file as read (`raw.rs`) turned into a `Config`: defaults applied, each in one place, and
//! the checks that involve more than one field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fields::*;
use super::raw::*;
use super::*;

/// Turns the deserialized file into a `Job`, applying defaults and the checks that involve
/// more than one field: one `Config` per pipeline.
pub(super) fn build(mut raw: RawRepliqate, origin: &Path) -> Result<Job, String> {
    let position_store = position_store(&mut raw, origin)?;
    let name = raw.name.into_string();
    let metrics_addr = raw.metrics_addr.map(Checked::into_string);
    for (set, key) in [
        (raw.stall_timeout_sec.is_some(), "stall_timeout_sec"),
        (raw.ready_lag_sec.is_some(), "ready_lag_sec"),
    ] {
        if set && metrics_addr.is_none() {
            return Err(format!(
                "repliqate: `{key}` is set without `metrics_addr`; it applies to the /healthz \
                 and /readyz endpoint, set metrics_addr (e.g. 127.0.0.1:9464) or remove it"
            ));
        }
    }
    let rep = raw.replication;
    let (pipelines, patterns) = match raw.pipelines {
        None => (
            vec![only_pipeline(rep.sql_source, rep.kafka_target, origin)?],
            Vec::new(),
        ),
        Some(list) => pipelines(rep.sql_source, rep.kafka_target, list, origin)?,
    };
    if (pipelines.len() > 1 || !patterns.is_empty())
        && matches!(position_store, PositionStoreConfig::File { .. })
    {
        return Err(
            "repliqate.pipelines: several pipelines keep their positions in Redis; set \
             redis_addr (or redis_url) in place of a state file, which holds one position"
                .to_owned(),
        );
    }
    let config = |(source, kafka): Settings| {
        let mut config = Config {
            name: name.clone(),
            statsd_addr: raw.statsd_addr.as_ref().map(|a| a.as_str().to_owned()),
            metrics_addr: metrics_addr.clone(),
            // The stall timeout's default is derived from the settings below.
            health: Thresholds {
                stall_timeout: Duration::ZERO,
                ready_lag: secs_or(raw.ready_lag_sec, DEFAULT_READY_LAG),
            },
            position_store: position_store.clone(),
            poll_interval: rep.poll_interval_sec.0,
            retry_backoff_max: secs_or(rep.retry_backoff_max_sec, DEFAULT_RETRY_BACKOFF_MAX),
            lease: secs_or(raw.lease_sec, DEFAULT_LEASE),
            source,
            kafka,
            log_format: raw.log_format.unwrap_or(DEFAULT_LOG_FORMAT),
        };
        config.health.stall_timeout = match raw.stall_timeout_sec {
            Some(s) => s.0,
            None => config.longest_step(),
        };
        config
    };
    Ok(Job {
        pipelines: pipelines.into_iter().map(config).collect(),
        patterns: patterns
            .into_iter()
            .map(|p| Pattern {
                like: p.like,
                exclude: p.exclude,
                topic: p.topic,
                template: config(p.settings),
                at: p.at,
            })
            .collect(),
        discover_interval: secs_or(rep.discover_interval_sec, DEFAULT_DISCOVER_INTERVAL),
    })
}

/// The old single-table form: `replication` names the table and the topic.
fn only_pipeline(
    src: RawSource,
    kafka_target: RawKafka,
    origin: &Path,
) -> Result<(SourceSettings, KafkaSettings), String> {
    let missing = |key: &str| {
        format!(
            "repliqate.replication.{key}: missing required key (or list the tables under \
             `pipelines`)"
        )
    };
    let table = src
        .table
        .clone()
        .ok_or_else(|| missing("sql_source.table"))?;
    let topic = kafka_target
        .topic
        .clone()
        .ok_or_else(|| missing("kafka_target.topic"))?;
    Ok((
        source(src, table.into_string()),
        kafka(kafka_target, topic.into_string(), origin)?,
    ))
}

/// `pipelines`: each entry's table and topic, over the shared `replication` settings it
/// overrides. A table and topic pair is one pipeline's alone (it names its position).
fn pipelines(
    shared_source: RawSource,
    shared_kafka: RawKafka,
    list: Vec<RawPipeline>,
    origin: &Path,
) -> Result<(Vec<Settings>, Vec<PatternSettings>), String> {
    for (set, key) in [
        (shared_source.table.is_some(), "sql_source.table"),
        (shared_kafka.topic.is_some(), "kafka_target.topic"),
    ] {
        if set {
            return Err(format!(
                "repliqate.replication.{key}: set beside `pipelines`; each pipeline names its \
                 own, remove it here"
            ));
        }
    }
    if list.is_empty() {
        return Err(
            "repliqate.pipelines: the list is empty; expected at least one pipeline (a table and \
             its topic), or remove the key"
                .to_owned(),
        );
    }
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    let mut out = Vec::new();
    let mut patterns = Vec::new();
    for (i, p) in list.into_iter().enumerate() {
        let at = format!("repliqate.pipelines[{i}]");
        // The tables it names, or (`Err`) the pattern that finds them.
        let tables: Result<Vec<String>, String> = match (p.table, p.tables, &p.exclude) {
            (Some(_), Some(_), _) => {
                return Err(format!(
                    "{at}: `table` and `tables` are both set; give one table, or a pattern or \
                     list of tables"
                ))
            }
            (None, None, _) => {
                return Err(format!(
                    "{at}: no `table` or `tables`; expected a table, or a SQL LIKE pattern or \
                     list of tables"
                ))
            }
            (None, Some(RawTables::List(_)), Some(_)) | (Some(_), None, Some(_)) => {
                return Err(format!(
                    "{at}.exclude: set without a `tables` pattern; it leaves tables out of what \
                     a pattern matches"
                ))
            }
            (Some(table), None, _) => Ok(vec![table.into_string()]),
            (None, Some(RawTables::List(list)), _) => {
                Ok(list.0.into_iter().map(Checked::into_string).collect())
            }
            (None, Some(RawTables::Pattern(like)), _) => Err(like.into_string()),
        };
        // The entry's settings, once for all its tables (a properties_file is read once).
        let src = overlay_source(shared_source.clone(), p.sql_source);
        let kafka_target = overlay_kafka(shared_kafka.clone(), p.kafka_target);
        let kafka = kafka(kafka_target, String::new(), origin).map_err(|e| format!("{at}: {e}"))?;
        let tables = match tables {
            Ok(tables) => tables,
            Err(like) => {
                patterns.push(PatternSettings {
                    like,
                    exclude: p
                        .exclude
                        .map(|l| l.0.into_iter().map(Checked::into_string).collect())
                        .unwrap_or_default(),
                    topic: p.topic.into_string(),
                    settings: (source(src, String::new()), kafka),
                    at,
                });
                continue;
            }
        };
        for table in tables {
            let topic = TopicTemplate::topic(p.topic.as_str(), &table)
                .map_err(|e| format!("{at}.topic: {e}"))?;
            if let Some((_, _, j)) = seen.iter().find(|s| s.0 == table && s.1 == topic) {
                return Err(format!(
                    "{at}: table {table} to topic {topic} is pipelines[{j}]'s already; a table \
                     and topic pair is one pipeline (it names the position), remove one"
                ));
            }
            let kafka = KafkaSettings {
                topic: topic.clone(),
                ..kafka.clone()
            };
            out.push((source(src.clone(), table.clone()), kafka));
            seen.push((table, topic, i));
        }
    }
    Ok((out, patterns))
}

/// A pipeline's source and Kafka settings.
type Settings = (SourceSettings, KafkaSettings);

/// A `tables` pattern before its settings become a `Config`.
struct PatternSettings {
    like: String,
    exclude: Vec<String>,
    topic: String,
    /// With an empty table and topic.
    settings: Settings,
    at: String,
}

/// The shared `sql_source` with a pipeline's keys over it.
fn overlay_source(mut s: RawSource, over: Option<RawSourceOverride>) -> RawSource {
    let Some(o) = over else { return s };
    s.uri = o.uri.unwrap_or(s.uri);
    s.primary_key = o.primary_key.unwrap_or(s.primary_key);
    s.password_file = o.password_file.or(s.password_file);
    s.sslpassword_file = o.sslpassword_file.or(s.sslpassword_file);
    s.limit = o.limit.or(s.limit);
    s.fields = o.fields.or(s.fields);
    s.query_timeout_sec = o.query_timeout_sec.or(s.query_timeout_sec);
    s.connect_timeout_sec = o.connect_timeout_sec.or(s.connect_timeout_sec);
    s.gap_timeout_sec = o.gap_timeout_sec.or(s.gap_timeout_sec);
    s.id_step = o.id_step.or(s.id_step);
    s
}

/// The shared `kafka_target` with a pipeline's keys over it; `properties` merged per property.
fn overlay_kafka(mut k: RawKafka, over: Option<RawKafkaOverride>) -> RawKafka {
    let Some(o) = over else { return k };
    k.brokers = o.brokers.or(k.brokers);
    k.key = o.key.or(k.key);
    k.compression = o.compression.or(k.compression);
    k.acks = o.acks.or(k.acks);
    k.idempotence = o.idempotence.or(k.idempotence);
    k.request_timeout_sec = o.request_timeout_sec.or(k.request_timeout_sec);
    k.delivery_timeout_sec = o.delivery_timeout_sec.or(k.delivery_timeout_sec);
    k.connect_timeout_sec = o.connect_timeout_sec.or(k.connect_timeout_sec);
    k.max_request_size = o.max_request_size.or(k.max_request_size);
    k.client_id = o.client_id.or(k.client_id);
    k.properties_file = o.properties_file.or(k.properties_file);
    k.properties = match (k.properties, o.properties) {
        (Some(mut shared), Some(own)) => {
            shared.overlay(own);
            Some(shared)
        }
        (shared, own) => own.or(shared),
    };
    k
}

/// Where the position is kept: Redis (`redis_addr` or `redis_url`, with its timeout, TLS and
/// password file), or a state file (by default next to the config file).
fn position_store(raw: &mut RawRepliqate, origin: &Path) -> Result<PositionStoreConfig, String> {
    let redis_key = if raw.redis_url.is_some() {
        "redis_url"
    } else {
        "redis_addr"
    };
    let redis = match (raw.redis_addr.take(), raw.redis_url.take()) {
        (Some(_), Some(_)) => {
            return Err(
                "repliqate: `redis_addr` and `redis_url` are both set; they say the \
                        same, keep one"
                    .to_owned(),
            )
        }
        (addr, url) => addr
            .map(Checked::into_string)
            .or(url.map(Checked::into_string)),
    };
    for (set, key) in [
        (raw.redis_timeout_sec.is_some(), "redis_timeout_sec"),
        (raw.redis_tls.is_some(), "redis_tls"),
        (raw.redis_password_file.is_some(), "redis_password_file"),
    ] {
        if set && redis.is_none() {
            return Err(format!(
                "repliqate: `{key}` is set without `redis_url` (or `redis_addr`); it applies to \
                 Redis only, set one of them or remove it"
            ));
        }
    }
    let redis_tls = raw.redis_tls.take().map(redis_tls).transpose()?;
    if redis_tls.is_some() && !redis.as_deref().is_some_and(|r| r.starts_with("rediss://")) {
        return Err(
            "repliqate.redis_tls: set, but the Redis address is not a rediss:// URL; TLS to \
             Redis needs redis_url: rediss://host:port"
                .to_owned(),
        );
    }
    Ok(match (redis, raw.state_file.take()) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "repliqate: `{redis_key}` and `state_file` are both set; the position is kept \
                 in one place, remove one of them"
            ))
        }
        (Some(addr), None) => PositionStoreConfig::Redis {
            addr,
            timeout: secs_or(raw.redis_timeout_sec.take(), DEFAULT_REDIS_TIMEOUT),
            tls: redis_tls,
            password: raw.redis_password_file.take().map(secret_file),
        },
        (None, state_file) => PositionStoreConfig::File {
            path: state_file_path(
                state_file.map(|s| s.into_string()),
                origin,
                raw.name.as_str(),
            ),
        },
    })
}

/// `sql_source` for `table`: the spec the source connects with, and the loop's batch and hole
/// settings.
fn source(src: RawSource, table: String) -> SourceSettings {
    SourceSettings {
        spec: SourceSpec {
            uri: src.uri.into_string(),
            password: src.password_file.map(secret_file),
            ssl_key_password: src.sslpassword_file.map(secret_file),
            table,
            primary_key: src.primary_key.into_string(),
            fields: src
                .fields
                .map(|list| list.0.into_iter().map(Checked::into_string).collect()),
            query_timeout: secs_or(src.query_timeout_sec, DEFAULT_QUERY_TIMEOUT),
            connect_timeout: secs_or(src.connect_timeout_sec, DEFAULT_CONNECT_TIMEOUT),
        },
        limit: src.limit.map_or(DEFAULT_LIMIT, |l| l.0),
        gap_timeout: src.gap_timeout_sec.map_or(DEFAULT_GAP_TIMEOUT, |g| g.0),
        id_step: src.id_step.map(|s| s.0),
    }
}

/// `kafka_target`: the topic and key, and the producer's settings from its YAML keys and its
/// Kafka client properties (`properties`, `properties_file`), each given one way or the other.
fn kafka(kafka: RawKafka, topic: String, origin: &Path) -> Result<KafkaSettings, String> {
    let mut properties = kafka.properties.unwrap_or_default();
    let mut property_warnings = Vec::new();
    if let Some(file) = kafka.properties_file {
        // Relative to the config file, as state_file is.
        let path = config_dir(origin).join(file.into_string());
        properties.add_file(&path, &mut property_warnings)?;
    }
    let mut from = properties::interpret(properties)?;
    property_warnings.append(&mut from.ignored);
    let d = ProducerConfig::default();
    let seconds = |s: Option<Seconds>| s.map(|s| s.0);
    let request_timeout = setting(
        "request_timeout_sec",
        seconds(kafka.request_timeout_sec),
        from.request_timeout,
        d.request_timeout,
    )?;
    let delivery_timeout = setting(
        "delivery_timeout_sec",
        seconds(kafka.delivery_timeout_sec),
        from.delivery_timeout,
        d.delivery_timeout,
    )?;
    if delivery_timeout < request_timeout {
        // Kafka producers require delivery.timeout.ms >= request.timeout.ms (KIP-91).
        return Err(format!(
            "repliqate.replication.kafka_target.delivery_timeout_sec: {} is less than \
             request_timeout_sec ({}); expected a value at least as large",
            delivery_timeout.as_secs_f64(),
            request_timeout.as_secs_f64()
        ));
    }
    let brokers = kafka
        .brokers
        .map(|list| list.0.into_iter().map(Checked::into_string).collect());
    let bootstrap = setting("brokers", brokers, from.bootstrap, d.bootstrap)?;
    for broker in &bootstrap {
        check_host_port(broker, Port::Required).map_err(|e| {
            format!("repliqate.replication.kafka_target.properties.bootstrap.servers: {e}")
        })?;
    }
    let client_id = kafka.client_id.map(Checked::into_string);
    let max_request_size = kafka.max_request_size.map(|s| s.0);
    let producer = ProducerConfig {
        bootstrap,
        client_id: setting("client_id", client_id, from.client_id, d.client_id)?,
        acks: setting("acks", kafka.acks, from.acks, d.acks)?,
        compression: setting(
            "compression",
            kafka.compression,
            from.compression,
            d.compression,
        )?,
        idempotent: setting(
            "idempotence",
            kafka.idempotence,
            from.idempotence,
            d.idempotent,
        )?,
        max_request_size: setting(
            "max_request_size",
            max_request_size,
            from.max_request_size,
            d.max_request_size,
        )?,
        request_timeout,
        connect_timeout: setting(
            "connect_timeout_sec",
            seconds(kafka.connect_timeout_sec),
            from.connect_timeout,
            d.connect_timeout,
        )?,
        delivery_timeout,
        // Not in the file: librdkafka's 100 ms → 1 s between a send's own retries.
        retry_backoff: d.retry_backoff,
        retry_backoff_max: d.retry_backoff_max,
        security: from.security,
    };
    Ok(KafkaSettings {
        topic,
        key: kafka.key.unwrap_or(DEFAULT_KEY),
        producer,
        property_warnings,
    })
}

/// A password (or key password) file of the config.
fn secret_file(path: Checked<NonEmpty>) -> Secret {
    Secret::File(PathBuf::from(path.into_string()))
}

/// A producer setting given as a `kafka_target` key or as a property (not both), or `default`.
fn setting<T>(key: &str, yaml: Option<T>, property: Option<T>, default: T) -> Result<T, String> {
    Ok(one_of(key, yaml, property)?.unwrap_or(default))
}

/// The longest a healthy turn of the loop can go between two heartbeats: the default
/// `stall_timeout_sec`. A turn reads a batch (maybe on a new connection: connect, then up to
/// three queries: the open transactions before and after the fetch while holes are held, and
/// the fetch), publishes it while reading the next (Kafka's delivery timeout, plus the request in
/// flight when it expires), and talks to Redis up to three times (lease, renewal, commit). Waits
/// between retries beat, so they do not count. 365 s with the defaults.
pub(super) fn longest_step(
    producer: &ProducerConfig,
    source_connect: Duration,
    query_timeout: Duration,
    redis_timeout: Option<Duration>,
) -> Duration {
    2 * (source_connect + 3 * query_timeout)
        + producer.delivery_timeout
        + producer.request_timeout
        + 3 * redis_timeout.unwrap_or_default()
}

/// `redis_tls` as the TLS settings of the store: the name is always checked.
fn redis_tls(raw: RawRedisTls) -> Result<TlsSettings, String> {
    let file = |key: &str, value: Option<Checked<NonEmpty>>| {
        value.map(|v| TlsFile {
            setting: format!("repliqate.redis_tls.{key}"),
            path: PathBuf::from(v.into_string()),
        })
    };
    let client =
        match (
            file("cert_file", raw.cert_file),
            file("key_file", raw.key_file),
        ) {
            (Some(cert), Some(key)) => Some(ClientCert::Pem {
                cert: Pem::File(cert),
                key: Pem::File(key),
                key_password: match (raw.key_password, raw.key_password_file) {
                    (Some(_), Some(_)) => {
                        return Err(
                            "repliqate.redis_tls: key_password and key_password_file are \
                                    both set; give one"
                                .to_owned(),
                        )
                    }
                    (Some(v), None) => Some(Secret::Value(v.into_string())),
                    (None, Some(f)) => Some(Secret::File(PathBuf::from(f.into_string()))),
                    (None, None) => None,
                }
                .map(|secret| Password {
                    setting: "repliqate.redis_tls.key_password".to_owned(),
                    secret,
                }),
            }),
            (None, None) if raw.key_password.is_some() || raw.key_password_file.is_some() => {
                return Err(
                    "repliqate.redis_tls.key_password: set without key_file; it is the \
                            password of an encrypted client key"
                        .to_owned(),
                )
            }
            (None, None) => None,
            _ => return Err(
                "repliqate.redis_tls: cert_file and key_file go together (a client certificate \
                 and its private key); set both or neither"
                    .to_owned(),
            ),
        };
    Ok(TlsSettings {
        ca: file("ca_file", raw.ca_file).map(|f| Trust::Pem(Pem::File(f))),
        client,
        verify_hostname: true,
        verify_certificate: true,
    })
}

/// A producer setting given as a `kafka_target` key or as a property, or neither; not both.
fn one_of<T>(key: &str, yaml: Option<T>, property: Option<T>) -> Result<Option<T>, String> {
    match (yaml, property) {
        (Some(_), Some(_)) => {
            let names = properties::property_names_of(key).join(" / ");
            Err(format!(
                "repliqate.replication.kafka_target.{key}: also set as properties.{names}; \
                 give it in one place"
            ))
        }
        (yaml, property) => Ok(yaml.or(property)),
    }
}

fn secs_or(value: Option<Seconds>, default: Duration) -> Duration {
    value.map_or(default, |s| s.0)
}

/// The directory of the config file, which relative paths in it are relative to.
fn config_dir(origin: &Path) -> PathBuf {
    match origin.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `state_file` relative to the config file's directory (the daemon's working directory is
/// often `/` under systemd, so the config file is the only stable anchor); by default
/// `repliqate-<name>.offset` next to the config file.
fn state_file_path(configured: Option<String>, origin: &Path, name: &str) -> PathBuf {
    let dir = config_dir(origin);
    match configured {
        Some(p) => dir.join(p),
        None => {
            // The name may hold characters that are awkward or invalid in a file name.
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            dir.join(format!("repliqate-{safe}.offset"))
        }
    }
}
