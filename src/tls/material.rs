//! Client certificates, keys and CA certificates in every form Kafka's own clients read them:
//! PEM files (keys in PKCS#8, PKCS#1 or SEC1, or PKCS#8 encrypted under a password), PEM text
//! given inline in the config (librdkafka's `ssl.*.pem`, Java's `ssl.keystore.key`), and
//! keystores (PKCS#12 with a password, or PEM; a JKS store is refused with the `keytool`
//! command that converts it).
//!
//! Nothing here is stricter than the broker or database server that decides: a certificate is
//! sent as it is (an X.509 v1 certificate too, which webpki, and so rustls's own key check,
//! cannot read). We check only that the key belongs to the certificate, by comparing the key's
//! public key with the certificate's, so that a mixed-up pair is named at start-up instead of
//! failing the handshake with the server's bare "bad certificate".
//!
//! Every read happens at each connection (the caller's `client_config`), so rotated files and
//! passwords are used from the next connection on. Passwords are `Secret`s: read when used,
//! never printed.

use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::{CertifiedKey, SigningKey};

use super::{file_error, TlsFile, TlsFileError, MAX_PEM_FILE};
use crate::secret::Secret;

/// PEM text: in a file, or given in the config itself (for secrets injected through the
/// environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(TlsFile),
    /// The text of the setting; a `Secret` because it may hold a private key.
    Inline {
        setting: String,
        text: Secret,
    },
}

/// A password that opens a key or a keystore, with the setting that gave it (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Password {
    pub setting: String,
    pub secret: Secret,
}

/// What a keystore file holds, as its `*.type` setting says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// PEM text (Java's `PEM` type): certificates, and for a keystore the key.
    Pem,
    /// PKCS#12 (`PKCS12`, and librdkafka's `ssl.keystore.location`).
    Pkcs12,
    /// No type given: told from the file (PEM text, PKCS#12, or a JKS store we refuse with
    /// the command that converts it), since Java's default type (JKS) also opens PKCS#12.
    Detect,
}

/// A keystore or truststore file and how to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub file: TlsFile,
    pub kind: StoreType,
    pub password: Option<Password>,
}

/// Where the CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    Pem(Pem),
    Store(Store),
}

/// A client certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCert {
    /// A certificate chain and a key, each PEM (possibly the same file, as a Java PEM
    /// keystore), the key maybe encrypted under `key_password`.
    Pem {
        cert: Pem,
        key: Pem,
        key_password: Option<Password>,
    },
    /// A keystore holding the key and its chain; the key may have a password of its own.
    Store {
        store: Store,
        key_password: Option<Password>,
    },
}

impl ClientCert {
    /// The setting (and file, if any) that holds the certificate, for errors.
    pub(super) fn cert_error(&self, reason: impl Into<String>) -> TlsFileError {
        match self {
            ClientCert::Pem { cert, .. } => cert.origin().error(reason),
            ClientCert::Store { store, .. } => file_error(&store.file, reason),
        }
    }

    /// A certificate and an unencrypted key, each in a PEM file.
    pub fn pem_files(cert: TlsFile, key: TlsFile) -> ClientCert {
        ClientCert::Pem {
            cert: Pem::File(cert),
            key: Pem::File(key),
            key_password: None,
        }
    }
}

/// A client certificate chain and key, read and checked to belong together.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    signing: Arc<dyn SigningKey>,
}

impl Identity {
    /// The chain and key as rustls sends them.
    pub fn certified_key(&self) -> CertifiedKey {
        CertifiedKey::new(self.chain.clone(), self.signing.clone())
    }

    /// Whether the leaf is an X.509 v1 certificate (which drivers that load the pair through
    /// rustls's own check cannot take).
    pub fn leaf_is_v1(&self) -> bool {
        self.chain.first().is_some_and(|leaf| {
            x509_parser::parse_x509_certificate(leaf)
                .is_ok_and(|(_, c)| c.tbs_certificate.version == x509_parser::x509::X509Version::V1)
        })
    }

