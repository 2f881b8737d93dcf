//! The replication loop: read position → fetch a batch → publish it → commit the position.
//!
//! Everything below this module (sources, the Kafka producer, position stores, metrics) is
//! reached through its own small API and never calls back up. The invariant this module keeps:
//! the stored position only ever names a row such that it and every row before it were
//! acknowledged by Kafka.
//!
//! Rooms: `error` (why it stopped), `batch` (a batch of the table and its encoded messages),
//! `lease` (active and standby), `holes` (rows held at holes in the id sequence), `startup`
//! (the start-up checks, in steps that `repliqate check` takes too).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backoff::{sleep_until, Backoff};
use crate::config::{Config, KeyMode};
use crate::event::Event;
use crate::kafka::{Delivery, Pending, Producer, SendError};
use crate::message::MessageEncoder;
use crate::metrics::Statsd;
use crate::source::Source;
use crate::status::Status;
use crate::store::{Store, StoreError, Written};
use crate::value::Id;

mod batch;
mod error;
mod gaps;
mod holes;
mod incident;
pub(crate) mod lease;
mod position;
pub(crate) mod startup;
mod state;
mod telemetry;

use batch::{InFlight, MessageBuffer};
pub use error::Error;
use holes::{Holes, Late};
use incident::Incidents;
use lease::{owner_token, Lease, Resume};
pub(crate) use position::show_position;
use position::status_position;
pub use position::BEFORE_ANY_ID;
pub use startup::Start;
use state::{Active, Standby, State};
use telemetry::Telemetry;

/// The loop's first wait after a failure; it doubles per consecutive failure up to
/// `retry_backoff_max_sec`.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Run until stopped, or only until caught up (`--once`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forever,
    UntilCaughtUp,
}

/// A started replication job: every dependency connected and checked.
pub struct Replicator {
    name: String,
    topic: String,
    key_mode: KeyMode,
    limit: usize,
    poll_interval: Duration,
    backoff: Backoff,
    source: Source,
    producer: Producer,
    store: Store,
    /// The job's lease in `store`, and what this instance knows of the position.
    lease: Lease,
    /// What the loop reports, for statsd and for `/metrics`, `/healthz` and `/readyz`.
    telemetry: Telemetry,
    /// When `status` last got the table's highest id.
    max_id_read: Option<Instant>,
    encoder: MessageEncoder,
    /// Holes in the id sequence, and rows held above them.
    holes: Holes,
    stop: Arc<AtomicBool>,
    initial_position: Option<Id>,
    /// Average encoded message size of the last batch, to size the next batch's buffer.
    message_size: usize,
    /// The dependency currently failing, and since when: errors are logged once per incident.
    incidents: Incidents,
}

impl Replicator {
    /// Connects to the source (checking table, key, fields and types), the position store and
    /// Kafka (checking the topic exists), and refuses a lost position: the steps of `startup`,
    /// which `repliqate check` takes too. Any failure here stops start-up. The loop reports
    /// what it does to `status`.
    pub fn start(
        config: &Config,
        options: &Options,
        stop: Arc<AtomicBool>,
        status: Arc<Status>,
    ) -> Result<Replicator, Error> {
        let metrics = startup::metrics(config)?;
        let (source, gap_policy) = startup::source(config)?;
        let mut store = startup::store(config)?;
        let owner = owner_token();
        // One instance per state file (Redis has the lease for that).
        store.lock(&owner).map_err(Error::Store)?;
        let mut producer = startup::producer(config, stop.clone());
        startup::topic(&mut producer, config)?;
        let stored = startup::stored_position(&mut store)?;
        startup::start(
            &mut producer,
            config,
            &store,
            stored,
            options.initial_position,
        )?;
        let k = &config.kafka;

        let encoder =
            MessageEncoder::new(&config.name, &config.source.spec.table, source.columns());
        Ok(Replicator {
            name: config.name.clone(),
            topic: k.topic.clone(),
            key_mode: k.key,
            limit: config.source.limit,
            poll_interval: config.poll_interval,
            backoff: Backoff::new(FIRST_BACKOFF, config.retry_backoff_max),
            source,
            producer,
            store,
            lease: Lease::new(owner, config.lease),
            telemetry: Telemetry::new(
                Statsd::new(metrics, &config.source.spec.table, &k.topic),
                status,
            ),
            max_id_read: None,
            encoder,
            holes: Holes::new(gap_policy, &config.source.spec.table),
            stop,
            incidents: Incidents::default(),
            initial_position: options.initial_position,
            message_size: 256,
        })
    }

