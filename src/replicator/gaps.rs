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

use crate::value::{Id, OpenTransactions};

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
    /// Every hole a reader sees is final (SQLite: one writer at a time, and a new rowid is
    /// always above the largest visible one): holes are skipped at once, without a probe.
    pub final_at_once: bool,
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

    /// Whether every hole is final as soon as it is seen (SQLite): nothing is ever held.
    pub fn final_at_once(&self) -> bool {
        self.policy.final_at_once
    }

    /// Whether the next `decide` needs the open transactions as they are *before* its rows are
    /// fetched (it does while holes are held: see `decide`).
    pub fn needs_probe_before_fetch(&self) -> bool {
        self.enabled() && !self.policy.cached && !self.held.is_empty()
    }

    /// Decides how many of the rows `ids` (all > `position`, in order) may be published.
    ///
    /// The proof that a hole is final needs two looks at the open transactions, in this order:
    /// a snapshot taken *after* the fetch that first showed the hole (every transaction that
    /// could fill it was open then, or has committed by then), and a later look taken *before*
    /// a fetch — `before` — in which none of the snapshot's transactions is open any more: their
    /// rows, if any, were committed before that fetch, so a hole still open in its rows is final.
    /// A hole is therefore never proven in the poll that first sees it. `snapshot` probes the
    /// database after the fetch; it is called at most once, only for new holes.
    pub fn decide<E>(
        &mut self,
        position: Id,
        ids: &[Id],
        now: Instant,
        before: Option<OpenTransactions>,
        snapshot: impl FnOnce() -> Result<OpenTransactions, E>,
    ) -> Result<Decision, E> {
        let mut decision = Decision {
            publish: ids.len(),
            ..Decision::default()
        };
        if !self.enabled() {
            return Ok(decision);
        }
        let step = Id::from(self.policy.step.max(1));
        // (index of the first row after the hole, after, before)
        let mut holes = Vec::new();
        let mut prev = position;
        for (i, &id) in ids.iter().enumerate() {
            if id - prev > step {
                holes.push((i, prev, id));
            }
            prev = id;
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

        let mut no_proof: Option<String> = None;
        let before: Option<HashSet<String>> = match before {
            Some(OpenTransactions::Listed(open)) => Some(open.into_iter().collect()),
            Some(OpenTransactions::Unknown { reason }) => {
                no_proof = Some(reason);
                None
            }
            None => None,
        };
        let cached = self.policy.cached;
        let delay = self.policy.snapshot_delay;
        let mut probe = Some(snapshot);
        let mut taken: Option<Rc<Proof>> = None;
        let mut take_snapshot = |no_proof: &mut Option<String>| -> Result<Rc<Proof>, E> {
            if let Some(p) = &taken {
                return Ok(p.clone());
            }
            let proof = match probe.take() {
                Some(probe) if !cached => match probe()? {
                    OpenTransactions::Listed(open) => Proof::Open(open.into_iter().collect()),
                    OpenTransactions::Unknown { reason } => {
                        *no_proof = Some(reason);
                        Proof::Unknown
                    }
                },
                _ => Proof::Unknown,
            };
            let proof = Rc::new(proof);
            taken = Some(proof.clone());
            Ok(proof)
        };

        let previous = std::mem::take(&mut self.held);
        let mut held = Vec::new();
        let mut holding = false;
        for (index, after, before_id) in holes {
            // A hole that shrank (rows appeared inside it) keeps the age and the snapshot of the
            // one it came from.
            let inherited = previous
                .iter()
                .find(|h| h.after <= after && before_id <= h.before)
                .map(|h| (h.first_seen, h.proof.clone()));
            let (first_seen, mut proof, mut fresh) = match inherited {
                Some((first_seen, proof)) => (first_seen, proof, false),
                None if self.policy.final_at_once => (now, Rc::new(Proof::Unknown), false),
                None if delay.is_zero() => (now, take_snapshot(&mut no_proof)?, true),
                None => (now, Rc::new(Proof::Pending), true),
            };
            // A lagging list of transactions is trusted once it is `delay` younger than the hole.
            if matches!(*proof, Proof::Pending)
                && now.saturating_duration_since(first_seen) >= delay
            {
                proof = take_snapshot(&mut no_proof)?;
                fresh = true;
            }
            if holding {
                held.push(Hole {
                    after,
                    before: before_id,
                    first_seen,
                    proof,
                });
                continue;
            }
            let age = now.saturating_duration_since(first_seen);
            let proven = self.policy.final_at_once
                || !fresh
                    && match (&*proof, &before) {
                        (Proof::Open(then), Some(open_before_fetch)) => {
                            then.is_disjoint(open_before_fetch)
                        }
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
                    before: before_id,
                    age,
                    reason,
                    at: now,
                    reported: BTreeSet::new(),
                }),
                None => {
                    decision.publish = index;
                    decision.holding = Some((after, before_id, age));
                    holding = true;
                    held.push(Hole {
                        after,
                        before: before_id,
                        first_seen,
                        proof,
                    });
                }
            }
        }
        self.held = held;
        if let Some(reason) = no_proof {
            if !self.no_proof_reported {
                decision.no_proof = Some(reason);
                self.no_proof_reported = true;
            }
        }
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

    fn rows(ids: &[i128]) -> Vec<Id> {
        ids.to_vec()
    }

    fn tracker(timeout_secs: u64, step: u64) -> GapTracker {
        GapTracker::new(GapPolicy {
            timeout: Duration::from_secs(timeout_secs),
            step,
            cached: false,
            snapshot_delay: Duration::ZERO,
            final_at_once: false,
        })
    }

    fn list(ids: &[&str]) -> OpenTransactions {
        OpenTransactions::Listed(ids.iter().map(|s| s.to_string()).collect())
    }

    fn open(ids: &[&str]) -> Result<OpenTransactions, ()> {
        Ok(list(ids))
    }

    fn no_probe() -> Result<OpenTransactions, ()> {
        panic!("no snapshot expected")
    }

    #[test]
    fn contiguous_ids_publish_everything_without_probing() {
        let mut t = tracker(60, 1);
        let d = t
            .decide(0, &rows(&[1, 2, 3]), Instant::now(), None, no_probe)
            .unwrap();
        assert_eq!(d.publish, 3);
        assert!(d.skipped.is_empty() && d.holding.is_none());
        assert!(!t.needs_probe_before_fetch());
    }

    #[test]
    fn step_two_is_not_a_hole_but_a_missing_odd_id_is() {
        let mut t = tracker(60, 2);
        let now = Instant::now();
        assert_eq!(
            t.decide(1, &rows(&[3, 5, 7]), now, None, no_probe)
                .unwrap()
                .publish,
            3
        );
        let d = t
            .decide(7, &rows(&[9, 13, 15]), now, None, || open(&["tx1"]))
            .unwrap();
        assert_eq!(d.publish, 1);
        assert_eq!(d.holding.map(|h| (h.0, h.1)), Some((9, 13)));
        assert!(t.needs_probe_before_fetch());
    }

    #[test]
    fn a_hole_is_held_until_the_transactions_open_at_first_sight_end() {
        let mut t = tracker(60, 1);
        let t0 = Instant::now();
        let d = t
            .decide(0, &rows(&[1, 2, 4, 5]), t0, None, || open(&["a", "b"]))
            .unwrap();
        assert_eq!(d.publish, 2);
        // "b" still open before the fetch (and a newer "c"): still held.
        let later = t0 + Duration::from_secs(1);
        let d = t
            .decide(2, &rows(&[4, 5]), later, Some(list(&["b", "c"])), no_probe)
            .unwrap();
        assert_eq!(
            (d.publish, d.holding.map(|h| (h.0, h.1))),
            (0, Some((2, 4)))
        );
        // Both ended before this fetch; "c" started after the hole was seen and cannot fill it.
        let later = t0 + Duration::from_secs(2);
        let d = t
            .decide(2, &rows(&[4, 5]), later, Some(list(&["c"])), no_probe)
            .unwrap();
        assert_eq!(d.publish, 2);
        assert_eq!(d.skipped.len(), 1);
        assert_eq!(d.skipped[0].reason, SkipReason::ProvenFinal);
        assert_eq!((d.skipped[0].after, d.skipped[0].before), (2, 4));
    }

    #[test]
    fn a_hole_is_never_proven_in_the_poll_that_first_sees_it() {
        // The transaction holding id 2 may commit between the fetch and the snapshot: an empty
        // snapshot then proves nothing about the rows already fetched. The next poll (a look
        // before its fetch, then the fetch) decides.
        let mut t = tracker(60, 1);
        let t0 = Instant::now();
        let d = t.decide(0, &rows(&[1, 3]), t0, None, || open(&[])).unwrap();
        assert_eq!(d.publish, 1, "held although nothing is open now");
        let d = t
            .decide(1, &rows(&[3]), t0, Some(list(&[])), no_probe)
            .unwrap();
        assert_eq!(d.publish, 1);
        assert_eq!(d.skipped[0].reason, SkipReason::ProvenFinal);
    }

    #[test]
    fn a_filled_hole_releases_the_rows() {
        let mut t = tracker(60, 1);
        let t0 = Instant::now();
        assert_eq!(
            t.decide(0, &rows(&[1, 3]), t0, None, || open(&["a"]))
                .unwrap()
                .publish,
            1
        );
        let d = t
            .decide(1, &rows(&[2, 3]), t0, Some(list(&["a"])), no_probe)
            .unwrap();
        assert_eq!(d.publish, 2);
        assert!(d.skipped.is_empty());
    }

    #[test]
    fn without_proof_the_timeout_releases_the_hole_and_it_is_watched() {
        let mut t = tracker(5, 1);
        let t0 = Instant::now();
        let refused = || OpenTransactions::Unknown {
            reason: "no privilege".to_string(),
        };
        let d = t
            .decide(0, &rows(&[1, 3]), t0, None, || Ok::<_, ()>(refused()))
            .unwrap();
        assert_eq!(d.publish, 1);
        assert_eq!(d.no_proof.as_deref(), Some("no privilege"));
        let mut poll_at = |secs| {
            t.decide(
                1,
                &rows(&[3]),
                t0 + Duration::from_secs(secs),
                Some(refused()),
                no_probe,
            )
            .unwrap()
        };
        let d = poll_at(4);
        assert_eq!(d.publish, 0);
        assert!(
            d.no_proof.is_none(),
            "the missing privilege is reported once"
        );
        let d = poll_at(5);
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
            .decide(0, &rows(&[1, 5, 6, 9]), t0, None, || open(&["a"]))
            .unwrap();
        assert_eq!(d.publish, 1);
        // Row 3 appears: holes (1,3) and (3,5), both inside the old (1,5): same age.
        let later = t0 + Duration::from_secs(10);
        let d = t
            .decide(1, &rows(&[3, 5, 6, 9]), later, Some(list(&["a"])), no_probe)
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
            t.decide(0, &rows(&[1, 3]), t0, None, || open(&["a"]))
                .unwrap()
                .publish,
            1
        );
        let later = t0 + Duration::from_secs(5);
        let d = t
            .decide(1, &rows(&[3]), later, Some(list(&["a"])), no_probe)
            .unwrap();
        assert_eq!(d.skipped.len(), 1);
        // The send failed; the same rows come back from the same position.
        let later = t0 + Duration::from_secs(6);
        let d = t.decide(1, &rows(&[3]), later, None, no_probe).unwrap();
        assert_eq!(d.publish, 1);
        assert!(d.skipped.is_empty(), "not logged or counted twice");
    }

    #[test]
    fn a_lagging_transaction_list_is_not_trusted_until_the_snapshot_delay_passed() {
        // InnoDB's INNODB_TRX may lag: at first sight it lists nobody although "x" (which
        // holds the missing id) is open; 300 ms later it shows "x".
        let mut t = GapTracker::new(GapPolicy {
            timeout: Duration::from_secs(60),
            step: 1,
            cached: false,
            snapshot_delay: Duration::from_millis(200),
            final_at_once: false,
        });
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let d = t.decide(0, &rows(&[1, 3]), t0, None, no_probe).unwrap();
        assert_eq!(d.publish, 1, "no snapshot before the delay");
        let d = t
            .decide(1, &rows(&[3]), ms(100), Some(list(&[])), no_probe)
            .unwrap();
        assert_eq!(
            d.publish, 0,
            "an empty list inside the delay proves nothing"
        );
        let d = t
            .decide(1, &rows(&[3]), ms(300), Some(list(&["x"])), || open(&["x"]))
            .unwrap();
        assert_eq!(d.publish, 0, "the snapshot taken now includes x");
        let d = t
            .decide(1, &rows(&[3]), ms(400), Some(list(&["x"])), no_probe)
            .unwrap();
        assert_eq!(d.publish, 0, "x still open");
        let d = t
            .decide(1, &rows(&[3]), ms(500), Some(list(&["y"])), no_probe)
            .unwrap();
        assert_eq!(d.publish, 1, "x ended: proven final");
        assert_eq!(d.skipped[0].reason, SkipReason::ProvenFinal);
    }

    #[test]
    fn zero_timeout_never_holds() {
        let mut t = tracker(0, 1);
        let d = t
            .decide(0, &rows(&[5, 9]), Instant::now(), None, no_probe)
            .unwrap();
        assert_eq!(d.publish, 2);
    }

    #[test]
    fn holes_final_at_once_are_skipped_in_the_poll_that_sees_them_without_probing() {
        let mut t = GapTracker::new(GapPolicy {
            final_at_once: true,
            ..tracker(60, 1).policy
        });
        let d = t
            .decide(
                i128::from(i64::MIN) - 1,
                &rows(&[1, 2, 5, 9]),
                Instant::now(),
                None,
                no_probe,
            )
            .unwrap();
        assert_eq!(d.publish, 4);
        assert!(d.holding.is_none());
        let skipped: Vec<_> = d
            .skipped
            .iter()
            .map(|s| (s.after, s.before, s.reason))
            .collect();
        assert_eq!(
            skipped,
            [
                (i128::from(i64::MIN) - 1, 1, SkipReason::ProvenFinal),
                (2, 5, SkipReason::ProvenFinal),
                (5, 9, SkipReason::ProvenFinal)
            ]
        );
        assert!(!t.needs_probe_before_fetch());
    }

    #[test]
    fn cached_sequences_wait_for_the_timeout_without_probing() {
        let mut t = GapTracker::new(GapPolicy {
            timeout: Duration::from_secs(3),
            step: 1,
            cached: true,
            snapshot_delay: Duration::ZERO,
            final_at_once: false,
        });
        let t0 = Instant::now();
        assert_eq!(
            t.decide(0, &rows(&[1, 3]), t0, None, no_probe)
                .unwrap()
                .publish,
            1
        );
        assert!(!t.needs_probe_before_fetch());
        let later = t0 + Duration::from_secs(3);
        assert_eq!(
            t.decide(1, &rows(&[3]), later, None, no_probe)
                .unwrap()
                .publish,
            1
        );
    }
}
