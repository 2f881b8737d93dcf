//! The property names of every Kafka client and of the Schema Registry serializers, each with
//! the client it belongs to. Only for telling apart, in the errors of `properties`, "a Kafka
//! client property repliqate does not support", "another client's property" (ignored with a
//! warning, as librdkafka does) and "not a Kafka client property at all" (a typo, with the
//! closest known name suggested); what repliqate accepts is decided there, not here.
//!
//! Where the lists come from:
//! - Producer, consumer, both (the common client): librdkafka's CONFIGURATION.md (v2.15.0) and
//!   the Java clients' ProducerConfig, ConsumerConfig, CommonClientConfigs, SslConfigs and
//!   SaslConfigs (Apache Kafka trunk of August 2026; `buffer.memory.allocation.strategy` from
//!   trunk of 22 August 2026, KAFKA-20578).
//! - Admin: the names only AdminClientConfig has (`bootstrap.controllers`); the rest of it is
//!   the common client's.
//! - Streams: StreamsConfig's own names and its prefixes (`producer.`, `consumer.`,
//!   `main.consumer.`, `restore.consumer.`, `global.consumer.`, `admin.`, `topic.`,
//!   `client.tag.`), from Apache Kafka trunk of 22 August 2026 (as merged into
//!   confluentinc/kafka, version 8.5.0-0-ccs). Connect workers take `producer.`, `consumer.` and
//!   `admin.` too; those prefixes are said to be Streams'.
//! - Connect: the worker's WorkerConfig, DistributedConfig, StandaloneConfig and
//!   RestServerConfig names (same Kafka trunk), with the `key.converter.`, `value.converter.`,
//!   `header.converter.`, `listeners.https.` and `admin.listeners.https.` prefixes.
//! - Schema Registry: the Java client and serializers of confluentinc/schema-registry (master of
//!   22 August 2026, after v7.8.10): SchemaRegistryClientConfig, AbstractKafkaSchemaSerDeConfig,
//!   the Avro, Protobuf, JSON Schema and JSON serializer and deserializer configs, the wrapper
//!   and composite deserializers and DekRegistryClientConfig, with the `schema.registry.` (the
//!   client's `ssl.*` and the deprecated `schema.registry.basic.auth.user.info` live there),
//!   `bearer.auth.`, `request.header.`, `rule.executors.`, `rule.actions.` and
//!   `composite.*.deserializer.` prefixes.
//!
//! A name several clients know keeps the most specific scope: one the producer knows is
//! Producer or Both, then Consumer (`group.id`, `session.timeout.ms` are the consumer's though
//! Connect workers take them too), and only then the other clients.

/// Which Kafka client knows a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The producer only.
    Producer,
    /// The consumer only.
    Consumer,
    /// Producer and consumer: the common client (connection, security, metrics).
    Both,
    /// The admin client only.
    Admin,
    /// Kafka Streams (its own names, and its per-client prefixes).
    Streams,
    /// A Kafka Connect worker.
    Connect,
    /// A Confluent Schema Registry client or serializer.
    SchemaRegistry,
}

