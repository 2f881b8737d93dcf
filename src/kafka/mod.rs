//! A small synchronous Kafka producer built on the `kafka-protocol` codec and `std::net`.
//!
//! Layers, each using only the ones listed before it:
//! - `kafka_protocol` — the codec: bytes ↔ request and response messages, and compressors;
//! - `wire` — varints and length-prefixed bytes, for what we write without the codec;
//! - `records` — our `Record`, and record batches written, re-stamped, split and compressed
//!   from our own encoding; `partitioner` — the Java-compatible murmur2;
//! - `produce` — a Produce request's body, written around the record batches;
//! - `conn` — one TCP connection: framing, correlation ids, version negotiation; it sends a
//!   Produce body and its batches in one vectored write, without copying them;
//! - `producer` — the cluster (metadata, connections), batching and sequencing, rounds of
//!   pipelined requests, retries and idempotence.
//!
//! `error` is the one error type of them all. Nothing here knows about rows, SQL or positions.
//! `testing` is for tests, examples and benchmarks, not the daemon's path.

mod conn;
mod error;
mod partitioner;
mod produce;
mod producer;
mod records;
mod sasl;
pub mod testing;
mod transport;
mod wire;

pub use error::Error;
pub use partitioner::{murmur2, partition_for_key};
pub use producer::{
    Acks, Batches, BrokerInfo, BrokerReport, Delivery, Pending, Producer, ProducerConfig,
    SendError, Unsettled,
};
pub use records::{Compression, Record};
pub use sasl::{Sasl, ScramHash, TokenSource};
pub use transport::Security;
