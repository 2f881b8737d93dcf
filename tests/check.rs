//! `repliqate check` against the local stack: a good job passes every check (text and JSON),
//! each broken dependency fails its own check with the daemon's one-line error and the daemon's
//! exit code (2 configuration, 3 unreachable; 2 when both), the checks that need a failed one
//! are skipped, and nothing is ever written: the position, the lease and the topic's end offsets
//! are as they were.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::daemon::{assert_exit, run};
use common::db::{Db, TableGuard};
use common::env::{pg_uri, stack_job, stack_var, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, create_topic, end_offsets};
use common::position::{
    hold_lease, lease_holder, lease_key, redis_del, redis_get, redis_set, RedisKeyGuard,
};
use common::secure::stack_tls;
use serde_json::{json, Value};

/// A job replicating SQLite table `t` (ids 1..=3) to a topic of one partition that exists.
struct Fixture {
    dir: TempDir,
    job: JobConfig,
    _key: RedisKeyGuard,
    _lease: RedisKeyGuard,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("check");
        let db = dir.path().join("source.db");
        rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.execute_batch(
                    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
                     INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');",
                )
            })
            .expect("create the source table");
        let job = stack_job("check", &format!("sqlite:///{}", db.display()), "t")
            .connect_timeouts(Duration::from_secs(2))
            .kafka_timeouts(Duration::from_secs(3), Duration::from_secs(3));
        create_topic(&broker(), &job.kafka.topic, 1);
        Fixture {
            _key: RedisKeyGuard(job.key()),
            _lease: RedisKeyGuard(lease_key(&job.key())),
            dir,
            job,
        }
    }

    fn write(&self, job: &JobConfig) -> PathBuf {
        self.dir.write("config.yaml", &job.yaml())
    }
}

fn check(config: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec!["check", "--config", config.to_str().unwrap()];
    args.extend(extra);
    run(&args, Duration::from_secs(90))
}

/// The report's lines, after checking there is no panic and nothing on stderr.
fn lines(output: &Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains("panicked"), "panic:\n{stdout}");
    assert!(stderr.trim().is_empty(), "check wrote to stderr:\n{stderr}");
    stdout.lines().map(str::to_string).collect()
}

/// The line of check `name` (the text after `✓ `, `✗ ` or `- `); fails naming what is there.
fn line<'a>(lines: &'a [String], mark: &str, name: &str) -> &'a str {
    let prefix = format!("{mark} {name}: ");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?}…; the report:\n{}", lines.join("\n")))
}

/// Every check of a job whose dependencies all answer, in order (and a line per broker).
const EVERY: [&str; 8] = [
    "config",
    "source",
    "source rows",
    "position store",
    "lease",
    "kafka topic",
    "start",
    "rows behind",
];

/// Asserts the report's shape: exit `code`; these checks failed (with a reason containing the
/// needle) or were skipped, every other one of `EVERY` passed, and there is no other line but
/// the brokers'. Returns the lines.
fn expect(output: &Output, code: i32, failed: &[(&str, &str)], skipped: &[&str]) -> Vec<String> {
    let lines = lines(output);
    assert_exit(output, code, "check");
    let mut passed: Vec<&str> = EVERY.to_vec();
    passed.retain(|n| !skipped.contains(n) && !failed.iter().any(|(f, _)| f == n));
    // A bad config stops everything.
    if failed.iter().any(|(f, _)| *f == "config") {
        passed.clear();
    }
    for name in &passed {
        line(&lines, "✓", name);
    }
    for (name, needle) in failed {
        let reason = line(&lines, "✗", name);
        assert!(
            reason.contains(needle),
            "✗ {name} should say {needle:?}: {reason}"
        );
    }
    for name in skipped {
        let reason = line(&lines, "-", name);
        assert!(reason.starts_with("skipped (needs "), "{name}: {reason}");
    }
    // Besides one line per broker reached, whose number depends on the cluster.
    let others = lines
        .iter()
        .filter(|l| !l.starts_with("✓ kafka broker "))
        .count();
    assert_eq!(
        others,
        passed.len() + failed.len() + skipped.len(),
        "other lines than expected:\n{}",
        lines.join("\n")
    );
    lines
}

