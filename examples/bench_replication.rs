//! `make bench`: the daemon end to end, source table → Kafka, for SQLite, PostgreSQL and MariaDB.
//! For each source it fills a table of typical columns, warms up the broker (a run of repliqate
//! and one of librdkafka, not counted), and in each round runs every build of
//! `repliqate --once --initial-position 0` (the glibc release build and the static musl one
//! users deploy; each a job resuming at a known position) from empty to caught up under
//! `/usr/bin/time` (wall, CPU, peak RSS), checking the topic holds every row;
//! then has librdkafka produce the same number of messages of the same size (a sample of the
//! messages repliqate wrote, cycled) to the same broker: the reference rate; and, for PostgreSQL
//! and MariaDB, reads the table with the database's own C client in the same primary-key
//! batches (examples/scan/*.c): the reference for the database's share. Five such rounds per
//! source, interleaved, the builds and librdkafka in reverse order every other round; every
//! ratio reported is the median of the rounds' ratios (this machine's noise moves all rates by
//! tens of percent). Before each run the bench waits for the broker to remove the files of the
//! topics deleted after earlier runs, and for the disk to settle (`bench_kafka::settle_disk`).
//!
//! The ratios: `vs rdkafka` = librdkafka's time / repliqate's (above 1: faster than librdkafka
//! producing the same messages); `vs scan+rd` = (C client scan + librdkafka) / repliqate (above
//! 1: faster than reading with the C client and then producing, one after the other);
//! `musl/glibc` = the musl build's rate over the glibc build's in the same round.
//!
//! Settings (argument or environment variable, arguments win):
//!   --rows N     BENCH_ROWS      rows per source (default 1000000)
//!   --limit N    BENCH_LIMIT     repliqate's batch size, `limit` (default 10000)
//!   --payload N  BENCH_PAYLOAD   bytes of the `payload` text column (default 200: rows of ~300 B,
//!                                messages of ~500 B); `make bench-scale` varies it
//!   --rounds N   BENCH_ROUNDS    rounds per source after the warm-up (default 5)
//!   BENCH_SOURCES    comma-separated subset of sqlite,postgres,mysql (default all three)
//!   BENCH_BUILDS     comma-separated subset of glibc,musl (default both): target/release/repliqate
//!                    and target/x86_64-unknown-linux-musl/release/repliqate (`make release`);
//!                    NAME=PATH adds any other binary (another commit's build, to compare)
//!   BENCH_REPLIQATE  instead of the builds: one binary to run
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
    broker, count_in_topic, delete_topic, fresh_topic, median, run_librdkafka, setting, settle_disk,
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

/// One build's results on one source.
struct Outcome {
    source: &'static str,
    build: String,
    rows: usize,
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    /// The broker's CPU seconds during the run (median), when its pid is known.
    broker_cpu: Option<f64>,
    read_s: f64,
    publish_s: f64,
    avg_message: f64,
    reference_rate: f64,
    /// librdkafka's own CPU seconds, and the broker's, while it produced (medians).
    reference_cpu: f64,
    reference_broker_cpu: Option<f64>,
    /// librdkafka's time over repliqate's, per round.
    ratios: Vec<f64>,
    /// (C client scan + librdkafka) over repliqate, per round (PostgreSQL and MariaDB).
    scan_ratios: Vec<f64>,
    /// The C client's scan, median seconds.
    scan_s: Option<f64>,
    /// This build's rate over the first build's, per round (the first build: empty).
    vs_first: Vec<f64>,
}

/// A repliqate binary the bench runs.
struct Build {
    name: String,
    path: PathBuf,
}

