//! TLS client configuration, one way for every boundary: rustls with the ring provider.
//!
//! What is configured is `TlsSettings`: where trust comes from (a CA file, or the system's
//! store), an optional client certificate and key, and whether the server's name (or, for the
//! databases' encrypt-only modes, its certificate at all) is checked.
//! `TlsSettings::client_config` builds a rustls `ClientConfig` from them, reading the files
//! again each time: it is called per connection, so a rotated CA bundle or client certificate
//! is used from the next connection on, without a restart.
//!
//! `describe` turns a rustls error into one line an operator can act on (an unknown CA, a name
//! mismatch, an expired certificate, a client certificate the server wants or refused).
//!
//! The process-wide provider: the redis and mysql crates build their own rustls configs with
//! `ClientConfig::builder()`, which needs a default provider. `provider()` installs ring's as
//! the default the first time it is called; `main` calls it first thing.

mod material;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

pub use material::{
    identity, pem_block, ClientCert, Identity, Password, Pem, Store, StoreType, Trust,
};

/// Largest PEM file (or keystore) we read (a CA bundle of the whole Mozilla store is ~220 KB).
const MAX_PEM_FILE: u64 = 16 * 1024 * 1024;

/// How a client connects over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The CA certificates the server's chain must lead to; `None`: the system's trust store.
    pub ca: Option<Trust>,
    /// A certificate chain and key to present (mutual TLS).
    pub client: Option<ClientCert>,
    /// Whether the server's certificate must name the host we dialled. Off only when a user
    /// says so explicitly (a warning is logged where that is configured).
    pub verify_hostname: bool,
    /// Whether the server's certificate is checked at all. Off only for the databases' modes
    /// that ask for encryption without verification (libpq's `sslmode=require` without a root
    /// certificate, MySQL's `ssl-mode=REQUIRED`): then `ca` is not read and neither chain nor
    /// name is checked, which keeps passive eavesdroppers out and nobody else. The handshake's
    /// signatures are still verified against the certificate presented.
    pub verify_certificate: bool,
}

/// A PEM file, with the setting that named it (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFile {
    pub setting: String,
    pub path: PathBuf,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca: None,
            client: None,
            verify_hostname: true,
            verify_certificate: true,
        }
    }
}

/// A file of ours that cannot be used: names the setting, the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFileError {
    pub setting: String,
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_os_str().is_empty() {
            // Inline material: the setting alone.
            write!(f, "{}: {}", self.setting, self.reason)
        } else {
            write!(
                f,
                "{} {}: {}",
                self.setting,
                self.path.display(),
                self.reason
            )
        }
    }
}

impl std::error::Error for TlsFileError {}

/// ring, installed as the process's default provider on first use.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            // Fails only when a default is installed already; then that one stays.
            let _ = CryptoProvider::install_default(rustls::crypto::ring::default_provider());
            Arc::new(rustls::crypto::ring::default_provider())
        })
        .clone()
}

/// The files a driver's own TLS needs, each read once (`TlsSettings::for_webpki_driver`).
pub struct DriverMaterial {
    /// The configured CA certificates (`None`: the system's store).
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// The client certificate chain and key.
    pub identity: Option<Identity>,
}

