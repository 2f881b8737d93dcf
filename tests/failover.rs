//! Failover on a real three-broker Apache Kafka cluster (the stack's `cluster`: brokers 1-3 and a
//! controller apart, replication factor 3, `min.insync.replicas=2`), with the `repliqate` binary
//! replicating a 200,000-row PostgreSQL table that a writer keeps adding to:
//!
//! - the leader of a partition killed with SIGKILL mid-stream;
//! - a broker paused (SIGSTOP) for longer than the request timeout, then resumed;
//! - a rolling restart of all three brokers, each back in every ISR before the next goes;
//! - two brokers down with acks=all (NOT_ENOUGH_REPLICAS) for longer than the delivery timeout:
//!   the daemon waits without moving its position, and resumes when they return;
//! - the topic deleted mid-run: a clear error, and the position not moved past what was
//!   acknowledged.
//!
//! Each scenario reads the topic back with librdkafka and checks it against the table: no row
//! missing; duplicates are counted (with the idempotent producer, broker failures alone should
//! cause none) and, with the time to resume after recovery, printed for docs/FAULTS.md.
//!
//! The scenarios break the shared cluster, so they run one at a time (`LOCK`), and every broker
//! is started or resumed again when a scenario ends, even when it fails (`Heal`).

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::daemon::{tail, Daemon};
use common::db::{Db, TableGuard};
use common::env::{unique, TempDir};
use common::faults::*;
use common::job::JobConfig;
use common::kafka::{block_on, ids_in_topic};
use common::position::{try_position, wait_position, RedisKeyGuard, Sampler};
use common::stack::{stack_ok, try_stack};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

static LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const ROWS: u64 = 200_000;
const LIMIT: i128 = 2_000;
const PARTITIONS: i32 = 3;
const WRITES_PER_SEC: u64 = 100;
const REQUEST_TIMEOUT_SEC: u64 = 5;
const DELIVERY_TIMEOUT_SEC: u64 = 20;
const ERROR_LINE: &str = "retrying until it recovers";

/// The cluster's bootstrap list, from `scripts/stack env`. Missing = a failed test.
fn cluster() -> String {
    std::env::var("REPLIQATE_TEST_KAFKA_CLUSTER").unwrap_or_else(|_| {
        panic!(
            "REPLIQATE_TEST_KAFKA_CLUSTER is not set: these tests need the stack's three-broker \
             cluster. Start it with `scripts/stack start cluster` and `eval \"$(scripts/stack \
             env)\"`, or run `make test`"
        )
    })
}

/// `scripts/stack broker N ACTION`: kill, pause, resume, stop, start.
fn broker(n: i32, action: &str) {
    stack_ok(&["broker", &n.to_string(), action]);
}

/// Resumes and starts every broker when dropped, so a failed scenario never leaves the cluster
/// broken for the next one.
struct Heal;

impl Drop for Heal {
    fn drop(&mut self) {
        for n in 1..=3 {
            for action in ["resume", "start"] {
                let _ = try_stack(&["broker", &n.to_string(), action]);
            }
        }
        wait_in_sync(None, Duration::from_secs(60));
    }
}

fn metadata_consumer() -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", cluster())
        .create()
        .expect("librdkafka client")
}

/// The id of the broker leading `partition` of `topic` now.
fn leader_of(topic: &str, partition: usize) -> i32 {
    let md = metadata_consumer()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()[0].partitions()[partition].leader()
}

/// Waits until every partition of `topic` (every topic with `None`) has all three replicas in
/// its ISR: what an operator checks before restarting the next broker. False on timeout.
fn wait_in_sync(topic: Option<&str>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let ok = metadata_consumer()
            .fetch_metadata(topic, Duration::from_secs(5))
            .map(|md| {
                md.brokers().len() == 3
                    && md.topics().iter().all(|t| {
                        t.error().is_none() && t.partitions().iter().all(|p| p.isr().len() == 3)
                    })
            })
            .unwrap_or(false);
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", cluster())
        .create()
        .expect("admin client")
}

