//! PostgreSQL source against a real server (REPLIQATE_TEST_PG_URI): every supported column type
//! with edge values, pagination, start-up errors, timeouts and reconnection.
#![cfg(feature = "postgres")]

#[path = "common/source_env.rs"]
mod source_env;

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use repliqate::source::{Source, SourceError, SourceSpec};
use repliqate::value::{Row, Value};
use source_env::{server_uri, spec, unique};

fn uri() -> String {
    server_uri("REPLIQATE_TEST_PG_URI")
}

/// A direct client for setting up tables; drops what it created when the test ends.
struct Db {
    client: Client,
    drops: Vec<String>,
}

impl Db {
    fn new() -> Db {
        let uri = uri();
        let client = Client::connect(&uri, NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        Db {
            client,
            drops: Vec::new(),
        }
    }
    fn exec(&mut self, sql: &str) {
        self.client
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    /// Runs `create` and remembers `drop` for the end of the test.
    fn create(&mut self, create: &str, drop: &str) {
        self.exec(create);
        self.drops.push(drop.to_string());
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for sql in self.drops.iter().rev() {
            let _ = self.client.batch_execute(sql);
        }
    }
}

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn connect(s: &SourceSpec) -> Source {
    Source::connect(s).unwrap_or_else(|e| panic!("connect: {e}"))
}

fn connect_err(s: &SourceSpec) -> SourceError {
    match Source::connect(s) {
        Ok(_) => panic!("connect to {} succeeded, expected an error", s.table),
        Err(e) => e,
    }
}

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn json(text: &str) -> Value {
    Value::Json(Box::new(serde_json::from_str(text).unwrap()))
}

#[test]
fn every_type_maps_to_its_value() {
    let mut db = Db::new();
    let table = unique("types");
    let mood = unique("mood");
    db.create(
        &format!("CREATE TYPE {mood} AS ENUM ('sad', 'happy')"),
        &format!("DROP TYPE {mood}"),
    );
    db.create(
        &format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, \
             f4 real, f8 double precision, b boolean, t text, vc varchar(10), c char(5), \
             nm name, by bytea, n numeric(38,10), nn numeric, m money, d date, tm time, \
             ttz timetz, ts timestamp, tstz timestamptz, iv interval, j json, jb jsonb, \
             u uuid, e {mood}, ip inet, net cidr, mac macaddr, bits bit(4), o oid)"
        ),
        &format!("DROP TABLE {table}"),
    );
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
    let mut db = Db::new();
    let table = unique("pages");
    db.create(
        &format!(
            "CREATE TABLE {table} (v text, n integer PRIMARY KEY);
             INSERT INTO {table} VALUES ('c', 30), ('neg', -5), ('a', 10), ('b', 20), ('d', 40)"
        ),
        &format!("DROP TABLE {table}"),
    );
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
}

