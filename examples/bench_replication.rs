//! `make bench`: the daemon end to end, source table → Kafka, for SQLite, PostgreSQL and MariaDB
//! (issue 3, "Benchmark"). For each source it fills a table of typical columns, runs the release
//! binary `repliqate --once` from empty to caught up under `/usr/bin/time` (wall, CPU, peak RSS),
//! checks the topic holds every row, and then has librdkafka produce the same number of messages
//! of the same size (a sample of the messages repliqate wrote, cycled) to the same broker: the
//! reference rate. Three such rounds per source, interleaved; the ratio reported is the median
//! of the rounds' ratios (this machine's noise moves both rates by tens of percent).
//!
//! Settings (argument or environment variable, arguments win):
//!   --rows N     BENCH_ROWS      rows per source (default 1000000)
//!   --limit N    BENCH_LIMIT     repliqate's batch size, `limit` (default 10000)
//!   BENCH_SOURCES    comma-separated subset of sqlite,postgres,mysql (default all three)
//!   BENCH_REPLIQATE  the binary to run (default target/release/repliqate)
//!   servers: REPLIQATE_TEST_KAFKA, REPLIQATE_TEST_REDIS, REPLIQATE_TEST_PG_URI,
//!   REPLIQATE_TEST_MYSQL_URI (from `scripts/stack env`)

