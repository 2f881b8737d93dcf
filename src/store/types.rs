//! What the position store hands back, whichever store it is: the outcomes of lease and write
//! calls, `StoreError`, and the helpers both stores share to parse and show a stored value.
//!
//! A file of its own so that the facade (`mod.rs`) and the two stores (`redis.rs`, `file.rs`)
//! all import it and none of them imports another: the imports run one way.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::value::Id;

/// How a fenced write went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The writer held the lease.
    Held,
    /// The writer's lease had lapsed with nobody taking it and the position unmoved since the
    /// writer's last read or write: it took the lease again and wrote.
    LeaseRetaken,
}

/// Who holds a job's lease, as `Store::lease_holder` read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// Its owner token (host, pid, random part).
    pub owner: String,
    /// How long the lease has to run unless renewed (Redis's PTTL); `None` for a state file's
    /// lock, which lasts as long as its process.
    pub expires_in: Option<Duration>,
}

/// What `Store::claim` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody held the job: it is ours.
    Free,
    /// It is ours, taken from this holder.
    TakenFrom(String),
    /// Another instance holds it (nothing was taken).
    HeldBy(String),
}

/// Who may publish for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This instance held the lease and still does.
    Held,
    /// This instance took a lease nobody held: whatever it knew may be stale.
    Acquired,
    /// Another instance does (its owner token).
    HeldBy(String),
}

/// Why a position could not be read or written.
#[derive(Debug)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time; trying again later may work.
    Unavailable {
        store: String,
        doing: &'static str,
        cause: String,
    },
    /// The store answered with an error that retrying will not fix (authentication, wrong type
    /// of key, a bad address).
    Refused {
        store: String,
        doing: &'static str,
        cause: String,
    },
    /// The stored value is not an integer.
    Corrupt { store: String, value: String },
    /// Another instance holds the job's lease: this one must not write (or publish).
    Fenced { store: String, holder: String },
    /// Another instance holds the state file's lock (`Store::lock`).
    Locked { path: PathBuf, holder: String },
    /// A state file operation failed.
    File {
        path: PathBuf,
        doing: &'static str,
        cause: io::Error,
    },
}

impl StoreError {
    pub fn is_retriable(&self) -> bool {
        match self {
            // It may stop; meanwhile this one must not run.
            StoreError::Unavailable { .. } | StoreError::Locked { .. } => true,
            StoreError::Refused { .. } | StoreError::Corrupt { .. } | StoreError::Fenced { .. } => {
                false
            }
            // A full disk or an I/O hiccup may clear; a missing directory or a permission
            // problem needs the operator.
            StoreError::File { cause, .. } => !matches!(
                cause.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
            ),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable {
                store,
                doing,
                cause,
            }
            | StoreError::Refused {
                store,
                doing,
                cause,
            } => write!(f, "{doing} {store}: {cause}"),
            StoreError::Corrupt { store, value } => write!(
                f,
                "reading the position from {store}: the stored value {value} is not a decimal \
                 integer; repliqate will not guess a position (that could republish the whole \
                 table): set the last replicated primary key by hand"
            ),
            StoreError::File { path, doing, cause } => {
                write!(f, "{doing} state file {}: {cause}", path.display())
            }
            StoreError::Locked { path, holder } => write!(
                f,
                "state file {} is in use by another instance ({holder}, holding {}): one \
                 instance per state file",
                path.display(),
                lock_path(path).display()
            ),
            StoreError::Fenced { store, holder } => write!(
                f,
                "lost the job's lease for {store} to another instance ({holder}): not publishing \
                 or writing the position until it is taken again"
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::File { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

/// The lock file next to a state file: the state file itself is replaced at every write, so a
/// lock on it would be on a file that is soon gone.
// Here rather than in file.rs: `StoreError::Locked`'s message names the lock file too.
pub(super) fn lock_path(state_file: &Path) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Parses a stored position. Accepts what the old tool wrote (`str(int)`) and one trailing
/// newline (state files end with one); anything else is `None`.
pub(super) fn parse_position(bytes: &[u8]) -> Option<Id> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A stored value as shown in an error: quoted, escaped, and cut short if long.
pub(super) fn show_value(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let more = if bytes.len() > MAX { "…" } else { "" };
    format!("{text:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_value_is_shown_short_and_escaped() {
        assert_eq!(show_value(b"abc\n"), "\"abc\\n\"");
        assert!(show_value(&[b'x'; 100]).ends_with('…'));
    }
}
