//! The database side of replication: reads the rows of one table whose integer primary key is
//! above a position, in key order, as `Value`s.
//!
//! One enum variant per database, each behind its cargo feature, chosen in exactly one place
//! (`Source::connect`) from the URI scheme. Everything a backend needs to know about its
//! driver stays in its file; what leaves this module is `Row`/`Value` and `SourceError`, never a
//! driver type. The checks that can fail because of the configuration or the schema (table,
//! primary key, fields, column types) all run in `connect`, so a replication that started never
//! stops mid-stream for a reason that was knowable at start-up.

mod convert;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod tls_params;
mod uri;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
mod pg_client;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod session;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::fmt;
use std::time::Duration;

use crate::secret::Secret;
use crate::value::{Id, OpenTransactions, Row, Value};
pub use uri::redact_uri;
use uri::{Backend, ParsedUri};

/// What to read and how long to wait for it; built from the `sql_source` config section.
#[derive(Clone, PartialEq)]
pub struct SourceSpec {
    /// SQLAlchemy-style URI (`sqlite:////abs.db`, `postgresql://…`, `mysql://…`).
    pub uri: String,
    /// The database password when the URI has none (`sql_source.password_file`), read at
    /// each connection so that a rotated file is used from the next one on.
    pub password: Option<Secret>,
    /// The password of an encrypted PostgreSQL client key when the URI has no `sslpassword`
    /// (`sql_source.sslpassword_file`), read at each connection.
    pub ssl_key_password: Option<Secret>,
    /// Table name; `schema.table` for PostgreSQL/MySQL (split at the first dot).
    pub table: String,
    /// Integer column whose values only grow.
    pub primary_key: String,
    /// Columns to publish, in this order; `None` = every column in table order.
    pub fields: Option<Vec<String>>,
    /// Longest a batch query may run (server-side statement timeout where the database has
    /// one, socket read timeout for MySQL, busy timeout for SQLite). Zero = no limit.
    pub query_timeout: Duration,
    /// Longest to wait for a TCP connection and the login handshake. Zero = no limit.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec")
            .field("uri", &redact_uri(&self.uri))
            .field("password", &self.password)
            .field("ssl_key_password", &self.ssl_key_password)
            .field("table", &self.table)
            .field("primary_key", &self.primary_key)
            .field("fields", &self.fields)
            .field("query_timeout", &self.query_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Why reading the source failed. The message of each variant is complete (`what we were doing:
/// cause`, naming the table/column/type at fault) and never contains a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The URI cannot be used: syntax, unknown scheme, backend not compiled in, bad parameter.
    BadUri(String),
    /// The table, primary key, a field or a column type does not allow replication.
    Schema(String),
    /// The server refused us, or we refused the server, for a reason retrying will not fix:
    /// wrong password, unknown database, missing privilege, a database file that does not
    /// exist; a TLS handshake that failed (a certificate not trusted, a name that does not fit,
    /// a client certificate refused), a server without TLS when TLS is required, a TLS file or
    /// password file we cannot use.
    Refused(String),
    /// The server could not be reached or the connection broke (refused, timed out, lost,
    /// server shutting down, lock timeout): the next `fetch` reconnects.
    Unavailable(String),
    /// A query failed for a reason retrying will not fix, or a fetched row cannot be published
    /// (a SQLite primary key holding text).
    Query(String),
}

impl SourceError {
    /// True when trying again later may succeed; the replication loop backs off and retries.
    pub fn is_retriable(&self) -> bool {
        matches!(self, SourceError::Unavailable(_))
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::BadUri(m)
            | SourceError::Schema(m)
            | SourceError::Refused(m)
            | SourceError::Unavailable(m)
            | SourceError::Query(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SourceError {}

/// A connected, validated source table. See the module documentation.
// One `Source` lives for the whole process and is never moved in a loop, so variant sizes do
// not matter; boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteSource),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PostgresSource),
    #[cfg(feature = "mysql")]
    Mysql(mysql::MysqlSource),
}

/// The tables (and views) of the database `spec` connects to whose names match the SQL `LIKE`
/// pattern `like` and none of `exclude`, in name order. The database's own `LIKE` decides,
/// with its rules for case. `spec.table` is not used.
pub fn list_tables(
    spec: &SourceSpec,
    like: &str,
    exclude: &[String],
) -> Result<Vec<String>, SourceError> {
    let parsed = parse_uri(spec)?;
    match parsed.backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => sqlite::list_tables(spec, &parsed, like, exclude),
        #[cfg(feature = "postgres")]
        Backend::Postgres => postgres::list_tables(spec, parsed, like, exclude),
        #[cfg(feature = "mysql")]
        Backend::Mysql => mysql::list_tables(spec, parsed, like, exclude),
        #[allow(unreachable_patterns)]
        missing => Err(not_built(spec, missing)),
    }
}

/// The spec's URI parsed, and the password files checked against it: what both entry points
/// (`Source::connect`, `list_tables`) start from, the one place a backend is chosen.
fn parse_uri(spec: &SourceSpec) -> Result<ParsedUri, SourceError> {
    let parsed = uri::parse(&spec.uri)?;
    if spec.password.is_some() {
        let why = if parsed.backend == Backend::Sqlite {
            Some("SQLite has no password")
        } else if parsed.password.as_deref().is_some_and(|p| !p.is_empty())
            || parsed.query.iter().any(|(k, _)| k == "password")
        {
            Some("the uri has a password too; give it in one place")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(SourceError::BadUri(format!(
                "sql_source.password_file is set for {}: {why}",
                redact_uri(&spec.uri)
            )));
        }
    }
    if spec.ssl_key_password.is_some() && parsed.backend != Backend::Postgres {
        return Err(SourceError::BadUri(format!(
            "sql_source.sslpassword_file is set for {}: it is the password of a PostgreSQL \
             client key (the MySQL driver reads unencrypted keys only)",
            redact_uri(&spec.uri)
        )));
    }
    Ok(parsed)
}

/// A backend this build was compiled without.
fn not_built(spec: &SourceSpec, missing: Backend) -> SourceError {
    SourceError::BadUri(format!(
        "opening {}: this build has no `{}` support; rebuild with --features {}",
        redact_uri(&spec.uri),
        missing.feature(),
        missing.feature()
    ))
}

impl Source {
    /// Parses the URI scheme (the one place a backend is chosen), connects, checks the table,
    /// primary key, fields and column types, and prepares the batch query.
    pub fn connect(spec: &SourceSpec) -> Result<Source, SourceError> {
        let parsed = parse_uri(spec)?;
        match parsed.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => Ok(Source::Sqlite(sqlite::SqliteSource::connect(
                spec, &parsed,
            )?)),
            #[cfg(feature = "postgres")]
            Backend::Postgres => Ok(Source::Postgres(postgres::PostgresSource::connect(
                spec, parsed,
            )?)),
            #[cfg(feature = "mysql")]
            Backend::Mysql => Ok(Source::Mysql(mysql::MysqlSource::connect(spec, parsed)?)),
            #[allow(unreachable_patterns)]
            missing => Err(not_built(spec, missing)),
        }
    }

