//! repliqate against Apache Kafka's own secured listeners (scripts/stack): SSL with required
//! client certificates, SASL_SSL and SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
//! and OAUTHBEARER, and a listener whose sessions last three seconds (KIP-368). Each table is
//! replicated end to end by the binary and read back by kcat (librdkafka) over the same
//! listener with the same credentials. Start-up refusals (a CA we do not trust, a name or date
//! that does not fit, a client certificate missing or refused, wrong credentials, a mechanism
//! the listener has not enabled, TLS against a plaintext listener) exit with code 2 and one
//! line naming the broker and the reason, and print no secret even at -vvv.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::daemon::{
    assert_exit, assert_refused_at_start_up, run, run_with_env, wait_for_position, Daemon,
};
use common::db::Db;
use common::env::{stack_var, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, create_topic};
use common::secure::{
    java_read, kcat_read, stack_tls, tls_server, unsecured_jwt, Forms, KcatMessage, TestCa,
};
use serde_json::{json, Map, Value};

const PARTITIONS: i32 = 3;

/// A listener of the stack's broker, from `scripts/stack env`.
fn listener(which: &str) -> String {
    stack_var(&format!("REPLIQATE_TEST_KAFKA_{which}"))
}

fn plain_user() -> (String, String) {
    (
        stack_var("REPLIQATE_TEST_KAFKA_PLAIN_USER"),
        stack_var("REPLIQATE_TEST_KAFKA_PLAIN_PASSWORD"),
    )
}

fn scram_user() -> (String, String) {
    (
        stack_var("REPLIQATE_TEST_KAFKA_SCRAM_USER"),
        stack_var("REPLIQATE_TEST_KAFKA_SCRAM_PASSWORD"),
    )
}

/// How to reach one listener: repliqate's `kafka_target.properties`, and the same for kcat.
struct Access {
    broker: String,
    properties: Map<String, Value>,
    kcat: Vec<(&'static str, String)>,
}

impl Access {
    fn new(broker: String) -> Access {
        Access {
            broker,
            properties: Map::new(),
            kcat: Vec::new(),
        }
    }

    /// A property repliqate and kcat both take under the same name.
    fn both(mut self, name: &'static str, value: impl Into<String>) -> Access {
        let value = value.into();
        self.properties.insert(name.into(), json!(value));
        self.kcat.push((name, value));
        self
    }

    /// A property for repliqate only (kcat gets its own way of saying it, or none).
    fn ours(mut self, name: &str, value: impl Into<String>) -> Access {
        self.properties.insert(name.into(), json!(value.into()));
        self
    }

    fn kcat_only(mut self, name: &'static str, value: impl Into<String>) -> Access {
        self.kcat.push((name, value.into()));
        self
    }

    fn sasl_ssl(mechanism: &str) -> Access {
        Access::new(listener("SASL_SSL"))
            .both("security.protocol", "SASL_SSL")
            .both("ssl.ca.location", stack_tls("ca.pem"))
            .with_mechanism(mechanism)
    }

    fn sasl_plaintext(mechanism: &str) -> Access {
        Access::new(listener("SASL_PLAINTEXT"))
            .both("security.protocol", "SASL_PLAINTEXT")
            .with_mechanism(mechanism)
    }

    fn mutual_tls() -> Access {
        Access::new(listener("SSL"))
            .both("security.protocol", "SSL")
            .both("ssl.ca.location", stack_tls("ca.pem"))
            .both("ssl.certificate.location", stack_tls("client.pem"))
            .both("ssl.key.location", stack_tls("client.key"))
    }

    /// The mechanism and the stack's credentials for it (an OAUTHBEARER token is the
    /// caller's to add).
    ///
    /// kcat reads SCRAM listeners back with PLAIN, over the same listener: Debian's librdkafka
    /// (2.0.2) repeats the client nonce in SCRAM's client-final message, which Kafka 4 rejects
    /// (fixed in librdkafka 2.6.1, confluentinc/librdkafka#4895), so it cannot log in with
    /// SCRAM at all.
    fn with_mechanism(self, mechanism: &str) -> Access {
        let (plain_name, plain_password) = plain_user();
        match mechanism {
            "PLAIN" => self
                .both("sasl.mechanism", mechanism)
                .both("sasl.username", plain_name)
                .both("sasl.password", plain_password),
            "OAUTHBEARER" => self
                .both("sasl.mechanism", mechanism)
                .kcat_only("enable.sasl.oauthbearer.unsecure.jwt", "true")
                .kcat_only("sasl.oauthbearer.config", "principal=repliqate"),
            _ => {
                let (user, password) = scram_user();
                self.ours("sasl.mechanism", mechanism)
                    .ours("sasl.username", user)
                    .ours("sasl.password", password)
                    .kcat_only("sasl.mechanism", "PLAIN")
                    .kcat_only("sasl.username", plain_name)
                    .kcat_only("sasl.password", plain_password)
            }
        }
    }
}

/// A SQLite table of `rows` rows in `dir`, and a job replicating it to a new topic through
/// `access`, its position in a state file.
fn job(dir: &TempDir, what: &str, access: &Access, rows: u64) -> (Db, JobConfig) {
    let db = Db::Sqlite(dir.path().join("source.db"));
    db.create_filled("events", rows);
    let topic = unique(what);
    create_topic(&broker(), &topic, PARTITIONS);
    let job = JobConfig::new(&unique(&format!("job_{what}")), &db.uri(), "events", &topic)
        .state_file(dir.path().join("position"))
        .brokers(&access.broker)
        .set(
            "replication.kafka_target.properties",
            Value::Object(access.properties.clone()),
        );
    (db, job)
}

/// Checks that `messages` hold ids 1..=rows once each, as repliqate's JSON.
fn assert_rows(what: &str, messages: &[KcatMessage], rows: u64) {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for m in messages {
        let v: Value = serde_json::from_str(&m.payload)
            .unwrap_or_else(|e| panic!("{what}: a message is not JSON ({e}): {}", m.payload));
        let id = v["data"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{what}: no data.id in {}", m.payload));
        assert_eq!(
            m.key.as_deref(),
            Some(id.to_string().as_str()),
            "{what}: key"
        );
        assert_eq!(v["data"]["v"], json!(format!("row {id}")), "{what}: value");
        assert!((0..PARTITIONS as i64).contains(&m.partition));
        *seen.entry(id).or_default() += 1;
    }
    let missing: Vec<u64> = (1..=rows)
        .filter(|i| !seen.contains_key(&(*i as i64)))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: ids missing from the topic: {missing:?}"
    );
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{what}: ids published more than once: {twice:?}"
    );
    assert_eq!(seen.len() as u64, rows, "{what}: ids beyond the table");
}

