//! The values a source hands to the message encoder, already in their JSON shape.
//!
//! Sources convert every database type into one of these variants (DECIMAL → exact decimal
//! string, dates → ISO-8601 string, binary → base64 string, JSON columns → nested JSON), so that
//! the encoder and the hash never need to know which database a row came from.

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
    /// A JSON/JSONB column: published as a nested document, not as a string.
    Json(serde_json::Value),
}

/// One fetched row: its primary key and its values, aligned with the source's column list.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: Id,
    pub values: Vec<Value>,
}
