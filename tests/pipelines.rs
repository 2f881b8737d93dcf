//! A job of several pipelines in one process (`pipelines:` in the config), against the stack:
//! tables of SQLite, PostgreSQL and MariaDB, each to its own topic with its own position, read
//! back with librdkafka and the Redis position read with the redis crate; and a pipeline that
//! fails alone while the others replicate.

mod common;

use std::time::Duration;

use common::daemon::{assert_exit, run, Daemon};
use common::db::{sqlite_db, Db, TableGuard};
use common::endpoint::{endpoint, get, scrape};
use common::env::{stack_job, unique, TempDir};
use common::job::{position_key, JobConfig};
use common::kafka::{broker, create_topic, ids_in_topic};
use common::position::{redis_get, RedisKeyGuard};
use serde_json::{json, Value};

const PARTITIONS: i32 = 3;

/// Every id of `table` in `topic` exactly once, and the pipeline's position at its last id.
fn assert_replicated(job: &JobConfig, db: &Db, table: &str, topic: &str) {
    let ids = db.ids(table);
    let seen = ids_in_topic(&broker(), topic, PARTITIONS, ids.len());
    assert_eq!(seen.len(), ids.len(), "{table} → {topic}: distinct ids");
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "{table} → {topic}: id {id}");
    }
    let key = position_key(&job.name, table, topic);
    assert_eq!(
        redis_get(&key),
        Some(ids.last().unwrap().to_string()),
        "{table} → {topic}: the position"
    );
}

/// A job over SQLite tables, with `pipelines` to add; topics created, position keys cleaned up.
struct Job {
    config: JobConfig,
    /// (database, table, topic) of each pipeline.
    pipelines: Vec<(Db, String, String)>,
    _keys: Vec<RedisKeyGuard>,
}

impl Job {
    fn new(what: &str, sqlite: &Db) -> Job {
        // The shared source is the SQLite file; `table` and `topic` are the pipelines'.
        let config = stack_job(what, &sqlite.uri(), "unused");
        Job {
            config,
            pipelines: Vec::new(),
            _keys: Vec::new(),
        }
    }

    /// A pipeline of `table` in `db` (the shared SQLite file unless `db` is a server, given as
    /// an override of the shared `sql_source.uri`) to a new topic of its own.
    fn add(&mut self, db: Db, table: &str, rows: u64) {
        db.create_filled(table, rows);
        let topic = unique(&format!("pipelines_{table}"));
        create_topic(&broker(), &topic, PARTITIONS);
        let overrides = match db {
            Db::Sqlite(_) => Value::Null,
            _ => json!({ "sql_source": { "uri": db.uri() } }),
        };
        self.config = self.config.clone().pipeline(table, &topic, overrides);
        self._keys.push(RedisKeyGuard(position_key(
            &self.config.name,
            table,
            &topic,
        )));
        self.pipelines.push((db, table.to_owned(), topic));
    }
}

#[test]
fn one_process_replicates_each_table_to_its_topic_with_its_own_position() {
    let (_dir, sqlite) = sqlite_db("SELECT 1");
    let mut job = Job::new("pipelines", &sqlite);
    let mut guards = Vec::new();
    for (i, rows) in [1500, 1, 300].into_iter().enumerate() {
        job.add(Db::Sqlite(sqlite.path().to_owned()), &format!("t{i}"), rows);
    }
    for (db, rows) in [(Db::Postgres, 2500), (Db::MariaDb, 700)] {
        let table = unique("pipelines");
        guards.push(TableGuard::new(&db, &table));
        job.add(db, &table, rows);
    }
    let job_config = job.config.clone().limit(1000);
    let dir = TempDir::new("pipelines");
    let config = dir.write("config.yaml", &job_config.yaml());
    let output = run(
        &["--config", config.to_str().unwrap(), "--once", "-vv"],
        Duration::from_secs(300),
    );
    assert_exit(&output, 0, "repliqate --once over five pipelines");
    // Each pipeline's lines name it.
    let log = String::from_utf8_lossy(&output.stderr);
    for (_, table, topic) in &job.pipelines {
        let needle = format!("{table} → {topic}: replicated");
        assert!(log.contains(&needle), "no `{needle}` in:\n{log}");
    }
    for (db, table, topic) in &job.pipelines {
        assert_replicated(&job_config, db, table, topic);
    }
    // Each position is its own: another run has nothing to publish.
    let again = run(
        &["--config", config.to_str().unwrap(), "--once", "-vv"],
        Duration::from_secs(120),
    );
    assert_exit(&again, 0, "a second repliqate --once");
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(!log.contains("replicated"), "published again:\n{log}");
}