    /// The loop: standby until this instance holds the job's lease, then, turn after turn,
    /// read position → fetch batch → publish → commit. Returns Ok when stopped (or caught up,
    /// with `Mode::UntilCaughtUp`), Err on an error that retrying cannot fix. Retriable errors
    /// are retried with capped exponential backoff, forever.
    pub fn run(&mut self, mode: Mode) -> Result<(), Error> {
        let mut failures = 0u32;
        let mut state = State::Standby(Standby::default());
        while !self.stopping() {
            self.telemetry.emit(Event::Beat);
            let step = match &mut state {
                State::Standby(standby) => match self.activate(standby) {
                    Ok(Some(active)) => {
                        state = State::Active(active);
                        Ok(Step::Continue)
                    }
                    Ok(None) => Ok(Step::Standby),
                    Err(e) => Err(e),
                },
                State::Active(active) => {
                    self.sample_max_id();
                    self.telemetry.emit(Event::Beat);
                    self.replicate_batch(active)
                }
            };
            self.telemetry.emit(Event::Beat);
            let step = match step {
                Ok(step) => step,
                // Sending was cut short by shutdown: what was acknowledged is committed.
                Err(_) if self.stopping() => break,
                Err(Error::Store(e @ StoreError::Fenced { .. })) => {
                    log::warn!(state = "standby"; "lost the job's lease, stopping publishing: {e}");
                    self.telemetry.emit(Event::Active(false));
                    state = state.lose_lease();
                    continue;
                }
                Err(e) if e.is_worth_waiting_for() => {
                    self.report_incident(&e);
                    failures += 1;
                    let wait = self.backoff.delay(failures);
                    self.sleep(wait);
                    continue;
                }
                Err(e) => {
                    self.release_lease(&state);
                    return Err(e);
                }
            };
            failures = 0;
            self.incidents.recovered(&mut self.telemetry);
            match (step, mode) {
                (Step::Continue, _) => {}
                (Step::CaughtUp, Mode::UntilCaughtUp) => break,
                // Held rows wait for a proof that takes two polls: poll quickly.
                (Step::Holding, _) => {
                    let wait = self.poll_interval.min(Duration::from_millis(250));
                    state = self.idle(state, wait);
                }
                (Step::CaughtUp, Mode::Forever) => {
                    let late = Late {
                        source: &mut self.source,
                        producer: &mut self.producer,
                        encoder: &mut self.encoder,
                        telemetry: &mut self.telemetry,
                        topic: &self.topic,
                        key_mode: self.key_mode,
                        limit: self.limit,
                    };
                    if let Err(e) = self.holes.republish_late(late) {
                        // Counted as a failure like any other; the loop retries.
                        self.report_incident(&e);
                    }
                    state = self.idle(state, self.poll_interval);
                }
                (Step::Standby, _) => {
                    let State::Standby(standby) = &mut state else {
                        continue;
                    };
                    if mode == Mode::UntilCaughtUp {
                        // A crashed holder's lease lapses within its lifetime: wait that long,
                        // then say who holds it rather than exit 0 as if caught up.
                        let waited = standby.since.get_or_insert_with(Instant::now).elapsed();
                        if waited > self.lease.ttl() + Duration::from_secs(1) {
                            return Err(Error::LeaseHeld {
                                holder: self.lease.holder().unwrap_or_default().to_string(),
                            });
                        }
                    } else if !standby.logged {
                        log::info!(state = "standby"; "standby: another instance holds the job's lease; taking over when it lapses");
                        standby.logged = true;
                    }
                    self.sleep(self.lease.ttl() / 3)
                }
            }
        }
        if self.stopping() {
            log::info!("stopping: shutdown requested");
        }
        self.release_lease(&state);
        Ok(())
    }

