//! The producer under faults: errors injected by librdkafka's mock cluster, brokers going down
//! mid-send, and a connection dropped after the broker wrote a batch. Every record must be
//! delivered exactly once (idempotence), or the call must fail saying what was not acknowledged.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::env::unique;
use common::kafka::{batches_of, consume_all, create_topic, now_ms, push_until_held, Consumed};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use repliqate::kafka::testing::send;
use repliqate::kafka::{Producer, ProducerConfig, Record};

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: Some(Bytes::from(i.to_string())),
            value: Bytes::from(format!("value-{i}-{}", "v".repeat(100))),
            headers: vec![],
            timestamp_ms: now_ms(),
        })
        .collect()
}

fn producer(bootstrap: &str, delivery_timeout: Duration) -> Producer {
    let _ = env_logger::builder().is_test(true).try_init();
    Producer::new(ProducerConfig {
        bootstrap: bootstrap.split(',').map(str::to_string).collect(),
        delivery_timeout,
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        max_request_size: 64 * 1024,
        ..ProducerConfig::default()
    })
}

/// Per key, how often it was read; panics on loss, and on keys whose first occurrences are out
/// of input order within a partition.
fn assert_none_lost_in_order(consumed: &[Consumed], n: usize) -> HashMap<usize, usize> {
    let mut count: HashMap<usize, usize> = HashMap::new();
    let mut last: HashMap<i32, usize> = HashMap::new();
    for m in consumed {
        let i: usize = String::from_utf8_lossy(m.key.as_deref().unwrap())
            .parse()
            .unwrap();
        let seen = count.entry(i).or_default();
        *seen += 1;
        if *seen == 1 {
            if let Some(&prev) = last.get(&m.partition) {
                assert!(
                    prev < i,
                    "partition {}: key {i} first seen after key {prev}",
                    m.partition
                );
            }
            last.insert(m.partition, i);
        }
    }
    let missing: Vec<usize> = (0..n).filter(|i| !count.contains_key(i)).take(10).collect();
    assert!(missing.is_empty(), "missing keys (first 10): {missing:?}");
    count
}

/// Every key in 0..n exactly once, in any order.
fn assert_each_key_once(consumed: &[Consumed], n: usize) {
    let mut count: HashMap<usize, usize> = HashMap::new();
    for m in consumed {
        let i: usize = String::from_utf8_lossy(m.key.as_deref().unwrap())
            .parse()
            .unwrap();
        *count.entry(i).or_default() += 1;
    }
    let missing: Vec<usize> = (0..n).filter(|i| !count.contains_key(i)).take(10).collect();
    let duplicated: Vec<usize> = count
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&i, _)| i)
        .take(10)
        .collect();
    assert!(missing.is_empty(), "missing keys (first 10): {missing:?}");
    assert!(
        duplicated.is_empty(),
        "duplicated keys (first 10): {duplicated:?}"
    );
    assert_eq!(consumed.len(), n);
}

/// Every key in 0..n exactly once, in increasing order within each partition.
fn assert_exactly_once(consumed: &[Consumed], n: usize) {
    let count = assert_none_lost_in_order(consumed, n);
    let duplicated: Vec<usize> = count
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&i, _)| i)
        .take(10)
        .collect();
    assert!(
        duplicated.is_empty(),
        "duplicated keys (first 10): {duplicated:?}"
    );
    assert_eq!(consumed.len(), n);
}

#[test]
fn injected_leader_and_timeout_errors_are_retried_and_delivered_exactly_once() {
    let mock = MockCluster::new(3).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    let topic = unique("inject");
    mock.create_topic(&topic, 3, 1).unwrap();
    let mut p = producer(&bootstrap, Duration::from_secs(30));
    p.check_topic(&topic).unwrap();

    let batch = records(20_000);
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let deliveries = send(&mut p, &topic, &batch).unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(deliveries.len(), batch.len());
    assert!(p.is_idempotent());
    let consumed = consume_all(
        &bootstrap,
        &topic,
        3,
        batch.len() + 1,
        Duration::from_secs(20),
    );
    // Order is not asserted here: the mock accepts a pipelined later batch of a partition
    // whose earlier batch got an injected error (it checks sequence numbers only for
    // transactional producers), where a real broker answers OUT_OF_ORDER_SEQUENCE and we resend
    // both in order. Order across retries is checked against Apache Kafka in the proxy tests.
    assert_each_key_once(&consumed, batch.len());
}

