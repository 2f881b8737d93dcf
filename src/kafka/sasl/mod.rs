//! SASL, client side: which mechanism and credentials (`Sasl`, from the config), and one
//! authentication exchange (`Exchange`): the messages SaslAuthenticate carries, for PLAIN,
//! SCRAM-SHA-256/512 and OAUTHBEARER. The Kafka requests around them are `conn`'s.
//!
//! Secrets are read when an exchange starts, not before: a rotated password file or token is
//! used from the next connection or re-authentication on.

mod scram;
mod token;

use std::sync::Arc;

use ring::rand::SystemRandom;

pub use scram::ScramHash;
pub use token::TokenSource;

use crate::secret::Secret;
use scram::Scram;
use token::Tokens;

/// The mechanism and credentials of `security.protocol: SASL_*`. The user name is read at each
/// exchange too, as the password is: where both come from a file (a `properties_file`), they
/// are rotated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    Plain {
        username: Secret,
        password: Secret,
    },
    Scram {
        hash: ScramHash,
        username: Secret,
        password: Secret,
    },
    OAuthBearer(TokenSource),
}

impl Sasl {
    /// The mechanism's name, as SaslHandshake and brokers' configs spell it.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Plain { .. } => "PLAIN",
            Sasl::Scram { hash, .. } => hash.mechanism(),
            Sasl::OAuthBearer(_) => "OAUTHBEARER",
        }
    }
}

/// A `Sasl` ready to authenticate connections: for a token command, the token it printed last
/// is shared by every connection of the producer.
pub struct SaslClient {
    sasl: Sasl,
    tokens: Option<Tokens>,
    random: SystemRandom,
}

impl std::fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Sasl`'s Debug shows no secret.
        f.debug_tuple("SaslClient").field(&self.sasl).finish()
    }
}

impl SaslClient {
    pub fn new(sasl: Sasl) -> Arc<SaslClient> {
        let tokens = match &sasl {
            Sasl::OAuthBearer(source) => Some(Tokens::new(source.clone())),
            _ => None,
        };
        Arc::new(SaslClient {
            sasl,
            tokens,
            random: SystemRandom::new(),
        })
    }

    pub fn mechanism(&self) -> &'static str {
        self.sasl.mechanism()
    }

    /// Starts an exchange: the first message to send, and what answers the broker's replies.
    /// Errors are about our own credentials (an unreadable file, a failing token command).
    pub fn start(&self) -> Result<(Exchange, Vec<u8>), String> {
        match &self.sasl {
            Sasl::Plain { username, password } => {
                let username = username.read("sasl.username").map_err(|e| e.to_string())?;
                let password = password
                    .read("sasl.password_file")
                    .map_err(|e| e.to_string())?;
                // RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid.
                let mut message = Vec::with_capacity(username.len() + password.len() + 2);
                message.push(0);
                message.extend_from_slice(username.as_bytes());
                message.push(0);
                message.extend_from_slice(password.as_bytes());
                Ok((Exchange::Plain, message))
            }
            Sasl::Scram {
                hash,
                username,
                password,
            } => {
                let username = username.read("sasl.username").map_err(|e| e.to_string())?;
                let password = password
                    .read("sasl.password_file")
                    .map_err(|e| e.to_string())?;
                let (scram, first) = Scram::start(*hash, &username, password, &self.random)?;
                Ok((Exchange::Scram(Box::new(scram)), first))
            }
            Sasl::OAuthBearer(_) => {
                let token = self.tokens.as_ref().expect("made with the client").get()?;
                // RFC 7628: gs2 header, then auth=Bearer <token> between ^A separators.
                let message = format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes();
                Ok((Exchange::OAuthBearer { refused: None }, message))
            }
        }
    }
}

/// One exchange in progress. Not `Debug`: SCRAM's state holds key material.
pub enum Exchange {
    Plain,
    Scram(Box<Scram>),
    /// `refused`: the server's error report, once it sent one (RFC 7628 3.2.2: the client
    /// answers it with a lone ^A, and the server then fails the exchange).
    OAuthBearer {
        refused: Option<String>,
    },
}

/// What to do after a server message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Send(Vec<u8>),
    Done,
}

impl Exchange {
    /// Answers the bytes of a successful SaslAuthenticate response.
    pub fn respond(&mut self, server: &[u8]) -> Result<Step, String> {
        match self {
            Exchange::Plain => Ok(Step::Done),
            Exchange::Scram(scram) => Ok(match scram.respond(server)? {
                Some(message) => Step::Send(message),
                None => Step::Done,
            }),
            Exchange::OAuthBearer { refused } => match refused {
                Some(report) => Err(format!("the broker refused the token: {report}")),
                None if server.is_empty() => Ok(Step::Done),
                None => {
                    *refused = Some(String::from_utf8_lossy(server).into_owned());
                    Ok(Step::Send(vec![0x01]))
                }
            },
        }
    }

    /// The server's own account of a refusal, if it gave one during the exchange.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Exchange::OAuthBearer { refused } => refused.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sends_user_and_password_once() {
        let client = SaslClient::new(Sasl::Plain {
            username: Secret::Value("app".into()),
            password: Secret::Value("pw".into()),
        });
        let (mut exchange, first) = client.start().unwrap();
        assert_eq!(first, b"\0app\0pw");
        assert_eq!(exchange.respond(b"").unwrap(), Step::Done);
        assert!(!format!("{client:?}").contains("pw\""), "{client:?}");
    }

    #[test]
    fn oauthbearer_sends_the_token_and_acknowledges_an_error_report() {
        let dir = std::env::temp_dir().join(format!("repliqate-sasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "tok1\n").unwrap();
        let client = SaslClient::new(Sasl::OAuthBearer(TokenSource::File(path.clone())));
        let (mut exchange, first) = client.start().unwrap();
        assert_eq!(first, b"n,,\x01auth=Bearer tok1\x01\x01");
        assert_eq!(exchange.respond(b"").unwrap(), Step::Done);

        // Re-read at the next authentication.
        std::fs::write(&path, "tok2").unwrap();
        let (mut exchange, first) = client.start().unwrap();
        assert_eq!(first, b"n,,\x01auth=Bearer tok2\x01\x01");
        let report = br#"{"status":"invalid_token"}"#;
        assert_eq!(exchange.respond(report).unwrap(), Step::Send(vec![1]));
        assert_eq!(exchange.refusal(), Some(r#"{"status":"invalid_token"}"#));
        assert!(exchange.respond(b"").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
