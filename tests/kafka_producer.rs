//! The producer against a real Kafka broker (the local stack's Apache Kafka), with everything it
//! wrote read back by librdkafka.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::env::unique;
use common::kafka::{
    batches_of, broker, consume_all, create_topic, dump_log, now_ms, offsets_by_partition,
    push_until_held,
};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdResponse, MetadataResponse, ProducerId,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::ClientConfig;
use repliqate::kafka::testing::send;
use repliqate::kafka::{partition_for_key, Compression, Error, Producer, ProducerConfig, Record};

fn producer(broker: &str) -> Producer {
    Producer::new(ProducerConfig {
        bootstrap: vec![broker.to_string()],
        delivery_timeout: Duration::from_secs(30),
        ..ProducerConfig::default()
    })
}

fn value_for(i: usize) -> Vec<u8> {
    // ~200 bytes, different per record, with non-ASCII bytes to catch any re-encoding.
    format!(
        "{{\"id\": {i}, \"payload\": \"{}\", \"utf8\": \"h\u{e9}llo \u{1f600}\"}}",
        "x".repeat(150 + i % 37)
    )
    .into_bytes()
}

#[test]
fn hundred_thousand_keyed_records_are_read_back_intact_by_librdkafka() {
    let broker = broker();
    let topic = unique("keyed");
    create_topic(&broker, &topic, 3);
    let mut p = producer(&broker);
    assert_eq!(p.check_topic(&topic).expect("topic metadata"), 3);

    const N: usize = 100_000;
    let base = now_ms();
    let records: Vec<Record> = (0..N)
        .map(|i| Record {
            key: Some(Bytes::from(i.to_string())),
            value: Bytes::from(value_for(i)),
            headers: vec![("row".to_string(), Bytes::from(format!("h{i}")))],
            timestamp_ms: base + i as i64,
        })
        .collect();
    let mut deliveries = Vec::with_capacity(N);
    for chunk in records.chunks(10_000) {
        deliveries.extend(send(&mut p, &topic, chunk).unwrap_or_else(|e| panic!("send: {e}")));
    }
    assert!(
        p.is_idempotent(),
        "Apache Kafka supports InitProducerId; we should be idempotent"
    );

    let consumed = consume_all(&broker, &topic, 3, N, Duration::from_secs(120));
    assert_eq!(
        consumed.len(),
        N,
        "librdkafka read {} of {N} records",
        consumed.len()
    );

    let mut seen = vec![false; N];
    let mut last_index_per_partition: HashMap<i32, usize> = HashMap::new();
    for m in &consumed {
        let key = String::from_utf8(m.key.clone().expect("every record has a key")).unwrap();
        let i: usize = key.parse().unwrap();
        assert!(!seen[i], "key {i} read twice");
        seen[i] = true;
        assert_eq!(m.value, value_for(i), "value of key {i}");
        assert_eq!(
            m.headers,
            vec![("row".to_string(), format!("h{i}").into_bytes())],
            "headers of key {i}"
        );
        assert_eq!(
            m.timestamp_ms,
            Some(base + i as i64),
            "timestamp of key {i}"
        );
        assert_eq!(
            m.partition as usize,
            partition_for_key(key.as_bytes(), 3),
            "partition of key {i}"
        );
        assert_eq!(
            deliveries[i].partition, m.partition,
            "reported partition of key {i}"
        );
        if let Some(offset) = deliveries[i].offset {
            assert_eq!(offset, m.offset, "reported offset of key {i}");
        }
        // Order within a partition is input order.
        if let Some(&prev) = last_index_per_partition.get(&m.partition) {
            assert!(
                prev < i,
                "partition {}: key {i} after key {prev}",
                m.partition
            );
        }
        last_index_per_partition.insert(m.partition, i);
    }
    for (partition, offsets) in offsets_by_partition(&consumed) {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "offsets of partition {partition} are not contiguous from 0"
        );
    }
}

