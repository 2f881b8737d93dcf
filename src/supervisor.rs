//! A job of several pipelines in one process: a thread per pipeline, each starting and running
//! its own `Replicator` (its own connections, lease, position and status), so that a pipeline
//! that fails never stops the others. It reports why (its log lines, its `/readyz` reason, its
//! `repliqate_errors_total`), waits with backoff, and starts again; with `--once` it ends, and
//! the job's exit says so. A job of one pipeline runs as before, on the main thread (`main`).
//!
//! Threads, not an event loop: each pipeline's loop blocks on its database, Kafka and Redis
//! calls, as the one-pipeline daemon does, and the pipelines share nothing but the stop flag and
//! the registry the endpoint reads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::backoff::{sleep_until, Backoff};
use crate::config::{Config, Job};
use crate::event::Event;
use crate::logging;
use crate::notify::Notifier;
use crate::replicator::{Error, Mode, Options, Replicator};
use crate::status::{Registry, Status};

/// The first wait before a failed pipeline starts again; it doubles up to
/// `retry_backoff_max_sec`.
const FIRST_RESTART: Duration = Duration::from_secs(1);

/// A pipeline that ended with an error (with `--once`: any; otherwise one retrying cannot
/// help, which is only ever the stop flag's doing, so none).
#[derive(Debug)]
pub struct Failed {
    /// `table → topic`.
    pub pipeline: String,
    pub error: Error,
}

/// Runs every pipeline of `job`, each on its own thread, until `stop` (or, with
/// `Mode::UntilCaughtUp`, until each is caught up or failed). Sends READY=1 once every pipeline
/// has made its first start (started, or failed and is retrying), and feeds systemd's watchdog
/// while every pipeline's loop beats. Returns the pipelines that failed.
pub fn run(
    job: &Job,
    options: &Options,
    mode: Mode,
    stop: &Arc<AtomicBool>,
    registry: &Arc<Registry>,
    notifier: &Notifier,
) -> Vec<Failed> {
    let progress = Progress::default();
    let mut failed = Vec::new();
    thread::scope(|scope| {
        let mut threads = Vec::new();
        for config in &job.pipelines {
            let name = config.pipeline();
            let status = Arc::new(Status::new(
                &config.name,
                &config.source.spec.table,
                &config.kafka.topic,
                config.health,
            ));
            registry.add(status.clone());
            let progress = &progress;
            let spawned = thread::Builder::new()
                .name(thread_name(config))
                // The main thread's size, on which a job of one pipeline runs (only the pages
                // touched count against memory).
                .stack_size(8 << 20)
                .spawn_scoped(scope, move || {
                    logging::set_pipeline(&name);
                    let result = pipeline(config, options, mode, stop, &status, progress);
                    progress.done.fetch_add(1, Ordering::SeqCst);
                    result.map_err(|error| Failed {
                        pipeline: name,
                        error,
                    })
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    // Out of threads: the process cannot run the job as configured.
                    log::error!("starting a thread for pipeline {}: {e}", config.pipeline());
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }
        watch(job, stop, registry, notifier, &progress, threads.len());
        for handle in threads {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(f)) => failed.push(f),
                // A panic is a bug; the others have stopped by now (the scope waited).
                Err(_) => log::error!("a pipeline's thread panicked"),
            }
        }
    });
    failed
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

/// The main thread while the pipelines run: READY=1 once each made its first start, and
/// WATCHDOG=1 while every pipeline's loop beats within the watchdog's time.
fn watch(
    job: &Job,
    stop: &AtomicBool,
    registry: &Registry,
    notifier: &Notifier,
    progress: &Progress,
    threads: usize,
) {
    let mut ready = false;
    // WATCHDOG_USEC is twice the interval `watchdog_interval` gives.
    let watchdog = notifier.watchdog_interval();
    while progress.done.load(Ordering::SeqCst) < threads {
        if !ready && progress.first_starts.load(Ordering::SeqCst) >= threads {
            ready = true;
            notifier.ready(&format!(
                "replicating {} pipelines (job {})",
                job.pipelines.len(),
                job.pipelines.first().map_or("", |c| c.name.as_str())
            ));
        }
        if let Some(every) = watchdog {
            if registry.longest_quiet() < 2 * every {
                notifier.watchdog();
            }
        }
        if !sleep_until(Instant::now() + Duration::from_millis(500), stop) {
            // Stopping: the pipelines end within their calls' timeouts (the scope waits).
            break;
        }
    }
}

/// How far the pipelines' threads are, for the main thread.
#[derive(Default)]
struct Progress {
    /// Pipelines that made their first start (started, or failed and will try again).
    first_starts: AtomicUsize,
    /// Pipelines whose thread has ended.
    done: AtomicUsize,
}

/// A thread's name (at most 15 bytes show in `top`): the table's start.
fn thread_name(config: &Config) -> String {
    config.source.spec.table.chars().take(15).collect()
}
