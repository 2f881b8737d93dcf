//! Support for the tests that run the real `repliqate` binary: the test stack's addresses from the
//! environment (missing = a failed test with instructions, never a skip), temporary directories
//! and config files, running the binary with a deadline, reading and writing the Redis position
//! with the redis crate directly (not through repliqate's own store), and checking published
//! messages with an independent python3 (`json.dumps(data, sort_keys=True)` is the contract).

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The value of a test-stack variable; panics with instructions when it is not set.
pub fn stack_var(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: this test needs the local test stack (PostgreSQL, MariaDB, Redis, \
             Kafka). Run `make stack-up` and `eval \"$(scripts/stack env)\"`, or `make test`"
        ),
    }
}

pub fn pg_uri() -> String {
    stack_var("REPLIQATE_TEST_PG_URI")
}

pub fn mysql_uri() -> String {
    stack_var("REPLIQATE_TEST_MYSQL_URI")
}

/// `host:port` of the test Redis.
pub fn redis_addr() -> String {
    stack_var("REPLIQATE_TEST_REDIS")
}

/// A name no other test (or concurrent test run) uses: letters, digits and `_` only, so it is a
/// valid table name, topic name and job name everywhere.
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

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

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

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_repliqate")
}

/// Runs the binary with `args` to completion, killing it after `limit` (a failed test, not a
/// hang).
pub fn run(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting repliqate");
    wait_output(child, limit)
}

/// Waits for `child` (stdout/stderr piped) at most `limit`; kills it and panics after that.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for repliqate") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_t.join().unwrap_or_default();
            panic!(
                "repliqate did not exit within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Sends SIGTERM to a process by pid, through kill(1).
pub fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("running kill(1)");
    assert!(status.success(), "kill -TERM {pid} failed");
}

/// The Redis key of a job's position, spelled out as COMPAT.md defines it (not through
/// repliqate's own code).
pub fn position_key(name: &str, table: &str, topic: &str) -> String {
    format!("repliqate:replication:offset:name={name}&table={table}&topic={topic}")
}

pub fn redis_conn() -> redis::Connection {
    let client = redis::Client::open(format!("redis://{}/", redis_addr())).expect("redis client");
    client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| {
            panic!(
                "connecting to the test Redis at {}: {e}; run `make stack-up` and \
                 `eval \"$(scripts/stack env)\"`",
                redis_addr()
            )
        })
}

pub fn redis_get(key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut redis_conn())
        .expect("redis GET")
}

pub fn redis_set(key: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query(&mut redis_conn())
        .expect("redis SET");
}

pub fn redis_del(key: &str) {
    let _: i64 = redis::cmd("DEL")
        .arg(key)
        .query(&mut redis_conn())
        .expect("redis DEL");
}

/// Deletes the Redis key when dropped, so test runs do not accumulate positions.
pub struct RedisKeyGuard(pub String);

impl Drop for RedisKeyGuard {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(format!("redis://{}/", redis_addr())) {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) {
                let _: Result<i64, _> = redis::cmd("DEL").arg(&self.0).query(&mut c);
            }
        }
    }
}

/// The checker script (tests/e2e/check_messages.py).
pub fn checker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/check_messages.py")
}

