//! The replication loop: read position → fetch a batch → publish it → commit the position.
//!
//! Everything below this module (sources, the Kafka producer, position stores, metrics) is
//! reached through its own small API and never calls back up. The invariant this module keeps:
//! the stored position only ever names a row such that it and every row before it were
//! acknowledged by Kafka.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::config::{Config, KeyMode};
use crate::gaps::{GapPolicy, GapTracker, SkipReason};
use crate::kafka::{self, Delivery, Producer, ProducerConfig, Record, SendError, Unsettled};
use crate::message::{MessageEncoder, MessageError};
use crate::metrics::{Metrics, MetricsError};
use crate::source::{Source, SourceError, SourceSpec};
use crate::store::{Lease, Store, StoreError, Written};
use crate::value::{Id, Value};

/// Why replication stopped (or could not start). One variant per boundary below us.
#[derive(Debug)]
pub enum Error {
    Source(SourceError),
    Kafka(kafka::Error),
    Store(StoreError),
    Metrics(MetricsError),
    Encode(MessageError),
    /// No position is stored but the topic already has records.
    PositionLost {
        store: String,
        topic: String,
    },
    /// `--once`, but another instance holds the job's lease (and kept it for a lease time).
    LeaseHeld {
        holder: String,
    },
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Error {
        Error::Source(e)
    }
}

