//! The config's unit tests: the old tool's files, each setting's rules and defaults, and the
//! pipelines of a job.

use super::fields::*;
use super::*;

const OLD: &str = "\
repliqate:
  name: processes
  statsd_addr: localhost:8125
  redis_addr: localhost:6379
  replication:
    poll_interval_sec: 10
    sql_source:
      uri: sqlite:////var/lib/app/metrics.db
      table: processes
      primary_key: id
      limit: 100
      fields: [pid, name, user, command]
    kafka_target:
      topic: repliqate-processes
      brokers: [127.0.0.1:9092]
";

fn parse_str(text: &str) -> Result<Config, String> {
    parse(text, Path::new("/etc/repliqate/job.yaml")).map_err(|e| e.to_string())
}

#[test]
fn redis_timeout_has_its_own_setting_only_beside_redis_addr() {
    let with = OLD.replace(
        "  redis_addr: localhost:6379\n",
        "  redis_addr: localhost:6379\n  redis_timeout_sec: 2.5\n",
    );
    let c = parse_str(&with).expect("redis_timeout_sec parses");
    assert_eq!(
        c.position_store,
        PositionStoreConfig::Redis {
            addr: "localhost:6379".into(),
            timeout: Duration::from_millis(2500),
            tls: None,
            password: None,
        }
    );
    // The Kafka request timeout no longer sets it.
    assert_eq!(c.kafka.producer.request_timeout, Duration::from_secs(30));
    let without = OLD.replace("  redis_addr: localhost:6379\n", "  redis_timeout_sec: 2\n");
    let err = parse_str(&without)
        .expect_err("no Redis to time out")
        .to_string();
    assert!(
        err.contains("`redis_timeout_sec` is set without `redis_url` (or `redis_addr`)"),
        "{err}"
    );
}

