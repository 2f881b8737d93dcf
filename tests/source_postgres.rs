//! PostgreSQL source against a real server (REPLIQATE_TEST_PG_URI): the conformance tests every
//! server source passes (names, start-up errors, credentials, timeouts, a large fetch: see
//! common/conformance.rs), and PostgreSQL's own: every supported column type with edge values,
//! pagination by an int4 key, arrays, a missing database, a session ended by the server.
#![cfg(feature = "postgres")]

mod common;

use common::conformance::source_conformance_tests;
use common::db::{Db, TableGuard};
use common::env::unique;
use common::source::{connect, connect_err, json, s, spec};
use repliqate::value::{Row, Value};

fn uri() -> String {
    Db::Postgres.uri()
}

source_conformance_tests!(Db::Postgres);

#[test]
fn every_type_maps_to_its_value() {
    let db = Db::Postgres;
    let table = unique("types");
    let mood = unique("mood");
    let _table = TableGuard::new(&db, &table).then(format!("DROP TYPE {mood}"));
    db.exec(&format!("CREATE TYPE {mood} AS ENUM ('sad', 'happy')"));
    db.exec(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, \
             f4 real, f8 double precision, b boolean, t text, vc varchar(10), c char(5), \
             nm name, by bytea, n numeric(38,10), nn numeric, m money, d date, tm time, \
             ttz timetz, ts timestamp, tstz timestamptz, iv interval, j json, jb jsonb, \
             u uuid, e {mood}, ip inet, net cidr, mac macaddr, bits bit(4), o oid)"
    ));
    db.exec(&format!(
        "INSERT INTO {table} VALUES
         (1, -32768, -2147483648, -9223372036854775808, 1.1, -0.5, true, '', 'héllo', 'ab', \
          'nm', '\\x00ff00', -1234567890123456789012345678.0123456789, 'NaN', 12.34, \
          '2024-01-02', '03:04:05.123456', '03:04:05+02', '2024-01-02 03:04:05.123456', \
          '2024-01-02 03:04:05.5+02', '1 day 02:03:04', '{{\"b\": 1, \"a\": [1, 2.5, null]}}', \
          '{{\"b\": 1, \"a\": [1, 2.5, null]}}', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', \
          'happy', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', 4294967295),
         (2, 32767, 2147483647, 9223372036854775807, 3.4028235e38, 1e300, false, \
          E'emoji 🎉 \"q\" \\\\ \\n', '', 'abcde', '', '', 0, 'Infinity', -0.01, '0001-01-01', \
          '23:59:59', '00:00:00-05:30', '2024-01-02 03:04:05', '2024-01-02 03:04:05+00', \
          '-1 mons', '\"just a string\"', '[]', '00000000-0000-0000-0000-000000000000', 'sad', \
          '::1', '::/0', 'ff:ff:ff:ff:ff:ff', B'0000', 0),
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
          NULL, NULL)"
    ));
    let mut src = connect(&spec(&uri(), &table, "id", None));
    assert_eq!(src.columns().len(), 30);
    let rows = src.fetch(0, 10).expect("fetch");
    let row1 = vec![
        Value::Int(1),
        Value::Int(-32768),
        Value::Int(-2147483648),
        Value::Int(i64::MIN),
        // real 1.1 is published as 1.1 (its shortest decimal), not 1.100000023841858.
        Value::Float(1.1),
        Value::Float(-0.5),
        Value::Bool(true),
        s(""),
        s("héllo"),
        s("ab   "),
        s("nm"),
        s("AP8A"),
        s("-1234567890123456789012345678.0123456789"),
        s("NaN"),
        s("12.34"),
        s("2024-01-02"),
        s("03:04:05.123456"),
        s("03:04:05+02"),
        s("2024-01-02T03:04:05.123456"),
        s("2024-01-02T01:04:05.500000Z"),
        s("1 day 02:03:04"),
        json(r#"{"b": 1, "a": [1, 2.5, null]}"#),
        json(r#"{"a": [1, 2.5, null], "b": 1}"#),
        s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        s("happy"),
        s("192.168.0.1/24"),
        s("10.0.0.0/8"),
        s("08:00:2b:01:02:03"),
        s("1010"),
        Value::Int(4294967295),
    ];
    let row2 = vec![
        Value::Int(2),
        Value::Int(32767),
        Value::Int(2147483647),
        Value::Int(i64::MAX),
        Value::Float(3.4028235e38),
        Value::Float(1e300),
        Value::Bool(false),
        s("emoji 🎉 \"q\" \\ \n"),
        s(""),
        s("abcde"),
        s(""),
        s(""),
        s("0.0000000000"),
        s("Infinity"),
        s("-0.01"),
        s("0001-01-01"),
        s("23:59:59"),
        s("00:00:00-05:30"),
        s("2024-01-02T03:04:05"),
        s("2024-01-02T03:04:05Z"),
        s("-1 mons"),
        json(r#""just a string""#),
        json("[]"),
        s("00000000-0000-0000-0000-000000000000"),
        s("sad"),
        s("::1"),
        s("::/0"),
        s("ff:ff:ff:ff:ff:ff"),
        s("0000"),
        Value::Int(0),
    ];
    let mut row3 = vec![Value::Null; 30];
    row3[0] = Value::Int(3);
    assert_eq!(rows.len(), 3);
    for (i, expected) in [row1, row2, row3].into_iter().enumerate() {
        for (col, (got, want)) in rows[i].values.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "row {} column {}", i + 1, src.columns()[col]);
        }
        assert_eq!(rows[i].id, i as i128 + 1);
    }
    // json keeps the document's key order, jsonb its own (shorter keys first).
    let Value::Json(j) = &rows[0].values[21] else {
        panic!("json column")
    };
    assert_eq!(j.to_string(), r#"{"b":1,"a":[1,2.5,null]}"#);
}

#[test]
fn pages_by_key_with_int4_key_and_fields() {
    let db = Db::Postgres;
    let table = unique("pages");
    let _table = TableGuard::new(&db, &table);
    db.exec(&format!(
        "CREATE TABLE {table} (v text, n integer PRIMARY KEY);
         INSERT INTO {table} VALUES ('c', 30), ('neg', -5), ('a', 10), ('b', 20), ('d', 40)"
    ));
    let mut src = connect(&spec(&uri(), &table, "n", Some(&["v"])));
    assert_eq!(src.columns(), ["n", "v"]);
    let ids = |rows: Vec<Row>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(src.fetch(-1000, 2).unwrap()), [-5, 10]);
    assert_eq!(ids(src.fetch(10, 2).unwrap()), [20, 30]);
    assert_eq!(ids(src.fetch(30, 2).unwrap()), [40]);
    assert!(src.fetch(40, 2).unwrap().is_empty());
    assert!(src.fetch(i128::from(u64::MAX), 2).unwrap().is_empty());
    assert_eq!(
        src.fetch(25, 1).unwrap()[0].values,
        [Value::Int(30), s("c")]
    );
    assert_eq!(src.max_id().unwrap(), Some(40));
    // pg_class.reltuples is -1 until the table is first analyzed: unknown, not zero.
    let estimate = src.estimated_rows().unwrap();
    assert_eq!((estimate.rows, estimate.exact), (None, false));
    db.exec(&format!("ANALYZE {table}"));
    assert_eq!(src.estimated_rows().unwrap().rows, Some(5));
    db.exec(&format!("DELETE FROM {table}"));
    assert_eq!(src.max_id().unwrap(), None);
}

