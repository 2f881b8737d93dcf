//! A round sends every pending batch of a send once: one request per leader at a time per
//! level, pipelined up to the in-flight limit, and records the outcome of each partition. The
//! retry decision for a partition's response is the one `match` in `Round::handle_response`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::batches::{Batcher, Outgoing, RecordBatch};
use super::cluster::Cluster;
use crate::kafka::error::Error;
use crate::kafka::produce::ProduceBody;

/// What a round needs to know of the producer's settings.
pub(super) struct RoundSettings {
    /// Batches of one partition in flight on its leader's connection: up to 5 for an idempotent
    /// producer (the broker keeps the last five batches per partition for deduplication), else
    /// 1 to keep order. Requests for other partitions are written past them.
    pub max_in_flight: usize,
    pub acks: i16,
    pub timeout_ms: i32,
    /// The space one request has for record batches.
    pub budget: usize,
}

/// How far `Round::pump` goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Until everything that may be written now is written.
    Written,
    /// Until everything that may be written now is written, reading only the answers that
    /// have arrived on connections where the in-flight limit holds requests back: their
    /// answers make room for those requests, without waiting for the broker.
    Arrived,
    /// Until every request is answered.
    Answered,
}

/// One round in progress.
pub(super) struct Round {
    queues: Vec<LeaderQueue>,
    /// Partitions with a failed batch in this round: their later batches are not sent (they
    /// would be out of order) and are retried in the next round.
    failed_partitions: HashSet<i32>,
    /// Batches the broker found too large, halved at the end of the round.
    splits: Vec<usize>,
    throttle_ms: i32,
    outcome: RoundOutcome,
    settings: RoundSettings,
}

/// What a round found, for the retry loop.
#[derive(Default)]
pub(super) struct RoundOutcome {
    /// The first non-retriable error, else the first error.
    pub error: Option<Error>,
    pub refresh_metadata: bool,
    pub reset_producer_id: bool,
    /// How long the brokers asked us to hold off before the next request (KIP-219).
    pub throttle: Duration,
}

impl RoundOutcome {
    fn fail(&mut self, e: Error) {
        log::debug!("kafka: {e}");
        let replace = match &self.error {
            None => true,
            Some(current) => current.is_retriable() && !e.is_retriable(),
        };
        if replace {
            self.error = Some(e);
        }
    }
}

/// The requests for one leader: queued, and written but not answered.
struct LeaderQueue {
    leader: i32,
    /// Each request is the indices of its batches.
    queue: VecDeque<Vec<usize>>,
    /// (correlation id, request).
    in_flight: VecDeque<(i32, Vec<usize>)>,
    /// How many batches of each partition are in `in_flight`.
    partitions_in_flight: HashMap<i32, usize>,
    version: i16,
}

impl LeaderQueue {
    /// Whether `request` may be written now: each of its partitions has fewer than `max`
    /// batches in flight on this connection. The limit is per partition, not per connection:
    /// what the broker's deduplication bounds (the last five batches of each partition) and
    /// what keeps a partition in order (one at a time without idempotence). A send of more
    /// requests than that, over several partitions, is written at once.
    fn has_room(&self, request: &[usize], batches: &[RecordBatch], max: usize) -> bool {
        request.iter().all(|&i| {
            let partition = batches[i].partition;
            self.partitions_in_flight
                .get(&partition)
                .is_none_or(|&n| n < max)
        })
    }

    /// `request` was written, under correlation id `id`.
    fn written(&mut self, id: i32, request: Vec<usize>, batches: &[RecordBatch]) {
        for &i in &request {
            *self
                .partitions_in_flight
                .entry(batches[i].partition)
                .or_default() += 1;
        }
        self.in_flight.push_back((id, request));
    }

    /// The oldest request in flight, taken out to read its answer.
    fn oldest(&mut self, batches: &[RecordBatch]) -> Option<(i32, Vec<usize>)> {
        let (id, request) = self.in_flight.pop_front()?;
        for &i in &request {
            if let Some(n) = self.partitions_in_flight.get_mut(&batches[i].partition) {
                *n = n.saturating_sub(1);
            }
        }
        Some((id, request))
    }

