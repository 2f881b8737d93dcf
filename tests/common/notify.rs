//! A stand-in for systemd's notify socket: a unix datagram socket bound in a temp dir, whose
//! path a test passes to the daemon as `NOTIFY_SOCKET`, and reads what the daemon says on it
//! (sd_notify(3): one datagram of `KEY=value` lines per notification).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::env::TempDir;

pub struct NotifySocket {
    /// The socket's path: the value of `NOTIFY_SOCKET`.
    pub path: PathBuf,
    socket: UnixDatagram,
    _dir: TempDir,
}

impl NotifySocket {
    pub fn new() -> NotifySocket {
        let dir = TempDir::new("notify");
        let path = dir.path().join("notify.sock");
        let socket =
            UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
        NotifySocket {
            path,
            socket,
            _dir: dir,
        }
    }

    /// `("NOTIFY_SOCKET", path)`, for `Daemon::start_with_env` and `run_with_env`.
    pub fn env(&self) -> (&'static str, String) {
        ("NOTIFY_SOCKET", self.path.display().to_string())
    }

    /// The next notification, or None if none comes within `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<String> {
        // A zero timeout would mean "block forever" to set_read_timeout.
        let timeout = timeout.max(Duration::from_millis(1));
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("setting the notify socket's timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                None
            }
            Err(e) => panic!("reading the notify socket: {e}"),
        }
    }

    /// Every notification until one has the line `line` (e.g. `READY=1`), that one included;
    /// panics with what came if none has it within `timeout`.
    pub fn expect(&self, line: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_timeout(left) {
                Some(message) => {
                    let done = message.lines().any(|l| l == line);
                    seen.push(message);
                    if done {
                        return seen;
                    }
                }
                None => panic!("no {line} on the notify socket within {timeout:?}; got {seen:?}"),
            }
        }
    }

    /// Every notification that arrives within `timeout`.
    pub fn drain(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(message) =
            self.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            seen.push(message);
        }
        seen
    }
}