/// Sorted by name (binary search; `closest` also takes the first of equals in this order).
pub(super) const KNOWN: &[(&str, Scope)] = &[
    ("acceptable.recovery.lag", Scope::Streams),
    ("access.control.allow.methods", Scope::Connect),
    ("access.control.allow.origin", Scope::Connect),
    ("acks", Scope::Producer),
    ("admin.listeners", Scope::Connect),
    ("allow.auto.create.topics", Scope::Both),
    ("allow.os.group.write.access", Scope::Streams),
    ("api.version.fallback.ms", Scope::Both),
    ("api.version.request", Scope::Both),
    ("api.version.request.timeout.ms", Scope::Both),
    ("application.id", Scope::Streams),
    ("application.server", Scope::Streams),
    ("auto.commit.enable", Scope::Consumer),
    ("auto.commit.interval.ms", Scope::Consumer),
    ("auto.offset.reset", Scope::Consumer),
    ("auto.register.schemas", Scope::SchemaRegistry),
    ("avro.fail.on.trailing.data", Scope::SchemaRegistry),
    ("avro.reflection.allow.null", Scope::SchemaRegistry),
    ("avro.remove.java.properties", Scope::SchemaRegistry),
    ("avro.use.logical.type.converters", Scope::SchemaRegistry),
    ("background_event_cb", Scope::Both),
    ("basic.auth.credentials.source", Scope::SchemaRegistry),
    ("basic.auth.user.info", Scope::SchemaRegistry),
    ("batch.num.messages", Scope::Producer),
    ("batch.size", Scope::Producer),
    (
        "bearer.auth.cache.expiry.buffer.seconds",
        Scope::SchemaRegistry,
    ),
    ("bearer.auth.client.id", Scope::SchemaRegistry),
    ("bearer.auth.client.secret", Scope::SchemaRegistry),
    ("bearer.auth.credentials.source", Scope::SchemaRegistry),
    ("bearer.auth.custom.provider.class", Scope::SchemaRegistry),
    ("bearer.auth.identity.pool.id", Scope::SchemaRegistry),
    ("bearer.auth.issuer.endpoint.url", Scope::SchemaRegistry),
    ("bearer.auth.logical.cluster", Scope::SchemaRegistry),
    ("bearer.auth.scope", Scope::SchemaRegistry),
    ("bearer.auth.scope.claim.name", Scope::SchemaRegistry),
    ("bearer.auth.sub.claim.name", Scope::SchemaRegistry),
    ("bearer.auth.token", Scope::SchemaRegistry),
    ("bearer.auth.uami.endpoint.query", Scope::SchemaRegistry),
    ("bearer.auth.uami.endpoint.url", Scope::SchemaRegistry),
    ("bootstrap.controllers", Scope::Admin),
    ("bootstrap.resolve.timeout.ms", Scope::Both),
    ("bootstrap.servers", Scope::Both),
    ("broker.address.family", Scope::Both),
    ("broker.address.ttl", Scope::Both),
    ("broker.version.fallback", Scope::Both),
    ("buffer.memory", Scope::Producer),
    ("buffer.memory.allocation.strategy", Scope::Producer),
    ("buffered.records.per.partition", Scope::Streams),
    ("built.in.metrics.version", Scope::Streams),
    ("builtin.features", Scope::Both),
    ("cache.max.bytes.buffering", Scope::Streams),
    ("check.crcs", Scope::Consumer),
    ("client.dns.lookup", Scope::Both),
    ("client.id", Scope::Both),
    ("client.rack", Scope::Both),
    ("closesocket_cb", Scope::Both),
    ("commit.interval.ms", Scope::Streams),
    ("composite.confluent.deserializer", Scope::SchemaRegistry),
    ("composite.old.deserializer", Scope::SchemaRegistry),
    ("compression.codec", Scope::Producer),
    ("compression.gzip.level", Scope::Producer),
    ("compression.level", Scope::Producer),
    ("compression.lz4.level", Scope::Producer),
    ("compression.type", Scope::Producer),
    ("compression.zstd.level", Scope::Producer),
    ("config.providers", Scope::Both),
    ("config.storage.replication.factor", Scope::Connect),
    ("config.storage.topic", Scope::Connect),
    ("connect.protocol", Scope::Connect),
    ("connect_cb", Scope::Both),
    ("connections.max.idle.ms", Scope::Both),
    ("connector.client.config.override.policy", Scope::Connect),
    ("consume.callback.max.messages", Scope::Consumer),
    ("consume_cb", Scope::Consumer),
    ("context.name.strategy", Scope::SchemaRegistry),
    ("coordinator.query.interval.ms", Scope::Consumer),
    ("debug", Scope::Both),
    ("default.api.timeout.ms", Scope::Consumer),
    ("default.client.supplier", Scope::Streams),
    ("default.deserialization.exception.handler", Scope::Streams),
    ("default.dsl.store", Scope::Streams),
    ("default.interactive.query.isolation.level", Scope::Streams),
    ("default.key.serde", Scope::Streams),
    ("default.list.key.serde.inner", Scope::Both),
    ("default.list.key.serde.type", Scope::Both),
    ("default.list.value.serde.inner", Scope::Both),
    ("default.list.value.serde.type", Scope::Both),
    ("default.production.exception.handler", Scope::Streams),
    ("default.timestamp.extractor", Scope::Streams),
    ("default.value.serde", Scope::Streams),
    ("default_topic_conf", Scope::Both),
    ("delivery.report.only.error", Scope::Producer),
    ("delivery.timeout.ms", Scope::Producer),
    ("derive.type", Scope::SchemaRegistry),
    ("deserialization.exception.handler", Scope::Streams),
    ("dr_cb", Scope::Producer),
    ("dr_msg_cb", Scope::Producer),
    ("dsl.store.format", Scope::Streams),
    ("dsl.store.suppliers.class", Scope::Streams),
    ("enable.auto.commit", Scope::Consumer),
    ("enable.auto.offset.store", Scope::Consumer),
    ("enable.gapless.guarantee", Scope::Producer),
    ("enable.idempotence", Scope::Producer),
    ("enable.metrics.push", Scope::Both),
    ("enable.partition.eof", Scope::Consumer),
    ("enable.random.seed", Scope::Both),
    ("enable.sasl.oauthbearer.unsecure.jwt", Scope::Both),
    ("enable.ssl.certificate.verification", Scope::Both),
    ("enable.transactional.statestores", Scope::Streams),
    ("enabled_events", Scope::Both),
    ("ensure.explicit.internal.resource.naming", Scope::Streams),
    ("error_cb", Scope::Both),
    ("errors.dead.letter.queue.topic.name", Scope::Streams),
    ("exactly.once.source.support", Scope::Connect),
    ("exclude.internal.topics", Scope::Consumer),
    ("execution.environment", Scope::SchemaRegistry),
    ("fetch.error.backoff.ms", Scope::Consumer),
    ("fetch.max.bytes", Scope::Consumer),
    ("fetch.max.wait.ms", Scope::Consumer),
    ("fetch.message.max.bytes", Scope::Consumer),
    ("fetch.min.bytes", Scope::Consumer),
    ("fetch.queue.backoff.ms", Scope::Consumer),
    ("fetch.wait.max.ms", Scope::Consumer),
    ("group.id", Scope::Consumer),
    ("group.instance.id", Scope::Consumer),
    ("group.protocol", Scope::Consumer),
    ("group.protocol.type", Scope::Consumer),
    ("group.remote.assignor", Scope::Consumer),
    ("header.converter", Scope::Connect),
    ("header.converter.plugin.version", Scope::Connect),
    ("heartbeat.interval.ms", Scope::Consumer),
    ("http.connect.timeout.ms", Scope::SchemaRegistry),
    ("http.read.timeout.ms", Scope::SchemaRegistry),
    ("https.ca.location", Scope::Both),
    ("https.ca.pem", Scope::Both),
    ("id.compatibility.strict", Scope::SchemaRegistry),
    ("inter.worker.key.generation.algorithm", Scope::Connect),
    ("inter.worker.key.size", Scope::Connect),
    ("inter.worker.key.ttl.ms", Scope::Connect),
    ("inter.worker.signature.algorithm", Scope::Connect),
    ("inter.worker.verification.algorithms", Scope::Connect),
    ("interceptor.classes", Scope::Both),
    ("interceptors", Scope::Both),
    ("internal.termination.signal", Scope::Both),
    ("isolation.level", Scope::Consumer),
    ("json.default.property.inclusion", Scope::SchemaRegistry),
    ("json.envelope.detection", Scope::SchemaRegistry),
    ("json.fail.invalid.schema", Scope::SchemaRegistry),
    ("json.fail.unknown.properties", Scope::SchemaRegistry),
    ("json.indent.output", Scope::SchemaRegistry),
    ("json.key.type", Scope::SchemaRegistry),
    ("json.oneof.for.nullables", Scope::SchemaRegistry),
    ("json.schema.scan.packages", Scope::SchemaRegistry),
    ("json.schema.spec.version", Scope::SchemaRegistry),
    ("json.type.allowed.packages", Scope::SchemaRegistry),
    ("json.validate.before.domain.rules", Scope::SchemaRegistry),
    ("json.value.type", Scope::SchemaRegistry),
    ("json.write.dates.iso8601", Scope::SchemaRegistry),
    ("key.converter", Scope::Connect),
    ("key.converter.plugin.version", Scope::Connect),
    ("key.deserializer", Scope::Consumer),
    ("key.schema.id.deserializer", Scope::SchemaRegistry),
    ("key.schema.id.serializer", Scope::SchemaRegistry),
    ("key.serializer", Scope::Producer),
    ("key.subject.name.strategy", Scope::SchemaRegistry),
    ("latest.cache.size", Scope::SchemaRegistry),
    ("latest.cache.ttl.sec", Scope::SchemaRegistry),
    ("latest.compatibility.strict", Scope::SchemaRegistry),
    ("linger.ms", Scope::Producer),
    ("listeners", Scope::Connect),
    ("log.connection.close", Scope::Both),
    ("log.queue", Scope::Both),
    ("log.summary.interval.ms", Scope::Streams),
    ("log.thread.name", Scope::Both),
    ("log_cb", Scope::Both),
    ("log_level", Scope::Both),
    ("max.block.ms", Scope::Producer),
    ("max.in.flight", Scope::Both),
    ("max.in.flight.requests.per.connection", Scope::Both),
    ("max.partition.fetch.bytes", Scope::Consumer),
    ("max.poll.interval.ms", Scope::Consumer),
    ("max.poll.records", Scope::Consumer),
    ("max.request.size", Scope::Producer),
    ("max.retries", Scope::SchemaRegistry),
    ("max.schemas.per.subject", Scope::SchemaRegistry),
    ("max.task.idle.ms", Scope::Streams),
    ("max.warmup.replicas", Scope::Streams),
    ("message.copy.max.bytes", Scope::Both),
    ("message.max.bytes", Scope::Both),
    ("message.send.max.retries", Scope::Producer),
    ("message.timeout.ms", Scope::Producer),
    ("metadata.broker.list", Scope::Both),
    ("metadata.cluster.check.enable", Scope::Both),
    ("metadata.max.age.ms", Scope::Both),
    ("metadata.max.idle.ms", Scope::Producer),
    ("metadata.recovery.rebootstrap.trigger.ms", Scope::Both),
    ("metadata.recovery.strategy", Scope::Both),
    ("metric.reporters", Scope::Both),
    ("metrics.num.samples", Scope::Both),
    ("metrics.recording.level", Scope::Both),
    ("metrics.sample.window.ms", Scope::Both),
    ("missing.cache.size", Scope::SchemaRegistry),
    ("missing.dek.cache.ttl.sec", Scope::SchemaRegistry),
    ("missing.id.cache.ttl.sec", Scope::SchemaRegistry),
    ("missing.kek.cache.ttl.sec", Scope::SchemaRegistry),
    ("missing.schema.cache.ttl.sec", Scope::SchemaRegistry),
    ("missing.version.cache.ttl.sec", Scope::SchemaRegistry),
    ("msg_order_cmp", Scope::Producer),
    ("normalize.schemas", Scope::SchemaRegistry),
    ("num.standby.replicas", Scope::Streams),
    ("num.stream.threads", Scope::Streams),
    ("oauthbearer_token_refresh_cb", Scope::Both),
    ("offset.flush.interval.ms", Scope::Connect),
    ("offset.flush.timeout.ms", Scope::Connect),
    ("offset.storage.file.filename", Scope::Connect),
    ("offset.storage.partitions", Scope::Connect),
    ("offset.storage.replication.factor", Scope::Connect),
    ("offset.storage.topic", Scope::Connect),
    ("offset.store.method", Scope::Consumer),
    ("offset.store.path", Scope::Consumer),
    ("offset.store.sync.interval.ms", Scope::Consumer),
    ("offset_commit_cb", Scope::Consumer),
    ("opaque", Scope::Both),
    ("open_cb", Scope::Both),
    ("partition.assignment.strategy", Scope::Consumer),
    ("partitioner", Scope::Producer),
    ("partitioner.adaptive.partitioning.enable", Scope::Producer),
    ("partitioner.availability.timeout.ms", Scope::Producer),
    ("partitioner.class", Scope::Producer),
    ("partitioner.ignore.keys", Scope::Producer),
    ("partitioner.rack.aware", Scope::Producer),
    ("partitioner_cb", Scope::Producer),
    ("plugin.discovery", Scope::Connect),
    ("plugin.library.paths", Scope::Both),
    ("plugin.path", Scope::Connect),
    ("poll.ms", Scope::Streams),
    ("probing.rebalance.interval.ms", Scope::Streams),
    ("processing.exception.handler", Scope::Streams),
    (
        "processing.exception.handler.global.enabled",
        Scope::Streams,
    ),
    ("processing.guarantee", Scope::Streams),
    ("processor.wrapper.class", Scope::Streams),
    ("produce.offset.report", Scope::Producer),
    ("production.exception.handler", Scope::Streams),
    ("propagate.schema.tags", Scope::SchemaRegistry),
    ("proxy.host", Scope::SchemaRegistry),
    ("proxy.port", Scope::SchemaRegistry),
    ("queue.buffering.backpressure.threshold", Scope::Producer),
    ("queue.buffering.max.kbytes", Scope::Producer),
    ("queue.buffering.max.messages", Scope::Producer),
    ("queue.buffering.max.ms", Scope::Producer),
    ("queued.max.messages.kbytes", Scope::Consumer),
    ("queued.min.messages", Scope::Consumer),
    ("queuing.strategy", Scope::Producer),
    ("rack.aware.assignment.non_overlap_cost", Scope::Streams),
    ("rack.aware.assignment.strategy", Scope::Streams),
    ("rack.aware.assignment.tags", Scope::Streams),
    ("rack.aware.assignment.traffic_cost", Scope::Streams),
    ("rebalance.timeout.ms", Scope::Both),
    ("rebalance_cb", Scope::Consumer),
    ("receive.buffer.bytes", Scope::Both),
    ("receive.message.max.bytes", Scope::Both),
    ("reconnect.backoff.jitter.ms", Scope::Both),
    ("reconnect.backoff.max.ms", Scope::Both),
    ("reconnect.backoff.ms", Scope::Both),
    ("reference.lookup.only", Scope::SchemaRegistry),
    ("reference.subject.name.strategy", Scope::SchemaRegistry),
    ("repartition.purge.interval.ms", Scope::Streams),
    ("replication.factor", Scope::Streams),
    ("request.required.acks", Scope::Producer),
    ("request.timeout.ms", Scope::Both),
    ("resolve_cb", Scope::Both),
    ("response.http.headers.config", Scope::Connect),
    ("rest.advertised.host.name", Scope::Connect),
    ("rest.advertised.listener", Scope::Connect),
    ("rest.advertised.port", Scope::Connect),
    ("rest.extension.classes", Scope::Connect),
    ("retries", Scope::Producer),
    ("retries.max.wait.ms", Scope::SchemaRegistry),
    ("retries.wait.ms", Scope::SchemaRegistry),
    ("retry.backoff.max.ms", Scope::Both),
    ("retry.backoff.ms", Scope::Both),
    ("rocksdb.config.setter", Scope::Streams),
    ("rule.actions", Scope::SchemaRegistry),
    ("rule.executors", Scope::SchemaRegistry),
    ("rule.metrics.enable", Scope::SchemaRegistry),
    ("rule.service.loader.enable", Scope::SchemaRegistry),
    ("sasl.client.callback.handler.class", Scope::Both),
    ("sasl.jaas.config", Scope::Both),
    ("sasl.kerberos.keytab", Scope::Both),
    ("sasl.kerberos.kinit.cmd", Scope::Both),
    ("sasl.kerberos.min.time.before.relogin", Scope::Both),
    ("sasl.kerberos.principal", Scope::Both),
    ("sasl.kerberos.service.name", Scope::Both),
    ("sasl.kerberos.ticket.renew.jitter", Scope::Both),
    ("sasl.kerberos.ticket.renew.window.factor", Scope::Both),
    ("sasl.login.callback.handler.class", Scope::Both),
    ("sasl.login.class", Scope::Both),
    ("sasl.login.connect.timeout.ms", Scope::Both),
    ("sasl.login.read.timeout.ms", Scope::Both),
    ("sasl.login.refresh.buffer.seconds", Scope::Both),
    ("sasl.login.refresh.min.period.seconds", Scope::Both),
    ("sasl.login.refresh.window.factor", Scope::Both),
    ("sasl.login.refresh.window.jitter", Scope::Both),
    ("sasl.login.retry.backoff.max.ms", Scope::Both),
    ("sasl.login.retry.backoff.ms", Scope::Both),
    ("sasl.mechanism", Scope::Both),
    ("sasl.mechanisms", Scope::Both),
    ("sasl.oauthbearer.allow.unverified.audience", Scope::Both),
    ("sasl.oauthbearer.allow.unverified.issuer", Scope::Both),
    ("sasl.oauthbearer.assertion.algorithm", Scope::Both),
    ("sasl.oauthbearer.assertion.claim.aud", Scope::Both),
    ("sasl.oauthbearer.assertion.claim.exp.seconds", Scope::Both),
    ("sasl.oauthbearer.assertion.claim.iss", Scope::Both),
    ("sasl.oauthbearer.assertion.claim.jti.include", Scope::Both),
    ("sasl.oauthbearer.assertion.claim.nbf.seconds", Scope::Both),
    ("sasl.oauthbearer.assertion.claim.sub", Scope::Both),
    ("sasl.oauthbearer.assertion.file", Scope::Both),
    ("sasl.oauthbearer.assertion.jwt.template.file", Scope::Both),
    ("sasl.oauthbearer.assertion.private.key.file", Scope::Both),
    (
        "sasl.oauthbearer.assertion.private.key.passphrase",
        Scope::Both,
    ),
    ("sasl.oauthbearer.assertion.private.key.pem", Scope::Both),
    ("sasl.oauthbearer.assertion.template.file", Scope::Both),
    ("sasl.oauthbearer.client.credentials.client.id", Scope::Both),
    (
        "sasl.oauthbearer.client.credentials.client.secret",
        Scope::Both,
    ),
    ("sasl.oauthbearer.client.id", Scope::Both),
    ("sasl.oauthbearer.client.secret", Scope::Both),
    ("sasl.oauthbearer.clock.skew.seconds", Scope::Both),
    ("sasl.oauthbearer.config", Scope::Both),
    ("sasl.oauthbearer.expected.audience", Scope::Both),
    ("sasl.oauthbearer.expected.issuer", Scope::Both),
    ("sasl.oauthbearer.extensions", Scope::Both),
    ("sasl.oauthbearer.grant.type", Scope::Both),
    ("sasl.oauthbearer.header.urlencode", Scope::Both),
    ("sasl.oauthbearer.jwks.endpoint.refresh.ms", Scope::Both),
    (
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
        Scope::Both,
    ),
    (
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
        Scope::Both,
    ),
    ("sasl.oauthbearer.jwks.endpoint.url", Scope::Both),
    ("sasl.oauthbearer.jwt.retriever.class", Scope::Both),
    ("sasl.oauthbearer.jwt.validator.class", Scope::Both),
    ("sasl.oauthbearer.metadata.authentication.type", Scope::Both),
    ("sasl.oauthbearer.method", Scope::Both),
    ("sasl.oauthbearer.scope", Scope::Both),
    ("sasl.oauthbearer.scope.claim.name", Scope::Both),
    ("sasl.oauthbearer.sub.claim.name", Scope::Both),
    ("sasl.oauthbearer.token.endpoint.url", Scope::Both),
    ("sasl.password", Scope::Both),
    ("sasl.username", Scope::Both),
    ("scheduled.rebalance.max.delay.ms", Scope::Connect),
    ("schema.format", Scope::SchemaRegistry),
    ("schema.reflection", Scope::SchemaRegistry),
    (
        "schema.registry.basic.auth.user.info",
        Scope::SchemaRegistry,
    ),
    ("schema.registry.url", Scope::SchemaRegistry),
    ("schema.registry.url.randomize", Scope::SchemaRegistry),
    ("security.protocol", Scope::Both),
    ("security.providers", Scope::Both),
    ("send.buffer.bytes", Scope::Both),
    ("session.timeout.ms", Scope::Consumer),
    ("share.acknowledgement.mode", Scope::Consumer),
    ("share.acquire.mode", Scope::Consumer),
    ("skip.known.types", Scope::SchemaRegistry),
    ("socket.blocking.max.ms", Scope::Both),
    ("socket.connection.setup.timeout.max.ms", Scope::Both),
    ("socket.connection.setup.timeout.ms", Scope::Both),
    ("socket.keepalive.enable", Scope::Both),
    ("socket.max.fails", Scope::Both),
    ("socket.nagle.disable", Scope::Both),
    ("socket.receive.buffer.bytes", Scope::Both),
    ("socket.send.buffer.bytes", Scope::Both),
    ("socket.timeout.ms", Scope::Both),
    ("socket_cb", Scope::Both),
    ("specific.avro.key.type", Scope::SchemaRegistry),
    ("specific.avro.reader", Scope::SchemaRegistry),
    ("specific.avro.value.type", Scope::SchemaRegistry),
    ("specific.protobuf.key.type", Scope::SchemaRegistry),
    ("specific.protobuf.value.type", Scope::SchemaRegistry),
    ("ssl.ca.certificate.stores", Scope::Both),
    ("ssl.ca.location", Scope::Both),
    ("ssl.ca.pem", Scope::Both),
    ("ssl.certificate.location", Scope::Both),
    ("ssl.certificate.pem", Scope::Both),
    ("ssl.certificate.verify_cb", Scope::Both),
    ("ssl.cipher.suites", Scope::Both),
    ("ssl.client.auth", Scope::Connect),
    ("ssl.crl.location", Scope::Both),
    ("ssl.curves.list", Scope::Both),
    ("ssl.enabled.protocols", Scope::Both),
    ("ssl.endpoint.identification.algorithm", Scope::Both),
    ("ssl.engine.factory.class", Scope::Both),
    ("ssl.engine.id", Scope::Both),
    ("ssl.engine.location", Scope::Both),
    ("ssl.key.location", Scope::Both),
    ("ssl.key.password", Scope::Both),
    ("ssl.key.pem", Scope::Both),
    ("ssl.keymanager.algorithm", Scope::Both),
    ("ssl.keystore.certificate.chain", Scope::Both),
    ("ssl.keystore.key", Scope::Both),
    ("ssl.keystore.location", Scope::Both),
    ("ssl.keystore.password", Scope::Both),
    ("ssl.keystore.type", Scope::Both),
    ("ssl.protocol", Scope::Both),
    ("ssl.provider", Scope::Both),
    ("ssl.providers", Scope::Both),
    ("ssl.secure.random.implementation", Scope::Both),
    ("ssl.sigalgs.list", Scope::Both),
    ("ssl.trustmanager.algorithm", Scope::Both),
    ("ssl.truststore.certificates", Scope::Both),
    ("ssl.truststore.location", Scope::Both),
    ("ssl.truststore.password", Scope::Both),
    ("ssl.truststore.type", Scope::Both),
    ("ssl_ca", Scope::Both),
    ("ssl_certificate", Scope::Both),
    ("ssl_engine_callback_data", Scope::Both),
    ("ssl_key", Scope::Both),
    ("state.cleanup.delay.ms", Scope::Streams),
    ("state.cleanup.dir.max.age.ms", Scope::Streams),
    ("state.dir", Scope::Streams),
    ("statestore.cache.max.bytes", Scope::Streams),
    ("statestore.uncommitted.max.bytes", Scope::Streams),
    ("statistics.interval.ms", Scope::Both),
    ("stats_cb", Scope::Both),
    ("status.storage.partitions", Scope::Connect),
    ("status.storage.replication.factor", Scope::Connect),
    ("status.storage.topic", Scope::Connect),
    ("sticky.partitioning.linger.ms", Scope::Producer),
    ("task.assignor.class", Scope::Streams),
    ("task.shutdown.graceful.timeout.ms", Scope::Connect),
    ("task.timeout.ms", Scope::Streams),
    ("throttle_cb", Scope::Both),
    ("topic.blacklist", Scope::Both),
    ("topic.creation.enable", Scope::Connect),
    ("topic.metadata.propagation.max.ms", Scope::Both),
    ("topic.metadata.refresh.fast.cnt", Scope::Both),
    ("topic.metadata.refresh.fast.interval.ms", Scope::Both),
    ("topic.metadata.refresh.interval.ms", Scope::Both),
    ("topic.metadata.refresh.sparse", Scope::Both),
    ("topic.tracking.allow.reset", Scope::Connect),
    ("topic.tracking.enable", Scope::Connect),
    ("topology.description.push.enabled", Scope::Streams),
    ("topology.optimization", Scope::Streams),
    ("transaction.timeout.ms", Scope::Producer),
    ("transaction.two.phase.commit.enable", Scope::Producer),
    ("transactional.id", Scope::Producer),
    ("type.property", Scope::SchemaRegistry),
    ("upgrade.from", Scope::Streams),
    ("url.randomize", Scope::SchemaRegistry),
    ("use.apache.http.client", Scope::SchemaRegistry),
    ("use.latest.version", Scope::SchemaRegistry),
    ("use.latest.with.metadata", Scope::SchemaRegistry),
    ("use.schema.guid", Scope::SchemaRegistry),
    ("use.schema.id", Scope::SchemaRegistry),
    ("validation.rules.execution", Scope::SchemaRegistry),
    ("validation.rules.executor.class", Scope::SchemaRegistry),
    ("validation.rules.fail.fast", Scope::SchemaRegistry),
    ("value.converter", Scope::Connect),
    ("value.converter.plugin.version", Scope::Connect),
    ("value.deserializer", Scope::Consumer),
    ("value.schema.id.deserializer", Scope::SchemaRegistry),
    ("value.schema.id.serializer", Scope::SchemaRegistry),
    ("value.serializer", Scope::Producer),
    ("value.subject.name.strategy", Scope::SchemaRegistry),
    ("window.size.ms", Scope::Streams),
    ("windowed.inner.class.serde", Scope::Streams),
    (
        "windowstore.changelog.additional.retention.ms",
        Scope::Streams,
    ),
    ("worker.sync.timeout.ms", Scope::Connect),
    ("worker.unsync.backoff.ms", Scope::Connect),
    ("wrapped.key.deserializer", Scope::SchemaRegistry),
    ("wrapped.key.serializer", Scope::SchemaRegistry),
];

