//! PostgreSQL source. Column types are read from the catalog at start-up and each column gets a
//! read plan (`Kind`): native binary decoding for integers, floats, booleans, text and bytea;
//! a `::text` cast in the query for types whose exact text form is what we publish (numeric,
//! dates and times, uuid, enums, json…). The casts are what keep us exact without the optional
//! `postgres-types` features: `numeric::text` is every digit, and the session is set to ISO
//! dates in UTC so the text of a timestamp is unambiguous.
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

use postgres::config::SslMode;
use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, Config, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::convert::Zone;
use super::tls_params::{self, DbTls, Use};
use super::uri::ParsedUri;
use super::{
    clamp_i64, convert, plan_columns, quote_double, read_password, redact_uri, row_id,
    similar_names, IdAllocation, Plan, RowCount, SourceError, SourceSpec,
};
use crate::secret::Secret;
use crate::value::{Id, OpenTransactions, Value};

/// How one column is selected and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int2,
    Int4,
    Int8,
    /// `oid` is an unsigned 32-bit number.
    Oid,
    Float4,
    Float8,
    Bool,
    /// text, varchar, bpchar (kept with its padding, as the old driver saw it), name.
    Text,
    Bytea,
    /// json/jsonb, read as text and parsed.
    Json,
    /// Read as `::text`, published as that string (numeric, uuid, date, enums, inet…).
    AsText,
    /// `money` as `::numeric::text`: exact digits without the locale's currency symbol.
    Money,
    /// `inet` through `abbrev()`: its output-function form (`::1`), where `::text` would
    /// always append the netmask (`::1/128`).
    Inet,
    /// `time`/`timetz` as text, fraction padded to six digits.
    Time,
    Timestamp,
    TimestampTz,
}

/// Types published as their PostgreSQL text form.
const AS_TEXT: [&str; 14] = [
    "numeric", "uuid", "date", "interval", "cidr", "macaddr", "macaddr8", "bit", "varbit", "xml",
    "char", "citext", "tsvector", "pg_lsn",
];

pub struct PostgresSource {
    pub(crate) plan: Plan,
    connector: Connector,
    sql: String,
    kinds: Vec<Kind>,
    /// `None` after an error: the next fetch connects again.
    conn: Option<(Client, Statement)>,
    /// The table and key as SQL text (quoted), for `pg_get_serial_sequence`.
    table_sql: String,
    pk_name: String,
}

impl PostgresSource {
    pub(crate) fn connect(
        spec: &SourceSpec,
        uri: ParsedUri,
    ) -> Result<PostgresSource, SourceError> {
        let redacted = redact_uri(&spec.uri);
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
        let bad = |why: String| SourceError::BadUri(format!("parsing uri {redacted}: {why}"));
        let mut tls = tls_params::postgres(&uri.query).map_err(bad)?;
        for (key, value) in &uri.query {
            match key.as_str() {
                "application_name" => {
                    config.application_name(value);
                }
                "host" | "connect_timeout" => {}
                k if tls_params::POSTGRES_KEYS.contains(&k) => {}
                _ => {
                    return Err(bad(format!(
                        "unsupported query parameter {key}={}; accepted: host, \
                         application_name, connect_timeout, sslmode, sslrootcert, sslcert, sslkey",
                        if key.contains("password") {
                            "***"
                        } else {
                            value
                        }
                    )))
                }
            }
        }
        // libpq never uses TLS over a unix socket (a local connection); neither do we.
        if host.starts_with('/') {
            tls.use_tls = Use::Never;
        }
        if !spec.connect_timeout.is_zero() {
            config.connect_timeout(spec.connect_timeout);
        }
        // Detect a dead peer without waiting for the OS default of two hours.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let connector = Connector {
            config,
            tls,
            password: spec.password.clone(),
            session_setup: format!(
                "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
                 SET default_transaction_read_only = on; SET statement_timeout = {}",
                spec.query_timeout.as_millis()
            ),
            target: format!("{host}:{port}/{}", uri.database.as_deref().unwrap_or("")),
            user: uri.user.clone().unwrap_or_default(),
        };
        let target = connector.target.clone();
        let mut client = connector.open()?;

