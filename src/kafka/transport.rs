//! The byte stream under a connection: TCP, or TLS over TCP (rustls), as `security.protocol`
//! says. Dialling (every resolved address in turn, with the connect timeout) and the TLS
//! handshake happen here, so that certificate problems surface at connect, naming the broker.
//!
//! Writes go through `rustls::Stream`, which (unlike `StreamOwned`) writes vectored: a Produce
//! request's record batches are encrypted from where they are, without being gathered first.

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;

use rustls::ClientConnection;

use super::error::Error;
use super::sasl::{Sasl, SaslClient};
use crate::tls::{self, TlsSettings};

/// How connections to brokers are secured: `security.protocol` and what goes with it.
/// PLAINTEXT is neither; SSL is `tls` alone; SASL_PLAINTEXT is `sasl` alone; SASL_SSL is both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub tls: Option<TlsSettings>,
    pub sasl: Option<Sasl>,
}

impl Security {
    /// `security.protocol`'s name for this combination.
    pub fn protocol(&self) -> &'static str {
        match (&self.tls, &self.sasl) {
            (None, None) => "PLAINTEXT",
            (Some(_), None) => "SSL",
            (None, Some(_)) => "SASL_PLAINTEXT",
            (Some(_), Some(_)) => "SASL_SSL",
        }
    }

    /// What every connection of a producer shares at run time.
    pub(super) fn client(&self) -> (Option<TlsSettings>, Option<Arc<SaslClient>>) {
        (self.tls.clone(), self.sasl.clone().map(SaslClient::new))
    }
}

/// How to open a stream: the socket's timeouts, and TLS if any.
pub(super) struct Dial<'a> {
    pub connect_timeout: std::time::Duration,
    pub io_timeout: std::time::Duration,
    pub tls: Option<&'a TlsSettings>,
}

/// An open stream to a broker.
pub(super) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

pub(super) struct TlsStream {
    conn: ClientConnection,
    sock: TcpStream,
}

impl Transport {
    /// Dials `addr` and, for TLS, completes the handshake.
    pub fn open(addr: &str, dial: &Dial<'_>) -> Result<Transport, Error> {
        let sock = connect(addr, dial)?;
        match dial.tls {
            None => Ok(Transport::Plain(sock)),
            Some(settings) => handshake(addr, sock, settings),
        }
    }
}

fn handshake(addr: &str, mut sock: TcpStream, settings: &TlsSettings) -> Result<Transport, Error> {
    let config = settings.client_config().map_err(|e| Error::Credentials {
        broker: addr.to_string(),
        reason: e.to_string(),
    })?;
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let name = tls::server_name(host).map_err(|reason| Error::Tls {
        broker: addr.to_string(),
        reason,
    })?;
    let mut conn = ClientConnection::new(config, name).map_err(|e| Error::Tls {
        broker: addr.to_string(),
        reason: tls::describe(&e),
    })?;
    // Room for a whole Produce request (1 MiB by default): a vectored write is encrypted in
    // one call and leaves in as few socket writes as the kernel takes.
    conn.set_buffer_limit(Some(2 << 20));
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| handshake_error(addr, e))?;
    }
    Ok(Transport::Tls(Box::new(TlsStream { conn, sock })))
}

/// A handshake that ends without a TLS error of its own: the peer closed the connection, as a
/// plaintext listener does on receiving a ClientHello, or the network failed.
fn handshake_error(addr: &str, e: io::Error) -> Error {
    match e.kind() {
        _ if tls::rustls_error(&e).is_some() => Error::io(addr, "TLS handshake", e),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => Error::Tls {
            broker: addr.to_string(),
            reason: "the broker closed the connection during the TLS handshake; is this a \
                     PLAINTEXT or SASL_PLAINTEXT listener? (security.protocol)"
                .into(),
        },
        _ => Error::io(addr, "TLS handshake", e),
    }
}

impl Transport {
    /// What the stream is, for the log: `TCP`, or the TLS version and cipher suite.
    pub fn describe(&self) -> String {
        match self {
            Transport::Plain(_) => "TCP".into(),
            Transport::Tls(t) => {
                match (t.conn.protocol_version(), t.conn.negotiated_cipher_suite()) {
                    (Some(version), Some(suite)) => format!("{version:?}, {:?}", suite.suite()),
                    _ => "TLS".into(),
                }
            }
        }
    }
}

