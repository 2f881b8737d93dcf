//! A job's stored position in the test Redis, read and written with the redis crate directly
//! (never through repliqate's own store): plain GET/SET/DEL that fail the test on error, a read
//! that reports an error instead while Redis is down, waiting for the position to reach a value,
//! and sampling it on a thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::env::redis_addr;

/// A connection to the test Redis, or the error; gives up after `timeout`.
fn try_connect(timeout: Duration) -> Result<redis::Connection, String> {
    redis::Client::open(format!("redis://{}/", redis_addr()))
        .and_then(|client| client.get_connection_with_timeout(timeout))
        .map_err(|e| e.to_string())
}

/// A connection to the test Redis; panics with instructions when there is none.
pub fn redis_conn() -> redis::Connection {
    try_connect(Duration::from_secs(5)).unwrap_or_else(|e| {
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
        if let Ok(mut c) = try_connect(Duration::from_secs(2)) {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&self.0).query(&mut c);
        }
    }
}

/// The stored position; Err while Redis is unreachable.
pub fn try_position(key: &str) -> Result<Option<i128>, String> {
    let mut c = try_connect(Duration::from_millis(500))?;
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

/// The Redis key of a job's lease, spelled out (not through repliqate's own code).
pub fn lease_key(position_key: &str) -> String {
    position_key.replacen(":offset:", ":lease:", 1)
}

/// A lease held by `owner` for `ttl`, as another instance would hold it.
pub fn hold_lease(position_key: &str, owner: &str, ttl: Duration) {
    let _: () = redis::cmd("SET")
        .arg(lease_key(position_key))
        .arg(owner)
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query(&mut redis_conn())
        .expect("redis SET lease");
}

/// The lease's holder and its remaining milliseconds (PTTL), if anyone holds it.
pub fn lease_holder(position_key: &str) -> Option<(String, i64)> {
    let key = lease_key(position_key);
    let mut conn = redis_conn();
    let holder: Option<String> = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).expect("PTTL");
    holder.map(|h| (h, ttl))
}
