//! The Kafka wire format's small pieces that we write (and, for our own record batches, read)
//! without the codec: varints and length-prefixed bytes.
//!
//! Records use zig-zag varints for every length and delta; flexible request versions use
//! unsigned varints for compact lengths. Both are 7 bits per byte, low bits first.

use bytes::BufMut;

/// Unsigned varint: the compact lengths of flexible request versions, and the base of `put_varint`.
pub(super) fn put_uvarint(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Zig-zag varint, as Kafka's records use for every length and delta.
pub(super) fn put_varint(buf: &mut impl BufMut, v: i64) {
    put_uvarint(buf, zigzag(v));
}

/// How many bytes `put_varint(v)` writes.
pub(super) fn varint_len(v: i64) -> usize {
    (64 - zigzag(v).leading_zeros() as usize).max(1).div_ceil(7)
}

/// Writes `v` as a zig-zag varint over all of `slot`, which must be `varint_len(v)` bytes: the
/// length of something written after the room left for it.
pub(super) fn put_varint_in(slot: &mut [u8], v: i64) {
    debug_assert_eq!(slot.len(), varint_len(v));
    let mut z = zigzag(v);
    let last = slot.len() - 1;
    for (i, byte) in slot.iter_mut().enumerate() {
        *byte = if i == last { z as u8 } else { (z as u8) | 0x80 };
        z >>= 7;
    }
}

/// Reads a zig-zag varint from the front of `buf`, advancing it; None when `buf` ends inside
/// one or it is longer than ten bytes.
pub(super) fn get_varint(buf: &mut &[u8]) -> Option<i64> {
    let mut z = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Nullable bytes with a zig-zag varint length (-1 for null), as in a record.
pub(super) fn put_bytes(buf: &mut impl BufMut, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
        None => put_varint(buf, -1),
    }
}

/// How many bytes `put_bytes(b)` writes.
pub(super) fn bytes_len(b: Option<&[u8]>) -> usize {
    b.map_or(varint_len(-1), |b| varint_len(b.len() as i64) + b.len())
}

/// An array count or a bytes length in a request: i32 before the flexible versions, unsigned
/// varint of n + 1 in them.
pub(super) fn put_len(buf: &mut impl BufMut, flexible: bool, n: usize) {
    if flexible {
        put_uvarint(buf, n as u64 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_their_lengths_match_the_encoding() {
        for v in [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            i64::from(i32::MAX),
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
            let mut slot = vec![0; varint_len(v)];
            put_varint_in(&mut slot, v);
            assert_eq!(slot, buf, "{v} written in place");
            let mut read: &[u8] = &buf;
            assert_eq!(get_varint(&mut read), Some(v));
            assert!(read.is_empty());
            assert_eq!(
                get_varint(&mut &buf[..buf.len() - 1]),
                None,
                "{v} cut short"
            );
        }
        assert_eq!(get_varint(&mut &[0xff; 11][..]), None);
    }
}
