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

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::redact::redact_uri;
use crate::secret::Secret;
use crate::tls::{self, TlsSettings};
use crate::value::Id;

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

/// The Redis key of a job's lease (next to its position key; the old tool had none).
pub fn lease_key(name: &str, table: &str, topic: &str) -> String {
    format!("repliqate:replication:lease:name={name}&table={table}&topic={topic}")
}

/// Renews the lease if ours (1), takes it if free (2), else returns the holder.
const HOLD_LEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return holder
";

/// Writes the position only for the lease holder. A lease nobody holds lapsed: another instance
/// may have held it and moved the position meanwhile, so it is taken here only if the position
/// is still the one the writer last saw (ARGV[4], empty for none), or is missing with the lease
/// (a Redis that came back empty: nobody wrote since, as every writer writes the position, and
/// the writer's acknowledged position is what it would restore anyway); otherwise the caller
/// must read it again before writing (else it could move the position backwards).
const WRITE_FENCED: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
if holder == false then
  local stored = redis.call('GET', KEYS[2])
  if stored == false or stored == ARGV[4] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
    redis.call('SET', KEYS[2], ARGV[2])
    return 2
  end
  return 'nobody: the lease lapsed and the position moved'
end
return holder
";

/// The lease's holder and its remaining time, or 0 when nobody holds it.
const READ_LEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false then
  return 0
end
return {holder, redis.call('PTTL', KEYS[1])}
";

/// Takes the lease whoever holds it; returns the previous holder (nil if none).
const TAKE_LEASE_OVER: &str = r"
local holder = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return holder
";

/// Deletes the position only for the lease holder (as WRITE_FENCED writes it); else returns the
/// holder.
const CLEAR_FENCED: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return 1
end
if holder == false then
  return 'nobody'
end
return holder
";

const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The Redis key of a job's position, exactly as the old tool wrote it.
pub fn redis_key(name: &str, table: &str, topic: &str) -> String {
    format!("repliqate:replication:offset:name={name}&table={table}&topic={topic}")
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

/// An EVAL of a Lua script: the check and the write happen atomically in Redis. (EVAL rather
/// than EVALSHA: the scripts are a few hundred bytes, and no extra redis feature is needed.)
fn eval(script: &str, keys: &[&str], args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len());
    for k in keys {
        cmd.arg(*k);
    }
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

/// The owner token a lease script returned, for messages.
fn holder_of(v: redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::SimpleString(s) => s,
        other => format!("{other:?}"),
    }
}

/// Parses a stored position. Accepts what the old tool wrote (`str(int)`) and one trailing
/// newline (state files end with one); anything else is `None`.
fn parse_position(bytes: &[u8]) -> Option<Id> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A stored value as shown in an error: quoted, escaped, and cut short if long.
fn show_value(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let more = if bytes.len() > MAX { "…" } else { "" };
    format!("{text:?}{more}")
}

/// The position in Redis, under the old tool's key.
pub struct RedisStore {
    /// Where and as whom, parsed once; TLS files and a password file are read at each connect.
    info: redis::ConnectionInfo,
    access: RedisAccess,
    /// Dropped after any error and reopened on the next call: a connection that failed
    /// mid-reply may hold half a response.
    conn: Option<redis::Connection>,
    key: String,
    /// `addr` with any password hidden.
    shown_addr: String,
}

/// How to connect, besides where: the timeout, TLS files, a password file.
struct RedisAccess {
    timeout: Duration,
    tls: Option<TlsSettings>,
    password: Option<Secret>,
}

