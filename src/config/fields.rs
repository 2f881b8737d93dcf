//! Field types that check themselves while being deserialized, so that their errors carry the
//! dotted path and line of the offending value; and `${VAR}` expansion, which every string
//! setting goes through.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::{Acks, Compression, KeyMode, LogFormat, MAX_LIMIT, MAX_SECONDS, MIN_SECONDS};
use crate::redact::redact_uri;

/// A string value after `${VAR}` expansion, accepted by the rule `R`.
pub(super) struct Checked<R>(String, PhantomData<R>);

// By hand: a derive would ask `R: Clone` of the rule, which is only a marker.
impl<R> Clone for Checked<R> {
    fn clone(&self) -> Self {
        Checked(self.0.clone(), PhantomData)
    }
}

impl<R> Checked<R> {
    pub(super) fn into_string(self) -> String {
        self.0
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A rule for a string setting.
pub(super) trait StrRule {
    /// What is accepted, for "invalid type" errors.
    const EXPECTING: &'static str;
    /// `Err` says what is wrong and what would be accepted.
    fn check(s: &str) -> Result<(), String>;
}

impl<'de, R: StrRule> Deserialize<'de> for Checked<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<R: StrRule> Visitor<'_> for V<R> {
            type Value = Checked<R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(R::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                let s = expand_env(s).map_err(E::custom)?;
                R::check(&s).map_err(E::custom)?;
                Ok(Checked(s, PhantomData))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// Name, table and topic become tags of the Redis position key (`name=…&table=…&topic=…`).
pub(super) fn check_key_tag(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("the {what} is empty; expected a non-empty {what}"));
    }
    if s.contains(['=', '&']) {
        return Err(format!(
            "`{s}` is not accepted: `=` and `&` would corrupt the Redis position key; expected a \
             {what} without `=` or `&`"
        ));
    }
    Ok(())
}

pub(super) struct JobName;
impl StrRule for JobName {
    const EXPECTING: &'static str = "a job name (a string without `=` or `&`)";
    fn check(s: &str) -> Result<(), String> {
        check_key_tag(s, "name")
    }
}

pub(super) struct TableName;
impl StrRule for TableName {
    const EXPECTING: &'static str = "a table name (a string without `=` or `&`)";
    fn check(s: &str) -> Result<(), String> {
        check_key_tag(s, "table name")
    }
}

pub(super) struct Topic;
impl StrRule for Topic {
    const EXPECTING: &'static str = "a Kafka topic name";
    fn check(s: &str) -> Result<(), String> {
        check_key_tag(s, "topic name")?;
        // Kafka's own rule (org.apache.kafka.common.internals.Topic.validate): the broker would
        // refuse anything else, so say so at start-up rather than at the first publish.
        let legal = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if s == "." || s == ".." || s.len() > 249 || !s.chars().all(legal) {
            return Err(format!(
                "`{s}` is not a valid Kafka topic name; expected 1 to 249 characters from \
                 [a-zA-Z0-9._-], not `.` or `..`"
            ));
        }
        Ok(())
    }
}

/// A pipeline's topic: a Kafka topic name, in which `{table}` stands for the pipeline's table.
pub(super) struct TopicTemplate;
impl StrRule for TopicTemplate {
    const EXPECTING: &'static str = "a Kafka topic name, where `{table}` is the table's name";
    fn check(s: &str) -> Result<(), String> {
        // With a stand-in for the table: the characters around it must make a topic name (the
        // name itself is checked for each table the template is used with).
        match Topic::check(&s.replace("{table}", "t")) {
            Ok(()) => Ok(()),
            Err(_) if s.contains(['{', '}']) => Err(format!(
                "`{s}` is not a topic template; expected a Kafka topic name of [a-zA-Z0-9._-] \
                 where `{{table}}` may stand for the table's name"
            )),
            Err(e) => Err(e),
        }
    }
}

impl TopicTemplate {
    /// The topic of `table`, checked as a topic name.
    pub(super) fn topic(template: &str, table: &str) -> Result<String, String> {
        let topic = template.replace("{table}", table);
        Topic::check(&topic)?;
        Ok(topic)
    }
}

pub(super) struct NonEmpty;
impl StrRule for NonEmpty {
    const EXPECTING: &'static str = "a non-empty string";
    fn check(s: &str) -> Result<(), String> {
        if s.is_empty() {
            return Err("the value is empty; expected a non-empty string".to_owned());
        }
        Ok(())
    }
}

/// `host:port`; IPv6 addresses in brackets (`[::1]:9092`).
pub(super) struct HostPort;
impl StrRule for HostPort {
    const EXPECTING: &'static str = "an address as host:port";
    fn check(s: &str) -> Result<(), String> {
        check_host_port(s, Port::Required)
    }
}

/// `host:port` to listen on; port 0 lets the system choose (the log says which).
pub(super) struct ListenAddr;
impl StrRule for ListenAddr {
    const EXPECTING: &'static str = "an address to listen on as host:port, e.g. 127.0.0.1:9464";
    fn check(s: &str) -> Result<(), String> {
        check_host_port(s, Port::RequiredOrZero)
    }
}

/// Whether an address must name its port.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Port {
    Required,
    /// Required, and 0 (any free port) is accepted: an address to listen on.
    RequiredOrZero,
    Optional,
}