    /// Takes the job's lease if it is free (or ours), and reads where to resume: the state a
    /// standby instance becomes active in.
    fn activate(&mut self, standby: &mut Standby) -> Result<Option<Active>, Error> {
        let before = self.lease.stored();
        if !self.lease.take(&mut self.store)? {
            self.telemetry.emit(Event::Active(false));
            return Ok(None);
        }
        // Active only once the position is known: a failed read (a Redis timeout right after
        // the lease script) leaves us standby, and the next turn takes the lease again.
        let stored = self.read_position()?;
        let position = match self.lease.resume(stored) {
            Resume::Stored(p) => p,
            Resume::Committed(c) => {
                log::warn!(
                    "the position is missing from {}: resuming after {c}, the last position this \
                     instance committed",
                    self.store.describe()
                );
                c
            }
            Resume::Nothing => self.first_position()?,
        };
        // A fresh look at the table's end for `rows_behind`, not one from before a standby.
        self.max_id_read = None;
        let from = if position == BEFORE_ANY_ID {
            "from the start of the table".to_string()
        } else {
            format!("after id {position}")
        };
        log::info!(state = "active"; "active (lease owner {}): resuming {from}", self.lease.owner());
        self.telemetry.emit(Event::Active(true));
        self.telemetry
            .emit(Event::Resumed(status_position(position)));
        // A batch still unacknowledged is ours to send again only if nobody moved the position
        // while we did not hold the lease (it lapsed during a long call); otherwise another
        // instance published from there.
        let unsettled = standby
            .unsettled
            .take()
            .filter(|_| before == Some(position));
        Ok(Some(Active {
            position,
            next: None,
            unsettled,
        }))
    }

    /// Where a job with no stored position and no committed one starts: `--initial-position`,
    /// or the start of the table if its topic is empty (else the position was lost).
    fn first_position(&mut self) -> Result<Id, Error> {
        if let Some(p) = self.initial_position {
            log::warn!(
                "no stored position: starting after {} (--initial-position)",
                show_position(p)
            );
            return Ok(p);
        }
        lease::check_new_job(&mut self.producer, &self.topic, &self.store)?;
        log::warn!(
            "no position stored in {} and topic {} is empty: a new job, starting from the \
             beginning of the table",
            self.store.describe(),
            self.topic
        );
        Ok(BEFORE_ANY_ID)
    }

    /// Gives the lease up if this instance holds it.
    fn release_lease(&mut self, state: &State) {
        if matches!(state, State::Active(_)) {
            self.lease.release(&mut self.store);
        }
    }

    fn read_position(&mut self) -> Result<Option<Id>, Error> {
        let started = Instant::now();
        let result = self.store.read();
        self.telemetry.emit(Event::StoreRead {
            ok: result.is_ok(),
            took: started.elapsed(),
        });
        result.map_err(Error::Store)
    }

    /// Reads the rows after `position`, cuts them at a hole that may still fill, and encodes
    /// them. The rows themselves are dropped here: only ids and messages go on.
    /// `in_flight`: the send of the previous batch, if it is still going on; its requests are
    /// handed to the sockets as they take them while the rows are read.
    fn prepare(
        &mut self,
        position: Id,
        in_flight: Option<&mut Pending>,
    ) -> Result<InFlight, Error> {
        let started = Instant::now();
        // While holes are held, the open transactions are looked at before the fetch too: the
        // proof that a hole is final needs a look taken before the rows it publishes (`gaps`).
        let before = if self.holes.needs_probe_before_fetch() {
            Some(self.source.open_transactions().map_err(Error::Source)?)
        } else {
            None
        };
        let mut batch = self.read(position, in_flight)?;
        let full = batch.ids.len() == self.limit;
        let holding = self.holes.hold(
            &mut self.source,
            &mut self.telemetry,
            position,
            &mut batch,
            before,
        )?;
        let (ids, messages) = batch.finish()?;
        let read = started.elapsed();
        self.telemetry.emit(Event::BatchRead {
            took: read,
            behind: full && !holding,
        });
        Ok(InFlight {
            ids,
            messages: Some(messages),
            holding,
            read,
            acknowledged: 0,
            unsettled: None,
        })
    }

