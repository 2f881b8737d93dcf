//! One connection to one broker: framing, correlation ids, API version negotiation, and SASL
//! authentication (with KIP-368 re-authentication before the session the broker granted ends).
//!
//! Layering (after rskafka): the `kafka-protocol` crate is the codec (bytes only); `transport`
//! is the byte stream (TCP or TLS); this module adds the length-prefixed framing, correlation
//! ids, per-broker version negotiation and SASL; the producer above it owns metadata, batching
//! and retries. A connection that failed once (I/O
//! error, timeout, garbage) must be dropped by the caller: after a partial read or write the
//! byte stream no longer lines up with the correlation ids, so it is never reused.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::error::Error;
use super::produce::ProduceBody;
use super::sasl::{SaslClient, Step};
use super::transport::{Dial, Transport};
use crate::tls::TlsSettings;

/// SaslHandshake v1 is the first that moves the exchange into SaslAuthenticate requests
/// (KIP-152, Kafka 1.0); v0's raw frames are not spoken here.
const SASL_HANDSHAKE: Wanted = Wanted {
    api: "SaslHandshake",
    min: 1,
    max: 1,
    needed: "v1 or later (Kafka ≥ 1.0)",
};
/// v1 adds the session lifetime (KIP-368), v2 is the flexible encoding.
const SASL_AUTHENTICATE: Wanted = Wanted {
    api: "SaslAuthenticate",
    min: 0,
    max: 2,
    needed: "v0 or later (Kafka ≥ 1.0)",
};
/// Re-authenticate after this share of the session the broker granted, leaving the rest as a
/// margin for the requests in flight when it comes due (Java picks 85–95 %).
const REAUTH_AT_PERCENT: u64 = 85;

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

/// The versions of one API that we can use, for `Connection::negotiate`.
pub struct Wanted {
    pub api: &'static str,
    pub min: i16,
    pub max: i16,
    /// What a user must run instead, for the error: "v3 or later (Kafka ≥ 0.11)".
    pub needed: &'static str,
}

/// An open, version-negotiated connection to one broker.
pub struct Connection {
    addr: String,
    stream: Transport,
    client_id: StrBytes,
    next_correlation_id: i32,
    /// api key → highest version the broker supports (its advertised range intersected with ours
    /// is computed per request by `version`).
    versions: HashMap<i16, (i16, i16)>,
    max_response_size: usize,
    out: BytesMut,
    /// Requests written whose responses are not read yet.
    in_flight: usize,
    /// The bytes of requests queued by `queue_produce` that the socket has not taken yet, in
    /// order. Written before anything else is written or read.
    unsent: VecDeque<Bytes>,
    sasl: Option<Arc<SaslClient>>,
    /// When to authenticate again (KIP-368), if the broker limits the session.
    reauthenticate_at: Option<Instant>,
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

