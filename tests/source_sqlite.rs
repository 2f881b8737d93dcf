//! SQLite source against real database files in the temp directory: the conformance tests every
//! backend passes (names, start-up errors, a large fetch: see common/conformance.rs), and
//! SQLite's own: value mapping of every storage class, pagination, start-up errors and
//! read-only access next to a writer.
#![cfg(feature = "sqlite")]

mod common;

use common::conformance::source_conformance_tests;
use common::db::{sqlite_db, Db};
use common::env::unique;
use common::source::{connect, connect_err, s, spec};
use repliqate::source::SourceError;
use repliqate::value::{Row, Value};
use rusqlite::Connection;

source_conformance_tests!(sqlite);

#[test]
fn every_storage_class_maps_to_its_value() {
    let (_dir, db) = sqlite_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, \
                         d DECIMAL(38,10), ts TIMESTAMP, anything);
         INSERT INTO t VALUES (1, -9223372036854775808, -1.5, '', x'', 0.1, '2024-01-02 03:04:05', NULL);
         INSERT INTO t VALUES (2, 9223372036854775807, 1e300, 'héllo 🎉 \"q\" \\', x'00ff0001', \
                               '12345678901234567890.0123456789', '2024-01-02T03:04:05.123456', 7);
         INSERT INTO t VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, 'text in untyped');
         INSERT INTO t VALUES (4, 0, 0.0, CAST(x'41ff42' AS TEXT), x'000000', 3, NULL, x'01');",
    );
    let mut src = connect(&spec(&db.uri(), "t", "id", None));
    assert_eq!(
        src.columns(),
        ["id", "i", "r", "t", "b", "d", "ts", "anything"]
    );
    let rows = src.fetch(0, 100).expect("fetch");
    let expected = vec![
        Row {
            id: 1,
            values: vec![
                Value::Int(1),
                Value::Int(i64::MIN),
                Value::Float(-1.5),
                s(""),
                s(""),
                Value::Float(0.1),
                s("2024-01-02 03:04:05"),
                Value::Null,
            ],
        },
        Row {
            id: 2,
            values: vec![
                Value::Int(2),
                Value::Int(i64::MAX),
                Value::Float(1e300),
                s("héllo 🎉 \"q\" \\"),
                s("AP8AAQ=="),
                // NUMERIC affinity stores a number it cannot hold exactly as REAL; SQLite
                // has no exact decimal type, so this is what the file contains.
                Value::Float(1.2345678901234567e19),
                s("2024-01-02T03:04:05.123456"),
                Value::Int(7),
            ],
        },
        Row {
            id: 3,
            values: vec![
                Value::Int(3),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                s("text in untyped"),
            ],
        },
        Row {
            id: 4,
            values: vec![
                Value::Int(4),
                Value::Int(0),
                Value::Float(0.0),
                // Invalid UTF-8 is replaced, not fatal.
                s("A\u{fffd}B"),
                s("AAAA"),
                Value::Int(3),
                Value::Null,
                s("AQ=="),
            ],
        },
    ];
    assert_eq!(rows, expected);
}

#[test]
fn pages_by_key_in_key_order() {
    // Inserted out of order, with gaps and a negative key.
    let (_dir, db) = sqlite_db(
        "CREATE TABLE ev (n BIGINT PRIMARY KEY, v TEXT);
         INSERT INTO ev VALUES (30, 'c'), (-5, 'neg'), (10, 'a'), (20, 'b'), (40, 'd');",
    );
    let mut src = connect(&spec(&db.uri(), "ev", "n", Some(&["v"])));
    assert_eq!(src.columns(), ["n", "v"]);
    let ids = |rows: Vec<Row>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(src.fetch(i128::from(i64::MIN) - 10, 2).unwrap()),
        [-5, 10]
    );
    assert_eq!(ids(src.fetch(10, 2).unwrap()), [20, 30]);
    assert_eq!(ids(src.fetch(30, 2).unwrap()), [40]);
    assert_eq!(ids(src.fetch(40, 2).unwrap()), Vec::<i128>::new());
    assert_eq!(
        ids(src.fetch(i128::from(u64::MAX), 2).unwrap()),
        Vec::<i128>::new()
    );
    let rows = src.fetch(25, 1).unwrap();
    assert_eq!(rows[0].values, [Value::Int(30), s("c")]);
    assert_eq!(src.max_id().unwrap(), Some(40));
    let count = src.estimated_rows().unwrap();
    assert_eq!((count.rows, count.exact), (Some(5), true));
}

