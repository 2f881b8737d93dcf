//! What a source hands to the rest: the values of its rows, already in their JSON shape, and
//! what it knows of the database's open transactions.
//!
//! Sources convert every database type into one of these variants (DECIMAL → exact decimal
//! string, dates → ISO-8601 string, binary → base64 string, JSON columns and arrays → nested
//! JSON), so that the encoder and the hash never need to know which database a row came from.

/// The write transactions open in the database at one moment, for proving a hole in the id
/// sequence final (`gaps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenTransactions {
    /// Each one's identity, stable for the transaction's life.
    Listed(Vec<String>),
    /// The database will not tell us: `reason` names what is missing (a privilege).
    Unknown { reason: String },
}

/// Primary-key values. Wide enough for MySQL `BIGINT UNSIGNED` and PostgreSQL `int8` alike.
pub type Id = i128;

/// One column value of one row, in the JSON form it is published in.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    /// A JSON/JSONB (or hstore) column, or a PostgreSQL array as nested JSON arrays: published
    /// as a nested document, not as a string. Boxed: inline, it would triple the size of every
    /// value of every row (72 bytes instead of 32).
    Json(Box<serde_json::Value>),
}

/// One fetched row: its primary key and its values, aligned with the source's column list.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: Id,
    pub values: Vec<Value>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_stay_small() {
        // A batch holds limit × columns of these; keep them at a String's size plus a tag.
        assert!(std::mem::size_of::<super::Value>() <= 32);
    }
}
