//! `repliqate position show|set|reset` against the local stack: a set and show round trip after
//! which the daemon continues from the new position (read back from the topic); a change
//! refused while another instance holds the job's lease, and with `--force` the running daemon
//! fenced and resuming from the new position (a replay: the rows after it published again);
//! no change without a terminal or `--yes`, and the question answered on a pseudo-terminal;
//! `reset`, after which the daemon treats the job as new; and a state file, whose daemon holds a
//! lock that a second daemon and `position set` both see.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::daemon::{assert_exit, bin, run, tail, wait_for_position, Daemon};
use common::env::{stack_job, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, create_topic, end_offsets, ids_in_topic};
use common::position::{lease_key, redis_get, redis_set, wait_position, RedisKeyGuard};
use serde_json::{json, Value};

/// A job replicating SQLite table `t` (ids 1..=`rows`) to a topic of one partition.
struct Fixture {
    dir: TempDir,
    db: PathBuf,
    job: JobConfig,
    config: PathBuf,
    _key: RedisKeyGuard,
    _lease: RedisKeyGuard,
}

impl Fixture {
    fn new(rows: i64, job: impl FnOnce(JobConfig) -> JobConfig) -> Fixture {
        let dir = TempDir::new("position");
        let db = dir.path().join("source.db");
        let conn = rusqlite::Connection::open(&db).expect("open sqlite");
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
            .expect("create table");
        for id in 1..=rows {
            conn.execute("INSERT INTO t VALUES (?1, 'v')", [id])
                .expect("insert");
        }
        let job = job(
            stack_job("position", &format!("sqlite:///{}", db.display()), "t")
                .poll_interval(Duration::from_millis(500))
                .kafka_timeouts(Duration::from_secs(5), Duration::from_secs(10)),
        );
        create_topic(&broker(), &job.kafka.topic, 1);
        let config = dir.write("config.yaml", &job.yaml());
        Fixture {
            _key: RedisKeyGuard(job.key()),
            _lease: RedisKeyGuard(lease_key(&job.key())),
            dir,
            db,
            job,
            config,
        }
    }

