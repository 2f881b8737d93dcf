//! The synchronous producer: the send and its retries, on top of rooms of its own:
//! - `config` — `ProducerConfig` and the defaults of every producer setting;
//! - `cluster` — brokers, topic leaders and connections (Metadata, ListOffsets, InitProducerId);
//! - `writer` — `Batches`: a send's records written into their partitions' record batches;
//! - `batches` — sealing those, sequence numbers, re-stamping and splitting;
//! - `round` — one round of Produce requests and the retry decision per partition;
//! - `results` — what a send returns.
//!
//! `Producer::batches` gives an empty send, whose records the caller writes straight into their
//! record batches; `start` writes its requests and returns, so that the caller works while the
//! broker does; `finish` returns only when every record is acknowledged, or with an error that
//! says which records were not. Retries happen inside, until the delivery deadline. A slice of
//! records sent in one call, for tests, is `kafka::testing::send`, on top of these.

mod batches;
mod cluster;
mod config;
mod results;
mod round;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use batches::{Batcher, Idempotence, Outgoing};
use cluster::{Cluster, ProducerIdAnswer};
use round::{Round, RoundOutcome, RoundSettings};

pub use batches::{Delivery, Unsettled};
pub use cluster::{BrokerInfo, BrokerReport};
pub use config::{Acks, ProducerConfig};
pub use results::SendError;
pub use writer::Batches;

use super::error::Error;
use crate::backoff::{sleep_until, Backoff};

/// How many times an unknown topic is looked up again before we say it does not exist (a topic
/// created a moment ago may not have reached every broker's metadata yet).
const UNKNOWN_TOPIC_ATTEMPTS: u32 = 3;
/// Kafka keeps the last five batches per producer and partition for deduplication, so an
/// idempotent producer may have at most five requests in flight per partition.
const MAX_IN_FLIGHT_IDEMPOTENT: usize = 5;

/// A synchronous Kafka producer. Not thread-safe by design: repliqate's loop owns it.
pub struct Producer {
    config: ProducerConfig,
    cluster: Cluster,
    batcher: Batcher,
    /// Set by the caller to stop retrying (shutdown).
    cancel: Arc<AtomicBool>,
    backoff: Backoff,
    /// A failed send's `Unsettled` is out with the caller: sending anything else first means
    /// it was given up, and its batches' sequence numbers with it.
    unsettled_out: bool,
}

/// A send whose requests are written but whose acknowledgements are not read yet (see
/// `Producer::start`).
pub struct Pending {
    out: Outgoing,
    /// The batches, until they are sealed (stamped, compressed).
    unsealed: Option<Batches>,
    started: Instant,
    /// The first round, when `start` could begin it, or why sealing failed.
    round: Option<Result<Round, Error>>,
    /// Calls of `tick` since the last `push`.
    ticks: usize,
}

/// `tick` pushes once per this many calls: a few system calls per so many rows while requests
/// are left, which keeps the broker busy without slowing the caller's loop.
const PUSH_EVERY_TICKS: usize = 128;

impl Producer {
    /// Creates a producer. Nothing is dialled until the first call that needs a broker.
    pub fn new(config: ProducerConfig) -> Producer {
        let idempotence = if !config.idempotent {
            Idempotence::Off
        } else if config.acks != Acks::All {
            log::warn!("kafka: idempotence needs acks=all; producing without idempotence");
            Idempotence::Off
        } else {
            Idempotence::NeedsId
        };
        Producer {
            cluster: Cluster::new(config.bootstrap.clone(), config.conn_options()),
            batcher: Batcher::new(idempotence, config.compression),
            cancel: Arc::new(AtomicBool::new(false)),
            backoff: Backoff::new(config.retry_backoff, config.retry_backoff_max),
            unsettled_out: false,
            config,
        }
    }

    /// A flag that, once set, makes a send stop retrying and return `Error::Cancelled` for
    /// whatever is not yet acknowledged (used for shutdown).
    pub fn with_cancel_flag(mut self, cancel: Arc<AtomicBool>) -> Producer {
        self.cancel = cancel;
        self
    }