impl RedisStore {
    fn open(addr: &str, key: &str, access: RedisAccess) -> Result<RedisStore, StoreError> {
        let shown_addr = redact_uri(addr);
        let refused = |cause: String| StoreError::Refused {
            store: format!("redis {shown_addr}"),
            doing: "opening",
            cause,
        };
        use redis::IntoConnectionInfo;
        let info = if addr.contains("://") {
            addr.into_connection_info()
        } else {
            // `host:port` as the old tool took it; IPv6 hosts come in brackets.
            let (host, port) = addr
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .ok_or_else(|| refused("expected host:port".to_owned()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host, port).into_connection_info()
        }
        .map_err(|e| refused(redact_uri(&e.to_string())))?;
        let is_tls = matches!(info.addr, redis::ConnectionAddr::TcpTls { .. });
        if access.tls.is_some() && !is_tls {
            return Err(refused(
                "redis_tls is set but the address is not a rediss:// URL; use rediss:// for TLS"
                    .to_owned(),
            ));
        }
        if access.password.is_some() && info.redis.password.is_some() {
            return Err(refused(
                "the URL has a password and redis_password_file is set; give one".to_owned(),
            ));
        }
        if is_tls {
            // The redis crate builds its own rustls config from the process default provider.
            tls::provider();
        }
        Ok(RedisStore {
            info,
            access,
            conn: None,
            key: key.to_owned(),
            shown_addr,
        })
    }

    /// A client for a new connection, from the TLS and password files as they are now.
    fn client(&self) -> Result<redis::Client, StoreError> {
        let refused = |cause: String| StoreError::Refused {
            store: format!("redis {}", self.shown_addr),
            doing: "connecting to",
            cause,
        };
        let mut info = self.info.clone();
        if let Some(password) = &self.access.password {
            let password = password
                .read("repliqate.redis_password_file")
                .map_err(|e| refused(e.to_string()))?;
            info.redis.password = Some(password);
        }
        let Some(settings) = &self.access.tls else {
            return redis::Client::open(info).map_err(|e| refused(e.to_string()));
        };
        // Read and checked by our own loader (so that a bad file gets our error naming it, and
        // an encrypted key is decrypted), then handed to the driver as PEM text in memory. The
        // driver loads the pair through rustls's own check, which cannot read X.509 v1
        // certificates: such a certificate is refused here, saying so.
        let tls_error = |e: tls::TlsFileError| refused(e.to_string());
        let pem_certs = |certs: &[rustls::pki_types::CertificateDer<'_>]| {
            let mut pem = Vec::new();
            for c in certs {
                pem.extend(tls::pem_block("CERTIFICATE", c));
            }
            pem
        };
        let client_tls = match settings.for_webpki_driver("redis").map_err(tls_error)? {
            None => None,
            Some(id) => {
                let (client_cert, client_key) = id.to_pem().ok_or_else(|| {
                    refused(
                        "repliqate.redis_tls.key_file: a key of a kind the redis driver cannot \
                         take as PEM"
                            .to_owned(),
                    )
                })?;
                Some(redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
        };
        let certificates = redis::TlsCertificates {
            root_cert: settings
                .ca_certs()
                .map_err(tls_error)?
                .map(|c| pem_certs(&c)),
            client_tls,
        };
        redis::Client::build_with_tls(info, certificates).map_err(|e| refused(e.to_string()))
    }

    fn describe(&self) -> String {
        format!("redis {} key {}", self.shown_addr, self.key)
    }

    fn read(&mut self) -> Result<Option<Id>, StoreError> {
        let value: Option<Vec<u8>> = self.query(
            redis::cmd("GET").arg(&self.key),
            "reading the position from",
        )?;
        match value {
            None => Ok(None),
            Some(bytes) => match parse_position(&bytes) {
                Some(id) => Ok(Some(id)),
                None => Err(StoreError::Corrupt {
                    store: self.describe(),
                    value: show_value(&bytes),
                }),
            },
        }
    }

    fn lease_key(&self) -> String {
        // The position key is `...:offset:<tags>`; the lease key has the same tags.
        self.key.replacen(":offset:", ":lease:", 1)
    }

    /// Runs one of the lease scripts that take the lease for `owner` for `ttl`.
    fn lease_script(
        &mut self,
        script: &str,
        owner: &str,
        ttl: Duration,
        doing: &'static str,
    ) -> Result<redis::Value, StoreError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let cmd = eval(script, &[&self.lease_key()], &[owner, &ttl_ms.to_string()]);
        self.query(&cmd, doing)
    }

    fn hold_lease(&mut self, owner: &str, ttl: Duration) -> Result<Lease, StoreError> {
        match self.lease_script(HOLD_LEASE, owner, ttl, "taking the lease in")? {
            redis::Value::Int(1) => Ok(Lease::Held),
            redis::Value::Int(2) => Ok(Lease::Acquired),
            other => Ok(Lease::HeldBy(holder_of(other))),
        }
    }

    fn lease_holder(&mut self) -> Result<Option<LeaseHolder>, StoreError> {
        let cmd = eval(READ_LEASE, &[&self.lease_key()], &[]);
        match self.query(&cmd, "reading the lease in")? {
            redis::Value::Array(v) if v.len() == 2 => {
                let expires_in = match v[1] {
                    redis::Value::Int(ms) if ms >= 0 => Some(Duration::from_millis(ms as u64)),
                    _ => None,
                };
                Ok(Some(LeaseHolder {
                    owner: holder_of(v[0].clone()),
                    expires_in,
                }))
            }
            _ => Ok(None),
        }
    }

    fn take_lease_over(
        &mut self,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        match self.lease_script(TAKE_LEASE_OVER, owner, ttl, "taking the lease over in")? {
            redis::Value::Nil => Ok(None),
            holder => Ok(Some(holder_of(holder)).filter(|h| h != owner)),
        }
    }

    fn clear_fenced(&mut self, owner: &str) -> Result<(), StoreError> {
        let keys = [self.lease_key(), self.key.clone()];
        let cmd = eval(CLEAR_FENCED, &[&keys[0], &keys[1]], &[owner]);
        match self.query(&cmd, "removing the position from")? {
            redis::Value::Int(1) => Ok(()),
            other => Err(StoreError::Fenced {
                store: self.describe(),
                holder: holder_of(other),
            }),
        }
    }

    fn release_lease(&mut self, owner: &str) -> Result<(), StoreError> {
        let cmd = eval(RELEASE_LEASE, &[&self.lease_key()], &[owner]);
        self.query::<redis::Value>(&cmd, "releasing the lease in")
            .map(|_| ())
    }

    fn write_fenced(
        &mut self,
        pos: Id,
        expected: Option<Id>,
        owner: &str,
        ttl: Duration,
    ) -> Result<Written, StoreError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let keys = [self.lease_key(), self.key.clone()];
        let expected = expected.map(|e| e.to_string()).unwrap_or_default();
        let cmd = eval(
            WRITE_FENCED,
            &[&keys[0], &keys[1]],
            &[owner, &pos.to_string(), &ttl_ms.to_string(), &expected],
        );
        match self.query(&cmd, "writing the position to")? {
            redis::Value::Int(1) => Ok(Written::Held),
            redis::Value::Int(2) => Ok(Written::LeaseRetaken),
            other => Err(StoreError::Fenced {
                store: self.describe(),
                holder: holder_of(other),
            }),
        }
    }

    /// Runs one command on the cached connection, connecting first if needed.
    fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        doing: &'static str,
    ) -> Result<T, StoreError> {
        let conn = self.connection()?;
        cmd.query(conn).map_err(|e| {
            self.conn = None;
            self.error(doing, &e)
        })
    }

