//! The `json.dumps`-compatible writer: column values, JSON documents and strings written exactly
//! as Python's `json.dumps` with default arguments writes them (`ensure_ascii`, `", "` and
//! `": "` separators), with JSON objects' keys sorted for the hash or kept in their own order for
//! the message.
//!
//! Strings are most of a row's bytes, so the escape scan steps over a block (32 bytes) or a word
//! (8 bytes) that needs no escape at a time. Numbers come from `number.rs`.

use super::number::{write_i64, write_py_float, write_u64};
use crate::value::Value;

/// Whether objects inside a JSON column are written with sorted keys (the hash) or in their own
/// order (the published message, as Python's `json.dumps` without `sort_keys` did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    Sorted,
    AsIs,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> String {
        let mut out = Vec::new();
        write_json_str(&mut out, s);
        String::from_utf8(out).expect("ascii")
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
}
