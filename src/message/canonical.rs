//! The canonical text (`json.dumps(data, sort_keys=True)`) of a row built on its own, and its
//! hash: the reference that the encoder's piece-by-piece hash is checked against (the message
//! tests here and `tests/message_golden.rs`), and the one-off helpers `row_hash` and
//! `write_canonical_data`. The daemon's own messages never go through it: `MessageEncoder` reads
//! the canonical text back from the message it writes.

use super::digest::{canonical_digest, hex};
use super::error::MessageError;
use super::json::{write_value, KeyOrder};
use super::layout::Layout;
use crate::value::Value;

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