    /// Whether batches carry producer ids and sequence numbers (false after falling back).
    pub fn is_idempotent(&self) -> bool {
        !matches!(self.batcher.idempotence, Idempotence::Off)
    }

    /// The producer id the broker gave us (`InitProducerId`), once there is one: logged, and
    /// checked by tests against the batches the broker stored.
    pub fn producer_id(&self) -> Option<i64> {
        match self.batcher.idempotence {
            Idempotence::On { producer_id, .. } => Some(producer_id),
            _ => None,
        }
    }

    /// Looks the topic up (retrying transient failures until the delivery deadline) and returns
    /// its partition count. Used at start-up so that a missing topic is reported at once.
    pub fn check_topic(&mut self, topic: &str) -> Result<usize, Error> {
        let mut retries = Retries::new(topic, Instant::now());
        loop {
            match self.cluster.refresh_metadata(topic) {
                Ok(n) => return Ok(n),
                Err(e) => {
                    let e = retries.judge(e, &self.config)?;
                    log::debug!("kafka: looking up topic {topic}: {e}; retrying");
                }
            }
            self.wait(&mut retries)?;
        }
    }

    /// Whether any partition of `topic` holds records (latest offset above earliest), asked of
    /// each partition's leader with ListOffsets. Used at start-up to tell a new job (empty
    /// topic) from one whose stored position was lost.
    pub fn topic_has_records(&mut self, topic: &str) -> Result<bool, Error> {
        self.check_topic(topic)?;
        self.cluster.has_records(topic)
    }

    /// Every broker of the latest Metadata (`check_topic` looks it up), each connected to, with
    /// its security handshake and API versions: for `repliqate check`. Empty before any Metadata.
    pub fn brokers(&mut self) -> Vec<BrokerReport> {
        self.cluster.describe_brokers()
    }

    /// An empty send to `topic`, whose records the caller writes straight into their record
    /// batches (`Batches::push`) and then sends with `start` and `finish`. The topic must have
    /// been looked up (`check_topic`, or an earlier send): its partition count decides where
    /// keyed records go. `expected`: about how many bytes the records take, to size buffers.
    /// Talks to no broker, so it may come between `start` and `finish`.
    pub fn batches(&self, topic: &str, expected: usize) -> Result<Batches, Error> {
        let partitions = self.cluster.partition_count(topic).ok_or_else(|| {
            Error::protocol(
                "(local)",
                format!("topic {topic} was not looked up before records were written for it"),
            )
        })?;
        Ok(self
            .batcher
            .batches(topic, partitions, self.limits(topic), expected))
    }

    /// (batch budget, request limit) for sends to `topic`.
    fn limits(&self, topic: &str) -> (usize, usize) {
        (
            self.config.batch_budget(topic),
            self.config.max_request_size,
        )
    }

    /// Sends a failed send's unacknowledged batches again, as they were, and returns like
    /// `finish` for all of that send's records (those acknowledged before included). The delivery
    /// deadline starts afresh. Must come before any other send on this producer.
    pub fn resume(&mut self, unsettled: Unsettled) -> Result<Vec<Delivery>, SendError> {
        self.unsettled_out = false;
        let Unsettled(mut out) = unsettled;
        // Leaders have likely moved during whatever failed the send.
        self.cluster.forget(&out.topic);
        let result = self.retry(&mut out, &mut None, None, Instant::now());
        self.conclude(out, result)
    }

    /// A new send while an `Unsettled` is out: its batches are given up, so the broker's
    /// sequence numbers may be ahead of or behind ours; a new producer id starts afresh.
    fn give_up_unsettled(&mut self) {
        if std::mem::take(&mut self.unsettled_out) && self.batcher.idempotence.is_on() {
            self.batcher.idempotence = Idempotence::NeedsId;
        }
    }

