//! Test support for Kafka: where the broker is, creating topics, and reading topics back with an
//! independent client (librdkafka through the `rdkafka` crate), so that what our producer wrote
//! is never checked only by our own code.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use repliqate::kafka::{Batches, Pending, Producer, Record};

use super::env::{stack_var, unique};
use super::stack::stack_ok;

/// host:port of the test broker, from `scripts/stack env`. Missing = a failed test, never a skip.
pub fn broker() -> String {
    super::env::kafka_broker()
}

/// Runs a future to completion on this thread (rdkafka's admin futures need no runtime).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Creates a topic through librdkafka's admin API (CreateTopics).
pub fn create_topic(broker: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = block_on(admin.create_topics([&new], &opts)).expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Now, as a record timestamp. Records stamped long ago are past the broker's retention (seven
/// days): its retention check, every five minutes, deletes their segment (and rolls an active
/// one), so a test that reads them back after it ran finds nothing.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `records` written into a new send of `p` to `topic` (looked up already), straight into their
/// record batches as the replicator writes its messages, for `Producer::start`.
pub fn batches_of(p: &Producer, topic: &str, records: &[Record]) -> Batches {
    let mut batches = p.batches(topic, 0).expect("the topic was looked up");
    for r in records {
        batches
            .push(r.key.as_deref(), r.timestamp_ms, |buf| {
                buf.extend_from_slice(&r.value);
                Ok::<(), ()>(())
            })
            .expect("a record that fits a batch");
    }
    batches
}

/// Calls `push` on a started send every 20 ms, before any `finish`, until the broker holds
/// `total` records of `topic` (the sum of its partitions' end offsets, read by librdkafka);
/// fails after `within`, saying how many it holds. Returns the longest a `push` took.
pub fn push_until_held(
    p: &mut Producer,
    pending: &mut Pending,
    (broker, topic, partitions): (&str, &str, i32),
    total: i64,
    within: Duration,
) -> Duration {
    let deadline = Instant::now() + within;
    let mut slowest = Duration::ZERO;
    loop {
        let started = Instant::now();
        p.push(pending);
        slowest = slowest.max(started.elapsed());
        let held: i64 = end_offsets(broker, topic, partitions).iter().sum();
        if held >= total {
            return slowest;
        }
        assert!(
            Instant::now() < deadline,
            "the broker holds {held} of {total} records before finish: push did not write the \
             requests held back by the in-flight limit as their answers came"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A message as librdkafka read it.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: Option<i64>,
}

/// Reads every partition of `topic` from the beginning until `expected` messages arrived or
/// `timeout` passed (then returns what it has; the caller's assertions say what is missing).
/// Any consumer error fails the test.
pub fn consume_all(
    broker: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let how = Reading {
        at_least: expected,
        quiet: Duration::ZERO,
        timeout,
        stopped_brokers: StoppedBrokers::Fail,
    };
    read_topic(broker, topic, partitions, how)
}

/// Reads every partition of `topic` from the beginning until at least `at_least` messages
/// arrived and then nothing more for `quiet` (so that extra messages are seen too), or until
/// `timeout`. A broker the test stopped is not an error: librdkafka says so and reads on from
/// the others (rows it cannot reach show up as missing, which the caller checks).
pub fn consume_until_quiet(
    broker: &str,
    topic: &str,
    partitions: i32,
    at_least: usize,
    quiet: Duration,
    timeout: Duration,
) -> Vec<Consumed> {
    let how = Reading {
        at_least,
        quiet,
        timeout,
        stopped_brokers: StoppedBrokers::Tolerate,
    };
    read_topic(broker, topic, partitions, how)
}

/// How long `read_topic` reads, and what it may meet.
struct Reading {
    /// Read until at least this many messages arrived…
    at_least: usize,
    /// …and then nothing more for this long…
    quiet: Duration,
    /// …or until this much time passed.
    timeout: Duration,
    stopped_brokers: StoppedBrokers,
}

/// Whether a broker the test stopped fails the read.
#[derive(PartialEq, Eq)]
enum StoppedBrokers {
    Fail,
    /// librdkafka reports the broker and reads on from the others.
    Tolerate,
}

fn read_topic(broker: &str, topic: &str, partitions: i32, how: Reading) -> Vec<Consumed> {
    let Reading {
        at_least,
        quiet,
        timeout,
        stopped_brokers,
    } = how;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", unique("verify"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut last = Instant::now();
    let mut out = Vec::with_capacity(at_least);
    while Instant::now() < deadline && (out.len() < at_least || last.elapsed() < quiet) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure)))
                if stopped_brokers == StoppedBrokers::Tolerate => {}
            Some(Err(e)) => panic!("librdkafka consumer error on {topic}: {e}"),
            Some(Ok(m)) => {
                last = Instant::now();
                out.push(Consumed {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp_ms: m.timestamp().to_millis(),
                });
            }
        }
    }
    out
}

/// How often each id (the message key, a decimal) appears in `msgs`.
pub fn key_counts(msgs: &[Consumed]) -> HashMap<i64, usize> {
    let mut ids: HashMap<i64, usize> = HashMap::new();
    for m in msgs {
        let key = std::str::from_utf8(m.key.as_deref().expect("every message has a key"))
            .expect("utf-8 key");
        *ids.entry(key.parse().expect("decimal key")).or_default() += 1;
    }
    ids
}

/// Ids (message keys) in `topic` and how often each appears, read with librdkafka until at least
/// `at_least` messages arrived and then nothing for 2 s (90 s at the most).
pub fn ids_in_topic(
    broker: &str,
    topic: &str,
    partitions: i32,
    at_least: usize,
) -> HashMap<i64, usize> {
    key_counts(&consume_until_quiet(
        broker,
        topic,
        partitions,
        at_least,
        Duration::from_secs(2),
        Duration::from_secs(90),
    ))
}

