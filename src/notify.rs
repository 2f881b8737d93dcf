//! systemd's service notification protocol (sd_notify(3)), by hand: one datagram of
//! `KEY=value` lines to the unix socket named by `NOTIFY_SOCKET`.
//!
//! Why not the `sd-notify` crate (0.5, read for issue 26): each of its `notify` calls reads the
//! environment, creates and connects a new socket and sends on it blocking, so a listener whose
//! queue is full would stall the loop at a watchdog ping (the guarantee below, and the test
//! `a_full_listener_never_blocks_the_sender`); and it passes `NOTIFY_SOCKET` to `connect` as a
//! path, so an abstract socket (`@name`) fails. Wrapping it to fix both would leave little of it.
//!
//! `Type=notify` units learn from `READY=1` that start-up is complete (every start-up check
//! passed), from `STOPPING=1` that shutdown began, and from `WATCHDOG=1` that the loop is still
//! turning when the unit sets `WatchdogSec=`. Outside systemd (no `NOTIFY_SOCKET`) every call is a
//! no-op, and so it is when the environment is malformed: notification never fails the daemon,
//! and a send never blocks the loop (the socket is non-blocking; a datagram that cannot be sent is
//! dropped, and said once per incident).

use std::env;
use std::ffi::OsString;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The environment variables systemd sets for the protocol (systemd.exec(5), "Environment
/// Variables Set or Propagated by the Service Manager").
const SOCKET_VAR: &str = "NOTIFY_SOCKET";
const WATCHDOG_USEC_VAR: &str = "WATCHDOG_USEC";
const WATCHDOG_PID_VAR: &str = "WATCHDOG_PID";

/// Where notifications go, or nowhere. Cheap to clone (an `Arc`), and usable from any thread:
/// each call is one `send_to` on a shared socket.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// `NOTIFY_SOCKET` as given, for log lines.
    shown: String,
    /// Half of `WATCHDOG_USEC`, when the watchdog is ours.
    watchdog_interval: Option<Duration>,
    /// A send failed and was logged; cleared by the next send that succeeds.
    failing: AtomicBool,
}

/// What the environment says, before a socket is made: `from_env`'s decisions, testable without
/// touching the process environment.
#[derive(Debug, PartialEq)]
struct Settings {
    addr: Target,
    watchdog_interval: Option<Duration>,
}

#[derive(Debug, PartialEq)]
enum Target {
    Path(std::path::PathBuf),
    /// A Linux abstract socket: `@name` in `NOTIFY_SOCKET`, the name without the `@`.
    Abstract(Vec<u8>),
}

impl Notifier {
    /// A notifier that sends nothing (not run by systemd, or for tools and tests).
    pub fn none() -> Notifier {
        Notifier::default()
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, then removes them from the
    /// environment, as sd_notify(unset_environment=1) and sd_watchdog_enabled(unset_environment=1)
    /// do, so that commands we run (an OAUTHBEARER token command) do not inherit them and
    /// notify systemd in our name. The watchdog is ours only if `WATCHDOG_PID` is our pid or
    /// absent. A malformed value is a warning, and a notifier without that part (no socket:
    /// no-op; no usable watchdog: no interval).
    ///
    /// Call it before any thread is started: it changes the process environment.
    pub fn from_env() -> Notifier {
        let socket = env::var_os(SOCKET_VAR);
        let usec = env::var_os(WATCHDOG_USEC_VAR);
        let pid = env::var_os(WATCHDOG_PID_VAR);
        for var in [SOCKET_VAR, WATCHDOG_USEC_VAR, WATCHDOG_PID_VAR] {
            env::remove_var(var);
        }
        let Some(socket) = socket else {
            return Notifier::none();
        };
        let shown = socket.to_string_lossy().into_owned();
        let settings = match settings(socket, usec, pid, std::process::id()) {
            Ok(settings) => settings,
            Err(e) => {
                log::warn!("systemd notification is off: {e}");
                return Notifier::none();
            }
        };
        match Notifier::connect(settings, shown) {
            Ok(notifier) => notifier,
            Err(e) => {
                log::warn!("systemd notification is off: {e}");
                Notifier::none()
            }
        }
    }

    fn connect(settings: Settings, shown: String) -> Result<Notifier, String> {
        let addr = match &settings.addr {
            Target::Path(path) => SocketAddr::from_pathname(path),
            Target::Abstract(name) => SocketAddr::from_abstract_name(name),
        }
        .map_err(|e| format!("{SOCKET_VAR}={shown}: not a usable socket address: {e}"))?;
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("creating a unix datagram socket: {e}"))?;
        Ok(Notifier {
            inner: Some(Arc::new(Inner {
                socket,
                addr,
                shown,
                watchdog_interval: settings.watchdog_interval,
                failing: AtomicBool::new(false),
            })),
        })
    }

