//! `kafka_target.properties`: Kafka client properties under their librdkafka or Java names, so
//! that a provider's client config can be pasted in as it is.
//!
//! Only what repliqate implements is accepted: the security settings (`security.protocol`,
//! `sasl.*`, `ssl.*`), and the producer settings that are also YAML keys of `kafka_target`
//! (`bootstrap.servers` is `brokers`, `acks` is `acks`, ...; setting both is an error). Any
//! other property is refused, saying whether it is a Kafka client property we do not support
//! (a consumer's, or a producer's) or not a Kafka property at all.
//!
//! Our own additions, named in Kafka's style, are the `*_file` forms of secrets
//! (`sasl.password_file`) and the OAUTHBEARER token's source (`sasl.oauthbearer.token.file`,
//! `sasl.oauthbearer.token.command`, `sasl.oauthbearer.token.command.timeout.ms`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::fields::expand_env;
use super::known_properties::{scope, Scope};
use super::{Acks, Compression};
use crate::kafka::{Sasl, ScramHash, Security, TokenSource};
use crate::secret::Secret;
use crate::tls::{ClientCert, TlsFile, TlsSettings};

/// Where errors point.
const PATH: &str = "repliqate.replication.kafka_target.properties";

/// Default `sasl.oauthbearer.token.command.timeout.ms`: cloud token helpers answer in a second
/// or two, and a hung one must not hold up a connection for long.
const DEFAULT_TOKEN_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The properties as written: name → value (numbers and booleans as their text), `${VAR}`
/// expanded. A name given twice is an error.
#[derive(Default)]
pub(super) struct Properties(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Properties;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a mapping of Kafka client properties, e.g. security.protocol: SASL_SSL",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value: Scalar = map.next_value()?;
                    if out.insert(name.clone(), value.0).is_some() {
                        return Err(de::Error::custom(format!(
                            "`{name}` is given twice; expected each property once"
                        )));
                    }
                }
                Ok(Properties(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A property's value: a string, number or boolean, as text.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
                expand_env(s).map(Scalar).map_err(E::custom)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// What the properties say: the security settings, and producer settings that the YAML also
/// has keys for (`build` merges them, refusing a setting given both ways).
#[derive(Debug, Default, PartialEq)]
pub(super) struct FromProperties {
    pub security: Security,
    pub bootstrap: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub acks: Option<Acks>,
    pub compression: Option<Compression>,
    pub idempotence: Option<bool>,
    pub request_timeout: Option<Duration>,
    pub delivery_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_request_size: Option<usize>,
}

/// The properties that set the same as `kafka_target`'s YAML key `key`, for the error about a
/// setting given both ways.
pub(super) fn property_names_of(key: &str) -> &'static [&'static str] {
    match key {
        "brokers" => &["bootstrap.servers", "metadata.broker.list"],
        "client_id" => &["client.id"],
        "acks" => &["acks", "request.required.acks"],
        "compression" => &["compression.type", "compression.codec"],
        "idempotence" => &["enable.idempotence"],
        "request_timeout_sec" => &["request.timeout.ms"],
        "delivery_timeout_sec" => &["delivery.timeout.ms", "message.timeout.ms"],
        "connect_timeout_sec" => &["socket.connection.setup.timeout.ms"],
        "max_request_size" => &["max.request.size"],
        _ => &[],
    }
}

/// Every property repliqate accepts, for the error about one it does not.
const ACCEPTED: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.password_file",
    "sasl.jaas.config",
    "sasl.oauthbearer.token.file",
    "sasl.oauthbearer.token.command",
    "sasl.oauthbearer.token.command.timeout.ms",
    "sasl.oauthbearer.token.endpoint.url",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.endpoint.identification.algorithm",
    "client.dns.lookup",
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "acks",
    "request.required.acks",
    "compression.type",
    "compression.codec",
    "enable.idempotence",
    "request.timeout.ms",
    "delivery.timeout.ms",
    "message.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "max.request.size",
];