/// Replicates a 500-row table through `access` with `repliqate --once` and reads it back with
/// kcat over the same listener.
fn replicates_end_to_end(what: &str, access: Access) {
    replicate_and_read_back(what, &access, 500, None);
}

/// Replicates a table of `rows` rows through `access` with `repliqate --once -vv` (in batches
/// of `limit` rows, if given), checks it exits 0 and that kcat reads every row back once over
/// the same listener; returns the daemon's output.
fn replicate_and_read_back(what: &str, access: &Access, rows: u64, limit: Option<u64>) -> Output {
    let (output, job) = replicate(what, access, rows, limit);
    let read = kcat_read(
        &access.broker,
        &access.kcat,
        &job.kafka.topic,
        rows as usize,
        Duration::from_secs(60),
    );
    assert_rows(what, &read, rows);
    output
}

/// Replicates a table of `rows` rows through `access` with `repliqate --once -vv` (in batches
/// of `limit` rows, if given) and checks it exits 0; returns its output and the job.
fn replicate(what: &str, access: &Access, rows: u64, limit: Option<u64>) -> (Output, JobConfig) {
    let dir = TempDir::new(what);
    let (_db, mut job) = job(&dir, what, access, rows);
    if let Some(limit) = limit {
        job = job.limit(limit);
    }
    let config = dir.write("config.yaml", &job.yaml());
    let output = run(
        &["--config", config.to_str().unwrap(), "--once", "-vv"],
        Duration::from_secs(120),
    );
    assert_exit(&output, 0, what);
    (output, job)
}

#[test]
fn sasl_ssl_batches_larger_than_the_sockets_hold_go_out_on_one_connection() {
    // Batches of ~22 MB (150,000 rows): more than the socket and rustls's buffer take at once,
    // so the producer writes them without waiting and hands over the rest while it reads the
    // next batch, through rustls over a socket switched to non-blocking and back; and more
    // than five 1 MiB batches per partition, so that the requests the in-flight limit holds
    // back go out as their answers arrive, which rustls decrypts between rows. Every row
    // must arrive once, and no connection may be lost on the way: a dropped connection would
    // show as a retry in the log (idempotence would keep the topic exact anyway). The case of
    // a full rustls buffer (`Ok(0)`, not a broken connection) is a race this cannot force; the
    // unit test of `write_queued` pins it.
    let what = "sec_large_batches";
    let output = replicate_and_read_back(what, &Access::sasl_ssl("PLAIN"), 300_000, Some(150_000));
    let log = String::from_utf8_lossy(&output.stderr);
    let retried: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("retrying") || l.contains("sending request"))
        .collect();
    assert!(
        retried.is_empty(),
        "{what}: the producer lost a connection and retried:\n{}",
        retried.join("\n")
    );
}

#[test]
fn ssl_with_a_client_certificate_replicates_end_to_end() {
    replicates_end_to_end("sec_mtls", Access::mutual_tls());
}

#[test]
fn sasl_ssl_replicates_end_to_end_with_every_mechanism() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] {
        let dir = TempDir::new("sec_token");
        let mut access = Access::sasl_ssl(mechanism);
        if mechanism == "OAUTHBEARER" {
            let token = dir.write("token", &unsecured_jwt("repliqate", 3600));
            access = access.ours("sasl.oauthbearer.token.file", token.display().to_string());
        }
        replicates_end_to_end(
            &format!("sec_sasl_ssl_{}", mechanism.replace('-', "_")),
            access,
        );
    }
}

