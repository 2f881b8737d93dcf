//! The one retry rhythm of the daemon, used by the loop and by the producer: capped exponential
//! backoff with jitter, and a sleep that a shutdown flag cuts short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a sleep looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Waits that double per consecutive failure from `initial` up to `max`, each within ±20 %
/// jitter so that instances that failed together do not retry together.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
        Backoff {
            initial,
            max,
            rng: seed | 1,
        }
    }

    /// The wait before retry `attempt` (1 for the first).
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max);
        // xorshift64: jitter only needs to decorrelate instances, not to be unpredictable.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.8 + 0.4 * ((self.rng >> 11) as f64 / (1u64 << 53) as f64);
        base.mul_f64(jitter)
    }
}

/// Sleeps until `until`, waking within 50 ms once `stop` is set. False when it was.
pub fn sleep_until(until: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(STOP_CHECK));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_are_capped_within_the_jitter() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        for (attempt, base_ms) in [(1, 200), (2, 400), (5, 3200), (6, 5000), (1000, 5000)] {
            for _ in 0..100 {
                let d = b.delay(attempt).as_secs_f64() * 1000.0;
                let base = base_ms as f64;
                assert!(
                    (base * 0.8..=base * 1.2).contains(&d),
                    "attempt {attempt}: {d} ms, expected {base} ms ± 20 %"
                );
            }
        }
    }

    #[test]
    fn a_sleep_ends_early_once_stopped() {
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        assert!(sleep_until(t + Duration::from_millis(60), &stop));
        assert!(t.elapsed() >= Duration::from_millis(60));
        stop.store(true, Ordering::Relaxed);
        let t = Instant::now();
        assert!(!sleep_until(t + Duration::from_secs(10), &stop));
        assert!(t.elapsed() < Duration::from_millis(100));
    }
}
