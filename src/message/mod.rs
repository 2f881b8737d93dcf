//! Turns a row into the Kafka message value and its checksum, byte for byte as the Python tool did.
//!
//! Consumers of the old tool verify `hash` by recomputing `json.dumps(data, sort_keys=True)` over
//! the parsed `data`, so both the message and the hashed text must match Python's `json.dumps`
//! with default arguments exactly (docs/messages.md, "Message value" and "Canonical encoding for
//! `hash`"). This module owns that encoding and nothing else: it never sees a socket or a driver.
//!
//! The encoder runs once per row at about a million rows per second, so everything that depends
//! only on the column list (escaped keys, sorted key order, separators) is computed once in
//! [`RowHasher::new`] / [`MessageEncoder::new`], and per-row work writes into reusable buffers
//! without allocating (except for the key sort of JSON-column objects that are not already
//! sorted).
//!
//! Non-finite floats (NaN, ±infinity): Python writes `NaN` / `Infinity` / `-Infinity`, which is not
//! JSON and which most consumers cannot parse. We publish `null` instead and hash `null`, so a
//! consumer that recomputes `json.dumps(parsed_data, sort_keys=True)` over what we published gets
//! our hash. (The old tool's hash of such a row could never be verified by a strict parser.)
//!
//! Its rooms, each over the ones below it (none imports this file back):
//! - this file: the public face and the message itself (`MessageEncoder`: the envelope
//!   `{timestamp, name, table, data, hash}`, and the canonical text read back from it in pieces);
//! - `canonical.rs`: `RowHasher`, the canonical text built on its own (the tests' reference), and
//!   the one-off `row_hash` / `write_canonical_data`;
//! - `layout.rs`: the column list prepared once (key orders, escaped key prefixes);
//! - `digest.rs`: the hash (digests, hex, the `"hash"` field and its placeholder, `fill_hash`);
//! - `json.rs`: the `json.dumps`-compatible writer (values, JSON documents, escaped strings);
//! - `number.rs`: integers and Python's `repr(float)`;
//! - `error.rs`: `MessageError`.

mod canonical;
mod digest;
mod error;
mod json;
mod layout;
mod number;

use sha2::{Digest, Sha256};

use crate::value::Value;
use digest::{hex, message_tail, UNHASHED};
use layout::Layout;

pub use canonical::{row_hash, write_canonical_data, RowHasher};
pub use digest::{canonical_digest, canonical_digests, fill_hash};
pub use error::MessageError;
pub use json::{write_json, write_json_str, write_value, KeyOrder};
pub use number::{write_i64, write_py_float, write_u64};

/// Builds Kafka message values for one replication job (one name, table and column list).
#[derive(Debug, Clone)]
pub struct MessageEncoder {
    layout: Layout,
    /// For each distinct key (message order): where its `"key": value` sits in the output of the
    /// message being written, so the hash can read it there instead of encoding it twice.
    spans: Vec<Span>,
    /// The sorted-keys encoding of a JSON column's object or array, which differs from the
    /// message's (objects keep their own order in the message).
    sorted_json: Vec<u8>,
    /// `, "name": "<name>", "table": "<table>", "data": {`
    middle: Box<[u8]>,
    /// The last timestamp, and the message's start for it: `{"timestamp": <float>` and
    /// `middle`. Callers usually stamp a whole batch with one time, and a timestamp (16-17
    /// digits) takes the slow float path.
    timestamp_bits: Option<u64>,
    head: Vec<u8>,
}

impl MessageEncoder {
    /// `columns` are the selected column names, in the order the row's values come in.
    pub fn new(name: &str, table: &str, columns: &[String]) -> MessageEncoder {
        let mut middle = Vec::new();
        middle.extend_from_slice(b", \"name\": ");
        write_json_str(&mut middle, name);
        middle.extend_from_slice(b", \"table\": ");
        write_json_str(&mut middle, table);
        middle.extend_from_slice(b", \"data\": {");
        let layout = Layout::new(columns);
        MessageEncoder {
            spans: vec![Span::default(); layout.value_index.len()],
            layout,
            sorted_json: Vec::new(),
            middle: middle.into_boxed_slice(),
            timestamp_bits: None,
            head: Vec::new(),
        }
    }