/// Arrays are refused at start-up, named as such (the conformance tests cover the other
/// start-up errors).
#[test]
fn array_columns_cannot_be_published() {
    let db = Db::Postgres;
    let table = unique("arrays");
    let _table = TableGuard::new(&db, &table);
    db.exec(&format!(
        "CREATE TABLE {table} (id int8 PRIMARY KEY, n integer, tags text[])"
    ));
    let e = connect_err(&spec(&uri(), &table, "id", Some(&["tags"])));
    assert_eq!(
        e.to_string(),
        format!(
            "checking source table {table}: column tags has type text[], which cannot be \
             published (arrays are not supported)"
        )
    );
    let e = connect_err(&spec(&uri(), &table, "id", None));
    assert!(
        e.to_string().starts_with(&format!(
            "checking source table {table}: column tags has type text[]"
        )),
        "{e}"
    );
    assert!(!e.is_retriable());
}

#[test]
fn a_missing_database_is_not_retriable() {
    let good = uri();
    let no_db = format!("{}_no_such_db", good.split('?').next().unwrap_or(&good));
    let e = connect_err(&spec(&no_db, "t", "id", None));
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(!e.is_retriable());
}

/// The server ends our session: one retriable error, then a fresh connection works.
#[test]
fn a_session_ended_by_the_server_is_replaced() {
    let db = Db::Postgres;
    let table = unique("terminated");
    let _table = TableGuard::new(&db, &table);
    db.exec(&format!(
        "CREATE TABLE {table} (id int8 PRIMARY KEY); INSERT INTO {table} VALUES (1), (2)"
    ));
    let app = unique("repliqate_test_app");
    let mut src = connect(&spec(
        &format!("{}?application_name={app}", uri()),
        &table,
        "id",
        None,
    ));
    assert_eq!(src.fetch(0, 10).unwrap().len(), 2);
    db.exec(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'"
    ));
    let e = src.fetch(0, 10).unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert_eq!(src.fetch(1, 10).unwrap().len(), 1);
}
