//! The daemon end to end with its position in Redis over TLS (`redis_url: rediss://…` with an
//! ACL user, `redis_tls` with the stack's CA and client certificate): a SQLite table replicated
//! to the plaintext broker, the position read back over Redis's plaintext port with the redis
//! crate, independent of repliqate's store; and an encrypted client key against a Redis of the
//! test's own that requires client certificates.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::{assert_exit, run};
use common::db::Db;
use common::env::{stack_var, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, consume_all, create_topic};
use common::position::{redis_get, RedisKeyGuard};
use common::secure::{stack_tls, Forms};
use serde_json::json;

#[test]
fn the_position_is_kept_in_redis_over_tls_with_an_acl_user() {
    const ROWS: u64 = 50;
    let dir = TempDir::new("sec_redis");
    let db = Db::Sqlite(dir.path().join("source.db"));
    db.create_filled("events", ROWS);
    let topic = unique("sec_redis");
    create_topic(&broker(), &topic, 1);
    let tls = |file: &str| {
        Path::new(&stack_var("REPLIQATE_TLS_DIR"))
            .join(file)
            .display()
            .to_string()
    };
    let password = stack_var("REPLIQATE_TEST_REDIS_ACL_PASSWORD");
    let password_file = dir.write("redis-password", &format!("{password}\n"));
    let url = format!(
        "rediss://{}@{}/0",
        stack_var("REPLIQATE_TEST_REDIS_ACL_USER"),
        stack_var("REPLIQATE_TEST_REDIS_TLS")
    );
    let job = JobConfig::new(&unique("job_sec_redis"), &db.uri(), "events", &topic)
        .brokers(&broker())
        .set("redis_url", url)
        .set("redis_password_file", password_file.display().to_string())
        .set(
            "redis_tls",
            json!({"ca_file": tls("ca.pem"), "cert_file": tls("client.pem"), "key_file": tls("client.key")}),
        );
    let key = job.key();
    let _guard = RedisKeyGuard(key.clone());
    let config = dir.write("config.yaml", &job.yaml());
    let output = run(
        &["--config", config.to_str().unwrap(), "--once", "-vvv"],
        Duration::from_secs(120),
    );
    assert_exit(
        &output,
        0,
        "repliqate --once with its position in rediss://",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains(&password),
        "the Redis password is in the log"
    );
    assert_eq!(redis_get(&key).as_deref(), Some(ROWS.to_string().as_str()));
    let read = consume_all(&broker(), &topic, 1, ROWS as usize, Duration::from_secs(30));
    assert_eq!(read.len() as u64, ROWS);
}

/// A Redis of the test's own on the stack's certificates that requires a client certificate
/// (`--tls-auth-clients yes`), on a free loopback port; stopped when dropped.
struct ClientAuthRedis {
    child: std::process::Child,
    addr: String,
}

impl ClientAuthRedis {
    fn start(dir: &Path) -> ClientAuthRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--tls-cert-file", &stack_tls("server.pem")])
            .args(["--tls-key-file", &stack_tls("server.key")])
            .args(["--tls-ca-cert-file", &stack_tls("ca.pem")])
            .args(["--tls-auth-clients", "yes", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting redis-server: {e} (Debian: apt-get install redis-server; .ci/run installs it)")
            });
        let addr = format!("127.0.0.1:{port}");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ClientAuthRedis { child, addr }
    }
}

impl Drop for ClientAuthRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `redis_tls` with an encrypted PKCS#8 client key and `key_password_file`, against a Redis that
/// requires client certificates: the job replicates and keeps its position there (read back
/// with redis-cli, another client). A wrong password is a configuration error naming the key
/// file and the setting, not the password; and without the key the Redis refuses the
/// connection, so the key was what let us in. An X.509 v1 certificate is refused naming the
/// redis driver, which loads the pair through rustls's own (webpki) check.
#[test]
fn an_encrypted_client_key_opens_a_redis_that_requires_client_certificates() {
    let dir = TempDir::new("sec_redis_key");
    let forms = Forms::make(dir.path());
    let redis = ClientAuthRedis::start(dir.path());
    let db = Db::Sqlite(dir.path().join("source.db"));
    db.create_filled("events", 20);
    let topic = unique("sec_redis_key");
    create_topic(&broker(), &topic, 1);
    let config_with = |tls: serde_json::Value| {
        let job = JobConfig::new(&unique("job_sec_redis_key"), &db.uri(), "events", &topic)
            .brokers(&broker())
            .set("redis_url", format!("rediss://{}/0", redis.addr))
            .set("redis_tls", tls);
        (job.key(), dir.write("config.yaml", &job.yaml()))
    };
    let run_once = |config: &Path| {
        run(
            &["--config", config.to_str().unwrap(), "--once", "-vvv"],
            Duration::from_secs(60),
        )
    };
    let password_file = dir.write("key-password", &format!("{}\n", Forms::PASSWORD));
    let (key, config) = config_with(json!({
        "ca_file": stack_tls("ca.pem"),
        "cert_file": stack_tls("client.pem"),
        "key_file": forms.path("encrypted.key"),
        "key_password_file": password_file.display().to_string(),
    }));
    let output = run_once(&config);
    assert_exit(&output, 0, "rediss:// with an encrypted client key");
    let stored = std::process::Command::new("redis-cli")
        .args(["--tls", "--cacert", &stack_tls("ca.pem")])
        .args([
            "--cert",
            &stack_tls("client.pem"),
            "--key",
            &stack_tls("client.key"),
        ])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            redis.addr.rsplit(':').next().unwrap(),
            "GET",
            &key,
        ])
        .output()
        .expect("running redis-cli");
    assert_eq!(
        String::from_utf8_lossy(&stored.stdout).trim(),
        "20",
        "the position in Redis"
    );

    let wrong = dir.write("wrong-password", "not-the-password-3e1\n");
    let (_, config) = config_with(json!({
        "ca_file": stack_tls("ca.pem"),
        "cert_file": stack_tls("client.pem"),
        "key_file": forms.path("encrypted.key"),
        "key_password_file": wrong.display().to_string(),
    }));
    let output = run_once(&config);
    assert_exit(&output, 2, "a wrong key password");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!(
            "repliqate.redis_tls.key_file {}",
            forms.path("encrypted.key")
        )) && last.contains("cannot decrypt the key with repliqate.redis_tls.key_password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-password-3e1") && !stderr.contains(Forms::PASSWORD),
        "{stderr}"
    );

    let (_, config) = config_with(json!({"ca_file": stack_tls("ca.pem")}));
    let output = run_once(&config);
    assert_ne!(
        output.status.code(),
        Some(0),
        "Redis let a client in without a certificate"
    );

    let (_, config) = config_with(json!({
        "ca_file": stack_tls("ca.pem"),
        "cert_file": forms.path("v1.pem"),
        "key_file": forms.path("v1.key"),
    }));
    let output = run_once(&config);
    assert_exit(&output, 2, "a v1 client certificate for Redis");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is an X.509 v1 certificate, which the redis driver"),
        "{stderr}"
    );
}