    /// The first half of a send that lets the caller work while the broker does: seals the
    /// batches and writes the produce requests (as many as the in-flight limits allow; what the
    /// sockets do not take at once goes out with `push` or `finish`), and returns without
    /// waiting for the sockets or the acknowledgements. `finish` must be called next, before any
    /// other call on this producer but `batches` (and `push` or `tick`).
    pub fn start(&mut self, batches: Batches) -> Pending {
        self.give_up_unsettled();
        let mut pending = Pending {
            out: Outgoing::new(&batches.topic, batches.len()),
            unsealed: Some(batches),
            started: Instant::now(),
            round: None,
            // The first tick pushes.
            ticks: PUSH_EVERY_TICKS - 1,
        };
        // Anything unusual (no producer id or metadata yet, shutdown) is left to `finish`,
        // which takes the ordinary path with its retries.
        let ready = pending.unsealed.as_ref().is_some_and(|b| b.bytes() > 0)
            && self.check_cancelled().is_ok()
            && self.ensure_producer_id().is_ok()
            && (self.cluster.leaders(&pending.out.topic).is_some()
                || self.cluster.refresh_metadata(&pending.out.topic).is_ok());
        if ready {
            let mut unplanned = pending.unsealed.take();
            pending.round = Some(self.plan(&mut pending.out, &mut unplanned).map(|()| {
                let settings = self.round_settings(&pending.out.topic);
                let mut round = Round::begin(&mut self.cluster, &pending.out, settings);
                round.write(&mut self.cluster, &mut pending.out);
                round
            }));
        }
        pending
    }

    /// Between `start` and `finish`, once per small unit of the caller's work (the daemon: once
    /// per row it reads): every so many calls (`PUSH_EVERY_TICKS`), a `push`. How often the
    /// sockets are looked at is the producer's to decide, not the caller's.
    pub fn tick(&mut self, pending: &mut Pending) {
        pending.ticks += 1;
        if pending.ticks >= PUSH_EVERY_TICKS {
            pending.ticks = 0;
            self.push(pending);
        }
    }

    /// Between `start` and `finish`: hands the sockets more of the send's requests, without
    /// waiting. `start` writes what the sockets take at once, and a send may be larger than
    /// that; the caller calls this now and then while it works (or `tick`, more often), so
    /// that the broker reads the rest as it is ready for it, not only once `finish` is called. A send of more batches
    /// per partition than may be in flight also has requests held back until answers make
    /// room: the answers that have arrived are read here, and those requests written (the
    /// first request written after every answer came may re-authenticate first, SASL's
    /// KIP-368, a few round trips once per session). Cheap when everything is written.
    pub fn push(&mut self, pending: &mut Pending) {
        if let Some(Ok(round)) = pending.round.as_mut() {
            round.push_unsent(&mut self.cluster, &mut pending.out);
        }
    }

    /// The second half of `start`: reads the acknowledgements, retries what failed, and returns
    /// when every record is acknowledged, with its partition and offset, in input order (order
    /// within a partition is preserved, also across retries); or with an error that says which
    /// records were not. A record the batches refused (too large) ends the send: the records
    /// before it are delivered, then the send fails naming it.
    pub fn finish(&mut self, pending: Pending) -> Result<Vec<Delivery>, SendError> {
        let Pending {
            mut out,
            unsealed,
            started,
            round,
            ..
        } = pending;
        let mut unplanned = unsealed;
        let first = match round {
            None => None,
            Some(Err(e)) => Some(Err(e)),
            Some(Ok(mut round)) => {
                round.complete(&mut self.cluster, &mut out);
                Some(self.outcome_result(round.end(&self.batcher, &mut out), &out))
            }
        };
        let result = self.retry(&mut out, &mut unplanned, first, started);
        self.conclude(out, result)
    }