#[test]
fn sasl_plaintext_replicates_end_to_end_with_every_mechanism() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] {
        let mut access = Access::sasl_plaintext(mechanism);
        if mechanism == "OAUTHBEARER" {
            // The token from a command, as cloud token helpers give it.
            let token = unsecured_jwt("repliqate", 3600);
            access = access.ours("sasl.oauthbearer.token.command", format!("echo {token}"));
        }
        replicates_end_to_end(
            &format!("sec_sasl_plain_{}", mechanism.replace('-', "_")),
            access,
        );
    }
}

/// Runs `repliqate --once -vvv` through `access` and expects exit code 2 and an error line
/// naming the broker and containing `reason`; no secret of `secrets` may be anywhere in its
/// output.
fn refused(what: &str, access: Access, reason: &str, secrets: &[&str]) {
    let dir = TempDir::new(what);
    let (_db, job) = job(&dir, what, &access, 3);
    let config = dir.write("config.yaml", &job.yaml());
    assert_refused_at_start_up(what, &config, &access.broker, reason, secrets);
}

#[test]
fn trust_problems_are_refused_at_start_up_naming_the_broker() {
    let rogue = TestCa::new("rogue CA");
    let dir = TempDir::new("sec_trust");
    let rogue_ca = dir.write("rogue-ca.pem", &rogue.pem);

    // The broker's certificate is signed by the stack's CA, which the rogue bundle lacks.
    let mut access = Access::mutual_tls();
    access.properties.insert(
        "ssl.ca.location".into(),
        json!(rogue_ca.display().to_string()),
    );
    refused("sec_unknown_ca", access, "not signed by a trusted CA", &[]);

    // Servers of the test's own, for what the stack's broker cannot present.
    let wrong_name = tls_server(&rogue.server(&["other.example"], false));
    let mut access = Access::new(wrong_name.clone())
        .ours("security.protocol", "SSL")
        .ours("ssl.ca.location", rogue_ca.display().to_string());
    refused(
        "sec_wrong_name",
        access,
        "is for other.example, not 127.0.0.1",
        &[],
    );

    let expired = tls_server(&rogue.server(&["127.0.0.1"], true));
    access = Access::new(expired)
        .ours("security.protocol", "SSL")
        .ours("ssl.ca.location", rogue_ca.display().to_string());
    refused("sec_expired", access, "expired", &[]);

    // Turning the name check off is what the property is for; the chain is still checked.
    let access = Access::new(wrong_name)
        .ours("security.protocol", "SSL")
        .ours("ssl.ca.location", rogue_ca.display().to_string())
        .ours("ssl.endpoint.identification.algorithm", "none");
    let dir2 = TempDir::new("sec_no_name_check");
    let (_db, job) = job(&dir2, "sec_no_name_check", &access, 1);
    // The test's server is no broker: after the handshake it hangs up, which is retried.
    let job = job.kafka_timeouts(Duration::from_secs(2), Duration::from_secs(4));
    let config = dir2.write("config.yaml", &job.yaml());
    let output = run(
        &["--config", config.to_str().unwrap(), "--once", "-v"],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("checked against the CAs but not against the brokers' names"),
        "no warning for a name check turned off:\n{stderr}"
    );
    assert!(!stderr.contains("is for other.example"), "{stderr}");
}

#[test]
fn client_certificates_missing_or_untrusted_are_refused_at_start_up() {
    let mut access = Access::mutual_tls();
    access.properties.remove("ssl.certificate.location");
    access.properties.remove("ssl.key.location");
    refused("sec_no_client_cert", access, "client certificate", &[]);

    let rogue = TestCa::new("rogue CA");
    let leaf = rogue.client("repliqate");
    let dir = TempDir::new("sec_rogue_client");
    let cert = dir.write("client.pem", &leaf.cert);
    let key = dir.write("client.key", &leaf.key);
    let key_body = leaf.key.lines().nth(1).unwrap().to_string();
    let mut access = Access::mutual_tls();
    access.properties.insert(
        "ssl.certificate.location".into(),
        json!(cert.display().to_string()),
    );
    access
        .properties
        .insert("ssl.key.location".into(), json!(key.display().to_string()));
    refused(
        "sec_rogue_client",
        access,
        "client certificate",
        &[&key_body],
    );
}

#[test]
fn wrong_credentials_are_refused_at_start_up_without_printing_them() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let wrong = format!("wrong-{}", unique("pw"));
        let mut access = Access::sasl_ssl(mechanism);
        access
            .properties
            .insert("sasl.password".into(), json!(wrong));
        refused(
            &format!("sec_wrong_{}", mechanism.replace('-', "_")),
            access,
            &format!("SASL {mechanism} authentication failed"),
            &[&wrong],
        );
    }
    // An expired token, from a file.
    let dir = TempDir::new("sec_expired_token");
    let token = unsecured_jwt("repliqate", -600);
    let path = dir.write("token", &token);
    let access = Access::sasl_ssl("OAUTHBEARER")
        .ours("sasl.oauthbearer.token.file", path.display().to_string());
    refused(
        "sec_expired_token",
        access,
        "SASL OAUTHBEARER authentication failed",
        &[&token],
    );
}

