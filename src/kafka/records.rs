//! Our records, and the record batches (RecordBatch v2) made of them: written, re-stamped,
//! split and compressed here, never through the codec's record types.
//!
//! The codec's `RecordBatchEncoder` wants its own `Record` type: building one per record (two
//! reference-counted clones and a header map) cost as much as writing the batch itself. This
//! module writes the same bytes (unit tests compare them with the codec's, compressed or not)
//! straight from our `Record`s. Everything a retry needs is then made from a batch already
//! written, so the caller's records can go once a batch is encoded:
//! - a new producer id or sequence (`restamp`) patches the header and its CRC;
//! - a batch the broker found too large (`split`) is read back record by record (we wrote it,
//!   so only its framing is parsed: each record's fields are copied as they are) and written
//!   again as two;
//! - compression is of the records section only, which is all a v2 batch compresses; the
//!   compressors are the codec's.
//!
//! Layout (<https://kafka.apache.org/documentation/#recordbatch>): baseOffset i64, batchLength
//! i32, partitionLeaderEpoch i32, magic i8 = 2, crc u32 (CRC-32C of everything after it),
//! attributes i16, lastOffsetDelta i32, baseTimestamp i64, maxTimestamp i64, producerId i64,
//! producerEpoch i16, baseSequence i32, record count i32, then per record: length varint,
//! attributes i8, timestampDelta varlong, offsetDelta varint, key, value (length varint, -1 for
//! null), header count varint and headers.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};

use super::error::Error;
use super::wire::{bytes_len, get_varint, put_bytes, put_varint, varint_len};

/// The size of a batch's header, everything before its first record.
pub(super) const BATCH_OVERHEAD: usize = 61;
/// Worst case for a record's varint framing (length, attributes, deltas, key/value lengths,
/// header count).
const RECORD_OVERHEAD: usize = 40;

// Offsets of the header's fields.
const LENGTH: usize = 8;
const CRC: usize = 17;
/// Where the CRC-covered part starts.
const ATTRIBUTES: usize = 21;
const BASE_TIMESTAMP: usize = 27;
const PRODUCER_ID: usize = 43;
const RECORD_COUNT: usize = 57;
/// The low three bits of `attributes` name the compression codec.
const COMPRESSION_MASK: i16 = 0x7;

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
    /// An upper bound of the record's size in a batch: the batching budget, and buffer sizes.
    pub fn size_bound(&self) -> usize {
        RECORD_OVERHEAD
            + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 10)
                .sum::<usize>()
    }

    /// The key as an operator would recognise it in an error.
    pub(super) fn describe_key(&self) -> String {
        match &self.key {
            Some(k) => format!("{:?}", String::from_utf8_lossy(&k[..k.len().min(64)])),
            None => "(none)".into(),
        }
    }
}

/// Evaluates `$body` with `$codec` naming the codec's compressor type for `$compression`.
macro_rules! with_codec {
    ($compression:expr, $codec:ident => $body:expr) => {
        match $compression {
            Compression::None => {
                type $codec = codec::None;
                $body
            }
            Compression::Gzip => {
                type $codec = codec::Gzip;
                $body
            }
            Compression::Snappy => {
                type $codec = codec::Snappy;
                $body
            }
            #[cfg(feature = "lz4")]
            Compression::Lz4 => {
                type $codec = codec::Lz4;
                $body
            }
            #[cfg(feature = "zstd")]
            Compression::Zstd => {
                type $codec = codec::Zstd;
                $body
            }
        }
    };
}