#[allow(dead_code)]
#[path = "bench_kafka.rs"]
mod bench_kafka;
/// The tests' typed job config: the bench's config file is written the way the tests write
/// theirs.
#[path = "../tests/common/job.rs"]
mod job;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bench_kafka::{
    broker, count_in_topic, delete_topic, fresh_topic, median, run_librdkafka, setting,
};
use bytes::Bytes;
use job::JobConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TABLE: &str = "bench_events";
const KINDS: [&str; 4] = ["purchase", "refund", "signup", "login"];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_replication: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One source's results.
struct Outcome {
    source: &'static str,
    rows: usize,
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    read_s: f64,
    publish_s: f64,
    avg_message: f64,
    reference_rate: f64,
    /// repliqate's rate over librdkafka's, per round.
    ratios: Vec<f64>,
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows = setting(&args, "rows", "BENCH_ROWS", 1_000_000)?.max(1);
    let limit = setting(&args, "limit", "BENCH_LIMIT", 10_000)?.max(1);
    let sources = std::env::var("BENCH_SOURCES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sqlite,postgres,mysql".into());
    let binary = PathBuf::from(
        std::env::var("BENCH_REPLIQATE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "target/release/repliqate".into()),
    );
    if !binary.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release`",
            binary.display()
        ));
    }
    if !Path::new("/usr/bin/time").exists() {
        return Err("/usr/bin/time not found: install it with `apt-get install time`".into());
    }
    let broker = broker()?;
    let redis = env("REPLIQATE_TEST_REDIS")?;
    let dir = std::env::temp_dir().join(format!("repliqate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;

    let settings = Settings {
        rows,
        limit,
        binary: &binary,
        broker: &broker,
        redis: &redis,
        dir: &dir,
    };
    let mut outcomes = Vec::new();
    for source in sources.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, uri): (&'static str, String) = match source {
            "sqlite" => ("SQLite", fill_sqlite(&dir, rows)?),
            "postgres" => (
                "PostgreSQL",
                fill_postgres(&env("REPLIQATE_TEST_PG_URI")?, rows)?,
            ),
            "mysql" => (
                "MariaDB",
                fill_mysql(&env("REPLIQATE_TEST_MYSQL_URI")?, rows)?,
            ),
            other => {
                return Err(format!(
                    "BENCH_SOURCES: unknown source {other:?}; expected sqlite, postgres or mysql"
                ))
            }
        };
        outcomes.push(bench_source(&settings, name, &uri)?);
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!("repliqate --once, {rows} rows per source, limit {limit}, acks=all, idempotent, 3 partitions");
    println!(
        "{:<11} {:>7} {:>8} {:>6} {:>7} {:>7} {:>8} {:>9} {:>11} {:>6}  rounds",
        "source",
        "wall s",
        "rows/s",
        "CPU s",
        "RSS MB",
        "read s",
        "publ. s",
        "msg bytes",
        "rdkafka r/s",
        "ratio"
    );
    for o in &outcomes {
        let rate = o.rows as f64 / o.wall;
        println!(
            "{:<11} {:>7.2} {:>8.0} {:>6.2} {:>7.1} {:>7.2} {:>8.2} {:>9.0} {:>11.0} {:>6.2}  {}",
            o.source,
            o.wall,
            rate,
            o.cpu,
            o.rss_mb,
            o.read_s,
            o.publish_s,
            o.avg_message,
            o.reference_rate,
            median(&o.ratios),
            o.ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("targets: ratio >= 0.80 for SQLite; peak RSS <= 32 MB at limit 10000");
    println!("({ROUNDS} rounds per source, each repliqate then librdkafka: wall, CPU, read, publish and rdkafka r/s are medians, RSS the highest, ratio the median of the rounds' ratios)");
    println!("(wall, CPU and RSS of the whole repliqate process, start-up included; read (fetch + encode) and publish summed from its batch lines; publish includes the Redis commit)");
    Ok(())
}

/// What every source's runs share.
struct Settings<'a> {
    rows: usize,
    limit: usize,
    binary: &'a Path,
    broker: &'a str,
    redis: &'a str,
    /// Config files (and the SQLite database).
    dir: &'a Path,
}

fn bench_source(bench: &Settings<'_>, name: &'static str, uri: &str) -> Result<Outcome, String> {
    let rows = bench.rows;
    // Rounds interleave repliqate and librdkafka, so that both see the same moments of this
    // noisy machine; the ratio is the median of the rounds' ratios.
    let keys: Vec<Bytes> = (1..=rows).map(|i| Bytes::from(i.to_string())).collect();
    let mut sample = Vec::new();
    let mut runs = Vec::new();
    let mut reference = Vec::new();
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        // librdkafka sends real messages repliqate wrote (the first round's), cycled, keyed by id.
        let mut run = run_repliqate(bench, name, uri, round == 1)?;
        if let Some(messages) = run.sample.take() {
            sample = messages;
        }
        let secs = run_librdkafka(bench.broker, &keys, &sample)?;
        let ratio = secs / run.wall;
        eprintln!(
            "{name}: round {round}: repliqate {:.0} rows/s, librdkafka (same count and size) {:.0} \
             msgs/s, ratio {ratio:.2}",
            rows as f64 / run.wall,
            rows as f64 / secs,
        );
        reference.push(secs);
        ratios.push(ratio);
        runs.push(run);
    }
    let avg_message = sample.iter().map(Bytes::len).sum::<usize>() as f64 / sample.len() as f64;
    let of = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Ok(Outcome {
        source: name,
        rows,
        wall: of(|r| r.wall),
        cpu: of(|r| r.cpu),
        rss_mb: runs.iter().map(|r| r.rss_mb).fold(0.0, f64::max),
        read_s: of(|r| r.read_s),
        publish_s: of(|r| r.publish_s),
        avg_message,
        reference_rate: rows as f64 / median(&reference),
        ratios,
    })
}

/// Interleaved rounds of repliqate and librdkafka per source.
const ROUNDS: usize = 3;

/// One `repliqate --once` run, from empty to caught up.
struct Run {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    read_s: f64,
    publish_s: f64,
    /// Messages it wrote, when asked for.
    sample: Option<Vec<Bytes>>,
}

/// Runs repliqate on a fresh topic and job, checks the topic holds every row, and returns the
/// run's figures and, if `sample`, some of the messages it wrote.
fn run_repliqate(bench: &Settings<'_>, name: &str, uri: &str, sample: bool) -> Result<Run, String> {
    let Settings {
        rows,
        limit,
        binary,
        broker,
        redis,
        dir,
    } = *bench;
    let topic = fresh_topic(broker, &format!("bench-{}", name.to_lowercase()))?;
    // A job name never used before: the Redis position key is fresh, replication starts at 0.
    let job = topic.clone();
    let config = dir.join(format!("{job}.yaml"));
    let yaml = JobConfig::new(&job, uri, TABLE, &topic)
        .redis(redis)
        .brokers(broker)
        .limit(limit as u64)
        .yaml();
    std::fs::write(&config, yaml).map_err(|e| format!("writing {}: {e}", config.display()))?;

    eprintln!("{name}: repliqate --once → {topic}");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "BENCH-TIME %e %U %S %M"])
        .arg(binary)
        .arg("--config")
        .arg(&config)
        .args(["--once", "-vv"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        return Err(format!(
            "{name}: repliqate failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let (wall, cpu, rss_mb) =
        parse_time(&log).ok_or_else(|| format!("{name}: no /usr/bin/time line in the output"))?;
    let (batches, read_s, publish_s) = parse_batches(&log);
    eprintln!(
        "{name}: {wall:.2} s, {:.0} rows/s, CPU {cpu:.2} s, peak RSS {rss_mb:.1} MB, {batches} batches \
         (read {read_s:.2} s, publish+commit {publish_s:.2} s, outside batches {:.2} s)",
        rows as f64 / wall,
        wall - read_s - publish_s
    );

    let written = count_in_topic(broker, &topic)?;
    let sample = if sample {
        Some(sample_messages(broker, &topic, 2000)?)
    } else {
        None
    };
    delete_topic(broker, &topic);
    if written != rows as i64 {
        return Err(format!(
            "{name}: topic {topic} holds {written} messages, expected {rows}"
        ));
    }
    if sample.as_ref().is_some_and(Vec::is_empty) {
        return Err(format!(
            "{name}: could not read back any message from {topic}"
        ));
    }
    Ok(Run {
        wall,
        cpu,
        rss_mb,
        read_s,
        publish_s,
        sample,
    })
}

/// `BENCH-TIME wall user sys maxrss_kb`, the last line /usr/bin/time writes.
fn parse_time(log: &str) -> Option<(f64, f64, f64)> {
    let line = log.lines().rev().find(|l| l.starts_with("BENCH-TIME "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    match f[..] {
        [wall, user, sys, rss_kb] => Some((wall, user + sys, rss_kb / 1024.0)),
        _ => None,
    }
}

/// Sums repliqate's info lines `replicated N rows, ids a..=b (read R ms, publish P ms)`:
/// (batches, R, P) in seconds. R is fetching and encoding (rows are encoded as they stream in);
/// P includes the position commit. The next batch is read while the current one is published,
/// so R + P exceeds the wall time by the overlap.
fn parse_batches(log: &str) -> (usize, f64, f64) {
    let mut batches = 0;
    let (mut read, mut publish) = (0.0, 0.0);
    for line in log.lines().filter(|l| l.contains("replicated ")) {
        let ms = |label: &str| -> Option<f64> {
            let rest = &line[line.find(label)? + label.len()..];
            rest.split_whitespace().next()?.parse().ok()
        };
        if let (Some(r), Some(p)) = (ms("(read "), ms("publish ")) {
            batches += 1;
            read += r / 1000.0;
            publish += p / 1000.0;
        }
    }
    (batches, read, publish)
}

/// Up to `count` message values from the start of the topic's partitions, as librdkafka reads them.
fn sample_messages(broker: &str, topic: &str, count: usize) -> Result<Vec<Bytes>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", format!("{topic}-sample"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("librdkafka consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("librdkafka assign {topic}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::with_capacity(count);
    while out.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => return Err(format!("librdkafka reading {topic}: {e}")),
            Some(Ok(m)) => out.push(Bytes::copy_from_slice(m.payload().unwrap_or_default())),
        }
    }
    Ok(out)
}

fn env(var: &str) -> Result<String, String> {
    std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
        format!("{var} is not set: start the local stack with `make stack-up` (or `scripts/stack up`), then `eval \"$(scripts/stack env)\"`")
    })
}