#[test]
fn a_mechanism_the_listener_has_not_enabled_is_refused_naming_the_ones_it_has() {
    let mut access = Access::sasl_ssl("PLAIN");
    access.broker = listener("SCRAM512_ONLY");
    refused(
        "sec_mechanism",
        access,
        "has not enabled PLAIN on this listener; it offers SCRAM-SHA-512",
        &[],
    );
}

#[test]
fn tls_against_a_plaintext_listener_fails_instead_of_downgrading() {
    let mut access = Access::mutual_tls();
    access.broker = broker();
    refused("sec_downgrade", access, "TLS", &[]);
}

/// Counts the lines of `daemon`'s log holding `needle`.
fn count(daemon: &Daemon, needle: &str) -> usize {
    daemon.lines_with(needle).len()
}

/// Inserts `n` more rows into `events`, continuing the ids.
fn insert_more(db: &Db, from: u64, n: u64) {
    let values: Vec<String> = (from..from + n)
        .map(|i| format!("({i}, 'row {i}')"))
        .collect();
    db.exec(&format!(
        "INSERT INTO events (id, v) VALUES {}",
        values.join(", ")
    ));
}

/// A daemon replicating a table of `rows` rows through `access` (polling every 200 ms, at
/// -vvv), once it has published them; the position file's path last.
fn running(
    dir: &TempDir,
    what: &str,
    access: &Access,
    rows: u64,
    edit: impl FnOnce(JobConfig) -> JobConfig,
) -> (Db, JobConfig, Daemon, PathBuf) {
    let (db, job) = job(dir, what, access, rows);
    let job = edit(job.poll_interval(Duration::from_millis(200)));
    let config = dir.write("config.yaml", &job.yaml());
    let daemon = Daemon::start(&config, &["-vvv"], dir.path().join("log"));
    let position = dir.path().join("position");
    wait_for_position(&daemon, &position, rows, Duration::from_secs(30));
    (db, job, daemon, position)
}

/// Inserts `batch` rows every `pause` for `how_long`, ids from `next` on; returns the next id.
fn keep_inserting(db: &Db, mut next: u64, batch: u64, pause: Duration, how_long: Duration) -> u64 {
    let started = Instant::now();
    while started.elapsed() < how_long {
        insert_more(db, next, batch);
        next += batch;
        std::thread::sleep(pause);
    }
    next
}

/// Reads the topic back with kcat over `access`'s listener and checks ids 1..=rows.
fn read_back(what: &str, access: &Access, topic: &str, rows: u64) {
    let read = kcat_read(
        &access.broker,
        &access.kcat,
        topic,
        rows as usize,
        Duration::from_secs(60),
    );
    assert_rows(what, &read, rows);
}

/// KIP-368: on a listener (SASL_PLAINTEXT) whose sessions last three seconds, a run of ~20 s re-authenticates
/// on its connections many times, never reconnects, and publishes every row exactly once.
#[test]
fn sessions_are_renewed_on_the_same_connections_and_nothing_is_lost() {
    let dir = TempDir::new("sec_reauth");
    let mut access = Access::sasl_plaintext("SCRAM-SHA-512");
    access.broker = listener("SASL_REAUTH");
    let (db, job, mut daemon, position) = running(&dir, "sec_reauth", &access, 100, |j| j);
    let next = keep_inserting(
        &db,
        101,
        50,
        Duration::from_millis(250),
        Duration::from_secs(20),
    );
    assert!(daemon.alive(), "repliqate exited:\n{}", daemon.log_text());
    let rows = next - 1;
    wait_for_position(&daemon, &position, rows, Duration::from_secs(60));
    let reauths = count(
        &daemon,
        "re-authenticated (SCRAM-SHA-512) on the same connection",
    );
    let connects = count(&daemon, "kafka: connected to broker");
    let failures = count(&daemon, "re-authentication failed");
    daemon.terminate(Duration::from_secs(30));
    assert!(
        reauths >= 4,
        "{reauths} re-authentications in 20 s of 3 s sessions"
    );
    assert_eq!(failures, 0, "{}", daemon.log_text());
    // One connection to bootstrap (taken over for the one broker), none again.
    assert!(
        connects <= 2,
        "{connects} connections:\n{}",
        daemon.log_text()
    );
    read_back("sec_reauth", &access, &job.kafka.topic, rows);
}

/// A token file rewritten while the daemon runs is what the next re-authentication sends: the
/// first token expires ten seconds in, and the run goes on past that without a failure.
#[test]
fn a_rotated_token_file_is_used_at_the_next_re_authentication() {
    let dir = TempDir::new("sec_token_rotation");
    let token = dir.write("token", &unsecured_jwt("repliqate", 10));
    let mut access = Access::sasl_plaintext("OAUTHBEARER")
        .ours("sasl.oauthbearer.token.file", token.display().to_string());
    access.broker = listener("SASL_REAUTH");
    let (db, _job, mut daemon, position) = running(&dir, "sec_token_rotation", &access, 10, |j| j);
    std::fs::write(&token, unsecured_jwt("repliqate", 3600)).unwrap();
    let next = keep_inserting(
        &db,
        11,
        10,
        Duration::from_millis(300),
        Duration::from_secs(15),
    );
    wait_for_position(&daemon, &position, next - 1, Duration::from_secs(30));
    let failures = count(&daemon, "authentication failed");
    let reauths = count(&daemon, "re-authenticated (OAUTHBEARER)");
    daemon.terminate(Duration::from_secs(30));
    assert_eq!(failures, 0, "{}", daemon.log_text());
    assert!(
        reauths >= 3,
        "{reauths} re-authentications:\n{}",
        daemon.log_text()
    );
}

