//! The real `repliqate` binary run by the tests, always with a deadline (a hang is a failed test,
//! not a stuck run): [`run`] for a one-shot command whose output the test reads, [`Daemon`] for a
//! long-running instance whose stdout and stderr go to a log file, so that a test can wait for a
//! log line, signal it, kill it and read what it logged.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_repliqate")
}

/// `repliqate ARGS…` with the test's own environment less `RUST_LOG` (the flags set the log
/// level) plus `env`, and no stdin.
fn command<S: AsRef<OsStr>>(args: &[S], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(bin());
    command
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    command
}

/// Waits for `child` to exit, at most `limit`; None if it still runs then.
fn wait_until_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for repliqate") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the binary with `args` to completion and returns its exit status, stdout and stderr;
/// kills it and panics after `limit`.
pub fn run(args: &[&str], limit: Duration) -> Output {
    run_with_env(args, &[], limit)
}

/// [`run`] with environment variables added (`NOTIFY_SOCKET`, for instance).
pub fn run_with_env(args: &[&str], env: &[(&str, String)], limit: Duration) -> Output {
    let mut child = command(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting repliqate");
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let Some(status) = wait_until_exit(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "repliqate {} did not exit within {limit:?}; stderr:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&stderr.join().unwrap_or_default())
        );
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a child's pipe to its end on a thread, so that a chatty child never blocks on a full
/// pipe.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Asserts that a [`run`] exited with `code`, printing its output when not.
pub fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: expected exit code {code}; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The last `n` lines of `text`, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `repliqate --config CONFIG ARGS…`, stdout and stderr going to one log file. Dropping
/// it kills the process (resumed first, if a test paused it), so a failed test leaves nothing
/// running.
pub struct Daemon {
    child: Child,
    pub pid: u32,
    pub log: PathBuf,
    pub started: Instant,
    status: Option<ExitStatus>,
}

impl Daemon {
    pub fn start(config: &Path, args: &[&str], log: PathBuf) -> Daemon {
        Daemon::start_with_env(config, args, &[], log)
    }

    /// [`Daemon::start`] with environment variables added (`NOTIFY_SOCKET`, for instance).
    pub fn start_with_env(
        config: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> Daemon {
        let out = File::create(&log).expect("creating the daemon's log file");
        let err = out.try_clone().expect("cloning the log file handle");
        let mut all: Vec<&OsStr> = vec![OsStr::new("--config"), config.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        let child = command(&all, env)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting repliqate");
        Daemon {
            pid: child.id(),
            child,
            log,
            started: Instant::now(),
            status: None,
        }
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Lines of the log containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Waits until the log has at least `n` lines containing `needle`; returns when it saw them,
    /// or None after `timeout`.
    pub fn wait_for_lines(&self, needle: &str, n: usize, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines_with(needle).len() >= n {
                return Some(Instant::now());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a line containing `needle`; returns when it came, or None after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<Instant> {
        self.wait_for_lines(needle, 1, timeout)
    }

    /// Waits for a line containing `needle`; panics with the log if the process exits first or
    /// the line does not come within `timeout`.
    pub fn expect_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log_text().contains(needle) {
            assert!(
                self.alive(),
                "repliqate exited ({:?}) before logging {needle:?}; log:\n{}",
                self.status,
                self.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "repliqate did not log {needle:?} within {timeout:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process still runs (it has not exited).
    pub fn alive(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.status = Some(s);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Sends `sig` (KILL, STOP, CONT, TERM) through kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid.to_string()])
            .status()
            .expect("running kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.pid);
    }

    /// SIGKILL, then reaps the process.
    pub fn kill9(&mut self) {
        if self.alive() {
            self.signal("KILL");
        }
        self.wait(Duration::from_secs(10));
    }

    /// SIGTERM, then waits for the exit (at most `limit`, as [`Daemon::wait`]).
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait(limit)
    }

    /// Waits for the process to exit; panics (after killing it) past `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        match wait_until_exit(&mut self.child, limit) {
            Some(s) => {
                self.status = Some(s);
                s
            }
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "repliqate (pid {}) did not exit within {limit:?}; log:\n{}",
                    self.pid,
                    tail(&self.log_text(), 40)
                );
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.alive() {
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid.to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `repliqate --config CONFIG --once -vvv` and checks a refusal at start-up: exit code 2,
/// a last line `repliqate: …` naming `host` and saying `reason`, and none of `secrets` anywhere
/// in stderr (at the most verbose level).
pub fn assert_refused_at_start_up(
    what: &str,
    config: &std::path::Path,
    host: &str,
    reason: &str,
    secrets: &[&str],
) {
    let output = run(
        &["--config", config.to_str().unwrap(), "--once", "-vvv"],
        Duration::from_secs(60),
    );
    assert_exit(&output, 2, what);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("repliqate: ") && last.contains(host) && last.contains(reason),
        "{what}: the last line should name {host} and say {reason:?}:\n{stderr}"
    );
    for secret in secrets {
        assert!(
            !stderr.contains(secret),
            "{what}: a secret ({}…) is in stderr:\n{stderr}",
            &secret[..secret.len().min(12)]
        );
    }
}

/// Waits until the state file at `path` (a job with `state_file`) holds `id`; panics after
/// `timeout` with the end of `daemon`'s log.
pub fn wait_for_position(daemon: &Daemon, path: &std::path::Path, id: u64, timeout: Duration) {
    let started = std::time::Instant::now();
    loop {
        let at = std::fs::read_to_string(path).unwrap_or_default();
        if at.trim() == id.to_string() {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "position {at:?} did not reach {id} within {timeout:?}; the log ends:\n{}",
            tail(&daemon.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