/// The builds of BENCH_BUILDS (or the one binary of BENCH_REPLIQATE), each checked to exist.
fn builds() -> Result<Vec<Build>, String> {
    if let Some(path) = std::env::var("BENCH_REPLIQATE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return Ok(vec![Build {
            name: "given".into(),
            path: PathBuf::from(path),
        }]);
    }
    let names = std::env::var("BENCH_BUILDS")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "glibc,musl".into());
    let mut out = Vec::new();
    for name in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, path, how) = match name.split_once('=') {
            Some((name, path)) => (name, path, "a build of your own"),
            None if name == "glibc" => {
                ("glibc", "target/release/repliqate", "cargo build --release")
            }
            None if name == "musl" => (
                "musl",
                "target/x86_64-unknown-linux-musl/release/repliqate",
                "make release",
            ),
            None => {
                return Err(format!(
                    "BENCH_BUILDS: unknown build {name:?}; expected glibc, musl or NAME=PATH"
                ))
            }
        };
        if !Path::new(path).exists() {
            return Err(format!("{path} not found: build it with `{how}`"));
        }
        out.push(Build {
            name: name.to_owned(),
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows = setting(&args, "rows", "BENCH_ROWS", 1_000_000)?.max(1);
    let limit = setting(&args, "limit", "BENCH_LIMIT", 10_000)?.max(1);
    let payload_len = setting(&args, "payload", "BENCH_PAYLOAD", 200)?;
    let rounds = setting(&args, "rounds", "BENCH_ROUNDS", 5)?.max(1);
    let sources = std::env::var("BENCH_SOURCES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sqlite,postgres,mysql".into());
    let builds = builds()?;
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
        rounds,
        builds: &builds,
        broker: &broker,
        redis: &redis,
        dir: &dir,
    };
    let mut outcomes = Vec::new();
    for source in sources.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, uri): (&'static str, String) = match source {
            "sqlite" => ("SQLite", fill_sqlite(&dir, rows, payload_len)?),
            "postgres" => (
                "PostgreSQL",
                fill_postgres(&env("REPLIQATE_TEST_PG_URI")?, rows, payload_len)?,
            ),
            "mysql" => (
                "MariaDB",
                fill_mysql(&env("REPLIQATE_TEST_MYSQL_URI")?, rows, payload_len)?,
            ),
            other => {
                return Err(format!(
                    "BENCH_SOURCES: unknown source {other:?}; expected sqlite, postgres or mysql"
                ))
            }
        };
        let scan = match source {
            "postgres" => Some(Scan::postgres(&dir, &uri)?),
            "mysql" => Some(Scan::mariadb(&dir, &uri)?),
            _ => None,
        };
        outcomes.extend(bench_source(&settings, name, &uri, scan.as_ref())?);
    }
    let _ = std::fs::remove_dir_all(&dir);

    print_table(&outcomes, rows, limit, rounds);
    Ok(())
}

/// The one table `make bench` prints: source × build.
fn print_table(outcomes: &[Outcome], rows: usize, limit: usize, rounds: usize) {
    let per_round = |xs: &[f64]| {
        xs.iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ratio = |xs: &[f64]| {
        if xs.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2}", median(xs))
        }
    };
    println!();
    println!(
        "repliqate --once, {rows} rows per source, limit {limit}, acks=all, idempotent, 3 partitions"
    );
    println!(
        "{:<11} {:<6} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10} {:>7} {:>9} {:>7} {:>7}  vs rdkafka rounds",
        "source",
        "build",
        "rows/s",
        "vs rdkafka",
        "vs scan+rd",
        "musl/glibc",
        "CPU s/1M rows",
        "broker CPU",
        "RSS MB",
        "msg bytes",
        "read s",
        "publ. s"
    );
    for o in outcomes {
        println!(
            "{:<11} {:<6} {:>8.0} {:>10} {:>10} {:>10} {:>12.2} {:>10} {:>7.1} {:>9.0} {:>7.2} {:>7.2}  {}",
            o.source,
            o.build,
            o.rows as f64 / o.wall,
            ratio(&o.ratios),
            ratio(&o.scan_ratios),
            ratio(&o.vs_first),
            o.cpu * 1e6 / o.rows as f64,
            per_million(o.broker_cpu, o.rows),
            o.rss_mb,
            o.avg_message,
            o.read_s,
            o.publish_s,
            per_round(&o.ratios)
        );
    }
    println!();
    println!(
        "{:<11} {:>12} {:>14} {:>10} {:>12}",
        "reference", "rdkafka r/s", "CPU s/1M msgs", "broker CPU", "C scan s"
    );
    let mut seen = Vec::new();
    for o in outcomes.iter().filter(|o| {
        let first = !seen.contains(&o.source);
        seen.push(o.source);
        first
    }) {
        println!(
            "{:<11} {:>12.0} {:>14.2} {:>10} {:>12}",
            o.source,
            o.reference_rate,
            o.reference_cpu * 1e6 / o.rows as f64,
            per_million(o.reference_broker_cpu, o.rows),
            o.scan_s.map_or("-".into(), |s| format!("{s:.2}"))
        );
    }
    println!(
        "targets: musl/glibc >= 0.95 and vs rdkafka >= 1.0 on SQLite; vs scan+rd >= 1.0 for \
         PostgreSQL and MariaDB; peak RSS <= 32 MB at limit 10000"
    );
    println!("(a warm-up run of the first build and of librdkafka per source, not counted; then {rounds} rounds, each: every build and librdkafka (in reverse order every other round), the C client scan; rates, CPU, read and publish are medians, RSS the highest, ratios the medians of the rounds' ratios)");
    println!("(each run is a job resuming at a known position, --initial-position 0: a new job on PostgreSQL or MariaDB first proves that no transaction is still inserting below its first row, once in its life)");
    println!("(broker CPU: the local broker's CPU seconds per 1M rows during the run, from /proc; both share this machine's cores)");
    println!("(wall, CPU and RSS of the whole repliqate process, start-up included; read (fetch + encode) and publish summed from its batch lines; publish includes the Redis commit)");
}