/// A password that stops working while running (rotated on one side only) is one incident:
/// logged once, retried with backoff, not in a storm; the password file put right is used at
/// the next connection, without a restart, and the rows inserted meanwhile arrive.
#[test]
fn an_authentication_failure_while_running_is_one_incident_retried_with_backoff() {
    let dir = TempDir::new("sec_incident");
    let (_, password) = plain_user();
    let password_file = dir.write("password", &password);
    let mut access = Access::sasl_plaintext("PLAIN");
    access.properties.remove("sasl.password");
    access.properties.insert(
        "sasl.password_file".into(),
        json!(password_file.display().to_string()),
    );
    access.broker = listener("SASL_REAUTH");
    let (db, job, mut daemon, position) = running(&dir, "sec_incident", &access, 10, |j| {
        j.set("replication.retry_backoff_max_sec", 2)
    });

    let wrong = format!("wrong-{}", unique("pw"));
    std::fs::write(&password_file, &wrong).unwrap();
    // The session ends within 3 s; the next publish re-authenticates with the new file, and
    // every attempt for ~12 s fails.
    std::thread::sleep(Duration::from_secs(4));
    insert_more(&db, 11, 10);
    std::thread::sleep(Duration::from_secs(12));
    // One error line for the incident; then each retry only at debug, a few seconds apart.
    let reported: Vec<String> = daemon
        .lines_with("SASL PLAIN authentication failed")
        .into_iter()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert_eq!(
        reported.len(),
        1,
        "the incident was logged {} times:\n{}",
        reported.len(),
        daemon.log_text()
    );
    let retries = count(&daemon, "still failing");
    assert!(
        (2..=20).contains(&retries),
        "{retries} retries in ~12 s with a 2 s backoff cap:\n{}",
        daemon.log_text()
    );
    assert!(
        !daemon.log_text().contains(&wrong),
        "the password is in the log"
    );

    std::fs::write(&password_file, &password).unwrap();
    wait_for_position(&daemon, &position, 20, Duration::from_secs(30));
    daemon.terminate(Duration::from_secs(30));
    let read = kcat_read(
        &access.broker,
        &access.kcat,
        &job.kafka.topic,
        20,
        Duration::from_secs(60),
    );
    let ids: std::collections::HashSet<String> =
        read.iter().filter_map(|m| m.key.clone()).collect();
    assert_eq!(ids.len(), 20, "rows missing after the incident");
}

/// Rotation at the next connection. The listener wants SASL (OAUTHBEARER) and a client
/// certificate, and its sessions last three seconds; a token for another principal makes the
/// next re-authentication fail (KIP-368 forbids a change of principal), so the daemon opens a
/// new connection. Each time, a client certificate or CA bundle replaced with one the other side
/// refuses must be what that connection uses (the log says so); put right, the next attempt
/// succeeds and the rows inserted meanwhile arrive; one process throughout.
#[test]
fn rotated_certificate_and_ca_files_are_used_at_the_next_connection() {
    let dir = TempDir::new("sec_rotation");
    let copy = |name: &str| {
        let path = dir.path().join(name);
        std::fs::copy(stack_tls(name), &path).unwrap();
        path
    };
    let (ca, cert, key) = (copy("ca.pem"), copy("client.pem"), copy("client.key"));
    let token = dir.write("token", &unsecured_jwt("principal-0", 3600));
    let mut access = Access::sasl_ssl("OAUTHBEARER")
        .ours("ssl.ca.location", ca.display().to_string())
        .ours("ssl.certificate.location", cert.display().to_string())
        .ours("ssl.key.location", key.display().to_string())
        .ours("sasl.oauthbearer.token.file", token.display().to_string())
        .kcat_only("ssl.certificate.location", stack_tls("client.pem"))
        .kcat_only("ssl.key.location", stack_tls("client.key"));
    access.broker = listener("SASL_SSL_REAUTH");
    let (db, job, mut daemon, position) = running(&dir, "sec_rotation", &access, 10, |j| {
        j.set("replication.retry_backoff_max_sec", 1)
    });

    let rogue = TestCa::new("rogue CA");
    let stranger = rogue.client("repliqate");
    let (good_cert, good_key, good_ca) = (
        std::fs::read(&cert).unwrap(),
        std::fs::read(&key).unwrap(),
        std::fs::read(&ca).unwrap(),
    );
    let mut rows = 10;
    for (step, reason) in [
        (1, "refused our client certificate"),
        (2, "not signed by a trusted CA"),
    ] {
        if step == 1 {
            std::fs::write(&cert, &stranger.cert).unwrap();
            std::fs::write(&key, &stranger.key).unwrap();
        } else {
            std::fs::write(&ca, &rogue.pem).unwrap();
        }
        std::fs::write(&token, unsecured_jwt(&format!("principal-{step}"), 3600)).unwrap();
        let started = Instant::now();
        while count(&daemon, reason) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the rotated file was not used (no {reason:?}):\n{}",
                common::daemon::tail(&daemon.log_text(), 30)
            );
            insert_more(&db, rows + 1, 5);
            rows += 5;
            std::thread::sleep(Duration::from_millis(300));
        }
        std::fs::write(&cert, &good_cert).unwrap();
        std::fs::write(&key, &good_key).unwrap();
        std::fs::write(&ca, &good_ca).unwrap();
        wait_for_position(&daemon, &position, rows, Duration::from_secs(30));
        assert!(daemon.alive(), "repliqate exited");
    }
    daemon.terminate(Duration::from_secs(30));
    read_back("sec_rotation", &access, &job.kafka.topic, rows);
}