/// librdkafka's mock cluster only checks producer sequence numbers for transactional producers
/// (`rd_kafka_mock_validate_records` returns early without a TransactionalId), so a batch we
/// resend after the outage may be written twice there: this test checks that nothing is lost and
/// order is kept. Exactly-once across an outage is checked against Apache Kafka, which enforces
/// sequences, in `an_outage_mid_send_through_a_proxy_is_delivered_exactly_once`.
#[test]
fn brokers_down_mid_send_then_up_loses_nothing() {
    let mock = MockCluster::new(3).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    let topic = unique("down");
    mock.create_topic(&topic, 3, 1).unwrap();
    // Slow every round trip a little so that the outage lands mid-send.
    for b in 1..=3 {
        mock.broker_round_trip_time(b, Duration::from_millis(20))
            .unwrap();
    }
    let batch = records(30_000);
    let n = batch.len();
    let b2 = bootstrap.clone();
    let t2 = topic.clone();
    let sender = std::thread::spawn(move || {
        let mut p = producer(&b2, Duration::from_secs(60));
        send(&mut p, &t2, &batch)
            .map(|d| d.len())
            .map_err(|e| e.to_string())
    });
    std::thread::sleep(Duration::from_millis(300));
    mock.broker_down(-1).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    mock.broker_up(-1).unwrap();
    let sent = sender
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("send failed although brokers came back: {e}"));
    assert_eq!(sent, n);
    let consumed = consume_all(&bootstrap, &topic, 3, 2 * n, Duration::from_secs(15));
    let count = assert_none_lost_in_order(&consumed, n);
    let duplicates: usize = count.values().map(|c| c - 1).sum();
    eprintln!(
        "mock outage: {n} records, {duplicates} duplicates written by the (non-deduplicating) mock"
    );
}

#[test]
fn an_outage_mid_send_through_a_proxy_is_delivered_exactly_once() {
    let (broker, proxy) = common::proxy::private_broker();
    let topic = unique("outage-proxy");
    create_topic(&broker.listen, &topic, 3);
    let batch = records(60_000);
    let n = batch.len();
    let (addr, t2) = (proxy.addr.clone(), topic.clone());
    let sender = std::thread::spawn(move || {
        let mut p = producer(&addr, Duration::from_secs(60));
        send(&mut p, &t2, &batch)
            .map(|d| d.len())
            .map_err(|e| e.to_string())
    });
    // Cut every connection once Produce requests are flowing, for 1.5 s.
    proxy.wait_for_produce_requests(5);
    proxy.set_down(true);
    std::thread::sleep(Duration::from_millis(1500));
    proxy.set_down(false);
    let sent = sender
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("send failed although the broker came back: {e}"));
    assert_eq!(sent, n);
    let consumed = consume_all(&proxy.addr, &topic, 3, n + 1, Duration::from_secs(30));
    assert_exactly_once(&consumed, n);
}

