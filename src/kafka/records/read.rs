//! Reading our own framing back: the records of a batch we wrote, each as its timestamp and
//! its fields as they were written. Only the framing is parsed, never a record's contents:
//! `Section` takes a record back out and finds a value with it, `split` writes the records
//! again.

use crate::kafka::error::Error;
use crate::kafka::wire::get_varint;

use super::layout::local;

/// A record read back from a batch we wrote: its timestamp, and its fields after the offset
/// delta as they were written.
pub(super) struct Written<'a> {
    pub timestamp: i64,
    pub fields: &'a [u8],
}

/// The records of an uncompressed records section, to its end.
pub(super) fn read_records(records: &[u8], base_timestamp: i64) -> Result<Vec<Written<'_>>, Error> {
    let mut rest = records;
    let mut written = Vec::new();
    while !rest.is_empty() {
        let (timestamp_delta, fields) =
            next_record(&mut rest).ok_or_else(|| local("cannot read back our own record batch"))?;
        written.push(Written {
            timestamp: base_timestamp.wrapping_add(timestamp_delta),
            fields,
        });
    }
    Ok(written)
}

/// Reads the record at the front of `rest`, advancing it past the record: its timestamp delta,
/// and its fields after the offset delta (key, value, headers). None when it is cut short.
pub(super) fn next_record<'a>(rest: &mut &'a [u8]) -> Option<(i64, &'a [u8])> {
    let len = usize::try_from(get_varint(rest)?).ok()?;
    let record = rest.get(..len)?;
    *rest = &rest[len..];
    let (_attributes, mut fields) = record.split_first()?;
    let timestamp_delta = get_varint(&mut fields)?;
    let _offset_delta = get_varint(&mut fields)?;
    Some((timestamp_delta, fields))
}
