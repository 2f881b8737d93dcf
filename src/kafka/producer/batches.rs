//! The batches of a send: written per partition within the request budget (`writer`), sealed
//! here under the idempotent producer's sequence numbers and the compression, re-stamped under a
//! new producer id and split when the broker finds one too large, always from their own
//! encoding (`records`). What their acknowledgements fill in is each record's `Delivery`; what
//! a send that failed leaves to send again is `Unsettled`, its batches as they were sent.

use std::collections::HashMap;

use bytes::Bytes;

use super::writer::{Batches, OpenBatch};
use crate::kafka::error::Error;
use crate::kafka::records::{self, wrap_sequence, Compression, Stamp};

/// Where an acknowledged record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    /// None when the broker acknowledged the batch as a duplicate of one it already had
    /// (DUPLICATE_SEQUENCE) without telling us its offset.
    pub offset: Option<i64>,
}

/// A group of records for one partition, sent as one Kafka record batch (RecordBatch v2).
#[derive(Debug)]
pub(super) struct RecordBatch {
    pub partition: i32,
    /// Which of the send's records it holds, in input order: the deliveries its acknowledgement
    /// fills in.
    pub records: Vec<u32>,
    pub stamp: Stamp,
    /// The batch as sent, so that a retry resends identical bytes (emptied once acknowledged).
    pub encoded: Bytes,
    pub done: bool,
}

impl RecordBatch {
    pub fn acknowledge(&mut self, base_offset: Option<i64>, delivered: &mut [Option<Delivery>]) {
        for (n, &i) in self.records.iter().enumerate() {
            delivered[i as usize] = Some(Delivery {
                partition: self.partition,
                offset: base_offset.and_then(|o| o.checked_add(n as i64)),
            });
        }
        self.done = true;
        self.encoded = Bytes::new();
    }
}

/// One send in progress: its batches (none until planned) and what each record's delivery is
/// so far.
pub(super) struct Outgoing {
    pub topic: String,
    pub batches: Vec<RecordBatch>,
    /// One entry per record of the send, in input order.
    pub delivered: Vec<Option<Delivery>>,
    /// The record that can never be sent, which the send's records end with: the send fails
    /// with this once the records before it are delivered.
    pub refused: Option<Error>,
}

impl Outgoing {
    pub fn new(topic: &str, records: usize) -> Outgoing {
        Outgoing {
            topic: topic.to_string(),
            batches: Vec::new(),
            delivered: vec![None; records],
            refused: None,
        }
    }

    pub fn unacknowledged(&self) -> bool {
        self.delivered.iter().any(Option::is_none)
    }

    /// Whether the batches not yet acknowledged hold every record not yet acknowledged, so
    /// that sending them again completes the send.
    pub fn pending_hold_every_unacknowledged(&self) -> bool {
        let pending: usize = self
            .batches
            .iter()
            .filter(|b| !b.done)
            .map(|b| b.records.len())
            .sum();
        pending > 0 && pending == self.delivered.iter().filter(|d| d.is_none()).count()
    }
}

/// The idempotent producer's state (KIP-98).
#[derive(Debug)]
pub(super) enum Idempotence {
    Off,
    /// We need a (new) producer id before the next send.
    NeedsId,
    On {
        producer_id: i64,
        epoch: i16,
        /// The next sequence number per (topic, partition).
        sequences: HashMap<(String, i32), i32>,
    },
}

impl Idempotence {
    pub fn is_on(&self) -> bool {
        matches!(self, Idempotence::On { .. })
    }

    /// (producer id, epoch) that new batches are stamped with; (-1, -1) when not idempotent.
    fn producer(&self) -> (i64, i16) {
        match self {
            Idempotence::On {
                producer_id, epoch, ..
            } => (*producer_id, *epoch),
            _ => Stamp::NONE.producer(),
        }
    }

    /// The stamps of the next `n` records of a partition, with how many records each covers:
    /// one, or two where the sequence wraps from i32::MAX to 0 (a batch may not straddle it).
    fn allocate(&mut self, topic: &str, partition: i32, n: usize) -> Vec<(Stamp, usize)> {
        let Idempotence::On {
            producer_id,
            epoch,
            sequences,
        } = self
        else {
            return vec![(Stamp::NONE, n)];
        };
        let next = sequences.entry((topic.to_string(), partition)).or_insert(0);
        let stamp = Stamp {
            producer_id: *producer_id,
            epoch: *epoch,
            base_sequence: *next,
        };
        *next = wrap_sequence(*next as i64 + n as i64);
        let room = (i32::MAX as i64 - stamp.base_sequence as i64 + 1) as usize;
        if n > room {
            vec![(stamp, room), (stamp.advanced(room), n - room)]
        } else {
            vec![(stamp, n)]
        }
    }
}