#[test]
fn a_pipeline_whose_table_is_missing_fails_alone_and_starts_once_the_table_exists() {
    let (_dir, sqlite) = sqlite_db("SELECT 1");
    let mut job = Job::new("pipelines_broken", &sqlite);
    job.add(Db::Sqlite(sqlite.path().to_owned()), "present", 400);
    let missing_topic = unique("pipelines_missing");
    create_topic(&broker(), &missing_topic, PARTITIONS);
    let config_job = job
        .config
        .clone()
        .pipeline("missing", &missing_topic, Value::Null)
        .set("metrics_addr", "127.0.0.1:0")
        .set("replication.retry_backoff_max_sec", 1);
    let _missing_key = RedisKeyGuard(position_key(&config_job.name, "missing", &missing_topic));
    let dir = TempDir::new("pipelines_broken");
    let config = dir.write("config.yaml", &config_job.yaml());

    // --once: the present table is replicated, and the exit says which pipeline failed.
    let output = run(
        &["--config", config.to_str().unwrap(), "--once"],
        Duration::from_secs(120),
    );
    assert_exit(&output, 1, "repliqate --once with a missing table");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "1 of 2 pipelines failed: missing → {missing_topic}: "
        )),
        "{stderr}"
    );
    let (db, table, topic) = &job.pipelines[0];
    assert_replicated(&config_job, db, table, topic);

    // Running: the other pipeline is ready, the endpoint names the failing one, and once the
    // table exists the pipeline starts and replicates it.
    let mut daemon = Daemon::start(&config, &["-vv"], dir.path().join("daemon.log"));
    let addr = endpoint(&mut daemon);
    daemon.expect_log("present → ", Duration::from_secs(30));
    let waited = std::time::Instant::now();
    let reason = loop {
        let (code, body) = get(&addr, "/readyz");
        if code == 503 && body.contains("missing → ") && body.contains("source failing") {
            break body;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "/readyz: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        reason.starts_with("1 of 2 pipelines not ready: missing → "),
        "{reason}"
    );
    let samples = scrape(&addr);
    let value = |state: &str| {
        samples
            .iter()
            .find(|s| s.name == "repliqate_pipelines" && s.labels["state"] == state)
            .map(|s| s.value)
    };
    assert_eq!(value("known"), Some(2.0));
    assert_eq!(value("failing"), Some(1.0));

    db.create_filled("missing", 250);
    daemon.expect_log(
        &format!("missing → {missing_topic}: replicated 250 rows"),
        Duration::from_secs(60),
    );
    let waited = std::time::Instant::now();
    loop {
        let (code, body) = get(&addr, "/readyz");
        if code == 200 {
            assert_eq!(body.trim(), "all 2 pipelines ready");
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "/readyz: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", daemon.log_text());
    assert_replicated(&config_job, db, "missing", &missing_topic);
    assert_replicated(&config_job, db, table, topic);
}

#[test]
fn check_reports_each_pipeline_and_position_changes_the_one_named() {
    let (_dir, sqlite) = sqlite_db("SELECT 1");
    let mut job = Job::new("pipelines_cli", &sqlite);
    job.add(Db::Sqlite(sqlite.path().to_owned()), "first", 30);
    job.add(Db::Sqlite(sqlite.path().to_owned()), "second", 20);
    let dir = TempDir::new("pipelines_cli");
    let config = dir.write("config.yaml", &job.config.yaml());
    let config = config.to_str().unwrap();
    let (first_topic, second_topic) = (&job.pipelines[0].2, &job.pipelines[1].2);
    let limit = Duration::from_secs(60);

    let output = run(&["check", "--config", config], limit);
    assert_exit(&output, 0, "check of two pipelines");
    let text = String::from_utf8_lossy(&output.stdout);
    for (table, topic) in [("first", first_topic), ("second", second_topic)] {
        let head = format!("pipeline {table} → {topic}\n✓ config:");
        assert!(text.contains(&head), "no `{head}` in:\n{text}");
    }
    assert_eq!(text.matches("✓ kafka topic: ").count(), 2, "{text}");
    let output = run(&["check", "--config", config, "--json"], limit);
    assert_exit(&output, 0, "check --json of two pipelines");
    let docs: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pipeline"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("first → {first_topic}"),
            format!("second → {second_topic}")
        ]
    );
    assert!(docs
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["ok"] == json!(true)));

    // A change names its pipeline; without one it is refused, naming the choices.
    let output = run(
        &["position", "set", "7", "--config", config, "--yes"],
        limit,
    );
    assert_exit(&output, 2, "position set without --table");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "2 pipelines match; a change is to one pipeline's position: name it with --table \
             (and --topic where a table goes to several topics): first → {first_topic}, \
             second → {second_topic}"
        )),
        "{stderr}"
    );
    let output = run(
        &[
            "position", "set", "7", "--config", config, "--table", "second", "--yes",
        ],
        limit,
    );
    assert_exit(&output, 0, "position set --table second");
    let output = run(
        &[
            "position", "set", "7", "--config", config, "--table", "third", "--yes",
        ],
        limit,
    );
    assert_exit(&output, 2, "position set --table third");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no pipeline of this job has table third"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        redis_get(&position_key(&job.config.name, "second", second_topic)),
        Some("7".into())
    );
    assert_eq!(
        redis_get(&position_key(&job.config.name, "first", first_topic)),
        None
    );

    // show lists every pipeline, or the one named.
    let output = run(&["position", "show", "--config", config, "--json"], limit);
    assert_exit(&output, 0, "position show --json of two pipelines");
    let docs: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(docs[0]["pipeline"], json!(format!("first → {first_topic}")));
    assert_eq!(docs[0]["position"], Value::Null);
    assert_eq!(docs[1]["position"], json!(7));
    let output = run(
        &["position", "show", "--config", config, "--table", "second"],
        limit,
    );
    assert_exit(&output, 0, "position show --table second");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("pipeline second → {second_topic}\njob ")),
        "{text}"
    );
    assert!(text.contains(": position 7 ("), "{text}");
}

