//! A batch the broker found too large, written again as two: read back record by record (we
//! wrote it, so only its framing is parsed) and each half sealed as the whole was.

use bytes::Bytes;

use crate::kafka::error::Error;

use super::compression::Compression;
use super::layout::{
    be_i32, be_i64, local, ATTRIBUTES, BASE_TIMESTAMP, BATCH_OVERHEAD, PRODUCER_ID, RECORD_COUNT,
};
use super::read::{read_records, Written};
use super::seal::Stamp;
use super::section::Section;

/// `batch` (written by `Section`) as two: its first `at` records, and the rest under the stamp
/// that follows, compressed as it was. Order and every record's fields are kept; offsets and
/// timestamps are re-based.
pub(in crate::kafka) fn split(batch: &Bytes, at: usize) -> Result<(Bytes, Bytes), Error> {
    if batch.len() < BATCH_OVERHEAD {
        return Err(local("a batch to split is shorter than its header"));
    }
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES], batch[ATTRIBUTES + 1]]);
    let compression = Compression::from_attributes(attributes)
        .ok_or_else(|| local(format!("a batch to split has attributes {attributes:#x}")))?;
    let stamp = Stamp {
        producer_id: be_i64(&batch[PRODUCER_ID..]),
        epoch: i16::from_be_bytes([batch[PRODUCER_ID + 8], batch[PRODUCER_ID + 9]]),
        base_sequence: be_i32(&batch[PRODUCER_ID + 10..]),
    };
    let records = compression
        .decompress(batch.slice(BATCH_OVERHEAD..))
        .map_err(|e| local(format!("cannot decompress our own record batch: {e}")))?;
    let written = read_records(&records, be_i64(&batch[BASE_TIMESTAMP..]))?;
    if written.len() != be_i32(&batch[RECORD_COUNT..]) as usize {
        return Err(local(
            "a batch to split does not hold the records its header counts",
        ));
    }
    if at == 0 || at >= written.len() {
        return Err(local("a batch to split has fewer than two records"));
    }
    let (first, second) = written.split_at(at);
    let half = |records: &[Written], stamp| {
        let size = records.iter().map(|r| r.fields.len() + 32).sum::<usize>();
        let mut section = Section::with_capacity(BATCH_OVERHEAD + size);
        for r in records {
            section.append_fields(r.timestamp, r.fields);
        }
        section.seal(stamp, compression)
    };
    Ok((half(first, stamp)?, half(second, stamp.advanced(at))?))
}