pub(super) fn check_host_port(s: &str, port: Port) -> Result<(), String> {
    let port_required = port != Port::Optional;
    let lowest = if port == Port::RequiredOrZero { 0 } else { 1 };
    let accepted = "expected host:port, e.g. localhost:9092 or [::1]:9092";
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("`{s}` has no closing `]`; {accepted}"));
        };
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("`{s}` is not a valid address; {accepted}")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(format!(
                    "`{s}` looks like an IPv6 address without brackets; {accepted}"
                ))
            }
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/@?#".contains(c)) {
        return Err(format!("`{s}` has no valid host name; {accepted}"));
    }
    match port {
        None if port_required => Err(format!("`{s}` has no port; {accepted}")),
        None => Ok(()),
        Some(p) => match p.parse::<u32>() {
            Ok(n) if (lowest..=65535).contains(&n) => Ok(()),
            _ => Err(format!(
                "`{s}` has an invalid port `{p}`; expected a port from {lowest} to 65535"
            )),
        },
    }
}

/// `host:port` as the old tool took it, or a `redis://` URI for a password or a database number.
pub(super) struct RedisAddr;
impl StrRule for RedisAddr {
    const EXPECTING: &'static str = "host:port or redis[s]://[[user]:password@]host[:port][/db]";
    fn check(s: &str) -> Result<(), String> {
        if !s.contains("://") {
            return check_host_port(s, Port::Required);
        }
        check_redis_url(s, Self::EXPECTING)
    }
}

/// `redis_url`: a `redis://` or `rediss://` (TLS) URL.
pub(super) struct RedisUrl;
impl StrRule for RedisUrl {
    const EXPECTING: &'static str =
        "redis://[[user]:password@]host[:port][/db] or rediss://… (TLS)";
    fn check(s: &str) -> Result<(), String> {
        check_redis_url(s, Self::EXPECTING)
    }
}

fn check_redis_url(s: &str, expecting: &str) -> Result<(), String> {
    let Some(rest) = s
        .strip_prefix("redis://")
        .or_else(|| s.strip_prefix("rediss://"))
    else {
        return Err(format!(
            "`{}` has an unsupported scheme; expected {expecting}",
            redact_uri(s)
        ));
    };
    let shown = redact_uri(s);
    let authority_end = rest.rfind('@').map_or(0, |i| i + 1);
    let (authority, db) = match rest[authority_end..].split_once('/') {
        Some((a, db)) => (&rest[authority_end..authority_end + a.len()], db),
        None => (&rest[authority_end..], ""),
    };
    check_host_port(authority, Port::Optional)
        .map_err(|_| format!("`{shown}` has no valid host[:port]; expected {expecting}"))?;
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(format!(
            "`{shown}` has an invalid database number `{db}`; expected a number such as /0"
        ));
    }
    Ok(())
}

/// A SQLAlchemy-style URI. Only its shape is checked here; the source module decides which
/// schemes it supports.
pub(super) struct Uri;
impl StrRule for Uri {
    const EXPECTING: &'static str = "a database URI such as sqlite:////path/to.db";
    fn check(s: &str) -> Result<(), String> {
        let accepted = "expected a URI such as sqlite:////abs/path.db or \
                        postgresql://user:password@host:5432/db";
        if s.is_empty() {
            return Err(format!("the URI is empty; {accepted}"));
        }
        let scheme_ok = |scheme: &str| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        };
        match s.split_once("://") {
            Some((scheme, _)) if scheme_ok(scheme) => Ok(()),
            _ => Err(format!("`{}` has no scheme://; {accepted}", redact_uri(s))),
        }
    }
}