fn create_replicated_topic(topic: &str) {
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(3));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    for r in block_on(admin().create_topics([&new], &opts)).expect("create_topics") {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
    assert!(
        wait_in_sync(Some(topic), Duration::from_secs(30)),
        "topic {topic} never had 3 in-sync replicas per partition"
    );
}

/// One scenario's run: the table, the topic, the writer and the daemon.
struct Run {
    what: &'static str,
    db: Db,
    table: String,
    job: JobConfig,
    key: String,
    daemon: Daemon,
    writer: Writer,
    sampler: Option<Sampler>,
    _dir: TempDir,
    _key: RedisKeyGuard,
    _table: TableGuard,
}

impl Run {
    /// Starts replicating and returns once the position is past `ROWS / 10` (mid-stream).
    fn start(what: &'static str) -> Run {
        // A broker the previous scenario stopped may take a while to rejoin on a loaded
        // machine; a scenario starts only on a whole cluster, or says why not.
        assert!(
            wait_in_sync(None, Duration::from_secs(180)),
            "{what}: the cluster is not whole before the scenario (3 brokers in the metadata, \
             every replica in sync after 180 s); check `scripts/stack status` and the brokers' \
             logs under $REPLIQATE_STACK_DIR"
        );
        let dir = TempDir::new("failover");
        let db = Db::Postgres;
        let table = unique("t_failover");
        let guard = TableGuard::new(&db, &table);
        db.create_filled(&table, ROWS);
        let job = fault_job("failover", &db, &table, &cluster())
            .limit(LIMIT as u64)
            .kafka_timeouts(
                Duration::from_secs(REQUEST_TIMEOUT_SEC),
                Duration::from_secs(DELIVERY_TIMEOUT_SEC),
            );
        create_replicated_topic(&job.kafka.topic);
        let key = job.key();
        let key_guard = RedisKeyGuard(key.clone());
        let config = dir.write("config.yaml", &job.yaml());
        let writer = Writer::start(db.clone(), &table, WRITES_PER_SEC);
        let daemon = Daemon::start(&config, &["-vvv"], dir.path().join("daemon.log"));
        let sampler = Some(Sampler::start(&key));
        let run = Run {
            what,
            db,
            table,
            job,
            key,
            daemon,
            writer,
            sampler,
            _dir: dir,
            _key: key_guard,
            _table: guard,
        };
        assert!(
            wait_position(&run.key, (ROWS / 10) as i128, Duration::from_secs(60)).is_some(),
            "{what}: never replicated the first {} rows; log:\n{}",
            ROWS / 10,
            tail(&run.daemon.log_text(), 30)
        );
        run
    }

    fn position(&self) -> i128 {
        try_position(&self.key)
            .unwrap_or_else(|e| panic!("reading the position: {e}"))
            .unwrap_or(0)
    }

    fn log_tail(&self) -> String {
        tail(&self.daemon.log_text(), 40)
    }

