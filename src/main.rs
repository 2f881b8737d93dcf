//! The `repliqate` binary: parses the command line, sets up logging and signals, and maps errors
//! to exit codes. All the work happens in the library (`repliqate::replicator`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use argh::FromArgs;
use repliqate::cli::check;
use repliqate::cli::position;
use repliqate::config::{Config, LogFormat};
use repliqate::notify::Notifier;
use repliqate::replicator::{Mode, Options, Replicator};
use repliqate::status::{Registry, Server, Status};
use repliqate::supervisor;

/// Replicates new rows of an append-only SQL table into a Kafka topic.
#[derive(FromArgs)]
struct Args {
    /// path of the YAML configuration file (default: config.yaml)
    #[argh(option)]
    config: Option<PathBuf>,

    /// more logging: -v warnings, -vv info, -vvv debug (default: errors only; RUST_LOG refines)
    #[argh(switch, short = 'v')]
    verbose: u8,

    /// replicate until caught up, then exit 0 (for cron jobs and tests)
    #[argh(switch)]
    once: bool,

    /// where to start when no position is stored: the last id already replicated, or `start`
    /// for the whole table; without it, a job whose topic already has records refuses to start
    #[argh(option, from_str_fn(parse_position))]
    initial_position: Option<i128>,

    /// print the version and exit
    #[argh(switch)]
    version: bool,

    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Check(CheckArgs),
    Position(PositionArgs),
}

/// Run every check the daemon makes at start-up (config, source, position store and lease,
/// each Kafka broker, topic, lost position), plus the highest id, the row count and the rows
/// behind, writing nothing. Exit codes as the daemon's: 0 all passed, 2 configuration, 3
/// unreachable.
#[derive(FromArgs)]
#[argh(subcommand, name = "check")]
struct CheckArgs {
    /// path of the YAML configuration file (default: config.yaml)
    #[argh(option)]
    config: Option<PathBuf>,

    /// print one JSON document instead of one line per check
    #[argh(switch)]
    json: bool,

    /// as the daemon's: where a job with no stored position would start (an id, or `start`)
    #[argh(option, from_str_fn(parse_position))]
    initial_position: Option<i128>,

    /// more logging, as the daemon's -v
    #[argh(switch, short = 'v')]
    verbose: u8,
}

/// Show or change the job's stored position.
#[derive(FromArgs)]
#[argh(subcommand, name = "position")]
struct PositionArgs {
    #[argh(subcommand)]
    action: PositionAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum PositionAction {
    Show(ShowArgs),
    Set(SetArgs),
    Reset(ResetArgs),
}

/// Print the stored position and who holds the job's lease.
#[derive(FromArgs)]
#[argh(subcommand, name = "show")]
struct ShowArgs {
    /// the pipeline's table, in a job of several pipelines
    #[argh(option)]
    table: Option<String>,

    /// the pipeline's topic, where its table goes to several topics
    #[argh(option)]
    topic: Option<String>,

    /// path of the YAML configuration file (default: config.yaml)
    #[argh(option)]
    config: Option<PathBuf>,

    /// print one JSON document
    #[argh(switch)]
    json: bool,
}

/// Store a position: the job resumes after ID (lower to replay rows, higher to skip them).
/// Refused while another instance holds the job's lease, unless --force. A negative ID goes
/// after `--`: `repliqate position set --config F --yes -- -5`.
#[derive(FromArgs)]
#[argh(subcommand, name = "set")]
struct SetArgs {
    /// the position to store: an integer id
    #[argh(positional, from_str_fn(parse_id))]
    id: i128,

    /// the pipeline's table, in a job of several pipelines
    #[argh(option)]
    table: Option<String>,

    /// the pipeline's topic, where its table goes to several topics
    #[argh(option)]
    topic: Option<String>,

    /// path of the YAML configuration file (default: config.yaml)
    #[argh(option)]
    config: Option<PathBuf>,

    /// do not ask for confirmation (required when stdin is not a terminal)
    #[argh(switch)]
    yes: bool,

