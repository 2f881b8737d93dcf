//! The synchronous producer: metadata, partitioning, batching, pipelining, retries and
//! idempotence, on top of `conn::Connection`.
//!
//! `Producer::send` takes a topic and a slice of records and returns only when every record is
//! acknowledged, or with an error that says which records were not. Retries happen inside, until
//! the delivery deadline; the retry decision for a partition response is one `match`
//! (`Round::handle_partition`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::ListOffsetsRequest;
use kafka_protocol::messages::{
    InitProducerIdRequest, MetadataRequest, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as Codec, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

use super::conn::{ConnOptions, Connection};
use super::error::Error;
use super::partitioner::partition_for_key;
use super::produce::ProduceBody;

/// Produce v13 names topics by id instead of by name (KIP-516); we stay at v12.
const PRODUCE_MAX_VERSION: i16 = 12;
/// Metadata v4 is the first that can be told not to auto-create topics; we never create them.
const METADATA_MIN_VERSION: i16 = 4;
const METADATA_MAX_VERSION: i16 = 12;
const INIT_PRODUCER_ID_MAX_VERSION: i16 = 5;
/// A RecordBatch v2 header is 61 bytes.
const BATCH_OVERHEAD: usize = 61;
/// Worst case for a record's varint framing (length, attributes, deltas, key/value lengths,
/// header count).
const RECORD_OVERHEAD: usize = 40;
/// How many times an unknown topic is looked up again before we say it does not exist (a topic
/// created a moment ago may not have reached every broker's metadata yet).
const UNKNOWN_TOPIC_ATTEMPTS: u32 = 3;
/// Kafka keeps the last five batches per producer and partition for deduplication, so an
/// idempotent producer may have at most five requests in flight per partition.
const MAX_IN_FLIGHT_IDEMPOTENT: usize = 5;

/// `acks` of the Produce request. `0` (no acknowledgement) is deliberately not offered: repliqate
/// must know a batch was written before it moves its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// All in-sync replicas (-1). Required for idempotence.
    All,
    /// The leader only (1).
    Leader,
}

/// Record batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    #[cfg(feature = "lz4")]
    Lz4,
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Compression {
    fn codec(self) -> Codec {
        match self {
            Compression::None => Codec::None,
            Compression::Gzip => Codec::Gzip,
            Compression::Snappy => Codec::Snappy,
            #[cfg(feature = "lz4")]
            Compression::Lz4 => Codec::Lz4,
            #[cfg(feature = "zstd")]
            Compression::Zstd => Codec::Zstd,
        }
    }
}

/// Everything the producer needs to know, validated by the caller.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// host:port of the bootstrap brokers; any reachable one will do.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub acks: Acks,
    pub compression: Compression,
    pub idempotent: bool,
    /// Upper bound for one Produce request (and so for one record).
    pub max_request_size: usize,
    /// Produce `timeout_ms`, and (plus a margin) the socket read timeout.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long `send` keeps retrying before it gives up (Java's `delivery.timeout.ms`).
    pub delivery_timeout: Duration,
    /// First retry backoff; doubles up to `retry_backoff_max`, with jitter (librdkafka's
    /// 100 ms → 1 s).
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            bootstrap: vec!["localhost:9092".into()],
            client_id: "repliqate".into(),
            acks: Acks::All,
            compression: Compression::None,
            idempotent: true,
            max_request_size: 1 << 20,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

/// One record to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the Unix epoch (CreateTime).
    pub timestamp_ms: i64,
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    /// None when the broker acknowledged the batch as a duplicate of one it already had
    /// (DUPLICATE_SEQUENCE) without telling us its offset.
    pub offset: Option<i64>,
}

/// `send` failed: `error` says why, `delivered` says which records were acknowledged anyway (in
/// input order). Records with `None` were not acknowledged: they may or may not have been
/// written, so they must be sent again (at-least-once), best with `Producer::resume`.
#[derive(Debug)]
pub struct SendError {
    pub error: Error,
    pub delivered: Vec<Option<Delivery>>,
    unsettled: Option<Box<Unsettled>>,
}

impl SendError {
    pub fn unacknowledged(&self) -> usize {
        self.delivered.iter().filter(|d| d.is_none()).count()
    }

    /// The batches to send again, when the error is transient (see `Producer::resume`). `None`
    /// after a non-retriable error or shutdown: then the records must be sent anew.
    pub fn take_unsettled(&mut self) -> Option<Unsettled> {
        self.unsettled.take().map(|u| *u)
    }
}

/// What a send that failed on a transient error left unacknowledged: its batches exactly as
/// they were sent (encoding, producer id, sequence numbers), and which records were
/// acknowledged. Sending these again rather than the same records anew lets the broker drop
/// the copies it already wrote (KIP-98): an outage longer than the delivery timeout then costs
/// no duplicates, and partitions acknowledged before it are not written again.
pub struct Unsettled {
    topic: String,
    batches: Vec<Batch>,
    delivered: Vec<Option<Delivery>>,
}

impl std::fmt::Debug for Unsettled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsettled")
            .field("topic", &self.topic)
            .field("batches", &self.batches.iter().filter(|b| !b.done).count())
            .finish()
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} records not acknowledged: {}",
            self.unacknowledged(),
            self.delivered.len(),
            self.error
        )
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The idempotent producer's state (KIP-98).
#[derive(Debug)]
enum Idempotence {
    Off,
    /// We need a (new) producer id before the next send.
    NeedsId,
    On {
        producer_id: i64,
        epoch: i16,
        sequences: HashMap<(String, i32), i32>,
    },
}

/// A synchronous Kafka producer. Not thread-safe by design: repliqate's loop owns it.
pub struct Producer {
    config: ProducerConfig,
    conn_options: ConnOptions,
    cancel: Option<Arc<AtomicBool>>,
    /// node id → advertised host:port, from the latest Metadata.
    brokers: HashMap<i32, String>,
    conns: HashMap<i32, Connection>,
    /// A connection to a bootstrap address, used until we know which node it is.
    bootstrap_conn: Option<Connection>,
    /// topic → leader node id per partition (-1: no leader right now).
    topics: HashMap<String, Vec<i32>>,
    idempotence: Idempotence,
    /// A failed send's `Unsettled` is out with the caller: sending anything else first means
    /// it was given up, and its batches' sequence numbers with it.
    unsettled_out: bool,
    round_robin: usize,
    rng: u64,
}

