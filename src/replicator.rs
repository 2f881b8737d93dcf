//! The replication loop: read position → fetch a batch → publish it → commit the position.
//!
//! Everything below this module (sources, the Kafka producer, position stores, metrics) is
//! reached through its own small API and never calls back up. The invariant this module keeps:
//! the stored position only ever names a row such that it and every row before it were
//! acknowledged by Kafka.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::config::{Config, KeyMode};
use crate::kafka::{self, Producer, ProducerConfig, Record};
use crate::message::{MessageEncoder, MessageError};
use crate::metrics::{Metrics, MetricsError};
use crate::source::{Source, SourceError, SourceSpec};
use crate::store::{Store, StoreError};
use crate::value::{Id, Row};

/// Why replication stopped (or could not start). One variant per boundary below us.
#[derive(Debug)]
pub enum Error {
    Source(SourceError),
    Kafka(kafka::Error),
    Store(StoreError),
    Metrics(MetricsError),
    Encode(MessageError),
}

impl Error {
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Source(e) => e.is_retriable(),
            Error::Kafka(e) => e.is_retriable(),
            Error::Store(e) => e.is_retriable(),
            Error::Metrics(e) => e.is_retriable(),
            Error::Encode(e) => e.is_retriable(),
        }
    }

    /// Which dependency failed, for "one log line per incident".
    fn component(&self) -> &'static str {
        match self {
            Error::Source(_) => "source",
            Error::Kafka(_) => "kafka",
            Error::Store(_) => "position store",
            Error::Metrics(_) => "metrics",
            Error::Encode(_) => "encoding",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Source(e) => write!(f, "reading the source: {e}"),
            Error::Kafka(e) => write!(f, "publishing to Kafka: {e}"),
            Error::Store(e) => write!(f, "position store: {e}"),
            Error::Metrics(e) => write!(f, "statsd: {e}"),
            Error::Encode(e) => write!(f, "encoding a message: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Run until stopped, or only until caught up (`--once`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forever,
    UntilCaughtUp,
}

/// A started replication job: every dependency connected and checked.
pub struct Replicator {
    name: String,
    table: String,
    topic: String,
    key_mode: KeyMode,
    limit: usize,
    poll_interval: Duration,
    backoff_max: Duration,
    source: Source,
    producer: Producer,
    store: Store,
    metrics: Metrics,
    encoder: MessageEncoder,
    stop: Arc<AtomicBool>,
    /// The dependency currently failing, and since when: errors are logged once per incident.
    incident: Option<(&'static str, Instant)>,
}

impl Replicator {
    /// Connects to the source (checking table, key, fields and types), the position store and
    /// Kafka (checking the topic exists). Any failure here stops start-up.
    pub fn start(config: &Config, stop: Arc<AtomicBool>) -> Result<Replicator, Error> {
        let metrics =
            Metrics::new(config.statsd_addr.as_deref(), &config.name).map_err(Error::Metrics)?;
        let source = Source::connect(&SourceSpec {
            uri: config.source.uri.clone(),
            table: config.source.table.clone(),
            primary_key: config.source.primary_key.clone(),
            fields: config.source.fields.clone(),
            query_timeout: config.source.query_timeout,
            connect_timeout: config.source.connect_timeout,
        })
        .map_err(Error::Source)?;
        log::info!(
            "source: {} (columns: {})",
            source.describe(),
            source.columns().join(", ")
        );

        let mut store = Store::open(
            &config.position_store,
            &config.name,
            &config.source.table,
            &config.kafka.topic,
            config.kafka.request_timeout,
        )
        .map_err(Error::Store)?;
        store.read().map_err(Error::Store)?;

        let k = &config.kafka;
        let mut producer = Producer::new(ProducerConfig {
            bootstrap: k.brokers.clone(),
            client_id: k.client_id.clone(),
            acks: k.acks,
            compression: k.compression,
            idempotent: k.idempotence,
            max_request_size: k.max_request_size,
            request_timeout: k.request_timeout,
            connect_timeout: k.connect_timeout,
            delivery_timeout: k.delivery_timeout,
            ..ProducerConfig::default()
        })
        .with_cancel_flag(stop.clone());
        let partitions = producer.check_topic(&k.topic).map_err(Error::Kafka)?;
        log::info!(
            "kafka: topic {} has {partitions} partitions; position store: {}",
            k.topic,
            store.describe()
        );

        let encoder = MessageEncoder::new(&config.name, &config.source.table, source.columns());
        Ok(Replicator {
            name: config.name.clone(),
            table: config.source.table.clone(),
            topic: k.topic.clone(),
            key_mode: k.key,
            limit: config.source.limit,
            poll_interval: config.poll_interval,
            backoff_max: config.retry_backoff_max,
            source,
            producer,
            store,
            metrics,
            encoder,
            stop,
            incident: None,
        })
    }

    /// The loop. Returns Ok when stopped (or caught up, with `Mode::UntilCaughtUp`), Err on an
    /// error that retrying cannot fix. Retriable errors are retried with capped exponential
    /// backoff, forever.
    pub fn run(&mut self, mode: Mode) -> Result<(), Error> {
        let mut failures = 0u32;
        let mut position = None;
        while !self.stopping() {
            let step = match position {
                None => self.read_position().map(|p| {
                    position = Some(p);
                    Step::Continue
                }),
                Some(p) => self.replicate_batch(p).map(|(step, new)| {
                    position = Some(new);
                    step
                }),
            };
            match step {
                Ok(step) => {
                    failures = 0;
                    if let Some((component, since)) = self.incident.take() {
                        log::warn!(
                            "{component}: recovered after {:.1}s",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    match (step, mode) {
                        (Step::Continue, _) => {}
                        (Step::CaughtUp, Mode::UntilCaughtUp) => return Ok(()),
                        (Step::CaughtUp, Mode::Forever) => self.sleep(self.poll_interval),
                    }
                }
                Err(e) if e.is_retriable() => {
                    self.report_incident(&e);
                    failures += 1;
                    self.sleep(backoff(failures, self.backoff_max));
                }
                Err(e) => return Err(e),
            }
        }
        log::info!("stopping: shutdown requested");
        Ok(())
    }

    fn read_position(&mut self) -> Result<Id, Error> {
        let started = Instant::now();
        let result = self.store.read();
        self.metrics
            .count("store.read", &[("success", success(&result))], 1);
        self.metrics.timing(
            "store.read_latency",
            &[("success", success(&result))],
            started.elapsed(),
        );
        let position = result.map_err(Error::Store)?;
        match position {
            Some(p) => log::info!("resuming after {} = {p}", self.store.describe()),
            None => log::warn!(
                "no position stored in {}: starting from the beginning of the table",
                self.store.describe()
            ),
        }
        Ok(position.unwrap_or(0))
    }

    /// One turn of the loop from a known position: fetch, publish, commit. Returns what to do next
    /// and the new position (unchanged unless something was committed).
    fn replicate_batch(&mut self, position: Id) -> Result<(Step, Id), Error> {
        let started = Instant::now();
        let rows = self.fetch(position)?;
        if rows.is_empty() {
            self.metrics.flush();
            return Ok((Step::CaughtUp, position));
        }
        let fetched = started.elapsed();
        let records = self.encode(&rows)?;

        let published = Instant::now();
        let result = self.producer.send(&self.topic, &records);
        let tags = [
            ("success", success(&result)),
            ("topic", self.topic.as_str()),
        ];
        self.metrics.count("target.publish", &tags, 1);
        self.metrics
            .timing("target.publish_latency", &tags, published.elapsed());
        let acknowledged = match &result {
            Ok(_) => rows.len(),
            // Commit what was acknowledged: the longest prefix of the batch, in key order.
            Err(e) => e.delivered.iter().take_while(|d| d.is_some()).count(),
        };
        let mut new_position = position;
        if acknowledged > 0 {
            let last = rows[acknowledged - 1].id;
            self.commit(last)?;
            new_position = last;
        }
        self.metrics.flush();
        if let Err(e) = result {
            if acknowledged > 0 {
                log::warn!("committed {acknowledged} acknowledged rows of a failed batch, up to {new_position}");
            }
            return Err(Error::Kafka(e.error));
        }
        log::info!(
            "replicated {} rows, ids {}..={} ({} ms: fetch {} ms, publish {} ms)",
            rows.len(),
            rows[0].id,
            new_position,
            started.elapsed().as_millis(),
            fetched.as_millis(),
            published.elapsed().as_millis(),
        );
        let step = if rows.len() < self.limit {
            Step::CaughtUp
        } else {
            Step::Continue
        };
        Ok((step, new_position))
    }

    fn fetch(&mut self, position: Id) -> Result<Vec<Row>, Error> {
        let started = Instant::now();
        let result = self.source.fetch(position, self.limit);
        let tags = [
            ("success", success(&result)),
            ("table", self.table.as_str()),
        ];
        self.metrics.count("source.read", &tags, 1);
        self.metrics
            .timing("source.read_latency", &tags, started.elapsed());
        if let Ok(rows) = &result {
            self.metrics
                .count("source.rows_read", &tags, rows.len() as u64);
        }
        result.map_err(Error::Source)
    }

    /// Per-row work is only what must be per row: the message and its hash.
    fn encode(&mut self, rows: &[Row]) -> Result<Vec<Record>, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let timestamp = now.as_secs_f64();
        let timestamp_ms = now.as_millis() as i64;
        let mut records = Vec::with_capacity(rows.len());
        let mut buf = Vec::with_capacity(rows.len() * 256);
        let mut bounds = Vec::with_capacity(rows.len());
        for row in rows {
            let start = buf.len();
            self.encoder
                .encode(timestamp, &row.values, &mut buf)
                .map_err(Error::Encode)?;
            bounds.push(start..buf.len());
        }
        // One allocation for the whole batch; each record's value is a slice of it.
        let buf = Bytes::from(buf);
        for (row, range) in rows.iter().zip(bounds) {
            records.push(Record {
                key: match self.key_mode {
                    KeyMode::PrimaryKey => Some(Bytes::from(row.id.to_string())),
                    KeyMode::None => None,
                },
                value: buf.slice(range),
                headers: Vec::new(),
                timestamp_ms,
            });
        }
        Ok(records)
    }

    /// Stores the position, retrying a store that is down: the rows are in Kafka already, so
    /// giving up here would only republish them. Stops retrying on shutdown (the rows will be
    /// republished after restart: at-least-once).
    fn commit(&mut self, position: Id) -> Result<(), Error> {
        let mut failures = 0;
        loop {
            let started = Instant::now();
            let result = self.store.write(position);
            let tags = [("success", success(&result))];
            self.metrics.count("store.write", &tags, 1);
            self.metrics
                .timing("store.write_latency", &tags, started.elapsed());
            match result {
                Ok(()) => {
                    let p = position.to_string();
                    self.metrics.gauge(
                        "offset.position",
                        &[("table", self.table.as_str())],
                        position,
                    );
                    log::debug!("committed position {p} for job {}", self.name);
                    return Ok(());
                }
                Err(e) if e.is_retriable() && !self.stopping() => {
                    self.report_incident(&Error::Store(e));
                    failures += 1;
                    self.sleep(backoff(failures, self.backoff_max));
                }
                Err(e) => return Err(Error::Store(e)),
            }
        }
    }

    fn report_incident(&mut self, e: &Error) {
        match self.incident {
            Some((component, _)) if component == e.component() => log::debug!("still failing: {e}"),
            _ => {
                log::error!("{e} (retrying until it recovers)");
                self.incident = Some((e.component(), Instant::now()));
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps, waking within 50 ms of a shutdown request.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopping() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// More rows may be waiting: go again at once.
    Continue,
    /// The last fetch returned less than a full batch.
    CaughtUp,
}

fn success<T, E>(r: &Result<T, E>) -> &'static str {
    if r.is_ok() {
        "true"
    } else {
        "false"
    }
}

/// 200 ms, doubling per consecutive failure, capped.
fn backoff(failures: u32, max: Duration) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let max = Duration::from_secs(5);
        assert_eq!(backoff(1, max), Duration::from_millis(200));
        assert_eq!(backoff(2, max), Duration::from_millis(400));
        assert_eq!(backoff(5, max), Duration::from_millis(3200));
        assert_eq!(backoff(6, max), max);
        assert_eq!(backoff(1000, max), max);
    }
}
