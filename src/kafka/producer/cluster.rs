//! What the producer knows of the cluster, and its connections to it: the brokers and topic
//! leaders from the latest Metadata, one connection per broker, and the few requests that are
//! not Produce (Metadata, ListOffsets, InitProducerId).

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
    ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::conn::{ConnOptions, Connection, Wanted};
use crate::kafka::error::Error;

/// Produce v3 is the first with record batches v2; v13 names topics by id instead of by name
/// (KIP-516), so we stay at v12.
const PRODUCE: Wanted = Wanted {
    api: "Produce",
    min: 3,
    max: 12,
    needed: "v3 or later (Kafka ≥ 0.11)",
};
/// Metadata v4 is the first that can be told not to auto-create topics; we never create them.
const METADATA: Wanted = Wanted {
    api: "Metadata",
    min: 4,
    max: 12,
    needed: "v4 or later (Kafka ≥ 0.11)",
};
const LIST_OFFSETS: Wanted = Wanted {
    api: "ListOffsets",
    min: 1,
    max: 7,
    needed: "v1 or later (Kafka ≥ 0.10.1)",
};
const INIT_PRODUCER_ID_MAX_VERSION: i16 = 5;
/// More partitions than any topic has: a guard against a Metadata answer that is not one.
const MAX_PARTITIONS: i64 = 1 << 20;

/// The brokers, the topics' leaders, and a connection per broker, opened when first needed.
pub(super) struct Cluster {
    bootstrap: Vec<String>,
    options: ConnOptions,
    /// node id → advertised host:port, from the latest Metadata.
    brokers: HashMap<i32, String>,
    conns: HashMap<i32, Connection>,
    /// A connection to a bootstrap address, used until we know which node it is.
    bootstrap_conn: Option<Connection>,
    /// topic → leader node id per partition (-1: no leader right now).
    topics: HashMap<String, Vec<i32>>,
    /// topic → partition count, from the latest Metadata that named it (kept by `forget`).
    partition_counts: HashMap<String, usize>,
}

/// What a broker said to InitProducerId.
pub(super) enum ProducerIdAnswer {
    Granted {
        producer_id: i64,
        epoch: i16,
    },
    /// The broker has no InitProducerId (Kafka < 0.11).
    Unsupported {
        broker: String,
    },
    /// A non-retriable refusal (e.g. the cluster denies idempotent writes).
    Refused {
        broker: String,
        code: ResponseError,
    },
}

/// One broker of the cluster's metadata as `repliqate check` reports it.
#[derive(Debug)]
pub struct BrokerReport {
    pub node: i32,
    /// host:port, as the metadata advertises it.
    pub addr: String,
    /// What a connection of its own negotiated, or why there is none.
    pub result: Result<BrokerInfo, Error>,
}

/// What a connection to a broker negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `TCP`, or the TLS version and cipher suite; then the SASL mechanism, if any.
    pub security: String,
    /// The version of each API we use, as negotiated; `None` for InitProducerId on a broker
    /// without it (the producer then produces without idempotence).
    pub versions: Vec<(&'static str, Option<i16>)>,
}

impl Cluster {
    pub fn new(bootstrap: Vec<String>, options: ConnOptions) -> Cluster {
        Cluster {
            bootstrap,
            options,
            brokers: HashMap::new(),
            conns: HashMap::new(),
            bootstrap_conn: None,
            topics: HashMap::new(),
            partition_counts: HashMap::new(),
        }
    }

    /// The leader of each partition of `topic`, from the latest Metadata (-1: none right now).
    pub fn leaders(&self, topic: &str) -> Option<&[i32]> {
        self.topics.get(topic).map(Vec::as_slice)
    }