/// Plans, stamps, encodes and splits batches: everything about them that outlives one round.
pub(super) struct Batcher {
    pub idempotence: Idempotence,
    compression: Compression,
    /// Where unkeyed records go next: spread over the partitions in turn.
    round_robin: usize,
}

impl Batcher {
    pub fn new(idempotence: Idempotence, compression: Compression) -> Batcher {
        Batcher {
            idempotence,
            compression,
            round_robin: 0,
        }
    }

    /// The next send to `topic`, for `partitions` partitions, each batch within `budget`
    /// bytes; `expected` bytes of records size its buffers.
    pub fn batches(
        &self,
        topic: &str,
        partitions: usize,
        (budget, max_request_size): (usize, usize),
        expected: usize,
    ) -> Batches {
        Batches::new(
            topic,
            partitions,
            budget,
            max_request_size,
            self.round_robin,
            expected,
        )
    }

    /// Stamps and seals a send's batches, in order per partition. Returns them, and the record
    /// the send refused (the one its records end with), if any.
    pub fn seal(&mut self, batches: Batches) -> Result<(Vec<RecordBatch>, Option<Error>), Error> {
        self.round_robin = batches.round_robin;
        let Batches {
            topic,
            batches: mut open,
            refused,
            ..
        } = batches;
        // Stable: within a partition, the order they were written in.
        open.sort_by_key(|b| b.partition);
        let mut sealed = Vec::with_capacity(open.len());
        for OpenBatch {
            partition,
            section,
            records,
        } in open
        {
            let pieces = self.idempotence.allocate(&topic, partition, records.len());
            let stamp = pieces[0].0;
            sealed.push(RecordBatch {
                partition,
                records,
                stamp,
                encoded: section.seal(stamp, self.compression)?,
                done: false,
            });
            // The sequence wraps inside the batch: two batches, the second from 0.
            if let [(_, first), _] = pieces[..] {
                let last = sealed.len() - 1;
                self.split_at(&mut sealed, last, first)?;
            }
        }
        Ok((sealed, refused))
    }

    /// `records` planned into sealed batches, as a send of them would be.
    #[cfg(test)]
    pub fn plan(
        &mut self,
        topic: &str,
        records: &[records::Record],
        partitions: usize,
        budget: usize,
    ) -> Result<Vec<RecordBatch>, Error> {
        let expected = records.iter().map(|r| r.size_alone() + 8).sum();
        let mut batches = self.batches(topic, partitions, (budget, budget), expected);
        for r in records {
            let value = |buf: &mut Vec<u8>| {
                buf.extend_from_slice(&r.value);
                Ok::<(), std::convert::Infallible>(())
            };
            let Ok(()) =
                batches.push_with_headers(r.key.as_deref(), r.timestamp_ms, &r.headers, value);
        }
        let (sealed, refused) = self.seal(batches)?;
        refused.map_or(Ok(sealed), Err)
    }

    /// Stamps every pending batch that was not stamped under the current producer id (a new
    /// one, or none after falling back) anew, in order per partition.
    pub fn restamp(&mut self, topic: &str, batches: &mut Vec<RecordBatch>) -> Result<(), Error> {
        let current = self.idempotence.producer();
        let mut i = 0;
        while i < batches.len() {
            if batches[i].done || batches[i].stamp.producer() == current {
                i += 1;
                continue;
            }
            let pieces =
                self.idempotence
                    .allocate(topic, batches[i].partition, batches[i].records.len());
            if let [(_, first), _] = pieces[..] {
                self.split_at(batches, i, first)?;
            }
            for (n, (stamp, _)) in pieces.into_iter().enumerate() {
                let b = &mut batches[i + n];
                b.encoded = records::restamp(&b.encoded, stamp);
                b.stamp = stamp;
            }
            i += 1;
        }
        Ok(())
    }

    /// Halves batch `i` (the broker found it too large); the halves take its place, so order
    /// is kept.
    pub fn halve(&self, batches: &mut Vec<RecordBatch>, i: usize) -> Result<(), Error> {
        let half = batches[i].records.len() / 2;
        self.split_at(batches, i, half)
    }