#[test]
fn push_writes_the_requests_the_in_flight_limit_held_back_as_answers_arrive() {
    // A send of ~13 batches per partition (16 KiB requests), more than the five per partition
    // that may be in flight: `start` writes five per partition. The rest must not wait for
    // `finish` (the broker would sit idle while the loop reads its next batch): `push` reads
    // the answers that have arrived and writes them, so the broker holds every record first.
    let broker = broker();
    let topic = unique("held-back");
    create_topic(&broker, &topic, 3);
    let mut p = Producer::new(ProducerConfig {
        bootstrap: vec![broker.clone()],
        delivery_timeout: Duration::from_secs(30),
        max_request_size: 16 * 1024,
        ..ProducerConfig::default()
    });
    p.check_topic(&topic).unwrap();
    let n = 3_000;
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            key: Some(Bytes::from(i.to_string())),
            value: Bytes::from(value_for(i)),
            headers: vec![],
            timestamp_ms: now_ms(),
        })
        .collect();
    let mut pending = p.start(batches_of(&p, &topic, &records));
    push_until_held(
        &mut p,
        &mut pending,
        (&broker, &topic, 3),
        n as i64,
        Duration::from_secs(20),
    );
    let delivered = p.finish(pending).unwrap_or_else(|e| panic!("finish: {e}"));
    assert_eq!(delivered.len(), n);
    // One more than sent: a duplicate would be read within the wait.
    let consumed = consume_all(&broker, &topic, 3, n + 1, Duration::from_secs(5));
    assert_eq!(
        consumed.len(),
        n,
        "every record read back once by librdkafka"
    );
    let mut seen = vec![false; n];
    for m in &consumed {
        let key = m.key.as_deref().expect("every record has a key");
        let i: usize = std::str::from_utf8(key).unwrap().parse().unwrap();
        assert!(!seen[i], "key {i} read twice");
        seen[i] = true;
        assert_eq!(m.value, value_for(i), "value of key {i}");
    }
}

#[test]
fn our_partitioner_agrees_with_librdkafka_murmur2() {
    // An independent implementation: librdkafka's murmur2_random partitioner (Java-compatible).
    let broker = broker();
    let topic = unique("murmur");
    create_topic(&broker, &topic, 7);
    let rd: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("librdkafka producer");
    let keys: Vec<String> = (0..500)
        .map(|i| format!("key-{i}-{}", "\u{e9}".repeat(i % 5)))
        .chain(["".to_string(), "kafka".into()])
        .collect();
    for k in &keys {
        rd.send(
            BaseRecord::to(&topic)
                .key(k.as_bytes())
                .payload(k.as_bytes()),
        )
        .expect("enqueue");
    }
    rd.flush(Duration::from_secs(30)).expect("librdkafka flush");
    let consumed = consume_all(&broker, &topic, 7, keys.len(), Duration::from_secs(60));
    assert_eq!(consumed.len(), keys.len());
    for m in consumed {
        let key = m.key.unwrap_or_default();
        assert_eq!(
            m.partition as usize,
            partition_for_key(&key, 7),
            "key {:?}",
            String::from_utf8_lossy(&key)
        );
    }
}

#[test]
fn compressed_and_unkeyed_records_round_trip() {
    let broker = broker();
    #[allow(unused_mut)] // without the optional codec features
    let mut codecs = vec![Compression::Gzip, Compression::Snappy];
    #[cfg(feature = "lz4")]
    codecs.push(Compression::Lz4);
    #[cfg(feature = "zstd")]
    codecs.push(Compression::Zstd);
    for compression in codecs {
        let topic = unique("compressed");
        create_topic(&broker, &topic, 2);
        let mut p = Producer::new(ProducerConfig {
            bootstrap: vec![broker.clone()],
            compression,
            ..ProducerConfig::default()
        });
        let records: Vec<Record> = (0..2_000)
            .map(|i| Record {
                key: None,
                value: Bytes::from(value_for(i)),
                headers: vec![],
                timestamp_ms: now_ms(),
            })
            .collect();
        send(&mut p, &topic, &records).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        let consumed = consume_all(&broker, &topic, 2, records.len(), Duration::from_secs(60));
        assert_eq!(consumed.len(), records.len(), "{compression:?}");
        let per_partition = offsets_by_partition(&consumed);
        assert_eq!(
            per_partition.len(),
            2,
            "unkeyed records should use both partitions"
        );
        for offsets in per_partition.values() {
            assert_eq!(offsets.len(), 1_000, "unkeyed records are spread evenly");
        }
        let mut values: Vec<Vec<u8>> = consumed.into_iter().map(|m| m.value).collect();
        let mut expected: Vec<Vec<u8>> = (0..2_000).map(value_for).collect();
        values.sort();
        expected.sort();
        assert_eq!(values, expected, "{compression:?}");
    }
}

