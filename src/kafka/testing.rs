//! For tests, examples and benchmarks, not the daemon's path: `send`, a slice of records sent in
//! one call, written on top of the producer's public path, the one the daemon takes
//! (`Producer::check_topic` once, then per send `batches`, each record pushed, `start` and
//! `finish`), so that what a test sends goes the way the daemon's rows go.

use super::producer::{Delivery, Producer, SendError};
use super::records::Record;

/// Sends `records` to `topic` as one send of the daemon's path and returns when every one is
/// acknowledged, with its partition and offset, in input order; on failure, `SendError` has one
/// entry per record (`delivered`) and, after a transient error, the batches to `resume`.
///
/// A topic this producer has not looked up yet is looked up first (`check_topic`, retrying
/// until the delivery deadline), as the daemon does at start-up; a failure there is the send's
/// error, with nothing sent. A record too large even alone in a batch ends the send
/// (`Batches::push` refuses it): the records before it are delivered, then the send fails
/// naming it (`Error::RecordTooLarge`); the records after it are not sent.
pub fn send(
    producer: &mut Producer,
    topic: &str,
    records: &[Record],
) -> Result<Vec<Delivery>, SendError> {
    let expected = records.iter().map(|r| r.size_alone() + 8).sum();
    // Fails only for a topic not looked up yet.
    let mut batches = match producer.batches(topic, expected) {
        Ok(batches) => batches,
        Err(_) => producer
            .check_topic(topic)
            .and_then(|_| producer.batches(topic, expected))
            .map_err(|error| SendError::unsent(error, records.len()))?,
    };
    for r in records {
        let value = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&r.value);
            Ok::<(), std::convert::Infallible>(())
        };
        let Ok(()) = batches.push_with_headers(r.key.as_deref(), r.timestamp_ms, &r.headers, value);
    }
    let pending = producer.start(batches);
    producer.finish(pending).map_err(|mut e| {
        // The send ends at a refused record: those after it were not pushed, nor delivered.
        e.delivered.resize(records.len(), None);
        e
    })
}
