//! How a MySQL driver error becomes a `SourceError`: the message, and whether retrying may
//! help. The connection, the catalog checks and the reads all end their errors here, so the
//! retry decision is made in one place.

use crate::source::SourceError;

/// The one place a mysql error becomes a `SourceError`, and the retry decision.
pub(super) fn map_err(what: &str, e: mysql::Error) -> SourceError {
    use mysql::DriverError as D;
    // The driver's own Display wraps messages in `DriverError { … }`; print the inner error.
    let msg = match &e {
        mysql::Error::IoError(io) => format!("{what}: {io}"),
        mysql::Error::DriverError(d) => format!("{what}: {d}"),
        mysql::Error::MySqlError(me) => format!("{what}: {me}"),
        _ => format!("{what}: {e}"),
    };
    match &e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) => SourceError::Unavailable(msg),
        mysql::Error::DriverError(
            D::ConnectTimeout
            | D::CouldNotConnect(_)
            | D::Timeout
            | D::PacketOutOfSync
            | D::UnexpectedPacket,
        ) => SourceError::Unavailable(msg),
        mysql::Error::DriverError(
            D::UnknownAuthPlugin(_) | D::OldMysqlPasswordDisabled | D::CleartextPluginDisabled,
        ) => SourceError::Refused(msg),
        // Server error codes: MariaDB/MySQL "Server Error Message Reference".
        mysql::Error::MySqlError(me) => match me.code {
            // too many connections, shutdown in progress, lock wait timeout, deadlock, query
            // interrupted, connection killed, statement time limits (MySQL 3024, MariaDB 1969),
            // server gone / lost connection as relayed by a proxy.
            1040 | 1053 | 1205 | 1213 | 1317 | 1927 | 3024 | 1969 | 2006 | 2013 => {
                SourceError::Unavailable(msg)
            }
            // access denied (password, database, command), unknown database; insecure
            // transport refused (require_secure_transport: MySQL 3159, MariaDB 4036).
            1044 | 1045 | 1049 | 1142 | 1143 | 1227 | 3159 | 4036 => SourceError::Refused(msg),
            _ => SourceError::Query(msg),
        },
        mysql::Error::UrlError(_) => SourceError::BadUri(msg),
        _ => SourceError::Query(msg),
    }
}