    /// The chain and key as PEM text, for a driver that takes only that (`None` for a key
    /// encoding rustls added after this was written).
    pub fn to_pem(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let chain = self
            .chain
            .iter()
            .flat_map(|c| pem_block("CERTIFICATE", c))
            .collect();
        let (label, der): (&str, &[u8]) = match &self.key {
            PrivateKeyDer::Pkcs1(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(k) => ("EC PRIVATE KEY", k.secret_sec1_der()),
            PrivateKeyDer::Pkcs8(k) => ("PRIVATE KEY", k.secret_pkcs8_der()),
            _ => return None,
        };
        Some((chain, pem_block(label, der)))
    }
}

/// `der` as a PEM block under `label`.
pub fn pem_block(label: &str, der: &[u8]) -> Vec<u8> {
    let body = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// Where a piece of material is, for errors: the setting and the file (none when inline).
struct Origin {
    setting: String,
    path: PathBuf,
}

impl Origin {
    fn error(&self, reason: impl Into<String>) -> TlsFileError {
        TlsFileError {
            setting: self.setting.clone(),
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn shown(&self) -> String {
        if self.path.as_os_str().is_empty() {
            self.setting.clone()
        } else {
            format!("{} {}", self.setting, self.path.display())
        }
    }
}

impl Pem {
    fn origin(&self) -> Origin {
        match self {
            Pem::File(f) => Origin {
                setting: f.setting.clone(),
                path: f.path.clone(),
            },
            Pem::Inline { setting, .. } => Origin {
                setting: setting.clone(),
                path: PathBuf::new(),
            },
        }
    }

    fn read(&self) -> Result<Vec<u8>, TlsFileError> {
        match self {
            Pem::File(f) => read_file(f),
            Pem::Inline { setting, text } => text
                .read(setting)
                .map(String::into_bytes)
                .map_err(|e| self.origin().error(e.reason)),
        }
    }
}

fn read_file(file: &TlsFile) -> Result<Vec<u8>, TlsFileError> {
    crate::secret::read_capped(&file.path, MAX_PEM_FILE).map_err(|reason| file_error(file, reason))
}

fn origin_of(file: &TlsFile) -> Origin {
    Origin {
        setting: file.setting.clone(),
        path: file.path.clone(),
    }
}

/// The CA certificates of `trust`.
pub fn trusted_certs(trust: &Trust) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    match trust {
        Trust::Pem(pem) => pem_certs(&pem.origin(), &pem.read()?),
        Trust::Store(store) => {
            let bytes = read_file(&store.file)?;
            let origin = origin_of(&store.file);
            match store_type(store, &bytes)? {
                StoreType::Pkcs12 => {
                    let archive = open_pkcs12(store, &bytes, None)?;
                    let certs: Vec<_> = archive
                        .certs
                        .iter()
                        .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
                        .collect();
                    if certs.is_empty() {
                        return Err(origin.error("the PKCS#12 truststore holds no certificate"));
                    }
                    Ok(certs)
                }
                _ => pem_certs(&origin, &bytes),
            }
        }
    }
}

/// The client certificate chain and key of `client`, checked to belong together.
pub fn identity(client: &ClientCert, provider: &CryptoProvider) -> Result<Identity, TlsFileError> {
    let (chain, key, cert_origin, key_origin) = match client {
        ClientCert::Pem {
            cert,
            key,
            key_password,
        } => {
            let chain = pem_certs(&cert.origin(), &cert.read()?)?;
            let key_der = pem_key(&key.origin(), &key.read()?, key_password.as_ref())?;
            (chain, key_der, cert.origin(), key.origin())
        }
        ClientCert::Store {
            store,
            key_password,
        } => {
            let bytes = read_file(&store.file)?;
            let origin = origin_of(&store.file);
            let (chain, key) = match store_type(store, &bytes)? {
                StoreType::Pkcs12 => {
                    pkcs12_identity(store, &bytes, key_password.as_ref(), provider)?
                }
                _ => (
                    pem_certs(&origin, &bytes)?,
                    pem_key(&origin, &bytes, key_password.as_ref())?,
                ),
            };
            (chain, key, origin_of(&store.file), origin)
        }
    };
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| key_origin.error(format!("the private key cannot be used: {e}")))?;
    check_pair(&chain[0], signing.as_ref(), &cert_origin, &key_origin)?;
    Ok(Identity {
        chain,
        key,
        signing,
    })
}

/// Checks that `key` is the private key of `leaf`: their public keys are the same. Read with
/// x509-parser, which takes v1 certificates too; a key whose public half the provider does not
/// give is not checked (as rustls does).
fn check_pair(
    leaf: &CertificateDer<'_>,
    key: &dyn SigningKey,
    cert_origin: &Origin,
    key_origin: &Origin,
) -> Result<(), TlsFileError> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Err(cert_origin.error("the certificate cannot be read as X.509"));
    };
    match public_key_of(key) {
        Some(bits) if *bits != *cert.tbs_certificate.subject_pki.subject_public_key.data => {
            Err(key_origin.error(format!(
                "is not the private key of the certificate in {} (their public keys differ)",
                cert_origin.shown()
            )))
        }
        _ => Ok(()),
    }
}

