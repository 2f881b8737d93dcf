//! The `repliqate` binary's command line and start-up failures against the local stack: every
//! bad input ends with exactly one stderr line `repliqate: …`, the documented exit code (2 config,
//! 3 unavailable at start-up), no panic, and no change to the stored position; `--version`,
//! `-vvv`, and no password in any output.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::e2e::*;
use common::kafka::{broker, create_topic};

const SECRET: &str = "repliqate-secret";

/// A valid job (SQLite table `t` with ids 1..=3, table `s` with a text key, an existing topic)
/// whose config each test bends one way.
struct Fixture {
    dir: TempDir,
    db: PathBuf,
    name: String,
    topic: String,
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
        let topic = unique("cli");
        create_topic(&broker(), &topic, 1);
        Fixture {
            dir,
            db,
            name: unique("job_cli"),
            topic,
        }
    }

    fn yaml(&self) -> String {
        format!(
            "repliqate:
  name: {name}
  redis_addr: {redis}
  replication:
    poll_interval_sec: 1
    sql_source:
      uri: 'sqlite:///{db}'
      table: t
      primary_key: id
      connect_timeout_sec: 2
    kafka_target:
      topic: {topic}
      brokers: [{broker}]
      connect_timeout_sec: 2
      request_timeout_sec: 3
      delivery_timeout_sec: 3
",
            name = self.name,
            redis = redis_addr(),
            db = self.db.display(),
            topic = self.topic,
            broker = broker(),
        )
    }

    /// Writes the base config with `from` replaced by `to` (which must occur) and returns its
    /// path.
    fn config_with(&self, from: &str, to: &str) -> String {
        let base = self.yaml();
        assert!(base.contains(from), "fixture config has no {from:?}");
        let path = self.dir.write("config.yaml", &base.replacen(from, to, 1));
        path.to_str().unwrap().to_string()
    }

    fn key(&self, table: &str) -> String {
        position_key(&self.name, table, &self.topic)
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
        &f.key("t"),
        "2",
    );
}

#[test]
fn missing_required_key() {
    let f = Fixture::new();
    let c = f.config_with("      table: t\n", "");
    expect_failure(
        "missing key",
        &["--config", &c, "--once"],
        2,
        "replication.sql_source.table",
        &f.key("t"),
        "2",
    );
}

#[test]
fn unknown_key() {
    let f = Fixture::new();
    let c = f.config_with("      table: t\n", "      table: t\n      tabel: t\n");
    expect_failure(
        "unknown key",
        &["--config", &c, "--once"],
        2,
        "tabel",
        &f.key("t"),
        "2",
    );
}

#[test]
fn wrong_type() {
    let f = Fixture::new();
    let c = f.config_with("poll_interval_sec: 1", "poll_interval_sec: soon");
    expect_failure(
        "wrong type",
        &["--config", &c, "--once"],
        2,
        "poll_interval_sec",
        &f.key("t"),
        "2",
    );
    let c = f.config_with(
        "      primary_key: id\n",
        "      primary_key: id\n      limit: [10]\n",
    );
    expect_failure(
        "wrong type (list)",
        &["--config", &c, "--once"],
        2,
        "limit",
        &f.key("t"),
        "2",
    );
}

#[test]
fn bad_uri_scheme() {
    let f = Fixture::new();
    let c = f.config_with("'sqlite:///", "'oracle://scott@db.example/");
    expect_failure(
        "bad uri scheme",
        &["--config", &c, "--once"],
        2,
        "oracle",
        &f.key("t"),
        "2",
    );
}

#[test]
fn unknown_table() {
    let f = Fixture::new();
    let c = f.config_with("      table: t\n", "      table: nosuch\n");
    expect_failure(
        "unknown table",
        &["--config", &c, "--once"],
        2,
        "nosuch",
        &f.key("nosuch"),
        "2",
    );
}

#[test]
fn non_integer_primary_key() {
    let f = Fixture::new();
    let c = f.config_with("      table: t\n", "      table: s\n");
    expect_failure(
        "text primary key",
        &["--config", &c, "--once"],
        2,
        "id",
        &f.key("s"),
        "0",
    );
    let c = f.config_with("      primary_key: id\n", "      primary_key: v\n");
    expect_failure(
        "text column as key",
        &["--config", &c, "--once"],
        2,
        "v",
        &f.key("t"),
        "2",
    );
}

#[test]
fn unknown_field() {
    let f = Fixture::new();
    let c = f.config_with(
        "      primary_key: id\n",
        "      primary_key: id\n      fields: [v, nosuch]\n",
    );
    expect_failure(
        "unknown field",
        &["--config", &c, "--once"],
        2,
        "nosuch",
        &f.key("t"),
        "2",
    );
}

#[test]
fn unreachable_database() {
    let f = Fixture::new();
    let uri = format!("'postgresql://repliqate:{SECRET}@127.0.0.1:1/repliqate'");
    let c = f.config_with(&format!("'sqlite:///{}'", f.db.display()), &uri);
    expect_failure(
        "unreachable database",
        &["--config", &c, "--once"],
        3,
        "127.0.0.1:1",
        &f.key("t"),
        "2",
    );
    // Same with logging on: still one line, and the password nowhere.
    expect_failure(
        "unreachable database -v",
        &["--config", &c, "--once", "-v"],
        3,
        "127.0.0.1:1",
        &f.key("t"),
        "2",
    );
}

#[test]
fn unreachable_redis() {
    let f = Fixture::new();
    let c = f.config_with(
        &format!("redis_addr: {}", redis_addr()),
        "redis_addr: 127.0.0.1:1",
    );
    // The real Redis is not involved; its key must stay as it is all the same.
    expect_failure(
        "unreachable redis",
        &["--config", &c, "--once"],
        3,
        "127.0.0.1:1",
        &f.key("t"),
        "2",
    );
}

#[test]
fn unreachable_broker() {
    let f = Fixture::new();
    let c = f.config_with(
        &format!("brokers: [{}]", broker()),
        "brokers: ['127.0.0.1:1']",
    );
    expect_failure(
        "unreachable broker",
        &["--config", &c, "--once"],
        3,
        "127.0.0.1:1",
        &f.key("t"),
        "2",
    );
}

#[test]
fn topic_that_does_not_exist() {
    let f = Fixture::new();
    let missing = unique("no_such_topic");
    let c = f.config_with(&format!("topic: {}", f.topic), &format!("topic: {missing}"));
    let key = position_key(&f.name, "t", &missing);
    expect_failure(
        "missing topic",
        &["--config", &c, "--once"],
        2,
        &missing,
        &key,
        "2",
    );
}

#[test]
fn non_integer_stored_position() {
    let f = Fixture::new();
    let c = f.config_with("poll_interval_sec: 1", "poll_interval_sec: 1");
    expect_failure(
        "position abc",
        &["--config", &c, "--once"],
        2,
        "abc",
        &f.key("t"),
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
    let c = f.config_with("poll_interval_sec: 1", "poll_interval_sec: 1");
    let key = f.key("t");
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
    let c = f.config_with(
        &format!("'sqlite:///{}'", f.db.display()),
        &format!("'{}'", pg_uri()),
    );
    let c = {
        let text = std::fs::read_to_string(&c)
            .unwrap()
            .replace("      table: t\n", &format!("      table: {table}\n"));
        f.dir
            .write("config.yaml", &text)
            .to_str()
            .unwrap()
            .to_string()
    };
    let key = f.key(&table);
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
