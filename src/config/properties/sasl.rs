//! The `sasl.*` properties: the mechanism and its credentials, given apart
//! (`sasl.username`, `sasl.password`, librdkafka's way) or in a Java `sasl.jaas.config` line,
//! read by Kafka's own rules (`javaprops::parse_jaas`); and an OAUTHBEARER token's source.

use std::path::PathBuf;
use std::time::Duration;

use super::{millis, Reader, PATH};
use crate::kafka::{Sasl, ScramHash, TokenSource};
use crate::secret::Secret;

/// Default `sasl.oauthbearer.token.command.timeout.ms`: cloud token helpers answer in a second
/// or two, and a hung one must not hold up a connection for long.
const DEFAULT_TOKEN_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The sasl.* properties, if any is given.
pub(super) fn settings(p: &mut Reader) -> Result<Option<Sasl>, String> {
    let mechanism = p.take("sasl.mechanism", "sasl.mechanisms")?;
    let username = p.take_one("sasl.username");
    let password = p.password("sasl.password")?.map(|p| p.secret);
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
    let user_password = |jaas_module: &str| -> Result<(Secret, Secret), String> {
        let from_jaas = match &jaas {
            Some(line) => Some(jaas_credentials(p, line, jaas_module)?),
            None => None,
        };
        match (username.clone(), password.clone(), from_jaas) {
            (Some((_, user)), Some(password), None) => {
                Ok((p.secret("sasl.username", user, None), password))
            }
            (None, None, Some(credentials)) => Ok(credentials),
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
            // Java needs `OAuthBearerLoginModule required;` for any OAUTHBEARER; it says
            // nothing more to us. Options (a client id and secret, unsecured claims) would.
            let bare_module = |line: &str| {
                crate::javaprops::parse_jaas(line).is_ok_and(|e| {
                    e.module.rsplit('.').next() == Some("OAuthBearerLoginModule")
                        && e.options.is_empty()
                })
            };
            if username.is_some()
                || password.is_some()
                || jaas.as_deref().is_some_and(|line| !bare_module(line))
            {
                return Err(format!(
                    "{PATH}: OAUTHBEARER takes a token (sasl.oauthbearer.token.file or \
                     sasl.oauthbearer.token.command), not sasl.username, sasl.password or \
                     sasl.jaas.config options (`OAuthBearerLoginModule required;` alone is \
                     accepted)"
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
/// last name: `PlainLoginModule`, `ScramLoginModule`), e.g.
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
/// Both are read again from a properties file at each use (an API key and its secret are
/// rotated together); the parse errors never hold a value.
fn jaas_credentials(p: &Reader, line: &str, module: &str) -> Result<(Secret, Secret), String> {
    let at = p.at("sasl.jaas.config");
    let entry = crate::javaprops::parse_jaas(line).map_err(|e| format!("{at}: {e}"))?;
    let last = entry.module.rsplit('.').next().unwrap_or(&entry.module);
    if last != module {
        return Err(format!(
            "{at}: the login module `{last}` does not match sasl.mechanism; expected {module}"
        ));
    }
    let option = |name: &str| {
        entry
            .options
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("{at}: has no {name}=\"…\""))
    };
    let username = p.secret("sasl.jaas.config", option("username")?, Some("username"));
    let password = p.secret("sasl.jaas.config", option("password")?, Some("password"));
    Ok((username, password))
}