/// Reads the properties into typed settings, checking that they fit together.
pub(super) fn interpret(properties: Properties) -> Result<FromProperties, String> {
    let mut p = Reader {
        props: properties.0,
    };
    for name in p.props.keys() {
        if !ACCEPTED.contains(&name.as_str()) {
            return Err(refuse(name));
        }
    }
    let mut out = FromProperties {
        bootstrap: p
            .take("bootstrap.servers", "metadata.broker.list")?
            .map(|(name, v)| {
                let _ = name;
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }),
        client_id: p.take_one("client.id").map(|v| v.1),
        acks: p.parse("acks", "request.required.acks", |v| match v {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::Leader),
            "0" => Err(
                "acks 0 (no acknowledgement) is not offered: repliqate moves its \
                        position only after Kafka acknowledged a batch; expected all, -1 or 1"
                    .into(),
            ),
            _ => Err("expected all, -1 or 1".into()),
        })?,
        compression: p.parse("compression.type", "compression.codec", |v| {
            serde_yaml::from_str::<Compression>(v).map_err(|e| first_line(&e.to_string()))
        })?,
        idempotence: p.parse("enable.idempotence", "", parse_bool)?,
        request_timeout: p.parse("request.timeout.ms", "", millis)?,
        delivery_timeout: p.parse("delivery.timeout.ms", "message.timeout.ms", millis)?,
        connect_timeout: p.parse("socket.connection.setup.timeout.ms", "", millis)?,
        max_request_size: p.parse("max.request.size", "", |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1024..=(1 << 30)).contains(n))
                .ok_or_else(|| "expected a number of bytes from 1024 to 1073741824".to_string())
        })?,
        security: Security::default(),
    };
    if let Some((name, value)) = p.take_one("client.dns.lookup") {
        // We always try every address a name resolves to, as use_all_dns_ips does.
        if value != "use_all_dns_ips" && value != "default" {
            return Err(format!(
                "{PATH}.{name}: `{value}` is not supported; expected use_all_dns_ips (what \
                 repliqate does: every resolved address is tried in turn)"
            ));
        }
    }
    out.security = security(&mut p)?;
    Ok(out)
}

/// The error for a property repliqate does not take.
fn refuse(name: &str) -> String {
    let what = match scope(name) {
        Some(Scope::Consumer) => {
            "is a Kafka consumer property; repliqate only produces, remove it".to_string()
        }
        Some(Scope::Producer | Scope::Both) => {
            "is a Kafka client property that repliqate does not support (yet); remove it"
                .to_string()
        }
        None => "is not a Kafka client property (a typo?)".to_string(),
    };
    format!(
        "{PATH}.{name}: `{name}` {what}; accepted: {}",
        ACCEPTED.join(", ")
    )
}

struct Reader {
    props: BTreeMap<String, String>,
}

impl Reader {
    fn take_one(&mut self, name: &str) -> Option<(String, String)> {
        self.props.remove(name).map(|v| (name.to_string(), v))
    }

    /// A property that has two names (librdkafka's and Java's, or an alias): at most one may
    /// be given, unless both say the same.
    fn take(&mut self, name: &str, alias: &str) -> Result<Option<(String, String)>, String> {
        let a = self.take_one(name);
        let b = if alias.is_empty() {
            None
        } else {
            self.take_one(alias)
        };
        match (a, b) {
            (Some(a), Some(b)) if a.1 != b.1 => Err(format!(
                "{PATH}: `{name}` and `{alias}` are the same setting and disagree; give one"
            )),
            (a, b) => Ok(a.or(b)),
        }
    }

    fn parse<T>(
        &mut self,
        name: &str,
        alias: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.take(name, alias)? {
            None => Ok(None),
            Some((name, value)) => f(&value)
                .map(Some)
                .map_err(|e| format!("{PATH}.{name}: `{value}` is not accepted: {e}")),
        }
    }