    /// Batch `i` as two: its first `at` records, and the rest right after it.
    fn split_at(&self, batches: &mut Vec<RecordBatch>, i: usize, at: usize) -> Result<(), Error> {
        let b = &mut batches[i];
        let (first, second) = records::split(&b.encoded, at)?;
        let tail = b.records.split_off(at);
        b.encoded = first;
        let second = RecordBatch {
            partition: b.partition,
            records: tail,
            stamp: b.stamp.advanced(at),
            encoded: second,
            done: false,
        };
        batches.insert(i + 1, second);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::partitioner::partition_for_key;
    use crate::kafka::records::{test_record as record, Record};
    use kafka_protocol::records::RecordBatchDecoder;

    fn batcher(idempotence: Idempotence) -> Batcher {
        Batcher::new(idempotence, Compression::None)
    }

    fn idempotent(next: &[(i32, i32)]) -> Idempotence {
        Idempotence::On {
            producer_id: 7,
            epoch: 0,
            sequences: next
                .iter()
                .map(|&(p, s)| (("t".to_string(), p), s))
                .collect(),
        }
    }

    /// (partition, base sequence, records, producer id) per batch, read from its encoding.
    fn encoded(batches: &[RecordBatch]) -> Vec<(i32, i32, usize, i64)> {
        batches
            .iter()
            .map(|b| {
                let infos = RecordBatchDecoder::decode_batch_info(&mut b.encoded.clone()).unwrap();
                assert_eq!(infos.len(), 1, "one record batch per batch");
                assert_eq!(infos[0].record_count as usize, b.records.len());
                (
                    b.partition,
                    infos[0].base_sequence,
                    b.records.len(),
                    infos[0].producer_id,
                )
            })
            .collect()
    }

    #[test]
    fn plan_keeps_input_order_per_partition_and_respects_the_budget() {
        let records: Vec<Record> = (0..300)
            .map(|i| record(Some(&i.to_string()), 100))
            .collect();
        let budget = 10_000;
        let batches = batcher(Idempotence::Off)
            .plan("t", &records, 3, budget)
            .unwrap();
        for b in &batches {
            let size = b.encoded.len();
            assert!(size <= budget, "batch of {size} bytes over budget {budget}");
            // Full, unless it is its partition's last: the next record (~110 bytes) did not fit.
            let last = batches
                .iter()
                .rfind(|o| o.partition == b.partition)
                .unwrap();
            assert!(
                size + 120 > budget || std::ptr::eq(b, last),
                "batch of {size} bytes closed early"
            );
            assert!(b.records.windows(2).all(|w| w[0] < w[1]));
            for &i in &b.records {
                assert_eq!(
                    partition_for_key(i.to_string().as_bytes(), 3) as i32,
                    b.partition
                );
            }
        }
        assert_eq!(batches.iter().map(|b| b.records.len()).sum::<usize>(), 300);
    }

    #[test]
    fn unkeyed_records_are_spread_evenly() {
        let records: Vec<Record> = (0..400).map(|_| record(None, 10)).collect();
        let batches = batcher(Idempotence::Off)
            .plan("t", &records, 4, 1 << 20)
            .unwrap();
        let mut counts = [0; 4];
        for b in &batches {
            counts[b.partition as usize] += b.records.len();
        }
        assert_eq!(counts, [100; 4]);
    }

    #[test]
    fn sequences_are_consecutive_per_partition_and_wrap_at_i32_max() {
        let records: Vec<Record> = (0..4).map(|_| record(None, 10)).collect();
        let mut b = batcher(idempotent(&[(0, i32::MAX - 1)]));
        let batches = b.plan("t", &records, 1, 1 << 20).unwrap();
        assert_eq!(
            encoded(&batches),
            vec![(0, i32::MAX - 1, 2, 7), (0, 0, 2, 7)]
        );
        assert_eq!(batches[1].records, [2, 3]);
        // The next send goes on from there; another partition starts at 0.
        let more = b.plan("t", &records[..2], 2, 1 << 20).unwrap();
        assert_eq!(encoded(&more), vec![(0, 2, 1, 7), (1, 0, 1, 7)]);
    }

    #[test]
    fn a_new_producer_id_restamps_pending_batches_and_splits_at_the_wrap() {
        let records: Vec<Record> = (0..4).map(|_| record(None, 10)).collect();
        let mut b = batcher(Idempotence::Off);
        let mut batches = b.plan("t", &records, 1, 1 << 20).unwrap();
        assert_eq!(encoded(&batches), vec![(0, -1, 4, -1)]);
        b.idempotence = idempotent(&[(0, i32::MAX - 1)]);
        b.restamp("t", &mut batches).unwrap();
        assert_eq!(
            encoded(&batches),
            vec![(0, i32::MAX - 1, 2, 7), (0, 0, 2, 7)]
        );
        assert_eq!(batches[0].records, [0, 1]);
        assert_eq!(batches[1].records, [2, 3]);
        // Back to no idempotence: every pending batch loses its sequence.
        b.idempotence = Idempotence::Off;
        batches[0].done = true;
        b.restamp("t", &mut batches).unwrap();
        assert_eq!(encoded(&batches[1..]), vec![(0, -1, 2, -1)]);
    }

    #[test]
    fn halving_keeps_order_and_sequences() {
        let records: Vec<Record> = (0..5).map(|_| record(None, 10)).collect();
        let mut b = batcher(idempotent(&[(0, 10)]));
        let mut batches = b.plan("t", &records, 1, 1 << 20).unwrap();
        b.halve(&mut batches, 0).unwrap();
        assert_eq!(encoded(&batches), vec![(0, 10, 2, 7), (0, 12, 3, 7)]);
        assert_eq!(batches[1].records, [2, 3, 4]);
    }
}
