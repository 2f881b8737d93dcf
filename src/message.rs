//! Turns a row into the Kafka message value and its checksum, byte for byte as the Python tool did.
//!
//! Consumers of the old tool verify `hash` by recomputing `json.dumps(data, sort_keys=True)` over
//! the parsed `data`, so both the message and the hashed text must match Python's `json.dumps`
//! with default arguments exactly (COMPAT.md, "Kafka message value" and "Canonical encoding for
//! hash"). This module owns that encoding and nothing else: it never sees a socket or a driver.
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

use std::fmt;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::value::Value;

/// A row the encoder cannot turn into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The source handed over a row whose length differs from the selected column list, e.g.
    /// because the table's schema changed between column discovery and the query.
    ColumnCountMismatch { columns: usize, values: usize },
}

impl MessageError {
    /// Encoding is deterministic: the same row fails again.
    pub fn is_retriable(&self) -> bool {
        match self {
            MessageError::ColumnCountMismatch { .. } => false,
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::ColumnCountMismatch { columns, values } => write!(
                f,
                "encoding a row: got {values} values for {columns} selected columns \
                 (the row must have exactly one value per selected column)"
            ),
        }
    }
}

impl std::error::Error for MessageError {}

/// Whether objects inside a JSON column are written with sorted keys (the hash) or in their own
/// order (the published message, as Python's `json.dumps` without `sort_keys` did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    Sorted,
    AsIs,
}

/// The column list prepared once: which value each distinct key takes, in which order the keys
/// appear in the message and in the canonical text, and their escaped `"key": ` prefixes.
#[derive(Debug, Clone)]
struct Layout {
    /// Number of values a row must have.
    columns: usize,
    /// For each distinct key, in first-occurrence order: the index of its value in the row.
    /// Python builds `data` as a dict, so a repeated column name keeps its first position and
    /// takes its last value; we do the same.
    value_index: Vec<usize>,
    /// `"key": ` (preceded by `, ` except for the first), in message (first-occurrence) order.
    message_prefixes: Vec<Box<[u8]>>,
    /// Distinct-key positions (indexes into `value_index`) in sorted key order.
    sorted: Vec<usize>,
    /// `"key": ` (preceded by `, ` except for the first), aligned with `sorted`.
    canonical_prefixes: Vec<Box<[u8]>>,
}

impl Layout {
    fn new(columns: &[String]) -> Layout {
        let mut keys: Vec<&str> = Vec::new();
        let mut value_index: Vec<usize> = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            match keys.iter().position(|k| *k == column.as_str()) {
                Some(seen) => value_index[seen] = i,
                None => {
                    keys.push(column);
                    value_index.push(i);
                }
            }
        }
        // Python sorts `str` keys by code point. UTF-8 preserves code point order under bytewise
        // comparison (lead bytes grow with the code point, and a longer encoding always has a
        // larger lead byte), and Rust's `str` ordering is bytewise, so sorting `&str` gives
        // Python's order. (UTF-16 code unit order would not: U+FFFF would sort after an emoji.)
        let mut sorted: Vec<usize> = (0..keys.len()).collect();
        sorted.sort_by(|&a, &b| keys[a].cmp(keys[b]));

        let prefix = |position: usize, key: &str| -> Box<[u8]> {
            let mut p = Vec::with_capacity(key.len() + 6);
            if position > 0 {
                p.extend_from_slice(b", ");
            }
            write_json_str(&mut p, key);
            p.extend_from_slice(b": ");
            p.into_boxed_slice()
        };
        let message_prefixes = keys.iter().enumerate().map(|(n, k)| prefix(n, k)).collect();
        let canonical_prefixes = sorted
            .iter()
            .enumerate()
            .map(|(n, &d)| prefix(n, keys[d]))
            .collect();
        Layout {
            columns: columns.len(),
            value_index,
            message_prefixes,
            sorted,
            canonical_prefixes,
        }
    }

    fn check(&self, values: &[Value]) -> Result<(), MessageError> {
        if values.len() == self.columns {
            Ok(())
        } else {
            Err(MessageError::ColumnCountMismatch {
                columns: self.columns,
                values: values.len(),
            })
        }
    }
}

/// Computes the canonical encoding and SHA-256 of rows that share one column list.
///
/// Build it once per column list; [`RowHasher::hash`] then reuses its buffers for every row.
#[derive(Debug, Clone)]
pub struct RowHasher {
    layout: Layout,
    /// The canonical text of the last row.
    scratch: Vec<u8>,
    /// For each distinct key (message order): where its value's encoding sits in `scratch`, so
    /// the message can copy it instead of encoding the value twice.
    spans: Vec<(usize, usize)>,
}