/// Families of properties named by prefix (`metrics.context.<key>`, `producer.<name>`, ...),
/// sorted. The longest prefix that matches gives the scope.
pub(super) const KNOWN_PREFIXES: &[(&str, Scope)] = &[
    ("admin.", Scope::Streams),
    ("admin.listeners.https.", Scope::Connect),
    ("bearer.auth.", Scope::SchemaRegistry),
    ("client.tag.", Scope::Streams),
    ("composite.confluent.deserializer.", Scope::SchemaRegistry),
    ("composite.old.deserializer.", Scope::SchemaRegistry),
    ("config.providers.", Scope::Both),
    ("consumer.", Scope::Streams),
    ("global.consumer.", Scope::Streams),
    ("header.converter.", Scope::Connect),
    ("key.converter.", Scope::Connect),
    ("listeners.https.", Scope::Connect),
    ("main.consumer.", Scope::Streams),
    ("metrics.context.", Scope::Both),
    ("producer.", Scope::Streams),
    ("request.header.", Scope::SchemaRegistry),
    ("restore.consumer.", Scope::Streams),
    ("rule.actions.", Scope::SchemaRegistry),
    ("rule.executors.", Scope::SchemaRegistry),
    ("schema.registry.", Scope::SchemaRegistry),
    ("topic.", Scope::Streams),
    ("value.converter.", Scope::Connect),
];

