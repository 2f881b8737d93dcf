//! A job of several pipelines in one process: a thread per pipeline, each starting and running
//! its own `Replicator` (its own connections, lease, position and status), so that a pipeline
//! that fails never stops the others. It reports why (its log lines, its `/readyz` reason, its
//! `repliqate_errors_total`), waits with backoff, and starts again; with `--once` it ends, and
//! the job's exit says so. A job of one pipeline runs as before, on the main thread (`main`).
//!
//! The main thread watches: it sends READY=1 once every pipeline made its first start, feeds
//! systemd's watchdog while every pipeline's loop beats, and looks up the `tables` patterns
//! again every `discover_interval_sec`: a table that now matches gets a pipeline (a new job,
//! from the start of the table), one that no longer does has its pipeline stopped.
//!
//! Threads, not an event loop: each pipeline's loop blocks on its database, Kafka and Redis
//! calls, as the one-pipeline daemon does, and the pipelines share nothing but the registry the
//! endpoint reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::backoff::{sleep_until, Backoff};
use crate::config::{Config, Job, Pattern};
use crate::event::Event;
use crate::logging;
use crate::notify::Notifier;
use crate::replicator::{Error, Mode, Options, Replicator};
use crate::source;
use crate::status::{Registry, Status};

/// The first wait before a failed pipeline starts again; it doubles up to
/// `retry_backoff_max_sec`.
const FIRST_RESTART: Duration = Duration::from_secs(1);

/// How often the main thread looks at the pipelines (readiness, watchdog, ended threads).
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// A pipeline that ended with an error (with `--once`: any; otherwise one retrying cannot
/// help, which is only ever the stop flag's doing, so none).
#[derive(Debug)]
pub struct Failed {
    /// `table → topic`.
    pub pipeline: String,
    pub error: Error,
}

/// Runs every pipeline of `job` (those its patterns find included), each on its own thread,
/// until `stop` (or, with `Mode::UntilCaughtUp`, until each is caught up or failed). Returns
/// the pipelines that failed.
pub fn run(
    job: &Job,
    options: &Options,
    mode: Mode,
    stop: &Arc<AtomicBool>,
    registry: &Arc<Registry>,
    notifier: &Notifier,
) -> Vec<Failed> {
    let mut pipelines = Pipelines {
        options: options.clone(),
        mode,
        registry: registry.clone(),
        progress: Arc::new(Progress::default()),
        running: BTreeMap::new(),
        failed: Vec::new(),
    };
    for config in &job.pipelines {
        pipelines.start(config.clone(), None);
    }
    let mut discovery = Discovery::new(job);
    let unlisted = discovery.look(&mut pipelines);
    if mode == Mode::UntilCaughtUp {
        // Caught up means every table the patterns match: one that could not be listed failed.
        pipelines.failed.extend(unlisted);
    }
    let first = pipelines.running.len();
    registry.started();
    let mut ready = false;
    let mut next_look = Instant::now() + job.discover_interval;
    // WATCHDOG_USEC is twice the interval `watchdog_interval` gives.
    let watchdog = notifier.watchdog_interval();
    loop {
        pipelines.reap();
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            pipelines.stop_all();
        }
        // Running for ever, a job whose patterns match nothing yet waits for tables.
        if pipelines.running.is_empty() && (stopping || mode == Mode::UntilCaughtUp) {
            break;
        }
        if !ready && pipelines.progress.first_starts.load(Ordering::SeqCst) >= first {
            ready = true;
            notifier.ready(&format!(
                "replicating {} pipelines (job {})",
                pipelines.running.len(),
                job.pipelines
                    .first()
                    .or(job.patterns.first().map(|p| &p.template))
                    .map_or("", |c| c.name.as_str())
            ));
        }
        if let Some(every) = watchdog {
            if registry.longest_quiet() < 2 * every {
                notifier.watchdog();
            }
        }
        if mode == Mode::Forever && !stopping && Instant::now() >= next_look {
            discovery.look(&mut pipelines);
            next_look = Instant::now() + job.discover_interval;
        }
        if stopping {
            // The pipelines end within their calls' timeouts.
            thread::sleep(Duration::from_millis(50));
        } else {
            sleep_until(Instant::now() + WATCH_EVERY, stop);
        }
    }
    pipelines.failed
}

/// Every pipeline of `job` now: those named in the file, then those its patterns find in the
/// database (a table named in the file with the same topic is that one's), for `check` and
/// `position`; and why a pattern could not be looked up, or a table it found has no pipeline.
pub fn resolve(job: &Job) -> (Vec<Config>, Vec<source::SourceError>) {
    let mut all = job.pipelines.clone();
    let mut errors = Vec::new();
    for pattern in &job.patterns {
        match found(job, pattern) {
            Err(e) => errors.push(e),
            Ok(found) => {
                for (_, pipeline) in found {
                    match pipeline {
                        // Another pattern may have found it too.
                        Ok(config) if !same_in(&all, &config) => all.push(config),
                        Ok(_) => {}
                        Err(e) => errors.push(source::SourceError::Schema(e)),
                    }
                }
            }
        }
    }
    (all, errors)
}