    /// Start-up is complete: `READY=1`, with `status` as the unit's status line. No `MAINPID=`:
    /// we are the main process, which systemd knows already.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// Shutdown began: `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// The unit's status line (`systemctl status` shows it): `STATUS=…`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// The loop is alive: `WATCHDOG=1`. Sent whether or not the unit set `WatchdogSec=`
    /// (systemd ignores it then); callers that ping on a timer use [`Notifier::watchdog_interval`].
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
    /// advises; `None` when the unit has no watchdog for us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.inner.as_ref()?.watchdog_interval
    }

    /// Whether notifications go anywhere (run by systemd with a notify socket).
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    fn send(&self, message: &str) {
        let Some(inner) = &self.inner else {
            return;
        };
        match inner.socket.send_to_addr(message.as_bytes(), &inner.addr) {
            Ok(_) => {
                if inner.failing.swap(false, Ordering::Relaxed) {
                    log::info!(
                        "systemd notification: sending to {} works again",
                        inner.shown
                    );
                }
            }
            Err(e) => {
                // Once per incident: a watchdog ping every few seconds would otherwise repeat it.
                if !inner.failing.swap(true, Ordering::Relaxed) {
                    let what = message.lines().next().unwrap_or_default();
                    log::warn!(
                        "systemd notification: sending {what} to {}: {e} (dropped; not logged \
                         again until a send succeeds)",
                        inner.shown
                    );
                }
            }
        }
    }
}

/// A notification line ends at a line break (the next line would be another assignment).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// `NOTIFY_SOCKET` is an absolute path or `@name`, as sd_notify accepts (its `vsock:` form is not
/// supported); `WATCHDOG_USEC` a positive number of microseconds; `WATCHDOG_PID` the pid the
/// watchdog is meant for. `Err` names the variable and the value.
fn settings(
    socket: OsString,
    usec: Option<OsString>,
    pid: Option<OsString>,
    our_pid: u32,
) -> Result<Settings, String> {
    let bytes = socket.as_bytes();
    let addr = match bytes.first() {
        Some(b'/') => Target::Path(socket.clone().into()),
        Some(b'@') if bytes.len() > 1 => Target::Abstract(bytes[1..].to_vec()),
        _ => {
            return Err(format!(
                "{SOCKET_VAR}={}: expected an absolute path or @name of a unix socket",
                socket.to_string_lossy()
            ))
        }
    };
    let watchdog_interval = match watchdog(usec, pid, our_pid) {
        Ok(interval) => interval,
        Err(e) => {
            // The socket still works: READY and STOPPING go out, only the watchdog is off.
            log::warn!("systemd watchdog is off: {e}");
            None
        }
    };
    Ok(Settings {
        addr,
        watchdog_interval,
    })
}

