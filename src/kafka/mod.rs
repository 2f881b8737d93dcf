//! A small synchronous Kafka producer built on the `kafka-protocol` codec and `std::net`.
//!
//! Layers, each using only the one below it: `kafka_protocol` (codec: bytes ↔ messages) →
//! `conn` (one TCP connection: framing, correlation ids, version negotiation) → `producer`
//! (metadata, partitioning, batching, pipelining, retries, idempotence). `partitioner` is the
//! Java-compatible murmur2; `records` writes uncompressed record batches without the codec, and
//! `produce` writes Produce requests around the batches, which `conn` sends without copying. Nothing here knows about rows, SQL or positions.

mod conn;
mod error;
mod partitioner;
mod produce;
mod producer;
mod records;

pub use error::Error;
pub use partitioner::{murmur2, partition_for_key};
pub use producer::{
    Acks, Compression, Delivery, Pending, Producer, ProducerConfig, Record, SendError, Unsettled,
};
