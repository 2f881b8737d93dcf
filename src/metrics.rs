//! statsd metrics over UDP, in the old tool's InfluxDB-style tagged format (docs/messages.md,
//! "statsd metrics"):
//! `repliqate.<metric>,name=<name>,version=<version>,<tag>=<value>…:<value>|<type>`.
//!
//! Metrics must never slow down or stop replication: the socket is non-blocking, the address is
//! resolved once at start-up, and a failed send is counted and dropped. Lines are buffered and
//! packed into datagrams of at most `MAX_DATAGRAM` bytes (statsd reads `\n`-separated lines);
//! the loop calls `flush()` once per batch, so one batch costs one or two `send` calls.
//!
//! Choices the protocol leaves open:
//! - timings are milliseconds with three decimals (`12.345|ms`); statsd and Telegraf accept
//!   fractional timings, and whole milliseconds would round fast queries to 0;
//! - a negative gauge is sent as `0|g` then `-N|g`, because a leading sign alone means "add to
//!   the gauge" in statsd;
//! - `,` `=` `:` `|` and line breaks in metric names, tag names and tag values would break the line
//!   format and are replaced by `_`.

use std::fmt::{self, Write as _};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::event::Event;

/// Largest datagram we send: fits a 1500-byte Ethernet MTU after IPv6 and UDP headers (the size
/// statsd clients commonly use for the same reason).
pub const MAX_DATAGRAM: usize = 1432;

/// A statsd client, or a no-op when no `statsd_addr` is configured.
pub struct Metrics {
    sink: Option<Sink>,
}

struct Sink {
    socket: UdpSocket,
    /// `,name=<name>,version=<version>`, appended to every metric name.
    default_tags: String,
    /// Lines not sent yet, `\n`-separated.
    buf: String,
    send_errors: u64,
    /// Whether the last send failed: a failure is logged once per incident, not once per send.
    failing: bool,
}

/// Why the statsd client could not be set up.
#[derive(Debug)]
pub enum MetricsError {
    /// `statsd_addr` did not resolve (DNS may come back: retriable).
    Resolve { addr: String, cause: io::Error },
    /// The local UDP socket could not be created or connected.
    Socket { addr: String, cause: io::Error },
}

impl MetricsError {
    pub fn is_retriable(&self) -> bool {
        true
    }
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsError::Resolve { addr, cause } => {
                write!(f, "resolving statsd address {addr}: {cause}")
            }
            MetricsError::Socket { addr, cause } => {
                write!(f, "opening a UDP socket to statsd at {addr}: {cause}")
            }
        }
    }
}

impl std::error::Error for MetricsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetricsError::Resolve { cause, .. } | MetricsError::Socket { cause, .. } => Some(cause),
        }
    }
}

