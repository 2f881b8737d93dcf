//! The position store: where the last replicated primary key is kept between runs.
//!
//! Either Redis, under the old tool's key (docs/messages.md, "Redis position":
//! `repliqate:replication:offset:` followed by the tags `name`, `table`, `topic` sorted by tag
//! name and joined with `&`), or a local state file replaced atomically. The daemon loop only
//! sees `Store`; no `redis::` type leaves this module.
//!
//! Invariant: a stored value that is not an integer is `StoreError::Corrupt`, never "no position"
//! — restarting from zero would republish the whole table.
//! What this module does not know: when a position may be written (the loop writes it only after
//! Kafka acknowledged every row up to it).
//!
//! This file is the facade: the config, `Store` (which dispatches to the Redis store in
//! `redis.rs` or the file store in `file.rs`) and, re-exported, what both hand back
//! (`types.rs`), so that the rest of the crate names everything `crate::store::X`.

mod file;
mod redis;
mod types;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::redact::redact_uri;
use crate::secret::Secret;
use crate::tls::TlsSettings;
use crate::value::Id;

pub use self::file::FileStore;
use self::redis::RedisAccess;
pub use self::redis::{lease_key, redis_key, RedisStore};
pub use self::types::{Claim, Lease, LeaseHolder, StoreError, Written};

/// Where the last replicated primary key is kept.
// Built once at start-up, so the size of the Redis variant (its TLS settings) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq)]
pub enum PositionStoreConfig {
    /// `host:port`, or a `redis://` or `rediss://` (TLS) URL,
    /// `[[user]:password@]host[:port][/db]` (may hold a password: print it with `redact_uri`).
    Redis {
        addr: String,
        /// Bounds connecting, and each command's read and write (`redis_timeout_sec`).
        timeout: Duration,
        /// A private CA and a client certificate for `rediss://` (`redis_tls`); the name is
        /// always checked. Files are read again at each connection.
        tls: Option<TlsSettings>,
        /// The password from `redis_password_file`, read at each connection.
        password: Option<Secret>,
    },
    /// Local state file, replaced atomically on each commit.
    File { path: PathBuf },
}

impl fmt::Debug for PositionStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PositionStoreConfig::Redis {
                addr,
                timeout,
                tls,
                password,
            } => f
                .debug_struct("Redis")
                .field("addr", &redact_uri(addr))
                .field("timeout", timeout)
                .field("tls", tls)
                .field("password", password)
                .finish(),
            PositionStoreConfig::File { path } => {
                f.debug_struct("File").field("path", path).finish()
            }
        }
    }
}

/// Where positions are kept.
// One store per process: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Store {
    Redis(RedisStore),
    File(FileStore),
}

impl Store {
    /// Prepares the store of one replication job. Does not contact Redis yet (the first `read`
    /// does, so that an unreachable Redis is a retriable error of the loop, not a start-up
    /// failure); a state file's directory must exist.
    pub fn open(
        cfg: &PositionStoreConfig,
        name: &str,
        table: &str,
        topic: &str,
    ) -> Result<Store, StoreError> {
        match cfg {
            PositionStoreConfig::Redis {
                addr,
                timeout,
                tls,
                password,
            } => RedisStore::open(
                addr,
                &redis_key(name, table, topic),
                RedisAccess {
                    timeout: *timeout,
                    tls: tls.clone(),
                    password: password.clone(),
                },
            )
            .map(Store::Redis),
            PositionStoreConfig::File { path } => FileStore::open(path).map(Store::File),
        }
    }

    /// The stored position, `None` when nothing was ever stored.
    pub fn read(&mut self) -> Result<Option<Id>, StoreError> {
        match self {
            Store::Redis(s) => s.read(),
            Store::File(s) => s.read(),
        }
    }

    /// Takes or renews the job's lease for `owner` for `ttl` (active/standby: only the holder
    /// publishes). A lease nobody holds (expired, or an emptied Redis) is taken. A state file
    /// has no lease: one instance per file, on one host.
    pub fn hold_lease(&mut self, owner: &str, ttl: Duration) -> Result<Lease, StoreError> {
        match self {
            Store::Redis(s) => s.hold_lease(owner, ttl),
            Store::File(_) => Ok(Lease::Held),
        }
    }

