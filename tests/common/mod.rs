//! Shared support for the integration tests. Each test binary includes what it needs.
#![allow(dead_code)]

pub mod kafka;
pub mod proxy;
pub mod tansu;