/// CPU seconds per 1M rows, or `-` when not measured.
fn per_million(cpu: Option<f64>, rows: usize) -> String {
    cpu.map_or("-".into(), |c| format!("{:.2}", c * 1e6 / rows as f64))
}

/// What every source's runs share.
struct Settings<'a> {
    rows: usize,
    limit: usize,
    /// Rounds per source, after the warm-up.
    rounds: usize,
    builds: &'a [Build],
    broker: &'a str,
    redis: &'a str,
    /// Config files (and the SQLite database).
    dir: &'a Path,
}

fn bench_source(
    bench: &Settings<'_>,
    name: &'static str,
    uri: &str,
    scan: Option<&Scan>,
) -> Result<Vec<Outcome>, String> {
    let rows = bench.rows;
    // Rounds interleave the builds, librdkafka and the scan, so that all see the same moments
    // of this noisy machine; each ratio is the median of the rounds' ratios.
    let keys: Vec<Bytes> = (1..=rows).map(|i| Bytes::from(i.to_string())).collect();
    let builds = bench.builds;
    let mut runs: Vec<Vec<Run>> = builds.iter().map(|_| Vec::new()).collect();
    let mut reference = Vec::new();
    let (mut reference_cpu, mut reference_broker) = (Vec::new(), Vec::new());
    let mut scans = Vec::new();
    // Warm-up, not counted: the broker's JVM compiles its hot paths during the first runs it
    // serves (a fresh broker spent three times the CPU per message on the first source's rounds
    // that it spent later), and the database's and the page cache's first reads are slower. One
    // run of the first build gives the sample librdkafka sends; one of librdkafka follows.
    eprintln!("{name}: warm-up (not counted)");
    let mut warm_up = run_repliqate(bench, name, uri, &builds[0], true)?;
    let sample = warm_up.sample.take().unwrap_or_default();
    run_librdkafka(bench.broker, &keys, &sample)?;
    for round in 1..=bench.rounds {
        // The builds and librdkafka go in one order in odd rounds and in the reverse order in
        // even ones, so that on average each runs at the same moment of a broker that speeds up
        // (its JVM compiling) or slows down (its disk filling): with librdkafka always last, a
        // warming broker favoured it in every round.
        let mut order: Vec<Option<usize>> = (0..builds.len()).map(Some).collect();
        order.push(None);
        if round % 2 == 0 {
            order.reverse();
        }
        for slot in order {
            match slot {
                Some(b) => runs[b].push(run_repliqate(bench, name, uri, &builds[b], false)?),
                None => {
                    settle_disk();
                    let (own_before, broker_before) = (own_cpu(), broker_cpu());
                    reference.push(run_librdkafka(bench.broker, &keys, &sample)?);
                    reference_cpu.push(own_cpu() - own_before);
                    reference_broker.extend(broker_before.zip(broker_cpu()).map(|(a, b)| b - a));
                }
            }
        }
        let secs = reference[round - 1];
        let scanned = scan.map(|s| s.run(rows, bench.limit)).transpose()?;
        scans.push(scanned);
        for (b, build) in builds.iter().enumerate() {
            let wall = runs[b][round - 1].wall;
            eprintln!(
                "{name}: round {round}: {} {:.0} rows/s; librdkafka {:.0} msgs/s (ratio {:.2}){}",
                build.name,
                rows as f64 / wall,
                rows as f64 / secs,
                secs / wall,
                scanned.map_or(String::new(), |s| format!(
                    "; C scan {s:.2} s (scan + librdkafka / repliqate {:.2})",
                    (s + secs) / wall
                ))
            );
        }
    }
    let avg_message = sample.iter().map(Bytes::len).sum::<usize>() as f64 / sample.len() as f64;
    let scan_s = scan.map(|_| median(&scans.iter().flatten().copied().collect::<Vec<_>>()));
    let mut out = Vec::new();
    for (b, build) in builds.iter().enumerate() {
        let runs_b = &runs[b];
        let of = |f: fn(&Run) -> f64| median(&runs_b.iter().map(f).collect::<Vec<_>>());
        let per_round =
            |f: &dyn Fn(usize) -> Option<f64>| (0..bench.rounds).filter_map(f).collect();
        out.push(Outcome {
            source: name,
            build: build.name.clone(),
            rows,
            wall: of(|r| r.wall),
            cpu: of(|r| r.cpu),
            rss_mb: runs_b.iter().map(|r| r.rss_mb).fold(0.0, f64::max),
            broker_cpu: (!runs_b.iter().any(|r| r.broker_cpu.is_none())).then(|| {
                median(
                    &runs_b
                        .iter()
                        .filter_map(|r| r.broker_cpu)
                        .collect::<Vec<_>>(),
                )
            }),
            read_s: of(|r| r.read_s),
            publish_s: of(|r| r.publish_s),
            avg_message,
            reference_rate: rows as f64 / median(&reference),
            reference_cpu: median(&reference_cpu),
            reference_broker_cpu: (reference_broker.len() == bench.rounds)
                .then(|| median(&reference_broker)),
            ratios: per_round(&|i| Some(reference[i] / runs_b[i].wall)),
            scan_ratios: per_round(&|i| scans[i].map(|s| (s + reference[i]) / runs_b[i].wall)),
            scan_s,
            vs_first: if b == 0 {
                Vec::new()
            } else {
                per_round(&|i| Some(runs[0][i].wall / runs_b[i].wall))
            },
        });
    }
    Ok(out)
}