    fn path(&mut self, name: &str) -> Result<Option<TlsFile>, String> {
        match self.take_one(name) {
            Some((_, v)) if v.is_empty() => Err(format!("{PATH}.{name}: the path is empty")),
            Some((name, v)) => Ok(Some(TlsFile {
                setting: format!("{PATH}.{name}"),
                path: PathBuf::from(v),
            })),
            None => Ok(None),
        }
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn millis(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .ok()
        .filter(|&ms| (1..=super::MAX_SECONDS as u64 * 1000).contains(&ms))
        .map(Duration::from_millis)
        .ok_or_else(|| "expected a number of milliseconds, at least 1".into())
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

fn security(p: &mut Reader) -> Result<Security, String> {
    let protocol = p
        .take_one("security.protocol")
        .map_or("PLAINTEXT".to_string(), |(_, v)| v.to_ascii_uppercase());
    let (tls, sasl) = match protocol.as_str() {
        "PLAINTEXT" => (false, false),
        "SSL" => (true, false),
        "SASL_PLAINTEXT" => (false, true),
        "SASL_SSL" => (true, true),
        other => {
            return Err(format!(
                "{PATH}.security.protocol: `{other}` is not a security protocol; expected \
                 PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            ))
        }
    };
    let tls_settings = tls_settings(p)?;
    let sasl_settings = sasl_settings(p)?;
    let security = Security {
        tls: tls.then(|| tls_settings.clone().unwrap_or_default()),
        sasl: if sasl {
            Some(sasl_settings.clone().ok_or_else(|| {
                format!(
                    "{PATH}.sasl.mechanism: security.protocol {protocol} needs a SASL mechanism; \
                     expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (GSSAPI, the \
                     Kafka clients' default, is not supported)"
                )
            })?)
        } else {
            None
        },
    };
    if !tls && tls_settings.is_some() {
        return Err(format!(
            "{PATH}: ssl.* properties are set but security.protocol is {protocol}, which has \
             no TLS; expected SSL or SASL_SSL, or remove them"
        ));
    }
    if !sasl && sasl_settings.is_some() {
        return Err(format!(
            "{PATH}: sasl.* properties are set but security.protocol is {protocol}, which has \
             no SASL; expected SASL_PLAINTEXT or SASL_SSL, or remove them"
        ));
    }
    Ok(security)
}

/// What the operator should hear about these settings (`Config::warnings`).
pub(super) fn warnings(security: &Security) -> Vec<String> {
    let mut warnings = Vec::new();
    if security.tls.as_ref().is_some_and(|t| !t.verify_hostname) {
        warnings.push(format!(
            "kafka: {PATH}.ssl.endpoint.identification.algorithm is none: brokers' \
             certificates are checked against the CAs but not against the brokers' names, so \
             anyone holding any certificate from those CAs can pose as a broker"
        ));
    }
    warnings
}

/// The ssl.* properties, if any is given.
fn tls_settings(p: &mut Reader) -> Result<Option<TlsSettings>, String> {
    let mut any = false;
    for (type_name, what) in [
        ("ssl.truststore.type", "ssl.truststore.location"),
        ("ssl.keystore.type", "ssl.keystore.location"),
    ] {
        if let Some((name, v)) = p.take_one(type_name) {
            any = true;
            if !v.eq_ignore_ascii_case("PEM") {
                return Err(format!(
                    "{PATH}.{name}: `{v}` is not supported; expected PEM (convert a JKS or \
                     PKCS12 store with keytool and openssl, and point {what} at the PEM file)"
                ));
            }
        }
    }
    let ca = match (
        p.path("ssl.ca.location")?,
        p.path("ssl.truststore.location")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{PATH}: ssl.ca.location and ssl.truststore.location both name the CAs; give one"
            ))
        }
        (a, b) => a.or(b),
    };
    let cert = p.path("ssl.certificate.location")?;
    let key = p.path("ssl.key.location")?;
    let keystore = p.path("ssl.keystore.location")?;
    let client = match (cert, key, keystore) {
        (None, None, None) => None,
        (Some(cert), Some(key), None) => Some(ClientCert { cert, key }),
        (None, None, Some(store)) => Some(ClientCert {
            cert: store.clone(),
            key: store,
        }),
        (Some(_), None, None) => {
            return Err(format!(
                "{PATH}.ssl.key.location: ssl.certificate.location is set without it; a client \
                 certificate needs its private key"
            ))
        }
        (None, Some(_), None) => {
            return Err(format!(
                "{PATH}.ssl.certificate.location: ssl.key.location is set without it; a private \
                 key needs its certificate"
            ))
        }
        _ => {
            return Err(format!(
                "{PATH}: ssl.keystore.location and ssl.certificate.location/ssl.key.location both \
                 name the client certificate; give one"
            ))
        }
    };
    let verify_hostname = match p.take_one("ssl.endpoint.identification.algorithm") {
        None => true,
        Some((_, v)) if v.eq_ignore_ascii_case("https") => true,
        Some((_, v)) if v.is_empty() || v.eq_ignore_ascii_case("none") => false,
        Some((name, v)) => {
            return Err(format!(
                "{PATH}.{name}: `{v}` is not accepted; expected https (check the broker's name, \
                 the default) or none"
            ))
        }
    };
    any |= ca.is_some() || client.is_some() || !verify_hostname;
    Ok(any.then_some(TlsSettings {
        ca,
        client,
        verify_hostname,
        verify_certificate: true,
    }))
}

/// The sasl.* properties, if any is given.
fn sasl_settings(p: &mut Reader) -> Result<Option<Sasl>, String> {
    let mechanism = p.take("sasl.mechanism", "sasl.mechanisms")?;
    let username = p.take_one("sasl.username");
    let password = match (
        p.take_one("sasl.password"),
        p.take_one("sasl.password_file"),
    ) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{PATH}: sasl.password and sasl.password_file are both set; give one"
            ))
        }
        (Some((_, v)), None) => Some(Secret::Value(v)),
        (None, Some((_, v))) => Some(Secret::File(PathBuf::from(v))),
        (None, None) => None,
    };
    let jaas = p.take_one("sasl.jaas.config").map(|(_, v)| v);
    let token = token_source(p)?;
    let Some((name, mechanism)) = mechanism else {
        if username.is_some() || password.is_some() || jaas.is_some() || token.is_some() {
            return Err(format!(
                "{PATH}.sasl.mechanism: SASL credentials are set without a mechanism; expected \
                 PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
            ));
        }
        return Ok(None);
    };
    let upper = mechanism.to_ascii_uppercase();
    let user_password = |jaas_module: &str| -> Result<(String, Secret), String> {
        let from_jaas = match &jaas {
            Some(line) => Some(parse_jaas(line, jaas_module)?),
            None => None,
        };
        match (username.clone(), password.clone(), from_jaas) {
            (Some((_, user)), Some(password), None) => Ok((user, password)),
            (None, None, Some((user, password))) => Ok((user, Secret::Value(password))),
            (_, _, Some(_)) => Err(format!(
                "{PATH}: sasl.jaas.config and sasl.username/sasl.password both give the \
                 credentials; give one"
            )),
            (None, _, None) => Err(format!(
                "{PATH}.sasl.username: {upper} needs a user name (sasl.username, or \
                 sasl.jaas.config)"
            )),
            (Some(_), None, None) => Err(format!(
                "{PATH}.sasl.password: {upper} needs a password (sasl.password or \
                 sasl.password_file, or sasl.jaas.config)"
            )),
        }
    };
    let sasl = match upper.as_str() {
        "PLAIN" => {
            let (username, password) = user_password("PlainLoginModule")?;
            Sasl::Plain { username, password }
        }
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            let hash = if upper == "SCRAM-SHA-256" {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            let (username, password) = user_password("ScramLoginModule")?;
            Sasl::Scram {
                hash,
                username,
                password,
            }
        }
        "OAUTHBEARER" => {
            if username.is_some() || password.is_some() || jaas.is_some() {
                return Err(format!(
                    "{PATH}: OAUTHBEARER takes a token (sasl.oauthbearer.token.file or \
                     sasl.oauthbearer.token.command), not sasl.username, sasl.password or \
                     sasl.jaas.config"
                ));
            }
            Sasl::OAuthBearer(token.clone().ok_or_else(|| {
                format!(
                    "{PATH}: OAUTHBEARER needs a token: sasl.oauthbearer.token.file (read at \
                     every authentication) or sasl.oauthbearer.token.command (run to print one)"
                )
            })?)
        }
        "GSSAPI" | "AWS_MSK_IAM" => {
            return Err(format!(
                "{PATH}.{name}: `{mechanism}` is not supported (yet); expected PLAIN, \
                 SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (for MSK IAM, a token command that \
                 prints a signed token, with OAUTHBEARER)"
            ))
        }
        _ => {
            return Err(format!(
                "{PATH}.{name}: `{mechanism}` is not a SASL mechanism we know; expected PLAIN, \
                 SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
            ))
        }
    };
    if token.is_some() && !matches!(sasl, Sasl::OAuthBearer(_)) {
        return Err(format!(
            "{PATH}: sasl.oauthbearer.* properties are set but sasl.mechanism is {upper}; remove \
             them or use OAUTHBEARER"
        ));
    }
    Ok(Some(sasl))
}

