//! The body of a Produce request (v3–v12), written around the record batches instead of
//! copying them.
//!
//! Through the codec, every batch was copied into the request buffer before being sent: one more
//! pass over every byte we publish, and a request buffer as large as the largest request, kept
//! for the connection's life. Here the body is written without the batches, and `Connection`
//! sends it with the batches in one vectored write. A unit test checks that the bytes on the
//! wire are exactly the codec's for every version.
//!
//! Layout (ProduceRequest.json): transactional_id (nullable string), acks i16, timeout_ms i32,
//! topic_data [name string, partition_data [index i32, records nullable bytes]]. Versions 9+
//! are "flexible": compact strings, arrays and bytes (unsigned varint length + 1) and an empty
//! tagged-field section after each structure.

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{put_len, put_uvarint};

/// First flexible version of Produce.
const FLEXIBLE: i16 = 9;

/// One topic's worth of a Produce request.
pub(super) struct ProduceBody<'a> {
    pub acks: i16,
    pub timeout_ms: i32,
    pub topic: &'a str,
    /// (partition, encoded record batch), in request order.
    pub partitions: Vec<(i32, Option<&'a Bytes>)>,
}

impl ProduceBody<'_> {
    /// Appends the body to `out`, except the record batches: for each, where it goes in `out`
    /// (its offset) and the batch, in order.
    pub(super) fn write(&self, version: i16, out: &mut BytesMut) -> Vec<(usize, Bytes)> {
        let flexible = version >= FLEXIBLE;
        let mut gaps = Vec::with_capacity(self.partitions.len());
        // transactional_id: null
        if flexible {
            put_uvarint(out, 0);
        } else {
            out.put_i16(-1);
        }
        out.put_i16(self.acks);
        out.put_i32(self.timeout_ms);
        put_len(out, flexible, 1); // one topic
                                   // The topic name is a string: i16 length before v9.
        if flexible {
            put_uvarint(out, self.topic.len() as u64 + 1);
        } else {
            out.put_i16(self.topic.len() as i16);
        }
        out.put_slice(self.topic.as_bytes());
        put_len(out, flexible, self.partitions.len());
        for &(partition, records) in &self.partitions {
            out.put_i32(partition);
            match records {
                Some(records) => {
                    put_len(out, flexible, records.len());
                    gaps.push((out.len(), records.clone()));
                }
                // Null records (never sent by the producer; kept for parity with the codec).
                None if flexible => put_uvarint(out, 0),
                None => out.put_i32(-1),
            }
            if flexible {
                put_uvarint(out, 0); // partition's tagged fields
            }
        }
        if flexible {
            put_uvarint(out, 0); // topic's tagged fields
            put_uvarint(out, 0); // request's tagged fields
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn same_bytes_as_the_codec_for_every_version() {
        let batches = [
            Bytes::from(vec![7u8; 300]),
            Bytes::from_static(b"x"),
            Bytes::from(vec![1u8; 20_000]),
        ];
        let body = ProduceBody {
            acks: -1,
            timeout_ms: 30_000,
            topic: "events.v1",
            partitions: vec![
                (2, Some(&batches[0])),
                (0, Some(&batches[1])),
                (5, None),
                (11, Some(&batches[2])),
            ],
        };
        let request = ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("events.v1")))
                .with_partition_data(
                    body.partitions
                        .iter()
                        .map(|&(p, b)| {
                            PartitionProduceData::default()
                                .with_index(p)
                                .with_records(b.cloned())
                        })
                        .collect(),
                )]);
        for version in 3..=12 {
            let mut theirs = BytesMut::new();
            request.encode(&mut theirs, version).unwrap();
            let mut head = BytesMut::new();
            let gaps = body.write(version, &mut head);
            let mut mine = Vec::new();
            let mut at = 0;
            for (offset, batch) in gaps {
                mine.extend_from_slice(&head[at..offset]);
                mine.extend_from_slice(&batch);
                at = offset;
            }
            mine.extend_from_slice(&head[at..]);
            assert_eq!(mine, &theirs[..], "version {version}");
        }
    }
}