impl TlsSettings {
    /// A rustls client config, from the files as they are now.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsFileError> {
        // Without verification the CAs are not needed, and not read.
        let ca = if self.verify_certificate {
            self.ca_certs()?
        } else {
            None
        };
        let identity = self.client_identity()?;
        self.config_from(ca, identity.as_ref())
    }

    /// The config over material read already: `ca` the configured CAs (`None`: the system's
    /// store), `identity` the client certificate and key.
    fn config_from(
        &self,
        ca: Option<Vec<CertificateDer<'static>>>,
        identity: Option<&Identity>,
    ) -> Result<Arc<ClientConfig>, TlsFileError> {
        let provider = provider();
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3");
        let builder = if !self.verify_certificate {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Relaxed {
                    chain: None,
                    algorithms,
                }))
        } else {
            let roots = Arc::new(self.roots(ca)?);
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| TlsFileError {
                    setting: self.trust_setting(),
                    path: PathBuf::new(),
                    reason: format!("cannot verify with these CAs: {e}"),
                })?;
            if self.verify_hostname {
                builder.with_webpki_verifier(verifier)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Relaxed {
                        chain: Some(verifier),
                        algorithms,
                    }))
            }
        };
        let config = match identity {
            None => builder.with_no_client_auth(),
            // Not `with_client_auth_cert`: its key check parses the certificate with webpki,
            // which refuses X.509 v1 certificates that brokers accept. `identity` checked the
            // pair itself.
            Some(identity) => builder.with_client_cert_resolver(Arc::new(
                rustls::sign::SingleCertAndKey::from(identity.certified_key()),
            )),
        };
        Ok(Arc::new(config))
    }

    /// The trust anchors: the configured CAs read (`certs`), or the system's.
    fn roots(
        &self,
        certs: Option<Vec<CertificateDer<'static>>>,
    ) -> Result<RootCertStore, TlsFileError> {
        let (Some(ca), Some(certs)) = (&self.ca, certs) else {
            return Ok(system_roots().clone());
        };
        let mut roots = RootCertStore::empty();
        let (_, unusable) = roots.add_parsable_certificates(certs);
        if roots.is_empty() {
            return Err(TlsFileError {
                setting: self.trust_setting(),
                path: trust_path(ca),
                reason: "holds no usable CA certificate".into(),
            });
        }
        if unusable > 0 {
            log::warn!(
                "{}: {unusable} certificate(s) could not be used as trust anchors",
                self.trust_setting()
            );
        }
        Ok(roots)
    }

    /// The configured CA certificates, read now (`None`: the system's store is used).
    pub fn ca_certs(&self) -> Result<Option<Vec<CertificateDer<'static>>>, TlsFileError> {
        self.ca.as_ref().map(material::trusted_certs).transpose()
    }

    /// The client certificate chain and key, read now and checked to belong together.
    pub fn client_identity(&self) -> Result<Option<Identity>, TlsFileError> {
        self.client
            .as_ref()
            .map(|c| identity(c, &provider()))
            .transpose()
    }

    /// For a driver that reads the certificates itself and loads the client's through
    /// rustls's own check (webpki, which reads v3 certificates only): reads every file once,
    /// checks it as `client_config` does, and refuses an X.509 v1 client certificate, naming
    /// `driver`. Returns what was read, for the driver.
    pub fn for_webpki_driver(&self, driver: &str) -> Result<DriverMaterial, TlsFileError> {
        let ca = self.ca_certs()?;
        let identity = self.client_identity()?;
        let checked = if self.verify_certificate {
            ca.clone()
        } else {
            None
        };
        self.config_from(checked, identity.as_ref())?;
        match (&identity, &self.client) {
            (Some(id), Some(client)) if id.leaf_is_v1() => Err(client.cert_error(format!(
                "is an X.509 v1 certificate, which the {driver} driver (rustls with webpki) \
                 cannot load; issue a v3 certificate (openssl x509 -req ... -extfile with any \
                 extension)"
            ))),
            _ => Ok(DriverMaterial { ca, identity }),
        }
    }

    /// The setting that names the CAs, for errors.
    fn trust_setting(&self) -> String {
        match &self.ca {
            Some(Trust::Pem(Pem::File(f))) => format!("{} {}", f.setting, f.path.display()),
            Some(Trust::Pem(Pem::Inline { setting, .. })) => setting.clone(),
            Some(Trust::Store(s)) => format!("{} {}", s.file.setting, s.file.path.display()),
            None => "the system trust store".into(),
        }
    }
}

/// The system's trust anchors (read once: the store is not something we expect to rotate
/// under a running daemon; a configured CA file is re-read at each connection), or Mozilla's
/// when the system has none, as in a scratch container.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            log::info!(
                "tls: no system trust store found; using the Mozilla root certificates built in"
            );
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    })
}

/// Checks less of the server's certificate than webpki does: the chain but not the name (`chain`
/// given: `ssl.endpoint.identification.algorithm: none`, PostgreSQL's `verify-ca`), or nothing
/// of it (`chain` none: `verify_certificate: false`, libpq's `require` without a root
/// certificate, MySQL's `REQUIRED`). Either way the handshake must be signed with the key of the
/// certificate presented.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The file of `trust`, if it is one (for errors).
fn trust_path(trust: &Trust) -> PathBuf {
    match trust {
        Trust::Pem(Pem::File(f)) | Trust::Store(Store { file: f, .. }) => f.path.clone(),
        Trust::Pem(Pem::Inline { .. }) => PathBuf::new(),
    }
}

