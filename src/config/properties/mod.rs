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
/// where it was given.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    /// The properties file and line, if it came from `properties_file`.
    file: Option<(PathBuf, usize)>,
}

/// The properties as given: name → value. A name given twice in the YAML is an error.
#[derive(Default)]
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
                    text: entry.value,
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
        let secret = match (self.take_one(name), self.take_one(&file_name)) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{PATH}: {name} and {file_name} are both set; give one"
                ))
            }
            (Some((_, v)), None) => Some(self.secret(name, v, None)),
            (None, Some((_, v))) => Some(Secret::File(PathBuf::from(v))),
            (None, None) => None,
        };
        Ok(secret.map(|secret| crate::tls::Password {
            setting: self.at(name),
            secret,
        }))
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
mod tests {
    use super::*;
    use crate::kafka::{Sasl, ScramHash, TokenSource};
    use crate::tls::{ClientCert, Password, Pem, Store, StoreType, TlsFile, TlsSettings, Trust};

    fn props(yaml: &str) -> Result<FromProperties, String> {
        let p: Properties = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        interpret(p)
    }

    /// `text` as a properties file (in a directory of the test's own), read by `add_file`.
    fn file_props(
        name: &str,
        text: &str,
    ) -> (PathBuf, Result<FromProperties, String>, Vec<String>) {
        let dir =
            std::env::temp_dir().join(format!("repliqate-props-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("client.properties");
        std::fs::write(&path, text).unwrap();
        let mut warnings = Vec::new();
        let mut p = Properties::default();
        let got = p.add_file(&path, &mut warnings).and_then(|()| interpret(p));
        (path, got, warnings)
    }

    fn pem_file(setting: &str, path: &str) -> Pem {
        Pem::File(TlsFile {
            setting: format!("{PATH}.{setting}"),
            path: path.into(),
        })
    }

    #[test]
    fn confluent_cloud_librdkafka_lines() {
        let got = props(
            "bootstrap.servers: pkc-1.example.cloud:9092\n\
             security.protocol: SASL_SSL\n\
             sasl.mechanisms: PLAIN\n\
             sasl.username: KEY\n\
             sasl.password: SECRET\n\
             session.timeout.ms: 45000\n\
             schema.registry.url: https://psrc-1.example.cloud\n\
             basic.auth.credentials.source: USER_INFO\n\
             basic.auth.user.info: SRKEY:SRSECRET\n\
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
        // One warning each for the consumer's and the Schema Registry client's properties,
        // naming them and never their values.
        let ignored = got.ignored.join("\n");
        for (name, what) in [
            ("session.timeout.ms", "a Kafka consumer property"),
            ("schema.registry.url", "a Schema Registry client property"),
            (
                "basic.auth.credentials.source",
                "a Schema Registry client property",
            ),
            ("basic.auth.user.info", "a Schema Registry client property"),
        ] {
            assert_eq!(
                got.ignored
                    .iter()
                    .filter(|w| w.contains(&format!("{PATH}.{name} is ignored: {what}")))
                    .count(),
                1,
                "{name}: {ignored}"
            );
        }
        assert_eq!(got.ignored.len(), 4, "{ignored}");
        assert!(
            !ignored.contains("SRSECRET") && !ignored.contains("45000"),
            "{ignored}"
        );
    }

    #[test]
    fn java_jaas_lines_take_either_quote() {
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
        // Confluent Cloud's Java snippet quotes with ' (Kafka's parser takes both).
        let got = props(
            "security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\n\
             sasl.jaas.config: \"org.apache.kafka.common.security.plain.PlainLoginModule required username='KEY' password='SE\\\\'CRET';\"\n",
        )
        .unwrap();
        assert_eq!(
            got.security.sasl,
            Some(Sasl::Plain {
                username: "KEY".into(),
                password: Secret::Value("SE'CRET".into())
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
        assert_eq!(
            tls.ca,
            Some(Trust::Pem(pem_file("ssl.ca.location", "/etc/kafka/ca.pem")))
        );
        assert_eq!(
            tls.client,
            Some(ClientCert::Pem {
                cert: pem_file("ssl.certificate.location", "/etc/kafka/service.cert"),
                key: pem_file("ssl.key.location", "/etc/kafka/service.key"),
                key_password: None,
            })
        );
        assert!(tls.verify_hostname);
        assert_eq!(got.security.sasl, None);
    }

    #[test]
    fn java_keystores_with_passwords() {
        let got = props(
            "security.protocol: SSL\n\
             ssl.keystore.type: PKCS12\n\
             ssl.keystore.location: /etc/kafka/client.p12\n\
             ssl.keystore.password: STOREPW\n\
             ssl.key.password: KEYPW\n\
             ssl.truststore.type: pkcs12\n\
             ssl.truststore.location: /etc/kafka/trust.p12\n\
             ssl.truststore.password_file: /run/secrets/trust\n",
        )
        .unwrap();
        let tls = got.security.tls.unwrap();
        let password = |setting: &str, secret: Secret| {
            Some(Password {
                setting: format!("{PATH}.{setting}"),
                secret,
            })
        };
        assert_eq!(
            tls.client,
            Some(ClientCert::Store {
                store: Store {
                    file: TlsFile {
                        setting: format!("{PATH}.ssl.keystore.location"),
                        path: "/etc/kafka/client.p12".into()
                    },
                    kind: StoreType::Pkcs12,
                    password: password("ssl.keystore.password", Secret::Value("STOREPW".into())),
                },
                key_password: password("ssl.key.password", Secret::Value("KEYPW".into())),
            })
        );
        assert_eq!(
            tls.ca,
            Some(Trust::Store(Store {
                file: TlsFile {
                    setting: format!("{PATH}.ssl.truststore.location"),
                    path: "/etc/kafka/trust.p12".into()
                },
                kind: StoreType::Pkcs12,
                password: password(
                    "ssl.truststore.password",
                    Secret::File("/run/secrets/trust".into())
                ),
            }))
        );
        let shown = format!("{tls:?}");
        assert!(
            !shown.contains("STOREPW") && !shown.contains("KEYPW"),
            "{shown}"
        );
        // librdkafka's keystore has no type: the file says which it is when read.
        let got = props(
            "security.protocol: SSL\nssl.keystore.location: /k.p12\nssl.keystore.password: x\n",
        )
        .unwrap();
        assert!(matches!(
            got.security.tls.unwrap().client,
            Some(ClientCert::Store {
                store: Store {
                    kind: StoreType::Detect,
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn inline_pem_from_librdkafka_and_java() {
        let cert = "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----";
        let key = "-----BEGIN PRIVATE KEY-----\\nKEYBODY\\n-----END PRIVATE KEY-----";
        for (ca_name, cert_name, key_name, types) in [
            ("ssl.ca.pem", "ssl.certificate.pem", "ssl.key.pem", ""),
            (
                "ssl.truststore.certificates",
                "ssl.keystore.certificate.chain",
                "ssl.keystore.key",
                "ssl.keystore.type: PEM\nssl.truststore.type: PEM\n",
            ),
        ] {
            let got = props(&format!(
                "security.protocol: SSL\n{types}{ca_name}: \"{cert}\"\n{cert_name}: \"{cert}\"\n{key_name}: \"{key}\"\n"
            ))
            .unwrap();
            let tls = got.security.tls.unwrap();
            assert!(
                matches!(&tls.ca, Some(Trust::Pem(Pem::Inline { setting, .. })) if setting.ends_with(ca_name)),
                "{tls:?}"
            );
            assert!(
                matches!(&tls.client, Some(ClientCert::Pem { key: Pem::Inline { setting, .. }, .. }) if setting.ends_with(key_name)),
                "{tls:?}"
            );
            assert!(!format!("{tls:?}").contains("KEYBODY"));
        }
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
    fn other_clients_properties_are_ignored_with_a_warning_naming_them() {
        let got = props(
            "group.id: g\nlinger.ms: 5\napplication.id: app\nssl.enabled.protocols: TLSv1.2\n\
             enable.ssl.certificate.verification: true\nsasl.login.refresh.buffer.seconds: 300\n",
        )
        .unwrap();
        let ignored = got.ignored.join("\n");
        for expected in [
            "properties.group.id is ignored: a Kafka consumer property; repliqate only produces",
            "properties.linger.ms is ignored: a Kafka producer property that repliqate's producer does not use",
            "properties.application.id is ignored: a Kafka Streams property; repliqate only produces",
            "properties.ssl.enabled.protocols is ignored: repliqate speaks TLS 1.2 and 1.3",
            "properties.enable.ssl.certificate.verification is ignored",
            "properties.sasl.login.refresh.buffer.seconds is ignored",
        ] {
            assert!(ignored.contains(expected), "{expected}:\n{ignored}");
        }
        assert_eq!(got.ignored.len(), 6, "{ignored}");
    }

    #[test]
    fn refusals_name_the_property_and_what_it_is() {
        let cases = [
            ("securty.protocol: SSL\n", "`securty.protocol` is not a Kafka client property (a typo?); did you mean `security.protocol`?"),
            ("sasl.pasword_file: /p\n", "did you mean `sasl.password_file`?"),
            ("qwertyuiop: 1\n", "`qwertyuiop` is not a Kafka client property (a typo?); accepted:"),
            ("transactional.id: t\n", "`transactional.id` is not supported"),
            ("enable.ssl.certificate.verification: false\n", "always verifies the broker's certificate"),
            ("ssl.crl.location: /crl.pem\n", "security settings are never ignored"),
            ("security.protocol: TLS\n", "`TLS` is not a security protocol"),
            ("security.protocol: SASL_SSL\n", "needs a SASL mechanism"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: GSSAPI\n", "`GSSAPI` is not supported"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\nsasl.username: u\n", "needs a password"),
            ("security.protocol: SSL\nsasl.username: u\n", "without a mechanism"),
            ("sasl.mechanism: PLAIN\nsasl.username: u\nsasl.password: p\n", "security.protocol is PLAINTEXT, which has no SASL"),
            ("ssl.ca.location: /ca.pem\n", "which has no TLS"),
            ("security.protocol: SSL\nssl.keystore.type: JKS\n", "keytool -importkeystore"),
            ("security.protocol: SSL\nssl.keystore.type: BCFKS\n", "`BCFKS` is not supported; expected PEM or PKCS12"),
            ("security.protocol: SSL\nssl.certificate.location: /c.pem\n", "without its private key"),
            ("security.protocol: SSL\nssl.key.pem: \"-----BEGIN PRIVATE KEY-----\"\n", "without its certificate"),
            ("security.protocol: SSL\nssl.key.pem: not pem\n", "expected PEM text"),
            ("security.protocol: SSL\nssl.ca.location: /a\nssl.ca.pem: \"-----BEGIN CERTIFICATE-----\"\n", "ssl.ca.location and ssl.ca.pem all name the CAs"),
            ("security.protocol: SSL\nssl.key.password: a\nssl.key.password_file: /b\n", "both set"),
            ("security.protocol: SSL\nssl.endpoint.identification.algorithm: yes\n", "expected https"),
            ("acks: 0\n", "acks 0 (no acknowledgement) is not offered"),
            ("sasl.mechanism: PLAIN\nsasl.mechanisms: SCRAM-SHA-256\n", "disagree"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n", "needs a token"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\nsasl.oauthbearer.token.endpoint.url: https://idp/token\n", "only a file:///path URL"),
            ("client.dns.lookup: resolve_canonical_bootstrap_servers_only\n", "expected use_all_dns_ips"),
            ("security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\nsasl.jaas.config: org.apache.kafka.common.security.plain.PlainLoginModule required username='u' password='SECRETPW'\n", "sasl.jaas.config"),
        ];
        for (yaml, expected) in cases {
            let e = props(yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml}: {e}");
            assert!(e.starts_with(PATH), "{yaml}: {e}");
            assert!(!e.contains("SECRETPW"), "{yaml}: {e}");
        }
    }

    #[test]
    fn a_properties_file_is_read_as_java_reads_it_and_its_secrets_are_read_again_at_each_use() {
        let (path, got, warnings) = file_props(
            "java",
            "# Confluent Cloud, Java\n\
             bootstrap.servers=pkc-1.example.cloud:9092\n\
             security.protocol : SASL_SSL\n\
             ! a comment of the other kind\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n    \
             required username='KEY' password='SECRET';\n\
             sasl.mechanism=PLAIN\n\
             acks=1\n\
             acks=all\n",
        );
        let got = got.unwrap();
        assert_eq!(
            got.acks,
            Some(Acks::All),
            "the last of a name given twice, as Java"
        );
        assert!(
            warnings
                .join("\n")
                .contains("`acks` is given on lines 8 and 9"),
            "{warnings:?}"
        );
        let password = Secret::InProperties {
            path: path.clone(),
            name: "sasl.jaas.config".into(),
            jaas_option: Some("password".into()),
        };
        assert_eq!(
            got.security.sasl,
            Some(Sasl::Plain {
                username: "KEY".into(),
                password: password.clone()
            })
        );
        assert_eq!(password.read("x").unwrap(), "SECRET");
        // Rotated in the file: the next read has the new one.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("'SECRET'", "'ROTATED'");
        std::fs::write(&path, text).unwrap();
        assert_eq!(password.read("x").unwrap(), "ROTATED");
        assert!(!format!("{got:?}").contains("ROTATED"));

        // Errors point at the file and the line.
        let (_, got, _) = file_props("bad", "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\nacks=2\n");
        let e = got.unwrap_err();
        assert!(
            e.contains("properties_file") && e.contains("line 5: acks"),
            "{e}"
        );
        let (_, got, _) = file_props("typo", "securty.protocol=SSL\n");
        let e = got.unwrap_err();
        assert!(
            e.contains("line 1: securty.protocol")
                && e.contains("did you mean `security.protocol`"),
            "{e}"
        );
    }

    #[test]
    fn a_property_in_the_file_and_the_yaml_is_an_error_naming_both() {
        let dir = std::env::temp_dir().join(format!("repliqate-props-{}-both", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("client.properties");
        std::fs::write(&path, "acks=all\n").unwrap();
        let mut p: Properties = serde_yaml::from_str("acks: 1\n").unwrap();
        let e = p.add_file(&path, &mut Vec::new()).unwrap_err();
        assert!(
            e.contains(&format!("{PATH}.acks: also set in {FILE}")) && e.contains("line 1"),
            "{e}"
        );
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
