//! A batch of the table as the loop publishes it (`Batch`), and the buffer its messages are
//! encoded into while its rows stream in (`MessageBuffer`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Error;
use crate::config::KeyMode;
use crate::kafka::Batches;
use crate::message::MessageEncoder;
use crate::value::{Id, Value};

/// A batch read, cut at held gaps and encoded, ready to publish.
pub(super) struct Batch {
    /// The rows' ids, in order (the rows themselves are not kept).
    pub(super) ids: Vec<Id>,
    /// Their messages, in their record batches.
    pub(super) batches: Batches,
    /// Rows were held back at a hole: the table may have more, but not for now.
    pub(super) holding: bool,
    /// Reading and encoding it took this long.
    pub(super) read: Duration,
}

/// The messages of one batch, encoded while its rows stream in from the source: each straight
/// into its partition's record batch, where it is sent from (no copy of it on the way).
pub(super) struct MessageBuffer {
    pub(super) ids: Vec<Id>,
    batches: Batches,
    /// The key of the row being pushed.
    key: Vec<u8>,
    key_mode: KeyMode,
    /// One time for the whole batch: the message's `timestamp` and the record's.
    timestamp: f64,
    timestamp_ms: i64,
}

impl MessageBuffer {
    /// `batches`: the producer's empty send, sized for the rows expected; `key_mode` says
    /// whether records are keyed by id.
    pub(super) fn new(batches: Batches, key_mode: KeyMode) -> MessageBuffer {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        MessageBuffer {
            ids: Vec::new(),
            batches,
            key: Vec::with_capacity(24),
            key_mode,
            timestamp: now.as_secs_f64(),
            timestamp_ms: now.as_millis() as i64,
        }
    }

    /// Encodes one row. Per-row work is only what must be per row: the message and its hash.
    /// After a row too large to publish (the send ends with it), rows are not taken.
    pub(super) fn push(
        &mut self,
        encoder: &mut MessageEncoder,
        id: Id,
        values: &[Value],
    ) -> Result<(), Error> {
        if self.batches.is_closed() {
            return Ok(());
        }
        let key = match self.key_mode {
            KeyMode::PrimaryKey => {
                self.key.clear();
                // Decimal, as `{id}` would write it; i128 formatting is slow and ids fit i64
                // (MySQL BIGINT UNSIGNED aside).
                match i64::try_from(id) {
                    Ok(id) => crate::message::write_i64(&mut self.key, id),
                    Err(_) => {
                        use std::io::Write as _;
                        let _ = write!(self.key, "{id}");
                    }
                }
                Some(&self.key[..])
            }
            KeyMode::None => None,
        };
        let timestamp = self.timestamp;
        self.batches
            .push(key, self.timestamp_ms, |buf| {
                encoder.encode(timestamp, values, buf)
            })
            .map_err(Error::Encode)?;
        self.ids.push(id);
        Ok(())
    }

    /// The bytes encoded so far, framing included.
    pub(super) fn bytes(&self) -> usize {
        self.batches.bytes()
    }

    /// Keeps the first `n` rows (the rest are held back at a hole).
    pub(super) fn truncate(&mut self, n: usize) {
        self.ids.truncate(n);
        self.batches.truncate(n);
    }

    /// The ids and their messages.
    pub(super) fn finish(self) -> (Vec<Id>, Batches) {
        (self.ids, self.batches)
    }
}
