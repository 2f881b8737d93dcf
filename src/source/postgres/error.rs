//! How a PostgreSQL driver error becomes a `SourceError`: the message, and whether retrying
//! may help. The connection, the catalog checks and the reads all end their errors here, so the
//! retry decision is made in one place.

use crate::source::SourceError;

/// The driver's error kind (private to it; its Debug form names it).
pub(super) fn driver_kind(e: &tokio_postgres::Error) -> String {
    let debug = format!("{e:?}");
    debug
        .strip_prefix("Error { kind: ")
        .and_then(|r| r.split([',', ' ', '(']).next())
        .unwrap_or("")
        .to_string()
}

/// The one place a postgres error becomes a `SourceError`, and the retry decision.
pub(super) fn map_err(what: &str, e: tokio_postgres::Error) -> SourceError {
    if let Some(db) = e.as_db_error() {
        let msg = format!("{what}: {}", db.message());
        // SQLSTATE classes, PostgreSQL manual appendix A.
        let code = db.code().code();
        return match &code[..2] {
            // connection exception, insufficient resources, operator intervention (includes
            // query_canceled by statement_timeout and admin shutdown), transaction rollback
            // (serialization, deadlock), system error.
            "08" | "53" | "57" | "40" | "58" => SourceError::Unavailable(msg),
            "55" if code == "55P03" => SourceError::Unavailable(msg), // lock_not_available
            "28" | "3D" => SourceError::Refused(msg),
            "42" if code == "42501" => SourceError::Refused(msg), // insufficient_privilege
            _ => SourceError::Query(msg),
        };
    }
    // The driver's Display names only the kind ("error connecting to server"); the cause
    // (connection refused, timed out) is its source.
    let msg = match std::error::Error::source(&e) {
        Some(cause) => format!("{what}: {e}: {cause}"),
        None => format!("{what}: {e}"),
    };
    // Transport failures (refused, timed out, reset, closed; a TLS handshake cut short by the
    // network) are worth a retry; the rest is ours or the config's.
    match driver_kind(&e).as_str() {
        "Io" | "Closed" | "Connect" | "Timeout" | "UnexpectedMessage" | "Parse" | "Tls" => {
            SourceError::Unavailable(msg)
        }
        "Authentication" => SourceError::Refused(msg),
        _ => SourceError::Query(msg),
    }
}