    /// The SaslHandshake and SaslAuthenticate versions this connection authenticates with (none
    /// without SASL).
    pub fn sasl_versions(&self) -> Result<Vec<(&'static str, i16)>, Error> {
        if self.sasl.is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![
            (
                SASL_HANDSHAKE.api,
                self.negotiate::<SaslHandshakeRequest>(&SASL_HANDSHAKE)?,
            ),
            (
                SASL_AUTHENTICATE.api,
                self.negotiate::<SaslAuthenticateRequest>(&SASL_AUTHENTICATE)?,
            ),
        ])
    }

    /// SaslHandshake, then SaslAuthenticate until the mechanism's exchange is done; on every
    /// connection, and again on the same connection before the session runs out.
    fn authenticate(&mut self, sasl: &SaslClient) -> Result<(), Error> {
        let mechanism = sasl.mechanism();
        let addr = self.addr.clone();
        let failed = |reason: String| Error::Authentication {
            broker: addr.clone(),
            mechanism,
            reason,
        };
        let handshake_version = self.negotiate::<SaslHandshakeRequest>(&SASL_HANDSHAKE)?;
        let authenticate_version = self.negotiate::<SaslAuthenticateRequest>(&SASL_AUTHENTICATE)?;
        let request =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let id = self.write_now(&request, handshake_version)?;
        let response = self.read::<SaslHandshakeRequest>(id, handshake_version)?;
        if response.error_code == ResponseError::UnsupportedSaslMechanism.code() {
            let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(failed(format!(
                "the broker has not enabled {mechanism} on this listener; it offers {}                  (sasl.mechanism)",
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            )));
        }
        if response.error_code != 0 {
            return Err(failed(format!(
                "SaslHandshake failed: {}",
                describe_code(response.error_code)
            )));
        }
        let (mut exchange, mut message) = sasl.start().map_err(|reason| Error::Credentials {
            broker: self.addr.clone(),
            reason,
        })?;
        let lifetime_ms = loop {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
            let id = self.write_now(&request, authenticate_version)?;
            let response = self.read::<SaslAuthenticateRequest>(id, authenticate_version)?;
            if response.error_code != 0 {
                let said = response.error_message.as_ref().map(|m| m.to_string());
                let reason = match (said, exchange.refusal()) {
                    (Some(said), _) if !said.is_empty() => said,
                    (_, Some(refusal)) => format!("the broker refused the token: {refusal}"),
                    _ => describe_code(response.error_code),
                };
                return Err(failed(reason));
            }
            match exchange.respond(&response.auth_bytes).map_err(failed)? {
                Step::Send(next) => message = next,
                Step::Done => break response.session_lifetime_ms,
            }
        };
        self.reauthenticate_at = u64::try_from(lifetime_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(|ms| Instant::now() + Duration::from_millis(ms * REAUTH_AT_PERCENT / 100));
        Ok(())
    }

    /// Re-authenticates when the session is due for it and nothing is in flight (a response
    /// in flight would arrive in the middle of the exchange). A failure leaves the connection
    /// unusable; the caller drops it, and nothing written on it is lost: there was nothing.
    pub fn reauthenticate_if_due(&mut self) -> Result<(), Error> {
        let due = self
            .reauthenticate_at
            .is_some_and(|at| self.in_flight == 0 && Instant::now() >= at);
        let Some(sasl) = self.sasl.clone().filter(|_| due) else {
            return Ok(());
        };
        self.reauthenticate_at = None;
        match self.authenticate(&sasl) {
            Ok(()) => {
                log::debug!(
                    "kafka: broker {}: re-authenticated ({}) on the same connection",
                    self.addr,
                    sasl.mechanism()
                );
                Ok(())
            }
            Err(e) => {
                log::info!(
                    "kafka: broker {}: re-authentication failed, reconnecting: {e}",
                    self.addr
                );
                // This connection is done for, not necessarily the credentials: a new
                // connection tells (and its error is the one to act on).
                Err(Error::io(
                    &self.addr,
                    "re-authenticating",
                    io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()),
                ))
            }
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version of `R` that both we (the codec, capped at `our_max`) and the broker
    /// support, or None when the ranges do not meet.
    pub fn version<R: Request>(&self, our_max: i16) -> Option<i16> {
        let (broker_min, broker_max) = *self.versions.get(&R::KEY)?;
        let max = broker_max.min(our_max).min(R::VERSIONS.max);
        let min = broker_min.max(R::VERSIONS.min);
        (min <= max).then_some(max)
    }

    /// The version of `R` to use: the highest both sides support, if it is at least `want.min`;
    /// else an error naming the API and what we need.
    pub fn negotiate<R: Request>(&self, want: &Wanted) -> Result<i16, Error> {
        self.version::<R>(want.max)
            .filter(|&v| v >= want.min)
            .ok_or_else(|| Error::UnsupportedVersion {
                broker: self.addr.clone(),
                api: want.api,
                broker_max: self.versions.get(&R::KEY).map(|&(_, max)| max),
                needed: want.needed,
            })
    }

    /// Writes one request and returns its correlation id, without waiting for the response.
    /// Several requests may be written before reading their responses (pipelining); Kafka
    /// answers them in order on one connection.
    pub fn write<R: Request>(&mut self, request: &R, version: i16) -> Result<i32, Error> {
        self.reauthenticate_if_due()?;
        self.write_now(request, version)
    }

    /// `write`, without the re-authentication check (for the requests that authenticate).
    fn write_now<R: Request>(&mut self, request: &R, version: i16) -> Result<i32, Error> {
        let correlation_id = self.begin::<R>(version)?;
        if let Err(e) = request.encode(&mut self.out, version) {
            // Only our own request can be at fault here (e.g. a field a version cannot carry).
            return Err(Error::protocol(
                &self.addr,
                format!("cannot encode request: {e}"),
            ));
        }
        self.send()?;
        Ok(correlation_id)
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

    /// Hands the socket what it takes now of the requests queued by `queue_produce` (and, over
    /// TLS, of what rustls has encrypted), without waiting. An error means the connection is
    /// broken (and must be dropped).
    pub fn push_unsent(&mut self) -> Result<(), Error> {
        if self.unsent.is_empty() && !self.stream.has_pending_output() {
            return Ok(());
        }
        let result = self.stream.set_nonblocking(true).and_then(|()| {
            write_queued(&mut self.stream, &mut self.unsent, Wait::No)
                .and_then(|()| self.stream.flush())
                .or_else(|e| match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(()),
                    _ => Err(e),
                })
        });
        // Back to blocking whatever happened: every other write and read waits, with the
        // socket's timeouts.
        let restored = self.stream.set_nonblocking(false);
        result
            .and(restored)
            .map_err(|e| Error::io(&self.addr, "sending request", e))
    }

    /// Whether the answer to the oldest request outstanding has arrived (over TLS: has begun
    /// to; see `Transport::frame_arrived`), so that `read` need not wait for the broker: every
    /// request is handed to the socket, and the broker's frame is there. Never waits.
    pub fn answer_arrived(&mut self) -> Result<bool, Error> {
        if self.in_flight == 0 || !self.unsent.is_empty() || self.stream.has_pending_output() {
            return Ok(false);
        }
        self.stream
            .frame_arrived()
            .map_err(|e| Error::io(&self.addr, "reading response", e))
    }

    /// Writes every queued byte, waiting for the socket (up to its write timeout).
    fn flush_unsent(&mut self) -> Result<(), Error> {
        if self.unsent.is_empty() {
            // What rustls may still hold goes out before its next read or write.
            return Ok(());
        }
        write_queued(&mut self.stream, &mut self.unsent, Wait::Yes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| Error::io(&self.addr, "sending request", timed_out(e)))
    }

    /// Starts a frame in `out`: a length placeholder and the request header.
    fn begin<R: Request>(&mut self, version: i16) -> Result<i32, Error> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        self.out.clear();
        self.out.put_i32(0); // length, patched by `send`
        header
            .encode(&mut self.out, R::header_version(version))
            .map_err(|e| Error::protocol(&self.addr, format!("cannot encode request: {e}")))?;
        Ok(correlation_id)
    }

    /// Queues the frame in `out`, with `inserts` (offset in `out`, bytes) spliced in, in order,
    /// after any request still queued: its own bytes (header and framing) leave `out`, the
    /// inserted ones (record batches) are shared, not copied.
    fn queue_frame(&mut self, inserts: Vec<(usize, Bytes)>) -> Result<(), Error> {
        let len = self.out.len() - 4 + inserts.iter().map(|(_, b)| b.len()).sum::<usize>();
        let len = i32::try_from(len).map_err(|_| {
            Error::protocol(&self.addr, format!("request of {len} bytes is too large"))
        })?;
        self.out[..4].copy_from_slice(&len.to_be_bytes());
        let head = self.out.split().freeze();
        let mut at = 0;
        for (offset, bytes) in inserts {
            self.unsent.push_back(head.slice(at..offset));
            self.unsent.push_back(bytes);
            at = offset;
        }
        self.unsent.push_back(head.slice(at..));
        self.in_flight += 1;
        Ok(())
    }

    /// Sends the frame in `out` (after any request still queued), waiting for the socket.
    fn send(&mut self) -> Result<(), Error> {
        self.queue_frame(Vec::new())?;
        self.flush_unsent()
    }

    /// Reads the response to the request written with `correlation_id` (which must be the
    /// oldest one outstanding).
    pub fn read<R: Request>(
        &mut self,
        correlation_id: i32,
        version: i16,
    ) -> Result<R::Response, Error> {
        let mut frame = self.read_frame()?;
        let header_version = R::Response::header_version(version);
        let header = decode_guarded(&self.addr, "response header", || {
            ResponseHeader::decode(&mut frame, header_version)
        })?;
        if header.correlation_id != correlation_id {
            return Err(Error::protocol(
                &self.addr,
                format!(
                    "correlation id {} where {correlation_id} was expected",
                    header.correlation_id
                ),
            ));
        }
        decode_guarded(&self.addr, api_name(R::KEY), || {
            R::Response::decode(&mut frame, version)
        })
    }

    /// Writes a request and waits for its response.
    pub fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, Error> {
        let id = self.write(request, version)?;
        self.read::<R>(id, version)
    }

    fn read_frame(&mut self) -> Result<Bytes, Error> {
        // The request answered may still be (partly) queued.
        self.flush_unsent()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| Error::io(&self.addr, "reading response", eof_is_reset(e)))?;
        let len = i32::from_be_bytes(len);
        if len < 4 || len as usize > self.max_response_size {
            return Err(Error::protocol(
                &self.addr,
                format!(
                    "response frame of {len} bytes (accepted: 4 to {} bytes)",
                    self.max_response_size
                ),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut buf)
            .map_err(|e| Error::io(&self.addr, "reading response", eof_is_reset(e)))?;
        Ok(Bytes::from(buf))
    }

    /// ApiVersions, tried at the newest version we know (v3), then at v0 when the broker answers
    /// UNSUPPORTED_VERSION. KIP-511 says that answer comes in the v0 layout, but not every
    /// implementation does so (librdkafka's mock cluster does not), so rather than decoding it we
    /// ask again at v0, which every broker understands.
    fn negotiate_versions(&mut self) -> Result<(), Error> {
        let mut response = self.api_versions(3)?;
        if response.error_code == ResponseError::UnsupportedVersion.code() {
            response = self.api_versions(0)?;
        }
        if response.error_code != 0 {
            return Err(Error::Broker {
                broker: self.addr.clone(),
                topic: None,
                partition: None,
                code: ResponseError::try_from_code(response.error_code)
                    .unwrap_or(ResponseError::Unknown(response.error_code)),
                message: Some("ApiVersions failed".into()),
            });
        }
        if response.api_keys.is_empty() {
            return Err(Error::protocol(&self.addr, "ApiVersions listed no APIs"));
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, Error> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("repliqate"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let id = self.write_now(&request, version)?;
        let mut frame = self.read_frame()?;
        // ApiVersions responses always use response header v0, whatever the request version.
        let header = decode_guarded(&self.addr, "response header", || {
            ResponseHeader::decode(&mut frame, 0)
        })?;
        if header.correlation_id != id {
            return Err(Error::protocol(
                &self.addr,
                "ApiVersions response with a wrong correlation id",
            ));
        }
        let error_code = if frame.len() >= 2 {
            (&frame[..2]).get_i16()
        } else {
            -1
        };
        if error_code == ResponseError::UnsupportedVersion.code() {
            return Ok(ApiVersionsResponse::default().with_error_code(error_code));
        }
        decode_guarded(&self.addr, "ApiVersions", || {
            ApiVersionsResponse::decode(&mut frame, version)
        })
    }
}

/// Whether `write_queued` writes to a blocking or a non-blocking stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wait {
    Yes,
    No,
}

/// Writes `queue` front to back, dropping what was written, until it is empty or the writer
/// fails. Without waiting, `WouldBlock` means the rest stays queued for later; so does a write
/// that takes nothing (rustls over a non-blocking socket takes no plaintext while its buffer
/// of ciphertext is full, and says `Ok(0)`), which a blocking writer never does but when broken.
fn write_queued(out: &mut impl Write, queue: &mut VecDeque<Bytes>, wait: Wait) -> io::Result<()> {
    loop {
        while queue.front().is_some_and(Bytes::is_empty) {
            queue.pop_front();
        }
        if queue.is_empty() {
            return Ok(());
        }
        let slices: Vec<IoSlice<'_>> = queue.iter().take(64).map(|b| IoSlice::new(b)).collect();
        let mut written = match out.write_vectored(&slices) {
            Ok(0) if wait == Wait::No => return Err(io::ErrorKind::WouldBlock.into()),
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while let Some(front) = queue.front_mut() {
            let n = written.min(front.len());
            front.advance(n);
            written -= n;
            if written == 0 {
                break;
            }
            queue.pop_front();
        }
    }
}

/// A blocking socket's write timeout surfaces as `WouldBlock` (EAGAIN); say what it is.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

/// A Kafka error code as `NAME (error N)`.
fn describe_code(code: i16) -> String {
    let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code));
    format!("{error:?} (error {code})")
}

/// A peer that closes the connection mid-conversation has reset it, as far as we are concerned.
fn eof_is_reset(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::ConnectionReset,
            "connection closed by the broker",
        )
    } else {
        e
    }
}

