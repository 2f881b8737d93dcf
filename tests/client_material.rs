//! Client keys and stores in the encodings operators' tools make, read by `repliqate::tls`
//! without a server: each must give the certificate and the key that belongs to it (or, for a
//! truststore, its CA), or be refused with one line naming the setting and the file and saying
//! what to do. The servers' side of each form is in kafka_security.rs, source_tls.rs and
//! secure_stores.rs; this is the wider matrix of encryption schemes and key types, made here
//! with `openssl` and the JDK's `keytool`:
//! - encrypted PKCS#8: PBES2 with AES-128/256-CBC, 3DES, HMAC-SHA1 or SHA-256 (OpenSSL 1.x's
//!   and 3.x's defaults), scrypt; RSA and EC keys;
//! - PKCS#12: OpenSSL 3's defaults, `-legacy` (RC2-40 and 3DES, as OpenSSL 1.x and Java 8 made
//!   them), Java's own keystore (`keytool -genkeypair`), and a truststore of `keytool`'s;
//! - X.509 v1 certificates with RSA and EC keys.

mod common;

use std::path::Path;

use common::env::TempDir;
use common::secure::{pkcs12_export, stack_tls, tool};
use repliqate::secret::Secret;
use repliqate::tls::{
    identity, ClientCert, Password, Pem, Store, StoreType, TlsFile, TlsSettings, Trust,
};

const PASSWORD: &str = "matrix-pass-2b7";

fn openssl(args: &[&str]) {
    tool("openssl", args);
}

fn file(setting: &str, path: &Path) -> TlsFile {
    TlsFile {
        setting: setting.into(),
        path: path.to_owned(),
    }
}

fn password(setting: &str, value: &str) -> Option<Password> {
    Some(Password {
        setting: setting.into(),
        secret: Secret::Value(value.into()),
    })
}

/// A certificate file and an encrypted key file, with `ssl.key.password`.
fn pem_pair(cert: &Path, key: &Path, pass: &str) -> ClientCert {
    ClientCert::Pem {
        cert: Pem::File(file("ssl.certificate.location", cert)),
        key: Pem::File(file("ssl.key.location", key)),
        key_password: password("ssl.key.password", pass),
    }
}

