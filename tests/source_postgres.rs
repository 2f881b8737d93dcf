//! PostgreSQL source against a real server (REPLIQATE_TEST_PG_URI): the conformance tests every
//! server source passes (names, start-up errors, credentials, timeouts, a large fetch: see
//! common/conformance.rs), and PostgreSQL's own: every supported column type with edge values,
//! pagination by an int4 key, arrays, the types published as their text form, a
//! missing database, a session ended by the server.
#![cfg(feature = "postgres")]

mod common;

use common::conformance::source_conformance_tests;
use common::db::{Db, TableGuard};
use common::env::unique;
use common::source::{connect, connect_err, json, s, spec};
use repliqate::source::Source;
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

/// Timestamps are read in the binary format and spelled as the server's ISO text would be:
/// edge values by hand (infinities, BC, year 0, the first and last representable instants,
/// leap days, before 1970 and 2000), then 40,000 instants spread over the whole range compared
/// with the server's own text of each (`::text`, re-spelled here: `T`, six fractional digits,
/// `Z` for the UTC offset, ` BC` last). A domain over timestamptz reads the same.
#[test]
fn timestamps_read_in_binary_match_the_servers_text() {
    let db = Db::Postgres;
    let table = unique("stamps");
    let domain = unique("stamp_domain");
    let _table = TableGuard::new(&db, &table).then(format!("DROP DOMAIN {domain}"));
    db.exec(&format!("CREATE DOMAIN {domain} AS timestamptz"));
    db.exec(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, ts timestamp, tz timestamptz, dz {domain})"
    ));
    let edges = [
        ("2000-01-01 00:00:00", "2000-01-01T00:00:00"),
        ("1999-12-31 23:59:59.999999", "1999-12-31T23:59:59.999999"),
        ("1969-12-31 23:59:59.5", "1969-12-31T23:59:59.500000"),
        ("2024-02-29 12:34:56.000001", "2024-02-29T12:34:56.000001"),
        ("1900-03-01 00:00:00", "1900-03-01T00:00:00"),
        ("2100-02-28 23:00:00", "2100-02-28T23:00:00"),
        ("0044-03-15 12:00:00 BC", "0044-03-15T12:00:00 BC"),
        ("0001-01-01 00:00:00 BC", "0001-01-01T00:00:00 BC"),
        (
            "0001-12-31 23:59:59.999999 BC",
            "0001-12-31T23:59:59.999999 BC",
        ),
        ("4713-01-01 00:00:00 BC", "4713-01-01T00:00:00 BC"),
        (
            "294276-12-31 23:59:59.999999",
            "294276-12-31T23:59:59.999999",
        ),
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
    ];
    for (n, (input, _)) in edges.iter().enumerate() {
        db.exec(&format!(
            "INSERT INTO {table} VALUES ({n}, '{input}', '{input}+00', '{input}+00')"
        ));
    }
    let mut src = connect(&spec(&uri(), &table, "id", None));
    let rows = src.fetch(-1, 100).expect("fetch");
    assert_eq!(rows.len(), edges.len());
    for (row, (input, expected)) in rows.iter().zip(edges) {
        let zulu = match expected {
            "infinity" | "-infinity" => expected.to_string(),
            _ => match expected.strip_suffix(" BC") {
                Some(date) => format!("{date}Z BC"),
                None => format!("{expected}Z"),
            },
        };
        assert_eq!(
            row.values[1..],
            [s(expected), s(&zulu), s(&zulu)],
            "timestamp '{input}'"
        );
    }

    // 40,000 instants from 4713 BC to 294276 AD, at odd steps so that every field varies.
    db.exec(&format!(
        "DELETE FROM {table};
         INSERT INTO {table} (id, ts, tz)
           SELECT g, t, t AT TIME ZONE 'UTC' FROM (
             SELECT g, timestamp '4713-01-01 00:00:00 BC'
                    + g * interval '7 years 5 months 3 days 13:07:11.123457' AS t
             FROM generate_series(0, 39999) g) s"
    ));
    let mut client = common::db::pg_client();
    client
        .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'")
        .expect("session settings");
    let texts: Vec<(String, String)> = client
        .query(
            &format!("SELECT ts::text, tz::text FROM {table} ORDER BY id"),
            &[],
        )
        .expect("the server's text")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // The server's ISO text as the old tool's driver published it: `T`, six fractional digits
    // (or none), `Z` for the session's UTC offset, ` BC` at the end.
    let respell = |text: &str, utc: bool| {
        let (body, bc) = match text.strip_suffix(" BC") {
            Some(b) => (b, " BC"),
            None => (text, ""),
        };
        let body = if utc {
            body.strip_suffix("+00").expect("a UTC offset")
        } else {
            body
        };
        let (date, time) = body.split_once(' ').expect("date and time");
        let time = match time.split_once('.') {
            Some((hms, fraction)) => format!("{hms}.{fraction:0<6}"),
            None => time.to_string(),
        };
        format!("{date}T{time}{}{bc}", if utc { "Z" } else { "" })
    };
    let mut after = -1;
    let mut compared = 0;
    loop {
        let rows = src.fetch(after, 10_000).expect("fetch");
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in &rows {
            let (ts, tz) = &texts[row.id as usize];
            assert_eq!(
                row.values[1..3],
                [s(&respell(ts, false)), s(&respell(tz, true))],
                "row {}: the server says {ts:?} / {tz:?}",
                row.id
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 40_000);
}

/// Arrays of every element type become JSON arrays: nested for each dimension, NULL elements as
/// null, each element by its type's rule; empty arrays as `[]`; lower bounds dropped (the
/// elements, in order). Arrays of domains and domains over arrays too; text elements that
/// would need quoting in the array's text form come through as they are.
#[test]
fn arrays_become_json_arrays() {
    let db = Db::Postgres;
    let table = unique("arrays");
    let (mood, posint, tags, pair) = (
        unique("mood"),
        unique("posint"),
        unique("tags"),
        unique("pair"),
    );
    let _table = TableGuard::new(&db, &table)
        .then(format!("DROP TYPE {mood}"))
        .then(format!("DROP DOMAIN {posint}"))
        .then(format!("DROP DOMAIN {tags}"))
        .then(format!("DROP TYPE {pair}"));
    db.exec(&format!(
        "CREATE TYPE {mood} AS ENUM ('sad', 'happy'); \
         CREATE DOMAIN {posint} AS integer CHECK (VALUE > 0); \
         CREATE DOMAIN {tags} AS text[]; \
         CREATE TYPE {pair} AS (n integer, s text)"
    ));
    let (mood_array, posint_array, tags_array, pair_array) = (
        format!("{mood}[]"),
        format!("{posint}[]"),
        format!("{tags}[]"),
        format!("{pair}[]"),
    );
    let pairs = format!(r#"ARRAY[ROW(1, 'a "q" b\')::{pair}, ROW(NULL, NULL)::{pair}]"#);
    let columns = [
        (
            "i2",
            "smallint[]",
            "ARRAY[-32768, 32767, NULL]::smallint[]",
            "[-32768, 32767, null]",
        ),
        (
            "i4",
            "integer[]",
            "'{{1,2},{3,NULL}}'",
            "[[1, 2], [3, null]]",
        ),
        (
            "i8",
            "bigint[]",
            "'[0:1]={-9223372036854775808,9223372036854775807}'",
            "[-9223372036854775808, 9223372036854775807]",
        ),
        ("o", "oid[]", "'{0,4294967295}'", "[0, 4294967295]"),
        // real 1.1 is published as 1.1 (its shortest decimal), NaN and infinities as null.
        (
            "f4",
            "real[]",
            "'{1.1,NaN,-Infinity,-0,3.4028235e38}'",
            "[1.1, null, null, -0.0, 3.4028235e38]",
        ),
        (
            "f8",
            "float8[]",
            "'{0.1,1e300,NaN,5e-324}'",
            "[0.1, 1e300, null, 5e-324]",
        ),
        ("b", "boolean[]", "'{t,f,NULL}'", "[true, false, null]"),
        (
            "t",
            "text[]",
            r#"ARRAY['a"b', 'back\slash', 'comma,', '{brace}', '}', 'NULL', NULL, 'null', '  spaced  ', E'tab\tnew\nline', 'ünï 🎉', '']"#,
            r#"["a\"b", "back\\slash", "comma,", "{brace}", "}", "NULL", null, "null", "  spaced  ", "tab\tnew\nline", "ünï 🎉", ""]"#,
        ),
        ("vc", "varchar(10)[]", "'{héllo,\"\"}'", r#"["héllo", ""]"#),
        ("c", "char(3)[]", "'{ab,abc}'", r#"["ab ", "abc"]"#),
        ("nm", "name[]", "'{nm}'", r#"["nm"]"#),
        (
            "by",
            "bytea[]",
            r"ARRAY['\x00ff00'::bytea, '\x'::bytea, NULL]",
            r#"["AP8A", "", null]"#,
        ),
        (
            "n",
            "numeric[]",
            "'{-1234567890123456789012345678.0123456789,NaN,0.10}'",
            r#"["-1234567890123456789012345678.0123456789", "NaN", "0.10"]"#,
        ),
        ("m", "money[]", "'{12.34,-0.01}'", r#"["12.34", "-0.01"]"#),
        (
            "d",
            "date[]",
            "'{2024-01-02,0001-01-01,infinity}'",
            r#"["2024-01-02", "0001-01-01", "infinity"]"#,
        ),
        (
            "tm",
            "time[]",
            "'{03:04:05.5,24:00:00}'",
            r#"["03:04:05.500000", "24:00:00"]"#,
        ),
        ("ttz", "timetz[]", "'{03:04:05+02}'", r#"["03:04:05+02"]"#),
        (
            "ts",
            "timestamp[]",
            "'{\"2024-01-02 03:04:05.123456\",\"2024-01-02 03:04:05\"}'",
            r#"["2024-01-02T03:04:05.123456", "2024-01-02T03:04:05"]"#,
        ),
        (
            "tstz",
            "timestamptz[]",
            "'{\"2024-01-02 03:04:05.5+02\"}'",
            r#"["2024-01-02T01:04:05.500000Z"]"#,
        ),
        (
            "iv",
            "interval[]",
            "'{\"1 day 02:03:04\",\"-1 mons\"}'",
            r#"["1 day 02:03:04", "-1 mons"]"#,
        ),
        (
            "j",
            "json[]",
            r#"ARRAY['{"b": 1, "a": [1, 2.5, null]}'::json, '"s"', 'null', NULL]"#,
            r#"[{"b": 1, "a": [1, 2.5, null]}, "s", null, null]"#,
        ),
        (
            "jb",
            "jsonb[]",
            r#"ARRAY['{"b": 1, "a": 2}'::jsonb]"#,
            r#"[{"a": 2, "b": 1}]"#,
        ),
        (
            "u",
            "uuid[]",
            "'{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'",
            r#"["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]"#,
        ),
        (
            "e",
            mood_array.as_str(),
            "'{happy,sad}'",
            r#"["happy", "sad"]"#,
        ),
        (
            "ip",
            "inet[]",
            "'{192.168.0.1/24,192.168.0.1,::1,::ffff:1.2.3.4/128}'",
            r#"["192.168.0.1/24", "192.168.0.1", "::1", "::ffff:1.2.3.4"]"#,
        ),
        (
            "net",
            "cidr[]",
            "'{10.0.0.0/8,::/0}'",
            r#"["10.0.0.0/8", "::/0"]"#,
        ),
        (
            "mac",
            "macaddr[]",
            "'{08:00:2B:01:02:03}'",
            r#"["08:00:2b:01:02:03"]"#,
        ),
        ("bits", "bit(4)[]", "'{1010,0000}'", r#"["1010", "0000"]"#),
        ("pos", posint_array.as_str(), "'{1,2}'", "[1, 2]"),
        ("tg", tags.as_str(), "'{a,\"b c\"}'", r#"["a", "b c"]"#),
        // An array of a domain over an array: each element's text form.
        (
            "tgs",
            tags_array.as_str(),
            r#"'{"{a,b}","{c}"}'"#,
            r#"["{a,b}", "{c}"]"#,
        ),
        (
            "r",
            "int4range[]",
            "'{\"[1,5]\",empty}'",
            r#"["[1,6)", "empty"]"#,
        ),
        ("pt", "point[]", "'{\"(1.5,-2)\"}'", r#"["(1.5,-2)"]"#),
        // box's array delimiter is `;`.
        (
            "bx",
            "box[]",
            "'{(0,0),(2,2);(1,1),(0,0)}'",
            r#"["(2,2),(0,0)", "(1,1),(0,0)"]"#,
        ),
        (
            "pr",
            pair_array.as_str(),
            pairs.as_str(),
            r#"["(1,\"a \"\"q\"\" b\\\\\")", "(,)"]"#,
        ),
    ];
    let columns: Vec<TypedColumn> = columns
        .into_iter()
        .map(|(name, ty, literal, want)| (name, ty, literal, json(want)))
        .collect();
    let (src, rows) = typed_table(
        &table,
        &columns,
        &format!(
            "INSERT INTO {table} (id, i2, i4, i8, t, f8, j) VALUES (2, '{{}}', \
                 '{{{{{{1}},{{2}}}},{{{{3}},{{4}}}}}}', '[-5:-4]={{1,2}}', \
                 '{{{{a,b}},{{\"c\",NULL}}}}', '{{}}', '{{}}')"
        ),
    );
    assert_eq!(rows.len(), 3);
    let second: Vec<(&str, Value)> = src.columns()[1..]
        .iter()
        .map(String::as_str)
        .zip(rows[1].values[1..].iter().cloned())
        .filter(|(_, v)| *v != Value::Null)
        .collect();
    assert_eq!(
        second,
        [
            ("i2", json("[]")),
            ("i4", json("[[[1], [2]], [[3], [4]]]")),
            ("i8", json("[1, 2]")),
            ("f8", json("[]")),
            ("t", json(r#"[["a", "b"], ["c", null]]"#)),
            ("j", json("[]")),
        ]
    );
    // json[] elements keep the document's key order (jsonb its own).
    let Value::Json(j) = &rows[0].values[21] else {
        panic!("json[] column")
    };
    assert_eq!(j[0].to_string(), r#"{"b":1,"a":[1,2.5,null]}"#);
}

/// Ranges, multiranges, composites, geometric types, text search types and the other types
/// without a rule of their own are published as their PostgreSQL text form, under the session
/// settings that fix it (UTC, ISO dates, shortest exact floats, hex bytea); hstore as the object
/// psycopg2 made of it. Nothing is refused.
#[test]
fn other_types_publish_their_text_form() {
    let db = Db::Postgres;
    let table = unique("textforms");
    let pair = unique("pair");
    let _table = TableGuard::new(&db, &table).then(format!("DROP TYPE {pair}"));
    // Trusted since PostgreSQL 13: a database owner may create it. Left in place for other
    // runs (dropping it could pull it from under a test running in parallel).
    db.exec("CREATE EXTENSION IF NOT EXISTS hstore");
    db.exec(&format!(
        "CREATE TYPE {pair} AS (n integer, f float8, b bytea, t timestamptz, s text)"
    ));
    let columns = [
        ("r4", "int4range", "'[1,5]'", "[1,6)"),
        ("r8", "int8range", "'(,10)'", "(,10)"),
        ("rn", "numrange", "'(0.10,5.5]'", "(0.10,5.5]"),
        (
            "rts",
            "tsrange",
            "'[2024-01-02 03:04:05,)'",
            r#"["2024-01-02 03:04:05",)"#,
        ),
        (
            "rtz",
            "tstzrange",
            "'[2024-01-02 03:04:05+02,2024-01-03)'",
            r#"["2024-01-02 01:04:05+00","2024-01-03 00:00:00+00")"#,
        ),
        (
            "rd",
            "daterange",
            "'[2024-01-01,2024-01-31]'",
            "[2024-01-01,2024-02-01)",
        ),
        ("re", "int4range", "'empty'", "empty"),
        (
            "mr",
            "int4multirange",
            "'{[1,3),[2,7),[9,10)}'",
            "{[1,7),[9,10)}",
        ),
        (
            "cmp",
            pair.as_str(),
            r#"ROW(1, 0.1, '\x00ff', '2024-01-02 03:04:05+02', 'a "q", b\')"#,
            r#"(1,0.1,"\\x00ff","2024-01-02 01:04:05+00","a ""q"", b\\")"#,
        ),
        ("pt", "point", "'(1e300,0.1)'", "(1e+300,0.1)"),
        ("ln", "line", "'{1,-1,0}'", "{1,-1,0}"),
        ("ls", "lseg", "'[(0,0),(1,1)]'", "[(0,0),(1,1)]"),
        ("bx", "box", "'(0,0),(2,2)'", "(2,2),(0,0)"),
        ("pc", "path", "'((0,0),(1,1))'", "((0,0),(1,1))"),
        ("po", "path", "'[(0,0),(1,1)]'", "[(0,0),(1,1)]"),
        (
            "pg",
            "polygon",
            "'((0,0),(1,0),(1,1))'",
            "((0,0),(1,0),(1,1))",
        ),
        ("ci", "circle", "'<(0,0),1.5>'", "<(0,0),1.5>"),
        (
            "tv",
            "tsvector",
            "'a fat cat sat on a mat'",
            "'a' 'cat' 'fat' 'mat' 'on' 'sat'",
        ),
        (
            "tq",
            "tsquery",
            "'fat & (rat | !cat)'",
            "'fat' & ( 'rat' | !'cat' )",
        ),
        (
            "jp",
            "jsonpath",
            "'$.a[*] ? (@ > 1)'",
            r#"$."a"[*]?(@ > 1)"#,
        ),
        ("lsn", "pg_lsn", "'0/16B3748'", "0/16B3748"),
        ("x", "xml", "'<a>x</a>'", "<a>x</a>"),
        ("x8", "xid8", "'42'", "42"),
    ];
    let mut columns: Vec<TypedColumn> = columns
        .into_iter()
        .map(|(name, ty, literal, want)| (name, ty, literal, s(want)))
        .collect();
    // hstore keeps its own order: shorter keys first, then bytewise.
    let hstore = r#"{"a": null, "b": "1", "k \"q\"": "v"}"#;
    columns.extend([
        (
            "hs",
            "hstore",
            r#"'b=>1, a=>NULL, "k \"q\""=>"v"'"#,
            json(hstore),
        ),
        (
            "hsa",
            "hstore[]",
            "ARRAY['x=>1'::hstore, '']",
            json(r#"[{"x": "1"}, {}]"#),
        ),
    ]);
    let (_, rows) = typed_table(&table, &columns, "");
    assert_eq!(rows.len(), 2);
    let Value::Json(hs) = &rows[0].values[columns.len() - 1] else {
        panic!("hstore column")
    };
    assert_eq!(hs.to_string(), r#"{"a":null,"b":"1","k \"q\"":"v"}"#);
}

/// One column of a types table: name, SQL type, the SQL expression row 1 holds, and the value
/// it must be published as.
type TypedColumn<'a> = (&'a str, &'a str, &'a str, Value);

/// Creates `table` (an `id bigint` key, then `columns`) with row 1 holding each column's
/// expression, then runs `more`, then adds a row of NULLs (id 1000); fetches every row and
/// checks that row 1 holds each column's value and the last row nulls.
fn typed_table(table: &str, columns: &[TypedColumn], more: &str) -> (Source, Vec<Row>) {
    let defs: Vec<String> = columns
        .iter()
        .map(|(name, ty, _, _)| format!("{name} {ty}"))
        .collect();
    let literals: Vec<&str> = columns.iter().map(|c| c.2).collect();
    Db::Postgres.exec(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, {}); \
         INSERT INTO {table} VALUES (1, {}); {more}; \
         INSERT INTO {table} (id) VALUES (1000)",
        defs.join(", "),
        literals.join(", ")
    ));
    let mut src = connect(&spec(&uri(), table, "id", None));
    let rows = src.fetch(0, 10).expect("fetch");
    let last = rows.last().expect("rows");
    for (k, (name, ty, _, want)) in columns.iter().enumerate() {
        assert_eq!(src.columns()[k + 1], *name);
        assert_eq!(rows[0].values[k + 1], *want, "column {name} ({ty})");
        assert_eq!(last.values[k + 1], Value::Null, "column {name} ({ty})");
    }
    (src, rows)
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