    /// The published column names, in order: `fields` (or every column in table order), with
    /// the primary key put first when `fields` leaves it out. `Row::values` follow this order.
    pub fn columns(&self) -> &[String] {
        match self {
            #[cfg(feature = "sqlite")]
            Source::Sqlite(s) => &s.plan.names,
            #[cfg(feature = "postgres")]
            Source::Postgres(s) => &s.plan.names,
            #[cfg(feature = "mysql")]
            Source::Mysql(s) => &s.plan.names,
        }
    }

    /// Rows with primary key > `after`, in key order, at most `limit` of them. After a failed
    /// call the connection is dropped and the next call opens a new one.
    ///
    /// Collects what [`Source::fetch_each`] streams; the replicator encodes rows as they come
    /// instead of holding a batch of them.
    pub fn fetch(&mut self, after: Id, limit: usize) -> Result<Vec<Row>, SourceError> {
        let mut rows = Vec::new();
        self.fetch_each(after, limit, |id, values| {
            rows.push(Row {
                id,
                values: values.to_vec(),
            });
            Ok::<(), SourceError>(())
        })?;
        Ok(rows)
    }

    /// Like [`Source::fetch`], but hands each row to `row` as it is read, and returns how many
    /// there were. The values are only valid during the call: the backends reuse their buffers
    /// from row to row. An error from `row` stops the read and is returned as is.
    pub fn fetch_each<E: From<SourceError>>(
        &mut self,
        after: Id,
        limit: usize,
        row: impl FnMut(Id, &[Value]) -> Result<(), E>,
    ) -> Result<usize, E> {
        match self {
            #[cfg(feature = "sqlite")]
            Source::Sqlite(s) => s.fetch_each(after, limit, row),
            #[cfg(feature = "postgres")]
            Source::Postgres(s) => s.fetch_each(after, limit, row),
            #[cfg(feature = "mysql")]
            Source::Mysql(s) => s.fetch_each(after, limit, row),
        }
    }