/// One `repliqate --once` run, from empty to caught up.
struct Run {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    broker_cpu: Option<f64>,
    read_s: f64,
    publish_s: f64,
    /// Messages it wrote, when asked for.
    sample: Option<Vec<Bytes>>,
}

/// Runs repliqate on a fresh topic and job, checks the topic holds every row, and returns the
/// run's figures and, if `sample`, some of the messages it wrote.
fn run_repliqate(
    bench: &Settings<'_>,
    name: &str,
    uri: &str,
    build: &Build,
    sample: bool,
) -> Result<Run, String> {
    let Settings {
        rows,
        limit,
        broker,
        redis,
        dir,
        ..
    } = *bench;
    let binary = &build.path;
    let topic = fresh_topic(broker, &format!("bench-{}", name.to_lowercase()))?;
    // A job name never used before: the Redis position key is fresh. It starts after id 0 as a
    // job resuming at a stored position would: a new job (no position) on PostgreSQL or MariaDB
    // would first wait to prove that no transaction is still inserting below its first row (two
    // looks at the open transactions, 0.3-0.6 s, once in a job's life), which is not the rate.
    let job = topic.clone();
    let config = dir.join(format!("{job}.yaml"));
    let yaml = JobConfig::new(&job, uri, TABLE, &topic)
        .redis(redis)
        .brokers(broker)
        .limit(limit as u64)
        .yaml();
    std::fs::write(&config, yaml).map_err(|e| format!("writing {}: {e}", config.display()))?;

    eprintln!("{name}: repliqate ({}) --once → {topic}", build.name);
    settle_disk();
    let broker_before = broker_cpu();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "BENCH-TIME %e %U %S %M"])
        .arg(binary)
        .arg("--config")
        .arg(&config)
        .args(["--once", "-vv", "--initial-position", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let broker_cpu = broker_before.zip(broker_cpu()).map(|(a, b)| b - a);
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
        broker_cpu,
        read_s,
        publish_s,
        sample,
    })
}

/// The CPU seconds (user + system, all threads) /proc reports for a process so far; the
/// figures are in clock ticks, 100 per second on Linux for every architecture we run.
fn proc_cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// This process's CPU seconds (librdkafka's threads included).
fn own_cpu() -> f64 {
    proc_cpu("self").unwrap_or(0.0)
}