    /// take the lease over from a running instance: it stands by, then resumes from ID (Redis
    /// only)
    #[argh(switch)]
    force: bool,
}

/// Remove the stored position: the job starts as a new job, which needs --initial-position if
/// its topic already has records. Refused while any instance holds the job's lease.
#[derive(FromArgs)]
#[argh(subcommand, name = "reset")]
struct ResetArgs {
    /// the pipeline's table, in a job of several pipelines
    #[argh(option)]
    table: Option<String>,

    /// the pipeline's topic, where its table goes to several topics
    #[argh(option)]
    topic: Option<String>,

    /// path of the YAML configuration file (default: config.yaml)
    #[argh(option)]
    config: Option<PathBuf>,

    /// do not ask for confirmation (required when stdin is not a terminal)
    #[argh(switch)]
    yes: bool,
}

/// Exit codes, documented in docs/operations.md ("Exit codes"), and the map from errors to them:
/// the one place.
mod exit {
    use repliqate::cli::check::Report;
    use repliqate::cli::position::PositionError;
    use repliqate::replicator::Error;

    /// A replication error that retrying cannot fix, while running (or a change declined).
    pub const RUNTIME: u8 = 1;
    /// The configuration (file, URI, table, columns, topic, stored position, certificates,
    /// credentials) is wrong: restarting cannot help.
    pub const CONFIG: u8 = 2;
    /// A dependency (database, Redis, Kafka) was unreachable at start-up, or another instance
    /// holds the job.
    pub const UNAVAILABLE: u8 = 3;

    /// An error at start-up (also `check`'s and `position`'s): a refusal only an operator can
    /// fix is configuration, an outage is "unavailable".
    pub fn start_up(e: &Error) -> u8 {
        if e.is_retriable() && !e.needs_operator() {
            UNAVAILABLE
        } else {
            CONFIG
        }
    }

    /// An error that ended the run. The loop retries everything retriable itself; one it
    /// returns (another instance holding the lease, with --once) means "try again later".
    pub fn running(e: &Error) -> u8 {
        if e.is_retriable() {
            UNAVAILABLE
        } else {
            RUNTIME
        }
    }

    /// `check`'s failures: configuration when any is one, even beside an outage.
    pub fn check(report: &Report) -> u8 {
        worst(&report.failures().map(start_up).collect::<Vec<u8>>())
    }

    /// The code of several outcomes: configuration when any is, else the first failure's.
    pub fn worst(codes: &[u8]) -> u8 {
        if codes.contains(&CONFIG) {
            CONFIG
        } else {
            codes.iter().copied().find(|&c| c != 0).unwrap_or(0)
        }
    }

