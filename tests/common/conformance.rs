//! The tests every server source (PostgreSQL, MariaDB) passes, written once: each function runs
//! one test against the database it is given, and [`source_conformance_tests!`] defines them as
//! `#[test]`s in a backend's test file. Where the databases differ in SQL (a column type, how a
//! table is locked) or in the wording of an error, the test says so with a `match` on the
//! backend; what only one database has stays in its own file.

use std::time::{Duration, Instant};

use repliqate::source::SourceError;
use repliqate::value::{Row, Value};

use super::db::{Db, TableGuard};
use super::env::unique;
use super::source::{connect, connect_err, s, spec};

/// Defines one `#[test]` per conformance test in the calling file, each running against `$db`
/// (a [`Db`]); the tests keep their names. (Unused in the binaries that are not source tests.)
#[allow(unused_macros)]
macro_rules! source_conformance_tests {
    ($db:expr) => {
        $crate::common::conformance::source_conformance_tests!(
            @each $db;
            hostile_names_and_qualified_table_names,
            startup_errors_name_what_is_wrong,
            bad_credentials_are_not_retriable,
            unreachable_server_is_retriable_and_quick,
            a_stalled_query_times_out_retriably_and_the_next_fetch_reconnects,
            ten_thousand_rows_fetch_quickly,
        );
    };
    (@each $db:expr; $($test:ident,)*) => {
        $(
            #[test]
            fn $test() {
                $crate::common::conformance::$test(&$db);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use source_conformance_tests;

/// The backend's name in the source's messages and URIs.
fn scheme(db: &Db) -> &'static str {
    match db {
        Db::Postgres => "postgresql",
        Db::MariaDb => "mysql",
        Db::Sqlite(_) => unreachable!("the conformance tests are for the server sources"),
    }
}

/// Quotes and semicolons in table and column names are names, never SQL; a table can be named
/// with its schema (PostgreSQL) or database (MariaDB).
pub fn hostile_names_and_qualified_table_names(db: &Db) {
    let table = format!("we\"ird; DROP TABLE x;--`{}", unique("t"));
    let quoted = db.quote(&table);
    let _table = TableGuard::new(db, &quoted);
    db.exec(&format!(
        "CREATE TABLE {quoted} ({} BIGINT PRIMARY KEY, {} TEXT, {} TEXT)",
        db.quote("select"),
        db.quote("sp ace\"q'"),
        db.quote("ünï 表")
    ));
    db.exec(&format!("INSERT INTO {quoted} VALUES (1, 'a', 'b')"));
    let mut src = connect(&spec(
        &db.uri(),
        &table,
        "select",
        Some(&["sp ace\"q'", "ünï 表"]),
    ));
    assert_eq!(
        src.fetch(0, 10).unwrap(),
        [Row {
            id: 1,
            values: vec![Value::Int(1), s("a"), s("b")]
        }]
    );
    // `schema.table` for a table outside the search path; `database.table`.
    let (qualified, _guard) = match db {
        Db::Postgres => {
            let schema = unique("sch");
            db.exec(&format!("CREATE SCHEMA {schema}"));
            let qualified = format!("{schema}.inner_t");
            let guard =
                TableGuard::new(db, &qualified).then(format!("DROP SCHEMA {schema} CASCADE"));
            (qualified, guard)
        }
        _ => {
            let plain = unique("plain");
            (format!("repliqate.{plain}"), TableGuard::new(db, &plain))
        }
    };
    db.exec(&format!(
        "CREATE TABLE {qualified} (id BIGINT PRIMARY KEY); INSERT INTO {qualified} VALUES (7)"
    ));
    let mut src = connect(&spec(&db.uri(), &qualified, "id", None));
    assert_eq!(src.fetch(0, 10).unwrap()[0].id, 7);
}

/// A missing table (with the similar ones named), a key that is no integer, a field that is no
/// column: each refused at start-up, saying so. (A point column, once refused, is published.)
pub fn startup_errors_name_what_is_wrong(db: &Db) {
    let table = unique("errs");
    let _table = TableGuard::new(db, &table);
    // Per backend: the table; how its text key is described; a field that is not a column and
    // the hint the error gives.
    let (create, key_type, (field, hint)) = match db {
        Db::Postgres => (
            format!(
                "CREATE TABLE {table} (id text PRIMARY KEY, n integer, p point, \"Name\" text)"
            ),
            "text; expected smallint, integer or bigint",
            ("name", "did you mean Name?"),
        ),
        _ => (
            format!("CREATE TABLE {table} (id VARCHAR(10) PRIMARY KEY, n INT, p POINT)"),
            "varchar(10); expected an integer type (TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT, \
             signed or unsigned)",
            ("nope", "columns: id, n, p"),
        ),
    };
    db.exec(&create);
    let e = connect_err(&spec(&db.uri(), &format!("{table}_nope"), "id", None));
    assert!(
        e.to_string().starts_with(&format!(
            "checking source table {table}_nope: no such table or view in 127.0.0.1:"
        )),
        "{e}"
    );
    assert!(
        e.to_string().ends_with(&format!("(similar: {table})")),
        "{e}"
    );
    assert!(matches!(e, SourceError::Schema(_)));
    let e = connect_err(&spec(&db.uri(), &table, "id", Some(&["n"])));
    assert_eq!(
        e.to_string(),
        format!("checking source table {table}: primary key id has type {key_type}")
    );
    let e = connect_err(&spec(&db.uri(), &table, "n", Some(&[field])));
    assert_eq!(
        e.to_string(),
        format!("checking source table {table}: field {field}: no column named {field} ({hint})")
    );
    // A point is published (PostgreSQL: its text form; MariaDB: its WKT): no type of either
    // server is refused at start-up (the MySQL backend refuses types it does not know, and the
    // stack's MariaDB has none).
    let src = connect(&spec(&db.uri(), &table, "n", Some(&["p"])));
    assert_eq!(src.columns(), ["n", "p"]);
}

/// A wrong password is refused, not retried, and not printed; a TLS setting the source does not
/// know is a bad URI (tests/source_tls.rs has the ones it knows).
pub fn bad_credentials_are_not_retriable(db: &Db) {
    let good = db.uri();
    let wrong_pw = good.replacen(":repliqate-secret@", ":not-the-password@", 1);
    assert_ne!(
        good,
        wrong_pw,
        "the test {} URI must carry the repliqate-secret password",
        db.label()
    );
    let e = connect_err(&spec(&wrong_pw, "t", "id", None));
    assert!(
        e.to_string()
            .contains("authentication failed for user repliqate"),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    assert!(!e.is_retriable());
    let tls = match db {
        Db::Postgres => "sslmode=strict",
        _ => "ssl=true",
    };
    let e = connect_err(&spec(&format!("{good}?{tls}"), "t", "id", None));
    assert!(matches!(e, SourceError::BadUri(_)), "{e}");
}

/// No server at the address: a retriable error naming it (not the password), within 3 s.
pub fn unreachable_server_is_retriable_and_quick(db: &Db) {
    let driver = match db {
        Db::Postgres => "postgresql+psycopg2",
        _ => "mysql+pymysql",
    };
    let start = Instant::now();
    let e = connect_err(&spec(
        &format!("{driver}://repliqate:pw@127.0.0.1:1/repliqate"),
        "t",
        "id",
        None,
    ));
    assert!(e.is_retriable(), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "connecting to {} at 127.0.0.1:1/repliqate: ",
            scheme(db)
        )),
        "{e}"
    );
    assert!(!e.to_string().contains("pw"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// A query stalled by a lock held elsewhere ends at the query timeout with a retriable error;
/// once the lock is gone, the next fetches read again.
pub fn a_stalled_query_times_out_retriably_and_the_next_fetch_reconnects(db: &Db) {
    // Per backend: the query timeout, how soon the error must come, how a table is locked.
    let (query_timeout, within, lock, unlock) = match db {
        Db::Postgres => (
            Duration::from_millis(500),
            Duration::from_secs(5),
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE",
            "ROLLBACK",
        ),
        _ => (
            Duration::from_secs(1),
            Duration::from_secs(8),
            "LOCK TABLES {table} WRITE",
            "UNLOCK TABLES",
        ),
    };
    let table = unique("timeout");
    let _table = TableGuard::new(db, &table);
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY); INSERT INTO {table} VALUES (1), (2)"
    ));
    let mut s = spec(&db.uri(), &table, "id", None);
    s.query_timeout = query_timeout;
    let mut src = connect(&s);
    assert_eq!(src.fetch(0, 10).unwrap().len(), 2);

    let mut locker = db.connect();
    locker.exec(&lock.replace("{table}", &table));
    let start = Instant::now();
    let e = src.fetch(0, 10).unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert!(start.elapsed() < within, "{:?}", start.elapsed());
    locker.exec(unlock);
    assert_eq!(src.fetch(0, 10).unwrap().len(), 2);
    assert_eq!(src.fetch(1, 10).unwrap().len(), 1);
}

/// 10,000 rows of typical columns in one fetch, in under 2 s.
pub fn ten_thousand_rows_fetch_quickly(db: &Db) {
    let table = unique("big");
    let _table = TableGuard::new(db, &table);
    // Per backend: the table, filled with ids 1..=10000; the timestamp of the last row.
    let (fill, last_e) = match db {
        Db::Postgres => (
            format!(
                "CREATE TABLE {table} (id int8 PRIMARY KEY, a int4, b float8, c text, \
                 d numeric(12,2), e timestamptz);
                 INSERT INTO {table} SELECT i, i * 7, i / 3.0, 'row ' || i, i / 100.0, \
                 '2024-01-01'::timestamptz + i * interval '1 second' \
                 FROM generate_series(1, 10000) i"
            ),
            "2024-01-01T02:46:40Z",
        ),
        _ => {
            // Digits cross-joined: portable to MySQL and MariaDB alike (no sequence engine, no
            // recursion limit).
            let digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                          UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL \
                          SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)";
            (
                format!(
                    "CREATE TABLE {table} (id BIGINT PRIMARY KEY, a INT, b DOUBLE, \
                     c VARCHAR(20), d DECIMAL(12,2), e DATETIME(6));
                     INSERT INTO {table} SELECT n, n * 7, n / 3, CONCAT('row ', n), n / 100, \
                     '2024-01-01' + INTERVAL n SECOND FROM (SELECT a.d + 10 * b.d + 100 * c.d \
                     + 1000 * e.d + 1 AS n FROM {digits} a, {digits} b, {digits} c, \
                     {digits} e) numbers"
                ),
                "2024-01-01T02:46:40",
            )
        }
    };
    db.exec(&fill);
    let mut src = connect(&spec(&db.uri(), &table, "id", None));
    let start = Instant::now();
    let rows = src.fetch(0, 10_000).unwrap();
    let took = start.elapsed();
    assert_eq!(rows.len(), 10_000);
    assert_eq!(rows[9_999].values[3], s("row 10000"));
    assert_eq!(rows[9_999].values[4], s("100.00"));
    assert_eq!(rows[9_999].values[5], s(last_e));
    assert!(took < Duration::from_secs(2), "10,000 rows took {took:?}");
}
