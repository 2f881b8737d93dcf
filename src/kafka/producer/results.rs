//! What a send that failed returns: why (`SendError`), where each record went that was
//! acknowledged anyway (`Delivery`), and what to send again (`Unsettled`).

use super::batches::{Delivery, Unsettled};
use crate::kafka::error::Error;

/// A send failed: `error` says why, `delivered` says which records were acknowledged anyway (in
/// input order). Records with `None` were not acknowledged: they may or may not have been
/// written, so they must be sent again (at-least-once), best with `Producer::resume`.
#[derive(Debug)]
pub struct SendError {
    pub error: Error,
    pub delivered: Vec<Option<Delivery>>,
    pub(super) unsettled: Option<Box<Unsettled>>,
}

impl SendError {
    /// A send of `records` records that failed before any of them was written.
    pub(in crate::kafka) fn unsent(error: Error, records: usize) -> SendError {
        SendError {
            error,
            delivered: vec![None; records],
            unsettled: None,
        }
    }

    /// How many records, from the first on, were acknowledged: what a caller that needs its
    /// records delivered in order (a position in key order) may count as written.
    pub fn acknowledged_prefix(&self) -> usize {
        self.delivered.iter().take_while(|d| d.is_some()).count()
    }

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
