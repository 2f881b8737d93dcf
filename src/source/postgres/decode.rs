//! How a PostgreSQL value is read and published: each column's rule (`Kind`, and the
//! select-list expression it needs), the decoding of a fetched column into a `Value`, and
//! arrays in the binary array format. Every type rule lives here; the catalog only says which
//! one a column follows.
//!
//! Arrays are read in the binary array format (`postgres_protocol`), which carries every
//! dimension and NULL element without the quoting of the text form; elements that follow a
//! text rule arrive as `text[]` (`col::text[]`, cast element by element by the server), so each
//! element is decoded exactly as a column of its type would be.

use tokio_postgres::fallible_iterator::FallibleIterator as _;

use super::error::map_err;
use crate::source::convert::{self, Zone};
use crate::source::{set_str, Plan, SourceError};
use crate::value::Value;

/// How one column is selected and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Int2,
    Int4,
    Int8,
    /// `oid` is an unsigned 32-bit number.
    Oid,
    Float4,
    Float8,
    Bool,
    /// text, varchar, bpchar (kept with its padding, as the old driver saw it), name.
    Text,
    Bytea,
    /// json/jsonb, read as text and parsed.
    Json,
    /// `hstore` as `::json::text` (the extension's cast): an object of strings and nulls, as
    /// psycopg2's hstore support (which SQLAlchemy registers) handed it to the old tool.
    Hstore,
    /// Read as `::text`, published as that string (numeric, uuid, date, enums, ranges…).
    AsText,
    /// `money` as `::numeric::text`: exact digits without the locale's currency symbol.
    Money,
    /// `inet` through `abbrev()`: its output-function form (`::1`), where `::text` would
    /// always append the netmask (`::1/128`).
    Inet,
    /// `time`/`timetz` as text, fraction padded to six digits.
    Time,
    /// `timestamp` and `timestamptz` in the binary format (microseconds), spelled here as the
    /// text form would be (`convert::pg_timestamp`): no cast, and no date formatting for the
    /// server. In arrays, as text.
    Timestamp,
    TimestampTz,
}

/// How one column is read: a value of its kind, or an array (of any number of dimensions,
/// published as nested JSON arrays) whose elements each follow their kind's rule. In the
/// binary array format, elements of the kinds read natively arrive natively; the others arrive
/// as text, the query casting the array to `text[]` (see `Kind::array_cast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    Value(Kind),
    Array(Kind),
}

impl Kind {
    /// How a column of this kind (an array of it when `array`) is read, and the select-list
    /// expression for `col` (quoted).
    pub(super) fn plan(self, array: bool, col: String) -> (Read, String) {
        if array {
            return (Read::Array(self), format!("{col}{}", self.array_cast()));
        }
        let select = match self {
            Kind::Json | Kind::AsText | Kind::Time => format!("{col}::text"),
            Kind::Hstore => format!("{col}::json::text"),
            Kind::Money => format!("{col}::numeric::text"),
            Kind::Inet => format!("abbrev({col})"),
            _ => col,
        };
        (Read::Value(self), select)
    }

    /// The cast that brings an array of this kind to elements `element` decodes: none for
    /// the kinds read natively, else to `text[]` (through `json[]` for hstore, `numeric[]` for
    /// money, as the columns are read).
    fn array_cast(self) -> &'static str {
        match self {
            Kind::Int2
            | Kind::Int4
            | Kind::Int8
            | Kind::Oid
            | Kind::Float4
            | Kind::Float8
            | Kind::Bool
            | Kind::Text
            | Kind::Bytea => "",
            Kind::Hstore => "::json[]::text[]",
            Kind::Money => "::numeric[]::text[]",
            Kind::Json
            | Kind::AsText
            | Kind::Inet
            | Kind::Time
            | Kind::Timestamp
            | Kind::TimestampTz => "::text[]",
        }
    }
}

