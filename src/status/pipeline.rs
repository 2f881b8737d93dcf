//! One pipeline's status as its replication loop reports it (`Status::record`, from the loop's
//! events): its series, liveness and readiness.
//!
//! The loop writes, the endpoint's thread reads: counters and gauges sit behind one mutex that
//! the loop takes a few times per batch and a scrape takes once; the loop's heartbeat is an
//! atomic, written at every step and at least once a second while the loop sleeps.
//!
//! systemd's watchdog is fed from the same heartbeat: when the unit sets `WatchdogSec=`, a
//! beat sends `WATCHDOG=1` if a second (or half the watchdog time, if shorter) has passed since
//! the last one, so pings come from the loop itself, stop when it is stuck, and `WatchdogSec`
//! need only exceed the longest step.
//!
//! Liveness: alive while the loop completed a step (or a second of a sleep) within
//! `stall_timeout`. A healthy step never blocks longer than its calls' timeouts, which is what
//! `stall_timeout`'s default adds up (config).
//!
//! Readiness: not ready while starting, stalled, or while a dependency is failing (an incident,
//! from its first error to its recovery). Otherwise a standby is ready (it can take over), and
//! the active instance is ready unless it has been behind — fetching full batches without
//! reaching the end of the table — for longer than `ready_lag`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::event::{Event, Position};
use crate::notify::Notifier;
use crate::value::Id;

use super::exposition::{Exposition, Histogram};
use super::{Probe, Thresholds};

