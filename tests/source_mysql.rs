//! MySQL/MariaDB source against a real server (REPLIQATE_TEST_MYSQL_URI): every supported column
//! type with edge values, pagination including unsigned keys, start-up errors, timeouts.
#![cfg(feature = "mysql")]

#[path = "common/source_env.rs"]
mod source_env;

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts};
use repliqate::source::{Source, SourceError, SourceSpec};
use repliqate::value::{Row, Value};
use source_env::{server_uri, spec, unique};

fn uri() -> String {
    server_uri("REPLIQATE_TEST_MYSQL_URI")
}

/// A direct connection for setting up tables; drops what it created when the test ends.
struct Db {
    conn: Conn,
    drops: Vec<String>,
}

impl Db {
    fn new() -> Db {
        let opts = Opts::from_url(&uri()).unwrap_or_else(|e| panic!("test server uri: {e}"));
        let conn = Conn::new(opts).unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        Db {
            conn,
            drops: Vec::new(),
        }
    }
    fn exec(&mut self, sql: &str) {
        self.conn
            .query_drop(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    fn create(&mut self, create: &str, drop: &str) {
        self.exec(create);
        self.drops.push(drop.to_string());
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for sql in self.drops.iter().rev() {
            let _ = self.conn.query_drop(sql);
        }
    }
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
    db.create(
        &format!(
            "CREATE TABLE {table} (id BIGINT UNSIGNED PRIMARY KEY, ti TINYINT, tu TINYINT \
             UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT, iu INT UNSIGNED, bi BIGINT, \
             bu BIGINT UNSIGNED, b1 BOOLEAN, f FLOAT, d DOUBLE, `dec` DECIMAL(38,10), \
             c CHAR(5), vc VARCHAR(40), tx TEXT, bin BINARY(4), vb VARBINARY(10), bl BLOB, \
             dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), y YEAR, \
             j JSON, e ENUM('sad', 'happy'), st SET('a', 'b', 'c'), bt BIT(10)) \
             CHARACTER SET utf8mb4"
        ),
        &format!("DROP TABLE {table}"),
    );
    db.exec("SET time_zone = '+00:00'");
    db.exec(&format!(
        "INSERT INTO {table} VALUES
         (1, -128, 0, -32768, -8388608, -2147483648, 0, -9223372036854775808, 0, TRUE, 1.1, \
          -0.5, -1234567890123456789012345678.0123456789, 'ab', 'héllo 🎉', '', x'00ff', x'', \
          x'000000', '2024-01-02', '2024-01-02 03:04:05', '2024-01-02 03:04:05.123456', \
          '2024-01-02 03:04:05.5', '-838:59:59', 1901, '{{\"b\": 1, \"a\": [1, 2.5, null]}}', \
          'happy', 'c,a', b'1111111111'),
         (2, 127, 255, 32767, 8388607, 2147483647, 4294967295, 9223372036854775807, \
          18446744073709551615, FALSE, -3.5, 1e300, 0, 'abcde', 'emoji \"q\" \\\\ \\n', \
          'ünïcödé 表', x'', x'00', x'', '1000-01-01', '9999-12-31 23:59:59', \
          '2024-01-02 03:04:05', '2038-01-19 03:14:07', '838:59:59', 2155, '[]', 'sad', '', \
          b'0'),
         (18446744073709551615, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
          NULL, NULL, NULL, NULL)"
    ));
    // Zero dates exist in old MySQL data; only a lax sql_mode lets us insert one.
    db.exec("SET SESSION sql_mode = ''");
    db.exec(&format!(
        "INSERT INTO {table} (id, dt, dtm, tm) VALUES (3, '0000-00-00', '0000-00-00 00:00:00', '00:00:00.000001')"
    ));
    let mut src = connect(&spec(&uri(), &table, "id", None));
    assert_eq!(src.columns().len(), 29);
    let rows = src.fetch(0, 10).expect("fetch");
    let row1 = vec![
        Value::Int(1),
        Value::Int(-128),
        Value::Int(0),
        Value::Int(-32768),
        Value::Int(-8388608),
        Value::Int(-2147483648),
        Value::Int(0),
        Value::Int(i64::MIN),
        Value::Int(0),
        Value::Int(1),
        // FLOAT 1.1 is published as 1.1 (its shortest decimal), not 1.100000023841858.
        Value::Float(1.1),
        Value::Float(-0.5),
        s("-1234567890123456789012345678.0123456789"),
        s("ab"),
        s("héllo 🎉"),
        s(""),
        s("AP8AAA=="),
        s(""),
        s("AAAA"),
        s("2024-01-02"),
        s("2024-01-02T03:04:05"),
        s("2024-01-02T03:04:05.123456"),
        s("2024-01-02T03:04:05.500000Z"),
        s("-838:59:59"),
        Value::Int(1901),
        json(r#"{"b": 1, "a": [1, 2.5, null]}"#),
        s("happy"),
        s("a,c"),
        Value::Int(1023),
    ];
    let row2 = vec![
        Value::Int(2),
        Value::Int(127),
        Value::Int(255),
        Value::Int(32767),
        Value::Int(8388607),
        Value::Int(2147483647),
        Value::Int(4294967295),
        Value::Int(i64::MAX),
        Value::UInt(u64::MAX),
        Value::Int(0),
        Value::Float(-3.5),
        Value::Float(1e300),
        s("0.0000000000"),
        s("abcde"),
        s("emoji \"q\" \\ \n"),
        s("ünïcödé 表"),
        s("AAAAAA=="),
        s("AA=="),
        s(""),
        s("1000-01-01"),
        s("9999-12-31T23:59:59"),
        s("2024-01-02T03:04:05"),
        s("2038-01-19T03:14:07Z"),
        s("838:59:59"),
        Value::Int(2155),
        json("[]"),
        s("sad"),
        s(""),
        Value::Int(0),
    ];
    let mut row3 = vec![Value::Null; 29];
    row3[0] = Value::Int(3);
    row3[19] = s("0000-00-00");
    row3[20] = s("0000-00-00T00:00:00");
    row3[23] = s("00:00:00.000001");
    let mut row_max = vec![Value::Null; 29];
    row_max[0] = Value::UInt(u64::MAX);
    assert_eq!(rows.len(), 4);
    let expected = [
        (1, row1),
        (2, row2),
        (3, row3),
        (i128::from(u64::MAX), row_max),
    ];
    for ((id, want), got) in expected.iter().zip(&rows) {
        for (col, (g, w)) in got.values.iter().zip(want).enumerate() {
            assert_eq!(g, w, "row {id} column {}", src.columns()[col]);
        }
        assert_eq!(got.id, *id);
    }
}

#[test]
fn pages_by_key_including_unsigned_keys_above_i64() {
    let mut db = Db::new();
    let table = unique("pages");
    db.create(
        &format!(
            "CREATE TABLE {table} (v VARCHAR(10), n BIGINT UNSIGNED PRIMARY KEY);
             INSERT INTO {table} VALUES ('c', 30), ('a', 10), ('b', 20), \
                 ('big', 9223372036854775808), ('max', 18446744073709551615)"
        ),
        &format!("DROP TABLE {table}"),
    );
    let mut src = connect(&spec(&uri(), &table, "n", Some(&["v"])));
    assert_eq!(src.columns(), ["n", "v"]);
    let ids = |rows: Vec<Row>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(src.fetch(-1, 2).unwrap()), [10, 20]);
    assert_eq!(ids(src.fetch(20, 1).unwrap()), [30]);
    let i64_max = i128::from(i64::MAX);
    assert_eq!(
        ids(src.fetch(30, 10).unwrap()),
        [i64_max + 1, i128::from(u64::MAX)]
    );
    assert_eq!(
        ids(src.fetch(i64_max + 1, 10).unwrap()),
        [i128::from(u64::MAX)]
    );
    assert!(src.fetch(i128::from(u64::MAX), 10).unwrap().is_empty());
}

#[test]
fn hostile_names_and_database_prefix() {
    let mut db = Db::new();
    let table = format!("we\"ird; DROP TABLE x;--`{}", unique("t"));
    let quoted = format!("`{}`", table.replace('`', "``"));
    db.create(
        &format!(
            "CREATE TABLE {quoted} (`select` INT PRIMARY KEY, `sp ace\"q'` TEXT, `ünï 表` TEXT)"
        ),
        &format!("DROP TABLE {quoted}"),
    );
    db.exec(&format!("INSERT INTO {quoted} VALUES (1, 'a', 'b')"));
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
    // `database.table`.
    let plain = unique("plain");
    db.create(
        &format!("CREATE TABLE {plain} (id INT PRIMARY KEY); INSERT INTO {plain} VALUES (7)"),
        &format!("DROP TABLE {plain}"),
    );
    let mut src = connect(&spec(&uri(), &format!("repliqate.{plain}"), "id", None));
    assert_eq!(src.fetch(0, 10).unwrap()[0].id, 7);
}

#[test]
fn startup_errors_name_what_is_wrong() {
    let mut db = Db::new();
    let table = unique("errs");
    db.create(
        &format!("CREATE TABLE {table} (id VARCHAR(10) PRIMARY KEY, n INT, p POINT)"),
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
            "checking source table {table}: primary key id has type varchar(10); expected an \
             integer type (TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT, signed or unsigned)"
        )
    );
    let e = connect_err(&spec(&uri(), &table, "n", Some(&["nope"])));
    assert_eq!(
        e.to_string(),
        format!(
            "checking source table {table}: field nope: no column named nope (columns: id, n, p)"
        )
    );
    let e = connect_err(&spec(&uri(), &table, "n", None));
    assert!(
        e.to_string().starts_with(&format!(
            "checking source table {table}: column p has type point, which cannot be published; supported: "
        )),
        "{e}"
    );
    assert!(!e.is_retriable());
}

#[test]
fn bad_credentials_are_not_retriable() {
    let good = uri();
    let wrong_pw = good.replacen(":repliqate-secret@", ":not-the-password@", 1);
    assert_ne!(
        good, wrong_pw,
        "REPLIQATE_TEST_MYSQL_URI must carry the repliqate-secret password"
    );
    let e = connect_err(&spec(&wrong_pw, "t", "id", None));
    assert!(
        e.to_string()
            .contains("authentication failed for user repliqate"),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    assert!(!e.is_retriable());
    let e = connect_err(&spec(&format!("{good}?ssl=true"), "t", "id", None));
    assert!(matches!(e, SourceError::BadUri(_)), "{e}");
}

#[test]
fn unreachable_server_is_retriable_and_quick() {
    let start = Instant::now();
    let e = connect_err(&spec(
        "mysql+pymysql://repliqate:pw@127.0.0.1:1/repliqate",
        "t",
        "id",
        None,
    ));
    assert!(e.is_retriable(), "{e}");
    assert!(
        e.to_string()
            .starts_with("connecting to mysql at 127.0.0.1:1/repliqate: "),
        "{e}"
    );
    assert!(!e.to_string().contains("pw"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_stalled_query_times_out_retriably_and_the_next_fetch_reconnects() {
    let mut db = Db::new();
    let table = unique("timeout");
    db.create(
        &format!("CREATE TABLE {table} (id INT PRIMARY KEY); INSERT INTO {table} VALUES (1), (2)"),
        &format!("DROP TABLE {table}"),
    );
    let mut s = spec(&uri(), &table, "id", None);
    s.query_timeout = Duration::from_secs(1);
    let mut src = connect(&s);
    assert_eq!(src.fetch(0, 10).unwrap().len(), 2);
    db.exec(&format!("LOCK TABLES {table} WRITE"));
    let start = Instant::now();
    let e = src.fetch(0, 10).unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    db.exec("UNLOCK TABLES");
    assert_eq!(src.fetch(1, 10).unwrap().len(), 1);
}

#[test]
fn ten_thousand_rows_fetch_quickly() {
    let mut db = Db::new();
    let table = unique("big");
    db.create(
        &format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, a INT, b DOUBLE, c VARCHAR(20), \
                                   d DECIMAL(12,2), e DATETIME(6))"
        ),
        &format!("DROP TABLE {table}"),
    );
    // Digits cross-joined: portable to MySQL and MariaDB alike (no sequence engine, no
    // recursion limit).
    let digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL \
                  SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL \
                  SELECT 8 UNION ALL SELECT 9)";
    db.exec(&format!(
        "INSERT INTO {table} SELECT n, n * 7, n / 3, CONCAT('row ', n), n / 100, \
         '2024-01-01' + INTERVAL n SECOND FROM (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 1 \
         AS n FROM {digits} a, {digits} b, {digits} c, {digits} e) numbers"
    ));
    let mut src = connect(&spec(&uri(), &table, "id", None));
    let start = Instant::now();
    let rows = src.fetch(0, 10_000).unwrap();
    let took = start.elapsed();
    assert_eq!(rows.len(), 10_000);
    assert_eq!(rows[9_999].values[3], s("row 10000"));
    assert_eq!(rows[9_999].values[4], s("100.00"));
    assert_eq!(rows[9_999].values[5], s("2024-01-01T02:46:40"));
    assert!(took < Duration::from_secs(2), "10,000 rows took {took:?}");
}