impl Metrics {
    /// A client sending to `addr` (`host:port`) with the default tags of job `name`; `None`
    /// gives a client whose calls do nothing.
    pub fn new(addr: Option<&str>, name: &str) -> Result<Metrics, MetricsError> {
        let Some(addr) = addr else {
            return Ok(Metrics { sink: None });
        };
        let target: SocketAddr = addr
            .to_socket_addrs()
            .and_then(|mut addrs| {
                addrs.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the name has no address")
                })
            })
            .map_err(|cause| MetricsError::Resolve {
                addr: addr.to_owned(),
                cause,
            })?;
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.connect(target).map(|()| s))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|cause| MetricsError::Socket {
                addr: addr.to_owned(),
                cause,
            })?;
        let default_tags = format!(
            ",name={},version={}",
            clean(name),
            clean(env!("CARGO_PKG_VERSION"))
        );
        Ok(Metrics {
            sink: Some(Sink {
                socket,
                default_tags,
                buf: String::with_capacity(MAX_DATAGRAM),
                send_errors: 0,
                failing: false,
            }),
        })
    }

    /// Adds `n` to counter `metric` (`c`).
    pub fn count(&mut self, metric: &str, tags: &[(&str, &str)], n: u64) {
        self.push(metric, tags, &n.to_string(), "c");
    }

    /// Records a duration in milliseconds (`ms`).
    pub fn timing(&mut self, metric: &str, tags: &[(&str, &str)], d: Duration) {
        let ms = format!("{:.3}", d.as_secs_f64() * 1000.0);
        self.push(metric, tags, &ms, "ms");
    }

    /// One call to a dependency: counts `metric`, and records how long it took as
    /// `{metric}_latency` (the old tool's pair of metrics per call). `ok`: whether it succeeded,
    /// tagged `success`, before the other `tags`.
    pub fn call(&mut self, metric: &str, ok: bool, tags: &[(&str, &str)], took: Duration) {
        let success = if ok { "true" } else { "false" };
        let mut all = Vec::with_capacity(tags.len() + 1);
        all.push(("success", success));
        all.extend_from_slice(tags);
        self.count(metric, &all, 1);
        self.timing(&format!("{metric}_latency"), &all, took);
    }

    /// Sets gauge `metric` (`g`).
    pub fn gauge(&mut self, metric: &str, tags: &[(&str, &str)], value: i128) {
        if value < 0 {
            // "-N|g" alone would subtract N from the current value.
            self.push(metric, tags, "0", "g");
        }
        self.push(metric, tags, &value.to_string(), "g");
    }

    /// Sends what is buffered. Call once per batch (the buffer also goes out when full, and on
    /// drop).
    pub fn flush(&mut self) {
        if let Some(sink) = &mut self.sink {
            sink.send();
        }
    }

    /// How many datagrams could not be sent (statsd down, socket buffer full).
    pub fn send_errors(&self) -> u64 {
        self.sink.as_ref().map_or(0, |s| s.send_errors)
    }

    fn push(&mut self, metric: &str, tags: &[(&str, &str)], value: &str, kind: &str) {
        let Some(sink) = &mut self.sink else {
            return;
        };
        let mut line = format!("repliqate.{}{}", clean(metric), sink.default_tags);
        for (k, v) in tags {
            // Writing to a String cannot fail.
            let _ = write!(line, ",{}={}", clean(k), clean(v));
        }
        let _ = write!(line, ":{value}|{kind}");
        if !sink.buf.is_empty() && sink.buf.len() + 1 + line.len() > MAX_DATAGRAM {
            sink.send();
        }
        if !sink.buf.is_empty() {
            sink.buf.push('\n');
        }
        // A single line longer than a datagram (absurdly long tags) still goes out alone;
        // truncating it would corrupt the metric.
        sink.buf.push_str(&line);
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Sink {
    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.socket.send(self.buf.as_bytes()) {
            Ok(_) => self.failing = false,
            Err(e) => {
                self.send_errors += 1;
                if !self.failing {
                    log::warn!(
                        "sending metrics to statsd: {e} (further failures are counted, not logged)"
                    );
                    self.failing = true;
                }
            }
        }
        self.buf.clear();
    }
}

/// The loop's events as statsd lines, tagged with the pipeline's table and topic: the old tool's
/// metrics (docs/messages.md, "statsd metrics"). Events with no statsd series are ignored.
pub struct Statsd {
    client: Metrics,
    table: String,
    topic: String,
}

impl Statsd {
    pub fn new(client: Metrics, table: &str, topic: &str) -> Statsd {
        Statsd {
            client,
            table: table.to_owned(),
            topic: topic.to_owned(),
        }
    }

