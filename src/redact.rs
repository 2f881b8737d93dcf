//! Removes credentials from URIs before they reach a log line or an error message.
//!
//! Database URIs carry passwords (`postgresql://user:secret@host/db`, `?password=secret`), and
//! every module that reports a connection problem wants to say which server it meant. This is
//! the one place that knows how to print such a URI safely; nothing else should format a raw URI.
//!
//! The parser is deliberately forgiving and errs towards hiding too much: an unencoded `@`, `/`
//! or `?` inside a password (which SQLAlchemy accepts) is hidden along with the rest of the
//! password rather than leaking half of it.

/// Query parameters whose values are secrets (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "sslpassword",
];

/// What a hidden secret is replaced with.
const MASK: &str = "***";

/// Returns `s` with the password of `scheme://user:password@host…` and the values of secret
/// query parameters replaced by `***`. Strings without credentials come back unchanged.
pub fn redact_uri(s: &str) -> String {
    let (out, query_from) = redact_userinfo(s);
    redact_query(&out, query_from)
}

/// Masks the password in the userinfo part. Returns the new string and the byte offset from
/// which a query string may start (after the userinfo, so a `?` inside a password is not taken
/// for the start of the query).
fn redact_userinfo(s: &str) -> (String, usize) {
    // SQLAlchemy's grammar: the user name runs up to the first `:` and holds no `/`; the
    // password runs up to the next `@`. A malformed URI without `://` (a typo such as
    // `postgresql//u:p@h`) may still hold a password: there any `user:password@` is hidden.
    let (rest_start, not_in_user) = match s.find("://") {
        Some(i) => (i + 3, &['/', '?', '#', '@'][..]),
        None => (0, &['?', '#', '@'][..]),
    };
    let rest = &s[rest_start..];
    let Some(colon) = rest.find(':') else {
        return (s.to_owned(), rest_start);
    };
    if rest[..colon].contains(not_in_user) {
        return (s.to_owned(), rest_start);
    }
    let Some(first_at) = rest[colon..].find('@').map(|i| i + colon) else {
        // `host:port` with no user info at all.
        return (s.to_owned(), rest_start);
    };
    // The `url` crate instead ends the user info at the last `@` of the authority; hide up to
    // that one too so that neither reading of an unencoded `@` leaks the tail of a password.
    let mut at = first_at;
    loop {
        let after = &rest[at + 1..];
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        match after[..authority_end].find('@') {
            Some(next) => at = at + 1 + next,
            None => break,
        }
    }
    let password = &rest[colon + 1..at];
    if password.is_empty() {
        return (s.to_owned(), rest_start + at);
    }
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..rest_start + colon + 1]);
    out.push_str(MASK);
    out.push_str(&rest[at..]);
    let query_from = rest_start + colon + 1 + MASK.len() + 1;
    (out, query_from)
}

/// Masks the values of secret query parameters found after byte offset `from`.
fn redact_query(s: &str, from: usize) -> String {
    let Some(q) = s[from..].find('?').map(|i| i + from) else {
        return s.to_owned();
    };
    let (query, fragment) = match s[q + 1..].find('#') {
        Some(h) => (&s[q + 1..q + 1 + h], &s[q + 1 + h..]),
        None => (&s[q + 1..], ""),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, value)) if is_secret_param(name) && !value.is_empty() => {
                format!("{name}={MASK}")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{}?{}{}", &s[..q], params.join("&"), fragment)
}

fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::redact_uri;

    #[test]
    fn hides_password_in_userinfo() {
        assert_eq!(
            redact_uri("postgresql://repliqate:repliqate-secret@127.0.0.1:55432/repliqate"),
            "postgresql://repliqate:***@127.0.0.1:55432/repliqate"
        );
        assert_eq!(
            redact_uri("mysql+pymysql://u:p@db/x"),
            "mysql+pymysql://u:***@db/x"
        );
    }

    #[test]
    fn hides_percent_encoded_password() {
        assert_eq!(
            redact_uri("postgres://u:p%40ss%3Aw0rd@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }

    #[test]
    fn hides_unencoded_at_slash_and_question_mark_in_password() {
        assert_eq!(
            redact_uri("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_uri("postgres://u:pa/ss@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_uri("postgres://u:pa?ss@h/db?password=x"),
            "postgres://u:***@h/db?password=***"
        );
    }

    #[test]
    fn hides_password_of_uri_without_scheme_separator() {
        assert_eq!(
            redact_uri("postgresql//u:hunter2@h/db"),
            "postgresql//u:***@h/db"
        );
        assert_eq!(redact_uri("u:hunter2@h:6379"), "u:***@h:6379");
    }

    #[test]
    fn hides_secret_query_parameters() {
        assert_eq!(
            redact_uri("postgresql://h/db?user=u&password=s3cret&sslmode=require"),
            "postgresql://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact_uri("x://h/?PWD=a&passwd=b&secret=c&token=d&sslpassword=e#frag"),
            "x://h/?PWD=***&passwd=***&secret=***&token=***&sslpassword=***#frag"
        );
    }

    #[test]
    fn leaves_uris_without_credentials_unchanged() {
        for s in [
            "sqlite:////var/lib/app/metrics.db",
            "sqlite:///relative.db",
            "postgresql://user@host:5432/db",
            "postgresql://host:5432/db?sslmode=require",
            "redis://127.0.0.1:6379/0",
            "localhost:6379",
            "[::1]:9092",
            "postgresql://u:@h/db",
            "",
        ] {
            assert_eq!(redact_uri(s), s);
        }
    }

    #[test]
    fn hides_password_of_redis_uri() {
        assert_eq!(
            redact_uri("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "://",
            ":// :@",
            "a://:@?",
            "é://ü:ö@ä?pwd=ß",
            "x://u:p@",
            "?password=",
        ] {
            let out = redact_uri(s);
            assert!(!out.contains('ö') && !out.contains('ß'), "{s} -> {out}");
        }
    }
}