    /// Stops the writer, waits until every row is replicated, stops the daemon, reads the topic
    /// back and checks it against the table. `recovered` is when the cluster was whole again;
    /// the time to resume is from then until the position moved past where it was.
    fn finish(mut self, recovered: Instant) -> (usize, Duration) {
        let what = self.what;
        assert!(
            self.daemon.alive(),
            "{what}: repliqate exited; log:\n{}",
            self.log_tail()
        );
        std::thread::sleep(Duration::from_secs(2));
        self.writer.stop();
        let expected = self.db.ids(&self.table);
        let last = *expected.last().unwrap() as i128;
        let caught_up = wait_position(&self.key, last, Duration::from_secs(180));
        assert!(
            caught_up.is_some(),
            "{what}: never caught up with the last row {last} (position {}); log:\n{}",
            self.position(),
            self.log_tail()
        );
        let samples = self.sampler.take().unwrap().finish();
        let at_recovery = samples
            .iter()
            .rev()
            .find(|(t, _)| *t <= recovered)
            .map_or(0, |s| s.1);
        // The first commit after recovery (the sampler may miss the last one: then catching up).
        let resumed = samples
            .iter()
            .find(|(t, p)| *t > recovered && *p > at_recovery)
            .map_or(caught_up.unwrap(), |(t, _)| *t)
            .saturating_duration_since(recovered);
        assert!(
            self.daemon.alive(),
            "{what}: repliqate exited; log:\n{}",
            self.log_tail()
        );
        self.daemon.signal("TERM");
        let status = self.daemon.wait(Duration::from_secs(30));
        assert!(status.success(), "{what}: exit {status:?} after SIGTERM");
        let ids = ids_in_topic(
            &cluster(),
            &self.job.kafka.topic,
            PARTITIONS,
            expected.len(),
        );
        let duplicates = assert_all_there(what, &expected, &ids);
        let errors = self.daemon.lines_with(ERROR_LINE);
        if duplicates > 0 {
            // Which rows, and what the producer saw, explain where the copies came from.
            let mut twice: Vec<i64> = ids
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(id, _)| *id)
                .collect();
            twice.sort_unstable();
            eprintln!(
                "{what}: ids written more than once: {}..={} ({} ids)",
                twice[0],
                twice[twice.len() - 1],
                twice.len()
            );
            for line in self.daemon.lines_with("kafka:") {
                eprintln!("{what}: {line}");
            }
            let keep =
                std::env::temp_dir().join(format!("failover-{}.log", what.replace(' ', "-")));
            let _ = std::fs::copy(&self.daemon.log, &keep);
            eprintln!("{what}: the daemon's log is kept in {}", keep.display());
        }
        eprintln!(
            "{what}: {} rows ({ROWS} + {} written during the run), 0 missing, {duplicates} \
             duplicates, resumed {resumed:?} after recovery; {} retry lines",
            expected.len(),
            self.writer.inserted(),
            errors.len()
        );
        (duplicates, resumed)
    }
}

#[test]
fn the_leader_of_a_partition_killed_mid_stream() {
    let _serial = serial();
    let _heal = Heal;
    let run = Run::start("leader killed");
    let leader = leader_of(&run.job.kafka.topic, 0);
    let before = run.position();
    broker(leader, "kill");
    let killed = Instant::now();
    assert!(
        before < ROWS as i128,
        "the kill came after the table was replicated (position {before})"
    );
    // The cluster elects new leaders by itself (after the controller fences the dead broker);
    // the daemon must find them. The dead broker comes back only at the end.
    let (duplicates, resumed) = run.finish(killed);
    broker(leader, "start");
    assert_eq!(
        duplicates, 0,
        "leader killed: the idempotent producer wrote duplicates"
    );
    eprintln!("leader killed: broker {leader}, resumed {resumed:?} after the kill");
}

#[test]
fn a_broker_paused_longer_than_the_request_timeout_then_resumed() {
    let _serial = serial();
    let _heal = Heal;
    let run = Run::start("broker paused");
    let leader = leader_of(&run.job.kafka.topic, 0);
    broker(leader, "pause");
    let pause = Duration::from_secs(REQUEST_TIMEOUT_SEC * 3);
    std::thread::sleep(pause);
    broker(leader, "resume");
    let resumed_at = Instant::now();
    assert!(
        wait_in_sync(Some(&run.job.kafka.topic), Duration::from_secs(90)),
        "broker {leader} never rejoined the ISR after SIGCONT"
    );
    let (duplicates, _) = run.finish(resumed_at);
    assert_eq!(
        duplicates, 0,
        "broker paused: the idempotent producer wrote duplicates"
    );
    eprintln!("broker paused: broker {leader} for {pause:?}");
}

