//! The tests every source passes, written once: each function runs one test against the
//! database it is given, and [`source_conformance_tests!`] defines them as `#[test]`s in a
//! backend's test file. Most apply to every backend (SQLite, PostgreSQL, MariaDB); those of a
//! server (credentials, an address with no server, a query stalled by a lock) to the servers
//! only. Where the databases differ in SQL (a column type, how a table is locked) or in the
//! wording of an error, the test says so with a `match` on the backend; what only one database
//! has stays in its own file.

use std::time::{Duration, Instant};

use repliqate::source::SourceError;
use repliqate::value::{Id, Row, Value};

use super::db::{Db, TableGuard};
use super::env::unique;
use super::source::{connect, connect_err, s, spec};

/// Defines one `#[test]` per conformance test in the calling file; the tests keep their names.
/// `source_conformance_tests!(sqlite)`: the tests of every backend, each on a SQLite database
/// file of its own; `source_conformance_tests!($db)`, `$db` a server's [`Db`]: those and the
/// servers' own. (Unused in the binaries that are not source tests.)
#[allow(unused_macros)]
macro_rules! source_conformance_tests {
    (sqlite) => {
        $crate::common::conformance::source_conformance_tests!(@every @file);
    };
    ($db:expr) => {
        $crate::common::conformance::source_conformance_tests!(@every @server $db);
        $crate::common::conformance::source_conformance_tests!(
            @server $db;
            bad_credentials_are_not_retriable,
            unreachable_server_is_retriable_and_quick,
            a_stalled_query_times_out_retriably_and_the_next_fetch_reconnects,
        );
    };
    // The tests of every backend, defined by `@file` or `@server`.
    (@every $($how:tt)*) => {
        $crate::common::conformance::source_conformance_tests!(
            $($how)*;
            hostile_names_and_qualified_table_names,
            startup_errors_name_what_is_wrong,
            ten_thousand_rows_come_back_from_one_fetch_in_key_order,
            tables_are_listed_by_the_databases_own_like,
        );
    };
    (@file; $($test:ident,)*) => {
        $(
            #[test]
            fn $test() {
                // In a temporary directory that goes when the test ends.
                let (_dir, db) = $crate::common::db::sqlite_db("");
                $crate::common::conformance::$test(&db);
            }
        )*
    };
    (@server $db:expr; $($test:ident,)*) => {
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
        Db::Sqlite(_) => "sqlite",
    }
}