impl Error {
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Source(e) => e.is_retriable(),
            Error::Kafka(e) => e.is_retriable(),
            Error::Store(e) => e.is_retriable(),
            Error::Metrics(e) => e.is_retriable(),
            Error::Encode(e) => e.is_retriable(),
            Error::PositionLost { .. } => false,
            Error::LeaseHeld { .. } => true,
        }
    }

    /// Which dependency failed, for "one log line per incident".
    fn component(&self) -> &'static str {
        match self {
            Error::Source(_) => "source",
            Error::Kafka(_) => "kafka",
            Error::Store(_) => "position store",
            Error::Metrics(_) => "metrics",
            Error::Encode(_) => "encoding",
            Error::PositionLost { .. } | Error::LeaseHeld { .. } => "position store",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Source(e) => write!(f, "reading the source: {e}"),
            Error::Kafka(e) => write!(f, "publishing to Kafka: {e}"),
            Error::Store(e) => write!(f, "position store: {e}"),
            Error::Metrics(e) => write!(f, "statsd: {e}"),
            Error::Encode(e) => write!(f, "encoding a message: {e}"),
            Error::PositionLost { store, topic } => write!(
                f,
                "no position is stored in {store}, but topic {topic} already has records: the \
                 position was probably lost (emptied Redis, deleted key or state file); refusing \
                 to republish the table from the start. Set the last replicated id in the store, \
                 or restart with --initial-position ID (or `start` to republish everything)"
            ),
            Error::LeaseHeld { holder } => write!(
                f,
                "another instance ({holder}) is active for this job and kept its lease; --once \
                 did nothing"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Run until stopped, or only until caught up (`--once`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forever,
    UntilCaughtUp,
}

/// A started replication job: every dependency connected and checked.
pub struct Replicator {
    name: String,
    table: String,
    topic: String,
    key_mode: KeyMode,
    limit: usize,
    poll_interval: Duration,
    backoff_max: Duration,
    source: Source,
    producer: Producer,
    store: Store,
    metrics: Metrics,
    encoder: MessageEncoder,
    gaps: GapTracker,
    stop: Arc<AtomicBool>,
    /// This instance's lease owner token (host, pid, random).
    owner: String,
    lease: Duration,
    /// Whether we hold the lease (only the holder publishes).
    active: bool,
    /// The last position this instance committed: safe to resume from if the store loses it.
    committed: Option<Id>,
    /// The position as this instance last read or wrote it in the store: a write finding the
    /// lease lapsed may take it again only if the store still holds this.
    last_stored: Option<Id>,
    initial_position: Option<Id>,
    /// The other instance holding the lease, while we are standby.
    lease_holder: Option<String>,
    /// Average encoded message size of the last batch, to size the next batch's buffer.
    message_size: usize,
    /// The dependency currently failing, and since when: errors are logged once per incident.
    incident: Option<(&'static str, Instant)>,
    /// A batch Kafka did not acknowledge in full on a transient error: sent again as it was
    /// before anything else, so that the broker can drop what it had already written.
    unacknowledged: Option<Unacknowledged>,
}

/// A published batch waiting for the rest of its acknowledgements.
struct Unacknowledged {
    ids: Vec<Id>,
    holding: bool,
    send: Unsettled,
}

impl Replicator {
    /// Connects to the source (checking table, key, fields and types), the position store and
    /// Kafka (checking the topic exists). Any failure here stops start-up.
    pub fn start(
        config: &Config,
        options: &Options,
        stop: Arc<AtomicBool>,
    ) -> Result<Replicator, Error> {
        let metrics =
            Metrics::new(config.statsd_addr.as_deref(), &config.name).map_err(Error::Metrics)?;
        let mut source = Source::connect(&SourceSpec {
            uri: config.source.uri.clone(),
            table: config.source.table.clone(),
            primary_key: config.source.primary_key.clone(),
            fields: config.source.fields.clone(),
            query_timeout: config.source.query_timeout,
            connect_timeout: config.source.connect_timeout,
        })
        .map_err(Error::Source)?;
        log::info!(
            "source: {} (columns: {})",
            source.describe(),
            source.columns().join(", ")
        );
        let gaps = GapTracker::new(gap_policy(config, &mut source)?);

        let mut store = Store::open(
            &config.position_store,
            &config.name,
            &config.source.table,
            &config.kafka.topic,
            config.kafka.request_timeout,
        )
        .map_err(Error::Store)?;

        let k = &config.kafka;
        let mut producer = Producer::new(ProducerConfig {
            bootstrap: k.brokers.clone(),
            client_id: k.client_id.clone(),
            acks: k.acks,
            compression: k.compression,
            idempotent: k.idempotence,
            max_request_size: k.max_request_size,
            request_timeout: k.request_timeout,
            connect_timeout: k.connect_timeout,
            delivery_timeout: k.delivery_timeout,
            ..ProducerConfig::default()
        })
        .with_cancel_flag(stop.clone());
        let partitions = producer.check_topic(&k.topic).map_err(Error::Kafka)?;
        log::info!(
            "kafka: topic {} has {partitions} partitions; position store: {}",
            k.topic,
            store.describe()
        );
        // A lost position is found at start-up, not after a standby takes over.
        let stored = store.read().map_err(Error::Store)?;
        if stored.is_none() && options.initial_position.is_none() {
            check_new_job(&mut producer, &k.topic, &store)?;
        }

        let encoder = MessageEncoder::new(&config.name, &config.source.table, source.columns());
        Ok(Replicator {
            name: config.name.clone(),
            table: config.source.table.clone(),
            topic: k.topic.clone(),
            key_mode: k.key,
            limit: config.source.limit,
            poll_interval: config.poll_interval,
            backoff_max: config.retry_backoff_max,
            source,
            producer,
            store,
            metrics,
            encoder,
            gaps,
            stop,
            incident: None,
            unacknowledged: None,
            owner: owner_token(),
            lease: config.lease,
            active: false,
            committed: None,
            last_stored: None,
            initial_position: options.initial_position,
            message_size: 256,
            lease_holder: None,
        })
    }

    /// The loop. Returns Ok when stopped (or caught up, with `Mode::UntilCaughtUp`), Err on an
    /// error that retrying cannot fix. Retriable errors are retried with capped exponential
    /// backoff, forever.
    pub fn run(&mut self, mode: Mode) -> Result<(), Error> {
        let mut failures = 0u32;
        let mut position = None;
        let mut standby_logged = false;
        let mut standby_since: Option<Instant> = None;
        // A batch prepared while the previous one was in flight.
        let mut next: Option<Prepared> = None;
        while !self.stopping() {
            let step = if !self.active {
                next = None;
                let before = self.last_stored;
                self.take_lease().map(|taken| match taken {
                    Some(p) => {
                        // A batch still unacknowledged is ours to send again only if nobody
                        // moved the position while we did not hold the lease (it lapsed during
                        // a long call); otherwise another instance published from there.
                        if before != Some(p) {
                            self.unacknowledged = None;
                        }
                        position = Some(p);
                        standby_logged = false;
                        Step::Continue
                    }
                    None => Step::Standby,
                })
            } else {
                match position.as_mut() {
                    // Only after a lost lease: take it again first.
                    None => Ok(Step::Continue),
                    Some(p) => self.replicate_batch(p, &mut next),
                }
            };
            match step {
                Ok(step) => {
                    failures = 0;
                    if let Some((component, since)) = self.incident.take() {
                        log::warn!(
                            "{component}: recovered after {:.1}s",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    match (step, mode) {
                        (Step::Continue, _) => {}
                        (Step::CaughtUp, Mode::UntilCaughtUp) => break,
                        // Held rows wait for a proof that takes two polls: poll quickly.
                        (Step::Holding, _) => {
                            self.idle(self.poll_interval.min(Duration::from_millis(250)))
                        }
                        (Step::CaughtUp, Mode::Forever) => {
                            if let Err(e) = self.republish_late_rows() {
                                // Counted as a failure like any other; the loop retries.
                                self.report_incident(&e);
                            }
                            self.idle(self.poll_interval)
                        }
                        // A crashed holder's lease lapses within its lifetime: wait that long, then
                        // say who holds it rather than exit 0 as if caught up.
                        (Step::Standby, Mode::UntilCaughtUp) => {
                            let waited = standby_since.get_or_insert_with(Instant::now).elapsed();
                            if waited > self.lease + Duration::from_secs(1) {
                                return Err(Error::LeaseHeld {
                                    holder: self.lease_holder.clone().unwrap_or_default(),
                                });
                            }
                            self.sleep(self.lease / 3)
                        }
                        (Step::Standby, Mode::Forever) => {
                            if !standby_logged {
                                log::info!("standby: another instance holds the job's lease; taking over when it lapses");
                                standby_logged = true;
                            }
                            self.sleep(self.lease / 3)
                        }
                    }
                }
                // Sending was cut short by shutdown: what was acknowledged is committed.
                Err(_) if self.stopping() => break,
                Err(Error::Store(e @ StoreError::Fenced { .. })) => {
                    log::warn!("lost the job's lease, stopping publishing: {e}");
                    self.active = false;
                    position = None;
                }
                Err(e) if e.is_retriable() => {
                    self.report_incident(&e);
                    failures += 1;
                    self.sleep(backoff(failures, self.backoff_max));
                }
                Err(e) => {
                    self.release_lease();
                    return Err(e);
                }
            }
        }
        if self.stopping() {
            log::info!("stopping: shutdown requested");
        }
        self.release_lease();
        Ok(())
    }

    /// Tries to become the active instance. On success returns the position to resume from:
    /// the stored one, or — if the store lost it (an emptied Redis) — the last one this instance
    /// committed, whichever is higher; with neither, `--initial-position` or 0 for a new job.
    fn take_lease(&mut self) -> Result<Option<Id>, Error> {
        match self
            .store
            .hold_lease(&self.owner, self.lease)
            .map_err(Error::Store)?
        {
            Lease::HeldBy(holder) => {
                self.lease_holder = Some(holder);
                return Ok(None);
            }
            Lease::Held | Lease::Acquired => {}
        }
        self.lease_holder = None;
        self.active = true;
        let stored = self.read_position()?;
        self.last_stored = stored;
        let position = match (stored, self.committed) {
            (Some(s), Some(c)) => s.max(c),
            (Some(s), None) => s,
            (None, Some(c)) => {
                log::warn!(
                    "the position is missing from {}: resuming after {c}, the last position this \
                     instance committed",
                    self.store.describe()
                );
                c
            }
            (None, None) => match self.initial_position {
                Some(p) => {
                    log::warn!(
                        "no stored position: starting after {} (--initial-position)",
                        show_position(p)
                    );
                    p
                }
                None => {
                    check_new_job(&mut self.producer, &self.topic, &self.store)?;
                    log::warn!(
                        "no position stored in {} and topic {} is empty: a new job, starting from \
                         the beginning of the table",
                        self.store.describe(),
                        self.topic
                    );
                    BEFORE_ANY_ID
                }
            },
        };
        log::info!(
            "active (lease owner {}): resuming after id {}",
            self.owner,
            show_position(position)
        );
        Ok(Some(position))
    }

    fn release_lease(&mut self) {
        if self.active {
            self.active = false;
            if let Err(e) = self.store.release_lease(&self.owner) {
                log::warn!("releasing the job's lease: {e} (it expires by itself)");
            }
        }
    }

    /// Renews the lease. Losing it (another instance holds it) is `StoreError::Fenced`; so is
    /// finding it lapsed, even though we now hold it again: another instance may have moved the
    /// position meanwhile, so the loop re-reads it (`take_lease`) before publishing again.
    fn renew_lease(&mut self) -> Result<(), Error> {
        let holder = match self
            .store
            .hold_lease(&self.owner, self.lease)
            .map_err(Error::Store)?
        {
            Lease::Held => return Ok(()),
            Lease::Acquired => "nobody: the lease had lapsed".to_string(),
            Lease::HeldBy(holder) => holder,
        };
        Err(Error::Store(StoreError::Fenced {
            store: self.store.describe(),
            holder,
        }))
    }

    fn read_position(&mut self) -> Result<Option<Id>, Error> {
        let started = Instant::now();
        let result = self.store.read();
        self.metrics
            .count("store.read", &[("success", success(&result))], 1);
        self.metrics.timing(
            "store.read_latency",
            &[("success", success(&result))],
            started.elapsed(),
        );
        result.map_err(Error::Store)
    }

    /// Reads the rows after `position`, cuts them at a hole that may still fill, and encodes
    /// them. The rows themselves are dropped here: only ids and messages go on.
    fn prepare(&mut self, position: Id) -> Result<Prepared, Error> {
        let started = Instant::now();
        // While holes are held, the open transactions are looked at before the fetch too: the
        // proof that a hole is final needs a look taken before the rows it publishes (`gaps`).
        let before = if self.gaps.needs_probe_before_fetch() {
            Some(self.source.open_transactions().map_err(Error::Source)?)
        } else {
            None
        };
        let mut batch = self.read(position)?;
        let holding = self.hold_at_gaps(position, &mut batch, before)?;
        let (ids, records) = batch.finish();
        Ok(Prepared {
            ids,
            records,
            holding,
            read: started.elapsed(),
        })
    }

    /// One turn of the loop: publish a batch (the one prepared during the previous turn, or a
    /// fresh one), and while the broker writes it, prepare the next; commit the position once
    /// Kafka acknowledged. Moves `position` with every commit.
    fn replicate_batch(
        &mut self,
        position: &mut Id,
        next: &mut Option<Prepared>,
    ) -> Result<Step, Error> {
        if self.unacknowledged.is_some() {
            return self.resend_batch(position);
        }
        let batch = match next.take() {
            Some(batch) => batch,
            None => self.prepare(*position)?,
        };
        let Some(&last_id) = batch.ids.last() else {
            self.metrics.flush();
            return Ok(if batch.holding {
                Step::Holding
            } else {
                Step::CaughtUp
            });
        };
        // Only the lease holder publishes: an instance that was paused past its lease finds out
        // here, before sending (or at the fenced commit, if it lost the lease mid-send).
        self.renew_lease()?;

        let published = Instant::now();
        let full = !batch.holding && batch.ids.len() == self.limit;
        let pending = self.producer.start(&self.topic, batch.records);
        // Same thread, overlapping work: the broker writes this batch while we read and encode
        // the next one. Its rows are published only after this batch is committed.
        let following = if full {
            Some(self.prepare(last_id))
        } else {
            None
        };
        let result = self.producer.finish(pending);
        let ids = self.settle(position, batch.ids, batch.holding, published, result)?;
        log::info!(
            "replicated {} rows, ids {}..={last_id} (read {} ms, publish {} ms)",
            ids.len(),
            ids[0],
            batch.read.as_millis(),
            published.elapsed().as_millis(),
        );
        match following {
            Some(prepared) => {
                *next = Some(prepared?);
                Ok(Step::Continue)
            }
            None if batch.holding => Ok(Step::Holding),
            None => Ok(Step::CaughtUp),
        }
    }

    /// Sends the batch Kafka did not acknowledge in full again, as it was.
    fn resend_batch(&mut self, position: &mut Id) -> Result<Step, Error> {
        self.renew_lease()?;
        let Some(Unacknowledged { ids, holding, send }) = self.unacknowledged.take() else {
            return Ok(Step::Continue);
        };
        let published = Instant::now();
        let result = self.producer.resume(send);
        let ids = self.settle(position, ids, holding, published, result)?;
        log::info!(
            "replicated {} rows, ids {}..={} (sent again, publish {} ms)",
            ids.len(),
            ids[0],
            ids[ids.len() - 1],
            published.elapsed().as_millis(),
        );
        // The batch was read before it failed: read on from it at once.
        Ok(if holding {
            Step::Holding
        } else {
            Step::Continue
        })
    }

    /// What a publish of `ids` came to: counts it, commits what Kafka acknowledged (all of it,
    /// or after a failure the longest prefix in key order), and keeps a transient failure's
    /// unacknowledged batches to send again. Returns the ids when all were acknowledged.
    fn settle(
        &mut self,
        position: &mut Id,
        ids: Vec<Id>,
        holding: bool,
        published: Instant,
        result: Result<Vec<Delivery>, SendError>,
    ) -> Result<Vec<Id>, Error> {
        let tags = [
            ("success", success(&result)),
            ("topic", self.topic.as_str()),
        ];
        self.metrics.count("target.publish", &tags, 1);
        self.metrics
            .timing("target.publish_latency", &tags, published.elapsed());
        let acknowledged = match &result {
            Ok(_) => ids.len(),
            Err(e) => e.delivered.iter().take_while(|d| d.is_some()).count(),
        };
        let moved = acknowledged > 0 && ids[acknowledged - 1] > *position;
        if moved {
            let last = ids[acknowledged - 1];
            self.commit(last)?;
            *position = last;
        }
        self.metrics.flush();
        match result {
            Ok(_) => Ok(ids),
            Err(mut e) => {
                if moved {
                    log::warn!(
                        "committed {acknowledged} acknowledged rows of a failed batch, up to {position}"
                    );
                }
                if let Some(send) = e.take_unsettled() {
                    self.unacknowledged = Some(Unacknowledged { ids, holding, send });
                }
                Err(Error::Kafka(e.error))
            }
        }
    }

    /// Cuts `rows` at the first hole in the id sequence that may still be filled (see
    /// `gaps`). Returns whether rows were held back.
    fn hold_at_gaps(
        &mut self,
        position: Id,
        batch: &mut Batch,
        before: Option<crate::gaps::OpenTransactions>,
    ) -> Result<bool, Error> {
        let source = &mut self.source;
        let decision = self
            .gaps
            .decide(position, &batch.ids, Instant::now(), before, || {
                source.open_transactions()
            })
            .map_err(Error::Source)?;
        if let Some(reason) = &decision.no_proof {
            log::warn!(
                "cannot prove holes in the id sequence final: {reason}; until then rows above a \
                 hole are held for up to gap_timeout_sec"
            );
        }
        for s in &decision.skipped {
            if s.after == BEFORE_ANY_ID {
                // Not a hole between rows: a new job waited until nothing could still add rows
                // below its first one.
                log::info!(
                    "new job: starting at id {} after {:.1}s ({})",
                    s.before,
                    s.age.as_secs_f64(),
                    s.reason
                );
                continue;
            }
            log::warn!(
                "skipping hole in table {}: ids {}..{} (exclusive) never appeared after {:.1}s; {}",
                self.table,
                s.after,
                s.before,
                s.age.as_secs_f64(),
                s.reason
            );
            let reason = match s.reason {
                SkipReason::ProvenFinal => "final",
                SkipReason::TimedOut => "timeout",
            };
            self.metrics.count(
                "gap.skipped",
                &[("table", &self.table), ("reason", reason)],
                1,
            );
        }
        let held_ms = decision.holding.map_or(0, |(after, before, age)| {
            log::debug!(
                "holding rows above hole {after}..{before} (open {:.1}s)",
                age.as_secs_f64()
            );
            age.as_millis()
        });
        self.metrics.gauge(
            "gap.oldest_held_ms",
            &[("table", &self.table)],
            held_ms as i128,
        );
        batch.truncate(decision.publish);
        Ok(decision.holding.is_some())
    }

    /// Looks into recently skipped holes for rows that appeared after all (a transaction that
    /// outlived gap_timeout). They are reported loudly, with their ids, and published late:
    /// data never disappears silently, even then. The position does not move.
    fn republish_late_rows(&mut self) -> Result<(), Error> {
        if !self.gaps.enabled() {
            return Ok(());
        }
        let holes: Vec<(Id, Id)> = self
            .gaps
            .watched(Instant::now())
            .map(|s| (s.after, s.before))
            .collect();
        for (after, before) in holes {
            let Some(reported) = self
                .gaps
                .watched(Instant::now())
                .find(|s| s.after == after && s.before == before)
                .map(|s| s.reported.clone())
            else {
                continue;
            };
            // The rows right above `after`, no more than the hole can hold: a late row, if any,
            // is among them. The cost is bounded by the hole's size, not by `limit`.
            let room = usize::try_from(before - after - 1)
                .unwrap_or(usize::MAX)
                .min(self.limit);
            // Usually nothing is late: no buffers sized for a batch.
            let mut late = Batch::new(0, 0, self.key_mode);
            let encoder = &mut self.encoder;
            self.source.fetch_each(after, room.max(1), |id, values| {
                if id < before && !reported.contains(&id) {
                    late.push(encoder, id, values)?;
                }
                Ok::<(), Error>(())
            })?;
            if late.ids.is_empty() {
                continue;
            }
            log::error!(
                "table {}: {} rows appeared in hole {after}..{before} after it was skipped (a \
                 transaction outlived gap_timeout_sec); publishing them late: ids {:?}",
                self.table,
                late.ids.len(),
                late.ids
            );
            self.metrics.count(
                "gap.late_rows",
                &[("table", &self.table)],
                late.ids.len() as u64,
            );
            let (ids, records) = late.finish();
            self.producer
                .send(&self.topic, &records)
                .map_err(|e| Error::Kafka(e.error))?;
            if let Some(watched) = self
                .gaps
                .watched(Instant::now())
                .find(|s| s.after == after && s.before == before)
            {
                watched.reported.extend(ids);
            }
        }
        Ok(())
    }

    /// Reads the rows above `position` and encodes each message as its row streams in: the
    /// batch never holds rows, only their messages.
    fn read(&mut self, position: Id) -> Result<Batch, Error> {
        let started = Instant::now();
        let mut batch = Batch::new(self.limit, self.message_size, self.key_mode);
        let encoder = &mut self.encoder;
        let result = self.source.fetch_each(position, self.limit, |id, values| {
            batch.push(encoder, id, values)
        });
        let tags = [
            ("success", success(&result)),
            ("table", self.table.as_str()),
        ];
        self.metrics.count("source.read", &tags, 1);
        self.metrics
            .timing("source.read_latency", &tags, started.elapsed());
        let count = result?;
        self.metrics.count("source.rows_read", &tags, count as u64);
        if let Some(average) = batch.values.len().checked_div(count) {
            self.message_size = average;
        }
        Ok(batch)
    }

    /// Stores the position, retrying a store that is down: the rows are in Kafka already, so
    /// giving up here would only republish them. Stops retrying on shutdown (the rows will be
    /// republished after restart: at-least-once).
    fn commit(&mut self, position: Id) -> Result<(), Error> {
        let mut failures = 0;
        loop {
            let started = Instant::now();
            let result =
                self.store
                    .write_fenced(position, self.last_stored, &self.owner, self.lease);
            let tags = [("success", success(&result))];
            self.metrics.count("store.write", &tags, 1);
            self.metrics
                .timing("store.write_latency", &tags, started.elapsed());
            match result {
                Ok(written) => {
                    if written == Written::LeaseRetaken {
                        log::warn!(
                            "the job's lease lapsed while Kafka acknowledged a batch (a call \
                             longer than lease_sec); nobody took it or moved the position, so it \
                             was taken again and the batch committed"
                        );
                    }
                    self.committed = Some(position);
                    self.last_stored = Some(position);
                    let p = position.to_string();
                    self.metrics.gauge(
                        "offset.position",
                        &[("table", self.table.as_str())],
                        position,
                    );
                    log::debug!("committed position {p} for job {}", self.name);
                    return Ok(());
                }
                Err(e) if e.is_retriable() && !self.stopping() => {
                    self.report_incident(&Error::Store(e));
                    failures += 1;
                    self.sleep(backoff(failures, self.backoff_max));
                }
                Err(e) => return Err(Error::Store(e)),
            }
        }
    }

    fn report_incident(&mut self, e: &Error) {
        match self.incident {
            Some((component, _)) if component == e.component() => log::debug!("still failing: {e}"),
            _ => {
                log::error!("{e} (retrying until it recovers)");
                self.incident = Some((e.component(), Instant::now()));
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps while caught up, renewing the lease at a third of its lifetime so that an idle
    /// active instance keeps it.
    fn idle(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopping() && self.active {
            let now = Instant::now();
            if now >= until {
                break;
            }
            self.sleep((until - now).min(self.lease / 3));
            if let Err(e) = self.renew_lease() {
                match e {
                    Error::Store(StoreError::Fenced { .. }) => {
                        log::warn!("lost the job's lease while idle: {e}");
                        self.active = false;
                    }
                    // A Redis outage: the loop's next step reports and retries it.
                    e => log::debug!("renewing the lease: {e}"),
                }
                break;
            }
        }
    }

    /// Sleeps, waking within 50 ms of a shutdown request.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopping() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

/// The gap policy from the config and what the database says about its id sequence.
fn gap_policy(config: &Config, source: &mut Source) -> Result<GapPolicy, Error> {
    let timeout = config.source.gap_timeout;
    if timeout.is_zero() {
        log::warn!("gap_timeout_sec is 0: rows committed out of id order may be missed");
        return Ok(GapPolicy {
            snapshot_delay: Duration::ZERO,
            timeout,
            step: 1,
            cached: false,
            final_at_once: false,
        });
    }
    let allocation = source.id_allocation().map_err(Error::Source)?;
    let step = config.source.id_step.unwrap_or(allocation.step);
    log::info!(
        "holding rows at id gaps for up to {:.1}s; id step {step} ({})",
        timeout.as_secs_f64(),
        if config.source.id_step.is_some() {
            "from id_step in the config"
        } else {
            &allocation.origin
        }
    );
    if allocation.cached {
        log::warn!(
            "{}: sessions cache ids, so a hole can be filled by any later transaction of the \
             session holding it; holes are released only after gap_timeout_sec",
            allocation.origin
        );
    }
    Ok(GapPolicy {
        snapshot_delay: allocation.snapshot_delay,
        timeout,
        step,
        cached: allocation.cached,
        final_at_once: allocation.final_at_once,
    })
}

/// Refuses to start a job from zero when its topic already has records: the position was
/// probably lost (an emptied or failed-over Redis, a deleted key or state file), and starting
/// from zero would republish the whole table by surprise.
fn check_new_job(producer: &mut Producer, topic: &str, store: &Store) -> Result<(), Error> {
    if producer.topic_has_records(topic).map_err(Error::Kafka)? {
        return Err(Error::PositionLost {
            store: store.describe(),
            topic: topic.to_string(),
        });
    }
    Ok(())
}

/// Identifies this instance in the lease: host, pid and a random part (two instances on one
/// host after a pid wrap stay distinct).
fn owner_token() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let random = u64::from(nanos)
        ^ (std::process::id() as u64).rotate_left(20)
        ^ (&nanos as *const u32 as u64);
    format!("{host}-{}-{:08x}", std::process::id(), random as u32)
}

/// The position of a job that has replicated nothing yet: below every id, negative ones included
/// (the sources clamp it to their key type's minimum).
pub const BEFORE_ANY_ID: Id = i64::MIN as Id - 1;

fn show_position(p: Id) -> String {
    if p == BEFORE_ANY_ID {
        "the start of the table".into()
    } else {
        p.to_string()
    }
}

/// A batch read, cut at held gaps and encoded, ready to publish.
struct Prepared {
    /// The rows' ids, in order (the rows themselves are not kept).
    ids: Vec<Id>,
    records: Vec<Record>,
    /// Rows were held back at a hole: the table may have more, but not for now.
    holding: bool,
    /// Reading and encoding it took this long.
    read: Duration,
}

/// The messages of one batch, encoded while its rows stream in from the source: one buffer
/// for all values and one for all keys, which the records then slice (no copy, one allocation
/// each).
struct Batch {
    ids: Vec<Id>,
    values: Vec<u8>,
    keys: Vec<u8>,
    /// Each row's value and key, as ranges of `values` and `keys` (`None`: no key).
    bounds: Vec<(Range<usize>, Option<Range<usize>>)>,
    key_mode: KeyMode,
    /// One time for the whole batch: the message's `timestamp` and the record's.
    timestamp: f64,
    timestamp_ms: i64,
}

impl Batch {
    /// `rows` and `message_size` (the last batch's average) only size the buffers, so that they
    /// are not regrown and copied; `key_mode` says whether records are keyed by id.
    fn new(rows: usize, message_size: usize, key_mode: KeyMode) -> Batch {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Batch {
            ids: Vec::with_capacity(rows),
            values: Vec::with_capacity(rows * (message_size + 16)),
            keys: Vec::with_capacity(rows * 8),
            bounds: Vec::with_capacity(rows),
            key_mode,
            timestamp: now.as_secs_f64(),
            timestamp_ms: now.as_millis() as i64,
        }
    }

    /// Encodes one row. Per-row work is only what must be per row: the message and its hash.
    fn push(
        &mut self,
        encoder: &mut MessageEncoder,
        id: Id,
        values: &[Value],
    ) -> Result<(), Error> {
        let start = self.values.len();
        encoder
            .encode(self.timestamp, values, &mut self.values)
            .map_err(Error::Encode)?;
        let key = match self.key_mode {
            KeyMode::PrimaryKey => {
                let key_start = self.keys.len();
                // Decimal, as `{id}` would write it; i128 formatting is slow and ids fit i64
                // (MySQL BIGINT UNSIGNED aside).
                match i64::try_from(id) {
                    Ok(id) => crate::message::write_i64(&mut self.keys, id),
                    Err(_) => {
                        use std::io::Write as _;
                        let _ = write!(self.keys, "{id}");
                    }
                }
                Some(key_start..self.keys.len())
            }
            KeyMode::None => None,
        };
        self.bounds.push((start..self.values.len(), key));
        self.ids.push(id);
        Ok(())
    }

    /// Keeps the first `n` rows (the rest are held back at a hole).
    fn truncate(&mut self, n: usize) {
        self.ids.truncate(n);
        self.bounds.truncate(n);
    }

    /// The ids and the records, in order.
    fn finish(self) -> (Vec<Id>, Vec<Record>) {
        let (values, keys) = (Bytes::from(self.values), Bytes::from(self.keys));
        let records = self
            .bounds
            .into_iter()
            .map(|(value, key)| Record {
                key: key.map(|k| keys.slice(k)),
                value: values.slice(value),
                headers: Vec::new(),
                timestamp_ms: self.timestamp_ms,
            })
            .collect();
        (self.ids, records)
    }
}

/// Run-time options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where to start when no position is stored (`--initial-position`); without it a job whose
    /// topic already has records refuses to start.
    pub initial_position: Option<Id>,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Another instance holds the job's lease.
    Standby,
    /// More rows may be waiting: go again at once.
    Continue,
    /// The last fetch returned less than a full batch.
    CaughtUp,
    /// Rows wait above a hole in the id sequence that may still fill: not caught up, but
    /// nothing to do until the next poll.
    Holding,
}

fn success<T, E>(r: &Result<T, E>) -> &'static str {
    if r.is_ok() {
        "true"
    } else {
        "false"
    }
}

/// 200 ms, doubling per consecutive failure, capped.
fn backoff(failures: u32, max: Duration) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let max = Duration::from_secs(5);
        assert_eq!(backoff(1, max), Duration::from_millis(200));
        assert_eq!(backoff(2, max), Duration::from_millis(400));
        assert_eq!(backoff(5, max), Duration::from_millis(3200));
        assert_eq!(backoff(6, max), max);
        assert_eq!(backoff(1000, max), max);
    }
}