    /// The result of a send, and on failure what it leaves behind: its batches, for `resume`,
    /// when the error is transient; otherwise a new producer id for the next send.
    fn conclude(
        &mut self,
        out: Outgoing,
        result: Result<(), Error>,
    ) -> Result<Vec<Delivery>, SendError> {
        let mut out = out;
        let error = match result {
            Ok(()) if out.refused.is_some() => out.refused.take().expect("checked"),
            Ok(()) => match out.delivered.iter().copied().collect::<Option<Vec<_>>>() {
                Some(all) => return Ok(all),
                // Never reached while every record is in a batch: a record in none was never
                // sent, and must not pass for delivered.
                None => Error::protocol("(local)", "a send ended with records in no batch"),
            },
            Err(error) => error,
        };
        let unacknowledged = out.unacknowledged();
        let delivered = out.delivered.clone();
        // A transient failure: the caller may send the same batches again, if they hold every
        // record not acknowledged (not so when a record after them could never be sent).
        let unsettled = (unacknowledged
            && error.is_retriable()
            && !matches!(error, Error::Cancelled)
            && out.pending_hold_every_unacknowledged())
        .then(|| Box::new(Unsettled(out)));
        if unsettled.is_some() {
            self.unsettled_out = true;
        } else if unacknowledged && self.batcher.idempotence.is_on() {
            // Batches of unknown fate leave the broker's sequence numbers out of step with
            // ours; a new producer id starts every partition afresh.
            self.batcher.idempotence = Idempotence::NeedsId;
        }
        Err(SendError {
            error,
            delivered,
            unsettled,
        })
    }

    /// Attempts until every record is acknowledged, a non-retriable error, or the deadline.
    /// `first` is the outcome of an attempt already made (by `start`/`finish`), if any.
    fn retry(
        &mut self,
        out: &mut Outgoing,
        unplanned: &mut Option<Batches>,
        mut first: Option<Result<(), Error>>,
        started: Instant,
    ) -> Result<(), Error> {
        // Nothing to send (no records, or the first refused): no broker need be asked.
        if first.is_none() && unplanned.as_ref().is_some_and(|b| b.bytes() == 0) {
            self.plan(out, unplanned)?;
        }
        if first.is_none() && unplanned.is_none() && out.batches.iter().all(|b| b.done) {
            return Ok(());
        }
        let mut retries = Retries::new(&out.topic, started);
        loop {
            let result = match first.take() {
                Some(result) => result,
                None => self.attempt(out, unplanned),
            };
            let e = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if e.needs_metadata_refresh() {
                self.cluster.forget(&out.topic);
            }
            let e = retries.judge(e, &self.config)?;
            if matches!(e, Error::UnknownTopic { .. }) || retries.warned {
                log::debug!("kafka: topic {}: {e}; retrying", out.topic);
            } else {
                log::warn!(
                    "kafka: topic {}: {e}; retrying for up to {:.0}s",
                    out.topic,
                    self.config.delivery_timeout.as_secs_f64()
                );
                retries.warned = true;
            }
            self.wait(&mut retries)?;
        }
    }

    /// One attempt: make sure we have a producer id and metadata, seal the batches on first
    /// use, then send every pending batch once.
    fn attempt(
        &mut self,
        out: &mut Outgoing,
        unplanned: &mut Option<Batches>,
    ) -> Result<(), Error> {
        self.check_cancelled()?;
        self.ensure_producer_id()?;
        if self.cluster.leaders(&out.topic).is_none() {
            self.cluster.refresh_metadata(&out.topic)?;
        }
        self.plan(out, unplanned)?;
        self.batcher.restamp(&out.topic, &mut out.batches)?;
        let settings = self.round_settings(&out.topic);
        let mut round = Round::begin(&mut self.cluster, out, settings);
        round.complete(&mut self.cluster, out);
        let outcome = round.end(&self.batcher, out);
        self.outcome_result(outcome, out)
    }