/// Runs a codec decode, turning both its errors and any panic inside it into `Error::Protocol`:
/// nothing a broker sends may take the process down.
fn decode_guarded<T, E: std::fmt::Display>(
    addr: &str,
    what: &str,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::protocol(addr, format!("cannot decode {what}: {e}"))),
        Err(_) => Err(Error::protocol(
            addr,
            format!("cannot decode {what}: malformed data"),
        )),
    }
}

fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::Produce) => "Produce",
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::InitProducerId) => "InitProducerId",
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::SaslHandshake) => "SaslHandshake",
        Ok(ApiKey::SaslAuthenticate) => "SaslAuthenticate",
        _ => "response",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `step` bytes per call, from the first buffer only, and is interrupted
    /// every third call: the worst a socket may do.
    struct Trickle {
        written: Vec<u8>,
        step: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.step);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A scripted stream: each call takes the next step's bytes (at most), from the buffers in
    /// turn, or fails as the step says.
    struct Scripted {
        written: Vec<u8>,
        steps: VecDeque<io::Result<usize>>,
    }

    impl Write for Scripted {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            unreachable!("write_queued writes vectored")
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut n = self.steps.pop_front().unwrap_or(Ok(usize::MAX))?;
            let mut taken = 0;
            for b in bufs {
                let k = n.min(b.len());
                self.written.extend_from_slice(&b[..k]);
                (n, taken) = (n - k, taken + k);
            }
            Ok(taken)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn queued_bytes_go_out_once_and_in_order_across_blocked_and_partial_writes() {
        let pieces = [
            "head-1",
            "",
            "batch-one",
            "tail-1",
            "head-2",
            "batch-two",
            "tail-2",
        ];
        let all: String = pieces.concat();
        let mut queue: VecDeque<Bytes> = pieces.iter().map(|p| Bytes::from(*p)).collect();
        let mut out = Scripted {
            written: Vec::new(),
            steps: VecDeque::from([
                Ok(3),
                Err(io::ErrorKind::Interrupted.into()),
                Ok(7), // ends inside "batch-one"
                Err(io::ErrorKind::WouldBlock.into()),
            ]),
        };
        let e = write_queued(&mut out, &mut queue, Wait::No).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(out.written, all.as_bytes()[..10]);
        // rustls with a full buffer takes nothing: not an error without waiting …
        out.steps = VecDeque::from([Ok(5), Ok(0)]);
        let e = write_queued(&mut out, &mut queue, Wait::No).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(out.written, all.as_bytes()[..15]);
        // … but a broken stream when waiting.
        out.steps = VecDeque::from([Ok(0)]);
        let e = write_queued(&mut out, &mut queue, Wait::Yes).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        // The rest, piece boundaries and all, exactly once.
        out.steps = VecDeque::from([Ok(6), Ok(9), Ok(1)]);
        write_queued(&mut out, &mut queue, Wait::Yes).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.written), all);
        assert!(queue.is_empty());
    }

    #[test]
    fn vectored_write_survives_partial_and_interrupted_writes() {
        let pieces: [&[u8]; 5] = [
            b"head",
            b"",
            b"first batch",
            b"-",
            b"second batch and the tail",
        ];
        let expected: Vec<u8> = pieces.concat();
        for step in [1, 2, 3, 5, 7, 100] {
            let mut out = Trickle {
                written: Vec::new(),
                step,
                calls: 0,
            };
            write_queued(&mut out, &mut queued(&pieces), Wait::Yes).unwrap();
            assert_eq!(out.written, expected, "step {step}");
        }
        let mut full = Vec::new();
        write_queued(&mut full, &mut queued(&pieces), Wait::Yes).unwrap();
        assert_eq!(full, expected);
        write_queued(&mut full, &mut VecDeque::new(), Wait::Yes).unwrap();
    }

    fn queued(pieces: &[&[u8]]) -> VecDeque<Bytes> {
        pieces.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }
}