/// Per partition, the offsets seen, for contiguity checks.
pub fn offsets_by_partition(msgs: &[Consumed]) -> HashMap<i32, Vec<i64>> {
    let mut map: HashMap<i32, Vec<i64>> = HashMap::new();
    for m in msgs {
        map.entry(m.partition).or_default().push(m.offset);
    }
    map
}

/// One record batch as the broker's own `kafka-dump-log --deep-iteration --print-data-log`
/// (DumpLogSegments) printed it from a partition's segment files.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub count: i64,
    pub base_sequence: i32,
    pub last_sequence: i32,
    pub producer_id: i64,
    pub magic: u8,
    pub compression: String,
    pub crc_valid: bool,
    pub create_time: i64,
    /// Byte position of the batch in its segment.
    pub position: i64,
    pub records: Vec<DumpedRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DumpedRecord {
    pub offset: i64,
    pub sequence: i32,
    pub create_time: i64,
    pub header_keys: String,
    pub key: Option<String>,
    pub payload: String,
}

/// Runs `scripts/stack dump-log` over every segment of `topic`-`partition` on the stack's
/// broker (its data directory is `REPLIQATE_TEST_KAFKA_DATA`) and parses what it printed.
pub fn dump_log(topic: &str, partition: i32) -> Vec<DumpedBatch> {
    let data = stack_var("REPLIQATE_TEST_KAFKA_DATA");
    let dir = std::path::Path::new(&data).join(format!("{topic}-{partition}"));
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    assert!(
        !segments.is_empty(),
        "no segment files in {}",
        dir.display()
    );
    let records = run_dump_log(&[], &segments);
    if records.lines().any(|l| l.starts_with("baseOffset: ")) {
        return parse_dump_log(&records);
    }
    // Kafka 2.1 prints no batch lines with --deep-iteration, only records, each naming
    // its batch's position: the batch lines come from a second run without it.
    let batches = run_dump_log(&["--batches"], &segments);
    parse_dump_log(&format!("{batches}\n{records}"))
}

fn run_dump_log(options: &[&str], segments: &[std::path::PathBuf]) -> String {
    let mut args: Vec<&OsStr> = vec![OsStr::new("dump-log")];
    args.extend(options.iter().map(OsStr::new));
    args.extend(segments.iter().map(|s| s.as_os_str()));
    stack_ok(&args)
}

/// `name: value` from a DumpLogSegments line; the value ends at the next space.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let pat = format!("{name}: ");
    let at = line
        .find(&format!(" {pat}"))
        .map(|i| i + 1)
        .or_else(|| line.starts_with(&pat).then_some(0))
        .unwrap_or_else(|| panic!("no `{name}` in dump-log line: {line}"));
    let rest = &line[at + pat.len()..];
    rest.split(' ').next().unwrap()
}

fn num<T: std::str::FromStr>(line: &str, name: &str) -> T {
    field(line, name)
        .parse()
        .unwrap_or_else(|_| panic!("`{name}` is not a number in dump-log line: {line}"))
}

pub fn parse_dump_log(text: &str) -> Vec<DumpedBatch> {
    let mut batches: Vec<DumpedBatch> = Vec::new();
    for line in text.lines() {
        if line.starts_with("baseOffset: ") {
            batches.push(DumpedBatch {
                base_offset: num(line, "baseOffset"),
                last_offset: num(line, "lastOffset"),
                count: num(line, "count"),
                base_sequence: num(line, "baseSequence"),
                last_sequence: num(line, "lastSequence"),
                producer_id: num(line, "producerId"),
                magic: num(line, "magic"),
                compression: field(line, "compresscodec").to_string(),
                crc_valid: field(line, "isvalid") == "true",
                create_time: num(line, "CreateTime"),
                position: num(line, "position"),
                records: Vec::new(),
            });
        } else if let Some(rest) = line
            .strip_prefix("| ")
            .or_else(|| line.starts_with("offset: ").then_some(line))
        {
            // `| ` records follow their batch's line; older releases' `offset: ` records name
            // their batch by position.
            let batch = if rest.len() == line.len() {
                let position: i64 = num(line, "position");
                batches.iter_mut().find(|b| b.position == position)
            } else {
                batches.last_mut()
            }
            .unwrap_or_else(|| panic!("a record of no batch printed in dump-log: {line}"));
            // The payload is the rest of the line; the key sits between `key: ` and it.
            let (head, payload) = rest
                .split_once(" payload: ")
                .unwrap_or_else(|| panic!("no payload in dump-log record line: {line}"));
            let (head, key) = match head.split_once(" key: ") {
                Some((h, k)) => (h, Some(k.to_string())),
                None => (head, None),
            };
            let header_keys = head
                .split_once("headerKeys: ")
                .map(|(_, k)| k.to_string())
                .unwrap_or_default();
            batch.records.push(DumpedRecord {
                offset: num(head, "offset"),
                sequence: num(head, "sequence"),
                create_time: num(head, "CreateTime"),
                header_keys,
                key,
                payload: payload.to_string(),
            });
        }
    }
    batches
}

/// Each partition's end offset (high watermark) of `topic`, asked with librdkafka: what a test
/// compares before and after a command that must not publish.
pub fn end_offsets(broker: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", unique("watermarks"))
        .create()
        .expect("a librdkafka consumer");
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("watermarks of {topic} partition {p}: {e}"))
                .1
        })
        .collect()
}