/// Has python3 check every message against its expected `data` (canonical forms compared with
/// `json.dumps(…, sort_keys=True)`, so `1` ≠ `1.0` and `-0.0` ≠ `0.0`), the key order of the
/// message and of `data`, `name`, `table`, `timestamp` within [`t0`, `t1`], and `hash` =
/// sha256 of `json.dumps(data, sort_keys=True)`. `pairs` are (expected data as JSON text with
/// keys in column order, the message value as consumed). Panics with python's report unless it
/// prints `ok`.
pub fn python_check(pairs: &[(String, &[u8])], name: &str, table: &str, t0: f64, t1: f64) {
    let dir = TempDir::new("pycheck");
    let path = dir.path().join("messages.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("temp file"));
    for (expected, value) in pairs {
        // One JSON document per line: the message as published, verbatim, beside its
        // expectation. JSON text holds no raw newline (it is escaped inside strings).
        f.write_all(b"{\"expected\": ").unwrap();
        f.write_all(expected.as_bytes()).unwrap();
        f.write_all(b", \"message\": ").unwrap();
        f.write_all(value).unwrap();
        f.write_all(b"}\n").unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let output = Command::new("python3")
        .arg(checker_script())
        .arg(&path)
        .args([name, table, &t0.to_string(), &t1.to_string()])
        .output()
        .unwrap_or_else(|e| {
            panic!("running python3: {e}; this test needs python3 (apt-get install python3)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == format!("ok {}", pairs.len()),
        "python3 check of {} messages failed:\n{stdout}\n{}",
        pairs.len(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Epoch seconds now, as a float (the `timestamp` of a message is one of these).
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Asserts the binary exited with `code`, printing its output when not.
pub fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: expected exit code {code}; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Independent value helpers: the expected form of values, computed here without repliqate.

/// splitmix64: deterministic, varied test values.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD`, `HH:MM:SS` of epoch seconds (UTC).
pub fn date_time(secs: i64) -> (String, String) {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    )
}

/// `.ffffff`, or nothing for zero microseconds (Python's `isoformat()`).
pub fn micros_suffix(micros: u32) -> String {
    if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    }
}

/// Strings that exercise the JSON encoder: escapes, control characters, non-ASCII, astral
/// characters (surrogate pairs), `/`, quotes and backslashes.
pub const TRICKY_STRINGS: &[&str] = &[
    "",
    "plain",
    "héllo wörld",
    "emoji 🎉 and 𝄞",
    "quote \" backslash \\ slash /",
    "new\nline\r\ttab\u{8}\u{c}",
    "ctrl \u{1}\u{1f}\u{7f}",
    "日本語テキスト",
    "\u{2028}\u{2029}\u{feff}",
    "' OR 1=1; --",
    "  spaces around  ",
    "{\"not\": \"json\"}",
];

/// A string for row `i`: one of the tricky ones, or a generated one of varying length.
pub fn text_value(i: u64, salt: u64) -> String {
    let r = mix(i ^ salt);
    if r.is_multiple_of(3) {
        TRICKY_STRINGS[(r >> 8) as usize % TRICKY_STRINGS.len()].to_string()
    } else {
        let len = (r >> 16) % 40;
        let pool: Vec<char> = "abcXYZ 0189_-é€🎉\"\\\n".chars().collect();
        (0..len)
            .map(|k| pool[(mix(r ^ k) % pool.len() as u64) as usize])
            .collect()
    }
}

/// Finite f64 edge values and random ones; `None` = use a non-finite value (published as null).
pub fn float_value(i: u64, salt: u64) -> f64 {
    const EDGES: &[f64] = &[
        0.0,
        -0.0,
        1.0,
        -1.5,
        0.1,
        1e16,
        1e-5,
        0.0001,
        123_456_789_012_345.6,
        1.5e300,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        -2.5e-10,
        9_007_199_254_740_993.0,
    ];
    let r = mix(i ^ salt);
    if r.is_multiple_of(4) {
        EDGES[(r >> 8) as usize % EDGES.len()]
    } else {
        let x = f64::from_bits(mix(r));
        if x.is_finite() {
            x
        } else {
            (r >> 11) as f64 / 1024.0
        }
    }
}

/// f32 edge values and random ones (finite).
pub fn float32_value(i: u64, salt: u64) -> f32 {
    const EDGES: &[f32] = &[
        0.0,
        -0.0,
        1.1,
        3.402_823_5e38,
        1e-45,
        -0.5,
        16_777_217.0,
        0.3,
    ];
    let r = mix(i ^ salt);
    if r.is_multiple_of(4) {
        EDGES[(r >> 8) as usize % EDGES.len()]
    } else {
        let x = f32::from_bits(mix(r) as u32);
        if x.is_finite() {
            x
        } else {
            (r >> 40) as f32 / 8.0
        }
    }
}

/// The value a consumer sees for an f32 column: the shortest decimal that round-trips the f32,
/// read as a double (what Python would get from `float(str(x))`).
pub fn f32_published(x: f32) -> f64 {
    format!("{x}").parse::<f64>().expect("f32 display parses")
}

/// serde_json value of an f64, with non-finite values as null (documented in src/message.rs).
pub fn json_f64(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// A nested JSON document for row `i`, keys deliberately not sorted.
pub fn json_doc(i: u64) -> serde_json::Value {
    let r = mix(i ^ 0x1234);
    match r % 5 {
        0 => {
            serde_json::json!({"zeta": i, "alpha": [1, 2.5, null, true], "m": {"y": "é🎉", "b": -3.75}})
        }
        1 => serde_json::json!([]),
        2 => serde_json::json!("just a string \"q\""),
        3 => {
            serde_json::json!({"n": (r >> 20) as i64 - (1 << 40), "list": [{"b": 1, "a": 0.1}], "s": text_value(i, 99)})
        }
        _ => serde_json::json!({}),
    }
}

/// Reads every partition of `topic` from the beginning with librdkafka until at least
/// `at_least` messages arrived and then nothing more for `quiet` (so that extra messages are
/// seen too), or until `timeout`.
pub fn consume_until_quiet(
    broker: &str,
    topic: &str,
    partitions: i32,
    at_least: usize,
    quiet: Duration,
    timeout: Duration,
) -> Vec<super::kafka::Consumed> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", unique("verify"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut last = Instant::now();
    let mut out = Vec::with_capacity(at_least);
    while Instant::now() < deadline && (out.len() < at_least || last.elapsed() < quiet) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            // A broker the test stopped: librdkafka says so and reads on from the others (rows
            // it cannot reach show up as missing, which the caller checks).
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
            ))) => {}
            Some(Err(e)) => panic!("librdkafka consumer error on {topic}: {e}"),
            Some(Ok(m)) => {
                last = Instant::now();
                out.push(super::kafka::Consumed {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers: Vec::new(),
                    timestamp_ms: m.timestamp().to_millis(),
                });
            }
        }
    }
    out
}