#[test]
fn tables_by_pattern_are_found_at_start_and_as_they_appear_and_stopped_when_dropped() {
    let (_dir, sqlite) = sqlite_db("SELECT 1");
    let db = Db::Sqlite(sqlite.path().to_owned());
    for (table, rows) in [
        ("audit_a", 120),
        ("audit_b", 40),
        ("audit_tmp_x", 10),
        ("other", 5),
    ] {
        db.create_filled(table, rows);
    }
    let prefix = unique("pattern");
    let topic = |table: &str| format!("{prefix}.{table}");
    for table in ["audit_a", "audit_b", "audit_c", "audit_tmp_x", "other"] {
        create_topic(&broker(), &topic(table), PARTITIONS);
    }
    let job = stack_job("pipelines_pattern", &db.uri(), "unused")
        .pipeline_entry(json!({
            "tables": "audit\\_%",
            "exclude": ["audit\\_tmp%"],
            "topic": format!("{prefix}.{{table}}"),
        }))
        .set("replication.discover_interval_sec", 1)
        .set("metrics_addr", "127.0.0.1:0");
    let _keys: Vec<RedisKeyGuard> = ["audit_a", "audit_b", "audit_c"]
        .iter()
        .map(|t| RedisKeyGuard(position_key(&job.name, t, &topic(t))))
        .collect();
    let dir = TempDir::new("pipelines_pattern");
    let config = dir.write("config.yaml", &job.yaml());

    // check and position see the tables the pattern finds now, and only those.
    let output = run(
        &["check", "--config", config.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_exit(&output, 0, "check of a pattern");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("pipeline audit_a → {}\n", topic("audit_a"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("pipeline audit_b → {}\n", topic("audit_b"))),
        "{text}"
    );
    assert!(
        !text.contains("audit_tmp_x") && !text.contains("other →"),
        "{text}"
    );

    let mut daemon = Daemon::start(&config, &["-vv"], dir.path().join("daemon.log"));
    let addr = endpoint(&mut daemon);
    for (table, rows) in [("audit_a", 120), ("audit_b", 40)] {
        daemon.expect_log(
            &format!("{table} → {}: replicated {rows} rows", topic(table)),
            Duration::from_secs(60),
        );
    }
    // A table that appears while running gets its pipeline within the discover interval.
    db.create_filled("audit_c", 25);
    daemon.expect_log(
        "table audit_c is like audit\\_%: starting its pipeline",
        Duration::from_secs(30),
    );
    daemon.expect_log(
        &format!("audit_c → {}: replicated 25 rows", topic("audit_c")),
        Duration::from_secs(60),
    );
    // One that is dropped has its pipeline stopped, with one warning.
    db.exec("DROP TABLE audit_b");
    daemon.expect_log(
        "table audit_b is no longer like audit\\_% (dropped or renamed): stopping its pipeline",
        Duration::from_secs(30),
    );
    let waited = std::time::Instant::now();
    loop {
        let samples = scrape(&addr);
        let known = samples
            .iter()
            .find(|s| s.name == "repliqate_pipelines" && s.labels["state"] == "known")
            .map(|s| s.value);
        if known == Some(2.0) {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "known: {known:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", daemon.log_text());
    let log = daemon.log_text();
    assert_eq!(
        log.matches("table audit_b is no longer like").count(),
        1,
        "{log}"
    );
    assert!(
        !log.contains("audit_tmp_x →") && !log.contains("other →"),
        "{log}"
    );
    for table in ["audit_a", "audit_c"] {
        assert_replicated(&job, &db, table, &topic(table));
    }
}
