//! Active and standby: the job's lease in the position store, taken, renewed and released, and
//! where an instance that takes it resumes from.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{show_position, Error, Replicator, BEFORE_ANY_ID};
use crate::kafka::Producer;
use crate::store::{Lease, Store, StoreError};
use crate::value::Id;

impl Replicator {
    /// Tries to become the active instance. On success returns the position to resume from:
    /// the stored one, or — if the store lost it (an emptied Redis) — the last one this instance
    /// committed; with neither, `--initial-position` or 0 for a new job. A stored position is
    /// taken as it is, even below what this instance committed: put there while we did not
    /// hold the lease, it is an operator's replay (`repliqate position set`), which resuming
    /// above it would skip; the other way there (a Redis failed over to a replica that lagged)
    /// republishes rows, which at-least-once allows.
    pub(super) fn take_lease(&mut self) -> Result<Option<Id>, Error> {
        // Before the script: the lease runs from no earlier than this, and the checks below
        // (a new job's look at its topic) may take a while.
        let asked = std::time::Instant::now();
        match self
            .store
            .hold_lease(&self.owner, self.lease)
            .map_err(Error::Store)?
        {
            Lease::HeldBy(holder) => {
                self.lease_holder = Some(holder);
                return Ok(None);
            }
            Lease::Held | Lease::Acquired => {}
        }
        self.lease_holder = None;
        // Active only once the position is known: a failed read (a Redis timeout right after
        // the lease script) leaves us standby, and the next turn takes the lease again.
        let position = self.resume_position()?;
        self.active = true;
        self.renewed = Some(asked);
        // A fresh look at the table's end for `rows_behind`, not one from before a standby.
        self.max_id_read = None;
        let from = if position == BEFORE_ANY_ID {
            "from the start of the table".to_string()
        } else {
            format!("after id {position}")
        };
        log::info!(state = "active"; "active (lease owner {}): resuming {from}", self.owner);
        Ok(Some(position))
    }

    /// Where an instance that just took the lease resumes (see `take_lease`).
    fn resume_position(&mut self) -> Result<Id, Error> {
        let stored = self.read_position()?;
        self.last_stored = stored;
        let position = match (stored, self.committed) {
            (Some(s), _) => s,
            (None, Some(c)) => {
                log::warn!(
                    "the position is missing from {}: resuming after {c}, the last position this \
                     instance committed",
                    self.store.describe()
                );
                c
            }
            (None, None) => match self.initial_position {
                Some(p) => {
                    log::warn!(
                        "no stored position: starting after {} (--initial-position)",
                        show_position(p)
                    );
                    p
                }
                None => {
                    check_new_job(&mut self.producer, &self.topic, &self.store)?;
                    log::warn!(
                        "no position stored in {} and topic {} is empty: a new job, starting from \
                         the beginning of the table",
                        self.store.describe(),
                        self.topic
                    );
                    BEFORE_ANY_ID
                }
            },
        };
        Ok(position)
    }

    pub(super) fn release_lease(&mut self) {
        if self.active {
            self.active = false;
            if let Err(e) = self.store.release_lease(&self.owner) {
                log::warn!("releasing the job's lease: {e} (it expires by itself)");
            }
        }
    }

    /// Renews the lease unless it was renewed less than a third of its time ago (a fenced
    /// commit renews it too): one round trip to the store per batch instead of two. Times are
    /// taken before the request that renewed, so the lease has at least two thirds of its time
    /// left when this skips. A pause of the process longer than that (stopped, or a call that
    /// outlived its lease) is seen here, since the monotonic clock counts it, and the lease is
    /// renewed or found lost before anything more is published. A suspend of the whole machine
    /// is not counted (`Instant` stops with it): one more batch may then go out before the
    /// fenced commit refuses it, a duplicate, which at-least-once allows.
    pub(super) fn renew_lease_if_due(&mut self) -> Result<(), Error> {
        if self.renewed.is_some_and(|t| t.elapsed() < self.lease / 3) {
            return Ok(());
        }
        self.renew_lease()
    }

    /// Renews the lease. Losing it (another instance holds it) is `StoreError::Fenced`; so is
    /// finding it lapsed, even though we now hold it again: another instance may have moved the
    /// position meanwhile, so the loop re-reads it (`take_lease`) before publishing again.
    pub(super) fn renew_lease(&mut self) -> Result<(), Error> {
        let asked = std::time::Instant::now();
        let lease = self
            .store
            .hold_lease(&self.owner, self.lease)
            .map_err(|e| {
                // Not renewed: the next caught-up step tries again (and fails while this lasts).
                self.renewed = None;
                Error::Store(e)
            })?;
        let holder = match lease {
            Lease::Held => {
                self.renewed = Some(asked);
                return Ok(());
            }
            Lease::Acquired => "nobody: the lease had lapsed".to_string(),
            Lease::HeldBy(holder) => holder,
        };
        Err(Error::Store(StoreError::Fenced {
            store: self.store.describe(),
            holder,
        }))
    }
}

/// Refuses to start a job from zero when its topic already has records: the position was
/// probably lost (an emptied or failed-over Redis, a deleted key or state file), and starting
/// from zero would republish the whole table by surprise.
pub(super) fn check_new_job(
    producer: &mut Producer,
    topic: &str,
    store: &Store,
) -> Result<(), Error> {
    if producer.topic_has_records(topic).map_err(Error::Kafka)? {
        return Err(Error::PositionLost {
            store: store.describe(),
            topic: topic.to_string(),
        });
    }
    Ok(())
}

/// Identifies this instance in the lease: host, pid and a random part (two instances on one
/// host after a pid wrap stay distinct).
pub(crate) fn owner_token() -> String {
    let host = host_name();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let random = u64::from(nanos)
        ^ (std::process::id() as u64).rotate_left(20)
        ^ (&nanos as *const u32 as u64);
    format!("{host}-{}-{:08x}", std::process::id(), random as u32)
}

/// This process, for a line saying who did something: `host H pid P`.
pub(crate) fn instance() -> String {
    format!("host {} pid {}", host_name(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}
