//! Opening a PostgreSQL session: what the URI says (host, port, database, credentials, the
//! accepted query parameters), TLS as libpq's `sslmode` says, the session settings a read
//! depends on, and why a login failed. Kept whole in a `Connector`, so that a session can be
//! opened again after a failure.
//!
//! The session is read-only (`default_transaction_read_only`) and bounded by
//! `statement_timeout`, so a slow or stuck batch becomes a retriable error.
//!
//! TLS follows libpq's `sslmode` and friends (`tls_params`), over rustls
//! (`tokio-postgres-rustls`, with channel binding): the rustls config is built anew from
//! `tls::TlsSettings` at every connection, so rotated certificate files are picked up, and so is
//! a rotated `password_file`.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::{driver_kind, map_err};
use crate::secret::Secret;
use crate::source::pg_client::{Client, ConnectError};
use crate::source::tls_params::{self, DbTls, Use};
use crate::source::uri::ParsedUri;
use crate::source::{read_password, redact_uri, SourceError, SourceSpec};

/// Everything needed to open a session, again after a failure.
pub(super) struct Connector {
    /// Without the password of `password`, which is read at each connection.
    config: Config,
    tls: DbTls,
    password: Option<Secret>,
    session_setup: String,
    /// Where we connect, for messages (host:port/database, no credentials).
    target: String,
    user: String,
}

impl Connector {
    /// Where and how to connect, as the URI and the config say; nothing is opened yet. A URI
    /// we cannot use (a bad TLS parameter, an unsupported query parameter) is refused here.
    pub(super) fn from_uri(spec: &SourceSpec, uri: &ParsedUri) -> Result<Connector, SourceError> {
        let redacted = redact_uri(&spec.uri);
        let (mut config, host, port) = base_config(uri);
        let bad = |why: String| SourceError::BadUri(format!("parsing uri {redacted}: {why}"));
        let mut tls = tls_params::postgres(&uri.query).map_err(bad)?;
        if let Some(secret) = &spec.ssl_key_password {
            tls.set_key_password("sql_source.sslpassword_file", secret)
                .map_err(bad)?;
        }
        apply_query(&mut config, &uri.query).map_err(bad)?;
        // libpq never uses TLS over a unix socket (a local connection); neither do we.
        if host.starts_with('/') {
            tls.use_tls = Use::Never;
        }
        set_timeouts(&mut config, spec.connect_timeout);
        Ok(Connector {
            config,
            tls,
            password: spec.password.clone(),
            session_setup: session_setup(spec.query_timeout),
            target: format!("{host}:{port}/{}", uri.database.as_deref().unwrap_or("")),
            user: uri.user.clone().unwrap_or_default(),
        })
    }

    /// Where we connect, for messages (host:port/database, no credentials).
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// A new session, TLS as `sslmode` says, set up for reading.
    pub(super) fn open(&self) -> Result<Client, SourceError> {
        let connecting = format!("connecting to postgresql at {}", self.target);
        let mut config = self.config.clone();
        if let Some(secret) = &self.password {
            config.password(read_password(secret, &connecting)?);
        }
        let mut client = match self.tls.use_tls {
            Use::Never => self.connect(&mut config, SslMode::Disable, &connecting),
            Use::IfOffered => self.connect(&mut config, SslMode::Prefer, &connecting),
            Use::Always => self.connect(&mut config, SslMode::Require, &connecting),
            // libpq's `allow`: plaintext, and TLS only when the server refuses plaintext (a
            // pg_hba.conf `hostssl` line, or `hostnossl ... reject`).
            Use::PlaintextFirst => match self.connect(&mut config, SslMode::Disable, &connecting) {
                Err(SourceError::Refused(why)) => {
                    log::info!("{why}; trying again over TLS ({})", self.tls.mode);
                    self.connect(&mut config, SslMode::Require, &connecting)
                }
                other => other,
            },
        }?;
        client
            .batch_execute(&self.session_setup)
            .map_err(|e| map_err(&format!("{connecting}: setting up the session"), e))?;
        Ok(client)
    }

    fn connect(
        &self,
        config: &mut Config,
        mode: SslMode,
        connecting: &str,
    ) -> Result<Client, SourceError> {
        config.ssl_mode(mode);
        let result = if mode == SslMode::Disable {
            Client::connect(config, NoTls)
        } else {
            // Built from the files as they are now: a rotated CA or client certificate is
            // used from the next connection on.
            let tls = self.tls.settings.client_config().map_err(|e| {
                SourceError::Refused(format!("{connecting}: {e} ({})", self.tls.mode))
            })?;
            Client::connect(config, MakeRustlsConnect::new(Arc::unwrap_or_clone(tls)))
        };
        result.map_err(|e| match e {
            ConnectError::Postgres(e) => self.connect_error(connecting, e),
            ConnectError::Runtime(e) => {
                SourceError::Unavailable(format!("{connecting}: cannot start its I/O: {e}"))
            }
        })
    }

