//! Why replication stopped (or could not start): one variant per boundary below the loop.

use std::fmt;

use crate::config::ConfigError;
use crate::kafka;
use crate::message::MessageError;
use crate::metrics::MetricsError;
use crate::source::SourceError;
use crate::store::StoreError;

/// Why replication stopped (or could not start). One variant per boundary below us.
#[derive(Debug)]
pub enum Error {
    /// The config file (for `repliqate check` and `position`, which load it themselves).
    Config(ConfigError),
    Source(SourceError),
    Kafka(kafka::Error),
    Store(StoreError),
    Metrics(MetricsError),
    Encode(MessageError),
    /// No position is stored but the topic already has records.
    PositionLost {
        store: String,
        topic: String,
    },
    /// `--once`, but another instance holds the job's lease (and kept it for a lease time).
    LeaseHeld {
        holder: String,
    },
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Error {
        Error::Source(e)
    }
}

impl Error {
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Config(_) => false,
            Error::Source(e) => e.is_retriable(),
            Error::Kafka(e) => e.is_retriable(),
            Error::Store(e) => e.is_retriable(),
            Error::Metrics(e) => e.is_retriable(),
            Error::Encode(e) => e.is_retriable(),
            Error::PositionLost { .. } => false,
            Error::LeaseHeld { .. } => true,
        }
    }

    /// Whether only a change of configuration or credentials can fix this (a certificate, a
    /// password, a token): at start-up that is a configuration error (exit code 2), not an
    /// outage to wait out; while running it is retried with backoff, like an outage.
    pub fn needs_operator(&self) -> bool {
        match self {
            Error::Kafka(e) => e.needs_operator(),
            // A wrong or rotated password, a certificate refused, a privilege revoked.
            Error::Source(SourceError::Refused(_)) | Error::Store(StoreError::Refused { .. }) => {
                true
            }
            _ => false,
        }
    }

    /// Whether the loop waits and tries again (once per incident in the log): an outage, or
    /// what an operator can fix without a restart (`needs_operator`). Anything else ends the
    /// run.
    pub(super) fn is_worth_waiting_for(&self) -> bool {
        self.is_retriable() || self.needs_operator()
    }

    /// Which dependency failed, for "one log line per incident".
    pub fn component(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Source(_) => "source",
            Error::Kafka(_) => "kafka",
            Error::Store(_) => "position store",
            Error::Metrics(_) => "metrics",
            Error::Encode(_) => "encoding",
            Error::PositionLost { .. } | Error::LeaseHeld { .. } => "position store",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "{e}"),
            Error::Source(e) => write!(f, "reading the source: {e}"),
            Error::Kafka(e) => write!(f, "publishing to Kafka: {e}"),
            Error::Store(e) => write!(f, "position store: {e}"),
            Error::Metrics(e) => write!(f, "statsd: {e}"),
            Error::Encode(e) => write!(f, "encoding a message: {e}"),
            Error::PositionLost { store, topic } => write!(
                f,
                "no position is stored in {store}, but topic {topic} already has records: the \
                 position was probably lost (emptied Redis, deleted key or state file); refusing \
                 to republish the table from the start. Set the last replicated id in the store \
                 (repliqate position set ID), or restart with --initial-position ID (or `start` \
                 to republish everything)"
            ),
            Error::LeaseHeld { holder } => write!(
                f,
                "another instance ({holder}) is active for this job and kept its lease; --once \
                 did nothing"
            ),
        }
    }
}

impl std::error::Error for Error {}
