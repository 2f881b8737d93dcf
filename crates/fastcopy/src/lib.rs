//! `memcpy` and `memmove` for the static musl build.
//!
//! musl's x86_64 `memcpy` is `rep movsq` between two byte loops. `rep movs` has a start-up cost
//! of tens of cycles, and on the virtual machines we measured it on it took half of the release
//! binary's CPU time: the daemon makes many copies of a few to a few hundred bytes (column
//! values, JSON pieces, each message into its record batch). glibc picks SIMD code by size and
//! CPU. These functions do what glibc's small-size paths do, with SSE2 (part of every x86_64):
//! one or two overlapping loads and stores up to 64 bytes, and a loop of 64-byte blocks above.
//!
//! The binary links them under the C names (`export_symbols`), in place of musl's, so that Rust
//! code and the C code we link (SQLite) both use them. Both tolerate overlap in either direction
//! (memcpy is memmove here, as its check costs one comparison). Every load of a block happens
//! before its stores, and the blocks that could be overwritten are read first.
//!
//! `no_builtins` keeps LLVM from turning these loops back into calls to `memcpy`.
//!
//! Tested against the standard library's `copy_from_slice` and `copy_within`: every length up
//! to 600 and more at chosen alignments, and seeded random lengths up to 64 KiB at every
//! alignment, with overlap both ways. `make release` checks that the binary's `memcpy` and
//! `memmove` are these (no `rep movs`, no musl `__memcpy_fwd`).