    /// Why connecting failed: a credential, a TLS handshake, or the network.
    fn connect_error(&self, connecting: &str, e: tokio_postgres::Error) -> SourceError {
        let user = &self.user;
        match e.code().map(|c| c.code()) {
            // invalid_authorization_specification, invalid_password
            Some("28P01") => {
                return SourceError::Refused(format!(
                    "{connecting}: authentication failed for user {user}"
                ))
            }
            // No pg_hba.conf entry and the like: the server's message says which rule.
            Some("28000") => {
                return SourceError::Refused(format!(
                    "{connecting}: authentication failed for user {user}: {}",
                    e.as_db_error().map_or("", |d| d.message())
                ))
            }
            _ => {}
        }
        if let Some(tls) = crate::tls::find_rustls_error(&e) {
            return SourceError::Refused(format!(
                "{connecting}: TLS handshake failed ({}): {}",
                self.tls.mode,
                crate::tls::describe(tls)
            ));
        }
        if driver_kind(&e) == "Tls" {
            let cause = std::error::Error::source(&e).map(|c| c.to_string());
            if cause.as_deref() == Some("server does not support TLS") {
                return SourceError::Refused(format!(
                    "{connecting}: the server does not offer TLS, and {} refuses plaintext",
                    self.tls.mode
                ));
            }
        }
        map_err(connecting, e)
    }
}

/// The connection config the URI's parts give (user, password, host, port, database), and
/// the host and port it names.
fn base_config(uri: &ParsedUri) -> (Config, String, u16) {
    let mut config = Config::new();
    config.application_name("repliqate");
    if let Some(user) = &uri.user {
        config.user(user);
    }
    if let Some(pw) = &uri.password {
        config.password(pw);
    }
    // `?host=/run/postgresql` is how SQLAlchemy users write a unix socket directory.
    let host = uri
        .query_value("host")
        .map(str::to_string)
        .or(uri.host.clone())
        .unwrap_or_else(|| "localhost".to_string());
    config.host(&host);
    let port = uri.port.unwrap_or(5432);
    config.port(port);
    if let Some(db) = &uri.database {
        config.dbname(db);
    }
    (config, host, port)
}

/// The URI's query parameters that are not TLS's: `application_name` is applied, `host` was
/// (`base_config`); any other is refused, its value hidden when it may be a password.
fn apply_query(config: &mut Config, query: &[(String, String)]) -> Result<(), String> {
    for (key, value) in query {
        match key.as_str() {
            "application_name" => {
                config.application_name(value);
            }
            "host" | "connect_timeout" => {}
            k if tls_params::POSTGRES_KEYS.contains(&k) => {}
            _ => {
                return Err(format!(
                    "unsupported query parameter {key}={}; accepted: host, \
                     application_name, connect_timeout, sslmode, sslrootcert, sslcert, \
                     sslkey, sslpassword",
                    if key.contains("password") {
                        "***"
                    } else {
                        value
                    }
                ))
            }
        }
    }
    Ok(())
}

/// The login timeout, and TCP keepalives.
fn set_timeouts(config: &mut Config, connect_timeout: Duration) {
    if !connect_timeout.is_zero() {
        config.connect_timeout(connect_timeout);
    }
    // Detect a dead peer without waiting for the OS default of two hours.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
}

/// The statements that set up every session for reading.
fn session_setup(query_timeout: Duration) -> String {
    // Everything a text form depends on, fixed (PostgreSQL manual, "Client Connection
    // Defaults"): timestamps with time zone in UTC, ISO dates, `postgres` intervals,
    // floats (inside geometric types, composites) exact: extra_float_digits 3 is the
    // shortest exact spelling since PostgreSQL 12 (any value above 0 is), and 17
    // significant digits before it (where 1, the default, was not always exact);
    // bytea (inside composites) in hex. Nothing else in a text form follows a session
    // setting, except money's currency format (lc_monetary), which we read as numeric
    // where we can.
    format!(
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
         SET extra_float_digits = 3; SET bytea_output = 'hex'; \
         SET default_transaction_read_only = on; SET statement_timeout = {}",
        query_timeout.as_millis()
    )
}
