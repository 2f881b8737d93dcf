//! What a send returns: where each record went (`Delivery`), or why not (`SendError`), with
//! what to send again (`Unsettled`).

use super::batches::Outgoing;
use crate::kafka::error::Error;

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    /// None when the broker acknowledged the batch as a duplicate of one it already had
    /// (DUPLICATE_SEQUENCE) without telling us its offset.
    pub offset: Option<i64>,
}

/// `send` failed: `error` says why, `delivered` says which records were acknowledged anyway (in
/// input order). Records with `None` were not acknowledged: they may or may not have been
/// written, so they must be sent again (at-least-once), best with `Producer::resume`.
#[derive(Debug)]
pub struct SendError {
    pub error: Error,
    pub delivered: Vec<Option<Delivery>>,
    pub(super) unsettled: Option<Box<Unsettled>>,
}

impl SendError {
    pub fn unacknowledged(&self) -> usize {
        self.delivered.iter().filter(|d| d.is_none()).count()
    }

    /// The batches to send again, when the error is transient (see `Producer::resume`). `None`
    /// after a non-retriable error or shutdown: then the records must be sent anew.
    pub fn take_unsettled(&mut self) -> Option<Unsettled> {
        self.unsettled.take().map(|u| *u)
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} records not acknowledged: {}",
            self.unacknowledged(),
            self.delivered.len(),
            self.error
        )
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What a send that failed on a transient error left unacknowledged: its batches exactly as
/// they were sent (encoding, producer id, sequence numbers), and which records were
/// acknowledged. Sending these again rather than the same records anew lets the broker drop
/// the copies it already wrote (KIP-98): an outage longer than the delivery timeout then costs
/// no duplicates, and partitions acknowledged before it are not written again.
pub struct Unsettled(pub(super) Outgoing);

impl std::fmt::Debug for Unsettled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsettled")
            .field("topic", &self.0.topic)
            .field(
                "batches",
                &self.0.batches.iter().filter(|b| !b.done).count(),
            )
            .finish()
    }
}