/// Decodes column `i` of `r` into `slot` (text reuses the slot's buffer).
pub(super) fn column(
    plan: &Plan,
    r: &tokio_postgres::Row,
    i: usize,
    read: Read,
    slot: &mut Value,
    reading: &str,
) -> Result<(), SourceError> {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    /// Column `i` of `r`, or an error saying what we were reading.
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        r: &'a tokio_postgres::Row,
        i: usize,
        reading: &str,
    ) -> Result<Option<T>, SourceError> {
        r.try_get(i).map_err(|e| map_err(reading, e))
    }
    let kind = match read {
        Read::Value(kind) => kind,
        Read::Array(kind) => {
            let mut unparsed = |e: &serde_json::Error| unparsed_json(plan, i, e);
            *slot = match get::<BinaryArray>(r, i, reading)? {
                Some(array) => Value::Json(Box::new(
                    array_json(kind, array.0, &mut unparsed).map_err(|e| {
                        SourceError::Query(format!(
                            "{reading}: column {}: the server sent an array we cannot \
                             decode: {e}",
                            plan.names[i]
                        ))
                    })?,
                )),
                None => Value::Null,
            };
            return Ok(());
        }
    };
    *slot = match kind {
        Kind::Int2 => opt(get::<i16>(r, i, reading)?, |v| Value::Int(v.into())),
        Kind::Int4 => opt(get::<i32>(r, i, reading)?, |v| Value::Int(v.into())),
        Kind::Int8 => opt(get::<i64>(r, i, reading)?, Value::Int),
        Kind::Oid => opt(get::<u32>(r, i, reading)?, |v| Value::Int(v.into())),
        Kind::Float4 => opt(get::<f32>(r, i, reading)?, |v| {
            Value::Float(convert::f32_as_python(v))
        }),
        Kind::Float8 => opt(get::<f64>(r, i, reading)?, Value::Float),
        Kind::Bool => opt(get::<bool>(r, i, reading)?, Value::Bool),
        Kind::Text | Kind::AsText | Kind::Money | Kind::Inet => {
            match get::<&str>(r, i, reading)? {
                Some(text) => set_str(slot, text),
                None => *slot = Value::Null,
            }
            return Ok(());
        }
        Kind::Bytea => opt(get::<&[u8]>(r, i, reading)?, |v| {
            Value::Str(convert::base64(v))
        }),
        Kind::Json | Kind::Hstore => {
            opt(
                get::<&str>(r, i, reading)?,
                |text| match serde_json::from_str(text) {
                    Ok(json) => Value::Json(Box::new(json)),
                    Err(e) => {
                        unparsed_json(plan, i, &e);
                        Value::Str(text.to_string())
                    }
                },
            )
        }
        Kind::Time => opt(get::<&str>(r, i, reading)?, |t| {
            Value::Str(convert::pg_time_text(t))
        }),
        Kind::Timestamp | Kind::TimestampTz => {
            let zone = if kind == Kind::Timestamp {
                Zone::Naive
            } else {
                Zone::Utc
            };
            match get::<Micros>(r, i, reading)? {
                Some(Micros(t)) => {
                    if !matches!(slot, Value::Str(_)) {
                        *slot = Value::Str(String::new());
                    }
                    if let Value::Str(text) = slot {
                        convert::pg_timestamp(text, t, zone);
                    }
                }
                None => *slot = Value::Null,
            }
            return Ok(());
        }
    };
    Ok(())
}

/// serde_json refuses numbers beyond f64 range, which PostgreSQL accepts: such a document
/// (in column `i`) is published as its text, a string, which beats stopping the replication.
fn unparsed_json(plan: &Plan, i: usize, e: &serde_json::Error) {
    log::warn!(
        "reading table {}: column {} holds JSON we cannot parse ({e}); published as a string",
        plan.table,
        plan.names[i]
    );
}

