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
//! Layout (<https://kafka.apache.org/documentation/#recordbatch>): baseOffset i64, batchLength
//! i32, partitionLeaderEpoch i32, magic i8 = 2, crc u32 (CRC-32C of everything after it),
//! attributes i16, lastOffsetDelta i32, baseTimestamp i64, maxTimestamp i64, producerId i64,
//! producerEpoch i16, baseSequence i32, record count i32, then per record: length varint,
//! attributes i8, timestampDelta varlong, offsetDelta varint, key, value (length varint, -1 for
//! null), header count varint and headers. The base timestamp is the first record's, as the
//! Java producer writes it; later records' deltas may be negative.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};

use super::error::Error;
use super::wire::{bytes_len, get_varint, put_bytes, put_varint, put_varint_in, varint_len};

/// The size of a batch's header, everything before its first record.
pub(super) const BATCH_OVERHEAD: usize = 61;

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

    /// The key as an operator would recognise it in an error.
    pub(super) fn describe_key(&self) -> String {
        describe_key(self.key.as_deref())
    }
}

/// A record's key as an operator would recognise it in an error.
pub(super) fn describe_key(key: Option<&[u8]>) -> String {
    match key {
        Some(k) => format!("{:?}", String::from_utf8_lossy(&k[..k.len().min(64)])),
        None => "(none)".into(),
    }
}

