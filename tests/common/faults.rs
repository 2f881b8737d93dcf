//! Support for the fault suites (tests/faults.rs, tests/failover.rs): a writer thread that keeps
//! inserting through outages, the check that every row of a table is in the topic, a
//! deterministic schedule for the faults, and their job's config.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::db::{Conn, Db};
use super::env::stack_job;
use super::job::JobConfig;
use super::values::mix;

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
    let sql = format!("INSERT INTO {table} (v) VALUES ('written')");
    let started = Instant::now();
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let due = started + Duration::from_micros(n * 1_000_000 / per_sec.max(1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let Some(c) = conn.as_mut() else {
            conn = db.try_connect(Duration::from_secs(1));
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        };
        if c.try_exec(&sql).is_ok() {
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
        let x = mix(self.0);
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The fault suites' job: replicating `table` of `db` through the bootstrap `brokers`
/// (comma-separated), polling every 0.2 s, its position in the test Redis.
pub fn fault_job(base: &str, db: &Db, table: &str, brokers: &str) -> JobConfig {
    stack_job(base, &db.uri(), table)
        .brokers(brokers)
        .poll_interval(Duration::from_millis(200))
}