impl Producer {
    /// Creates a producer. Nothing is dialled until the first call that needs a broker.
    pub fn new(config: ProducerConfig) -> Producer {
        let idempotence = if !config.idempotent {
            Idempotence::Off
        } else if config.acks != Acks::All {
            log::warn!("kafka: idempotence needs acks=all; producing without idempotence");
            Idempotence::Off
        } else {
            Idempotence::NeedsId
        };
        let conn_options = ConnOptions {
            client_id: config.client_id.clone(),
            connect_timeout: config.connect_timeout,
            io_timeout: config.request_timeout + Duration::from_secs(5),
            max_response_size: 64 << 20,
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
        Producer {
            config,
            conn_options,
            cancel: None,
            brokers: HashMap::new(),
            conns: HashMap::new(),
            bootstrap_conn: None,
            topics: HashMap::new(),
            idempotence,
            unsettled_out: false,
            round_robin: 0,
            rng: seed | 1,
        }
    }

    /// A flag that, once set, makes `send` stop retrying and return `Error::Cancelled` for
    /// whatever is not yet acknowledged (used for shutdown).
    pub fn with_cancel_flag(mut self, cancel: Arc<AtomicBool>) -> Producer {
        self.cancel = Some(cancel);
        self
    }

    /// Whether batches carry producer ids and sequence numbers (false after falling back).
    pub fn is_idempotent(&self) -> bool {
        !matches!(self.idempotence, Idempotence::Off)
    }

    /// The producer id the broker gave us (`InitProducerId`), once there is one: logged, and
    /// checked by tests against the batches the broker stored.
    pub fn producer_id(&self) -> Option<i64> {
        match self.idempotence {
            Idempotence::On { producer_id, .. } => Some(producer_id),
            _ => None,
        }
    }

    /// Looks the topic up (retrying transient failures until the delivery deadline) and returns
    /// its partition count. Used at start-up so that a missing topic is reported at once.
    pub fn check_topic(&mut self, topic: &str) -> Result<usize, Error> {
        let started = Instant::now();
        let mut attempt = 0;
        let mut unknown = 0;
        loop {
            match self.refresh_metadata(topic) {
                Ok(n) => return Ok(n),
                Err(Error::UnknownTopic { .. }) if unknown + 1 < UNKNOWN_TOPIC_ATTEMPTS => {
                    unknown += 1
                }
                Err(e) if !e.is_retriable() => return Err(e),
                Err(e) if started.elapsed() >= self.config.delivery_timeout => {
                    return Err(Error::DeliveryTimeout {
                        topic: topic.to_string(),
                        after: started.elapsed(),
                        last: Box::new(e),
                    })
                }
                Err(e) => log::debug!("kafka: looking up topic {topic}: {e}; retrying"),
            }
            attempt += 1;
            self.backoff(attempt, started + self.config.delivery_timeout)?;
        }
    }

    /// Whether any partition of `topic` holds records (latest offset above earliest), asked of
    /// each partition's leader with ListOffsets. Used at start-up to tell a new job (empty
    /// topic) from one whose stored position was lost.
    pub fn topic_has_records(&mut self, topic: &str) -> Result<bool, Error> {
        self.check_topic(topic)?;
        let leaders = self.topics.get(topic).cloned().unwrap_or_default();
        let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
        for (partition, &leader) in leaders.iter().enumerate() {
            by_leader.entry(leader).or_default().push(partition as i32);
        }
        for (leader, partitions) in by_leader {
            if leader < 0 {
                return Err(Error::Broker {
                    broker: "(none)".into(),
                    topic: Some(topic.to_string()),
                    partition: partitions.first().copied(),
                    code: ResponseError::LeaderNotAvailable,
                    message: None,
                });
            }
            self.produce_connection(leader)?;
            let conn = self.conns.get_mut(&leader).expect("connected above");
            let version =
                conn.version::<ListOffsetsRequest>(7)
                    .ok_or_else(|| Error::UnsupportedVersion {
                        broker: conn.addr().to_string(),
                        api: "ListOffsets",
                        broker_max: conn.broker_max::<ListOffsetsRequest>(),
                        needed: "v1 or later (Kafka ≥ 0.10.1)",
                    })?;
            let mut bounds: Vec<HashMap<i32, i64>> = Vec::new();
            // -2: earliest offset, -1: latest (the Kafka protocol's special timestamps).
            for timestamp in [-2i64, -1] {
                let request = ListOffsetsRequest::default()
                    .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                    .with_topics(vec![ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )]);
                let broker = conn.addr().to_string();
                let response = match conn.call(&request, version) {
                    Ok(r) => r,
                    Err(e) => {
                        self.conns.remove(&leader);
                        return Err(e);
                    }
                };
                let mut offsets = HashMap::new();
                for p in response.topics.iter().flat_map(|t| t.partitions.iter()) {
                    if let Some(code) = ResponseError::try_from_code(p.error_code) {
                        return Err(Error::Broker {
                            broker,
                            topic: Some(topic.to_string()),
                            partition: Some(p.partition_index),
                            code,
                            message: Some("ListOffsets".into()),
                        });
                    }
                    offsets.insert(p.partition_index, p.offset);
                }
                bounds.push(offsets);
            }
            if partitions.iter().any(|p| {
                bounds[1].get(p).copied().unwrap_or(0) > bounds[0].get(p).copied().unwrap_or(0)
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Sends `records` to `topic` and returns when every one is acknowledged, with its partition
    /// and offset, in input order. Order within a partition is preserved, also across retries.
    pub fn send(&mut self, topic: &str, records: &[Record]) -> Result<Vec<Delivery>, SendError> {
        self.give_up_unsettled();
        let mut delivered = vec![None; records.len()];
        let mut batches = Vec::new();
        let result = self.send_inner(topic, records, &mut delivered, &mut batches);
        self.conclude(topic, records, result, delivered, batches)
    }

    /// Sends a failed send's unacknowledged batches again, as they were, and returns like
    /// `send` for all of that send's records (those acknowledged before included). The delivery
    /// deadline starts afresh. Must come before any other send on this producer.
    pub fn resume(&mut self, unsettled: Unsettled) -> Result<Vec<Delivery>, SendError> {
        self.unsettled_out = false;
        let Unsettled {
            topic,
            mut batches,
            mut delivered,
        } = unsettled;
        // Leaders have likely moved during whatever failed the send.
        self.topics.remove(&topic);
        let result = self.retry(
            &topic,
            &[],
            &mut delivered,
            &mut batches,
            None,
            Instant::now(),
        );
        self.conclude(&topic, &[], result, delivered, batches)
    }

    /// A new send while an `Unsettled` is out: its batches are given up, so the broker's
    /// sequence numbers may be ahead of or behind ours; a new producer id starts afresh.
    fn give_up_unsettled(&mut self) {
        if std::mem::take(&mut self.unsettled_out)
            && matches!(self.idempotence, Idempotence::On { .. })
        {
            self.idempotence = Idempotence::NeedsId;
        }
    }

    /// The first half of a send that lets the caller work while the broker does: writes the
    /// produce requests (as many as the in-flight limits allow) and returns without waiting
    /// for acknowledgements. `finish` must be called next, before any other call on this
    /// producer; together they behave exactly like `send`.
    pub fn start(&mut self, topic: &str, records: Vec<Record>) -> Pending {
        self.give_up_unsettled();
        let mut pending = Pending {
            topic: topic.to_string(),
            delivered: vec![None; records.len()],
            records,
            started: Instant::now(),
            round: None,
        };
        // Anything unusual (an oversized record, no producer id or metadata yet, shutdown) is
        // left to `finish`, which takes the ordinary path with its retries.
        let budget = self.batch_budget(topic);
        let ready = !pending.records.is_empty()
            && pending
                .records
                .iter()
                .all(|r| record_size(r) + BATCH_OVERHEAD <= budget)
            && self.check_cancelled().is_ok()
            && self.ensure_producer_id().is_ok()
            && (self.topics.contains_key(topic) || self.refresh_metadata(topic).is_ok());
        if ready {
            let mut batches = self.plan(topic, &pending.records);
            self.assign_sequences(topic, &mut batches);
            let mut round = self.round_begin(topic, &pending.records, &mut batches);
            // Every batch now has its encoding, which is all a retry needs (a new producer id or
            // a split re-encodes from it): the caller's copy of the values can go, so one batch
            // in flight is held once in memory, not twice.
            if batches.iter().all(|b| b.encoded.is_some()) {
                pending.records = Vec::new();
            }
            self.round_pump(
                topic,
                &mut round,
                &mut batches,
                &mut pending.delivered,
                true,
            );
            pending.round = Some((batches, round));
        }
        pending
    }

    /// The second half of `start`: reads the acknowledgements, retries what failed, and returns
    /// like `send`.
    pub fn finish(&mut self, pending: Pending) -> Result<Vec<Delivery>, SendError> {
        let Pending {
            topic,
            records,
            mut delivered,
            started,
            round,
        } = pending;
        let mut batches = Vec::new();
        let result = match round {
            None => self.send_inner(&topic, &records, &mut delivered, &mut batches),
            Some((planned, mut round)) => {
                batches = planned;
                self.round_pump(&topic, &mut round, &mut batches, &mut delivered, false);
                let outcome = self.round_end(round, &mut batches);
                let first = self.outcome_result(outcome, &batches);
                self.retry(
                    &topic,
                    &records,
                    &mut delivered,
                    &mut batches,
                    Some(first),
                    started,
                )
            }
        };
        self.conclude(&topic, &records, result, delivered, batches)
    }

    fn conclude(
        &mut self,
        topic: &str,
        records: &[Record],
        result: Result<(), Error>,
        delivered: Vec<Option<Delivery>>,
        mut batches: Vec<Batch>,
    ) -> Result<Vec<Delivery>, SendError> {
        match result {
            Ok(()) => Ok(delivered
                .into_iter()
                .map(|d| {
                    d.unwrap_or(Delivery {
                        partition: -1,
                        offset: None,
                    })
                })
                .collect()),
            Err(error) => {
                let unacknowledged = delivered.iter().any(Option::is_none);
                // A transient failure: the caller may send the same batches again.
                let unsettled = (unacknowledged
                    && error.is_retriable()
                    && !matches!(error, Error::Cancelled)
                    && self.seal(records, &mut batches))
                .then(|| {
                    Box::new(Unsettled {
                        topic: topic.to_string(),
                        batches,
                        delivered: delivered.clone(),
                    })
                });
                if unsettled.is_some() {
                    self.unsettled_out = true;
                } else if unacknowledged && matches!(self.idempotence, Idempotence::On { .. }) {
                    // Batches of unknown fate leave the broker's sequence numbers out of step
                    // with ours; a new producer id starts every partition afresh.
                    self.idempotence = Idempotence::NeedsId;
                }
                Err(SendError {
                    error,
                    delivered,
                    unsettled,
                })
            }
        }
    }

    /// Gives every unacknowledged batch an encoding, so that it can be sent again without the
    /// caller's records. False when there is nothing to send again that way.
    fn seal(&self, records: &[Record], batches: &mut [Batch]) -> bool {
        if batches.is_empty() {
            return false;
        }
        for b in batches
            .iter_mut()
            .filter(|b| !b.done && b.encoded.is_none())
        {
            match self.krecords(records, b).and_then(|k| self.encode(k, b)) {
                Ok(bytes) => {
                    b.encoded = Some(bytes);
                    b.stale = false;
                }
                Err(_) => return false,
            }
        }
        true
    }

    fn send_inner(
        &mut self,
        topic: &str,
        records: &[Record],
        delivered: &mut [Option<Delivery>],
        batches: &mut Vec<Batch>,
    ) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let budget = self.batch_budget(topic);
        if let Some((i, size)) = records
            .iter()
            .map(record_size)
            .enumerate()
            .find(|&(_, s)| s + BATCH_OVERHEAD > budget)
        {
            // Deliver what comes before the record that can never be sent, so that the caller
            // can commit up to it; then fail naming it.
            if i > 0 {
                self.send_inner(topic, &records[..i], &mut delivered[..i], batches)?;
            }
            return Err(Error::RecordTooLarge {
                topic: topic.to_string(),
                key: describe_key(&records[i]),
                size,
                limit: Some(self.config.max_request_size),
            });
        }

        self.retry(topic, records, delivered, batches, None, Instant::now())
    }

    /// Attempts until every record is acknowledged, a non-retriable error, or the deadline.
    /// `first` is the outcome of an attempt already made (by `start`/`finish`), if any.
    fn retry(
        &mut self,
        topic: &str,
        records: &[Record],
        delivered: &mut [Option<Delivery>],
        batches: &mut Vec<Batch>,
        mut first: Option<Result<(), Error>>,
        started: Instant,
    ) -> Result<(), Error> {
        let deadline = started + self.config.delivery_timeout;
        let mut refresh = !self.topics.contains_key(topic);
        let mut unknown_topic = 0;
        let mut attempt = 0;
        let mut warned = false;
        loop {
            let result = match first.take() {
                Some(result) => result,
                None => self.attempt(topic, records, batches, &mut refresh, delivered),
            };
            let err = match result {
                Ok(()) => return Ok(()),
                Err(e @ Error::UnknownTopic { .. })
                    if unknown_topic + 1 < UNKNOWN_TOPIC_ATTEMPTS =>
                {
                    unknown_topic += 1;
                    refresh = true;
                    e
                }
                Err(e) if !e.is_retriable() => return Err(e),
                Err(e) => {
                    if !warned {
                        log::warn!(
                            "kafka: topic {topic}: {e}; retrying for up to {:.0}s",
                            self.config.delivery_timeout.as_secs_f64()
                        );
                        warned = true;
                    } else {
                        log::debug!("kafka: topic {topic}: {e}; retrying");
                    }
                    refresh |= e.needs_metadata_refresh();
                    e
                }
            };
            if Instant::now() >= deadline {
                return Err(Error::DeliveryTimeout {
                    topic: topic.to_string(),
                    after: started.elapsed(),
                    last: Box::new(err),
                });
            }
            attempt += 1;
            self.backoff(attempt, deadline)?;
        }
    }

    /// One attempt: make sure we have a producer id and metadata, plan the batches on first use,
    /// then send every pending batch once.
    fn attempt(
        &mut self,
        topic: &str,
        records: &[Record],
        batches: &mut Vec<Batch>,
        refresh: &mut bool,
        delivered: &mut [Option<Delivery>],
    ) -> Result<(), Error> {
        self.check_cancelled()?;
        self.ensure_producer_id()?;
        if *refresh {
            self.refresh_metadata(topic)?;
            *refresh = false;
        }
        if batches.is_empty() {
            *batches = self.plan(topic, records);
        }
        self.assign_sequences(topic, batches);
        let mut round = self.round_begin(topic, records, batches);
        self.round_pump(topic, &mut round, batches, delivered, false);
        let outcome = self.round_end(round, batches);
        self.outcome_result(outcome, batches)
    }

    fn outcome_result(&mut self, outcome: RoundOutcome, batches: &[Batch]) -> Result<(), Error> {
        if outcome.reset_producer_id {
            self.idempotence = Idempotence::NeedsId;
        }
        match outcome.error {
            Some(e) => Err(e),
            None if batches.iter().all(|b| b.done) => Ok(()),
            None => Err(Error::protocol(
                "(none)",
                "round ended with batches neither sent nor failed",
            )),
        }
    }

    /// The space one request has for record batches.
    fn batch_budget(&self, topic: &str) -> usize {
        self.config
            .max_request_size
            .saturating_sub(128 + topic.len())
    }

    /// Splits the records into batches: per partition, in input order, each within the request
    /// size budget.
    fn plan(&mut self, topic: &str, records: &[Record]) -> Vec<Batch> {
        let leaders = self.topics.get(topic).map(Vec::len).unwrap_or(1).max(1);
        let budget = self.batch_budget(topic);
        let mut per_partition: Vec<Vec<u32>> = vec![Vec::new(); leaders];
        let mut unkeyed = 0usize;
        for (i, record) in records.iter().enumerate() {
            let partition = match &record.key {
                Some(key) => partition_for_key(key, leaders),
                None => {
                    unkeyed += 1;
                    (self.round_robin + unkeyed) % leaders
                }
            };
            per_partition[partition].push(i as u32);
        }
        self.round_robin = self.round_robin.wrapping_add(unkeyed);

        let mut batches = Vec::new();
        for (partition, indices) in per_partition.into_iter().enumerate() {
            let mut current = Vec::new();
            let mut size = BATCH_OVERHEAD;
            for i in indices {
                let s = record_size(&records[i as usize]);
                if !current.is_empty() && size + s > budget {
                    batches.push(Batch::new(partition as i32, std::mem::take(&mut current)));
                    size = BATCH_OVERHEAD;
                }
                current.push(i);
                size += s;
            }
            if !current.is_empty() {
                batches.push(Batch::new(partition as i32, current));
            }
        }
        batches
    }

    /// Gives every pending batch that was not sequenced under the current producer id its
    /// sequence numbers, in order per partition.
    fn assign_sequences(&mut self, topic: &str, batches: &mut Vec<Batch>) {
        let Idempotence::On {
            producer_id,
            epoch,
            sequences,
        } = &mut self.idempotence
        else {
            for b in batches.iter_mut().filter(|b| !b.done && b.producer.0 != -1) {
                b.producer = (-1, -1);
                b.base_sequence = -1;
                b.stale = true;
            }
            return;
        };
        let current = (*producer_id, *epoch);
        if batches.iter().all(|b| b.done || b.producer == current) {
            return;
        }
        // Sequences wrap from i32::MAX to 0; a batch may not straddle the wrap, so split there.
        let mut i = 0;
        while i < batches.len() {
            let b = &batches[i];
            if !b.done && b.producer != current {
                let next = sequences
                    .entry((topic.to_string(), b.partition))
                    .or_insert(0);
                let room = (i32::MAX as i64 - *next as i64 + 1) as usize;
                if batches[i].records.len() > room {
                    let tail = batches[i].records.split_off(room);
                    let partition = batches[i].partition;
                    batches.insert(i + 1, Batch::new(partition, tail));
                }
                let b = &mut batches[i];
                b.producer = current;
                b.base_sequence = *next;
                b.stale = true;
                *next = wrap_sequence(*next as i64 + b.records.len() as i64);
            }
            i += 1;
        }
    }

    /// A round sends every pending batch once: one request per leader at a time per level,
    /// pipelined up to the in-flight limit, and records the outcome of each partition. This
    /// prepares it: encodes, groups into requests, connects to the leaders.
    fn round_begin(&mut self, topic: &str, records: &[Record], batches: &mut [Batch]) -> Round {
        let mut outcome = RoundOutcome::default();
        let max_in_flight = if matches!(self.idempotence, Idempotence::On { .. }) {
            MAX_IN_FLIGHT_IDEMPOTENT
        } else {
            1
        };
        let mut round = Round {
            queues: Vec::new(),
            failed_partitions: HashSet::new(),
            splits: Vec::new(),
            throttle: 0,
            outcome: RoundOutcome::default(),
            max_in_flight,
        };
        let Some(leaders) = self.topics.get(topic).cloned() else {
            outcome.fail(Error::UnknownTopic {
                topic: topic.to_string(),
                broker: "(no metadata)".into(),
            });
            round.outcome = outcome;
            return round;
        };
        let budget = self.batch_budget(topic);

        // Encode what needs encoding, and group pending batches per leader, level by level: the
        // k-th pending batch of each partition goes in the k-th request, so that order within a
        // partition is the order of requests on the connection.
        let mut per_leader: HashMap<i32, Vec<Vec<usize>>> = HashMap::new();
        let mut level: HashMap<i32, usize> = HashMap::new();
        for (i, batch) in batches.iter_mut().enumerate() {
            if batch.done {
                continue;
            }
            let partition = batch.partition;
            let leader = leaders.get(partition as usize).copied().unwrap_or(-1);
            if leader < 0 || !self.brokers.contains_key(&leader) {
                outcome.fail(Error::Broker {
                    broker: "(none)".into(),
                    topic: Some(topic.to_string()),
                    partition: Some(partition),
                    code: ResponseError::LeaderNotAvailable,
                    message: None,
                });
                continue;
            }
            if batch.encoded.is_none() || batch.stale {
                // First encoding, uncompressed: written straight from the records. Otherwise
                // (compression, or re-encoding a batch whose records were dropped) the codec.
                let direct = match (&batch.encoded, self.config.compression) {
                    (None, Compression::None) => super::records::write_uncompressed(
                        records,
                        &batch.records,
                        batch.producer,
                        batch.base_sequence,
                    ),
                    _ => None,
                };
                let encoded = match direct {
                    Some(bytes) => Ok(bytes),
                    None => self
                        .krecords(records, batch)
                        .and_then(|k| self.encode(k, batch)),
                };
                match encoded {
                    Ok(bytes) => {
                        batch.encoded = Some(bytes);
                        batch.stale = false;
                    }
                    Err(e) => {
                        outcome.fail(e);
                        continue;
                    }
                }
            }
            let k = level.entry(partition).or_insert(0);
            let requests = per_leader.entry(leader).or_default();
            while requests.len() <= *k {
                requests.push(Vec::new());
            }
            requests[*k].push(i);
            *k += 1;
        }
        if outcome.error.as_ref().is_some_and(|e| !e.is_retriable()) {
            round.outcome = outcome;
            return round;
        }

        // Split levels that exceed the request budget into several requests.
        let mut queues: Vec<LeaderQueue> = Vec::new();
        for (leader, levels) in per_leader {
            let mut queue = VecDeque::new();
            for level in levels {
                let mut request = Vec::new();
                let mut size = 0;
                for i in level {
                    let s = batches[i].encoded.as_ref().map_or(0, Bytes::len) + 16;
                    if !request.is_empty() && size + s > budget {
                        queue.push_back(std::mem::take(&mut request));
                        size = 0;
                    }
                    request.push(i);
                    size += s;
                }
                if !request.is_empty() {
                    queue.push_back(request);
                }
            }
            queues.push(LeaderQueue {
                leader,
                queue,
                in_flight: VecDeque::new(),
                version: 0,
            });
        }

        for q in &mut queues {
            match self.produce_connection(q.leader) {
                Ok(version) => q.version = version,
                Err(e) => {
                    for request in q.queue.drain(..) {
                        for i in request {
                            round.failed_partitions.insert(batches[i].partition);
                        }
                    }
                    outcome.refresh_metadata = true;
                    outcome.fail(e);
                }
            }
        }
        round.queues = queues;
        round.outcome = outcome;
        round
    }

    /// Writes requests up to the in-flight limits and reads responses until the round is
    /// done — or, with `write_only`, returns once everything that may be written now is.
    fn round_pump(
        &mut self,
        topic: &str,
        round: &mut Round,
        batches: &mut [Batch],
        delivered: &mut [Option<Delivery>],
        write_only: bool,
    ) {
        let Round {
            queues,
            failed_partitions,
            splits,
            throttle,
            outcome,
            max_in_flight,
        } = round;
        let max_in_flight = *max_in_flight;
        loop {
            let mut busy = false;
            for q in queues.iter_mut() {
                while q.in_flight.len() < max_in_flight {
                    let Some(mut request) = q.queue.pop_front() else {
                        break;
                    };
                    request.retain(|&i| !failed_partitions.contains(&batches[i].partition));
                    if request.is_empty() {
                        continue;
                    }
                    let produce = self.produce_body(topic, &request, batches);
                    let Some(conn) = self.conns.get_mut(&q.leader) else {
                        break;
                    };
                    match conn.write_produce(&produce, q.version) {
                        Ok(id) => q.in_flight.push_back((id, request)),
                        Err(e) => {
                            self.conns.remove(&q.leader);
                            q.abandon(Some(request), batches, failed_partitions);
                            outcome.refresh_metadata = true;
                            outcome.fail(e);
                            break;
                        }
                    }
                }
                if write_only {
                    continue;
                }
                let Some((id, request)) = q.in_flight.pop_front() else {
                    continue;
                };
                busy = true;
                let Some(conn) = self.conns.get_mut(&q.leader) else {
                    continue;
                };
                let broker = conn.addr().to_string();
                match conn.read::<ProduceRequest>(id, q.version) {
                    Ok(response) => {
                        *throttle = (*throttle).max(response.throttle_time_ms);
                        handle_response(
                            topic,
                            &broker,
                            response,
                            &request,
                            batches,
                            delivered,
                            failed_partitions,
                            splits,
                            outcome,
                        );
                    }
                    Err(e) => {
                        self.conns.remove(&q.leader);
                        q.abandon(Some(request), batches, failed_partitions);
                        outcome.refresh_metadata = true;
                        outcome.fail(e);
                    }
                }
            }
            if write_only || (!busy && queues.iter().all(|q| q.queue.is_empty())) {
                break;
            }
        }
    }

    /// Ends a round: halves the batches the broker found too large and honours throttling.
    fn round_end(&mut self, round: Round, batches: &mut Vec<Batch>) -> RoundOutcome {
        let Round {
            mut splits,
            throttle,
            outcome,
            ..
        } = round;

        // Batches the broker found too large are halved; order is kept because the halves take
        // the original's place.
        splits.sort_unstable();
        let mut outcome = outcome;
        for &i in splits.iter().rev() {
            if let Err(e) = self.split(batches, i) {
                outcome.fail(e);
            }
        }
        if throttle > 0 {
            // KIP-219: the broker asks us to hold off; it will mute the connection otherwise.
            std::thread::sleep(Duration::from_millis(throttle.min(30_000) as u64));
        }
        outcome
    }

    fn produce_body<'a>(
        &self,
        topic: &'a str,
        request: &[usize],
        batches: &'a [Batch],
    ) -> ProduceBody<'a> {
        ProduceBody {
            acks: match self.config.acks {
                Acks::All => -1,
                Acks::Leader => 1,
            },
            timeout_ms: self
                .config
                .request_timeout
                .as_millis()
                .min(i32::MAX as u128) as i32,
            topic,
            partitions: request
                .iter()
                .map(|&i| (batches[i].partition, batches[i].encoded.as_ref()))
                .collect(),
        }
    }

    /// The batch's records as codec records: decoded from the batch's own encoding when it has
    /// one (the caller's records may be gone by then, see `start`), else built from the
    /// caller's records.
    fn krecords(&self, records: &[Record], batch: &Batch) -> Result<Vec<KRecord>, Error> {
        if let Some(encoded) = &batch.encoded {
            let mut buf = encoded.clone();
            let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| Error::Protocol {
                broker: "(local)".into(),
                detail: format!("cannot decode our own record batch: {e}"),
            })?;
            return Ok(set.records);
        }
        batch
            .records
            .iter()
            .map(|&i| {
                let r = records.get(i as usize).ok_or_else(|| Error::Protocol {
                    broker: "(local)".into(),
                    detail: "a batch to encode has neither records nor an encoding".into(),
                })?;
                Ok(KRecord {
                    transactional: false,
                    control: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: 0,
                    sequence: -1,
                    timestamp: r.timestamp_ms,
                    key: r.key.clone(),
                    value: Some(r.value.clone()),
                    // Most records have none: skip building an empty map through an iterator.
                    headers: if r.headers.is_empty() {
                        IndexMap::new()
                    } else {
                        r.headers
                            .iter()
                            .map(|(k, v)| (StrBytes::from_string(k.clone()), Some(v.clone())))
                            .collect()
                    },
                    delete_horizon: false,
                })
            })
            .collect()
    }

