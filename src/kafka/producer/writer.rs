//! `Batches`: a send's records written straight into their partitions' record batches as the
//! caller pushes them, so that a value is encoded once, in the place it is sent from.
//!
//! Each record goes to its partition (the key's murmur2, or the partitions in turn without a
//! key) and is appended to that partition's open batch (`records::Section`); a record that takes
//! a batch over the request budget starts the partition's next one. A record too large for any
//! batch is refused: the send ends before it (the records before it are sent, and the send then
//! fails naming its key). Stamping and compression wait for `Batcher::seal`, when the send
//! starts, so everything sealed batches allow (re-stamping, splitting on MESSAGE_TOO_LARGE) is
//! unchanged.

use bytes::Bytes;

use crate::kafka::error::Error;
use crate::kafka::partitioner::partition_for_key;
use crate::kafka::records::{describe_key, Section, BATCH_OVERHEAD};

/// Room in each batch's buffer beyond its budget, for the record that takes it over (which
/// then moves to the partition's next batch).
const OVERFLOW_ROOM: usize = 64 * 1024;
/// The smallest buffer a batch starts with (it grows if it must).
const MIN_CAPACITY: usize = 4096;

/// The records of one send to one topic, encoded into record batches as they are pushed. Made
/// by `Producer::batches`, sent by `Producer::start`.
#[derive(Debug)]
pub struct Batches {
    pub(super) topic: String,
    partitions: usize,
    budget: usize,
    max_request_size: usize,
    /// Where the next unkeyed record goes, counted on from the producer's last send.
    pub(super) round_robin: usize,
    /// What each partition's records are expected to take, to size its batches' buffers.
    share: usize,
    pub(super) batches: Vec<OpenBatch>,
    /// Per partition, the batch its records are appended to: its last.
    open: Vec<Option<usize>>,
    /// Per record pushed, in order: its batch, where it starts there, and its timestamp.
    rows: Vec<Row>,
    /// The record that could not be sent (too large), which ends the send.
    pub(super) refused: Option<Error>,
}

/// One record batch of a send, not stamped yet.
#[derive(Debug)]
pub(super) struct OpenBatch {
    pub partition: i32,
    pub section: Section,
    /// Which of the send's records it holds, in order.
    pub records: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    batch: u32,
    start: u32,
    timestamp: i64,
}

impl Batches {
    /// `expected`: about how many bytes the send's records take, to size the buffers (0 when
    /// unknown: they grow).
    pub(super) fn new(
        topic: &str,
        partitions: usize,
        budget: usize,
        max_request_size: usize,
        round_robin: usize,
        expected: usize,
    ) -> Batches {
        let partitions = partitions.max(1);
        Batches {
            topic: topic.to_string(),
            partitions,
            budget,
            max_request_size,
            round_robin,
            // With room for an uneven spread.
            share: expected / partitions + expected / partitions / 8,
            batches: Vec::new(),
            open: vec![None; partitions],
            rows: Vec::new(),
            refused: None,
        }
    }

    /// An empty send to topic `t` for tests outside the producer: `partitions` partitions,
    /// batches of up to `budget` bytes.
    #[cfg(test)]
    pub(crate) fn for_tests(partitions: usize, budget: usize) -> Batches {
        Batches::new("t", partitions, budget, budget, 0, 0)
    }

    /// Appends a record of `key`, created at `timestamp_ms`, whose value `value` appends to the
    /// buffer it is given (in place: the buffer is the record batch's). When `value` fails,
    /// the record is not pushed (whatever `value` wrote goes) and its error is returned. A record too large to send is counted
    /// but refused (`refused`): the send ends with it, and later pushes are ignored.
    pub fn push<E>(
        &mut self,
        key: Option<&[u8]>,
        timestamp_ms: i64,
        value: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.push_with_headers(key, timestamp_ms, &[], value)
    }