    fn connection(&mut self) -> Result<&mut redis::Connection, StoreError> {
        if self.conn.is_none() {
            let client = self.client()?;
            let timeout = self.access.timeout;
            let conn = client
                .get_connection_with_timeout(timeout)
                .and_then(|conn| {
                    conn.set_read_timeout(Some(timeout))?;
                    conn.set_write_timeout(Some(timeout))?;
                    Ok(conn)
                })
                .map_err(|e| self.error("connecting to", &e))?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("set above"))
    }

    /// Sorts a Redis error into retriable or not; the single place that decides.
    fn error(&self, doing: &'static str, e: &redis::RedisError) -> StoreError {
        use redis::ErrorKind as K;
        let store = self.describe();
        // A certificate the server or we refused: only a config change helps.
        if let Some(tls) = tls::find_rustls_error(e) {
            return StoreError::Refused {
                store,
                doing,
                cause: format!("TLS: {}", tls::describe(tls)),
            };
        }
        let cause = redact_uri(&e.to_string());
        let retriable = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || matches!(
                e.kind(),
                K::BusyLoadingError | K::TryAgain | K::ClusterDown | K::MasterDown | K::ReadOnly
            );
        if retriable {
            StoreError::Unavailable {
                store,
                doing,
                cause,
            }
        } else {
            StoreError::Refused {
                store,
                doing,
                cause,
            }
        }
    }
}

/// The position in a local file, replaced atomically on each write.
pub struct FileStore {
    path: PathBuf,
    dir: PathBuf,
    /// The lock file, while this instance holds its lock (`Store::lock`).
    lock: Option<File>,
}

