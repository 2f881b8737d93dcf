//! Holding rows at holes in the id sequence, so that a row committed late is never skipped.
//!
//! A primary key is allocated when a row is inserted but becomes visible only when its
//! transaction commits. If T1 takes id 5, T2 takes id 6 and commits first, a poll sees 6 but not
//! 5; publishing 6 and moving the position past 5 would lose row 5 for good when T1 commits.
//! So the position never moves past a hole while a transaction that could fill it may still be
//! running. A hole is released when it is filled, when it is proven final (every transaction that
//! was open when the hole was first seen has ended: a later transaction cannot get an id below
//! one already visible — except with per-session cached sequences, where only the timeout
//! helps), or when it has been open longer than `gap_timeout`.
//!
//! This module is pure bookkeeping: the replicator passes it each fetched batch and a probe for
//! the database's open transactions, and it says how many rows may be published. It costs
//! nothing when there are no holes: no query runs unless a batch has one.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::value::{Id, Row};

/// How holes are recognised and how long they may be held.
#[derive(Debug, Clone)]
pub struct GapPolicy {
    /// Zero: never hold (the old tool's behaviour).
    pub timeout: Duration,
    /// The normal distance between consecutive ids; only a larger jump is a hole.
    pub step: u64,
    /// Ids are cached per session: ending transactions prove nothing, only the timeout does.
    pub cached: bool,
    /// How stale the database's list of open transactions may be. A hole's reference snapshot is
    /// taken from a probe at least this long after the hole was first seen, so that every
    /// transaction that could fill it is in the list (InnoDB serves INNODB_TRX from a cache
    /// refreshed at most every 100 ms; PostgreSQL's pg_stat_activity is current: zero).
    pub snapshot_delay: Duration,
}

/// Why a hole stopped holding rows back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Every transaction that was open when the hole was first seen has ended.
    ProvenFinal,
    /// Open longer than `gap_timeout`, without proof.
    TimedOut,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::ProvenFinal => {
                "proven final: every transaction open when it was first seen has ended"
            }
            SkipReason::TimedOut => "gap_timeout reached without proof that it is final",
        })
    }
}

/// A hole that was skipped on purpose: the ids strictly between `after` and `before`.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub after: Id,
    pub before: Id,
    /// How long it had been held.
    pub age: Duration,
    pub reason: SkipReason,
    /// When it was skipped; late rows are looked for in it for a while afterwards.
    pub at: Instant,
    /// Late rows already found in it (reported once each).
    pub reported: BTreeSet<Id>,
}

/// What to do with one fetched batch.
#[derive(Debug, Default)]
pub struct Decision {
    /// How many rows, from the start of the batch, may be published.
    pub publish: usize,
    /// Holes skipped in this decision, in id order.
    pub skipped: Vec<Skipped>,
    /// The hole holding the rest of the batch back, with its age.
    pub holding: Option<(Id, Id, Duration)>,
    /// The database could not prove holes final (say once, with `reason`).
    pub no_proof: Option<String>,
}

/// The open transactions of the database now: `Ok(Err(reason))` when it cannot tell.
pub type OpenTransactions = Result<Vec<String>, String>;

#[derive(Debug)]
enum Proof {
    /// No usable snapshot yet (taken after `snapshot_delay`).
    Pending,
    /// The transactions open when the hole was first seen (or `snapshot_delay` later).
    Open(HashSet<String>),
    /// The database cannot tell: the timeout decides.
    Unknown,
}

#[derive(Debug)]
struct Hole {
    after: Id,
    before: Id,
    first_seen: Instant,
    proof: Rc<Proof>,
}

/// Holes currently held, and holes recently skipped.
#[derive(Debug)]
pub struct GapTracker {
    policy: GapPolicy,
    held: Vec<Hole>,
    recent: VecDeque<Skipped>,
    /// Every hole skipped lately, whatever the reason: seen again (after a failed send), it is
    /// not held or reported again.
    decided: VecDeque<(Id, Id)>,
    no_proof_reported: bool,
}

/// How many skipped holes are watched for late rows, and for how long.
const WATCHED_HOLES: usize = 1000;
const WATCH_FOR_AT_LEAST: Duration = Duration::from_secs(600);

