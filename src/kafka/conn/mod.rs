//! One connection to one broker: framing, correlation ids, API version negotiation, and SASL
//! authentication (with KIP-368 re-authentication before the session the broker granted ends).
//!
//! Layering (after rskafka): the `kafka-protocol` crate is the codec (bytes only); `transport`
//! is the byte stream (TCP or TLS); this module adds the length-prefixed framing, correlation
//! ids, per-broker version negotiation and SASL; the producer above it owns metadata, batching
//! and retries. A connection that failed once (I/O
//! error, timeout, garbage) must be dropped by the caller: after a partial read or write the
//! byte stream no longer lines up with the correlation ids, so it is never reused.
//!
//! Its rooms, each using only the ones listed before it:
//! - `queue` — byte pieces written to a socket that may take part of them, or none for now;
//! - `frames` — `Connection` itself: requests framed with correlation ids, written at once or
//!   queued, and responses read back;
//! - `negotiate` — ApiVersions, and the version of each request (`Wanted`);
//! - `auth` — SaslHandshake and SaslAuthenticate, and re-authentication (KIP-368).
//!
//! Here: opening a connection, and the requests the producer writes on it, each after
//! re-authenticating when that is due.

mod auth;
mod frames;
mod negotiate;
mod queue;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::{Request, StrBytes};

use super::error::Error;
use super::produce::ProduceBody;
use super::sasl::SaslClient;
use super::transport::{Dial, Transport};
use crate::tls::TlsSettings;

pub use frames::Connection;
pub use negotiate::Wanted;

/// Socket-level settings shared by every connection of a producer.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    pub client_id: String,
    pub connect_timeout: Duration,
    /// Read and write timeout of the socket. Must exceed the Produce `timeout_ms` we send, or we
    /// would give up on a broker that is still legitimately waiting for replicas.
    pub io_timeout: Duration,
    /// Largest response frame we accept. Kafka responses to the requests we send are small; a
    /// huge length prefix means the peer is not speaking Kafka (an HTTP or TLS server says
    /// "HTTP" or 0x15 0x03 … where we expect a length).
    pub max_response_size: usize,
    /// TLS (SSL, SASL_SSL), with the files re-read at each connection.
    pub tls: Option<TlsSettings>,
    /// SASL (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: Option<Arc<SaslClient>>,
}

impl Connection {
    /// Dials `addr` (host:port; every resolved address is tried in turn), completes the TLS
    /// handshake if there is TLS, negotiates API versions with ApiVersions, and authenticates
    /// if there is SASL.
    pub fn connect(addr: &str, opts: &ConnOptions) -> Result<Connection, Error> {
        let dial = Dial {
            connect_timeout: opts.connect_timeout,
            io_timeout: opts.io_timeout,
            tls: opts.tls.as_ref(),
        };
        let stream = Transport::open(addr, &dial)?;
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            client_id: StrBytes::from_string(opts.client_id.clone()),
            next_correlation_id: 1,
            versions: HashMap::new(),
            max_response_size: opts.max_response_size,
            out: BytesMut::with_capacity(64 * 1024),
            in_flight: 0,
            unsent: VecDeque::new(),
            sasl: opts.sasl.clone(),
            reauthenticate_at: None,
        };
        conn.negotiate_versions()?;
        if let Some(sasl) = conn.sasl.clone() {
            conn.authenticate(&sasl)?;
        }
        log::debug!("kafka: connected to broker {addr} ({})", conn.security());
        Ok(conn)
    }

    /// How this connection is secured, for the log and `repliqate check`: `TCP`, or the TLS
    /// version and cipher suite, and the SASL mechanism it authenticated with.
    pub fn security(&self) -> String {
        let sasl = self
            .sasl
            .as_ref()
            .map_or(String::new(), |s| format!(", SASL {}", s.mechanism()));
        format!("{}{sasl}", self.stream.describe())
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Writes one request and returns its correlation id, without waiting for the response.
    /// Several requests may be written before reading their responses (pipelining); Kafka
    /// answers them in order on one connection.
    pub fn write<R: Request>(&mut self, request: &R, version: i16) -> Result<i32, Error> {
        self.reauthenticate_if_due()?;
        self.write_now(request, version)
    }

    /// Writes a Produce request, whose record batches go out from where they are (not copied
    /// into the request buffer), without waiting for the socket: what it does not take at once
    /// is queued, and goes out with `push_unsent` (which does not wait either), or before
    /// anything else is written or read on this connection. So a caller that wrote more than
    /// the socket holds can do other work while the broker reads the requests in turn, instead
    /// of waiting until it has read all but what the socket holds.
    pub(super) fn queue_produce(
        &mut self,
        body: &ProduceBody<'_>,
        version: i16,
    ) -> Result<i32, Error> {
        self.reauthenticate_if_due()?;
        let correlation_id = self.begin::<ProduceRequest>(version)?;
        let batches = body.write(version, &mut self.out);
        self.queue_frame(batches)?;
        self.push_unsent()?;
        Ok(correlation_id)
    }

    /// Writes a request and waits for its response.
    pub fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, Error> {
        let id = self.write(request, version)?;
        self.read::<R>(id, version)
    }
}