    /// Gives the lease up on a clean shutdown, so that a standby takes over at once.
    pub fn release_lease(&mut self, owner: &str) -> Result<(), StoreError> {
        match self {
            Store::Redis(s) => s.release_lease(owner),
            Store::File(_) => Ok(()),
        }
    }

    /// Stores `pos` only while `owner` holds the lease (compare-and-set in one Lua script), so
    /// that an instance that lost its lease while paused can never overwrite a newer position:
    /// `StoreError::Fenced` then. `expected` is the position `owner` last read or wrote: when
    /// its lease lapsed (a Kafka call outlived it) but nobody took the lease or moved the
    /// position since, the lease is taken again and the position written
    /// (`Written::LeaseRetaken`) instead of republishing rows Kafka already acknowledged.
    pub fn write_fenced(
        &mut self,
        pos: Id,
        expected: Option<Id>,
        owner: &str,
        ttl: Duration,
    ) -> Result<Written, StoreError> {
        match self {
            Store::Redis(s) => s.write_fenced(pos, expected, owner, ttl),
            Store::File(s) => s.write(pos).map(|()| Written::Held),
        }
    }

    /// Who holds the job's lease now, read only (nothing is taken or renewed): for `repliqate
    /// check` and `position show`. For a state file, the instance that locked it (`lock`).
    pub fn lease_holder(&mut self) -> Result<Option<LeaseHolder>, StoreError> {
        match self {
            Store::Redis(s) => s.lease_holder(),
            Store::File(s) => s.lock_holder(),
        }
    }

    /// A state file is locked (an advisory lock on `<state_file>.lock`, taken for `owner` and
    /// held as long as this store lives, released by the kernel even on `kill -9`), so that a
    /// second instance and `position set` see that one runs: `StoreError::Locked` when another
    /// holds it. Redis: nothing (the lease does that).
    pub fn lock(&mut self, owner: &str) -> Result<(), StoreError> {
        match self {
            Store::Redis(_) => Ok(()),
            Store::File(s) => s.lock(owner),
        }
    }

    /// Whether writers are fenced by a lease (Redis), so that a running instance can be made to
    /// stand aside (`claim` with `take_over`); a state file's writer cannot be.
    pub fn has_lease(&self) -> bool {
        matches!(self, Store::Redis(_))
    }

    /// Makes `owner` the job's one writer, for a change made by hand: takes the lease if nobody
    /// holds it, or with `take_over` from whoever does (whose next fenced write is then
    /// refused); a state file is locked (`lock`; `take_over` cannot apply).
    pub fn claim(
        &mut self,
        owner: &str,
        ttl: Duration,
        take_over: bool,
    ) -> Result<Claim, StoreError> {
        match self {
            Store::Redis(s) if take_over => Ok(match s.take_lease_over(owner, ttl)? {
                Some(holder) => Claim::TakenFrom(holder),
                None => Claim::Free,
            }),
            Store::Redis(s) => Ok(match s.hold_lease(owner, ttl)? {
                Lease::HeldBy(holder) => Claim::HeldBy(holder),
                Lease::Held | Lease::Acquired => Claim::Free,
            }),
            Store::File(s) => match s.lock(owner) {
                Ok(()) => Ok(Claim::Free),
                Err(StoreError::Locked { holder, .. }) => Ok(Claim::HeldBy(holder)),
                Err(e) => Err(e),
            },
        }
    }

    /// Removes the stored position, only while `owner` holds the lease (as `write_fenced`):
    /// the job then starts as a new job.
    pub fn clear_fenced(&mut self, owner: &str) -> Result<(), StoreError> {
        match self {
            Store::Redis(s) => s.clear_fenced(owner),
            Store::File(s) => s.remove(),
        }
    }

