//! Unit tests of `records`: the batches we write, re-stamp and split are compared byte for byte
//! with what the codec writes for the same records, compressed or not, and read back with it.

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as Codec, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

use crate::kafka::error::Error;

use super::compression::Compression;
use super::layout::{be_i64, local, BASE_TIMESTAMP};
use super::seal::{restamp, Stamp};
use super::section::Section;
use super::split::split;
use super::Record;

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