    /// One turn of the loop: publish a batch (the one prepared during the previous turn, or a
    /// fresh one), and while the broker writes it, prepare the next; commit the position once
    /// Kafka acknowledged.
    fn replicate_batch(&mut self, active: &mut Active) -> Result<Step, Error> {
        if active.unsettled.is_some() {
            return self.resend_batch(active);
        }
        let mut batch = match active.next.take() {
            Some(batch) => *batch,
            None => self.prepare(active.position, None)?,
        };
        let (Some(&last_id), Some(messages)) = (batch.ids.last(), batch.messages.take()) else {
            self.telemetry.emit(Event::Flush);
            // Caught up, the loop would otherwise not talk to the store for as long as the
            // table stays quiet: a renewal due (or failed, in `idle`) makes a store outage
            // this step's error, not a recovery.
            self.lease.renew_if_due(&mut self.store)?;
            return Ok(if batch.holding {
                Step::Holding
            } else {
                Step::CaughtUp
            });
        };
        // Only the lease holder publishes: an instance that was paused past its lease finds out
        // here, before sending (or at the fenced commit, if it lost the lease mid-send).
        self.lease.renew_if_due(&mut self.store)?;

        let published = Instant::now();
        let full = !batch.holding && batch.ids.len() == self.limit;
        let mut pending = self.producer.start(messages);
        // Same thread, overlapping work: the broker writes this batch while we read and encode
        // the next one. Its rows are published only after this batch is committed.
        let following = if full {
            Some(self.prepare(last_id, Some(&mut pending)))
        } else {
            None
        };
        let result = self.producer.finish(pending);
        let (holding, read) = (batch.holding, batch.read);
        let ids = self.settle(active, batch, published, result)?;
        let (read_ms, publish_ms) = (read.as_millis(), published.elapsed().as_millis());
        log::info!(
            rows = ids.len(),
            first_id = ids[0],
            last_id = last_id,
            read_ms = read_ms,
            publish_ms = publish_ms;
            "replicated {} rows, ids {}..={last_id} (read {read_ms} ms, publish {publish_ms} ms)",
            ids.len(),
            ids[0],
        );
        match following {
            Some(prepared) => {
                active.next = Some(Box::new(prepared?));
                Ok(Step::Continue)
            }
            None if holding => Ok(Step::Holding),
            None => Ok(Step::CaughtUp),
        }
    }

    /// Sends a batch Kafka did not acknowledge in full again, as it was. It stays in `active`
    /// until the lease is renewed: a lease lost here keeps it for when it is taken back.
    fn resend_batch(&mut self, active: &mut Active) -> Result<Step, Error> {
        self.lease.renew(&mut self.store)?;
        let Some(mut batch) = active.unsettled.take().map(|b| *b) else {
            return Ok(Step::Continue);
        };
        let Some(send) = batch.unsettled.take() else {
            return Ok(Step::Continue);
        };
        let holding = batch.holding;
        let published = Instant::now();
        let result = self.producer.resume(send);
        let ids = self.settle(active, batch, published, result)?;
        let publish_ms = published.elapsed().as_millis();
        log::info!(
            rows = ids.len(),
            first_id = ids[0],
            last_id = ids[ids.len() - 1],
            publish_ms = publish_ms,
            sent_again = true;
            "replicated {} rows, ids {}..={} (sent again, publish {publish_ms} ms)",
            ids.len(),
            ids[0],
            ids[ids.len() - 1],
        );
        // The batch was read before it failed: read on from it at once.
        Ok(if holding {
            Step::Holding
        } else {
            Step::Continue
        })
    }

    /// What a publish of `batch` came to: counts it, commits what Kafka acknowledged (all of
    /// it, or after a failure the longest prefix in key order) and moves `active.position`
    /// with it, and keeps a transient failure's unacknowledged record batches to send again
    /// (`active.unsettled`). Returns the ids when all were acknowledged.
    fn settle(
        &mut self,
        active: &mut Active,
        mut batch: InFlight,
        published: Instant,
        result: Result<Vec<Delivery>, SendError>,
    ) -> Result<Vec<Id>, Error> {
        let took = published.elapsed();
        let ids = &batch.ids;
        let acknowledged = match &result {
            Ok(_) => ids.len(),
            Err(e) => e.acknowledged_prefix(),
        };
        let counted = batch.acknowledged;
        self.telemetry.emit(Event::Published {
            ok: result.is_ok(),
            acknowledged: acknowledged.saturating_sub(counted),
            took,
        });
        let moved = acknowledged > 0 && ids[acknowledged - 1] > active.position;
        if moved {
            let last = ids[acknowledged - 1];
            self.commit(last)?;
            active.position = last;
        }
        self.telemetry.emit(Event::Flush);
        match result {
            Ok(_) => Ok(batch.ids),
            Err(mut e) => {
                if moved {
                    log::warn!(
                        rows = acknowledged,
                        position = active.position;
                        "committed {acknowledged} acknowledged rows of a failed batch, up to {}",
                        active.position
                    );
                }
                if let Some(send) = e.take_unsettled() {
                    batch.unsettled = Some(send);
                    batch.acknowledged = counted.max(acknowledged);
                    active.unsettled = Some(Box::new(batch));
                }
                Err(Error::Kafka(e.error))
            }
        }
    }

