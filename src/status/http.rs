//! A tiny HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`, on one thread of its own.
//!
//! Written by hand rather than taken from a crate: it serves three fixed paths to GET and HEAD,
//! with no request bodies, keep-alive, chunking or TLS. Each connection is answered on a
//! short-lived thread of its own, at most `MAX_CONNECTIONS` at once (more are closed at once),
//! so a client that stalls cannot hold up a probe; each has a read and a write timeout, and a
//! request head is read up to `MAX_HEAD` bytes. The replication loop never waits on these
//! threads: it only shares the status's lock with a render.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{Probe, Status};

/// How long a client may take to send its request, or to take our answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest request head (request line and headers) we read.
const MAX_HEAD: u64 = 16 * 1024;

/// Connections answered at the same time; Prometheus and two probes need three.
const MAX_CONNECTIONS: usize = 8;

/// The endpoint, bound and serving on its own thread.
pub struct Server {
    addr: SocketAddr,
}

impl Server {
    /// Binds `addr` (`host:port`) and serves `status` on a new thread until the process exits.
    pub fn start(addr: &str, status: Arc<Status>) -> io::Result<Server> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let listener = TcpListener::bind(&addrs[..])?;
        let addr = listener.local_addr()?;
        thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve(listener, status))?;
        Ok(Server { addr })
    }

    /// The address it listens on (the port chosen by the system when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

fn serve(listener: TcpListener, status: Arc<Status>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            // Out of file descriptors and the like: wait rather than spin.
            Err(e) => {
                log::warn!("metrics endpoint: accepting a connection: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            log::debug!("metrics endpoint: {MAX_CONNECTIONS} connections open, closing one more");
            continue;
        }
        let (status, done) = (status.clone(), open.clone());
        let spawned = thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                if let Err(e) = answer(stream, &status) {
                    log::debug!("metrics endpoint: {e}");
                }
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            open.fetch_sub(1, Ordering::SeqCst);
            log::warn!("metrics endpoint: starting a thread: {e}");
        }
    }
}

/// A response: status line, content type and body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

fn answer(stream: TcpStream, status: &Status) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new((&stream).take(MAX_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The headers are read and ignored; a head too long or cut short gets 400.
    let mut complete = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if line == "\r\n" || line == "\n" {
            complete = true;
            break;
        }
    }
    let mut words = request_line.split_ascii_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let response = if !complete || !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        text("400 Bad Request", "expected an HTTP/1.x request\n".into())
    } else if method != "GET" && method != "HEAD" {
        text("405 Method Not Allowed", "only GET and HEAD\n".into())
    } else {
        route(target, status)
    };
    let mut out = &stream;
    let allow = if response.status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    write!(
        out,
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         {allow}Connection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    )?;
    if method != "HEAD" {
        out.write_all(response.body.as_bytes())?;
    }
    out.flush()
}

fn route(target: &str, status: &Status) -> Response {
    // A query string (`/metrics?name[]=...`) is accepted and ignored.
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: status.render_metrics(),
        },
        "/healthz" => probe(status.liveness()),
        "/readyz" => probe(status.readiness()),
        _ => text(
            "404 Not Found",
            "not found; this endpoint serves /metrics, /healthz and /readyz\n".into(),
        ),
    }
}

fn probe(p: Probe) -> Response {
    let status = if p.ok {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    text(status, format!("{}\n", p.reason))
}

fn text(status: &'static str, body: String) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body,
    }
}
