//! SQLite source: reads a database file that another program writes, so it opens the file
//! read-only (WAL readers allowed) and never holds a write lock.
//!
//! SQLite types values per row, not per column (<https://sqlite.org/datatype3.html>), so values
//! are mapped by their storage class: INTEGER → Int, REAL → Float, TEXT → Str, BLOB → base64
//! Str, NULL → Null. There is no column type to refuse. Text that is not valid UTF-8 (SQLite
//! stores whatever bytes it is given) is published with U+FFFD in place of the bad bytes, and a
//! warning names table, column and row.

use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::uri::ParsedUri;
use super::{
    convert, plan_columns, quote_double, row_id, similar_names, Plan, RowCount, SourceError,
    SourceSpec, Utf8Warnings,
};
use crate::value::{Id, Value};

/// Names SQLite accepts for the implicit rowid of an ordinary table.
const ROWID_NAMES: [&str; 3] = ["rowid", "_rowid_", "oid"];

pub struct SqliteSource {
    pub(crate) plan: Plan,
    path: String,
    busy_timeout: Duration,
    /// The batch query; `prepare_cached` keeps it compiled inside the connection.
    sql: String,
    /// `SELECT MAX(key)`, for the highest id.
    max_sql: String,
    /// `SELECT count(*)`, for the row count.
    count_sql: String,
    /// `None` after an error: the next fetch opens the file again.
    conn: Option<Connection>,
    utf8_warnings: Utf8Warnings,
}

/// The tables and views of the file whose names match `like` and none of `exclude`, by
/// SQLite's `LIKE` (case-insensitive for ASCII), with `\` escaping `_` and `%` as in PostgreSQL
/// and MySQL, in name order; SQLite's own tables left out.
pub(crate) fn list_tables(
    spec: &SourceSpec,
    uri: &ParsedUri,
    like: &str,
    exclude: &[String],
) -> Result<Vec<String>, SourceError> {
    let path = uri.database.clone().unwrap_or_default();
    let conn = open(&path, spec.query_timeout)?;
    let what = format!("listing the tables like {like} in {path}");
    let mut sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
                   AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name LIKE ?1 ESCAPE '\\'"
        .to_owned();
    for i in 0..exclude.len() {
        sql.push_str(&format!(" AND name NOT LIKE ?{} ESCAPE '\\'", i + 2));
    }
    sql.push_str(" ORDER BY name");
    let params: Vec<&str> = std::iter::once(like)
        .chain(exclude.iter().map(String::as_str))
        .collect();
    let mut stmt = conn.prepare(&sql).map_err(|e| map_err(&what, e))?;
    let names = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(0)
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| map_err(&what, e))?;
    Ok(names)
}