/// The bits of `key`'s public key, as a certificate's SubjectPublicKeyInfo holds them; `None`
/// where the provider does not give it.
fn public_key_of(key: &dyn SigningKey) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let spki = key.public_key()?;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).ok()?;
    Some(info.subject_public_key.data.to_vec())
}

/// A certificate's public key bits, subject and issuer (raw DER names).
struct Names {
    public_key: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
}

fn names_of(cert: &CertificateDer<'_>) -> Option<Names> {
    let (_, c) = x509_parser::parse_x509_certificate(cert).ok()?;
    let tbs = &c.tbs_certificate;
    Some(Names {
        public_key: tbs.subject_pki.subject_public_key.data.to_vec(),
        subject: tbs.subject.as_raw().to_vec(),
        issuer: tbs.issuer.as_raw().to_vec(),
    })
}

fn pem_certs(origin: &Origin, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs: Vec<CertificateDer<'static>> = pem_sections(pem)
        .map_err(|e| origin.error(e))?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if certs.is_empty() {
        return Err(origin.error(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----); for a PKCS#12 store, \
             set its *.type to PKCS12",
        ));
    }
    Ok(certs)
}

/// The first private key in `pem`, decrypted with `password` if it is an encrypted PKCS#8 key.
fn pem_key(
    origin: &Origin,
    pem: &[u8],
    password: Option<&Password>,
) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    if contains(pem, b"Proc-Type: 4,ENCRYPTED") {
        return Err(origin.error(
            "the key is encrypted in OpenSSL's legacy PEM form (Proc-Type: 4,ENCRYPTED), which \
             repliqate does not read; convert it to an encrypted PKCS#8 key with the same \
             password: `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`",
        ));
    }
    for (label, der) in pem_sections(pem).map_err(|e| origin.error(e))? {
        return Ok(match label.as_str() {
            "PRIVATE KEY" => PrivateKeyDer::Pkcs8(der.into()),
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(der.into()),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(der.into()),
            "ENCRYPTED PRIVATE KEY" => {
                let Some(password) = password else {
                    return Err(origin.error(
                        "the key is encrypted and no password is given for it \
                         (ssl.key.password for Kafka, sslpassword for PostgreSQL, \
                         redis_tls.key_password for Redis; the MySQL driver reads unencrypted \
                         keys only)",
                    ));
                };
                decrypt_pkcs8(origin, &der, password)?
            }
            _ => continue,
        });
    }
    Err(origin.error(
        "holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED \
         PRIVATE KEY)",
    ))
}