        let checking = format!("checking source table {}", spec.table);
        let err = |e| map_err(&checking, e);
        // The literal name first (a table may contain a dot); then `schema.table`.
        let mut found = find_table(&mut client, None, &spec.table).map_err(err)?;
        if found.is_none() {
            if let Some((schema, table)) = spec.table.split_once('.') {
                found = find_table(&mut client, Some(schema), table).map_err(err)?;
            }
        }
        let Some((oid, schema, table)) = found else {
            let names: Vec<String> = client
                .query(
                    "SELECT c.relname::text FROM pg_class c \
                     WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND pg_table_is_visible(c.oid)",
                    &[],
                )
                .map_err(err)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            return Err(SourceError::Schema(format!(
                "{checking}: no such table or view in {target}{}",
                similar_names(&spec.table, &names).unwrap_or_default()
            )));
        };
        // Domains are read as their base type.
        // (name, kind key, type as PostgreSQL spells it, base type name)
        let columns: Vec<(String, String, String, String)> = client
            .query(
                "SELECT a.attname::text, \
                        CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END::text, \
                        CASE WHEN t.typtype = 'd' THEN bt.typtype ELSE t.typtype END::text, \
                        CASE WHEN t.typtype = 'd' THEN bt.typcategory ELSE t.typcategory END::text, \
                        format_type(a.atttypid, a.atttypmod) \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 LEFT JOIN pg_type bt ON bt.oid = t.typbasetype \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&oid],
            )
            .map_err(err)?
            .iter()
            .map(|r| {
                let (typname, typtype, category): (String, String, String) =
                    (r.get(1), r.get(2), r.get(3));
                (
                    r.get::<_, String>(0),
                    kind_key(&typname, &typtype, &category),
                    r.get::<_, String>(4),
                    typname,
                )
            })
            .collect();
        let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
        let plan = plan_columns(spec, &names, false)?;