fn keystore(path: &Path, kind: StoreType, pass: &str) -> ClientCert {
    ClientCert::Store {
        store: Store {
            file: file("ssl.keystore.location", path),
            kind,
            password: password("ssl.keystore.password", pass),
        },
        key_password: None,
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Asserts that `client` reads, with a chain of `chain_len` certificates or more, and that a
/// wrong password is refused naming `password_setting`, not the password.
fn reads(what: &str, client: &ClientCert, min_chain: usize, password_setting: &str) {
    let id = identity(client, &provider()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        id.chain.len() >= min_chain,
        "{what}: {} certificates",
        id.chain.len()
    );
    let wrong = match client.clone() {
        ClientCert::Pem { cert, key, .. } => ClientCert::Pem {
            cert,
            key,
            key_password: password(password_setting, "wrong-9f0"),
        },
        ClientCert::Store { mut store, .. } => {
            store.password = password(password_setting, "wrong-9f0");
            ClientCert::Store {
                store,
                key_password: None,
            }
        }
    };
    let e = identity(&wrong, &provider())
        .err()
        .unwrap_or_else(|| panic!("{what}: a wrong password was accepted"))
        .to_string();
    assert!(
        e.contains(&format!("with {password_setting}: wrong password?")),
        "{what}: {e}"
    );
    assert!(
        !e.contains("wrong-9f0") && !e.contains(PASSWORD),
        "{what}: {e}"
    );
}

#[test]
fn encrypted_pkcs8_keys_of_every_common_scheme_are_decrypted() {
    let dir = TempDir::new("material_pkcs8");
    let at = |f: &str| dir.path().join(f);
    let s = |p: &Path| p.display().to_string();
    let pass = format!("pass:{PASSWORD}");
    let (cert, key) = (stack_tls("client.pem"), stack_tls("client.key"));
    for (name, scheme) in [
        ("aes256-sha256", &["-v2", "aes-256-cbc"][..]),
        (
            "aes128-sha1",
            &["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"][..],
        ),
        ("des3", &["-v2", "des3"][..]),
        ("scrypt", &["-scrypt"][..]),
    ] {
        let out = at(&format!("{name}.key"));
        let mut args = vec!["pkcs8", "-topk8", "-in", &key, "-passout", &pass, "-out"];
        let out_s = s(&out);
        args.push(&out_s);
        args.extend_from_slice(scheme);
        openssl(&args);
        reads(
            &format!("PKCS#8 {name}"),
            &pem_pair(Path::new(&cert), &out, PASSWORD),
            1,
            "ssl.key.password",
        );
    }
    // An EC key, with an X.509 v1 certificate signed by the stack's CA.
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &s(&at("ec.key")),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        &s(&at("ec.key")),
        "-subj",
        "/CN=repliqate",
        "-out",
        &s(&at("ec.csr")),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&at("ec.csr")),
        "-CA",
        &stack_tls("ca.pem"),
        "-CAkey",
        &stack_tls("ca.key"),
        "-set_serial",
        "0x5eed",
        "-days",
        "30",
        "-out",
        &s(&at("ec.pem")),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &s(&at("ec.key")),
        "-passout",
        &pass,
        "-out",
        &s(&at("ec-enc.key")),
    ]);
    reads(
        "an EC key under a v1 certificate",
        &pem_pair(&at("ec.pem"), &at("ec-enc.key"), PASSWORD),
        1,
        "ssl.key.password",
    );
    let id = identity(
        &pem_pair(&at("ec.pem"), &at("ec.key"), PASSWORD),
        &provider(),
    )
    .unwrap();
    assert!(id.leaf_is_v1(), "openssl x509 -req made a v3 certificate");

    // PKCS#12's own PBE inside PKCS#8 (`-v1`, OpenSSL 1.0's default) is refused saying how to
    // re-encrypt the key.
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v1",
        "PBE-SHA1-3DES",
        "-in",
        &key,
        "-passout",
        &pass,
        "-out",
        &s(&at("pbe1.key")),
    ]);
    let e = identity(
        &pem_pair(Path::new(&cert), &at("pbe1.key"), PASSWORD),
        &provider(),
    )
    .err()
    .expect("a PBES1 key was read")
    .to_string();
    assert!(
        e.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc") && e.contains("pbe1.key"),
        "{e}"
    );
}