/// One job's status. Shared (`Arc`) between the loop and the endpoint.
pub struct Status {
    job: [(&'static str, String); 3],
    thresholds: Thresholds,
    started: Instant,
    /// Milliseconds from `started` to the loop's last heartbeat.
    beat: AtomicU64,
    /// systemd's watchdog and how often to ping it, when the unit asks for pings.
    watchdog: Option<(Notifier, Duration)>,
    /// Milliseconds from `started` to the last `WATCHDOG=1` (`u64::MAX`: none yet).
    pinged: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    role: Role,
    progress: Progress,
    incident: Option<Incident>,
    rows_published: u64,
    batches_ok: u64,
    batches_failed: u64,
    position: Position,
    /// The table's highest id when last read (`Some(None)`: the table was empty).
    max_id: Option<Option<Id>>,
    last_publish: Option<SystemTime>,
    publish: Histogram,
    read: Histogram,
    gap_held_rows: u64,
    gaps_final: u64,
    gaps_timed_out: u64,
    errors: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Role {
    #[default]
    Starting,
    Active,
    Standby,
}

/// Whether the active instance has reached the end of the table.
#[derive(Debug, Default, Clone, Copy)]
enum Progress {
    /// No batch read since it became active.
    #[default]
    Unknown,
    /// The last read returned less than a full batch (or rows wait at a hole).
    CaughtUp,
    /// Full batches since then.
    Behind { since: Instant },
}

#[derive(Debug)]
struct Incident {
    component: &'static str,
    error: String,
    since: Instant,
}

impl Status {
    pub fn new(name: &str, table: &str, topic: &str, thresholds: Thresholds) -> Status {
        Status {
            job: [
                ("name", name.to_owned()),
                ("table", table.to_owned()),
                ("topic", topic.to_owned()),
            ],
            thresholds,
            started: Instant::now(),
            beat: AtomicU64::new(0),
            watchdog: None,
            pinged: AtomicU64::new(u64::MAX),
            state: Mutex::new(State::default()),
        }
    }

    /// Takes in what the loop reports; events with no series or probe here are ignored.
    pub fn record(&self, event: &Event<'_>) {
        match *event {
            Event::Beat => self.beat(),
            Event::Active(active) => self.set_active(active),
            Event::Resumed(position) => self.position(position),
            Event::MaxId(max) => self.max_id(max),
            Event::BatchRead { took, behind } => self.read(took, behind),
            Event::Published {
                ok,
                acknowledged,
                took,
            } => self.published(took, acknowledged, ok),
            Event::Committed(position) => self.position(Position::At(position)),
            Event::GapSkipped { proven_final } => self.gap_skipped(proven_final),
            Event::GapHeld { rows, .. } => self.gap_held_rows(rows),
            Event::LateRowsPublished(rows) => self.published_late(rows),
            Event::Failed { component, error } => self.failed(component, error),
            Event::Recovered => self.recovered(),
            Event::StoreRead { .. }
            | Event::Fetched { .. }
            | Event::StoreWritten { .. }
            | Event::LateRowsFound(_)
            | Event::Flush => {}
        }
    }

    /// Pings systemd's watchdog from the heartbeat, if the unit set `WatchdogSec=`.
    pub fn with_watchdog(mut self, notifier: Notifier) -> Status {
        self.watchdog = notifier.watchdog_interval().map(|every| (notifier, every));
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; if something did, the counters are still good.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loop is alive: called at every step and during sleeps.
    fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.beat.store(ms, Ordering::Relaxed);
        if let Some((notifier, every)) = &self.watchdog {
            let last = self.pinged.load(Ordering::Relaxed);
            // At every beat, at most once a second (and at most twice per watchdog time): so
            // the longest gap between pings is the longest step, plus at most a second.
            let every = every.min(&WATCHDOG_PING).as_millis() as u64;
            if last == u64::MAX || ms.saturating_sub(last) >= every {
                self.pinged.store(ms, Ordering::Relaxed);
                notifier.watchdog();
            }
        }
    }

    pub(super) fn since_beat(&self) -> Duration {
        let beat = Duration::from_millis(self.beat.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(beat)
    }

    /// Took the lease (or has none to take: a state file), or lost it.
    fn set_active(&self, active: bool) {
        let mut s = self.state();
        let role = if active { Role::Active } else { Role::Standby };
        if s.role != role {
            s.role = role;
            s.progress = Progress::Unknown;
            if !active {
                s.position = Position::Unknown;
                s.max_id = None;
            }
        }
    }

    /// A read of `rows` rows took `took`; `full`: a whole batch came back, more may wait.
    fn read(&self, took: Duration, full: bool) {
        let mut s = self.state();
        s.read.observe(took.as_secs_f64());
        s.progress = match (full, s.progress) {
            (false, _) => Progress::CaughtUp,
            (true, Progress::Behind { since }) => Progress::Behind { since },
            (true, _) => Progress::Behind {
                since: Instant::now(),
            },
        };
    }

    /// A publish ended after `took`, with `acknowledged` rows acknowledged; `ok`: all of them.
    fn published(&self, took: Duration, acknowledged: usize, ok: bool) {
        let mut s = self.state();
        s.publish.observe(took.as_secs_f64());
        s.rows_published += acknowledged as u64;
        if ok {
            s.batches_ok += 1;
        } else {
            s.batches_failed += 1;
        }
        if acknowledged > 0 {
            s.last_publish = Some(SystemTime::now());
        }
    }

    /// Rows published outside a batch of the position (late rows of a skipped hole).
    fn published_late(&self, rows: usize) {
        let mut s = self.state();
        s.rows_published += rows as u64;
        s.last_publish = Some(SystemTime::now());
    }

    /// The position committed, or read at taking the lease.
    fn position(&self, position: Position) {
        self.state().position = position;
    }

    /// The table's highest id, as just read (`None`: the table is empty).
    fn max_id(&self, max: Option<Id>) {
        self.state().max_id = Some(max);
    }

    /// Rows held back at a hole in the id sequence after the last read.
    fn gap_held_rows(&self, rows: usize) {
        self.state().gap_held_rows = rows as u64;
    }

    /// A hole in the id sequence given up on: `proven_final`, or after its timeout.
    fn gap_skipped(&self, proven_final: bool) {
        let mut s = self.state();
        if proven_final {
            s.gaps_final += 1;
        } else {
            s.gaps_timed_out += 1;
        }
    }

    /// A call to `component` failed with `error` (one line, no secrets); the incident lasts
    /// until `recovered`.
    fn failed(&self, component: &'static str, error: &str) {
        let mut s = self.state();
        *s.errors.entry(component).or_default() += 1;
        let since = match &s.incident {
            Some(i) if i.component == component => i.since,
            _ => Instant::now(),
        };
        s.incident = Some(Incident {
            component,
            error: error.to_owned(),
            since,
        });
    }

    fn recovered(&self) {
        self.state().incident = None;
    }

    /// `/healthz`.
    pub(super) fn liveness(&self) -> Probe {
        let quiet = self.since_beat();
        let limit = self.thresholds.stall_timeout;
        if quiet > limit {
            Probe {
                ok: false,
                reason: format!(
                    "stalled: the replication loop has not completed a step for {:.1}s \
                     (stall_timeout_sec {})",
                    quiet.as_secs_f64(),
                    limit.as_secs_f64()
                ),
            }
        } else {
            Probe {
                ok: true,
                reason: format!("alive: last step {:.1}s ago", quiet.as_secs_f64()),
            }
        }
    }

    /// `/readyz`.
    pub(super) fn readiness(&self) -> Probe {
        let alive = self.liveness();
        if !alive.ok {
            return alive;
        }
        let s = self.state();
        let not_ready = |reason: String| Probe { ok: false, reason };
        if let Some(i) = &s.incident {
            return not_ready(format!(
                "{} failing for {:.1}s: {}",
                i.component,
                i.since.elapsed().as_secs_f64(),
                i.error
            ));
        }
        let ready = |reason: String| Probe { ok: true, reason };
        match (s.role, s.progress) {
            (Role::Starting, _) => not_ready("starting: start-up checks running".into()),
            (Role::Standby, _) => {
                ready("standby: another instance holds the job's lease; ready to take over".into())
            }
            (Role::Active, Progress::Unknown) => {
                not_ready("active: no batch read yet since taking the lease".into())
            }
            (Role::Active, Progress::CaughtUp) => ready(format!(
                "active: caught up{}",
                match s.position {
                    Position::At(p) => format!(" at position {p}"),
                    _ => String::new(),
                }
            )),
            (Role::Active, Progress::Behind { since }) => {
                let behind = since.elapsed();
                let rows = rows_behind(&s)
                    .map(|n| format!(", {n} ids behind"))
                    .unwrap_or_default();
                let lag = self.thresholds.ready_lag;
                if behind > lag {
                    not_ready(format!(
                        "active: behind for {:.1}s{rows} (ready_lag_sec {})",
                        behind.as_secs_f64(),
                        lag.as_secs_f64()
                    ))
                } else {
                    ready(format!(
                        "active: catching up for {:.1}s{rows}",
                        behind.as_secs_f64()
                    ))
                }
            }
        }
    }

    /// This pipeline's series, labelled with its job, table and topic.
    pub(super) fn render(&self, e: &mut Exposition) {
        let job: Vec<(&str, &str)> = self.job.iter().map(|(k, v)| (*k, v.as_str())).collect();
        e.labels(&job);
        let s = self.state();
        e.single(
            "repliqate_rows_published_total",
            "counter",
            "Rows Kafka acknowledged.",
            s.rows_published as f64,
        );
        e.by_label(
            (
                "repliqate_batches_total",
                "counter",
                "Batches published, by result (ok: every row acknowledged).",
            ),
            "result",
            &[
                ("ok", s.batches_ok as f64),
                ("error", s.batches_failed as f64),
            ],
        );
        let active = f64::from(u8::from(s.role == Role::Active));
        e.single(
            "repliqate_active",
            "gauge",
            "1 while this instance holds the lease and publishes; 0 on standby or starting.",
            active,
        );
        // Only the active instance knows these; a standby does not export them.
        if let Position::At(p) = s.position {
            e.single(
                "repliqate_position",
                "gauge",
                "The last committed primary key (as a float: exact up to 2^53).",
                p as f64,
            );
        }
        if let Some(Some(max)) = s.max_id {
            e.single(
                "repliqate_source_max_id",
                "gauge",
                "The table's highest primary key, read at most once per poll interval.",
                max as f64,
            );
        }
        if let Some(behind) = rows_behind(&s) {
            e.single(
                "repliqate_rows_behind",
                "gauge",
                "The table's highest id minus the position: how many ids are still to publish.",
                behind as f64,
            );
        }
        if let Some(t) = s.last_publish {
            let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            e.single(
                "repliqate_last_publish_timestamp_seconds",
                "gauge",
                "When Kafka last acknowledged rows (Unix time).",
                secs.as_secs_f64(),
            );
        }
        e.family(
            "repliqate_publish_seconds",
            "histogram",
            "Time from sending a batch to Kafka to its last acknowledgement.",
        );
        e.histogram("repliqate_publish_seconds", &s.publish);
        e.family(
            "repliqate_read_seconds",
            "histogram",
            "Time to read and encode a batch from the source.",
        );
        e.histogram("repliqate_read_seconds", &s.read);
        e.single(
            "repliqate_gap_held_rows",
            "gauge",
            "Rows read but held back above a hole in the id sequence that may still fill.",
            s.gap_held_rows as f64,
        );
        e.by_label(
            (
                "repliqate_gap_skipped_total",
                "counter",
                "Holes in the id sequence given up on: proven final, or after gap_timeout_sec.",
            ),
            "reason",
            &[
                ("final", s.gaps_final as f64),
                ("timeout", s.gaps_timed_out as f64),
            ],
        );
        // The three components always, so that a rate() has a series from the start.
        let mut errors: Vec<(&str, f64)> = COMPONENTS.iter().map(|c| (*c, 0.0)).collect();
        for (component, n) in &s.errors {
            match errors.iter_mut().find(|(c, _)| c == component) {
                Some(slot) => slot.1 = *n as f64,
                None => errors.push((component, *n as f64)),
            }
        }
        e.by_label(
            (
                "repliqate_errors_total",
                "counter",
                "Failed calls to a dependency that the loop retried, by component.",
            ),
            "component",
            &errors,
        );
    }

    /// `table → topic`, for a probe's reason that names the pipeline.
    pub(super) fn describe(&self) -> String {
        format!("{} → {}", self.job[1].1, self.job[2].1)
    }

    /// This instance holds the pipeline's lease and publishes it.
    pub(super) fn is_active(&self) -> bool {
        self.state().role == Role::Active
    }

    /// A dependency of the pipeline is failing (an incident).
    pub(super) fn is_failing(&self) -> bool {
        self.state().incident.is_some()
    }
}

/// The shortest time between two `WATCHDOG=1`.
const WATCHDOG_PING: Duration = Duration::from_secs(1);

/// The components of `repliqate_errors_total` (the replicator's `Error::component`).
const COMPONENTS: [&str; 3] = ["source", "kafka", "position store"];

/// The highest id minus the position; a new job counts from 0 (ids usually start at 1).
fn rows_behind(s: &State) -> Option<Id> {
    let from = match s.position {
        Position::Unknown => return None,
        Position::Start => 0,
        Position::At(p) => p,
    };
    Some(s.max_id?.map_or(0, |max| (max - from).max(0)))
}
