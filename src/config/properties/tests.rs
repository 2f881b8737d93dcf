use super::*;
use crate::kafka::{Sasl, ScramHash, TokenSource};
use crate::tls::{ClientCert, Password, Pem, Store, StoreType, TlsFile, TlsSettings, Trust};

fn props(yaml: &str) -> Result<FromProperties, String> {
    let p: Properties = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    interpret(p)
}

/// `text` as a properties file (in a directory of the test's own), read by `add_file`.
fn file_props(name: &str, text: &str) -> (PathBuf, Result<FromProperties, String>, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("repliqate-props-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("client.properties");
    std::fs::write(&path, text).unwrap();
    let mut warnings = Vec::new();
    let mut p = Properties::default();
    let got = p.add_file(&path, &mut warnings).and_then(|()| interpret(p));
    (path, got, warnings)
}

fn pem_file(setting: &str, path: &str) -> Pem {
    Pem::File(TlsFile {
        setting: format!("{PATH}.{setting}"),
        path: path.into(),
    })
}

#[test]
fn confluent_cloud_librdkafka_lines() {
    let got = props(
        "bootstrap.servers: pkc-1.example.cloud:9092\n\
         security.protocol: SASL_SSL\n\
         sasl.mechanisms: PLAIN\n\
         sasl.username: KEY\n\
         sasl.password: SECRET\n\
         session.timeout.ms: 45000\n\
         schema.registry.url: https://psrc-1.example.cloud\n\
         basic.auth.credentials.source: USER_INFO\n\
         basic.auth.user.info: SRKEY:SRSECRET\n\
         acks: all\n\
         client.dns.lookup: use_all_dns_ips\n",
    )
    .unwrap();
    assert_eq!(
        got.bootstrap,
        Some(vec!["pkc-1.example.cloud:9092".to_string()])
    );
    assert_eq!(got.acks, Some(Acks::All));
    assert_eq!(got.security.protocol(), "SASL_SSL");
    assert_eq!(got.security.tls, Some(TlsSettings::default()));
    assert_eq!(
        got.security.sasl,
        Some(Sasl::Plain {
            username: Secret::Value("KEY".into()),
            password: Secret::Value("SECRET".into())
        })
    );
    assert!(!format!("{got:?}").contains("SECRET"), "{got:?}");
    // One warning each for the consumer's and the Schema Registry client's properties,
    // naming them and never their values.
    let ignored = got.ignored.join("\n");
    for (name, what) in [
        ("session.timeout.ms", "a Kafka consumer property"),
        ("schema.registry.url", "a Schema Registry client property"),
        (
            "basic.auth.credentials.source",
            "a Schema Registry client property",
        ),
        ("basic.auth.user.info", "a Schema Registry client property"),
    ] {
        assert_eq!(
            got.ignored
                .iter()
                .filter(|w| w.contains(&format!("{PATH}.{name} is ignored: {what}")))
                .count(),
            1,
            "{name}: {ignored}"
        );
    }
    assert_eq!(got.ignored.len(), 4, "{ignored}");
    assert!(
        !ignored.contains("SRSECRET") && !ignored.contains("45000"),
        "{ignored}"
    );
}

#[test]
fn java_jaas_lines_take_either_quote() {
    let got = props(
        "security.protocol: SASL_SSL\n\
         sasl.mechanism: SCRAM-SHA-512\n\
         sasl.jaas.config: org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"p\\\"w;x\";\n",
    )
    .unwrap();
    assert_eq!(
        got.security.sasl,
        Some(Sasl::Scram {
            hash: ScramHash::Sha512,
            username: Secret::Value("alice".into()),
            password: Secret::Value("p\"w;x".into())
        })
    );
    // Confluent Cloud's Java snippet quotes with ' (Kafka's parser takes both).
    let got = props(
        "security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\n\
         sasl.jaas.config: \"org.apache.kafka.common.security.plain.PlainLoginModule required username='KEY' password='SE\\\\'CRET';\"\n",
    )
    .unwrap();
    assert_eq!(
        got.security.sasl,
        Some(Sasl::Plain {
            username: Secret::Value("KEY".into()),
            password: Secret::Value("SE'CRET".into())
        })
    );
    let e = props(
        "security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\n\
         sasl.jaas.config: org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\" password=\"b\";\n",
    )
    .unwrap_err();
    assert!(
        e.contains("does not match sasl.mechanism; expected PlainLoginModule"),
        "{e}"
    );
}

#[test]
fn aiven_mutual_tls() {
    let got = props(
        "security.protocol: SSL\n\
         ssl.ca.location: /etc/kafka/ca.pem\n\
         ssl.certificate.location: /etc/kafka/service.cert\n\
         ssl.key.location: /etc/kafka/service.key\n",
    )
    .unwrap();
    let tls = got.security.tls.unwrap();
    assert_eq!(
        tls.ca,
        Some(Trust::Pem(pem_file("ssl.ca.location", "/etc/kafka/ca.pem")))
    );
    assert_eq!(
        tls.client,
        Some(ClientCert::Pem {
            cert: pem_file("ssl.certificate.location", "/etc/kafka/service.cert"),
            key: pem_file("ssl.key.location", "/etc/kafka/service.key"),
            key_password: None,
        })
    );
    assert!(tls.verify_hostname);
    assert_eq!(got.security.sasl, None);
}

#[test]
fn java_keystores_with_passwords() {
    let got = props(
        "security.protocol: SSL\n\
         ssl.keystore.type: PKCS12\n\
         ssl.keystore.location: /etc/kafka/client.p12\n\
         ssl.keystore.password: STOREPW\n\
         ssl.key.password: KEYPW\n\
         ssl.truststore.type: pkcs12\n\
         ssl.truststore.location: /etc/kafka/trust.p12\n\
         ssl.truststore.password_file: /run/secrets/trust\n",
    )
    .unwrap();
    let tls = got.security.tls.unwrap();
    let password = |setting: &str, secret: Secret| {
        Some(Password {
            setting: format!("{PATH}.{setting}"),
            secret,
        })
    };
    assert_eq!(
        tls.client,
        Some(ClientCert::Store {
            store: Store {
                file: TlsFile {
                    setting: format!("{PATH}.ssl.keystore.location"),
                    path: "/etc/kafka/client.p12".into()
                },
                kind: StoreType::Pkcs12,
                password: password("ssl.keystore.password", Secret::Value("STOREPW".into())),
            },
            key_password: password("ssl.key.password", Secret::Value("KEYPW".into())),
        })
    );
    assert_eq!(
        tls.ca,
        Some(Trust::Store(Store {
            file: TlsFile {
                setting: format!("{PATH}.ssl.truststore.location"),
                path: "/etc/kafka/trust.p12".into()
            },
            kind: StoreType::Pkcs12,
            password: password(
                "ssl.truststore.password_file",
                Secret::File("/run/secrets/trust".into())
            ),
        }))
    );
    let shown = format!("{tls:?}");
    assert!(
        !shown.contains("STOREPW") && !shown.contains("KEYPW"),
        "{shown}"
    );
    // librdkafka's keystore has no type: the file says which it is when read.
    let got =
        props("security.protocol: SSL\nssl.keystore.location: /k.p12\nssl.keystore.password: x\n")
            .unwrap();
    assert!(matches!(
        got.security.tls.unwrap().client,
        Some(ClientCert::Store {
            store: Store {
                kind: StoreType::Detect,
                ..
            },
            ..
        })
    ));
}

#[test]
fn inline_pem_from_librdkafka_and_java() {
    let cert = "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----";
    let key = "-----BEGIN PRIVATE KEY-----\\nKEYBODY\\n-----END PRIVATE KEY-----";
    for (ca_name, cert_name, key_name, types) in [
        ("ssl.ca.pem", "ssl.certificate.pem", "ssl.key.pem", ""),
        (
            "ssl.truststore.certificates",
            "ssl.keystore.certificate.chain",
            "ssl.keystore.key",
            "ssl.keystore.type: PEM\nssl.truststore.type: PEM\n",
        ),
    ] {
        let got = props(&format!(
            "security.protocol: SSL\n{types}{ca_name}: \"{cert}\"\n{cert_name}: \"{cert}\"\n{key_name}: \"{key}\"\n"
        ))
        .unwrap();
        let tls = got.security.tls.unwrap();
        assert!(
            matches!(&tls.ca, Some(Trust::Pem(Pem::Inline { setting, .. })) if setting.ends_with(ca_name)),
            "{tls:?}"
        );
        assert!(
            matches!(&tls.client, Some(ClientCert::Pem { key: Pem::Inline { setting, .. }, .. }) if setting.ends_with(key_name)),
            "{tls:?}"
        );
        assert!(!format!("{tls:?}").contains("KEYBODY"));
    }
}

#[test]
fn token_sources() {
    let got = props(
        "security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n\
         sasl.oauthbearer.token.endpoint.url: file:///run/token\n",
    )
    .unwrap();
    assert_eq!(
        got.security.sasl,
        Some(Sasl::OAuthBearer(TokenSource::File("/run/token".into())))
    );
    let got = props(
        "security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n\
         sasl.oauthbearer.token.command: gcloud auth print-access-token\n\
         sasl.oauthbearer.token.command.timeout.ms: 2500\n",
    )
    .unwrap();
    assert_eq!(
        got.security.sasl,
        Some(Sasl::OAuthBearer(TokenSource::Command {
            command: "gcloud auth print-access-token".into(),
            timeout: Duration::from_millis(2500)
        }))
    );
}

#[test]
fn other_clients_properties_are_ignored_with_a_warning_naming_them() {
    let got = props(
        "group.id: g\nlinger.ms: 5\napplication.id: app\nssl.enabled.protocols: TLSv1.2\n\
         enable.ssl.certificate.verification: true\nsasl.login.refresh.buffer.seconds: 300\n",
    )
    .unwrap();
    let ignored = got.ignored.join("\n");
    for expected in [
        "properties.group.id is ignored: a Kafka consumer property; repliqate only produces",
        "properties.linger.ms is ignored: a Kafka producer property that repliqate's producer does not use",
        "properties.application.id is ignored: a Kafka Streams property; repliqate only produces",
        "properties.ssl.enabled.protocols is ignored: repliqate speaks TLS 1.2 and 1.3",
        "properties.enable.ssl.certificate.verification is ignored",
        "properties.sasl.login.refresh.buffer.seconds is ignored",
    ] {
        assert!(ignored.contains(expected), "{expected}:\n{ignored}");
    }
    assert_eq!(got.ignored.len(), 6, "{ignored}");
}

#[test]
fn refusals_name_the_property_and_what_it_is() {
    let cases = [
        ("securty.protocol: SSL\n", "`securty.protocol` is not a Kafka client property (a typo?); did you mean `security.protocol`?"),
        ("sasl.pasword_file: /p\n", "did you mean `sasl.password_file`?"),
        ("qwertyuiop: 1\n", "`qwertyuiop` is not a Kafka client property (a typo?); accepted:"),
        ("transactional.id: t\n", "`transactional.id` is not supported"),
        ("enable.ssl.certificate.verification: false\n", "always verifies the broker's certificate"),
        ("ssl.crl.location: /crl.pem\n", "security settings are never ignored"),
        ("security.protocol: TLS\n", "`TLS` is not a security protocol"),
        ("security.protocol: SASL_SSL\n", "needs a SASL mechanism"),
        ("security.protocol: SASL_SSL\nsasl.mechanism: GSSAPI\n", "`GSSAPI` is not supported"),
        ("security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\nsasl.username: u\n", "needs a password"),
        ("security.protocol: SSL\nsasl.username: u\n", "without a mechanism"),
        ("sasl.mechanism: PLAIN\nsasl.username: u\nsasl.password: p\n", "security.protocol is PLAINTEXT, which has no SASL"),
        ("ssl.ca.location: /ca.pem\n", "which has no TLS"),
        ("config.providers: file\n", "does not expand Kafka's ${provider:path:key} references"),
        ("ssl.enabled.protocols: TLSv1.3\n", "leaves out TLSv1.2"),
        ("sasl.login.callback.handler.class: com.example.Handler\n", "a Java class that supplies the credentials"),
        ("\"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\": x\n", "not a property name (a value continued on the next line"),
        ("security.protocol: SSL\nssl.keystore.type: BCFKS\n", "`BCFKS` is not supported; expected PEM, PKCS12 or JKS"),
        ("security.protocol: SSL\nssl.certificate.location: /c.pem\n", "without its private key"),
        ("security.protocol: SSL\nssl.key.pem: \"-----BEGIN PRIVATE KEY-----\"\n", "without its certificate"),
        ("security.protocol: SSL\nssl.key.pem: not pem\n", "expected PEM text"),
        ("security.protocol: SSL\nssl.ca.location: /a\nssl.ca.pem: \"-----BEGIN CERTIFICATE-----\"\n", "ssl.ca.location and ssl.ca.pem all name the CAs"),
        ("security.protocol: SSL\nssl.key.password: a\nssl.key.password_file: /b\n", "both set"),
        ("security.protocol: SSL\nssl.endpoint.identification.algorithm: yes\n", "expected https"),
        ("acks: 0\n", "acks 0 (no acknowledgement) is not offered"),
        ("sasl.mechanism: PLAIN\nsasl.mechanisms: SCRAM-SHA-256\n", "disagree"),
        ("security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n", "needs a token"),
        ("security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\nsasl.oauthbearer.token.endpoint.url: https://idp/token\n", "only a file:///path URL"),
        ("client.dns.lookup: resolve_canonical_bootstrap_servers_only\n", "expected use_all_dns_ips"),
        ("security.protocol: SASL_SSL\nsasl.mechanism: PLAIN\nsasl.jaas.config: org.apache.kafka.common.security.plain.PlainLoginModule required username='u' password='SECRETPW'\n", "sasl.jaas.config"),
    ];
    for (yaml, expected) in cases {
        let e = props(yaml).unwrap_err();
        assert!(e.contains(expected), "{yaml}: {e}");
        assert!(e.starts_with(PATH), "{yaml}: {e}");
        assert!(!e.contains("SECRETPW"), "{yaml}: {e}");
    }
}

#[test]
fn a_properties_file_is_read_as_java_reads_it_and_its_secrets_are_read_again_at_each_use() {
    let (path, got, warnings) = file_props(
        "java",
        "# Confluent Cloud, Java\n\
         bootstrap.servers=pkc-1.example.cloud:9092\n\
         security.protocol : SASL_SSL\n\
         ! a comment of the other kind\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n    \
         required username='KEY' password='SECRET';\n\
         sasl.mechanism=PLAIN\n\
         acks=1\n\
         acks=all\n",
    );
    let got = got.unwrap();
    assert_eq!(
        got.acks,
        Some(Acks::All),
        "the last of a name given twice, as Java"
    );
    assert!(
        warnings
            .join("\n")
            .contains("`acks` is given on lines 8 and 9"),
        "{warnings:?}"
    );
    let jaas_option = |option: &str| Secret::InProperties {
        path: path.clone(),
        name: "sasl.jaas.config".into(),
        jaas_option: Some(option.into()),
    };
    let (username, password) = (jaas_option("username"), jaas_option("password"));
    assert_eq!(
        got.security.sasl,
        Some(Sasl::Plain {
            username: username.clone(),
            password: password.clone()
        })
    );
    assert_eq!(password.read("x").unwrap(), "SECRET");
    // Rotated in the file: the next read has the new one.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("'SECRET'", "'ROTATED'")
        .replace("'KEY'", "'NEWKEY'");
    std::fs::write(&path, text).unwrap();
    assert_eq!(password.read("x").unwrap(), "ROTATED");
    assert_eq!(
        username.read("x").unwrap(),
        "NEWKEY",
        "the key rotates with its secret"
    );
    assert!(!format!("{got:?}").contains("ROTATED"));

    // Errors point at the file and the line.
    let (_, got, _) = file_props("bad", "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\nacks=2\n");
    let e = got.unwrap_err();
    assert!(
        e.contains("properties_file") && e.contains("line 5: acks"),
        "{e}"
    );
    let (_, got, _) = file_props("typo", "securty.protocol=SSL\n");
    let e = got.unwrap_err();
    assert!(
        e.contains("line 1: securty.protocol") && e.contains("did you mean `security.protocol`"),
        "{e}"
    );
}

#[test]
fn a_property_in_the_file_and_the_yaml_is_an_error_naming_both() {
    let dir = std::env::temp_dir().join(format!("repliqate-props-{}-both", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("client.properties");
    std::fs::write(&path, "acks=all\n").unwrap();
    let mut p: Properties = serde_yaml::from_str("acks: 1\n").unwrap();
    let e = p.add_file(&path, &mut Vec::new()).unwrap_err();
    assert!(
        e.contains(&format!("{PATH}.acks: also set in {FILE}")) && e.contains("line 1"),
        "{e}"
    );
}

#[test]
fn oauthbearer_takes_javas_bare_login_module_line() {
    let got = props(
        "security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n\
         sasl.jaas.config: org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;\n\
         sasl.oauthbearer.token.file: /run/token\n",
    )
    .unwrap();
    assert_eq!(
        got.security.sasl,
        Some(Sasl::OAuthBearer(TokenSource::File("/run/token".into())))
    );
    let e = props(
        "security.protocol: SASL_SSL\nsasl.mechanism: OAUTHBEARER\n\
         sasl.jaas.config: org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId='c' clientSecret='SECRETPW';\n\
         sasl.oauthbearer.token.file: /run/token\n",
    )
    .unwrap_err();
    assert!(
        e.contains("`OAuthBearerLoginModule required;` alone is accepted"),
        "{e}"
    );
    assert!(!e.contains("SECRETPW"), "{e}");
}

#[test]
fn values_in_a_file_are_trimmed_and_errors_point_at_the_file() {
    // Trailing blanks, as Kafka's ConfigDef trims them.
    let (path, got, _) = file_props(
        "trim",
        "security.protocol=SASL_SSL \nsasl.mechanism=PLAIN\t\nsasl.username=u\n\
         sasl.password=pw  \n",
    );
    let got = got.unwrap();
    let password = Secret::InProperties {
        path: path.clone(),
        name: "sasl.password".into(),
        jaas_option: None,
    };
    assert_eq!(
        got.security.sasl,
        Some(Sasl::Plain {
            username: Secret::InProperties {
                path: path.clone(),
                name: "sasl.username".into(),
                jaas_option: None,
            },
            password: password.clone()
        })
    );
    assert_eq!(password.read("x").unwrap(), "pw");
    // An error about settings that fit badly together names the file, not `properties:`.
    let (path, got, _) = file_props("combined", "security.protocol=SASL_SSL\n");
    let e = got.unwrap_err();
    assert!(
        e.starts_with(&format!("{FILE} {}: sasl.mechanism: ", path.display())),
        "{e}"
    );
}

#[test]
fn a_password_file_is_named_as_its_own_setting() {
    let got = props(
        "security.protocol: SSL\nssl.keystore.location: /k.p12\n\
         ssl.keystore.password_file: /run/secrets/ks\n",
    )
    .unwrap();
    let Some(ClientCert::Store { store, .. }) = got.security.tls.unwrap().client else {
        panic!("no keystore")
    };
    assert_eq!(
        store.password.unwrap().setting,
        format!("{PATH}.ssl.keystore.password_file")
    );
}

#[test]
fn endpoint_identification_none_turns_the_name_check_off() {
    for value in ["none", "''"] {
        let got = props(&format!(
            "security.protocol: SSL\nssl.endpoint.identification.algorithm: {value}\n"
        ))
        .unwrap();
        assert!(!got.security.tls.unwrap().verify_hostname);
    }
}
