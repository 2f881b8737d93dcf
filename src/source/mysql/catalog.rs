//! What `information_schema` says about the source table, checked at start-up: that the table
//! exists, that the primary key is an integer, which columns are published, and which rule
//! (`decode::Kind`) each follows (MariaDB's JSON told apart from text by its check
//! constraint). The result is the plan and the queries' SQL.

use mysql::prelude::Queryable;
use mysql::Conn;

use super::connect::is_mariadb;
use super::decode::{is_integer, kind_of, Kind};
use super::error::map_err;
use crate::source::{plan_columns, quote_backtick, similar_names, Plan, SourceError, SourceSpec};

/// What the checks decided: the columns, how each is published, and the queries' SQL.
pub(super) struct Checked {
    pub plan: Plan,
    /// How each published column is published, in `plan.names` order.
    pub kinds: Vec<Kind>,
    /// The batch query: rows after the first `?`, in key order, at most the second.
    pub sql: String,
    /// `SELECT MAX(key)`, as text (an unsigned key may be above i64::MAX).
    pub max_sql: String,
    /// The database and the table as information_schema names them.
    pub schema_table: (String, String),
}

/// (name, `LOWER(DATA_TYPE)`, `COLUMN_TYPE` as the server shows it)
type Column = (String, String, String);

/// Checks the table, primary key, fields and column types; `target` names the database in
/// messages.
pub(super) fn check(
    conn: &mut Conn,
    spec: &SourceSpec,
    target: &str,
) -> Result<Checked, SourceError> {
    let checking = format!("checking source table {}", spec.table);
    let err = |e| map_err(&checking, e);
    let (schema, table) = locate(conn, spec, target, &checking)?;
    let columns = columns_of(conn, &schema, &table).map_err(err)?;
    let mariadb_json = mariadb_json_checks(conn, &schema, &table).map_err(err)?;
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
    let kinds = column_kinds(&plan, &columns, &mariadb_json, &checking)?;
    let select = select_list(&plan, &columns, &kinds);
    let pk_sql = quote_backtick(pk_name);
    let sql = format!(
        "SELECT {} FROM {}.{} WHERE {pk_sql} > ? ORDER BY {pk_sql} LIMIT ?",
        select.join(", "),
        quote_backtick(&schema),
        quote_backtick(&table)
    );
    let max_sql = format!(
        "SELECT CAST(MAX({pk_sql}) AS CHAR) FROM {}.{}",
        quote_backtick(&schema),
        quote_backtick(&table)
    );
    Ok(Checked {
        plan,
        kinds,
        sql,
        max_sql,
        schema_table: (schema, table),
    })
}

/// The database and the table `spec.table` names. A missing one is named with the tables of
/// the current database whose names look like it.
fn locate(
    conn: &mut Conn,
    spec: &SourceSpec,
    target: &str,
    checking: &str,
) -> Result<(String, String), SourceError> {
    let err = |e| map_err(checking, e);
    let current_db: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .map_err(err)?
        .flatten();
    // The literal name first (a table may contain a dot); then `database.table`.
    let mut found = None;
    if let Some(db) = &current_db {
        found = find_table(conn, db, &spec.table).map_err(err)?;
    }
    if found.is_none() {
        if let Some((schema, table)) = spec.table.split_once('.') {
            found = find_table(conn, schema, table).map_err(err)?;
        }
    }
    let Some(found) = found else {
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
    Ok(found)
}

/// The columns of the table, in table order.
fn columns_of(conn: &mut Conn, schema: &str, table: &str) -> Result<Vec<Column>, mysql::Error> {
    conn.exec(
        "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        (schema, table),
    )
}

/// The table's check constraints on MariaDB (none elsewhere).
fn mariadb_json_checks(
    conn: &mut Conn,
    schema: &str,
    table: &str,
) -> Result<Vec<String>, mysql::Error> {
    // MariaDB's JSON is LONGTEXT with a `json_valid(col)` check (its manual, "JSON Data
    // Type"); only that constraint tells it apart from plain text.
    Ok(if is_mariadb(conn)? {
        conn.exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, table),
        )?
    } else {
        Vec::new()
    })
}

/// How each published column is published; a column of a type without a rule is refused.
fn column_kinds(
    plan: &Plan,
    columns: &[Column],
    mariadb_json: &[String],
    checking: &str,
) -> Result<Vec<Kind>, SourceError> {
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
    Ok(kinds)
}

/// The batch query's select-list expression of each published column.
fn select_list(plan: &Plan, columns: &[Column], kinds: &[Kind]) -> Vec<String> {
    plan.table_index
        .iter()
        .zip(kinds)
        .map(|(&i, kind)| match kind {
            // The server's WKT: the same text for any SRID and axis order (neither is part
            // of WKT), coordinates at their shortest exact spelling.
            Kind::Spatial => format!("ST_AsText({})", quote_backtick(&columns[i].0)),
            _ => quote_backtick(&columns[i].0),
        })
        .collect()
}

/// The table `schema`.`table`, as information_schema names it, if there is one.
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