/// A record's bytes after its length: attributes, the deltas, the key, the value (with its
/// length) and `headers` bytes of headers.
fn record_body_len(
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
fn headers_len(headers: &[(String, Bytes)]) -> usize {
    varint_len(headers.len() as i64)
        + headers
            .iter()
            .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(Some(v)))
            .sum::<usize>()
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

/// A record batch being written: room for its header, then its records, each framed as it
/// is appended. `seal` fills in the header. A value is written in place by the caller: the two
/// lengths before it are given the room the previous value's needed, and the value is moved in
/// the rare case that was wrong (its length's varint needs another number of bytes).
#[derive(Debug)]
pub(super) struct Section {
    buf: Vec<u8>,
    count: usize,
    base_timestamp: i64,
    max_timestamp: i64,
    /// The max timestamp before the last record: what `remove_last` goes back to.
    max_before_last: i64,
    /// The last value's length, for guessing the next one's.
    last_value: usize,
}

impl Section {
    /// An empty batch in a buffer of `capacity` bytes (it grows if it must).
    pub fn with_capacity(capacity: usize) -> Section {
        let mut buf = Vec::with_capacity(capacity.max(BATCH_OVERHEAD));
        buf.resize(BATCH_OVERHEAD, 0);
        Section {
            buf,
            count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            max_before_last: 0,
            last_value: 0,
        }
    }

    /// The batch's size so far, its header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The timestamp delta of a record at `timestamp` appended next.
    fn timestamp_delta(&self, timestamp: i64) -> i64 {
        if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        }
    }

    fn counted(&mut self, timestamp: i64) {
        self.max_before_last = self.max_timestamp;
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.count += 1;
    }

    /// Appends a record of `key` and `headers` whose value `value` appends to the buffer it is
    /// given. When `value` fails, nothing is appended.
    pub fn append<E>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        headers: &[(String, Bytes)],
        value: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.buf.len();
        let timestamp_delta = self.timestamp_delta(timestamp);
        let offset_delta = self.count as i64;
        let headers_size = headers_len(headers);
        let body = |value: usize| {
            record_body_len(timestamp_delta, offset_delta, key, value, headers_size) as i64
        };
        let length_room = varint_len(body(self.last_value));
        let value_room = varint_len(self.last_value as i64);
        self.buf.resize(start + length_room, 0);
        self.buf.push(0); // attributes
        put_varint(&mut self.buf, timestamp_delta);
        put_varint(&mut self.buf, offset_delta);
        put_bytes(&mut self.buf, key);
        let value_length_at = self.buf.len();
        self.buf.resize(value_length_at + value_room, 0);
        let value_at = self.buf.len();
        if let Err(e) = value(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        let value_len = self.buf.len() - value_at;
        put_varint(&mut self.buf, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(&mut self.buf, Some(k.as_bytes()));
            put_bytes(&mut self.buf, Some(v));
        }
        // The later length first: moving what follows it does not move the earlier one's place.
        fill_varint(&mut self.buf, value_length_at, value_room, value_len as i64);
        fill_varint(&mut self.buf, start, length_room, body(value_len));
        self.last_value = value_len;
        self.counted(timestamp);
        Ok(())
    }

    /// Appends a record whose fields after its offset delta (key, value and headers) are
    /// `fields`, as another batch has them.
    pub fn append_fields(&mut self, timestamp: i64, fields: &[u8]) {
        let timestamp_delta = self.timestamp_delta(timestamp);
        let offset_delta = self.count as i64;
        let body = 1 + varint_len(timestamp_delta) + varint_len(offset_delta) + fields.len();
        put_varint(&mut self.buf, body as i64);
        self.buf.push(0); // attributes
        put_varint(&mut self.buf, timestamp_delta);
        put_varint(&mut self.buf, offset_delta);
        self.buf.extend_from_slice(fields);
        self.counted(timestamp);
    }

    /// The value of the record that starts at byte `start`, to change in place (its length
    /// stays). None when no record with a value starts there.
    pub fn value_mut(&mut self, start: usize) -> Option<&mut [u8]> {
        let records = self.buf.get(start..)?;
        let mut rest = records;
        let (_timestamp_delta, mut fields) = next_record(&mut rest)?;
        let key_len = get_varint(&mut fields)?;
        fields = fields.get(usize::try_from(key_len).unwrap_or(0)..)?;
        let value_len = usize::try_from(get_varint(&mut fields)?).ok()?;
        // `fields` (now the value and the headers) ends where the record ends.
        let at = start + (records.len() - rest.len()) - fields.len();
        self.buf.get_mut(at..at + value_len)
    }

    /// Takes the last record appended, which starts at byte `start`, out again (it goes to
    /// another batch, or none); returns its timestamp and its fields after the offset delta,
    /// for `append_fields`.
    /// It is gone from the batch even when it cannot be read back (which would be our bug).
    pub fn remove_last(&mut self, start: usize) -> Result<(i64, Vec<u8>), Error> {
        let taken =
            read_records(&self.buf[start..], self.base_timestamp).and_then(|records| match records
                .as_slice()
            {
                [last] => Ok((last.timestamp, last.fields.to_vec())),
                _ => Err(local("a batch's last record is not where it was written")),
            });
        self.buf.truncate(start);
        self.count -= 1;
        self.max_timestamp = self.max_before_last;
        taken
    }

    /// Keeps the records before byte `at` (where one starts): `count` of them, whose latest
    /// timestamp is `max_timestamp`.
    pub fn truncate(&mut self, at: usize, count: usize, max_timestamp: i64) {
        self.buf.truncate(at);
        self.count = count;
        self.max_timestamp = max_timestamp;
        self.max_before_last = max_timestamp;
    }

    /// The batch, under `stamp` and compressed with `compression`: header filled in, sealed.
    pub fn seal(self, stamp: Stamp, compression: Compression) -> Result<Bytes, Error> {
        let count = i32::try_from(self.count)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| local(format!("cannot write a batch of {} records", self.count)))?;
        let mut buf = self.buf;
        let mut header = &mut buf[..BATCH_OVERHEAD];
        header.put_i64(0); // baseOffset
        header.put_i32(0); // batchLength, by `seal`
        header.put_i32(-1); // partitionLeaderEpoch
        header.put_i8(2); // magic
        header.put_u32(0); // crc, by `seal`
        header.put_i16(0); // attributes: no compression, CreateTime, not transactional
        header.put_i32(count - 1); // lastOffsetDelta
        header.put_i64(self.base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(stamp.producer_id);
        header.put_i16(stamp.epoch);
        header.put_i32(stamp.base_sequence);
        header.put_i32(count);
        compress(buf, compression)
    }
}

