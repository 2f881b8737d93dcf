//! Opening a MySQL / MariaDB session: what the URI says (host, port, database, credentials, a
//! unix socket, the accepted query parameters), TLS as the `mysql` client's `ssl-mode` says,
//! the session settings, and why a login failed. Kept whole in a `Connector`, so that a session
//! can be opened again after a failure.
//!
//! The session is set to UTC (`time_zone = '+00:00'`, so TIMESTAMP values are UTC), utf8mb4,
//! read-only, and bounded by the server's statement timeout (`max_statement_time` on MariaDB,
//! `max_execution_time` on MySQL) plus socket read/write timeouts.
//!
//! TLS follows the `mysql` client's `ssl-mode` and friends (`tls_params`), through the driver's
//! own rustls config (`SslOpts`), which reads the files again at every connection. The driver
//! has no PREFERRED: we ask for TLS and connect again in plaintext when the server offers none.
//! Our `tls::TlsSettings` is used to check the files first, so a bad one is named with its
//! setting. Note: the driver always trusts Mozilla's roots (webpki-roots) besides a CA given in
//! `ssl-ca`, so with VERIFY_CA or VERIFY_IDENTITY a certificate from a public CA passes too.

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{ClientIdentity, Conn, Opts, OptsBuilder, SslOpts};

use super::error::map_err;
use crate::secret::Secret;
use crate::source::tls_params::{self, DbTls, Use};
use crate::source::uri::ParsedUri;
use crate::source::{read_password, redact_uri, SourceError, SourceSpec};
use crate::tls::{ClientCert, Pem, Trust};

/// Everything needed to open a session, again after a failure.
pub(super) struct Connector {
    /// Without TLS options, and without the password of `password` (read at each connection).
    opts: Opts,
    tls: DbTls,
    password: Option<Secret>,
    query_timeout: Duration,
    /// Where we connect, for messages (host:port/database, no credentials).
    target: String,
    user: String,
}

impl Connector {
    /// Where and how to connect, as the URI and the config say; nothing is opened yet. A URI
    /// we cannot use (a bad TLS parameter, an unsupported query parameter, TLS required over a
    /// unix socket) is refused here.
    pub(super) fn from_uri(spec: &SourceSpec, uri: &ParsedUri) -> Result<Connector, SourceError> {
        let redacted = redact_uri(&spec.uri);
        let host = uri.host.clone().unwrap_or_else(|| "localhost".to_string());
        let port = uri.port.unwrap_or(3306);
        let builder = base_opts(uri, &host, port);
        let bad = |why: String| SourceError::BadUri(format!("parsing uri {redacted}: {why}"));
        let tls = tls_params::mysql(&uri.query).map_err(bad)?;
        let (builder, socket) = apply_query(builder, &uri.query).map_err(bad)?;
        if socket && tls.use_tls == Use::Always {
            return Err(bad(format!(
                "{} cannot apply to unix_socket: the driver never encrypts a local socket; \
                 remove one of them",
                tls.mode
            )));
        }
        let builder = with_timeouts(builder, spec.query_timeout, spec.connect_timeout);
        Ok(Connector {
            opts: Opts::from(builder),
            tls: if socket {
                DbTls {
                    use_tls: Use::Never,
                    ..tls
                }
            } else {
                tls
            },
            password: spec.password.clone(),
            query_timeout: spec.query_timeout,
            target: format!("{host}:{port}/{}", uri.database.as_deref().unwrap_or("")),
            user: uri.user.clone().unwrap_or_default(),
        })
    }

    /// Where we connect, for messages (host:port/database, no credentials).
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// The user we log in as, for messages.
    pub(super) fn user(&self) -> &str {
        &self.user
    }