fn token_source(p: &mut Reader) -> Result<Option<TokenSource>, String> {
    let file = p.take_one("sasl.oauthbearer.token.file").map(|(_, v)| v);
    let url = p.take_one("sasl.oauthbearer.token.endpoint.url");
    let url_file = match url {
        None => None,
        Some((_, url)) => match url.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => Some(path.to_string()),
            _ => {
                return Err(format!(
                    "{PATH}.sasl.oauthbearer.token.endpoint.url: only a file:///path URL is \
                     supported (the token is read from that file at every authentication); \
                     for an OAuth endpoint, use sasl.oauthbearer.token.command with your \
                     provider's token tool"
                ))
            }
        },
    };
    let command = p.take_one("sasl.oauthbearer.token.command").map(|(_, v)| v);
    let timeout = p.parse("sasl.oauthbearer.token.command.timeout.ms", "", millis)?;
    if timeout.is_some() && command.is_none() {
        return Err(format!(
            "{PATH}.sasl.oauthbearer.token.command.timeout.ms: set without \
             sasl.oauthbearer.token.command"
        ));
    }
    let sources = [file.is_some(), url_file.is_some(), command.is_some()];
    if sources.iter().filter(|&&s| s).count() > 1 {
        return Err(format!(
            "{PATH}: give one token source: sasl.oauthbearer.token.file, \
             sasl.oauthbearer.token.endpoint.url (file://) or sasl.oauthbearer.token.command"
        ));
    }
    Ok(if let Some(path) = file.or(url_file) {
        if path.is_empty() {
            return Err(format!(
                "{PATH}.sasl.oauthbearer.token.file: the path is empty"
            ));
        }
        Some(TokenSource::File(PathBuf::from(path)))
    } else {
        command.map(|command| TokenSource::Command {
            command,
            timeout: timeout.unwrap_or(DEFAULT_TOKEN_COMMAND_TIMEOUT),
        })
    })
}

