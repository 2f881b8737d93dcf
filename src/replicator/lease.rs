//! Active and standby: the job's lease in the position store (`Lease`), taken, renewed,
//! committed under and released, and where an instance that takes it resumes from.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::Error;
use crate::kafka::Producer;
use crate::store::{Lease as Held, Store, StoreError, Written};
use crate::value::Id;

/// The job's lease in the position store (only its holder publishes), and what this instance
/// knows of the position the lease guards.
pub(super) struct Lease {
    /// This instance's owner token (host, pid, random).
    owner: String,
    /// How long the lease lasts once taken or renewed (`lease_sec`).
    ttl: Duration,
    /// When it was last taken or renewed (`None`: not held, or a renewal failed since).
    renewed: Option<Instant>,
    /// The instance that holds it, while we do not.
    holder: Option<String>,
    /// The position as this instance last read it from the store or wrote it there: a fenced
    /// write that finds the lease lapsed may take it again only if the store still holds this.
    stored: Option<Id>,
    /// The last position this instance committed: where to resume if the store loses it.
    committed: Option<Id>,
}

/// Where an instance that has just taken the lease resumes.
pub(super) enum Resume {
    /// The position the store holds.
    Stored(Id),
    /// The store holds none, but this instance committed this one (an emptied Redis).
    Committed(Id),
    /// Neither: a new job, or a lost position (the caller decides which).
    Nothing,
}

impl Lease {
    pub fn new(owner: String, ttl: Duration) -> Lease {
        Lease {
            owner,
            ttl,
            renewed: None,
            holder: None,
            stored: None,
            committed: None,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The instance that holds the lease, while we do not.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// The position as this instance last saw it in the store.
    pub fn stored(&self) -> Option<Id> {
        self.stored
    }

    /// Tries to take the lease: `true` when it is ours (held already, or free). A position
    /// store read must follow (`resume`) before anything is published.
    pub fn take(&mut self, store: &mut Store) -> Result<bool, Error> {
        // Before the script: the lease runs from no earlier than this.
        let asked = Instant::now();
        match store
            .hold_lease(&self.owner, self.ttl)
            .map_err(Error::Store)?
        {
            Held::HeldBy(holder) => {
                self.holder = Some(holder);
                Ok(false)
            }
            Held::Held | Held::Acquired => {
                self.holder = None;
                self.renewed = Some(asked);
                Ok(true)
            }
        }
    }

    /// Where to resume, given what the store holds now (read right after taking the lease). A
    /// stored position is taken as it is, even below what this instance committed: put there
    /// while we did not hold the lease, it is an operator's replay (`repliqate position set`),
    /// which resuming above it would skip; the other way there (a Redis failed over to a
    /// replica that lagged) republishes rows, which at-least-once allows.
    pub fn resume(&mut self, stored: Option<Id>) -> Resume {
        self.stored = stored;
        match (stored, self.committed) {
            (Some(s), _) => Resume::Stored(s),
            (None, Some(c)) => Resume::Committed(c),
            (None, None) => Resume::Nothing,
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
    pub fn renew_if_due(&mut self, store: &mut Store) -> Result<(), Error> {
        if self.renewed.is_some_and(|t| t.elapsed() < self.ttl / 3) {
            return Ok(());
        }
        self.renew(store)
    }

    /// Renews the lease. Losing it (another instance holds it) is `StoreError::Fenced`; so is
    /// finding it lapsed, even though we now hold it again: another instance may have moved the
    /// position meanwhile, so the loop reads it again (standby, then `take`) before publishing.
    pub fn renew(&mut self, store: &mut Store) -> Result<(), Error> {
        let asked = Instant::now();
        let lease = store.hold_lease(&self.owner, self.ttl).map_err(|e| {
            // Not renewed: the next caught-up step tries again (and fails while this lasts).
            self.renewed = None;
            Error::Store(e)
        })?;
        let holder = match lease {
            Held::Held => {
                self.renewed = Some(asked);
                return Ok(());
            }
            Held::Acquired => "nobody: the lease had lapsed".to_string(),
            Held::HeldBy(holder) => holder,
        };
        Err(Error::Store(StoreError::Fenced {
            store: store.describe(),
            holder,
        }))
    }

    /// Writes `position` as the lease holder (the fenced compare-and-set), renewing the lease
    /// with it.
    pub fn commit(&mut self, store: &mut Store, position: Id) -> Result<Written, StoreError> {
        let started = Instant::now();
        let written = store.write_fenced(position, self.stored, &self.owner, self.ttl)?;
        self.committed = Some(position);
        self.stored = Some(position);
        // The fenced write extended the lease (from no earlier than `started`).
        if store.has_lease() {
            self.renewed = Some(started);
        }
        Ok(written)
    }

    /// Gives the lease up (on shutdown, or an error that ends the run), so that a standby
    /// takes over at once rather than when it lapses.
    pub fn release(&mut self, store: &mut Store) {
        self.renewed = None;
        if let Err(e) = store.release_lease(&self.owner) {
            log::warn!("releasing the job's lease: {e} (it expires by itself)");
        }
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
