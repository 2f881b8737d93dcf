//! The producer's one error type, and the single place that decides what is worth retrying.

use std::fmt;
use std::io;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// Everything that can go wrong talking to Kafka. Each variant names the broker (and topic and
/// partition where there is one) so that an operator can act on the message alone.
#[derive(Debug)]
pub enum Error {
    /// A TCP connect, read or write failed or timed out. The connection has been dropped.
    Io {
        broker: String,
        doing: &'static str,
        source: io::Error,
    },
    /// None of the bootstrap or known brokers accepted a connection.
    NoBrokerReachable { tried: String, last: Box<Error> },
    /// The peer sent bytes that are not a valid Kafka response (wrong size, wrong correlation id,
    /// undecodable body). Usually means the address is not a Kafka broker.
    Protocol { broker: String, detail: String },
    /// The broker lacks an API version repliqate needs.
    UnsupportedVersion {
        broker: String,
        api: &'static str,
        broker_max: Option<i16>,
        needed: &'static str,
    },
    /// A Kafka error code from a response.
    Broker {
        broker: String,
        topic: Option<String>,
        partition: Option<i32>,
        code: ResponseError,
        message: Option<String>,
    },
    /// The topic does not exist (after a bounded number of metadata refreshes); we never create it.
    UnknownTopic { topic: String, broker: String },
    /// A single record can never be sent: it is larger than the request size limit or the
    /// broker's message size limit.
    RecordTooLarge {
        topic: String,
        key: String,
        size: usize,
        limit: Option<usize>,
    },
    /// Retriable failures went on until the delivery deadline passed.
    DeliveryTimeout {
        topic: String,
        after: Duration,
        last: Box<Error>,
    },
    /// The caller asked us to stop (shutdown) before every record was acknowledged.
    Cancelled,
    /// TLS failed: the broker's certificate (unknown CA, wrong name, expired), ours (missing,
    /// refused), or a peer that does not speak TLS.
    Tls { broker: String, reason: String },
    /// SASL failed: wrong credentials, a mechanism the listener has not enabled, or a server
    /// that could not prove it knows the password.
    Authentication {
        broker: String,
        mechanism: &'static str,
        reason: String,
    },
    /// A credential of ours could not be used: an unreadable password, token or TLS file, a
    /// failing token command. The reason names the setting and the file, never the secret.
    Credentials { broker: String, reason: String },
}

impl Error {
    /// Whether trying the same thing again later may succeed. Inside a send (`Producer::finish`,
    /// `resume`) this decides between another round and giving up; callers use it the same way.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Io { .. } | Error::NoBrokerReachable { .. } => true,
            Error::Broker { code, .. } => is_retriable_code(*code),
            // The deadline passed, but the cause is transient: a later call may succeed.
            Error::DeliveryTimeout { last, .. } => last.is_retriable(),
            Error::Cancelled => true,
            // An operator's fix (a rotated certificate, password or token, a broker's config)
            // takes effect without a restart: worth retrying while running, with backoff.
            // At start-up, `needs_operator` makes them final.
            Error::Tls { .. } | Error::Authentication { .. } | Error::Credentials { .. } => true,
            Error::Protocol { .. }
            | Error::UnsupportedVersion { .. }
            | Error::UnknownTopic { .. }
            | Error::RecordTooLarge { .. } => false,
        }
    }

    /// Whether only a change of configuration or credentials can fix this (TLS, SASL, our own
    /// secret files): retried while running, with backoff, but never in a tight loop, and a
    /// reason to refuse to start (exit code 2) rather than to wait for the broker.
    pub fn needs_operator(&self) -> bool {
        match self {
            Error::Tls { .. } | Error::Authentication { .. } | Error::Credentials { .. } => true,
            Error::NoBrokerReachable { last, .. } | Error::DeliveryTimeout { last, .. } => {
                last.needs_operator()
            }
            _ => false,
        }
    }

    /// Whether the error means our view of partition leadership may be stale.
    pub(crate) fn needs_metadata_refresh(&self) -> bool {
        match self {
            Error::Io { .. } | Error::NoBrokerReachable { .. } => true,
            Error::Broker { code, .. } => matches!(
                code,
                ResponseError::NotLeaderOrFollower
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::NotEnoughReplicas
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::KafkaStorageError
                    | ResponseError::NetworkException
            ),
            _ => false,
        }
    }

    /// An I/O error on a broker's stream; one that carries a TLS error (an alert from the
    /// broker, a certificate that failed verification) is a `Tls` error.
    pub(crate) fn io(broker: &str, doing: &'static str, source: io::Error) -> Error {
        if let Some(tls) = crate::tls::rustls_error(&source) {
            return Error::Tls {
                broker: broker.to_string(),
                reason: crate::tls::describe(tls),
            };
        }
        Error::Io {
            broker: broker.to_string(),
            doing,
            source,
        }
    }

    pub(crate) fn protocol(broker: &str, detail: impl Into<String>) -> Error {
        Error::Protocol {
            broker: broker.to_string(),
            detail: detail.into(),
        }
    }
}

