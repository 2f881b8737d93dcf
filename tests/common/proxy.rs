//! A Kafka-frame-aware TCP proxy for fault injection: forwards requests and responses one frame
//! at a time, and can drop the connection after a Produce request reached the broker but before
//! its response reaches the client — the case idempotence exists for. It can also stall: accept
//! connections and requests but never answer (a broker that hangs).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct Proxy {
    pub addr: String,
    /// Produce responses still to swallow (each one closes the client connection).
    pub drop_produce_responses: Arc<AtomicUsize>,
    /// Produce requests forwarded so far.
    pub produce_requests: Arc<AtomicUsize>,
    /// While set, Produce responses are held back until the client has written nothing for
    /// a second, then released in order: `most_held` is then the most requests one connection
    /// wrote without an answer (how deep the client pipelines).
    pub hold_produce_responses: Arc<AtomicBool>,
    pub most_held: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Simulates the broker going away (`true`: every open connection is reset and new ones are
    /// closed at once) and coming back (`false`). The broker behind keeps its data and state.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Simulates a broker that hangs (`true`): connections are still accepted and requests read,
    /// but nothing is forwarded and no response ever comes; a request caught by the stall has its
    /// connection closed when the stall ends (`false`), as a client would have given up on it.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Simulates a broker that is slow to read (`true`): no further request is read from any
    /// client (what a client writes piles up in the sockets) until `false`, when forwarding
    /// goes on as before, on the same connections.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

/// A broker of the test's own, advertised behind a proxy: the broker tells clients to connect
/// to the proxy, so that every connection, also after a metadata refresh, goes through it.
pub fn private_broker() -> (super::broker::PrivateBroker, Proxy) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let advertised = listener.local_addr().unwrap().to_string();
    let broker = super::broker::start(&advertised);
    let proxy = start(listener, broker.listen.clone());
    (broker, proxy)
}

impl Proxy {
    /// Waits until `n` Produce requests went through (a send is under way); panics after 20 s.
    pub fn wait_for_produce_requests(&self, n: usize) {
        let started = std::time::Instant::now();
        while self.produce_requests.load(Ordering::SeqCst) < n {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "no {n} Produce requests reached the proxy within 20 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Listens on `listener` and forwards every connection to `upstream`.
pub fn start(listener: TcpListener, upstream: String) -> Proxy {
    let addr = listener.local_addr().unwrap().to_string();
    let drop_produce_responses = Arc::new(AtomicUsize::new(0));
    let produce_requests = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let stalled = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let open = Arc::new(Mutex::new(Vec::new()));
    let (drops, count) = (drop_produce_responses.clone(), produce_requests.clone());
    let hold_produce_responses = Arc::new(AtomicBool::new(false));
    let most_held = Arc::new(AtomicUsize::new(0));
    let (hold, held) = (hold_produce_responses.clone(), most_held.clone());
    let (is_stalled, is_paused) = (stalled.clone(), paused.clone());
    let (is_down, tracked) = (down.clone(), open.clone());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if is_down.load(Ordering::SeqCst) {
                let _ = client.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let (upstream, drops, count) = (upstream.clone(), drops.clone(), count.clone());
            let tracked = tracked.clone();
            let (stall, pause) = (is_stalled.clone(), is_paused.clone());
            let holding = Holding {
                on: hold.clone(),
                most: held.clone(),
            };
            std::thread::spawn(move || {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    return;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    tracked.lock().unwrap().extend([c, s]);
                }
                let faults = Faults {
                    drops: &drops,
                    stalled: &stall,
                    paused: &pause,
                };
                let _ = forward(client, server, &count, &faults, &holding);
            });
        }
    });
    Proxy {
        addr,
        drop_produce_responses,
        produce_requests,
        hold_produce_responses,
        most_held,
        down,
        stalled,
        paused,
        open,
    }
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut frame = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    s.read_exact(&mut frame)?;
    Ok(frame)
}

fn write_frame(s: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    s.write_all(&(frame.len() as i32).to_be_bytes())?;
    s.write_all(frame)
}

/// The proxy's `hold_produce_responses` switch and `most_held` figure, for one connection.
struct Holding {
    on: Arc<AtomicBool>,
    most: Arc<AtomicUsize>,
}

/// Whether the client writes again within a second (peeked, nothing consumed): a client that
/// writes without waiting does so within microseconds, even on a busy machine.
fn writes_again(client: &TcpStream) -> std::io::Result<bool> {
    client.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    let more = match client.peek(&mut [0u8; 1]) {
        Ok(n) => n > 0,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(e) => return Err(e),
    };
    client.set_read_timeout(None)?;
    Ok(more)
}

/// The proxy's switches that make a connection misbehave.
struct Faults<'a> {
    /// Produce responses still to swallow.
    drops: &'a AtomicUsize,
    stalled: &'a AtomicBool,
    paused: &'a AtomicBool,
}

fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    count: &AtomicUsize,
    faults: &Faults<'_>,
    holding: &Holding,
) -> std::io::Result<()> {
    let Faults {
        drops,
        stalled,
        paused,
    } = *faults;
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        while paused.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if !held.is_empty() && !writes_again(&client)? {
            holding.most.fetch_max(held.len(), Ordering::SeqCst);
            for response in held.drain(..) {
                write_frame(&mut client, &response)?;
            }
        }
        let request = read_frame(&mut client)?;
        if stalled.load(Ordering::SeqCst) {
            while stalled.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = client.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        let is_produce = request.len() >= 2 && i16::from_be_bytes([request[0], request[1]]) == 0;
        write_frame(&mut server, &request)?;
        let response = read_frame(&mut server)?;
        if is_produce {
            count.fetch_add(1, Ordering::SeqCst);
            let swallow = drops
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if swallow {
                // The broker has written the batch; the client never hears about it.
                let _ = client.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
        }
        if is_produce && holding.on.load(Ordering::SeqCst) {
            held.push(response);
            continue;
        }
        for response in held.drain(..).chain([response]) {
            write_frame(&mut client, &response)?;
        }
    }
}
