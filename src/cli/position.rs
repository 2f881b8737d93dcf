//! `repliqate position show|set|reset`: the stored position read, or changed by hand (to replay
//! rows or to skip them), without `redis-cli` and the exact key string.
//!
//! A change is made as the job's one writer, so that no running instance can overwrite it
//! afterwards: the job is claimed (Redis: the lease taken with an owner token of our own; a
//! state file: its lock), the position written through the same fenced write as the daemon's
//! commits, and the lease released. Without `force` a job another instance holds is refused.
//! With `force` (Redis only) the lease is taken over from its holder: that instance's next
//! renewal or fenced commit is refused, so it stands by, takes the lease again once free, and
//! resumes from the stored position — the new one (`lease.rs`: a stored position is taken as it
//! is). A state file's writer cannot be fenced, so there `force` is refused too.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use super::check::{describe_holder, holder_fields, number};
use crate::config::Config;
use crate::replicator::lease::{instance, owner_token};
use crate::replicator::{show_position, Error};
use crate::store::{Claim, LeaseHolder, Store};
use crate::value::Id;

/// What `show` read.
pub struct Shown {
    pub job: String,
    pub store: String,
    pub position: Option<Id>,
    pub holder: Option<LeaseHolder>,
    /// Whether the store has a lease (Redis) or a state file's lock.
    pub has_lease: bool,
    /// `lease_sec`, for the holder's age.
    pub lease: Duration,
}

impl Shown {
    /// `job J: position P (store)` and `lease: …`, one line each.
    pub fn text(&self) -> String {
        let position = self
            .position
            .map_or("none stored".to_string(), |p| p.to_string());
        format!(
            "job {}: position {position} ({})\nlease: {}\n",
            self.job,
            self.store,
            describe_holder(self.holder.as_ref(), self.has_lease, self.lease)
        )
    }

    /// `{job, store, position, lease: {holder, age_sec, expires_in_sec} or null}`.
    pub fn json(&self) -> Value {
        json!({
            "job": self.job,
            "store": self.store,
            "position": self.position.map_or(Value::Null, number),
            "lease": self
                .holder
                .as_ref()
                .map(|h| Value::Object(holder_fields(h, self.lease))),
        })
    }
}

/// Reads the stored position and who holds the job (nothing is written).
pub fn show(config: &Config) -> Result<Shown, Error> {
    let mut store = crate::replicator::startup::store(config)?;
    let position = store.read().map_err(Error::Store)?;
    let holder = store.lease_holder().map_err(Error::Store)?;
    Ok(Shown {
        job: config.name.clone(),
        store: store.describe(),
        position,
        holder,
        has_lease: store.has_lease(),
        lease: config.lease,
    })
}

/// A change to the stored position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Store this position: the job resumes after it.
    Set(Id),
    /// Remove the position: the job starts as a new job.
    Reset,
}

/// What is about to change, for the operator to confirm.
pub struct Plan {
    pub job: String,
    pub store: String,
    pub old: Option<Id>,
    pub change: Change,
    /// The instance whose lease `force` is about to take over.
    pub taking_over: Option<String>,
}

/// A change made: for the line logged on stderr.
pub struct Changed {
    pub job: String,
    pub store: String,
    /// The position before, as read under our claim.
    pub old: Option<Id>,
    pub change: Change,
    /// Who made it: host and pid.
    pub by: String,
    /// The instance whose lease was taken over (`force`).
    pub taken_from: Option<String>,
}

/// Why a change was not made.
#[derive(Debug)]
pub enum PositionError {
    /// The store (or the config) failed: the daemon's error.
    Failed(Error),
    /// Another instance holds the job (its lease, or the state file's lock).
    Busy { holder: String, why: &'static str },
    /// The operator answered no.
    Declined,
}

impl fmt::Display for PositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PositionError::Failed(e) => write!(f, "{e}"),
            PositionError::Busy { holder, why } => {
                write!(f, "another instance ({holder}) holds the job: {why}")
            }
            PositionError::Declined => write!(f, "not confirmed: nothing changed"),
        }
    }
}

impl From<Error> for PositionError {
    fn from(e: Error) -> PositionError {
        PositionError::Failed(e)
    }
}

/// Makes `change` to the job's stored position; `confirm` is asked once the change is known to
/// be possible (nothing is claimed before it answers yes). See the module documentation.
pub fn change(
    config: &Config,
    change: Change,
    force: bool,
    confirm: impl FnOnce(&Plan) -> bool,
) -> Result<Changed, PositionError> {
    let mut store = crate::replicator::startup::store(config)?;
    let old = store.read().map_err(Error::Store)?;
    let holder = store.lease_holder().map_err(Error::Store)?;
    if let (Some(h), Some(why)) = (&holder, refusal(&store, change, force)) {
        return Err(PositionError::Busy {
            holder: h.owner.clone(),
            why,
        });
    }
    let plan = Plan {
        job: config.name.clone(),
        store: store.describe(),
        old,
        change,
        taking_over: holder.map(|h| h.owner),
    };
    if !confirm(&plan) {
        return Err(PositionError::Declined);
    }
    let owner = owner_token();
    let taken_from = match store
        .claim(&owner, config.lease, force)
        .map_err(Error::Store)?
    {
        Claim::Free => None,
        Claim::TakenFrom(holder) => Some(holder),
        // Taken between our look and our claim.
        Claim::HeldBy(holder) => {
            return Err(PositionError::Busy {
                holder,
                why: refusal(&store, change, false).unwrap_or(FORCE_HINT),
            })
        }
    };
    let written = write(&mut store, &owner, change, config.lease);
    if let Err(e) = store.release_lease(&owner) {
        log::warn!("releasing the job's lease: {e} (it lapses by itself in lease_sec)");
    }
    let old = written?;
    Ok(Changed {
        job: config.name.clone(),
        store: store.describe(),
        old,
        change,
        by: instance(),
        taken_from,
    })
}