/// An array in the binary format (`array_send`: dimensions, then the elements in row-major
/// order) as nested JSON arrays, each element by the rule of its kind and NULL as null; JSON
/// elements serde_json refuses are strings, reported to `unparsed`. Lower bounds other than 1
/// (`'[0:1]={1,2}'`) are not published: the elements are, in order, as psycopg2 returned them.
fn array_json(
    elem: Kind,
    raw: &[u8],
    unparsed: &mut dyn FnMut(&serde_json::Error),
) -> Result<serde_json::Value, BoxError> {
    let array = postgres_protocol::types::array_from_sql(raw)?;
    let dims: Vec<usize> = array
        .dimensions()
        .map(|d| Ok(usize::try_from(d.len)?))
        .collect()?;
    let mut values = array.values();
    if dims.is_empty() {
        // An empty array has no dimensions at all.
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    // What PostgreSQL sends (MAXDIM is 6, and only an empty array has a zero length), so that
    // each level of `nest` takes at least one element from the wire: its depth and its loops
    // stay bounded by the message.
    if dims.len() > 6 || dims.contains(&0) {
        return Err(format!("dimensions {dims:?}").into());
    }
    let json = nest(elem, &dims, &mut values, unparsed)?;
    if values.next()?.is_some() {
        return Err("more elements than its dimensions hold".into());
    }
    Ok(json)
}

/// The next `dims[0]` elements (arrays of the next dimensions' when there are more). Vectors
/// grow as elements arrive: lengths from the wire never size an allocation.
fn nest(
    elem: Kind,
    dims: &[usize],
    values: &mut postgres_protocol::types::ArrayValues<'_>,
    unparsed: &mut dyn FnMut(&serde_json::Error),
) -> Result<serde_json::Value, BoxError> {
    let Some((&len, inner)) = dims.split_first() else {
        return Ok(serde_json::Value::Array(Vec::new()));
    };
    let mut items = Vec::new();
    for _ in 0..len {
        items.push(if inner.is_empty() {
            match values
                .next()?
                .ok_or("fewer elements than its dimensions hold")?
            {
                Some(raw) => element(elem, raw, unparsed)?,
                None => serde_json::Value::Null,
            }
        } else {
            nest(elem, inner, values, unparsed)?
        });
    }
    Ok(serde_json::Value::Array(items))
}

/// One non-NULL array element, by the rule a column of its kind follows.
fn element(
    elem: Kind,
    raw: &[u8],
    unparsed: &mut dyn FnMut(&serde_json::Error),
) -> Result<serde_json::Value, BoxError> {
    use postgres_protocol::types as wire;
    use serde_json::Value as J;
    let text = || wire::text_from_sql(raw);
    Ok(match elem {
        Kind::Int2 => wire::int2_from_sql(raw)?.into(),
        Kind::Int4 => wire::int4_from_sql(raw)?.into(),
        Kind::Int8 => wire::int8_from_sql(raw)?.into(),
        Kind::Oid => wire::oid_from_sql(raw)?.into(),
        // NaN and ±infinity have no JSON number: null, as for a float column.
        Kind::Float4 => float_json(convert::f32_as_python(wire::float4_from_sql(raw)?)),
        Kind::Float8 => float_json(wire::float8_from_sql(raw)?),
        Kind::Bool => J::Bool(wire::bool_from_sql(raw)?),
        Kind::Text | Kind::AsText | Kind::Money => J::String(text()?.to_owned()),
        Kind::Bytea => J::String(convert::base64(raw)),
        Kind::Json | Kind::Hstore => {
            let text = text()?;
            serde_json::from_str(text).unwrap_or_else(|e| {
                unparsed(&e);
                J::String(text.to_owned())
            })
        }
        Kind::Inet => J::String(convert::inet_abbrev(text()?).to_owned()),
        Kind::Time => J::String(convert::pg_time_text(text()?)),
        Kind::Timestamp => J::String(convert::pg_datetime_text(text()?, Zone::Naive)),
        Kind::TimestampTz => J::String(convert::pg_datetime_text(text()?, Zone::Utc)),
    })
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// A float as JSON: a number, or null for NaN and ±infinity (which JSON has no number for),
/// as a float column is published (src/message.rs).
fn float_json(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// A `timestamp` or `timestamptz` in the binary format: microseconds since 2000-01-01. (A
/// domain's column is described with its base type, so domains over them read the same.)
struct Micros(i64);

impl<'a> tokio_postgres::types::FromSql<'a> for Micros {
    fn from_sql(_: &tokio_postgres::types::Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        postgres_protocol::types::timestamp_from_sql(raw).map(Micros)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        // Only these: a column whose type changed under a running daemon is then an error that
        // names it, never another 8-byte value read as a date.
        matches!(
            *ty,
            tokio_postgres::types::Type::TIMESTAMP | tokio_postgres::types::Type::TIMESTAMPTZ
        )
    }
}

/// An array column's value as the wire carries it, for `array_from_sql`.
struct BinaryArray<'a>(&'a [u8]);

impl<'a> tokio_postgres::types::FromSql<'a> for BinaryArray<'a> {
    fn from_sql(_: &tokio_postgres::types::Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(BinaryArray(raw))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        matches!(ty.kind(), tokio_postgres::types::Kind::Array(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An array in `array_send`'s format, written by hand (PostgreSQL's `arrayfuncs.c`): the
    /// number of dimensions, a has-NULLs flag, the element type, a (length, lower bound) per
    /// dimension, then each element as its length (-1 for NULL) and bytes.
    fn wire(dims: &[(i32, i32)], elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((dims.len() as i32).to_be_bytes());
        b.extend(i32::from(elements.contains(&None)).to_be_bytes());
        b.extend(23u32.to_be_bytes());
        for (len, lower) in dims {
            b.extend(len.to_be_bytes());
            b.extend(lower.to_be_bytes());
        }
        for e in elements {
            match e {
                Some(bytes) => {
                    b.extend((bytes.len() as i32).to_be_bytes());
                    b.extend(*bytes);
                }
                None => b.extend((-1i32).to_be_bytes()),
            }
        }
        b
    }

    /// The array as JSON, and how many JSON elements could not be parsed.
    fn decode(kind: Kind, raw: &[u8]) -> (Result<serde_json::Value, String>, usize) {
        let mut unparsed = 0;
        let json = array_json(kind, raw, &mut |_| unparsed += 1).map_err(|e| e.to_string());
        (json, unparsed)
    }

    #[test]
    fn dimensions_nest_in_row_major_order_and_lower_bounds_are_dropped() {
        let (one, two, three) = (1i32.to_be_bytes(), 2i32.to_be_bytes(), 3i32.to_be_bytes());
        let raw = wire(
            &[(2, 0), (2, -3)],
            &[Some(&one), Some(&two), Some(&three), None],
        );
        assert_eq!(decode(Kind::Int4, &raw).0, Ok(json!([[1, 2], [3, null]])));
        assert_eq!(decode(Kind::Int4, &wire(&[], &[])).0, Ok(json!([])));
    }

    #[test]
    fn elements_follow_their_kinds_rule() {
        let f4 = [1.1f32.to_be_bytes(), f32::NAN.to_be_bytes()];
        let raw = wire(&[(2, 1)], &[Some(&f4[0]), Some(&f4[1])]);
        assert_eq!(decode(Kind::Float4, &raw).0, Ok(json!([1.1, null])));
        let raw = wire(&[(2, 1)], &[Some(b"\x00\xff"), Some(b"")]);
        assert_eq!(decode(Kind::Bytea, &raw).0, Ok(json!(["AP8=", ""])));
        let raw = wire(&[(1, 1)], &[Some(b"2024-01-02 03:04:05.5+00")]);
        assert_eq!(
            decode(Kind::TimestampTz, &raw).0,
            Ok(json!(["2024-01-02T03:04:05.500000Z"]))
        );
        // serde_json refuses numbers beyond f64; that element is published as its text.
        let raw = wire(&[(2, 1)], &[Some(br#"{"b": [1]}"#), Some(b"1e400")]);
        assert_eq!(
            decode(Kind::Json, &raw),
            (Ok(json!([{"b": [1]}, "1e400"])), 1)
        );
    }

    #[test]
    fn malformed_arrays_are_errors_not_panics() {
        let one = 1i32.to_be_bytes();
        let good = wire(&[(2, 1), (1, 1)], &[Some(&one), None]);
        assert!(decode(Kind::Int4, &good).0.is_ok());
        for cut in 0..good.len() {
            assert!(decode(Kind::Int4, &good[..cut]).0.is_err(), "cut at {cut}");
        }
        let bad = [
            // one element more than the dimensions hold
            wire(&[(1, 1)], &[Some(&one), Some(&one)]),
            // seven dimensions (PostgreSQL allows six)
            wire(&[(1, 1); 7], &[Some(&one)]),
            // a zero-length dimension in a non-empty array
            wire(&[(2, 1), (0, 1)], &[]),
            // a negative length
            wire(&[(-1, 1)], &[]),
            // an int4 of two bytes
            wire(&[(1, 1)], &[Some(&[0, 1])]),
        ];
        for raw in &bad {
            assert!(decode(Kind::Int4, raw).0.is_err(), "{raw:?}");
        }
        let raw = wire(&[(1, 1)], &[Some(b"\xff")]);
        assert!(decode(Kind::Text, &raw).0.is_err());
    }
}
