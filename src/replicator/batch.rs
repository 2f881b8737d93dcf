//! A batch of the table on its way to Kafka (`InFlight`), and the buffer its messages are
//! encoded into while its rows stream in (`MessageBuffer`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::Error;
use crate::config::KeyMode;
use crate::kafka::{Batches, Unsettled};
use crate::message::{
    canonical_digest, canonical_digests, fill_hash, MessageEncoder, MessageError,
};
use crate::value::{Id, Value};

/// A batch of the table on its way to Kafka, from the moment it is read until Kafka has
/// acknowledged all of it.
pub(super) struct InFlight {
    /// The rows' ids, in key order (the rows themselves are not kept).
    pub(super) ids: Vec<Id>,
    /// Their messages, in their record batches, until they are handed to the producer.
    pub(super) messages: Option<Batches>,
    /// Rows were held back at a hole: the table may have more, but not for now.
    pub(super) holding: bool,
    /// Reading and encoding it took this long.
    pub(super) read: Duration,
    /// How many of `ids` (a prefix) Kafka has acknowledged, and were counted, so far.
    pub(super) acknowledged: usize,
    /// After a send that failed on a transient error: its record batches exactly as they were
    /// sent, to send again unchanged, so that the broker drops the copies it already wrote.
    pub(super) unsettled: Option<Unsettled>,
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
    /// The last rows written, whose hashes are computed four at a time.
    unhashed: Unhashed,
}

/// Messages from this size on are hashed four at a time; smaller ones as they are written. Four
/// at once saves ~16 ns per 64-byte block of canonical text, while copying the text and writing
/// the hash in later cost ~50 ns per message: even at about three blocks (messages of ~300
/// bytes). Per row pushed, one at a time against four at a time: 562–598 against 599–605 ns at
/// ~310-byte messages, 608–648 against 435–588 ns at ~340 bytes, 816–835 against 707–740 ns
/// at ~490 bytes, 1,643–1,713 against 1,555–1,589 ns at ~1.2 KB.
const GROUP_FROM_BYTES: usize = 320;

/// Up to four messages written with their hash left out, and their rows' canonical texts: the
/// four are hashed together (`canonical_digests`), and their hashes written into them. A batch
/// is finished only when all its messages have theirs.
#[derive(Default)]
struct Unhashed {
    texts: [Vec<u8>; 4],
    /// Which of the batch's records each text is the message of.
    rows: [usize; 4],
    len: usize,
    /// Whether the next message is left unhashed: the last one was `GROUP_FROM_BYTES` or more
    /// (a table's rows are much alike).
    group: bool,
}

impl Unhashed {
    /// Hashes the rows held and writes their hashes into their messages. Every row held must
    /// still be in `batches` (`forget_from` drops those cut off).
    fn write_hashes(&mut self, batches: &mut Batches) -> Result<(), Error> {
        let n = std::mem::take(&mut self.len);
        let digests = match n {
            0 => return Ok(()),
            1 => [canonical_digest(&self.texts[0]); 4],
            // Fewer than four (the end of a batch): the empty lanes hash the first text again.
            _ => canonical_digests(std::array::from_fn(|j| &self.texts[j % n][..])),
        };
        let result = self.rows[..n]
            .iter()
            .zip(&digests)
            .find(|&(&row, digest)| !batches.value_mut(row).is_some_and(|m| fill_hash(m, digest)))
            .map_or(Ok(()), |(&row, _)| {
                Err(Error::Encode(MessageError::HashNotWritten { row }))
            });
        for text in &mut self.texts[..n] {
            text.clear();
        }
        result
    }