    pub fn record(&mut self, event: &Event<'_>) {
        let table = [("table", self.table.as_str())];
        let c = &mut self.client;
        match *event {
            Event::StoreRead { ok, took } => c.call("store.read", ok, &[], took),
            Event::Fetched { ok, rows, took } => {
                c.call("source.read", ok, &table, took);
                if ok {
                    let tags = [("success", "true"), table[0]];
                    c.count("source.rows_read", &tags, rows as u64);
                }
            }
            Event::Published { ok, took, .. } => {
                c.call("target.publish", ok, &[("topic", &self.topic)], took)
            }
            Event::StoreWritten { ok, took } => c.call("store.write", ok, &[], took),
            Event::Committed(position) => c.gauge("offset.position", &table, position),
            Event::GapSkipped { proven_final } => {
                let reason = if proven_final { "final" } else { "timeout" };
                c.count("gap.skipped", &[table[0], ("reason", reason)], 1)
            }
            Event::GapHeld { oldest, .. } => {
                c.gauge("gap.oldest_held_ms", &table, oldest.as_millis() as i128)
            }
            Event::LateRowsFound(rows) => c.count("gap.late_rows", &table, rows as u64),
            Event::Flush => c.flush(),
            Event::Beat
            | Event::Active(_)
            | Event::Resumed(_)
            | Event::MaxId(_)
            | Event::BatchRead { .. }
            | Event::LateRowsPublished(_)
            | Event::Failed { .. }
            | Event::Recovered => {}
        }
    }
}

