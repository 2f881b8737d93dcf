//! Where an OAUTHBEARER token comes from: a file, read again at every authentication (a
//! sidecar or the platform keeps it fresh), or a command, run with a timeout (the way cloud
//! providers' token helpers work), whose token is kept until shortly before it expires.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

use crate::secret::read_secret_file;

/// A command's token is run again this long before the `exp` it states, so that a connection
/// made just before expiry does not carry a token that dies during its handshake.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(60);
/// Largest token a command may print.
const MAX_TOKEN: usize = 1024 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Command { command: String, timeout: Duration },
}

/// A command line may carry a client secret as an argument: only its program is shown.
impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::File(path) => f.debug_tuple("File").field(path).finish(),
            TokenSource::Command { command, timeout } => f
                .debug_struct("Command")
                .field(
                    "program",
                    &command.split_whitespace().next().unwrap_or_default(),
                )
                .field("timeout", timeout)
                .finish(),
        }
    }
}

/// A `TokenSource` and, for a command, the token it printed last (shared by every connection
/// of a producer).
pub struct Tokens {
    source: TokenSource,
    cached: Mutex<Option<(String, SystemTime)>>,
}

impl Tokens {
    pub fn new(source: TokenSource) -> Tokens {
        Tokens {
            source,
            cached: Mutex::new(None),
        }
    }

    /// A token to authenticate with now.
    pub fn get(&self) -> Result<String, String> {
        match &self.source {
            TokenSource::File(path) => {
                read_secret_file(path, "sasl.oauthbearer.token.file").map_err(|e| e.to_string())
            }
            TokenSource::Command { command, timeout } => {
                let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((token, refresh_at)) = cached.as_ref() {
                    if SystemTime::now() < *refresh_at {
                        return Ok(token.clone());
                    }
                }
                let token = run(command, *timeout)?;
                *cached = expiry(&token)
                    .and_then(|exp| exp.checked_sub(REFRESH_BEFORE_EXPIRY))
                    .map(|refresh_at| (token.clone(), refresh_at));
                Ok(token)
            }
        }
    }
}

/// When a JWT says it expires (`exp`, unverified: the broker verifies it), if it is a JWT.
pub fn expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    (exp.is_finite() && exp > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(exp))
}

/// Runs `command` with `sh -c`, and returns what it printed, trimmed. Its stderr is ours, so
/// that whatever it says reaches the operator as it said it; we never print its output.
fn run(command: &str, timeout: Duration) -> Result<String, String> {
    let what = "sasl.oauthbearer.token.command";
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{what}: cannot run sh: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped above");
    let (tx, rx) = mpsc::channel();
    // A reader of its own: a command printing more than a pipe holds must not block the wait.
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let read = (&mut stdout)
            .take(MAX_TOKEN as u64 + 1)
            .read_to_end(&mut out);
        let _ = tx.send(read.map(|_| out));
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what}: no token within {:.1}s (sasl.oauthbearer.token.command.timeout.ms); \
                     the command was stopped",
                    timeout.as_secs_f64()
                ));
            }
            Err(e) => return Err(format!("{what}: waiting for the command: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("{what}: the command failed ({status})"));
    }
    let out = rx
        .recv_timeout(Duration::from_secs(1))
        .map_err(|_| {
            format!(
                "{what}: the command's output did not end (a process it started keeps it open?)"
            )
        })?
        .map_err(|e| format!("{what}: reading its output: {e}"))?;
    if out.len() > MAX_TOKEN {
        return Err(format!("{what}: printed more than {MAX_TOKEN} bytes"));
    }
    let token = String::from_utf8(out).map_err(|_| format!("{what}: printed non-UTF-8 bytes"))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(format!("{what}: printed no token"));
    }
    if token.contains(char::is_whitespace) {
        return Err(format!(
            "{what}: printed more than one word; it must print the token alone"
        ));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64) -> String {
        let part = |json: &str| B64URL.encode(json);
        format!(
            "{}.{}.",
            part(r#"{"alg":"none"}"#),
            part(&format!(r#"{{"sub":"app","exp":{exp}}}"#))
        )
    }

    #[test]
    fn the_expiry_of_a_jwt_is_read() {
        assert_eq!(
            expiry(&jwt(2_000_000_000)),
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(expiry("opaque-token"), None);
        assert_eq!(expiry("a.b.c"), None);
    }

    #[test]
    fn a_command_token_is_kept_until_shortly_before_it_expires() {
        let dir = std::env::temp_dir().join(format!("repliqate-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let count = dir.join("count");
        let later = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let tokens = Tokens::new(TokenSource::Command {
            command: format!("echo run >> {}; echo '{}'", count.display(), jwt(later)),
            timeout: Duration::from_secs(10),
        });
        assert_eq!(tokens.get().unwrap(), jwt(later));
        assert_eq!(tokens.get().unwrap(), jwt(later));
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);

        // A token about to expire (or without an expiry) is fetched again every time.
        let soon = later - 3600 + 30;
        let tokens = Tokens::new(TokenSource::Command {
            command: format!("echo run >> {}; echo '{}'", count.display(), jwt(soon)),
            timeout: Duration::from_secs(10),
        });
        tokens.get().unwrap();
        tokens.get().unwrap();
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_shows_the_program_not_its_arguments() {
        let source = TokenSource::Command {
            command: "token-helper --secret s3cr3t".into(),
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{source:?}");
        assert!(
            shown.contains("token-helper") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn command_failures_are_named() {
        let run = |command: &str, timeout_ms| {
            Tokens::new(TokenSource::Command {
                command: command.into(),
                timeout: Duration::from_millis(timeout_ms),
            })
            .get()
            .unwrap_err()
        };
        assert!(run("exit 3", 5000).contains("failed (exit status: 3)"));
        assert!(run("true", 5000).contains("printed no token"));
        assert!(run("echo two words", 5000).contains("more than one word"));
        let started = Instant::now();
        let e = run("sleep 10", 200);
        assert!(e.contains("no token within 0.2s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