/// A duration in seconds, integer or float, from MIN_SECONDS to MAX_SECONDS.
#[derive(Clone, Copy)]
pub(super) struct Seconds(pub(super) Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a number of seconds from {MIN_SECONDS} to {MAX_SECONDS}")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                // `{:?}` keeps tiny and huge values short (1e-300, not 300 zeros).
                seconds(v, format!("{v:?}"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                seconds(v as f64, v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                seconds(v as f64, v.to_string())
            }
        }
        fn seconds<E: de::Error>(v: f64, shown: String) -> Result<Seconds, E> {
            // The lower bound keeps tiny values from rounding to a zero Duration.
            if v.is_finite() && (MIN_SECONDS..=MAX_SECONDS).contains(&v) {
                Ok(Seconds(Duration::from_secs_f64(v)))
            } else {
                Err(E::custom(format!(
                    "{shown} is out of range; expected a number of seconds from {MIN_SECONDS} to \
                     {MAX_SECONDS}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// Declares an integer setting with an inclusive range.
macro_rules! bounded_int {
    ($name:ident, $min:expr, $max:expr, $what:literal) => {
        #[derive(Clone, Copy)]
        pub(super) struct $name(pub(super) usize);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "{} from {} to {}", $what, $min, $max)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        if ($min..=$max).contains(&v) {
                            usize::try_from(v)
                                .map($name)
                                .map_err(|_| E::custom("value does not fit this platform"))
                        } else {
                            Err(E::custom(format!(
                                "{v} is out of range; expected {} from {} to {}",
                                $what, $min, $max
                            )))
                        }
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        match u64::try_from(v) {
                            Ok(u) => self.visit_u64(u),
                            Err(_) => Err(E::custom(format!(
                                "{v} is out of range; expected {} from {} to {}",
                                $what, $min, $max
                            ))),
                        }
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

bounded_int!(Limit, 1u64, MAX_LIMIT, "a number of rows");
// Kafka sizes are int32 on the wire.
bounded_int!(RequestSize, 1024u64, i32::MAX as u64, "a size in bytes");

/// A non-empty list without duplicates.
#[derive(Clone)]
pub(super) struct List<T>(pub(super) Vec<T>);

impl<'de, R: StrRule> Deserialize<'de> for List<Checked<R>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<'de, R: StrRule> Visitor<'de> for V<R> {
            type Value = List<Checked<R>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a non-empty list, each entry {}", R::EXPECTING)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items: Vec<Checked<R>> = Vec::new();
                while let Some(item) = seq.next_element::<Checked<R>>()? {
                    if items.iter().any(|i| i.0 == item.0) {
                        return Err(de::Error::custom(format!(
                            "`{}` is listed twice; expected each entry once",
                            item.0
                        )));
                    }
                    items.push(item);
                }
                if items.is_empty() {
                    return Err(de::Error::custom(format!(
                        "the list is empty; expected at least one entry ({}), or omit the key \
                         for its default",
                        R::EXPECTING
                    )));
                }
                Ok(List(items))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// Deserializes a string enum from its accepted spellings (after `${VAR}` expansion).
pub(super) fn string_choice<'de, D, T>(
    d: D,
    expecting: &'static str,
    pick: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        pick: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            let s = expand_env(s).map_err(E::custom)?;
            (self.pick)(&s).map_err(E::custom)
        }
        // `acks: 1` and `acks: -1` are YAML integers.
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.pick)(&v.to_string()).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.pick)(&v.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V { expecting, pick })
}

impl<'de> Deserialize<'de> for KeyMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_choice(d, "primary_key or none", |s| match s {
            "primary_key" => Ok(KeyMode::PrimaryKey),
            "none" => Ok(KeyMode::None),
            _ => Err(format!(
                "unknown key mode `{s}`; expected primary_key or none"
            )),
        })
    }
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_choice(d, "text or json", |s| match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format `{s}`; expected text or json")),
        })
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_choice(d, "none, gzip, snappy, lz4 or zstd", |s| {
            let codec = match s {
                "none" => Some(Compression::None),
                "gzip" => Some(Compression::Gzip),
                "snappy" => Some(Compression::Snappy),
                #[cfg(feature = "lz4")]
                "lz4" => Some(Compression::Lz4),
                #[cfg(feature = "zstd")]
                "zstd" => Some(Compression::Zstd),
                _ if s == "lz4" || s == "zstd" => None,
                _ => {
                    return Err(format!(
                        "unknown compression `{s}`; expected none, gzip, snappy, lz4 or zstd"
                    ))
                }
            };
            codec.ok_or_else(|| {
                format!(
                    "this build has no `{s}` support; rebuild with --features {s}, or use none, \
                     gzip or snappy"
                )
            })
        })
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_choice(d, "all, -1 or 1", |s| match s {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::Leader),
            "0" => Err(
                "0 is refused: without acknowledgements repliqate cannot know a batch \
                        was written; expected all, -1 or 1"
                    .to_owned(),
            ),
            _ => Err(format!("unknown acks `{s}`; expected all, -1 or 1")),
        })
    }
}

/// Replaces `${VAR}` with the value of the environment variable `VAR`; `$${` is a literal `${`.
pub(super) fn expand_env(s: &str) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(
                    "`${` without a closing `}`; write ${VAR} for an environment variable \
                            or $${ for a literal `${`"
                        .to_owned(),
                );
            };
            let var = &tail[..end];
            let valid = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`${{{var}}}` is not a valid environment variable reference; expected \
                     ${{NAME}} with NAME made of letters, digits and `_`"
                ));
            }
            match std::env::var(var) {
                Ok(value) => out.push_str(&value),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!("environment variable `{var}` is not set"))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("environment variable `{var}` is not valid UTF-8"))
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}