#[test]
fn hostile_names_and_schemas() {
    let mut db = Db::new();
    let schema = unique("sch");
    let table = format!("we\"ird; DROP TABLE x;-- {}", unique("t"));
    db.create(
        &format!("CREATE SCHEMA {schema}"),
        &format!("DROP SCHEMA {schema} CASCADE"),
    );
    db.create(
        &format!(
            "CREATE TABLE {} (\"select\" int8 PRIMARY KEY, \"sp ace\"\"q'\" text, \"ünï 表\" text);
             INSERT INTO {} VALUES (1, 'a', 'b')",
            q(&table),
            q(&table)
        ),
        &format!("DROP TABLE {}", q(&table)),
    );
    let mut src = connect(&spec(
        &uri(),
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
    // `schema.table` for a table outside the search path.
    db.exec(&format!(
        "CREATE TABLE {schema}.inner_t (id int8 PRIMARY KEY); INSERT INTO {schema}.inner_t VALUES (7)"
    ));
    let mut src = connect(&spec(&uri(), &format!("{schema}.inner_t"), "id", None));
    assert_eq!(src.fetch(0, 10).unwrap()[0].id, 7);
}

#[test]
fn startup_errors_name_what_is_wrong() {
    let mut db = Db::new();
    let table = unique("errs");
    db.create(
        &format!(
            "CREATE TABLE {table} (id text PRIMARY KEY, n integer, tags text[], p point, \
                                   \"Name\" text)"
        ),
        &format!("DROP TABLE {table}"),
    );
    let e = connect_err(&spec(&uri(), &format!("{table}_nope"), "id", None));
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
    let e = connect_err(&spec(&uri(), &table, "id", Some(&["n"])));
    assert_eq!(
        e.to_string(),
        format!(
            "checking source table {table}: primary key id has type text; expected smallint, \
             integer or bigint"
        )
    );
    let e = connect_err(&spec(&uri(), &table, "n", Some(&["name"])));
    assert_eq!(
        e.to_string(),
        format!(
            "checking source table {table}: field name: no column named name (did you mean Name?)"
        )
    );
    let e = connect_err(&spec(&uri(), &table, "n", Some(&["tags"])));
    assert_eq!(
        e.to_string(),
        format!(
            "checking source table {table}: column tags has type text[], which cannot be \
             published (arrays are not supported)"
        )
    );
    let e = connect_err(&spec(&uri(), &table, "n", None));
    assert!(
        e.to_string().starts_with(&format!(
            "checking source table {table}: column tags has type text[]"
        )),
        "{e}"
    );
    let e = connect_err(&spec(&uri(), &table, "n", Some(&["p"])));
    assert!(
        e.to_string().starts_with(&format!(
            "checking source table {table}: column p has type point, which cannot be published; supported: "
        )),
        "{e}"
    );
    assert!(!e.is_retriable());
}

#[test]
fn bad_credentials_and_databases_are_not_retriable() {
    let good = uri();
    let wrong_pw = good.replacen(":repliqate-secret@", ":not-the-password@", 1);
    assert_ne!(
        good, wrong_pw,
        "REPLIQATE_TEST_PG_URI must carry the repliqate-secret password"
    );
    let e = connect_err(&spec(&wrong_pw, "t", "id", None));
    assert!(
        e.to_string()
            .contains("authentication failed for user repliqate"),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    assert!(!e.is_retriable());
    let no_db = format!("{}_no_such_db", good.split('?').next().unwrap_or(&good));
    let e = connect_err(&spec(&no_db, "t", "id", None));
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(!e.is_retriable());
    let e = connect_err(&spec(&format!("{good}?sslmode=require"), "t", "id", None));
    assert!(matches!(e, SourceError::BadUri(_)), "{e}");
}

#[test]
fn unreachable_server_is_retriable_and_quick() {
    let start = Instant::now();
    let e = connect_err(&spec(
        "postgresql+psycopg2://repliqate:pw@127.0.0.1:1/repliqate",
        "t",
        "id",
        None,
    ));
    assert!(e.is_retriable(), "{e}");
    assert!(
        e.to_string()
            .starts_with("connecting to postgresql at 127.0.0.1:1/repliqate: "),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn statement_timeout_is_retriable_and_a_broken_connection_is_replaced() {
    let mut db = Db::new();
    let table = unique("timeout");
    db.create(
        &format!("CREATE TABLE {table} (id int8 PRIMARY KEY); INSERT INTO {table} VALUES (1), (2)"),
        &format!("DROP TABLE {table}"),
    );
    let app = unique("repliqate_test_app");
    let mut s = spec(
        &format!("{}?application_name={app}", uri()),
        &table,
        "id",
        None,
    );
    s.query_timeout = Duration::from_millis(500);
    let mut src = connect(&s);
    assert_eq!(src.fetch(0, 10).unwrap().len(), 2);

    // A lock held elsewhere stalls the batch query until statement_timeout cancels it.
    let mut locker = Client::connect(&uri(), NoTls).unwrap();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .unwrap();
    let start = Instant::now();
    let e = src.fetch(0, 10).unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    tx.rollback().unwrap();
    assert_eq!(src.fetch(0, 10).unwrap().len(), 2);

    // The server ends our session: one retriable error, then a fresh connection works.
    db.exec(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'"
    ));
    let e = src.fetch(0, 10).unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert_eq!(src.fetch(1, 10).unwrap().len(), 1);
}

#[test]
fn ten_thousand_rows_fetch_quickly() {
    let mut db = Db::new();
    let table = unique("big");
    db.create(
        &format!(
            "CREATE TABLE {table} (id int8 PRIMARY KEY, a int4, b float8, c text, d numeric(12,2), \
                                   e timestamptz);
             INSERT INTO {table} SELECT i, i * 7, i / 3.0, 'row ' || i, i / 100.0, \
                 '2024-01-01'::timestamptz + i * interval '1 second' FROM generate_series(1, 10000) i"
        ),
        &format!("DROP TABLE {table}"),
    );
    let mut src = connect(&spec(&uri(), &table, "id", None));
    let start = Instant::now();
    let rows = src.fetch(0, 10_000).unwrap();
    let took = start.elapsed();
    assert_eq!(rows.len(), 10_000);
    assert_eq!(rows[9_999].values[3], s("row 10000"));
    assert_eq!(rows[9_999].values[4], s("100.00"));
    assert_eq!(rows[9_999].values[5], s("2024-01-01T02:46:40Z"));
    assert!(took < Duration::from_secs(2), "10,000 rows took {took:?}");
}
