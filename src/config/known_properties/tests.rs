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