    /// `push`, with the record's headers (the daemon's records have none).
    pub(in crate::kafka) fn push_with_headers<E>(
        &mut self,
        key: Option<&[u8]>,
        timestamp_ms: i64,
        headers: &[(String, Bytes)],
        value: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.refused.is_some() {
            return Ok(());
        }
        let partition = match key {
            Some(key) => partition_for_key(key, self.partitions),
            None => {
                self.round_robin = self.round_robin.wrapping_add(1);
                self.round_robin % self.partitions
            }
        };
        let index = self.rows.len() as u32;
        let b = match self.open[partition] {
            Some(b) => b,
            None => self.open_batch(partition),
        };
        let section = &mut self.batches[b].section;
        let start = section.len();
        if let Err(e) = section.append(timestamp_ms, key, headers, value) {
            // A batch opened for this record goes with it: no batch is ever empty.
            if section.count() == 0 {
                self.drop_last_batch(partition);
            }
            return Err(e);
        }
        let size = section.len() - start;
        if section.len() <= self.budget {
            self.batches[b].records.push(index);
            self.rows.push(Row {
                batch: b as u32,
                start: start as u32,
                timestamp: timestamp_ms,
            });
            return Ok(());
        }
        // Over the budget: the record goes to the partition's next batch, where it is first;
        // if it is already first, it fits in none.
        let alone = section.count() == 1;
        let taken = section.remove_last(start);
        if alone {
            self.drop_last_batch(partition);
        }
        let (timestamp, fields) = match taken {
            Ok(taken) if !alone => taken,
            Ok(_) => {
                self.refuse(key, size);
                return Ok(());
            }
            Err(e) => {
                self.refused = Some(e);
                return Ok(());
            }
        };
        let b = self.open_batch(partition);
        let section = &mut self.batches[b].section;
        section.append_fields(timestamp, &fields);
        if section.len() > self.budget {
            let size = section.len() - BATCH_OVERHEAD;
            self.drop_last_batch(partition);
            self.refuse(key, size);
            return Ok(());
        }
        self.batches[b].records.push(index);
        self.rows.push(Row {
            batch: b as u32,
            start: BATCH_OVERHEAD as u32,
            timestamp,
        });
        Ok(())
    }

    fn open_batch(&mut self, partition: usize) -> usize {
        // What the partition's share leaves, within one batch; and, for a batch expected to
        // fill, room for the record that takes it over the budget before it moves to the next
        // one. The buffer is not regrown (and copied) while the estimate holds (and records
        // are smaller than that room).
        let written: usize = self
            .batches
            .iter()
            .filter(|b| b.partition as usize == partition)
            .map(|b| b.section.len())
            .sum();
        let left = self.share.saturating_sub(written);
        let capacity = if left >= self.budget {
            self.budget + OVERFLOW_ROOM
        } else {
            left.max(MIN_CAPACITY)
        };
        self.batches.push(OpenBatch {
            partition: partition as i32,
            section: Section::with_capacity(capacity),
            records: Vec::new(),
        });
        let b = self.batches.len() - 1;
        self.open[partition] = Some(b);
        b
    }

    /// Drops the batch opened last, which is `partition`'s and holds no record pushed.
    fn drop_last_batch(&mut self, partition: usize) {
        debug_assert!(self
            .batches
            .last()
            .is_some_and(|b| b.partition as usize == partition && b.records.is_empty()));
        self.batches.pop();
        self.open[partition] = self
            .batches
            .iter()
            .rposition(|b| b.partition as usize == partition);
    }

    /// Refuses a record of `key` that takes `size` bytes alone in a batch.
    fn refuse(&mut self, key: Option<&[u8]>, size: usize) {
        self.refused = Some(Error::RecordTooLarge {
            topic: self.topic.clone(),
            key: describe_key(key),
            size: BATCH_OVERHEAD + size,
            limit: Some(self.max_request_size),
        });
    }

