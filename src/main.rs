//! The `repliqate` binary: parses the command line, sets up logging and signals, and maps errors
//! to exit codes. All the work happens in the library (`repliqate::replicator`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use argh::FromArgs;
use repliqate::config::LogFormat;
use repliqate::notify::Notifier;
use repliqate::replicator::{Mode, Options, Replicator};
use repliqate::status::{Server, Status};

/// Replicates new rows of an append-only SQL table into a Kafka topic.
#[derive(FromArgs)]
struct Args {
    /// path of the YAML configuration file (default: config.yaml)
    #[argh(option, default = "PathBuf::from(\"config.yaml\")")]
    config: PathBuf,

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
}

/// Exit codes, documented in the README.
mod exit {
    /// A replication error that retrying cannot fix, while running.
    pub const RUNTIME: u8 = 1;
    /// The configuration (file, URI, table, columns, topic, stored position, certificates,
    /// credentials) is wrong: restarting cannot help.
    pub const CONFIG: u8 = 2;
    /// A dependency (database, Redis, Kafka) was unreachable at start-up.
    pub const UNAVAILABLE: u8 = 3;
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
    // Before anything builds a TLS config (the redis and mysql crates build their own).
    repliqate::tls::provider();

    // The log format comes from the file, so its errors are `fail`'s one line, never a log line.
    let config = match repliqate::config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(exit::CONFIG, &e.to_string()),
    };
    init_logging(args.verbose, config.log_format);
    for warning in config.warnings() {
        log::warn!("{warning}");
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

    let status = Arc::new(
        Status::new(
            &config.name,
            &config.source.spec.table,
            &config.kafka.topic,
            config.health,
        )
        .with_watchdog(notifier.clone()),
    );
    if let Some(addr) = &config.metrics_addr {
        match Server::start(addr, status.clone()) {
            Ok(server) => log::info!(
                "serving /metrics, /healthz and /readyz on http://{}",
                server.local_addr()
            ),
            Err(e) => {
                // Taken by another process (maybe an instance still stopping): worth a restart.
                let code = if e.kind() == std::io::ErrorKind::AddrInUse {
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
    let mut replicator = match Replicator::start(&config, &options, stop, status) {
        Ok(r) => r,
        Err(e) => {
            let code = if e.is_retriable() && !e.needs_operator() {
                exit::UNAVAILABLE
            } else {
                exit::CONFIG
            };
            return fail(code, &format!("starting job {}: {e}", config.name));
        }
    };
    // Every start-up check passed.
    notifier.ready(&format!(
        "replicating table {} to topic {} (job {})",
        config.source.spec.table, config.kafka.topic, config.name
    ));
    let mode = if args.once {
        Mode::UntilCaughtUp
    } else {
        Mode::Forever
    };
    let result = replicator.run(mode);
    notifier.stopping();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The loop retries everything retriable itself; one it returns (another instance
        // holding the lease, with --once) means "try again later".
        Err(e) if e.is_retriable() => fail(exit::UNAVAILABLE, &format!("job {}: {e}", config.name)),
        Err(e) => fail(exit::RUNTIME, &format!("job {}: {e}", config.name)),
    }
}

fn parse_position(s: &str) -> Result<i128, String> {
    if s == "start" {
        return Ok(repliqate::replicator::BEFORE_ANY_ID);
    }
    s.parse()
        .map_err(|_| format!("--initial-position: expected an integer id or `start`, got {s:?}"))
}

/// One line on stderr, `repliqate: what we were doing: cause`, and the exit code.
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("repliqate: {message}");
    ExitCode::from(code)
}

fn init_logging(verbose: u8, format: LogFormat) {
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