/// Kafka's own retriable flag, plus codes that are transient for an idempotent producer.
fn is_retriable_code(code: ResponseError) -> bool {
    match code {
        // The broker lost or does not know our producer state; a new producer id fixes it.
        ResponseError::OutOfOrderSequenceNumber | ResponseError::UnknownProducerId => true,
        // Re-split by the producer; surfaces only as RecordTooLarge when it cannot be split.
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => false,
        other => other.is_retriable(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { broker, doing, source } => write!(f, "broker {broker}: {doing}: {source}"),
            Error::NoBrokerReachable { tried, last } => {
                write!(f, "no Kafka broker reachable (tried {tried}): {last}")
            }
            Error::Protocol { broker, detail } => write!(
                f,
                "broker {broker}: invalid Kafka response ({detail}); is this address a Kafka broker?"
            ),
            Error::UnsupportedVersion { broker, api, broker_max: Some(max), needed } => write!(
                f,
                "broker {broker} supports {api} up to v{max}; repliqate needs {needed}"
            ),
            Error::UnsupportedVersion { broker, api, broker_max: None, needed } => {
                write!(f, "broker {broker} does not support {api}; repliqate needs {needed}")
            }
            Error::Broker { broker, topic, partition, code, message } => {
                write!(f, "broker {broker}")?;
                if let Some(topic) = topic {
                    write!(f, ", topic {topic}")?;
                }
                if let Some(partition) = partition {
                    write!(f, ", partition {partition}")?;
                }
                write!(f, ": {code:?} (error {})", code.code())?;
                if let Some(message) = message.as_deref().filter(|m| !m.is_empty()) {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::UnknownTopic { topic, broker } => write!(
                f,
                "topic {topic:?} does not exist on broker {broker} (repliqate never creates topics; create it first)"
            ),
            Error::RecordTooLarge { topic, key, size, limit: Some(limit) } => write!(
                f,
                "topic {topic}: record with key {key} is {size} bytes, larger than the {limit}-byte request limit (kafka_target.max_request_size)"
            ),
            Error::RecordTooLarge { topic, key, size, limit: None } => write!(
                f,
                "topic {topic}: record with key {key} ({size} bytes) was refused by the broker as too large (MESSAGE_TOO_LARGE; see the topic's max.message.bytes)"
            ),
            Error::DeliveryTimeout { topic, after, last } => write!(
                f,
                "topic {topic}: not acknowledged within the delivery timeout ({:.1}s): {last}",
                after.as_secs_f64()
            ),
            Error::Cancelled => write!(f, "sending cancelled by shutdown"),
            Error::Tls { broker, reason } => write!(f, "broker {broker}: TLS: {reason}"),
            Error::Authentication { broker, mechanism, reason } => {
                write!(f, "broker {broker}: SASL {mechanism} authentication failed: {reason}")
            }
            Error::Credentials { broker, reason } => write!(f, "broker {broker}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