#![no_std]
#![no_builtins]

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};

    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m128i {
        _mm_loadu_si128(p.cast())
    }

    #[inline(always)]
    unsafe fn store(p: *mut u8, v: __m128i) {
        _mm_storeu_si128(p.cast(), v)
    }

    /// 64 bytes, read as four 16-byte loads.
    #[derive(Clone, Copy)]
    struct Block(__m128i, __m128i, __m128i, __m128i);

    #[inline(always)]
    unsafe fn load_block(p: *const u8) -> Block {
        Block(load(p), load(p.add(16)), load(p.add(32)), load(p.add(48)))
    }

    #[inline(always)]
    unsafe fn store_block(p: *mut u8, b: Block) {
        store(p, b.0);
        store(p.add(16), b.1);
        store(p.add(32), b.2);
        store(p.add(48), b.3);
    }

    /// Copies `n` bytes from `src` to `dst`; the regions may overlap.
    ///
    /// # Safety
    /// As C's `memmove`: `src` readable and `dst` writable for `n` bytes.
    #[inline(always)]
    pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
        if n <= 64 {
            return copy_small(dst, src, n);
        }
        let forward = (dst as usize).wrapping_sub(src as usize) >= n;
        if forward {
            // No overlap, or `dst` below `src`: a store at `dst + i` only reaches source bytes
            // already read. The last block is read first and written last.
            let last = load_block(src.add(n - 64));
            let mut i = 0;
            while i + 64 < n {
                store_block(dst.add(i), load_block(src.add(i)));
                i += 64;
            }
            store_block(dst.add(n - 64), last);
        } else {
            // `dst` above `src`, overlapping: from the end down; the first block is read first
            // and written last.
            let first = load_block(src);
            let mut end = n;
            while end > 64 {
                let start = end - 64;
                store_block(dst.add(start), load_block(src.add(start)));
                end = start;
            }
            store_block(dst, first);
        }
    }

    /// Up to 64 bytes: every load before any store, so overlap is harmless.
    #[inline(always)]
    unsafe fn copy_small(dst: *mut u8, src: *const u8, n: usize) {
        match n {
            0 => {}
            1..=3 => {
                // First, middle and last byte cover 1, 2 or 3 bytes.
                let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
                *dst = a;
                *dst.add(n / 2) = b;
                *dst.add(n - 1) = c;
            }
            4..=7 => {
                let a = src.cast::<u32>().read_unaligned();
                let b = src.add(n - 4).cast::<u32>().read_unaligned();
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            }
            8..=15 => {
                let a = src.cast::<u64>().read_unaligned();
                let b = src.add(n - 8).cast::<u64>().read_unaligned();
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            }
            16..=32 => {
                let (a, b) = (load(src), load(src.add(n - 16)));
                store(dst, a);
                store(dst.add(n - 16), b);
            }
            _ => {
                let (a, b) = (load(src), load(src.add(16)));
                let (c, d) = (load(src.add(n - 32)), load(src.add(n - 16)));
                store(dst, a);
                store(dst.add(16), b);
                store(dst.add(n - 32), c);
                store(dst.add(n - 16), d);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86_64::copy;

/// C's `memmove`. Exported under that name with `export_symbols`.
///
/// # Safety
/// As C's `memmove`.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(feature = "export_symbols", no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    copy(dst, src, n);
    dst
}

/// C's `memcpy` (overlap tolerated). Exported under that name with `export_symbols`.
///
/// # Safety
/// As C's `memcpy`.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(feature = "export_symbols", no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    copy(dst, src, n);
    dst
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    extern crate std;
    use std::vec::Vec;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn copies_every_length_at_every_alignment() {
        let src = pattern(2048 + 64, 7);
        for len in (0..=600).chain([1023, 1024, 1025, 2047, 2048]) {
            for (s, d) in [(0, 0), (1, 0), (0, 3), (5, 11), (15, 16), (31, 1), (63, 17)] {
                let mut dst = std::vec![0xAAu8; len + 128];
                unsafe { super::memcpy(dst.as_mut_ptr().add(d), src.as_ptr().add(s), len) };
                assert_eq!(
                    &dst[d..d + len],
                    &src[s..s + len],
                    "len {len}, src+{s}, dst+{d}"
                );
                assert!(dst[..d].iter().all(|&b| b == 0xAA), "before, len {len}");
                assert!(
                    dst[d + len..].iter().all(|&b| b == 0xAA),
                    "after, len {len}"
                );
            }
        }
    }

    /// xorshift64: seeded, so that a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        /// A length up to 64 KiB, mostly short (as the daemon's copies are), at times long.
        fn length(&mut self) -> usize {
            match self.below(100) {
                0..=59 => self.below(257),
                60..=89 => self.below(4097),
                _ => self.below(65_537),
            }
        }
    }

    const KIB_64: usize = 64 * 1024;

    #[test]
    fn random_copies_agree_with_copy_from_slice() {
        let mut rng = Rng(0x243f_6a88_85a3_08d3);
        let src = pattern(KIB_64 + 64, 11);
        let mut dst = std::vec![0u8; KIB_64 + 192];
        for round in 0..3000 {
            let (len, s, d) = (rng.length(), rng.below(64), 64 + rng.below(64));
            dst.fill(0xAA);
            let mut expected = dst.clone();
            expected[d..d + len].copy_from_slice(&src[s..s + len]);
            unsafe { super::memcpy(dst.as_mut_ptr().add(d), src.as_ptr().add(s), len) };
            assert!(
                dst == expected,
                "round {round}: len {len}, src+{s}, dst+{d}"
            );
        }
    }

    #[test]
    fn random_overlapping_moves_agree_with_copy_within() {
        let mut rng = Rng(0x1319_8a2e_0370_7344);
        let mut buf = std::vec![0u8; 3 * KIB_64];
        for round in 0..3000 {
            let len = rng.length();
            let src = KIB_64 + rng.below(64);
            // Up to a block past the whole length either way: overlapping both ways, touching,
            // or apart.
            let reach = len + 64;
            let dst = src + rng.below(2 * reach + 1) - reach;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(7).wrapping_add(round as u8);
            }
            let mut expected = buf.clone();
            expected.copy_within(src..src + len, dst);
            unsafe {
                let p = buf.as_mut_ptr();
                super::memmove(p.add(dst), p.add(src), len);
            }
            assert!(
                buf == expected,
                "round {round}: len {len}, src {src}, dst {dst}"
            );
        }
    }

    #[test]
    fn moves_overlapping_regions_in_both_directions() {
        for len in (0..=300).chain([511, 512, 513, 1000]) {
            for shift in [
                -130isize, -65, -64, -63, -17, -1, 1, 2, 15, 16, 63, 64, 65, 129,
            ] {
                let mut buf = pattern(3000, 3);
                let mut expected = buf.clone();
                let (src, dst) = (1200usize, (1200 + shift) as usize);
                expected.copy_within(src..src + len, dst);
                unsafe {
                    let p = buf.as_mut_ptr();
                    super::memmove(p.add(dst), p.add(src), len);
                }
                assert_eq!(buf, expected, "len {len}, shift {shift}");
            }
        }
    }
}