#[test]
fn a_rolling_restart_of_all_three_brokers() {
    let _serial = serial();
    let _heal = Heal;
    let run = Run::start("rolling restart");
    for n in 1..=3 {
        broker(n, "stop");
        broker(n, "start");
        assert!(
            wait_in_sync(Some(&run.job.kafka.topic), Duration::from_secs(90)),
            "rolling restart: broker {n} never rejoined the ISR"
        );
    }
    let (duplicates, _) = run.finish(Instant::now());
    assert_eq!(
        duplicates, 0,
        "rolling restart: the idempotent producer wrote duplicates"
    );
}

#[test]
fn two_brokers_down_with_acks_all_waits_then_resumes_without_loss() {
    let _serial = serial();
    let _heal = Heal;
    let run = Run::start("two brokers down");
    let incidents = run.daemon.lines_with(ERROR_LINE).len();
    broker(2, "stop");
    broker(3, "stop");
    // Broker 1 leads every partition now, alone in the ISR: below min.insync.replicas=2, so it
    // answers NOT_ENOUGH_REPLICAS and nothing is acknowledged. The batch in flight when the
    // second broker went fails at its delivery timeout, committing the rows of partitions
    // acknowledged before (a prefix); from then on the position must hold.
    let deadline = Instant::now() + Duration::from_secs(DELIVERY_TIMEOUT_SEC * 3);
    while run.daemon.lines_with(ERROR_LINE).len() == incidents {
        assert!(
            Instant::now() < deadline,
            "two brokers down: the daemon reported no failure within {}s; log:\n{}",
            DELIVERY_TIMEOUT_SEC * 3,
            run.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let held = run.position();
    std::thread::sleep(Duration::from_secs(25));
    let still = run.position();
    assert_eq!(
        held,
        still,
        "two brokers down: the position moved from {held} to {still} with one in-sync replica; \
         log:\n{}",
        run.log_tail()
    );
    let log = run.daemon.log_text();
    assert!(
        log.contains("NOT_ENOUGH_REPLICAS") || log.contains("NotEnoughReplicas"),
        "two brokers down: the daemon never reported NOT_ENOUGH_REPLICAS; log:\n{}",
        run.log_tail()
    );
    broker(2, "start");
    broker(3, "start");
    let back = Instant::now();
    let (duplicates, resumed) = run.finish(back);
    // The outage outlasts delivery_timeout_sec, so the batch fails with records of unknown
    // fate (a stopping broker closes connections with requests in flight). It is sent again
    // as it was, same producer id and sequences: the broker drops what it already had.
    assert_eq!(
        duplicates, 0,
        "two brokers down: the batch sent again after the delivery timeout was written twice"
    );
    eprintln!("two brokers down: position held at {held} for 25 s, resumed {resumed:?} after both returned");
}

#[test]
fn the_topic_deleted_mid_run_is_a_clear_error_and_the_position_stays() {
    let _serial = serial();
    let _heal = Heal;
    let mut run = Run::start("topic deleted");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let topic = run.job.kafka.topic.clone();
    for r in block_on(admin().delete_topics(&[topic.as_str()], &opts)).expect("delete_topics") {
        r.unwrap_or_else(|(t, e)| panic!("deleting topic {t}: {e}"));
    }
    let deleted_at = run.position();
    let status = run.daemon.wait(Duration::from_secs(120));
    let log = run.daemon.log_text();
    let last_line = log.lines().last().unwrap_or_default().to_string();
    eprintln!("topic deleted: exit {status:?}, last line: {last_line}");
    assert_eq!(
        status.code(),
        Some(1),
        "topic deleted: expected exit 1 (a non-retriable error); log:\n{}",
        tail(&log, 20)
    );
    assert!(
        last_line.contains(&topic) && last_line.contains("does not exist"),
        "topic deleted: the last line should name the topic and say it does not exist: {last_line}"
    );
    let after = run.position();
    // A batch acknowledged by a broker that had not yet heard of the deletion may be committed;
    // nothing later is.
    assert!(
        after <= deleted_at + LIMIT,
        "topic deleted: the position moved from {deleted_at} to {after} after the deletion"
    );
    run.writer.stop();
    eprintln!("topic deleted: position {deleted_at} at the deletion, {after} at exit");
}