/// The tables `pattern` matches now, each with its pipeline (or why it gets none), but those
/// named in the file with the same topic: they are that pipeline's.
fn found(job: &Job, pattern: &Pattern) -> Result<Vec<Found>, source::SourceError> {
    let spec = &pattern.template.source.spec;
    let tables = source::list_tables(spec, &pattern.like, &pattern.exclude)?;
    Ok(tables
        .into_iter()
        .map(|table| {
            let pipeline = pattern.pipeline(&table);
            (table, pipeline)
        })
        .filter(|(_, p)| !matches!(p, Ok(c) if same_in(&job.pipelines, c)))
        .collect())
}

/// A table a pattern found, and its pipeline (or why it gets none: its topic is no name).
type Found = (String, Result<Config, String>);

/// Whether `pipelines` has one of `config`'s table and topic.
fn same_in(pipelines: &[Config], config: &Config) -> bool {
    pipelines.iter().any(|c| {
        c.source.spec.table == config.source.spec.table && c.kafka.topic == config.kafka.topic
    })
}

/// The running pipelines, by table and topic.
struct Pipelines {
    options: Options,
    mode: Mode,
    registry: Arc<Registry>,
    progress: Arc<Progress>,
    running: BTreeMap<(String, String), Running>,
    failed: Vec<Failed>,
}

/// A pipeline's thread, and what stops it.
struct Running {
    stop: Arc<AtomicBool>,
    status: Arc<Status>,
    thread: JoinHandle<Result<(), Failed>>,
    /// The pattern that found it (its index in `Job::patterns`), if one did.
    pattern: Option<usize>,
}

impl Pipelines {
    /// Starts `config`'s pipeline on a thread of its own, unless its table and topic run.
    /// Returns whether it started one.
    fn start(&mut self, config: Config, pattern: Option<usize>) -> bool {
        let key = (config.source.spec.table.clone(), config.kafka.topic.clone());
        if self.running.contains_key(&key) {
            return false;
        }
        let status = Arc::new(Status::new(
            &config.name,
            &config.source.spec.table,
            &config.kafka.topic,
            config.health,
        ));
        self.registry.add(status.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let name = config.pipeline();
        let (options, mode) = (self.options.clone(), self.mode);
        let (thread_stop, thread_status) = (stop.clone(), status.clone());
        let progress = self.progress.clone();
        let spawned = thread::Builder::new()
            .name(config.source.spec.table.chars().take(15).collect())
            // The main thread's size, on which a job of one pipeline runs (only the pages
            // touched count against memory).
            .stack_size(8 << 20)
            .spawn(move || {
                logging::set_pipeline(&name);
                let result = pipeline(
                    &config,
                    &options,
                    mode,
                    &thread_stop,
                    &thread_status,
                    &progress,
                );
                result.map_err(|error| Failed {
                    pipeline: name,
                    error,
                })
            });
        match spawned {
            Ok(thread) => {
                self.running.insert(
                    key,
                    Running {
                        stop,
                        status,
                        thread,
                        pattern,
                    },
                );
                true
            }
            Err(e) => {
                // Out of threads: said, and tried again at the next look for a pattern's.
                log::error!("starting a thread for pipeline {} → {}: {e}", key.0, key.1);
                self.registry.remove(&status);
                false
            }
        }
    }

    /// Stops the pipeline of `key` (its thread ends within its calls' timeouts).
    fn stop(&self, key: &(String, String)) {
        if let Some(r) = self.running.get(key) {
            r.stop.store(true, Ordering::SeqCst);
        }
    }

    fn stop_all(&self) {
        for r in self.running.values() {
            r.stop.store(true, Ordering::SeqCst);
        }
    }

    /// Joins the threads that ended: their failures kept, their status no longer served
    /// (unless they failed with `--once`, whose endpoint then says why until the exit).
    fn reap(&mut self) {
        let ended: Vec<(String, String)> = self
            .running
            .iter()
            .filter(|(_, r)| r.thread.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            let Some(r) = self.running.remove(&key) else {
                continue;
            };
            match r.thread.join() {
                Ok(Ok(())) => self.registry.remove(&r.status),
                Ok(Err(f)) => self.failed.push(f),
                Err(_) => log::error!("the thread of pipeline {} → {} panicked", key.0, key.1),
            }
        }
    }
}

/// The `tables` patterns, looked up in their databases.
struct Discovery<'a> {
    job: &'a Job,
    /// Per pattern, what its last look said (found tables, or the error), to log changes once.
    last: Vec<Option<Result<Vec<String>, String>>>,
}