#[test]
fn a_good_job_passes_every_check_and_writes_nothing() {
    let f = Fixture::new();
    let config = f.write(&f.job);
    let key = f.job.key();
    redis_set(&key, "2");
    let offsets = end_offsets(&broker(), &f.job.kafka.topic, 1);

    let output = check(&config, &[]);
    expect(&output, 0, &[], &[]);
    let lines = lines(&output);
    assert!(line(&lines, "✓", "source").contains("columns id, v"));
    assert_eq!(
        line(&lines, "✓", "source rows"),
        "highest id 3; 3 rows (count(*))"
    );
    assert!(line(&lines, "✓", "position store").starts_with("position 2 in redis"));
    assert_eq!(line(&lines, "✓", "lease"), "nobody holds it");
    let broker_line = lines
        .iter()
        .find(|l| l.starts_with("✓ kafka broker 1 ("))
        .expect("a line for the broker");
    assert!(
        broker_line.contains("TCP; Produce v") && broker_line.contains("InitProducerId v"),
        "{broker_line}"
    );
    assert_eq!(
        line(&lines, "✓", "kafka topic"),
        format!("{}: 1 partitions", f.job.kafka.topic)
    );
    assert_eq!(
        line(&lines, "✓", "start"),
        "after id 2, the stored position"
    );
    assert!(line(&lines, "✓", "rows behind").starts_with("1 (highest id 3 − position 2"));

    // The same for machines, and another instance's lease shown but not touched.
    hold_lease(&key, "other-host-42-beef", Duration::from_secs(30));
    let output = check(&config, &["--json"]);
    assert_exit(&output, 0, "check --json");
    let doc: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], json!(true));
    assert_eq!(doc["exit_code"], json!(0));
    let summary = &doc["summary"];
    assert_eq!(summary["highest_id"], json!(3));
    assert_eq!(summary["rows"], json!(3));
    assert_eq!(summary["position"], json!(2));
    assert_eq!(summary["rows_behind"], json!(1));
    assert_eq!(summary["partitions"], json!(1));
    assert_eq!(summary["holder"], json!("other-host-42-beef"));
    assert!(summary["age_sec"].as_f64().expect("age") < 5.0, "{summary}");
    let brokers = summary["brokers"].as_array().expect("brokers[]");
    assert_eq!(brokers.len(), 1, "{summary}");
    assert_eq!(brokers[0]["ok"], json!(true));
    assert_eq!(brokers[0]["security"], json!("TCP"));
    assert!(brokers[0]["versions"]["Produce"].as_i64().expect("Produce") >= 3);
    assert!(
        brokers[0]["versions"]["Metadata"]
            .as_i64()
            .expect("Metadata")
            >= 4
    );
    let checks = doc["checks"].as_array().expect("checks[]");
    assert!(checks.iter().all(|c| c["status"] == json!("ok")), "{doc}");
    let lease = checks.iter().find(|c| c["name"] == json!("lease")).unwrap();
    assert!(
        lease["detail"]
            .as_str()
            .unwrap()
            .starts_with("held by other-host-42-beef, renewed about"),
        "{lease}"
    );

    assert_eq!(redis_get(&key).as_deref(), Some("2"), "the position moved");
    let (holder, ttl) = lease_holder(&key).expect("the other instance's lease");
    assert_eq!(holder, "other-host-42-beef");
    assert!(ttl <= 30_000, "the lease was renewed: {ttl} ms");
    redis_del(&lease_key(&key));
    assert_eq!(
        end_offsets(&broker(), &f.job.kafka.topic, 1),
        offsets,
        "check published to the topic"
    );
}

#[test]
fn a_bad_config_is_the_only_line() {
    let f = Fixture::new();
    let config = f.write(&f.job.clone().set("replication.sql_source.tabel", "t"));
    let output = check(&config, &[]);
    expect(&output, 2, &[("config", "tabel")], &[]);
    let missing = f.dir.path().join("no-such.yaml");
    expect(&check(&missing, &[]), 2, &[("config", "no-such.yaml")], &[]);
}

#[test]
fn an_unreachable_source_is_exit_3_and_the_rest_is_still_checked() {
    let f = Fixture::new();
    let mut job = f.job.clone();
    job.source.uri = "postgresql://repliqate:repliqate-secret@127.0.0.1:1/repliqate".into();
    redis_set(&job.key(), "2");
    let output = check(&f.write(&job), &[]);
    expect(
        &output,
        3,
        &[("source", "127.0.0.1:1")],
        &["source rows", "rows behind"],
    );
    let all = String::from_utf8_lossy(&output.stdout);
    assert!(!all.contains("repliqate-secret"), "a password:\n{all}");

    // With a configuration error beside it, the code is configuration's.
    job.kafka.topic = unique("no_such_topic");
    let _key = RedisKeyGuard(job.key());
    redis_set(&job.key(), "2");
    let output = check(&f.write(&job), &[]);
    expect(
        &output,
        2,
        &[("source", "127.0.0.1:1"), ("kafka topic", "does not exist")],
        &["source rows", "rows behind"],
    );
}

