//! A tiny HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`, on one thread of its own.
//!
//! Written by hand rather than taken from a crate: it serves three fixed paths to GET and HEAD,
//! with no request bodies, keep-alive, chunking or TLS. Each connection is answered on a
//! short-lived thread of its own, at most `MAX_CONNECTIONS` at once (more are closed at once),
//! so a client that stalls cannot hold up a probe; the whole request head must arrive within
//! `IO_TIMEOUT` (not each read: a client trickling a byte at a time is cut off too), in at most
//! `MAX_HEAD` bytes, and the answer is written with the same timeout. The replication loop never waits on these
//! threads: it only shares the status's lock with a render.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Probe, Registry};

/// How long a client may take to send its request head, or to take our answer.
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
    pub fn start(addr: &str, status: Arc<Registry>) -> io::Result<Server> {
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

fn serve(listener: TcpListener, status: Arc<Registry>) {
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
        let (status, slot) = (status.clone(), Slot(open.clone()));
        let spawned = thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                let _slot = slot;
                if let Err(e) = answer(stream, &status) {
                    log::debug!("metrics endpoint: {e}");
                }
            });
        // A thread that could not start dropped its slot with its closure.
        if let Err(e) = spawned {
            log::warn!("metrics endpoint: starting a thread: {e}");
        }
    }
}

/// One of the `MAX_CONNECTIONS`, given back when the connection's thread ends however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response: status line, content type and body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

fn answer(stream: TcpStream, status: &Registry) -> io::Result<()> {
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let (method, response) = match read_head(&stream) {
        Ok((method, target)) if method == "GET" || method == "HEAD" => {
            (method, route(&target, status))
        }
        Ok((method, _)) => (
            method,
            text("405 Method Not Allowed", "only GET and HEAD\n".into()),
        ),
        Err(Refused(why)) => (String::new(), why),
    };
    let allow = if response.status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    // Head and body in one write: one segment for a small answer, never a torn status line.
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         {allow}Connection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if method != "HEAD" {
        out.push_str(&response.body);
    }
    let mut stream = &stream;
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

/// Why a request head was not read: the answer to give (a 400 or 431), if any can be given.
struct Refused(Response);

/// Reads the request head within one deadline: the method and the target. Reads as much as
/// has arrived each time and checks the deadline between reads, so a client that sends a byte
/// at a time cannot stretch it.
fn read_head(mut stream: &TcpStream) -> Result<(String, String), Refused> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let timed_out = || {
        Refused(text(
            "408 Request Timeout",
            "request head too slow\n".into(),
        ))
    };
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(end) = head_end(&head) {
            break end;
        }
        if head.len() as u64 >= MAX_HEAD {
            return Err(Refused(text(
                "431 Request Header Fields Too Large",
                format!("the request head is over {MAX_HEAD} bytes\n"),
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| timed_out())?;
        match stream.read(&mut buf) {
            // Closed before the head ended.
            Ok(0) => return Err(Refused(bad_request())),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(timed_out()),
        }
    };
    let head = String::from_utf8_lossy(&head[..end]);
    // RFC 9112: a server should ignore empty lines before the request line. The headers are
    // ignored.
    let request = head.lines().map(str::trim_end).find(|l| !l.is_empty());
    let mut words = request.unwrap_or("").split_ascii_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(m), Some(t), Some(v), None) if v.starts_with("HTTP/1.") => {
            Ok((m.to_owned(), t.to_owned()))
        }
        _ => Err(Refused(bad_request())),
    }
}

/// Where the request head ends (the line break that starts the empty line after the request
/// line and headers), if it has arrived. Empty lines before the request line do not end it.
fn head_end(head: &[u8]) -> Option<usize> {
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let rest = &head[start..];
    let find = |pattern: &[u8]| rest.windows(pattern.len()).position(|w| w == pattern);
    let end = match (find(b"\r\n\r\n"), find(b"\n\n")) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(start + end)
}

fn bad_request() -> Response {
    text("400 Bad Request", "expected an HTTP/1.x request\n".into())
}

fn route(target: &str, status: &Registry) -> Response {
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

#[cfg(test)]
mod tests {
    use super::head_end;

    #[test]
    fn the_head_ends_at_the_first_empty_line_after_the_request_line() {
        // The index where the line break before the empty line begins.
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(23));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        // Empty lines before the request line are skipped, not the end.
        assert_eq!(head_end(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"\r\n"), None);
        assert_eq!(head_end(b""), None);
    }
}