    /// How many records were pushed (a refused one included).
    pub fn len(&self) -> usize {
        self.rows.len() + usize::from(self.refused.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records were written: those pushed, less a refused one.
    pub fn written(&self) -> usize {
        self.rows.len()
    }

    /// The value of the `row`-th record written, to change in place (its length stays): for
    /// what is known only after it was encoded. None when there is no such record.
    pub fn value_mut(&mut self, row: usize) -> Option<&mut [u8]> {
        let Row { batch, start, .. } = *self.rows.get(row)?;
        self.batches
            .get_mut(batch as usize)?
            .section
            .value_mut(start as usize)
    }

    /// Whether a record was refused (see `push`): nothing after it is taken.
    pub fn is_closed(&self) -> bool {
        self.refused.is_some()
    }

    /// The bytes of the batches written so far.
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(|b| b.section.len()).sum()
    }

    /// Keeps the first `n` records pushed.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        self.refused = None;
        if n >= self.rows.len() {
            return;
        }
        // Batches are opened in the order of their first records: those whose first record
        // goes form the tail; in the others, the records from the first that goes are cut.
        let keep = self
            .batches
            .iter()
            .position(|b| b.records[0] as usize >= n)
            .unwrap_or(self.batches.len());
        self.batches.truncate(keep);
        let mut cut = vec![None; keep];
        for row in &self.rows[n..] {
            let b = row.batch as usize;
            if b < keep && cut[b].is_none() {
                cut[b] = Some(row.start as usize);
            }
        }
        let mut latest = vec![i64::MIN; keep];
        for row in &self.rows[..n] {
            let b = row.batch as usize;
            latest[b] = latest[b].max(row.timestamp);
        }
        for (b, batch) in self.batches.iter_mut().enumerate() {
            if let Some(at) = cut[b] {
                let count = batch.records.partition_point(|&i| (i as usize) < n);
                batch.records.truncate(count);
                batch.section.truncate(at, count, latest[b]);
            }
        }
        self.rows.truncate(n);
        for (partition, open) in self.open.iter_mut().enumerate() {
            *open = self
                .batches
                .iter()
                .rposition(|b| b.partition as usize == partition);
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;
    use crate::kafka::producer::batches::{Batcher, Idempotence, RecordBatch};
    use crate::kafka::records::Compression;

    /// Record `i`: key `i` (or none), a value whose length varies from 0 to ~1 KB.
    fn value(i: usize) -> Vec<u8> {
        format!("{i}:{}", "v".repeat(i * 37 % 1000)).into_bytes()
    }

    fn push(batches: &mut Batches, i: usize, keyed: bool) {
        let key = i.to_string();
        batches
            .push(keyed.then_some(key.as_bytes()), 1_000 + i as i64, |buf| {
                buf.extend_from_slice(&value(i));
                Ok::<(), ()>(())
            })
            .unwrap();
    }

    fn seal(batches: Batches) -> (Vec<RecordBatch>, Option<Error>) {
        let idempotence = Idempotence::On {
            producer_id: 7,
            epoch: 0,
            sequences: Default::default(),
        };
        Batcher::new(idempotence, Compression::None)
            .seal(batches)
            .unwrap()
    }

    /// Every sealed batch decoded by the codec: its records are the pushed ones it names, in
    /// order, with their keys, values and timestamps (record `n` of the send was pushed by
    /// `push(…, pushed(n), …)`); returns what `pushed` gives for the records, in the order the
    /// batches hold them.
    fn check_pushed(
        sealed: &[RecordBatch],
        budget: usize,
        keyed: bool,
        partitions: usize,
        pushed: impl Fn(u32) -> usize,
        cut: usize,
    ) -> Vec<usize> {
        let mut seen = Vec::new();
        for b in sealed {
            assert!(b.encoded.len() <= budget, "{} > {budget}", b.encoded.len());
            let decoded = RecordBatchDecoder::decode(&mut b.encoded.clone()).unwrap();
            assert_eq!(decoded.records.len(), b.records.len());
            // The header's maxTimestamp (bytes 35..43) is the latest record's.
            let max = i64::from_be_bytes(b.encoded[35..43].try_into().unwrap());
            assert_eq!(Some(max), decoded.records.iter().map(|r| r.timestamp).max());
            for (r, &n) in decoded.records.iter().zip(&b.records) {
                let i = pushed(n);
                let value = value(i);
                assert_eq!(r.value.as_deref(), Some(&value[..cut.min(value.len())]));
                assert_eq!(r.timestamp, 1_000 + i as i64);
                if keyed {
                    assert_eq!(r.key.as_deref(), Some(i.to_string().as_bytes()));
                    assert_eq!(
                        partition_for_key(i.to_string().as_bytes(), partitions) as i32,
                        b.partition
                    );
                } else {
                    assert_eq!(r.key, None);
                }
            }
            seen.extend(b.records.iter().map(|&n| pushed(n)));
        }
        // In order within each partition.
        for p in 0..partitions as i32 {
            let mine: Vec<u32> = sealed
                .iter()
                .filter(|b| b.partition == p)
                .flat_map(|b| b.records.iter().copied())
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "partition {p}: {mine:?}"
            );
        }
        seen
    }

    fn check(sealed: &[RecordBatch], budget: usize, keyed: bool, partitions: usize) -> Vec<usize> {
        check_pushed(
            sealed,
            budget,
            keyed,
            partitions,
            |n| n as usize,
            usize::MAX,
        )
    }

    /// `check` for records pushed by `push_len(…, cut)`.
    fn check_cut(
        sealed: &[RecordBatch],
        budget: usize,
        partitions: usize,
        cut: usize,
    ) -> Vec<usize> {
        check_pushed(sealed, budget, true, partitions, |n| n as usize, cut)
    }

    #[test]
    fn records_go_to_their_partitions_in_order_and_each_batch_stays_within_the_budget() {
        let budget = 16 * 1024;
        for keyed in [true, false] {
            let mut batches = Batches::new("t", 3, budget, budget, 0, 0);
            for i in 0..500 {
                push(&mut batches, i, keyed);
            }
            assert_eq!(batches.len(), 500);
            let (sealed, refused) = seal(batches);
            assert!(refused.is_none());
            let mut seen = check(&sealed, budget, keyed, 3);
            seen.sort_unstable();
            assert_eq!(seen, (0..500).collect::<Vec<_>>());
            // Batches are cut only where the next record would not fit: ~16 KB, not fewer.
            assert!(
                sealed.len() <= 3 * (500 * 530 / budget + 2),
                "{}",
                sealed.len()
            );
        }
    }

    #[test]
    fn a_record_too_large_for_any_batch_ends_the_send() {
        let budget = 2048;
        let mut batches = Batches::new("t", 2, budget, 2100, 0, 0);
        for i in 0..5 {
            push(&mut batches, i, true);
        }
        batches
            .push(Some(b"big"), 0, |buf| {
                buf.extend_from_slice(&[b'x'; 4000]);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(batches.is_closed());
        push(&mut batches, 6, true);
        assert_eq!(
            batches.len(),
            6,
            "the refused record counts, the one after it is ignored"
        );
        let (sealed, refused) = seal(batches);
        let refused = refused.unwrap().to_string();
        assert!(refused.contains("key \"big\""), "{refused}");
        assert!(refused.contains("2100-byte request limit"), "{refused}");
        let mut seen = check(&sealed, budget, true, 2);
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_value_that_fails_is_not_pushed() {
        let mut batches = Batches::new("t", 1, 1 << 20, 1 << 20, 0, 0);
        push(&mut batches, 0, true);
        let failed = batches.push(Some(b"1"), 0, |buf| {
            buf.extend_from_slice(b"partial");
            Err("bad row")
        });
        assert_eq!(failed, Err("bad row"));
        push(&mut batches, 1, true);
        assert_eq!(batches.len(), 2);
        let (sealed, _) = seal(batches);
        assert_eq!(check(&sealed, 1 << 20, true, 1), [0, 1]);
    }

    /// Pushes record `i`, keyed `i`, with `value(i)` cut to at most `len` bytes (`check`
    /// then takes `len` as its value length).
    fn push_len(batches: &mut Batches, i: usize, len: usize) {
        let value = value(i);
        batches
            .push(Some(i.to_string().as_bytes()), 1_000 + i as i64, |buf| {
                buf.extend_from_slice(&value[..len.min(value.len())]);
                Ok::<(), ()>(())
            })
            .unwrap();
    }

    #[test]
    fn the_smallest_request_limit_works() {
        // max_request_size 1024 (the least the config takes): a budget of ~900 bytes.
        let budget = 1024 - 128 - 1;
        let mut batches = Batches::new("t", 2, budget, 1024, 0, 0);
        for i in 0..40 {
            push_len(&mut batches, i, 100);
        }
        let (sealed, refused) = seal(batches);
        assert!(refused.is_none());
        assert!(sealed.len() >= 6, "{} batches", sealed.len());
        let mut seen: Vec<usize> = sealed
            .iter()
            .flat_map(|b| {
                assert!(b.encoded.len() <= budget);
                b.records.iter().map(|&i| i as usize)
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn a_value_that_fails_in_a_new_batch_leaves_no_empty_batch_behind() {
        let budget = 2048;
        // Keys 0..: find one per partition of 3.
        let mut batches = Batches::new("t", 3, budget, budget, 0, 0);
        let failed = batches.push(Some(b"0"), 0, |buf| {
            buf.extend_from_slice(b"partial");
            Err("bad row")
        });
        assert_eq!(failed, Err("bad row"));
        assert_eq!(batches.bytes(), 0, "the batch opened for it went with it");
        // Others partitions' records, then one too large for its partition: refused alone,
        // without touching the other partitions' batches.
        let keys: Vec<usize> = (1..40)
            .filter(|i| {
                partition_for_key(i.to_string().as_bytes(), 3) != partition_for_key(b"0", 3)
            })
            .take(5)
            .collect();
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(batches.len(), n);
            push_len(&mut batches, k, 50);
        }
        batches
            .push(Some(b"0"), 0, |buf| {
                buf.resize(buf.len() + 4000, b'x');
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(batches.is_closed());
        let (sealed, refused) = seal(batches);
        assert!(refused.is_some());
        assert_eq!(sealed.iter().map(|b| b.records.len()).sum::<usize>(), 5);
    }

    #[test]
    fn a_record_too_large_behind_others_in_its_batch_is_refused_at_its_own_size() {
        let budget = 2048;
        let mut batches = Batches::new("t", 1, budget, 2100, 0, 0);
        for i in 0..5 {
            push_len(&mut batches, i, 100);
        }
        batches
            .push(Some(b"big"), 0, |buf| {
                buf.resize(buf.len() + 3000, b'x');
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(batches.is_closed());
        assert_eq!(batches.len(), 6);
        let (sealed, refused) = seal(batches);
        let Some(Error::RecordTooLarge { size, key, .. }) = refused else {
            panic!("refused: {refused:?}");
        };
        assert_eq!(key, "\"big\"");
        // Alone in a batch: the header, and ~3,010 bytes of record (not counting the five
        // records it came after).
        assert!(
            (3000 + BATCH_OVERHEAD..3030 + BATCH_OVERHEAD).contains(&size),
            "{size}"
        );
        assert_eq!(check_cut(&sealed, budget, 1, 100), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_truncation_before_a_refused_record_takes_the_refusal_back() {
        let mut batches = Batches::new("t", 1, 2048, 2048, 0, 0);
        for i in 0..3 {
            push_len(&mut batches, i, 100);
        }
        batches
            .push(Some(b"3"), 0, |buf| {
                buf.resize(buf.len() + 4000, b'x');
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(batches.is_closed());
        batches.truncate(3);
        assert!(!batches.is_closed());
        assert_eq!(batches.len(), 3);
        push_len(&mut batches, 3, 100);
        let (sealed, refused) = seal(batches);
        assert!(refused.is_none());
        assert_eq!(check_cut(&sealed, 2048, 1, 100), [0, 1, 2, 3]);
    }

    #[test]
    fn truncated_batches_hold_exactly_the_records_kept() {
        let budget = 8 * 1024;
        for n in [0, 1, 137, 299] {
            let mut batches = Batches::new("t", 3, budget, budget, 0, 0);
            for i in 0..300 {
                push(&mut batches, i, true);
            }
            batches.truncate(n);
            assert_eq!(batches.len(), n);
            // Records pushed after a truncation go after the ones kept.
            for i in 300..320 {
                push(&mut batches, i, true);
            }
            let (sealed, _) = seal(batches);
            // Record n of the send is the n-th pushed of those kept: 0..n, then 300...
            let pushed = |i: u32| {
                if (i as usize) < n {
                    i as usize
                } else {
                    i as usize - n + 300
                }
            };
            let mut seen = check_pushed(&sealed, budget, true, 3, pushed, usize::MAX);
            seen.sort_unstable();
            let expected: Vec<usize> = (0..n).chain(300..320).collect();
            assert_eq!(seen, expected, "truncated to {n}");
        }
    }
}
