//! The secured side of the stack, for tests/kafka_security.rs and tests/source_tls.rs: the
//! secured listeners and their credentials (from `scripts/stack env`), certificates made at test
//! time (a rogue CA, wrong names, expired leaves, client certificates no server trusts), a TLS
//! server of the test's own that presents them (after a database protocol's plaintext preamble
//! if need be), unsigned JWTs for the broker's OAUTHBEARER, and kcat (Debian's librdkafka, built
//! with TLS and SASL) to read a topic back over the same listener.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use serde_json::Value;

use super::env::stack_var;

/// A file of the stack's certificates (`ca.pem`, `client.pem`, `client.key`, ...).
pub fn stack_tls(file: &str) -> String {
    let path = PathBuf::from(stack_var("REPLIQATE_TLS_DIR")).join(file);
    assert!(
        path.exists(),
        "{} does not exist: the stack makes its certificates at `scripts/stack up`",
        path.display()
    );
    path.display().to_string()
}

/// A CA of the test's own, which no server trusts.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pub pem: String,
}

/// A leaf certificate and its key, PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { params, key, pem }
    }

    /// A server certificate for `names` (DNS names or IP addresses); `expired`: valid only in
    /// 2020.
    pub fn server(&self, names: &[&str], expired: bool) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        self.sign(params)
    }

    /// A client certificate with common name `name`.
    pub fn client(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A TLS server on loopback presenting `leaf` to every client, then closing: enough for a
/// client's certificate checks to run against a real handshake. Returns its address.
pub fn tls_server(leaf: &Leaf) -> String {
    tls_server_after(leaf, |_| {})
}

/// Like [`tls_server`], but each connection first goes through `preamble` in plaintext (a
/// database protocol's request for TLS and its answer), then the handshake.
pub fn tls_server_after(
    leaf: &Leaf,
    preamble: impl Fn(&mut std::net::TcpStream) + Send + Sync + 'static,
) -> String {
    let preamble = Arc::new(preamble);
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let config = config.clone();
            let preamble = preamble.clone();
            std::thread::spawn(move || {
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                preamble(&mut stream);
                while conn.is_handshaking() {
                    if conn.complete_io(&mut stream).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// An unsigned JWT (`alg: none`), as the broker's unsecured OAUTHBEARER validator takes, for
/// `sub`, expiring `valid_for` from now (negative: already expired).
pub fn unsecured_jwt(sub: &str, valid_for: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = B64URL.encode(r#"{"alg":"none"}"#);
    let claims = B64URL.encode(
        serde_json::json!({"sub": sub, "iat": now - 5, "exp": now + valid_for}).to_string(),
    );
    format!("{header}.{claims}.")
}

/// A message as kcat read it.
#[derive(Debug, Clone)]
pub struct KcatMessage {
    pub partition: i64,
    pub key: Option<String>,
    pub payload: String,
}

/// Reads `topic` from the beginning with kcat over `broker` with the client properties
/// `props` (librdkafka names), until `expected` messages arrived or `timeout` passed; an error
/// of kcat's fails the test with its stderr.
pub fn kcat_read(
    broker: &str,
    props: &[(&str, String)],
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<KcatMessage> {
    let kcat = which_kcat();
    let deadline = Instant::now() + timeout;
    loop {
        let mut cmd = Command::new(&kcat);
        // cargo points LD_LIBRARY_PATH at the librdkafka it built for the rdkafka crate
        // (without TLS or SCRAM); kcat must load the system's own.
        cmd.env_remove("LD_LIBRARY_PATH");
        cmd.args([
            "-C",
            "-b",
            broker,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-J",
            "-q",
        ]);
        for (k, v) in props {
            cmd.arg("-X").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {kcat}: {e}"));
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "kcat reading {topic} from {broker} failed ({status}): {err}"
        );
        let messages: Vec<KcatMessage> = out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("kcat printed {line:?}: {e}"));
                KcatMessage {
                    partition: v["partition"].as_i64().unwrap(),
                    key: v["key"].as_str().map(String::from),
                    payload: v["payload"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect();
        if messages.len() >= expected || Instant::now() >= deadline {
            return messages;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn which_kcat() -> String {
    for candidate in ["kcat", "kafkacat"] {
        if Command::new(candidate)
            .env_remove("LD_LIBRARY_PATH")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            return candidate.to_string();
        }
    }
    panic!(
        "kcat is not installed: the security tests read topics back with it (Debian: apt-get \
         install kcat; .ci/run installs it)"
    )
}

/// The stack's client certificate and key (CN=repliqate, signed by the stack's CA, which every
/// TLS server of the stack trusts) in each form Kafka's own clients read, made with the same
/// tools an operator uses (`openssl`, the JDK's `keytool`) in `dir`:
/// - `v1.pem` / `v1.key`: an X.509 **v1** certificate for a new key, as `openssl x509 -req`
///   makes without an extensions file;
/// - `encrypted.key`: the stack's client key as PKCS#8 encrypted under [`Forms::PASSWORD`]
///   (`openssl pkcs8 -topk8 -v2 aes-256-cbc`, PBKDF2 with HMAC-SHA256);
/// - `keystore.p12`: certificate, key and CA in a PKCS#12 store (`openssl pkcs12 -export`);
/// - `truststore.p12`: the CA as a trusted entry of a PKCS#12 store (`keytool -importcert`);
/// - `truststore.jks`: the same as JKS, which repliqate refuses;
/// - `legacy.key`: the client key in OpenSSL's legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`);
/// - `other.key`: a key of no certificate of ours.
pub struct Forms {
    pub dir: PathBuf,
}

impl Forms {
    pub const PASSWORD: &'static str = "key-pass-7f3a";

    pub fn make(dir: &std::path::Path) -> Forms {
        let at = |f: &str| dir.join(f).display().to_string();
        let (ca, ca_key) = (stack_tls("ca.pem"), stack_tls("ca.key"));
        let (cert, key) = (stack_tls("client.pem"), stack_tls("client.key"));
        let pass = format!("pass:{}", Self::PASSWORD);
        let serial = format!(
            "0x{:x}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        new_rsa_key(&at("v1.key"));
        tool(
            "openssl",
            &[
                "req",
                "-new",
                "-key",
                &at("v1.key"),
                "-subj",
                "/CN=repliqate",
                "-out",
                &at("v1.csr"),
            ],
        );
        tool(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &at("v1.csr"),
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-set_serial",
                &serial,
                "-days",
                "30",
                "-out",
                &at("v1.pem"),
            ],
        );
        tool(
            "openssl",
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                &key,
                "-passout",
                &pass,
                "-out",
                &at("encrypted.key"),
            ],
        );
        pkcs12_export(
            &["-name", "client"],
            (&cert, &key, &ca),
            &pass,
            &at("keystore.p12"),
        );
        for (store, kind) in [("truststore.p12", "PKCS12"), ("truststore.jks", "JKS")] {
            tool(
                "keytool",
                &[
                    "-J-Xmx64m",
                    "-importcert",
                    "-noprompt",
                    "-alias",
                    "stack-ca",
                    "-file",
                    &ca,
                    "-keystore",
                    &at(store),
                    "-storetype",
                    kind,
                    "-storepass",
                    Self::PASSWORD,
                ],
            );
        }
        tool(
            "openssl",
            &[
                "rsa",
                "-aes256",
                "-traditional",
                "-in",
                &key,
                "-passout",
                &pass,
                "-out",
                &at("legacy.key"),
            ],
        );
        new_rsa_key(&at("other.key"));
        let forms = Forms {
            dir: dir.to_owned(),
        };
        assert!(
            std::fs::read_to_string(forms.path("v1.pem")).is_ok()
                && tool_output(
                    "openssl",
                    &["x509", "-in", &forms.path("v1.pem"), "-noout", "-text"]
                )
                .contains("Version: 1 (0x0)"),
            "openssl made no v1 certificate"
        );
        forms
    }

    /// The path of one of the files.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

/// Runs an operator's tool (`openssl`, `keytool`), failing the test with its stderr.
pub fn tool(program: &str, args: &[&str]) {
    tool_output(program, args);
}

/// `openssl pkcs12 -export`: a certificate, its key and the certificates of a chain file
/// (`cert`, `key`, `chain`: paths), as a PKCS#12 store at `out` under the password `pass`
/// (`pass:…`, as openssl takes it); `options` (`-legacy`, `-name client`) come first.
pub fn pkcs12_export(
    options: &[&str],
    (cert, key, chain): (&str, &str, &str),
    pass: &str,
    out: &str,
) {
    let mut args = vec!["pkcs12", "-export"];
    args.extend_from_slice(options);
    args.extend([
        "-in",
        cert,
        "-inkey",
        key,
        "-certfile",
        chain,
        "-passout",
        pass,
        "-out",
        out,
    ]);
    tool("openssl", &args);
}

/// A new 2048-bit RSA key in PKCS#8 PEM at `path`.
pub fn new_rsa_key(path: &str) {
    tool(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path,
        ],
    );
}

fn tool_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {program}: {e} (the tests make client material with openssl and the \
                 JDK's keytool; .ci/run installs openssl and openjdk-17-jre-headless)"
            )
        });
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads `topic` from the beginning with Apache Kafka's own console consumer (the Java client,
/// from the stack's jars, `REPLIQATE_KAFKA_LIBS`) over `broker` with the client properties
/// `props` (Java names, written to a `--consumer.config` file in `dir`), until `expected`
/// messages arrived or 60 s passed; returns the values. A failure of the tool fails the test
/// with its output.
pub fn java_read(
    dir: &std::path::Path,
    broker: &str,
    props: &[(&str, String)],
    topic: &str,
    expected: usize,
) -> Vec<String> {
    let config = dir.join("java-consumer.properties");
    // Values may be PEM text: line breaks and backslashes escaped, as `.properties` needs.
    let text: String = props
        .iter()
        .map(|(k, v)| format!("{k}={}\n", v.replace('\\', "\\\\").replace('\n', "\\n")))
        .collect();
    std::fs::write(&config, text).unwrap();
    let libs = stack_var("REPLIQATE_KAFKA_LIBS");
    let out = Command::new("java")
        .args(["-Xmx256m", "-cp", &format!("{libs}/*")])
        .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
        .args([
            "--bootstrap-server",
            broker,
            "--topic",
            topic,
            "--from-beginning",
        ])
        .args([
            "--max-messages",
            &expected.to_string(),
            "--timeout-ms",
            "60000",
        ])
        .arg("--consumer.config")
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("running java (Kafka's console consumer): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "Kafka's console consumer reading {topic} from {broker} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The tool also prints notes (a deprecated option) on stdout; the messages are JSON.
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(String::from)
        .collect()
}
