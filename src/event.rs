//! What the replication loop reports as it works: each thing that happened, said once, as an
//! `Event`. Two exporters listen and take what they have a series for: statsd
//! (`metrics::Statsd`, the old tool's lines) and the HTTP endpoint's Prometheus metrics and
//! probes (`status::Status::record`). The loop's side is `replicator::telemetry`.
//!
//! A leaf: the exporters depend on this module, never the other way round.

use std::time::Duration;

use crate::value::Id;

/// One thing the loop did or saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// The loop completed a step, or a second of a sleep (liveness, systemd's watchdog).
    Beat,
    /// This instance took the job's lease (`true`), or lost or failed to take it.
    Active(bool),
    /// Where the active instance resumes, read at taking the lease.
    Resumed(Position),
    /// The table's highest id, as just read (`None`: the table is empty).
    MaxId(Option<Id>),
    /// The stored position was read; `ok`: the store answered.
    StoreRead { ok: bool, took: Duration },
    /// A fetch of the rows above the position; `rows`: how many came back (0 on failure).
    Fetched {
        ok: bool,
        rows: usize,
        took: Duration,
    },
    /// A batch was read (fetched, cut at a hole, encoded) in `took`; `behind`: a whole batch
    /// came back and no rows were held, so more rows wait.
    BatchRead { took: Duration, behind: bool },
    /// A publish to Kafka ended after `took`, with `acknowledged` rows newly acknowledged;
    /// `ok`: all of the batch's rows are.
    Published {
        ok: bool,
        acknowledged: usize,
        took: Duration,
    },
    /// The position store was written (or refused, or failed).
    StoreWritten { ok: bool, took: Duration },
    /// The position was committed: every row up to this id is in Kafka.
    Committed(Id),
    /// A hole in the id sequence was given up on: `proven_final`, or after its timeout.
    GapSkipped { proven_final: bool },
    /// After a read: `rows` rows held back above a hole, the oldest held hole open for `oldest`
    /// (both zero when nothing is held).
    GapHeld { rows: usize, oldest: Duration },
    /// Rows appeared in a hole after it was skipped (a transaction outlived gap_timeout).
    LateRowsFound(usize),
    /// Those late rows were published (outside any batch of the position).
    LateRowsPublished(usize),
    /// A call to `component` failed with `error` (one line, no secrets): an incident, until
    /// `Recovered`.
    Failed {
        component: &'static str,
        error: &'a str,
    },
    /// A step succeeded after an incident.
    Recovered,
    /// The end of a batch (or of a caught-up step): buffered exports go out.
    Flush,
}

/// Where the active instance is, as the endpoint shows it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Standby, or starting.
    #[default]
    Unknown,
    /// A new job: nothing replicated yet.
    Start,
    /// The last id replicated.
    At(Id),
}