fn watchdog(
    usec: Option<OsString>,
    pid: Option<OsString>,
    our_pid: u32,
) -> Result<Option<Duration>, String> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    let text = usec.to_string_lossy();
    let usec = match text.parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(format!(
                "{WATCHDOG_USEC_VAR}={text}: expected a positive number of microseconds"
            ))
        }
    };
    if let Some(pid) = pid {
        let text = pid.to_string_lossy();
        match text.parse::<u32>() {
            Ok(p) if p == our_pid => {}
            Ok(p) => {
                log::debug!("systemd watchdog: {WATCHDOG_PID_VAR}={p} is not us ({our_pid})");
                return Ok(None);
            }
            Err(_) => return Err(format!("{WATCHDOG_PID_VAR}={text}: expected a process id")),
        }
    }
    Ok(Some(Duration::from_micros(usec) / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    /// A datagram socket bound in a fresh directory, as systemd's notify socket.
    struct Listener {
        dir: PathBuf,
        socket: UnixDatagram,
    }

    impl Listener {
        fn new(name: &str) -> Listener {
            let dir =
                env::temp_dir().join(format!("repliqate-notify-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let socket = UnixDatagram::bind(dir.join("notify")).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            Listener { dir, socket }
        }

        fn path(&self) -> PathBuf {
            self.dir.join("notify")
        }

        fn recv(&self) -> String {
            let mut buf = [0u8; 4096];
            let n = self.socket.recv(&mut buf).expect("a datagram within 5 s");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn notifier(addr: Target, watchdog_interval: Option<Duration>) -> Notifier {
        let settings = Settings {
            addr,
            watchdog_interval,
        };
        Notifier::connect(settings, "test".into()).unwrap()
    }

    #[test]
    fn sends_each_message_as_one_datagram_to_a_path() {
        let listener = Listener::new("path");
        let n = notifier(Target::Path(listener.path()), None);
        n.ready("replicating table t\nto topic x");
        assert_eq!(
            listener.recv(),
            "READY=1\nSTATUS=replicating table t to topic x"
        );
        n.status("standby");
        assert_eq!(listener.recv(), "STATUS=standby");
        n.watchdog();
        assert_eq!(listener.recv(), "WATCHDOG=1");
        // A clone shares the socket, from another thread too.
        let clone = n.clone();
        std::thread::spawn(move || clone.stopping()).join().unwrap();
        assert_eq!(listener.recv(), "STOPPING=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("repliqate-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let settings = settings(os(&format!("@{name}")), None, None, 1).unwrap();
        let n = Notifier::connect(settings, name).unwrap();
        n.ready("ok");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");
    }

    #[test]
    fn a_missing_listener_drops_the_message_without_blocking_or_failing() {
        let dir = env::temp_dir().join(format!("repliqate-notify-gone-{}", std::process::id()));
        let n = notifier(Target::Path(dir.join("nobody")), None);
        let started = std::time::Instant::now();
        for _ in 0..100 {
            n.watchdog();
        }
        assert!(n.inner.as_ref().unwrap().failing.load(Ordering::Relaxed));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_full_listener_never_blocks_the_sender() {
        // Nobody reads: the socket's queue fills, and sends fail (EAGAIN) instead of waiting.
        let listener = Listener::new("full");
        let n = notifier(Target::Path(listener.path()), None);
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            n.watchdog();
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(n.inner.as_ref().unwrap().failing.load(Ordering::Relaxed));
        // Once there is room again, sends succeed and the incident ends.
        let mut buf = [0u8; 64];
        listener.socket.set_nonblocking(true).unwrap();
        while listener.socket.recv(&mut buf).is_ok() {}
        n.stopping();
        assert!(!n.inner.as_ref().unwrap().failing.load(Ordering::Relaxed));
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        let n = Notifier::none();
        n.ready("x");
        n.watchdog();
        assert!(!n.is_enabled());
        assert_eq!(n.watchdog_interval(), None);
    }

    #[test]
    fn socket_addresses_are_absolute_paths_or_abstract_names() {
        assert_eq!(
            settings(os("/run/systemd/notify"), None, None, 1)
                .unwrap()
                .addr,
            Target::Path("/run/systemd/notify".into())
        );
        assert_eq!(
            settings(os("@sd"), None, None, 1).unwrap().addr,
            Target::Abstract(b"sd".to_vec())
        );
        for bad in ["", "@", "run/notify", "vsock:2:1234"] {
            let e = settings(os(bad), None, None, 1).unwrap_err();
            assert!(
                e.starts_with(&format!("NOTIFY_SOCKET={bad}: expected an absolute path")),
                "{e}"
            );
        }
        let long = format!("/{}", "x".repeat(200));
        let e = Notifier::connect(settings(os(&long), None, None, 1).unwrap(), long.clone())
            .err()
            .unwrap();
        assert!(e.contains("not a usable socket address"), "{e}");
    }

    #[test]
    fn the_watchdog_interval_is_half_of_watchdog_usec_when_it_is_ours() {
        let interval = |usec: Option<&str>, pid: Option<&str>| {
            settings(os("/s"), usec.map(os), pid.map(os), 42)
                .unwrap()
                .watchdog_interval
        };
        assert_eq!(
            interval(Some("30000000"), None),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            interval(Some("30000000"), Some("42")),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            interval(Some("30000000"), Some("7")),
            None,
            "another process's"
        );
        assert_eq!(interval(None, Some("42")), None);
        // Malformed: no watchdog, but the socket still works.
        for usec in ["0", "-5", "30s", ""] {
            assert_eq!(interval(Some(usec), None), None, "{usec}");
        }
        assert_eq!(interval(Some("30000000"), Some("me")), None);
        assert_eq!(
            watchdog(Some(os("30s")), None, 1).unwrap_err(),
            "WATCHDOG_USEC=30s: expected a positive number of microseconds"
        );
        assert_eq!(
            watchdog(Some(os("1")), Some(os("me")), 1).unwrap_err(),
            "WATCHDOG_PID=me: expected a process id"
        );
    }
}