        let pk = &columns[plan.table_index[plan.pk]];
        if !matches!(pk.3.as_str(), "int2" | "int4" | "int8") {
            return Err(SourceError::Schema(format!(
                "{checking}: primary key {} has type {}; expected smallint, integer or bigint",
                spec.primary_key, pk.2
            )));
        }
        let mut kinds = Vec::with_capacity(plan.names.len());
        let mut select = Vec::with_capacity(plan.names.len());
        for (name, &i) in plan.names.iter().zip(&plan.table_index) {
            let (_, key, shown, _) = &columns[i];
            let kind = kind_of(key).ok_or_else(|| {
                SourceError::Schema(format!(
                    "{checking}: column {name} has type {shown}, which cannot be published{}",
                    if key.starts_with("array") {
                        " (arrays are not supported)"
                    } else {
                        "; supported: integers, floats, boolean, text types, bytea, numeric, \
                         money, date/time types, json/jsonb, uuid, enums, interval, inet, cidr, \
                         macaddr, bit, xml"
                    }
                ))
            })?;
            let col = quote_double(&columns[i].0);
            select.push(match kind {
                Kind::Json | Kind::AsText | Kind::Time | Kind::Timestamp | Kind::TimestampTz => {
                    format!("{col}::text")
                }
                Kind::Money => format!("{col}::numeric::text"),
                Kind::Inet => format!("abbrev({col})"),
                _ => col,
            });
            kinds.push(kind);
        }
        let table_sql = match &schema {
            Some(s) => format!("{}.{}", quote_double(s), quote_double(&table)),
            None => quote_double(&table),
        };
        let pk_sql = quote_double(&pk.0);
        // `$1::int8`: a bare `$1` would take the key's type (maybe int4) and refuse an i64.
        let sql = format!(
            "SELECT {} FROM {table_sql} WHERE {pk_sql} > $1::int8 ORDER BY {pk_sql} LIMIT $2::int8",
            select.join(", ")
        );
        let stmt = client.prepare(&sql).map_err(err)?;
        Ok(PostgresSource {
            plan,
            connector,
            sql,
            kinds,
            conn: Some((client, stmt)),
            table_sql,
            pk_name: pk.0.clone(),
        })
    }

    /// The open connection, re-opened (and the batch query prepared) after a failure.
    fn connection(&mut self) -> Result<&mut (Client, Statement), SourceError> {
        let conn = self.take_connection()?;
        Ok(self.conn.insert(conn))
    }

    /// Takes the connection out (opening it and preparing the batch query if there is none);
    /// the caller puts it back only if it worked.
    fn take_connection(&mut self) -> Result<(Client, Statement), SourceError> {
        if let Some(conn) = self.conn.take() {
            return Ok(conn);
        }
        let mut client = self.connector.open()?;
        let stmt = client.prepare(&self.sql).map_err(|e| {
            map_err(
                &format!("preparing the batch query for table {}", self.plan.table),
                e,
            )
        })?;
        Ok((client, stmt))
    }

    /// Runs `f` on the connection; a failure drops the connection.
    fn with_client<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, SourceError> {
        let (client, _) = self.connection()?;
        match f(client) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.conn = None;
                Err(map_err(what, e))
            }
        }
    }

    /// The highest key in the table (`None` when it is empty): the end of the key's index.
    pub(crate) fn max_id(&mut self) -> Result<Option<Id>, SourceError> {
        let sql = format!(
            "SELECT MAX({})::int8 FROM {}",
            quote_double(&self.pk_name),
            self.table_sql
        );
        let what = format!("reading the highest id of table {}", self.plan.table);
        let max: Option<i64> = self.with_client(&what, |c| c.query_one(&sql, &[])?.try_get(0))?;
        Ok(max.map(Id::from))
    }

    /// The planner's estimate of the row count (`pg_class.reltuples`, as of the last VACUUM or
    /// ANALYZE; -1 when the table was never analyzed).
    pub(crate) fn estimated_rows(&mut self) -> Result<RowCount, SourceError> {
        let table = self.table_sql.clone();
        let what = format!("reading the row estimate of table {}", self.plan.table);
        let tuples: f64 = self.with_client(&what, |c| {
            c.query_one(
                "SELECT reltuples::float8 FROM pg_class WHERE oid = $1::text::regclass",
                &[&table],
            )?
            .try_get(0)
        })?;
        Ok(RowCount {
            rows: (tuples >= 0.0).then_some(tuples as u64),
            exact: false,
            source: "pg_class.reltuples",
        })
    }

    /// The key's sequence (serial or identity): its increment and whether sessions cache
    /// values (`CACHE` > 1). A key without a sequence (ids from the application) has step 1.
    pub(crate) fn id_allocation(&mut self) -> Result<IdAllocation, SourceError> {
        let (table, pk) = (self.table_sql.clone(), self.pk_name.clone());
        let what = format!("reading the id sequence of table {}", self.plan.table);
        let row = self.with_client(&what, |c| {
            c.query_opt(
                "SELECT s.increment_by, s.cache_size, format('%I.%I', s.schemaname, s.sequencename) \
                 FROM pg_sequences s \
                 WHERE format('%I.%I', s.schemaname, s.sequencename)::regclass \
                     = pg_get_serial_sequence($1, $2)::regclass",
                &[&table, &pk],
            )
        })?;
        Ok(match row {
            Some(r) => {
                let (step, cache, name): (i64, i64, String) = (r.get(0), r.get(1), r.get(2));
                IdAllocation {
                    step: step.unsigned_abs().max(1),
                    cached: cache > 1,
                    origin: format!("sequence {name} (INCREMENT BY {step}, CACHE {cache})"),
                    // pg_stat_activity reads the backends' live status.
                    snapshot_delay: std::time::Duration::ZERO,
                    final_at_once: false,
                }
            }
            None => IdAllocation {
                step: 1,
                cached: false,
                origin: "no sequence on the key".into(),
                snapshot_delay: std::time::Duration::ZERO,
                final_at_once: false,
            },
        })
    }

    /// Transactions open in this database now, as `pid@xact_start` — every open transaction,
    /// with or without a transaction id yet (a session that called nextval() but has written
    /// nothing has none) and idle-in-transaction ones; `Unknown` when pg_stat_activity hides
    /// other roles' sessions from us.
    pub(crate) fn open_transactions(&mut self) -> Result<OpenTransactions, SourceError> {
        let what = "reading pg_stat_activity";
        let rows = self.with_client(what, |c| {
            c.query(
                "SELECT pid::text || '@' || coalesce(xact_start::text, ''), \
                        query = '<insufficient privilege>', current_user::text \
                 FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                   AND backend_type = 'client backend' \
                   AND (xact_start IS NOT NULL OR query = '<insufficient privilege>')",
                &[],
            )
        })?;
        let mut open = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.get::<_, Option<bool>>(1).unwrap_or(false) {
                let user: String = r.get(2);
                return Ok(OpenTransactions::Unknown {
                    reason: format!(
                        "pg_stat_activity hides other roles' sessions from {user}; grant it \
                         pg_read_all_stats (GRANT pg_read_all_stats TO {user})"
                    ),
                });
            }
            open.push(r.get(0));
        }
        Ok(OpenTransactions::Listed(open))
    }

    pub(crate) fn fetch_each<E: From<SourceError>>(
        &mut self,
        after: Id,
        limit: usize,
        mut row: impl FnMut(Id, &[Value]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let reading = format!("reading table {}", self.plan.table);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Out of `self` while rows stream in; put back only if the whole read worked.
        let (mut client, stmt) = self.take_connection()?;
        let after = clamp_i64(after);
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&after, &limit];
        let mut rows = client
            .query_raw(&stmt, params)
            .map_err(|e| map_err(&reading, e))?;
        // One set of values, refilled for every row: text is copied into the same buffers.
        let mut values = vec![Value::Null; self.kinds.len()];
        let mut count = 0;
        while let Some(r) = rows.next().map_err(|e| map_err(&reading, e))? {
            for (i, (kind, slot)) in self.kinds.iter().zip(&mut values).enumerate() {
                self.decode(&r, i, *kind, slot)
                    .map_err(|e| map_err(&reading, e))?;
            }
            row(row_id(&self.plan, &values)?, &values)?;
            count += 1;
        }
        drop(rows);
        self.conn = Some((client, stmt));
        Ok(count)
    }

    /// Decodes column `i` of `r` into `slot` (text reuses the slot's buffer).
    fn decode(
        &self,
        r: &postgres::Row,
        i: usize,
        kind: Kind,
        slot: &mut Value,
    ) -> Result<(), postgres::Error> {
        fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
            v.map_or(Value::Null, f)
        }
        *slot = match kind {
            Kind::Int2 => opt(r.try_get::<_, Option<i16>>(i)?, |v| Value::Int(v.into())),
            Kind::Int4 => opt(r.try_get::<_, Option<i32>>(i)?, |v| Value::Int(v.into())),
            Kind::Int8 => opt(r.try_get::<_, Option<i64>>(i)?, Value::Int),
            Kind::Oid => opt(r.try_get::<_, Option<u32>>(i)?, |v| Value::Int(v.into())),
            Kind::Float4 => opt(r.try_get::<_, Option<f32>>(i)?, |v| {
                Value::Float(convert::f32_as_python(v))
            }),
            Kind::Float8 => opt(r.try_get::<_, Option<f64>>(i)?, Value::Float),
            Kind::Bool => opt(r.try_get::<_, Option<bool>>(i)?, Value::Bool),
            Kind::Text | Kind::AsText | Kind::Money | Kind::Inet => {
                match r.try_get::<_, Option<&str>>(i)? {
                    Some(text) => super::set_str(slot, text),
                    None => *slot = Value::Null,
                }
                return Ok(());
            }
            Kind::Bytea => opt(r.try_get::<_, Option<&[u8]>>(i)?, |v| {
                Value::Str(convert::base64(v))
            }),
            Kind::Json => opt(r.try_get::<_, Option<&str>>(i)?, |text| {
                match serde_json::from_str(text) {
                    Ok(v) => Value::Json(Box::new(v)),
                    Err(e) => {
                        // serde_json refuses numbers beyond f64 range that PostgreSQL accepts;
                        // publishing the text beats stopping the replication.
                        log::warn!(
                            "reading table {}: column {} holds JSON we cannot parse ({e}); \
                             published as a string",
                            self.plan.table,
                            self.plan.names[i]
                        );
                        Value::Str(text.to_string())
                    }
                }
            }),
            Kind::Time => opt(r.try_get::<_, Option<&str>>(i)?, |t| {
                Value::Str(convert::pg_time_text(t))
            }),
            Kind::Timestamp => opt(r.try_get::<_, Option<&str>>(i)?, |t| {
                Value::Str(convert::pg_datetime_text(t, Zone::Naive))
            }),
            Kind::TimestampTz => opt(r.try_get::<_, Option<&str>>(i)?, |t| {
                Value::Str(convert::pg_datetime_text(t, Zone::Utc))
            }),
        };
        Ok(())
    }
}

