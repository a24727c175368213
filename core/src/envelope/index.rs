//! A per-message structural index (simdjson's "stage 1", reduced to what the
//! envelope walk needs), built 64 bytes at a time with SIMD before the walk.
//!
//! The walk ([`super::scan::Scanner`]) is latency-bound: each token's end must be
//! found before the next token can be read, and finding the end of a string or a
//! digit run byte-block by byte-block costs a branch whose outcome depends on the
//! token's length (a mispredict on most strings longer than one SIMD block). With
//! the index, the end of a string is the next bit of the quote bitmap and the end
//! of a digit run the next zero bit of the digit bitmap: one shift and one
//! trailing-zero count each, whatever the length.
//!
//! The index only speeds the walk up; it never decides validity on its own. A
//! message is indexed only if it has no backslash (so every `"` delimits a string),
//! no control character inside a string and balanced quotes, and is valid UTF-8 as
//! a whole (so every string is). The indexed walk then accepts exactly the
//! documents the byte-wise walk accepts; anything else (or any syntax error met on
//! the indexed walk) takes the byte-wise walk, which owns every error message and
//! offset.
//!
//! Blocks are classified with AVX-512BW, else AVX2, else SSE2 (x86_64 baseline),
//! chosen once per batch ([`Level::detect`]); a portable byte loop serves other
//! targets and is the reference of the tests.

/// Which block classifier to use (chosen once per batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Portable byte loop (on x86_64 only the tests' reference).
    #[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
    Portable,
    /// 4 x 16 bytes, SSE2 (every x86_64 CPU).
    #[cfg(target_arch = "x86_64")]
    Sse2,
    /// 2 x 32 bytes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// 64 bytes at once, compare results straight into 64-bit masks.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Level {
    /// The best level this CPU supports.
    pub fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Level::Avx2;
            }
            Level::Sse2
        }
        #[cfg(not(target_arch = "x86_64"))]
        Level::Portable
    }

    /// Every level this CPU can run (for tests comparing them).
    #[cfg(test)]
    pub fn all_supported() -> Vec<Level> {
        let mut v = vec![Level::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            v.push(Level::Sse2);
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Level::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                v.push(Level::Avx512);
            }
        }
        v
    }
}

/// The bitmaps of one message: bit `i` of word `i / 64` is byte `i`. Two zero words
/// past the end, so a 64-bit window may start at any offset up to the length.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// `"` bytes.
    pub quotes: Vec<u64>,
    /// `0`-`9` bytes.
    pub digits: Vec<u64>,
    /// Bytes below 0x20 (whitespace or invalid); all zero words unless `has_ctrl`.
    pub ctrl: Vec<u64>,
    /// Whether the message has a byte below 0x20 anywhere.
    pub has_ctrl: bool,
}

/// Masks of one 64-byte block.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Block {
    quote: u64,
    backslash: u64,
    /// Bytes below 0x20.
    ctrl: u64,
    /// Bytes 0x80 and above.
    high: u64,
    digit: u64,
}

