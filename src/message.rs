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
    /// The hash of the batch's `row`-th message could not be written into it (our bug: the
    /// message is not where it was written). The batch is not sent.
    HashNotWritten { row: usize },
}

impl MessageError {
    /// Encoding is deterministic: the same row fails again.
    pub fn is_retriable(&self) -> bool {
        match self {
            MessageError::ColumnCountMismatch { .. } => false,
            MessageError::HashNotWritten { .. } => false,
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
            MessageError::HashNotWritten { row } => write!(
                f,
                "message {row} of the batch has no hash: it is not where it was written \
                 (a bug in repliqate; the batch was not sent)"
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
/// Build it once per column list; [`RowHasher::hash`] then reuses its buffer for every row.
#[derive(Debug, Clone)]
pub struct RowHasher {
    layout: Layout,
    /// The canonical text of the last row.
    scratch: Vec<u8>,
}

impl RowHasher {
    pub fn new(columns: &[String]) -> RowHasher {
        RowHasher {
            layout: Layout::new(columns),
            scratch: Vec::with_capacity(256),
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
            // `check` guarantees every index is in range; `get` keeps this free of panics anyway.
            if let Some(value) = values.get(layout.value_index[d]) {
                write_value(out, value, KeyOrder::Sorted);
            }
        }
        out.push(b'}');
        Ok(&self.scratch)
    }

    /// SHA-256 of [`RowHasher::canonical`].
    pub fn hash(&mut self, values: &[Value]) -> Result<[u8; 32], MessageError> {
        Ok(canonical_digest(self.canonical(values)?))
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
    // Hex digits are ASCII, so this conversion cannot fail.
    Ok(String::from_utf8_lossy(&hex(&digest)).into_owned())
}

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

/// What stands for the hash in a message from [`MessageEncoder::encode_unhashed`] until
/// [`fill_hash`] writes it: not hex, so that a message published without its hash would be
/// plainly wrong.
const UNHASHED: [u8; 64] = [b'?'; 64];

/// The SHA-256 digests of four rows' canonical texts (from
/// [`MessageEncoder::encode_unhashed`]), computed together: four independent hashes keep the
/// CPU's SHA units busy where one leaves them waiting on each round (`crates/sha256x4`).
pub fn canonical_digests(texts: [&[u8]; 4]) -> [[u8; 32]; 4] {
    sha256x4::digest4(texts)
}

/// The SHA-256 digest of one row's canonical text (from [`MessageEncoder::encode_unhashed`]).
pub fn canonical_digest(text: &[u8]) -> [u8; 32] {
    Sha256::digest(text).into()
}

/// Writes the hash of `digest` into `message`, a value from [`MessageEncoder::encode_unhashed`]
/// whose hash is still the placeholder. False (and nothing written) when `message` is not such a
/// value.
pub fn fill_hash(message: &mut [u8], digest: &[u8; 32]) -> bool {
    let Some(tail) = message
        .len()
        .checked_sub(78)
        .and_then(|at| message.get_mut(at..))
    else {
        return false;
    };
    if tail != message_tail(&UNHASHED) {
        return false;
    }
    tail[12..76].copy_from_slice(&hex(digest));
    true
}

/// `}, "hash": "<hex>"}`: the end of a message whose data's last value is written.
fn message_tail(hex: &[u8; 64]) -> [u8; 78] {
    let mut tail = [0u8; 78];
    tail[..12].copy_from_slice(b"}, \"hash\": \"");
    tail[12..76].copy_from_slice(hex);
    tail[76..].copy_from_slice(b"\"}");
    tail
}

/// The digest in lowercase hex, eight digits at a time.
fn hex(digest: &[u8; 32]) -> [u8; 64] {
    let mut hex = [0u8; 64];
    for (eight, &four) in hex
        .as_chunks_mut::<8>()
        .0
        .iter_mut()
        .zip(digest.as_chunks::<4>().0)
    {
        *eight = hex8(four);
    }
    hex
}

/// Four bytes as eight lowercase hex digits, computed in one word rather than looked up digit by
/// digit (every message carries a 64-digit hash).
#[inline]
fn hex8(bytes: [u8; 4]) -> [u8; 8] {
    const LOW_NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let x = u64::from(u32::from_be_bytes(bytes));
    // Each nibble into a byte of its own, the first nibble in the most significant byte.
    let x = ((x & 0xffff_0000) << 16) | (x & 0xffff);
    let x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    let x = ((x << 4) & 0x0f00_0f00_0f00_0f00 | x) & LOW_NIBBLES;
    // A byte of 10..=15 is a letter: 6 more carries it into bit 4 (no byte carries into the next).
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
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
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
}

pub fn write_u64(out: &mut Vec<u8>, u: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
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
    // The block test is tried again only past the end of a block that failed it, so that text
    // with many escapes (non-ASCII text is all escapes) pays one failed block test per 32
    // bytes, not one per character.
    let mut blocks_from = 0;
    while let Some(&b) = bytes.get(at) {
        // Most text needs no escape at all: step over 32 such bytes at a time, then 8.
        let rest = bytes.get(at..).unwrap_or_default();
        if let Some(block) = rest.first_chunk::<32>().filter(|_| at >= blocks_from) {
            if !block_needs_escape(block) {
                at += 32;
                continue;
            }
            blocks_from = at + 32;
        }
        if let Some(&word) = rest.first_chunk::<8>() {
            if !word_needs_escape(u64::from_le_bytes(word)) {
                at += 8;
                continue;
            }
        }
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            at += 1;
            continue;
        }
        out.extend_from_slice(&bytes[run..at]);
        match escape {
            b'U' => {
                // `at` is always on a character boundary: we step over whole characters.
                let c = s
                    .get(at..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or('\u{fffd}');
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

/// Whether any byte of `block` is one `ESCAPE` does not copy as is: anything outside ' '..='~',
/// `"` or `\`. Exact. Written as a branch-free fold over a fixed-size block so that the compiler
/// turns it into vector compares (two 16-byte halves with x86-64's baseline SSE2; NEON on
/// aarch64): about a third of the word test's instructions per byte, on the text that is most
/// of a typical row.
#[inline]
fn block_needs_escape(block: &[u8; 32]) -> bool {
    let mut any = 0u8;
    for &b in block {
        any |= u8::from(b.wrapping_sub(b' ') > b'~' - b' ')
            | u8::from(b == b'"')
            | u8::from(b == b'\\');
    }
    any != 0
}

/// Whether any of the 8 bytes in `w` is one `ESCAPE` does not copy as is: a control character,
/// `"`, `\`, DEL or a non-ASCII byte. Word-at-a-time ("SWAR") tests; a false answer is exact,
/// a true one sends the bytes through the table one by one.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero ⇒ its high bit is set in the result (exact for "any").
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    // Bytes below 0x20: subtracting 0x20 borrows into the high bit (for bytes below 0x80;
    // bytes at or above 0x80 are caught by `w & HIGH`).
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (w & HIGH)
        | below_space
        | has_zero(w ^ (ONES * u64::from(b'"')))
        | has_zero(w ^ (ONES * u64::from(b'\\')))
        | has_zero(w ^ (ONES * 0x7f))
        != 0
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

/// Appends a float as Python's `repr(float)` writes it; non-finite values as `null` (see the
/// module documentation).
///
/// Rust's `{:e}` gives the shortest digits that round-trip plus the decimal exponent, as CPython's
/// `repr` (David Gay's dtoa, shortest mode) does, except for exact ties (see [`Shortest::fix_tie`]).
/// Python then writes scientific notation when the exponent is < -4 or >= 16 (`1e-05`, `1e+16`,
/// the exponent with a sign and at least two digits) and positional notation otherwise, always
/// with a fractional part (`1.0`, `0.0001`).
pub fn write_py_float(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    if write_short_positional(out, f.abs()) {
        return;
    }
    let mut shortest = Shortest::of(f.abs());
    shortest.fix_tie(f.abs());
    shortest.write_python_layout(out);
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 20] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// Fast path for the common case, a non-negative float in [1e-4, 1e15) that is a decimal of at
/// most 15 significant digits (prices, measurements, whole numbers); returns false, having
/// written nothing, for anything else. It avoids the formatting machinery (~100 ns).
///
/// Why it is exact: `n / 10^k` with `n < 10^15 < 2^53` and `k <= 19` divides two exact doubles,
/// so IEEE division rounds it correctly, exactly as parsing the decimal would; equality with `f`
/// therefore means the decimal round-trips. Two distinct decimals of at most 15 significant
/// digits never round to the same double (DBL_DIG = 15), so the first (fewest-digit) `k` that
/// round-trips yields the one shortest representation, which is what Python prints. The range
/// keeps Python in positional notation (decimal exponent in -4..16).
fn write_short_positional(out: &mut Vec<u8>, f: f64) -> bool {
    const LIMIT: f64 = 1e15;
    if !(1e-4..LIMIT).contains(&f) && f != 0.0 {
        return false;
    }
    for (k, &scale) in POW10.iter().enumerate() {
        let scaled = f * scale;
        if scaled >= LIMIT {
            return false;
        }
        let n = scaled.round();
        if n / scale == f {
            let n = n as u64; // exact: an integer below 10^15
            let divisor = 10u64.pow(k as u32);
            write_u64(out, n / divisor);
            out.push(b'.');
            if k == 0 {
                out.push(b'0');
            } else {
                // The fraction's k digits, zero-padded on the left; the last one is non-zero
                // because a smaller k would have matched otherwise.
                let mut digits = [b'0'; 19];
                let mut fraction = n % divisor;
                for slot in digits[..k].iter_mut().rev() {
                    *slot = b'0' + (fraction % 10) as u8;
                    fraction /= 10;
                }
                out.extend_from_slice(&digits[..k]);
            }
            return true;
        }
    }
    false
}

/// A stack buffer for formatter output, so formatting a float does not allocate.
struct StackBuf {
    bytes: [u8; 40],
    len: usize,
}

impl StackBuf {
    fn new() -> StackBuf {
        StackBuf {
            bytes: [0; 40],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The shortest round-trip decimal digits of a non-negative finite float: the value is
/// `0.d1d2…dn × 10^(exp + 1)`, i.e. `d1.d2…dn × 10^exp`.
struct Shortest {
    digits: [u8; 17], // ASCII; a double never needs more than 17 significant digits
    len: usize,
    exp: i32,
}

impl Shortest {
    fn of(f: f64) -> Shortest {
        let mut buf = StackBuf::new();
        // `d[.ddd]e[-]x` is at most 17 digits, '.', 'e', '-' and 3 exponent digits: 40 bytes
        // always suffice, so the `Err` arm (which would leave "0") is unreachable.
        let _ = write!(buf, "{:e}", f);
        Shortest::parse(buf.as_bytes())
    }

    fn parse(sci: &[u8]) -> Shortest {
        let mut s = Shortest {
            digits: [b'0'; 17],
            len: 0,
            exp: 0,
        };
        let e = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
        for &b in sci[..e].iter().filter(|b| b.is_ascii_digit()) {
            if let Some(slot) = s.digits.get_mut(s.len) {
                *slot = b;
                s.len += 1;
            }
        }
        s.len = s.len.max(1);
        let (negative, exp_digits) = match sci.get(e + 1..).unwrap_or_default() {
            [b'-', rest @ ..] => (true, rest),
            rest => (false, rest),
        };
        let magnitude = exp_digits
            .iter()
            .fold(0i32, |n, d| n * 10 + i32::from(d.wrapping_sub(b'0')));
        s.exp = if negative { -magnitude } else { magnitude };
        s
    }

    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    fn as_integer(&self) -> u64 {
        self.digits()
            .iter()
            .fold(0, |n, d| n * 10 + u64::from(d - b'0'))
    }

    /// Makes exact ties come out as CPython's: when the float lies exactly halfway between two
    /// shortest candidates (e.g. 1490583350571086.25 between …086.2 and …086.3), Gay's dtoa
    /// takes the one with the even last digit while Rust may take the other.
    ///
    /// Only a candidate with an odd last digit can be the wrong one. Whether the float is exactly
    /// halfway is decided with integer arithmetic; the neighbour is then used if it round-trips.
    fn fix_tie(&mut self, f: f64) {
        if self.digits()[self.len - 1].is_multiple_of(2) {
            return;
        }
        let d = self.as_integer();
        // Both candidates are `len`-digit integers times 10^(exp - len + 1); a tie point between
        // two of them is (10·d ± 5) × 10^(exp - len).
        let scale = self.exp - self.len as i32;
        for (tie, neighbour) in [(10 * d - 5, d - 1), (10 * d + 5, d + 1)] {
            if is_exactly(f, tie, scale) {
                if let Some(other) = self.with_digits(neighbour) {
                    if other.parse_f64() == Some(f) {
                        *self = other;
                    }
                }
                return;
            }
        }
    }

    /// The same scale with other digits (trailing zeros dropped, a carry into a new digit moves
    /// the exponent).
    fn with_digits(&self, n: u64) -> Option<Shortest> {
        if n == 0 {
            return None;
        }
        let mut text = Vec::with_capacity(20);
        write_u64(&mut text, n);
        let exp = self.exp + (text.len() as i32 - self.len as i32);
        while text.len() > 1 && text.last() == Some(&b'0') {
            text.pop();
        }
        let mut s = Shortest {
            digits: [b'0'; 17],
            len: text.len(),
            exp,
        };
        s.digits.get_mut(..text.len())?.copy_from_slice(&text);
        Some(s)
    }

    fn parse_f64(&self) -> Option<f64> {
        let mut buf = StackBuf::new();
        let (first, rest) = self.digits().split_first()?;
        buf.bytes[0] = *first;
        buf.len = 1;
        write!(buf, ".{}e{}", std::str::from_utf8(rest).ok()?, self.exp).ok()?;
        std::str::from_utf8(buf.as_bytes()).ok()?.parse().ok()
    }

    fn write_python_layout(&self, out: &mut Vec<u8>) {
        let (first, rest) = self.digits().split_first().unwrap_or((&b'0', &[]));
        let exp = self.exp;
        if !(-4..16).contains(&exp) {
            out.push(*first);
            if !rest.is_empty() {
                out.push(b'.');
                out.extend_from_slice(rest);
            }
            out.push(b'e');
            out.push(if exp < 0 { b'-' } else { b'+' });
            if exp.abs() < 10 {
                out.push(b'0');
            }
            write_u64(out, u64::from(exp.unsigned_abs()));
        } else if exp < 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.push(*first);
            out.extend_from_slice(rest);
        } else {
            // `exp` digits after `first` belong to the integer part.
            let int_rest = exp as usize;
            out.push(*first);
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
}

/// Whether the non-negative finite `f` equals `t × 10^scale` exactly, for an odd `t`.
///
/// Write `f = m·2^p` with `m` odd. As `t` and 5 are odd, `t·10^scale = (t·5^scale)·2^scale` for
/// `scale >= 0` and `t / (5^-scale · 2^-scale)` otherwise, so equality means `p == scale` and
/// `m == t·5^scale` (resp. `m·5^-scale == t`).
fn is_exactly(f: f64, t: u64, scale: i32) -> bool {
    let bits = f.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exp2) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if mantissa == 0 {
        return false;
    }
    let zeros = mantissa.trailing_zeros();
    let (m, p) = (u128::from(mantissa >> zeros), exp2 + zeros as i32);
    if p != scale {
        return false;
    }
    let Some(five) = 5u128.checked_pow(scale.unsigned_abs()) else {
        return false;
    };
    if scale >= 0 {
        u128::from(t).checked_mul(five) == Some(m)
    } else {
        m.checked_mul(five) == Some(u128::from(t))
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
            // Exact ties between two shortest candidates: CPython takes the even last digit.
            (1490583350571086.0 + 0.25, "1490583350571086.2"),
            (1490583350571086.0 + 0.75, "1490583350571086.8"),
            // Around the edges of the short positional fast path.
            (0.001, "0.001"),
            (0.000123456789012345, "0.000123456789012345"),
            (99999.99999999999, "99999.99999999999"),
            (999999999999999.9, "999999999999999.9"),
            (999999999999999.0, "999999999999999.0"),
            (1e15, "1000000000000000.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (2.675, "2.675"),
            (0.00009999999999999999, "9.999999999999999e-05"),
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

    /// Every byte value at every position of an `N`-byte chunk, among bytes that need no
    /// escape and among bytes that do: `test` must say "escape" exactly when some byte is in
    /// the table.
    fn agrees_with_the_escape_table<const N: usize>(test: impl Fn(&[u8; N]) -> bool) {
        for fill in [b'a', b' ', b'~', b'"', 0x00, 0x7f, 0x80, 0xff] {
            for b in 0..=255u8 {
                for at in 0..N {
                    let mut chunk = [fill; N];
                    chunk[at] = b;
                    let expected = chunk.iter().any(|&x| ESCAPE[usize::from(x)] != 0);
                    assert_eq!(test(&chunk), expected, "{chunk:02x?}");
                }
            }
        }
    }

    #[test]
    fn block_and_word_tests_agree_with_the_escape_table() {
        agrees_with_the_escape_table::<8>(|word| word_needs_escape(u64::from_le_bytes(*word)));
        agrees_with_the_escape_table::<32>(block_needs_escape);
        // Long strings go through the block, word and byte paths: an escape, a non-ASCII
        // character or one beyond U+FFFF at every offset, and text made only of those, are
        // written as a character-by-character rendering of Python's rules writes them.
        for c in ['"', '\u{7f}', '\n', 'é', '\u{2028}', '😀'] {
            for at in 0..72 {
                let mut s = "x".repeat(72);
                s.insert(at, c);
                assert_eq!(string(&s), python_ensure_ascii(&s), "{c:?} at {at}");
            }
            let only: String = std::iter::repeat_n(c, 40).chain("tail".chars()).collect();
            assert_eq!(string(&only), python_ensure_ascii(&only), "{c:?} only");
        }
    }

    /// `json.dumps(s)` written out one character at a time from Python's rules: the reference
    /// the word-at-a-time and block-at-a-time paths are checked against.
    fn python_ensure_ascii(s: &str) -> String {
        let mut out = String::from('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                ' '..='~' => out.push(c),
                _ => {
                    for unit in c.encode_utf16(&mut [0; 2]) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
        out.push('"');
        out
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
    fn hex_digits_match_the_formatter_for_every_byte_in_every_position() {
        for (b, fill) in (0..=255u8).flat_map(|b| [0x00, 0x5a, 0xff].map(|fill| (b, fill))) {
            for at in 0..32 {
                let mut digest = [fill; 32];
                digest[at] = b;
                let out = hex(&digest);
                let expected: String = digest.iter().map(|d| format!("{d:02x}")).collect();
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    expected,
                    "byte {b:#04x} at {at} among {fill:#04x}"
                );
            }
        }
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