impl SqliteSource {
    pub(crate) fn connect(spec: &SourceSpec, uri: &ParsedUri) -> Result<SqliteSource, SourceError> {
        let path = uri.database.clone().unwrap_or_default();
        let conn = open(&path, spec.query_timeout)?;
        let checking = format!("checking source table {} in {path}", spec.table);
        let schema_err = |e: rusqlite::Error| map_err(&checking, e);

        // Table names are case-insensitive in SQLite; use the stored spelling from here on.
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
            .map_err(schema_err)?;
        let tables: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(schema_err)?;
        drop(stmt);
        let table = tables
            .iter()
            .find(|t| **t == spec.table)
            .or_else(|| tables.iter().find(|t| t.eq_ignore_ascii_case(&spec.table)))
            .cloned()
            .ok_or_else(|| {
                SourceError::Schema(format!(
                    "{checking}: no such table{}",
                    similar_names(&spec.table, &tables).unwrap_or_default()
                ))
            })?;

        // `hidden` 0 = ordinary, 2/3 = generated columns (readable); 1 = virtual-table hidden.
        let mut stmt = conn
            .prepare("SELECT name, type FROM pragma_table_xinfo(?1) WHERE hidden IN (0, 2, 3) ORDER BY cid")
            .map_err(schema_err)?;
        let columns: Vec<(String, String)> = stmt
            .query_map([&table], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(schema_err)?;
        drop(stmt);
        let mut names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();

        // The implicit rowid is a valid key when no column shadows its name; it is only
        // published when asked for, so without `fields` the table's own columns are listed.
        let pk_is_rowid = !names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&spec.primary_key))
            && ROWID_NAMES
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&spec.primary_key));
        let mut spec = spec.clone();
        if pk_is_rowid {
            if spec.fields.is_none() {
                spec.fields = Some(names.clone());
            }
            names.push(spec.primary_key.clone());
        }
        let plan = plan_columns(&spec, &names, true)?;
        if !pk_is_rowid {
            let pk_type = &columns[plan.table_index[plan.pk]].1;
            // Integer affinity: the declared type contains "INT" (datatype3.html §3.1 rule 1).
            if !pk_type.to_ascii_uppercase().contains("INT") {
                return Err(SourceError::Schema(format!(
                    "{checking}: primary key {} is declared {}; expected a column with integer \
                     affinity (INTEGER, INT, BIGINT…) or the rowid",
                    spec.primary_key,
                    if pk_type.is_empty() {
                        "without a type"
                    } else {
                        pk_type
                    }
                )));
            }
        }

        let select: Vec<String> = plan.names.iter().map(|n| quote_double(n)).collect();
        let pk = quote_double(&spec.primary_key);
        let sql = format!(
            "SELECT {} FROM {} WHERE {pk} > ?1 ORDER BY {pk} LIMIT ?2",
            select.join(", "),
            quote_double(&table)
        );
        // Compile once now so that a table we cannot read (WITHOUT ROWID with a rowid key,
        // a view that fails) is reported at start-up.
        conn.prepare_cached(&sql).map_err(schema_err)?;
        let max_sql = format!("SELECT MAX({pk}) FROM {}", quote_double(&table));
        let count_sql = format!("SELECT count(*) FROM {}", quote_double(&table));
        Ok(SqliteSource {
            plan,
            path,
            busy_timeout: spec.query_timeout,
            sql,
            max_sql,
            count_sql,
            conn: Some(conn),
            utf8_warnings: Utf8Warnings::default(),
        })
    }

    pub(crate) fn fetch_each<E: From<SourceError>>(
        &mut self,
        after: Id,
        limit: usize,
        row: impl FnMut(Id, &[Value]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => open(&self.path, self.busy_timeout)?,
        };
        let count = self.query(&conn, after, limit, row)?;
        // Only a connection that worked goes back; after an error the next call reopens.
        self.conn = Some(conn);
        Ok(count)
    }

    /// The highest key in the table (`None` when it is empty): one b-tree descent.
    pub(crate) fn max_id(&mut self) -> Result<Option<Id>, SourceError> {
        let what = format!(
            "reading the highest id of table {} in {}",
            self.plan.table, self.path
        );
        let sql = self.max_sql.clone();
        let max: Option<i64> = self.query_one(&what, &sql)?;
        Ok(max.map(Id::from))
    }

    /// The number of rows, counted: SQLite keeps no row count (`sqlite_stat1` only after an
    /// ANALYZE), and a count of a table this tool reads is what the check is for.
    pub(crate) fn count_rows(&mut self) -> Result<RowCount, SourceError> {
        let what = format!(
            "counting the rows of table {} in {}",
            self.plan.table, self.path
        );
        let sql = self.count_sql.clone();
        let rows: i64 = self.query_one(&what, &sql)?;
        Ok(RowCount {
            rows: u64::try_from(rows).ok(),
            exact: true,
            source: "count(*)",
        })
    }

    /// The one value of a one-row query; a failure drops the connection.
    fn query_one<T: rusqlite::types::FromSql>(
        &mut self,
        what: &str,
        sql: &str,
    ) -> Result<T, SourceError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => open(&self.path, self.busy_timeout)?,
        };
        let value = conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(|e| map_err(what, e))?;
        self.conn = Some(conn);
        Ok(value)
    }

    fn query<E: From<SourceError>>(
        &mut self,
        conn: &Connection,
        after: Id,
        limit: usize,
        mut row: impl FnMut(Id, &[Value]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let reading = format!("reading table {} in {}", self.plan.table, self.path);
        let err = |e| map_err(&reading, e);
        let mut stmt = conn.prepare_cached(&self.sql).map_err(err)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query((super::clamp_i64(after), limit)).map_err(err)?;
        let width = self.plan.names.len();
        // One set of values, refilled for every row: text is copied into the same buffers.
        let mut values = vec![Value::Null; width];
        let mut count = 0;
        while let Some(r) = rows.next().map_err(err)? {
            let mut bad_text = Vec::new();
            for (i, slot) in values.iter_mut().enumerate() {
                match r.get_ref(i).map_err(err)? {
                    ValueRef::Null => *slot = Value::Null,
                    ValueRef::Integer(n) => *slot = Value::Int(n),
                    ValueRef::Real(x) => *slot = Value::Float(x),
                    ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                        Ok(s) => super::set_str(slot, s),
                        Err(_) => {
                            bad_text.push(i);
                            *slot = Value::Str(String::from_utf8_lossy(bytes).into_owned());
                        }
                    },
                    ValueRef::Blob(bytes) => *slot = Value::Str(convert::base64(bytes)),
                }
            }
            let id = row_id(&self.plan, &values)?;
            self.utf8_warnings
                .report(&reading, &self.plan.names, id, &bad_text);
            row(id, &values)?;
            count += 1;
        }
        Ok(count)
    }
}

fn open(path: &str, busy_timeout: Duration) -> Result<Connection, SourceError> {
    let opening = format!("opening sqlite database {path}");
    // Read-only: the file belongs to the application that writes it. Not immutable and not
    // `nolock`, so we see a consistent snapshot alongside a writer (WAL or rollback journal).
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| map_err(&opening, e))?;
    // A writer holding the lock makes reads wait up to this long before SQLITE_BUSY.
    conn.busy_timeout(busy_timeout)
        .map_err(|e| map_err(&opening, e))?;
    // Make sure this is a database now rather than at the first batch.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .map_err(|e| map_err(&opening, e))?;
    Ok(conn)
}

/// The one place a rusqlite error becomes a `SourceError`, and the retry decision for SQLite.
fn map_err(what: &str, e: rusqlite::Error) -> SourceError {
    let msg = format!("{what}: {e}");
    match e.sqlite_error_code() {
        // Another connection holds a lock, or the disk hiccuped: worth another try.
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure) => {
            SourceError::Unavailable(msg)
        }
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::NotADatabase
            | ErrorCode::AuthorizationForStatementDenied,
        ) => SourceError::Refused(msg),
        _ => SourceError::Query(msg),
    }
}