    /// The highest primary key in the table now (`None` when it is empty), for how far behind
    /// the position is. A look at the end of the key's index, not a scan.
    pub fn max_id(&mut self) -> Result<Option<Id>, SourceError> {
        match self {
            #[cfg(feature = "sqlite")]
            Source::Sqlite(s) => s.max_id(),
            #[cfg(feature = "postgres")]
            Source::Postgres(s) => s.max_id(),
            #[cfg(feature = "mysql")]
            Source::Mysql(s) => s.max_id(),
        }
    }

    /// About how many rows the table holds, for `repliqate check`: the database's own estimate
    /// where it keeps one (no scan), an exact count for SQLite.
    pub fn estimated_rows(&mut self) -> Result<RowCount, SourceError> {
        match self {
            #[cfg(feature = "sqlite")]
            Source::Sqlite(s) => s.count_rows(),
            #[cfg(feature = "postgres")]
            Source::Postgres(s) => s.estimated_rows(),
            #[cfg(feature = "mysql")]
            Source::Mysql(s) => s.estimated_rows(),
        }
    }

    /// How the database hands out primary-key values: the step between consecutive ids and
    /// whether sessions cache ranges of them. Used to tell a hole from the normal spacing.
    pub fn id_allocation(&mut self) -> Result<IdAllocation, SourceError> {
        match self {
            // One writer at a time, rowids step by one.
            #[cfg(feature = "sqlite")]
            Source::Sqlite(_) => Ok(IdAllocation {
                step: 1,
                cached: false,
                origin: "SQLite rowid".into(),
                snapshot_delay: Duration::ZERO,
                final_at_once: true,
            }),
            #[cfg(feature = "postgres")]
            Source::Postgres(s) => s.id_allocation(),
            #[cfg(feature = "mysql")]
            Source::Mysql(s) => s.id_allocation(),
        }
    }

    /// Identities of the write transactions open right now (each stable for the transaction's
    /// life), so that a hole first seen now can be proven final once none of them is open any
    /// more, or why the database will not tell us (a missing privilege).
    pub fn open_transactions(&mut self) -> Result<OpenTransactions, SourceError> {
        match self {
            // SQLite has one writer, which commits ids in order: a hole a reader sees is final
            // at once, as if no transaction were open.
            #[cfg(feature = "sqlite")]
            Source::Sqlite(_) => Ok(OpenTransactions::Listed(Vec::new())),
            #[cfg(feature = "postgres")]
            Source::Postgres(s) => s.open_transactions(),
            #[cfg(feature = "mysql")]
            Source::Mysql(s) => s.open_transactions(),
        }
    }

    /// The redacted URI and the table, for log lines.
    pub fn describe(&self) -> String {
        let plan = match self {
            #[cfg(feature = "sqlite")]
            Source::Sqlite(s) => &s.plan,
            #[cfg(feature = "postgres")]
            Source::Postgres(s) => &s.plan,
            #[cfg(feature = "mysql")]
            Source::Mysql(s) => &s.plan,
        };
        format!("table {} at {}", plan.table, plan.uri)
    }
}

/// How many rows a table holds, as far as the database tells without a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCount {
    /// `None`: the database does not know (a PostgreSQL table never analyzed).
    pub rows: Option<u64>,
    /// An exact count rather than the database's estimate.
    pub exact: bool,
    /// Where the number comes from, for messages.
    pub source: &'static str,
}

