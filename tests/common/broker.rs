//! A private Apache Kafka node for tests that need a broker they can break (advertised behind a
//! proxy, stalled, cut off) without disturbing the stack's shared broker. `scripts/stack private`
//! configures, formats and starts it, so the stack and the tests run brokers one way.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use super::env::unique;
use super::stack::stack_ok;

pub struct PrivateBroker {
    dir: PathBuf,
    pid: u32,
    /// host:port the broker listens on (it advertises another address, the caller's proxy).
    pub listen: String,
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        // kill -9: nothing of it is kept, and a clean shutdown of a Kafka node takes seconds.
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free TCP port on the loopback interface (free when asked; the caller binds it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a combined broker+controller node on free ports, advertising `advertised` (host:port)
/// to clients, and waits until it serves.
pub fn start(advertised: &str) -> PrivateBroker {
    let port = free_port();
    let controller = free_port();
    let dir = std::env::temp_dir().join(unique("repliqate-broker"));
    let dir_arg = dir.display().to_string();
    let out = stack_ok(&[
        "private",
        "start",
        &dir_arg,
        &port.to_string(),
        &controller.to_string(),
        advertised,
    ]);
    let pid = out
        .trim()
        .parse()
        .expect("scripts/stack private start prints the pid");
    PrivateBroker {
        dir,
        pid,
        listen: format!("127.0.0.1:{port}"),
    }
}