/// Record batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    #[cfg(feature = "lz4")]
    Lz4,
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Compression {
    /// The compression a batch's `attributes` name, if we know it.
    fn from_attributes(attributes: i16) -> Option<Compression> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            #[cfg(feature = "lz4")]
            Compression::Lz4,
            #[cfg(feature = "zstd")]
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.attribute() == attributes & COMPRESSION_MASK)
    }

    /// The codec's number in a batch's `attributes`.
    fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            #[cfg(feature = "lz4")]
            Compression::Lz4 => 3,
            #[cfg(feature = "zstd")]
            Compression::Zstd => 4,
        }
    }

    /// Appends `records` compressed to `out`.
    fn compress(self, records: &[u8], out: &mut BytesMut) -> Result<(), String> {
        with_codec!(self, C => <C as Compressor<BytesMut>>::compress(out, |tmp: &mut BytesMut| {
            tmp.put_slice(records);
            Ok(())
        }))
        .map_err(|e| e.to_string())
    }

    fn decompress(self, mut records: Bytes) -> Result<Bytes, String> {
        with_codec!(self, C => <C as Decompressor<Bytes>>::decompress(
            &mut records,
            |plain: &mut Bytes| Ok(std::mem::take(plain)),
        ))
        .map_err(|e| e.to_string())
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

/// Who wrote a batch, for the broker's deduplication (KIP-98): the producer id and epoch, and
/// the sequence number of the batch's first record. `Stamp::NONE` without idempotence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
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
pub(super) fn wrap_sequence(n: i64) -> i32 {
    (n % (i32::MAX as i64 + 1)) as i32
}

/// The records `indices` of `records` as one batch: offsets from 0, under `stamp`, compressed
/// with `compression`.
pub(super) fn write(
    records: &[Record],
    indices: &[u32],
    stamp: Stamp,
    compression: Compression,
) -> Result<Bytes, Error> {
    let chosen: Vec<&Record> = indices
        .iter()
        .map(|&i| records.get(i as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| local("a batch names a record the send does not have"))?;
    let plain = write_plain(&chosen, stamp)?;
    compress(plain, compression)
}

/// `batch` under another stamp: the header patched, the records untouched (compressed or not).
pub(super) fn restamp(batch: &[u8], stamp: Stamp) -> Bytes {
    let mut out = BytesMut::from(batch);
    out[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&stamp.producer_id.to_be_bytes());
    out[PRODUCER_ID + 8..PRODUCER_ID + 10].copy_from_slice(&stamp.epoch.to_be_bytes());
    out[PRODUCER_ID + 10..PRODUCER_ID + 14].copy_from_slice(&stamp.base_sequence.to_be_bytes());
    seal(out)
}

/// `batch` (written by `write`) as two: its first `at` records, and the rest under the stamp
/// that follows, compressed as it was. Order and every record's fields are kept; offsets and
/// timestamps are re-based.
pub(super) fn split(batch: &Bytes, at: usize) -> Result<(Bytes, Bytes), Error> {
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
    let written = read_records(
        &records,
        be_i64(&batch[BASE_TIMESTAMP..]),
        be_i32(&batch[RECORD_COUNT..]),
    )?;
    if at == 0 || at >= written.len() {
        return Err(local("a batch to split has fewer than two records"));
    }
    let (first, second) = written.split_at(at);
    let first = compress(write_plain(first, stamp)?, compression)?;
    let second = compress(write_plain(second, stamp.advanced(at))?, compression)?;
    Ok((first, second))
}

/// What the writer needs of a record: its timestamp, and its fields after the offset delta
/// (key, value, headers).
trait Entry {
    fn timestamp(&self) -> i64;
    /// At least the record's size in the batch, cheaply: for sizing the buffer.
    fn size_bound(&self) -> usize;
    fn fields_len(&self) -> usize;
    fn put_fields(&self, buf: &mut BytesMut);
}

impl Entry for &Record {
    fn timestamp(&self) -> i64 {
        self.timestamp_ms
    }

    fn size_bound(&self) -> usize {
        Record::size_bound(self)
    }

    fn fields_len(&self) -> usize {
        bytes_len(self.key.as_deref())
            + bytes_len(Some(&self.value))
            + varint_len(self.headers.len() as i64)
            + self
                .headers
                .iter()
                .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(Some(v)))
                .sum::<usize>()
    }

    fn put_fields(&self, buf: &mut BytesMut) {
        put_bytes(buf, self.key.as_deref());
        put_bytes(buf, Some(&self.value));
        put_varint(buf, self.headers.len() as i64);
        for (k, v) in &self.headers {
            put_bytes(buf, Some(k.as_bytes()));
            put_bytes(buf, Some(v));
        }
    }
}

/// A record read back from a batch we wrote: its timestamp, and its fields as they were written.
struct Written<'a> {
    timestamp: i64,
    fields: &'a [u8],
}

impl Entry for Written<'_> {
    fn timestamp(&self) -> i64 {
        self.timestamp
    }

    fn size_bound(&self) -> usize {
        RECORD_OVERHEAD + self.fields.len()
    }

    fn fields_len(&self) -> usize {
        self.fields.len()
    }

    fn put_fields(&self, buf: &mut BytesMut) {
        buf.put_slice(self.fields);
    }
}

