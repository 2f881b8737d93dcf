//! The operator's commands besides the daemon: `repliqate check` (every start-up step taken one
//! by one into a report, writing nothing) and `repliqate position` (the stored position shown,
//! set or reset as the job's one writer). Both run the replicator's start-up steps
//! (`replicator::startup`) and never its loop.

pub mod check;
pub mod position;
