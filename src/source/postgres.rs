//! PostgreSQL source. Column types are read from the catalog at start-up and each column gets a
//! read plan (`Kind`): native binary decoding for integers, floats, booleans, text and bytea;
//! timestamps in the binary format, spelled as their text form (`convert::pg_timestamp`); a
//! `::text` cast in the query for types whose exact text form is what we publish (numeric,
//! dates, times, uuid, enums, json, and every type without a rule of its own: ranges,
//! composites, geometric types, tsvector…). The casts are what keep us exact without the
//! optional `postgres-types` features: `numeric::text` is every digit, and the session fixes
//! every setting a text form depends on (time zone UTC, ISO dates, `postgres` intervals,
//! exact floats, hex bytea), so the same value always reads as the same text.
//!
//! Arrays are read in the binary array format (`postgres_protocol`), which carries every
//! dimension and NULL element without the quoting of the text form; elements that follow a
//! text rule arrive as `text[]` (`col::text[]`, cast element by element by the server), so each
//! element is decoded exactly as a column of its type would be.
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
use tokio_postgres::fallible_iterator::FallibleIterator as _;
use tokio_postgres::{Config, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::convert::Zone;
use super::pg_client::{Client, ConnectError};
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
    /// `hstore` as `::json::text` (the extension's cast): an object of strings and nulls, as
    /// psycopg2's hstore support (which SQLAlchemy registers) handed it to the old tool.
    Hstore,
    /// Read as `::text`, published as that string (numeric, uuid, date, enums, ranges…).
    AsText,
    /// `money` as `::numeric::text`: exact digits without the locale's currency symbol.
    Money,
    /// `inet` through `abbrev()`: its output-function form (`::1`), where `::text` would
    /// always append the netmask (`::1/128`).
    Inet,
    /// `time`/`timetz` as text, fraction padded to six digits.
    Time,
    /// `timestamp` and `timestamptz` in the binary format (microseconds), spelled here as the
    /// text form would be (`convert::pg_timestamp`): no cast, and no date formatting for the
    /// server. In arrays, as text.
    Timestamp,
    TimestampTz,
}

/// How one column is read: a value of its kind, or an array (of any number of dimensions,
/// published as nested JSON arrays) whose elements each follow their kind's rule. In the
/// binary array format, elements of the kinds read natively arrive natively; the others arrive
/// as text, the query casting the array to `text[]` (see `Kind::array_cast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Value(Kind),
    Array(Kind),
}

impl Kind {
    /// How a column of this kind (an array of it when `array`) is read, and the select-list
    /// expression for `col` (quoted).
    fn plan(self, array: bool, col: String) -> (Read, String) {
        if array {
            return (Read::Array(self), format!("{col}{}", self.array_cast()));
        }
        let select = match self {
            Kind::Json | Kind::AsText | Kind::Time => format!("{col}::text"),
            Kind::Hstore => format!("{col}::json::text"),
            Kind::Money => format!("{col}::numeric::text"),
            Kind::Inet => format!("abbrev({col})"),
            _ => col,
        };
        (Read::Value(self), select)
    }

    /// The cast that brings an array of this kind to elements `element` decodes: none for
    /// the kinds read natively, else to `text[]` (through `json[]` for hstore, `numeric[]` for
    /// money, as the columns are read).
    fn array_cast(self) -> &'static str {
        match self {
            Kind::Int2
            | Kind::Int4
            | Kind::Int8
            | Kind::Oid
            | Kind::Float4
            | Kind::Float8
            | Kind::Bool
            | Kind::Text
            | Kind::Bytea => "",
            Kind::Hstore => "::json[]::text[]",
            Kind::Money => "::numeric[]::text[]",
            Kind::Json
            | Kind::AsText
            | Kind::Inet
            | Kind::Time
            | Kind::Timestamp
            | Kind::TimestampTz => "::text[]",
        }
    }
}