    /// Appends one message value to `out`:
    /// `{"timestamp": <float>, "name": "…", "table": "…", "data": {…}, "hash": "<hex>"}`.
    ///
    /// `timestamp` is seconds since the Unix epoch (written as Python's `repr(float)`). On error
    /// nothing is appended.
    ///
    /// Each value is encoded once, into the message; the hash then reads the canonical text
    /// (`{`, the keys in sorted order with their values, `}`) piece by piece, the values from
    /// where the message holds them, so the canonical text is never assembled.
    pub fn encode(
        &mut self,
        timestamp: f64,
        values: &[Value],
        out: &mut Vec<u8>,
    ) -> Result<(), MessageError> {
        self.write_message(timestamp, values, out)?;
        let mut sha = Sha256::new();
        self.canonical_pieces(values, out, |piece| sha.update(piece));
        out.extend_from_slice(&message_tail(&hex(&sha.finalize().into())));
        Ok(())
    }

    /// [`MessageEncoder::encode`] with the hash left for later, to hash several rows at once:
    /// appends the message to `out` with a placeholder where its hash goes, and the row's
    /// canonical text to `canonical`. [`fill_hash`] then writes the text's digest
    /// ([`canonical_digests`]) over the placeholder. On error nothing is appended to either.
    pub fn encode_unhashed(
        &mut self,
        timestamp: f64,
        values: &[Value],
        out: &mut Vec<u8>,
        canonical: &mut Vec<u8>,
    ) -> Result<(), MessageError> {
        self.write_message(timestamp, values, out)?;
        self.canonical_pieces(values, out, |piece| canonical.extend_from_slice(piece));
        out.extend_from_slice(&message_tail(&UNHASHED));
        Ok(())
    }

    /// Appends the message up to its last value; records where each key's `"key": value` is.
    fn write_message(
        &mut self,
        timestamp: f64,
        values: &[Value],
        out: &mut Vec<u8>,
    ) -> Result<(), MessageError> {
        let layout = &self.layout;
        layout.check(values)?;

        if self.timestamp_bits != Some(timestamp.to_bits()) {
            self.head.clear();
            self.head.extend_from_slice(b"{\"timestamp\": ");
            write_py_float(&mut self.head, timestamp);
            self.head.extend_from_slice(&self.middle);
            self.timestamp_bits = Some(timestamp.to_bits());
        }
        out.extend_from_slice(&self.head);
        for ((prefix, &i), span) in layout
            .message_prefixes
            .iter()
            .zip(&layout.value_index)
            .zip(&mut self.spans)
        {
            span.prefix = out.len();
            out.extend_from_slice(prefix);
            // `check` guarantees every value index is in range; `get` keeps this free of panics
            // anyway. (`spans` and `value_index` are built together, one entry per key.)
            if let Some(value) = values.get(i) {
                write_value(out, value, KeyOrder::AsIs);
            }
            span.end = out.len();
        }
        Ok(())
    }

    /// Hands `put` the canonical text of the row just written to `out` by `write_message`, in
    /// pieces: the values' bytes are read from the message.
    fn canonical_pieces(&mut self, values: &[Value], out: &[u8], mut put: impl FnMut(&[u8])) {
        let layout = &self.layout;
        put(b"{");
        for (n, (prefix, &d)) in layout
            .canonical_prefixes
            .iter()
            .zip(&layout.sorted)
            .enumerate()
        {
            let Span { prefix: start, end } = self.spans[d];
            match values.get(layout.value_index[d]) {
                // Objects inside a JSON column are sorted in the hashed text but keep their own
                // order in the message, so the message's bytes will not do.
                Some(v @ Value::Json(json))
                    if matches!(
                        **json,
                        serde_json::Value::Object(_) | serde_json::Value::Array(_)
                    ) =>
                {
                    put(prefix);
                    self.sorted_json.clear();
                    write_value(&mut self.sorted_json, v, KeyOrder::Sorted);
                    put(&self.sorted_json);
                }
                // `"key": value` is one piece of the message, and its `, ` before it unless the
                // key is the message's first; the canonical text wants the `, ` unless the key
                // is the first in sorted order.
                _ => match (d > 0, n > 0) {
                    (true, true) | (false, false) => put(out.get(start..end).unwrap_or_default()),
                    (true, false) => put(out.get(start + 2..end).unwrap_or_default()),
                    (false, true) => {
                        put(b", ");
                        put(out.get(start..end).unwrap_or_default());
                    }
                },
            }
        }
        put(b"}");
    }
}