    /// A new session, TLS as `ssl-mode` says, with the statement timeout set.
    pub(super) fn open(&self) -> Result<Conn, SourceError> {
        let connecting = format!("connecting to mysql at {}", self.target);
        let mut builder = OptsBuilder::from_opts(self.opts.clone());
        if let Some(secret) = &self.password {
            builder = builder.pass(Some(read_password(secret, &connecting)?));
        }
        let result = match self.tls.use_tls {
            Use::Never => Conn::new(builder),
            Use::Always => Conn::new(builder.ssl_opts(Some(self.ssl_opts(&connecting)?))),
            // PREFERRED, which the driver lacks: TLS, and plaintext only when the server offers
            // no TLS at all (a failed handshake is an error, as in the mysql client).
            Use::IfOffered | Use::PlaintextFirst => {
                let ssl = self.ssl_opts(&connecting)?;
                match Conn::new(builder.clone().ssl_opts(Some(ssl))) {
                    Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) => {
                        log::info!(
                            "{connecting}: the server offers no TLS; connecting in plaintext \
                             ({})",
                            self.tls.mode
                        );
                        Conn::new(builder)
                    }
                    other => other,
                }
            }
        };
        let mut conn = result.map_err(|e| self.connect_error(&connecting, e))?;
        if !self.query_timeout.is_zero() {
            let setting = if is_mariadb(&mut conn).map_err(|e| map_err(&connecting, e))? {
                format!(
                    "SET SESSION max_statement_time = {:.3}",
                    self.query_timeout.as_secs_f64()
                )
            } else {
                format!(
                    "SET SESSION max_execution_time = {}",
                    self.query_timeout.as_millis()
                )
            };
            conn.query_drop(setting)
                .map_err(|e| map_err(&format!("{connecting}: setting the statement timeout"), e))?;
        }
        Ok(conn)
    }

    /// The driver's TLS options, after checking the files ourselves (the driver would report
    /// a missing file as an I/O error, without saying which setting named it, and cannot load
    /// an X.509 v1 client certificate). The URI names files, never a key's password: the
    /// `mysql` client has none.
    fn ssl_opts(&self, connecting: &str) -> Result<SslOpts, SourceError> {
        let settings = &self.tls.settings;
        settings
            .for_webpki_driver("MySQL")
            .map_err(|e| SourceError::Refused(format!("{connecting}: {e} ({})", self.tls.mode)))?;
        let path = |pem: &Pem| match pem {
            Pem::File(f) => Some(f.path.clone()),
            Pem::Inline { .. } => None,
        };
        let client = match &settings.client {
            Some(ClientCert::Pem { cert, key, .. }) => path(cert).zip(path(key)),
            _ => None,
        };
        let ca = match &settings.ca {
            Some(Trust::Pem(ca)) => path(ca),
            _ => None,
        };
        Ok(SslOpts::default()
            .with_root_cert_path(ca)
            .with_client_identity(client.map(|(cert, key)| ClientIdentity::new(cert, key)))
            .with_danger_accept_invalid_certs(!settings.verify_certificate)
            .with_danger_skip_domain_validation(!settings.verify_hostname))
    }

    /// Why connecting failed: a credential, a TLS handshake, or the network.
    fn connect_error(&self, connecting: &str, e: mysql::Error) -> SourceError {
        let tls = match &e {
            mysql::Error::MySqlError(me) if me.code == 1045 => {
                // MariaDB's require_secure_transport refuses plaintext with this error too.
                let plaintext = if self.tls.use_tls == Use::Never {
                    format!(
                        " (the connection was plaintext, {}: a server that requires TLS \
                         refuses plaintext so too)",
                        self.tls.mode
                    )
                } else {
                    String::new()
                };
                return SourceError::Refused(format!(
                    "{connecting}: authentication failed for user {}: {}{plaintext}",
                    self.user, me.message
                ));
            }
            mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => {
                return SourceError::Refused(format!(
                    "{connecting}: the server does not offer TLS, and {} refuses plaintext",
                    self.tls.mode
                ))
            }
            mysql::Error::TlsError(t) => Some(
                crate::tls::find_rustls_error(t)
                    .map_or_else(|| t.to_string(), crate::tls::describe),
            ),
            // The handshake runs inside the driver's first read or write of a packet.
            mysql::Error::IoError(io) => crate::tls::rustls_error(io).map(crate::tls::describe),
            mysql::Error::CodecError(codec) => {
                crate::tls::find_rustls_error(codec).map(crate::tls::describe)
            }
            _ => None,
        };
        match tls {
            Some(why) => SourceError::Refused(format!(
                "{connecting}: TLS handshake failed ({}): {why}",
                self.tls.mode
            )),
            None => map_err(connecting, e),
        }
    }
}

/// The driver's options the URI's parts give (host, port, user, password, database), and the
/// statements that set up every session.
fn base_opts(uri: &ParsedUri, host: &str, port: u16) -> OptsBuilder {
    OptsBuilder::new()
        .ip_or_hostname(Some(host.to_string()))
        .tcp_port(port)
        .user(uri.user.clone())
        .pass(uri.password.clone())
        .db_name(uri.database.clone())
        // Otherwise the driver switches to the server's own unix socket when the host is
        // local, which may not be the server the URI names.
        .prefer_socket(false)
        .init(vec![
            "SET time_zone = '+00:00'",
            "SET NAMES utf8mb4",
            // Keep our quoting and literals meaning what they say whatever the server default.
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
            "SET SESSION TRANSACTION READ ONLY",
        ])
}

/// The URI's query parameters that are not TLS's: `unix_socket` is applied (and the `bool` says
/// it was), `charset` must be a utf8 one; any other is refused, its value hidden when it may be
/// a password.
fn apply_query(
    mut builder: OptsBuilder,
    query: &[(String, String)],
) -> Result<(OptsBuilder, bool), String> {
    let mut socket = false;
    for (key, value) in query {
        match key.as_str() {
            // PyMySQL's spelling; the charset is always utf8mb4 here.
            "unix_socket" => {
                socket = true;
                builder = builder.socket(Some(value.clone())).prefer_socket(true)
            }
            "charset" if value.starts_with("utf8") => {}
            k if tls_params::MYSQL_KEYS.contains(&k) => {}
            _ => {
                return Err(format!(
                    "unsupported query parameter {key}={}; accepted: unix_socket, \
                     charset=utf8mb4, ssl-mode, ssl-ca, ssl-cert, ssl-key (or ssl_mode, \
                     ssl_ca, ssl_cert, ssl_key, ssl_check_hostname)",
                    if key.contains("pass") { "***" } else { value }
                ))
            }
        }
    }
    Ok((builder, socket))
}

/// The login timeout, and the socket timeouts that back up the statement timeout.
fn with_timeouts(
    builder: OptsBuilder,
    query_timeout: Duration,
    connect_timeout: Duration,
) -> OptsBuilder {
    let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
    // The server-side statement timeout fires first; the socket timeout is the backstop
    // for a server that stopped answering altogether.
    let socket_timeout = nonzero(query_timeout).map(|d| d + Duration::from_secs(5));
    builder
        .tcp_connect_timeout(nonzero(connect_timeout))
        .read_timeout(socket_timeout)
        .write_timeout(socket_timeout)
}

/// The server is MariaDB (its `VERSION()` says so) rather than MySQL.
pub(super) fn is_mariadb(conn: &mut Conn) -> Result<bool, mysql::Error> {
    let version: Option<String> = conn.query_first("SELECT VERSION()")?;
    Ok(version.is_some_and(|v| v.contains("MariaDB")))
}