/// The `-----BEGIN label-----` sections of `pem`, each with its bytes, in order. The base64 may
/// be wrapped anyhow or not at all (a key that lost its line breaks on its way through an
/// environment variable or a `.properties` value), as Java's PEM reader takes it. Errors never
/// hold the text: it may be a key.
fn pem_sections(pem: &[u8]) -> Result<Vec<(String, Vec<u8>)>, &'static str> {
    let text = String::from_utf8_lossy(pem);
    let mut rest: &str = &text;
    let mut sections = Vec::new();
    while let Some(at) = rest.find("-----BEGIN ") {
        let after = &rest[at + "-----BEGIN ".len()..];
        let label_end = after
            .find("-----")
            .filter(|&n| n <= 64)
            .ok_or("a -----BEGIN line is not closed with -----")?;
        let label = &after[..label_end];
        if !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b' ' || b.is_ascii_digit())
        {
            return Err("a -----BEGIN line names no PEM label");
        }
        let body = &after[label_end + "-----".len()..];
        let end = format!("-----END {label}-----");
        let stop = body
            .find(&end)
            .ok_or("a PEM section has no -----END line")?;
        let b64: String = body[..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = B64
            .decode(b64)
            .map_err(|_| "a PEM section is not valid base64")?;
        sections.push((label.to_string(), der));
        rest = &body[stop + end.len()..];
    }
    Ok(sections)
}

fn decrypt_pkcs8(
    origin: &Origin,
    der: &[u8],
    password: &Password,
) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    use pkcs8::der::Decode;
    let secret = password
        .secret
        .read(&password.setting)
        .map_err(|e| origin.error(e.to_string()))?;
    // Only PBES2 is read (OpenSSL's default since 1.1); PKCS#12's older PBE inside PKCS#8
    // (`openssl pkcs8 -v1`) does not even decode as such.
    let info = pkcs8::EncryptedPrivateKeyInfoOwned::from_der(der).map_err(|e| {
        origin.error(format!(
            "the key is not encrypted with PBES2, the scheme repliqate reads ({e}); re-encrypt \
             it: `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`"
        ))
    })?;
    let doc = info.decrypt(secret.as_bytes()).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::AlgorithmParametersInvalid {
            ..
        })
        | pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm { .. }) => {
            origin.error(format!(
                "the key is encrypted with a scheme repliqate does not read ({e}); re-encrypt it \
                 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`"
            ))
        }
        _ => origin.error(format!(
            "cannot decrypt the key with {}: wrong password?",
            password.setting
        )),
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        doc.as_bytes().to_vec(),
    )))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What `store` holds: its type as configured, or told from its first bytes. Java's JKS and
/// JCEKS stores are refused with the command that converts them.
fn store_type(store: &Store, bytes: &[u8]) -> Result<StoreType, TlsFileError> {
    let java = match bytes.get(..4) {
        Some([0xfe, 0xed, 0xfe, 0xed]) => Some("JKS"),
        Some([0xce, 0xce, 0xce, 0xce]) => Some("JCEKS"),
        _ => None,
    };
    if let Some(kind) = java {
        return Err(file_error(
            &store.file,
            format!(
                "is a {kind} keystore, which repliqate does not read (there is no well-kept \
                 reader in pure Rust); convert it to PKCS#12 with `keytool -importkeystore \
                 -srckeystore {} -destkeystore STORE.p12 -deststoretype PKCS12` and point the \
                 setting at STORE.p12",
                store.file.path.display()
            ),
        ));
    }
    let text = bytes.trim_ascii_start();
    Ok(match store.kind {
        StoreType::Detect if text.starts_with(b"-----BEGIN ") => StoreType::Pem,
        StoreType::Detect => StoreType::Pkcs12,
        kind => kind,
    })
}