/// Writes `v` at `at` of `buf`, over the `room` bytes left for it there: moves what follows
/// when it needs another number of bytes.
fn fill_varint(buf: &mut Vec<u8>, at: usize, room: usize, v: i64) {
    let size = varint_len(v);
    if size != room {
        buf.splice(at..at + room, std::iter::repeat_n(0, size));
    }
    put_varint_in(&mut buf[at..at + size], v);
}

/// `batch` under another stamp: the header patched, the records untouched (compressed or not).
pub(super) fn restamp(batch: &[u8], stamp: Stamp) -> Bytes {
    let mut out = batch.to_vec();
    out[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&stamp.producer_id.to_be_bytes());
    out[PRODUCER_ID + 8..PRODUCER_ID + 10].copy_from_slice(&stamp.epoch.to_be_bytes());
    out[PRODUCER_ID + 10..PRODUCER_ID + 14].copy_from_slice(&stamp.base_sequence.to_be_bytes());
    seal(&mut out);
    Bytes::from(out)
}

/// `batch` (written by `Section`) as two: its first `at` records, and the rest under the stamp
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

/// A record read back from a batch we wrote: its timestamp, and its fields after the offset
/// delta as they were written.
struct Written<'a> {
    timestamp: i64,
    fields: &'a [u8],
}

