//! Java's `.properties` files and Kafka's `sasl.jaas.config` values, read exactly as Apache
//! Kafka's Java client reads them.
//!
//! Users paste a provider's Java client config as it is (Confluent Cloud's `client.properties`
//! and its `sasl.jaas.config` line): what Kafka accepts must mean the same here, and what it
//! refuses must be refused. Both readers are therefore ports of the real code, quirks included:
//! `java.util.Properties.load(Reader)` (JDK 17), and Kafka's `JaasConfig` over
//! `java.io.StreamTokenizer` (the same from Kafka 2.0 to 4.4). `tests/java/JaasProbe.java` runs
//! the Java classes on the same texts, for comparison.
//!
//! Where Java's result cannot be a Rust value, we differ on purpose:
//! - `\uXXXX` escapes that leave half of a UTF-16 surrogate pair: Java keeps the broken string,
//!   we refuse it (a Rust `String` cannot hold it).
//! - a JAAS option whose name Java reads as `null` (a number such as `1=x`, or `==x`): Java
//!   stores it under the key `null`, where no login module looks; we leave it out.
//!
//! Error messages never quote an option value or a property value: they may be passwords.

mod jaas;
mod properties;

pub use jaas::{parse_jaas, JaasEntry, JaasError};
pub use properties::{java_trim, parse_properties, PropertiesError, Property};

#[cfg(test)]
mod tests;
