//! The Redis store: the position under the old tool's key, and the job's lease beside it.
//!
//! Connects lazily (a client built per connection from the TLS settings and the password file
//! as they are then), runs each read and write as one command or one Lua script (the scripts
//! are the `*.lua` files next to this one: the contract with the Redis keys), and sorts every
//! Redis error into retriable or not. No type of the `redis` crate leaves this file.

use std::time::Duration;

use super::types::{parse_position, show_value, Lease, LeaseHolder, StoreError, Written};
use crate::redact::redact_uri;
use crate::secret::Secret;
use crate::tls::{self, TlsSettings};
use crate::value::Id;

/// The Redis key of a job's position, exactly as the old tool wrote it.
pub fn redis_key(name: &str, table: &str, topic: &str) -> String {
    format!("repliqate:replication:offset:name={name}&table={table}&topic={topic}")
}

/// The Redis key of a job's lease (next to its position key; the old tool had none).
pub fn lease_key(name: &str, table: &str, topic: &str) -> String {
    format!("repliqate:replication:lease:name={name}&table={table}&topic={topic}")
}

/// Renews the lease if ours (1), takes it if free (2), else returns the holder.
const HOLD_LEASE: &str = include_str!("hold_lease.lua");

/// Writes the position only for the lease holder. A lease nobody holds lapsed: another instance
/// may have held it and moved the position meanwhile, so it is taken here only if the position
/// is still the one the writer last saw (ARGV[4], empty for none), or is missing with the lease
/// (a Redis that came back empty: nobody wrote since, as every writer writes the position, and
/// the writer's acknowledged position is what it would restore anyway); otherwise the caller
/// must read it again before writing (else it could move the position backwards).
const WRITE_FENCED: &str = include_str!("write_fenced.lua");

/// The lease's holder and its remaining time, or 0 when nobody holds it.
const READ_LEASE: &str = include_str!("read_lease.lua");

/// Takes the lease whoever holds it; returns the previous holder (nil if none).
const TAKE_LEASE_OVER: &str = include_str!("take_lease_over.lua");

/// Deletes the position only for the lease holder (as WRITE_FENCED writes it); else returns the
/// holder.
const CLEAR_FENCED: &str = include_str!("clear_fenced.lua");

const RELEASE_LEASE: &str = include_str!("release_lease.lua");

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
pub(super) struct RedisAccess {
    pub(super) timeout: Duration,
    pub(super) tls: Option<TlsSettings>,
    pub(super) password: Option<Secret>,
}

impl RedisStore {
    pub(super) fn open(
        addr: &str,
        key: &str,
        access: RedisAccess,
    ) -> Result<RedisStore, StoreError> {
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
        let material = settings.for_webpki_driver("redis").map_err(tls_error)?;
        let client_tls = match material.identity {
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
            root_cert: material.ca.map(|c| pem_certs(&c)),
            client_tls,
        };
        redis::Client::build_with_tls(info, certificates).map_err(|e| refused(e.to_string()))
    }

    pub(super) fn describe(&self) -> String {
        format!("redis {} key {}", self.shown_addr, self.key)
    }

    pub(super) fn read(&mut self) -> Result<Option<Id>, StoreError> {
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

    pub(super) fn hold_lease(&mut self, owner: &str, ttl: Duration) -> Result<Lease, StoreError> {
        match self.lease_script(HOLD_LEASE, owner, ttl, "taking the lease in")? {
            redis::Value::Int(1) => Ok(Lease::Held),
            redis::Value::Int(2) => Ok(Lease::Acquired),
            other => Ok(Lease::HeldBy(holder_of(other))),
        }
    }

    pub(super) fn lease_holder(&mut self) -> Result<Option<LeaseHolder>, StoreError> {
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

    pub(super) fn take_lease_over(
        &mut self,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        match self.lease_script(TAKE_LEASE_OVER, owner, ttl, "taking the lease over in")? {
            redis::Value::Nil => Ok(None),
            holder => Ok(Some(holder_of(holder)).filter(|h| h != owner)),
        }
    }

    pub(super) fn clear_fenced(&mut self, owner: &str) -> Result<(), StoreError> {
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

    pub(super) fn release_lease(&mut self, owner: &str) -> Result<(), StoreError> {
        let cmd = eval(RELEASE_LEASE, &[&self.lease_key()], &[owner]);
        self.query::<redis::Value>(&cmd, "releasing the lease in")
            .map(|_| ())
    }

    pub(super) fn write_fenced(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_key_matches_the_old_tool() {
        assert_eq!(
            redis_key("processes", "processes", "repliqate-processes"),
            "repliqate:replication:offset:name=processes&table=processes&topic=repliqate-processes"
        );
    }
}
