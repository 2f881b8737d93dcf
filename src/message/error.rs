//! What can go wrong turning a row into a message: the encoder's one error type, shared by the
//! column layout's check, the encoder and the batch that fills in hashes.

use std::fmt;

/// A row the encoder cannot turn into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The source handed over a row whose length differs from the selected column list, e.g.
    /// because the table's schema changed between column discovery and the query.
    ColumnCountMismatch { columns: usize, values: usize },
    /// The hash of the batch's `row`-th message could not be written into it (our bug: the
    /// message is not where it was written). The batch is not sent.
    HashNotWritten { row: usize },
}

impl MessageError {
    /// Encoding is deterministic: the same row fails again.
    pub fn is_retriable(&self) -> bool {
        match self {
            MessageError::ColumnCountMismatch { .. } => false,
            MessageError::HashNotWritten { .. } => false,
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::ColumnCountMismatch { columns, values } => write!(
                f,
                "encoding a row: got {values} values for {columns} selected columns \
                 (the row must have exactly one value per selected column)"
            ),
            MessageError::HashNotWritten { row } => write!(
                f,
                "message {row} of the batch has no hash: it is not where it was written \
                 (a bug in repliqate; the batch was not sent)"
            ),
        }
    }
}

impl std::error::Error for MessageError {}