    /// Reads the rows above `position` and encodes each message as its row streams in: the
    /// batch never holds rows, only their messages.
    fn read(
        &mut self,
        position: Id,
        mut in_flight: Option<&mut Pending>,
    ) -> Result<MessageBuffer, Error> {
        let started = Instant::now();
        let expected = self.limit * (self.message_size + 16);
        let batches = self.producer.batches(&self.topic, expected);
        let mut batch = MessageBuffer::new(batches.map_err(Error::Kafka)?, self.key_mode);
        let (encoder, producer) = (&mut self.encoder, &mut self.producer);
        let result = self.source.fetch_each(position, self.limit, |id, values| {
            // The previous batch's requests that did not fit the sockets go out as the broker
            // reads them, not all at `finish` (how often the sockets are looked at is the
            // producer's to decide).
            if let Some(pending) = in_flight.as_deref_mut() {
                producer.tick(pending);
            }
            batch.push(encoder, id, values)
        });
        self.telemetry.emit(Event::Fetched {
            ok: result.is_ok(),
            rows: *result.as_ref().unwrap_or(&0),
            took: started.elapsed(),
        });
        let count = result?;
        if let Some(average) = batch.bytes().checked_div(count) {
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
            let result = self.lease.commit(&mut self.store, position);
            self.telemetry.emit(Event::StoreWritten {
                ok: result.is_ok(),
                took: started.elapsed(),
            });
            match result {
                Ok(written) => {
                    if written == Written::LeaseRetaken {
                        log::warn!(
                            "the job's lease lapsed while Kafka acknowledged a batch (a call \
                             longer than lease_sec); nobody took it or moved the position, so it \
                             was taken again and the batch committed"
                        );
                    }
                    self.telemetry.emit(Event::Committed(position));
                    log::debug!(position = position; "committed position {position} for job {}", self.name);
                    return Ok(());
                }
                Err(e) => {
                    let e = Error::Store(e);
                    if self.stopping() || !e.is_worth_waiting_for() {
                        return Err(e);
                    }
                    self.report_incident(&e);
                    failures += 1;
                    let wait = self.backoff.delay(failures);
                    self.sleep(wait);
                }
            }
        }
    }

    /// Logs `e` once per incident (`incident`) and tells `status`.
    fn report_incident(&mut self, e: &Error) {
        self.incidents.report(&mut self.telemetry, e);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps while caught up, renewing the lease at a third of its lifetime so that an idle
    /// active instance keeps it. Returns the state to go on in: standby if the lease was lost.
    fn idle(&mut self, state: State, d: Duration) -> State {
        if !matches!(state, State::Active(_)) {
            return state;
        }
        let until = Instant::now() + d;
        while !self.stopping() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            self.sleep((until - now).min(self.lease.ttl() / 3));
            if let Err(e) = self.lease.renew(&mut self.store) {
                match e {
                    Error::Store(StoreError::Fenced { .. }) => {
                        log::warn!(state = "standby"; "lost the job's lease while idle: {e}");
                        self.telemetry.emit(Event::Active(false));
                        return state.lose_lease();
                    }
                    // A store outage: an incident now (not ready), and the next step renews
                    // again, so that it fails too rather than look like a recovery.
                    e => self.report_incident(&e),
                }
                break;
            }
        }
        state
    }

    /// Sleeps, waking within 50 ms of a shutdown request, with a heartbeat every second (a
    /// long backoff or poll interval is not a stall).
    fn sleep(&mut self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            self.telemetry.emit(Event::Beat);
            let now = Instant::now();
            if now >= until || !sleep_until(until.min(now + HEARTBEAT), &self.stop) {
                break;
            }
        }
    }

    /// Reads the table's highest id for `rows_behind`, at most once per poll interval. A
    /// failure is only noted: the fetch that follows reports the source's trouble.
    fn sample_max_id(&mut self) {
        if self
            .max_id_read
            .is_some_and(|t| t.elapsed() < self.poll_interval)
        {
            return;
        }
        self.max_id_read = Some(Instant::now());
        match self.source.max_id() {
            Ok(max) => self.telemetry.emit(Event::MaxId(max)),
            Err(e) => log::debug!("reading the highest id: {e}"),
        }
    }
}

/// How often a sleeping loop beats (`status`): well within any sensible stall timeout.
const HEARTBEAT: Duration = Duration::from_secs(1);

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
