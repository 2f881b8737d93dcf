//! What the PostgreSQL catalog says about the source table, checked at start-up: that the table
//! exists, that the primary key is an integer, which columns are published, and which rule
//! (`decode::Kind`) each follows, domains followed to their base type. The result is the plan
//! and the batch query.

use super::decode::{Kind, Read};
use super::error::map_err;
use crate::source::pg_client::Client;
use crate::source::{plan_columns, quote_double, similar_names, Plan, SourceError, SourceSpec};

/// What the checks decided: the columns, how each is read, and the queries' SQL.
pub(super) struct Checked {
    pub plan: Plan,
    /// How each published column is read, in `plan.names` order.
    pub reads: Vec<Read>,
    /// The batch query: rows after `$1`, in key order, at most `$2`.
    pub sql: String,
    /// The table and key as SQL text (quoted), for `pg_get_serial_sequence`.
    pub table_sql: String,
    pub pk_name: String,
}

/// (name, type, type as PostgreSQL spells it)
type Column = (String, u32, String);

/// Checks the table, primary key, fields and column types; `target` names the database in
/// messages.
pub(super) fn check(
    client: &mut Client,
    spec: &SourceSpec,
    target: &str,
) -> Result<Checked, SourceError> {
    let checking = format!("checking source table {}", spec.table);
    let err = |e| map_err(&checking, e);
    let (oid, schema, table) = locate(client, spec, target, &checking)?;
    let columns = columns_of(client, oid).map_err(err)?;
    let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
    let plan = plan_columns(spec, &names, false)?;

    let pk = &columns[plan.table_index[plan.pk]];
    check_key(client, spec, pk, &checking)?;
    let (reads, select) = column_reads(client, &plan, &columns).map_err(err)?;
    let table_sql = match &schema {
        Some(s) => format!("{}.{}", quote_double(s), quote_double(&table)),
        None => quote_double(&table),
    };
    let sql = batch_query(&select, &table_sql, &quote_double(&pk.0));
    Ok(Checked {
        plan,
        reads,
        sql,
        table_sql,
        pk_name: pk.0.clone(),
    })
}

/// The table or view `spec.table` names: its oid, its schema when the name gave one, and its
/// name. A missing one is named with the tables whose names look like it.
fn locate(
    client: &mut Client,
    spec: &SourceSpec,
    target: &str,
    checking: &str,
) -> Result<(u32, Option<String>, String), SourceError> {
    let err = |e| map_err(checking, e);
    // The literal name first (a table may contain a dot); then `schema.table`.
    let mut found = find_table(client, None, &spec.table).map_err(err)?;
    if found.is_none() {
        if let Some((schema, table)) = spec.table.split_once('.') {
            found = find_table(client, Some(schema), table).map_err(err)?;
        }
    }
    let Some(found) = found else {
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
    Ok(found)
}

/// The columns of table `oid`, in table order.
fn columns_of(client: &mut Client, oid: u32) -> Result<Vec<Column>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// The primary key must be a smallint, integer or bigint (or a domain over one).
fn check_key(
    client: &mut Client,
    spec: &SourceSpec,
    pk: &Column,
    checking: &str,
) -> Result<(), SourceError> {
    let pk_type = base_type(client, pk.1).map_err(|e| map_err(checking, e))?;
    if !matches!(kind_of(&pk_type), Kind::Int2 | Kind::Int4 | Kind::Int8) {
        return Err(SourceError::Schema(format!(
            "{checking}: primary key {} has type {}; expected smallint, integer or bigint",
            spec.primary_key, pk.2
        )));
    }
    Ok(())
}

/// How each published column is read, and its select-list expression.
fn column_reads(
    client: &mut Client,
    plan: &Plan,
    columns: &[Column],
) -> Result<(Vec<Read>, Vec<String>), tokio_postgres::Error> {
    // Every type has a rule: its own, or its text form (its output function's, which
    // PostgreSQL guarantees its input function reads back), so no column is refused.
    let mut reads = Vec::with_capacity(plan.names.len());
    let mut select = Vec::with_capacity(plan.names.len());
    for &i in &plan.table_index {
        let (name, type_oid, _) = &columns[i];
        let ty = base_type(client, *type_oid)?;
        let (read, expr) = if ty.elem != 0 {
            let elem = base_type(client, ty.elem)?;
            kind_of(&elem).plan(true, quote_double(name))
        } else {
            kind_of(&ty).plan(false, quote_double(name))
        };
        reads.push(read);
        select.push(expr);
    }
    Ok((reads, select))
}

/// The batch query, from the select list and the quoted table and key.
fn batch_query(select: &[String], table_sql: &str, pk_sql: &str) -> String {
    // `$1::int8`: a bare `$1` would take the key's type (maybe int4) and refuse an i64.
    format!(
        "SELECT {} FROM {table_sql} WHERE {pk_sql} > $1::int8 ORDER BY {pk_sql} LIMIT $2::int8",
        select.join(", ")
    )
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
