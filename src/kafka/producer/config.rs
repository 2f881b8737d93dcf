//! What the producer is told: `ProducerConfig`, and the defaults of every producer setting, in
//! one place (the YAML's defaults are these: `config::build` starts from `ProducerConfig::default`).

use std::time::Duration;

use crate::kafka::conn::ConnOptions;
use crate::kafka::records::Compression;
use crate::kafka::transport::Security;

/// `acks` of the Produce request. `0` (no acknowledgement) is deliberately not offered: repliqate
/// must know a batch was written before it moves its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// All in-sync replicas (-1). Required for idempotence.
    All,
    /// The leader only (1).
    Leader,
}

impl Acks {
    /// The Produce request's `acks` field.
    pub(super) fn code(self) -> i16 {
        match self {
            Acks::All => -1,
            Acks::Leader => 1,
        }
    }
}

/// Everything the producer needs to know, validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// host:port of the bootstrap brokers; any reachable one will do.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub acks: Acks,
    pub compression: Compression,
    pub idempotent: bool,
    /// Upper bound for one Produce request (and so for one record).
    pub max_request_size: usize,
    /// Produce `timeout_ms`, and (plus a margin) the socket read timeout.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a send keeps retrying before it gives up (Java's `delivery.timeout.ms`).
    pub delivery_timeout: Duration,
    /// First retry backoff; doubles up to `retry_backoff_max`, with jitter (librdkafka's
    /// 100 ms → 1 s).
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// `security.protocol` and its TLS and SASL settings.
    pub security: Security,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            bootstrap: vec!["localhost:9092".into()],
            client_id: "repliqate".into(),
            acks: Acks::All,
            compression: Compression::None,
            idempotent: true,
            max_request_size: 1 << 20,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            security: Security::default(),
        }
    }
}

impl ProducerConfig {
    /// The settings every connection of the producer shares.
    pub(super) fn conn_options(&self) -> ConnOptions {
        let (tls, sasl) = self.security.client();
        ConnOptions {
            tls,
            sasl,
            client_id: self.client_id.clone(),
            connect_timeout: self.connect_timeout,
            // Past the Produce timeout we send, or we would give up on a broker that is still
            // legitimately waiting for its replicas.
            io_timeout: self.request_timeout + Duration::from_secs(5),
            max_response_size: 64 << 20,
        }
    }

    /// `request_timeout` in milliseconds, as requests carry it.
    pub(super) fn request_timeout_ms(&self) -> i32 {
        self.request_timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// The space one request has for record batches.
    pub(super) fn batch_budget(&self, topic: &str) -> usize {
        self.max_request_size.saturating_sub(128 + topic.len())
    }
}
