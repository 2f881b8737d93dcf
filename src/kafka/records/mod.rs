//! Our records, and the record batches (RecordBatch v2) made of them: written in place,
//! re-stamped, split and compressed here, never through the codec's record types.
//!
//! The codec's `RecordBatchEncoder` wants its own `Record` type: building one per record (two
//! reference-counted clones and a header map) cost as much as writing the batch itself. A
//! `Section` is a batch being written: room for its header, then each record framed as it is
//! appended, its value written straight into the batch by the caller (the replicator encodes
//! each message there: no copy of it before the socket). Unit tests compare the bytes with the
//! codec's, compressed or not. Everything a retry needs is then made from a batch already
//! sealed, so the caller's data can go once a batch is written:
//! - a new producer id or sequence (`restamp`) patches the header and its CRC;
//! - a batch the broker found too large (`split`) is read back record by record (we wrote it,
//!   so only its framing is parsed: each record's fields are copied as they are) and written
//!   again as two;
//! - compression is of the records section only, which is all a v2 batch compresses; the
//!   compressors are the codec's.
//!
//! Its rooms, each using only the ones listed before it:
//! - `layout` — a batch's layout, field by field: where the header's fields are, what a
//!   record's framing takes;
//! - `compression` — `Compression`, over the codec's compressors;
//! - `read` — our own framing read back, record by record;
//! - `seal` — `Stamp`, sealing (compression, length, CRC) and re-stamping;
//! - `section` — `Section`, a batch written in place;
//! - `split` — a batch written again as two.
//!
//! `Record`, what the caller gives, is here.

mod compression;
mod layout;
mod read;
mod seal;
mod section;
mod split;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::wire::varint_len;
use layout::{headers_len, record_body_len};

pub use compression::Compression;
pub(super) use layout::BATCH_OVERHEAD;
pub(super) use seal::{restamp, wrap_sequence, Stamp};
pub(super) use section::Section;
pub(super) use split::split;

/// One record to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the Unix epoch (CreateTime).
    pub timestamp_ms: i64,
}

impl Record {
    /// The record's size as the only record of a batch (the smallest it can be in one).
    pub(super) fn size_alone(&self) -> usize {
        let body = record_body_len(
            0,
            0,
            self.key.as_deref(),
            self.value.len(),
            headers_len(&self.headers),
        );
        varint_len(body as i64) + body
    }
}

/// A record's key as an operator would recognise it in an error.
pub(super) fn describe_key(key: Option<&[u8]>) -> String {
    match key {
        Some(k) => format!("{:?}", String::from_utf8_lossy(&k[..k.len().min(64)])),
        None => "(none)".into(),
    }
}

/// A record of `size` value bytes, for tests.
#[cfg(test)]
pub(super) fn test_record(key: Option<&str>, size: usize) -> Record {
    Record {
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: Bytes::from(vec![b'x'; size]),
        headers: vec![],
        timestamp_ms: 0,
    }
}