/// Writes `change` under our claim; returns the position it replaced, read under the claim
/// (a running instance may have committed since the operator was asked).
fn write(
    store: &mut Store,
    owner: &str,
    change: Change,
    lease: Duration,
) -> Result<Option<Id>, Error> {
    let old = store.read().map_err(Error::Store)?;
    match change {
        Change::Set(p) => store.write_fenced(p, old, owner, lease).map(|_| ()),
        Change::Reset => store.clear_fenced(owner),
    }
    .map_err(Error::Store)?;
    Ok(old)
}

const FORCE_HINT: &str = "stop it first, or pass --force to take its lease over (it then stands \
                          by and resumes from the new position)";

/// Why a change may not go ahead while another instance holds the job; `None`: it may.
fn refusal(store: &Store, change: Change, force: bool) -> Option<&'static str> {
    if !store.has_lease() {
        Some("stop it first (an instance on a state file cannot be fenced, so --force cannot help)")
    } else if change == Change::Reset {
        Some(
            "stop every instance of the job first: an instance that finds no position stored \
             restores the one it last committed (what protects a job from an emptied Redis), so \
             a reset cannot take effect under a running instance",
        )
    } else if force {
        None
    } else {
        Some(FORCE_HINT)
    }
}

impl fmt::Display for Plan {
    /// `job J (store): position OLD → NEW`, and what follows from it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {} ({}): position {} → {}",
            self.job,
            self.store,
            show_stored(self.old),
            show_change(self.change)
        )?;
        match (self.change, self.old) {
            (Change::Set(new), Some(old)) if new < old => {
                write!(f, "; the rows after {new} up to {old} are published again")?
            }
            (Change::Set(new), Some(old)) if new > old => write!(
                f,
                "; the rows after {old} up to {new} are skipped, never published"
            )?,
            (Change::Reset, _) => write!(
                f,
                "; the job then starts as a new job, and if its topic already has records the \
                 daemon refuses to start without --initial-position ID"
            )?,
            _ => {}
        }
        if let Some(holder) = &self.taking_over {
            write!(
                f,
                "; the lease is taken over from {holder}, which stands by and resumes from the \
                 new position"
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {}: position {} → {} in {}, by {}",
            self.job,
            show_stored(self.old),
            show_change(self.change),
            self.store,
            self.by
        )?;
        if let Some(holder) = &self.taken_from {
            write!(f, "; lease taken over from {holder}")?;
        }
        Ok(())
    }
}

fn show_stored(p: Option<Id>) -> String {
    p.map_or("none".to_string(), show_position)
}

fn show_change(c: Change) -> String {
    match c {
        Change::Set(p) => p.to_string(),
        Change::Reset => "none (removed)".to_string(),
    }
}

/// A position given on the command line: an integer from i64::MIN to u64::MAX (the key types
/// the sources read), nothing else.
pub fn parse_id(s: &str) -> Result<Id, String> {
    let accepted = format!("an integer id from {} to {}", i64::MIN, u64::MAX);
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected {accepted}, got {s:?}"));
    }
    match s.parse::<Id>() {
        Ok(id) if (Id::from(i64::MIN)..=Id::from(u64::MAX)).contains(&id) => Ok(id),
        _ => Err(format!("{s} is out of range: expected {accepted}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_i64_min_to_u64_max_and_nothing_else() {
        assert_eq!(parse_id("42"), Ok(42));
        assert_eq!(parse_id("-7"), Ok(-7));
        assert_eq!(parse_id("0"), Ok(0));
        assert_eq!(parse_id("18446744073709551615"), Ok(Id::from(u64::MAX)));
        assert_eq!(parse_id("-9223372036854775808"), Ok(Id::from(i64::MIN)));
        for bad in ["", "-", "+5", "1.5", "4e3", " 4", "abc", "0x10", "start"] {
            let e = parse_id(bad).expect_err(bad);
            assert!(e.starts_with("expected an integer id from"), "{bad:?}: {e}");
        }
        for out in [
            "18446744073709551616",
            "-9223372036854775809",
            "9".repeat(60).as_str(),
        ] {
            let e = parse_id(out).expect_err(out);
            assert!(e.contains("out of range"), "{out}: {e}");
        }
    }

    fn plan(old: Option<Id>, change: Change, taking_over: Option<&str>) -> String {
        Plan {
            job: "orders".into(),
            store: "state file /x".into(),
            old,
            change,
            taking_over: taking_over.map(str::to_string),
        }
        .to_string()
    }

    #[test]
    fn the_confirmation_says_what_follows() {
        assert_eq!(
            plan(Some(100), Change::Set(42), None),
            "job orders (state file /x): position 100 → 42; the rows after 42 up to 100 are \
             published again"
        );
        assert!(plan(Some(1), Change::Set(9), None).contains("skipped, never published"));
        assert!(plan(None, Change::Reset, None).contains("--initial-position"));
        assert!(plan(Some(3), Change::Set(3), Some("h-1-ab")).ends_with(
            "position 3 → 3; the lease is taken over from h-1-ab, which stands by and resumes \
             from the new position"
        ));
    }
}
