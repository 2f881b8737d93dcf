//! A private Apache Kafka node for tests that need a broker they can break (advertised behind a
//! proxy, stalled, cut off) without disturbing the stack's shared broker. `scripts/stack private`
//! configures, formats and starts it, so the stack and the tests run brokers one way.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

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

/// The stack script, from `scripts/stack env`. Missing = a failed test, never a skip.
pub fn stack_script() -> String {
    std::env::var("REPLIQATE_STACK").unwrap_or_else(|_| {
        panic!(
            "REPLIQATE_STACK is not set: this test starts a Kafka broker of its own with \
             scripts/stack. Run `make stack-up` and `eval \"$(scripts/stack env)\"`, or run \
             `make test`"
        )
    })
}

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
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "repliqate-broker-{}-{port}-{nanos}",
        std::process::id()
    ));
    let out = Command::new(stack_script())
        .args(["private", "start"])
        .arg(&dir)
        .args([port.to_string(), controller.to_string(), advertised.into()])
        .output()
        .expect("running scripts/stack private start");
    assert!(
        out.status.success(),
        "scripts/stack private start failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("scripts/stack private start prints the pid");
    PrivateBroker {
        dir,
        pid,
        listen: format!("127.0.0.1:{port}"),
    }
}
