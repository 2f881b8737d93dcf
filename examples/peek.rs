//! Prints the first messages of a topic as an independent client (librdkafka) reads them: used by
//! `make demo` to show what repliqate published.
//!
//! Usage: cargo run --example peek -- BROKER TOPIC [COUNT]

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(broker), Some(topic)) = (args.first(), args.get(1)) else {
        eprintln!("usage: peek BROKER TOPIC [COUNT]");
        std::process::exit(2);
    };
    let count: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(3);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "repliqate-peek")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap_or_else(|e| {
            eprintln!("peek: creating a consumer for {broker}: {e}");
            std::process::exit(1)
        });
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| {
            eprintln!("peek: metadata for {topic}: {e}");
            std::process::exit(1)
        });
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len()) as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut shown = 0;
    while shown < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let key = m.key().map(String::from_utf8_lossy).unwrap_or_default();
                let value = m.payload().map(String::from_utf8_lossy).unwrap_or_default();
                println!(
                    "partition {} offset {} key {key}\n  {value}",
                    m.partition(),
                    m.offset()
                );
                shown += 1;
            }
            Some(Err(e)) => {
                eprintln!("peek: {e}");
                std::process::exit(1);
            }
            None => {}
        }
    }
}