#[test]
fn an_outage_longer_than_the_delivery_timeout_resumed_is_delivered_exactly_once() {
    // Connections cut with requests in flight (written by the broker, answers lost), for
    // longer than the delivery timeout: the send fails. Sending its unsettled batches again,
    // as they were, lets the broker recognise the ones it wrote; sending the unacknowledged
    // records anew would write them twice.
    let (broker, proxy) = common::proxy::private_broker();
    let topic = unique("resume");
    create_topic(&broker.listen, &topic, 3);
    let batch = records(60_000);
    let n = batch.len();
    let (addr, t2) = (proxy.addr.clone(), topic.clone());
    let sender = std::thread::spawn(move || {
        let mut p = producer(&addr, Duration::from_secs(2));
        p.check_topic(&t2).unwrap();
        let result = send(&mut p, &t2, &batch);
        (p, result)
    });
    proxy.wait_for_produce_requests(5);
    proxy.set_down(true);
    let (mut p, result) = sender.join().unwrap();
    let mut err = result.expect_err("the broker is away for longer than the delivery timeout");
    proxy.set_down(false);
    assert!(err.to_string().contains("delivery timeout"), "{err}");
    let unacknowledged = err.unacknowledged();
    assert!(unacknowledged > 0 && unacknowledged < n, "{err}");
    let unsettled = err
        .take_unsettled()
        .expect("a transient failure leaves its batches to send again");
    let deliveries = p
        .resume(unsettled)
        .unwrap_or_else(|e| panic!("resume after the outage: {e}"));
    assert_eq!(deliveries.len(), n);
    // Up to 2n, so that copies cannot hide records behind the count.
    let consumed = consume_all(&proxy.addr, &topic, 3, 2 * n, Duration::from_secs(20));
    assert_exactly_once(&consumed, n);
    eprintln!("resumed: {unacknowledged} of {n} records were unacknowledged after the outage");
}

#[test]
fn a_long_outage_is_an_error_that_says_what_was_not_acknowledged_never_silence() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    let topic = unique("outage");
    mock.create_topic(&topic, 2, 1).unwrap();
    let mut p = producer(&bootstrap, Duration::from_secs(2));
    p.check_topic(&topic).unwrap();
    mock.broker_down(-1).unwrap();
    let batch = records(1_000);
    let err = send(&mut p, &topic, &batch)
        .expect_err("the broker is down for longer than the delivery timeout");
    assert!(err.to_string().contains("delivery timeout"), "{err}");
    let acknowledged: Vec<usize> = (0..batch.len())
        .filter(|&i| err.delivered[i].is_some())
        .collect();
    assert!(err.unacknowledged() > 0);
    mock.broker_up(-1).unwrap();
    // Whatever was reported acknowledged really is in the topic.
    let consumed = consume_all(&bootstrap, &topic, 2, batch.len(), Duration::from_secs(5));
    let present: std::collections::HashSet<usize> = consumed
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m.key.as_deref().unwrap())
                .parse()
                .unwrap()
        })
        .collect();
    for i in acknowledged {
        assert!(
            present.contains(&i),
            "key {i} reported acknowledged but not in the topic"
        );
    }
    // And the producer recovers for the next call.
    let again = records(100);
    send(&mut p, &topic, &again).unwrap_or_else(|e| panic!("send after recovery: {e}"));
}

#[test]
fn a_connection_dropped_after_the_broker_wrote_the_batch_does_not_duplicate_it() {
    // Our own broker, advertised behind a frame-aware proxy that swallows Produce responses.
    let (broker, proxy) = common::proxy::private_broker();
    let topic = unique("dropped");
    create_topic(&broker.listen, &topic, 3);

    let mut p = producer(&proxy.addr, Duration::from_secs(30));
    p.check_topic(&topic).unwrap();
    let batch = records(5_000);
    // Swallow the response to the 1st and the 4th Produce request of the send.
    proxy.drop_produce_responses.store(1, Ordering::SeqCst);
    let first = send(&mut p, &topic, &batch[..2_500]).unwrap_or_else(|e| panic!("send: {e}"));
    proxy.drop_produce_responses.store(1, Ordering::SeqCst);
    let second = send(&mut p, &topic, &batch[2_500..]).unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(first.len() + second.len(), batch.len());
    assert!(proxy.produce_requests.load(Ordering::SeqCst) >= 2);
    let consumed = consume_all(
        &proxy.addr,
        &topic,
        3,
        batch.len() + 1,
        Duration::from_secs(20),
    );
    assert_exactly_once(&consumed, batch.len());
}