    /// The connection broke: everything queued or in flight on it is retried next round.
    fn abandon(&mut self, current: Vec<usize>, batches: &[RecordBatch], failed: &mut HashSet<i32>) {
        let all = std::iter::once(current)
            .chain(self.in_flight.drain(..).map(|(_, r)| r))
            .chain(self.queue.drain(..));
        self.partitions_in_flight.clear();
        for request in all {
            failed.extend(request.iter().map(|&i| batches[i].partition));
        }
    }
}

impl Round {
    /// Prepares a round: groups the pending batches into requests per leader and connects to
    /// the leaders.
    pub fn begin(cluster: &mut Cluster, out: &Outgoing, settings: RoundSettings) -> Round {
        let mut round = Round {
            queues: Vec::new(),
            failed_partitions: HashSet::new(),
            splits: Vec::new(),
            throttle_ms: 0,
            outcome: RoundOutcome::default(),
            settings,
        };
        let topic = &out.topic;
        let Some(leaders) = cluster.leaders(topic) else {
            round.outcome.fail(Error::UnknownTopic {
                topic: topic.clone(),
                broker: "(no metadata)".into(),
            });
            return round;
        };

        // Group pending batches per leader, level by level: the k-th pending batch of each
        // partition goes in the k-th request, so that order within a partition is the order of
        // requests on the connection.
        let mut per_leader: HashMap<i32, Vec<Vec<usize>>> = HashMap::new();
        let mut level: HashMap<i32, usize> = HashMap::new();
        for (i, batch) in out.batches.iter().enumerate().filter(|(_, b)| !b.done) {
            let partition = batch.partition;
            let leader = leaders.get(partition as usize).copied().unwrap_or(-1);
            if leader < 0 || !cluster.knows(leader) {
                round.outcome.fail(Error::Broker {
                    broker: "(none)".into(),
                    topic: Some(topic.clone()),
                    partition: Some(partition),
                    code: ResponseError::LeaderNotAvailable,
                    message: None,
                });
                continue;
            }
            let k = level.entry(partition).or_insert(0);
            let requests = per_leader.entry(leader).or_default();
            if requests.len() <= *k {
                requests.resize_with(*k + 1, Vec::new);
            }
            requests[*k].push(i);
            *k += 1;
        }

        // Levels that exceed the request budget become several requests.
        let budget = round.settings.budget;
        for (leader, levels) in per_leader {
            let mut queue = VecDeque::new();
            for level in levels {
                let mut request = Vec::new();
                let mut size = 0;
                for i in level {
                    let s = out.batches[i].encoded.len() + 16;
                    if !request.is_empty() && size + s > budget {
                        queue.push_back(std::mem::take(&mut request));
                        size = 0;
                    }
                    request.push(i);
                    size += s;
                }
                queue.extend((!request.is_empty()).then_some(request));
            }
            match cluster.produce_connection(leader) {
                Ok(version) => round.queues.push(LeaderQueue {
                    leader,
                    queue,
                    in_flight: VecDeque::new(),
                    partitions_in_flight: HashMap::new(),
                    version,
                }),
                Err(e) => {
                    for i in queue.into_iter().flatten() {
                        round.failed_partitions.insert(out.batches[i].partition);
                    }
                    round.outcome.refresh_metadata = true;
                    round.outcome.fail(e);
                }
            }
        }
        round
    }

    /// Writes requests up to the in-flight limits, without waiting for answers.
    pub fn write(&mut self, cluster: &mut Cluster, out: &mut Outgoing) {
        self.pump(cluster, out, Until::Written);
    }

