//! systemd's `Type=notify` protocol, with the test playing systemd: the daemon, run with
//! `NOTIFY_SOCKET` naming a socket the test bound, says `READY=1` only once every start-up check
//! passed (never when start-up fails), `STOPPING=1` when a signal begins the shutdown, and passes
//! none of the protocol's variables on to the commands it runs; `WATCHDOG=1` from the loop.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{assert_exit, run_with_env, Daemon};
use common::db::{pg_client, Db, TableGuard};
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

/// With `WatchdogSec=` (the test sets `WATCHDOG_USEC` as systemd would), `WATCHDOG=1` comes from
/// the loop's heartbeat about twice per watchdog time while it polls, stops while the loop is
/// stuck (a query waiting on a lock the test holds), and comes back when it turns again.
#[test]
fn watchdog_pings_come_from_the_loop_and_stop_while_it_is_stuck() {
    let dir = TempDir::new("notify_watchdog");
    let db = Db::Postgres;
    let table = unique("watchdog");
    let _table = TableGuard::new(&db, &table);
    db.create_filled(&table, 10);
    let job = stack_job("notify_watchdog", &db.uri(), &table)
        .state_file(dir.path().join("position"))
        .poll_interval(Duration::from_millis(200))
        .query_timeout(Duration::from_secs(60));
    create_topic(&broker(), &job.kafka.topic, 1);
    let config = dir.write("config.yaml", &job.yaml());
    let socket = NotifySocket::new();
    // One second: a ping every half second.
    let env = [socket.env(), ("WATCHDOG_USEC", "1000000".to_string())];
    let mut daemon = Daemon::start_with_env(&config, &["-vv"], &env, dir.path().join("log"));
    socket.expect("READY=1", Duration::from_secs(60));
    daemon.expect_log("replicated 10 rows", Duration::from_secs(30));

    let pings = |seen: &[String]| seen.iter().filter(|m| *m == "WATCHDOG=1").count();
    let idle = pings(&socket.drain(Duration::from_secs(3)));
    assert!(
        (4..=8).contains(&idle),
        "{idle} pings in 3 s of polling, expected ~6"
    );

    let mut locker = pg_client();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .unwrap();
    // Within a poll the loop's next query waits on the lock; from then on, silence.
    socket.drain(Duration::from_secs(1));
    let stuck = pings(&socket.drain(Duration::from_secs(3)));
    assert_eq!(
        stuck,
        0,
        "pings while the loop was stuck; log:\n{}",
        daemon.log_text()
    );
    tx.rollback().unwrap();
    socket.expect("WATCHDOG=1", Duration::from_secs(5));
    assert_eq!(daemon.terminate(Duration::from_secs(30)).code(), Some(0));
}