/// How primary-key values are allocated, as far as holes in the sequence are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdAllocation {
    /// Difference between consecutive ids (sequence INCREMENT BY, auto_increment_increment).
    pub step: u64,
    /// Sessions cache ranges of ids (PostgreSQL sequence CACHE > 1): a hole may then be filled
    /// by any later transaction of the session holding the range, so ending transactions prove
    /// nothing and only the timeout releases holes.
    pub cached: bool,
    /// Where `step` came from, for the log.
    pub origin: String,
    /// How stale `open_transactions` may be (see `replicator::gaps::GapPolicy::snapshot_delay`).
    pub snapshot_delay: Duration,
    /// Every hole a reader sees is final (see `replicator::gaps::GapPolicy::final_at_once`).
    pub final_at_once: bool,
}

/// What every backend decided at start-up: which columns to read, in which order, under which
/// names, and where the primary key is among them.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The table as configured, for messages.
    pub table: String,
    /// The redacted URI, for messages.
    pub uri: String,
    /// Published names (as configured in `fields`, or as the table spells them).
    pub names: Vec<String>,
    /// For each published column, its index in the table's column list.
    pub table_index: Vec<usize>,
    /// Index of the primary key in `names`.
    pub pk: usize,
}

/// Chooses the columns to read. `table_columns` is the table's column names in table order.
/// With `case_insensitive` (MySQL, SQLite, where the database itself ignores case in column
/// names) a field that only differs in case is accepted; PostgreSQL folds nothing once a name
/// is quoted, so there it gets a "did you mean" hint instead.
pub(crate) fn plan_columns(
    spec: &SourceSpec,
    table_columns: &[String],
    case_insensitive: bool,
) -> Result<Plan, SourceError> {
    let uri = redact_uri(&spec.uri);
    let checking = format!("checking source table {}", spec.table);
    let find = |name: &str| -> Result<usize, String> {
        if let Some(i) = table_columns.iter().position(|c| c == name) {
            return Ok(i);
        }
        let folded: Vec<usize> = (0..table_columns.len())
            .filter(|&i| table_columns[i].to_lowercase() == name.to_lowercase())
            .collect();
        match folded.as_slice() {
            [i] if case_insensitive => Ok(*i),
            [i] => Err(format!(
                "no column named {name} (did you mean {}?)",
                table_columns[*i]
            )),
            _ => Err(format!(
                "no column named {name} (columns: {})",
                table_columns.join(", ")
            )),
        }
    };
    let pk_index = find(&spec.primary_key)
        .map_err(|e| SourceError::Schema(format!("{checking}: primary key: {e}")))?;
    let mut names = Vec::new();
    let mut table_index = Vec::new();
    match &spec.fields {
        None => {
            names.extend(table_columns.iter().cloned());
            table_index.extend(0..table_columns.len());
        }
        Some(fields) => {
            for field in fields {
                let i = find(field)
                    .map_err(|e| SourceError::Schema(format!("{checking}: field {field}: {e}")))?;
                if table_index.contains(&i) {
                    return Err(SourceError::Schema(format!(
                        "{checking}: field {field} is listed twice"
                    )));
                }
                names.push(field.clone());
                table_index.push(i);
            }
            if !table_index.contains(&pk_index) {
                names.insert(0, spec.primary_key.clone());
                table_index.insert(0, pk_index);
            }
        }
    }
    let pk = table_index
        .iter()
        .position(|&i| i == pk_index)
        .unwrap_or_default();
    Ok(Plan {
        table: spec.table.clone(),
        uri,
        names,
        table_index,
        pk,
    })
}

/// Quotes an identifier the SQL-standard way (PostgreSQL, SQLite): `"` around it, inner `"`
/// doubled. Any character is then part of the name, so a name from the config cannot end the
/// identifier early.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn quote_double(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an identifier for MySQL/MariaDB: backticks, inner backticks doubled (works whatever
/// the session's `sql_mode`, unlike double quotes which need ANSI_QUOTES).
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) fn quote_backtick(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The password of `sql_source.password_file`, read now (at each connection); an unusable file
/// names the setting and the file, never the contents.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn read_password(secret: &Secret, connecting: &str) -> Result<String, SourceError> {
    secret
        .read("sql_source.password_file")
        .map_err(|e| SourceError::Refused(format!("{connecting}: {e}")))
}