    fn config(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// `repliqate position ARGS… --config CONFIG`, stdin not a terminal.
    fn position(&self, args: &[&str]) -> Output {
        let mut all = vec!["position"];
        all.extend(args);
        all.extend(["--config", self.config()]);
        run(&all, Duration::from_secs(60))
    }

    fn once(&self, extra: &[&str]) -> Output {
        let mut args = vec!["--config", self.config(), "--once"];
        args.extend(extra);
        run(&args, Duration::from_secs(60))
    }

    fn insert(&self, ids: std::ops::RangeInclusive<i64>) {
        let conn = rusqlite::Connection::open(&self.db).expect("open sqlite");
        for id in ids {
            conn.execute("INSERT INTO t VALUES (?1, 'v')", [id])
                .expect("insert");
        }
    }

    /// How often each id is in the topic, read back with librdkafka.
    fn published(&self, at_least: usize) -> Vec<(i64, usize)> {
        let mut ids: Vec<_> = ids_in_topic(&broker(), &self.job.kafka.topic, 1, at_least)
            .into_iter()
            .collect();
        ids.sort();
        ids
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts a refusal: exit `code`, one stderr line `repliqate: …` saying each of `needles`.
fn assert_refused(output: &Output, code: i32, what: &str, needles: &[&str]) {
    assert_exit(output, code, what);
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line expected:\n{err}");
    assert!(lines[0].starts_with("repliqate: "), "{what}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{what}: should say {needle:?}: {err}");
    }
}

#[test]
fn set_and_show_round_trip_then_the_daemon_resumes_after_it() {
    let f = Fixture::new(10, |j| j);
    let key = f.job.key();

    let output = f.position(&["set", "7", "--yes"]);
    assert_exit(&output, 0, "position set 7");
    let logged = stderr(&output);
    assert!(
        logged.starts_with(&format!(
            "repliqate: job {}: position none → 7 in redis",
            f.job.name
        )) && logged.contains("by host ")
            && logged.contains(" pid "),
        "the change is logged with old, new, job and who: {logged}"
    );
    assert_eq!(redis_get(&key).as_deref(), Some("7"));

    let shown = f.position(&["show"]);
    assert_exit(&shown, 0, "position show");
    assert_eq!(
        stdout(&shown).lines().collect::<Vec<_>>(),
        [
            format!(
                "job {}: position 7 (redis {} key {key})",
                f.job.name,
                common::env::redis_addr()
            ),
            "lease: nobody holds it".to_string()
        ]
    );
    let shown = f.position(&["show", "--json"]);
    let doc: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(doc["position"], json!(7));
    assert_eq!(doc["lease"], Value::Null);

    assert_exit(&f.once(&[]), 0, "the daemon after the set");
    assert_eq!(
        f.published(3),
        [(8, 1), (9, 1), (10, 1)],
        "the daemon resumes after the new position, and only there"
    );
    assert_eq!(redis_get(&key).as_deref(), Some("10"));

    // The extremes are positions; anything else is refused with one line and changes nothing.
    let output = run(
        &[
            "position",
            "set",
            "--config",
            f.config(),
            "--yes",
            "--",
            "-9223372036854775808",
        ],
        Duration::from_secs(60),
    );
    assert_exit(&output, 0, "position set i64::MIN");
    assert_eq!(redis_get(&key).as_deref(), Some("-9223372036854775808"));
    assert_exit(
        &f.position(&["set", "18446744073709551615", "--yes"]),
        0,
        "position set u64::MAX",
    );
    for bad in ["1.5", "ten", "18446744073709551616"] {
        let output = f.position(&["set", bad, "--yes"]);
        assert_refused(&output, 2, bad, &["expected an integer id"]);
    }
    assert_eq!(redis_get(&key).as_deref(), Some("18446744073709551615"));
}

#[test]
fn a_running_instance_refuses_a_change_and_with_force_replays_from_it() {
    let f = Fixture::new(10, |j| j.lease(Duration::from_secs(3)));
    let key = f.job.key();
    let mut daemon = Daemon::start(&f.config, &["-vv"], f.dir.path().join("daemon.log"));
    assert!(
        wait_position(&key, 10, Duration::from_secs(60)).is_some(),
        "the daemon did not replicate; log:\n{}",
        tail(&daemon.log_text(), 30)
    );
    let holder = format!("-{}-", daemon.pid);

    let output = f.position(&["set", "4", "--yes"]);
    assert_refused(
        &output,
        3,
        "set under a running instance",
        &[&holder, "--force"],
    );
    let output = f.position(&["reset", "--yes"]);
    assert_refused(
        &output,
        3,
        "reset under a running instance",
        &[&holder, "stop every instance"],
    );
    assert_eq!(
        redis_get(&key).as_deref(),
        Some("10"),
        "a refusal changed it"
    );

    let output = f.position(&["set", "4", "--yes", "--force"]);
    assert_exit(&output, 0, "position set --force");
    let logged = stderr(&output);
    assert!(
        logged.contains("position 10 → 4") && logged.contains("lease taken over from"),
        "{logged}"
    );
    assert!(
        logged.contains(&holder),
        "names whose lease it took: {logged}"
    );

    // The daemon was fenced, took the lease again, and published the rows after 4 once more.
    daemon.expect_log("lost the job's lease", Duration::from_secs(30));
    daemon.expect_log("resuming after id 4", Duration::from_secs(30));
    eprintln!(
        "the fenced daemon: {:?}",
        daemon
            .lines_with("lease")
            .iter()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
    );
    let published = f.published(16);
    let expected: Vec<(i64, usize)> = (1..=10)
        .map(|id| (id, if id > 4 { 2 } else { 1 }))
        .collect();
    assert_eq!(published, expected, "a replay of the rows after 4");
    assert!(wait_position(&key, 10, Duration::from_secs(30)).is_some());

    // And it goes on from there.
    f.insert(11..=12);
    assert!(
        wait_position(&key, 12, Duration::from_secs(30)).is_some(),
        "the daemon stopped replicating; log:\n{}",
        tail(&daemon.log_text(), 30)
    );
    assert!(daemon.alive(), "the daemon exited");
    daemon.terminate(Duration::from_secs(20));
}

/// Runs `repliqate ARGS…` on a pseudo-terminal (script(1)) and types `answer`.
fn on_a_terminal(args: &[&str], answer: &str) -> Output {
    let command = std::iter::once(bin())
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("timeout")
        .args(["60", "script", "-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux is needed to give the test a terminal");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answer.as_bytes())
        .expect("typing the answer");
    child.wait_with_output().expect("waiting for script(1)")
}

#[test]
fn a_change_needs_a_terminal_or_yes() {
    let f = Fixture::new(3, |j| j);
    let key = f.job.key();
    redis_set(&key, "3");
    let output = f.position(&["set", "1"]);
    assert_refused(
        &output,
        2,
        "no terminal, no --yes",
        &["not a terminal", "--yes"],
    );
    let output = f.position(&["reset"]);
    assert_refused(&output, 2, "reset: no terminal, no --yes", &["--yes"]);
    assert_eq!(redis_get(&key).as_deref(), Some("3"));

    let args = ["position", "set", "1", "--config", f.config()];
    let declined = on_a_terminal(&args, "n\n");
    let said = stdout(&declined);
    assert_eq!(declined.status.code(), Some(1), "declined:\n{said}");
    assert!(
        said.contains(&format!("job {} (redis", f.job.name))
            && said.contains("position 3 → 1; the rows after 1 up to 3 are published again")
            && said.contains("Change it? [y/N]")
            && said.contains("nothing changed"),
        "{said}"
    );
    assert_eq!(redis_get(&key).as_deref(), Some("3"));
    let confirmed = on_a_terminal(&args, "y\n");
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "confirmed:\n{}",
        stdout(&confirmed)
    );
    assert_eq!(redis_get(&key).as_deref(), Some("1"));
}

#[test]
fn after_a_reset_the_daemon_treats_the_job_as_new() {
    let f = Fixture::new(3, |j| j);
    let key = f.job.key();
    assert_exit(&f.once(&[]), 0, "first run");
    assert_eq!(redis_get(&key).as_deref(), Some("3"));

    let output = f.position(&["reset", "--yes"]);
    assert_exit(&output, 0, "position reset");
    assert!(
        stderr(&output).contains("position 3 → none (removed)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(redis_get(&key), None);

    // A new job whose topic has records: the daemon's lost-position refusal.
    let output = f.once(&[]);
    assert_refused(
        &output,
        2,
        "new job, topic with records",
        &["--initial-position"],
    );
    assert_eq!(end_offsets(&broker(), &f.job.kafka.topic, 1), [3]);
    assert_exit(
        &f.once(&["--initial-position", "start"]),
        0,
        "from the start",
    );
    assert_eq!(f.published(6), [(1, 2), (2, 2), (3, 2)]);
}

#[test]
fn a_state_file_is_locked_by_its_daemon() {
    let dir = TempDir::new("position_state");
    let state = dir.path().join("job.offset");
    let f = Fixture::new(3, |j| j.state_file(&state));
    let mut daemon = Daemon::start(&f.config, &["-vv"], f.dir.path().join("daemon.log"));
    wait_for_position(&daemon, &state, 3, Duration::from_secs(60));
    let holder = format!("-{}-", daemon.pid);

    let second = f.once(&[]);
    assert_refused(
        &second,
        3,
        "a second daemon",
        &["in use by another instance", &holder, "job.offset.lock"],
    );
    for args in [
        &["set", "1", "--yes"][..],
        &["set", "1", "--yes", "--force"],
        &["reset", "--yes"],
    ] {
        let output = f.position(args);
        assert_refused(&output, 3, &args.join(" "), &[&holder, "cannot be fenced"]);
    }
    let shown = f.position(&["show"]);
    assert!(
        stdout(&shown).contains("lease: state file locked by a running instance, "),
        "{}",
        stdout(&shown)
    );
    assert_eq!(read(&state), "3\n");

    daemon.terminate(Duration::from_secs(20));
    assert_exit(
        &f.position(&["set", "1", "--yes"]),
        0,
        "set, daemon stopped",
    );
    assert_eq!(read(&state), "1\n");
    assert!(stdout(&f.position(&["show"])).contains("lease: no instance runs on this state file"));
    assert_exit(&f.position(&["reset", "--yes"]), 0, "reset, daemon stopped");
    assert!(!state.exists(), "reset left the state file");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
