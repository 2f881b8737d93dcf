//! SQLAlchemy-style database URIs: the config file of the old tool holds one, so we must read the
//! same syntax (`dialect[+driver]://user:password@host:port/database?key=value`), and we must be
//! able to print one without its password.
//!
//! The split into parts follows SQLAlchemy's own URL pattern (`sqlalchemy.engine.url._parse_url`):
//! the username stops at the first `:` or `/`, the password at the first `@`, so a password may
//! contain `:` and `/` unencoded but `@` must be written `%40`.

use super::SourceError;

/// The database family a URI names. Known even when its cargo feature is compiled out, so that
/// the error can say which feature is missing rather than "unknown scheme".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl Backend {
    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }
}

/// A URI split into its parts, user, password, database and query values percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUri {
    pub backend: Backend,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Database name for servers; the file path for SQLite (not decoded: it is a file name).
    pub database: Option<String>,
    pub query: Vec<(String, String)>,
}

impl ParsedUri {
    /// The value of the query parameter `key` (the last one wins, as in SQLAlchemy).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

const ACCEPTED: &str = "sqlite, postgresql (or postgres), mysql or mariadb, each optionally with \
                        a +driver suffix such as postgresql+psycopg2";

/// Raw (still percent-encoded) parts of a server URI, as byte ranges would be awkward: slices of
/// the original string.
struct RawParts<'a> {
    /// `user` and `:password` (password without the colon), when the URI has an `@` part.
    user: Option<&'a str>,
    password: Option<&'a str>,
    hostport: &'a str,
    database: Option<&'a str>,
    query: Option<&'a str>,
}

fn split_raw(uri: &str) -> Option<RawParts<'_>> {
    let (_, rest) = uri.split_once("://")?;
    let (mut user, mut password, mut after_user) = (None, None, rest);
    if let Some(at) = rest.find('@') {
        let userinfo = &rest[..at];
        let (name, pass) = match userinfo.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (userinfo, None),
        };
        // SQLAlchemy's username is `[^:/]*`: an `@` after a `/` belongs to the path instead.
        if !name.contains('/') && !name.contains('?') {
            user = Some(name);
            password = pass;
            after_user = &rest[at + 1..];
        }
    }
    let (before_query, query) = match after_user.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (after_user, None),
    };
    let (hostport, database) = match before_query.split_once('/') {
        Some((h, d)) => (h, Some(d)),
        None => (before_query, None),
    };
    Some(RawParts {
        user,
        password,
        hostport,
        database,
        query,
    })
}

/// One redaction for the whole crate (`crate::redact`); re-exported for the backends.
pub use crate::redact::redact_uri;

/// Parses a source URI; the scheme decides the backend (the one place it is decided).
pub fn parse(uri: &str) -> Result<ParsedUri, SourceError> {
    let bad = |why: String| SourceError::BadUri(format!("parsing uri {}: {why}", redact_uri(uri)));
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(bad(format!(
            "expected <scheme>://…, with scheme {ACCEPTED}"
        )));
    };
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    let backend = match dialect.as_str() {
        "sqlite" => Backend::Sqlite,
        "postgresql" | "postgres" => Backend::Postgres,
        "mysql" | "mariadb" => Backend::Mysql,
        _ => {
            return Err(bad(format!(
                "unsupported scheme `{scheme}`: expected {ACCEPTED}"
            )))
        }
    };
    if backend == Backend::Sqlite {
        return parse_sqlite(rest).map_err(bad);
    }
    let parts = split_raw(uri).ok_or_else(|| bad("cannot split the uri".to_string()))?;
    let (host, port) = split_hostport(parts.hostport).map_err(bad)?;
    let decode_opt = |s: Option<&str>| s.map(percent_decode).filter(|s| !s.is_empty());
    let mut query = Vec::new();
    for pair in parts
        .query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.push((percent_decode(k), percent_decode(v)));
    }
    Ok(ParsedUri {
        backend,
        user: decode_opt(parts.user),
        password: parts.password.map(percent_decode),
        host,
        port,
        database: decode_opt(parts.database),
        query,
    })
}

fn parse_sqlite(rest: &str) -> Result<ParsedUri, String> {
    // `sqlite:///rel.db` → "rel.db", `sqlite:////abs.db` → "/abs.db"; `sqlite://` is SQLAlchemy's
    // in-memory database, which nobody else can write to, so there is nothing to replicate.
    let Some(path) = rest.strip_prefix('/') else {
        return Err(if rest.is_empty() {
            "sqlite:// is an in-memory database, which cannot be replicated: give a file, \
             sqlite:////absolute/path.db or sqlite:///relative/path.db"
                .to_string()
        } else {
            format!("expected sqlite:////absolute/path.db or sqlite:///relative/path.db, found a host part `{rest}`")
        });
    };
    if path.is_empty() || path == ":memory:" {
        return Err(
            "an in-memory sqlite database cannot be replicated: give a file, \
                    sqlite:////absolute/path.db or sqlite:///relative/path.db"
                .to_string(),
        );
    }
    if path.contains('?') {
        return Err(
            "query parameters are not supported in sqlite uris (the file is always \
                    opened read-only)"
                .to_string(),
        );
    }
    Ok(ParsedUri {
        backend: Backend::Sqlite,
        user: None,
        password: None,
        host: None,
        port: None,
        database: Some(path.to_string()),
        query: Vec::new(),
    })
}

