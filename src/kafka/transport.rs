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

use super::conn::ConnOptions;
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
    pub fn open(addr: &str, opts: &ConnOptions) -> Result<Transport, Error> {
        let sock = dial(addr, opts)?;
        match &opts.tls {
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

    /// Whether the broker has sent bytes that are not read yet, without waiting: a look at
    /// the socket (for TLS, the socket under rustls; what rustls has already taken off it is
    /// not seen, which only means a later read). The end of the stream counts, so that the
    /// read that follows reports it.
    pub fn has_input(&self) -> io::Result<bool> {
        let sock = match self {
            Transport::Plain(sock) => sock,
            Transport::Tls(t) => &t.sock,
        };
        sock.set_nonblocking(true)?;
        let peeked = sock.peek(&mut [0u8; 1]);
        sock.set_nonblocking(false)?;
        match peeked {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
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

fn dial(addr: &str, opts: &ConnOptions) -> Result<TcpStream, Error> {
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