pub struct PostgresSource {
    pub(crate) plan: Plan,
    connector: Connector,
    sql: String,
    reads: Vec<Read>,
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
        if let Some(secret) = &spec.ssl_key_password {
            tls.set_key_password("sql_source.sslpassword_file", secret)
                .map_err(bad)?;
        }
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
                         application_name, connect_timeout, sslmode, sslrootcert, sslcert, \
                         sslkey, sslpassword",
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
            // Everything a text form depends on, fixed (PostgreSQL manual, "Client Connection
            // Defaults"): timestamps with time zone in UTC, ISO dates, `postgres` intervals,
            // floats (inside geometric types, composites) exact: extra_float_digits 3 is the
            // shortest exact spelling since PostgreSQL 12 (any value above 0 is), and 17
            // significant digits before it (where 1, the default, was not always exact);
            // bytea (inside composites) in hex. Nothing else in a text form follows a session
            // setting, except money's currency format (lc_monetary), which we read as numeric
            // where we can.
            session_setup: format!(
                "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
                 SET extra_float_digits = 3; SET bytea_output = 'hex'; \
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
        // (name, type, type as PostgreSQL spells it)
        let columns: Vec<(String, u32, String)> = client
            .query(
                "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod) \
                 FROM pg_attribute a \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&oid],
            )
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
        let plan = plan_columns(spec, &names, false)?;

        let pk = &columns[plan.table_index[plan.pk]];
        let pk_type = base_type(&mut client, pk.1).map_err(err)?;
        if !matches!(kind_of(&pk_type), Kind::Int2 | Kind::Int4 | Kind::Int8) {
            return Err(SourceError::Schema(format!(
                "{checking}: primary key {} has type {}; expected smallint, integer or bigint",
                spec.primary_key, pk.2
            )));
        }
        // Every type has a rule: its own, or its text form (its output function's, which
        // PostgreSQL guarantees its input function reads back), so no column is refused.
        let mut reads = Vec::with_capacity(plan.names.len());
        let mut select = Vec::with_capacity(plan.names.len());
        for &i in &plan.table_index {
            let (name, type_oid, _) = &columns[i];
            let ty = base_type(&mut client, *type_oid).map_err(err)?;
            let (read, expr) = if ty.elem != 0 {
                let elem = base_type(&mut client, ty.elem).map_err(err)?;
                kind_of(&elem).plan(true, quote_double(name))
            } else {
                kind_of(&ty).plan(false, quote_double(name))
            };
            reads.push(read);
            select.push(expr);
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
            reads,
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
        f: impl FnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
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
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&after, &limit];
        // One set of values, refilled for every row: text is copied into the same buffers.
        let mut values = vec![Value::Null; self.reads.len()];
        let count = client
            .for_each_row(&stmt, &params, |r| {
                for (i, (read, slot)) in self.reads.iter().zip(&mut values).enumerate() {
                    self.decode(r, i, *read, slot, &reading)?;
                }
                row(row_id(&self.plan, &values)?, &values)
            })
            .map_err(|e| map_err(&reading, e))??;
        self.conn = Some((client, stmt));
        Ok(count)
    }

