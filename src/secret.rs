//! Passwords and tokens: given in the config (often as `${VAR}`) or as a file to read, and never
//! printed.
//!
//! A `Secret` is read when it is used, not when the config is loaded: a file (a Kubernetes
//! secret, a systemd credential) may be rotated while the daemon runs, and the next connection
//! or re-authentication then uses the new value. Its `Debug` shows only where it comes from.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest secret file we read: passwords and tokens are bytes to kilobytes; a bigger file is
/// the wrong file.
const MAX_SECRET_FILE: u64 = 1024 * 1024;

/// A password or token, or the file that holds it.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Value(String),
    /// Re-read at every use. Trailing line breaks are not part of the secret (`echo pw > f`).
    File(PathBuf),
    /// The property `name` of a Java `.properties` file (`kafka_target.properties_file`),
    /// re-read at every use; with `jaas_option`, that option of the JAAS line it holds.
    InProperties {
        path: PathBuf,
        name: String,
        jaas_option: Option<String>,
    },
}

/// Why a secret file could not be used. Names the setting and the file, never the contents.
#[derive(Debug)]
pub struct SecretError {
    pub setting: String,
    pub path: PathBuf,
    pub reason: String,
}

impl Secret {
    /// The secret's value, read from its file now if it has one. `setting` names the config
    /// setting, for the error.
    pub fn read(&self, setting: &str) -> Result<String, SecretError> {
        match self {
            Secret::Value(v) => Ok(v.clone()),
            Secret::File(path) => read_secret_file(path, setting),
            Secret::InProperties {
                path,
                name,
                jaas_option,
            } => read_property(path, name, jaas_option.as_deref(), setting),
        }
    }
}

/// Reads property `name` of the properties file at `path` again (the last one, as Java takes
/// it), or the option `jaas_option` of the JAAS line it holds. Errors never hold a value.
fn read_property(
    path: &Path,
    name: &str,
    jaas_option: Option<&str>,
    setting: &str,
) -> Result<String, SecretError> {
    let error = |reason: String| SecretError {
        setting: setting.to_string(),
        path: path.to_owned(),
        reason,
    };
    let text = read_text(path, setting)?;
    let entries = crate::javaprops::parse_properties(&text).map_err(|e| error(e.to_string()))?;
    let value = entries
        .into_iter()
        .rev()
        .find(|p| p.name == name)
        .map(|p| crate::javaprops::java_trim(&p.value).to_string())
        .ok_or_else(|| error(format!("no longer has {name}")))?;
    let Some(option) = jaas_option else {
        return Ok(value);
    };
    let entry = crate::javaprops::parse_jaas(&value).map_err(|e| error(format!("{name}: {e}")))?;
    entry
        .options
        .into_iter()
        .rev()
        .find(|(k, _)| k == option)
        .map(|(_, v)| v)
        .ok_or_else(|| error(format!("{name} no longer has {option}")))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("Secret(***)"),
            Secret::File(path) => write!(f, "Secret(file {})", path.display()),
            Secret::InProperties { path, name, .. } => {
                write!(f, "Secret({name} in {})", path.display())
            }
        }
    }
}

/// Reads a secret from a file: UTF-8, trailing line breaks removed, not empty.
pub fn read_secret_file(path: &Path, setting: &str) -> Result<String, SecretError> {
    let text = read_text(path, setting)?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(SecretError {
            setting: setting.to_string(),
            path: path.to_owned(),
            reason: "the file is empty".into(),
        });
    }
    Ok(value.to_string())
}

/// A secret file's text: UTF-8, at most `MAX_SECRET_FILE` bytes.
fn read_text(path: &Path, setting: &str) -> Result<String, SecretError> {
    let error = |reason: String| SecretError {
        setting: setting.to_string(),
        path: path.to_owned(),
        reason,
    };
    let bytes = read_capped(path, MAX_SECRET_FILE).map_err(error)?;
    String::from_utf8(bytes).map_err(|_| error("not UTF-8 text".into()))
}

/// The bytes of a credential file (a secret, a certificate, a key) of at most `max` bytes; the
/// error is the reason, for the caller to put beside the setting and the path. The read itself
/// is bounded: a path that names something else (a device, a huge file) cannot exhaust memory.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes; is this the right file?"));
    }
    Ok(bytes)
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: cannot read {}: {}",
            self.setting,
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for SecretError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::Value("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
        let f = Secret::File("/run/secrets/pw".into());
        assert_eq!(format!("{f:?}"), "Secret(file /run/secrets/pw)");
    }

    #[test]
    fn files_are_read_at_each_use_without_their_line_breaks() {
        let dir = std::env::temp_dir().join(format!("repliqate-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        let secret = Secret::File(path.clone());
        std::fs::write(&path, "first\n").unwrap();
        assert_eq!(secret.read("x.password_file").unwrap(), "first");
        std::fs::write(&path, "second\r\n").unwrap();
        assert_eq!(secret.read("x.password_file").unwrap(), "second");
        std::fs::write(&path, " spaces kept ").unwrap();
        assert_eq!(secret.read("x.password_file").unwrap(), " spaces kept ");

        std::fs::write(&path, "\n").unwrap();
        let e = secret.read("x.password_file").unwrap_err().to_string();
        assert!(e.contains("x.password_file") && e.contains("empty"), "{e}");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let e = secret.read("x.password_file").unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = secret.read("x.password_file").unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