/// Quotes and semicolons in table and column names are names, never SQL (the table the name
/// would drop is still there); on a server, a table can be named with its schema (PostgreSQL)
/// or database (MariaDB).
pub fn hostile_names_and_qualified_table_names(db: &Db) {
    let victim = unique("x");
    let _victim = TableGuard::new(db, &victim);
    db.exec(&format!("CREATE TABLE {victim} (a INT)"));
    let table = format!("we\"ird; DROP TABLE {victim};--`{}", unique("t"));
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
    let victim_left = db
        .connect()
        .try_exec(&format!("SELECT count(*) FROM {victim}"));
    assert_eq!(victim_left, Ok(()), "table {victim} must still exist");
    // `schema.table` for a table outside the search path; `database.table`. (SQLite has
    // neither: a table is named as it is in the file.)
    let (qualified, _guard) = match db {
        Db::Sqlite(_) => return,
        Db::Postgres => {
            let schema = unique("sch");
            db.exec(&format!("CREATE SCHEMA {schema}"));
            let qualified = format!("{schema}.inner_t");
            let guard =
                TableGuard::new(db, &qualified).then(format!("DROP SCHEMA {schema} CASCADE"));
            (qualified, guard)
        }
        Db::MariaDb => {
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
/// column: each refused at start-up, saying so, and not retried. (A point column, once
/// refused, is published.)
pub fn startup_errors_name_what_is_wrong(db: &Db) {
    let table = unique("errs");
    let _table = TableGuard::new(db, &table);
    let missing = format!("{table}_nope");
    // Per backend: the table; how the missing table is reported, up to the similar ones; how
    // its text key is refused; a field that is not a column and the hint the error gives.
    let (create, no_such_table, key_error, (field, hint)) = match db {
        Db::Postgres => (
            format!(
                "CREATE TABLE {table} (id text PRIMARY KEY, n integer, p point, \"Name\" text)"
            ),
            format!("checking source table {missing}: no such table or view in 127.0.0.1:"),
            format!(
                "checking source table {table}: primary key id has type text; expected \
                 smallint, integer or bigint"
            ),
            ("name", "did you mean Name?"),
        ),
        Db::MariaDb => (
            format!("CREATE TABLE {table} (id VARCHAR(10) PRIMARY KEY, n INT, p POINT)"),
            format!("checking source table {missing}: no such table or view in 127.0.0.1:"),
            format!(
                "checking source table {table}: primary key id has type varchar(10); expected \
                 an integer type (TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT, signed or \
                 unsigned)"
            ),
            ("nope", "columns: id, n, p"),
        ),
        Db::Sqlite(path) => (
            format!("CREATE TABLE {table} (id TEXT PRIMARY KEY, n INTEGER, p POINT)"),
            format!(
                "checking source table {missing} in {}: no such table (similar: ",
                path.display()
            ),
            format!(
                "checking source table {table} in {}: primary key id is declared TEXT; \
                 expected a column with integer affinity (INTEGER, INT, BIGINT…) or the rowid",
                path.display()
            ),
            ("missing", "columns: id, n, p"),
        ),
    };
    db.exec(&create);
    let e = connect_err(&spec(&db.uri(), &missing, "id", None));
    assert!(e.to_string().starts_with(&no_such_table), "{e}");
    assert!(
        e.to_string().ends_with(&format!("(similar: {table})")),
        "{e}"
    );
    assert!(matches!(e, SourceError::Schema(_)));
    assert!(!e.is_retriable());
    let e = connect_err(&spec(&db.uri(), &table, "id", Some(&["n"])));
    assert_eq!(e.to_string(), key_error);
    let e = connect_err(&spec(&db.uri(), &table, "n", Some(&[field])));
    assert_eq!(
        e.to_string(),
        format!("checking source table {table}: field {field}: no column named {field} ({hint})")
    );
    assert!(matches!(e, SourceError::Schema(_)));
    // A point is published (PostgreSQL: its text form; MariaDB: its WKT; SQLite: whatever the
    // column holds, its declared type being any name): no type of either server is refused at
    // start-up (the MySQL backend refuses types it does not know, and the stack's MariaDB has
    // none).
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

/// 10,000 rows of typical columns in one fetch: in key order, each as written.
pub fn ten_thousand_rows_come_back_from_one_fetch_in_key_order(db: &Db) {
    let table = unique("big");
    let _table = TableGuard::new(db, &table);
    // Per backend: the table, filled with ids 1..=10000; the timestamp of the last row.
    let (fill, last_e) = match db {
        // No decimal type (a NUMERIC column holds a float): d is the decimal's text, e a
        // timestamp as SQLite's date functions write it.
        Db::Sqlite(_) => (
            format!(
                "CREATE TABLE {table} (id INTEGER PRIMARY KEY, a INT, b REAL, c TEXT, d TEXT, \
                 e TIMESTAMP);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
                 INSERT INTO {table} SELECT i, i * 7, i / 3.0, 'row ' || i, \
                 printf('%.2f', i / 100.0), datetime('2024-01-01', '+' || i || ' seconds') FROM n"
            ),
            "2024-01-01 02:46:40",
        ),
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
        Db::MariaDb => {
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
    // How fast is `make bench`'s to measure (docs/performance.md), not a limit here.
    let rows = src.fetch(0, 10_000).unwrap();
    assert_eq!(rows.len(), 10_000);
    for (i, row) in rows.iter().enumerate() {
        let id = i as i64 + 1;
        assert_eq!(row.id, id as Id, "row {i}");
        assert_eq!(row.values[1], Value::Int(id * 7), "row {i}");
        assert_eq!(row.values[3], s(&format!("row {id}")), "row {i}");
    }
    assert_eq!(rows[9_999].values[3], s("row 10000"));
    assert_eq!(rows[9_999].values[4], s("100.00"));
    assert_eq!(rows[9_999].values[5], s(last_e));
}

/// `list_tables` (the `tables` patterns of `pipelines`): the database's own `LIKE`, `\_` a
/// literal underscore, the `exclude` patterns left out, in name order; nothing matched is an
/// empty list, not an error.
pub fn tables_are_listed_by_the_databases_own_like(db: &Db) {
    let base = unique("lt");
    let names: Vec<String> = ["b", "a", "tmp_1", "ab"]
        .iter()
        .map(|n| format!("{base}_{n}"))
        .collect();
    let _guards: Vec<TableGuard> = names.iter().map(|n| TableGuard::new(db, n)).collect();
    for name in &names {
        db.create_filled(name, 1);
    }
    // Not matched: `_` escaped is no wildcard.
    let decoy = format!("{base}Xq");
    let _decoy = TableGuard::new(db, &decoy);
    db.create_filled(&decoy, 1);
    let spec = spec(&db.uri(), "unused", "id", None);
    let like = format!("{}\\_%", base.replace('_', "\\_"));
    let exclude = [format!("{}\\_tmp%", base.replace('_', "\\_"))];
    let listed = repliqate::source::list_tables(&spec, &like, &exclude).unwrap();
    assert_eq!(
        listed,
        [
            format!("{base}_a"),
            format!("{base}_ab"),
            format!("{base}_b")
        ],
        "{like} without {exclude:?}"
    );
    let none = repliqate::source::list_tables(&spec, &format!("{base}\\_nothing%"), &[]).unwrap();
    assert!(none.is_empty(), "{none:?}");
}