    /// A change of the position not made.
    pub fn position(e: &PositionError) -> u8 {
        match e {
            PositionError::Failed(e) => start_up(e),
            // Another instance runs: try again when it is stopped.
            PositionError::Busy { .. } => UNAVAILABLE,
            PositionError::Declined => RUNTIME,
        }
    }
}

/// See Cargo.toml: musl's allocator returns every large free to the kernel.
#[cfg(all(target_env = "musl", target_pointer_width = "64"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let argv = expand_short_flags(std::env::args().skip(1));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let args = match Args::from_args(&["repliqate"], &argv) {
        Ok(args) => args,
        Err(argh::EarlyExit {
            output,
            status: Ok(()),
        }) => {
            println!("{output}");
            return ExitCode::SUCCESS;
        }
        Err(argh::EarlyExit {
            output,
            status: Err(()),
        }) => {
            return fail(
                exit::CONFIG,
                &format!("{} (see repliqate --help)", output.trim()),
            );
        }
    };
    if args.version {
        println!("repliqate {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let default_config = || args.config.clone().unwrap_or_else(|| "config.yaml".into());
    if args.command.is_some() && (args.once || args.initial_position.is_some()) {
        return fail(
            exit::CONFIG,
            "--once and --initial-position before a command are for running the daemon; give \
             check's --initial-position after `check` (see repliqate --help)",
        );
    }
    // The operator tools log as text: their output is a report, their log lines go to stderr.
    match &args.command {
        None => {}
        Some(Command::Check(c)) => {
            init_logging(args.verbose.max(c.verbose), LogFormat::Text, false);
            repliqate::tls::provider();
            return check(&c.config.clone().unwrap_or_else(default_config), c);
        }
        Some(Command::Position(p)) => {
            init_logging(args.verbose, LogFormat::Text, false);
            repliqate::tls::provider();
            return position(&p.action, default_config());
        }
    }
    // Before anything builds a TLS config (the redis and mysql crates build their own).
    repliqate::tls::provider();

    // The log format comes from the file, so its errors are `fail`'s one line, never a log line.
    let job = match repliqate::config::load_job(&default_config()) {
        Ok(job) => job,
        Err(e) => return fail(exit::CONFIG, &e.to_string()),
    };
    if job.is_several() && args.initial_position.is_some() {
        return fail(
            exit::CONFIG,
            "--initial-position is for a job of one table; this job has several pipelines \
             (each without a stored position starts as a new job does)",
        );
    }
    // The job's own settings are in every pipeline's config alike.
    let config = job.settings().clone();
    let several = job.is_several();
    init_logging(args.verbose, config.log_format, several);
    let mut warned = Vec::new();
    let patterns = job.patterns.iter().map(|p| &p.template);
    for warning in job
        .pipelines
        .iter()
        .chain(patterns)
        .flat_map(|c| c.warnings())
    {
        if !warned.contains(&warning) {
            log::warn!("{warning}");
            warned.push(warning);
        }
    }
    // The rows' hashes: SHA-NI four at a time, or sha2 (slower) where that cannot be used.
    match sha256x4::engine() {
        sha256x4::Engine::ShaNi => log::debug!("hashing: SHA-NI, four messages at a time"),
        sha256x4::Engine::Sha2 { why } if why.contains("known-answer") => {
            log::warn!("hashing with sha2, one message at a time: {why}")
        }
        sha256x4::Engine::Sha2 { why } => {
            log::info!("hashing with sha2, one message at a time: {why}")
        }
    }
    // Before any thread starts (the signal handler's): it removes NOTIFY_SOCKET and the watchdog
    // variables from the environment.
    let notifier = Notifier::from_env();

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let on_signal = notifier.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            log::warn!("second signal: exiting at once");
            std::process::exit(130);
        }
        on_signal.stopping();
    }) {
        return fail(
            exit::RUNTIME,
            &format!("installing the signal handler: {e}"),
        );
    }

    let registry = Arc::new(Registry::new(&config.name));
    if let Some(addr) = &config.metrics_addr {
        match Server::start(addr, registry.clone()) {
            Ok(server) => log::info!(
                "serving /metrics, /healthz and /readyz on http://{}",
                server.local_addr()
            ),
            Err(e) => {
                // Taken by another process (maybe an instance still stopping), or an address
                // not up yet (at boot): worth a restart.
                let transient = matches!(
                    e.kind(),
                    std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable
                );
                let code = if transient {
                    exit::UNAVAILABLE
                } else {
                    exit::CONFIG
                };
                return fail(
                    code,
                    &format!("repliqate.metrics_addr: listening on {addr}: {e}"),
                );
            }
        }
    }

    let options = Options {
        initial_position: args.initial_position,
    };
    let mode = if args.once {
        Mode::UntilCaughtUp
    } else {
        Mode::Forever
    };
    if several {
        let failed = supervisor::run(&job, &options, mode, &stop, &registry, &notifier);
        notifier.stopping();
        if failed.is_empty() {
            return ExitCode::SUCCESS;
        }
        let each: Vec<String> = failed
            .iter()
            .map(|f| format!("{}: {}", f.pipeline, f.error))
            .collect();
        return fail(
            exit::RUNTIME,
            &format!(
                "job {}: {} of {} pipelines failed: {}",
                config.name,
                failed.len(),
                job.pipelines.len(),
                each.join("; ")
            ),
        );
    }
    let status = Arc::new(
        Status::new(
            &config.name,
            &config.source.spec.table,
            &config.kafka.topic,
            config.health,
        )
        .with_watchdog(notifier.clone()),
    );
    registry.add(status.clone());
    let mut replicator = match Replicator::start(&config, &options, stop, status) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                exit::start_up(&e),
                &format!("starting job {}: {e}", config.name),
            )
        }
    };
    // Every start-up check passed.
    notifier.ready(&format!(
        "replicating table {} to topic {} (job {})",
        config.source.spec.table, config.kafka.topic, config.name
    ));
    let result = replicator.run(mode);
    notifier.stopping();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(exit::running(&e), &format!("job {}: {e}", config.name)),
    }
}

