//! How a MySQL value is published: each column's rule (`Kind`) from the type
//! `information_schema` gives, and the turning of a binary-protocol value into a `Value` by
//! that rule. Every type rule lives here; the catalog only says which one a column follows.

use crate::source::convert;
use crate::value::Value;

/// How one column's value is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Every integer type and YEAR.
    Int,
    Float4,
    Float8,
    /// DECIMAL: the server's exact digits.
    Decimal,
    /// Character types, ENUM, SET (and MariaDB's UUID/INET types): UTF-8 text.
    Text,
    /// GEOMETRY, POINT, LINESTRING, POLYGON, MULTI*, GEOMETRYCOLLECTION: selected as
    /// `ST_AsText(col)`, the WKT text, published as a string.
    Spatial,
    /// BINARY, VARBINARY, BLOBs: base64.
    Binary,
    Date,
    DateTime,
    /// TIMESTAMP: read in a UTC session, so written with `Z`.
    Timestamp,
    Time,
    Json,
    /// BIT(n): the bits as an unsigned integer.
    Bit,
}

pub(super) fn is_integer(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

pub(super) fn kind_of(data_type: &str) -> Option<Kind> {
    Some(match data_type {
        t if is_integer(t) => Kind::Int,
        "year" => Kind::Int,
        "float" => Kind::Float4,
        "double" | "real" => Kind::Float8,
        "decimal" | "numeric" => Kind::Decimal,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set"
        | "uuid" | "inet4" | "inet6" => Kind::Text,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Binary,
        "date" => Kind::Date,
        "datetime" => Kind::DateTime,
        "timestamp" => Kind::Timestamp,
        "time" => Kind::Time,
        "json" => Kind::Json,
        "bit" => Kind::Bit,
        // `geomcollection` is MySQL 8's DATA_TYPE for GEOMETRYCOLLECTION.
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => Kind::Spatial,
        _ => return None,
    })
}

/// Turns one binary-protocol value into its published form, in `slot` (the previous row's
/// value of the column, whose text buffer a date or time is written into). `bad_utf8` is
/// called when text had to be repaired, so the caller can warn with the row's key.
pub(super) fn convert_value(
    v: mysql::Value,
    kind: Kind,
    slot: &mut Value,
    bad_utf8: impl FnOnce(),
) {
    use mysql::Value as M;
    let text = |bytes: Vec<u8>| match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            bad_utf8();
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    *slot = match (v, kind) {
        (M::NULL, _) => Value::Null,
        (M::Int(i), _) => Value::Int(i),
        (M::UInt(u), _) => i64::try_from(u).map_or(Value::UInt(u), Value::Int),
        (M::Float(x), _) => Value::Float(convert::f32_as_python(x)),
        (M::Double(x), _) => Value::Float(x),
        (M::Bytes(b), Kind::Binary) => Value::Str(convert::base64(&b)),
        (M::Bytes(b), Kind::Bit) => {
            // BIT(n) is at most 64 bits, sent big-endian.
            let n = b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
            i64::try_from(n).map_or(Value::UInt(n), Value::Int)
        }
        (M::Bytes(b), Kind::Json) => {
            let s = text(b);
            match serde_json::from_str(&s) {
                Ok(j) => Value::Json(Box::new(j)),
                // The server checked it is JSON; only numbers beyond f64 fail here.
                Err(_) => Value::Str(s),
            }
        }
        (M::Bytes(b), _) => Value::Str(text(b)),
        (M::Date(y, mo, d, h, mi, s, us), kind) => {
            let mut out = take_text(slot);
            let time = (kind != Kind::Date).then_some((h, mi, s, us));
            convert::mysql_datetime(&mut out, (y, mo, d), time, kind == Kind::Timestamp);
            Value::Str(out)
        }
        (M::Time(negative, days, h, mi, s, us), _) => {
            let mut out = take_text(slot);
            convert::mysql_time(&mut out, negative, (days, h, mi, s, us));
            Value::Str(out)
        }
    };
}

/// The text buffer of the previous row's value, to be written again (empty if it had none): a
/// date column's text is rewritten in place row after row, without allocating.
fn take_text(slot: &mut Value) -> String {
    match std::mem::replace(slot, Value::Null) {
        Value::Str(s) => s,
        _ => String::new(),
    }
}