impl<'a> Discovery<'a> {
    fn new(job: &'a Job) -> Discovery<'a> {
        Discovery {
            job,
            last: vec![None; job.patterns.len()],
        }
    }

    /// Lists each pattern's tables: starts a pipeline for each new one, stops those of tables
    /// that no longer match. A pattern whose database cannot be read keeps its pipelines; it is
    /// returned as failed.
    fn look(&mut self, pipelines: &mut Pipelines) -> Vec<Failed> {
        let mut unlisted = Vec::new();
        for (i, pattern) in self.job.patterns.iter().enumerate() {
            let found = found(self.job, pattern);
            // What the look said, to log only what changed since the last one.
            let said = match &found {
                Ok(found) => Ok(found.iter().map(|(t, _)| t.clone()).collect()),
                Err(e) => Err(e.to_string()),
            };
            let changed = self.last[i].as_ref() != Some(&said);
            self.last[i] = Some(said);
            let every = self.job.discover_interval.as_secs_f64();
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    if changed {
                        log::warn!(
                            "{}: looking up the tables like {}: {e}; trying again in {every:.0}s",
                            pattern.at,
                            pattern.like,
                        );
                    }
                    unlisted.push(Failed {
                        pipeline: format!("{} (tables like {})", pattern.at, pattern.like),
                        error: Error::Source(e),
                    });
                    continue;
                }
            };
            if found.is_empty() && changed {
                log::warn!(
                    "{}: no table is like {} (and none of its exclusions); looking again every \
                     {every:.0}s",
                    pattern.at,
                    pattern.like,
                );
            }
            let mut wanted = Vec::new();
            for (table, pipeline) in found {
                match pipeline {
                    Ok(config) => {
                        wanted.push((table.clone(), config.kafka.topic.clone()));
                        if pipelines.start(config, Some(i)) {
                            log::info!(
                                "{}: table {table} is like {}: starting its pipeline",
                                pattern.at,
                                pattern.like
                            );
                        }
                    }
                    Err(e) if changed => log::warn!("{e}; no pipeline for it"),
                    Err(_) => {}
                }
            }
            let gone: Vec<(String, String)> = pipelines
                .running
                .iter()
                .filter(|(k, r)| r.pattern == Some(i) && !wanted.contains(k))
                .map(|(k, _)| k.clone())
                .collect();
            for key in gone {
                log::warn!(
                    "{}: table {} is no longer like {} (dropped or renamed): stopping its \
                     pipeline to {}",
                    pattern.at,
                    key.0,
                    pattern.like,
                    key.1
                );
                pipelines.stop(&key);
            }
        }
        unlisted
    }
}

/// One pipeline, started again after each failure until stopped (or, with `--once`, caught up
/// or failed).
fn pipeline(
    config: &Config,
    options: &Options,
    mode: Mode,
    stop: &Arc<AtomicBool>,
    status: &Arc<Status>,
    progress: &Progress,
) -> Result<(), Error> {
    let mut backoff = Backoff::new(FIRST_RESTART, config.retry_backoff_max.max(FIRST_RESTART));
    let mut failures = 0;
    let mut first = true;
    // The last failure logged: the same one again is logged at debug level (once per incident).
    let mut logged: Option<String> = None;
    loop {
        let started = Replicator::start(config, options, stop.clone(), status.clone());
        if std::mem::take(&mut first) {
            progress.first_starts.fetch_add(1, Ordering::SeqCst);
        }
        let result = started.and_then(|mut replicator| {
            // A failure reported before this start is over.
            status.record(&Event::Recovered);
            if logged.take().is_some() {
                log::warn!("started again after {failures} failed starts");
            }
            failures = 0;
            log::info!("started");
            replicator.run(mode)
        });
        let e = match result {
            Ok(()) => return Ok(()),
            Err(_) if stop.load(Ordering::Relaxed) => return Ok(()),
            Err(e) => e,
        };
        status.record(&Event::Failed {
            component: e.component(),
            error: &e.to_string(),
        });
        if mode == Mode::UntilCaughtUp {
            log::error!("{e}");
            return Err(e);
        }
        failures += 1;
        let wait = backoff.delay(failures);
        let text = e.to_string();
        if logged.as_ref() == Some(&text) {
            log::debug!("still failing: {text}");
        } else {
            log::error!("{text} (this pipeline starts again until it recovers; the others go on)");
            logged = Some(text);
        }
        if !sleep_until(Instant::now() + wait, stop) {
            return Ok(());
        }
    }
}

/// How far the pipelines' threads are, for the main thread.
#[derive(Default)]
struct Progress {
    /// Pipelines that made their first start (started, or failed and will try again).
    first_starts: AtomicUsize,
}
