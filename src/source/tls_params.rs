//! The TLS parameters of database URIs, read into one shape for both server backends: when a
//! connection uses TLS (`Use`) and how the server is checked (`tls::TlsSettings`). Only parsing
//! lives here, no driver type; `postgres/connect.rs` and `mysql/connect.rs` apply the result.
//!
//! PostgreSQL takes libpq's parameters: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
//! `sslpassword` (the password of an encrypted PKCS#8 `sslkey`). The rules
//! are libpq's (its manual, "SSL Support", table "SSL Mode Descriptions"):
//! - `disable`: plaintext; `allow`: plaintext, and TLS only if the server refuses plaintext;
//!   `prefer` (the default): TLS if the server offers it, else plaintext; `require`: TLS or no
//!   connection; `verify-ca`: and the chain must lead to `sslrootcert`; `verify-full`: and the
//!   certificate must name the host.
//! - A root certificate file given means the chain is verified in every mode that encrypts: as
//!   libpq documents, `require` with a root certificate behaves like `verify-ca`, and so do
//!   `allow` and `prefer` once they use TLS (a chain that fails is an error, never a reason to
//!   fall back to plaintext).
//! - `verify-ca` and `verify-full` need `sslrootcert` (libpq fails without a root certificate
//!   file); `sslrootcert=system` is the system's trust store, and as in libpq 16 it makes
//!   `verify-full` the default and weaker modes an error.
//! - Unlike libpq, no file is read from `~/.postgresql/` by default: a daemon's home directory
//!   is not where its operator looks. `sslcert` and `sslkey` go together.
//!
//! MySQL and MariaDB take the `mysql` client's options as parameters, `ssl-mode` (DISABLED,
//! PREFERRED — the default, as in the `mysql` client —, REQUIRED, VERIFY_CA, VERIFY_IDENTITY;
//! any case), `ssl-ca`, `ssl-cert`, `ssl-key`, and SQLAlchemy's spellings (mysqlclient and
//! PyMySQL): `ssl_mode`, `ssl_ca`, `ssl_cert`, `ssl_key`, `ssl_check_hostname`. As with the
//! `mysql` client, only VERIFY_CA and VERIFY_IDENTITY check the server's certificate (a CA given
//! with PREFERRED or REQUIRED is not used, with a warning). As with PyMySQL, a URI that names
//! certificates but no mode requires TLS: with a CA it is VERIFY_IDENTITY
//! (`ssl_check_hostname=false`: VERIFY_CA), without one REQUIRED.

use std::path::PathBuf;

use crate::secret::Secret;
use crate::tls::{ClientCert, Password, Pem, TlsFile, TlsSettings, Trust};

/// When a connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Never (`sslmode=disable`, `ssl-mode=DISABLED`).
    Never,
    /// Plaintext first, TLS only if the server refuses plaintext (libpq's `allow`).
    PlaintextFirst,
    /// TLS if the server offers it, else plaintext (`prefer`, `PREFERRED`: the defaults).
    IfOffered,
    /// TLS or no connection.
    Always,
}

/// A URI's TLS parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbTls {
    pub use_tls: Use,
    /// The mode as a parameter, given or the default (`sslmode=prefer`), for messages.
    pub mode: String,
    /// How the server is checked when TLS is used.
    pub settings: TlsSettings,
}