    /// Seals the batches not sealed yet (`unplanned`) into `out`'s. Nothing to do once sealed.
    fn plan(&mut self, out: &mut Outgoing, unplanned: &mut Option<Batches>) -> Result<(), Error> {
        let Some(batches) = unplanned.take() else {
            return Ok(());
        };
        let (sealed, refused) = self.batcher.seal(batches)?;
        out.batches = sealed;
        out.refused = refused;
        Ok(())
    }

    fn round_settings(&self, topic: &str) -> RoundSettings {
        RoundSettings {
            max_in_flight: if self.batcher.idempotence.is_on() {
                MAX_IN_FLIGHT_IDEMPOTENT
            } else {
                1
            },
            acks: self.config.acks.code(),
            timeout_ms: self.config.request_timeout_ms(),
            budget: self.config.batch_budget(topic),
        }
    }

    fn outcome_result(&mut self, outcome: RoundOutcome, out: &Outgoing) -> Result<(), Error> {
        // KIP-219: the broker asks us to hold off; it would mute the connection otherwise. A
        // shutdown cuts the wait short, and the next attempt sees it.
        if !outcome.throttle.is_zero() {
            sleep_until(Instant::now() + outcome.throttle, &self.cancel);
        }
        if outcome.reset_producer_id && self.batcher.idempotence.is_on() {
            self.batcher.idempotence = Idempotence::NeedsId;
        }
        if outcome.refresh_metadata {
            self.cluster.forget(&out.topic);
        }
        match outcome.error {
            Some(e) => Err(e),
            None if out.batches.iter().all(|b| b.done) => Ok(()),
            None => Err(Error::protocol(
                "(none)",
                "round ended with batches neither sent nor failed",
            )),
        }
    }

    /// Obtains a producer id when we need one; falls back to non-idempotent producing, with one
    /// warning, where the broker cannot or will not give us one.
    fn ensure_producer_id(&mut self) -> Result<(), Error> {
        if !matches!(self.batcher.idempotence, Idempotence::NeedsId) {
            return Ok(());
        }
        let fallback = "producing without idempotence (a retried batch may be written twice)";
        self.batcher.idempotence = match self
            .cluster
            .init_producer_id(self.config.request_timeout_ms())?
        {
            ProducerIdAnswer::Granted { producer_id, epoch } => {
                log::debug!("kafka: producer id {producer_id} epoch {epoch}");
                Idempotence::On {
                    producer_id,
                    epoch,
                    sequences: Default::default(),
                }
            }
            ProducerIdAnswer::Unsupported { broker } => {
                log::warn!("kafka: broker {broker} does not support InitProducerId; {fallback}");
                Idempotence::Off
            }
            ProducerIdAnswer::Refused { broker, code } => {
                log::warn!("kafka: broker {broker} refused a producer id ({code:?}); {fallback}");
                Idempotence::Off
            }
        };
        Ok(())
    }

    fn check_cancelled(&self) -> Result<(), Error> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps before the next retry, never past the deadline, waking early on cancellation.
    fn wait(&mut self, retries: &mut Retries) -> Result<(), Error> {
        retries.attempt += 1;
        let deadline = retries.started + self.config.delivery_timeout;
        let wake = (Instant::now() + self.backoff.delay(retries.attempt)).min(deadline);
        if sleep_until(wake, &self.cancel) {
            Ok(())
        } else {
            Err(Error::Cancelled)
        }
    }
}

/// The retry bookkeeping of one operation: since when it runs, how many attempts, how many of
/// them found the topic unknown.
struct Retries {
    topic: String,
    started: Instant,
    attempt: u32,
    unknown_topic: u32,
    /// Whether the operation has warned about retrying yet (once is enough).
    warned: bool,
}

impl Retries {
    fn new(topic: &str, started: Instant) -> Retries {
        Retries {
            topic: topic.to_string(),
            started,
            attempt: 0,
            unknown_topic: 0,
            warned: false,
        }
    }