/// The `payload` column: ~200 bytes of text that varies per row.
fn payload(i: usize) -> String {
    let mut s = String::with_capacity(200);
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while s.len() < 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(200);
    s
}

/// A fresh SQLite file, filled in one transaction through one prepared statement.
fn fill_sqlite(dir: &Path, rows: usize) -> Result<String, String> {
    let path = dir.join("bench.db");
    let _ = std::fs::remove_file(&path);
    let started = Instant::now();
    let e = |e: rusqlite::Error| format!("filling {}: {e}", path.display());
    let mut db = rusqlite::Connection::open(&path).map_err(e)?;
    db.execute_batch(&format!(
        "CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, kind VARCHAR(16) NOT NULL, \
         amount REAL NOT NULL, created_at TIMESTAMP NOT NULL, payload TEXT NOT NULL)"
    ))
    .map_err(e)?;
    let tx = db.transaction().map_err(e)?;
    {
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO {TABLE} VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))
            .map_err(e)?;
        for i in 1..=rows {
            let created = format!(
                "2026-{:02}-{:02} {:02}:{:02}:{:02}",
                1 + i % 12,
                1 + i % 28,
                i % 24,
                i % 60,
                (i / 60) % 60
            );
            insert
                .execute(rusqlite::params![
                    i as i64,
                    (i % 100_000) as i64,
                    KINDS[i % 4],
                    (i % 100_000) as f64 / 100.0,
                    created,
                    payload(i)
                ])
                .map_err(e)?;
        }
    }
    tx.commit().map_err(e)?;
    eprintln!(
        "SQLite: {rows} rows in {} ({:.1} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(format!("sqlite:///{}", path.display()))
}

