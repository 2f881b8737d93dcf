//! The `Connection` itself, and its frames: requests written with their correlation ids (at
//! once, or queued for a socket that takes them in its own time) and responses read back and
//! decoded, checked against the request they answer. The code here speaks no version and no
//! authentication of its own: `negotiate` and `auth` do, over these frames, and keep what they
//! learn in the `Connection`'s fields.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::kafka::error::Error;
use crate::kafka::sasl::SaslClient;
use crate::kafka::transport::Transport;

use super::queue::{write_queued, Wait};

/// An open, version-negotiated connection to one broker.
pub struct Connection {
    pub(super) addr: String,
    pub(super) stream: Transport,
    pub(super) client_id: StrBytes,
    pub(super) next_correlation_id: i32,
    /// api key → highest version the broker supports (its advertised range intersected with ours
    /// is computed per request by `version`).
    pub(super) versions: HashMap<i16, (i16, i16)>,
    pub(super) max_response_size: usize,
    pub(super) out: BytesMut,
    /// Requests written whose responses are not read yet.
    pub(super) in_flight: usize,
    /// The bytes of requests queued by `queue_produce` that the socket has not taken yet, in
    /// order. Written before anything else is written or read.
    pub(super) unsent: VecDeque<Bytes>,
    pub(super) sasl: Option<Arc<SaslClient>>,
    /// When to authenticate again (KIP-368), if the broker limits the session.
    pub(super) reauthenticate_at: Option<Instant>,
}

impl Connection {
    /// `write`, without the re-authentication check (for the requests that authenticate).
    pub(super) fn write_now<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<i32, Error> {
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
    pub(super) fn flush_unsent(&mut self) -> Result<(), Error> {
        if self.unsent.is_empty() {
            // What rustls may still hold goes out before its next read or write.
            return Ok(());
        }
        write_queued(&mut self.stream, &mut self.unsent, Wait::Yes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| Error::io(&self.addr, "sending request", timed_out(e)))
    }

    /// Starts a frame in `out`: a length placeholder and the request header.
    pub(super) fn begin<R: Request>(&mut self, version: i16) -> Result<i32, Error> {
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
    pub(super) fn queue_frame(&mut self, inserts: Vec<(usize, Bytes)>) -> Result<(), Error> {
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
    pub(super) fn send(&mut self) -> Result<(), Error> {
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

    pub(super) fn read_frame(&mut self) -> Result<Bytes, Error> {
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
}

/// A blocking socket's write timeout surfaces as `WouldBlock` (EAGAIN); say what it is.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
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
pub(super) fn decode_guarded<T, E: std::fmt::Display>(
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