fn split_hostport(hostport: &str) -> Result<(Option<String>, Option<u16>), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        // IPv6 literal: `[::1]:5432`.
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed `[` in host `{hostport}`"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{p}` after the ipv6 host"))?,
            ),
        };
        (h, port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("port `{p}` is not a number from 0 to 65535"))?,
        ),
    };
    let host = percent_decode(host);
    Ok(((!host.is_empty()).then_some(host), port))
}

/// Decodes `%XX` escapes (invalid escapes are kept literally, as Python's `unquote` does; `+`
/// stays `+`, as in SQLAlchemy, which uses `unquote` and not `unquote_plus`).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uri: &str) -> ParsedUri {
        match parse(uri) {
            Ok(p) => p,
            Err(e) => panic!("{uri}: {e}"),
        }
    }

    fn err(uri: &str) -> String {
        match parse(uri) {
            Ok(p) => panic!("{uri} parsed as {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn sqlite_paths_follow_sqlalchemy() {
        assert_eq!(
            ok("sqlite:////var/lib/a.db").database.as_deref(),
            Some("/var/lib/a.db")
        );
        assert_eq!(
            ok("sqlite:///rel/a.db").database.as_deref(),
            Some("rel/a.db")
        );
        assert_eq!(ok("sqlite+pysqlite:///a.db").backend, Backend::Sqlite);
        assert!(err("sqlite://").contains("in-memory"));
        assert!(err("sqlite:///:memory:").contains("in-memory"));
        assert!(err("sqlite:///").contains("in-memory"));
        assert!(err("sqlite://host/a.db").contains("host part"));
        assert!(err("sqlite:///a.db?mode=ro").contains("query parameters"));
    }

    #[test]
    fn server_uris_with_drivers() {
        let p = ok("postgresql+psycopg2://u:p@db.example:6543/app?application_name=x");
        assert_eq!(p.backend, Backend::Postgres);
        assert_eq!(p.user.as_deref(), Some("u"));
        assert_eq!(p.password.as_deref(), Some("p"));
        assert_eq!(p.host.as_deref(), Some("db.example"));
        assert_eq!(p.port, Some(6543));
        assert_eq!(p.database.as_deref(), Some("app"));
        assert_eq!(p.query_value("application_name"), Some("x"));
        assert_eq!(ok("postgres://h/d").backend, Backend::Postgres);
        assert_eq!(ok("POSTGRESQL+pg8000://h/d").backend, Backend::Postgres);
        assert_eq!(ok("mysql+pymysql://u@h/d").backend, Backend::Mysql);
        assert_eq!(
            ok("mariadb+mariadbconnector://u@h/d").backend,
            Backend::Mysql
        );
        let p = ok("mysql://h");
        assert_eq!(
            (p.user, p.password, p.port, p.database),
            (None, None, None, None)
        );
    }

    #[test]
    fn ipv6_hosts_and_bad_ports() {
        let p = ok("postgresql://u@[::1]:5433/d");
        assert_eq!((p.host.as_deref(), p.port), (Some("::1"), Some(5433)));
        assert!(err("postgresql://h:99999/d").contains("port `99999`"));
        assert!(err("postgresql://h:abc/d").contains("port `abc`"));
    }

    #[test]
    fn percent_encoding_in_credentials() {
        let p = ok("mysql://us%40er:p%40ss%3Aw%2Fd%25@h/my%20db");
        assert_eq!(p.user.as_deref(), Some("us@er"));
        assert_eq!(p.password.as_deref(), Some("p@ss:w/d%"));
        assert_eq!(p.database.as_deref(), Some("my db"));
        // Like SQLAlchemy, a raw `:` or `/` is allowed in the password, `+` stays `+`.
        let p = ok("postgresql://u:a:b/c+d@h/db");
        assert_eq!(p.password.as_deref(), Some("a:b/c+d"));
        assert_eq!(p.host.as_deref(), Some("h"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn unknown_scheme_lists_accepted_ones() {
        let e = err("oracle://u:secret@h/d");
        assert!(e.contains("unsupported scheme `oracle`"), "{e}");
        assert!(e.contains("sqlite, postgresql"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        assert!(err("just-a-path.db").contains("expected <scheme>://"));
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact_uri("postgresql://u:s3cr%40t@h:5432/d"),
            "postgresql://u:***@h:5432/d"
        );
        assert_eq!(redact_uri("mysql://u:a:b/c@h/d"), "mysql://u:***@h/d");
        assert_eq!(redact_uri("mysql://u@h/d"), "mysql://u@h/d");
        // An empty password has nothing to hide.
        assert_eq!(redact_uri("mysql://u:@h/d"), "mysql://u:@h/d");
        assert_eq!(
            redact_uri("postgresql://h/d?user=u&password=x&sslmode=disable"),
            "postgresql://h/d?user=u&password=***&sslmode=disable"
        );
        assert_eq!(redact_uri("sqlite:////tmp/a.db"), "sqlite:////tmp/a.db");
        assert_eq!(redact_uri("not a uri"), "not a uri");
    }
}
