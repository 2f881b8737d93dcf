//! SHA-256 of four messages at once, for the hash repliqate puts in every message.
//!
//! One SHA-256 is a chain: each round needs the one before, so a single message keeps the CPU's
//! SHA-NI unit waiting on the latency of each `sha256rnds2`. Four independent messages fill that
//! wait: their rounds interleave. On the machine we measured, four 450-byte messages took 167 ns
//! each through [`digest4`] against 303 ns each with the `sha2` crate (a bare kernel without the
//! padding: two at once 226 ns, three 176, four 158, eight 166: the registers run out).
//! [`digest4`] takes four messages of any lengths and returns their digests, exactly as `sha2`
//! computes them; where the CPU has no SHA-NI (or is not x86_64) it is `sha2`, one message after
//! the other.
//!
//! The kernel is Intel's SHA-NI schedule (the one `sha2` uses too), written once per lane: four
//! states in the instructions' ABEF/CDGH layout, four message schedules, one block of each lane
//! per step. A lane whose message has no block left at a step is given another lane's block and
//! its result is dropped, so messages of different lengths cost the longest one's blocks; the
//! blocks of a message left alone go through the one-lane kernel.
//!
//! All of the `unsafe` is here: the SHA-NI intrinsics, on a CPU checked to have them, and their
//! 16-byte loads and stores inside 64-byte blocks, 8-word states and the round constants. The
//! tests compare every digest with `sha2`'s, at chosen lengths and at seeded random ones. Before
//! its first use the kernel must also reproduce FIPS 180-2's published digests (a known-answer
//! test, once per process); if it does not, [`digest4`] is `sha2` from then on, and [`engine`]
//! says why, for the application to log.

#![deny(unsafe_op_in_unsafe_fn)]

use sha2::{Digest, Sha256};

/// The SHA-256 digests of four messages.
pub fn digest4(messages: [&[u8]; 4]) -> [[u8; 32]; 4] {
    #[cfg(target_arch = "x86_64")]
    if matches!(engine(), Engine::ShaNi) {
        if let Some(digests) = x86_64::digest4(messages) {
            return digests;
        }
    }
    one_by_one(messages)
}

/// What [`digest4`] runs on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The four-lane SHA-NI kernel, which passed the known-answer test.
    ShaNi,
    /// `sha2`, one message after the other, and why.
    Sha2 { why: &'static str },
}

/// What [`digest4`] runs on this machine: decided once, on first use.
pub fn engine() -> Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    *ENGINE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if x86_64::available() {
            return if known_answers_pass(|m| x86_64::digest4(m).unwrap_or([[0; 32]; 4])) {
                Engine::ShaNi
            } else {
                Engine::Sha2 {
                    why: "the SHA-NI kernel gave a wrong digest in its known-answer test",
                }
            };
        }
        Engine::Sha2 {
            why: "this CPU has no SHA-NI",
        }
    })
}

/// FIPS 180-2's SHA-256 examples (and the empty message), in lanes of one, two and three
/// blocks, checked through `kernel` in two arrangements (so that each lane both ends first and
/// runs alone).
fn known_answers_pass(kernel: impl Fn([&[u8]; 4]) -> [[u8; 32]; 4]) -> bool {
    const ABC: &[u8] = b"abc";
    const TWO: &[u8] = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    const THREE: &[u8] = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    const DIGESTS: [[u8; 32]; 4] = [
        hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        hex("cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ];
    let forward = kernel([b"", ABC, TWO, THREE]);
    let backward = kernel([THREE, TWO, ABC, b""]);
    forward == DIGESTS && backward == [DIGESTS[3], DIGESTS[2], DIGESTS[1], DIGESTS[0]]
}

/// 32 bytes from 64 hex digits, at compile time.
const fn hex(text: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }
    let t = text.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(t[2 * i]) << 4 | digit(t[2 * i + 1]);
        i += 1;
    }
    out
}

/// What `digest4` is where there is no SHA-NI.
fn one_by_one(messages: [&[u8]; 4]) -> [[u8; 32]; 4] {
    messages.map(|m| Sha256::digest(m).into())
}

/// The blocks of one message, padded as SHA-256 pads it: its whole 64-byte blocks, read where
/// the message is, then one or two built with the rest, the 0x80 byte, zeros and the length.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Blocks<'a> {
    whole: &'a [[u8; 64]],
    tail: [[u8; 64]; 2],
    tail_blocks: usize,
}