/// The scope of a Kafka client property, if `name` is one: by its full name, else by the
/// longest known prefix it starts with.
pub(super) fn scope(name: &str) -> Option<Scope> {
    if let Ok(i) = KNOWN.binary_search_by(|(known, _)| known.cmp(&name)) {
        return Some(KNOWN[i].1);
    }
    KNOWN_PREFIXES
        .iter()
        .filter(|(prefix, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|&(_, scope)| scope)
}

/// What a property of this scope is, for a message: "`x` is a Kafka consumer property".
pub(super) fn describe(scope: Scope) -> &'static str {
    match scope {
        Scope::Producer => "a Kafka producer property",
        Scope::Consumer => "a Kafka consumer property",
        Scope::Both => "a Kafka client property",
        Scope::Admin => "a Kafka admin client property",
        Scope::Streams => "a Kafka Streams property",
        Scope::Connect => "a Kafka Connect worker property",
        Scope::SchemaRegistry => "a Schema Registry client property",
    }
}

/// The known full name (prefixes are not names), or one of `also` (names of our own), closest to
/// `name` by edit distance, if it is within max(2, len/4) edits; of equally close names, the
/// first in sorted order.
pub(super) fn closest(name: &str, also: &[&'static str]) -> Option<&'static str> {
    let name: Vec<char> = name.chars().collect();
    let max = (name.len() / 4).max(2);
    let mut best: Option<(usize, &'static str)> = None;
    for known in KNOWN
        .iter()
        .map(|&(known, _)| known)
        .chain(also.iter().copied())
    {
        let limit = best.map_or(max, |(d, _)| d - 1);
        if known.len().abs_diff(name.len()) > limit {
            continue; // a length difference alone costs that many edits
        }
        let d = distance(&name, &known.chars().collect::<Vec<_>>());
        if d <= limit {
            best = Some((d, known));
            if d == 0 {
                break;
            }
        }
    }
    best.map(|(_, known)| known)
}

/// Damerau–Levenshtein distance with adjacent transpositions (optimal string alignment):
/// insertions, deletions, substitutions and swaps of two neighbours each cost one.
fn distance(a: &[char], b: &[char]) -> usize {
    // Three rows of the (a.len() + 1) x (b.len() + 1) table: two back, one back, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_sorted_and_unique() {
        assert!(KNOWN.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(KNOWN_PREFIXES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(KNOWN_PREFIXES.iter().all(|(p, _)| p.ends_with('.')));
    }

    #[test]
    fn scopes_of_each_client() {
        assert_eq!(scope("linger.ms"), Some(Scope::Producer));
        assert_eq!(scope("retries"), Some(Scope::Producer));
        assert_eq!(scope("key.serializer"), Some(Scope::Producer));
        assert_eq!(scope("value.serializer"), Some(Scope::Producer));
        assert_eq!(scope("group.id"), Some(Scope::Consumer));
        assert_eq!(scope("session.timeout.ms"), Some(Scope::Consumer));
        assert_eq!(scope("default.api.timeout.ms"), Some(Scope::Consumer));
        assert_eq!(scope("key.deserializer"), Some(Scope::Consumer));
        assert_eq!(scope("value.deserializer"), Some(Scope::Consumer));
        assert_eq!(scope("security.protocol"), Some(Scope::Both));
        assert_eq!(scope("metrics.context.env"), Some(Scope::Both));
        assert_eq!(scope("config.providers.file.class"), Some(Scope::Both));
        assert_eq!(scope("bootstrap.controllers"), Some(Scope::Admin));
        assert_eq!(scope("application.id"), Some(Scope::Streams));
        assert_eq!(scope("num.stream.threads"), Some(Scope::Streams));
        assert_eq!(scope("producer.linger.ms"), Some(Scope::Streams));
        assert_eq!(
            scope("main.consumer.max.poll.records"),
            Some(Scope::Streams)
        );
        assert_eq!(scope("topic.cleanup.policy"), Some(Scope::Streams));
        assert_eq!(
            scope("topic.metadata.refresh.interval.ms"),
            Some(Scope::Both)
        );
        assert_eq!(scope("key.converter"), Some(Scope::Connect));
        assert_eq!(
            scope("value.converter.schemas.enable"),
            Some(Scope::Connect)
        );
        assert_eq!(scope("offset.storage.topic"), Some(Scope::Connect));
        assert_eq!(scope("admin.listeners"), Some(Scope::Connect));
        assert_eq!(
            scope("admin.listeners.https.ssl.keystore.type"),
            Some(Scope::Connect)
        );
        assert_eq!(scope("schema.registry.url"), Some(Scope::SchemaRegistry));
        assert_eq!(scope("basic.auth.user.info"), Some(Scope::SchemaRegistry));
        assert_eq!(scope("auto.register.schemas"), Some(Scope::SchemaRegistry));
        assert_eq!(scope("bearer.auth.token"), Some(Scope::SchemaRegistry));
        assert_eq!(
            scope("bearer.auth.something.new"),
            Some(Scope::SchemaRegistry)
        );
        assert_eq!(
            scope("schema.registry.ssl.truststore.location"),
            Some(Scope::SchemaRegistry)
        );
        assert_eq!(scope("lingr.ms"), None);
        assert_eq!(scope("xyzzy"), None);
    }

    #[test]
    fn every_scope_is_described() {
        assert_eq!(describe(Scope::Consumer), "a Kafka consumer property");
        assert_eq!(
            describe(Scope::SchemaRegistry),
            "a Schema Registry client property"
        );
    }

    #[test]
    fn closest_suggests_a_known_name() {
        assert_eq!(closest("securty.protocol", &[]), Some("security.protocol"));
        assert_eq!(closest("sasl.mechansim", &[]), Some("sasl.mechanism"));
        assert_eq!(closest("lingr.ms", &[]), Some("linger.ms"));
        assert_eq!(closest("linger.ms", &[]), Some("linger.ms"));
        assert_eq!(
            closest("shcema.registry.url", &[]),
            Some("schema.registry.url")
        );
        assert_eq!(closest("xyzzy", &[]), None);
        assert_eq!(closest("", &[]), None);
    }

    #[test]
    fn distance_counts_swaps_as_one() {
        let d = |a: &str, b: &str| {
            distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("", ""), 0);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("ab", "ba"), 1);
        assert_eq!(d("ca", "abc"), 3); // optimal string alignment, not unrestricted
        assert_eq!(d("mechansim", "mechanism"), 1);
    }
}