#[test]
fn a_missing_table_or_a_refused_key_type_is_exit_2() {
    let f = Fixture::new();
    let mut job = f.job.clone();
    job.source.table = "nosuch".into();
    let _key = RedisKeyGuard(job.key());
    let skipped = ["source rows", "rows behind"];
    expect(
        &check(&f.write(&job), &[]),
        2,
        &[("source", "nosuch")],
        &skipped,
    );

    // PostgreSQL publishes every column type; a key that is not an integer is still refused.
    let table = unique("check_textkey");
    let _table = TableGuard::new(&Db::Postgres, &table);
    Db::Postgres.exec(&format!(
        "CREATE TABLE {table} (id text PRIMARY KEY, tags text[])"
    ));
    let mut job = f.job.clone();
    job.source.uri = pg_uri();
    job.source.table = table;
    let _key = RedisKeyGuard(job.key());
    expect(
        &check(&f.write(&job), &[]),
        2,
        &[(
            "source",
            "primary key id has type text; expected smallint, integer or bigint",
        )],
        &skipped,
    );
}

#[test]
fn an_unreachable_redis_is_exit_3() {
    let f = Fixture::new();
    let output = check(&f.write(&f.job.clone().redis("127.0.0.1:1")), &[]);
    expect(
        &output,
        3,
        &[("position store", "127.0.0.1:1")],
        &["lease", "start", "rows behind"],
    );
}

#[test]
fn an_unreachable_kafka_is_exit_3() {
    let f = Fixture::new();
    redis_set(&f.job.key(), "2");
    let output = check(&f.write(&f.job.clone().brokers("127.0.0.1:1")), &[]);
    // A stored position needs no look at the topic, so the start is known.
    expect(
        &output,
        3,
        &[("kafka brokers", "127.0.0.1:1")],
        &["kafka topic"],
    );
    // Without a position, where the job starts depends on the topic.
    redis_del(&f.job.key());
    let output = check(&f.write(&f.job.clone().brokers("127.0.0.1:1")), &[]);
    expect(
        &output,
        3,
        &[("kafka brokers", "127.0.0.1:1")],
        &["kafka topic", "start", "rows behind"],
    );
}

#[test]
fn a_missing_topic_is_exit_2() {
    let f = Fixture::new();
    let mut job = f.job.clone();
    job.kafka.topic = unique("no_such_topic");
    let _key = RedisKeyGuard(job.key());
    let output = check(&f.write(&job), &[]);
    expect(
        &output,
        2,
        &[("kafka topic", &job.kafka.topic)],
        &["start", "rows behind"],
    );
    // The broker was reached all the same.
    assert!(lines(&output)
        .iter()
        .any(|l| l.starts_with("✓ kafka broker 1 (")));
}

/// A job on one of the broker's SASL listeners, with these credentials.
fn sasl_job(f: &Fixture, listener: &str, tls: bool, password: &str) -> JobConfig {
    let mut properties = serde_json::Map::new();
    let protocol = if tls { "SASL_SSL" } else { "SASL_PLAINTEXT" };
    properties.insert("security.protocol".into(), json!(protocol));
    properties.insert("sasl.mechanism".into(), json!("PLAIN"));
    properties.insert(
        "sasl.username".into(),
        json!(stack_var("REPLIQATE_TEST_KAFKA_PLAIN_USER")),
    );
    properties.insert("sasl.password".into(), json!(password));
    if tls {
        properties.insert("ssl.ca.location".into(), json!(stack_tls("ca.pem")));
    }
    f.job.clone().brokers(&stack_var(listener)).set(
        "replication.kafka_target.properties",
        Value::Object(properties),
    )
}

#[test]
fn the_security_handshake_is_shown_and_a_wrong_password_is_exit_2() {
    let f = Fixture::new();
    let password = stack_var("REPLIQATE_TEST_KAFKA_PLAIN_PASSWORD");
    let job = sasl_job(&f, "REPLIQATE_TEST_KAFKA_SASL_SSL", true, &password);
    let output = check(&f.write(&job), &[]);
    let lines = lines(&output);
    assert_exit(&output, 0, "check over SASL_SSL");
    let broker_line = lines
        .iter()
        .find(|l| l.starts_with("✓ kafka broker "))
        .expect("a broker line");
    for shown in [
        "TLSv1_",
        "SASL PLAIN",
        "SaslHandshake v1",
        "SaslAuthenticate v",
    ] {
        assert!(broker_line.contains(shown), "{shown}: {broker_line}");
    }

    let wrong = format!("wrong-{}", unique("pw"));
    let job = sasl_job(&f, "REPLIQATE_TEST_KAFKA_SASL_PLAINTEXT", false, &wrong);
    let output = check(&f.write(&job), &[]);
    expect(
        &output,
        2,
        &[("kafka brokers", "authentication")],
        &["kafka topic", "start", "rows behind"],
    );
    let all = String::from_utf8_lossy(&output.stdout);
    assert!(
        !all.contains(&wrong),
        "the password is in the report:\n{all}"
    );
}