impl GapTracker {
    pub fn new(policy: GapPolicy) -> GapTracker {
        GapTracker {
            policy,
            held: Vec::new(),
            recent: VecDeque::new(),
            decided: VecDeque::new(),
            no_proof_reported: false,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.policy.timeout.is_zero()
    }

    /// Decides how much of `rows` (ids > `position`, in order) may be published. `probe`
    /// returns the database's open transactions; it is called at most once, and only when the
    /// batch has a hole.
    pub fn decide<E>(
        &mut self,
        position: Id,
        rows: &[Row],
        now: Instant,
        probe: impl FnOnce() -> Result<OpenTransactions, E>,
    ) -> Result<Decision, E> {
        let mut decision = Decision {
            publish: rows.len(),
            ..Decision::default()
        };
        if !self.enabled() {
            return Ok(decision);
        }
        let step = Id::from(self.policy.step.max(1));
        // (index of the first row after the hole, after, before)
        let mut holes = Vec::new();
        let mut prev = position;
        for (i, row) in rows.iter().enumerate() {
            if row.id - prev > step {
                holes.push((i, prev, row.id));
            }
            prev = row.id;
        }
        // A hole inside one skipped recently (e.g. seen again after a failed send) was decided
        // already.
        holes.retain(|&(_, after, before)| {
            !self.decided.iter().any(|&(a, b)| a <= after && before <= b)
        });
        if holes.is_empty() {
            self.held.clear();
            return Ok(decision);
        }

        // One look at the open transactions serves both the proof of old holes and the
        // snapshot of new ones.
        let current: Option<HashSet<String>> = if self.policy.cached {
            None
        } else {
            match probe()? {
                Ok(open) => Some(open.into_iter().collect()),
                Err(reason) => {
                    if !self.no_proof_reported {
                        decision.no_proof = Some(reason);
                        self.no_proof_reported = true;
                    }
                    None
                }
            }
        };
        let snapshot = Rc::new(match &current {
            Some(open) => Proof::Open(open.clone()),
            None => Proof::Unknown,
        });
        let fresh = if self.policy.snapshot_delay.is_zero() {
            snapshot.clone()
        } else {
            Rc::new(Proof::Pending)
        };

        let previous = std::mem::take(&mut self.held);
        let mut held = Vec::new();
        let mut holding = false;
        for (index, after, before) in holes {
            // A hole that shrank (rows appeared inside it) keeps the age of the one it came from.
            let (first_seen, proof) = previous
                .iter()
                .find(|h| h.after <= after && before <= h.before)
                .map_or((now, fresh.clone()), |h| (h.first_seen, h.proof.clone()));
            // A snapshot can be trusted once it is `snapshot_delay` younger than the hole.
            let proof = match &*proof {
                Proof::Pending
                    if now.saturating_duration_since(first_seen) >= self.policy.snapshot_delay =>
                {
                    snapshot.clone()
                }
                _ => proof,
            };
            if holding {
                held.push(Hole {
                    after,
                    before,
                    first_seen,
                    proof,
                });
                continue;
            }
            let age = now.saturating_duration_since(first_seen);
            let proven = match (&*proof, &current) {
                (Proof::Open(then), Some(now_open)) => then.is_disjoint(now_open),
                _ => false,
            };
            let reason = if proven {
                Some(SkipReason::ProvenFinal)
            } else if age >= self.policy.timeout {
                Some(SkipReason::TimedOut)
            } else {
                None
            };
            match reason {
                Some(reason) => decision.skipped.push(Skipped {
                    after,
                    before,
                    age,
                    reason,
                    at: now,
                    reported: BTreeSet::new(),
                }),
                None => {
                    decision.publish = index;
                    decision.holding = Some((after, before, age));
                    holding = true;
                    held.push(Hole {
                        after,
                        before,
                        first_seen,
                        proof,
                    });
                }
            }
        }
        self.held = held;
        for s in &decision.skipped {
            if self.decided.len() == WATCHED_HOLES {
                self.decided.pop_front();
            }
            self.decided.push_back((s.after, s.before));
        }
        // Only holes skipped on timeout can still receive rows: a proven-final hole cannot (no
        // transaction that could fill it is left).
        for s in decision
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::TimedOut)
        {
            if self.recent.len() == WATCHED_HOLES {
                self.recent.pop_front();
            }
            self.recent.push_back(s.clone());
        }
        Ok(decision)
    }

