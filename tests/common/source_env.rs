//! Helpers shared by the source integration tests: unique table names, the server URIs from the
//! environment (a missing one fails the test with instructions, never skips it), and a spec
//! builder.
#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use repliqate::source::SourceSpec;

/// A table name no other test (or concurrent test run) uses.
pub fn unique(base: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{base}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The URI of a test server, from `var`; panics with instructions when it is not set.
pub fn server_uri(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: this test needs a real server; run `make stack-up` and \
             `eval \"$(scripts/stack env)\"`"
        ),
    }
}

pub fn spec(uri: &str, table: &str, pk: &str, fields: Option<&[&str]>) -> SourceSpec {
    SourceSpec {
        uri: uri.to_string(),
        table: table.to_string(),
        primary_key: pk.to_string(),
        fields: fields.map(|f| f.iter().map(|s| s.to_string()).collect()),
        query_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
    }
}
