//! MySQL / MariaDB source. The batch query is a server-side prepared statement, so values arrive
//! in the binary protocol already typed (integers as integers, dates as date structs) rather
//! than as text we would have to re-parse. Column types are read from `information_schema` at
//! start-up, which decides how each value is published (a BLOB and a TEXT both arrive as bytes).
//! Spatial columns are the exception: selected as `ST_AsText(col)`, they arrive as WKT text.
//!
//! The parts: `connect` opens sessions (the URI, TLS, the session settings, login errors);
//! `catalog` checks the table and decides each column's rule; `decode` holds every type rule
//! and turns fetched values into `Value`s; `error` decides which failures are worth a retry.
//! The connection is kept in a `Session`, which reconnects after a failure.

mod catalog;
mod connect;
mod decode;
mod error;

use mysql::prelude::Queryable;
use mysql::{Conn, Statement};

use self::connect::Connector;
use self::decode::{convert_value, Kind};
use self::error::map_err;
use super::session::Session;
use super::uri::ParsedUri;
use super::{
    clamp_i64, row_id, IdAllocation, Plan, RowCount, SourceError, SourceSpec, Utf8Warnings,
};
use crate::value::{Id, OpenTransactions, Value};

pub struct MysqlSource {
    pub(crate) plan: Plan,
    connector: Connector,
    sql: String,
    /// `SELECT MAX(key)`, as text (an unsigned key may be above i64::MAX).
    max_sql: String,
    /// The database and the table as information_schema names them.
    schema_table: (String, String),
    kinds: Vec<Kind>,
    /// The session and its prepared batch query; reopened after a failure.
    session: Session<(Conn, Statement)>,
    utf8_warnings: Utf8Warnings,
}

/// The tables and views of the URI's database whose names match `like` and none of
/// `exclude`, by the server's `LIKE` (and its collation), in name order.
pub(crate) fn list_tables(
    spec: &SourceSpec,
    uri: ParsedUri,
    like: &str,
    exclude: &[String],
) -> Result<Vec<String>, SourceError> {
    let connector = Connector::from_uri(spec, &uri)?;
    let what = format!("listing the tables like {like} in {}", connector.target());
    if uri.database.as_deref().is_none_or(str::is_empty) {
        return Err(SourceError::Schema(format!(
            "{what}: no database given: name it in the uri (mysql://…/database)"
        )));
    }
    let mut conn = connector.open()?;
    let mut sql = "SELECT TABLE_NAME FROM information_schema.TABLES \
                   WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ?"
        .to_owned();
    let mut params = vec![mysql::Value::from(like)];
    for pattern in exclude {
        sql.push_str(" AND TABLE_NAME NOT LIKE ?");
        params.push(mysql::Value::from(pattern.as_str()));
    }
    sql.push_str(" ORDER BY TABLE_NAME");
    conn.exec(sql, mysql::Params::Positional(params))
        .map_err(|e| map_err(&what, e))
}

impl MysqlSource {
    /// Reads the URI, opens a session, checks the table in `information_schema` and prepares
    /// the batch query.
    pub(crate) fn connect(spec: &SourceSpec, uri: ParsedUri) -> Result<MysqlSource, SourceError> {
        let connector = Connector::from_uri(spec, &uri)?;
        let mut conn = connector.open()?;
        let checked = catalog::check(&mut conn, spec, connector.target())?;
        let stmt = conn
            .prep(&checked.sql)
            .map_err(|e| map_err(&format!("checking source table {}", spec.table), e))?;
        Ok(MysqlSource {
            plan: checked.plan,
            connector,
            sql: checked.sql,
            max_sql: checked.max_sql,
            schema_table: checked.schema_table,
            kinds: checked.kinds,
            session: Session::new((conn, stmt)),
            utf8_warnings: Utf8Warnings::default(),
        })
    }

    /// Runs `f` on the connection (re-opened after a failure); a failure drops it.
    fn with_conn<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Conn) -> Result<T, mysql::Error>,
    ) -> Result<T, SourceError> {
        self.session.run(
            || reopen(&self.connector, &self.sql, &self.plan.table),
            |(conn, _)| f(conn).map_err(|e| map_err(what, e)),
        )
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
                    self.connector.user()
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
        let reading = format!("reading table {}", self.plan.table);
        let err = |e| map_err(&reading, e);
        // Unsigned keys above i64::MAX are bound as unsigned so the comparison stays exact.
        let after = if after > Id::from(i64::MAX) {
            mysql::Value::UInt(u64::try_from(after).unwrap_or(u64::MAX))
        } else {
            mysql::Value::Int(clamp_i64(after))
        };
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let (plan, kinds, utf8_warnings) = (&self.plan, &self.kinds, &mut self.utf8_warnings);
        // Only a connection that worked is kept for the next batch.
        self.session.run(
            || reopen(&self.connector, &self.sql, &plan.table).map_err(E::from),
            |(conn, stmt)| {
                let mut values = Vec::with_capacity(kinds.len());
                let mut count = 0;
                for r in conn.exec_iter(&*stmt, (after, limit)).map_err(err)? {
                    let raw = r.map_err(err)?.unwrap();
                    values.resize(kinds.len(), Value::Null);
                    let mut bad_text = Vec::new();
                    for (i, ((v, kind), slot)) in
                        raw.into_iter().zip(kinds).zip(&mut values).enumerate()
                    {
                        convert_value(v, *kind, slot, || bad_text.push(i));
                    }
                    let id = row_id(plan, &values)?;
                    utf8_warnings.report(&reading, &plan.names, id, &bad_text);
                    row(id, &values)?;
                    count += 1;
                }
                Ok(count)
            },
        )
    }
}

/// The open connection, re-opened (and the batch query prepared) after a failure: what the
/// `Session` opens when it has none.
fn reopen(connector: &Connector, sql: &str, table: &str) -> Result<(Conn, Statement), SourceError> {
    let mut conn = connector.open()?;
    let stmt = conn
        .prep(sql)
        .map_err(|e| map_err(&format!("preparing the batch query for table {table}"), e))?;
    Ok((conn, stmt))
}