/// `repliqate check`: the report on stdout, and the exit code of its failures (configuration
/// when any failure is one, even beside an outage). A job of several pipelines: a block per
/// pipeline under its name, or with `--json` a list of their documents, each with `pipeline`.
fn check(path: &Path, args: &CheckArgs) -> ExitCode {
    let options = Options {
        initial_position: args.initial_position,
    };
    let reports = check::check(path, &options);
    let codes: Vec<u8> = reports.iter().map(|(_, r)| exit::check(r)).collect();
    let code = exit::worst(&codes);
    match reports.as_slice() {
        [(None, report)] if args.json => print_out(&format!("{}\n", report.json(code))),
        [(None, report)] => print_out(&report.text()),
        _ if args.json => {
            let docs: Vec<serde_json::Value> = reports
                .iter()
                .zip(&codes)
                .map(|((name, report), code)| {
                    let mut doc = report.json(*code);
                    doc["pipeline"] = serde_json::json!(name);
                    doc
                })
                .collect();
            print_out(&format!("{}\n", serde_json::Value::Array(docs)));
        }
        _ => {
            let blocks: Vec<String> = reports
                .iter()
                .map(|(name, report)| {
                    format!(
                        "pipeline {}\n{}",
                        name.as_deref().unwrap_or("?"),
                        report.text()
                    )
                })
                .collect();
            print_out(&blocks.join("\n"));
        }
    }
    ExitCode::from(code)
}