/// A re-authentication the broker refuses (here: the rotated token names another principal,
/// which KIP-368 forbids on a live connection) falls back to a new connection at once, where
/// the new token is accepted: no error surfaces and no row is lost.
#[test]
fn a_refused_re_authentication_falls_back_to_a_new_connection() {
    let dir = TempDir::new("sec_reauth_fallback");
    let token = dir.write("token", &unsecured_jwt("repliqate", 3600));
    let mut access = Access::sasl_plaintext("OAUTHBEARER")
        .ours("sasl.oauthbearer.token.file", token.display().to_string());
    access.broker = listener("SASL_REAUTH");
    let (db, job, mut daemon, position) = running(&dir, "sec_reauth_fallback", &access, 10, |j| j);
    std::fs::write(&token, unsecured_jwt("someone-else", 3600)).unwrap();
    let next = keep_inserting(
        &db,
        11,
        10,
        Duration::from_millis(250),
        Duration::from_secs(8),
    );
    wait_for_position(&daemon, &position, next - 1, Duration::from_secs(30));
    let fallbacks = count(&daemon, "re-authentication failed, reconnecting");
    let errors = daemon
        .lines_with("ERROR")
        .into_iter()
        .filter(|l| l.contains("kafka"))
        .count();
    daemon.terminate(Duration::from_secs(30));
    assert!(
        fallbacks >= 1,
        "no refused re-authentication:\n{}",
        daemon.log_text()
    );
    assert_eq!(
        errors,
        0,
        "the fallback surfaced as an error:\n{}",
        daemon.log_text()
    );
    read_back("sec_reauth_fallback", &access, &job.kafka.topic, next - 1);
}

/// Client certificates and keys in every form Kafka's own clients read, each through the mTLS
/// listener end to end, and read back by kcat (librdkafka) given the very same material: an
/// X.509 v1 certificate (what `openssl x509 -req` makes without an extensions file), an
/// encrypted PKCS#8 key with `ssl.key.password`, a PKCS#12 keystore (librdkafka's
/// `ssl.keystore.location`, no type), and inline PEM (`ssl.ca.pem`, `ssl.certificate.pem`,
/// `ssl.key.pem`, as injected through the environment).
#[test]
fn every_form_of_client_material_replicates_end_to_end_and_kcat_takes_the_same() {
    let dir = TempDir::new("sec_forms");
    let forms = Forms::make(dir.path());
    let password = Forms::PASSWORD;
    let ssl = || {
        Access::new(listener("SSL"))
            .both("security.protocol", "SSL")
            .both("ssl.ca.location", stack_tls("ca.pem"))
    };
    replicates_end_to_end(
        "sec_form_v1",
        ssl()
            .both("ssl.certificate.location", forms.path("v1.pem"))
            .both("ssl.key.location", forms.path("v1.key")),
    );
    replicates_end_to_end(
        "sec_form_encrypted_key",
        ssl()
            .both("ssl.certificate.location", stack_tls("client.pem"))
            .both("ssl.key.location", forms.path("encrypted.key"))
            .both("ssl.key.password", password),
    );
    replicates_end_to_end(
        "sec_form_pkcs12_keystore",
        ssl()
            .both("ssl.keystore.location", forms.path("keystore.p12"))
            .both("ssl.keystore.password", password),
    );
    let text = |path: String| std::fs::read_to_string(path).unwrap();
    replicates_end_to_end(
        "sec_form_inline_pem",
        Access::new(listener("SSL"))
            .both("security.protocol", "SSL")
            .both("ssl.ca.pem", text(stack_tls("ca.pem")))
            .both("ssl.certificate.pem", text(stack_tls("client.pem")))
            .both("ssl.key.pem", text(stack_tls("client.key"))),
    );
}

