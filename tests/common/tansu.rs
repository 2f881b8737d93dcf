//! Starts a private tansu broker for tests that need one they can break (advertised behind a
//! proxy, killed, restarted) without disturbing the shared stack broker.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tansu {
    child: Child,
    pub listen: String,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn binary() -> String {
    std::env::var("REPLIQATE_TANSU_BIN").unwrap_or_else(|_| {
        panic!(
            "REPLIQATE_TANSU_BIN is not set: this test starts its own tansu broker. Run \
             `make stack-up` and `eval \"$(scripts/stack env)\"`, or run `make test`"
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

/// Starts tansu listening on a free port, advertising `advertised` (host:port) to clients.
pub fn start(listen_port: u16, advertised: &str) -> Tansu {
    let listen = format!("127.0.0.1:{listen_port}");
    let child = Command::new(binary())
        .args(["broker", "--listener-url", &format!("tcp://{listen}")])
        .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting tansu");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "tansu did not start listening on {listen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Tansu { child, listen }
}

/// `tansu topic create` against `broker`.
pub fn create_topic(broker: &str, topic: &str, partitions: i32) {
    let status = Command::new(binary())
        .args([
            "topic",
            "create",
            topic,
            "--partitions",
            &partitions.to_string(),
        ])
        .args(["--broker", &format!("tcp://{broker}")])
        .status()
        .expect("tansu topic create");
    assert!(status.success(), "tansu topic create {topic} failed");
}
