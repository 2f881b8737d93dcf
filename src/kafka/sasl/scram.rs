//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), client side, as Kafka speaks them:
//! no channel binding (`n,,`), and no SASLprep of the user name or password (Kafka does none;
//! its own clients send the password's UTF-8 bytes as they are).
//!
//! Written on ring's PBKDF2, HMAC and digests, which rustls already brings: the exchange is
//! three messages and ~100 lines, and the crates that implement it either pin an old ring or
//! bring a general SASL framework with them.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

/// Fewer iterations than this make the stored credential cheap to attack; Kafka's minimum is
/// 4096 too, so a server asking for fewer is not a Kafka broker we should trust.
const MIN_ITERATIONS: u32 = 4096;
/// More than this is a server making us burn CPU (Kafka's maximum is 16384).
const MAX_ITERATIONS: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        }
    }

    fn len(self) -> usize {
        self.digest().output_len()
    }
}

/// One SCRAM exchange, from the client-first message to the check of the server's signature.
/// Holds the password only until the proof is computed. Not `Debug`: it holds secrets.
pub struct Scram {
    hash: ScramHash,
    password: String,
    client_first_bare: String,
    client_nonce: String,
    state: State,
}

enum State {
    /// client-first sent; waiting for server-first.
    First,
    /// client-final sent; waiting for server-final, which must carry this signature.
    Final {
        server_key: hmac::Key,
        auth_message: String,
    },
    Done,
}

impl Scram {
    /// Starts an exchange: the client-first message, and the state to answer the server with.
    pub fn start(
        hash: ScramHash,
        username: &str,
        password: String,
        random: &dyn SecureRandom,
    ) -> Result<(Scram, Vec<u8>), String> {
        let mut nonce = [0u8; 24];
        random
            .fill(&mut nonce)
            .map_err(|_| "no random numbers for the SCRAM nonce".to_string())?;
        Ok(Scram::with_nonce(
            hash,
            username,
            password,
            B64.encode(nonce),
        ))
    }

    fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: String,
        client_nonce: String,
    ) -> (Scram, Vec<u8>) {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={name},r={client_nonce}");
        let first = format!("n,,{client_first_bare}").into_bytes();
        let scram = Scram {
            hash,
            password,
            client_first_bare,
            client_nonce,
            state: State::First,
        };
        (scram, first)
    }

    /// Answers a server message: `Some(client-final)` after server-first, `None` once
    /// server-final has proved that the server knows the password.
    pub fn respond(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let server = std::str::from_utf8(server)
            .map_err(|_| "the server's SCRAM message is not UTF-8".to_string())?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => self.client_final(server).map(Some),
            State::Final {
                server_key,
                auth_message,
            } => {
                if let Some(e) = attribute(server, 'e') {
                    return Err(format!("the server refused the proof: {e}"));
                }
                let signature = attribute(server, 'v')
                    .and_then(|v| B64.decode(v).ok())
                    .ok_or("the server's final SCRAM message has no signature")?;
                // Constant time: a forged signature must not be found byte by byte.
                hmac::verify(&server_key, auth_message.as_bytes(), &signature).map_err(|_| {
                    "the server's SCRAM signature is wrong: it does not know the password \
                     (a man in the middle?)"
                        .to_string()
                })?;
                Ok(None)
            }
            State::Done => Err("the server sent more after the SCRAM exchange ended".into()),
        }
    }

    fn client_final(&mut self, server_first: &str) -> Result<Vec<u8>, String> {
        if let Some(e) = attribute(server_first, 'e') {
            return Err(format!("the server refused: {e}"));
        }
        if server_first.starts_with("m=") {
            return Err("the server asks for a SCRAM extension we do not know".into());
        }
        let nonce = attribute(server_first, 'r').ok_or("server-first has no nonce")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() <= self.client_nonce.len() {
            return Err("the server's nonce does not extend ours".into());
        }
        let salt = attribute(server_first, 's')
            .and_then(|s| B64.decode(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or("server-first has no valid salt")?;
        let iterations: u32 = attribute(server_first, 'i')
            .and_then(|i| i.parse().ok())
            .ok_or("server-first has no valid iteration count")?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "the server asks for {iterations} iterations; accepted: {MIN_ITERATIONS} to \
                 {MAX_ITERATIONS}"
            ));
        }
        let hash = self.hash;
        let mut salted = vec![0u8; hash.len()];
        pbkdf2::derive(
            hash.pbkdf2(),
            std::num::NonZeroU32::new(iterations).expect("checked above"),
            &salt,
            std::mem::take(&mut self.password).as_bytes(),
            &mut salted,
        );
        let salted = hmac::Key::new(hash.hmac(), &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(hash.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(
            &hmac::Key::new(hash.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        self.state = State::Final {
            server_key: hmac::Key::new(hash.hmac(), server_key.as_ref()),
            auth_message,
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }
}

/// The value of attribute `name` (`name=value`) in a SCRAM message.
fn attribute(message: &str, name: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(name) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn rfc7677_example() {
        let (mut scram, first) = Scram::with_nonce(
            ScramHash::Sha256,
            "user",
            "pencil".into(),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = scram.respond(server_first.as_bytes()).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_final = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        assert_eq!(scram.respond(server_final).unwrap(), None);
        assert!(
            scram.respond(server_final).is_err(),
            "nothing after the end"
        );
    }

    fn after_server_first(hash: ScramHash) -> Scram {
        let (mut scram, _) = Scram::with_nonce(hash, "user", "pencil".into(), "abc".into());
        scram
            .respond(b"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap()
            .unwrap();
        scram
    }

    #[test]
    fn a_wrong_server_signature_fails() {
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            let mut scram = after_server_first(hash);
            let forged = format!("v={}", B64.encode(vec![0u8; hash.len()]));
            let e = scram.respond(forged.as_bytes()).unwrap_err();
            assert!(e.contains("signature is wrong"), "{e}");
        }
        let mut scram = after_server_first(ScramHash::Sha512);
        let e = scram.respond(b"e=invalid-proof").unwrap_err();
        assert!(e.contains("invalid-proof"), "{e}");
    }

    #[test]
    fn server_first_is_checked() {
        let cases = [
            ("r=xyz123,s=c2FsdA==,i=4096", "does not extend ours"),
            ("r=abc,s=c2FsdA==,i=4096", "does not extend ours"),
            ("r=abcd,i=4096", "salt"),
            ("r=abcd,s=c2FsdA==,i=1024", "1024 iterations"),
            ("r=abcd,s=c2FsdA==,i=99999999", "iterations"),
            ("r=abcd,s=c2FsdA==", "iteration count"),
            ("e=unknown-user", "unknown-user"),
            ("m=ext,r=abcd,s=c2FsdA==,i=4096", "extension"),
        ];
        for (server_first, expected) in cases {
            let (mut scram, _) =
                Scram::with_nonce(ScramHash::Sha256, "u", "p".into(), "abc".into());
            let e = scram.respond(server_first.as_bytes()).unwrap_err();
            assert!(e.contains(expected), "{server_first}: {e}");
        }
    }

    #[test]
    fn user_names_are_escaped() {
        let (_, first) = Scram::with_nonce(ScramHash::Sha512, "a=b,c", "p".into(), "n".into());
        assert_eq!(first, b"n,,n=a=3Db=2Cc,r=n");
    }
}