    /// Encodes `krecords` as one RecordBatch v2 under the batch's producer id and sequence.
    fn encode(&self, mut krecords: Vec<KRecord>, batch: &Batch) -> Result<Bytes, Error> {
        let (producer_id, epoch) = batch.producer;
        let mut size = BATCH_OVERHEAD;
        for (n, r) in krecords.iter_mut().enumerate() {
            r.producer_id = producer_id;
            r.producer_epoch = epoch;
            r.offset = n as i64;
            // The codec keeps records in ONE batch only while offset - sequence is constant, so
            // the sequence counts up from the base even without idempotence (base -1: the batch
            // header then says -1, "no sequence"); a constant -1 would make one batch per record,
            // which brokers reject (at most one batch per partition in a request).
            r.sequence = batch.base_sequence.wrapping_add(n as i32);
            size += RECORD_OVERHEAD
                + r.key.as_ref().map_or(0, Bytes::len)
                + r.value.as_ref().map_or(0, Bytes::len)
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len) + 10)
                    .sum::<usize>();
        }
        let mut buf = BytesMut::with_capacity(size);
        let options = RecordEncodeOptions {
            version: 2,
            compression: self.config.compression.codec(),
        };
        RecordBatchEncoder::encode(&mut buf, krecords.iter(), &options).map_err(|e| {
            Error::Protocol {
                broker: "(local)".into(),
                detail: format!("cannot encode record batch: {e}"),
            }
        })?;
        Ok(buf.freeze())
    }

    /// Halves batch `i` (the broker found it too large); the halves take its place, so order is
    /// kept. Works from the batch's encoding, not the caller's records.
    fn split(&self, batches: &mut Vec<Batch>, i: usize) -> Result<(), Error> {
        let mut first = self.krecords(&[], &batches[i])?;
        let b = &mut batches[i];
        let half = b.records.len() / 2;
        let tail = b.records.split_off(half);
        let rest = first.split_off(half.min(first.len()));
        let mut second = Batch::new(b.partition, tail);
        second.producer = b.producer;
        second.base_sequence = if b.base_sequence < 0 {
            -1
        } else {
            wrap_sequence(b.base_sequence as i64 + half as i64)
        };
        b.encoded = Some(self.encode(first, b)?);
        second.encoded = Some(self.encode(rest, &second)?);
        batches.insert(i + 1, second);
        Ok(())
    }

    /// Makes sure there is a connection to `leader` that speaks Produce ≥ v3, and returns the
    /// version to use.
    fn produce_connection(&mut self, leader: i32) -> Result<i16, Error> {
        if !self.conns.contains_key(&leader) {
            let addr = self
                .brokers
                .get(&leader)
                .cloned()
                .ok_or_else(|| Error::Broker {
                    broker: format!("node {leader}"),
                    topic: None,
                    partition: None,
                    code: ResponseError::LeaderNotAvailable,
                    message: Some("leader not in metadata".into()),
                })?;
            let conn = match self.bootstrap_conn.take() {
                Some(c) if c.addr() == addr => c,
                other => {
                    self.bootstrap_conn = other;
                    Connection::connect(&addr, &self.conn_options)?
                }
            };
            self.conns.insert(leader, conn);
        }
        let conn = &self.conns[&leader];
        conn.version::<ProduceRequest>(PRODUCE_MAX_VERSION)
            .ok_or_else(|| Error::UnsupportedVersion {
                broker: conn.addr().to_string(),
                api: "Produce",
                broker_max: conn.broker_max::<ProduceRequest>(),
                needed: "v3 or later (Kafka ≥ 0.11)",
            })
    }

    /// Runs `f` on some connection: an open one if there is one, else the first bootstrap (or
    /// known) broker that accepts a connection. A connection that fails is dropped.
    fn with_any_connection<T>(
        &mut self,
        mut f: impl FnMut(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(&node) = self.conns.keys().next() {
            let conn = self.conns.get_mut(&node).expect("key just seen");
            let result = f(conn);
            if matches!(result, Err(Error::Io { .. } | Error::Protocol { .. })) {
                self.conns.remove(&node);
            }
            return result;
        }
        if self.bootstrap_conn.is_none() {
            let mut candidates: Vec<String> = self.config.bootstrap.clone();
            candidates.extend(
                self.brokers
                    .values()
                    .filter(|a| !self.config.bootstrap.contains(a))
                    .cloned(),
            );
            let mut last = None;
            for addr in &candidates {
                match Connection::connect(addr, &self.conn_options) {
                    Ok(c) => {
                        self.bootstrap_conn = Some(c);
                        break;
                    }
                    // A peer that does not speak Kafka at all is not worth retrying.
                    Err(e @ (Error::Protocol { .. } | Error::UnsupportedVersion { .. }))
                        if candidates.len() == 1 =>
                    {
                        return Err(e)
                    }
                    Err(e) => {
                        log::debug!("kafka: bootstrap {addr}: {e}");
                        last = Some(e);
                    }
                }
            }
            if self.bootstrap_conn.is_none() {
                return Err(Error::NoBrokerReachable {
                    tried: candidates.join(", "),
                    last: Box::new(
                        last.unwrap_or(Error::protocol(
                            "(none)",
                            "no bootstrap brokers configured",
                        )),
                    ),
                });
            }
        }
        let conn = self.bootstrap_conn.as_mut().expect("set above");
        let result = f(conn);
        if matches!(result, Err(Error::Io { .. } | Error::Protocol { .. })) {
            self.bootstrap_conn = None;
        }
        result
    }

    /// Fetches metadata for `topic` (never creating it) and returns its partition count.
    fn refresh_metadata(&mut self, topic: &str) -> Result<usize, Error> {
        let response = self.with_any_connection(|conn| {
            let version = conn
                .version::<MetadataRequest>(METADATA_MAX_VERSION)
                .filter(|&v| v >= METADATA_MIN_VERSION)
                .ok_or_else(|| Error::UnsupportedVersion {
                    broker: conn.addr().to_string(),
                    api: "Metadata",
                    broker_max: conn.broker_max::<MetadataRequest>(),
                    needed: "v4 or later (Kafka ≥ 0.11)",
                })?;
            let request = MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                    TopicName(StrBytes::from_string(topic.to_string())),
                ))]))
                .with_allow_auto_topic_creation(false);
            Ok((conn.addr().to_string(), conn.call(&request, version)?))
        })?;
        let (broker, response) = response;
        let brokers: HashMap<i32, String> = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    format!("{}:{}", host_for_addr(b.host.as_str()), b.port),
                )
            })
            .collect();
        // Connections to nodes that moved or left are dropped.
        self.conns
            .retain(|node, conn| brokers.get(node).is_some_and(|a| a == conn.addr()));
        self.brokers = brokers;
        let Some(t) = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        else {
            return Err(Error::UnknownTopic {
                topic: topic.to_string(),
                broker,
            });
        };
        match ResponseError::try_from_code(t.error_code) {
            None => {}
            Some(ResponseError::UnknownTopicOrPartition) => {
                return Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                    broker,
                });
            }
            Some(code) => {
                return Err(Error::Broker {
                    broker,
                    topic: Some(topic.to_string()),
                    partition: None,
                    code,
                    message: None,
                });
            }
        }
        let count = t
            .partitions
            .iter()
            .map(|p| p.partition_index + 1)
            .max()
            .unwrap_or(0)
            .max(0) as usize;
        if count == 0 {
            return Err(Error::Broker {
                broker,
                topic: Some(topic.to_string()),
                partition: None,
                code: ResponseError::LeaderNotAvailable,
                message: Some("topic has no partitions yet".into()),
            });
        }
        let mut leaders = vec![-1; count];
        for p in &t.partitions {
            if p.partition_index >= 0 {
                let leader_ok = matches!(
                    ResponseError::try_from_code(p.error_code),
                    None | Some(ResponseError::ReplicaNotAvailable)
                );
                leaders[p.partition_index as usize] = if leader_ok { p.leader_id.0 } else { -1 };
            }
        }
        self.topics.insert(topic.to_string(), leaders);
        Ok(count)
    }

    /// Obtains a producer id when we need one; falls back to non-idempotent producing, with one
    /// warning, where the broker cannot or will not give us one.
    fn ensure_producer_id(&mut self) -> Result<(), Error> {
        if !matches!(self.idempotence, Idempotence::NeedsId) {
            return Ok(());
        }
        let timeout_ms = self
            .config
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        let response = self.with_any_connection(|conn| {
            let Some(version) = conn.version::<InitProducerIdRequest>(INIT_PRODUCER_ID_MAX_VERSION)
            else {
                return Ok(Err(conn.addr().to_string()));
            };
            let request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1);
            Ok(Ok((conn.addr().to_string(), conn.call(&request, version)?)))
        })?;
        let (broker, response) = match response {
            Ok(r) => r,
            Err(broker) => {
                log::warn!("kafka: broker {broker} does not support InitProducerId; producing without idempotence (a retried batch may be written twice)");
                self.idempotence = Idempotence::Off;
                return Ok(());
            }
        };
        match ResponseError::try_from_code(response.error_code) {
            None => {
                self.idempotence = Idempotence::On {
                    producer_id: response.producer_id.0,
                    epoch: response.producer_epoch,
                    sequences: HashMap::new(),
                };
                log::debug!(
                    "kafka: producer id {} epoch {}",
                    response.producer_id.0,
                    response.producer_epoch
                );
                Ok(())
            }
            Some(code) if code.is_retriable() => Err(Error::Broker {
                broker,
                topic: None,
                partition: None,
                code,
                message: Some("InitProducerId".into()),
            }),
            Some(code) => {
                log::warn!("kafka: broker {broker} refused a producer id ({code:?}); producing without idempotence (a retried batch may be written twice)");
                self.idempotence = Idempotence::Off;
                Ok(())
            }
        }
    }

    fn check_cancelled(&self) -> Result<(), Error> {
        match &self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }

    /// Sleeps before retry `attempt`: exponential from `retry_backoff` to `retry_backoff_max`,
    /// with ±20 % jitter, never past `deadline`, waking early on cancellation.
    fn backoff(&mut self, attempt: u32, deadline: Instant) -> Result<(), Error> {
        let base = self
            .config
            .retry_backoff
            .saturating_mul(1 << attempt.min(16).saturating_sub(1));
        let base = base.min(self.config.retry_backoff_max);
        // xorshift64: jitter only needs to decorrelate instances, not to be unpredictable.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.8 + 0.4 * ((self.rng >> 11) as f64 / (1u64 << 53) as f64);
        let wake = (Instant::now() + base.mul_f64(jitter)).min(deadline);
        while Instant::now() < wake {
            self.check_cancelled()?;
            std::thread::sleep((wake - Instant::now()).min(Duration::from_millis(50)));
        }
        self.check_cancelled()
    }
}

