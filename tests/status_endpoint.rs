//! The HTTP endpoint of `metrics_addr`, against the real binary and the stack: `/metrics` read
//! with curl and parsed by the Prometheus Python client's parser (an independent reader of the
//! text format), `/healthz` and `/readyz` through their transitions — caught up, standby, the
//! source down, the loop stuck on a locked table, Redis down while caught up.

mod common;

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::db::{pg_client, Db, TableGuard};
use common::endpoint::{endpoint, get, scrape, value, Sample};
use common::env::{now_secs, pg_uri, stack_job, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, create_topic};
use common::position::RedisKeyGuard;
use common::stack::stop_service;

/// The tests stop PostgreSQL, or lock tables for seconds: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A job on the stack's PostgreSQL with the endpoint on a port of the system's choosing.
fn job(base: &str, table: &str) -> JobConfig {
    stack_job(base, &pg_uri(), table)
        .limit(500)
        .poll_interval(Duration::from_millis(200))
        .set("metrics_addr", "127.0.0.1:0")
}

/// Polls `probe` until it answers `code`; returns the body, or panics after `limit`.
fn wait_probe(addr: &str, probe: &str, code: u16, limit: Duration, daemon: &Daemon) -> String {
    let started = Instant::now();
    loop {
        let (got, body) = get(addr, probe);
        if got == code {
            return body;
        }
        assert!(
            started.elapsed() < limit,
            "{probe} still {got} ({}) after {limit:?}, expected {code}; log tail:\n{}",
            body.trim(),
            common::daemon::tail(&daemon.log_text(), 15)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Scrapes until `done` holds; returns every scrape. Panics after `limit`.
fn scrape_until(addr: &str, limit: Duration, done: impl Fn(&[Sample]) -> bool) -> Vec<Vec<Sample>> {
    let started = Instant::now();
    let mut all = Vec::new();
    loop {
        let s = scrape(addr);
        let finished = done(&s);
        all.push(s);
        if finished {
            return all;
        }
        assert!(
            started.elapsed() < limit,
            "/metrics never got there within {limit:?}; last scrape: {:?}",
            all.last()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_move_as_rows_are_published_and_rows_behind_reaches_zero() {
    let _serial = serial();
    let db = Db::Postgres;
    let table = unique("metrics");
    let _table = TableGuard::new(&db, &table);
    db.create_filled(&table, 20_000);
    let job = job("metrics", &table);
    create_topic(&broker(), &job.kafka.topic, 3);
    let _key = RedisKeyGuard(job.key());
    let dir = TempDir::new("metrics");
    let config = dir.write("config.yaml", &job.yaml());
    let mut daemon = Daemon::start(&config, &["-vv"], dir.path().join("daemon.log"));
    let addr = endpoint(&mut daemon);

    let published = |s: &[Sample]| value(s, "repliqate_rows_published_total", &[]).unwrap_or(0.0);
    let behind = |s: &[Sample]| value(s, "repliqate_rows_behind", &[]);
    let scrapes = scrape_until(&addr, Duration::from_secs(60), |s| {
        published(s) >= 20_000.0 && behind(s) == Some(0.0)
    });
    // The counter only grows, and was seen part way (20,000 rows in 500-row batches).
    let counts: Vec<f64> = scrapes.iter().map(|s| published(s)).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        counts.iter().any(|&c| c > 0.0 && c < 20_000.0) || scrapes.len() == 1,
        "{counts:?}"
    );
    let last = scrapes.last().unwrap();
    assert_eq!(published(last), 20_000.0);
    assert_eq!(value(last, "repliqate_position", &[]), Some(20_000.0));
    assert_eq!(value(last, "repliqate_source_max_id", &[]), Some(20_000.0));
    assert_eq!(value(last, "repliqate_active", &[]), Some(1.0));
    let ok_batches = value(last, "repliqate_batches_total", &[("result", "ok")]).unwrap();
    assert!(
        ok_batches >= 40.0,
        "{ok_batches} batches for 20,000 rows of 500"
    );
    assert_eq!(
        value(last, "repliqate_batches_total", &[("result", "error")]),
        Some(0.0)
    );
    assert_eq!(
        value(last, "repliqate_publish_seconds_count", &[]),
        Some(ok_batches)
    );
    assert_eq!(
        value(last, "repliqate_publish_seconds_bucket", &[("le", "+Inf")]),
        Some(ok_batches)
    );
    // Every batch read, and the empty polls since.
    assert!(value(last, "repliqate_read_seconds_count", &[]).unwrap() >= 40.0);
    let stamp = value(last, "repliqate_last_publish_timestamp_seconds", &[]).unwrap();
    assert!((now_secs() - stamp).abs() < 60.0, "last publish at {stamp}");
    assert_eq!(value(last, "repliqate_gap_held_rows", &[]), Some(0.0));
    for reason in ["final", "timeout"] {
        assert_eq!(
            value(last, "repliqate_gap_skipped_total", &[("reason", reason)]),
            Some(0.0)
        );
    }
    for component in ["source", "kafka", "position store"] {
        assert_eq!(
            value(last, "repliqate_errors_total", &[("component", component)]),
            Some(0.0)
        );
    }
    let info = last
        .iter()
        .find(|s| s.name == "repliqate_build_info")
        .expect("repliqate_build_info");
    assert_eq!(info.labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(info.labels["sources"].contains("postgres"), "{info:?}");
    // Every sample names the job; the pipeline's also name the table and the topic, the
    // process's (pipelines, build) the job alone.
    assert_eq!(
        value(last, "repliqate_pipelines", &[("state", "owned")]),
        Some(1.0)
    );
    for s in last {
        assert_eq!(s.labels.get("name"), Some(&job.name), "{s:?}");
        if ["repliqate_pipelines", "repliqate_build_info"].contains(&s.name.as_str()) {
            assert_eq!(s.labels.get("table"), None, "{s:?}");
            continue;
        }
        assert_eq!(s.labels.get("table"), Some(&table), "{s:?}");
        assert_eq!(s.labels.get("topic"), Some(&job.kafka.topic), "{s:?}");
    }
    let (code, body) = get(&addr, "/readyz");
    assert_eq!(
        (code, body.trim()),
        (200, "active: caught up at position 20000")
    );
    let (code, body) = get(&addr, "/healthz");
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("alive: last step"), "{body}");

    // New rows: the highest id moves first (read at most once per poll interval), then the
    // position catches up with it.
    db.exec(&format!(
        "INSERT INTO {table} (v) SELECT 'more ' || g FROM generate_series(1, 3000) g"
    ));
    let scrapes = scrape_until(&addr, Duration::from_secs(30), |s| {
        published(s) >= 23_000.0 && behind(s) == Some(0.0)
    });
    let last = scrapes.last().unwrap();
    assert_eq!(value(last, "repliqate_position", &[]), Some(23_000.0));
    assert_eq!(value(last, "repliqate_source_max_id", &[]), Some(23_000.0));

    // A client that connects and sends nothing does not hold up a probe.
    let _silent = std::net::TcpStream::connect(&addr).unwrap();
    let asked = Instant::now();
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );

    // One that trickles its request head, a byte every 200 ms, is cut off at the head's
    // deadline (5 s for the whole head, not per read).
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for byte in b"GET /metrics HTTP/1.1\r\n".iter().cycle() {
        use std::io::{Read as _, Write as _};
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !answer.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "never cut off");
    }
    let cut = started.elapsed();
    // The rest of the answer, up to the server's close.
    loop {
        use std::io::Read as _;
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(8)).contains(&cut),
        "cut off after {cut:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");

    // Other paths and methods.
    assert_eq!(get(&addr, "/nope").0, 404);
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "405");
    assert!(daemon.terminate(Duration::from_secs(10)).success());
}

#[test]
fn healthz_and_readyz_through_standby_source_down_and_a_stuck_loop() {
    let _serial = serial();
    let db = Db::Postgres;
    let table = unique("health");
    let _table = TableGuard::new(&db, &table);
    db.create_filled(&table, 1_000);
    // A short lease for the standby; a query timeout far above the stall timeout, so that a
    // query waiting on a lock is a stuck loop for the endpoint before it is an error.
    let job = job("health", &table)
        .lease(Duration::from_secs(3))
        .query_timeout(Duration::from_secs(60))
        .connect_timeouts(Duration::from_secs(2))
        .set("stall_timeout_sec", 3)
        .set("ready_lag_sec", 30);
    create_topic(&broker(), &job.kafka.topic, 1);
    let _key = RedisKeyGuard(job.key());
    let dir = TempDir::new("health");
    let config = dir.write("config.yaml", &job.yaml());
    let mut active = Daemon::start(&config, &["-vv"], dir.path().join("active.log"));
    let a = endpoint(&mut active);
    // Caught up once the batch that reached the end is committed.
    let started = Instant::now();
    while wait_probe(&a, "/readyz", 200, Duration::from_secs(30), &active).trim()
        != "active: caught up at position 1000"
    {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(active
        .log_text()
        .contains("stall_timeout_sec: 3s is less than"));

    // A second instance: standby, healthy and ready (it can take over).
    let mut standby = Daemon::start(&config, &["-vv"], dir.path().join("standby.log"));
    let b = endpoint(&mut standby);
    let body = wait_probe(&b, "/readyz", 200, Duration::from_secs(30), &standby);
    assert!(body.starts_with("standby:"), "{body}");
    assert_eq!(value(&scrape(&b), "repliqate_active", &[]), Some(0.0));
    assert_eq!(value(&scrape(&b), "repliqate_position", &[]), None);
    assert_eq!(get(&b, "/healthz").0, 200);

    // The loop stuck: a lock makes its next query wait (up to the 60 s query timeout).
    let mut locker = pg_client();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .unwrap();
    let locked = Instant::now();
    let body = wait_probe(&a, "/healthz", 503, Duration::from_secs(15), &active);
    assert!(
        body.starts_with("stalled: the replication loop has not completed a step for"),
        "{body}"
    );
    assert!(
        locked.elapsed() >= Duration::from_secs(3),
        "{:?}",
        locked.elapsed()
    );
    let (code, body) = get(&a, "/readyz");
    assert_eq!(code, 503);
    assert!(body.starts_with("stalled:"), "{body}");
    // The standby is not stuck: it does not read the table.
    assert_eq!(get(&b, "/healthz").0, 200);
    tx.rollback().unwrap();
    wait_probe(&a, "/healthz", 200, Duration::from_secs(10), &active);
    wait_probe(&a, "/readyz", 200, Duration::from_secs(10), &active);

    // The standby stops; the source goes down: alive, but not ready, naming the source.
    assert!(standby.terminate(Duration::from_secs(10)).success());
    let mut postgres = stop_service("postgres");
    let body = wait_probe(&a, "/readyz", 503, Duration::from_secs(30), &active);
    assert!(body.starts_with("source failing for"), "{body}");
    let (code, body) = get(&a, "/healthz");
    assert_eq!(code, 200, "retrying an outage is not a stall: {body}");
    let errors = value(
        &scrape(&a),
        "repliqate_errors_total",
        &[("component", "source")],
    );
    assert!(errors.unwrap() >= 1.0, "{errors:?}");
    postgres.start();
    let body = wait_probe(&a, "/readyz", 200, Duration::from_secs(60), &active);
    assert!(body.starts_with("active: caught up"), "{body}");

    // Redis down while caught up: only the lease's renewal notices. Not ready, naming the store.
    let mut redis = stop_service("redis");
    let body = wait_probe(&a, "/readyz", 503, Duration::from_secs(30), &active);
    assert!(body.starts_with("position store failing for"), "{body}");
    assert_eq!(get(&a, "/healthz").0, 200);
    redis.start();
    let body = wait_probe(&a, "/readyz", 200, Duration::from_secs(60), &active);
    assert!(body.starts_with("active: caught up"), "{body}");
    assert!(active.terminate(Duration::from_secs(10)).success());
}