    /// Decodes column `i` of `r` into `slot` (text reuses the slot's buffer).
    fn decode(
        &self,
        r: &tokio_postgres::Row,
        i: usize,
        read: Read,
        slot: &mut Value,
        reading: &str,
    ) -> Result<(), SourceError> {
        fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
            v.map_or(Value::Null, f)
        }
        /// Column `i` of `r`, or an error saying what we were reading.
        fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
            r: &'a tokio_postgres::Row,
            i: usize,
            reading: &str,
        ) -> Result<Option<T>, SourceError> {
            r.try_get(i).map_err(|e| map_err(reading, e))
        }
        let kind = match read {
            Read::Value(kind) => kind,
            Read::Array(kind) => {
                let mut unparsed = |e: &serde_json::Error| self.unparsed_json(i, e);
                *slot = match get::<BinaryArray>(r, i, reading)? {
                    Some(array) => Value::Json(Box::new(
                        array_json(kind, array.0, &mut unparsed).map_err(|e| {
                            SourceError::Query(format!(
                                "{reading}: column {}: the server sent an array we cannot \
                                 decode: {e}",
                                self.plan.names[i]
                            ))
                        })?,
                    )),
                    None => Value::Null,
                };
                return Ok(());
            }
        };
        *slot = match kind {
            Kind::Int2 => opt(get::<i16>(r, i, reading)?, |v| Value::Int(v.into())),
            Kind::Int4 => opt(get::<i32>(r, i, reading)?, |v| Value::Int(v.into())),
            Kind::Int8 => opt(get::<i64>(r, i, reading)?, Value::Int),
            Kind::Oid => opt(get::<u32>(r, i, reading)?, |v| Value::Int(v.into())),
            Kind::Float4 => opt(get::<f32>(r, i, reading)?, |v| {
                Value::Float(convert::f32_as_python(v))
            }),
            Kind::Float8 => opt(get::<f64>(r, i, reading)?, Value::Float),
            Kind::Bool => opt(get::<bool>(r, i, reading)?, Value::Bool),
            Kind::Text | Kind::AsText | Kind::Money | Kind::Inet => {
                match get::<&str>(r, i, reading)? {
                    Some(text) => super::set_str(slot, text),
                    None => *slot = Value::Null,
                }
                return Ok(());
            }
            Kind::Bytea => opt(get::<&[u8]>(r, i, reading)?, |v| {
                Value::Str(convert::base64(v))
            }),
            Kind::Json | Kind::Hstore => {
                opt(
                    get::<&str>(r, i, reading)?,
                    |text| match serde_json::from_str(text) {
                        Ok(json) => Value::Json(Box::new(json)),
                        Err(e) => {
                            self.unparsed_json(i, &e);
                            Value::Str(text.to_string())
                        }
                    },
                )
            }
            Kind::Time => opt(get::<&str>(r, i, reading)?, |t| {
                Value::Str(convert::pg_time_text(t))
            }),
            Kind::Timestamp | Kind::TimestampTz => {
                let zone = if kind == Kind::Timestamp {
                    Zone::Naive
                } else {
                    Zone::Utc
                };
                match get::<Micros>(r, i, reading)? {
                    Some(Micros(t)) => {
                        if !matches!(slot, Value::Str(_)) {
                            *slot = Value::Str(String::new());
                        }
                        if let Value::Str(text) = slot {
                            convert::pg_timestamp(text, t, zone);
                        }
                    }
                    None => *slot = Value::Null,
                }
                return Ok(());
            }
        };
        Ok(())
    }

    /// serde_json refuses numbers beyond f64 range, which PostgreSQL accepts: such a document
    /// (in column `i`) is published as its text, a string, which beats stopping the replication.
    fn unparsed_json(&self, i: usize, e: &serde_json::Error) {
        log::warn!(
            "reading table {}: column {} holds JSON we cannot parse ({e}); published as a string",
            self.plan.table,
            self.plan.names[i]
        );
    }
}