/// Java's forms, which kcat has no names for: a PKCS#12 truststore made by `keytool` and a
/// PKCS#12 keystore (`ssl.*.type: PKCS12` with passwords), and a PEM keystore and truststore
/// given inline (`ssl.keystore.certificate.chain`, `ssl.keystore.key`,
/// `ssl.truststore.certificates`). Each replicates end to end, and Apache Kafka's own console
/// consumer (the Java client) reads the topic back with the same properties.
#[test]
fn java_keystores_and_truststores_replicate_end_to_end_and_the_java_client_takes_the_same() {
    let dir = TempDir::new("sec_java_forms");
    let forms = Forms::make(dir.path());
    let password = Forms::PASSWORD.to_string();
    let text = |path: String| std::fs::read_to_string(path).unwrap();
    let pkcs12 = [
        ("security.protocol", "SSL".to_string()),
        ("ssl.truststore.type", "PKCS12".into()),
        ("ssl.truststore.location", forms.path("truststore.p12")),
        ("ssl.truststore.password", password.clone()),
        ("ssl.keystore.type", "PKCS12".into()),
        ("ssl.keystore.location", forms.path("keystore.p12")),
        ("ssl.keystore.password", password.clone()),
        ("ssl.key.password", password),
    ];
    let pem = [
        ("security.protocol", "SSL".to_string()),
        ("ssl.truststore.type", "PEM".into()),
        ("ssl.truststore.certificates", text(stack_tls("ca.pem"))),
        ("ssl.keystore.type", "PEM".into()),
        (
            "ssl.keystore.certificate.chain",
            text(stack_tls("client.pem")),
        ),
        ("ssl.keystore.key", text(stack_tls("client.key"))),
    ];
    for (what, props) in [
        ("sec_java_pkcs12", &pkcs12[..]),
        ("sec_java_inline_pem", &pem[..]),
    ] {
        let mut access = Access::new(listener("SSL"));
        for (name, value) in props {
            access = access.ours(name, value.clone());
        }
        let (_run, job) = replicate(what, &access, 300, None);
        let values = java_read(dir.path(), &access.broker, props, &job.kafka.topic, 300);
        let mut ids: Vec<i64> = values
            .iter()
            .map(|v| {
                let v: Value = serde_json::from_str(v)
                    .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {v}"));
                v["data"]["id"].as_i64().unwrap()
            })
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            (1..=300).collect::<Vec<_>>(),
            "{what}: the Java client's read"
        );
    }
}

/// What cannot be used is refused at start-up with exit code 2 and one line naming the
/// property and the file, never the password (at -vvv): a wrong key password, a wrong keystore
/// password, a key that is not the certificate's (both files named), a JKS store and OpenSSL's
/// legacy encrypted PEM (each with the command that converts it).
#[test]
fn unusable_client_material_is_refused_at_start_up_naming_the_files_and_no_password() {
    let dir = TempDir::new("sec_forms_refused");
    let forms = Forms::make(dir.path());
    let wrong = "wrong-pass-9c1e";
    let ssl = || {
        Access::new(listener("SSL"))
            .ours("security.protocol", "SSL")
            .ours("ssl.ca.location", stack_tls("ca.pem"))
    };
    refused(
        "sec_wrong_key_password",
        ssl()
            .ours("ssl.certificate.location", stack_tls("client.pem"))
            .ours("ssl.key.location", forms.path("encrypted.key"))
            .ours("ssl.key.password", wrong),
        &format!(
            "ssl.key.location {}: cannot decrypt the key with \
             repliqate.replication.kafka_target.properties.ssl.key.password: wrong password?",
            forms.path("encrypted.key")
        ),
        &[wrong, Forms::PASSWORD],
    );
    refused(
        "sec_no_key_password",
        ssl()
            .ours("ssl.certificate.location", stack_tls("client.pem"))
            .ours("ssl.key.location", forms.path("encrypted.key")),
        "the key is encrypted and no password is given for it (ssl.key.password for Kafka",
        &[],
    );
    refused(
        "sec_wrong_keystore_password",
        ssl()
            .ours("ssl.keystore.location", forms.path("keystore.p12"))
            .ours("ssl.keystore.password", wrong),
        &format!(
            "ssl.keystore.location {}: cannot open the PKCS#12 store with \
             repliqate.replication.kafka_target.properties.ssl.keystore.password: wrong password?",
            forms.path("keystore.p12")
        ),
        &[wrong, Forms::PASSWORD],
    );
    refused(
        "sec_key_of_another_certificate",
        ssl()
            .ours("ssl.certificate.location", stack_tls("client.pem"))
            .ours("ssl.key.location", forms.path("other.key")),
        &format!(
            "ssl.key.location {}: is not the private key of the certificate in \
             repliqate.replication.kafka_target.properties.ssl.certificate.location {}",
            forms.path("other.key"),
            stack_tls("client.pem")
        ),
        &[],
    );
    refused(
        "sec_jks_truststore",
        Access::new(listener("SSL"))
            .ours("security.protocol", "SSL")
            .ours("ssl.certificate.location", stack_tls("client.pem"))
            .ours("ssl.key.location", stack_tls("client.key"))
            .ours("ssl.truststore.location", forms.path("truststore.jks"))
            .ours("ssl.truststore.password", Forms::PASSWORD),
        "keytool -importkeystore",
        &[Forms::PASSWORD],
    );
    refused(
        "sec_legacy_encrypted_pem",
        ssl()
            .ours("ssl.certificate.location", stack_tls("client.pem"))
            .ours("ssl.key.location", forms.path("legacy.key"))
            .ours("ssl.key.password", Forms::PASSWORD),
        "openssl pkcs8 -topk8 -v2 aes-256-cbc",
        &[Forms::PASSWORD],
    );
}

