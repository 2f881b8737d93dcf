//! The column list prepared once, for the message and for the canonical text alike: which value
//! each distinct key takes, the two key orders, and the escaped `"key": ` prefixes, so that
//! per-row work only copies them.

use super::error::MessageError;
use super::json::write_json_str;
use crate::value::Value;

/// The column list prepared once: which value each distinct key takes, in which order the keys
/// appear in the message and in the canonical text, and their escaped `"key": ` prefixes.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// Number of values a row must have.
    pub(super) columns: usize,
    /// For each distinct key, in first-occurrence order: the index of its value in the row.
    /// Python builds `data` as a dict, so a repeated column name keeps its first position and
    /// takes its last value; we do the same.
    pub(super) value_index: Vec<usize>,
    /// `"key": ` (preceded by `, ` except for the first), in message (first-occurrence) order.
    pub(super) message_prefixes: Vec<Box<[u8]>>,
    /// Distinct-key positions (indexes into `value_index`) in sorted key order.
    pub(super) sorted: Vec<usize>,
    /// `"key": ` (preceded by `, ` except for the first), aligned with `sorted`.
    pub(super) canonical_prefixes: Vec<Box<[u8]>>,
}

impl Layout {
    pub(super) fn new(columns: &[String]) -> Layout {
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

    pub(super) fn check(&self, values: &[Value]) -> Result<(), MessageError> {
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
