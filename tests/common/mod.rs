//! Shared support for the integration tests. Each test binary includes what it needs.
#![allow(dead_code)]

pub mod broker;
pub mod e2e;
pub mod faults;
pub mod kafka;
pub mod proxy;