/// The primary key of a fetched row as an `Id`; `Value`s other than integers cannot be
/// positions.
pub(crate) fn row_id(plan: &Plan, values: &[Value]) -> Result<Id, SourceError> {
    match values.get(plan.pk) {
        Some(Value::Int(i)) => Ok(Id::from(*i)),
        Some(Value::UInt(u)) => Ok(Id::from(*u)),
        other => Err(SourceError::Query(format!(
            "reading table {}: primary key {} holds {}, not an integer",
            plan.table,
            plan.names.get(plan.pk).map_or("?", String::as_str),
            match other {
                Some(Value::Null) | None => "NULL".to_string(),
                Some(Value::Str(s)) => format!("text {s:?}"),
                Some(Value::Float(f)) => format!("float {f}"),
                Some(v) => format!("{v:?}"),
            }
        ))),
    }
}

/// Warns about text that is not valid UTF-8 (published with U+FFFD in its place), once per
/// row: rows held at a gap are read again, and one warning per row is enough.
#[derive(Debug, Default)]
#[allow(dead_code)] // not used by every backend combination
pub(crate) struct Utf8Warnings {
    /// Highest row id already warned about.
    warned_up_to: Option<Id>,
}

#[allow(dead_code)] // not used by every backend combination
impl Utf8Warnings {
    /// `columns`: indexes into `names` of the row's columns that held invalid UTF-8.
    pub(crate) fn report(&mut self, reading: &str, names: &[String], id: Id, columns: &[usize]) {
        if columns.is_empty() || self.warned_up_to.is_some_and(|w| id <= w) {
            return;
        }
        self.warned_up_to = Some(id);
        for &i in columns {
            log::warn!(
                "{reading}: column {} of row {id} is not valid UTF-8; published with U+FFFD in \
                 place of the invalid bytes",
                names.get(i).map_or("?", String::as_str)
            );
        }
    }
}

/// Puts `text` into `slot`, reusing the string buffer the slot already holds: rows are read
/// into the same values one after the other, so most text costs a copy and no allocation.
#[allow(dead_code)] // not used by every backend combination
pub(crate) fn set_str(slot: &mut Value, text: &str) {
    match slot {
        Value::Str(s) => {
            s.clear();
            s.push_str(text);
        }
        other => *other = Value::Str(text.to_owned()),
    }
}

/// Clamps a position to the `i64` range the batch query binds. Below `i64::MIN` nothing can be
/// lower, so `i64::MIN` reads everything but a row keyed exactly `i64::MIN`.
#[allow(dead_code)] // not used by every backend combination
pub(crate) fn clamp_i64(after: Id) -> i64 {
    i64::try_from(after).unwrap_or(if after < 0 { i64::MIN } else { i64::MAX })
}

