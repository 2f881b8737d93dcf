//! repliqate: replicates new rows of append-only SQL tables into Kafka.
//!
//! The binary (`main.rs`) is a thin shell over these modules; ARCHITECTURE.md has the code map
//! and the invariants each module keeps.

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("repliqate needs at least one source feature: sqlite, postgres or mysql");

// The static musl build's memcpy and memmove (see Cargo.toml): linked into every binary that
// links this library, the daemon's and the tests' alike.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
extern crate fastcopy;

pub mod backoff;
pub mod cli;
pub mod config;
pub mod event;
pub mod javaprops;
pub mod kafka;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod redact;
pub mod replicator;
pub mod secret;
pub mod source;
pub mod status;
pub mod store;
pub mod supervisor;
pub mod tls;
pub mod value;