    /// Forgets the rows held from the batch's row `rows` on (cut off by `truncate`).
    fn forget_from(&mut self, rows: usize) {
        let keep = self.rows[..self.len]
            .iter()
            .take_while(|&&r| r < rows)
            .count();
        for text in &mut self.texts[keep..self.len] {
            text.clear();
        }
        self.len = keep;
    }
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
            unhashed: Unhashed::default(),
        }
    }

    /// Encodes one row. Per-row work is only what must be per row: the message and its hash
    /// (for messages of `GROUP_FROM_BYTES` or more, computed with three other rows' hashes).
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
        let row = self.batches.written();
        let pending = &mut self.unhashed;
        let group = pending.group;
        let text = &mut pending.texts[pending.len];
        let mut size = 0;
        self.batches
            .push(key, self.timestamp_ms, |buf| {
                let start = buf.len();
                if group {
                    encoder.encode_unhashed(timestamp, values, buf, text)?;
                } else {
                    encoder.encode(timestamp, values, buf)?;
                }
                size = buf.len() - start;
                Ok(())
            })
            .map_err(Error::Encode)?;
        self.ids.push(id);
        pending.group = size >= GROUP_FROM_BYTES;
        if !group {
            return Ok(());
        }
        if self.batches.written() == row {
            // Refused, too large to send: no message to hash.
            text.clear();
            return Ok(());
        }
        pending.rows[pending.len] = row;
        pending.len += 1;
        if pending.len == pending.texts.len() {
            pending.write_hashes(&mut self.batches)?;
        }
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
        self.unhashed.forget_from(self.batches.written());
    }

    /// The ids and their messages, every one with its hash.
    pub(super) fn finish(mut self) -> Result<(Vec<Id>, Batches), Error> {
        self.unhashed.write_hashes(&mut self.batches)?;
        Ok((self.ids, self.batches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<String> {
        ["id", "kind", "payload", "amount"]
            .map(String::from)
            .to_vec()
    }

    /// Row `i`, with a payload of `len` bytes (escapes and non-ASCII included).
    fn row(i: i64, len: usize) -> Vec<Value> {
        let payload: String = "ab\"cé\u{1F600}x\n".chars().cycle().take(len).collect();
        vec![
            Value::Int(i),
            Value::Str(format!("kind-{}", i % 3)),
            Value::Str(payload),
            Value::Float(i as f64 / 8.0),
        ]
    }

    /// Pushes `rows` (keyed by id), keeps the first `keep`, and checks that each message is, byte
    /// for byte, what the encoder writes for that row alone, its hash computed there and then.
    fn check(rows: &[Vec<Value>], keep: usize, budget: usize) -> usize {
        let by_id = check_keyed(rows, keep, budget, KeyMode::PrimaryKey);
        assert_eq!(check_keyed(rows, keep, budget, KeyMode::None), by_id);
        by_id
    }

    fn check_keyed(rows: &[Vec<Value>], keep: usize, budget: usize, keys: KeyMode) -> usize {
        let mut encoder = MessageEncoder::new("job", "events", &columns());
        let mut buffer = MessageBuffer::new(Batches::for_tests(3, budget), keys);
        for (i, values) in rows.iter().enumerate() {
            buffer.push(&mut encoder, i as Id, values).unwrap();
        }
        buffer.truncate(keep);
        let timestamp = buffer.timestamp;
        let (_, mut batches) = buffer.finish().unwrap();
        let mut alone = MessageEncoder::new("job", "events", &columns());
        for (n, values) in rows.iter().enumerate().take(batches.written()) {
            let mut expected = Vec::new();
            alone.encode(timestamp, values, &mut expected).unwrap();
            let got = batches.value_mut(n).unwrap();
            assert_eq!(
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(&expected),
                "message {n} of {}",
                rows.len()
            );
        }
        batches.written()
    }

    #[test]
    fn every_message_has_its_rows_hash_hashed_alone_or_four_at_once() {
        // Small rows are hashed as they are written, large ones four at a time; a batch ends
        // with 0 to 3 rows left over, and a size between the two switches from one to the other.
        for count in 0..=9 {
            for sizes in [
                &[10][..],
                &[600],
                &[10, 600, 600, 10, 3000],
                &[600, 5, 0, 700],
            ] {
                let rows: Vec<_> = (0..count)
                    .map(|i| row(i as i64, sizes[i % sizes.len()]))
                    .collect();
                assert_eq!(check(&rows, count, 1 << 20), count);
            }
        }
    }

    #[test]
    fn rows_cut_off_at_a_hole_leave_the_others_hashed() {
        let rows: Vec<_> = (0..11).map(|i| row(i, 700)).collect();
        for keep in 0..=11 {
            assert_eq!(check(&rows, keep, 1 << 20), keep);
        }
    }

    #[test]
    fn a_row_too_large_to_send_ends_the_batch_with_the_rows_before_it_hashed() {
        // Rows over the batch budget move to a partition's next batch; one over any budget is
        // refused, and the send ends before it.
        let mut rows: Vec<_> = (0..6).map(|i| row(i, 900)).collect();
        rows.push(row(6, 5000));
        rows.extend((7..9).map(|i| row(i, 900)));
        assert_eq!(check(&rows, rows.len(), 8000), 6);
    }
}