impl DbTls {
    /// Gives the client key's password from `setting` (a file of the config's), for a URI
    /// without `sslpassword`.
    pub(crate) fn set_key_password(
        &mut self,
        setting: &str,
        secret: &Secret,
    ) -> Result<(), String> {
        match &mut self.settings.client {
            Some(ClientCert::Pem {
                key_password: key_password @ None,
                ..
            }) => {
                *key_password = Some(Password {
                    setting: setting.to_string(),
                    secret: secret.clone(),
                });
                Ok(())
            }
            Some(_) => Err(format!(
                "{setting} is set and the uri has sslpassword too; give one"
            )),
            None => Err(format!(
                "{setting} is set but the uri has no sslcert and sslkey; it is the password \
                 of an encrypted sslkey"
            )),
        }
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

fn settings(check: Check, ca: Option<TlsFile>, client: Option<ClientCert>) -> TlsSettings {
    TlsSettings {
        ca: ca.map(|f| Trust::Pem(Pem::File(f))),
        client,
        verify_hostname: check == Check::ChainAndName,
        verify_certificate: check != Check::Nothing,
    }
}

/// The URI parameters [`postgres`] reads (the backend passes none of them to the driver).
pub(crate) const POSTGRES_KEYS: [&str; 5] =
    ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword"];

/// The URI parameters [`mysql`] reads.
pub(crate) const MYSQL_KEYS: [&str; 9] = [
    "ssl-mode",
    "ssl_mode",
    "ssl-ca",
    "ssl_ca",
    "ssl-cert",
    "ssl_cert",
    "ssl-key",
    "ssl_key",
    "ssl_check_hostname",
];

/// The value of `key` (the last one wins, as in SQLAlchemy).
fn value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn file(setting: &str, path: &str) -> Result<TlsFile, String> {
    if path.is_empty() {
        return Err(format!(
            "{setting} is empty; expected the path of a PEM file"
        ));
    }
    Ok(TlsFile {
        setting: setting.to_string(),
        path: PathBuf::from(path),
    })
}

/// `cert` and `key` as a client certificate: both or neither.
fn client_cert(
    cert: Option<(&str, &str)>,
    key: Option<(&str, &str)>,
) -> Result<Option<ClientCert>, String> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some((cs, c)), Some((ks, k))) => {
            Ok(Some(ClientCert::pem_files(file(cs, c)?, file(ks, k)?)))
        }
        (Some((given, _)), None) | (None, Some((given, _))) => {
            let missing = if given.ends_with("cert") {
                given.replace("cert", "key")
            } else {
                given.replace("key", "cert")
            };
            Err(format!(
                "{given} is given without {missing}; a client certificate needs both"
            ))
        }
    }
}

/// libpq's `sslmode`, `sslrootcert`, `sslcert`, `sslkey` and `sslpassword` (see the module
/// documentation).
/// `Err` says which parameter is wrong and what is accepted.
pub(crate) fn postgres(query: &[(String, String)]) -> Result<DbTls, String> {
    let root = value(query, "sslrootcert");
    let system = root == Some("system");
    let mode = match value(query, "sslmode") {
        Some(m) => m.to_ascii_lowercase(),
        None if system => "verify-full".to_string(),
        None => "prefer".to_string(),
    };
    let use_tls = match mode.as_str() {
        "disable" => Use::Never,
        "allow" => Use::PlaintextFirst,
        "prefer" => Use::IfOffered,
        "require" | "verify-ca" | "verify-full" => Use::Always,
        other => {
            return Err(format!(
                "sslmode={other} is not accepted; expected disable, allow, prefer (the default), \
                 require, verify-ca or verify-full"
            ))
        }
    };
    if system && mode != "verify-full" {
        return Err(format!(
            "sslmode={mode} may not be used with sslrootcert=system (as in libpq): the system's \
             trust store is for verify-full"
        ));
    }
    let ca = match root {
        None | Some("system") => None,
        Some(path) => Some(file("sslrootcert", path)?),
    };
    let check = match mode.as_str() {
        "verify-full" => Check::ChainAndName,
        "verify-ca" => Check::Chain,
        // libpq: a root certificate file, when there is one, is used in every mode.
        _ if ca.is_some() => Check::Chain,
        _ => Check::Nothing,
    };
    if check != Check::Nothing && ca.is_none() && !system {
        return Err(format!(
            "sslmode={mode} needs sslrootcert: the CA file to verify the server with, or \
             sslrootcert=system for the system's trust store (libpq's default \
             ~/.postgresql/root.crt is not read)"
        ));
    }
    let mut client = client_cert(
        value(query, "sslcert").map(|v| ("sslcert", v)),
        value(query, "sslkey").map(|v| ("sslkey", v)),
    )?;
    // libpq's password of an encrypted `sslkey` (ignored, as by libpq, without one).
    if let (Some(ClientCert::Pem { key_password, .. }), Some(password)) =
        (&mut client, value(query, "sslpassword"))
    {
        *key_password = Some(Password {
            setting: "sslpassword".to_string(),
            secret: Secret::Value(password.to_string()),
        });
    }
    Ok(DbTls {
        use_tls,
        mode: format!("sslmode={mode}"),
        settings: settings(check, ca, client),
    })
}

