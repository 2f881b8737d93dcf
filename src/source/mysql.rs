//! MySQL / MariaDB source. The batch query is a server-side prepared statement, so values arrive
//! in the binary protocol already typed (integers as integers, dates as date structs) rather
//! than as text we would have to re-parse. Column types are read from `information_schema` at
//! start-up, which decides how each value is published (a BLOB and a TEXT both arrive as bytes).
//! Spatial columns are the exception: selected as `ST_AsText(col)`, they arrive as WKT text.
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
use mysql::{ClientIdentity, Conn, Opts, OptsBuilder, SslOpts, Statement};

use super::tls_params::{self, DbTls, Use};
use super::uri::ParsedUri;
use super::{
    convert, plan_columns, quote_backtick, read_password, redact_uri, row_id, similar_names,
    IdAllocation, Plan, RowCount, SourceError, SourceSpec, Utf8Warnings,
};
use crate::secret::Secret;
use crate::tls::{ClientCert, Pem, Trust};
use crate::value::{Id, OpenTransactions, Value};

/// How one column's value is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Every integer type and YEAR.
    Int,
    Float4,
    Float8,
    /// DECIMAL: the server's exact digits.
    Decimal,
    /// Character types, ENUM, SET (and MariaDB's UUID/INET types): UTF-8 text.
    Text,
    /// GEOMETRY, POINT, LINESTRING, POLYGON, MULTI*, GEOMETRYCOLLECTION: selected as
    /// `ST_AsText(col)`, the WKT text, published as a string.
    Spatial,
    /// BINARY, VARBINARY, BLOBs: base64.
    Binary,
    Date,
    DateTime,
    /// TIMESTAMP: read in a UTC session, so written with `Z`.
    Timestamp,
    Time,
    Json,
    /// BIT(n): the bits as an unsigned integer.
    Bit,
}

pub struct MysqlSource {
    pub(crate) plan: Plan,
    connector: Connector,
    sql: String,
    /// `SELECT MAX(key)`, as text (an unsigned key may be above i64::MAX).
    max_sql: String,
    /// The database and the table as information_schema names them.
    schema_table: (String, String),
    kinds: Vec<Kind>,
    user: String,
    /// `None` after an error: the next fetch connects again.
    conn: Option<(Conn, Statement)>,
    utf8_warnings: Utf8Warnings,
}