impl Index {
    /// Index `msg`. `false` if it must take the byte-wise walk instead: it has a
    /// backslash (escapes), or bytes above 0x7f that are not valid UTF-8. (A control
    /// character in a string is caught by the indexed walk itself, from `ctrl`.)
    pub fn build(&mut self, msg: &[u8], level: Level) -> bool {
        match level {
            Level::Portable => self.build_with(msg, block_portable),
            #[cfg(target_arch = "x86_64")]
            Level::Sse2 => self.build_with(msg, x86::block_sse2),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Level::Avx2` is only chosen when the CPU has AVX2.
            Level::Avx2 => unsafe { self.build_avx2(msg) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Level::Avx512` is only chosen when the CPU has AVX-512F/BW.
            Level::Avx512 => unsafe { self.build_avx512(msg) },
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn build_avx2(&mut self, msg: &[u8]) -> bool {
        self.build_with(msg, |b| {
            // SAFETY: this function only runs when the CPU has AVX2.
            unsafe { x86::block_avx2(b) }
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    unsafe fn build_avx512(&mut self, msg: &[u8]) -> bool {
        self.build_with(msg, |b| {
            // SAFETY: this function only runs when the CPU has AVX-512F/BW.
            unsafe { x86::block_avx512(b) }
        })
    }

    #[inline(always)]
    fn build_with(&mut self, msg: &[u8], block: impl Fn(&[u8; 64]) -> Block) -> bool {
        let words = msg.len() / 64 + 2;
        for v in [&mut self.quotes, &mut self.digits, &mut self.ctrl] {
            v.clear();
            v.resize(words, 0);
        }
        let (mut backslash, mut high, mut ctrl) = (0u64, 0u64, 0u64);
        let mut add = |i: usize, b: Block| {
            if let (Some(q), Some(d), Some(c)) = (
                self.quotes.get_mut(i),
                self.digits.get_mut(i),
                self.ctrl.get_mut(i),
            ) {
                (*q, *d, *c) = (b.quote, b.digit, b.ctrl);
            }
            backslash |= b.backslash;
            high |= b.high;
            ctrl |= b.ctrl;
        };
        let (blocks, tail) = msg.as_chunks::<64>();
        for (i, b) in blocks.iter().enumerate() {
            add(i, block(b));
        }
        if !tail.is_empty() {
            // Pad with spaces: no quote, backslash, control, high or digit byte.
            let mut last = [b' '; 64];
            if let Some(dst) = last.get_mut(..tail.len()) {
                dst.copy_from_slice(tail);
            }
            add(blocks.len(), block(&last));
        }
        self.has_ctrl = ctrl != 0;
        backslash == 0 && (high == 0 || std::str::from_utf8(msg).is_ok())
    }
}

/// Whether any bit of `bits` in `start..end` is set.
#[inline]
pub(crate) fn any_in(bits: &[u64], start: usize, end: usize) -> bool {
    let mut p = start;
    while p < end {
        let n = (end - p).min(64);
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        if window(bits, p) & mask != 0 {
            return true;
        }
        p += n;
    }
    false
}

/// The 64 bits of `bits` starting at bit `p` (zeros past the end).
#[inline(always)]
pub(crate) fn window(bits: &[u64], p: usize) -> u64 {
    let (i, s) = (p / 64, (p % 64) as u32);
    let lo = bits.get(i).copied().unwrap_or(0);
    let hi = bits.get(i + 1).copied().unwrap_or(0);
    // `(hi << 1) << (63 - s)` is `hi << (64 - s)` without overflowing at `s == 0`.
    (lo >> s) | ((hi << 1) << (63 - s))
}

/// The portable classifier (and the reference of the SIMD ones in the tests).
#[inline(always)]
fn block_portable(b: &[u8; 64]) -> Block {
    let mut m = Block::default();
    for (i, &c) in b.iter().enumerate() {
        let bit = 1u64 << i;
        if c == b'"' {
            m.quote |= bit;
        }
        if c == b'\\' {
            m.backslash |= bit;
        }
        if c < 0x20 {
            m.ctrl |= bit;
        }
        if c >= 0x80 {
            m.high |= bit;
        }
        if c.is_ascii_digit() {
            m.digit |= bit;
        }
    }
    m
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Block;
    use std::arch::x86_64::*;

    /// SSE2 (x86_64 baseline), 16 bytes a step.
    #[inline(always)]
    pub(super) fn block_sse2(b: &[u8; 64]) -> Block {
        let mut m = Block::default();
        for (k, chunk) in b.as_chunks::<16>().0.iter().enumerate() {
            // SAFETY: SSE2 is part of x86_64; the load reads exactly the 16 bytes of
            // `chunk` (unaligned load).
            let (q, bs, lh, hi, dg) = unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr().cast());
                let q = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)));
                let bs = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)));
                // Signed: bytes 0x00-0x1f and 0x80-0xff are "less than 0x20".
                let lh = _mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
                let hi = _mm_movemask_epi8(v);
                let dg = _mm_movemask_epi8(_mm_and_si128(
                    _mm_cmpgt_epi8(v, _mm_set1_epi8(b'0' as i8 - 1)),
                    _mm_cmplt_epi8(v, _mm_set1_epi8(b'9' as i8 + 1)),
                ));
                (q, bs, lh, hi, dg)
            };
            let at = |x: i32| u64::from(x as u32 & 0xffff) << (16 * k);
            m.quote |= at(q);
            m.backslash |= at(bs);
            m.ctrl |= at(lh & !hi);
            m.high |= at(hi);
            m.digit |= at(dg);
        }
        m
    }

    /// AVX2, 32 bytes a step.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn block_avx2(b: &[u8; 64]) -> Block {
        let mut m = Block::default();
        for (k, chunk) in b.as_chunks::<32>().0.iter().enumerate() {
            // SAFETY: the load reads exactly the 32 bytes of `chunk` (unaligned).
            let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
            let q = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8)));
            let bs = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8)));
            // Signed: bytes 0x00-0x1f and 0x80-0xff are "less than 0x20".
            let lh = _mm256_movemask_epi8(_mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v));
            let hi = _mm256_movemask_epi8(v);
            let dg = _mm256_movemask_epi8(_mm256_and_si256(
                _mm256_cmpgt_epi8(v, _mm256_set1_epi8(b'0' as i8 - 1)),
                _mm256_cmpgt_epi8(_mm256_set1_epi8(b'9' as i8 + 1), v),
            ));
            let at = |x: i32| u64::from(x as u32) << (32 * k);
            m.quote |= at(q);
            m.backslash |= at(bs);
            m.ctrl |= at(lh & !hi);
            m.high |= at(hi);
            m.digit |= at(dg);
        }
        m
    }

    /// AVX-512BW, the whole block at once.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512BW.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn block_avx512(b: &[u8; 64]) -> Block {
        // SAFETY: the load reads exactly the 64 bytes of `b` (unaligned).
        let v = unsafe { _mm512_loadu_si512(b.as_ptr().cast()) };
        Block {
            quote: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8)),
            backslash: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8)),
            ctrl: _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20)),
            high: _mm512_movepi8_mask(v),
            digit: _mm512_cmplt_epu8_mask(
                _mm512_sub_epi8(v, _mm512_set1_epi8(b'0' as i8)),
                _mm512_set1_epi8(10),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every classifier gives the portable one's masks, on every byte value.
    #[test]
    fn classifiers_agree() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..2000 {
            let mut b = [0u8; 64];
            for (i, c) in b.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Cover all 256 values in the first rounds, then random bytes.
                *c = if round < 4 { (round * 64 + i) as u8 } else { x as u8 };
            }
            let want = block_portable(&b);
            #[cfg(target_arch = "x86_64")]
            {
                assert_eq!(x86::block_sse2(&b), want);
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: checked just above.
                    assert_eq!(unsafe { x86::block_avx2(&b) }, want);
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                {
                    // SAFETY: checked just above.
                    assert_eq!(unsafe { x86::block_avx512(&b) }, want);
                }
            }
        }
    }

    #[test]
    fn windows() {
        let bits = [0x8000_0000_0000_0001u64, 0x3, 0];
        assert_eq!(window(&bits, 0), 0x8000_0000_0000_0001);
        assert_eq!(window(&bits, 1), 0xC000_0000_0000_0000 | 1 << 62);
        assert_eq!(window(&bits, 63), 0x7);
        assert_eq!(window(&bits, 64), 0x3);
        assert_eq!(window(&bits, 200), 0);
    }

    #[test]
    fn what_is_indexed() {
        let mut idx = Index::default();
        for level in Level::all_supported() {
            let ok = |idx: &mut Index, s: &[u8]| idx.build(s, level);
            assert!(ok(&mut idx, br#"{"a":[1,"b c",true]}"#));
            assert!(ok(&mut idx, "{\n\t\"é\": \"ü\"\r\n}".as_bytes()));
            assert!(ok(&mut idx, b""));
            // Long enough for whole blocks and a tail.
            let long = format!("[{}]", vec!["\"0123456789\""; 40].join(","));
            assert!(ok(&mut idx, long.as_bytes()));
            assert_eq!(idx.quotes.len(), long.len() / 64 + 2);
            assert_eq!(idx.quotes[0] & 0x3fff, 1 << 1 | 1 << 12);
            assert_eq!(idx.digits[0] & 0x3fff, 0xffc);
            for bad in [&br#"{"a\"b":1}"#[..], b"[\"\xff\"]", b"\"\xc3\""] {
                assert!(!ok(&mut idx, bad), "{bad:?}");
            }
            // Control characters are indexed (the walk rejects them inside strings).
            assert!(ok(&mut idx, b"[\"tab\there\"]"));
            assert!(idx.has_ctrl);
            assert_eq!(idx.ctrl[0], 1 << 5);
            assert!(any_in(&idx.ctrl, 2, 9) && !any_in(&idx.ctrl, 6, 9));
            assert!(ok(&mut idx, b"[1]"));
            assert!(!idx.has_ctrl);
            let mut far = vec![b' '; 200];
            far[150] = b'\n';
            assert!(ok(&mut idx, &far));
            assert!(any_in(&idx.ctrl, 0, 151) && !any_in(&idx.ctrl, 0, 150));
            assert!(!any_in(&idx.ctrl, 151, 200));
        }
    }
}
