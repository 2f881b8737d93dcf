//! Support for the fault suites (tests/faults.rs, tests/failover.rs): a job's config file, the
//! `repliqate` binary run as a daemon with its output in a file (so a test can wait for a log
//! line, signal it, kill it), stack services stopped with a guard that always starts them again,
//! tables filled fast on each database, a writer thread that keeps inserting through outages, the
//! Redis position read without panicking while Redis is down, and the topic read back as ids with
//! their counts.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::e2e::{
    bin, consume_until_quiet, mysql_uri, pg_uri, position_key, redis_addr, unique, TempDir,
};

// ---------------------------------------------------------------------------------------------
// The daemon

/// A running `repliqate`, stdout and stderr going to one log file.
pub struct Daemon {
    child: Child,
    pub pid: u32,
    pub log: PathBuf,
    pub started: Instant,
    status: Option<ExitStatus>,
}

impl Daemon {
    pub fn start(config: &Path, args: &[&str], log: PathBuf) -> Daemon {
        let out = File::create(&log).expect("creating the daemon's log file");
        let err = out.try_clone().expect("cloning the log file handle");
        let child = Command::new(bin())
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting repliqate");
        Daemon {
            pid: child.id(),
            child,
            log,
            started: Instant::now(),
            status: None,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Lines of the log containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Waits until the log has at least `n` lines containing `needle`; returns when it saw them,
    /// or None after `timeout`.
    pub fn wait_for_lines(&self, needle: &str, n: usize, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines_with(needle).len() >= n {
                return Some(Instant::now());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<Instant> {
        self.wait_for_lines(needle, 1, timeout)
    }

    pub fn alive(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.status = Some(s);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Sends `sig` (KILL, STOP, CONT, TERM) through kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid.to_string()])
            .status()
            .expect("running kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.pid);
    }

    /// SIGKILL, then reaps the process.
    pub fn kill9(&mut self) {
        if self.alive() {
            self.signal("KILL");
        }
        self.wait(Duration::from_secs(10));
    }

    /// Waits for the process to exit; panics (after killing it) past `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.status {
                return s;
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "repliqate (pid {}) did not exit within {limit:?}; log:\n{}",
                    self.pid,
                    tail(&self.log_text(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.alive() {
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid.to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `n` lines of `text`, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Stack services

fn stack(command: &str, service: &str) -> Result<(), String> {
    let out = Command::new(super::broker::stack_script())
        .args([command, service])
        .output()
        .map_err(|e| format!("running scripts/stack {command} {service}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/stack {command} {service} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A stack service stopped by a test. Dropping it starts the service again, so that a failing
/// test never leaves the shared stack broken.
pub struct Stopped {
    service: &'static str,
    running: bool,
}

pub fn stop_service(service: &'static str) -> Stopped {
    stack("stop", service).unwrap_or_else(|e| panic!("{e}"));
    Stopped {
        service,
        running: false,
    }
}

impl Stopped {
    /// Starts the service again (the script waits until it is ready); returns when it is.
    pub fn start(&mut self) -> Instant {
        stack("start", self.service).unwrap_or_else(|e| panic!("{e}"));
        self.running = true;
        Instant::now()
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.running {
            if let Err(e) = stack("start", self.service) {
                eprintln!("restarting {} after a failed test: {e}", self.service);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Databases

/// One of the test databases, holding table(s) `t_…` with `id` and `v`.
#[derive(Clone, Debug)]
#[allow(clippy::enum_variant_names)] // MariaDb is the product's name
pub enum Db {
    Sqlite(PathBuf),
    Postgres,
    MariaDb,
}

impl Db {
    pub fn label(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres => "postgresql",
            Db::MariaDb => "mariadb",
        }
    }

    pub fn uri(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite:///{}", p.display()),
            Db::Postgres => pg_uri(),
            Db::MariaDb => mysql_uri(),
        }
    }

    /// Creates `table (id <auto-increment> PRIMARY KEY, v text)` with `rows` rows, ids 1..=rows,
    /// in one statement or transaction.
    pub fn create_filled(&self, table: &str, rows: u64) {
        match self {
            Db::Sqlite(path) => {
                let mut c = rusqlite::Connection::open(path).expect("open sqlite");
                c.execute_batch(&format!(
                    "CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"
                ))
                .expect("create table");
                let tx = c.transaction().expect("begin");
                {
                    let mut stmt = tx
                        .prepare(&format!("INSERT INTO {table} (id, v) VALUES (?, ?)"))
                        .expect("prepare");
                    for i in 1..=rows as i64 {
                        stmt.execute(rusqlite::params![i, format!("row {i}")])
                            .expect("insert");
                    }
                }
                tx.commit().expect("commit");
            }
            Db::Postgres => {
                let mut c = pg_client();
                c.batch_execute(&format!(
                    "CREATE TABLE {table} (id bigserial PRIMARY KEY, v text NOT NULL); \
                     INSERT INTO {table} (v) SELECT 'row ' || g FROM generate_series(1, {rows}) g"
                ))
                .expect("create and fill a postgres table");
            }
            Db::MariaDb => {
                use mysql::prelude::Queryable;
                let mut c = my_conn();
                c.query_drop(format!(
                    "CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
                     v VARCHAR(100) NOT NULL)"
                ))
                .expect("create a mariadb table");
                if rows > 0 {
                    c.query_drop(format!(
                        "INSERT INTO {table} (v) SELECT CONCAT('row ', seq) FROM seq_1_to_{rows}"
                    ))
                    .expect("fill a mariadb table (needs the Sequence engine)");
                }
            }
        }
    }

    /// Every id in `table`, ascending (the independent truth of what must be in the topic).
    pub fn ids(&self, table: &str) -> Vec<i64> {
        let sql = format!("SELECT id FROM {table} ORDER BY id");
        match self {
            Db::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).expect("open sqlite");
                let mut stmt = c.prepare(&sql).expect("prepare");
                let ids = stmt
                    .query_map([], |r| r.get::<_, i64>(0))
                    .expect("query")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("ids");
                ids
            }
            Db::Postgres => pg_client()
                .query(&sql, &[])
                .expect("select ids")
                .iter()
                .map(|r| r.get::<_, i64>(0))
                .collect(),
            Db::MariaDb => {
                use mysql::prelude::Queryable;
                my_conn().query(sql).expect("select ids")
            }
        }
    }

    pub fn max_id(&self, table: &str) -> i64 {
        self.ids(table).last().copied().unwrap_or(0)
    }

    pub fn drop_table(&self, table: &str) {
        let sql = format!("DROP TABLE IF EXISTS {table}");
        match self {
            Db::Sqlite(_) => {}
            Db::Postgres => {
                if let Ok(mut c) = postgres::Client::connect(&pg_uri(), postgres::NoTls) {
                    let _ = c.batch_execute(&sql);
                }
            }
            Db::MariaDb => {
                use mysql::prelude::Queryable;
                if let Ok(opts) = mysql::Opts::from_url(&mysql_uri()) {
                    if let Ok(mut c) = mysql::Conn::new(opts) {
                        let _ = c.query_drop(sql);
                    }
                }
            }
        }
    }
}

pub fn pg_client() -> postgres::Client {
    postgres::Client::connect(&pg_uri(), postgres::NoTls).unwrap_or_else(|e| {
        panic!("connecting to the test PostgreSQL: {e}; run `make stack-up` and `eval \"$(scripts/stack env)\"`")
    })
}

pub fn my_conn() -> mysql::Conn {
    let opts = mysql::Opts::from_url(&mysql_uri()).expect("mysql uri");
    mysql::Conn::new(opts).unwrap_or_else(|e| {
        panic!("connecting to the test MariaDB: {e}; run `make stack-up` and `eval \"$(scripts/stack env)\"`")
    })
}

/// Drops the table when dropped.
pub struct TableGuard(pub Db, pub String);

impl Drop for TableGuard {
    fn drop(&mut self) {
        self.0.drop_table(&self.1);
    }
}

/// A thread inserting rows into a table at a steady rate, through outages (a failed insert is
/// retried on a new connection; what was inserted is read back from the table at the end).
pub struct Writer {
    stop: Arc<AtomicBool>,
    inserted: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(db: Db, table: &str, per_sec: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let inserted = Arc::new(AtomicU64::new(0));
        let (s, n, table) = (stop.clone(), inserted.clone(), table.to_string());
        let handle = std::thread::spawn(move || write_rows(db, &table, per_sec, &s, &n));
        Writer {
            stop,
            inserted,
            handle: Some(handle),
        }
    }

    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::SeqCst)
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_rows(db: Db, table: &str, per_sec: u64, stop: &AtomicBool, inserted: &AtomicU64) {
    enum Conn {
        Sqlite(rusqlite::Connection),
        Pg(postgres::Client),
        My(mysql::Conn),
    }
    let connect = || -> Option<Conn> {
        match &db {
            Db::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).ok()?;
                c.busy_timeout(Duration::from_secs(5)).ok()?;
                Some(Conn::Sqlite(c))
            }
            Db::Postgres => {
                let mut cfg: postgres::Config = pg_uri().parse().ok()?;
                cfg.connect_timeout(Duration::from_secs(1));
                cfg.connect(postgres::NoTls).ok().map(Conn::Pg)
            }
            Db::MariaDb => {
                let opts = mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&mysql_uri()).ok()?)
                    .tcp_connect_timeout(Some(Duration::from_secs(1)))
                    .read_timeout(Some(Duration::from_secs(2)))
                    .write_timeout(Some(Duration::from_secs(2)));
                mysql::Conn::new(opts).ok().map(Conn::My)
            }
        }
    };
    let sql = format!("INSERT INTO {table} (v) VALUES ('written')");
    let started = Instant::now();
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let due = started + Duration::from_micros(n * 1_000_000 / per_sec.max(1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if conn.is_none() {
            conn = connect();
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let ok = match conn.as_mut() {
            Some(Conn::Sqlite(c)) => c.execute(&sql, []).is_ok(),
            Some(Conn::Pg(c)) => c.batch_execute(&sql).is_ok(),
            Some(Conn::My(c)) => {
                use mysql::prelude::Queryable;
                c.query_drop(&sql).is_ok()
            }
            None => false,
        };
        if ok {
            inserted.fetch_add(1, Ordering::SeqCst);
            n += 1;
        } else {
            conn = None;
            std::thread::sleep(Duration::from_millis(100));
        }
        // After an outage, do not try to catch up on the missed inserts in one burst.
        if Instant::now() > due + Duration::from_secs(1) {
            n = (started.elapsed().as_micros() as u64 * per_sec / 1_000_000).max(n);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Redis position, read without panicking while Redis is down

/// The stored position; Err while Redis is unreachable.
pub fn try_position(key: &str) -> Result<Option<i128>, String> {
    let client =
        redis::Client::open(format!("redis://{}/", redis_addr())).map_err(|e| e.to_string())?;
    let mut c = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .map_err(|e| e.to_string())?;
    let v: Option<String> = redis::cmd("GET")
        .arg(key)
        .query(&mut c)
        .map_err(|e| e.to_string())?;
    v.map(|s| {
        s.parse::<i128>()
            .map_err(|e| format!("position {s:?}: {e}"))
    })
    .transpose()
}

/// Waits until the stored position is at least `target`; returns when, or None after `timeout`.
pub fn wait_position(key: &str, target: i128, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if matches!(try_position(key), Ok(Some(p)) if p >= target) {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Samples the position every 50 ms on a thread, until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(Instant, i128)>>>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    pub fn start(key: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out, key) = (stop.clone(), samples.clone(), key.to_string());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if let Ok(Some(p)) = try_position(&key) {
                    out.lock().unwrap().push((Instant::now(), p));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler {
            stop,
            samples,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns the samples.
    pub fn finish(mut self) -> Vec<(Instant, i128)> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// The topic

/// Ids (message keys) in `topic` and how often each appears, read with librdkafka until at least
/// `at_least` messages arrived and then nothing for 2 s.
pub fn ids_in_topic(
    broker: &str,
    topic: &str,
    partitions: i32,
    at_least: usize,
) -> HashMap<i64, usize> {
    let msgs = consume_until_quiet(
        broker,
        topic,
        partitions,
        at_least,
        Duration::from_secs(2),
        Duration::from_secs(90),
    );
    let mut ids: HashMap<i64, usize> = HashMap::new();
    for m in &msgs {
        let key = std::str::from_utf8(m.key.as_deref().expect("every message has a key"))
            .expect("utf-8 key");
        *ids.entry(key.parse().expect("decimal key")).or_default() += 1;
    }
    ids
}

/// Checks that every id of `expected` is in the topic and nothing else is; returns the number of
/// duplicate messages.
pub fn assert_all_there(what: &str, expected: &[i64], ids: &HashMap<i64, usize>) -> usize {
    let missing: Vec<i64> = expected
        .iter()
        .filter(|id| !ids.contains_key(id))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} rows lost (ids missing from the topic, first 10: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let known: std::collections::HashSet<i64> = expected.iter().copied().collect();
    let unknown: Vec<i64> = ids
        .keys()
        .filter(|id| !known.contains(id))
        .copied()
        .collect();
    assert!(
        unknown.is_empty(),
        "{what}: ids in the topic that are not in the table: {:?}",
        &unknown[..unknown.len().min(10)]
    );
    ids.values().map(|n| n - 1).sum()
}

/// A deterministic PRNG (splitmix64) for reproducible fault schedules.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// A job

/// A job's config file. `top` goes under `repliqate:` (2 spaces), `src` under `sql_source` and
/// `kafka` under `kafka_target` (6 spaces). Without `state_file` in `top`, the Redis store.
pub struct Job {
    pub name: String,
    pub table: String,
    pub topic: String,
    pub uri: String,
    /// Bootstrap brokers, comma-separated.
    pub broker: String,
    /// The position store line(s): `redis_addr` (the default) or `state_file`.
    pub store: String,
    pub top: String,
    pub src: String,
    pub kafka: String,
}

impl Job {
    pub fn new(base: &str, db: &Db, table: &str, broker: &str) -> Job {
        let topic = unique(base);
        Job {
            name: unique(&format!("job_{base}")),
            table: table.to_string(),
            topic,
            uri: db.uri(),
            broker: broker.to_string(),
            store: format!("  redis_addr: {}", redis_addr()),
            top: String::new(),
            src: String::new(),
            kafka: String::new(),
        }
    }

    pub fn key(&self) -> String {
        position_key(&self.name, &self.table, &self.topic)
    }

    pub fn yaml(&self) -> String {
        format!(
            "repliqate:
  name: {name}
{store}
{top}
  replication:
    poll_interval_sec: 0.2
    sql_source:
      uri: '{uri}'
      table: {table}
      primary_key: id
{src}
    kafka_target:
      topic: {topic}
      brokers: [{brokers}]
{kafka}
",
            name = self.name,
            store = self.store,
            top = self.top,
            uri = self.uri,
            table = self.table,
            src = self.src,
            topic = self.topic,
            brokers = self
                .broker
                .split(',')
                .map(|b| format!("'{b}'"))
                .collect::<Vec<_>>()
                .join(", "),
            kafka = self.kafka,
        )
    }

    pub fn write(&self, dir: &TempDir) -> PathBuf {
        dir.write("config.yaml", &self.yaml())
    }
}