/// A short key for the type: `enum`, `array:<name>`, or the base type's name.
fn kind_key(typname: &str, typtype: &str, category: &str) -> String {
    if category == "A" {
        format!("array:{typname}")
    } else if typtype == "e" {
        "enum".to_string()
    } else {
        typname.to_string()
    }
}

fn kind_of(key: &str) -> Option<Kind> {
    Some(match key {
        "int2" => Kind::Int2,
        "int4" => Kind::Int4,
        "int8" => Kind::Int8,
        "oid" => Kind::Oid,
        "float4" => Kind::Float4,
        "float8" => Kind::Float8,
        "bool" => Kind::Bool,
        "text" | "varchar" | "bpchar" | "name" => Kind::Text,
        "bytea" => Kind::Bytea,
        "json" | "jsonb" => Kind::Json,
        "money" => Kind::Money,
        "inet" => Kind::Inet,
        "time" | "timetz" => Kind::Time,
        "timestamp" => Kind::Timestamp,
        "timestamptz" => Kind::TimestampTz,
        "enum" => Kind::AsText,
        k if AS_TEXT.contains(&k) => Kind::AsText,
        _ => return None,
    })
}

/// Finds a table or view: by `schema` when given, else as `search_path` resolves it.
fn find_table(
    client: &mut Client,
    schema: Option<&str>,
    table: &str,
) -> Result<Option<(u32, Option<String>, String)>, postgres::Error> {
    let row = client.query_opt(
        "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname = $2 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') \
           AND CASE WHEN $1::text IS NULL THEN pg_table_is_visible(c.oid) ELSE n.nspname = $1 END",
        &[&schema, &table],
    )?;
    Ok(row.map(|r| {
        let oid: u32 = r.get(0);
        let nsp: String = r.get(1);
        let rel: String = r.get(2);
        (oid, schema.map(|_| nsp), rel)
    }))
}

