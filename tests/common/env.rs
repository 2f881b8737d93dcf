//! The test stack's addresses from the environment (a missing one fails the test with
//! instructions, never skips it), names no other test uses, temporary directories, and a job
//! config with the stack's defaults.

use std::path::{Path, PathBuf};

use super::job::JobConfig;

/// The value of a test-stack variable (set by `eval "$(scripts/stack env)"`); panics with
/// instructions when it is not set.
pub fn stack_var(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: this test needs the local test stack (PostgreSQL, MariaDB, Redis, \
             Kafka). Run `make stack-up` and `eval \"$(scripts/stack env)\"`, or `make test`"
        ),
    }
}

/// The test PostgreSQL, as a URI with the password `repliqate-secret` in it.
pub fn pg_uri() -> String {
    stack_var("REPLIQATE_TEST_PG_URI")
}

/// The test MariaDB, as a URI with the password `repliqate-secret` in it.
pub fn mysql_uri() -> String {
    stack_var("REPLIQATE_TEST_MYSQL_URI")
}

/// `host:port` of the test Redis.
pub fn redis_addr() -> String {
    stack_var("REPLIQATE_TEST_REDIS")
}

/// `host:port` of the test stack's single Kafka broker.
pub fn kafka_broker() -> String {
    stack_var("REPLIQATE_TEST_KAFKA")
}

/// A name no other test (or concurrent test run) uses: `base` followed by `_`, the process id, a
/// counter and the clock's nanoseconds. With a `base` of letters, digits and `_`, it is a valid
/// table name, topic name and job name everywhere.
pub fn unique(base: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{base}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory of its own under the system's temp directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(base: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(&format!("repliqate-{base}")));
        std::fs::create_dir_all(&path).expect("creating a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` in this directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("writing a temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Epoch seconds now, as a float (the `timestamp` of a message is one of these).
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A job on the test stack: named `job_{base}_…`, replicating `table` (key `id`) of the database
/// at `uri` to a topic of its own named `{base}_…` (not created here), its position in the test
/// Redis, the test broker its broker.
pub fn stack_job(base: &str, uri: &str, table: &str) -> JobConfig {
    JobConfig::new(&unique(&format!("job_{base}")), uri, table, &unique(base))
        .redis(&redis_addr())
        .brokers(&kafka_broker())
}