    /// Hands the sockets more of the requests written, without waiting for them (see
    /// `Connection::queue_produce`); where the in-flight limit holds requests back (a send of
    /// more batches per partition than `max_in_flight`: five, one without idempotence), reads
    /// the answers that have arrived and writes those requests. A connection that fails is
    /// dropped, and its requests are retried in the next round, as when a read fails.
    pub fn push_unsent(&mut self, cluster: &mut Cluster, out: &mut Outgoing) {
        let mut queues = std::mem::take(&mut self.queues);
        for q in queues.iter_mut() {
            let Some(conn) = cluster.connection(q.leader) else {
                continue;
            };
            if let Err(e) = conn.push_unsent() {
                self.connection_failed(cluster, q, Vec::new(), out, e);
            }
        }
        self.queues = queues;
        // With nothing held back, the pump only looks at each queue (no system call).
        self.pump(cluster, out, Until::Arrived);
    }

    /// The connection to `q`'s leader failed with `e`: it is dropped, and `current` and
    /// everything queued or in flight on it are retried in the next round, after a metadata
    /// refresh.
    fn connection_failed(
        &mut self,
        cluster: &mut Cluster,
        q: &mut LeaderQueue,
        current: Vec<usize>,
        out: &Outgoing,
        e: Error,
    ) {
        cluster.disconnect(q.leader);
        q.abandon(current, &out.batches, &mut self.failed_partitions);
        self.outcome.refresh_metadata = true;
        self.outcome.fail(e);
    }

    /// Writes and reads until every request of the round is answered (or failed).
    pub fn complete(&mut self, cluster: &mut Cluster, out: &mut Outgoing) {
        self.pump(cluster, out, Until::Answered);
    }

    fn pump(&mut self, cluster: &mut Cluster, out: &mut Outgoing, until: Until) {
        let max_in_flight = self.settings.max_in_flight;
        // Out of `self` while it runs, so that a response is handled by `&mut self`.
        let mut queues = std::mem::take(&mut self.queues);
        loop {
            let mut busy = false;
            for q in queues.iter_mut() {
                while q
                    .queue
                    .front()
                    .is_some_and(|next| q.has_room(next, &out.batches, max_in_flight))
                {
                    let Some(mut request) = q.queue.pop_front() else {
                        break;
                    };
                    request
                        .retain(|&i| !self.failed_partitions.contains(&out.batches[i].partition));
                    if request.is_empty() {
                        continue;
                    }
                    let body = ProduceBody {
                        acks: self.settings.acks,
                        timeout_ms: self.settings.timeout_ms,
                        topic: &out.topic,
                        partitions: request
                            .iter()
                            .map(|&i| (out.batches[i].partition, Some(&out.batches[i].encoded)))
                            .collect(),
                    };
                    let Some(conn) = cluster.connection(q.leader) else {
                        break;
                    };
                    match conn.queue_produce(&body, q.version) {
                        Ok(id) => q.written(id, request, &out.batches),
                        Err(e) => {
                            self.connection_failed(cluster, q, request, out, e);
                            break;
                        }
                    }
                }
                if until == Until::Written
                    || (until == Until::Arrived && !self.answer_arrived(cluster, q, out))
                {
                    continue;
                }
                let Some((id, request)) = q.oldest(&out.batches) else {
                    continue;
                };
                busy = true;
                let Some(conn) = cluster.connection(q.leader) else {
                    continue;
                };
                let broker = conn.addr().to_string();
                match conn.read::<ProduceRequest>(id, q.version) {
                    Ok(response) => {
                        self.throttle_ms = self.throttle_ms.max(response.throttle_time_ms);
                        self.handle_response(
                            Answer {
                                broker: &broker,
                                response,
                                request: &request,
                            },
                            out,
                        );
                    }
                    Err(e) => self.connection_failed(cluster, q, request, out, e),
                }
            }
            let done = match until {
                Until::Written => true,
                Until::Arrived => !busy,
                Until::Answered => !busy && queues.iter().all(|q| q.queue.is_empty()),
            };
            if done {
                break;
            }
        }
        self.queues = queues;
    }