/// One MySQL parameter under either of its spellings (`ssl-ca`, `ssl_ca`): `(spelling, value)`.
fn either<'a>(
    query: &'a [(String, String)],
    dashed: &'static str,
    underscored: &'static str,
) -> Result<Option<(&'static str, &'a str)>, String> {
    match (value(query, dashed), value(query, underscored)) {
        (Some(_), Some(_)) => Err(format!(
            "{dashed} and {underscored} are both given; they are the same setting, give one"
        )),
        (Some(v), None) => Ok(Some((dashed, v))),
        (None, Some(v)) => Ok(Some((underscored, v))),
        (None, None) => Ok(None),
    }
}

/// SQLAlchemy's booleans (`util.asbool`).
fn boolean(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" | "t" | "1" => Ok(true),
        "false" | "no" | "off" | "n" | "f" | "0" => Ok(false),
        _ => Err(format!("{key}={v} is not accepted; expected true or false")),
    }
}

/// The `mysql` client's `ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`, and SQLAlchemy's spellings
/// of them (see the module documentation). Warnings (a CA that the mode does not use) are
/// logged here, once, at start-up.
pub(crate) fn mysql(query: &[(String, String)]) -> Result<DbTls, String> {
    let given_mode = either(query, "ssl-mode", "ssl_mode")?;
    let ca = either(query, "ssl-ca", "ssl_ca")?;
    let cert = either(query, "ssl-cert", "ssl_cert")?;
    let key = either(query, "ssl-key", "ssl_key")?;
    let check_hostname = value(query, "ssl_check_hostname")
        .map(|v| boolean("ssl_check_hostname", v))
        .transpose()?;
    let mode = match given_mode {
        Some((spelling, m)) => {
            if check_hostname.is_some() {
                return Err(format!(
                    "ssl_check_hostname is given with {spelling}; {spelling} alone says whether \
                     the name is checked (VERIFY_CA: not, VERIFY_IDENTITY: checked)"
                ));
            }
            m.to_ascii_uppercase()
        }
        // PyMySQL: certificates without a mode ask for TLS; a CA is checked, with the name
        // unless ssl_check_hostname says no.
        None if ca.is_some() && check_hostname == Some(false) => "VERIFY_CA".to_string(),
        None if ca.is_some() => "VERIFY_IDENTITY".to_string(),
        None if check_hostname.is_some() => {
            return Err(
                "ssl_check_hostname is given without ssl_ca; it applies to the CA's check"
                    .to_string(),
            )
        }
        None if cert.is_some() || key.is_some() => "REQUIRED".to_string(),
        None => "PREFERRED".to_string(),
    };
    let (use_tls, check) = match mode.as_str() {
        "DISABLED" => (Use::Never, Check::Nothing),
        "PREFERRED" => (Use::IfOffered, Check::Nothing),
        "REQUIRED" => (Use::Always, Check::Nothing),
        "VERIFY_CA" => (Use::Always, Check::Chain),
        "VERIFY_IDENTITY" => (Use::Always, Check::ChainAndName),
        other => {
            return Err(format!(
                "{}={other} is not accepted; expected DISABLED, PREFERRED (the default), \
                 REQUIRED, VERIFY_CA or VERIFY_IDENTITY",
                given_mode.map_or("ssl-mode", |(s, _)| s)
            ))
        }
    };
    let shown = format!("{}={mode}", given_mode.map_or("ssl-mode", |(s, _)| s));
    if let Some((spelling, _)) = ca {
        if check == Check::Nothing {
            log::warn!(
                "{spelling} is not used with {shown}: the server's certificate is checked only \
                 with VERIFY_CA or VERIFY_IDENTITY (as in the mysql client)"
            );
        }
    }
    let ca = ca
        .filter(|_| check != Check::Nothing)
        .map(|(s, v)| file(s, v))
        .transpose()?;
    let client = client_cert(cert, key)?;
    if use_tls == Use::Never && client.is_some() {
        log::warn!("the client certificate is not used with {shown}");
    }
    Ok(DbTls {
        use_tls,
        mode: shown,
        settings: settings(check, ca, client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pg(pairs: &[(&str, &str)]) -> DbTls {
        postgres(&q(pairs)).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
    }

    fn pg_err(pairs: &[(&str, &str)]) -> String {
        postgres(&q(pairs)).expect_err("expected an error")
    }

    fn my(pairs: &[(&str, &str)]) -> DbTls {
        mysql(&q(pairs)).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
    }

    fn my_err(pairs: &[(&str, &str)]) -> String {
        mysql(&q(pairs)).expect_err("expected an error")
    }

    /// (uses TLS, checks the chain, checks the name)
    fn checks(t: &DbTls) -> (Use, bool, bool) {
        (
            t.use_tls,
            t.settings.verify_certificate,
            t.settings.verify_certificate && t.settings.verify_hostname,
        )
    }

    #[test]
    fn libpq_modes() {
        let t = pg(&[]);
        assert_eq!(
            (checks(&t), t.mode.as_str()),
            ((Use::IfOffered, false, false), "sslmode=prefer")
        );
        assert_eq!(checks(&pg(&[("sslmode", "disable")])).0, Use::Never);
        assert_eq!(
            checks(&pg(&[("sslmode", "allow")])),
            (Use::PlaintextFirst, false, false)
        );
        assert_eq!(
            checks(&pg(&[("sslmode", "require")])),
            (Use::Always, false, false)
        );
        let ca = ("sslrootcert", "/etc/ca.pem");
        assert_eq!(
            checks(&pg(&[("sslmode", "verify-ca"), ca])),
            (Use::Always, true, false)
        );
        let full = pg(&[("sslmode", "verify-full"), ca]);
        assert_eq!(checks(&full), (Use::Always, true, true));
        assert_eq!(ca_setting(&full), "sslrootcert");
        // libpq: with a root certificate file, require (and prefer) verify the chain.
        assert_eq!(
            checks(&pg(&[("sslmode", "require"), ca])),
            (Use::Always, true, false)
        );
        assert_eq!(checks(&pg(&[ca])), (Use::IfOffered, true, false));
        // The last value wins, as in SQLAlchemy; the case is not significant.
        assert_eq!(
            checks(&pg(&[("sslmode", "disable"), ("sslmode", "REQUIRE")])).0,
            Use::Always
        );
    }

    #[test]
    fn libpq_refusals() {
        let e = pg_err(&[("sslmode", "verify-full")]);
        assert!(
            e.contains("needs sslrootcert") && e.contains("sslrootcert=system"),
            "{e}"
        );
        assert!(pg_err(&[("sslmode", "verify-ca")]).contains("needs sslrootcert"));
        let e = pg_err(&[("sslmode", "strict")]);
        assert!(
            e.contains("sslmode=strict is not accepted") && e.contains("verify-full"),
            "{e}"
        );
        let e = pg_err(&[("sslcert", "/c.pem")]);
        assert!(e.contains("sslcert is given without sslkey"), "{e}");
        let e = pg_err(&[("sslkey", "/c.key")]);
        assert!(e.contains("sslkey is given without sslcert"), "{e}");
        let e = pg_err(&[("sslrootcert", "system"), ("sslmode", "require")]);
        assert!(e.contains("may not be used with sslrootcert=system"), "{e}");
        assert!(pg_err(&[("sslrootcert", "")]).contains("sslrootcert is empty"));
    }

    #[test]
    fn libpq_system_roots_and_client_certificates() {
        let t = pg(&[("sslrootcert", "system")]);
        assert_eq!(checks(&t), (Use::Always, true, true));
        assert_eq!(t.mode, "sslmode=verify-full");
        assert!(t.settings.ca.is_none());
        let t = pg(&[
            ("sslcert", "/c.pem"),
            ("sslkey", "/c.key"),
            ("sslmode", "require"),
        ]);
        let (cert, key) = client_files(&t);
        assert_eq!(
            (cert.setting.as_str(), key.path.to_str()),
            ("sslcert", Some("/c.key"))
        );
        let t = pg(&[
            ("sslcert", "/c.pem"),
            ("sslkey", "/c.key"),
            ("sslpassword", "pw"),
        ]);
        match t.settings.client {
            Some(ClientCert::Pem {
                key_password: Some(p),
                ..
            }) => {
                assert_eq!(p.setting, "sslpassword");
                assert_eq!(p.secret, Secret::Value("pw".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    fn ca_setting(t: &DbTls) -> &str {
        match &t.settings.ca {
            Some(Trust::Pem(Pem::File(f))) => &f.setting,
            other => panic!("{other:?}"),
        }
    }

    fn client_files(t: &DbTls) -> (&TlsFile, &TlsFile) {
        match &t.settings.client {
            Some(ClientCert::Pem {
                cert: Pem::File(c),
                key: Pem::File(k),
                ..
            }) => (c, k),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mysql_modes() {
        let t = my(&[]);
        assert_eq!(
            (checks(&t), t.mode.as_str()),
            ((Use::IfOffered, false, false), "ssl-mode=PREFERRED")
        );
        assert_eq!(checks(&my(&[("ssl-mode", "disabled")])).0, Use::Never);
        assert_eq!(
            checks(&my(&[("ssl-mode", "REQUIRED")])),
            (Use::Always, false, false)
        );
        let ca = ("ssl-ca", "/ca.pem");
        assert_eq!(
            checks(&my(&[("ssl-mode", "Verify_CA"), ca])),
            (Use::Always, true, false)
        );
        let t = my(&[("ssl_mode", "VERIFY_IDENTITY"), ca]);
        assert_eq!(
            (checks(&t), t.mode.as_str()),
            ((Use::Always, true, true), "ssl_mode=VERIFY_IDENTITY")
        );
        // Without a CA the driver's built-in roots decide.
        assert_eq!(
            checks(&my(&[("ssl-mode", "VERIFY_IDENTITY")])),
            (Use::Always, true, true)
        );
        // As in the mysql client, REQUIRED does not check, even with a CA.
        let t = my(&[("ssl-mode", "REQUIRED"), ca]);
        assert_eq!(checks(&t), (Use::Always, false, false));
        assert!(t.settings.ca.is_none());
    }

    #[test]
    fn sqlalchemy_spellings_follow_pymysql() {
        let t = my(&[("ssl_ca", "/ca.pem")]);
        assert_eq!(
            (checks(&t), t.mode.as_str()),
            ((Use::Always, true, true), "ssl-mode=VERIFY_IDENTITY")
        );
        assert_eq!(ca_setting(&t), "ssl_ca");
        let t = my(&[("ssl_ca", "/ca.pem"), ("ssl_check_hostname", "false")]);
        assert_eq!(checks(&t), (Use::Always, true, false));
        let t = my(&[("ssl_cert", "/c.pem"), ("ssl_key", "/c.key")]);
        assert_eq!(checks(&t), (Use::Always, false, false));
        assert_eq!(client_files(&t).1.setting, "ssl_key");
    }

    #[test]
    fn mysql_refusals() {
        let e = my_err(&[("ssl-mode", "VERIFY_FULL")]);
        assert!(
            e.contains("ssl-mode=VERIFY_FULL is not accepted") && e.contains("VERIFY_IDENTITY"),
            "{e}"
        );
        let e = my_err(&[("ssl-ca", "/a"), ("ssl_ca", "/b")]);
        assert!(e.contains("ssl-ca and ssl_ca are both given"), "{e}");
        let e = my_err(&[("ssl-cert", "/c.pem")]);
        assert!(e.contains("ssl-cert is given without ssl-key"), "{e}");
        let e = my_err(&[("ssl_key", "/c.key")]);
        assert!(e.contains("ssl_key is given without ssl_cert"), "{e}");
        let e = my_err(&[("ssl-mode", "REQUIRED"), ("ssl_check_hostname", "false")]);
        assert!(
            e.contains("ssl_check_hostname is given with ssl-mode"),
            "{e}"
        );
        assert!(my_err(&[("ssl_check_hostname", "false")]).contains("without ssl_ca"));
        assert!(my_err(&[("ssl_ca", "/a"), ("ssl_check_hostname", "maybe")])
            .contains("expected true or false"));
    }
}
