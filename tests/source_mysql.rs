//! MySQL/MariaDB source against a real server (REPLIQATE_TEST_MYSQL_URI): the conformance tests
//! every server source passes (names, start-up errors, credentials, timeouts, a large fetch: see
//! common/conformance.rs), and MariaDB's own: every supported column type with edge values,
//! pagination including unsigned keys above i64, spatial types as WKT.
#![cfg(feature = "mysql")]

mod common;

use common::conformance::source_conformance_tests;
use common::db::{Db, TableGuard};
use common::env::unique;
use common::source::{connect, json, s, spec};
use repliqate::value::{Row, Value};

fn uri() -> String {
    Db::MariaDb.uri()
}

source_conformance_tests!(Db::MariaDb);

#[test]
fn every_type_maps_to_its_value() {
    let table = unique("types");
    let _table = TableGuard::new(&Db::MariaDb, &table);
    // One session: the time zone and sql_mode set below are the session's.
    let mut db = Db::MariaDb.connect();
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT UNSIGNED PRIMARY KEY, ti TINYINT, tu TINYINT \
             UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT, iu INT UNSIGNED, bi BIGINT, \
             bu BIGINT UNSIGNED, b1 BOOLEAN, f FLOAT, d DOUBLE, `dec` DECIMAL(38,10), \
             c CHAR(5), vc VARCHAR(40), tx TEXT, bin BINARY(4), vb VARBINARY(10), bl BLOB, \
             dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), y YEAR, \
             j JSON, e ENUM('sad', 'happy'), st SET('a', 'b', 'c'), bt BIT(10)) \
             CHARACTER SET utf8mb4"
    ));
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
    let db = Db::MariaDb;
    let table = unique("pages");
    let _table = TableGuard::new(&db, &table);
    db.exec(&format!(
        "CREATE TABLE {table} (v VARCHAR(10), n BIGINT UNSIGNED PRIMARY KEY);
         INSERT INTO {table} VALUES ('c', 30), ('a', 10), ('b', 20), \
             ('big', 9223372036854775808), ('max', 18446744073709551615)"
    ));
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
    assert_eq!(src.max_id().unwrap(), Some(i128::from(u64::MAX)));
    // InnoDB's estimate is exact once its statistics are recomputed.
    db.exec(&format!("ANALYZE TABLE {table}"));
    let estimate = src.estimated_rows().unwrap();
    assert_eq!((estimate.rows, estimate.exact), (Some(5), false));
    db.exec(&format!("DELETE FROM {table}"));
    assert_eq!(src.max_id().unwrap(), None);
}

/// Spatial columns are published as their WKT (`ST_AsText`), MariaDB's spelling: shortest exact
/// coordinates, no SRID. The same shapes under SRID 4326 read the same.
#[test]
fn spatial_types_become_wkt() {
    let db = Db::MariaDb;
    let table = unique("spatial");
    let _table = TableGuard::new(&db, &table);
    let columns = [
        ("g", "GEOMETRY", "POINT(0.1 0.3333333333333333)"),
        ("p", "POINT", "POINT(1e300 -0.00000000025)"),
        (
            "ls",
            "LINESTRING",
            "LINESTRING(0 0,123456789.12345679 -1.5,2 2)",
        ),
        (
            "pg",
            "POLYGON",
            "POLYGON((0 0,4 0,4 4,0 4,0 0),(1 1,2 1,2 2,1 1))",
        ),
        ("mp", "MULTIPOINT", "MULTIPOINT(1 1,-2 2)"),
        (
            "mls",
            "MULTILINESTRING",
            "MULTILINESTRING((0 0,1 1),(2 2,3 3))",
        ),
        (
            "mpg",
            "MULTIPOLYGON",
            "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
        ),
        (
            "gc",
            "GEOMETRYCOLLECTION",
            "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))",
        ),
        ("ge", "GEOMETRY", "GEOMETRYCOLLECTION EMPTY"),
    ];
    let defs: Vec<String> = columns
        .iter()
        .map(|(name, ty, _)| format!("{name} {ty}"))
        .collect();
    let values = |srid: u32| -> String {
        columns
            .iter()
            .map(|(_, _, wkt)| format!("ST_GeomFromText('{wkt}', {srid})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Written as the server does not spell them: exponents, a redundant digit, spaces.
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, {}, odd GEOMETRY); \
         INSERT INTO {table} VALUES (1, {}, ST_GeomFromText('POINT( 1.50  -2.5E-1 )')), \
             (2, {}, ST_GeomFromText('POINT(1 2)', 4326)), (3, {}, NULL)",
        defs.join(", "),
        values(0),
        values(4326),
        vec!["NULL"; columns.len()].join(", ")
    ));
    let mut src = connect(&spec(&uri(), &table, "id", None));
    let rows = src.fetch(0, 10).expect("fetch");
    assert_eq!(rows.len(), 3);
    for (k, (name, ty, wkt)) in columns.iter().enumerate() {
        assert_eq!(src.columns()[k + 1], *name);
        for row in &rows[..2] {
            assert_eq!(
                row.values[k + 1],
                s(wkt),
                "row {} column {name} ({ty})",
                row.id
            );
        }
        assert_eq!(rows[2].values[k + 1], Value::Null, "column {name} ({ty})");
    }
    let odd = columns.len() + 1;
    assert_eq!(
        [&rows[0].values[odd], &rows[1].values[odd]],
        [&s("POINT(1.5 -0.25)"), &s("POINT(1 2)")]
    );
}
