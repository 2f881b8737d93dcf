//! The message's hash: the SHA-256 digest of a row's canonical text (one at a time, or four at
//! once through `crates/sha256x4`), its lowercase hex, and the `"hash"` field at the message's
//! end, with the placeholder that `fill_hash` later writes the digest over.
//!
//! It knows bytes and digests only, not rows: what the canonical text is, is the encoder's
//! (`mod.rs`) and `RowHasher`'s (`canonical.rs`) business.

use sha2::{Digest, Sha256};

/// What stands for the hash in a message from [`MessageEncoder::encode_unhashed`] until
/// [`fill_hash`] writes it: not hex, so that a message published without its hash would be
/// plainly wrong.
///
/// [`MessageEncoder::encode_unhashed`]: super::MessageEncoder::encode_unhashed
pub(super) const UNHASHED: [u8; 64] = [b'?'; 64];

/// The SHA-256 digests of four rows' canonical texts (from
/// [`MessageEncoder::encode_unhashed`]), computed together: four independent hashes keep the
/// CPU's SHA units busy where one leaves them waiting on each round (`crates/sha256x4`).
///
/// [`MessageEncoder::encode_unhashed`]: super::MessageEncoder::encode_unhashed
pub fn canonical_digests(texts: [&[u8]; 4]) -> [[u8; 32]; 4] {
    sha256x4::digest4(texts)
}

/// The SHA-256 digest of one row's canonical text (from [`MessageEncoder::encode_unhashed`]).
///
/// [`MessageEncoder::encode_unhashed`]: super::MessageEncoder::encode_unhashed
pub fn canonical_digest(text: &[u8]) -> [u8; 32] {
    Sha256::digest(text).into()
}

/// Writes the hash of `digest` into `message`, a value from [`MessageEncoder::encode_unhashed`]
/// whose hash is still the placeholder. False (and nothing written) when `message` is not such a
/// value.
///
/// [`MessageEncoder::encode_unhashed`]: super::MessageEncoder::encode_unhashed
pub fn fill_hash(message: &mut [u8], digest: &[u8; 32]) -> bool {
    let Some(tail) = message
        .len()
        .checked_sub(78)
        .and_then(|at| message.get_mut(at..))
    else {
        return false;
    };
    if tail != message_tail(&UNHASHED) {
        return false;
    }
    tail[12..76].copy_from_slice(&hex(digest));
    true
}

/// `}, "hash": "<hex>"}`: the end of a message whose data's last value is written.
pub(super) fn message_tail(hex: &[u8; 64]) -> [u8; 78] {
    let mut tail = [0u8; 78];
    tail[..12].copy_from_slice(b"}, \"hash\": \"");
    tail[12..76].copy_from_slice(hex);
    tail[76..].copy_from_slice(b"\"}");
    tail
}

/// The digest in lowercase hex, eight digits at a time.
pub(super) fn hex(digest: &[u8; 32]) -> [u8; 64] {
    let mut hex = [0u8; 64];
    for (eight, &four) in hex
        .as_chunks_mut::<8>()
        .0
        .iter_mut()
        .zip(digest.as_chunks::<4>().0)
    {
        *eight = hex8(four);
    }
    hex
}

/// Four bytes as eight lowercase hex digits, computed in one word rather than looked up digit by
/// digit (every message carries a 64-digit hash).
#[inline]
fn hex8(bytes: [u8; 4]) -> [u8; 8] {
    const LOW_NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let x = u64::from(u32::from_be_bytes(bytes));
    // Each nibble into a byte of its own, the first nibble in the most significant byte.
    let x = ((x & 0xffff_0000) << 16) | (x & 0xffff);
    let x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    let x = ((x << 4) & 0x0f00_0f00_0f00_0f00 | x) & LOW_NIBBLES;
    // A byte of 10..=15 is a letter: 6 more carries it into bit 4 (no byte carries into the next).
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_match_the_formatter_for_every_byte_in_every_position() {
        for (b, fill) in (0..=255u8).flat_map(|b| [0x00, 0x5a, 0xff].map(|fill| (b, fill))) {
            for at in 0..32 {
                let mut digest = [fill; 32];
                digest[at] = b;
                let out = hex(&digest);
                let expected: String = digest.iter().map(|d| format!("{d:02x}")).collect();
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    expected,
                    "byte {b:#04x} at {at} among {fill:#04x}"
                );
            }
        }
    }
}
