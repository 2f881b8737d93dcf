//! `log_format: json`: each log record as one JSON object on one line, for log shippers.
//!
//! The fields are `time` (RFC 3339, UTC, milliseconds), `level`, `target`, `message`, then the
//! record's structured fields (the `log` crate's key-values: `log::info!(rows = n; "…")`) under
//! their own names, numbers as JSON numbers. Ids are `i128` (`value::Id`) and are written as
//! exact integers, whatever their size. Text, the default, is env_logger's own format, which does
//! not show the structured fields (they repeat what the message says).
//!
//! In a job of several pipelines, each pipeline's thread names its pipeline (`set_pipeline`):
//! a JSON line has it as `pipeline`, a text line after the target (`format_text`).

use std::cell::RefCell;
use std::fmt::Display;
use std::io::{self, Write};

use log::kv::{self, Key, Value, VisitSource, VisitValue};
use log::Record;
use serde::ser::{SerializeMap, Serializer as _};

/// How log lines are written (`log_format` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// env_logger's `[time LEVEL target] message`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

thread_local! {
    /// The pipeline this thread runs (`table → topic`), in a job of several.
    static PIPELINE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Names the pipeline this thread runs: its log lines say which it is.
pub fn set_pipeline(pipeline: &str) {
    PIPELINE.with(|p| *p.borrow_mut() = Some(pipeline.to_owned()));
}

fn pipeline() -> Option<String> {
    PIPELINE.with(|p| p.borrow().clone())
}

/// env_logger's format function for [`LogFormat::Json`].
pub fn format_json(buf: &mut env_logger::fmt::Formatter, record: &Record) -> io::Result<()> {
    let time = buf.timestamp_millis();
    write_json(buf, &time, record)
}

/// The text format of a job of several pipelines: env_logger's `[time LEVEL target]`, then the
/// pipeline the line is about, if any, then the message. One `write_all` per line.
pub fn format_text(buf: &mut env_logger::fmt::Formatter, record: &Record) -> io::Result<()> {
    let time = buf.timestamp_seconds();
    let line = match pipeline() {
        Some(p) => format!(
            "[{time} {:<5} {}] {p}: {}\n",
            record.level(),
            record.target(),
            record.args()
        ),
        None => format!(
            "[{time} {:<5} {}] {}\n",
            record.level(),
            record.target(),
            record.args()
        ),
    };
    buf.write_all(line.as_bytes())
}

/// Writes `record` as one JSON line, in one `write_all` (so that lines of different threads never
/// interleave).
pub fn write_json(out: &mut dyn Write, time: &dyn Display, record: &Record) -> io::Result<()> {
    let mut line = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::new(&mut line);
    let mut map = serializer.serialize_map(None).map_err(io::Error::other)?;
    map.serialize_entry("time", &time.to_string())
        .and_then(|()| map.serialize_entry("level", record.level().as_str()))
        .and_then(|()| map.serialize_entry("target", record.target()))
        .and_then(|()| map.serialize_entry("message", &record.args().to_string()))
        .and_then(|()| match pipeline() {
            Some(p) => map.serialize_entry("pipeline", &p),
            None => Ok(()),
        })
        .map_err(io::Error::other)?;
    let mut fields = Fields { map: &mut map };
    record
        .key_values()
        .visit(&mut fields)
        .map_err(|e| io::Error::other(e.to_string()))?;
    map.end().map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)
}

/// Writes each key-value of a record as a map entry.
struct Fields<'m, M> {
    map: &'m mut M,
}

impl<'kvs, M: SerializeMap> VisitSource<'kvs> for Fields<'_, M> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let mut json = JsonValue(None);
        value.visit(&mut json)?;
        let result = match json.0 {
            Some(Scalar::I128(v)) => self.map.serialize_entry(key.as_str(), &v),
            Some(Scalar::U128(v)) => self.map.serialize_entry(key.as_str(), &v),
            Some(Scalar::F64(v)) => self.map.serialize_entry(key.as_str(), &v),
            Some(Scalar::Bool(v)) => self.map.serialize_entry(key.as_str(), &v),
            Some(Scalar::Str(v)) => self.map.serialize_entry(key.as_str(), &v),
            None => self.map.serialize_entry(key.as_str(), &()),
        };
        result.map_err(|_| kv::Error::msg("writing a log field as JSON"))
    }
}