/// One uncompressed batch of `entries` (in order, offsets from 0) under `stamp`, its length
/// and CRC not yet filled in (`seal` does that).
fn write_plain<E: Entry>(entries: &[E], stamp: Stamp) -> Result<BytesMut, Error> {
    let (base_timestamp, max_timestamp) =
        entries.iter().fold((i64::MAX, i64::MIN), |(min, max), e| {
            (min.min(e.timestamp()), max.max(e.timestamp()))
        });
    let count = i32::try_from(entries.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| local(format!("cannot write a batch of {} records", entries.len())))?;
    let body: usize = entries.iter().map(E::size_bound).sum();
    let mut buf = BytesMut::with_capacity(BATCH_OVERHEAD + body);
    buf.put_i64(0); // baseOffset
    buf.put_i32(0); // batchLength, by `seal`
    buf.put_i32(-1); // partitionLeaderEpoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // crc, by `seal`
    buf.put_i16(0); // attributes: no compression, CreateTime, not transactional
    buf.put_i32(count - 1); // lastOffsetDelta
    buf.put_i64(base_timestamp);
    buf.put_i64(max_timestamp);
    buf.put_i64(stamp.producer_id);
    buf.put_i16(stamp.epoch);
    buf.put_i32(stamp.base_sequence);
    buf.put_i32(count);
    for (offset_delta, e) in entries.iter().enumerate() {
        let timestamp_delta = e.timestamp() - base_timestamp;
        let offset_delta = offset_delta as i64;
        let len = 1 + varint_len(timestamp_delta) + varint_len(offset_delta) + e.fields_len();
        put_varint(&mut buf, len as i64);
        buf.put_i8(0); // attributes
        put_varint(&mut buf, timestamp_delta);
        put_varint(&mut buf, offset_delta);
        e.put_fields(&mut buf);
    }
    Ok(buf)
}

/// `plain` (from `write_plain`) with its records compressed, its length and CRC filled in.
fn compress(plain: BytesMut, compression: Compression) -> Result<Bytes, Error> {
    if compression == Compression::None {
        return Ok(seal(plain));
    }
    let mut out = BytesMut::with_capacity(plain.len() / 2 + BATCH_OVERHEAD);
    out.put_slice(&plain[..BATCH_OVERHEAD]);
    let attributes = i16::from_be_bytes([out[ATTRIBUTES], out[ATTRIBUTES + 1]]);
    let attributes = (attributes & !COMPRESSION_MASK) | compression.attribute();
    out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    compression
        .compress(&plain[BATCH_OVERHEAD..], &mut out)
        .map_err(|e| local(format!("cannot compress a record batch: {e}")))?;
    Ok(seal(out))
}

/// Fills in `batchLength` and the CRC.
fn seal(mut buf: BytesMut) -> Bytes {
    let length = (buf.len() - LENGTH - 4) as i32;
    buf[LENGTH..LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
    buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    buf.freeze()
}

/// The `count` records of an uncompressed records section.
fn read_records(
    records: &[u8],
    base_timestamp: i64,
    count: i32,
) -> Result<Vec<Written<'_>>, Error> {
    let bad = || local("cannot read back our own record batch");
    let mut rest = records;
    let mut written = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count {
        let len = usize::try_from(get_varint(&mut rest).ok_or_else(bad)?).map_err(|_| bad())?;
        let mut record = rest.get(..len).ok_or_else(bad)?;
        rest = &rest[len..];
        let (_attributes, after) = record.split_first().ok_or_else(bad)?;
        record = after;
        let timestamp_delta = get_varint(&mut record).ok_or_else(bad)?;
        let _offset_delta = get_varint(&mut record).ok_or_else(bad)?;
        written.push(Written {
            timestamp: base_timestamp + timestamp_delta,
            fields: record,
        });
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(written)
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[..8].try_into().expect("eight bytes"))
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[..4].try_into().expect("four bytes"))
}

