//! `kafka_target.properties` and `kafka_target.properties_file`: Kafka client properties under
//! their librdkafka or Java names, so that a provider's client config can be pasted in as it
//! is, as YAML or as the Java `.properties` file Kafka's own tools take.
//!
//! What repliqate implements is read into typed settings: the security settings
//! (`security.protocol`, `sasl.*`, `ssl.*`: `sasl.rs`, `tls.rs`), and the producer settings
//! that are also YAML keys of `kafka_target` (`bootstrap.servers` is `brokers`, `acks` is
//! `acks`, ...; setting both is an error). Of the rest, as librdkafka does, a property of
//! another Kafka client (a consumer's, an admin client's, Streams', Connect's) or of a Schema
//! Registry client is ignored with one warning naming it, and so is a producer tuning setting
//! our producer has no use for (`linger.ms`, `batch.size`, ...). Only a name no Kafka client
//! knows is an error (a typo, with the closest known name), and so are settings whose loss
//! would change what is delivered or how it is secured (`transactional.id`, a security setting
//! we do not implement).
//!
//! Our own additions, named in Kafka's style, are the `*_file` forms of secrets
//! (`sasl.password_file`, `ssl.key.password_file`, ...) and the OAUTHBEARER token's source
//! (`sasl.oauthbearer.token.file`, `sasl.oauthbearer.token.command`,
//! `sasl.oauthbearer.token.command.timeout.ms`).
//!
//! A secret read from a properties file (a password, a JAAS line, an inline key) is a
//! `Secret::InProperties`: read from the file again at each use, like the other secret files.

mod sasl;
mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::fields::expand_env;
use super::known_properties::{closest, describe, scope, Scope};
use super::{Acks, Compression};
use crate::kafka::Security;
use crate::secret::Secret;

/// Where errors point.
const PATH: &str = "repliqate.replication.kafka_target.properties";
/// Where errors about the file point.
const FILE: &str = "repliqate.replication.kafka_target.properties_file";

/// Largest properties file we read: a client config is a few kilobytes.
const MAX_PROPERTIES_FILE: u64 = 1024 * 1024;

/// One property's value (numbers and booleans as their text, `${VAR}` expanded in YAML), and
/// where it was given. No `Debug`: the value may be a secret.
#[derive(Clone)]
struct Value {
    text: String,
    /// The properties file and line, if it came from `properties_file`.
    file: Option<(PathBuf, usize)>,
}

