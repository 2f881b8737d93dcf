//! The `repliqate` binary's command line and start-up failures against the local stack: every
//! bad input ends with exactly one stderr line `repliqate: …`, the documented exit code (2 config,
//! 3 unavailable at start-up), no panic, and no change to the stored position; `--version`,
//! `-vvv`, and no password in any output.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::daemon::{assert_exit, run};
use common::env::{pg_uri, stack_job, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, create_topic};
use common::position::{redis_del, redis_get, redis_set, RedisKeyGuard};
use serde_json::json;

const SECRET: &str = "repliqate-secret";

/// A valid job (SQLite table `t` with ids 1..=3, table `s` with a text key, an existing topic)
/// whose config each test bends one way.
struct Fixture {
    dir: TempDir,
    db: PathBuf,
    job: JobConfig,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("cli");
        let db = dir.path().join("source.db");
        let conn = rusqlite::Connection::open(&db).expect("open sqlite");
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, k TEXT);
             INSERT INTO t VALUES (1, 'a', 'x'), (2, 'b', 'y'), (3, 'c', 'z');
             CREATE TABLE s (id TEXT PRIMARY KEY, v TEXT);
             INSERT INTO s VALUES ('one', 'a');",
        )
        .expect("create tables");
        let job = stack_job("cli", &format!("sqlite:///{}", db.display()), "t")
            .connect_timeouts(Duration::from_secs(2))
            .kafka_timeouts(Duration::from_secs(3), Duration::from_secs(3));
        create_topic(&broker(), &job.kafka.topic, 1);
        Fixture { dir, db, job }
    }

    /// The base job, to bend.
    fn job(&self) -> JobConfig {
        self.job.clone()
    }

    /// Writes `job`'s config file and returns its path.
    fn write(&self, job: &JobConfig) -> String {
        let path = self.dir.write("config.yaml", &job.yaml());
        path.to_str().unwrap().to_string()
    }
}

/// Runs repliqate on a bad `config` and checks: exit `code`, nothing on stdout, exactly one
/// non-empty stderr line starting `repliqate: ` and containing `needle`, no panic, no password,
/// and the stored position under `key` still `position`.
fn expect_failure(what: &str, args: &[&str], code: i32, needle: &str, key: &str, position: &str) {
    redis_set(key, position);
    let _guard = RedisKeyGuard(key.to_string());
    let started = std::time::Instant::now();
    let output = run(args, Duration::from_secs(60));
    eprintln!(
        "{what}: exit {:?} in {:?}",
        output.status.code(),
        started.elapsed()
    );
    check_one_line_error(what, &output, code, needle);
    assert_eq!(
        redis_get(key).as_deref(),
        Some(position),
        "{what}: the stored position changed"
    );
}

fn check_one_line_error(what: &str, output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_exit(output, code, what);
    assert!(
        !stderr.contains("panicked") && !stdout.contains("panicked"),
        "{what}: panic:\n{stderr}"
    );
    assert!(
        !stderr.contains(SECRET) && !stdout.contains(SECRET),
        "{what}: password in the output:\n{stderr}"
    );
    assert!(
        stdout.trim().is_empty(),
        "{what}: unexpected stdout:\n{stdout}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one stderr line, got:\n{stderr}"
    );
    assert!(lines[0].starts_with("repliqate: "), "{what}: {}", lines[0]);
    assert!(
        lines[0].contains(needle),
        "{what}: the message does not name {needle:?}: {}",
        lines[0]
    );
    eprintln!("{what}: {}", lines[0]);
}

#[test]
fn missing_config_file() {
    let f = Fixture::new();
    let path = f.dir.path().join("no-such-config.yaml");
    let path = path.to_str().unwrap();
    expect_failure(
        "missing file",
        &["--config", path, "--once"],
        2,
        "no-such-config.yaml",
        &f.job.key(),
        "2",
    );
}

#[test]
fn missing_required_key() {
    let f = Fixture::new();
    let c = f.write(&f.job().remove("replication.sql_source.table"));
    expect_failure(
        "missing key",
        &["--config", &c, "--once"],
        2,
        "replication.sql_source.table",
        &f.job.key(),
        "2",
    );
}

#[test]
fn unknown_key() {
    let f = Fixture::new();
    let c = f.write(&f.job().set("replication.sql_source.tabel", "t"));
    expect_failure(
        "unknown key",
        &["--config", &c, "--once"],
        2,
        "tabel",
        &f.job.key(),
        "2",
    );
}

#[test]
fn wrong_type() {
    let f = Fixture::new();
    let c = f.write(&f.job().set("replication.poll_interval_sec", "soon"));
    expect_failure(
        "wrong type",
        &["--config", &c, "--once"],
        2,
        "poll_interval_sec",
        &f.job.key(),
        "2",
    );
    let c = f.write(&f.job().set("replication.sql_source.limit", json!([10])));
    expect_failure(
        "wrong type (list)",
        &["--config", &c, "--once"],
        2,
        "limit",
        &f.job.key(),
        "2",
    );
}