/// Confluent Cloud's client snippets, byte for byte as its console prints them for the Java
/// client and for librdkafka, with the stack's SASL_SSL listener and PLAIN credentials filled
/// in (and Schema Registry's left as placeholders).
const CONFLUENT_JAVA: &str = "\
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers={{ BROKER_ENDPOINT }}
security.protocol=SASL_SSL
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username='{{ CLUSTER_API_KEY }}' password='{{ CLUSTER_API_SECRET }}';
sasl.mechanism=PLAIN
# Required for correctness in Apache Kafka clients prior to 2.6
client.dns.lookup=use_all_dns_ips

# Best practice for higher availability in Apache Kafka clients prior to 3.0
session.timeout.ms=45000

# Best practice for Kafka producer to prevent data loss
acks=all

# Required connection configs for Confluent Cloud Schema Registry
schema.registry.url=https://{{ SR_ENDPOINT }}
basic.auth.credentials.source=USER_INFO
basic.auth.user.info={{ SR_API_KEY }}:{{ SR_API_SECRET }}
";

const CONFLUENT_LIBRDKAFKA: &str = "\
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers={{ BROKER_ENDPOINT }}
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.username={{ CLUSTER_API_KEY }}
sasl.password={{ CLUSTER_API_SECRET }}

# Best practice for higher availability in librdkafka clients prior to 1.7
session.timeout.ms=45000

# Required connection configs for Confluent Cloud Schema Registry
schema.registry.url=https://{{ SR_ENDPOINT }}
basic.auth.credentials.source=USER_INFO
basic.auth.user.info={{ SR_API_KEY }}:{{ SR_API_SECRET }}
";

/// A provider's snippet, as a `properties_file` and pasted under `properties:` (each line's
/// name and value as YAML), replicates over SASL_SSL PLAIN with no other Kafka setting: the
/// brokers and credentials are the snippet's, the broker's CA comes from the system's store as
/// Confluent Cloud's public one would (`SSL_CERT_FILE`). The properties of the consumer and the
/// Schema Registry client are named in one warning each, without their values; kcat reads
/// every row back.
#[test]
fn confluent_cloud_snippets_replicate_as_a_properties_file_and_pasted_under_properties() {
    let (user, password) = plain_user();
    let sr_secret = "sr-secret-5d2b";
    for (form, snippet) in [
        ("java", CONFLUENT_JAVA),
        ("librdkafka", CONFLUENT_LIBRDKAFKA),
    ] {
        let filled = snippet
            .replace("{{ BROKER_ENDPOINT }}", &listener("SASL_SSL"))
            .replace("{{ CLUSTER_API_KEY }}", &user)
            .replace("{{ CLUSTER_API_SECRET }}", &password)
            .replace("{{ SR_ENDPOINT }}", "psrc-stack.example")
            .replace("{{ SR_API_KEY }}", "sr-key")
            .replace("{{ SR_API_SECRET }}", sr_secret);
        let pasted: Map<String, Value> = filled
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), json!(v))
            })
            .collect();
        for how in ["file", "pasted"] {
            let what = format!("sec_confluent_{form}_{how}");
            let dir = TempDir::new(&what);
            let db = Db::Sqlite(dir.path().join("source.db"));
            db.create_filled("events", 200);
            let topic = unique(&what);
            create_topic(&broker(), &topic, PARTITIONS);
            let mut job = JobConfig::new(&unique("job_confluent"), &db.uri(), "events", &topic)
                .state_file(dir.path().join("position"));
            job = match how {
                "file" => {
                    let file = dir.write("client.properties", &filled);
                    job.set(
                        "replication.kafka_target.properties_file",
                        file.display().to_string(),
                    )
                }
                _ => job.set(
                    "replication.kafka_target.properties",
                    Value::Object(pasted.clone()),
                ),
            };
            let config = dir.write("config.yaml", &job.yaml());
            let output = run_with_env(
                &["--config", config.to_str().unwrap(), "--once", "-vv"],
                &[("SSL_CERT_FILE", stack_tls("ca.pem"))],
                Duration::from_secs(120),
            );
            assert_exit(&output, 0, &what);
            let stderr = String::from_utf8_lossy(&output.stderr);
            for name in [
                "session.timeout.ms",
                "schema.registry.url",
                "basic.auth.credentials.source",
                "basic.auth.user.info",
            ] {
                let warnings = stderr
                    .lines()
                    .filter(|l| l.contains(&format!("{name} is ignored")))
                    .count();
                assert_eq!(warnings, 1, "{what}: one warning for {name}:\n{stderr}");
            }
            for secret in [sr_secret, password.as_str()] {
                assert!(
                    !stderr.contains(secret),
                    "{what}: a secret in stderr:\n{stderr}"
                );
            }
            let read = kcat_read(
                &listener("SASL_SSL"),
                &Access::sasl_ssl("PLAIN").kcat,
                &topic,
                200,
                Duration::from_secs(60),
            );
            assert_rows(&what, &read, 200);
        }
    }
}