/// Where one key's `"key": value` (with the `, ` before it, but for the first key) sits in the
/// message being written.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    prefix: usize,
    end: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_and_message_keeps_column_order() {
        let columns = vec!["b".to_string(), "a".to_string(), "é".to_string()];
        let json: serde_json::Value =
            serde_json::from_str(r#"{"z": [1, 2.5], "y": null}"#).expect("valid json");
        let values = vec![
            Value::Int(1),
            Value::Json(Box::new(json)),
            Value::Str("x".into()),
        ];

        let mut canonical = Vec::new();
        write_canonical_data(&mut canonical, &columns, &values).expect("row fits columns");
        assert_eq!(
            String::from_utf8_lossy(&canonical),
            r#"{"a": {"y": null, "z": [1, 2.5]}, "b": 1, "\u00e9": "x"}"#
        );

        let mut message = Vec::new();
        MessageEncoder::new("job", "t", &columns)
            .encode(1.5, &values, &mut message)
            .expect("row fits columns");
        let hash = row_hash(&columns, &values).expect("row fits columns");
        assert_eq!(
            String::from_utf8_lossy(&message),
            format!(
                r#"{{"timestamp": 1.5, "name": "job", "table": "t", "data": {{"b": 1, "a": {{"z": [1, 2.5], "y": null}}, "\u00e9": "x"}}, "hash": "{hash}"}}"#
            )
        );
    }

    #[test]
    fn message_hash_is_the_canonical_hash_for_rows_written_after_others() {
        // The hash reads values back from where the message wrote them in `out`, which holds
        // earlier messages too (a record batch): every row's hash must still be its own, and
        // every message the same bytes a fresh encoder writes alone, whatever the timestamp of
        // the row before (the message's start is kept per timestamp). A repeated column keeps
        // its first position and takes its last value.
        let columns: Vec<String> = ["kind", "id", "doc", "note", "id"].map(String::from).into();
        let rows = [
            (
                2.0,
                vec![
                    Value::Str("a \"quoted\" ünï\ncode".into()),
                    Value::Int(-7),
                    Value::Json(Box::new(
                        serde_json::from_str(
                            r#"{"z": {"b": 1, "a": [{"d": 2, "c": 3}]}, "y": "é"}"#,
                        )
                        .expect("valid json"),
                    )),
                    Value::Str("x".repeat(100)),
                    Value::Int(8),
                ],
            ),
            (
                2.5,
                vec![
                    Value::Null,
                    Value::Float(0.1),
                    Value::Json(Box::new(serde_json::json!("a plain json string"))),
                    Value::Str(String::new()),
                    Value::Str("last".into()),
                ],
            ),
            (
                2.5,
                vec![
                    Value::Str("😀".repeat(20)),
                    Value::UInt(u64::MAX),
                    Value::Json(Box::new(serde_json::json!([{"b": 1, "a": 2}]))),
                    Value::Bool(true),
                    Value::Int(1),
                ],
            ),
        ];
        let mut encoder = MessageEncoder::new("job", "t", &columns);
        let mut out = b"bytes of earlier records".to_vec();
        for (timestamp, row) in &rows {
            let start = out.len();
            encoder
                .encode(*timestamp, row, &mut out)
                .expect("row fits columns");
            let mut alone = Vec::new();
            MessageEncoder::new("job", "t", &columns)
                .encode(*timestamp, row, &mut alone)
                .expect("row fits columns");
            assert_eq!(
                String::from_utf8_lossy(&out[start..]),
                String::from_utf8_lossy(&alone)
            );
            let message: serde_json::Value =
                serde_json::from_slice(&out[start..]).expect("a message is JSON");
            let hash = row_hash(&columns, row).expect("row fits columns");
            assert_eq!(message["hash"], serde_json::json!(hash), "{message}");
            assert_eq!(message["timestamp"], serde_json::json!(timestamp));
            let keys: Vec<&String> = message["data"]
                .as_object()
                .expect("data is an object")
                .keys()
                .collect();
            assert_eq!(keys, ["kind", "id", "doc", "note"], "{message}");
        }
    }

    #[test]
    fn a_message_hashed_later_is_the_message_hashed_at_once() {
        // Written with a placeholder, its canonical text hashed with three others, the hash
        // written in: the same bytes as `encode`, JSON objects (sorted only in the hashed text)
        // and a repeated column included.
        // Sorted: amount (last in the message), doc, id, kind (first in the message).
        let columns: Vec<String> = ["kind", "doc", "id", "amount", "kind"]
            .map(String::from)
            .into();
        let rows: Vec<Vec<Value>> = (0..4)
            .map(|i| {
                vec![
                    Value::Str(format!("ä \"{i}\"\n")),
                    Value::Json(Box::new(
                        serde_json::json!({"z": i, "a": [{"y": 1, "b": 2}]}),
                    )),
                    Value::Int(i),
                    Value::Float(i as f64 / 3.0),
                    Value::Str("x".repeat(i as usize * 70)),
                ]
            })
            .collect();
        let mut encoder = MessageEncoder::new("job", "t", &columns);
        let mut out = b"earlier records".to_vec();
        let mut texts: [Vec<u8>; 4] = Default::default();
        let mut spans = Vec::new();
        for (row, text) in rows.iter().zip(&mut texts) {
            let start = out.len();
            encoder
                .encode_unhashed(1.5, row, &mut out, text)
                .expect("row fits columns");
            spans.push(start..out.len());
            assert!(String::from_utf8_lossy(&out[start..]).contains(&"?".repeat(64)));
        }
        let digests = canonical_digests(texts.each_ref().map(|t| &t[..]));
        let mut hasher = RowHasher::new(&columns);
        for (((row, span), digest), text) in rows.iter().zip(spans).zip(&digests).zip(&texts) {
            // The text read back from the message is the canonical text built on its own.
            let canonical = hasher.canonical(row).expect("row fits columns");
            assert_eq!(
                String::from_utf8_lossy(text),
                String::from_utf8_lossy(canonical)
            );
            assert_eq!(*digest, canonical_digest(text));
            assert!(fill_hash(&mut out[span.clone()], digest));
            let mut at_once = Vec::new();
            MessageEncoder::new("job", "t", &columns)
                .encode(1.5, row, &mut at_once)
                .expect("row fits columns");
            assert_eq!(
                String::from_utf8_lossy(&out[span.clone()]),
                String::from_utf8_lossy(&at_once)
            );
            // A message with its hash already, or anything else, is left alone.
            assert!(!fill_hash(&mut out[span.clone()], digest));
            assert!(!fill_hash(&mut out[span.start..span.start + 50], digest));
        }
    }

    #[test]
    fn repeated_column_keeps_first_position_and_last_value_like_a_dict() {
        let columns = vec!["x".to_string(), "a".to_string(), "x".to_string()];
        let values = vec![Value::Int(1), Value::Int(2), Value::Int(3)];
        let mut message = Vec::new();
        MessageEncoder::new("n", "t", &columns)
            .encode(0.0, &values, &mut message)
            .expect("row fits columns");
        let text = String::from_utf8_lossy(&message);
        assert!(text.contains(r#""data": {"x": 3, "a": 2}"#), "{text}");
    }

    #[test]
    fn wrong_value_count_is_an_error_and_writes_nothing() {
        let columns = vec!["a".to_string(), "b".to_string()];
        let mut out = Vec::new();
        let err = MessageEncoder::new("n", "t", &columns)
            .encode(0.0, &[Value::Null], &mut out)
            .expect_err("one value for two columns");
        assert_eq!(
            err,
            MessageError::ColumnCountMismatch {
                columns: 2,
                values: 1
            }
        );
        assert!(!err.is_retriable());
        assert!(out.is_empty());
    }
}
