//! `make bench-kafka`: producer throughput of our synchronous producer against librdkafka, on the
//! same broker, with the same payloads, in the same run (issue 2, "Benchmark").
//!
//! The machine is noisy, so the producers take turns (ours, librdkafka, ours with larger calls,
//! and again) and the medians are compared. Each run writes to a fresh 3-partition topic, which is
//! deleted afterwards so that the in-memory broker does not keep gigabytes.
//!
//! Settings (argument or environment variable, arguments win):
//!   --records N   BENCH_RECORDS    records per run (default 1000000)
//!   --call N      BENCH_CALL       records per `send` call (`kafka::testing::send`: the
//!                                  daemon's path, batches, start, finish), as the daemon's batch
//!                                  (default 10000)
//!   --big-call N  BENCH_BIG_CALL   records per call in the comparison run (default 100000)
//!   --runs N      BENCH_RUNS       rounds (default 3)
//!   --size N      BENCH_SIZE       value size in bytes (default 400)
//!   broker: REPLIQATE_TEST_KAFKA (from `scripts/stack env`); the same broker's SASL_SSL
//!   listener (REPLIQATE_TEST_KAFKA_SASL_SSL, SCRAM-SHA-512, the stack's CA) for the run over
//!   TLS and SASL, compared with ours over plaintext in the same round (target >= 0.80)

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::ClientConfig;
use repliqate::kafka::testing::send;
use repliqate::kafka::{Producer, ProducerConfig, Record, Sasl, ScramHash, Security};
use repliqate::secret::Secret;
use repliqate::tls::{Pem, TlsFile, TlsSettings, Trust};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_kafka: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let records = setting(&args, "records", "BENCH_RECORDS", 1_000_000)?;
    let call = setting(&args, "call", "BENCH_CALL", 10_000)?.max(1);
    let big_call = setting(&args, "big-call", "BENCH_BIG_CALL", 100_000)?.max(1);
    let runs = setting(&args, "runs", "BENCH_RUNS", 3)?.max(1);
    let size = setting(&args, "size", "BENCH_SIZE", 400)?;
    let broker = broker()?;
    let secured = secured()?;

    eprintln!("generating {records} records of {size} bytes...");
    let payloads = Payloads::generate(records, size);
    let mb = payloads.bytes() as f64 / 1e6;
    eprintln!(
        "broker {broker}: {records} records, {mb:.1} MB of values per run; {runs} rounds of \
         ours (calls of {call}), librdkafka, ours (calls of {big_call})"
    );

    let mut ours = Vec::new();
    let mut ours_big = Vec::new();
    let mut ours_tls = Vec::new();
    let mut rd = Vec::new();
    let plaintext = Endpoint {
        broker: broker.clone(),
        security: Security::default(),
    };
    for round in 1..=runs {
        let o = run_ours(&broker, &plaintext, &payloads, call)?;
        report(
            &format!("round {round}: ours, calls of {call}"),
            records,
            mb,
            o,
        );
        settle_disk();
        let r = run_librdkafka(&broker, &payloads.keys, &payloads.values)?;
        report(&format!("round {round}: librdkafka"), records, mb, r);
        let b = run_ours(&broker, &plaintext, &payloads, big_call)?;
        report(
            &format!("round {round}: ours, calls of {big_call}"),
            records,
            mb,
            b,
        );
        let t = run_ours(&broker, &secured, &payloads, call)?;
        report(
            &format!("round {round}: ours over SASL_SSL, calls of {call}"),
            records,
            mb,
            t,
        );
        ours_tls.push(t);
        ours.push(o);
        rd.push(r);
        ours_big.push(b);
    }

    // Per-round ratios: a slow moment of the machine hits both members of a round alike.
    let ratios: Vec<f64> = ours.iter().zip(&rd).map(|(o, r)| r / o).collect();
    let ratios_big: Vec<f64> = ours_big.iter().zip(&rd).map(|(o, r)| r / o).collect();
    let ratios_tls: Vec<f64> = ours_tls.iter().zip(&ours).map(|(t, o)| o / t).collect();
    println!();
    println!(
        "producer throughput, {records} records of {size} bytes, 3 partitions, median of {runs}"
    );
    println!(
        "{:<34} {:>12} {:>9} {:>9}",
        "producer", "records/s", "MB/s", "seconds"
    );
    for (name, secs) in [
        (format!("repliqate, calls of {call}"), &ours),
        (format!("repliqate, calls of {big_call}"), &ours_big),
        (format!("repliqate SASL_SSL, calls of {call}"), &ours_tls),
        ("librdkafka (rdkafka BaseProducer)".to_string(), &rd),
    ] {
        let s = median(secs);
        println!(
            "{:<34} {:>12.0} {:>9.1} {:>9.2}",
            name,
            records as f64 / s,
            mb / s,
            s
        );
    }
    println!(
        "ratio ours/librdkafka: calls of {call}: {:.2} (median of per-round ratios {}); calls of \
         {big_call}: {:.2} ({}); target >= 0.80",
        median(&ratios),
        list(&ratios),
        median(&ratios_big),
        list(&ratios_big)
    );
    println!(
        "ratio ours over SASL_SSL (SCRAM-SHA-512, TLS) / ours over PLAINTEXT, calls of {call}: \
         {:.2} ({}); target >= 0.80",
        median(&ratios_tls),
        list(&ratios_tls)
    );
    Ok(())
}