#[test]
fn bad_uri_scheme() {
    let f = Fixture::new();
    let mut job = f.job();
    job.source.uri = format!("oracle://scott@db.example/{}", f.db.display());
    let c = f.write(&job);
    expect_failure(
        "bad uri scheme",
        &["--config", &c, "--once"],
        2,
        "oracle",
        &f.job.key(),
        "2",
    );
}

#[test]
fn unknown_table() {
    let f = Fixture::new();
    let mut job = f.job();
    job.source.table = "nosuch".into();
    let c = f.write(&job);
    expect_failure(
        "unknown table",
        &["--config", &c, "--once"],
        2,
        "nosuch",
        &job.key(),
        "2",
    );
}

#[test]
fn non_integer_primary_key() {
    let f = Fixture::new();
    let mut job = f.job();
    job.source.table = "s".into();
    let c = f.write(&job);
    expect_failure(
        "text primary key",
        &["--config", &c, "--once"],
        2,
        "id",
        &job.key(),
        "0",
    );
    let mut job = f.job();
    job.source.primary_key = "v".into();
    let c = f.write(&job);
    expect_failure(
        "text column as key",
        &["--config", &c, "--once"],
        2,
        "v",
        &job.key(),
        "2",
    );
}

#[test]
fn unknown_field() {
    let f = Fixture::new();
    let mut job = f.job();
    job.source.fields = Some(vec!["v".into(), "nosuch".into()]);
    let c = f.write(&job);
    expect_failure(
        "unknown field",
        &["--config", &c, "--once"],
        2,
        "nosuch",
        &f.job.key(),
        "2",
    );
}

#[test]
fn unreachable_database() {
    let f = Fixture::new();
    let mut job = f.job();
    job.source.uri = format!("postgresql://repliqate:{SECRET}@127.0.0.1:1/repliqate");
    let c = f.write(&job);
    expect_failure(
        "unreachable database",
        &["--config", &c, "--once"],
        3,
        "127.0.0.1:1",
        &f.job.key(),
        "2",
    );
    // Same with logging on: still one line, and the password nowhere.
    expect_failure(
        "unreachable database -v",
        &["--config", &c, "--once", "-v"],
        3,
        "127.0.0.1:1",
        &f.job.key(),
        "2",
    );
}

#[test]
fn unreachable_redis() {
    let f = Fixture::new();
    let c = f.write(&f.job().redis("127.0.0.1:1"));
    // The real Redis is not involved; its key must stay as it is all the same.
    expect_failure(
        "unreachable redis",
        &["--config", &c, "--once"],
        3,
        "127.0.0.1:1",
        &f.job.key(),
        "2",
    );
}

#[test]
fn unreachable_broker() {
    let f = Fixture::new();
    let c = f.write(&f.job().brokers("127.0.0.1:1"));
    expect_failure(
        "unreachable broker",
        &["--config", &c, "--once"],
        3,
        "127.0.0.1:1",
        &f.job.key(),
        "2",
    );
}

#[test]
fn topic_that_does_not_exist() {
    let f = Fixture::new();
    let missing = unique("no_such_topic");
    let mut job = f.job();
    job.kafka.topic = missing.clone();
    let c = f.write(&job);
    expect_failure(
        "missing topic",
        &["--config", &c, "--once"],
        2,
        &missing,
        &job.key(),
        "2",
    );
}

#[test]
fn non_integer_stored_position() {
    let f = Fixture::new();
    let c = f.write(&f.job);
    expect_failure(
        "position abc",
        &["--config", &c, "--once"],
        2,
        "abc",
        &f.job.key(),
        "abc",
    );
}

#[test]
fn version() {
    let output = run(&["--version"], Duration::from_secs(10));
    assert_exit(&output, 0, "--version");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("repliqate {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(output.stderr.is_empty());
}

#[test]
fn debug_verbosity_replicates() {
    let f = Fixture::new();
    let c = f.write(&f.job);
    let key = f.job.key();
    let _guard = RedisKeyGuard(key.clone());
    redis_del(&key);
    let output = run(&["--config", &c, "--once", "-vvv"], Duration::from_secs(60));
    assert_exit(&output, 0, "-vvv");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DEBUG"), "-vvv logs at debug:\n{stderr}");
    assert_eq!(redis_get(&key).as_deref(), Some("3"));
}

#[test]
fn password_never_printed_at_debug() {
    let mut client = postgres::Client::connect(&pg_uri(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
    assert!(
        pg_uri().contains(SECRET),
        "the test PostgreSQL URI carries the password"
    );
    let table = unique("cli_pw");
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, v text);
             INSERT INTO {table} VALUES (1, 'a'), (2, 'b')"
        ))
        .expect("create table");
    let f = Fixture::new();
    let mut job = f.job();
    job.source.uri = pg_uri();
    job.source.table = table.clone();
    let c = f.write(&job);
    let key = job.key();
    let _guard = RedisKeyGuard(key.clone());
    let output = run(&["--config", &c, "--once", "-vvv"], Duration::from_secs(60));
    let _ = client.batch_execute(&format!("DROP TABLE {table}"));
    assert_exit(&output, 0, "postgres at -vvv");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !all.contains(SECRET),
        "the password appears in the output:\n{all}"
    );
    assert!(all.contains("DEBUG"), "ran at debug level:\n{all}");
    assert_eq!(redis_get(&key).as_deref(), Some("2"));
}
