//! The daemon end to end with its position in Redis over TLS (`redis_url: rediss://…` with an
//! ACL user, `redis_tls` with the stack's CA and client certificate): a SQLite table replicated
//! to the plaintext broker, the position read back over Redis's plaintext port with the redis
//! crate, independent of repliqate's store.

mod common;

use std::path::Path;
use std::time::Duration;

use common::daemon::{assert_exit, run};
use common::db::Db;
use common::env::{stack_var, unique, TempDir};
use common::job::JobConfig;
use common::kafka::{broker, consume_all, create_topic};
use common::position::{redis_get, RedisKeyGuard};
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