#[test]
fn metrics_addr_and_its_probe_thresholds() {
    let c = parse_str(OLD).unwrap();
    assert_eq!(c.metrics_addr, None);
    // The default stall timeout adds up the longest healthy step: 2 × (10 + 3 × 30) + 120
    // + 30 + 3 × 5.
    assert_eq!(c.health.stall_timeout, Duration::from_secs(365));
    assert_eq!(c.health.ready_lag, Duration::from_secs(60));

    let with = |extra: &str| {
        parse_str(&OLD.replace(
            "  redis_addr: localhost:6379\n",
            &format!("  redis_addr: localhost:6379\n{extra}"),
        ))
    };
    let c =
        with("  metrics_addr: 127.0.0.1:0\n  stall_timeout_sec: 90\n  ready_lag_sec: 5\n").unwrap();
    assert_eq!(c.metrics_addr.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(c.health.stall_timeout, Duration::from_secs(90));
    assert_eq!(c.health.ready_lag, Duration::from_secs(5));
    let err = with("  metrics_addr: 9464\n").unwrap_err();
    assert!(
        err.contains("repliqate.metrics_addr: `9464` has no port"),
        "{err}"
    );
    let err = with("  ready_lag_sec: 5\n").unwrap_err();
    assert!(
        err.contains("`ready_lag_sec` is set without `metrics_addr`"),
        "{err}"
    );
    let err = with("  metrics_addr: 127.0.0.1:9464\n  stall_timeout_sec: 0\n").unwrap_err();
    assert!(err.contains("repliqate.stall_timeout_sec:"), "{err}");
}

#[test]
fn old_tool_config_parses_with_defaults_for_new_keys() {
    let c = parse_str(OLD).expect("old config must parse");
    assert_eq!(c.name, "processes");
    assert_eq!(c.statsd_addr.as_deref(), Some("localhost:8125"));
    assert_eq!(
        c.position_store,
        PositionStoreConfig::Redis {
            addr: "localhost:6379".into(),
            timeout: Duration::from_secs(5),
            tls: None,
            password: None,
        }
    );
    assert_eq!(c.poll_interval, Duration::from_secs(10));
    assert_eq!(c.source.limit, 100);
    assert_eq!(
        c.source.spec.fields,
        Some(vec![
            "pid".into(),
            "name".into(),
            "user".into(),
            "command".into()
        ])
    );
    assert_eq!(c.kafka.producer.bootstrap, vec!["127.0.0.1:9092"]);
    assert_eq!(c.kafka.key, KeyMode::PrimaryKey);
    assert_eq!(c.kafka.producer.acks, Acks::All);
    assert_eq!(c.kafka.producer.compression, Compression::None);
    assert!(c.kafka.producer.idempotent);
    assert_eq!(c.kafka.producer.delivery_timeout, Duration::from_secs(120));
    assert_eq!(c.kafka.producer.client_id, "repliqate");
    assert_eq!(c.retry_backoff_max, Duration::from_secs(5));
    assert_eq!(c.log_format, LogFormat::Text);
}

#[test]
fn omitted_optional_keys_get_defaults() {
    let text = OLD
        .replace("  statsd_addr: localhost:8125\n", "")
        .replace("  redis_addr: localhost:6379\n", "")
        .replace("      limit: 100\n", "")
        .replace("      fields: [pid, name, user, command]\n", "")
        .replace("      brokers: [127.0.0.1:9092]\n", "")
        .replace("poll_interval_sec: 10", "poll_interval_sec: 0.25");
    let c = parse_str(&text).expect("minimal config must parse");
    assert_eq!(c.statsd_addr, None);
    assert_eq!(
        c.position_store,
        PositionStoreConfig::File {
            path: PathBuf::from("/etc/repliqate/repliqate-processes.offset")
        }
    );
    assert_eq!(c.poll_interval, Duration::from_millis(250));
    assert_eq!(c.source.limit, 10_000);
    assert_eq!(c.source.spec.fields, None);
    assert_eq!(c.kafka.producer.bootstrap, vec!["localhost:9092"]);
}

#[test]
fn errors_name_the_dotted_path_and_line() {
    let err = parse_str(&OLD.replace("      table: processes\n", "")).unwrap_err();
    assert!(
        err.contains("repliqate.replication.sql_source.table: missing required key"),
        "{err}"
    );
    assert!(err.starts_with("/etc/repliqate/job.yaml: "), "{err}");
    let err = parse_str(&OLD.replace("limit: 100", "limit: 0")).unwrap_err();
    assert!(
        err.contains("repliqate.replication.sql_source.limit: 0 is out of range")
            && err.contains("at line 11"),
        "{err}"
    );
}

#[test]
fn env_vars_are_expanded_in_strings() {
    std::env::set_var("REPLIQATE_CONFIG_TEST_PW", "s3cr=t");
    let c = parse_str(&OLD.replace(
        "sqlite:////var/lib/app/metrics.db",
        "postgresql://u:${REPLIQATE_CONFIG_TEST_PW}@h/db",
    ))
    .expect("expanded");
    assert_eq!(c.source.spec.uri, "postgresql://u:s3cr=t@h/db");
    assert!(!format!("{c:?}").contains("s3cr=t"), "Debug must redact");
}

#[test]
fn the_database_password_may_come_from_a_file() {
    let c = parse_str(&OLD.replace(
        "      uri: sqlite:////var/lib/app/metrics.db\n",
        "      uri: postgresql://u@h/db\n      password_file: /run/secrets/db\n",
    ))
    .expect("password_file parses");
    assert_eq!(
        c.source.spec.password,
        Some(Secret::File("/run/secrets/db".into()))
    );
    assert_eq!(parse_str(OLD).unwrap().source.spec.password, None);
    let err = parse_str(&OLD.replace(
        "      table: processes\n",
        "      table: processes\n      password_file: ''\n",
    ))
    .unwrap_err();
    assert!(
        err.contains("repliqate.replication.sql_source.password_file: the value is empty"),
        "{err}"
    );
}

#[test]
fn env_expansion_rules() {
    std::env::set_var("REPLIQATE_CONFIG_TEST_X", "x");
    assert_eq!(expand_env("a${REPLIQATE_CONFIG_TEST_X}b").unwrap(), "axb");
    assert_eq!(
        expand_env("$${REPLIQATE_CONFIG_TEST_X}").unwrap(),
        "${REPLIQATE_CONFIG_TEST_X}"
    );
    assert_eq!(expand_env("cost $5").unwrap(), "cost $5");
    assert!(expand_env("${REPLIQATE_CONFIG_TEST_UNSET}")
        .unwrap_err()
        .contains("`REPLIQATE_CONFIG_TEST_UNSET` is not set"));
    assert!(expand_env("${oops").is_err());
    assert!(expand_env("${}").is_err());
}

#[test]
fn host_port_rules() {
    for ok in [
        "localhost:9092",
        "10.0.0.1:1",
        "[::1]:9092",
        "kafka-1.example:65535",
    ] {
        assert_eq!(check_host_port(ok, Port::Required), Ok(()), "{ok}");
    }
    for bad in [
        "localhost",
        ":9092",
        "h:0",
        "h:70000",
        "h:x",
        "::1:9092",
        "[::1]",
        "a b:1",
    ] {
        assert!(check_host_port(bad, Port::Required).is_err(), "{bad}");
    }
}

#[test]
fn redis_url_tls_and_password_file() {
    let with = |extra: &str| {
        parse_str(&OLD.replace("  redis_addr: localhost:6379\n", extra)).map(|c| c.position_store)
    };
    let store = with(
            "  redis_url: rediss://app@redis.internal:6380/2\n  redis_password_file: /run/pw\n  \
             redis_tls:\n    ca_file: /etc/ca.pem\n    cert_file: /etc/c.pem\n    key_file: /etc/k.pem\n",
        )
        .unwrap();
    let PositionStoreConfig::Redis {
        addr,
        tls,
        password,
        ..
    } = store
    else {
        panic!("{store:?}")
    };
    assert_eq!(addr, "rediss://app@redis.internal:6380/2");
    assert_eq!(password, Some(Secret::File("/run/pw".into())));
    let tls = tls.unwrap();
    assert!(
        matches!(&tls.ca, Some(Trust::Pem(Pem::File(f))) if f.setting == "repliqate.redis_tls.ca_file"),
        "{tls:?}"
    );
    assert!(tls.client.is_some() && tls.verify_hostname);

    for (extra, expected) in [
        ("  redis_url: redis://h:1\n  redis_addr: h:1\n", "both set"),
        (
            "  redis_url: redis://h:1\n  redis_tls: {ca_file: /ca.pem}\n",
            "not a rediss:// URL",
        ),
        (
            "  redis_tls: {ca_file: /ca.pem}\n",
            "`redis_tls` is set without `redis_url`",
        ),
        (
            "  redis_url: rediss://h:1\n  redis_tls: {cert_file: /c.pem}\n",
            "go together",
        ),
        (
            "  redis_url: rediss://h:1\n  redis_tls: {ca: /c.pem}\n",
            "unknown field `ca`",
        ),
    ] {
        let e = with(extra).unwrap_err().to_string();
        assert!(e.contains(expected), "{extra}: {e}");
    }
}

#[test]
fn redis_uri_rules() {
    for ok in [
        "redis://h",
        "redis://:pw@h:6379/2",
        "redis://u:p@ss@h:1",
        "h:6379",
    ] {
        assert_eq!(RedisAddr::check(ok), Ok(()), "{ok}");
    }
    assert_eq!(RedisAddr::check("rediss://u:p@h:6380/1"), Ok(()));
    assert_eq!(RedisUrl::check("rediss://u:p@h:6380/1"), Ok(()));
    let err = RedisUrl::check("h:6379").unwrap_err();
    assert!(err.contains("unsupported scheme"), "{err}");
    let err = RedisAddr::check("http://:hunter2@h").unwrap_err();
    assert!(
        !err.contains("hunter2") && err.contains("unsupported scheme"),
        "{err}"
    );
    let err = RedisAddr::check("redis://:hunter2@h/x").unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn codecs_not_compiled_in_are_refused() {
    let with = |codec: &str| {
        parse_str(&OLD.replace(
            "      brokers:",
            &format!("      compression: {codec}\n      brokers:"),
        ))
    };
    assert_eq!(
        with("snappy").unwrap().kafka.producer.compression,
        Compression::Snappy
    );
    for (codec, built) in [
        ("lz4", cfg!(feature = "lz4")),
        ("zstd", cfg!(feature = "zstd")),
    ] {
        match with(codec) {
            Ok(_) => assert!(built, "{codec} accepted without its feature"),
            Err(e) => {
                assert!(!built, "{codec} refused with its feature: {e}");
                assert!(
                    e.contains(&format!("rebuild with --features {codec}")),
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn tab_indentation_is_named() {
    assert_eq!(tab_indented_line("a:\n  b: 1\n\tc: 2\n"), Some(3));
    assert_eq!(tab_indented_line("a:\n  b: \"x\ty\"\n \t\n"), None);
}

const JOB: &str = "\
repliqate:
  name: shop
  redis_addr: localhost:6379
  replication:
    poll_interval_sec: 1
    sql_source:
      uri: postgresql://repliqate@db/shop
      primary_key: id
      limit: 5000
    kafka_target:
      brokers: [kafka-1:9093, kafka-2:9093]
      acks: all
      properties: {linger.ms: 5, client.id: shared}
  pipelines:
    - table: orders
      topic: shop.orders
    - table: audit_log
      topic: \"shop.{table}\"
    - table: payments
      topic: shop.payments
      sql_source: {uri: \"mysql://repliqate@pay/pay\", limit: 1000, primary_key: seq}
      kafka_target: {acks: 1, properties: {client.id: payments}}
";

fn job(text: &str) -> Result<Job, String> {
    parse_job(text, Path::new("/etc/repliqate/config.yaml")).map_err(|e| e.to_string())
}

#[test]
fn each_pipeline_is_a_table_and_topic_over_the_shared_settings() {
    let job = job(JOB).unwrap();
    let seen: Vec<(&str, &str)> = job
        .pipelines
        .iter()
        .map(|c| (c.source.spec.table.as_str(), c.kafka.topic.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("orders", "shop.orders"),
            ("audit_log", "shop.audit_log"),
            ("payments", "shop.payments"),
        ]
    );
    for c in &job.pipelines {
        assert_eq!(c.name, "shop");
        assert_eq!(c.poll_interval, Duration::from_secs(1));
        assert!(matches!(
            c.position_store,
            PositionStoreConfig::Redis { .. }
        ));
    }
    let (orders, payments) = (&job.pipelines[0], &job.pipelines[2]);
    // The shared settings, where a pipeline does not override them.
    assert_eq!(orders.source.spec.uri, "postgresql://repliqate@db/shop");
    assert_eq!(orders.source.spec.primary_key, "id");
    assert_eq!(orders.source.limit, 5000);
    assert_eq!(orders.kafka.producer.acks, Acks::All);
    assert_eq!(orders.kafka.producer.client_id, "shared");
    assert_eq!(
        orders.kafka.producer.bootstrap,
        ["kafka-1:9093", "kafka-2:9093"]
    );
    // A pipeline's own, key by key; properties merged per property.
    assert_eq!(payments.source.spec.uri, "mysql://repliqate@pay/pay");
    assert_eq!(payments.source.spec.primary_key, "seq");
    assert_eq!(payments.source.limit, 1000);
    assert_eq!(payments.kafka.producer.acks, Acks::Leader);
    assert_eq!(payments.kafka.producer.client_id, "payments");
    assert_eq!(
        payments.kafka.producer.bootstrap,
        orders.kafka.producer.bootstrap
    );
}

#[test]
fn the_old_single_table_form_is_a_job_of_one_pipeline_with_the_same_settings() {
    let job = job(OLD).unwrap();
    assert_eq!(job.pipelines.len(), 1);
    assert_eq!(job.pipelines[0], parse_str(OLD).unwrap());
}

#[test]
fn commands_for_one_table_refuse_a_job_of_several_naming_the_count() {
    let err = parse(JOB, Path::new("/etc/repliqate/config.yaml")).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "repliqate.pipelines: 3 pipelines; this command takes a job of one table for now"
        ),
        "{err}"
    );
}

#[test]
fn tables_name_a_list_of_pipelines_or_a_pattern_found_in_the_database() {
    let text = JOB.replace(
        "    - table: orders\n      topic: shop.orders\n",
        "    - tables: [orders, refunds]\n      topic: \"shop.{table}\"\n    - tables: \"audit\\\\_%\"\n      exclude: [\"audit\\\\_tmp%\"]\n      topic: \"shop.audit.{table}\"\n      sql_source: {limit: 10}\n",
    );
    let job = job(&text).unwrap();
    let named: Vec<String> = job.pipelines.iter().map(Config::pipeline).collect();
    assert_eq!(
        named,
        [
            "orders → shop.orders",
            "refunds → shop.refunds",
            "audit_log → shop.audit_log",
            "payments → shop.payments",
        ]
    );
    assert_eq!(job.patterns.len(), 1);
    let pattern = &job.patterns[0];
    assert_eq!(pattern.like, "audit\\_%");
    assert_eq!(pattern.exclude, ["audit\\_tmp%"]);
    assert_eq!(pattern.at, "repliqate.pipelines[1]");
    assert_eq!(job.discover_interval, Duration::from_secs(60));
    let found = pattern.pipeline("audit_2026").unwrap();
    assert_eq!(found.pipeline(), "audit_2026 → shop.audit.audit_2026");
    assert_eq!(found.source.limit, 10);
    assert_eq!(found.source.spec.uri, "postgresql://repliqate@db/shop");
    // A table whose name makes no topic name gets no pipeline, saying why.
    let err = pattern.pipeline("audit 1").unwrap_err();
    assert!(
        err.starts_with("repliqate.pipelines[1].topic, for table audit 1: `shop.audit.audit 1` is not a valid Kafka topic name"),
        "{err}"
    );
    assert!(job.is_several());
    let only_patterns = text.split("  pipelines:\n").next().unwrap().to_owned()
        + "  pipelines:\n    - {tables: \"a%\", topic: \"t.{table}\"}\n";
    let job = self::job(&only_patterns).unwrap();
    assert!(job.pipelines.is_empty());
    assert_eq!(job.settings().name, "shop");
}