    /// Where the position lives, for log lines (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Store::Redis(s) => s.describe(),
            Store::File(s) => s.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file::TMP_COUNTER;
    use super::types::lock_path;
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "repliqate-store-{tag}-{}-{}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn file_store(dir: &TempDir) -> (Store, PathBuf) {
        let path = dir.0.join("job.offset");
        let cfg = PositionStoreConfig::File { path: path.clone() };
        let store = Store::open(&cfg, "n", "t", "x").expect("open");
        (store, path)
    }

    #[test]
    fn missing_file_means_no_position_and_write_round_trips() {
        let dir = TempDir::new("roundtrip");
        let (mut store, path) = file_store(&dir);
        assert_eq!(store.read().expect("read"), None);
        for pos in [1, 42, i64::MAX as Id + 5, -3] {
            store
                .write_fenced(pos, None, "owner", Duration::from_secs(1))
                .expect("write");
            assert_eq!(store.read().expect("read"), Some(pos));
            assert_eq!(fs::read_to_string(&path).expect("raw"), format!("{pos}\n"));
        }
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir.0)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("job.offset")]);
    }

    #[test]
    fn a_locked_state_file_names_its_holder_until_released() {
        let dir = TempDir::new("lock");
        let (mut daemon, path) = file_store(&dir);
        let (mut other, _) = file_store(&dir);
        // Looking does not create the lock file.
        assert_eq!(other.lease_holder().expect("look"), None);
        assert!(!lock_path(&path).exists());
        daemon.lock("host-1-aa").expect("lock");
        let holder = other.lease_holder().expect("look").expect("held");
        assert_eq!(holder.owner, "host-1-aa");
        assert_eq!(holder.expires_in, None);
        match other.lock("host-2-bb") {
            Err(e @ StoreError::Locked { .. }) => {
                assert!(e.is_retriable());
                assert!(e.to_string().contains("host-1-aa"), "{e}");
                assert!(e.to_string().contains("job.offset.lock"), "{e}");
            }
            other => panic!("a second lock: {:?}", other.map(|_| ())),
        }
        assert_eq!(
            other
                .claim("host-2-bb", Duration::from_secs(1), true)
                .expect("claim"),
            Claim::HeldBy("host-1-aa".into())
        );
        drop(daemon);
        assert_eq!(other.lease_holder().expect("look"), None);
        assert_eq!(
            other
                .claim("host-2-bb", Duration::from_secs(1), false)
                .expect("claim"),
            Claim::Free
        );
        assert!(!other.has_lease());
    }

    #[test]
    fn clearing_a_state_file_leaves_no_position() {
        let dir = TempDir::new("clear");
        let (mut store, path) = file_store(&dir);
        store.clear_fenced("me").expect("clear nothing");
        store
            .write_fenced(7, None, "me", Duration::from_secs(1))
            .expect("write");
        store.clear_fenced("me").expect("clear");
        assert!(!path.exists());
        assert_eq!(store.read().expect("read"), None);
    }

    #[test]
    fn read_tolerates_a_missing_trailing_newline() {
        let dir = TempDir::new("nonl");
        let (mut store, path) = file_store(&dir);
        fs::write(&path, "1234").expect("write");
        assert_eq!(store.read().expect("read"), Some(1234));
    }

    #[test]
    fn garbage_is_corrupt_and_not_retriable() {
        let dir = TempDir::new("garbage");
        let (mut store, path) = file_store(&dir);
        for garbage in [
            "", "\n", "12a\n", "1.5\n", " 7\n", "7\n\n", "+7", "-", "\u{ff}",
        ] {
            fs::write(&path, garbage).expect("write");
            let err = store.read().expect_err(garbage);
            assert!(
                matches!(err, StoreError::Corrupt { .. }),
                "{garbage:?}: {err}"
            );
            assert!(!err.is_retriable());
            assert!(err.to_string().contains("job.offset"), "{err}");
        }
    }

    #[test]
    fn missing_directory_is_refused_at_open() {
        let dir = TempDir::new("nodir");
        let cfg = PositionStoreConfig::File {
            path: dir.0.join("missing/job.offset"),
        };
        let err = match Store::open(&cfg, "n", "t", "x") {
            Ok(_) => panic!("opened a store in a missing directory"),
            Err(e) => e,
        };
        assert!(!err.is_retriable());
        assert!(
            err.to_string()
                .contains("create it or set repliqate.state_file"),
            "{err}"
        );
    }

    #[test]
    fn redis_address_password_is_not_described() {
        let cfg = PositionStoreConfig::Redis {
            addr: "redis://:hunter2@127.0.0.1:6379/0".into(),
            timeout: Duration::from_secs(1),
            tls: None,
            password: None,
        };
        let store = Store::open(&cfg, "n", "t", "x").expect("open");
        assert!(
            !store.describe().contains("hunter2"),
            "{}",
            store.describe()
        );
    }
}