    /// Holes skipped on timeout that are still worth watching for late rows (skipped within
    /// the last max(10 min, 10 × gap_timeout)); older ones are forgotten.
    pub fn watched(&mut self, now: Instant) -> impl Iterator<Item = &mut Skipped> {
        let horizon = WATCH_FOR_AT_LEAST.max(self.policy.timeout.saturating_mul(10));
        self.recent
            .retain(|s| now.saturating_duration_since(s.at) < horizon);
        self.recent.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(ids: &[i128]) -> Vec<Row> {
        ids.iter().map(|&id| Row { id, values: vec![] }).collect()
    }

    fn tracker(timeout_secs: u64, step: u64) -> GapTracker {
        GapTracker::new(GapPolicy {
            timeout: Duration::from_secs(timeout_secs),
            step,
            cached: false,
            snapshot_delay: Duration::ZERO,
        })
    }

    fn open(ids: &[&str]) -> Result<OpenTransactions, ()> {
        Ok(Ok(ids.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn contiguous_ids_publish_everything_without_probing() {
        let mut t = tracker(60, 1);
        let d = t
            .decide(
                0,
                &rows(&[1, 2, 3]),
                Instant::now(),
                || -> Result<OpenTransactions, ()> { panic!("no probe without holes") },
            )
            .unwrap();
        assert_eq!(d.publish, 3);
        assert!(d.skipped.is_empty() && d.holding.is_none());
    }

    #[test]
    fn step_two_is_not_a_hole_but_a_missing_odd_id_is() {
        let mut t = tracker(60, 2);
        let now = Instant::now();
        let d = t
            .decide(
                1,
                &rows(&[3, 5, 7]),
                now,
                || -> Result<OpenTransactions, ()> { panic!("no hole") },
            )
            .unwrap();
        assert_eq!(d.publish, 3);
        let d = t
            .decide(7, &rows(&[9, 13, 15]), now, || open(&["tx1"]))
            .unwrap();
        assert_eq!(d.publish, 1);
        assert_eq!(d.holding.map(|h| (h.0, h.1)), Some((9, 13)));
    }

    #[test]
    fn a_hole_is_held_until_the_transactions_open_at_first_sight_end() {
        let mut t = tracker(60, 1);
        let t0 = Instant::now();
        let d = t
            .decide(0, &rows(&[1, 2, 4, 5]), t0, || open(&["a", "b"]))
            .unwrap();
        assert_eq!(d.publish, 2);
        // "b" still open (and a newer "c"): still held.
        let d = t
            .decide(2, &rows(&[4, 5]), t0 + Duration::from_secs(1), || {
                open(&["b", "c"])
            })
            .unwrap();
        assert_eq!(
            (d.publish, d.holding.map(|h| (h.0, h.1))),
            (0, Some((2, 4)))
        );
        // Both ended; "c" started after the hole was seen and cannot fill it.
        let d = t
            .decide(2, &rows(&[4, 5]), t0 + Duration::from_secs(2), || {
                open(&["c"])
            })
            .unwrap();
        assert_eq!(d.publish, 2);
        assert_eq!(d.skipped.len(), 1);
        assert_eq!(d.skipped[0].reason, SkipReason::ProvenFinal);
        assert_eq!((d.skipped[0].after, d.skipped[0].before), (2, 4));
    }

    #[test]
    fn a_filled_hole_releases_the_rows() {
        let mut t = tracker(60, 1);
        let t0 = Instant::now();
        assert_eq!(
            t.decide(0, &rows(&[1, 3]), t0, || open(&["a"]))
                .unwrap()
                .publish,
            1
        );
        let d = t
            .decide(1, &rows(&[2, 3]), t0, || -> Result<OpenTransactions, ()> {
                panic!("no hole left")
            })
            .unwrap();
        assert_eq!(d.publish, 2);
        assert!(d.skipped.is_empty());
    }

    #[test]
    fn without_proof_the_timeout_releases_the_hole_and_it_is_watched() {
        let mut t = tracker(5, 1);
        let t0 = Instant::now();
        let d = t
            .decide(0, &rows(&[1, 3]), t0, || {
                Ok::<_, ()>(Err("no privilege".into()))
            })
            .unwrap();
        assert_eq!(d.publish, 1);
        assert_eq!(d.no_proof.as_deref(), Some("no privilege"));
        let d = t
            .decide(1, &rows(&[3]), t0 + Duration::from_secs(4), || {
                Ok::<_, ()>(Err("no privilege".into()))
            })
            .unwrap();
        assert_eq!(d.publish, 0);
        assert!(
            d.no_proof.is_none(),
            "the missing privilege is reported once"
        );
        let d = t
            .decide(1, &rows(&[3]), t0 + Duration::from_secs(5), || {
                Ok::<_, ()>(Err("no privilege".into()))
            })
            .unwrap();
        assert_eq!(d.publish, 1);
        assert_eq!(d.skipped[0].reason, SkipReason::TimedOut);
        assert_eq!(t.watched(t0 + Duration::from_secs(6)).count(), 1);
        assert_eq!(t.watched(t0 + Duration::from_secs(6000)).count(), 0);
    }

    #[test]
    fn a_shrinking_hole_keeps_its_age_and_later_holes_wait_behind_it() {
        let mut t = tracker(10, 1);
        let t0 = Instant::now();
        // Holes (1,5) and (6,9).
        let d = t
            .decide(0, &rows(&[1, 5, 6, 9]), t0, || open(&["a"]))
            .unwrap();
        assert_eq!(d.publish, 1);
        // Row 3 appears: holes (1,3) and (3,5), both inside the old (1,5): same age.
        let d = t
            .decide(
                1,
                &rows(&[3, 5, 6, 9]),
                t0 + Duration::from_secs(10),
                || open(&["a"]),
            )
            .unwrap();
        assert_eq!(d.skipped.len(), 3, "{d:?}");
        assert!(d.skipped.iter().all(|s| s.reason == SkipReason::TimedOut));
        assert_eq!(d.publish, 4);
    }

    #[test]
    fn a_skipped_hole_seen_again_is_not_held_again() {
        let mut t = tracker(5, 1);
        let t0 = Instant::now();
        assert_eq!(
            t.decide(0, &rows(&[1, 3]), t0, || open(&["a"]))
                .unwrap()
                .publish,
            1
        );
        let d = t
            .decide(1, &rows(&[3]), t0 + Duration::from_secs(5), || open(&["a"]))
            .unwrap();
        assert_eq!(d.skipped.len(), 1);
        // The send failed; the same rows come back from the same position.
        let d = t
            .decide(
                1,
                &rows(&[3]),
                t0 + Duration::from_secs(6),
                || -> Result<OpenTransactions, ()> { panic!("decided already") },
            )
            .unwrap();
        assert_eq!(d.publish, 1);
        assert!(d.skipped.is_empty(), "not logged or counted twice");
    }

    #[test]
    fn zero_timeout_never_holds() {
        let mut t = tracker(0, 1);
        let d = t
            .decide(
                0,
                &rows(&[5, 9]),
                Instant::now(),
                || -> Result<OpenTransactions, ()> { panic!("off") },
            )
            .unwrap();
        assert_eq!(d.publish, 2);
    }

    #[test]
    fn a_stale_transaction_list_is_not_trusted_until_the_snapshot_delay_passed() {
        // InnoDB's INNODB_TRX may lag: at first sight it lists nobody although "x" (which
        // holds the missing id) is open; 300 ms later it shows "x".
        let mut t = GapTracker::new(GapPolicy {
            timeout: Duration::from_secs(60),
            step: 1,
            cached: false,
            snapshot_delay: Duration::from_millis(200),
        });
        let t0 = Instant::now();
        let d = t.decide(0, &rows(&[1, 3]), t0, || open(&[])).unwrap();
        assert_eq!(
            d.publish, 1,
            "an empty list at first sight proves nothing yet"
        );
        let d = t
            .decide(1, &rows(&[3]), t0 + Duration::from_millis(300), || {
                open(&["x"])
            })
            .unwrap();
        assert_eq!(d.publish, 0, "the snapshot taken now includes x");
        let d = t
            .decide(1, &rows(&[3]), t0 + Duration::from_millis(400), || {
                open(&["x"])
            })
            .unwrap();
        assert_eq!(d.publish, 0, "x still open");
        let d = t
            .decide(1, &rows(&[3]), t0 + Duration::from_millis(500), || {
                open(&["y"])
            })
            .unwrap();
        assert_eq!(d.publish, 1, "x ended: proven final");
        assert_eq!(d.skipped[0].reason, SkipReason::ProvenFinal);
    }

    #[test]
    fn cached_sequences_wait_for_the_timeout_without_probing() {
        let mut t = GapTracker::new(GapPolicy {
            timeout: Duration::from_secs(3),
            step: 1,
            cached: true,
            snapshot_delay: Duration::ZERO,
        });
        let t0 = Instant::now();
        let d = t
            .decide(0, &rows(&[1, 3]), t0, || -> Result<OpenTransactions, ()> {
                panic!("no probe")
            })
            .unwrap();
        assert_eq!(d.publish, 1);
        let d = t
            .decide(
                1,
                &rows(&[3]),
                t0 + Duration::from_secs(3),
                || -> Result<OpenTransactions, ()> { panic!("no probe") },
            )
            .unwrap();
        assert_eq!(d.publish, 1);
    }
}