/// A field's value as what JSON can say: integers of any width exactly, floats (non-finite ones
/// become `null`, as serde_json writes them), booleans, and everything else as its `Display`.
enum Scalar {
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
    Str(String),
}

struct JsonValue(Option<Scalar>);

impl<'v> VisitValue<'v> for JsonValue {
    fn visit_any(&mut self, value: Value) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::Str(value.to_string()));
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), kv::Error> {
        self.0 = None;
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::I128(value.into()));
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::I128(value.into()));
        Ok(())
    }
    fn visit_u128(&mut self, value: u128) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::U128(value));
        Ok(())
    }
    fn visit_i128(&mut self, value: i128) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::I128(value));
        Ok(())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::F64(value));
        Ok(())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::Bool(value));
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        self.0 = Some(Scalar::Str(value.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Id;
    use serde_json::{json, Value as Json};

    /// `record` with `fields`, written as a JSON line and parsed back.
    fn line(message: std::fmt::Arguments, fields: &[(&str, Value)]) -> (String, Json) {
        let mut out = Vec::new();
        let record = Record::builder()
            .args(message)
            .level(log::Level::Info)
            .target("repliqate::replicator")
            .key_values(&fields)
            .build();
        write_json(&mut out, &"2026-12-01T19:36:37.123Z", &record).unwrap();
        let text = String::from_utf8(out).unwrap();
        let parsed = serde_json::from_str(&text).unwrap();
        (text, parsed)
    }

    #[test]
    fn a_pipelines_thread_names_its_pipeline_in_each_json_line() {
        let (_, v) = line(format_args!("before"), &[]);
        assert_eq!(v.get("pipeline"), None);
        // A thread of its own: the name is the thread's.
        std::thread::spawn(|| {
            set_pipeline("orders → shop.orders");
            let (_, v) = line(format_args!("replicated"), &[]);
            assert_eq!(v["pipeline"], json!("orders → shop.orders"));
            assert_eq!(v["message"], json!("replicated"));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_record_is_one_line_with_its_fields_as_json_values() {
        let rows: usize = 3;
        let first: Id = 1;
        let (text, v) = line(
            format_args!("replicated 3 rows\n(second line)"),
            &[
                ("rows", Value::from(rows)),
                ("first_id", Value::from(first)),
                ("ok", Value::from(true)),
                ("ratio", Value::from(0.5)),
                ("component", Value::from("kafka")),
                ("shown", Value::from_display(&"a \"quoted\" word")),
            ],
        );
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
        assert_eq!(
            v,
            json!({
                "time": "2026-12-01T19:36:37.123Z",
                "level": "INFO",
                "target": "repliqate::replicator",
                "message": "replicated 3 rows\n(second line)",
                "rows": 3,
                "first_id": 1,
                "ok": true,
                "ratio": 0.5,
                "component": "kafka",
                "shown": "a \"quoted\" word",
            })
        );
        // The fields keep the order they were given in, after the fixed ones.
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[..5], ["time", "level", "target", "message", "rows"]);
    }

    #[test]
    fn ids_of_any_size_are_exact_json_integers() {
        let max = u64::MAX as Id;
        let below = i64::MIN as Id - 1;
        let (text, v) = line(
            format_args!("ids"),
            &[
                ("last_id", Value::from(max)),
                ("position", Value::from(below)),
            ],
        );
        assert!(text.contains(r#""last_id":18446744073709551615"#), "{text}");
        assert!(
            text.contains(r#""position":-9223372036854775809"#),
            "{text}"
        );
        assert_eq!(v["last_id"].as_u64(), Some(u64::MAX));
    }

    #[test]
    fn a_non_finite_float_is_null_not_invalid_json() {
        let (_, v) = line(format_args!("x"), &[("ms", Value::from(f64::NAN))]);
        assert_eq!(v["ms"], Json::Null);
    }
}