impl RowHasher {
    pub fn new(columns: &[String]) -> RowHasher {
        let layout = Layout::new(columns);
        let spans = vec![(0, 0); layout.value_index.len()];
        RowHasher {
            layout,
            scratch: Vec::with_capacity(256),
            spans,
        }
    }

    /// `json.dumps(data, sort_keys=True)` for this row, valid until the next call.
    pub fn canonical(&mut self, values: &[Value]) -> Result<&[u8], MessageError> {
        self.layout.check(values)?;
        let layout = &self.layout;
        let out = &mut self.scratch;
        out.clear();
        out.push(b'{');
        for (prefix, &d) in layout.canonical_prefixes.iter().zip(&layout.sorted) {
            out.extend_from_slice(prefix);
            let start = out.len();
            // `check` guarantees every index is in range; `get` keeps this free of panics anyway.
            if let Some(value) = values.get(layout.value_index[d]) {
                write_value(out, value, KeyOrder::Sorted);
            }
            self.spans[d] = (start, out.len());
        }
        out.push(b'}');
        Ok(&self.scratch)
    }

    /// SHA-256 of [`RowHasher::canonical`].
    pub fn hash(&mut self, values: &[Value]) -> Result<[u8; 32], MessageError> {
        let canonical = self.canonical(values)?;
        Ok(Sha256::digest(canonical).into())
    }
}

/// Appends `json.dumps(data, sort_keys=True)` of one row to `out`.
///
/// Convenience for one-off use; per-row code should keep a [`RowHasher`].
pub fn write_canonical_data(
    out: &mut Vec<u8>,
    columns: &[String],
    values: &[Value],
) -> Result<(), MessageError> {
    let mut hasher = RowHasher::new(columns);
    out.extend_from_slice(hasher.canonical(values)?);
    Ok(())
}

/// Lowercase hex SHA-256 of the canonical encoding of one row (the message's `hash`).
///
/// Convenience for one-off use; per-row code should keep a [`RowHasher`].
pub fn row_hash(columns: &[String], values: &[Value]) -> Result<String, MessageError> {
    let digest = RowHasher::new(columns).hash(values)?;
    let mut hex = Vec::with_capacity(64);
    write_hex(&mut hex, &digest);
    // Hex digits are ASCII, so this conversion cannot fail.
    Ok(String::from_utf8_lossy(&hex).into_owned())
}

/// Builds Kafka message values for one replication job (one name, table and column list).
#[derive(Debug, Clone)]
pub struct MessageEncoder {
    hasher: RowHasher,
    /// `, "name": "<name>", "table": "<table>", "data": `
    middle: Box<[u8]>,
}

impl MessageEncoder {
    /// `columns` are the selected column names, in the order the row's values come in.
    pub fn new(name: &str, table: &str, columns: &[String]) -> MessageEncoder {
        let mut middle = Vec::new();
        middle.extend_from_slice(b", \"name\": ");
        write_json_str(&mut middle, name);
        middle.extend_from_slice(b", \"table\": ");
        write_json_str(&mut middle, table);
        middle.extend_from_slice(b", \"data\": ");
        MessageEncoder {
            hasher: RowHasher::new(columns),
            middle: middle.into_boxed_slice(),
        }
    }

    /// Appends one message value to `out`:
    /// `{"timestamp": <float>, "name": "…", "table": "…", "data": {…}, "hash": "<hex>"}`.
    ///
    /// `timestamp` is seconds since the Unix epoch (written as Python's `repr(float)`). On error
    /// nothing is appended.
    pub fn encode(
        &mut self,
        timestamp: f64,
        values: &[Value],
        out: &mut Vec<u8>,
    ) -> Result<(), MessageError> {
        let digest = self.hasher.hash(values)?;
        let layout = &self.hasher.layout;
        let canonical = &self.hasher.scratch;

        out.extend_from_slice(b"{\"timestamp\": ");
        write_py_float(out, timestamp);
        out.extend_from_slice(&self.middle);
        out.push(b'{');
        for (d, prefix) in layout.message_prefixes.iter().enumerate() {
            out.extend_from_slice(prefix);
            let value = values.get(layout.value_index[d]);
            match value {
                // Objects inside a JSON column keep their own order in the message, like
                // Python's unsorted dumps, so they cannot reuse the sorted canonical bytes.
                Some(v @ Value::Json(serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    write_value(out, v, KeyOrder::AsIs)
                }
                _ => {
                    let (start, end) = self.hasher.spans[d];
                    out.extend_from_slice(canonical.get(start..end).unwrap_or_default());
                }
            }
        }
        out.extend_from_slice(b"}, \"hash\": \"");
        write_hex(out, &digest);
        out.extend_from_slice(b"\"}");
        Ok(())
    }
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends one column value as Python's `json.dumps` writes it.
pub fn write_value(out: &mut Vec<u8>, value: &Value, order: KeyOrder) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_i64(out, *i),
        Value::UInt(u) => write_u64(out, *u),
        Value::Float(f) => write_py_float(out, *f),
        Value::Str(s) => write_json_str(out, s),
        Value::Json(j) => write_json(out, j, order),
    }
}