/// The properties as given: name → value. A name given twice in the YAML is an error.
#[derive(Clone, Default)]
pub(super) struct Properties(BTreeMap<String, Value>);

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
                    let value = Value {
                        text: value.0,
                        file: None,
                    };
                    if out.insert(name.clone(), value).is_some() {
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

impl Properties {
    /// `over`'s properties over these: a name in both takes `over`'s value (a pipeline's over
    /// the shared ones).
    pub(super) fn overlay(&mut self, over: Properties) {
        self.0.extend(over.0);
    }

    /// Adds the properties of the Java `.properties` file at `path`, read as Kafka's tools read
    /// it (no `${VAR}` expansion: a Java client does none). A name also given under
    /// `properties:` is an error naming both; a name given twice in the file takes its last
    /// value, as in Java, with a warning.
    pub(super) fn add_file(
        &mut self,
        path: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let shown = path.display();
        let bytes = crate::secret::read_capped(path, MAX_PROPERTIES_FILE)
            .map_err(|e| format!("{FILE}: {shown}: {e}"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| format!("{FILE}: {shown}: not UTF-8 text"))?;
        let entries = crate::javaprops::parse_properties(&text)
            .map_err(|e| format!("{FILE}: {shown}: {e}"))?;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for entry in entries {
            if let Some(first) = seen.insert(entry.name.clone(), entry.line) {
                warnings.push(format!(
                    "kafka: {FILE} {shown}: `{}` is given on lines {first} and {}; the last \
                     one is used, as by Java",
                    entry.name, entry.line
                ));
            }
            if let Some(Value { file: None, .. }) = self.0.get(&entry.name) {
                return Err(format!(
                    "{PATH}.{name}: also set in {FILE} {shown} (line {line}); give it in one place",
                    name = entry.name,
                    line = entry.line
                ));
            }
            self.0.insert(
                entry.name,
                Value {
                    // Kafka's ConfigDef trims what Properties.load leaves around a value.
                    text: crate::javaprops::java_trim(&entry.value).to_string(),
                    file: Some((path.to_owned(), entry.line)),
                },
            );
        }
        Ok(())
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

/// What the properties say: the security settings, producer settings that the YAML also
/// has keys for (`build` merges them, refusing a setting given both ways), and the properties
/// ignored, each with why (for `Config::warnings`).
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
    pub ignored: Vec<String>,
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

/// Every property repliqate reads.
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
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.key.password_file",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.password",
    "ssl.truststore.password_file",
    "ssl.truststore.certificates",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.password",
    "ssl.keystore.password_file",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
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

/// Security properties repliqate does not read but may ignore, as what they set is what it
/// does anyway or concerns only the Java client's machinery: name (or prefix, ending in `.`)
/// and why.
const IGNORED_SECURITY: &[(&str, &str)] = &[
    ("ssl.protocol", "repliqate speaks TLS 1.2 and 1.3 (rustls)"),
    (
        "ssl.enabled.protocols",
        "repliqate speaks TLS 1.2 and 1.3 (rustls)",
    ),
    (
        "ssl.cipher.suites",
        "repliqate offers rustls's cipher suites",
    ),
    (
        "ssl.curves.list",
        "repliqate offers rustls's key exchange groups",
    ),
    (
        "ssl.sigalgs.list",
        "repliqate offers rustls's signature schemes",
    ),
    (
        "ssl.keymanager.algorithm",
        "a Java TLS implementation detail",
    ),
    (
        "ssl.trustmanager.algorithm",
        "a Java TLS implementation detail",
    ),
    (
        "ssl.secure.random.implementation",
        "a Java TLS implementation detail",
    ),
    ("ssl.provider", "a Java TLS implementation detail"),
    ("sasl.login.", "a setting of the Java client's login thread"),
    (
        "sasl.kerberos.",
        "a GSSAPI (Kerberos) setting; repliqate does not offer GSSAPI",
    ),
];

/// Our own names, for suggesting one where a name is mistyped.
const OURS: &[&str] = &[
    "sasl.password_file",
    "sasl.oauthbearer.token.file",
    "sasl.oauthbearer.token.command",
    "sasl.oauthbearer.token.command.timeout.ms",
    "ssl.key.password_file",
    "ssl.keystore.password_file",
    "ssl.truststore.password_file",
];

/// Reads the properties into typed settings, checking that they fit together. Properties
/// repliqate does not read are ignored with a warning each, or refused (see the module
/// documentation).
pub(super) fn interpret(properties: Properties) -> Result<FromProperties, String> {
    // Where the errors that name no single property point, when every property came from the
    // file: the file, not `properties:`.
    let mut files = properties.0.values().map(|v| v.file.as_ref().map(|f| &f.0));
    let only_file = match files.next() {
        Some(Some(first)) if files.all(|f| f == Some(first)) => Some(first.clone()),
        _ => None,
    };
    read_all(properties).map_err(|e| match (&only_file, e.strip_prefix(PATH)) {
        (Some(file), Some(rest)) => {
            let rest = rest
                .strip_prefix('.')
                .unwrap_or(rest.trim_start_matches(':'));
            format!("{FILE} {}: {}", file.display(), rest.trim_start())
        }
        _ => e,
    })
}

fn read_all(properties: Properties) -> Result<FromProperties, String> {
    let mut p = Reader {
        origins: properties
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.file.clone()))
            .collect(),
        props: properties.0.into_iter().map(|(k, v)| (k, v.text)).collect(),
    };
    let mut ignored = Vec::new();
    let names: Vec<String> = p.props.keys().cloned().collect();
    for name in names {
        if ACCEPTED.contains(&name.as_str()) {
            continue;
        }
        let why = not_read(&name, &p.props[&name]).map_err(|e| format!("{}: {e}", p.at(&name)))?;
        ignored.push(format!("kafka: {} is ignored: {why}", p.at(&name)));
        p.props.remove(&name);
    }
    let mut out = FromProperties {
        bootstrap: p
            .take("bootstrap.servers", "metadata.broker.list")?
            .map(|(_, v)| {
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
        ignored,
    };
    if let Some((name, value)) = p.take_one("client.dns.lookup") {
        // We always try every address a name resolves to, as use_all_dns_ips does.
        if value != "use_all_dns_ips" && value != "default" {
            return Err(format!(
                "{}: `{value}` is not supported; expected use_all_dns_ips (what repliqate \
                 does: every resolved address is tried in turn)",
                p.at(&name)
            ));
        }
    }
    out.security = security(&mut p)?;
    Ok(out)
}

/// Why a property repliqate does not read is ignored, or (`Err`) why it is refused.
fn not_read(name: &str, value: &str) -> Result<String, String> {
    // Every Kafka client property is named in lower case. Anything else is not echoed: in a
    // properties file, a value continued without a trailing `\` (a PEM key, a JAAS line) makes
    // its next lines "names", and they may be secret.
    if name.len() > 100
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(
            "not a property name (a value continued on the next line without a trailing `\\`?)"
                .into(),
        );
    }
    if name == "config.providers" || name.starts_with("config.providers.") {
        return Err(format!(
            "`{name}` is not supported: repliqate does not expand Kafka's ${{provider:path:key}} \
             references, and would send them as they are; use ${{VAR}} in the YAML, or the \
             *_file forms of the secrets"
        ));
    }
    if name == "ssl.enabled.protocols" {
        let versions: Vec<&str> = value.split(',').map(str::trim).collect();
        return if versions.contains(&"TLSv1.2") {
            Ok("repliqate speaks TLS 1.2 and 1.3 (rustls)".into())
        } else {
            Err(format!(
                "`{value}` leaves out TLSv1.2, and repliqate speaks TLS 1.2 and 1.3 (rustls), \
                 either as the broker chooses; expected a list with TLSv1.2, or remove it"
            ))
        };
    }
    if name == "sasl.login.class" || name == "sasl.login.callback.handler.class" {
        return Err(format!(
            "`{name}` is a Java class that supplies the credentials, which repliqate cannot \
             run; for OAUTHBEARER use sasl.oauthbearer.token.file or \
             sasl.oauthbearer.token.command"
        ));
    }
    if name == "transactional.id" {
        return Err(format!(
            "`{name}` is not supported: repliqate does not publish in transactions (yet); it \
             delivers at least once, and every message carries a checksum for consumers to \
             drop duplicates"
        ));
    }
    if name == "enable.ssl.certificate.verification" {
        return match value {
            "true" => Ok("repliqate always verifies the broker's certificate".into()),
            _ => Err(format!(
                "`{name}: {value}` is not offered: repliqate always verifies the broker's \
                 certificate; expected true, or give the CA that signed it as ssl.ca.location \
                 (ssl.endpoint.identification.algorithm: none skips the name check only)"
            )),
        };
    }
    let known = scope(name).is_some()
        || IGNORED_SECURITY
            .iter()
            .any(|(k, _)| name == *k || (k.ends_with('.') && name.starts_with(k)));
    let security = ["security.", "ssl.", "sasl."]
        .iter()
        .any(|prefix| name.starts_with(prefix));
    if security && known {
        let ignorable = IGNORED_SECURITY
            .iter()
            .find(|(known, _)| name == *known || (known.ends_with('.') && name.starts_with(known)));
        return match ignorable {
            Some((_, why)) => Ok(why.to_string()),
            None => Err(format!(
                "`{name}` is a Kafka security property that repliqate does not support (yet); \
                 security settings are never ignored; accepted: {}",
                ACCEPTED
                    .iter()
                    .filter(|a| a.starts_with("ssl.") || a.starts_with("sasl."))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    match scope(name) {
        None => Err(match closest(name, OURS) {
            Some(known) => format!(
                "`{name}` is not a Kafka client property (a typo?); did you mean `{known}`?"
            ),
            None => format!(
                "`{name}` is not a Kafka client property (a typo?); accepted: {}",
                ACCEPTED.join(", ")
            ),
        }),
        Some(Scope::Producer | Scope::Both) => Ok(format!(
            "{} that repliqate's producer does not use",
            describe(scope(name).unwrap_or(Scope::Both))
        )),
        Some(other) => Ok(format!("{}; repliqate only produces", describe(other))),
    }
}

/// The properties, as they are taken one by one, and where each was given.
struct Reader {
    props: BTreeMap<String, String>,
    origins: BTreeMap<String, Option<(PathBuf, usize)>>,
}

impl Reader {
    /// Where `name` was given, for errors: `properties.NAME` or the file and line.
    fn at(&self, name: &str) -> String {
        match self.origins.get(name) {
            Some(Some((path, line))) => {
                format!("{FILE} {} line {line}: {name}", path.display())
            }
            _ => format!("{PATH}.{name}"),
        }
    }

    /// `text` (the value of `name`) as a secret: from a properties file, one read from the
    /// file again at each use; `jaas_option`: the option of the JAAS line `name` holds.
    fn secret(&self, name: &str, text: String, jaas_option: Option<&str>) -> Secret {
        match self.origins.get(name) {
            Some(Some((path, _))) => Secret::InProperties {
                path: path.clone(),
                name: name.to_string(),
                jaas_option: jaas_option.map(String::from),
            },
            _ => Secret::Value(text),
        }
    }

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
                .map_err(|e| format!("{}: `{value}` is not accepted: {e}", self.at(&name))),
        }
    }

    /// A secret given as `name` or, in a file, as `name_file` (not both).
    fn password(&mut self, name: &str) -> Result<Option<crate::tls::Password>, String> {
        let file_name = format!("{name}_file");
        let (setting, secret) = match (self.take_one(name), self.take_one(&file_name)) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{PATH}: {name} and {file_name} are both set; give one"
                ))
            }
            (Some((_, v)), None) => (self.at(name), self.secret(name, v, None)),
            (None, Some((_, v))) => (self.at(&file_name), Secret::File(PathBuf::from(v))),
            (None, None) => return Ok(None),
        };
        Ok(Some(crate::tls::Password { setting, secret }))
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
    let tls_settings = tls::settings(p)?;
    let sasl_settings = sasl::settings(p)?;
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

#[cfg(test)]
mod tests;