impl MysqlSource {
    pub(crate) fn connect(spec: &SourceSpec, uri: ParsedUri) -> Result<MysqlSource, SourceError> {
        let redacted = redact_uri(&spec.uri);
        let host = uri.host.clone().unwrap_or_else(|| "localhost".to_string());
        let port = uri.port.unwrap_or(3306);
        let mut builder = OptsBuilder::new()
            .ip_or_hostname(Some(host.clone()))
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
            ]);
        let bad = |why: String| SourceError::BadUri(format!("parsing uri {redacted}: {why}"));
        let tls = tls_params::mysql(&uri.query).map_err(bad)?;
        let mut socket = false;
        for (key, value) in &uri.query {
            match key.as_str() {
                // PyMySQL's spelling; the charset is always utf8mb4 here.
                "unix_socket" => {
                    socket = true;
                    builder = builder.socket(Some(value.clone())).prefer_socket(true)
                }
                "charset" if value.starts_with("utf8") => {}
                k if tls_params::MYSQL_KEYS.contains(&k) => {}
                _ => {
                    return Err(bad(format!(
                        "unsupported query parameter {key}={}; accepted: unix_socket, \
                         charset=utf8mb4, ssl-mode, ssl-ca, ssl-cert, ssl-key (or ssl_mode, \
                         ssl_ca, ssl_cert, ssl_key, ssl_check_hostname)",
                        if key.contains("pass") { "***" } else { value }
                    )))
                }
            }
        }
        if socket && tls.use_tls == Use::Always {
            return Err(bad(format!(
                "{} cannot apply to unix_socket: the driver never encrypts a local socket; \
                 remove one of them",
                tls.mode
            )));
        }
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        // The server-side statement timeout fires first; the socket timeout is the backstop
        // for a server that stopped answering altogether.
        let socket_timeout = nonzero(spec.query_timeout).map(|d| d + Duration::from_secs(5));
        builder = builder
            .tcp_connect_timeout(nonzero(spec.connect_timeout))
            .read_timeout(socket_timeout)
            .write_timeout(socket_timeout);
        let user = uri.user.clone().unwrap_or_default();
        let connector = Connector {
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
            user: user.clone(),
        };
        let target = connector.target.clone();
        let mut conn = connector.open()?;

        let checking = format!("checking source table {}", spec.table);
        let err = |e| map_err(&checking, e);
        let current_db: Option<String> = conn
            .query_first("SELECT DATABASE()")
            .map_err(err)?
            .flatten();
        // The literal name first (a table may contain a dot); then `database.table`.
        let mut found = None;
        if let Some(db) = &current_db {
            found = find_table(&mut conn, db, &spec.table).map_err(err)?;
        }
        if found.is_none() {
            if let Some((schema, table)) = spec.table.split_once('.') {
                found = find_table(&mut conn, schema, table).map_err(err)?;
            }
        }
        let Some((schema, table)) = found else {
            let Some(db) = current_db else {
                return Err(SourceError::Schema(format!(
                    "{checking}: no database given: name it in the uri (mysql://…/database) or \
                     write the table as database.table"
                )));
            };
            let names: Vec<String> = conn
                .exec(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                    (db,),
                )
                .map_err(err)?;
            return Err(SourceError::Schema(format!(
                "{checking}: no such table or view in {target}{}",
                similar_names(&spec.table, &names).unwrap_or_default()
            )));
        };
        let columns: Vec<(String, String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (&schema, &table),
            )
            .map_err(err)?;
        // MariaDB's JSON is LONGTEXT with a `json_valid(col)` check (its manual, "JSON Data
        // Type"); only that constraint tells it apart from plain text.
        let mariadb_json: Vec<String> = if is_mariadb(&mut conn).map_err(err)? {
            conn.exec(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                (&schema, &table),
            )
            .map_err(err)?
        } else {
            Vec::new()
        };
        let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
        let plan = plan_columns(spec, &names, true)?;

        let (pk_name, pk_type, pk_shown) = &columns[plan.table_index[plan.pk]];
        if !is_integer(pk_type) {
            return Err(SourceError::Schema(format!(
                "{checking}: primary key {} has type {pk_shown}; expected an integer type \
                 (TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT, signed or unsigned)",
                spec.primary_key
            )));
        }
        let mut kinds = Vec::with_capacity(plan.names.len());
        for (name, &i) in plan.names.iter().zip(&plan.table_index) {
            let (col, data_type, shown) = &columns[i];
            let json_check = format!("json_valid({})", quote_backtick(col));
            let kind = if mariadb_json.contains(&json_check) {
                Some(Kind::Json)
            } else {
                kind_of(data_type)
            };
            kinds.push(kind.ok_or_else(|| {
                SourceError::Schema(format!(
                    "{checking}: column {name} has type {shown}, which cannot be published; \
                     supported: integer types, FLOAT, DOUBLE, DECIMAL, character types, ENUM, \
                     SET, BINARY/VARBINARY/BLOB, DATE, DATETIME, TIMESTAMP, TIME, YEAR, BIT, \
                     JSON, UUID, INET4, INET6, spatial types"
                ))
            })?);
        }
        let select: Vec<String> = plan
            .table_index
            .iter()
            .zip(&kinds)
            .map(|(&i, kind)| match kind {
                // The server's WKT: the same text for any SRID and axis order (neither is part
                // of WKT), coordinates at their shortest exact spelling.
                Kind::Spatial => format!("ST_AsText({})", quote_backtick(&columns[i].0)),
                _ => quote_backtick(&columns[i].0),
            })
            .collect();
        let pk_sql = quote_backtick(pk_name);
        let sql = format!(
            "SELECT {} FROM {}.{} WHERE {pk_sql} > ? ORDER BY {pk_sql} LIMIT ?",
            select.join(", "),
            quote_backtick(&schema),
            quote_backtick(&table)
        );
        let stmt = conn.prep(&sql).map_err(err)?;
        let max_sql = format!(
            "SELECT CAST(MAX({pk_sql}) AS CHAR) FROM {}.{}",
            quote_backtick(&schema),
            quote_backtick(&table)
        );
        Ok(MysqlSource {
            plan,
            connector,
            sql,
            max_sql,
            schema_table: (schema, table),
            kinds,
            user,
            conn: Some((conn, stmt)),
            utf8_warnings: Utf8Warnings::default(),
        })
    }

    /// Takes the connection out (opening it and preparing the batch query if there is none);
    /// the caller puts it back only if it worked, so a failed connection is never reused.
    fn take_connection(&mut self) -> Result<(Conn, Statement), SourceError> {
        if let Some(c) = self.conn.take() {
            return Ok(c);
        }
        let mut conn = self.connector.open()?;
        let stmt = conn.prep(&self.sql).map_err(|e| {
            map_err(
                &format!("preparing the batch query for table {}", self.plan.table),
                e,
            )
        })?;
        Ok((conn, stmt))
    }

    /// Runs `f` on the connection (re-opened after a failure); a failure drops it.
    fn with_conn<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Conn) -> Result<T, mysql::Error>,
    ) -> Result<T, SourceError> {
        let (mut conn, stmt) = self.take_connection()?;
        match f(&mut conn) {
            Ok(v) => {
                self.conn = Some((conn, stmt));
                Ok(v)
            }
            Err(e) => Err(map_err(what, e)),
        }
    }

    /// The highest key in the table (`None` when it is empty): InnoDB reads the end of the
    /// clustered index.
    pub(crate) fn max_id(&mut self) -> Result<Option<Id>, SourceError> {
        let what = format!("reading the highest id of table {}", self.plan.table);
        let sql = self.max_sql.clone();
        let max: Option<Option<String>> = self.with_conn(&what, |c| c.query_first(sql))?;
        match max.flatten() {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                SourceError::Query(format!("{what}: MAX returned {text:?}, not an integer"))
            }),
        }
    }

    /// The storage engine's estimate of the row count (`information_schema.TABLES.TABLE_ROWS`:
    /// InnoDB samples it, and it may be off by half; NULL for a view).
    pub(crate) fn estimated_rows(&mut self) -> Result<RowCount, SourceError> {
        let what = format!("reading the row estimate of table {}", self.plan.table);
        let (schema, table) = self.schema_table.clone();
        let rows: Option<Option<u64>> = self.with_conn(&what, |c| {
            c.exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (schema, table),
            )
        })?;
        Ok(RowCount {
            rows: rows.flatten(),
            exact: false,
            source: "information_schema.TABLES.TABLE_ROWS",
        })
    }

    /// `auto_increment_increment` as the writers see it (the global value; a session may
    /// override it, which `id_step` in the config can express).
    pub(crate) fn id_allocation(&mut self) -> Result<IdAllocation, SourceError> {
        let step: Option<u64> = self.with_conn("reading auto_increment_increment", |c| {
            c.query_first("SELECT @@global.auto_increment_increment")
        })?;
        let step = step.unwrap_or(1).max(1);
        Ok(IdAllocation {
            step,
            cached: false,
            origin: format!("@@global.auto_increment_increment = {step}"),
            // InnoDB fills information_schema.INNODB_TRX from a cache refreshed at most every
            // 100 ms (TRX_I_S_CACHE_MIN_REFRESH_TIME): a transaction that just allocated ids may
            // be missing from it. Twice that, to be safe.
            snapshot_delay: std::time::Duration::from_millis(200),
            final_at_once: false,
        })
    }

    /// InnoDB transactions open now (information_schema.INNODB_TRX, which needs the PROCESS
    /// privilege), or why we may not read it.
    pub(crate) fn open_transactions(&mut self) -> Result<OpenTransactions, SourceError> {
        let result = self.with_conn("reading information_schema.INNODB_TRX", |c| {
            c.query::<String, _>(
                "SELECT CONCAT(trx_id, '@', trx_started) FROM information_schema.INNODB_TRX \
                 WHERE trx_mysql_thread_id <> CONNECTION_ID()",
            )
        });
        match result {
            Ok(open) => Ok(OpenTransactions::Listed(open)),
            Err(SourceError::Refused(_)) => Ok(OpenTransactions::Unknown {
                reason: format!(
                    "reading information_schema.INNODB_TRX needs the PROCESS privilege; grant it \
                     to {} (GRANT PROCESS ON *.* TO ...)",
                    self.user
                ),
            }),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn fetch_each<E: From<SourceError>>(
        &mut self,
        after: Id,
        limit: usize,
        mut row: impl FnMut(Id, &[Value]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let (mut conn, stmt) = self.take_connection()?;
        let reading = format!("reading table {}", self.plan.table);
        let err = |e| map_err(&reading, e);
        // Unsigned keys above i64::MAX are bound as unsigned so the comparison stays exact.
        let after = if after > Id::from(i64::MAX) {
            mysql::Value::UInt(u64::try_from(after).unwrap_or(u64::MAX))
        } else {
            mysql::Value::Int(super::clamp_i64(after))
        };
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let mut values = Vec::with_capacity(self.kinds.len());
        let mut count = 0;
        for r in conn.exec_iter(&stmt, (after, limit)).map_err(err)? {
            let raw = r.map_err(err)?.unwrap();
            values.resize(self.kinds.len(), Value::Null);
            let mut bad_text = Vec::new();
            for (i, ((v, kind), slot)) in raw
                .into_iter()
                .zip(&self.kinds)
                .zip(&mut values)
                .enumerate()
            {
                convert_value(v, *kind, slot, || bad_text.push(i));
            }
            let id = row_id(&self.plan, &values)?;
            self.utf8_warnings
                .report(&reading, &self.plan.names, id, &bad_text);
            row(id, &values)?;
            count += 1;
        }
        // Only a connection that worked is kept for the next batch.
        self.conn = Some((conn, stmt));
        Ok(count)
    }
}

fn is_integer(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

fn kind_of(data_type: &str) -> Option<Kind> {
    Some(match data_type {
        t if is_integer(t) => Kind::Int,
        "year" => Kind::Int,
        "float" => Kind::Float4,
        "double" | "real" => Kind::Float8,
        "decimal" | "numeric" => Kind::Decimal,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set"
        | "uuid" | "inet4" | "inet6" => Kind::Text,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Binary,
        "date" => Kind::Date,
        "datetime" => Kind::DateTime,
        "timestamp" => Kind::Timestamp,
        "time" => Kind::Time,
        "json" => Kind::Json,
        "bit" => Kind::Bit,
        // `geomcollection` is MySQL 8's DATA_TYPE for GEOMETRYCOLLECTION.
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => Kind::Spatial,
        _ => return None,
    })
}

/// Turns one binary-protocol value into its published form, in `slot` (the previous row's
/// value of the column, whose text buffer a date or time is written into). `bad_utf8` is
/// called when text had to be repaired, so the caller can warn with the row's key.
fn convert_value(v: mysql::Value, kind: Kind, slot: &mut Value, bad_utf8: impl FnOnce()) {
    use mysql::Value as M;
    let text = |bytes: Vec<u8>| match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            bad_utf8();
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    *slot = match (v, kind) {
        (M::NULL, _) => Value::Null,
        (M::Int(i), _) => Value::Int(i),
        (M::UInt(u), _) => i64::try_from(u).map_or(Value::UInt(u), Value::Int),
        (M::Float(x), _) => Value::Float(convert::f32_as_python(x)),
        (M::Double(x), _) => Value::Float(x),
        (M::Bytes(b), Kind::Binary) => Value::Str(convert::base64(&b)),
        (M::Bytes(b), Kind::Bit) => {
            // BIT(n) is at most 64 bits, sent big-endian.
            let n = b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
            i64::try_from(n).map_or(Value::UInt(n), Value::Int)
        }
        (M::Bytes(b), Kind::Json) => {
            let s = text(b);
            match serde_json::from_str(&s) {
                Ok(j) => Value::Json(Box::new(j)),
                // The server checked it is JSON; only numbers beyond f64 fail here.
                Err(_) => Value::Str(s),
            }
        }
        (M::Bytes(b), _) => Value::Str(text(b)),
        (M::Date(y, mo, d, h, mi, s, us), kind) => {
            let mut out = take_text(slot);
            let time = (kind != Kind::Date).then_some((h, mi, s, us));
            convert::mysql_datetime(&mut out, (y, mo, d), time, kind == Kind::Timestamp);
            Value::Str(out)
        }
        (M::Time(negative, days, h, mi, s, us), _) => {
            let mut out = take_text(slot);
            convert::mysql_time(&mut out, negative, (days, h, mi, s, us));
            Value::Str(out)
        }
    };
}

/// The text buffer of the previous row's value, to be written again (empty if it had none): a
/// date column's text is rewritten in place row after row, without allocating.
fn take_text(slot: &mut Value) -> String {
    match std::mem::replace(slot, Value::Null) {
        Value::Str(s) => s,
        _ => String::new(),
    }
}

fn find_table(
    conn: &mut Conn,
    schema: &str,
    table: &str,
) -> Result<Option<(String, String)>, mysql::Error> {
    conn.exec_first(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        (schema, table),
    )
}

fn is_mariadb(conn: &mut Conn) -> Result<bool, mysql::Error> {
    let version: Option<String> = conn.query_first("SELECT VERSION()")?;
    Ok(version.is_some_and(|v| v.contains("MariaDB")))
}

/// Everything needed to open a session, again after a failure.
struct Connector {
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
    /// A new session, TLS as `ssl-mode` says, with the statement timeout set.
    fn open(&self) -> Result<Conn, SourceError> {
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

/// The one place a mysql error becomes a `SourceError`, and the retry decision.
fn map_err(what: &str, e: mysql::Error) -> SourceError {
    use mysql::DriverError as D;
    // The driver's own Display wraps messages in `DriverError { … }`; print the inner error.
    let msg = match &e {
        mysql::Error::IoError(io) => format!("{what}: {io}"),
        mysql::Error::DriverError(d) => format!("{what}: {d}"),
        mysql::Error::MySqlError(me) => format!("{what}: {me}"),
        _ => format!("{what}: {e}"),
    };
    match &e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) => SourceError::Unavailable(msg),
        mysql::Error::DriverError(
            D::ConnectTimeout
            | D::CouldNotConnect(_)
            | D::Timeout
            | D::PacketOutOfSync
            | D::UnexpectedPacket,
        ) => SourceError::Unavailable(msg),
        mysql::Error::DriverError(
            D::UnknownAuthPlugin(_) | D::OldMysqlPasswordDisabled | D::CleartextPluginDisabled,
        ) => SourceError::Refused(msg),
        // Server error codes: MariaDB/MySQL "Server Error Message Reference".
        mysql::Error::MySqlError(me) => match me.code {
            // too many connections, shutdown in progress, lock wait timeout, deadlock, query
            // interrupted, connection killed, statement time limits (MySQL 3024, MariaDB 1969),
            // server gone / lost connection as relayed by a proxy.
            1040 | 1053 | 1205 | 1213 | 1317 | 1927 | 3024 | 1969 | 2006 | 2013 => {
                SourceError::Unavailable(msg)
            }
            // access denied (password, database, command), unknown database; insecure
            // transport refused (require_secure_transport: MySQL 3159, MariaDB 4036).
            1044 | 1045 | 1049 | 1142 | 1143 | 1227 | 3159 | 4036 => SourceError::Refused(msg),
            _ => SourceError::Query(msg),
        },
        mysql::Error::UrlError(_) => SourceError::BadUri(msg),
        _ => SourceError::Query(msg),
    }
}
