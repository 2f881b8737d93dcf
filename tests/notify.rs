//! systemd's `Type=notify` protocol, with the test playing systemd: the daemon, run with
//! `NOTIFY_SOCKET` naming a socket the test bound, says `READY=1` only once every start-up check
//! passed (never when start-up fails), `STOPPING=1` when a signal begins the shutdown, and passes
//! none of the protocol's variables on to the commands it runs.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{assert_exit, run_with_env, Daemon};
use common::db::Db;
use common::env::{stack_job, stack_var, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, create_topic};
use common::notify::NotifySocket;
use common::secure::unsecured_jwt;
use serde_json::json;

/// A SQLite table `events` of `rows` rows in `dir`, and a job replicating it to a new topic, its
/// position in a state file.
fn job(dir: &TempDir, what: &str, rows: u64) -> JobConfig {
    let db = Db::Sqlite(dir.path().join("source.db"));
    db.create_filled("events", rows);
    let job = stack_job(what, &db.uri(), "events")
        .state_file(dir.path().join("position"))
        .poll_interval(Duration::from_millis(200));
    create_topic(&broker(), &job.kafka.topic, 1);
    job
}

#[test]
fn ready_after_start_up_then_stopping_on_sigterm() {
    let dir = TempDir::new("notify_ready");
    let job = job(&dir, "notify_ready", 3);
    let config = dir.write("config.yaml", &job.yaml());
    let socket = NotifySocket::new();
    let mut daemon =
        Daemon::start_with_env(&config, &["-vv"], &[socket.env()], dir.path().join("log"));

    let seen = socket.expect("READY=1", Duration::from_secs(60));
    // Start-up had checked the topic (its last check) before READY=1 was sent.
    let log = daemon.log_text();
    assert!(
        log.contains(&format!(
            "kafka: topic {} has 1 partitions",
            job.kafka.topic
        )),
        "READY=1 came before start-up finished; log:\n{log}"
    );
    assert_eq!(
        seen,
        [format!(
            "READY=1\nSTATUS=replicating table events to topic {} (job {})",
            job.kafka.topic, job.name
        )],
        "the first notification is READY=1 with a status line"
    );
    daemon.expect_log("replicated 3 rows", Duration::from_secs(30));
    assert!(
        socket.drain(Duration::from_millis(200)).is_empty(),
        "nothing else before the shutdown"
    );

    let status = daemon.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log_text());
    let after = socket.drain(Duration::from_millis(500));
    assert!(
        !after.is_empty() && after.iter().all(|m| m == "STOPPING=1"),
        "STOPPING=1 on SIGTERM, and nothing else: {after:?}"
    );
}

#[test]
fn no_ready_when_start_up_fails() {
    let dir = TempDir::new("notify_fails");
    let job = job(&dir, "notify_fails", 3);
    let missing = unique("missing");
    let bad = job.set("replication.sql_source.table", json!(missing));
    let config = dir.write("config.yaml", &bad.yaml());
    let socket = NotifySocket::new();
    let output = run_with_env(
        &["--config", config.to_str().unwrap(), "-vv"],
        &[socket.env()],
        Duration::from_secs(60),
    );
    assert_exit(&output, 2, "a table that does not exist");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&missing), "{stderr}");
    assert_eq!(
        socket.drain(Duration::from_millis(200)),
        Vec::<String>::new(),
        "no notification from a start-up that failed"
    );
}

#[test]
fn a_malformed_notify_socket_is_a_warning_not_a_failure() {
    let dir = TempDir::new("notify_bad_socket");
    let job = job(&dir, "notify_bad_socket", 2);
    let config = dir.write("config.yaml", &job.yaml());
    let output = run_with_env(
        &["--config", config.to_str().unwrap(), "--once", "-v"],
        &[
            ("NOTIFY_SOCKET", "relative/notify.sock".to_string()),
            ("WATCHDOG_USEC", "soon".to_string()),
        ],
        Duration::from_secs(60),
    );
    assert_exit(&output, 0, "a malformed NOTIFY_SOCKET");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("systemd notification is off"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{stderr}");
    assert!(
        warnings[0].contains("NOTIFY_SOCKET=relative/notify.sock: expected an absolute path"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("position"))
            .unwrap()
            .trim(),
        "2"
    );
}

#[test]
fn commands_the_daemon_runs_do_not_inherit_the_notify_variables() {
    // An OAUTHBEARER token command (run with sh -c) records the environment it was given.
    let dir = TempDir::new("notify_env");
    let seen_env = dir.path().join("token-command-env");
    let token = unsecured_jwt("repliqate", 3600);
    let job = job(&dir, "notify_env", 2)
        .brokers(&stack_var("REPLIQATE_TEST_KAFKA_SASL_PLAINTEXT"))
        .set(
            "replication.kafka_target.properties",
            json!({
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "OAUTHBEARER",
                "sasl.oauthbearer.token.command":
                    format!("env > {}; echo {token}", seen_env.display()),
            }),
        );
    let config = dir.write("config.yaml", &job.yaml());
    let socket = NotifySocket::new();
    let started = Instant::now();
    let output = run_with_env(
        &["--config", config.to_str().unwrap(), "--once", "-vv"],
        &[
            socket.env(),
            ("WATCHDOG_USEC", "30000000".to_string()),
            ("WATCHDOG_PID", "1".to_string()),
        ],
        Duration::from_secs(60),
    );
    assert_exit(&output, 0, "replicating over OAUTHBEARER");
    eprintln!("replicated in {:?}", started.elapsed());
    let env = std::fs::read_to_string(&seen_env)
        .unwrap_or_else(|e| panic!("the token command did not run ({e})"));
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    for var in ["NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="] {
        assert!(
            !env.lines().any(|l| l.starts_with(var)),
            "the token command inherited {var}:\n{env}"
        );
    }
    // Read before they were removed: the notifications still went out.
    let seen = socket.drain(Duration::from_millis(200));
    assert!(
        seen.first().is_some_and(|m| m.starts_with("READY=1\n"))
            && seen.last().is_some_and(|m| m == "STOPPING=1"),
        "READY=1, then STOPPING=1 when --once is done: {seen:?}"
    );
}