#[test]
fn a_topic_with_records_and_no_position_is_exit_2_unless_initial_position() {
    let f = Fixture::new();
    let config = f.write(&f.job);
    let key = f.job.key();
    let replicated = run(
        &["--config", config.to_str().unwrap(), "--once"],
        Duration::from_secs(60),
    );
    assert_exit(&replicated, 0, "filling the topic");
    redis_del(&key);
    let offsets = end_offsets(&broker(), &f.job.kafka.topic, 1);
    assert_eq!(offsets, [3]);

    let output = check(&config, &[]);
    expect(
        &output,
        2,
        &[("start", "--initial-position")],
        &["rows behind"],
    );

    let output = check(&config, &["--initial-position", "1"]);
    expect(&output, 0, &[], &[]);
    let lines = lines(&output);
    assert!(line(&lines, "✓", "start").starts_with("after 1: no position is stored"));
    assert!(line(&lines, "✓", "rows behind").starts_with("2 ("));

    assert_eq!(redis_get(&key), None, "check stored a position");
    assert_eq!(lease_holder(&key), None, "check took the lease");
    assert_eq!(end_offsets(&broker(), &f.job.kafka.topic, 1), offsets);
}

#[test]
fn each_command_has_help_and_the_daemon_flags_stay_the_daemons() {
    for args in [
        &["check", "--help"][..],
        &["position", "--help"],
        &["position", "show", "--help"],
        &["position", "set", "--help"],
        &["position", "reset", "--help"],
    ] {
        let output = run(args, Duration::from_secs(10));
        assert_exit(&output, 0, &args.join(" "));
        let usage = format!("Usage: repliqate {}", args[..args.len() - 1].join(" "));
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with(&usage),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let output = run(&["--once", "check"], Duration::from_secs(10));
    assert_exit(&output, 2, "--once check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("repliqate: --once and --initial-position before a command")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn the_brokers_are_the_metadatas_not_the_bootstrap_address() {
    let f = Fixture::new();
    redis_set(&f.job.key(), "3");
    // A bootstrap address that is only a forwarder, as a load balancer in front of a cluster.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the forwarder");
    let forwarder = common::proxy::start(listener, broker());
    let output = check(&f.write(&f.job.clone().brokers(&forwarder.addr)), &[]);
    let lines = expect(&output, 0, &[], &[]);
    let brokers: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("✓ kafka broker "))
        .collect();
    assert_eq!(brokers.len(), 1, "{lines:?}");
    assert!(
        brokers[0].starts_with(&format!("✓ kafka broker 1 ({}): TCP; Produce v", broker())),
        "the broker the metadata names, dialled: {}",
        brokers[0]
    );
}

/// Properties of other Kafka clients pasted in with the rest are named on the config line, each
/// with why it is ignored, in the text report and in `--json`'s warnings; the job still passes.
#[test]
fn ignored_properties_are_shown_with_why() {
    let f = Fixture::new();
    let job = f.job.clone().set(
        "replication.kafka_target.properties",
        json!({"session.timeout.ms": 45000, "schema.registry.url": "https://sr.example"}),
    );
    let config = f.write(&job);
    let lines = expect(&check(&config, &[]), 0, &[], &[]);
    let config_line = line(&lines, "✓", "config");
    for expected in [
        "warning: kafka: repliqate.replication.kafka_target.properties.session.timeout.ms is \
         ignored: a Kafka consumer property; repliqate only produces",
        "warning: kafka: repliqate.replication.kafka_target.properties.schema.registry.url is \
         ignored: a Schema Registry client property; repliqate only produces",
    ] {
        assert!(config_line.contains(expected), "{expected}:\n{config_line}");
    }
    let output = check(&config, &["--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let text = report.to_string();
    assert!(
        text.contains("session.timeout.ms is ignored")
            && text.contains("schema.registry.url is ignored"),
        "{text}"
    );
}