#[test]
fn unknown_topic_is_a_clear_error_and_is_not_created() {
    let broker = broker();
    let topic = unique("missing");
    let mut p = producer(&broker);
    let started = Instant::now();
    let err = send(
        &mut p,
        &topic,
        &[Record {
            key: None,
            value: Bytes::from_static(b"x"),
            headers: vec![],
            timestamp_ms: 0,
        }],
    )
    .unwrap_err();
    assert!(matches!(err.error, Error::UnknownTopic { .. }), "{err}");
    assert!(
        err.to_string().contains(&topic) && err.to_string().contains("does not exist"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // Still missing: the lookup did not auto-create it.
    assert!(matches!(
        p.check_topic(&topic),
        Err(Error::UnknownTopic { .. })
    ));
}

#[test]
fn wrong_port_fails_within_the_delivery_timeout_naming_the_broker() {
    // A port nobody listens on: bind, learn the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut p = Producer::new(ProducerConfig {
        bootstrap: vec![addr.clone()],
        delivery_timeout: Duration::from_secs(2),
        ..ProducerConfig::default()
    });
    let started = Instant::now();
    let err = p.check_topic("t").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains(&addr), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[test]
fn unroutable_bootstrap_address_times_out_within_the_connect_timeout() {
    // TEST-NET-1 (RFC 5737) is never routed; connect() hangs until our timeout.
    let mut p = Producer::new(ProducerConfig {
        bootstrap: vec!["192.0.2.1:9092".into()],
        connect_timeout: Duration::from_millis(500),
        delivery_timeout: Duration::from_secs(2),
        ..ProducerConfig::default()
    });
    let started = Instant::now();
    let err = p.check_topic("t").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("192.0.2.1:9092"), "{err}");
}

#[test]
fn a_non_kafka_server_on_the_port_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let mut p = Producer::new(ProducerConfig {
        bootstrap: vec![addr.clone()],
        delivery_timeout: Duration::from_secs(5),
        ..ProducerConfig::default()
    });
    let started = Instant::now();
    let err = p.check_topic("t").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains(&addr) && text.contains("is this address a Kafka broker"),
        "{text}"
    );
    assert!(!err.is_retriable());
}

#[test]
fn an_oversized_record_is_refused_naming_its_key_after_the_records_before_it() {
    let broker = broker();
    let topic = unique("oversized");
    create_topic(&broker, &topic, 1);
    let mut p = Producer::new(ProducerConfig {
        bootstrap: vec![broker.clone()],
        max_request_size: 64 * 1024,
        ..ProducerConfig::default()
    });
    let records = vec![
        Record {
            key: Some(Bytes::from_static(b"1")),
            value: Bytes::from(vec![b'a'; 100]),
            headers: vec![],
            timestamp_ms: 0,
        },
        Record {
            key: Some(Bytes::from_static(b"2")),
            value: Bytes::from(vec![b'a'; 100 * 1024]),
            headers: vec![],
            timestamp_ms: 0,
        },
    ];
    let err = send(&mut p, &topic, &records).unwrap_err();
    assert!(matches!(err.error, Error::RecordTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("key \"2\""), "{err}");
    // The record before the oversized one is delivered (the caller can commit it); nothing else.
    assert!(
        err.delivered[0].is_some() && err.delivered[1].is_none(),
        "{err:?}"
    );
    let consumed = consume_all(&broker, &topic, 1, 2, Duration::from_secs(3));
    assert_eq!(consumed.len(), 1);
    assert_eq!(consumed[0].key.as_deref(), Some(&b"1"[..]));
}

/// A fake broker for `garbage_frames_never_panic`: answers ApiVersions, Metadata (one topic
/// `t`, one partition led by itself) and InitProducerId correctly until the API `garbage`, from
/// which on every answer is a well-framed response with a pseudo-random body. Counts requests
/// per API key, so the test can show which decoder the garbage reached.
fn garbage_broker(garbage: ApiKey) -> (String, Arc<Mutex<HashMap<i16, usize>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<HashMap<i16, usize>>> = Arc::default();
    let counts = seen.clone();
    // The order the producer needs them in; `garbage` and everything after it get garbage.
    let order = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::InitProducerId,
        ApiKey::Produce,
    ];
    let from = order.iter().position(|k| *k == garbage).unwrap();
    std::thread::spawn(move || {
        // A thread per connection, as a broker serves them: the producer keeps its bootstrap
        // connection open while it dials the leader.
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut s) = stream else { continue };
            let counts = counts.clone();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ ((garbage as u64) << 32) ^ n as u64;
            std::thread::spawn(move || loop {
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).is_err() {
                    break;
                }
                let mut req = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
                if s.read_exact(&mut req).is_err() || req.len() < 8 {
                    break;
                }
                let key = i16::from_be_bytes([req[0], req[1]]);
                let version = i16::from_be_bytes([req[2], req[3]]);
                let correlation = i32::from_be_bytes([req[4], req[5], req[6], req[7]]);
                *counts.lock().unwrap().entry(key).or_default() += 1;
                let stage = order.iter().position(|k| *k as i16 == key);
                let frame = match stage {
                    Some(i) if i < from => valid_response(order[i], version, correlation, addr),
                    _ => {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let mut body = correlation.to_be_bytes().to_vec();
                        for i in 0..(seed % 64) as usize {
                            body.push((seed.rotate_left(i as u32 * 7) >> (i % 8)) as u8);
                        }
                        body
                    }
                };
                // One write: a length written apart would wait out Nagle and delayed ACKs.
                let mut out = (frame.len() as i32).to_be_bytes().to_vec();
                out.extend_from_slice(&frame);
                if s.write_all(&out).is_err() {
                    break;
                }
            });
        }
    });
    (addr.to_string(), seen)
}