/// The user name and password of a Java `sasl.jaas.config` line for `module` (the class's
/// last name: `PlainLoginModule`, `ScramLoginModule`):
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
fn parse_jaas(line: &str, module: &str) -> Result<(String, String), String> {
    let at = "sasl.jaas.config";
    let line = line.trim();
    let (class, rest) = line.split_once(char::is_whitespace).ok_or_else(|| {
        format!(
            "{PATH}.{at}: expected `<LoginModule class> required username=\"…\" password=\"…\";`"
        )
    })?;
    if class.rsplit('.').next() != Some(module) {
        return Err(format!(
            "{PATH}.{at}: the login module `{}` does not match sasl.mechanism; expected {module}",
            class.rsplit('.').next().unwrap_or(class)
        ));
    }
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix("required")
        .ok_or_else(|| format!("{PATH}.{at}: expected `required` after the login module"))?;
    let mut options = BTreeMap::new();
    let mut chars = rest.trim_end().trim_end_matches(';').chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|&c| c != '=' && !c.is_whitespace())).collect();
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!(
                "{PATH}.{at}: expected option=\"value\" pairs after `required`"
            ));
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "{PATH}.{at}: an option's value is not closed with `\"`"
                        ))
                    }
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect()
        };
        options.insert(key, value);
    }
    let mut get = |name: &str| {
        options
            .remove(name)
            .ok_or_else(|| format!("{PATH}.{at}: has no {name}=\"…\""))
    };
    let username = get("username")?;
    let password = get("password")?;
    Ok((username, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(yaml: &str) -> Result<FromProperties, String> {
        let p: Properties = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        interpret(p)
    }

    #[test]
    fn confluent_cloud_librdkafka_lines() {
        let got = props(
            "bootstrap.servers: pkc-1.example.cloud:9092\n\
             security.protocol: SASL_SSL\n\
             sasl.mechanisms: PLAIN\n\
             sasl.username: KEY\n\
             sasl.password: SECRET\n\
             acks: all\n\
             client.dns.lookup: use_all_dns_ips\n",
        )
        .unwrap();
        assert_eq!(
            got.bootstrap,
            Some(vec!["pkc-1.example.cloud:9092".to_string()])
        );
        assert_eq!(got.acks, Some(Acks::All));
        assert_eq!(got.security.protocol(), "SASL_SSL");
        assert_eq!(got.security.tls, Some(TlsSettings::default()));
        assert_eq!(
            got.security.sasl,
            Some(Sasl::Plain {
                username: "KEY".into(),
                password: Secret::Value("SECRET".into())
            })
        );
        assert!(!format!("{got:?}").contains("SECRET"), "{got:?}");
    }

    #[test]
    fn java_jaas_lines() {
        let got = props(
            "security.protocol: SASL_SSL\n\
             sasl.mechanism: SCRAM-SHA-512\n\
             sasl.jaas.config: org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"p\\\"w;x\";\n",
        )
        .unwrap();
        assert_eq!(
            got.security.sasl,
            Some(Sasl::Scram {
                hash: ScramHash::Sha512,
                username: "alice".into(),
                password: Secret::Value("p\"w;x".into())
            })
        );
        let e = props(
            "security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\n\
             sasl.jaas.config: org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"b\";\n",
        )
        .unwrap_err();
        assert!(
            e.contains("does not match sasl.mechanism; expected PlainLoginModule"),
            "{e}"
        );
    }

    #[test]
    fn aiven_mutual_tls() {
        let got = props(
            "security.protocol: SSL\n\
             ssl.ca.location: /etc/kafka/ca.pem\n\
             ssl.certificate.location: /etc/kafka/service.cert\n\
             ssl.key.location: /etc/kafka/service.key\n",
        )
        .unwrap();
        let tls = got.security.tls.unwrap();
        assert_eq!(tls.ca.unwrap().path, PathBuf::from("/etc/kafka/ca.pem"));
        let client = tls.client.unwrap();
        assert_eq!(client.key.path, PathBuf::from("/etc/kafka/service.key"));
        assert!(client.key.setting.ends_with("properties.ssl.key.location"));
        assert!(tls.verify_hostname);
        assert_eq!(got.security.sasl, None);
    }

    #[test]
    fn token_sources() {
        let got = props(
            "security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n\
             sasl.oauthbearer.token.endpoint.url: file:///run/token\n",
        )
        .unwrap();
        assert_eq!(
            got.security.sasl,
            Some(Sasl::OAuthBearer(TokenSource::File("/run/token".into())))
        );
        let got = props(
            "security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n\
             sasl.oauthbearer.token.command: gcloud auth print-access-token\n\
             sasl.oauthbearer.token.command.timeout.ms: 2500\n",
        )
        .unwrap();
        assert_eq!(
            got.security.sasl,
            Some(Sasl::OAuthBearer(TokenSource::Command {
                command: "gcloud auth print-access-token".into(),
                timeout: Duration::from_millis(2500)
            }))
        );
    }

    #[test]
    fn refusals_name_the_property_and_what_it_is() {
        let cases = [
            ("linger.ms: 5\n", "`linger.ms` is a Kafka client property that repliqate does not support"),
            ("group.id: g\n", "`group.id` is a Kafka consumer property"),
            ("securty.protocol: SSL\n", "`securty.protocol` is not a Kafka client property (a typo?)"),
            ("security.protocol: TLS\n", "`TLS` is not a security protocol"),
            ("security.protocol: SASL_SSL\n", "needs a SASL mechanism"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: GSSAPI\n", "`GSSAPI` is not supported"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\nsasl.username: u\n", "needs a password"),
            ("security.protocol: SSL\nsasl.username: u\n", "without a mechanism"),
            ("sasl.mechanism: PLAIN\nsasl.username: u\nsasl.password: p\n", "security.protocol is PLAINTEXT, which has no SASL"),
            ("ssl.ca.location: /ca.pem\n", "which has no TLS"),
            ("security.protocol: SSL\nssl.keystore.type: JKS\n", "`JKS` is not supported; expected PEM"),
            ("security.protocol: SSL\nssl.certificate.location: /c.pem\n", "needs its private key"),
            ("security.protocol: SSL\nssl.endpoint.identification.algorithm: yes\n", "expected https"),
            ("acks: 0\n", "acks 0 (no acknowledgement) is not offered"),
            ("sasl.mechanism: PLAIN\nsasl.mechanisms: SCRAM-SHA-256\n", "disagree"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n", "needs a token"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\nsasl.oauthbearer.token.endpoint.url: https://idp/token\n", "only a file:///path URL"),
            ("client.dns.lookup: resolve_canonical_bootstrap_servers_only\n", "expected use_all_dns_ips"),
        ];
        for (yaml, expected) in cases {
            let e = props(yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml}: {e}");
            assert!(e.starts_with(PATH), "{yaml}: {e}");
        }
    }

    #[test]
    fn endpoint_identification_none_turns_the_name_check_off() {
        for value in ["none", "''"] {
            let got = props(&format!(
                "security.protocol: SSL\nssl.endpoint.identification.algorithm: {value}\n"
            ))
            .unwrap();
            assert!(!got.security.tls.unwrap().verify_hostname);
        }
    }
}