#[test]
fn pkcs12_stores_of_openssl_and_java_are_opened() {
    let dir = TempDir::new("material_p12");
    let at = |f: &str| dir.path().join(f);
    let s = |p: &Path| p.display().to_string();
    let pass = format!("pass:{PASSWORD}");
    let (ca, cert, key) = (
        stack_tls("ca.pem"),
        stack_tls("client.pem"),
        stack_tls("client.key"),
    );
    pkcs12_export(&[], (&cert, &key, &ca), &pass, &s(&at("modern.p12")));
    pkcs12_export(
        &["-legacy"],
        (&cert, &key, &ca),
        &pass,
        &s(&at("legacy.p12")),
    );
    let java_p12 = s(&at("java.p12"));
    tool(
        "keytool",
        &[
            "-J-Xmx64m",
            "-genkeypair",
            "-alias",
            "client",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-dname",
            "CN=repliqate",
            "-validity",
            "30",
            "-storetype",
            "PKCS12",
            "-keystore",
            &java_p12,
            "-storepass",
            PASSWORD,
        ],
    );
    for (what, store, kind, chain) in [
        ("openssl 3 defaults", "modern.p12", StoreType::Pkcs12, 2),
        (
            "openssl -legacy (RC2-40, 3DES)",
            "legacy.p12",
            StoreType::Pkcs12,
            2,
        ),
        ("keytool -genkeypair", "java.p12", StoreType::Detect, 1),
    ] {
        reads(
            what,
            &keystore(&at(store), kind, PASSWORD),
            chain,
            "ssl.keystore.password",
        );
    }
    // A store that also holds certificates of no concern to the key (another CA, listed
    // first): the chain sent is the key's own certificate, then its issuer, and nothing else.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &s(&at("stray.key")),
        "-subj",
        "/CN=stray CA",
        "-days",
        "30",
        "-out",
        &s(&at("stray.pem")),
    ]);
    let extra = format!(
        "{}{}",
        std::fs::read_to_string(at("stray.pem")).unwrap(),
        std::fs::read_to_string(&ca).unwrap()
    );
    std::fs::write(at("extra.pem"), extra).unwrap();
    pkcs12_export(
        &[],
        (&cert, &key, &s(&at("extra.pem"))),
        &pass,
        &s(&at("extra.p12")),
    );
    let id = identity(
        &keystore(&at("extra.p12"), StoreType::Pkcs12, PASSWORD),
        &provider(),
    )
    .unwrap();
    let der = |path: &str| {
        let pem = std::fs::read_to_string(path).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64_decode(&body)
    };
    let chain: Vec<Vec<u8>> = id.chain.iter().map(|c| c.to_vec()).collect();
    assert_eq!(
        chain,
        vec![der(&cert), der(&ca)],
        "the key's certificate, then its CA"
    );

    // A truststore of keytool's, as TLS settings take it.
    let trust_p12 = s(&at("trust.p12"));
    tool(
        "keytool",
        &[
            "-J-Xmx64m",
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            &ca,
            "-keystore",
            &trust_p12,
            "-storetype",
            "PKCS12",
            "-storepass",
            PASSWORD,
        ],
    );
    let settings = TlsSettings {
        ca: Some(Trust::Store(Store {
            file: file("ssl.truststore.location", &at("trust.p12")),
            kind: StoreType::Detect,
            password: password("ssl.truststore.password", PASSWORD),
        })),
        ..TlsSettings::default()
    };
    assert_eq!(settings.ca_certs().unwrap().map(|c| c.len()), Some(1));
    settings.client_config().unwrap();
}

/// Standard base64, for reading the test's own PEM files.
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// A key and certificate whose line breaks were lost (an environment variable, a `.properties`
/// value continued with `\`), as Java's PEM reader still takes them, are read; a key whose
/// END line is missing is refused without a byte of it in the error.
#[test]
fn pem_without_its_line_breaks_is_read_and_a_broken_one_is_not_echoed() {
    let one_line = |path: String| std::fs::read_to_string(path).unwrap().replace('\n', " ");
    let (cert, key) = (
        one_line(stack_tls("client.pem")),
        one_line(stack_tls("client.key")),
    );
    let inline = |setting: &str, text: &str| Pem::Inline {
        setting: setting.into(),
        text: Secret::Value(text.into()),
    };
    let client = ClientCert::Pem {
        cert: inline("ssl.certificate.pem", &cert),
        key: inline("ssl.key.pem", &key),
        key_password: None,
    };
    identity(&client, &provider()).expect("one-line PEM");
    let body: String = key
        .split_whitespace()
        .filter(|w| !w.contains('-'))
        .collect();
    let broken = key.replace("-----END PRIVATE KEY-----", "");
    let client = ClientCert::Pem {
        cert: inline("ssl.certificate.pem", &cert),
        key: inline("ssl.key.pem", &broken),
        key_password: None,
    };
    let e = identity(&client, &provider())
        .err()
        .expect("a key without its END line")
        .to_string();
    assert!(
        e.starts_with("ssl.key.pem: ") && e.contains("no -----END line"),
        "{e}"
    );
    assert!(!e.contains(&body[..40]), "the key is in the error: {e}");
}