/// Replaces the characters that delimit the line format.
fn clean(s: &str) -> String {
    s.replace([',', '=', ':', '|', '\n', '\r'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> (UdpSocket, String) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr").to_string();
        (sock, addr)
    }

    fn recv(sock: &UdpSocket) -> String {
        let mut buf = [0u8; 65536];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8 datagram")
    }

    #[test]
    fn lines_have_the_exact_compat_format() {
        let (sock, addr) = receiver();
        let mut m = Metrics::new(Some(&addr), "bench").expect("client");
        let v = env!("CARGO_PKG_VERSION");
        m.count(
            "source.read",
            &[("success", "true"), ("table", "events")],
            1,
        );
        m.timing(
            "source.read_latency",
            &[("success", "true"), ("table", "events")],
            Duration::from_micros(12_345),
        );
        m.gauge(
            "offset.position",
            &[("table", "events")],
            170_141_183_460_469_231_731_687_303_715_884_105_727,
        );
        m.flush();
        assert_eq!(
            recv(&sock),
            format!(
                "repliqate.source.read,name=bench,version={v},success=true,table=events:1|c\n\
                 repliqate.source.read_latency,name=bench,version={v},success=true,table=events:12.345|ms\n\
                 repliqate.offset.position,name=bench,version={v},table=events:170141183460469231731687303715884105727|g"
            )
        );
        assert_eq!(m.send_errors(), 0);
    }

    /// The loop's events become the old tool's lines, tagged with the table or the topic; the
    /// events statsd has no series for send nothing.
    #[test]
    fn events_become_the_old_tools_lines() {
        let (sock, addr) = receiver();
        let client = Metrics::new(Some(&addr), "job").expect("client");
        let mut statsd = Statsd::new(client, "events", "t.events");
        let ms = Duration::from_millis;
        for event in [
            Event::Beat,
            Event::StoreRead {
                ok: true,
                took: ms(1),
            },
            Event::Fetched {
                ok: true,
                rows: 7,
                took: ms(2),
            },
            Event::Fetched {
                ok: false,
                rows: 0,
                took: ms(3),
            },
            Event::BatchRead {
                took: ms(4),
                behind: true,
            },
            Event::Published {
                ok: false,
                acknowledged: 3,
                took: ms(5),
            },
            Event::StoreWritten {
                ok: true,
                took: ms(6),
            },
            Event::Committed(42),
            Event::GapSkipped { proven_final: true },
            Event::GapSkipped {
                proven_final: false,
            },
            Event::GapHeld {
                rows: 2,
                oldest: ms(1500),
            },
            Event::LateRowsFound(2),
            Event::LateRowsPublished(2),
            Event::Failed {
                component: "kafka",
                error: "down",
            },
            Event::Recovered,
            Event::Flush,
        ] {
            statsd.record(&event);
        }
        let v = env!("CARGO_PKG_VERSION");
        let tags = format!("name=job,version={v}");
        let expected = [
            format!("repliqate.store.read,{tags},success=true:1|c"),
            format!("repliqate.store.read_latency,{tags},success=true:1.000|ms"),
            format!("repliqate.source.read,{tags},success=true,table=events:1|c"),
            format!("repliqate.source.read_latency,{tags},success=true,table=events:2.000|ms"),
            format!("repliqate.source.rows_read,{tags},success=true,table=events:7|c"),
            format!("repliqate.source.read,{tags},success=false,table=events:1|c"),
            format!("repliqate.source.read_latency,{tags},success=false,table=events:3.000|ms"),
            format!("repliqate.target.publish,{tags},success=false,topic=t.events:1|c"),
            format!(
                "repliqate.target.publish_latency,{tags},success=false,topic=t.events:5.000|ms"
            ),
            format!("repliqate.store.write,{tags},success=true:1|c"),
            format!("repliqate.store.write_latency,{tags},success=true:6.000|ms"),
            format!("repliqate.offset.position,{tags},table=events:42|g"),
            format!("repliqate.gap.skipped,{tags},table=events,reason=final:1|c"),
            format!("repliqate.gap.skipped,{tags},table=events,reason=timeout:1|c"),
            format!("repliqate.gap.oldest_held_ms,{tags},table=events:1500|g"),
            format!("repliqate.gap.late_rows,{tags},table=events:2|c"),
        ];
        let mut got = Vec::new();
        while got.len() < expected.len() {
            got.extend(recv(&sock).lines().map(str::to_owned));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn negative_gauge_is_reset_first() {
        let (sock, addr) = receiver();
        let mut m = Metrics::new(Some(&addr), "j").expect("client");
        m.gauge("offset.position", &[], -5);
        m.flush();
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(
            recv(&sock),
            format!(
                "repliqate.offset.position,name=j,version={v}:0|g\n\
                 repliqate.offset.position,name=j,version={v}:-5|g"
            )
        );
    }

    #[test]
    fn delimiters_in_tags_are_replaced() {
        let (sock, addr) = receiver();
        let mut m = Metrics::new(Some(&addr), "a,b:c").expect("client");
        m.count("store.write", &[("success", "x|y=z\n")], 2);
        m.flush();
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(
            recv(&sock),
            format!("repliqate.store.write,name=a_b_c,version={v},success=x_y_z_:2|c")
        );
    }

    #[test]
    fn datagrams_stay_within_the_limit_and_lose_nothing() {
        let (sock, addr) = receiver();
        let mut m = Metrics::new(Some(&addr), "pack").expect("client");
        for i in 0..100 {
            m.count("source.rows_read", &[("table", "t")], i);
        }
        m.flush();
        let mut values = Vec::new();
        while values.len() < 100 {
            let d = recv(&sock);
            assert!(d.len() <= MAX_DATAGRAM, "datagram of {} bytes", d.len());
            for line in d.lines() {
                let value = line
                    .strip_suffix("|c")
                    .and_then(|l| l.rsplit_once(':'))
                    .expect("well-formed line")
                    .1;
                values.push(value.parse::<u64>().expect("count"));
            }
        }
        assert_eq!(values, (0..100).collect::<Vec<u64>>());
    }

    #[test]
    fn no_address_means_no_op() {
        let mut m = Metrics::new(None, "x").expect("no-op client");
        m.count("source.read", &[], 1);
        m.flush();
        assert_eq!(m.send_errors(), 0);
    }

    #[test]
    fn an_absent_statsd_never_blocks_or_fails() {
        // Bind then drop to get a port nobody listens on: sends draw ICMP port-unreachable,
        // which a connected UDP socket reports on a later send.
        let (sock, addr) = receiver();
        drop(sock);
        let mut m = Metrics::new(Some(&addr), "x").expect("client");
        let started = std::time::Instant::now();
        for _ in 0..50 {
            m.count("source.read", &[], 1);
            m.flush();
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(m.send_errors() > 0, "the refused sends were not counted");
    }

    #[test]
    fn an_unresolvable_address_is_an_error() {
        let err = match Metrics::new(Some("no-such-host.invalid:8125"), "x") {
            Ok(_) => panic!("resolved an .invalid name"),
            Err(e) => e,
        };
        assert!(err
            .to_string()
            .starts_with("resolving statsd address no-such-host.invalid:8125"));
    }
}