/// The name to verify and send (SNI) for `host`: a DNS name or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is not a valid DNS name or IP address for TLS"))
}

fn file_error(file: &TlsFile, reason: impl Into<String>) -> TlsFileError {
    TlsFileError {
        setting: file.setting.clone(),
        path: file.path.clone(),
        reason: reason.into(),
    }
}

/// One line saying why a TLS handshake (or what followed it) failed, for an operator.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => describe_certificate(c),
        E::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => {
                "the server requires a client certificate; configure one".into()
            }
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied => format!(
                "the server refused our client certificate (alert {alert:?}); is it signed by \
                 a CA the server trusts, and still valid?"
            ),
            AlertDescription::ProtocolVersion => {
                "no TLS version in common (repliqate speaks TLS 1.2 and 1.3)".into()
            }
            AlertDescription::HandshakeFailure => {
                "the server ended the handshake (alert HandshakeFailure): no cipher suite in \
                 common, or it wanted a client certificate"
                    .into()
            }
            other => format!("the server sent TLS alert {other:?}"),
        },
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            format!("the server does not speak TLS here ({e}); is this a plaintext port?")
        }
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        other => other.to_string(),
    }
}

fn describe_certificate(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            "the server's certificate is not signed by a trusted CA \
             (unknown issuer); configure the CA that signed it"
                .into()
        }
        CertificateError::NotValidForName => {
            "the server's certificate is not valid for this host name".into()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the server's certificate is for {}, not {}",
            if presented.is_empty() {
                "no name (it has no subjectAltName)".to_string()
            } else {
                presented
                    .iter()
                    .map(|name| bare_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            expected.to_str()
        ),
        CertificateError::Expired => "the server's certificate has expired".into(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server's certificate expired {}s ago (not after {} s since the epoch)",
            time.as_secs().saturating_sub(not_after.as_secs()),
            not_after.as_secs()
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (check the clocks)".into()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server's certificate is not for TLS servers (extended key usage)".into()
        }
        CertificateError::BadSignature => "the server's certificate has a bad signature".into(),
        other => format!("the server's certificate is invalid: {other:?}"),
    }
}

/// `other.example` of webpki's `DnsName("other.example")` (and `IpAddress(..)`), as the
/// names a certificate presents are reported.
fn bare_name(name: &str) -> &str {
    let inner = name
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(name);
    inner.trim_matches('"')
}

/// The rustls error inside an I/O error from a TLS stream, if that is what it is.
pub fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The rustls error somewhere in `e`'s chain of causes (`Error::source`, and the error inside
/// each I/O error, which `io::Error::source` skips), for a driver that wraps it in its own.
pub fn find_rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn file(path: &Path) -> Trust {
        Trust::Pem(Pem::File(TlsFile {
            setting: "ssl.ca.location".into(),
            path: path.to_owned(),
        }))
    }

    #[test]
    fn unusable_files_are_named_with_their_setting() {
        let dir = std::env::temp_dir().join(format!("repliqate-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let settings = TlsSettings {
            ca: Some(file(&missing)),
            ..TlsSettings::default()
        };
        let e = settings.client_config().unwrap_err().to_string();
        assert!(
            e.starts_with("ssl.ca.location ") && e.contains("missing.pem"),
            "{e}"
        );

        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let settings = TlsSettings {
            ca: Some(file(&garbage)),
            ..TlsSettings::default()
        };
        let e = settings.client_config().unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn presented_names_are_shown_bare() {
        assert_eq!(bare_name("DnsName(\"other.example\")"), "other.example");
        assert_eq!(bare_name("IpAddress(127.0.0.2)"), "127.0.0.2");
        assert_eq!(bare_name("plain.example"), "plain.example");
    }

    #[test]
    fn server_names_take_hosts_and_ip_addresses() {
        assert!(matches!(
            server_name("broker-1.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(server_name("bad name").is_err());
    }

    #[test]
    fn rustls_errors_are_found_inside_other_errors() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("driver error")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let wrapped = Wrapper(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        assert!(matches!(
            find_rustls_error(&wrapped),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ));
        let plain = Wrapper(std::io::Error::other("connection reset"));
        assert!(find_rustls_error(&plain).is_none());
    }
}
