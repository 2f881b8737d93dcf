//! A batch of the table as the loop publishes it (`Batch`), and the buffer its messages are
//! encoded into while its rows stream in (`MessageBuffer`).

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Error;
use crate::config::KeyMode;
use crate::kafka::Record;
use crate::message::MessageEncoder;
use crate::value::{Id, Value};

/// A batch read, cut at held gaps and encoded, ready to publish.
pub(super) struct Batch {
    /// The rows' ids, in order (the rows themselves are not kept).
    pub(super) ids: Vec<Id>,
    pub(super) records: Vec<Record>,
    /// Rows were held back at a hole: the table may have more, but not for now.
    pub(super) holding: bool,
    /// Reading and encoding it took this long.
    pub(super) read: Duration,
}

/// The messages of one batch, encoded while its rows stream in from the source: one buffer
/// for all values and one for all keys, which the records then slice (no copy, one allocation
/// each).
pub(super) struct MessageBuffer {
    pub(super) ids: Vec<Id>,
    pub(super) values: Vec<u8>,
    keys: Vec<u8>,
    /// Each row's value and key, as ranges of `values` and `keys` (`None`: no key).
    bounds: Vec<(Range<usize>, Option<Range<usize>>)>,
    key_mode: KeyMode,
    /// One time for the whole batch: the message's `timestamp` and the record's.
    timestamp: f64,
    timestamp_ms: i64,
}

impl MessageBuffer {
    /// `rows` and `message_size` (the last batch's average) only size the buffers, so that they
    /// are not regrown and copied; `key_mode` says whether records are keyed by id.
    pub(super) fn new(rows: usize, message_size: usize, key_mode: KeyMode) -> MessageBuffer {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        MessageBuffer {
            ids: Vec::with_capacity(rows),
            values: Vec::with_capacity(rows * (message_size + 16)),
            keys: Vec::with_capacity(rows * 8),
            bounds: Vec::with_capacity(rows),
            key_mode,
            timestamp: now.as_secs_f64(),
            timestamp_ms: now.as_millis() as i64,
        }
    }

    /// Encodes one row. Per-row work is only what must be per row: the message and its hash.
    pub(super) fn push(
        &mut self,
        encoder: &mut MessageEncoder,
        id: Id,
        values: &[Value],
    ) -> Result<(), Error> {
        let start = self.values.len();
        encoder
            .encode(self.timestamp, values, &mut self.values)
            .map_err(Error::Encode)?;
        let key = match self.key_mode {
            KeyMode::PrimaryKey => {
                let key_start = self.keys.len();
                // Decimal, as `{id}` would write it; i128 formatting is slow and ids fit i64
                // (MySQL BIGINT UNSIGNED aside).
                match i64::try_from(id) {
                    Ok(id) => crate::message::write_i64(&mut self.keys, id),
                    Err(_) => {
                        use std::io::Write as _;
                        let _ = write!(self.keys, "{id}");
                    }
                }
                Some(key_start..self.keys.len())
            }
            KeyMode::None => None,
        };
        self.bounds.push((start..self.values.len(), key));
        self.ids.push(id);
        Ok(())
    }

    /// Keeps the first `n` rows (the rest are held back at a hole).
    pub(super) fn truncate(&mut self, n: usize) {
        self.ids.truncate(n);
        self.bounds.truncate(n);
    }

    /// The ids and the records, in order.
    pub(super) fn finish(self) -> (Vec<Id>, Vec<Record>) {
        let (values, keys) = (Bytes::from(self.values), Bytes::from(self.keys));
        let records = self
            .bounds
            .into_iter()
            .map(|(value, key)| Record {
                key: key.map(|k| keys.slice(k)),
                value: values.slice(value),
                headers: Vec::new(),
                timestamp_ms: self.timestamp_ms,
            })
            .collect();
        (self.ids, records)
    }
}