#[test]
fn a_send_writes_up_to_five_requests_per_partition_before_any_answer() {
    // A send of about 8 requests per partition (64 KiB each) over 3 partitions, behind a proxy
    // that holds the broker's answers until the client stops writing: what the client wrote
    // without an answer is its pipeline. The broker's deduplication bounds it per partition
    // (its last five batches), not per connection; five per connection left the broker idle
    // while the loop read the next batch.
    let (broker, proxy) = common::proxy::private_broker();
    let topic = unique("pipelined");
    create_topic(&broker.listen, &topic, 3);
    let mut p = producer(&proxy.addr, Duration::from_secs(30));
    p.check_topic(&topic).unwrap();
    let batch = records(12_000);
    proxy.hold_produce_responses.store(true, Ordering::SeqCst);
    let delivered = send(&mut p, &topic, &batch).unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(delivered.len(), batch.len());
    let requests = proxy.produce_requests.load(Ordering::SeqCst);
    assert!(
        requests >= 18,
        "{requests} Produce requests: expected 6 or more per partition"
    );
    assert_eq!(
        proxy.most_held.load(Ordering::SeqCst),
        15,
        "requests written before the first answer: five per partition"
    );
    let consumed = consume_all(
        &proxy.addr,
        &topic,
        3,
        batch.len() + 1,
        Duration::from_secs(20),
    );
    assert_exactly_once(&consumed, batch.len());
}

#[test]
fn start_returns_while_the_broker_reads_nothing_and_the_rest_goes_out_later() {
    // A send of ~15 MB: five 1 MiB requests per partition over 3 partitions, more than the
    // sockets hold. `start` must hand over what they take and return (the loop reads the next
    // batch meanwhile), not wait for the broker to read the rest; `push` must not wait either.
    // Behind a proxy that reads nothing for a while (a broker slow to read), a `start` that
    // waited would wait as long; then the rest goes out on the same connection, once.
    let (broker, proxy) = common::proxy::private_broker();
    let topic = unique("unsent");
    create_topic(&broker.listen, &topic, 3);
    let mut p = Producer::new(ProducerConfig {
        bootstrap: vec![proxy.addr.clone()],
        delivery_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        ..ProducerConfig::default()
    });
    p.check_topic(&topic).unwrap();
    // Producer id and the leader's connection first, while the proxy forwards.
    let warm = records(10);
    send(&mut p, &topic, &warm).unwrap_or_else(|e| panic!("first send: {e}"));

    let value = "x".repeat(1000);
    let n = 15_000;
    let mut batches = p.batches(&topic, n * 1100).unwrap();
    for i in 0..n {
        let key = (warm.len() + i).to_string();
        batches
            .push(Some(key.as_bytes()), now_ms(), |buf| {
                buf.extend_from_slice(value.as_bytes());
                Ok::<(), ()>(())
            })
            .unwrap();
    }
    proxy.set_paused(true);
    let (mut pending, took) = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(5));
            proxy.set_paused(false);
        });
        let started = Instant::now();
        let mut pending = p.start(batches);
        for _ in 0..10 {
            p.push(&mut pending);
        }
        (pending, started.elapsed())
    });
    assert!(
        took < Duration::from_secs(3),
        "start and push waited {took:?} for a broker that read nothing for 5 s"
    );
    p.push(&mut pending);
    let delivered = p.finish(pending).unwrap_or_else(|e| panic!("finish: {e}"));
    assert_eq!(delivered.len(), n);
    let total = warm.len() + n;
    let consumed = consume_all(&proxy.addr, &topic, 3, total + 1, Duration::from_secs(20));
    assert_exactly_once(&consumed, total);
}