impl<'a> Blocks<'a> {
    fn new(message: &'a [u8]) -> Blocks<'a> {
        let (whole, rest) = message.as_chunks::<64>();
        let mut tail = [[0u8; 64]; 2];
        let flat = tail.as_flattened_mut();
        flat[..rest.len()].copy_from_slice(rest);
        flat[rest.len()] = 0x80;
        // The length must fit after the 0x80 byte in the same block, or a second one follows.
        let tail_blocks = if rest.len() < 56 { 1 } else { 2 };
        let bits = (message.len() as u64).wrapping_mul(8);
        flat[tail_blocks * 64 - 8..tail_blocks * 64].copy_from_slice(&bits.to_be_bytes());
        Blocks {
            whole,
            tail,
            tail_blocks,
        }
    }

    fn len(&self) -> usize {
        self.whole.len() + self.tail_blocks
    }

    fn get(&self, i: usize) -> Option<&[u8; 64]> {
        match i.checked_sub(self.whole.len()) {
            None => self.whole.get(i),
            Some(t) => self.tail[..self.tail_blocks].get(t),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use core::arch::x86_64::*;

    use super::Blocks;

    static H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    static K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// Whether this CPU has what the kernel uses (SSE2 is part of every x86_64).
    pub(super) fn available() -> bool {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
    }

    /// A state in the layout `sha256rnds2` works on: (ABEF, CDGH).
    #[derive(Clone, Copy)]
    struct State(__m128i, __m128i);

    /// The digests, or None when this CPU lacks SHA-NI. Not checked against the known answers:
    /// the caller does that ([`super::engine`]).
    pub(super) fn digest4(messages: [&[u8]; 4]) -> Option<[[u8; 32]; 4]> {
        // SAFETY: the CPU has every feature `digest4_ni` is compiled for.
        available().then(|| unsafe { digest4_ni(messages) })
    }

    /// Every block of the four messages, in one function so that the states stay in registers.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn digest4_ni(messages: [&[u8]; 4]) -> [[u8; 32]; 4] {
        let blocks = messages.map(Blocks::new);
        let longest = blocks.iter().map(Blocks::len).max().unwrap_or(0);
        let mut states = [initial(); 4];
        for i in 0..longest {
            let lanes = blocks.each_ref().map(|b| b.get(i));
            // A lane whose message has ended takes another lane's block; its state is then left
            // as it was.
            let Some(&filler) = lanes.iter().flatten().next() else {
                break;
            };
            if lanes.iter().flatten().count() == 1 {
                // One message left: the rest of it goes alone (four lanes cost more).
                let j = lanes.iter().position(Option::is_some).unwrap_or(0);
                for k in i..blocks[j].len() {
                    if let Some(block) = blocks[j].get(k) {
                        states[j] = compress1(states[j], block);
                    }
                }
                break;
            }
            let next = compress4(states, lanes.map(|b| b.unwrap_or(filler)));
            for (j, lane) in lanes.iter().enumerate() {
                if lane.is_some() {
                    states[j] = next[j];
                }
            }
        }
        states.map(|s| digest(s))
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn initial() -> State {
        // SAFETY: H0 is eight u32, two 16-byte loads.
        let (dcba, efgh) = unsafe {
            let p = H0.as_ptr().cast::<__m128i>();
            (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
        };
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        State(
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn digest(s: State) -> [u8; 32] {
        let feba = _mm_shuffle_epi32(s.0, 0x1B);
        let dchg = _mm_shuffle_epi32(s.1, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let mut words = [0u32; 8];
        // SAFETY: two 16-byte stores into eight u32.
        unsafe {
            let p = words.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(p, dcba);
            _mm_storeu_si128(p.add(1), hgef);
        }
        let mut out = [0u8; 32];
        for (o, w) in out.as_chunks_mut::<4>().0.iter_mut().zip(words) {
            *o = w.to_be_bytes();
        }
        out
    }

    /// The block's sixteen words, big-endian to the lanes' order.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn load(block: &[u8; 64]) -> [__m128i; 4] {
        let swap = _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        );
        let p = block.as_ptr().cast::<__m128i>();
        // SAFETY: four 16-byte loads inside the 64-byte block (unaligned loads).
        unsafe {
            [
                _mm_shuffle_epi8(_mm_loadu_si128(p), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), swap),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), swap),
            ]
        }
    }

    /// Round constants 4r..4r+4.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn k(r: usize) -> __m128i {
        let k = &K[4 * r..4 * r + 4];
        // SAFETY: four u32, one 16-byte load.
        unsafe { _mm_loadu_si128(k.as_ptr().cast()) }
    }

    /// Four rounds of one lane, and the schedule's next four words before them from round 4.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn rounds(s: &mut State, w: &mut [__m128i; 4], r: usize, k: __m128i) {
        let i = r % 4;
        if r >= 4 {
            let (w0, w1, w2, w3) = (w[i], w[(i + 1) % 4], w[(i + 2) % 4], w[(i + 3) % 4]);
            let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4));
            w[i] = _mm_sha256msg2_epu32(t, w3);
        }
        let t = _mm_add_epi32(w[i], k);
        s.1 = _mm_sha256rnds2_epu32(s.1, s.0, t);
        s.0 = _mm_sha256rnds2_epu32(s.0, s.1, _mm_shuffle_epi32(t, 0x0E));
    }

    /// One block of each of four lanes. The lanes' round chains are independent, so one lane's
    /// rounds run while another's wait for their latency.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn compress4(states: [State; 4], blocks: [&[u8; 64]; 4]) -> [State; 4] {
        let mut s = states;
        let mut w = blocks.map(|b| load(b));
        for r in 0..16 {
            let k = k(r);
            for j in 0..4 {
                rounds(&mut s[j], &mut w[j], r, k);
            }
        }
        for j in 0..4 {
            s[j] = State(
                _mm_add_epi32(s[j].0, states[j].0),
                _mm_add_epi32(s[j].1, states[j].1),
            );
        }
        s
    }

    /// One block of one lane.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    #[inline]
    fn compress1(state: State, block: &[u8; 64]) -> State {
        let mut s = state;
        let mut w = load(block);
        for r in 0..16 {
            rounds(&mut s, &mut w, r, k(r));
        }
        State(_mm_add_epi32(s.0, state.0), _mm_add_epi32(s.1, state.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(m: &[u8]) -> [u8; 32] {
        Sha256::digest(m).into()
    }

    /// Bytes that differ from message to message and position to position.
    fn message(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn check(lengths: [usize; 4], seed: u32) {
        let ms: Vec<Vec<u8>> = (0..4u32)
            .map(|j| message(seed * 4 + j, lengths[j as usize]))
            .collect();
        let got = digest4([&ms[0], &ms[1], &ms[2], &ms[3]]);
        for j in 0..4 {
            assert_eq!(got[j], reference(&ms[j]), "lane {j} of lengths {lengths:?}");
        }
    }

    #[test]
    fn four_equal_lengths_around_every_padding_boundary() {
        for len in 0..=300 {
            check([len; 4], len as u32);
        }
    }

    #[test]
    fn four_different_lengths() {
        // Every lane ends first, last, alone or with others; tails of one and of two blocks.
        let lengths = [
            0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 450, 511, 1000, 4096, 10_000,
        ];
        let mut seed = 0;
        for &a in &lengths {
            for &b in &lengths {
                for (c, d) in [(a, b), (b, a), (0, 450), (450, 0), (10_000, 1)] {
                    check([a, b, c, d], seed);
                    seed += 1;
                }
            }
        }
    }

    #[test]
    fn the_same_message_in_every_lane_and_a_lane_that_changes_one_byte() {
        let m = message(7, 450);
        let mut n = m.clone();
        n[449] ^= 1;
        let got = digest4([&m, &m, &n, &m]);
        assert_eq!(got[0], reference(&m));
        assert_eq!(got[1], got[0]);
        assert_eq!(got[2], reference(&n));
        assert_ne!(got[2], got[0]);
        assert_eq!(got[3], got[0]);
    }

    /// Seeded random lengths, the lanes unequal: mostly short (where the lanes end at different
    /// steps), some of many blocks, and lanes up to 1 MiB.
    #[test]
    fn random_lengths_up_to_a_mebibyte_agree_with_sha2() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..400u32 {
            let lengths = [0; 4].map(|_| match next() % 100 {
                0 if round % 50 == 0 => (next() % (1 << 20)) as usize + 1,
                0..=79 => (next() % 600) as usize,
                _ => (next() % 20_000) as usize,
            });
            check(lengths, round + 1000);
        }
        check([1 << 20, 0, 1, (1 << 20) - 1], 7);
    }

    #[test]
    fn the_known_answers_hold_and_catch_a_wrong_kernel() {
        assert!(known_answers_pass(one_by_one));
        // A kernel wrong in one lane of one arrangement, or wrong for one length only.
        assert!(!known_answers_pass(|m| {
            let mut d = one_by_one(m);
            d[3][0] ^= 1;
            d
        }));
        assert!(!known_answers_pass(|m| {
            let mut d = one_by_one(m);
            for (lane, message) in m.iter().enumerate() {
                if message.len() == 3 {
                    d[lane][31] ^= 0x80;
                }
            }
            d
        }));
        #[cfg(target_arch = "x86_64")]
        if x86_64::available() {
            assert_eq!(engine(), Engine::ShaNi);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_kernel_agrees_with_the_fallback_where_the_cpu_has_sha_ni() {
        // The tests above go through whichever path the CPU allows; on one without SHA-NI they
        // test the fallback, and this one says so.
        let ms: Vec<Vec<u8>> = (0..4u32)
            .map(|j| message(j, 100 + 150 * j as usize))
            .collect();
        let lanes = [&ms[0][..], &ms[1], &ms[2], &ms[3]];
        match x86_64::digest4(lanes) {
            Some(digests) => assert_eq!(digests, one_by_one(lanes)),
            None => eprintln!("this CPU has no SHA-NI: only the sha2 fallback was tested here"),
        }
    }
}