    /// For `Until::Arrived`: whether `q` has requests held back by the in-flight limit and
    /// the answer to its oldest request in flight can be read without waiting.
    fn answer_arrived(
        &mut self,
        cluster: &mut Cluster,
        q: &mut LeaderQueue,
        out: &Outgoing,
    ) -> bool {
        if q.queue.is_empty() || q.in_flight.is_empty() {
            return false;
        }
        let Some(conn) = cluster.connection(q.leader) else {
            return false;
        };
        match conn.answer_arrived() {
            Ok(arrived) => arrived,
            Err(e) => {
                self.connection_failed(cluster, q, Vec::new(), out, e);
                false
            }
        }
    }

    /// Handles one Produce response: the retry decision for each partition is the `match`
    /// below.
    fn handle_response(&mut self, answer: Answer<'_>, out: &mut Outgoing) {
        let Answer {
            broker,
            response,
            request,
        } = answer;
        let Round {
            failed_partitions,
            splits,
            outcome,
            ..
        } = self;
        let topic = out.topic.as_str();
        let partitions: HashMap<i32, &_> = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partition_responses.iter())
            .map(|p| (p.index, p))
            .collect();
        for &i in request {
            let batch = &mut out.batches[i];
            let partition = batch.partition;
            let Some(p) = partitions.get(&partition) else {
                failed_partitions.insert(partition);
                outcome.fail(Error::protocol(
                    broker,
                    format!("Produce response has no result for partition {partition}"),
                ));
                continue;
            };
            let broker_error = |code| Error::Broker {
                broker: broker.to_string(),
                topic: Some(topic.to_string()),
                partition: Some(partition),
                code,
                message: p.error_message.as_ref().map(|m| m.as_str().to_string()),
            };
            match ResponseError::try_from_code(p.error_code) {
                None => {
                    batch.acknowledge(Some(p.base_offset).filter(|&o| o >= 0), &mut out.delivered)
                }
                // Already written by an earlier attempt (Kafka answers success; others this).
                Some(ResponseError::DuplicateSequenceNumber) => {
                    batch.acknowledge(None, &mut out.delivered)
                }
                Some(ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge)
                    if batch.records.len() > 1 =>
                {
                    failed_partitions.insert(partition);
                    splits.push(i);
                    outcome.fail(broker_error(ResponseError::NetworkException));
                }
                Some(ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge) => {
                    failed_partitions.insert(partition);
                    outcome.fail(Error::RecordTooLarge {
                        topic: topic.to_string(),
                        key: "(see batch)".into(),
                        size: batch.encoded.len(),
                        limit: None,
                    });
                }
                // An earlier batch of this partition failed in this round: this one was refused
                // only because of the gap it left, and is simply sent again.
                Some(ResponseError::OutOfOrderSequenceNumber)
                    if failed_partitions.contains(&partition) => {}
                Some(
                    code @ (ResponseError::OutOfOrderSequenceNumber
                    | ResponseError::UnknownProducerId
                    | ResponseError::InvalidProducerEpoch),
                ) => {
                    failed_partitions.insert(partition);
                    outcome.reset_producer_id = true;
                    outcome.fail(broker_error(code));
                }
                Some(code) => {
                    failed_partitions.insert(partition);
                    let e = broker_error(code);
                    outcome.refresh_metadata |= e.needs_metadata_refresh();
                    outcome.fail(e);
                }
            }
        }
    }

    /// Ends a round: halves the batches the broker found too large (the halves take the
    /// original's place, so order is kept), and says how long the brokers asked us to wait.
    pub fn end(self, batcher: &Batcher, out: &mut Outgoing) -> RoundOutcome {
        let Round {
            mut splits,
            throttle_ms,
            mut outcome,
            ..
        } = self;
        splits.sort_unstable();
        for &i in splits.iter().rev() {
            if let Err(e) = batcher.halve(&mut out.batches, i) {
                outcome.fail(e);
            }
        }
        outcome.throttle = Duration::from_millis(throttle_ms.clamp(0, 30_000) as u64);
        outcome
    }
}

/// A broker's answer to one of our Produce requests.
struct Answer<'a> {
    broker: &'a str,
    response: ProduceResponse,
    /// The indices of the batches the request carried.
    request: &'a [usize],
}