/// Keys (decimal ids) and JSON-like values, generated once and shared by every run.
pub struct Payloads {
    pub keys: Vec<Bytes>,
    pub values: Vec<Bytes>,
}

impl Payloads {
    /// Values look like the daemon's messages: a JSON object of typical columns, padded with a
    /// text field to `size` bytes.
    pub fn generate(count: usize, size: usize) -> Payloads {
        const KINDS: [&str; 4] = ["purchase", "refund", "signup", "login"];
        let mut keys = Vec::with_capacity(count);
        let mut values = Vec::with_capacity(count);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for i in 1..=count {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let head = format!(
                "{{\"id\":{i},\"user_id\":{},\"kind\":\"{}\",\"amount\":{}.{:02},\"created_at\":\"2026-11-{:02}T{:02}:{:02}:{:02}Z\",\"payload\":\"",
                rng % 100_000,
                KINDS[(rng >> 20) as usize % 4],
                (rng >> 24) % 10_000,
                (rng >> 40) % 100,
                1 + (rng >> 8) % 28,
                (rng >> 12) % 24,
                (rng >> 16) % 60,
                (rng >> 28) % 60,
            );
            let mut v = head.into_bytes();
            let pad = size.saturating_sub(v.len() + 2);
            v.extend((0..pad).map(|n| b'a' + ((rng >> (n % 48)) as u8 ^ n as u8) % 26));
            v.extend_from_slice(b"\"}");
            keys.push(Bytes::from(i.to_string()));
            values.push(Bytes::from(v));
        }
        Payloads { keys, values }
    }

    pub fn bytes(&self) -> usize {
        self.values.iter().map(Bytes::len).sum()
    }
}

/// Where our producer connects, and how.
struct Endpoint {
    broker: String,
    security: Security,
}

/// The stack broker's SASL_SSL listener, with the stack's SCRAM user and CA.
fn secured() -> Result<Endpoint, String> {
    let var = |name: &str| {
        std::env::var(name).map_err(|_| {
            format!("{name} is not set: run `scripts/stack up` and `eval \"$(scripts/stack env)\"`")
        })
    };
    Ok(Endpoint {
        broker: var("REPLIQATE_TEST_KAFKA_SASL_SSL")?,
        security: Security {
            tls: Some(TlsSettings {
                ca: Some(Trust::Pem(Pem::File(TlsFile {
                    setting: "REPLIQATE_TLS_DIR".into(),
                    path: std::path::Path::new(&var("REPLIQATE_TLS_DIR")?).join("ca.pem"),
                }))),
                ..TlsSettings::default()
            }),
            sasl: Some(Sasl::Scram {
                hash: ScramHash::Sha512,
                username: Secret::Value(var("REPLIQATE_TEST_KAFKA_SCRAM_USER")?),
                password: Secret::Value(var("REPLIQATE_TEST_KAFKA_SCRAM_PASSWORD")?),
            }),
        },
    })
}

