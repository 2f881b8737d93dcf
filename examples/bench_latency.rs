//! `make bench-latency`: insert-to-consumer latency. One writer inserts rows into a PostgreSQL
//! table at a steady rate (default 1,000 rows/s), each stamped with the time just before its
//! commit; the daemon replicates them (`poll_interval_sec` 0.1, then 1); a librdkafka consumer
//! reads the topic and takes, per message, the time it arrived minus the row's stamp. Prints
//! p50, p99 and max per poll interval, and the target p50 <= poll/2 + 20 ms.
//!
//! All clocks are this machine's (writer, consumer and daemon run here), so the differences
//! are exact. The consumer fetches with `fetch.wait.max.ms=5` so that its own wait is not
//! counted as the daemon's.
//!
//! Settings (environment):
//!   BENCH_RATE       rows per second (default 1000)
//!   BENCH_SECONDS    how long the writer writes, per poll interval (default 30)
//!   BENCH_POLLS      poll intervals in seconds, comma-separated (default 0.1,1)
//!   BENCH_REPLIQATE  the binary (default target/x86_64-unknown-linux-musl/release/repliqate,
//!                    else target/release/repliqate)
//!   servers: REPLIQATE_TEST_KAFKA, REPLIQATE_TEST_REDIS, REPLIQATE_TEST_PG_URI

#[allow(dead_code)]
#[path = "bench_kafka.rs"]
mod bench_kafka;
#[path = "../tests/common/job.rs"]
mod job;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench_kafka::{broker, delete_topic, fresh_topic};
use job::JobConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TABLE: &str = "bench_latency";
const PARTITIONS: i32 = 3;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_latency: {e}");
            ExitCode::FAILURE
        }
    }
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
        format!("{name} is not set: start the local stack (`make stack-up`), then `eval \"$(scripts/stack env)\"`")
    })
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// An environment setting: unset or empty is `default`; anything else must parse.
fn env_setting(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn number(name: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("{name}: {text:?} is not a positive number"))
}

fn run() -> Result<(), String> {
    let rate = number("BENCH_RATE", &env_setting("BENCH_RATE", "1000"))?;
    let seconds = number("BENCH_SECONDS", &env_setting("BENCH_SECONDS", "30"))?;
    let polls: Vec<f64> = env_setting("BENCH_POLLS", "0.1,1")
        .split(',')
        .map(|p| number("BENCH_POLLS", p))
        .collect::<Result<_, _>>()?;
    let binary = std::env::var("BENCH_REPLIQATE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let musl = PathBuf::from("target/x86_64-unknown-linux-musl/release/repliqate");
            if musl.exists() {
                musl
            } else {
                PathBuf::from("target/release/repliqate")
            }
        });
    if !binary.exists() {
        return Err(format!(
            "{} not found: `make release` or `cargo build --release`",
            binary.display()
        ));
    }
    let broker = broker()?;
    let redis = var("REPLIQATE_TEST_REDIS")?;
    let pg = var("REPLIQATE_TEST_PG_URI")?;
    let dir = std::env::temp_dir().join(format!("repliqate-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    let mut results = Vec::new();
    for &poll in &polls {
        let latencies = one_run(&binary, &broker, &redis, &pg, &dir, poll, rate, seconds)?;
        results.push((poll, latencies));
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "insert-to-consumer latency, one writer at {rate:.0} rows/s for {seconds:.0} s, PostgreSQL, {}",
        binary.display()
    );
    println!(
        "{:>8} {:>8} {:>9} {:>9} {:>9} {:>15}",
        "poll s", "rows", "p50 ms", "p99 ms", "max ms", "target p50 ms"
    );
    for (poll, mut l) in results {
        l.sort_by(f64::total_cmp);
        let at = |q: f64| l[((l.len() as f64 - 1.0) * q).round() as usize] * 1000.0;
        let target = poll * 500.0 + 20.0;
        println!(
            "{:>8.1} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>11.1} {}",
            poll,
            l.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            target,
            if at(0.5) <= target { "met" } else { "MISSED" }
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn one_run(
    binary: &PathBuf,
    broker: &str,
    redis: &str,
    pg: &str,
    dir: &std::path::Path,
    poll: f64,
    rate: f64,
    seconds: f64,
) -> Result<Vec<f64>, String> {
    let mut client = postgres::Client::connect(pg, postgres::NoTls).map_err(|e| e.to_string())?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE}; \
             CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, stamped float8 NOT NULL, payload text NOT NULL)"
        ))
        .map_err(|e| format!("creating {TABLE}: {e}"))?;
    let topic = fresh_topic(broker, "bench-latency")?;
    let config = dir.join(format!("{topic}.yaml"));
    let yaml = JobConfig::new(&topic, pg, TABLE, &topic)
        .redis(redis)
        .brokers(broker)
        .poll_interval(Duration::from_secs_f64(poll))
        .yaml();
    std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
    let mut daemon = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", format!("{topic}-latency"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .set("fetch.min.bytes", "1")
        .create()
        .map_err(|e| format!("librdkafka consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;

    // The writer: one autocommit INSERT per row, at `rate` rows per second, paced by the clock.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (pg, done) = (pg.to_string(), done.clone());
        std::thread::spawn(move || -> Result<usize, String> {
            let mut c =
                postgres::Client::connect(&pg, postgres::NoTls).map_err(|e| e.to_string())?;
            let insert = c
                .prepare(&format!(
                    "INSERT INTO {TABLE} (stamped, payload) VALUES ($1, $2)"
                ))
                .map_err(|e| e.to_string())?;
            let payload = "x".repeat(200);
            let started = Instant::now();
            let mut n = 0usize;
            while started.elapsed().as_secs_f64() < seconds {
                let due = started + Duration::from_secs_f64(n as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                c.execute(&insert, &[&now(), &payload])
                    .map_err(|e| e.to_string())?;
                n += 1;
            }
            done.store(true, Ordering::SeqCst);
            Ok(n)
        })
    };

    let mut latencies = Vec::new();
    let mut quiet_since: Option<Instant> = None;
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let arrived = now();
                quiet_since = None;
                let value: serde_json::Value =
                    serde_json::from_slice(m.payload().unwrap_or_default())
                        .map_err(|e| format!("a message that is not JSON: {e}"))?;
                let stamped = value["data"]["stamped"]
                    .as_f64()
                    .ok_or("a message without data.stamped")?;
                latencies.push(arrived - stamped);
            }
            Some(Err(e)) => return Err(format!("librdkafka: {e}")),
            None if done.load(Ordering::SeqCst) => {
                // Everything written has arrived once the topic stays quiet for 3 polls.
                let since = quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs_f64(3.0 * poll + 2.0) {
                    break;
                }
            }
            None => {}
        }
    }
    let written = writer.join().map_err(|_| "the writer panicked")??;
    let _ = daemon.kill();
    let _ = daemon.wait();
    delete_topic(broker, &topic);
    if latencies.len() < written {
        return Err(format!(
            "poll {poll}: {} messages consumed of {written} rows written",
            latencies.len()
        ));
    }
    // The first seconds include start-up (connections, the first poll): leave out the first 10 %.
    let skip = latencies.len() / 10;
    eprintln!(
        "poll {poll}: {written} rows written, {} consumed",
        latencies.len()
    );
    Ok(latencies.split_off(skip))
}