/// Appends a JSON document (a JSON column) as Python's `json.dumps` writes the parsed document.
pub fn write_json(out: &mut Vec<u8>, value: &serde_json::Value, order: KeyOrder) {
    use serde_json::Value as J;
    match value {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(true) => out.extend_from_slice(b"true"),
        J::Bool(false) => out.extend_from_slice(b"false"),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(out, u);
            } else if let Some(i) = n.as_i64() {
                write_i64(out, i);
            } else if let Some(f) = n.as_f64() {
                write_py_float(out, f);
            } else {
                // Unreachable without serde_json's `arbitrary_precision`; `null` beats a panic.
                out.extend_from_slice(b"null");
            }
        }
        J::String(s) => write_json_str(out, s),
        J::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.extend_from_slice(b", ");
                }
                write_json(out, item, order);
            }
            out.push(b']');
        }
        J::Object(map) => {
            out.push(b'{');
            let already_sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a <= b);
            if order == KeyOrder::AsIs || already_sorted {
                for (n, (k, v)) in map.iter().enumerate() {
                    write_member(out, n, k, v, order);
                }
            } else {
                // Bytewise `str` order is code point order (see `Layout::new`).
                let mut members: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                members.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (n, (k, v)) in members.into_iter().enumerate() {
                    write_member(out, n, k, v, order);
                }
            }
            out.push(b'}');
        }
    }
}

fn write_member(out: &mut Vec<u8>, n: usize, key: &str, value: &serde_json::Value, o: KeyOrder) {
    if n > 0 {
        out.extend_from_slice(b", ");
    }
    write_json_str(out, key);
    out.extend_from_slice(b": ");
    write_json(out, value, o);
}

pub fn write_i64(out: &mut Vec<u8>, i: i64) {
    if i < 0 {
        out.push(b'-');
    }
    write_u64(out, i.unsigned_abs());
}

pub fn write_u64(out: &mut Vec<u8>, mut u: u64) {
    let mut buf = [0u8; 20]; // u64::MAX has 20 digits
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

/// What to write for each byte of a string: 0 = copy as is, `u` = `\u00XX`, `U` = start of a
/// non-ASCII character (`\uXXXX`, or a surrogate pair above U+FFFF), else the letter after `\`.
/// Python's `ensure_ascii` copies exactly the bytes ' '..='~' other than `"` and `\`, so DEL
/// (0x7f) is escaped too (`json.dumps("\x7f") == '"\\u007f"'`).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f | 0x7f => b'u',
            b'"' => b'"',
            b'\\' => b'\\',
            0x80..=0xff => b'U',
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Appends a string as Python's `json.dumps` (with `ensure_ascii=True`) writes it, quotes
/// included.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0; // start of the pending run of bytes copied as is
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            at += 1;
            continue;
        }
        out.extend_from_slice(&bytes[run..at]);
        match escape {
            b'U' => {
                // `at` is always on a character boundary: we step over whole characters.
                let c = s.get(at..).and_then(|rest| rest.chars().next()).unwrap_or('\u{fffd}');
                let code = u32::from(c);
                if code > 0xffff {
                    let v = code - 0x10000;
                    write_u_escape(out, 0xd800 | (v >> 10));
                    write_u_escape(out, 0xdc00 | (v & 0x3ff));
                } else {
                    write_u_escape(out, code);
                }
                at += c.len_utf8();
            }
            b'u' => {
                write_u_escape(out, u32::from(b));
                at += 1;
            }
            letter => {
                out.push(b'\\');
                out.push(letter);
                at += 1;
            }
        }
        run = at;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// `\uXXXX` with lowercase hex, for a UTF-16 code unit.
fn write_u_escape(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(unit >> 12 & 0xf) as usize],
        HEX[(unit >> 8 & 0xf) as usize],
        HEX[(unit >> 4 & 0xf) as usize],
        HEX[(unit & 0xf) as usize],
    ]);
}

/// A stack buffer for `{:e}` output, so formatting a float does not allocate.
struct ExpBuf {
    bytes: [u8; 40],
    len: usize,
}

