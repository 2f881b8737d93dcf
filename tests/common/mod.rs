//! The fixture layer of the integration tests; each test binary declares `mod common;` and uses
//! what it needs (hence `dead_code` allowed here).
//!
//! - `env`: the stack's addresses from the environment, `unique` names, `TempDir`, `stack_job`.
//! - `job`: `JobConfig`, a job's config file as a typed value written through serde.
//! - `daemon`: the `repliqate` binary: `run` (one-shot, output captured) and `Daemon` (log file).
//! - `db`: `Db`, `Conn` and `TableGuard` for SQLite, PostgreSQL and MariaDB.
//! - `position`: the job's position in Redis, read and written with the redis crate.
//! - `kafka`: topics created and read back with librdkafka; the broker's own log dump.
//! - `notify`: `NotifySocket`, a stand-in for systemd's notify socket (`NOTIFY_SOCKET`).
//! - `stack`: `scripts/stack` run from the tests (services stopped and started again).
//! - `broker`, `proxy`: a private Kafka broker behind a fault-injecting proxy.
//! - `secure`: the secured listeners, certificates made at test time, a TLS server of our own,
//!   unsigned JWTs, and kcat to read topics back over a secured listener.
//! - `values`: expected values computed independently, and the python3 message check.
//! - `faults`: the fault suites' writer thread, checks and job.
//! - `source`, `conformance`: the source tests' helpers, and the tests every source passes,
//!   written once and run per backend (`source_conformance_tests!`).
#![allow(dead_code)]

pub mod broker;
pub mod conformance;
pub mod daemon;
pub mod db;
pub mod endpoint;
pub mod env;
pub mod faults;
pub mod job;
pub mod kafka;
pub mod notify;
pub mod position;
pub mod proxy;
pub mod secure;
pub mod source;
pub mod stack;
pub mod values;
