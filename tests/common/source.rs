//! Helpers of the source tests (tests/source_*.rs and `conformance`): a [`SourceSpec`] for a
//! table, connecting with the error (or the success) the test expects, and values to compare
//! rows with.

use std::time::Duration;

use repliqate::source::{Source, SourceError, SourceSpec};
use repliqate::value::Value;

/// The spec of `table` at `uri`, keyed by `pk`, publishing `fields` (None: every column), with
/// a 10 s query and a 5 s connect timeout.
pub fn spec(uri: &str, table: &str, pk: &str, fields: Option<&[&str]>) -> SourceSpec {
    SourceSpec {
        uri: uri.to_string(),
        password: None,
        ssl_key_password: None,
        table: table.to_string(),
        primary_key: pk.to_string(),
        fields: fields.map(|f| f.iter().map(|s| s.to_string()).collect()),
        query_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
    }
}

/// Connects; panics with the error if it fails.
pub fn connect(s: &SourceSpec) -> Source {
    Source::connect(s).unwrap_or_else(|e| panic!("connect: {e}"))
}

/// The error connecting gives; panics if it succeeds.
pub fn connect_err(s: &SourceSpec) -> SourceError {
    match Source::connect(s) {
        Ok(_) => panic!("connect to {} succeeded, expected an error", s.table),
        Err(e) => e,
    }
}

/// A string value.
pub fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

/// A JSON value, from its text.
pub fn json(text: &str) -> Value {
    Value::Json(Box::new(serde_json::from_str(text).unwrap()))
}