/// Handles one Produce response: the retry decision for each partition is the `match` below.
#[allow(clippy::too_many_arguments)]
fn handle_response(
    topic: &str,
    broker: &str,
    response: ProduceResponse,
    request: &[usize],
    batches: &mut [Batch],
    delivered: &mut [Option<Delivery>],
    failed_partitions: &mut HashSet<i32>,
    splits: &mut Vec<usize>,
    outcome: &mut RoundOutcome,
) {
    let partitions: HashMap<i32, &_> = response
        .responses
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partition_responses.iter())
        .map(|p| (p.index, p))
        .collect();
    for &i in request {
        let partition = batches[i].partition;
        let Some(p) = partitions.get(&partition) else {
            failed_partitions.insert(partition);
            outcome.fail(Error::protocol(
                broker,
                format!("Produce response has no result for partition {partition}"),
            ));
            continue;
        };
        let broker_error = |code| Error::Broker {
            broker: broker.to_string(),
            topic: Some(topic.to_string()),
            partition: Some(partition),
            code,
            message: p.error_message.as_ref().map(|m| m.as_str().to_string()),
        };
        match ResponseError::try_from_code(p.error_code) {
            None => batches[i].acknowledge(Some(p.base_offset).filter(|&o| o >= 0), delivered),
            // Already written by an earlier attempt (Kafka answers success; tansu answers this).
            Some(ResponseError::DuplicateSequenceNumber) => batches[i].acknowledge(None, delivered),
            Some(ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge)
                if batches[i].records.len() > 1 =>
            {
                failed_partitions.insert(partition);
                splits.push(i);
                outcome.fail(broker_error(ResponseError::NetworkException));
            }
            Some(ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge) => {
                failed_partitions.insert(partition);
                outcome.fail(Error::RecordTooLarge {
                    topic: topic.to_string(),
                    key: "(see batch)".into(),
                    size: batches[i].encoded.as_ref().map_or(0, Bytes::len),
                    limit: None,
                });
            }
            // An earlier batch of this partition failed in this round: this one was refused only
            // because of the gap it left, and is simply sent again.
            Some(ResponseError::OutOfOrderSequenceNumber)
                if failed_partitions.contains(&partition) => {}
            Some(
                code @ (ResponseError::OutOfOrderSequenceNumber
                | ResponseError::UnknownProducerId
                | ResponseError::InvalidProducerEpoch),
            ) => {
                failed_partitions.insert(partition);
                outcome.reset_producer_id = true;
                outcome.fail(broker_error(code));
            }
            Some(code) => {
                failed_partitions.insert(partition);
                let e = broker_error(code);
                outcome.refresh_metadata |= e.needs_metadata_refresh();
                outcome.fail(e);
            }
        }
    }
}