    /// The error back when it is worth another attempt; else what the operation fails with:
    /// the error itself when retrying cannot help, or a delivery timeout naming it.
    fn judge(&mut self, e: Error, config: &ProducerConfig) -> Result<Error, Error> {
        let worth_retrying = match e {
            // A topic created a moment ago may not be in every broker's metadata yet.
            Error::UnknownTopic { .. } => {
                self.unknown_topic += 1;
                self.unknown_topic < UNKNOWN_TOPIC_ATTEMPTS
            }
            // Retried by the caller, with its backoff and one log line per incident; and at
            // start-up, final.
            _ if e.needs_operator() => false,
            _ => e.is_retriable(),
        };
        if !worth_retrying {
            return Err(e);
        }
        if self.started.elapsed() >= config.delivery_timeout {
            return Err(Error::DeliveryTimeout {
                topic: self.topic.clone(),
                after: self.started.elapsed(),
                last: Box::new(e),
            });
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::kafka::records::test_record as record;

    /// A send whose records before an oversized one failed on a transient error: its batches
    /// hold only those records, so they are not handed back to be resumed (a resume would
    /// complete them and pass the oversized record off as delivered), and a send that ends
    /// with records in no batch is never a success.
    #[test]
    fn batches_that_do_not_hold_every_unacknowledged_record_are_never_resumed() {
        let records = [record(Some("1"), 10), record(Some("2"), 4096)];
        let mut p = Producer::new(ProducerConfig::default());
        let outgoing = |p: &mut Producer| {
            let mut out = Outgoing::new("t", records.len());
            out.batches = p.batcher.plan("t", &records[..1], 1, 1 << 20).unwrap();
            out
        };
        let transient = || Error::NoBrokerReachable {
            tried: "b:9092".into(),
            last: Box::new(Error::protocol("b:9092", "gone")),
        };
        let out = outgoing(&mut p);
        let mut err = p.conclude(out, Err(transient())).unwrap_err();
        assert!(err.error.is_retriable());
        assert!(err.take_unsettled().is_none(), "resumable without record 2");

        let mut out = outgoing(&mut p);
        out.batches[0].acknowledge(Some(0), &mut out.delivered);
        let err = p.conclude(out, Ok(())).unwrap_err();
        assert_eq!(err.delivered[1], None);
        assert!(!err.error.is_retriable(), "{err}");

        // Batches holding every unacknowledged record are resumable.
        let mut out = Outgoing::new("t", 1);
        out.batches = p.batcher.plan("t", &records[..1], 1, 1 << 20).unwrap();
        let mut err = p.conclude(out, Err(transient())).unwrap_err();
        assert!(err.take_unsettled().is_some());
    }

    /// A record too large even alone in a batch is refused by the batches it is pushed into:
    /// the send fails naming it, and no broker is asked (none is reachable here).
    #[test]
    fn oversized_record_is_refused_naming_its_key() {
        let mut p = Producer::new(ProducerConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            max_request_size: 2048,
            ..ProducerConfig::default()
        });
        // `Producer::batches` wants the topic looked up: its batches as they would be.
        let mut batches = p.batcher.batches("t", 1, p.limits("t"), 0);
        batches
            .push(Some(b"42"), 0, |buf| {
                buf.extend_from_slice(&[b'x'; 4096]);
                Ok::<(), ()>(())
            })
            .unwrap();
        let pending = p.start(batches);
        let err = p.finish(pending).unwrap_err();
        assert!(matches!(err.error, Error::RecordTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("key \"42\""), "{err}");
        assert!(!err.error.is_retriable());
        assert_eq!(err.delivered, [None]);
    }

    #[test]
    fn unreachable_bootstrap_fails_within_the_delivery_timeout() {
        let mut p = Producer::new(ProducerConfig {
            bootstrap: vec!["127.0.0.1:1".into()],
            delivery_timeout: Duration::from_millis(600),
            ..ProducerConfig::default()
        });
        let started = Instant::now();
        let err = crate::kafka::testing::send(&mut p, "t", &[record(Some("1"), 10)]).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:1") && text.contains("delivery timeout"),
            "{text}"
        );
    }
}