#[test]
fn push_never_waits_for_a_distant_broker_yet_writes_held_back_requests_as_answers_come() {
    // A broker 300 ms away, and a send of ~16 batches per partition (16 KiB requests), more
    // than the five per partition that may be in flight. Every `push` (called between rows)
    // must return at once while answers are on their way, and the requests held back must go
    // out as the answers come, not only at `finish`.
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    let topic = unique("distant");
    mock.create_topic(&topic, 3, 1).unwrap();
    let mut p = Producer::new(ProducerConfig {
        bootstrap: vec![bootstrap.clone()],
        delivery_timeout: Duration::from_secs(60),
        max_request_size: 16 * 1024,
        ..ProducerConfig::default()
    });
    p.check_topic(&topic).unwrap();
    // Producer id and the leader's connection first.
    let warm = records(10);
    send(&mut p, &topic, &warm).unwrap_or_else(|e| panic!("first send: {e}"));
    mock.broker_round_trip_time(-1, Duration::from_millis(300))
        .unwrap();

    let batch: Vec<Record> = records(warm.len() + 6_000).split_off(warm.len());
    let batches = batches_of(&p, &topic, &batch);
    let total = (warm.len() + batch.len()) as i64;
    let mut pending = p.start(batches);
    let slowest = push_until_held(
        &mut p,
        &mut pending,
        (&bootstrap, &topic, 3),
        total,
        Duration::from_secs(40),
    );
    assert!(
        slowest < Duration::from_millis(150),
        "a push waited {slowest:?} for a broker 300 ms away"
    );
    let deliveries = p.finish(pending).unwrap_or_else(|e| panic!("finish: {e}"));
    assert_eq!(deliveries.len(), batch.len());
    let consumed = consume_all(
        &bootstrap,
        &topic,
        3,
        total as usize + 1,
        Duration::from_secs(10),
    );
    // The mock does not enforce sequences (see below): each key once, order not asserted.
    assert_each_key_once(&consumed, total as usize);
}

#[test]
fn split_and_new_producer_id_re_encode_from_the_batches_after_start_dropped_the_records() {
    // start() keeps only the encoded batches; a split (MESSAGE_TOO_LARGE) and a new producer id
    // (UNKNOWN_PRODUCER_ID) must rebuild batches from those encodings.
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    let topic = unique("reencode");
    mock.create_topic(&topic, 2, 1).unwrap();
    let mut p = producer(&bootstrap, Duration::from_secs(30));
    p.check_topic(&topic).unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        ],
    );
    let batch = records(3_000);
    let n = batch.len();
    let pending = p.start(batches_of(&p, &topic, &batch));
    let deliveries = p.finish(pending).unwrap_or_else(|e| panic!("finish: {e}"));
    assert_eq!(deliveries.len(), n);
    let consumed = consume_all(&bootstrap, &topic, 2, n + 1, Duration::from_secs(10));
    // The mock does not enforce sequences (see above): each key once, order not asserted.
    assert_each_key_once(&consumed, n);
    let values_ok = consumed.iter().all(|m| {
        m.value
            == format!(
                "value-{}-{}",
                String::from_utf8_lossy(m.key.as_deref().unwrap()),
                "v".repeat(100)
            )
            .into_bytes()
    });
    assert!(values_ok, "a re-encoded record lost or changed its value");
}

#[test]
fn a_broker_refusing_a_producer_id_gets_a_non_idempotent_producer_that_still_delivers() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let bootstrap = mock.bootstrap_servers();
    let topic = unique("no-idempotence");
    mock.create_topic(&topic, 2, 1).unwrap();
    mock.request_errors(
        RDKafkaApiKey::InitProducerId,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED],
    );
    let mut p = producer(&bootstrap, Duration::from_secs(30));
    let batch = records(1_000);
    send(&mut p, &topic, &batch).unwrap_or_else(|e| panic!("send: {e}"));
    assert!(
        !p.is_idempotent(),
        "the broker refused a producer id: fall back"
    );
    let consumed = consume_all(
        &bootstrap,
        &topic,
        2,
        batch.len() + 1,
        Duration::from_secs(10),
    );
    // Without idempotence one request per partition is in flight: order is kept, also on the
    // mock.
    assert_exactly_once(&consumed, batch.len());
}