fn wrap_sequence(n: i64) -> i32 {
    (n % (i32::MAX as i64 + 1)) as i32
}

/// An upper bound of a record's encoded size: the batching budget, and buffer sizes.
pub(super) fn record_size(r: &Record) -> usize {
    RECORD_OVERHEAD
        + r.key.as_ref().map_or(0, Bytes::len)
        + r.value.len()
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum::<usize>()
}

fn describe_key(r: &Record) -> String {
    match &r.key {
        Some(k) => format!("{:?}", String::from_utf8_lossy(&k[..k.len().min(64)])),
        None => "(none)".into(),
    }
}

/// Metadata may advertise a bare IPv6 address; it needs brackets to be dialled as host:port.
fn host_for_addr(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A group of records for one partition, sent as one RecordBatch.
#[derive(Debug)]
struct Batch {
    partition: i32,
    /// Indices into the caller's records, in input order.
    records: Vec<u32>,
    /// (producer id, epoch) the sequence numbers belong to; (-1, -1) when not idempotent.
    producer: (i64, i16),
    base_sequence: i32,
    /// The encoded batch, kept so that a retry resends identical bytes.
    encoded: Option<Bytes>,
    /// `encoded` holds the right records under an old producer id or sequence: re-encode it
    /// (from itself) before sending.
    stale: bool,
    done: bool,
}

impl Batch {
    fn new(partition: i32, records: Vec<u32>) -> Batch {
        Batch {
            partition,
            records,
            producer: (-1, -1),
            base_sequence: -1,
            encoded: None,
            stale: false,
            done: false,
        }
    }

    fn acknowledge(&mut self, base_offset: Option<i64>, delivered: &mut [Option<Delivery>]) {
        for (n, &i) in self.records.iter().enumerate() {
            delivered[i as usize] = Some(Delivery {
                partition: self.partition,
                offset: base_offset.map(|o| o + n as i64),
            });
        }
        self.done = true;
        self.encoded = None;
    }
}

struct LeaderQueue {
    leader: i32,
    queue: VecDeque<Vec<usize>>,
    in_flight: VecDeque<(i32, Vec<usize>)>,
    version: i16,
}

impl LeaderQueue {
    /// The connection broke: everything queued or in flight on it is retried next round.
    fn abandon(
        &mut self,
        current: Option<Vec<usize>>,
        batches: &[Batch],
        failed: &mut HashSet<i32>,
    ) {
        let all = current
            .into_iter()
            .chain(self.in_flight.drain(..).map(|(_, r)| r))
            .chain(self.queue.drain(..));
        for request in all {
            for i in request {
                failed.insert(batches[i].partition);
            }
        }
    }
}

/// A send whose requests are written but whose acknowledgements are not read yet (see
/// `Producer::start`). Holds the records until `Producer::finish`.
pub struct Pending {
    topic: String,
    records: Vec<Record>,
    delivered: Vec<Option<Delivery>>,
    started: Instant,
    /// The first round, when `start` could begin it.
    round: Option<(Vec<Batch>, Round)>,
}

/// One round in progress.
struct Round {
    queues: Vec<LeaderQueue>,
    /// Partitions with a failed batch in this round: their later batches are not sent (they
    /// would be out of order) and are retried in the next round.
    failed_partitions: HashSet<i32>,
    /// Batches the broker found too large, halved at the end of the round.
    splits: Vec<usize>,
    throttle: i32,
    outcome: RoundOutcome,
    max_in_flight: usize,
}

#[derive(Default)]
struct RoundOutcome {
    /// The first non-retriable error, else the first error.
    error: Option<Error>,
    refresh_metadata: bool,
    reset_producer_id: bool,
}

impl RoundOutcome {
    fn fail(&mut self, e: Error) {
        log::debug!("kafka: {e}");
        let replace = match &self.error {
            None => true,
            Some(current) => current.is_retriable() && !e.is_retriable(),
        };
        if replace {
            self.error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&str>, size: usize) -> Record {
        Record {
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Bytes::from(vec![b'x'; size]),
            headers: vec![],
            timestamp_ms: 0,
        }
    }

    #[test]
    fn plan_keeps_input_order_per_partition_and_respects_the_budget() {
        let mut p = Producer::new(ProducerConfig {
            max_request_size: 10_000,
            ..ProducerConfig::default()
        });
        p.topics.insert("t".into(), vec![0, 0, 0]);
        let records: Vec<Record> = (0..300)
            .map(|i| record(Some(&i.to_string()), 100))
            .collect();
        let batches = p.plan("t", &records);
        let budget = p.batch_budget("t");
        for b in &batches {
            let size: usize = BATCH_OVERHEAD
                + b.records
                    .iter()
                    .map(|&i| record_size(&records[i as usize]))
                    .sum::<usize>();
            assert!(size <= budget, "batch of {size} bytes over budget {budget}");
            assert!(b.records.windows(2).all(|w| w[0] < w[1]));
            for &i in &b.records {
                assert_eq!(
                    partition_for_key(i.to_string().as_bytes(), 3) as i32,
                    b.partition
                );
            }
        }
        assert_eq!(batches.iter().map(|b| b.records.len()).sum::<usize>(), 300);
    }

    #[test]
    fn unkeyed_records_are_spread_evenly() {
        let mut p = Producer::new(ProducerConfig::default());
        p.topics.insert("t".into(), vec![0, 0, 0, 0]);
        let records: Vec<Record> = (0..400).map(|_| record(None, 10)).collect();
        let batches = p.plan("t", &records);
        let mut counts = [0; 4];
        for b in &batches {
            counts[b.partition as usize] += b.records.len();
        }
        assert_eq!(counts, [100; 4]);
    }

    #[test]
    fn sequences_are_consecutive_per_partition_and_wrap_at_i32_max() {
        let mut p = Producer::new(ProducerConfig::default());
        let mut sequences = HashMap::new();
        sequences.insert(("t".to_string(), 0), i32::MAX - 1);
        p.idempotence = Idempotence::On {
            producer_id: 7,
            epoch: 0,
            sequences,
        };
        let mut batches = vec![Batch::new(0, vec![0, 1, 2, 3]), Batch::new(1, vec![4, 5])];
        p.assign_sequences("t", &mut batches);
        let seqs: Vec<(i32, i32, usize)> = batches
            .iter()
            .map(|b| (b.partition, b.base_sequence, b.records.len()))
            .collect();
        assert_eq!(seqs, vec![(0, i32::MAX - 1, 2), (0, 0, 2), (1, 0, 2)]);
    }

    #[test]
    fn every_batch_encodes_as_exactly_one_record_batch_with_or_without_idempotence() {
        let records: Vec<Record> = (0..50).map(|i| record(Some(&i.to_string()), 20)).collect();
        for (producer, base) in [((-1, -1), -1), ((7, 0), 100)] {
            let p = Producer::new(ProducerConfig::default());
            let mut batch = Batch::new(0, (0..50).collect());
            batch.producer = producer;
            batch.base_sequence = base;
            let encoded = p
                .krecords(&records, &batch)
                .and_then(|k| p.encode(k, &batch))
                .unwrap();
            let infos = RecordBatchDecoder::decode_batch_info(&mut encoded.clone()).unwrap();
            assert_eq!(
                infos.len(),
                1,
                "producer {producer:?}: {} batches",
                infos.len()
            );
            assert_eq!((infos[0].record_count, infos[0].base_sequence), (50, base));
            assert_eq!(infos[0].producer_id, producer.0);
            // And re-encoding from the encoding (after start dropped the records) gives the same.
            let again = p.krecords(
                &[],
                &Batch {
                    encoded: Some(encoded.clone()),
                    ..Batch::new(0, (0..50).collect())
                },
            );
            let again = again.and_then(|k| p.encode(k, &batch)).unwrap();
            assert_eq!(again, encoded);
        }
    }

    #[test]
    fn oversized_record_is_refused_naming_its_key() {
        let mut p = Producer::new(ProducerConfig {
            max_request_size: 2048,
            ..ProducerConfig::default()
        });
        let err = p.send("t", &[record(Some("42"), 4096)]).unwrap_err();
        assert!(matches!(err.error, Error::RecordTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("key \"42\""), "{err}");
        assert!(!err.error.is_retriable());
    }

    #[test]
    fn unreachable_bootstrap_fails_within_the_delivery_timeout() {
        let mut p = Producer::new(ProducerConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            delivery_timeout: Duration::from_millis(600),
            ..ProducerConfig::default()
        });
        let started = Instant::now();
        let err = p.send("t", &[record(Some("1"), 10)]).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:1") && text.contains("delivery timeout"),
            "{text}"
        );
    }
}