/// Similar table names for a "no such table" message: same name ignoring case, or containing
/// it. `None` when nothing is close.
pub(crate) fn similar_names(wanted: &str, existing: &[String]) -> Option<String> {
    let w = wanted.to_lowercase();
    let mut close: Vec<&str> = existing
        .iter()
        .filter(|n| {
            let n = n.to_lowercase();
            n == w || (w.len() >= 3 && (n.contains(&w) || w.contains(&n)))
        })
        .map(String::as_str)
        .collect();
    close.truncate(5);
    (!close.is_empty()).then(|| format!(" (similar: {})", close.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pk: &str, fields: Option<&[&str]>) -> SourceSpec {
        SourceSpec {
            uri: "postgresql://u:secret@h/d".into(),
            password: None,
            ssl_key_password: None,
            table: "t".into(),
            primary_key: pk.into(),
            fields: fields.map(|f| f.iter().map(|s| s.to_string()).collect()),
            query_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        }
    }

    fn cols() -> Vec<String> {
        ["a", "id", "Name"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pk_is_prepended_when_fields_omit_it() {
        let p = plan_columns(&spec("id", Some(&["Name", "a"])), &cols(), false).unwrap();
        assert_eq!(p.names, ["id", "Name", "a"]);
        assert_eq!(p.table_index, [1, 2, 0]);
        assert_eq!(p.pk, 0);
        assert_eq!(p.uri, "postgresql://u:***@h/d");
    }

    #[test]
    fn all_columns_in_table_order_without_fields() {
        let p = plan_columns(&spec("id", None), &cols(), false).unwrap();
        assert_eq!(p.names, ["a", "id", "Name"]);
        assert_eq!(p.pk, 1);
        let p = plan_columns(&spec("id", Some(&["a", "id"])), &cols(), false).unwrap();
        assert_eq!(
            (p.names.as_slice(), p.pk),
            (&["a".to_string(), "id".into()][..], 1)
        );
    }

    #[test]
    fn missing_and_duplicate_fields_are_named() {
        let e = plan_columns(&spec("id", Some(&["nope"])), &cols(), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "checking source table t: field nope: no column named nope (columns: a, id, Name)"
        );
        let e = plan_columns(&spec("id", Some(&["name"])), &cols(), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "checking source table t: field name: no column named name (did you mean Name?)"
        );
        let p = plan_columns(&spec("id", Some(&["name"])), &cols(), true).unwrap();
        assert_eq!(p.names, ["id", "name"]);
        let e = plan_columns(&spec("id", Some(&["a", "a"])), &cols(), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "checking source table t: field a is listed twice"
        );
        let e = plan_columns(&spec("key", None), &cols(), false).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("checking source table t: primary key: no column"));
        assert!(!e.is_retriable());
    }

    #[test]
    fn hostile_identifiers_are_quoted() {
        assert_eq!(quote_double("plain"), "\"plain\"");
        assert_eq!(
            quote_double("we\"ird; DROP TABLE x;--"),
            "\"we\"\"ird; DROP TABLE x;--\""
        );
        assert_eq!(quote_double("select"), "\"select\"");
        assert_eq!(quote_double("ünï cödé 表"), "\"ünï cödé 表\"");
        assert_eq!(quote_backtick("a`b; DROP TABLE x"), "`a``b; DROP TABLE x`");
        assert_eq!(quote_backtick("order"), "`order`");
        assert_eq!(quote_backtick("sp ace\"q"), "`sp ace\"q`");
    }

    #[test]
    fn positions_clamp_to_i64() {
        assert_eq!(clamp_i64(5), 5);
        assert_eq!(clamp_i64(Id::from(u64::MAX)), i64::MAX);
        assert_eq!(clamp_i64(Id::from(i64::MIN) - 1), i64::MIN);
    }

    #[test]
    fn similar_names_hint() {
        let names: Vec<String> = ["Events", "events_old", "users"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            similar_names("events", &names).as_deref(),
            Some(" (similar: Events, events_old)")
        );
        assert_eq!(similar_names("zzz", &names), None);
    }

    #[test]
    fn missing_backend_feature_or_bad_scheme_is_not_retriable() {
        let mut s = spec("id", None);
        s.uri = "oracle://u:pw@h/d".into();
        let e = Source::connect(&s).err().expect("oracle is no backend");
        assert!(!e.is_retriable());
        assert!(!e.to_string().contains("pw@"));
    }

    #[test]
    fn a_password_file_and_a_password_in_the_uri_conflict() {
        let mut s = spec("id", None);
        s.password = Some(Secret::File("/run/secrets/db".into()));
        let e = Source::connect(&s).err().expect("two passwords");
        assert_eq!(
            e.to_string(),
            "sql_source.password_file is set for postgresql://u:***@h/d: the uri has a password \
             too; give it in one place"
        );
        assert!(!e.is_retriable());
        s.uri = "sqlite:////tmp/x.db".into();
        let e = Source::connect(&s).err().expect("sqlite has no password");
        assert!(e.to_string().contains("SQLite has no password"), "{e}");
        assert!(format!("{s:?}").contains("password: Some(Secret(file /run/secrets/db))"));
    }
}
