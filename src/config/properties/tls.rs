//! The `ssl.*` properties: where the CAs come from, the client certificate and key, and the
//! name check, under librdkafka's names (`ssl.ca.location`, `ssl.certificate.location`,
//! `ssl.key.location`, `ssl.key.password`, `ssl.keystore.location` (PKCS#12), and the inline
//! `ssl.ca.pem`, `ssl.certificate.pem`, `ssl.key.pem`) and Java's (`ssl.truststore.*`,
//! `ssl.keystore.*` of type PEM or PKCS12, with their passwords, and the inline
//! `ssl.keystore.certificate.chain`, `ssl.keystore.key`, `ssl.truststore.certificates`).

use std::path::PathBuf;

use super::{Reader, PATH};
use crate::tls::{ClientCert, Pem, Store, StoreType, TlsFile, TlsSettings, Trust};

/// The ssl.* properties, if any is given.
pub(super) fn settings(p: &mut Reader) -> Result<Option<TlsSettings>, String> {
    let truststore_type = store_type(p, "ssl.truststore.type")?;
    let keystore_type = store_type(p, "ssl.keystore.type")?;
    let mut any = truststore_type.is_some() || keystore_type.is_some();
    let ca = trust(p, truststore_type)?;
    let client = client(p, keystore_type)?;
    let verify_hostname = match p.take_one("ssl.endpoint.identification.algorithm") {
        None => true,
        Some((_, v)) if v.eq_ignore_ascii_case("https") => true,
        Some((_, v)) if v.is_empty() || v.eq_ignore_ascii_case("none") => false,
        Some((name, v)) => {
            return Err(format!(
                "{}: `{v}` is not accepted; expected https (check the broker's name, the \
                 default) or none",
                p.at(&name)
            ))
        }
    };
    any |= ca.is_some() || client.is_some() || !verify_hostname;
    Ok(any.then_some(TlsSettings {
        ca,
        client,
        verify_hostname,
        verify_certificate: true,
    }))
}

/// A store's `*.type`: PEM, PKCS12, or JKS (then the file says which it is).
fn store_type(p: &mut Reader, name: &str) -> Result<Option<StoreType>, String> {
    let Some((name, v)) = p.take_one(name) else {
        return Ok(None);
    };
    match v.to_ascii_uppercase().as_str() {
        "PEM" => Ok(Some(StoreType::Pem)),
        "PKCS12" => Ok(Some(StoreType::Pkcs12)),
        // Java's JKS type opens PKCS#12 files too, and is Kafka's default: the file decides
        // (a real JKS or JCEKS store is refused with the command that converts it).
        "JKS" => Ok(Some(StoreType::Detect)),
        _ => Err(format!(
            "{}: `{v}` is not supported; expected PEM, PKCS12 or JKS (a JKS file itself is \
             converted to PKCS#12 with keytool -importkeystore)",
            p.at(&name)
        )),
    }
}

fn file(p: &mut Reader, name: &str) -> Result<Option<TlsFile>, String> {
    match p.take_one(name) {
        Some((name, v)) if v.is_empty() => Err(format!("{}: the path is empty", p.at(&name))),
        Some((name, v)) => Ok(Some(TlsFile {
            setting: p.at(&name),
            path: PathBuf::from(v),
        })),
        None => Ok(None),
    }
}

/// PEM text given inline (a secret: it may be a key).
fn inline(p: &mut Reader, name: &str) -> Result<Option<Pem>, String> {
    match p.take_one(name) {
        Some((name, v)) if !v.contains("-----BEGIN ") => Err(format!(
            "{}: expected PEM text (-----BEGIN ...-----), e.g. from ${{VAR}}",
            p.at(&name)
        )),
        Some((name, v)) => Ok(Some(Pem::Inline {
            setting: p.at(&name),
            text: p.secret(&name, v, None),
        })),
        None => Ok(None),
    }
}

/// At most one of `given` (name, value); `what` names it for the error.
fn one<T>(given: Vec<(&str, Option<T>)>, what: &str) -> Result<Option<T>, String> {
    let names: Vec<&str> = given
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| *n)
        .collect();
    if names.len() > 1 {
        return Err(format!(
            "{PATH}: {} all name {what}; give one",
            names.join(" and ")
        ));
    }
    Ok(given.into_iter().find_map(|(_, v)| v))
}

/// The CAs: a PEM file, inline PEM, or a truststore.
fn trust(p: &mut Reader, kind: Option<StoreType>) -> Result<Option<Trust>, String> {
    let password = p.password("ssl.truststore.password")?;
    let ca_file = file(p, "ssl.ca.location")?.map(|f| Trust::Pem(Pem::File(f)));
    let ca_pem = inline(p, "ssl.ca.pem")?.map(Trust::Pem);
    let certificates = inline(p, "ssl.truststore.certificates")?.map(Trust::Pem);
    let store = file(p, "ssl.truststore.location")?.map(|file| {
        Trust::Store(Store {
            file,
            kind: kind.unwrap_or(StoreType::Detect),
            password,
        })
    });
    if certificates.is_some() && kind == Some(StoreType::Pkcs12) {
        return Err(format!(
            "{PATH}.ssl.truststore.certificates: is PEM text, but ssl.truststore.type is PKCS12; \
             expected PEM"
        ));
    }
    one(
        vec![
            ("ssl.ca.location", ca_file),
            ("ssl.ca.pem", ca_pem),
            ("ssl.truststore.location", store),
            ("ssl.truststore.certificates", certificates),
        ],
        "the CAs",
    )
}

/// The client certificate and key: a certificate and a key (files or inline PEM, librdkafka's
/// names or Java's inline PEM keystore), or a keystore file.
fn client(p: &mut Reader, kind: Option<StoreType>) -> Result<Option<ClientCert>, String> {
    let key_password = p.password("ssl.key.password")?;
    let store_password = p.password("ssl.keystore.password")?;
    let cert = one(
        vec![
            (
                "ssl.certificate.location",
                file(p, "ssl.certificate.location")?.map(Pem::File),
            ),
            ("ssl.certificate.pem", inline(p, "ssl.certificate.pem")?),
            (
                "ssl.keystore.certificate.chain",
                inline(p, "ssl.keystore.certificate.chain")?,
            ),
        ],
        "the client certificate",
    )?;
    let key = one(
        vec![
            (
                "ssl.key.location",
                file(p, "ssl.key.location")?.map(Pem::File),
            ),
            ("ssl.key.pem", inline(p, "ssl.key.pem")?),
            ("ssl.keystore.key", inline(p, "ssl.keystore.key")?),
        ],
        "the client key",
    )?;
    let store = file(p, "ssl.keystore.location")?;
    match (cert, key, store) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), None) => Ok(Some(ClientCert::Pem {
            cert,
            key,
            key_password,
        })),
        (None, None, Some(file)) => Ok(Some(ClientCert::Store {
            store: Store {
                file,
                kind: kind.unwrap_or(StoreType::Detect),
                password: store_password,
            },
            key_password,
        })),
        (Some(_), None, None) => Err(format!(
            "{PATH}.ssl.key.location: a client certificate is set without its private key \
             (ssl.key.location, ssl.key.pem or ssl.keystore.key)"
        )),
        (None, Some(_), None) => Err(format!(
            "{PATH}.ssl.certificate.location: a private key is set without its certificate \
             (ssl.certificate.location, ssl.certificate.pem or ssl.keystore.certificate.chain)"
        )),
        _ => Err(format!(
            "{PATH}: ssl.keystore.location and a certificate and key given apart both name the \
             client certificate; give one"
        )),
    }
}