fn valid_response(key: ApiKey, version: i16, correlation: i32, addr: SocketAddr) -> Vec<u8> {
    fn encode<R: Encodable + HeaderVersion>(correlation: i32, version: i16, body: R) -> Vec<u8> {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation)
            .encode(&mut buf, R::header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }
    let api = |key: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    match key {
        ApiKey::ApiVersions => encode(
            correlation,
            version,
            ApiVersionsResponse::default().with_api_keys(vec![
                api(ApiKey::ApiVersions, 0, 3),
                api(ApiKey::Metadata, 4, 4),
                api(ApiKey::InitProducerId, 0, 0),
                api(ApiKey::Produce, 3, 3),
            ]),
        ),
        ApiKey::Metadata => encode(
            correlation,
            version,
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(0))
                    .with_host(StrBytes::from_string(addr.ip().to_string()))
                    .with_port(addr.port() as i32)])
                .with_topics(vec![MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                    .with_partitions(vec![MetadataResponsePartition::default()
                        .with_partition_index(0)
                        .with_leader_id(BrokerId(0))
                        .with_replica_nodes(vec![BrokerId(0)])
                        .with_isr_nodes(vec![BrokerId(0)])])]),
        ),
        ApiKey::InitProducerId => encode(
            correlation,
            version,
            InitProducerIdResponse::default()
                .with_producer_id(ProducerId(7))
                .with_producer_epoch(0),
        ),
        other => panic!("the fake broker has no valid answer to {other:?}"),
    }
}

#[test]
fn garbage_frames_never_panic() {
    // Well-framed responses with pseudo-random bodies (and truncations of them) for each API
    // the producer decodes, reached in turn: every case must come back as an error, never a
    // panic or an abort (a garbage count must not make the codec allocate gigabytes).
    const CASES: usize = 1_000;
    let record = Record {
        key: Some(Bytes::from_static(b"k")),
        value: Bytes::from_static(b"v"),
        headers: vec![],
        timestamp_ms: 1_700_000_000_000,
    };
    // One fake broker per API, side by side.
    let stages = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::InitProducerId,
        ApiKey::Produce,
    ];
    std::thread::scope(|scope| {
        for garbage in stages {
            let record = &record;
            scope.spawn(move || garbage_cases(garbage, CASES, record));
        }
    });
}