/// `plain` (a batch with its header filled in) with its records compressed, its length and
/// CRC filled in.
fn compress(mut plain: Vec<u8>, compression: Compression) -> Result<Bytes, Error> {
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

/// The records of an uncompressed records section, to its end.
fn read_records(records: &[u8], base_timestamp: i64) -> Result<Vec<Written<'_>>, Error> {
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
fn next_record<'a>(rest: &mut &'a [u8]) -> Option<(i64, &'a [u8])> {
    let len = usize::try_from(get_varint(rest)?).ok()?;
    let record = rest.get(..len)?;
    *rest = &rest[len..];
    let (_attributes, mut fields) = record.split_first()?;
    let timestamp_delta = get_varint(&mut fields)?;
    let _offset_delta = get_varint(&mut fields)?;
    Some((timestamp_delta, fields))
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

    /// The records `indices` of `records` as one batch, written as a producer's send writes
    /// them (values through `Section::append`), under `stamp` and compressed.
    fn write(
        records: &[Record],
        indices: &[u32],
        stamp: Stamp,
        compression: Compression,
    ) -> Result<Bytes, Error> {
        let mut section = Section::with_capacity(0);
        for &i in indices {
            let r = records
                .get(i as usize)
                .ok_or_else(|| local("no such record"))?;
            section
                .append(r.timestamp_ms, r.key.as_deref(), &r.headers, |buf| {
                    buf.extend_from_slice(&r.value);
                    Ok::<(), Error>(())
                })
                .unwrap();
        }
        section.seal(stamp, compression)
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
                // Growing: the codec takes the smallest as the base, we (and the Java
                // producer) the first, so only in order are the bytes the same
                // (`out_of_order_timestamps_read_back_as_written` for the rest).
                timestamp_ms: 1_700_000_000_000 + i * 37,
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
    fn values_written_in_place_are_framed_right_whatever_their_length() {
        // Each length's varint needs another number of bytes than the one before: the room
        // guessed from the previous value is too small, then too large.
        let lengths = [0, 63, 64, 8191, 8192, 200_000, 5, 70_000, 64, 63, 1];
        let records: Vec<Record> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| Record {
                key: (i % 2 == 0).then(|| Bytes::from(vec![b'k'; n % 300])),
                value: Bytes::from(vec![b'v'; n]),
                headers: vec![],
                timestamp_ms: 1_700_000_000_000 + i as i64,
            })
            .collect();
        let all: Vec<u32> = (0..records.len() as u32).collect();
        for (ours, theirs) in compressions() {
            assert_eq!(
                write(&records, &all, STAMPS[1], ours).unwrap(),
                codec_bytes(&records, STAMPS[1], theirs),
                "{ours:?}"
            );
        }
    }

    #[test]
    fn a_value_that_fails_leaves_nothing_behind() {
        let records = sample();
        let mut section = Section::with_capacity(0);
        for (i, r) in records.iter().enumerate() {
            if i % 10 == 3 {
                let before = section.len();
                let failed = section.append(r.timestamp_ms, r.key.as_deref(), &[], |buf| {
                    buf.extend_from_slice(b"half a message");
                    Err("the row cannot be encoded")
                });
                assert_eq!(failed, Err("the row cannot be encoded"));
                assert_eq!(section.len(), before);
            }
            section
                .append(r.timestamp_ms, r.key.as_deref(), &r.headers, |buf| {
                    buf.extend_from_slice(&r.value);
                    Ok::<(), ()>(())
                })
                .unwrap();
        }
        assert_eq!(
            section.seal(STAMPS[2], Compression::None).unwrap(),
            codec_bytes(&records, STAMPS[2], Codec::None)
        );
    }

    #[test]
    fn a_record_taken_back_and_appended_elsewhere_is_as_if_written_there() {
        let records = sample();
        let (first, second) = records.split_at(150);
        let mut section = Section::with_capacity(0);
        let append = |section: &mut Section, r: &Record| {
            section
                .append(r.timestamp_ms, r.key.as_deref(), &r.headers, |buf| {
                    buf.extend_from_slice(&r.value);
                    Ok::<(), ()>(())
                })
                .unwrap()
        };
        for r in first {
            append(&mut section, r);
        }
        let start = section.len();
        append(&mut section, &second[0]);
        let (timestamp, fields) = section.remove_last(start).unwrap();
        assert_eq!(timestamp, second[0].timestamp_ms);
        let mut next = Section::with_capacity(0);
        next.append_fields(timestamp, &fields);
        for r in &second[1..] {
            append(&mut next, r);
        }
        assert_eq!(
            section.seal(STAMPS[1], Compression::None).unwrap(),
            codec_bytes(first, STAMPS[1], Codec::None)
        );
        assert_eq!(
            next.seal(STAMPS[1], Compression::None).unwrap(),
            codec_bytes(second, STAMPS[1], Codec::None)
        );
    }

    #[test]
    fn out_of_order_timestamps_read_back_as_written() {
        let mut records = sample();
        for (i, r) in records.iter_mut().enumerate() {
            r.timestamp_ms = 1_700_000_000_000 + (i as i64 * 37 % 1000) - 500;
        }
        let all: Vec<u32> = (0..records.len() as u32).collect();
        for (ours, _) in compressions() {
            let batch = write(&records, &all, STAMPS[1], ours).unwrap();
            let max = records.iter().map(|r| r.timestamp_ms).max().unwrap();
            assert_eq!(
                be_i64(&batch[BASE_TIMESTAMP + 8..]),
                max,
                "{ours:?}: maxTimestamp"
            );
            let decoded = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
            let timestamps: Vec<i64> = decoded.records.iter().map(|r| r.timestamp).collect();
            let written: Vec<i64> = records.iter().map(|r| r.timestamp_ms).collect();
            assert_eq!(timestamps, written, "{ours:?}");
            // And a split re-bases each half on its own first record.
            let (a, b) = split(&batch, 77).unwrap();
            let mut both: Vec<i64> = Vec::new();
            for half in [a, b] {
                let decoded = RecordBatchDecoder::decode(&mut half.clone()).unwrap();
                both.extend(decoded.records.iter().map(|r| r.timestamp));
            }
            assert_eq!(both, written, "{ours:?} split");
        }
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(stamp(1, 0, i32::MAX).advanced(1).base_sequence, 0);
        assert_eq!(stamp(1, 0, i32::MAX - 1).advanced(3).base_sequence, 1);
        assert_eq!(Stamp::NONE.advanced(5), Stamp::NONE);
    }
}
