//! `scripts/stack` run from the tests: stopping and starting the stack's services and the
//! cluster's brokers, a private broker, the broker's log dumper. The tests run the script the
//! stack was started with (`REPLIQATE_STACK`, from `scripts/stack env`), so the stack and the
//! tests manage services one way.

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::time::Instant;

use super::env::stack_var;

/// Runs `scripts/stack ARGS…` to completion and returns what it printed, whatever its exit.
pub fn stack<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let script = stack_var("REPLIQATE_STACK");
    try_stack(args).unwrap_or_else(|e| panic!("running {script}: {e}"))
}

/// [`stack`] without panicking, for guards that restore the stack while a failed test unwinds.
pub fn try_stack<S: AsRef<OsStr>>(args: &[S]) -> std::io::Result<Output> {
    let script = std::env::var_os("REPLIQATE_STACK").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "REPLIQATE_STACK is not set")
    })?;
    Command::new(script).args(args).output()
}

/// Runs `scripts/stack ARGS…` and returns its stdout; panics with its output unless it
/// succeeded.
pub fn stack_ok<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = stack(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scripts/stack {} failed ({}):\n{}{stdout}",
        describe(args),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn describe<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A stack service (`redis`, `postgres`, `mariadb`, …) stopped by a test. Dropping it starts
/// the service again, so that a failing test never leaves the shared stack broken.
pub struct Stopped {
    service: &'static str,
    running: bool,
}

/// Stops `service` (`scripts/stack stop SERVICE`) until the returned guard starts it again.
pub fn stop_service(service: &'static str) -> Stopped {
    stack_ok(&["stop", service]);
    Stopped {
        service,
        running: false,
    }
}

impl Stopped {
    /// Starts the service again (the script waits until it is ready); returns when it is.
    pub fn start(&mut self) -> Instant {
        stack_ok(&["start", self.service]);
        self.running = true;
        Instant::now()
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.running {
            match try_stack(&["start", self.service]) {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!(
                    "restarting {} after a failed test:\n{}",
                    self.service,
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => eprintln!("restarting {} after a failed test: {e}", self.service),
            }
        }
    }
}