/// Our producer, configured as the daemon configures it by default (acks=all, idempotent, no
/// compression, 1 MiB requests), connecting to `to`; `broker` (plaintext) makes, counts and
/// deletes the topic. Returns seconds from the first call to the last acknowledgement.
fn run_ours(broker: &str, to: &Endpoint, payloads: &Payloads, call: usize) -> Result<f64, String> {
    settle_disk();
    let topic = fresh_topic(broker, "bench-ours")?;
    let records: Vec<Record> = payloads
        .keys
        .iter()
        .zip(&payloads.values)
        .map(|(k, v)| Record {
            key: Some(k.clone()),
            value: v.clone(),
            headers: Vec::new(),
            timestamp_ms: now_ms(),
        })
        .collect();
    let mut producer = Producer::new(ProducerConfig {
        bootstrap: vec![to.broker.clone()],
        security: to.security.clone(),
        ..ProducerConfig::default()
    });
    producer
        .check_topic(&topic)
        .map_err(|e| format!("looking up topic {topic}: {e}"))?;
    let started = Instant::now();
    // Highest offset acknowledged per partition, and records acknowledged as duplicates (no
    // offset): both explain a count that does not match.
    let mut high = [-1i64; 3];
    let mut duplicates = 0;
    for chunk in records.chunks(call) {
        let deliveries =
            send(&mut producer, &topic, chunk).map_err(|e| format!("sending to {topic}: {e}"))?;
        for d in deliveries {
            match (
                d.offset,
                usize::try_from(d.partition)
                    .ok()
                    .and_then(|p| high.get_mut(p)),
            ) {
                (Some(o), Some(h)) => *h = (*h).max(o),
                _ => duplicates += 1,
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    drop(producer);
    if duplicates > 0 {
        eprintln!("note: {duplicates} records acknowledged as duplicates (DUPLICATE_SEQUENCE)");
    }
    let acked: i64 = high.iter().map(|h| h + 1).sum();
    if acked != records.len() as i64 {
        eprintln!("note: acknowledged offsets per partition end at {high:?}: {acked} records");
    }
    let written = count_in_topic(broker, &topic);
    delete_topic(broker, &topic);
    check_count(&topic, written?, records.len())?;
    Ok(secs)
}

/// librdkafka with the settings a tuned Java-compatible producer would use; the payloads are
/// copied into librdkafka's queue (as any caller's would be). Returns seconds from the first
/// produce to the end of `flush`, after checking every record was acknowledged. Callers settle
/// the disk first (`settle_disk`), outside whatever they measure around this call.
pub fn run_librdkafka(broker: &str, keys: &[Bytes], values: &[Bytes]) -> Result<f64, String> {
    let topic = fresh_topic(broker, "bench-rd")?;
    let context = Counting::default();
    let producer: BaseProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1048576")
        .set("compression.type", "none")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .create_with_context(context)
        .map_err(|e| format!("creating the librdkafka producer: {e}"))?;
    // Connect and learn the topic's layout before the clock starts, as for ours.
    producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .map_err(|e| format!("librdkafka metadata for {topic}: {e}"))?;

    let started = Instant::now();
    let timestamp = now_ms();
    for (i, (key, value)) in keys.iter().zip(values.iter().cycle()).enumerate() {
        let mut record = BaseRecord::to(&topic)
            .key(&key[..])
            .payload(&value[..])
            .timestamp(timestamp);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("librdkafka send to {topic}: {e}")),
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| format!("librdkafka flush to {topic}: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    let (ok, failed) = (
        producer.context().ok.load(Ordering::Relaxed),
        producer.context().failed.load(Ordering::Relaxed),
    );
    drop(producer);
    let written = count_in_topic(broker, &topic);
    delete_topic(broker, &topic);
    if ok != keys.len() || failed != 0 {
        return Err(format!(
            "librdkafka delivered {ok} of {} records ({failed} failed)",
            keys.len()
        ));
    }
    check_count(&topic, written?, keys.len())?;
    Ok(secs)
}

/// Counts delivery reports, so that a run that lost records is not reported as fast.
#[derive(Default, Clone)]
pub struct Counting {
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

pub fn broker() -> Result<String, String> {
    match std::env::var("REPLIQATE_TEST_KAFKA") {
        Ok(b) if !b.is_empty() => Ok(b),
        _ => Err(
            "REPLIQATE_TEST_KAFKA is not set: start the local stack with `make stack-up` \
                  (or `scripts/stack up`), then `eval \"$(scripts/stack env)\"`"
                .into(),
        ),
    }
}

/// Creates a uniquely named 3-partition topic through librdkafka's admin API.
pub fn fresh_topic(broker: &str, prefix: &str) -> Result<String, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let topic = format!("{prefix}-{}-{}", std::process::id(), nanos.as_micros());
    let admin = admin(broker)?;
    let new = NewTopic::new(&topic, 3, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = block_on(admin.create_topics([&new], &opts))
        .map_err(|e| format!("creating topic {topic}: {e}"))?;
    for r in results {
        r.map_err(|(t, e)| format!("creating topic {t}: {e}"))?;
    }
    Ok(topic)
}

/// How many records the broker holds in `topic`, asked through librdkafka (the partitions'
/// high watermarks), so that a fast run is also a complete one.
pub fn count_in_topic(broker: &str, topic: &str) -> Result<i64, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .map_err(|e| format!("librdkafka consumer: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("librdkafka metadata for {topic}: {e}"))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len()) as i32;
    let mut total = 0;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| format!("librdkafka offsets of {topic}/{p}: {e}"))?;
        if low != 0 {
            return Err(format!("{topic}/{p} starts at offset {low}, expected 0"));
        }
        total += high;
    }
    Ok(total)
}

fn check_count(topic: &str, written: i64, expected: usize) -> Result<(), String> {
    if written != expected as i64 {
        return Err(format!(
            "topic {topic} holds {written} records, expected {expected}"
        ));
    }
    Ok(())
}

/// Best effort: a full run writes gigabytes to the broker's disk (see `settle_disk`).
pub fn delete_topic(broker: &str, topic: &str) {
    let Ok(admin) = admin(broker) else { return };
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    match block_on(admin.delete_topics(&[topic], &opts)) {
        Ok(results) => {
            for r in results {
                if let Err((t, e)) = r {
                    eprintln!("note: deleting topic {t}: {e}");
                }
            }
        }
        Err(e) => eprintln!("note: deleting topic {topic}: {e}"),
    }
}

/// Waits until the broker has removed the files of every deleted topic from its data directory
/// (the stack's REPLIQATE_TEST_KAFKA_DATA; Kafka renames them `<topic>-<partition>.<id>-delete`
/// first), then flushes the page cache's dirty pages (`sync`): called before a measured run, so
/// that every run starts on a quiet disk and the wait is in no run's figures. Without it a run's
/// ~500 MB of log (deleted a minute later by default) were written back, and the page cache
/// reclaimed, while the next runs were measured: the broker spent 2.4 CPU s per 1M messages then,
/// against 0.65 s on a quiet disk, and a round's ratio moved with whichever client ran in it.
pub fn settle_disk() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(data) = std::env::var_os("REPLIQATE_TEST_KAFKA_DATA") else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = match std::fs::read_dir(&data) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with("-delete"))
                .count(),
            Err(e) => {
                eprintln!(
                    "note: cannot read the broker's data directory {}: {e}; not waiting for deleted topics",
                    std::path::Path::new(&data).display()
                );
                0
            }
        };
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!(
                    "note: the broker still holds {left} directories of deleted topics after 90 s: \
                     a stack started before log.segment.delete.delay.ms=1000; restart it \
                     (scripts/stack down; scripts/stack up)"
                );
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = std::process::Command::new("sync").status() {
        eprintln!("note: sync: {e}");
    }
}

fn admin(broker: &str) -> Result<AdminClient<DefaultClientContext>, String> {
    ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .map_err(|e| format!("librdkafka admin client: {e}"))
}

/// Runs a future to completion on this thread (rdkafka's admin futures need no runtime).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
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

/// `--name N` on the command line, else the environment variable, else the default.
pub fn setting(args: &[String], name: &str, var: &str, default: usize) -> Result<usize, String> {
    let flag = format!("--{name}");
    let text = match args.iter().position(|a| *a == flag) {
        Some(i) => Some(
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{flag} needs a number"))?,
        ),
        None => std::env::var(var).ok().filter(|v| !v.is_empty()),
    };
    match text {
        None => Ok(default),
        Some(t) => t
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{flag} / {var}: expected a whole number, got {t:?}")),
    }
}

pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn list(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn report(what: &str, records: usize, mb: f64, secs: f64) {
    eprintln!(
        "{what}: {secs:.2} s, {:.0} records/s, {:.1} MB/s",
        records as f64 / secs,
        mb / secs
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