impl Transport {
    /// Puts the socket in or out of non-blocking mode (for TLS, the socket under it: rustls
    /// buffers what it cannot hand over, and writes it at the next call).
    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        match self {
            Transport::Plain(sock) => sock.set_nonblocking(on),
            Transport::Tls(t) => t.sock.set_nonblocking(on),
        }
    }

    /// Whether a response frame from the broker has arrived, without waiting. Plain TCP: the
    /// whole frame is in the socket (its length, then that many bytes, looked at with `peek`).
    /// TLS: rustls takes off the socket what is there and decrypts it, and the frame has begun
    /// (rustls cannot peek at plaintext); the read that follows may wait for the rest of a
    /// frame that spans TLS records, which a produce answer (a few hundred bytes, written at
    /// once) does not. The end of the stream counts, so that the read that follows reports it.
    pub fn frame_arrived(&mut self) -> io::Result<bool> {
        self.set_nonblocking(true)?;
        let arrived = match self {
            Transport::Plain(sock) => whole_frame_in(sock),
            Transport::Tls(t) => t.decrypt_arrived(),
        };
        // Back to blocking whatever happened: every other read and write waits.
        self.set_nonblocking(false)?;
        arrived
    }

    /// Whether bytes accepted are still held here, not yet handed to the socket (TLS: what
    /// rustls encrypted and could not write without waiting).
    pub fn has_pending_output(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.conn.wants_write(),
        }
    }
}

/// Frames longer than this are not looked at whole: their read reports what is wrong with them
/// (a produce answer is a few hundred bytes).
const PEEK_LIMIT: usize = 64 * 1024;

/// For `frame_arrived` on a non-blocking socket: whether a whole frame is in it.
fn whole_frame_in(sock: &TcpStream) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match peek(sock, &mut len)? {
        None => return Ok(false),
        Some(0) => return Ok(true),
        Some(n) if n < len.len() => return Ok(false),
        Some(_) => {}
    }
    let total = 4 + usize::try_from(i32::from_be_bytes(len)).unwrap_or(0);
    if total > PEEK_LIMIT {
        return Ok(true);
    }
    let mut frame = vec![0u8; total];
    Ok(peek(sock, &mut frame)?.is_some_and(|n| n == total))
}

/// `peek` on a non-blocking socket: `None` when nothing is there yet.
fn peek(sock: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match sock.peek(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

impl TlsStream {
    /// For `frame_arrived` on a non-blocking socket: takes what has arrived off the socket
    /// into rustls, and says whether plaintext is ready (or the stream ended).
    fn decrypt_arrived(&mut self) -> io::Result<bool> {
        loop {
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
                return Ok(true);
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => sock.read(buf),
            Transport::Tls(t) => rustls::Stream::new(&mut t.conn, &mut t.sock).read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => sock.write(buf),
            Transport::Tls(t) => rustls::Stream::new(&mut t.conn, &mut t.sock).write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => sock.write_vectored(bufs),
            Transport::Tls(t) => rustls::Stream::new(&mut t.conn, &mut t.sock).write_vectored(bufs),
        }
    }

    /// For TLS, hands every encrypted byte to the socket (a vectored write may leave some
    /// buffered in rustls).
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(sock) => sock.flush(),
            Transport::Tls(t) => rustls::Stream::new(&mut t.conn, &mut t.sock).flush(),
        }
    }
}

fn connect(addr: &str, opts: &Dial<'_>) -> Result<TcpStream, Error> {
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| Error::io(addr, "resolving address", e))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, opts.connect_timeout) {
            Ok(stream) => {
                let configured = stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_read_timeout(Some(opts.io_timeout)))
                    .and_then(|()| stream.set_write_timeout(Some(opts.io_timeout)));
                return match configured {
                    Ok(()) => Ok(stream),
                    Err(e) => Err(Error::io(addr, "configuring socket", e)),
                };
            }
            Err(e) => last = e,
        }
    }
    Err(Error::io(addr, "connecting", last))
}