/// Opens a PKCS#12 store with its password (or, where the key has a password of its own and
/// the store's does not open it, with that one: a store is usually under one password).
fn open_pkcs12(
    store: &Store,
    bytes: &[u8],
    key_password: Option<&Password>,
) -> Result<p12_keystore::Pkcs12Archive, TlsFileError> {
    let read = |p: &Password| {
        p.secret
            .read(&p.setting)
            .map_err(|e| file_error(&store.file, e.to_string()))
    };
    let password = store.password.as_ref().map(read).transpose()?;
    let first = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password.as_deref().unwrap_or(""));
    // The passwords tried, for the error.
    let mut tried: Vec<&str> = store.password.iter().map(|p| p.setting.as_str()).collect();
    let result = match (first, key_password) {
        (Err(e), Some(kp)) if Some(&read(kp)?) != password.as_ref() => {
            tried.push(&kp.setting);
            p12_keystore::Pkcs12Archive::from_pkcs12(bytes, &read(kp)?).map_err(|_| e)
        }
        (result, _) => result,
    };
    result.map_err(|e| {
        use p12_keystore::error::Error as E;
        let reason = match e {
            E::MacError(_) | E::UnpadError | E::Pkcs5Error(_) | E::InvalidPrivateKey => {
                if tried.is_empty() {
                    "cannot open the PKCS#12 store without a password; set its password".to_string()
                } else {
                    format!(
                        "cannot open the PKCS#12 store with {}: wrong password?",
                        tried.join(" or ")
                    )
                }
            }
            E::UnsupportedEncryptionScheme | E::UnsupportedMacAlgorithm => format!(
                "the PKCS#12 store is protected with a scheme repliqate does not read ({e}); \
                 re-export it with `openssl pkcs12 -export` (OpenSSL 3's defaults)"
            ),
            other => format!(
                "cannot read it as a PKCS#12 store ({other}); re-export it with `openssl pkcs12 \
                 -export` (OpenSSL 3's defaults)"
            ),
        };
        file_error(&store.file, reason)
    })
}

/// The private key of a PKCS#12 keystore and its chain: the certificate whose public key is
/// the key's (as the store links them by local key id, or found by the key), then each issuer
/// the store holds, in order. Certificates of other keys and unrelated trusted entries are
/// left out.
fn pkcs12_identity(
    store: &Store,
    bytes: &[u8],
    key_password: Option<&Password>,
    provider: &CryptoProvider,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsFileError> {
    let archive = open_pkcs12(store, bytes, key_password)?;
    let origin = origin_of(&store.file);
    let Some(bag) = archive.keys.first() else {
        return Err(origin.error("the PKCS#12 keystore holds no private key"));
    };
    if archive.keys.len() > 1 {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            log::warn!(
                "{}: the PKCS#12 keystore holds {} private keys; using the first",
                origin.shown(),
                archive.keys.len()
            )
        });
    }
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bag.key.as_der().to_vec()));
    let certs: Vec<(CertificateDer<'static>, Option<Names>)> = archive
        .certs
        .iter()
        .map(|c| {
            let der = CertificateDer::from(c.cert.as_der().to_vec());
            let names = names_of(&der);
            (der, names)
        })
        .collect();
    let by_id = bag.local_key_id.as_ref().and_then(|id| {
        archive
            .certs
            .iter()
            .position(|c| c.local_key_id.as_deref() == Some(id.0.as_slice()))
    });
    let by_key = || {
        let signing = provider
            .key_provider
            .load_private_key(key.clone_key())
            .ok()?;
        let bits = public_key_of(signing.as_ref())?;
        certs
            .iter()
            .position(|(_, n)| n.as_ref().is_some_and(|n| n.public_key == bits))
    };
    let Some(leaf) = by_id.or_else(by_key) else {
        return Err(origin.error("the PKCS#12 keystore holds no certificate for its private key"));
    };
    let mut chain = vec![leaf];
    while let Some(Some(last)) = certs.get(chain[chain.len() - 1]).map(|(_, n)| n.as_ref()) {
        if last.subject == last.issuer || chain.len() > 10 {
            break;
        }
        let next = certs.iter().enumerate().position(|(i, (_, n))| {
            !chain.contains(&i) && n.as_ref().is_some_and(|n| n.subject == last.issuer)
        });
        match next {
            Some(i) => chain.push(i),
            None => break,
        }
    }
    Ok((chain.into_iter().map(|i| certs[i].0.clone()).collect(), key))
}