    /// How many partitions `topic` has, by the latest Metadata that named it (even when its
    /// leaders have been forgotten since).
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.partition_counts.get(topic).copied()
    }

    /// Whether `node` is a broker of the latest Metadata.
    pub fn knows(&self, node: i32) -> bool {
        self.brokers.contains_key(&node)
    }

    /// Makes the next send look `topic` up again (its leaders have likely moved).
    pub fn forget(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// The open connection to `node`, if there is one.
    pub fn connection(&mut self, node: i32) -> Option<&mut Connection> {
        self.conns.get_mut(&node)
    }

    /// Drops the connection to `node` (it failed).
    pub fn disconnect(&mut self, node: i32) {
        self.conns.remove(&node);
    }

    /// Makes sure there is a connection to `leader` that speaks Produce, and returns the
    /// version to use.
    pub fn produce_connection(&mut self, leader: i32) -> Result<i16, Error> {
        self.connect(leader)?.negotiate::<ProduceRequest>(&PRODUCE)
    }

    /// The connection to `node`, dialled (or taken over from bootstrap) when there is none. A
    /// connection whose session is due is re-authenticated first; if that fails, a new one
    /// replaces it at once (nothing is in flight between rounds).
    fn connect(&mut self, node: i32) -> Result<&mut Connection, Error> {
        if let Some(conn) = self.conns.get_mut(&node) {
            if conn.reauthenticate_if_due().is_err() {
                self.conns.remove(&node);
            }
        }
        if !self.conns.contains_key(&node) {
            let addr = self
                .brokers
                .get(&node)
                .cloned()
                .ok_or_else(|| Error::Broker {
                    broker: format!("node {node}"),
                    topic: None,
                    partition: None,
                    code: ResponseError::LeaderNotAvailable,
                    message: Some("leader not in metadata".into()),
                })?;
            let conn = match self.bootstrap_conn.take() {
                Some(c) if c.addr() == addr => c,
                other => {
                    self.bootstrap_conn = other;
                    Connection::connect(&addr, &self.options)?
                }
            };
            self.conns.insert(node, conn);
        }
        Ok(self.conns.get_mut(&node).expect("inserted above"))
    }

    /// Runs `f` on some connection: an open one if there is one, else the first bootstrap (or
    /// known) broker that accepts a connection. A connection that fails is dropped.
    fn with_any_connection<T>(
        &mut self,
        mut f: impl FnMut(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let broken = |r: &Result<T, Error>| {
            matches!(
                r,
                Err(Error::Io { .. }
                    | Error::Protocol { .. }
                    | Error::Tls { .. }
                    | Error::Authentication { .. })
            )
        };
        if let Some(&node) = self.conns.keys().next() {
            let result = self.connect(node).and_then(&mut f);
            if broken(&result) {
                self.conns.remove(&node);
            }
            return result;
        }
        if self.bootstrap_conn.is_none() {
            self.bootstrap_conn = Some(self.dial_bootstrap()?);
        }
        let result = f(self.bootstrap_conn.as_mut().expect("set above"));
        if broken(&result) {
            self.bootstrap_conn = None;
        }
        result
    }

    /// A connection to the first bootstrap (or known) broker that accepts one.
    fn dial_bootstrap(&self) -> Result<Connection, Error> {
        let mut candidates = self.bootstrap.clone();
        candidates.extend(
            self.brokers
                .values()
                .filter(|a| !self.bootstrap.contains(a))
                .cloned(),
        );
        let mut last = None;
        for addr in &candidates {
            match Connection::connect(addr, &self.options) {
                Ok(c) => return Ok(c),
                // A peer that does not speak Kafka at all is not worth retrying.
                Err(e @ (Error::Protocol { .. } | Error::UnsupportedVersion { .. }))
                    if candidates.len() == 1 =>
                {
                    return Err(e)
                }
                Err(e) => {
                    log::debug!("kafka: bootstrap {addr}: {e}");
                    last = Some(e);
                }
            }
        }
        Err(Error::NoBrokerReachable {
            tried: candidates.join(", "),
            last: Box::new(
                last.unwrap_or(Error::protocol("(none)", "no bootstrap brokers configured")),
            ),
        })
    }

    /// Fetches metadata for `topic` (never creating it) and returns its partition count.
    pub fn refresh_metadata(&mut self, topic: &str) -> Result<usize, Error> {
        let (broker, response) = self.with_any_connection(|conn| {
            let version = conn.negotiate::<MetadataRequest>(&METADATA)?;
            let request = MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                    TopicName(StrBytes::from_string(topic.to_string())),
                ))]))
                .with_allow_auto_topic_creation(false);
            Ok((conn.addr().to_string(), conn.call(&request, version)?))
        })?;
        let brokers: HashMap<i32, String> = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    format!("{}:{}", host_for_addr(b.host.as_str()), b.port),
                )
            })
            .collect();
        // Connections to nodes that moved or left are dropped.
        self.conns
            .retain(|node, conn| brokers.get(node).is_some_and(|a| a == conn.addr()));
        self.brokers = brokers;
        let unknown = || Error::UnknownTopic {
            topic: topic.to_string(),
            broker: broker.clone(),
        };
        let no_leader = |message: Option<String>| Error::Broker {
            broker: broker.clone(),
            topic: Some(topic.to_string()),
            partition: None,
            code: ResponseError::LeaderNotAvailable,
            message,
        };
        let t = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .ok_or_else(unknown)?;
        match ResponseError::try_from_code(t.error_code) {
            None => {}
            Some(ResponseError::UnknownTopicOrPartition) => return Err(unknown()),
            Some(code) => {
                return Err(Error::Broker {
                    broker: broker.clone(),
                    topic: Some(topic.to_string()),
                    partition: None,
                    code,
                    message: None,
                })
            }
        }
        let count = t
            .partitions
            .iter()
            .map(|p| i64::from(p.partition_index) + 1)
            .max()
            .unwrap_or(0)
            .max(0);
        // Kafka's own limits keep a topic far below this; a larger index is not a broker
        // speaking Kafka, and must not size an allocation.
        if count > MAX_PARTITIONS {
            return Err(Error::protocol(
                &broker,
                format!("Metadata names partition {} of topic {topic}", count - 1),
            ));
        }
        let count = count as usize;
        if count == 0 {
            return Err(no_leader(Some("topic has no partitions yet".into())));
        }
        let mut leaders = vec![-1; count];
        for p in t.partitions.iter().filter(|p| p.partition_index >= 0) {
            let leader_ok = matches!(
                ResponseError::try_from_code(p.error_code),
                None | Some(ResponseError::ReplicaNotAvailable)
            );
            leaders[p.partition_index as usize] = if leader_ok { p.leader_id.0 } else { -1 };
        }
        self.partition_counts
            .insert(topic.to_string(), leaders.len());
        self.topics.insert(topic.to_string(), leaders);
        Ok(count)
    }

    /// Connects to every broker of the latest Metadata (a connection each, as sending would)
    /// and reports what each negotiated: the security handshake and the versions of the APIs we
    /// use. Nothing is sent but ApiVersions and the SASL exchange.
    pub fn describe_brokers(&mut self) -> Vec<BrokerReport> {
        let mut nodes: Vec<(i32, String)> =
            self.brokers.iter().map(|(&n, a)| (n, a.clone())).collect();
        nodes.sort();
        nodes
            .into_iter()
            .map(|(node, addr)| {
                let result = self.connect(node).and_then(|conn| {
                    let mut versions = vec![
                        ("Produce", Some(conn.negotiate::<ProduceRequest>(&PRODUCE)?)),
                        (
                            "Metadata",
                            Some(conn.negotiate::<MetadataRequest>(&METADATA)?),
                        ),
                        (
                            "ListOffsets",
                            Some(conn.negotiate::<ListOffsetsRequest>(&LIST_OFFSETS)?),
                        ),
                        (
                            "InitProducerId",
                            conn.version::<InitProducerIdRequest>(INIT_PRODUCER_ID_MAX_VERSION),
                        ),
                    ];
                    versions.extend(
                        conn.sasl_versions()?
                            .into_iter()
                            .map(|(api, v)| (api, Some(v))),
                    );
                    Ok(BrokerInfo {
                        security: conn.security(),
                        versions,
                    })
                });
                BrokerReport { node, addr, result }
            })
            .collect()
    }

    /// Whether any partition of `topic` (looked up before) holds records: its latest offset
    /// above its earliest, asked of each partition's leader with ListOffsets.
    pub fn has_records(&mut self, topic: &str) -> Result<bool, Error> {
        let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
        for (partition, &leader) in self.leaders(topic).unwrap_or_default().iter().enumerate() {
            by_leader.entry(leader).or_default().push(partition as i32);
        }
        for (leader, partitions) in by_leader {
            if leader < 0 {
                return Err(Error::Broker {
                    broker: "(none)".into(),
                    topic: Some(topic.to_string()),
                    partition: partitions.first().copied(),
                    code: ResponseError::LeaderNotAvailable,
                    message: None,
                });
            }
            // -2: earliest offset, -1: latest (the Kafka protocol's special timestamps).
            let earliest = self.list_offsets(leader, topic, &partitions, -2)?;
            let latest = self.list_offsets(leader, topic, &partitions, -1)?;
            if partitions.iter().any(|p| {
                latest.get(p).copied().unwrap_or(0) > earliest.get(p).copied().unwrap_or(0)
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// ListOffsets for `partitions` of `topic` at `timestamp`, from their leader: partition →
    /// offset.
    fn list_offsets(
        &mut self,
        leader: i32,
        topic: &str,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<HashMap<i32, i64>, Error> {
        let conn = self.connect(leader)?;
        let version = conn.negotiate::<ListOffsetsRequest>(&LIST_OFFSETS)?;
        let broker = conn.addr().to_string();
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )]);
        let response = conn.call(&request, version).inspect_err(|_| {
            self.conns.remove(&leader);
        })?;
        let mut offsets = HashMap::new();
        for p in response.topics.iter().flat_map(|t| t.partitions.iter()) {
            if let Some(code) = ResponseError::try_from_code(p.error_code) {
                return Err(Error::Broker {
                    broker,
                    topic: Some(topic.to_string()),
                    partition: Some(p.partition_index),
                    code,
                    message: Some("ListOffsets".into()),
                });
            }
            offsets.insert(p.partition_index, p.offset);
        }
        Ok(offsets)
    }

    /// Asks any broker for a new producer id (InitProducerId, no transactions). A retriable
    /// refusal is an error; the others are answers.
    pub fn init_producer_id(&mut self, timeout_ms: i32) -> Result<ProducerIdAnswer, Error> {
        self.with_any_connection(|conn| {
            let broker = conn.addr().to_string();
            let Some(version) = conn.version::<InitProducerIdRequest>(INIT_PRODUCER_ID_MAX_VERSION)
            else {
                return Ok(ProducerIdAnswer::Unsupported { broker });
            };
            let request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let response = conn.call(&request, version)?;
            match ResponseError::try_from_code(response.error_code) {
                None => Ok(ProducerIdAnswer::Granted {
                    producer_id: response.producer_id.0,
                    epoch: response.producer_epoch,
                }),
                Some(code) if code.is_retriable() => Err(Error::Broker {
                    broker,
                    topic: None,
                    partition: None,
                    code,
                    message: Some("InitProducerId".into()),
                }),
                Some(code) => Ok(ProducerIdAnswer::Refused { broker, code }),
            }
        })
    }
}

/// Metadata may advertise a bare IPv6 address; it needs brackets to be dialled as host:port.
fn host_for_addr(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
