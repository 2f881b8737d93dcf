//! `log_format`: with `json` every stderr line of a run is one JSON object (time, level, target,
//! message and the line's fields) and the batch lines' numbers are what was replicated, ids above
//! i64 included; `text` lines stay as they were, without the fields; `-v` and `RUST_LOG` set the
//! level in both formats.

mod common;

use std::process::Output;
use std::time::Duration;

use common::daemon::{assert_exit, run_with_env};
use common::db::{Db, TableGuard};
use common::env::{stack_job, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, create_topic};
use serde_json::{json, Value};

/// A SQLite table `events` of `rows` rows in `dir` and a job replicating it in batches of
/// `limit` to a new topic, its position in a state file.
fn sqlite_job(dir: &TempDir, what: &str, rows: u64, limit: u64) -> JobConfig {
    let db = Db::Sqlite(dir.path().join("source.db"));
    db.create_filled("events", rows);
    let job = stack_job(what, &db.uri(), "events")
        .state_file(dir.path().join("position"))
        .limit(limit);
    create_topic(&broker(), &job.kafka.topic, 1);
    job
}

/// `repliqate --once ARGS…` on `job`, with `env` added; checks exit 0.
fn run_once(dir: &TempDir, job: &JobConfig, args: &[&str], env: &[(&str, String)]) -> Output {
    let config = dir.write("config.yaml", &job.yaml());
    let mut all = vec!["--config", config.to_str().unwrap(), "--once"];
    all.extend(args);
    let output = run_with_env(&all, env, Duration::from_secs(60));
    assert_exit(&output, 0, "repliqate --once");
    output
}

/// Every stderr line as a JSON object; panics naming a line that is not one, or lacks one of
/// the four fixed fields.
fn json_lines(output: &Output) -> Vec<Value> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.trim().is_empty(), "nothing was logged");
    stderr
        .lines()
        .map(|line| {
            let object: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\nstderr:\n{stderr}"));
            assert!(object.is_object(), "not a JSON object: {line}");
            for key in ["time", "level", "target", "message"] {
                assert!(object[key].is_string(), "no string {key} in {line}");
            }
            // RFC 3339 in UTC with milliseconds: 2026-12-01T19:36:37.123Z.
            let time = object["time"].as_str().unwrap().as_bytes();
            assert!(
                time.len() == 24
                    && time[10] == b'T'
                    && time[19] == b'.'
                    && time[23] == b'Z'
                    && time[20..23].iter().all(u8::is_ascii_digit),
                "time is not RFC 3339 UTC with milliseconds: {line}"
            );
            object
        })
        .collect()
}

/// The batch lines' `(rows, first_id, last_id)`, with their ms fields checked to be numbers.
fn batches(lines: &[Value]) -> Vec<(u64, Value, Value)> {
    lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap().starts_with("replicated "))
        .map(|l| {
            for key in ["read_ms", "publish_ms"] {
                assert!(l[key].is_u64(), "{key} is not a number: {l:?}");
            }
            assert_eq!(l["level"], "INFO");
            assert_eq!(l["target"], "repliqate::replicator");
            let rows = l["rows"].as_u64().unwrap_or_else(|| panic!("rows: {l:?}"));
            (rows, l["first_id"].clone(), l["last_id"].clone())
        })
        .collect()
}

#[test]
fn json_lines_parse_and_carry_each_batch_s_numbers() {
    let dir = TempDir::new("logs_json");
    let job = sqlite_job(&dir, "logs_json", 25, 10).set("log_format", "json");
    let output = run_once(&dir, &job, &["-vvv"], &[]);
    let lines = json_lines(&output);
    assert_eq!(
        batches(&lines),
        [
            (10, json!(1), json!(10)),
            (10, json!(11), json!(20)),
            (5, json!(21), json!(25)),
        ]
    );
    // -vvv: debug lines too, the commits with their position.
    let commits: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("committed position")
        })
        .map(|l| &l["position"])
        .collect();
    assert_eq!(commits, [&json!(10), &json!(20), &json!(25)]);
    assert!(lines.iter().any(|l| l["level"] == "DEBUG"));
    assert!(lines.iter().any(|l| l["state"] == "active"));
}

#[test]
fn json_ids_above_i64_are_exact() {
    let db = Db::MariaDb;
    let table = unique("logs_u64");
    let _table = TableGuard::new(&db, &table);
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(10));
         INSERT INTO {table} VALUES (18446744073709551613, 'a'), (18446744073709551614, 'b'),
             (18446744073709551615, 'c')"
    ));
    let dir = TempDir::new("logs_u64");
    let job = stack_job("logs_u64", &db.uri(), &table)
        .state_file(dir.path().join("position"))
        .set("log_format", "json")
        // The new job's first rows are not held waiting for transactions below them.
        .set("replication.sql_source.gap_timeout_sec", 0);
    create_topic(&broker(), &job.kafka.topic, 1);
    let output = run_once(&dir, &job, &["-vv"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#""first_id":18446744073709551613,"last_id":18446744073709551615"#),
        "{stderr}"
    );
    assert_eq!(
        batches(&json_lines(&output)),
        [(3, json!(18446744073709551613u64), json!(u64::MAX))]
    );
}

#[test]
fn rust_log_sets_the_level_in_json_too() {
    let dir = TempDir::new("logs_rust_log");
    let job = sqlite_job(&dir, "logs_rust_log", 3, 10).set("log_format", "json");
    // No -v: errors only, unless RUST_LOG says otherwise.
    let quiet = run_once(&dir, &job, &[], &[]);
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let dir2 = TempDir::new("logs_rust_log2");
    let job = sqlite_job(&dir2, "logs_rust_log2", 3, 10).set("log_format", "json");
    let output = run_once(
        &dir2,
        &job,
        &[],
        &[("RUST_LOG", "repliqate::replicator=info".to_string())],
    );
    let lines = json_lines(&output);
    assert_eq!(batches(&lines), [(3, json!(1), json!(3))]);
    assert!(
        lines.iter().all(|l| l["target"]
            .as_str()
            .unwrap()
            .starts_with("repliqate::replicator")),
        "only the module RUST_LOG names: {lines:?}"
    );
}

#[test]
fn text_lines_stay_as_they_were() {
    let dir = TempDir::new("logs_text");
    let job = sqlite_job(&dir, "logs_text", 3, 10);
    let output = run_once(&dir, &job, &["-vv"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let batch: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("replicated 3 rows"))
        .collect();
    assert_eq!(batch.len(), 1, "{stderr}");
    // `[time LEVEL target] message`, and no fields after the message.
    let line = batch[0];
    assert!(
        line.starts_with('[') && line.contains(" INFO  repliqate::replicator] "),
        "{line}"
    );
    assert!(
        line.ends_with(" ms)") && !line.contains("rows=") && !line.contains("first_id"),
        "{line}"
    );
    assert!(!stderr.lines().any(|l| l.starts_with('{')), "{stderr}");
}