/// PostgreSQL: one INSERT … SELECT over generate_series.
fn fill_postgres(uri: &str, rows: usize) -> Result<String, String> {
    let started = Instant::now();
    let e = |e: postgres::Error| format!("filling PostgreSQL table {TABLE}: {e}");
    let mut client = postgres::Client::connect(uri, postgres::NoTls).map_err(e)?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE};
             CREATE TABLE {TABLE} (id bigint PRIMARY KEY, user_id bigint NOT NULL, kind varchar(16) NOT NULL,
               amount numeric(12,2) NOT NULL, created_at timestamp NOT NULL, payload text NOT NULL);
             INSERT INTO {TABLE}
               SELECT g, g % 100000, (ARRAY['purchase','refund','signup','login'])[1 + g % 4],
                      (g % 100000) / 100.0, timestamp '2026-01-01' + g * interval '1 second',
                      repeat(md5(g::text), 6) || left(md5((g + 1)::text), 8)
               FROM generate_series(1, {rows}) AS g;
             ANALYZE {TABLE};"
        ))
        .map_err(e)?;
    eprintln!(
        "PostgreSQL: {rows} rows ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(uri.to_string())
}

/// MariaDB: one INSERT … SELECT over the SEQUENCE engine's seq_1_to_N.
fn fill_mysql(uri: &str, rows: usize) -> Result<String, String> {
    use mysql::prelude::Queryable;
    let started = Instant::now();
    let e = |e: mysql::Error| format!("filling MariaDB table {TABLE}: {e}");
    let opts = mysql::Opts::from_url(uri).map_err(|e| format!("REPLIQATE_TEST_MYSQL_URI: {e}"))?;
    let mut conn = mysql::Conn::new(opts).map_err(e)?;
    conn.query_drop(format!("DROP TABLE IF EXISTS {TABLE}"))
        .map_err(e)?;
    conn.query_drop(format!(
        "CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, \
         amount DECIMAL(12,2) NOT NULL, created_at DATETIME NOT NULL, payload TEXT NOT NULL) ENGINE=InnoDB"
    ))
    .map_err(e)?;
    conn.query_drop(format!(
        "INSERT INTO {TABLE} SELECT seq, seq % 100000, ELT(1 + seq % 4, 'purchase','refund','signup','login'), \
         (seq % 100000) / 100, TIMESTAMP('2026-01-01') + INTERVAL seq SECOND, \
         CONCAT(REPEAT(MD5(seq), 6), LEFT(MD5(seq + 1), 8)) FROM seq_1_to_{rows}"
    ))
    .map_err(e)?;
    eprintln!(
        "MariaDB: {rows} rows ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(uri.to_string())
}