fn garbage_cases(garbage: ApiKey, cases: usize, record: &Record) {
    let (addr, seen) = garbage_broker(garbage);
    let started = Instant::now();
    for _ in 0..cases {
        let mut p = Producer::new(ProducerConfig {
            bootstrap: vec![addr.clone()],
            delivery_timeout: Duration::from_millis(1),
            ..ProducerConfig::default()
        });
        let err = match garbage {
            ApiKey::ApiVersions | ApiKey::Metadata => {
                p.check_topic("t").map(|_| ()).map_err(|e| e.to_string())
            }
            _ => send(&mut p, "t", std::slice::from_ref(record))
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
        .expect_err("garbage is never a complete acknowledgement");
        assert!(!err.is_empty());
    }
    let reached = seen
        .lock()
        .unwrap()
        .get(&(garbage as i16))
        .copied()
        .unwrap_or(0);
    assert!(
        reached >= cases,
        "only {reached} of {cases} cases reached the {garbage:?} decoder"
    );
    eprintln!(
        "{garbage:?}: {cases} garbage responses, all errors, in {:?}",
        started.elapsed()
    );
}

/// What we write, as the broker stored it: Apache Kafka's own `kafka-dump-log` over the
/// partition's segment files (not a client's view) must show every batch with a valid CRC,
/// magic 2 and our producer id, sequences contiguous across batches and restarting from 0 for a
/// new producer, and exactly the keys, values, headers and timestamps we sent.
#[test]
fn the_brokers_own_dump_log_shows_valid_batches_with_our_producer_id_and_sequences() {
    let broker = broker();
    let topic = unique("dumplog");
    create_topic(&broker, &topic, 1);
    let base = now_ms();
    let record = |i: usize| Record {
        key: Some(Bytes::from(format!("k{i}"))),
        value: Bytes::from(format!("v{i}-{}", "\u{e9}".repeat(i % 7))),
        headers: vec![("row".to_string(), Bytes::from(i.to_string()))],
        timestamp_ms: base + i as i64,
    };
    let mut first = producer(&broker);
    const CALLS: usize = 10;
    const PER_CALL: usize = 500;
    for c in 0..CALLS {
        let records: Vec<Record> = (c * PER_CALL..(c + 1) * PER_CALL).map(record).collect();
        send(&mut first, &topic, &records).expect("send");
    }
    let first_id = first
        .producer_id()
        .expect("an idempotent producer has an id");
    // A second producer: a new producer id, its sequences start again at 0.
    let mut second = producer(&broker);
    let tail: Vec<Record> = (CALLS * PER_CALL..(CALLS + 1) * PER_CALL)
        .map(record)
        .collect();
    send(&mut second, &topic, &tail).expect("send");
    let second_id = second.producer_id().expect("an id");
    assert_ne!(
        first_id, second_id,
        "two producers got the same producer id"
    );

    let batches = dump_log(&topic, 0);
    assert_eq!(
        batches.len(),
        CALLS + 1,
        "one batch per call of one partition: {batches:#?}"
    );
    let mut next_offset = 0;
    let mut next_sequence = 0;
    let mut i = 0;
    for (b, batch) in batches.iter().enumerate() {
        let (id, what) = if b < CALLS {
            (first_id, "first producer")
        } else {
            (second_id, "second producer")
        };
        if b == CALLS {
            next_sequence = 0;
        }
        assert!(batch.crc_valid, "batch {b}: CRC not valid: {batch:?}");
        assert_eq!(batch.magic, 2, "batch {b}: magic");
        // `none` from Kafka 3 on, `NONE` before.
        assert!(
            batch.compression.eq_ignore_ascii_case("none"),
            "batch {b}: compression {}",
            batch.compression
        );
        assert_eq!(
            batch.producer_id, id,
            "batch {b}: producer id of the {what}"
        );
        assert_eq!(batch.base_offset, next_offset, "batch {b}: base offset");
        assert_eq!(batch.count, PER_CALL as i64, "batch {b}: count");
        assert_eq!(batch.last_offset, next_offset + PER_CALL as i64 - 1);
        assert_eq!(
            batch.base_sequence, next_sequence,
            "batch {b}: sequences of the {what} are not contiguous"
        );
        assert_eq!(batch.last_sequence, next_sequence + PER_CALL as i32 - 1);
        // A CreateTime batch header carries the largest timestamp of its records.
        assert_eq!(
            batch.create_time,
            base + (i + PER_CALL - 1) as i64,
            "batch {b}: max timestamp"
        );
        assert_eq!(batch.records.len(), PER_CALL, "batch {b}: records printed");
        for (r, rec) in batch.records.iter().enumerate() {
            let sent = record(i);
            assert_eq!(rec.offset, next_offset + r as i64, "record {i}: offset");
            assert_eq!(
                rec.sequence,
                next_sequence + r as i32,
                "record {i}: sequence"
            );
            assert_eq!(
                rec.key.as_deref(),
                Some(format!("k{i}").as_str()),
                "record {i}"
            );
            assert_eq!(rec.payload.as_bytes(), &sent.value[..], "record {i}: value");
            assert_eq!(rec.header_keys, "[row]", "record {i}: header keys");
            assert_eq!(rec.create_time, sent.timestamp_ms, "record {i}: timestamp");
            i += 1;
        }
        next_offset += PER_CALL as i64;
        next_sequence += PER_CALL as i32;
    }
    assert_eq!(i, (CALLS + 1) * PER_CALL);
}