#[test]
fn an_empty_table_has_no_highest_id() {
    let (_dir, db) = sqlite_db("CREATE TABLE ev (n INTEGER PRIMARY KEY, v TEXT);");
    let mut src = connect(&spec(&db.uri(), "ev", "n", None));
    assert_eq!(src.max_id().unwrap(), None);
    assert_eq!(src.estimated_rows().unwrap().rows, Some(0));
}

#[test]
fn fields_order_and_rowid_key() {
    let (_dir, db) = sqlite_db(
        "CREATE TABLE p (pid INT, name TEXT, user TEXT);
         INSERT INTO p VALUES (11, 'init', 'root'), (12, 'sh', 'me');",
    );
    let mut src = connect(&spec(&db.uri(), "p", "rowid", Some(&["user", "pid"])));
    assert_eq!(src.columns(), ["rowid", "user", "pid"]);
    let rows = src.fetch(1, 10).unwrap();
    assert_eq!(
        rows,
        [Row {
            id: 2,
            values: vec![Value::Int(2), s("me"), Value::Int(12)]
        }]
    );
    // Without fields: the table's own columns, the rowid put first.
    let src = connect(&spec(&db.uri(), "p", "rowid", None));
    assert_eq!(src.columns(), ["rowid", "pid", "name", "user"]);
    // Column and table names are case-insensitive in SQLite; published as configured.
    let src = connect(&spec(&db.uri(), "P", "PID", Some(&["Name"])));
    assert_eq!(src.columns(), ["PID", "Name"]);
}

/// SQLite's own start-up errors, beside the conformance test's: similar tables named whatever
/// their case, in the file's order; a key declared without a type.
#[test]
fn startup_errors_name_similar_tables_in_any_case_and_untyped_keys() {
    let (_dir, db) = sqlite_db(
        "CREATE TABLE events (id TEXT PRIMARY KEY, n INTEGER, v);
         CREATE TABLE Events_archive (id INTEGER PRIMARY KEY);",
    );
    let path = db.path().display().to_string();
    let e = connect_err(&spec(&db.uri(), "event", "id", None));
    assert_eq!(
        e.to_string(),
        format!("checking source table event in {path}: no such table (similar: Events_archive, events)")
    );
    assert!(!e.is_retriable());
    let e = connect_err(&spec(&db.uri(), "events", "v", None));
    assert!(e.to_string().ends_with("primary key v is declared without a type; expected a column with integer affinity (INTEGER, INT, BIGINT…) or the rowid"), "{e}");
}

#[test]
fn missing_file_and_memory_databases_are_refused() {
    let path = std::env::temp_dir().join(unique("repliqate_no_such_file"));
    let e = connect_err(&spec(&Db::Sqlite(path.clone()).uri(), "t", "id", None));
    assert!(
        e.to_string()
            .starts_with(&format!("opening sqlite database {}: ", path.display())),
        "{e}"
    );
    assert!(!e.is_retriable());
    assert!(
        !path.exists(),
        "a read-only source must not create the file"
    );
    for uri in ["sqlite://", "sqlite:///:memory:"] {
        let e = connect_err(&spec(uri, "t", "id", None));
        assert!(matches!(e, SourceError::BadUri(_)), "{uri}: {e}");
        assert!(e.to_string().contains("in-memory"), "{e}");
    }
}

#[test]
fn reads_beside_a_wal_writer_without_writing() {
    let (_dir, db) = sqlite_db(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE w (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO w VALUES (1, 'one');",
    );
    let writer = Connection::open(db.path()).unwrap();
    let mut src = connect(&spec(&db.uri(), "w", "id", None));
    assert_eq!(src.fetch(0, 10).unwrap().len(), 1);
    writer
        .execute("INSERT INTO w VALUES (2, 'two')", [])
        .unwrap();
    let rows = src.fetch(1, 10).unwrap();
    assert_eq!(rows[0].values, [Value::Int(2), s("two")]);
    // While the writer holds an open write transaction, reads still see the last commit.
    writer
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO w VALUES (3, 'three');")
        .unwrap();
    assert_eq!(src.fetch(1, 10).unwrap().len(), 1);
    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(src.fetch(1, 10).unwrap().len(), 2);
    assert!(src.describe().contains("table w at sqlite:///"));
}

#[test]
fn text_in_an_integer_key_is_an_error_not_a_position() {
    let (_dir, db) = sqlite_db(
        "CREATE TABLE k (id INT, v TEXT);
         INSERT INTO k VALUES (1, 'a'), ('abc', 'b');",
    );
    let mut src = connect(&spec(&db.uri(), "k", "id", None));
    let e = src.fetch(0, 10).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("reading table k: primary key id holds text \"abc\", not an integer"),
        "{e}"
    );
    // Rows before the bad one are not lost: a smaller page still reads them.
    assert_eq!(src.fetch(0, 1).unwrap().len(), 1);
}