/// Everything needed to open a session, again after a failure.
struct Connector {
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
    /// A new session, TLS as `sslmode` says, set up for reading.
    fn open(&self) -> Result<Client, SourceError> {
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
            config.connect(NoTls)
        } else {
            // Built from the files as they are now: a rotated CA or client certificate is
            // used from the next connection on.
            let tls = self.tls.settings.client_config().map_err(|e| {
                SourceError::Refused(format!("{connecting}: {e} ({})", self.tls.mode))
            })?;
            config.connect(MakeRustlsConnect::new(Arc::unwrap_or_clone(tls)))
        };
        result.map_err(|e| self.connect_error(connecting, e))
    }

    /// Why connecting failed: a credential, a TLS handshake, or the network.
    fn connect_error(&self, connecting: &str, e: postgres::Error) -> SourceError {
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

/// The driver's error kind (private to it; its Debug form names it).
fn driver_kind(e: &postgres::Error) -> String {
    let debug = format!("{e:?}");
    debug
        .strip_prefix("Error { kind: ")
        .and_then(|r| r.split([',', ' ', '(']).next())
        .unwrap_or("")
        .to_string()
}

/// The one place a postgres error becomes a `SourceError`, and the retry decision.
fn map_err(what: &str, e: postgres::Error) -> SourceError {
    if let Some(db) = e.as_db_error() {
        let msg = format!("{what}: {}", db.message());
        // SQLSTATE classes, PostgreSQL manual appendix A.
        let code = db.code().code();
        return match &code[..2] {
            // connection exception, insufficient resources, operator intervention (includes
            // query_canceled by statement_timeout and admin shutdown), transaction rollback
            // (serialization, deadlock), system error.
            "08" | "53" | "57" | "40" | "58" => SourceError::Unavailable(msg),
            "55" if code == "55P03" => SourceError::Unavailable(msg), // lock_not_available
            "28" | "3D" => SourceError::Refused(msg),
            "42" if code == "42501" => SourceError::Refused(msg), // insufficient_privilege
            _ => SourceError::Query(msg),
        };
    }
    // The driver's Display names only the kind ("error connecting to server"); the cause
    // (connection refused, timed out) is its source.
    let msg = match std::error::Error::source(&e) {
        Some(cause) => format!("{what}: {e}: {cause}"),
        None => format!("{what}: {e}"),
    };
    // Transport failures (refused, timed out, reset, closed; a TLS handshake cut short by the
    // network) are worth a retry; the rest is ours or the config's.
    match driver_kind(&e).as_str() {
        "Io" | "Closed" | "Connect" | "Timeout" | "UnexpectedMessage" | "Parse" | "Tls" => {
            SourceError::Unavailable(msg)
        }
        "Authentication" => SourceError::Refused(msg),
        _ => SourceError::Query(msg),
    }
}
