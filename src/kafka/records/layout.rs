//! The layout of a record batch (RecordBatch v2) and of its records: where the header's fields
//! are, what a record's framing takes, and the error of a batch of ours that breaks it. Every
//! other room of `records` writes or reads by these numbers.
//!
//! Layout (<https://kafka.apache.org/documentation/#recordbatch>): baseOffset i64, batchLength
//! i32, partitionLeaderEpoch i32, magic i8 = 2, crc u32 (CRC-32C of everything after it),
//! attributes i16, lastOffsetDelta i32, baseTimestamp i64, maxTimestamp i64, producerId i64,
//! producerEpoch i16, baseSequence i32, record count i32, then per record: length varint,
//! attributes i8, timestampDelta varlong, offsetDelta varint, key, value (length varint, -1 for
//! null), header count varint and headers. The base timestamp is the first record's, as the
//! Java producer writes it; later records' deltas may be negative.

use bytes::Bytes;

use crate::kafka::error::Error;
use crate::kafka::wire::{bytes_len, varint_len};

/// The size of a batch's header, everything before its first record.
pub(in crate::kafka) const BATCH_OVERHEAD: usize = 61;

// Offsets of the header's fields.
pub(super) const LENGTH: usize = 8;
pub(super) const CRC: usize = 17;
/// Where the CRC-covered part starts.
pub(super) const ATTRIBUTES: usize = 21;
pub(super) const BASE_TIMESTAMP: usize = 27;
pub(super) const PRODUCER_ID: usize = 43;
pub(super) const RECORD_COUNT: usize = 57;
/// The low three bits of `attributes` name the compression codec.
pub(super) const COMPRESSION_MASK: i16 = 0x7;

/// A record's bytes after its length: attributes, the deltas, the key, the value (with its
/// length) and `headers` bytes of headers.
pub(super) fn record_body_len(
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<&[u8]>,
    value: usize,
    headers: usize,
) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(offset_delta)
        + bytes_len(key)
        + varint_len(value as i64)
        + value
        + headers
}

/// The bytes of a header count and headers.
pub(super) fn headers_len(headers: &[(String, Bytes)]) -> usize {
    varint_len(headers.len() as i64)
        + headers
            .iter()
            .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(Some(v)))
            .sum::<usize>()
}

pub(super) fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[..8].try_into().expect("eight bytes"))
}

pub(super) fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[..4].try_into().expect("four bytes"))
}

/// A failure in our own encoding, which no broker has seen.
pub(super) fn local(detail: impl Into<String>) -> Error {
    Error::Protocol {
        broker: "(local)".into(),
        detail: detail.into(),
    }
}