/// An array in the binary format (`array_send`: dimensions, then the elements in row-major
/// order) as nested JSON arrays, each element by the rule of its kind and NULL as null; JSON
/// elements serde_json refuses are strings, reported to `unparsed`. Lower bounds other than 1
/// (`'[0:1]={1,2}'`) are not published: the elements are, in order, as psycopg2 returned them.
fn array_json(
    elem: Kind,
    raw: &[u8],
    unparsed: &mut dyn FnMut(&serde_json::Error),
) -> Result<serde_json::Value, BoxError> {
    let array = postgres_protocol::types::array_from_sql(raw)?;
    let dims: Vec<usize> = array
        .dimensions()
        .map(|d| Ok(usize::try_from(d.len)?))
        .collect()?;
    let mut values = array.values();
    if dims.is_empty() {
        // An empty array has no dimensions at all.
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    // What PostgreSQL sends (MAXDIM is 6, and only an empty array has a zero length), so that
    // each level of `nest` takes at least one element from the wire: its depth and its loops
    // stay bounded by the message.
    if dims.len() > 6 || dims.contains(&0) {
        return Err(format!("dimensions {dims:?}").into());
    }
    let json = nest(elem, &dims, &mut values, unparsed)?;
    if values.next()?.is_some() {
        return Err("more elements than its dimensions hold".into());
    }
    Ok(json)
}

/// The next `dims[0]` elements (arrays of the next dimensions' when there are more). Vectors
/// grow as elements arrive: lengths from the wire never size an allocation.
fn nest(
    elem: Kind,
    dims: &[usize],
    values: &mut postgres_protocol::types::ArrayValues<'_>,
    unparsed: &mut dyn FnMut(&serde_json::Error),
) -> Result<serde_json::Value, BoxError> {
    let Some((&len, inner)) = dims.split_first() else {
        return Ok(serde_json::Value::Array(Vec::new()));
    };
    let mut items = Vec::new();
    for _ in 0..len {
        items.push(if inner.is_empty() {
            match values
                .next()?
                .ok_or("fewer elements than its dimensions hold")?
            {
                Some(raw) => element(elem, raw, unparsed)?,
                None => serde_json::Value::Null,
            }
        } else {
            nest(elem, inner, values, unparsed)?
        });
    }
    Ok(serde_json::Value::Array(items))
}

/// One non-NULL array element, by the rule a column of its kind follows.
fn element(
    elem: Kind,
    raw: &[u8],
    unparsed: &mut dyn FnMut(&serde_json::Error),
) -> Result<serde_json::Value, BoxError> {
    use postgres_protocol::types as wire;
    use serde_json::Value as J;
    let text = || wire::text_from_sql(raw);
    Ok(match elem {
        Kind::Int2 => wire::int2_from_sql(raw)?.into(),
        Kind::Int4 => wire::int4_from_sql(raw)?.into(),
        Kind::Int8 => wire::int8_from_sql(raw)?.into(),
        Kind::Oid => wire::oid_from_sql(raw)?.into(),
        // NaN and ±infinity have no JSON number: null, as for a float column.
        Kind::Float4 => float_json(convert::f32_as_python(wire::float4_from_sql(raw)?)),
        Kind::Float8 => float_json(wire::float8_from_sql(raw)?),
        Kind::Bool => J::Bool(wire::bool_from_sql(raw)?),
        Kind::Text | Kind::AsText | Kind::Money => J::String(text()?.to_owned()),
        Kind::Bytea => J::String(convert::base64(raw)),
        Kind::Json | Kind::Hstore => {
            let text = text()?;
            serde_json::from_str(text).unwrap_or_else(|e| {
                unparsed(&e);
                J::String(text.to_owned())
            })
        }
        Kind::Inet => J::String(convert::inet_abbrev(text()?).to_owned()),
        Kind::Time => J::String(convert::pg_time_text(text()?)),
        Kind::Timestamp => J::String(convert::pg_datetime_text(text()?, Zone::Naive)),
        Kind::TimestampTz => J::String(convert::pg_datetime_text(text()?, Zone::Utc)),
    })
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// A float as JSON: a number, or null for NaN and ±infinity (which JSON has no number for),
/// as a float column is published (src/message.rs).
fn float_json(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// A `timestamp` or `timestamptz` in the binary format: microseconds since 2000-01-01. (A
/// domain's column is described with its base type, so domains over them read the same.)
struct Micros(i64);

impl<'a> tokio_postgres::types::FromSql<'a> for Micros {
    fn from_sql(_: &tokio_postgres::types::Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        postgres_protocol::types::timestamp_from_sql(raw).map(Micros)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        // Only these: a column whose type changed under a running daemon is then an error that
        // names it, never another 8-byte value read as a date.
        matches!(
            *ty,
            tokio_postgres::types::Type::TIMESTAMP | tokio_postgres::types::Type::TIMESTAMPTZ
        )
    }
}

/// An array column's value as the wire carries it, for `array_from_sql`.
struct BinaryArray<'a>(&'a [u8]);

impl<'a> tokio_postgres::types::FromSql<'a> for BinaryArray<'a> {
    fn from_sql(_: &tokio_postgres::types::Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(BinaryArray(raw))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        matches!(ty.kind(), tokio_postgres::types::Kind::Array(_))
    }
}

/// A type as the catalog describes it, domains followed to their base type.
struct PgType {
    name: String,
    /// In `pg_catalog`: a built-in type, whose name means what we think it means.
    builtin: bool,
    /// `typtype`: `b` base, `c` composite, `e` enum, `r` range, `m` multirange, `d` domain…
    typtype: String,
    /// For an array type (`typcategory` `A`), its element type; else 0.
    elem: u32,
}

/// The type `oid`, or the base type when it is a domain (over a domain, and so on).
fn base_type(client: &mut Client, mut oid: u32) -> Result<PgType, tokio_postgres::Error> {
    // A domain is created over an existing type, so the chain ends; the bound only keeps a
    // corrupt catalog from looping (what is left is published as its text form).
    for _ in 0..32 {
        let r = client.query_one(
            "SELECT t.typname::text, t.typnamespace = 'pg_catalog'::regnamespace, \
                    t.typtype::text, t.typbasetype, \
                    CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0::oid END \
             FROM pg_type t WHERE t.oid = $1",
            &[&oid],
        )?;
        let ty = PgType {
            name: r.get(0),
            builtin: r.get(1),
            typtype: r.get(2),
            elem: r.get(4),
        };
        if ty.typtype != "d" {
            return Ok(ty);
        }
        oid = r.get(3);
    }
    Ok(PgType {
        name: String::new(),
        builtin: false,
        typtype: "d".into(),
        elem: 0,
    })
}

/// The rule for a (non-array) column of type `ty`: a built-in type we read natively or
/// re-spell, hstore, or else the type's text form.
fn kind_of(ty: &PgType) -> Kind {
    if ty.elem != 0 {
        // An array as an array's element (an array of a domain over an array).
        return Kind::AsText;
    }
    if !ty.builtin {
        return if ty.name == "hstore" && ty.typtype == "b" {
            Kind::Hstore
        } else {
            // Enums, composites, ranges and multiranges of user types, citext, other
            // extensions' types.
            Kind::AsText
        };
    }
    match ty.name.as_str() {
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
        // numeric, uuid, date, interval, ranges, multiranges, geometric types, tsvector,
        // tsquery, cidr, macaddr, bit, xml, pg_lsn…
        _ => Kind::AsText,
    }
}

/// Finds a table or view: by `schema` when given, else as `search_path` resolves it.
fn find_table(
    client: &mut Client,
    schema: Option<&str>,
    table: &str,
) -> Result<Option<(u32, Option<String>, String)>, tokio_postgres::Error> {
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

/// The driver's error kind (private to it; its Debug form names it).
fn driver_kind(e: &tokio_postgres::Error) -> String {
    let debug = format!("{e:?}");
    debug
        .strip_prefix("Error { kind: ")
        .and_then(|r| r.split([',', ' ', '(']).next())
        .unwrap_or("")
        .to_string()
}

/// The one place a postgres error becomes a `SourceError`, and the retry decision.
fn map_err(what: &str, e: tokio_postgres::Error) -> SourceError {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An array in `array_send`'s format, written by hand (PostgreSQL's `arrayfuncs.c`): the
    /// number of dimensions, a has-NULLs flag, the element type, a (length, lower bound) per
    /// dimension, then each element as its length (-1 for NULL) and bytes.
    fn wire(dims: &[(i32, i32)], elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((dims.len() as i32).to_be_bytes());
        b.extend(i32::from(elements.contains(&None)).to_be_bytes());
        b.extend(23u32.to_be_bytes());
        for (len, lower) in dims {
            b.extend(len.to_be_bytes());
            b.extend(lower.to_be_bytes());
        }
        for e in elements {
            match e {
                Some(bytes) => {
                    b.extend((bytes.len() as i32).to_be_bytes());
                    b.extend(*bytes);
                }
                None => b.extend((-1i32).to_be_bytes()),
            }
        }
        b
    }

    /// The array as JSON, and how many JSON elements could not be parsed.
    fn decode(kind: Kind, raw: &[u8]) -> (Result<serde_json::Value, String>, usize) {
        let mut unparsed = 0;
        let json = array_json(kind, raw, &mut |_| unparsed += 1).map_err(|e| e.to_string());
        (json, unparsed)
    }

    #[test]
    fn dimensions_nest_in_row_major_order_and_lower_bounds_are_dropped() {
        let (one, two, three) = (1i32.to_be_bytes(), 2i32.to_be_bytes(), 3i32.to_be_bytes());
        let raw = wire(
            &[(2, 0), (2, -3)],
            &[Some(&one), Some(&two), Some(&three), None],
        );
        assert_eq!(decode(Kind::Int4, &raw).0, Ok(json!([[1, 2], [3, null]])));
        assert_eq!(decode(Kind::Int4, &wire(&[], &[])).0, Ok(json!([])));
    }

    #[test]
    fn elements_follow_their_kinds_rule() {
        let f4 = [1.1f32.to_be_bytes(), f32::NAN.to_be_bytes()];
        let raw = wire(&[(2, 1)], &[Some(&f4[0]), Some(&f4[1])]);
        assert_eq!(decode(Kind::Float4, &raw).0, Ok(json!([1.1, null])));
        let raw = wire(&[(2, 1)], &[Some(b"\x00\xff"), Some(b"")]);
        assert_eq!(decode(Kind::Bytea, &raw).0, Ok(json!(["AP8=", ""])));
        let raw = wire(&[(1, 1)], &[Some(b"2024-01-02 03:04:05.5+00")]);
        assert_eq!(
            decode(Kind::TimestampTz, &raw).0,
            Ok(json!(["2024-01-02T03:04:05.500000Z"]))
        );
        // serde_json refuses numbers beyond f64; that element is published as its text.
        let raw = wire(&[(2, 1)], &[Some(br#"{"b": [1]}"#), Some(b"1e400")]);
        assert_eq!(
            decode(Kind::Json, &raw),
            (Ok(json!([{"b": [1]}, "1e400"])), 1)
        );
    }

    #[test]
    fn malformed_arrays_are_errors_not_panics() {
        let one = 1i32.to_be_bytes();
        let good = wire(&[(2, 1), (1, 1)], &[Some(&one), None]);
        assert!(decode(Kind::Int4, &good).0.is_ok());
        for cut in 0..good.len() {
            assert!(decode(Kind::Int4, &good[..cut]).0.is_err(), "cut at {cut}");
        }
        let bad = [
            // one element more than the dimensions hold
            wire(&[(1, 1)], &[Some(&one), Some(&one)]),
            // seven dimensions (PostgreSQL allows six)
            wire(&[(1, 1); 7], &[Some(&one)]),
            // a zero-length dimension in a non-empty array
            wire(&[(2, 1), (0, 1)], &[]),
            // a negative length
            wire(&[(-1, 1)], &[]),
            // an int4 of two bytes
            wire(&[(1, 1)], &[Some(&[0, 1])]),
        ];
        for raw in &bad {
            assert!(decode(Kind::Int4, raw).0.is_err(), "{raw:?}");
        }
        let raw = wire(&[(1, 1)], &[Some(b"\xff")]);
        assert!(decode(Kind::Text, &raw).0.is_err());
    }
}
