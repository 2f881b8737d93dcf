//! SASL over a connection: the SaslHandshake and SaslAuthenticate requests around a
//! mechanism's exchange (the exchange itself is `sasl`'s), on connecting and again before the
//! session the broker granted ends (KIP-368).

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::error::Error;
use crate::kafka::sasl::{SaslClient, Step};

use super::frames::Connection;
use super::negotiate::Wanted;

/// SaslHandshake v1 is the first that moves the exchange into SaslAuthenticate requests
/// (KIP-152, Kafka 1.0); v0's raw frames are not spoken here.
const SASL_HANDSHAKE: Wanted = Wanted {
    api: "SaslHandshake",
    min: 1,
    max: 1,
    needed: "v1 or later (Kafka ≥ 1.0)",
};
/// v1 adds the session lifetime (KIP-368), v2 is the flexible encoding.
const SASL_AUTHENTICATE: Wanted = Wanted {
    api: "SaslAuthenticate",
    min: 0,
    max: 2,
    needed: "v0 or later (Kafka ≥ 1.0)",
};
/// Re-authenticate after this share of the session the broker granted, leaving the rest as a
/// margin for the requests in flight when it comes due (Java picks 85–95 %).
const REAUTH_AT_PERCENT: u64 = 85;

impl Connection {
    /// The SaslHandshake and SaslAuthenticate versions this connection authenticates with (none
    /// without SASL).
    pub fn sasl_versions(&self) -> Result<Vec<(&'static str, i16)>, Error> {
        if self.sasl.is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![
            (
                SASL_HANDSHAKE.api,
                self.negotiate::<SaslHandshakeRequest>(&SASL_HANDSHAKE)?,
            ),
            (
                SASL_AUTHENTICATE.api,
                self.negotiate::<SaslAuthenticateRequest>(&SASL_AUTHENTICATE)?,
            ),
        ])
    }

    /// SaslHandshake, then SaslAuthenticate until the mechanism's exchange is done; on every
    /// connection, and again on the same connection before the session runs out.
    pub(super) fn authenticate(&mut self, sasl: &SaslClient) -> Result<(), Error> {
        let mechanism = sasl.mechanism();
        let addr = self.addr.clone();
        let failed = |reason: String| Error::Authentication {
            broker: addr.clone(),
            mechanism,
            reason,
        };
        let handshake_version = self.negotiate::<SaslHandshakeRequest>(&SASL_HANDSHAKE)?;
        let authenticate_version = self.negotiate::<SaslAuthenticateRequest>(&SASL_AUTHENTICATE)?;
        let request =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let id = self.write_now(&request, handshake_version)?;
        let response = self.read::<SaslHandshakeRequest>(id, handshake_version)?;
        if response.error_code == ResponseError::UnsupportedSaslMechanism.code() {
            let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(failed(format!(
                "the broker has not enabled {mechanism} on this listener; it offers {}                  (sasl.mechanism)",
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            )));
        }
        if response.error_code != 0 {
            return Err(failed(format!(
                "SaslHandshake failed: {}",
                describe_code(response.error_code)
            )));
        }
        let (mut exchange, mut message) = sasl.start().map_err(|reason| Error::Credentials {
            broker: self.addr.clone(),
            reason,
        })?;
        let lifetime_ms = loop {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
            let id = self.write_now(&request, authenticate_version)?;
            let response = self.read::<SaslAuthenticateRequest>(id, authenticate_version)?;
            if response.error_code != 0 {
                let said = response.error_message.as_ref().map(|m| m.to_string());
                let reason = match (said, exchange.refusal()) {
                    (Some(said), _) if !said.is_empty() => said,
                    (_, Some(refusal)) => format!("the broker refused the token: {refusal}"),
                    _ => describe_code(response.error_code),
                };
                return Err(failed(reason));
            }
            match exchange.respond(&response.auth_bytes).map_err(failed)? {
                Step::Send(next) => message = next,
                Step::Done => break response.session_lifetime_ms,
            }
        };
        self.reauthenticate_at = u64::try_from(lifetime_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(|ms| Instant::now() + Duration::from_millis(ms * REAUTH_AT_PERCENT / 100));
        Ok(())
    }

    /// Re-authenticates when the session is due for it and nothing is in flight (a response
    /// in flight would arrive in the middle of the exchange). A failure leaves the connection
    /// unusable; the caller drops it, and nothing written on it is lost: there was nothing.
    pub fn reauthenticate_if_due(&mut self) -> Result<(), Error> {
        let due = self
            .reauthenticate_at
            .is_some_and(|at| self.in_flight == 0 && Instant::now() >= at);
        let Some(sasl) = self.sasl.clone().filter(|_| due) else {
            return Ok(());
        };
        self.reauthenticate_at = None;
        match self.authenticate(&sasl) {
            Ok(()) => {
                log::debug!(
                    "kafka: broker {}: re-authenticated ({}) on the same connection",
                    self.addr,
                    sasl.mechanism()
                );
                Ok(())
            }
            Err(e) => {
                log::info!(
                    "kafka: broker {}: re-authentication failed, reconnecting: {e}",
                    self.addr
                );
                // This connection is done for, not necessarily the credentials: a new
                // connection tells (and its error is the one to act on).
                Err(Error::io(
                    &self.addr,
                    "re-authenticating",
                    io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()),
                ))
            }
        }
    }
}

/// A Kafka error code as `NAME (error N)`.
fn describe_code(code: i16) -> String {
    let error = ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code));
    format!("{error:?} (error {code})")
}
