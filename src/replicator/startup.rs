//! Start-up, in steps: each dependency of a job connected and checked. The daemon
//! (`Replicator::start`) takes them all and stops at the first failure; `repliqate check`
//! (`check.rs`) takes the same steps, reports each one, and writes nothing. A step logs what it
//! found at info, as the daemon always did.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::error::Error;
use super::gaps::GapPolicy;
use super::holes::gap_policy;
use super::lease::check_new_job;
use super::position::BEFORE_ANY_ID;
use crate::config::Config;
use crate::kafka::Producer;
use crate::metrics::Metrics;
use crate::source::Source;
use crate::store::Store;
use crate::value::Id;

/// statsd: the address resolved and a socket ready (nothing is sent yet).
pub(crate) fn metrics(config: &Config) -> Result<Metrics, Error> {
    Metrics::new(config.statsd_addr.as_deref(), &config.name).map_err(Error::Metrics)
}

/// The source: connected, its table, key, fields and column types checked (`Source::connect`),
/// and how it allocates ids (for the gap policy).
pub(crate) fn source(config: &Config) -> Result<(Source, GapPolicy), Error> {
    let mut source = Source::connect(&config.source.spec).map_err(Error::Source)?;
    log::info!(
        "source: {} (columns: {})",
        source.describe(),
        source.columns().join(", ")
    );
    let policy = gap_policy(config, &mut source)?;
    Ok((source, policy))
}

/// The position store, opened (Redis is not contacted yet: `stored_position` does that).
pub(crate) fn store(config: &Config) -> Result<Store, Error> {
    Store::open(
        &config.position_store,
        &config.name,
        &config.source.spec.table,
        &config.kafka.topic,
    )
    .map_err(Error::Store)
}

/// The producer; nothing is dialled until `topic`.
pub(crate) fn producer(config: &Config, stop: Arc<AtomicBool>) -> Producer {
    Producer::new(config.kafka.producer.clone()).with_cancel_flag(stop)
}

/// The topic looked up in the cluster's metadata (it must exist): its partition count.
pub(crate) fn topic(producer: &mut Producer, config: &Config) -> Result<usize, Error> {
    let partitions = producer
        .check_topic(&config.kafka.topic)
        .map_err(Error::Kafka)?;
    log::info!(
        "kafka: topic {} has {partitions} partitions",
        config.kafka.topic
    );
    Ok(partitions)
}

/// The stored position (`None`: none stored).
pub(crate) fn stored_position(store: &mut Store) -> Result<Option<Id>, Error> {
    let stored = store.read().map_err(Error::Store)?;
    log::info!(
        "position store: {}: {}",
        store.describe(),
        stored.map_or("no position".to_string(), |p| format!("position {p}"))
    );
    Ok(stored)
}

/// Where a job would start replicating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the stored position.
    Stored(Id),
    /// After `--initial-position` (nothing stored).
    Initial(Id),
    /// From the start of the table: nothing stored and the topic is empty.
    NewJob,
}

impl Start {
    /// The position replication resumes after.
    pub fn position(self) -> Id {
        match self {
            Start::Stored(p) | Start::Initial(p) => p,
            Start::NewJob => BEFORE_ANY_ID,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Start::Stored(p) => format!("after id {p}, the stored position"),
            Start::Initial(BEFORE_ANY_ID) => {
                "from the start of the table: no position is stored (--initial-position start)"
                    .to_string()
            }
            Start::Initial(p) => format!("after {p}: no position is stored (--initial-position)"),
            Start::NewJob => {
                "from the start of the table: no position is stored and the topic is empty (a new \
                 job)"
                    .to_string()
            }
        }
    }
}

/// Where the job starts: a lost position (nothing stored, but the topic has records) is found
/// here, at start-up, not after a standby takes over.
pub(crate) fn start(
    producer: &mut Producer,
    config: &Config,
    store: &Store,
    stored: Option<Id>,
    initial_position: Option<Id>,
) -> Result<Start, Error> {
    Ok(match (stored, initial_position) {
        (Some(p), _) => Start::Stored(p),
        (None, Some(p)) => Start::Initial(p),
        (None, None) => {
            check_new_job(producer, &config.kafka.topic, store)?;
            Start::NewJob
        }
    })
}