/// The lock file next to a state file: the state file itself is replaced at every write, so a
/// lock on it would be on a file that is soon gone.
fn lock_path(state_file: &Path) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Makes temporary file names unique within this process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// `path`'s directory must exist: creating it would hide a typo in `state_file`.
    pub fn open(path: &Path) -> Result<FileStore, StoreError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(StoreError::File {
                    path: path.to_owned(),
                    doing: "opening",
                    cause: io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} is not a directory", dir.display()),
                    ),
                })
            }
            Err(e) => {
                return Err(StoreError::File {
                    path: path.to_owned(),
                    doing: "opening",
                    cause: io::Error::new(
                        e.kind(),
                        format!(
                            "its directory {}: {e}; create it or set repliqate.state_file",
                            dir.display()
                        ),
                    ),
                })
            }
        }
        Ok(FileStore {
            path: path.to_owned(),
            dir,
            lock: None,
        })
    }

    fn describe(&self) -> String {
        format!("state file {}", self.path.display())
    }

    fn read(&mut self) -> Result<Option<Id>, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(StoreError::File {
                    path: self.path.clone(),
                    doing: "reading",
                    cause,
                })
            }
        };
        match parse_position(&bytes) {
            Some(id) => Ok(Some(id)),
            None => Err(StoreError::Corrupt {
                store: self.describe(),
                value: show_value(&bytes),
            }),
        }
    }

    fn lock(&mut self, owner: &str) -> Result<(), StoreError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let path = lock_path(&self.path);
        let err = |doing, cause| StoreError::File {
            path: path.clone(),
            doing,
            cause,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|cause| err("opening the lock file", cause))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: self.path.clone(),
                    holder: read_holder(&mut file),
                })
            }
            Err(fs::TryLockError::Error(cause)) => return Err(err("locking", cause)),
        }
        // Who holds it, for the other side's message.
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{owner}\n").as_bytes()))
            .map_err(|cause| err("writing the lock file", cause))?;
        self.lock = Some(file);
        Ok(())
    }

    /// The instance holding the lock, found without taking it for more than a moment and
    /// without creating the lock file.
    fn lock_holder(&mut self) -> Result<Option<LeaseHolder>, StoreError> {
        let path = lock_path(&self.path);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(StoreError::File {
                    path,
                    doing: "opening the lock file",
                    cause,
                })
            }
        };
        match file.try_lock_shared() {
            // Nobody holds it; ours goes with the file.
            Ok(()) => Ok(None),
            Err(fs::TryLockError::WouldBlock) => Ok(Some(LeaseHolder {
                owner: read_holder(&mut file),
                expires_in: None,
            })),
            Err(fs::TryLockError::Error(cause)) => Err(StoreError::File {
                path,
                doing: "locking",
                cause,
            }),
        }
    }

    /// Removes the state file (and makes that durable): no position is stored.
    fn remove(&mut self) -> Result<(), StoreError> {
        let err = |doing, cause| StoreError::File {
            path: self.path.clone(),
            doing,
            cause,
        };
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(cause) => return Err(err("removing the", cause)),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|cause| err("syncing the directory of the", cause))
    }

    /// Write to a new temporary file, fsync it, rename it over the old one, fsync the
    /// directory: after a crash the file holds either the old or the new position, never a mix
    /// (rename(2) is atomic; the directory fsync makes the rename itself durable).
    fn write(&mut self, pos: Id) -> Result<(), StoreError> {
        let file_name = self
            .path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
        let tmp = self.dir.join(format!(
            ".{file_name}.tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let err = |doing, cause| StoreError::File {
            path: self.path.clone(),
            doing,
            cause,
        };
        let written = (|| {
            // 0600 from creation on, and O_EXCL so that we never write through a planted link.
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(format!("{pos}\n").as_bytes())?;
            file.sync_all()
        })();
        if let Err(cause) = written {
            let _ = fs::remove_file(&tmp);
            return Err(err("writing a temporary file next to the", cause));
        }
        if let Err(cause) = fs::rename(&tmp, &self.path) {
            let _ = fs::remove_file(&tmp);
            return Err(err("replacing the", cause));
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|cause| err("syncing the directory of the", cause))
    }
}

/// The owner a lock file names (what its holder wrote), for messages.
fn read_holder(file: &mut File) -> String {
    use std::io::Read;
    let mut text = String::new();
    let _ = file.take(256).read_to_string(&mut text);
    match text.trim() {
        "" => "an instance that has not written its name yet".to_string(),
        owner => owner.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
    fn redis_key_matches_the_old_tool() {
        assert_eq!(
            redis_key("processes", "processes", "repliqate-processes"),
            "repliqate:replication:offset:name=processes&table=processes&topic=repliqate-processes"
        );
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
    fn corrupt_value_is_shown_short_and_escaped() {
        assert_eq!(show_value(b"abc\n"), "\"abc\\n\"");
        assert!(show_value(&[b'x'; 100]).ends_with('…'));
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