/// `repliqate position show|set|reset`.
fn position(action: &PositionAction, default_config: PathBuf) -> ExitCode {
    let (path, json, table, topic) = match action {
        PositionAction::Show(a) => (&a.config, a.json, &a.table, &a.topic),
        PositionAction::Set(a) => (&a.config, false, &a.table, &a.topic),
        PositionAction::Reset(a) => (&a.config, false, &a.table, &a.topic),
    };
    let job = match repliqate::config::load_job(&path.clone().unwrap_or(default_config)) {
        Ok(job) => job,
        Err(e) => return fail(exit::CONFIG, &e.to_string()),
    };
    let (pipelines, errors) = supervisor::resolve(&job);
    for e in &errors {
        eprintln!("repliqate: {e}");
    }
    let chosen = match repliqate::config::select(&pipelines, table.as_deref(), topic.as_deref()) {
        Ok(chosen) => chosen,
        // A pattern not looked up may have had it: an outage, worth trying again.
        Err(e) if errors.iter().any(|e| e.is_retriable()) => return fail(exit::UNAVAILABLE, &e),
        Err(e) => return fail(exit::CONFIG, &e),
    };
    let (change, yes, force) = match action {
        PositionAction::Show(_) => return show_positions(&chosen, json, job.is_several()),
        PositionAction::Set(a) => (position::Change::Set(a.id), a.yes, a.force),
        PositionAction::Reset(a) => (position::Change::Reset, a.yes, false),
    };
    let config = match chosen.as_slice() {
        [one] => *one,
        several => {
            let names: Vec<String> = several.iter().map(|c| c.pipeline()).collect();
            return fail(
                exit::CONFIG,
                &format!(
                    "{} pipelines match; a change is to one pipeline's position: name it with \
                     --table (and --topic where a table goes to several topics): {}",
                    several.len(),
                    names.join(", ")
                ),
            );
        }
    };
    if !yes && !std::io::stdin().is_terminal() {
        return fail(
            exit::CONFIG,
            &format!(
                "job {}: not changing the position without confirmation: stdin is not a \
                 terminal; pass --yes",
                config.name
            ),
        );
    }
    let confirm = |plan: &position::Plan| yes || ask(&format!("{plan}\nChange it? [y/N] "));
    match position::change(config, change, force, confirm) {
        Ok(changed) => {
            // Always, whatever the log level: who moved the position, from what to what.
            eprintln!("repliqate: {changed}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(exit::position(&e), &format!("job {}: {e}", config.name)),
    }
}

/// `position show` of the chosen pipelines: one as before; in a job of several, each under its
/// name (`--json`: a list, each with `pipeline`). The first failure's exit code, after all.
fn show_positions(chosen: &[&Config], json: bool, several: bool) -> ExitCode {
    let mut docs = Vec::new();
    let mut code = 0;
    for config in chosen {
        let shown = match position::show(config) {
            Ok(shown) => shown,
            Err(e) => {
                eprintln!(
                    "repliqate: job {} ({}): {e}",
                    config.name,
                    config.pipeline()
                );
                code = exit::worst(&[code, exit::start_up(&e)]);
                continue;
            }
        };
        match (several, json) {
            (false, _) => print_shown(&shown, json),
            (true, true) => {
                let mut doc = shown.json();
                doc["pipeline"] = serde_json::json!(config.pipeline());
                docs.push(doc);
            }
            (true, false) => {
                print_out(&format!("pipeline {}\n{}", config.pipeline(), shown.text()))
            }
        }
    }
    if several && json {
        print_out(&format!("{}\n", serde_json::Value::Array(docs)));
    }
    ExitCode::from(code)
}

fn print_shown(shown: &position::Shown, json: bool) {
    if json {
        print_out(&format!("{}\n", shown.json()));
    } else {
        print_out(&shown.text());
    }
}

/// Writes a report to stdout. A reader that went away (`check | head -1`) is no reason to
/// panic, nor to change the exit code, which says what was checked.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Asks `question` on stderr and reads the answer from stdin: yes only for `y` or `yes`.
fn ask(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

fn parse_position(s: &str) -> Result<i128, String> {
    if s == "start" {
        return Ok(repliqate::replicator::BEFORE_ANY_ID);
    }
    position::parse_id(s).map_err(|e| format!("--initial-position: {e}, or `start`"))
}

fn parse_id(s: &str) -> Result<i128, String> {
    position::parse_id(s).map_err(|e| format!("ID: {e}"))
}

/// One line on stderr, `repliqate: what we were doing: cause`, and the exit code.
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("repliqate: {message}");
    ExitCode::from(code)
}

/// `several`: a job of several pipelines, whose text lines name the pipeline.
fn init_logging(verbose: u8, format: LogFormat, several: bool) {
    let level = match verbose {
        0 => log::LevelFilter::Error,
        1 => log::LevelFilter::Warn,
        2 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    // Our own crate at the chosen level; the drivers' chatter only from warnings up, unless
    // RUST_LOG says otherwise.
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level.min(log::LevelFilter::Warn))
        .filter_module("repliqate", level)
        .parse_env("RUST_LOG");
    if format == LogFormat::Json {
        builder.format(repliqate::logging::format_json);
    } else if several {
        builder.format(repliqate::logging::format_text);
    }
    builder.init();
}

/// The old tool accepted `-vv` and `-vvv` (argparse); argh wants `-v -v`. Expands the former.
fn expand_short_flags(args: impl Iterator<Item = String>) -> Vec<String> {
    args.flat_map(|a| {
        if a.len() > 2 && a.starts_with("-v") && a[1..].bytes().all(|b| b == b'v') {
            vec!["-v".to_string(); a.len() - 1]
        } else {
            vec![a]
        }
    })
    .collect()
}