/// The local broker's CPU seconds, from the stack's pid file (`$REPLIQATE_STACK_DIR/kafka/pid`);
/// `None` when it is not known. The two cores are shared: whatever CPU a client takes, the
/// broker has less.
fn broker_cpu() -> Option<f64> {
    let dir = std::env::var("REPLIQATE_STACK_DIR").ok()?;
    let pid = std::fs::read_to_string(Path::new(&dir).join("kafka/pid")).ok()?;
    proc_cpu(pid.trim())
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

/// The database's own C client reading the bench table in primary-key batches
/// (examples/scan/*.c, compiled here with `cc`): the reference for the database's share.
struct Scan {
    program: PathBuf,
    /// The connection arguments, before TABLE KEY LIMIT.
    args: Vec<String>,
}

impl Scan {
    fn postgres(dir: &Path, uri: &str) -> Result<Scan, String> {
        let program = compile(
            dir,
            "pg_scan",
            &["-I/usr/include/postgresql", "-lpq"],
            "libpq-dev",
        )?;
        // libpq takes the URI as it is.
        Ok(Scan {
            program,
            args: vec![uri.to_string()],
        })
    }

    fn mariadb(dir: &Path, uri: &str) -> Result<Scan, String> {
        let flags = Command::new("mariadb_config")
            .args(["--cflags", "--libs"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .ok_or(
                "mariadb_config not found: install the MariaDB C client library's headers \
                    (apt-get install libmariadb-dev)",
            )?;
        let flags: Vec<&str> = flags.split_whitespace().collect();
        let program = compile(dir, "mariadb_scan", &flags, "libmariadb-dev")?;
        let opts =
            mysql::Opts::from_url(uri).map_err(|e| format!("REPLIQATE_TEST_MYSQL_URI: {e}"))?;
        Ok(Scan {
            program,
            args: vec![
                opts.get_ip_or_hostname().to_string(),
                opts.get_tcp_port().to_string(),
                opts.get_user().unwrap_or_default().to_string(),
                opts.get_pass().unwrap_or_default().to_string(),
                opts.get_db_name().unwrap_or_default().to_string(),
            ],
        })
    }

    /// Reads the whole table; returns the seconds it took (the program's own clock, from its
    /// first query to its last row: connecting is not counted).
    fn run(&self, rows: usize, limit: usize) -> Result<f64, String> {
        let out = Command::new(&self.program)
            .args(&self.args)
            .args([TABLE, "id", &limit.to_string()])
            .output()
            .map_err(|e| format!("running {}: {e}", self.program.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = text
            .lines()
            .find_map(|l| l.strip_prefix("SCAN "))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        match (out.status.success(), &fields[..]) {
            (true, [n, _bytes, secs]) if n.parse() == Ok(rows) => secs
                .parse()
                .map_err(|_| format!("{}: bad time {secs:?}", self.program.display())),
            _ => Err(format!(
                "{} failed or read the wrong number of rows (expected {rows}): {}{}",
                self.program.display(),
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
}

/// Compiles examples/scan/NAME.c into `dir` with `cc -O2`.
fn compile(dir: &Path, name: &str, flags: &[&str], package: &str) -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/scan/{name}.c"));
    let program = dir.join(name);
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&program)
        .arg(&source)
        .args(flags)
        .output()
        .map_err(|e| format!("running cc: {e} (apt-get install build-essential)"))?;
    if !out.status.success() {
        return Err(format!(
            "compiling {}: {} (needs {package}: apt-get install {package})",
            source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(program)
}

fn env(var: &str) -> Result<String, String> {
    std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
        format!("{var} is not set: start the local stack with `make stack-up` (or `scripts/stack up`), then `eval \"$(scripts/stack env)\"`")
    })
}

/// The `payload` column: `len` bytes of text that varies per row.
fn payload(i: usize, len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(len);
    s
}

/// A fresh SQLite file, filled in one transaction through one prepared statement.
fn fill_sqlite(dir: &Path, rows: usize, payload_len: usize) -> Result<String, String> {
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
                    payload(i, payload_len)
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
fn fill_postgres(uri: &str, rows: usize, payload_len: usize) -> Result<String, String> {
    let started = Instant::now();
    let repeats = payload_len / 32 + 1;
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
                      left(repeat(md5(g::text), {repeats}), {payload_len})
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
fn fill_mysql(uri: &str, rows: usize, payload_len: usize) -> Result<String, String> {
    use mysql::prelude::Queryable;
    let started = Instant::now();
    let repeats = payload_len / 32 + 1;
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
         LEFT(REPEAT(MD5(seq), {repeats}), {payload_len}) FROM seq_1_to_{rows}"
    ))
    .map_err(e)?;
    eprintln!(
        "MariaDB: {rows} rows ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(uri.to_string())
}
