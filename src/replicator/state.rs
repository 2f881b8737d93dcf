//! What the loop is doing: standby, or active with its position and the batches it has on the
//! way. Only the holder of the job's lease is active; losing the lease takes the loop back to
//! standby, keeping a batch Kafka did not acknowledge in full, to send again if nobody moved the
//! position meanwhile.

use std::time::Instant;

use super::batch::InFlight;
use crate::value::Id;

/// What the loop is doing: only the holder of the job's lease publishes.
pub(super) enum State {
    Standby(Standby),
    Active(Active),
}

/// Another instance holds the job's lease (or nobody yet: the next turn tries to take it).
#[derive(Default)]
pub(super) struct Standby {
    /// Since when, for `--once`, which waits at most a lease's lifetime.
    pub(super) since: Option<Instant>,
    /// Whether "standby" was logged already.
    pub(super) logged: bool,
    /// A batch that was not acknowledged in full when the lease was lost: sent again on
    /// taking the lease back, if nobody moved the position meanwhile. (Boxed, as in `Active`:
    /// a batch's record batches are large, and it moves between states.)
    pub(super) unsettled: Option<Box<InFlight>>,
}

/// This instance holds the lease and publishes.
pub(super) struct Active {
    /// The last row committed, or where this instance resumed.
    pub(super) position: Id,
    /// The next batch, read while the previous one was in flight.
    pub(super) next: Option<Box<InFlight>>,
    /// A batch Kafka did not acknowledge in full on a transient error: sent again as it was
    /// before anything else.
    pub(super) unsettled: Option<Box<InFlight>>,
}

impl State {
    /// The lease is lost: standby, keeping the batch to send again if there is one.
    pub(super) fn lose_lease(self) -> State {
        let unsettled = match self {
            State::Active(active) => active.unsettled,
            State::Standby(standby) => standby.unsettled,
        };
        State::Standby(Standby {
            unsettled,
            ..Standby::default()
        })
    }
}