impl fmt::Write for ExpBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends a float as Python's `repr(float)` writes it; non-finite values as `null` (see the
/// module documentation).
///
/// Rust's `{:e}` gives the shortest digits that round-trip (like Python's, which uses David Gay's
/// shortest mode) plus the decimal exponent; Python then writes scientific notation when the
/// exponent is < -4 or >= 16 (`1e-05`, `1e+16`, exponent with a sign and at least two digits)
/// and positional notation otherwise, always with a fractional part (`1.0`, `0.0001`).
pub fn write_py_float(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    let mut buf = ExpBuf {
        bytes: [0; 40],
        len: 0,
    };
    // At most 17 digits, '.', 'e', '-', 3 exponent digits: 40 bytes always suffice.
    if write!(buf, "{:e}", f.abs()).is_ok() {
        layout_py_float(out, &buf.bytes[..buf.len]);
    } else {
        layout_py_float(out, format!("{:e}", f.abs()).as_bytes());
    }
}

/// Lays out `{:e}` output of a non-negative finite float (`d[.ddd]e[-]x`) the way Python does.
fn layout_py_float(out: &mut Vec<u8>, sci: &[u8]) {
    let e = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
    let mantissa = &sci[..e];
    let (exp_negative, exp_digits) = match sci.get(e + 1..).unwrap_or_default() {
        [b'-', rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let magnitude = exp_digits
        .iter()
        .fold(0i32, |n, d| n * 10 + i32::from(d.wrapping_sub(b'0')));
    let exp = if exp_negative { -magnitude } else { magnitude };

    if !(-4..16).contains(&exp) {
        out.extend_from_slice(mantissa);
        out.push(b'e');
        out.push(if exp_negative { b'-' } else { b'+' });
        if magnitude < 10 {
            out.push(b'0');
        }
        write_u64(out, u64::from(magnitude.unsigned_abs()));
        return;
    }
    let (first, rest) = match mantissa {
        [first, b'.', rest @ ..] => (*first, rest),
        [first] => (*first, &[][..]),
        _ => (b'0', &[][..]), // not produced by `{:e}`
    };
    if exp < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.push(first);
        out.extend_from_slice(rest);
    } else {
        // `exp` digits after `first` belong to the integer part.
        let int_rest = exp as usize;
        out.push(first);
        if rest.len() > int_rest {
            out.extend_from_slice(&rest[..int_rest]);
            out.push(b'.');
            out.extend_from_slice(&rest[int_rest..]);
        } else {
            out.extend_from_slice(rest);
            for _ in rest.len()..int_rest {
                out.push(b'0');
            }
            out.extend_from_slice(b".0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        write_py_float(&mut out, f);
        String::from_utf8(out).expect("ascii")
    }

    fn string(s: &str) -> String {
        let mut out = Vec::new();
        write_json_str(&mut out, s);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn floats_match_python_repr() {
        // Right-hand sides printed by CPython 3.11 `repr(float)`.
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1234567.0, "1234567.0"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (1e-5, "1e-05"),
            (1e-7, "1e-07"),
            (-1.2345e-7, "-1.2345e-07"),
            (1e16, "1e+16"),
            (1e22, "1e+22"),
            (1.5e300, "1.5e+300"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456789012345.6, "123456789012345.6"),
            (0.30000000000000004, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
            (1795465354.2384515, "1795465354.2384515"),
            (394.12, "394.12"),
        ];
        for &(f, python) in cases {
            assert_eq!(float(f), python, "repr of {f:e}");
        }
    }

    #[test]
    fn non_finite_floats_are_null() {
        assert_eq!(float(f64::NAN), "null");
        assert_eq!(float(f64::INFINITY), "null");
        assert_eq!(float(f64::NEG_INFINITY), "null");
    }

    #[test]
    fn strings_match_python_ensure_ascii() {
        // Right-hand sides printed by CPython 3.11 `json.dumps(s)`.
        assert_eq!(string(""), r#""""#);
        assert_eq!(string("plain / text"), r#""plain / text""#);
        assert_eq!(string("q\"b\\"), r#""q\"b\\""#);
        assert_eq!(
            string("\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}~"),
            r#""\n\r\t\b\f\u0000\u001f\u007f~""#
        );
        assert_eq!(
            string("é\u{2028}\u{ffff}😀e\u{301}"),
            r#""\u00e9\u2028\uffff\ud83d\ude00e\u0301""#
        );
    }

    #[test]
    fn integers_are_decimal() {
        let mut out = Vec::new();
        write_i64(&mut out, i64::MIN);
        out.push(b' ');
        write_i64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, b"-9223372036854775808 0 18446744073709551615");
    }

    #[test]
    fn canonical_sorts_keys_and_message_keeps_column_order() {
        let columns = vec!["b".to_string(), "a".to_string(), "é".to_string()];
        let json: serde_json::Value =
            serde_json::from_str(r#"{"z": [1, 2.5], "y": null}"#).expect("valid json");
        let values = vec![Value::Int(1), Value::Json(json), Value::Str("x".into())];

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