/// A failure in our own encoding, which no broker has seen.
fn local(detail: impl Into<String>) -> Error {
    Error::Protocol {
        broker: "(local)".into(),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as Codec, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType,
    };

    /// What the codec writes for `records` under `stamp`.
    fn codec_bytes(records: &[Record], stamp: Stamp, compression: Codec) -> Bytes {
        let krecords: Vec<KRecord> = records
            .iter()
            .enumerate()
            .map(|(n, r)| KRecord {
                transactional: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id: stamp.producer_id,
                producer_epoch: stamp.epoch,
                timestamp_type: TimestampType::Creation,
                offset: n as i64,
                sequence: stamp.base_sequence.wrapping_add(n as i32),
                timestamp: r.timestamp_ms,
                key: r.key.clone(),
                value: Some(r.value.clone()),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), Some(v.clone())))
                    .collect::<IndexMap<_, _>>(),
                delete_horizon: false,
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, krecords.iter(), &options).unwrap();
        buf.freeze()
    }

    fn sample() -> Vec<Record> {
        let big = Bytes::from(vec![b'x'; 300]);
        (0..200)
            .map(|i| Record {
                key: (i % 7 != 0).then(|| Bytes::from(i.to_string())),
                value: if i % 5 == 0 {
                    big.clone()
                } else {
                    Bytes::from(format!("value {i}"))
                },
                headers: if i % 3 == 0 {
                    vec![
                        ("h".to_string(), Bytes::from_static(b"v")),
                        ("empty".into(), Bytes::new()),
                    ]
                } else {
                    Vec::new()
                },
                // Not in order: the base is the smallest, and deltas may be of either sign
                // relative to the first record.
                timestamp_ms: 1_700_000_000_000 + (i * 37 % 1000),
            })
            .collect()
    }

    fn stamp(producer_id: i64, epoch: i16, base_sequence: i32) -> Stamp {
        Stamp {
            producer_id,
            epoch,
            base_sequence,
        }
    }

    const STAMPS: [Stamp; 3] = [
        Stamp::NONE,
        Stamp {
            producer_id: 7,
            epoch: 0,
            base_sequence: 0,
        },
        Stamp {
            producer_id: 12345,
            epoch: 3,
            base_sequence: i32::MAX - 50,
        },
    ];

    fn compressions() -> Vec<(Compression, Codec)> {
        vec![
            (Compression::None, Codec::None),
            (Compression::Gzip, Codec::Gzip),
            (Compression::Snappy, Codec::Snappy),
            #[cfg(feature = "lz4")]
            (Compression::Lz4, Codec::Lz4),
            #[cfg(feature = "zstd")]
            (Compression::Zstd, Codec::Zstd),
        ]
    }

    #[test]
    fn same_bytes_as_the_codec_compressed_or_not() {
        let records = sample();
        let all: Vec<u32> = (0..records.len() as u32).collect();
        for (ours, theirs) in compressions() {
            for s in STAMPS {
                for take in [1, 2, 199, 200] {
                    let mine = write(&records, &all[..take], s, ours).unwrap();
                    let codec = codec_bytes(&records[..take], s, theirs);
                    assert_eq!(mine, codec, "{take} records, {s:?}, {ours:?}");
                }
            }
        }
        // Any subset, in the order given.
        let some: Vec<u32> = (0..200).filter(|i| i % 4 == 1).collect();
        let picked: Vec<Record> = some.iter().map(|&i| records[i as usize].clone()).collect();
        assert_eq!(
            write(&records, &some, stamp(9, 1, 40), Compression::None).unwrap(),
            codec_bytes(&picked, stamp(9, 1, 40), Codec::None)
        );
        assert!(write(&records, &[], stamp(9, 1, 40), Compression::None).is_err());
        assert!(write(&records, &[200], stamp(9, 1, 40), Compression::None).is_err());
    }

    #[test]
    fn a_restamped_batch_is_the_batch_written_under_the_new_stamp() {
        let records = sample();
        let all: Vec<u32> = (0..records.len() as u32).collect();
        for (ours, _) in compressions() {
            let first = write(&records, &all, Stamp::NONE, ours).unwrap();
            for s in STAMPS {
                assert_eq!(
                    restamp(&first, s),
                    write(&records, &all, s, ours).unwrap(),
                    "{s:?}, {ours:?}"
                );
            }
        }
    }

    #[test]
    fn a_split_batch_is_its_halves_written_apart_and_decodes_to_the_same_records() {
        let records = sample();
        let all: Vec<u32> = (0..records.len() as u32).collect();
        for (ours, _) in compressions() {
            for s in STAMPS {
                let whole = write(&records, &all, s, ours).unwrap();
                for at in [1, 100, 199] {
                    let (first, second) = split(&whole, at).unwrap();
                    let label = format!("{ours:?}, {s:?}, at {at}");
                    assert_eq!(
                        first,
                        write(&records, &all[..at], s, ours).unwrap(),
                        "{label}"
                    );
                    assert_eq!(
                        second,
                        write(&records, &all[at..], s.advanced(at), ours).unwrap(),
                        "{label}"
                    );
                    // And the codec reads them back as the records they came from.
                    let mut both = BytesMut::from(&first[..]);
                    both.put_slice(&second);
                    let mut both = both.freeze();
                    let mut decoded = Vec::new();
                    while !both.is_empty() {
                        decoded.extend(RecordBatchDecoder::decode(&mut both).unwrap().records);
                    }
                    assert_eq!(decoded.len(), records.len(), "{label}");
                    for (d, r) in decoded.iter().zip(&records) {
                        assert_eq!(
                            (&d.key, d.value.as_ref(), d.timestamp),
                            (&r.key, Some(&r.value), r.timestamp_ms),
                            "{label}"
                        );
                    }
                }
                assert!(split(&whole, 0).is_err());
                assert!(split(&whole, 200).is_err());
            }
        }
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(stamp(1, 0, i32::MAX).advanced(1).base_sequence, 0);
        assert_eq!(stamp(1, 0, i32::MAX - 1).advanced(3).base_sequence, 1);
        assert_eq!(Stamp::NONE.advanced(5), Stamp::NONE);
    }
}
