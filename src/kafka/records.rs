//! Writes an uncompressed RecordBatch v2 straight from our records.
//!
//! The codec's `RecordBatchEncoder` wants its own `Record` type: building one per record (two
//! reference-counted clones and a header map) cost as much as writing the batch itself. This
//! writer produces the same bytes (a unit test compares them) from `producer::Record`s. Compressed
//! batches, and re-encodings of a batch already written (a split, a new producer id), still go
//! through the codec.
//!
//! Layout (<https://kafka.apache.org/documentation/#recordbatch>): baseOffset i64, batchLength
//! i32, partitionLeaderEpoch i32, magic i8 = 2, crc u32 (CRC-32C of everything after it),
//! attributes i16, lastOffsetDelta i32, baseTimestamp i64, maxTimestamp i64, producerId i64,
//! producerEpoch i16, baseSequence i32, record count i32, then per record: length varint,
//! attributes i8, timestampDelta varlong, offsetDelta varint, key, value (length varint, -1 for
//! null), header count varint and headers.

use bytes::{BufMut, Bytes, BytesMut};

use super::producer::{record_size, Record};

/// Bytes from `partitionLeaderEpoch` to the start of the records: the part `batchLength` counts
/// before them.
const HEADER_AFTER_LENGTH: usize = 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
/// `baseOffset` + `batchLength`.
const HEADER_BEFORE: usize = 8 + 4;
/// Where the CRC-covered part starts (after `crc`), from the start of the batch.
const CRC_START: usize = HEADER_BEFORE + 4 + 1 + 4;

/// The records `indices` of `records`, as one uncompressed batch with offsets 0.., sequences
/// from `base_sequence` (-1: none) under `producer` (id, epoch; -1 without idempotence).
pub(super) fn write_uncompressed(
    records: &[Record],
    indices: &[u32],
    producer: (i64, i16),
    base_sequence: i32,
) -> Option<Bytes> {
    // Every index must name a record: the count in the header must match what follows.
    let chosen: Vec<&Record> = indices
        .iter()
        .map(|&i| records.get(i as usize))
        .collect::<Option<_>>()?;
    // One pass for the header's timestamps and the buffer's size (the producer's upper bound).
    let (base_timestamp, max_timestamp, body) =
        chosen
            .iter()
            .fold((i64::MAX, i64::MIN, 0), |(min, max, size), r| {
                (
                    min.min(r.timestamp_ms),
                    max.max(r.timestamp_ms),
                    size + record_size(r),
                )
            });
    if chosen.is_empty() {
        return None;
    }
    let count = i32::try_from(chosen.len()).ok()?;
    let mut buf = BytesMut::with_capacity(HEADER_BEFORE + HEADER_AFTER_LENGTH + body);

    buf.put_i64(0); // baseOffset
    buf.put_i32(0); // batchLength, patched below
    buf.put_i32(-1); // partitionLeaderEpoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // crc, patched below
    buf.put_i16(0); // attributes: no compression, CreateTime, not transactional
    buf.put_i32(count - 1); // lastOffsetDelta
    buf.put_i64(base_timestamp);
    buf.put_i64(max_timestamp);
    buf.put_i64(producer.0);
    buf.put_i16(producer.1);
    buf.put_i32(base_sequence);
    buf.put_i32(count);
    for (offset_delta, r) in chosen.iter().enumerate() {
        let offset_delta = offset_delta as i64;
        put_varint(&mut buf, record_len(r, base_timestamp, offset_delta) as i64);
        buf.put_i8(0); // attributes
        put_varint(&mut buf, r.timestamp_ms - base_timestamp);
        put_varint(&mut buf, offset_delta);
        put_bytes(&mut buf, r.key.as_deref());
        put_bytes(&mut buf, Some(&r.value));
        put_varint(&mut buf, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_bytes(&mut buf, Some(k.as_bytes()));
            put_bytes(&mut buf, Some(v));
        }
    }
    let length = i32::try_from(buf.len() - HEADER_BEFORE).ok()?;
    buf[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
    Some(buf.freeze())
}

/// A record's length after its own length field.
fn record_len(r: &Record, base_timestamp: i64, offset_delta: i64) -> usize {
    let bytes_len =
        |b: Option<&[u8]>| b.map_or(varint_len(-1), |b| varint_len(b.len() as i64) + b.len());
    1 + varint_len(r.timestamp_ms - base_timestamp)
        + varint_len(offset_delta)
        + bytes_len(r.key.as_deref())
        + bytes_len(Some(&r.value))
        + varint_len(r.headers.len() as i64)
        + r.headers
            .iter()
            .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(Some(v)))
            .sum::<usize>()
}

fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
        None => put_varint(buf, -1),
    }
}

/// Zig-zag varint, as Kafka's records use for every length and delta.
fn put_varint(buf: &mut BytesMut, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Unsigned varint (7 bits per byte, low first): records' zig-zag varints and the compact
/// lengths of flexible request versions.
pub(super) fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn varint_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - z.leading_zeros() as usize).max(1).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn codec_bytes(records: &[Record], producer: (i64, i16), base_sequence: i32) -> Bytes {
        let krecords: Vec<KRecord> = records
            .iter()
            .enumerate()
            .map(|(n, r)| KRecord {
                transactional: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id: producer.0,
                producer_epoch: producer.1,
                timestamp_type: TimestampType::Creation,
                offset: n as i64,
                sequence: base_sequence.wrapping_add(n as i32),
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
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, krecords.iter(), &options).unwrap();
        buf.freeze()
    }

    #[test]
    fn varint_lengths_match_the_encoding() {
        for v in [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            i64::from(i32::MAX),
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn same_bytes_as_the_codec() {
        let big = Bytes::from(vec![b'x'; 300]);
        let records: Vec<Record> = (0..200)
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
                timestamp_ms: 1_700_000_000_000 + (i * 37 % 1000),
            })
            .collect();
        let all: Vec<u32> = (0..records.len() as u32).collect();
        for (producer, base_sequence) in [((-1, -1), -1), ((7, 0), 0), ((12345, 3), i32::MAX - 50)]
        {
            for take in [1, 2, 199, 200] {
                let mine =
                    write_uncompressed(&records, &all[..take], producer, base_sequence).unwrap();
                let theirs = codec_bytes(&records[..take], producer, base_sequence);
                assert_eq!(mine, theirs, "{take} records, producer {producer:?}");
            }
        }
        // Any subset, in the order given.
        let some: Vec<u32> = (0..200).filter(|i| i % 4 == 1).collect();
        let picked: Vec<Record> = some.iter().map(|&i| records[i as usize].clone()).collect();
        assert_eq!(
            write_uncompressed(&records, &some, (9, 1), 40).unwrap(),
            codec_bytes(&picked, (9, 1), 40)
        );
        assert!(write_uncompressed(&records, &[], (9, 1), 40).is_none());
    }
}
