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

/// Where a case's config comes from: a file that is not there, or the fixture's job bent one way.
enum Config {
    /// `no-such-config.yaml` in the fixture's directory, never written.
    Missing,
    /// The fixture's job, bent, written to `config.yaml`.
    Job(fn(&Fixture) -> JobConfig),
}

/// One bad start: repliqate run with `args` (`CONFIG` standing for the config file's path) on
/// `config` must exit `code` with exactly one stderr line `repliqate: …` containing `needle`
/// (`TOPIC` standing for the bent job's topic), nothing on stdout, no panic, no password, and
/// leave the stored position `position` as it was.
struct Case {
    /// What the case shows, as a sentence: failure messages start with it.
    name: &'static str,
    config: Config,
    args: &'static [&'static str],
    code: i32,
    needle: &'static str,
    position: &'static str,
}

const ONCE: &[&str] = &["--config", "CONFIG", "--once"];

/// Malformed config files: exit 2, the message naming the file, key or value at fault.
const BAD_CONFIGS: &[Case] = &[
    Case {
        name: "a missing config file is named",
        config: Config::Missing,
        args: ONCE,
        code: 2,
        needle: "no-such-config.yaml",
        position: "2",
    },
    Case {
        name: "a missing required key is named by its path",
        config: Config::Job(|f| f.job().remove("replication.sql_source.table")),
        args: ONCE,
        code: 2,
        needle: "replication.sql_source.table",
        position: "2",
    },
    Case {
        name: "an unknown key is named",
        config: Config::Job(|f| f.job().set("replication.sql_source.tabel", "t")),
        args: ONCE,
        code: 2,
        needle: "tabel",
        position: "2",
    },
    Case {
        name: "a text where a number belongs names the key",
        config: Config::Job(|f| f.job().set("replication.poll_interval_sec", "soon")),
        args: ONCE,
        code: 2,
        needle: "poll_interval_sec",
        position: "2",
    },
    Case {
        name: "a list where a number belongs names the key",
        config: Config::Job(|f| f.job().set("replication.sql_source.limit", json!([10]))),
        args: ONCE,
        code: 2,
        needle: "limit",
        position: "2",
    },
    Case {
        name: "an unknown URI scheme is named",
        config: Config::Job(|f| {
            let mut job = f.job();
            job.source.uri = format!("oracle://scott@db.example/{}", f.db.display());
            job
        }),
        args: ONCE,
        code: 2,
        needle: "oracle",
        position: "2",
    },
];

/// Source tables the job cannot replicate: exit 2, the message naming the table or column.
const UNUSABLE_TABLES: &[Case] = &[
    Case {
        name: "an unknown table is named",
        config: Config::Job(|f| {
            let mut job = f.job();
            job.source.table = "nosuch".into();
            job
        }),
        args: ONCE,
        code: 2,
        needle: "nosuch",
        position: "2",
    },
    Case {
        name: "a table whose primary key is text names the key",
        config: Config::Job(|f| {
            let mut job = f.job();
            job.source.table = "s".into();
            job
        }),
        args: ONCE,
        code: 2,
        needle: "id",
        position: "0",
    },
    Case {
        name: "a text column configured as the key is named",
        config: Config::Job(|f| {
            let mut job = f.job();
            job.source.primary_key = "v".into();
            job
        }),
        args: ONCE,
        code: 2,
        needle: "v",
        position: "2",
    },
    Case {
        name: "a field that is no column is named",
        config: Config::Job(|f| {
            let mut job = f.job();
            job.source.fields = Some(vec!["v".into(), "nosuch".into()]);
            job
        }),
        args: ONCE,
        code: 2,
        needle: "nosuch",
        position: "2",
    },
];

/// Services not there at start-up: exit 3, the message naming the address.
const UNREACHABLE_SERVICES: &[Case] = &[
    Case {
        name: "an unreachable database is named by its address, without the password",
        config: Config::Job(unreachable_database),
        args: ONCE,
        code: 3,
        needle: "127.0.0.1:1",
        position: "2",
    },
    Case {
        name: "an unreachable database with logging on is still one line, without the password",
        config: Config::Job(unreachable_database),
        args: &["--config", "CONFIG", "--once", "-v"],
        code: 3,
        needle: "127.0.0.1:1",
        position: "2",
    },
    Case {
        // The real Redis is not involved; its key must stay as it is all the same.
        name: "an unreachable redis is named by its address",
        config: Config::Job(|f| f.job().redis("127.0.0.1:1")),
        args: ONCE,
        code: 3,
        needle: "127.0.0.1:1",
        position: "2",
    },
    Case {
        name: "an unreachable broker is named by its address",
        config: Config::Job(|f| f.job().brokers("127.0.0.1:1")),
        args: ONCE,
        code: 3,
        needle: "127.0.0.1:1",
        position: "2",
    },
];

/// A job whose target or stored position cannot be used: exit 2, the message naming it.
const UNUSABLE_TARGETS: &[Case] = &[
    Case {
        name: "a topic that does not exist is named",
        config: Config::Job(|f| {
            let mut job = f.job();
            job.kafka.topic = unique("no_such_topic");
            job
        }),
        args: ONCE,
        code: 2,
        needle: "TOPIC",
        position: "2",
    },
    Case {
        name: "a stored position that is no integer is quoted",
        config: Config::Job(|f| f.job()),
        args: ONCE,
        code: 2,
        needle: "abc",
        position: "abc",
    },
];

/// The fixture's job reading a PostgreSQL that is not there, the password in its URI.
fn unreachable_database(f: &Fixture) -> JobConfig {
    let mut job = f.job();
    job.source.uri = format!("postgresql://repliqate:{SECRET}@127.0.0.1:1/repliqate");
    job
}

/// Runs every case of `cases` on a fixture of its own, checking each (see [`Case`]).
fn expect_failures(cases: &[Case]) {
    let f = Fixture::new();
    for case in cases {
        let (path, job) = match case.config {
            Config::Missing => {
                let path = f.dir.path().join("no-such-config.yaml");
                (path.to_str().unwrap().to_string(), f.job())
            }
            Config::Job(bend) => {
                let job = bend(&f);
                (f.write(&job), job)
            }
        };
        let args: Vec<&str> = case
            .args
            .iter()
            .map(|a| if *a == "CONFIG" { path.as_str() } else { a })
            .collect();
        let needle = case.needle.replace("TOPIC", &job.kafka.topic);
        expect_failure(
            case.name,
            &args,
            case.code,
            &needle,
            &job.key(),
            case.position,
        );
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
fn bad_configs_exit_2_with_one_line_naming_the_file_key_or_value() {
    expect_failures(BAD_CONFIGS);
}

#[test]
fn unusable_source_tables_exit_2_with_one_line_naming_the_table_or_column() {
    expect_failures(UNUSABLE_TABLES);
}

#[test]
fn unreachable_services_exit_3_with_one_line_naming_the_address() {
    expect_failures(UNREACHABLE_SERVICES);
}

#[test]
fn a_missing_topic_or_a_corrupt_position_exits_2_with_one_line_naming_it() {
    expect_failures(UNUSABLE_TARGETS);
}

#[test]
fn version_prints_the_name_and_version_on_stdout_and_exits_0() {
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
