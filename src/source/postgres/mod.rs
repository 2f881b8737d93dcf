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
//! The parts: `connect` opens sessions (the URI, TLS, the session settings, login errors);
//! `catalog` checks the table and plans each column's read; `decode` holds every type rule and
//! turns fetched columns into `Value`s; `error` decides which failures are worth a retry. The
//! connection is kept in a `Session`, which reconnects after a failure.

mod catalog;
mod connect;
mod decode;
mod error;

use tokio_postgres::Statement;

use self::connect::Connector;
use self::decode::Read;
use self::error::map_err;
use super::pg_client::Client;
use super::session::Session;
use super::uri::ParsedUri;
use super::{
    clamp_i64, quote_double, row_id, IdAllocation, Plan, RowCount, SourceError, SourceSpec,
};
use crate::value::{Id, OpenTransactions, Value};

pub struct PostgresSource {
    pub(crate) plan: Plan,
    connector: Connector,
    sql: String,
    reads: Vec<Read>,
    /// The session and its prepared batch query; reopened after a failure.
    session: Session<(Client, Statement)>,
    /// The table and key as SQL text (quoted), for `pg_get_serial_sequence`.
    table_sql: String,
    pk_name: String,
}

/// The tables, views and partitioned tables visible in the search path (not partitions) whose
/// names match `like` and none of `exclude`, by the server's `LIKE`, in name order.
pub(crate) fn list_tables(
    spec: &SourceSpec,
    uri: ParsedUri,
    like: &str,
    exclude: &[String],
) -> Result<Vec<String>, SourceError> {
    let connector = Connector::from_uri(spec, &uri)?;
    let mut client = connector.open()?;
    let what = format!("listing the tables like {like} in {}", connector.target());
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c \
             WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND pg_table_is_visible(c.oid) \
             AND NOT c.relispartition AND c.relname LIKE $1 \
             AND NOT (c.relname LIKE ANY($2::text[])) ORDER BY 1",
            &[&like, &exclude],
        )
        .map_err(|e| map_err(&what, e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

impl PostgresSource {
    /// Reads the URI, opens a session, checks the table in the catalog and prepares the batch
    /// query.
    pub(crate) fn connect(
        spec: &SourceSpec,
        uri: ParsedUri,
    ) -> Result<PostgresSource, SourceError> {
        let connector = Connector::from_uri(spec, &uri)?;
        let mut client = connector.open()?;
        let checked = catalog::check(&mut client, spec, connector.target())?;
        let stmt = client
            .prepare(&checked.sql)
            .map_err(|e| map_err(&format!("checking source table {}", spec.table), e))?;
        Ok(PostgresSource {
            plan: checked.plan,
            connector,
            sql: checked.sql,
            reads: checked.reads,
            session: Session::new((client, stmt)),
            table_sql: checked.table_sql,
            pk_name: checked.pk_name,
        })
    }

    /// Runs `f` on the connection; a failure drops the connection.
    fn with_client<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, SourceError> {
        self.session.run(
            || reopen(&self.connector, &self.sql, &self.plan.table),
            |(client, _)| f(client).map_err(|e| map_err(what, e)),
        )
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
        let after = clamp_i64(after);
        let (plan, reads) = (&self.plan, &self.reads);
        // Out of `self` while rows stream in; put back only if the whole read worked.
        self.session.run(
            || reopen(&self.connector, &self.sql, &plan.table).map_err(E::from),
            |(client, stmt)| {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&after, &limit];
                // One set of values, refilled for every row: text is copied into the same
                // buffers.
                let mut values = vec![Value::Null; reads.len()];
                let count = client
                    .for_each_row(stmt, &params, |r| {
                        for (i, (read, slot)) in reads.iter().zip(&mut values).enumerate() {
                            decode::column(plan, r, i, *read, slot, &reading)?;
                        }
                        row(row_id(plan, &values)?, &values)
                    })
                    .map_err(|e| map_err(&reading, e))??;
                Ok(count)
            },
        )
    }
}

/// The open connection, re-opened (and the batch query prepared) after a failure: what the
/// `Session` opens when it has none.
fn reopen(
    connector: &Connector,
    sql: &str,
    table: &str,
) -> Result<(Client, Statement), SourceError> {
    let mut client = connector.open()?;
    let stmt = client
        .prepare(sql)
        .map_err(|e| map_err(&format!("preparing the batch query for table {table}"), e))?;
    Ok((client, stmt))
}
