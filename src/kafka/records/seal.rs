//! Who wrote a batch (`Stamp`), and sealing: a batch's records compressed, its length and its
//! CRC filled in; and re-stamping a sealed batch, which patches the header and the CRC only.

use bytes::{BufMut, Bytes, BytesMut};

use crate::kafka::error::Error;

use super::compression::Compression;
use super::layout::{
    local, ATTRIBUTES, BATCH_OVERHEAD, COMPRESSION_MASK, CRC, LENGTH, PRODUCER_ID,
};

/// Who wrote a batch, for the broker's deduplication (KIP-98): the producer id and epoch, and
/// the sequence number of the batch's first record. `Stamp::NONE` without idempotence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::kafka) struct Stamp {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl Stamp {
    pub const NONE: Stamp = Stamp {
        producer_id: -1,
        epoch: -1,
        base_sequence: -1,
    };

    /// The stamp of a batch starting `n` records later: sequences wrap from i32::MAX to 0; no
    /// sequence stays none.
    pub fn advanced(self, n: usize) -> Stamp {
        Stamp {
            base_sequence: if self.base_sequence < 0 {
                -1
            } else {
                wrap_sequence(self.base_sequence as i64 + n as i64)
            },
            ..self
        }
    }

    pub fn producer(&self) -> (i64, i16) {
        (self.producer_id, self.epoch)
    }
}

/// A sequence number after `n` others: Kafka's sequences wrap from i32::MAX to 0.
pub(in crate::kafka) fn wrap_sequence(n: i64) -> i32 {
    (n % (i32::MAX as i64 + 1)) as i32
}

/// `batch` under another stamp: the header patched, the records untouched (compressed or not).
pub(in crate::kafka) fn restamp(batch: &[u8], stamp: Stamp) -> Bytes {
    let mut out = batch.to_vec();
    out[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&stamp.producer_id.to_be_bytes());
    out[PRODUCER_ID + 8..PRODUCER_ID + 10].copy_from_slice(&stamp.epoch.to_be_bytes());
    out[PRODUCER_ID + 10..PRODUCER_ID + 14].copy_from_slice(&stamp.base_sequence.to_be_bytes());
    seal(&mut out);
    Bytes::from(out)
}

/// `plain` (a batch with its header filled in) with its records compressed, its length and
/// CRC filled in.
pub(super) fn compress(mut plain: Vec<u8>, compression: Compression) -> Result<Bytes, Error> {
    if compression == Compression::None {
        seal(&mut plain);
        return Ok(Bytes::from(plain));
    }
    let mut out = BytesMut::with_capacity(plain.len() / 2 + BATCH_OVERHEAD);
    out.put_slice(&plain[..BATCH_OVERHEAD]);
    let attributes = i16::from_be_bytes([out[ATTRIBUTES], out[ATTRIBUTES + 1]]);
    let attributes = (attributes & !COMPRESSION_MASK) | compression.attribute();
    out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    compression
        .compress(&plain[BATCH_OVERHEAD..], &mut out)
        .map_err(|e| local(format!("cannot compress a record batch: {e}")))?;
    seal(&mut out);
    Ok(out.freeze())
}

/// Fills in `batchLength` and the CRC.
fn seal(buf: &mut [u8]) {
    let length = (buf.len() - LENGTH - 4) as i32;
    buf[LENGTH..LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
    buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}
